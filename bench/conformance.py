"""Agreement with HAPI's validator on the conformance corpus, in one run.

    python bench/conformance.py [--corpus DIR] [--jar PATH] [--sample N] [--show N]

Builds the corpus (bench/conformance_corpus.py), validates every instance with our validator and
with HAPI FHIR's (``FhirInstanceValidator``, the HL7 reference validator as embedded in HAPI) —
the test server jar's offline batch mode, with our profiles/ and UK Core loaded — and compares:

* verdict: valid (no error/fatal issue) or invalid, per instance;
* errors: each error of either validator counts as agreed when the other reports an error at the
  same location (normalised: resource markers and ``ofType()`` dropped) of the same kind (message
  family, e.g. cardinality / invariant / binding).

Prints every disagreement, then ``verdict_agreement: …`` and ``location_agreement: …``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformance_corpus import build  # noqa: E402

from fhir_dnacpr.issues import Issue  # noqa: E402

JAR = REPO / "tests" / "fhir-server" / "target" / "fhir-test-server.jar"
MESSAGE_ID = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


def shared_dir() -> Path:
    configured = os.environ.get("FHIR_DNACPR_SHARED")
    return Path(configured) if configured else REPO.parent / "shared"


def uk_core_dir() -> Path:
    return shared_dir() / "fhir-packages" / "uk-core"


@dataclass
class Finding:
    location: str
    kind: str
    message_id: str
    message: str


@dataclass
class Outcome:
    errors: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


# -- kinds and locations ---------------------------------------------------------------------------

#: message-id fragments → kind; both validators use the HL7 validator's message ids.
KINDS = [
    ("ele-1", "empty"),
    ("OutOfOrder", "structure"),
    ("Array_cannot_be_empty", "empty"),
    ("PATTERN", "value"),
    ("Minimum_SLICE", "slice"),
    ("Maximum_SLICE", "slice"),
    ("NotSlice", "slice"),
    ("Slice", "slice"),
    ("Profile_Minimum", "cardinality"),
    ("Profile_Maximum", "cardinality"),
    ("must_be_an_Array", "cardinality"),
    ("must_be_an_simple_value", "cardinality"),
    ("_Fixed", "value"),
    ("_Pattern", "value"),
    ("MissingElement", "value"),
    ("NotAllowed", "value"),
    ("Terminology", "code"),
    ("UNABLE_TO_INFER_CODESYSTEM", "code"),
    ("Unknown_Code", "code"),
    ("CODESYSTEM", "code"),
    ("Extension_EXT", "extension"),
    ("Reference_REF", "reference"),
    ("Bundle", "reference"),
    ("Unrecognised", "structure"),
    ("Undefined", "structure"),
    ("UNRECOGNISED", "structure"),
    ("Profile_WrongType", "structure"),
    ("NoType", "structure"),
    ("Type_Specific_Checks", "format"),
    ("TYPE_SPECIFIC_CHECKS", "format"),
    ("Error_parsing_JSON", "format"),
    ("Resource_RES_ID", "format"),
    ("#", "invariant"),
]


#: HAPI's own JSON parser reports without a message id: classified by their wording.
TEXT_KINDS = [
    ("Unrecognized property", "structure"),
    ("Undefined element", "structure"),
    ("must be a simple value, not an Array", "cardinality"),
    ("must be an Array", "cardinality"),
    ("must be an Object, not an Array", "cardinality"),
    ("must have some content", "empty"),
    ("Array cannot be empty", "empty"),
    ("Error parsing JSON", "format"),
    ("primitive value must be", "format"),
]


def kind_of(message_id: str | None, code: str | None = None, message: str = "") -> str:
    """The family of a finding: cardinality, slice, value, code, extension, reference, structure,
    format, empty, invariant — from the HL7 message id, or the wording when there is none."""
    message_id = message_id or ""
    if message_id:
        for fragment, kind in KINDS:
            if fragment in message_id:
                return kind
    for fragment, kind in TEXT_KINDS:
        if fragment in message:
            return kind
    return message_id or code or "other"


_MARKER = re.compile(r"/\*[^*]*\*/")
_OF_TYPE = re.compile(r"\.ofType\([^)]*\)")
_PREDICATE = re.compile(r"\[url='[^']*'\]")


def normalise(location: str | None) -> str:
    """HL7-style FHIRPath without the nested-resource markers, ``ofType()``, ``[x]`` and
    ``[url='…']`` predicates (the two validators differ only in how they spell those)."""
    text = _MARKER.sub("", location or "")
    text = _OF_TYPE.sub("", text)
    text = _PREDICATE.sub("", text).replace("[x]", "")
    return text.rstrip(".")


# -- the two validators ----------------------------------------------------------------------------


def run_ours(corpus: Path, instances: list[dict[str, Any]]) -> tuple[dict[str, Outcome], float]:
    from fhir_dnacpr.validation import ValidationOptions, Validator, read_resource

    # configured as HAPI's FhirInstanceValidator is in the test server (see ValidationOptions.hapi)
    validator = Validator(options=ValidationOptions.hapi())
    validator.load_ig(uk_core_dir())
    validator.load_ig(REPO / "profiles")
    results: dict[str, Outcome] = {}
    started = time.perf_counter()
    for instance in instances:
        resource, issues = read_resource(corpus / instance["file"])
        if resource is not None:
            issues += validator.validate(resource, instance.get("profile"))
        results[instance["id"]] = _outcome(issues)
    return results, time.perf_counter() - started


def _outcome(issues: list[Issue]) -> Outcome:
    return Outcome(
        [
            Finding(
                normalise(i.location), kind_of(i.message_id, i.code, i.message), i.message_id or "", i.message
            )
            for i in issues
            if i.is_error
        ]
    )


def run_hapi(
    corpus: Path, instances: list[dict[str, Any]], jar: Path = JAR
) -> tuple[dict[str, Outcome], float]:
    if not jar.exists():
        subprocess.run(
            [str(REPO / "scripts" / "fhir-server"), "build"], check=True, stdout=subprocess.DEVNULL
        )
    with tempfile.TemporaryDirectory(prefix="hapi-") as tmp:
        jobs = Path(tmp) / "jobs.ndjson"
        output = Path(tmp) / "out.ndjson"
        jobs.write_text(
            "".join(
                json.dumps(
                    {
                        "id": i["id"],
                        "file": str(corpus / i["file"]),
                        "profiles": [i["profile"]] if i.get("profile") else [],
                    }
                )
                + "\n"
                for i in instances
            )
        )
        started = time.perf_counter()
        subprocess.run(
            [
                "java",
                "-Xmx2g",
                "-XX:+UseSerialGC",
                "-jar",
                str(jar),
                "validate",
                "--ig",
                str(REPO / "profiles"),
                "--ig",
                str(uk_core_dir()),
                "--jobs",
                str(jobs),
                "--output",
                str(output),
            ],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        results = {}
        for line in output.read_text().splitlines():
            row = json.loads(line)
            results[row["id"]] = hapi_outcome(row["outcome"])
    return results, elapsed


def hapi_outcome(outcome: dict[str, Any]) -> Outcome:
    found = []
    for issue in outcome.get("issue", ()):
        if issue.get("severity") not in ("error", "fatal"):
            continue
        message_id = next(
            (e.get("valueString") for e in issue.get("extension", ()) if e.get("url") == MESSAGE_ID), None
        ) or next((c.get("code") for c in (issue.get("details") or {}).get("coding", ())), None)
        location = (issue.get("expression") or issue.get("location") or [""])[0]
        found.append(
            Finding(
                normalise(location),
                kind_of(message_id, issue.get("code"), issue.get("diagnostics", "")),
                message_id or "",
                issue.get("diagnostics", ""),
            )
        )
    return Outcome(found)


# -- comparison ------------------------------------------------------------------------------------


@dataclass
class Comparison:
    instances: int = 0
    verdicts_agree: int = 0
    errors_total: int = 0
    errors_agree: int = 0
    verdict_differences: list[tuple[dict[str, Any], Outcome, Outcome]] = field(default_factory=list)
    location_differences: list[tuple[dict[str, Any], list[Finding], list[Finding]]] = field(
        default_factory=list
    )

    @property
    def verdict_agreement(self) -> float:
        return self.verdicts_agree / self.instances if self.instances else 1.0

    @property
    def location_agreement(self) -> float:
        return self.errors_agree / self.errors_total if self.errors_total else 1.0


def compare(
    instances: list[dict[str, Any]], ours: dict[str, Outcome], hapi: dict[str, Outcome]
) -> Comparison:
    result = Comparison()
    for instance in instances:
        mine, theirs = ours[instance["id"]], hapi.get(instance["id"], Outcome())
        result.instances += 1
        if mine.valid == theirs.valid:
            result.verdicts_agree += 1
        else:
            result.verdict_differences.append((instance, mine, theirs))
        keys_mine = {(f.location, f.kind) for f in mine.errors}
        keys_theirs = {(f.location, f.kind) for f in theirs.errors}
        union = keys_mine | keys_theirs
        result.errors_total += len(union)
        result.errors_agree += len(keys_mine & keys_theirs)
        only_mine = [f for f in mine.errors if (f.location, f.kind) not in keys_theirs]
        only_theirs = [f for f in theirs.errors if (f.location, f.kind) not in keys_mine]
        if only_mine or only_theirs:
            result.location_differences.append((instance, only_mine, only_theirs))
    return result


def report(result: Comparison, show: int) -> None:
    print(f"instances: {result.instances}")
    print(f"verdict disagreements: {len(result.verdict_differences)}")
    for instance, mine, theirs in result.verdict_differences[:show]:
        print(
            f"  [{instance['id']}] {instance['label']}: ours {'valid' if mine.valid else 'invalid'}, "
            f"HAPI {'valid' if theirs.valid else 'invalid'}"
        )
        for f in mine.errors[:4]:
            print(f"      ours: {f.location} [{f.kind}] {f.message[:150]}")
        for f in theirs.errors[:4]:
            print(f"      hapi: {f.location} [{f.kind}] {f.message[:150]}")
    labels = Counter()
    for _instance, only_mine, only_theirs in result.location_differences:
        for f in only_mine:
            labels[("ours-only", f.kind, f.message_id)] += 1
        for f in only_theirs:
            labels[("hapi-only", f.kind, f.message_id)] += 1
    print(f"error-location disagreements: {len(result.location_differences)} instances")
    for (side, kind, message_id), count in labels.most_common(show):
        print(f"  {side:9s} {count:4d} × [{kind}] {message_id}")
    for instance, only_mine, only_theirs in result.location_differences[:show]:
        print(f"  [{instance['id']}] {instance['label']}")
        for f in only_mine[:3]:
            print(f"      ours only: {f.location} [{f.kind}] {f.message[:150]}")
        for f in only_theirs[:3]:
            print(f"      hapi only: {f.location} [{f.kind}] {f.message[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="corpus folder (built fresh in a temp dir if absent)")
    parser.add_argument("--jar", type=Path, default=JAR)
    parser.add_argument("--sample", type=int, default=0, help="only every N-th instance (quick runs)")
    parser.add_argument("--show", type=int, default=40, help="how many disagreements to list")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        corpus = args.corpus or Path(tmp)
        if not (corpus / "manifest.json").exists():
            build(corpus)
        instances = json.loads((corpus / "manifest.json").read_text())["instances"]
        if args.sample > 1:
            instances = instances[:: args.sample]
        ours, ours_seconds = run_ours(corpus, instances)
        hapi, hapi_seconds = run_hapi(corpus, instances, args.jar)
        result = compare(instances, ours, hapi)
        report(result, args.show)
        print(f"ours_seconds: {ours_seconds:.2f}")
        print(f"hapi_seconds: {hapi_seconds:.2f}")
        print(f"verdict_agreement: {result.verdict_agreement:.4f}")
        print(f"location_agreement: {result.location_agreement:.4f}")


if __name__ == "__main__":
    main()
