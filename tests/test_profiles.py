"""The FHIR package in profiles/: well-formed, complete against canonical.py, fresh snapshots, and
examples whose verdicts are what the manifest says (checked with our validator and, for our own
invariants, with fhirpathpy directly). HAPI's verdicts on the same examples are checked by
``scripts/build-profiles`` (it needs Java)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr import canonical
from fhir_dnacpr.model import Capacity, FormType, PartyRole, RecordStatus
from fhir_dnacpr.terminology import codes
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
EXAMPLES = PROFILES / "examples"
R4 = models["r4"]
CONFORMANCE_TYPES = {"StructureDefinition", "ValueSet", "CodeSystem"}


@cache
def package_resources() -> dict[str, dict[str, Any]]:
    """Top-level conformance resources of the package by file name (Measures belong to assurance)."""
    found = {}
    for path in sorted(PROFILES.glob("*.json")):
        if path.name != "package.json" and not path.name.startswith("."):
            resource = json.loads(path.read_text())
            if resource.get("resourceType") in CONFORMANCE_TYPES:
                found[path.name] = resource
    return found


def by_url(resource_type: str) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in package_resources().values() if r["resourceType"] == resource_type}


STRUCTURES = by_url("StructureDefinition")
MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())["examples"]


def constants(*prefixes: str) -> dict[str, str]:
    return {
        name: value
        for name, value in vars(canonical).items()
        if name.startswith(prefixes) and isinstance(value, str) and value.startswith(canonical.BASE)
    }


def example(entry: dict[str, Any]) -> dict[str, Any]:
    return json.loads((EXAMPLES / entry["file"]).read_text())


# ---- package ----------------------------------------------------------------------------------


def test_package_json_names_the_package_and_its_dependencies():
    package = json.loads((PROFILES / "package.json").read_text())
    assert package["name"] == canonical.PACKAGE_NAME
    assert package["version"] == "0.1.0"
    assert package["canonical"] == canonical.BASE
    assert package["fhirVersions"] == ["4.0.1"]
    assert package["dependencies"]["hl7.fhir.r4.core"] == "4.0.1"
    assert len(package["dependencies"]) == 2  # plus the UK Core package our profiles derive from


def test_index_lists_every_top_level_resource():
    index = json.loads((PROFILES / ".index.json").read_text())
    listed = {entry["filename"]: entry for entry in index["files"]}
    on_disk = {
        p.name for p in PROFILES.glob("*.json") if p.name != "package.json" and not p.name.startswith(".")
    }
    assert set(listed) == on_disk, "run scripts/build-profiles to rewrite .index.json"
    for name, entry in listed.items():
        resource = json.loads((PROFILES / name).read_text())
        assert (entry["resourceType"], entry["id"], entry.get("url")) == (
            resource["resourceType"],
            resource["id"],
            resource.get("url"),
        )


@pytest.mark.parametrize("name", sorted(package_resources()))
def test_resource_metadata(name: str):
    resource = package_resources()[name]
    kind = resource["resourceType"]
    assert resource["url"] == f"{canonical.BASE}/{kind}/{resource['id']}"
    assert name == f"{kind}-{resource['id']}.json"
    assert resource["name"].isidentifier() and resource["name"][0].isupper()
    assert resource["status"] in {"draft", "active"}
    assert resource["version"] == "0.1.0"


# ---- completeness against canonical.py ---------------------------------------------------------


def test_every_canonical_url_is_defined_in_the_package():
    defined = {r["url"] for r in package_resources().values()}
    missing = {
        name: url for name, url in constants("EXT_", "PROFILE_", "CS_", "VS_").items() if url not in defined
    }
    assert not missing


def test_every_package_url_is_a_canonical_constant():
    """The builder and parser use canonical.py; a URL only the package knows would drift."""
    known = set(constants("EXT_", "PROFILE_", "CS_", "VS_").values())
    unknown = sorted(r["url"] for r in package_resources().values() if r["url"] not in known)
    assert not unknown, f"add these to fhir_dnacpr/canonical.py: {unknown}"


# ---- StructureDefinitions ------------------------------------------------------------------------


@pytest.mark.parametrize("url", sorted(STRUCTURES))
def test_structure_definition_shape(url: str):
    sd = STRUCTURES[url]
    assert sd["fhirVersion"] == "4.0.1"
    assert sd["derivation"] == "constraint"
    assert all(e["path"].split(".")[0] == sd["type"] for e in sd["differential"]["element"])
    assert sd["snapshot"]["element"][0]["path"] == sd["type"]
    if sd["type"] == "Extension":
        assert sd["kind"] == "complex-type" and sd["context"]
    else:
        assert sd["kind"] == "resource"
        assert sd["baseDefinition"].startswith(canonical.UKCORE + "/UKCore-")


@pytest.mark.parametrize("url", sorted(STRUCTURES))
def test_snapshot_reflects_the_differential(url: str):
    """Every differential constraint is in the committed snapshot: catches a differential edited
    without re-running scripts/build-profiles."""
    sd = STRUCTURES[url]
    snapshot = {e["id"]: e for e in sd["snapshot"]["element"]}
    for diff in sd["differential"]["element"]:
        snap = snapshot.get(diff["id"])
        assert snap is not None, f"{diff['id']} missing from snapshot: run scripts/build-profiles"
        for key, value in diff.items():
            if key == "constraint":
                have = {c["key"]: c["expression"] for c in snap.get("constraint", [])}
                for constraint in value:
                    assert have.get(constraint["key"]) == constraint["expression"], (
                        diff["id"],
                        constraint["key"],
                    )
            elif key in ("binding", "slicing"):
                assert {k: snap[key].get(k) for k in value} == value, (diff["id"], key)
            elif key == "type":
                assert [(t["code"], t.get("profile"), t.get("targetProfile")) for t in snap["type"]] == [
                    (t["code"], t.get("profile"), t.get("targetProfile")) for t in value
                ], diff["id"]
            else:
                assert snap.get(key) == value, (diff["id"], key)


EXPECTED_EXTENSIONS = {
    # url: (contexts, value type or None for complex, sub-extensions) — as docs/fhir-mapping.md
    canonical.EXT_REVIEW_DATE: ({"Consent"}, None, {"date": "date", "indefinite": "boolean"}),
    canonical.EXT_CLINICAL_RATIONALE: ({"Consent"}, "string", {}),
    canonical.EXT_MENTAL_CAPACITY: ({"Consent"}, "CodeableConcept", {}),
    canonical.EXT_REASON_NOT_DISCUSSED: ({"Consent"}, "string", {}),
    canonical.EXT_SENIOR_ENDORSEMENT: ({"Consent"}, None, {"endorser": "Reference", "dateTime": "dateTime"}),
    canonical.EXT_CPR_DECISION_FINDING: ({"Consent"}, "CodeableConcept", {}),
    canonical.EXT_FORM_TYPE: ({"Consent", "CarePlan"}, "Coding", {}),
    canonical.EXT_DECISION_MAKER_IS_SENIOR: ({"Consent"}, "boolean", {}),
    canonical.EXT_RESPECT_CARE_PRIORITY: ({"CarePlan"}, None, {"score": "integer", "text": "string"}),
    canonical.EXT_RELATED_PARTY_ROLE: ({"RelatedPerson"}, "Coding", {}),
    canonical.EXT_PREFERRED_PLACE_OF_DEATH: ({"CarePlan"}, "CodeableConcept", {}),
    canonical.EXT_PREFERRED_PLACE_OF_CARE: ({"CarePlan"}, "CodeableConcept", {}),
    canonical.EXT_ADRT: ({"CarePlan"}, None, {"present": "boolean", "location": "string"}),
}


def test_expected_extensions_cover_canonical():
    assert set(EXPECTED_EXTENSIONS) == set(constants("EXT_").values())


@pytest.mark.parametrize("url", sorted(EXPECTED_EXTENSIONS))
def test_extension_context_and_value_types(url: str):
    contexts, value_type, subs = EXPECTED_EXTENSIONS[url]
    sd = STRUCTURES[url]
    assert {c["expression"] for c in sd["context"]} == contexts
    assert all(c["type"] == "element" for c in sd["context"])
    snap = {e["id"]: e for e in sd["snapshot"]["element"]}
    assert snap["Extension.url"]["fixedUri"] == url
    if value_type:
        assert [t["code"] for t in snap["Extension.value[x]"]["type"]] == [value_type]
        assert snap["Extension.value[x]"]["min"] == 1
        assert snap["Extension.extension"]["max"] == "0"
    else:
        assert snap["Extension.value[x]"]["max"] == "0"
        for name, sub_type in subs.items():
            assert snap[f"Extension.extension:{name}.url"]["fixedUri"] == name
            assert [t["code"] for t in snap[f"Extension.extension:{name}.value[x]"]["type"]] == [sub_type]
        sliced = {
            e["sliceName"]
            for e in sd["snapshot"]["element"]
            if e["path"] == "Extension.extension" and "sliceName" in e
        }
        assert sliced == set(subs)


@pytest.mark.parametrize(
    ("profile", "resource_type"),
    [(canonical.PROFILE_DNACPR_CONSENT, "Consent"), (canonical.PROFILE_ACP_CAREPLAN, "CarePlan")],
)
def test_profile_slices_every_extension_for_its_resource(profile: str, resource_type: str):
    sd = STRUCTURES[profile]
    used = {
        t["profile"][0]
        for e in sd["differential"]["element"]
        if e["path"] == f"{resource_type}.extension" and "sliceName" in e
        for t in e["type"]
    }
    expected = {url for url, (contexts, _, _) in EXPECTED_EXTENSIONS.items() if resource_type in contexts}
    assert used == expected


def test_every_bound_value_set_of_ours_is_in_the_package():
    value_sets = by_url("ValueSet")
    for sd in STRUCTURES.values():
        for element in sd["differential"]["element"]:
            bound = element.get("binding", {}).get("valueSet", "")
            if bound.startswith(canonical.BASE):
                assert bound in value_sets, (sd["url"], element["id"])


# ---- terminology --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "enum"),
    [
        (canonical.CS_MENTAL_CAPACITY, Capacity),
        (canonical.CS_FORM_TYPE, FormType),
        (canonical.CS_RELATED_PARTY_ROLE, PartyRole),
        (canonical.CS_RECORD_STATUS, RecordStatus),
    ],
)
def test_code_systems_hold_the_model_enum_values(url: str, enum: type):
    code_system = by_url("CodeSystem")[url]
    assert [c["code"] for c in code_system["concept"]] == [member.value for member in enum]
    assert code_system["content"] == "complete" and code_system["count"] == len(enum)


def enumerated(value_set_url: str) -> dict[tuple[str, str], str]:
    include = by_url("ValueSet")[value_set_url]["compose"]["include"]
    return {(inc["system"], c["code"]): c.get("display") for inc in include for c in inc.get("concept", [])}


def test_cpr_decision_value_set_is_the_two_uk_findings():
    assert enumerated(canonical.VS_CPR_DECISION) == {
        (c.system, c.code): c.display for c in (codes.FOR_CPR, codes.NOT_FOR_CPR)
    }


def test_preferred_place_of_death_value_set_is_the_sixteen_findings():
    found = enumerated(canonical.VS_PREFERRED_PLACE_OF_DEATH)
    assert found == {(c.system, c.code): c.display for c in codes.PREFERRED_PLACE_OF_DEATH.values()}
    assert len(found) == 16


@pytest.mark.parametrize("url", [canonical.VS_MENTAL_CAPACITY, canonical.VS_FORM_TYPE])
def test_local_value_sets_include_their_code_system(url: str):
    include = by_url("ValueSet")[url]["compose"]["include"]
    assert len(include) == 1 and include[0]["system"] in by_url("CodeSystem") and "concept" not in include[0]


# ---- examples -------------------------------------------------------------------------------------


def test_manifest_lists_every_example_once():
    files = sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "manifest.json")
    assert sorted(e["file"] for e in MANIFEST) == files


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["file"])
def test_example_is_synthetic_and_claims_its_profile(entry: dict[str, Any]):
    resource = example(entry)
    assert entry["profile"] in resource["meta"]["profile"]
    assert resource["id"] == entry["file"].removesuffix(".json")
    assert entry["valid"] or entry["breaks"]
    assert "warns" not in entry or entry["valid"]
    for identifier in resource.get("identifier", []):
        if identifier.get("system") == canonical.NHS_NUMBER:
            assert identifier["value"].replace(" ", "").startswith("999"), "test NHS numbers come from 999"


def test_every_profile_has_a_valid_and_an_invalid_example():
    profiles = {url for url in STRUCTURES if STRUCTURES[url]["type"] != "Extension"}
    for verdict in (True, False):
        assert profiles <= {e["profile"] for e in MANIFEST if e["valid"] is verdict}


# ---- our invariants, evaluated with fhirpathpy -------------------------------------------------


@cache
def fhirpath(expression: str):
    """Compiled once: parsing the long Modulus 11 expression costs far more than evaluating it."""
    return compile_fhirpath(expression, R4)


def evaluate(resource: dict[str, Any], expression: str) -> list[Any]:
    return fhirpath(expression)(resource, {})


def invariants() -> list[tuple[str, str, str]]:
    """(key, structure url, expression) of every invariant our differentials add."""
    return [
        (c["key"], url, c["expression"])
        for url, sd in STRUCTURES.items()
        for element in sd["differential"]["element"]
        for c in element.get("constraint", [])
    ]


def invariant_contexts(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """Where an invariant is evaluated: the resource for a profile, each use for an extension."""
    sd = STRUCTURES[url]
    if sd["type"] == "Extension":
        return [e for e in resource.get("extension", []) if e["url"] == url]
    return [resource] if resource["resourceType"] == sd["type"] else []


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["file"])
def test_our_invariants_give_the_manifest_verdict(entry: dict[str, Any]):
    resource = example(entry)
    broken_key = None if entry["valid"] else entry["breaks"].split(":")[0]
    failing = {broken_key, entry.get("warns")}
    for key, url, expression in invariants():
        for context in invariant_contexts(resource, url):
            expected = [key not in failing]
            assert evaluate(context, expression) == expected, key
    if broken_key in {key for key, _, _ in invariants()}:
        assert any(invariant_contexts(resource, url) for key, url, _ in invariants() if key == broken_key)


def test_only_dnacpr_3_is_a_warning():
    """Warnings never block sharing: keep them to ambiguity, not to contradiction."""
    severities = {
        c["key"]: c["severity"]
        for sd in STRUCTURES.values()
        for element in sd["differential"]["element"]
        for c in element.get("constraint", [])
    }
    assert {key for key, severity in severities.items() if severity == "warning"} == {"dnacpr-3"}
    assert set(severities.values()) == {"error", "warning"}


def nhs_invariant(value: str) -> list[bool]:
    expression = next(expr for key, _, expr in invariants() if key == "nhs-1")
    patient = {"resourceType": "Patient", "identifier": [{"system": canonical.NHS_NUMBER, "value": value}]}
    return evaluate(patient, expression)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("9434765919", True),  # NHS Data Dictionary worked example
        ("9912003888", True),
        ("9000000009", True),
        ("9990000018", True),
        ("9912003890", False),  # UK Core's own baby example: check digit 6, not 0
        ("9912003814", False),  # remainder 0 gives check digit 0, not 4
        ("9990000000", False),  # check digit would be 10: never issued
        ("943 476 5919", False),
        ("943476591", False),
        ("94347659190", False),
        ("94347659l9", False),
        ("", False),
    ],
)
def test_nhs_number_invariant_known_values(value: str, valid: bool):
    assert nhs_invariant(value) == [valid]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=10, max_size=10),
        st.text(alphabet="0123456789 -x", max_size=12),
    )
)
def test_nhs_number_invariant_agrees_with_modulus_11(value: str):
    assert nhs_invariant(value) == [is_valid_nhs_number(value)]


def test_nhs_number_invariant_ignores_other_identifiers():
    expression = next(expr for key, _, expr in invariants() if key == "nhs-1")
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://example.org/mrn", "value": "123"}, {"value": "no system"}],
    }
    assert evaluate(patient, expression) == [True]


@pytest.mark.parametrize(
    ("start", "review", "holds"),
    [
        ("2026-03-01", "2026-03-01", True),
        ("2026-03-01T14:05:00Z", "2026-03-01", True),  # same day, decision has a time
        ("2026-03-01T14:05:00+01:00", "2026-02-28", False),
        ("2026-03-01", "2027-01-01", True),
        ("2026-03", "2026-03-15", True),  # partial decision date
    ],
)
def test_review_date_invariant_compares_calendar_days(start: str, review: str, holds: bool):
    expression = next(expr for key, _, expr in invariants() if key == "dnacpr-2")
    consent = {
        "resourceType": "Consent",
        "extension": [
            {"url": canonical.EXT_REVIEW_DATE, "extension": [{"url": "date", "valueDate": review}]}
        ],
        "provision": {"type": "deny", "period": {"start": start}},
    }
    assert evaluate(consent, expression) == [holds]


# ---- every example through our validator ----------------------------------------------------------


@pytest.fixture(scope="module")
def validator(shared: Path):
    try:
        from fhir_dnacpr.validation import Validator
    except ImportError as exc:  # the validator is built by another task; skip until it imports
        pytest.skip(f"fhir_dnacpr.validation does not import yet: {exc}")
    validator = Validator()
    validator.load_ig(shared / "fhir-packages" / "uk-core")
    validator.load_ig(PROFILES)
    return validator


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["file"])
def test_example_verdict_with_our_validator(validator, entry: dict[str, Any]):
    issues = validator.validate(example(entry), entry["profile"])
    errors = [f"{i.location}: {i.message}" for i in issues if i.is_error]
    if entry["valid"]:
        assert not errors
        if "warns" in entry:
            assert any(entry["warns"] in i.message for i in issues if i.severity == "warning")
    else:
        assert errors, f"expected an error for: {entry['breaks']}"
