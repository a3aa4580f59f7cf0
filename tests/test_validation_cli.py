"""``fhir-dnacpr validate``: files, folders, Bundles, NDJSON; table/json/outcome; exit codes; and
nothing from the records' free text on screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhir_dnacpr.cli.validate import command
from fhir_dnacpr.fhirxml import to_xml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "profiles" / "examples"
DNACPR = "https://fhir-dnacpr.github.io/fhir/StructureDefinition/DnacprDecision"
SECRET = "Jane Doe refused"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def invoke(*args: str):
    return CliRunner().invoke(command, [str(a) for a in args])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = example("consent-valid-not-for-cpr.json")
    bad = example("consent-invalid-no-patient.json")
    paths = {
        "good": tmp_path / "good.json",
        "bad": tmp_path / "bad.json",
        "xml": tmp_path / "good.xml",
        "ndjson": tmp_path / "many.ndjson",
        "bundle": tmp_path / "bundle.json",
    }
    paths["good"].write_text(json.dumps(good))
    paths["bad"].write_text(json.dumps(bad))
    paths["xml"].write_bytes(to_xml(good))
    paths["ndjson"].write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n{not json\n")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:0e7c1f5e-8a8e-4c39-9a55-0f3f2a6c1a01", "resource": good},
            {"fullUrl": "urn:uuid:0e7c1f5e-8a8e-4c39-9a55-0f3f2a6c1a02", "resource": bad},
        ],
    }
    paths["bundle"].write_text(json.dumps(bundle))
    return paths


def test_valid_files_exit_zero(files):
    result = invoke(files["good"], files["xml"])
    assert result.exit_code == 0, result.output
    assert "2 resource(s) in 2 file(s): 0 with errors" in result.output


def test_errors_exit_one_and_are_tabulated(files):
    result = invoke(files["bad"], "--quiet")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].split() == ["file", "resource", "severity", "location", "message"]
    assert "Consent/consent-invalid-no-patient" in result.output and "Consent.patient" in result.output


def test_ndjson_lines_are_located_and_unreadable_lines_are_fatal(files):
    result = invoke(files["ndjson"], "--format", "json")
    assert result.exit_code == 1
    rows = json.loads(result.output[: result.output.rindex("]") + 1])
    assert {r["line"] for r in rows if r["severity"] == "error"} == {3}
    assert [r["line"] for r in rows if r["severity"] == "fatal"] == [4]


def test_bundle_entries_are_located_inside_the_bundle(files):
    result = invoke(files["bundle"], "--format", "json", "--quiet")
    assert result.exit_code == 1
    rows = json.loads(result.output)
    assert rows and all(r["location"].startswith("Bundle.entry[1].resource") for r in rows)
    assert {r["resource"] for r in rows} == {"Consent/consent-invalid-no-patient"}


def test_outcome_format_is_one_outcome_or_a_bundle_of_them(files):
    single = json.loads(invoke(files["good"], "--format", "outcome", "--quiet").output)
    assert single["resourceType"] == "OperationOutcome"
    several = invoke(files["good"], files["bad"], "--format", "outcome", "--quiet")
    bundle = json.loads(several.output)
    assert bundle["resourceType"] == "Bundle" and len(bundle["entry"]) == 2
    named = [e["resource"]["extension"][0]["valueString"] for e in bundle["entry"]]
    assert named == [str(files["good"]), str(files["bad"])]


def test_folders_are_searched_and_non_fhir_files_skipped_with_a_note(files, tmp_path):
    (tmp_path / "summary.json").write_text('{"records": 3}')
    result = invoke(tmp_path)
    assert result.exit_code == 1
    assert "skipped" in result.output and "summary.json" in result.output
    assert "7 resource(s) in 5 file(s)" in result.output  # 3 NDJSON lines, one unreadable


def test_profile_option_applies_to_resources_of_its_type(files, tmp_path):
    consent = example("consent-valid-not-for-cpr.json")
    consent.pop("meta")
    del consent["provision"]
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(consent))
    assert invoke(path, "--quiet").exit_code == 0
    assert invoke(path, "--profile", DNACPR, "--quiet").exit_code == 1


def test_usage_errors_exit_two(files):
    assert invoke(files["good"], "--profile", "https://example.org/nothing").exit_code == 2
    assert invoke("/no/such/file.json").exit_code == 2
    assert invoke().exit_code == 2


def test_free_text_never_reaches_the_output(tmp_path):
    consent = example("consent-valid-not-for-cpr.json")
    consent["extension"].append(
        {
            "url": "https://fhir-dnacpr.github.io/fhir/StructureDefinition/dnacpr-clinical-rationale",
            "valueString": f"  {SECRET}",
        }
    )
    consent["dateTime"] = SECRET
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(consent))
    for fmt in ("table", "json", "outcome"):
        result = invoke(path, "--format", fmt)
        assert result.exit_code == 1
        assert "Jane" not in result.output


def test_an_ig_can_be_loaded(files):
    uk_core = REPO.parent / "shared" / "fhir-packages" / "uk-core"
    if not uk_core.is_dir():
        pytest.skip("UK Core not available")
    result = invoke(files["good"], "--ig", uk_core, "--quiet")
    assert result.exit_code == 0, result.output
