"""Loading specs: every problem is found before any data is read, each with its line."""

from __future__ import annotations

import pickle
import textwrap
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhir_dnacpr.cli.mapping import command
from fhir_dnacpr.mapping import SpecError, load_spec, spec_from_text
from fhir_dnacpr.sources.base import Origin, RawRecord

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = """\
source: {format: csv}
source_system: https://example.org/register
record_id: id
patient:
  nhs_number: nhs
decision:
  decision: {path: status, map: {DNACPR: not-for-cpr}}
  decision_date: decided
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(SpecError) as caught:
        spec_from_text(textwrap.dedent(text))
    return [(p.line, p.key, p.problem) for p in caught.value.problems]


def test_minimal_spec_loads() -> None:
    spec = spec_from_text(MINIMAL)
    assert spec.yields == ("decision",)
    assert spec.format == "csv"


def test_every_problem_is_reported_with_its_line() -> None:
    found = problems(
        """\
        source: {format: csv, delimter: ";"}
        source_system: not a uri
        record_id: id
        patient:
          nhs_numbr: nhs
          birth_date: {path: dob, formats: ["%y-%m-%d"]}
        decision:
          decision: {path: s, map: {Y: maybe}}
          decision_date: d
          review_date: {path: r, split: ";"}
          capacity: {path: c, true: [Y]}
        """
    )
    lines = {line for line, _, _ in found}
    assert {1, 2, 5, 6, 8, 10, 11} <= lines
    keys = {key for _, key, _ in found}
    assert {"source.delimter", "source_system", "patient.nhs_numbr", "decision.decision.map.Y"} <= keys


def test_unknown_keys_suggest_the_close_name() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_text(MINIMAL + "  reveiw_date: r\n")
    [problem] = caught.value.problems
    assert problem.line == 9 and "review_date" in problem.fix


def test_yaml_syntax_errors_have_a_line() -> None:
    [(line, key, _what)] = problems("source: {format: csv\nrecord_id: [\n")
    assert key == "(yaml)" and line is not None


def test_required_sections_and_keys() -> None:
    found = problems("source: {format: xml}\n")
    keys = {key for _, key, _ in found}
    assert {"source.record_path", "source_system", "record_id", "patient"} <= keys


def test_required_model_fields_must_be_mapped() -> None:
    found = problems(MINIMAL.replace("  decision_date: decided\n", ""))
    assert any("decision_date is required" in what for _, _, what in found)


def test_yes_and_no_map_keys_stay_text() -> None:
    spec = spec_from_text(MINIMAL + "  discussed_with_patient: {path: talked, map: {Yes: true, No: false}}\n")
    raw = RawRecord(
        Origin("t.csv", line=2),
        data={"id": "1", "nhs": "9991000011", "status": "DNACPR", "decided": "2024-01-01", "talked": "yes"},
    )
    assert spec.map(raw, today=date(2024, 2, 1)).record.decision.discussed_with_patient is True


def test_xpath_syntax_and_unknown_prefix_are_spec_errors() -> None:
    found = problems(
        """\
        source: {format: xml, record_path: /r/f}
        source_system: https://example.org/x
        record_id: "@id"
        patient:
          nhs_number: "zz:Nhs"
        decision:
          decision: "f[["
          decision_date: d
        """
    )
    assert {line for line, _, _ in found} >= {5, 7}


def test_spec_pickles_as_its_text() -> None:
    spec = spec_from_text(MINIMAL, today=date(2024, 1, 1))
    clone = pickle.loads(pickle.dumps(spec))
    assert clone.today == date(2024, 1, 1) and clone.yields == spec.yields


@pytest.mark.parametrize("name", ["epaccs", "respect", "acp-app"])
def test_example_specs_load(name: str) -> None:
    load_spec(EXAMPLES / name / "mapping.yaml")


def test_cli_check_exits_0_for_a_good_spec_and_2_with_located_problems(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(command, ["check", str(EXAMPLES / "epaccs" / "mapping.yaml")])
    assert good.exit_code == 0 and "ok" in good.output
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text(MINIMAL.replace("nhs_number", "nhs_numbr"))
    bad = runner.invoke(command, ["check", str(bad_spec)])
    assert bad.exit_code == 2
    assert f"{bad_spec}:5: patient.nhs_numbr" in bad.output
    missing = runner.invoke(command, ["check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
