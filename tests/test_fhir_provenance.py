"""Provenance: one per chunk, stable id per source file and chunk, targets exactly the chunk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_dnacpr import __version__
from fhir_dnacpr import canonical as c
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.provenance import build_provenance

IDS = IdFactory(b"test-key")
SHA = "3f" * 32
RUN = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
TARGETS = [
    {"resourceType": "Consent", "id": "a1"},
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "CarePlan", "id": "b1"},
]


def test_shape() -> None:
    provenance = build_provenance(TARGETS, "register.csv", SHA, RUN, 3, IDS)
    assert provenance == {
        "resourceType": "Provenance",
        "id": IDS.id_for("Provenance", SHA, "3"),
        "meta": {"profile": [c.PROFILE_UKCORE_PROVENANCE]},
        "target": [{"reference": "Consent/a1"}, {"reference": "Patient/p1"}, {"reference": "CarePlan/b1"}],
        "recorded": "2025-03-04T10:00:00+00:00",
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "assembler",
                            "display": "Assembler",
                        }
                    ]
                },
                "who": {"display": f"fhir-dnacpr {__version__}"},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": c.SOURCE_FILE_SHA256, "value": SHA},
                    "display": "register.csv",
                },
            }
        ],
    }


def test_id_is_stable_per_file_and_chunk_and_recorded_is_the_only_difference_between_runs() -> None:
    first = build_provenance(TARGETS, "register.csv", SHA, RUN, 1, IDS)
    rerun = build_provenance(TARGETS, "register.csv", SHA, RUN.replace(hour=11), 1, IDS)
    assert first["id"] == rerun["id"]
    assert {k: v for k, v in first.items() if k != "recorded"} == {
        k: v for k, v in rerun.items() if k != "recorded"
    }
    assert build_provenance(TARGETS, "register.csv", SHA, RUN, 2, IDS)["id"] != first["id"]
    assert build_provenance(TARGETS, "register.csv", "00" * 32, RUN, 1, IDS)["id"] != first["id"]


@pytest.mark.parametrize("name", ["/home/jsmith/exports/register.csv", "C:\\Users\\jsmith\\register.csv"])
def test_only_the_base_name_of_the_source_file_is_recorded(name: str) -> None:
    assert build_provenance(TARGETS, name, SHA, RUN, 1, IDS)["entity"][0]["what"]["display"] == "register.csv"


def test_run_time_needs_a_zone_and_targets_are_required() -> None:
    with pytest.raises(ValueError):
        build_provenance(TARGETS, "f.csv", SHA, datetime(2025, 1, 1), 1, IDS)
    with pytest.raises(ValueError):
        build_provenance([], "f.csv", SHA, RUN, 1, IDS)


def test_valid_against_r4_and_uk_core(shared) -> None:
    from fhir_dnacpr.validation import Validator

    validator = Validator()
    validator.load_ig(shared / "fhir-packages" / "uk-core")
    issues = validator.validate(build_provenance(TARGETS, "register.csv", SHA, RUN, 1, IDS))
    assert [i for i in issues if "dom-6" not in i.message] == []
