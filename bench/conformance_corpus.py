"""Build the reference-comparison corpus: our examples, converted records, and one-rule mutations.

    python bench/conformance_corpus.py OUT_DIR

Writes one file per instance (JSON, plus XML twins of the profile examples) and
``OUT_DIR/manifest.json``: ``{"instances": [{"id", "file", "profile", "source", "label", ...}]}``.
Sources:

* ``example``   — every instance in profiles/examples (with the manifest's profile and verdict);
* ``xml``       — the same examples written as FHIR XML (the XML path of both validators);
* ``converted`` — every resource the converter makes from the three example layouts
  (epaccs CSV, ReSPECT XML, acp-app NDJSON; converted with validation off);
* ``mutation``  — valid instances with exactly one rule broken: a required element removed, a
  code outside a required binding, an invariant broken, a slice emptied or over-filled, a
  reference to a type the element does not allow, a malformed primitive, an unknown element, a
  fixed/pattern value changed, an extension value of the wrong type, too many values, an
  unknown extension, an empty element. Each carries a label naming the rule it breaks.

Deterministic: the same checkout gives the same corpus. All data stays synthetic (the sources are).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fhir_dnacpr.definitions.elements import type_index  # noqa: E402
from fhir_dnacpr.fhirxml import to_xml  # noqa: E402

EXAMPLES = REPO / "profiles" / "examples"
BASE = "https://fhir-dnacpr.github.io/fhir/StructureDefinition/"
CONSENT = BASE + "DnacprDecision"
CAREPLAN = BASE + "AdvanceCarePlan"
SCT = "http://snomed.info/sct"
LAYOUTS = (
    ("epaccs", "register.csv"),
    ("respect", "respect-forms.xml"),
    ("acp-app", "plans.ndjson"),
)
#: How many converted resources of each type serve as mutation bases (all are in the corpus).
MUTATION_BASES = {
    "Consent": 12,
    "CarePlan": 8,
    "Patient": 4,
    "Practitioner": 3,
    "Organization": 3,
    "RelatedPerson": 3,
    "Condition": 2,
}

Mutation = tuple[str, dict[str, Any]]


# -- sources --------------------------------------------------------------------------------------


def example_instances() -> Iterator[dict[str, Any]]:
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    for entry in manifest["examples"]:
        resource = json.loads((EXAMPLES / entry["file"]).read_text())
        yield {
            "label": f"example:{entry['file']}",
            "source": "example",
            "profile": entry["profile"],
            "expect_valid": entry["valid"],
            "resource": resource,
        }


def converted_example_resources() -> Iterator[tuple[str, dict[str, Any]]]:
    """(layout, resource) for every resource the CLI converts from the three example exports
    (validation off, so non-conforming output is kept); bench/validate.py uses it too."""
    with tempfile.TemporaryDirectory(prefix="converted-examples-") as tmp:
        for layout, export in LAYOUTS:
            out = Path(tmp) / layout
            subprocess.run(
                [
                    sys.executable,
                    str(REPO / "cli.py"),
                    "convert",
                    str(REPO / "examples" / layout / export),
                    "--mapping",
                    str(REPO / "examples" / layout / "mapping.yaml"),
                    "--out",
                    str(out),
                    "--no-validate",
                    "--overwrite",
                    "--quiet",
                ],
                check=False,  # exit 1 = some records rejected: expected, the examples hold bad rows
                capture_output=True,
                cwd=REPO,
            )
            bundles = sorted(out.glob("bundle-*.json"))
            if not bundles:
                raise SystemExit(f"the converter wrote no bundle for {layout}")
            for bundle in bundles:
                for entry in json.loads(bundle.read_text())["entry"]:
                    yield layout, entry["resource"]


def converted_instances() -> Iterator[dict[str, Any]]:
    for layout, resource in converted_example_resources():
        yield {
            "label": f"converted:{layout}:{resource['resourceType']}",
            "source": "converted",
            "profile": None,
            "resource": resource,
        }


# -- mutations ------------------------------------------------------------------------------------


def _primitives(resource: dict[str, Any]) -> Iterator[tuple[str, dict, str, str]]:
    """(path, container, key, type) of every primitive value, using the base R4 definitions."""
    index = type_index()

    def walk(obj: dict, path: str, type_path: str) -> Iterator[tuple[str, dict, str, str]]:
        for key, value in list(obj.items()):
            if key.startswith("_") or key == "resourceType":
                continue
            resolved = index.resolve(type_path, key)
            if resolved is None:
                continue
            info, type_code = resolved
            if isinstance(value, dict) and not index.is_resource(type_code):
                yield from walk(value, f"{path}.{key}", index.children_path(info, type_code))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and not index.is_resource(type_code):
                        yield from walk(item, f"{path}.{key}", index.children_path(info, type_code))
            elif index.is_primitive(type_code):
                yield f"{path}.{key}", obj, key, type_code

    yield from walk(resource, resource["resourceType"], resource["resourceType"])


BAD_PRIMITIVES = {
    "dateTime": ("bad-datetime", "2024-13-45T25:61:00Z"),
    "date": ("bad-date", "01/03/2024"),
    "instant": ("bad-instant", "2024-03-01"),
    "boolean": ("boolean-as-string", "yes"),
    "uri": ("uri-with-space", "https://example.org/has space"),
    "canonical": ("canonical-relative", "not absolute"),
    "code": ("code-with-spaces", "not  a code"),
    "positiveInt": ("positiveint-zero", 0),
    "integer": ("integer-as-text", "twelve"),
}


def generic_mutations(resource: dict[str, Any], required: list[str]) -> Iterator[Mutation]:
    rtype = resource["resourceType"]
    for name in required:
        if name in resource:
            mutated = copy.deepcopy(resource)
            del mutated[name]
            yield f"remove-required:{rtype}.{name}", mutated
    mutated = copy.deepcopy(resource)
    mutated["notAnElement"] = "x"
    yield "unknown-element", mutated
    seen_types: set[str] = set()
    for path, _container, key, type_code in _primitives(resource):
        if type_code in BAD_PRIMITIVES and type_code not in seen_types:
            seen_types.add(type_code)
            label, bad = BAD_PRIMITIVES[type_code]
            mutated = copy.deepcopy(resource)
            for mpath, mcontainer, mkey, _t in _primitives(mutated):
                if mpath == path and mkey == key:
                    mcontainer[mkey] = bad
                    break
            yield f"{label}:{path}", mutated
    if "id" in resource:
        mutated = copy.deepcopy(resource)
        mutated["id"] = "bad id!"
        yield "bad-resource-id", mutated
    mutated = copy.deepcopy(resource)
    mutated.setdefault("extension", []).append({"url": BASE + "no-such-extension", "valueString": "x"})
    yield "unknown-extension", mutated
    mutated = copy.deepcopy(resource)
    mutated.setdefault("extension", []).append({"url": BASE + "dnacpr-clinical-rationale"})
    yield "extension-without-value:ext-1", mutated
    if isinstance(resource.get("meta"), dict):
        mutated = copy.deepcopy(resource)
        mutated["meta"] = {}
        yield "empty-element:meta", mutated
    mutated = copy.deepcopy(resource)
    mutated["text"] = {"status": "generated"}
    yield "remove-required:Narrative.div", mutated


def _set_code(concept: dict, code: str) -> None:
    coding = concept.setdefault("coding", [{}])[0]
    coding["code"] = code
    coding.pop("display", None)


def _extension(resource: dict, name: str) -> dict | None:
    for ext in resource.get("extension", ()):
        if ext.get("url") == BASE + name:
            return ext
    return None


def consent_mutations(resource: dict[str, Any]) -> Iterator[Mutation]:
    def variant(label: str, change: Callable[[dict], bool | None]) -> Iterator[Mutation]:
        mutated = copy.deepcopy(resource)
        if change(mutated) is not False:
            yield label, mutated

    yield from variant("required-binding:Consent.status", lambda r: r.update(status="bogus"))
    yield from variant("pattern:Consent.scope", lambda r: _set_code(r["scope"], "treatment"))
    yield from variant(
        "slice-min:Consent.category:dnr",
        lambda r: [_set_code(c, "acd") for c in r["category"] if c["coding"][0].get("code") == "dnr"],
    )

    def no_policy(r: dict) -> bool:
        had = "policy" in r or "policyRule" in r
        r.pop("policy", None)
        r.pop("policyRule", None)
        return had

    yield from variant("invariant:ppc-1", no_policy)
    provision = resource.get("provision") or {}
    if "type" in provision:
        yield from variant(
            "required-binding:Consent.provision.type", lambda r: r["provision"].update(type="maybe")
        )
        flipped = "permit" if provision["type"] == "deny" else "deny"
        yield from variant("invariant:dnacpr-1", lambda r: r["provision"].update(type=flipped))
    if isinstance(provision.get("period"), dict):
        yield from variant(
            "max-zero:Consent.provision.period.end",
            lambda r: r["provision"]["period"].update(end="2099-01-01"),
        )
    if provision.get("code"):
        yield from variant(
            "slice-min:Consent.provision.code:cpr",
            lambda r: _set_code(r["provision"]["code"][0], "182832007"),
        )
    finding = _extension(resource, "dnacpr-decision-finding")
    if finding is not None:
        yield from variant(
            "required-binding:dnacpr-decision-finding",
            lambda r: _set_code(
                _extension(r, "dnacpr-decision-finding")["valueCodeableConcept"], "304253006"
            ),
        )

        def wrong_type(r: dict) -> None:
            ext = _extension(r, "dnacpr-decision-finding")
            ext.pop("valueCodeableConcept", None)
            ext["valueString"] = "not for CPR"

        yield from variant("extension-value-type:dnacpr-decision-finding", wrong_type)
        yield from variant(
            "slice-max:Consent.extension:cprDecisionFinding",
            lambda r: r["extension"].append(copy.deepcopy(_extension(r, "dnacpr-decision-finding"))),
        )

        def remove_finding(r: dict) -> None:
            r["extension"] = [e for e in r["extension"] if e.get("url") != BASE + "dnacpr-decision-finding"]

        yield from variant("slice-min:Consent.extension:cprDecisionFinding", remove_finding)
    review = _extension(resource, "dnacpr-review-date")
    if review is not None:
        yield from variant(
            "closed-slice:dnacpr-review-date.extension",
            lambda r: _extension(r, "dnacpr-review-date")["extension"].append(
                {"url": "reason", "valueString": "x"}
            ),
        )
        start = (provision.get("period") or {}).get("start")
        if isinstance(start, str):

            def review_before(r: dict) -> None:
                ext = _extension(r, "dnacpr-review-date")
                ext["extension"] = [{"url": "date", "valueDate": "2000-01-01"}]

            yield from variant("invariant:dnacpr-2", review_before)
    senior = _extension(resource, "dnacpr-decision-maker-is-senior")
    if senior is not None:

        def senior_string(r: dict) -> None:
            ext = _extension(r, "dnacpr-decision-maker-is-senior")
            ext.pop("valueBoolean", None)
            ext["valueString"] = "yes"

        yield from variant("extension-value-type:dnacpr-decision-maker-is-senior", senior_string)
    if "patient" in resource:
        yield from variant(
            "reference-target:Consent.patient",
            lambda r: r.update(patient={"reference": "Location/somewhere"}),
        )
    if "dateTime" in resource:
        yield from variant(
            "too-many:Consent.dateTime", lambda r: r.update(dateTime=[r["dateTime"], r["dateTime"]])
        )


def careplan_mutations(resource: dict[str, Any]) -> Iterator[Mutation]:
    def variant(label: str, change: Callable[[dict], bool | None]) -> Iterator[Mutation]:
        mutated = copy.deepcopy(resource)
        if change(mutated) is not False:
            yield label, mutated

    yield from variant("fixed:CarePlan.intent", lambda r: r.update(intent="proposal"))
    yield from variant("required-binding:CarePlan.status", lambda r: r.update(status="bogus"))
    yield from variant(
        "reference-target:CarePlan.subject", lambda r: r.update(subject={"reference": "Location/x"})
    )
    yield from variant(
        "too-many:CarePlan.subject", lambda r: r.update(subject=[r.get("subject", {}), r.get("subject", {})])
    )

    def no_acp(r: dict) -> bool:
        before = len(r.get("category", []))
        r["category"] = [
            c
            for c in r.get("category", [])
            if not any(x.get("code") == "736366004" for x in c.get("coding", []))
        ]
        if not r["category"]:
            del r["category"]
        return before != len(r.get("category", []))

    yield from variant("slice-min:CarePlan.category:acp", no_acp)
    priority = _extension(resource, "respect-care-priority")
    if priority is not None:

        def score(r: dict) -> bool:
            for sub in _extension(r, "respect-care-priority").get("extension", []):
                if sub.get("url") == "score":
                    sub["valueInteger"] = 150
                    return True
            return False

        yield from variant("invariant:acp-1", score)
    for ext in resource.get("extension", ()):
        if "valueCodeableConcept" in ext:
            url = ext["url"]

            def wrong(r: dict, url: str = url) -> None:
                target = next(e for e in r["extension"] if e.get("url") == url)
                target.pop("valueCodeableConcept")
                target["valueBoolean"] = True

            yield from variant(f"extension-value-type:{url.rsplit('/', 1)[-1]}", wrong)
            break


def patient_mutations(resource: dict[str, Any]) -> Iterator[Mutation]:
    for i, identifier in enumerate(resource.get("identifier", ())):
        if identifier.get("system") == "https://fhir.nhs.uk/Id/nhs-number" and isinstance(
            identifier.get("value"), str
        ):
            mutated = copy.deepcopy(resource)
            value = identifier["value"]
            mutated["identifier"][i]["value"] = value[:-1] + str((int(value[-1]) + 1) % 10)
            yield "invariant:nhs-1", mutated
            break
    if "gender" in resource:
        mutated = copy.deepcopy(resource)
        mutated["gender"] = "unknown-gender"
        yield "required-binding:Patient.gender", mutated


def identifier_mutation(resource: dict[str, Any], system: str, bad: str, label: str) -> Iterator[Mutation]:
    for i, identifier in enumerate(resource.get("identifier", ())):
        if identifier.get("system") == system:
            mutated = copy.deepcopy(resource)
            mutated["identifier"][i]["value"] = bad
            yield label, mutated
            return


SPECIFIC: dict[str, Callable[[dict[str, Any]], Iterator[Mutation]]] = {
    "Consent": consent_mutations,
    "CarePlan": careplan_mutations,
    "Patient": patient_mutations,
    "Practitioner": lambda r: identifier_mutation(
        r, "https://fhir.hl7.org.uk/Id/gmc-number", "12345", "invariant:gmc-1"
    ),
    "Organization": lambda r: identifier_mutation(
        r, "https://fhir.nhs.uk/Id/ods-organization-code", "ab-1", "invariant:ods-1"
    ),
}


def required_elements(profile: str | None, resource_type: str) -> list[str]:
    """Top-level elements the profile (or base type) requires, from its snapshot."""
    from fhir_dnacpr.validation import default_validator

    validator = default_validator()
    url = profile or f"http://hl7.org/fhir/StructureDefinition/{resource_type}"
    structure = validator.structure(url)
    if structure is None:
        return []
    return [name for name, node in structure.root.children.items() if node.min > 0 and name != "id"]


def mutation_instances(bases: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for base in bases:
        resource = base["resource"]
        rtype = resource["resourceType"]
        profile = base["profile"] or next(iter((resource.get("meta") or {}).get("profile", [])), None)
        mutations = list(generic_mutations(resource, required_elements(profile, rtype)))
        if rtype in SPECIFIC:
            mutations += list(SPECIFIC[rtype](resource))
        for label, mutated in mutations:
            yield {
                "label": f"mutation:{label}",
                "source": "mutation",
                "base": base["id"],
                "profile": base["profile"],
                "resource": mutated,
            }


# -- build ----------------------------------------------------------------------------------------


def build(out_dir: Path) -> list[dict[str, Any]]:
    """Write the corpus into ``out_dir``; return the manifest entries (without the resources)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    instances: list[dict[str, Any]] = []

    def add(instance: dict[str, Any], fmt: str = "json") -> dict[str, Any]:
        instance["id"] = f"{len(instances) + 1:04d}"
        resource = instance.pop("resource")
        name = f"{instance['id']}-{resource['resourceType']}.{fmt}"
        path = out_dir / name
        if fmt == "xml":
            path.write_bytes(to_xml(resource))
        else:
            path.write_text(json.dumps(resource, indent=1, ensure_ascii=False))
        instance["file"] = name
        instances.append(instance)
        instance["_resource"] = resource
        return instance

    examples = [add(e) for e in example_instances()]
    for example in examples:
        twin = {k: v for k, v in example.items() if k not in ("id", "file", "_resource")}
        twin |= {
            "label": example["label"].replace("example:", "xml:"),
            "source": "xml",
            "resource": example["_resource"],
        }
        add(twin, "xml")
    converted = [add(c) for c in converted_instances()]
    bases = [
        {"id": e["id"], "profile": e["profile"], "resource": e["_resource"]}
        for e in examples
        if e["expect_valid"]
    ]
    taken: dict[str, int] = {}
    for item in converted:
        rtype = item["_resource"]["resourceType"]
        if taken.get(rtype, 0) < MUTATION_BASES.get(rtype, 0):
            taken[rtype] = taken.get(rtype, 0) + 1
            bases.append({"id": item["id"], "profile": None, "resource": item["_resource"]})
    for mutation in mutation_instances(bases):
        add(mutation)
    for instance in instances:
        instance.pop("_resource", None)
    (out_dir / "manifest.json").write_text(json.dumps({"instances": instances}, indent=1))
    return instances


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python bench/conformance_corpus.py OUT_DIR")
    instances = build(Path(argv[0]))
    by_source: dict[str, int] = {}
    for instance in instances:
        by_source[instance["source"]] = by_source.get(instance["source"], 0) + 1
    print(f"corpus_instances: {len(instances)}")
    for source, count in sorted(by_source.items()):
        print(f"corpus_{source}: {count}")


if __name__ == "__main__":
    main(sys.argv[1:])
