"""Writers: transaction Bundles (JSON, XML) and Bulk Data NDJSON, their identity rules and sidecars."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import care_records
from test_fhir_build import DAUGHTER, DECISION, PATIENT, PLAN, RESPECT
from test_fhir_parse import without_local_origin

from fhir_dnacpr.fhir.build import build_resources
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.parse import index_resources, parse_records
from fhir_dnacpr.fhir.writers import ORIGINS_FILE, PLACEHOLDER_BASE, open_writer
from fhir_dnacpr.fhirxml import parse_xml
from fhir_dnacpr.model import CareRecord

IDS = IdFactory(b"writer-test-key")
SHA = "ab" * 32
RUN = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def write_all(fmt: str, out: Path, records: list[CareRecord], chunk_size: int = 100, **kwargs):
    issues = []
    with open_writer(fmt, out, ids=IDS, source_file="register.csv", source_sha256=SHA, run_time=RUN,
                     chunk_size=chunk_size, **kwargs) as writer:  # fmt: skip
        for i, record in enumerate(records):
            issues += writer.write(f"register.csv, line {i + 2}", build_resources(record, IDS))
    counts = writer.close()
    return counts, issues + writer.closing_issues


def bundles(out: Path) -> list[dict]:
    return [orjson.loads(p.read_bytes()) for p in sorted(out.glob("bundle-*.json"))]


def ndjson(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def ref(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def other_patient_records(n: int) -> list[CareRecord]:
    """n ReSPECT records: several per patient, so Patient/Practitioner/Organization repeat."""
    records = []
    for i in range(n):
        source = replace(DECISION.source, record_id=f"RS-{i:06d}")
        patient = PATIENT if i % 3 else replace(PATIENT, nhs_number="9990001200")
        decision = replace(DECISION, source=source, patient=patient)
        plan = replace(PLAN, source=source, patient=patient, cpr_decision_record_id=source.record_id)
        records.append(CareRecord(decision, plan))
    return records


# --- transaction bundles ----------------------------------------------------------------------------


def test_bundle_entries_are_puts_with_absolute_full_urls(tmp_path: Path) -> None:
    counts, issues = write_all("bundle", tmp_path, [RESPECT])
    assert issues == []
    (bundle,) = bundles(tmp_path)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "transaction")
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": ref(resource)}
        assert entry["fullUrl"] == f"{PLACEHOLDER_BASE}/{ref(resource)}"
    assert counts == {
        "Consent": 1, "Patient": 1, "Practitioner": 2, "Organization": 2, "RelatedPerson": 2,
        "DocumentReference": 1, "CarePlan": 1, "Condition": 2, "Provenance": 1,
    }  # fmt: skip
    assert sum(counts.values()) == len(bundle["entry"])


def test_base_url_can_be_the_servers(tmp_path: Path) -> None:
    write_all("bundle", tmp_path, [RESPECT], base_url="http://localhost:8080/fhir/")
    assert bundles(tmp_path)[0]["entry"][0]["fullUrl"].startswith("http://localhost:8080/fhir/Consent/")


def test_chunks_hold_whole_records_never_repeat_an_entry_and_end_with_their_provenance(
    tmp_path: Path,
) -> None:
    records = other_patient_records(10)
    counts, issues = write_all("bundle", tmp_path, records, chunk_size=25)
    assert issues == []
    written = bundles(tmp_path)
    assert len(written) > 1
    seen_consents = []
    for number, bundle in enumerate(written, start=1):
        refs = [ref(e["resource"]) for e in bundle["entry"]]
        assert len(refs) == len(set(refs)) <= 25
        *data, provenance = [e["resource"] for e in bundle["entry"]]
        assert provenance["resourceType"] == "Provenance"
        assert provenance["id"] == IDS.id_for("Provenance", SHA, str(number))
        assert [t["reference"] for t in provenance["target"]] == [ref(r) for r in data]
        # Every reference inside the bundle resolves inside it: records are never split.
        for resource in data:
            for value in orjson.dumps(resource).decode().split('"reference":"')[1:]:
                assert value.split('"', 1)[0] in refs
        seen_consents += [r for r in refs if r.startswith("Consent/")]
    assert len(seen_consents) == len(set(seen_consents)) == 10
    assert sum(len(b["entry"]) for b in written) == sum(counts.values())


def test_a_record_bigger_than_a_chunk_gets_a_bundle_of_its_own(tmp_path: Path) -> None:
    write_all("bundle", tmp_path, [RESPECT, RESPECT], chunk_size=5)
    written = bundles(tmp_path)
    assert [len(b["entry"]) for b in written] == [13, 13]  # 12 resources + Provenance each


def test_identical_repeats_are_dropped_conflicting_ones_replaced_and_reported(tmp_path: Path) -> None:
    moved = replace(PATIENT, postcode="LS1 1AA")
    second = CareRecord(replace(DECISION, source=replace(DECISION.source, record_id="RS-2"), patient=moved))
    _, issues = write_all("bundle", tmp_path, [RESPECT, RESPECT, second])
    (bundle,) = bundles(tmp_path)
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 1
    assert patients[0]["address"][0]["postalCode"] == "LS1 1AA"  # the later record wins
    (issue,) = issues
    assert issue.message_id == "WRITE_CONFLICTING_DUPLICATE"
    assert issue.location == ref(patients[0])
    assert "line 4" in issue.message and "line 3" in issue.message
    assert "LS1" not in issue.message  # says where, never what


def test_two_versions_of_a_party_in_one_record_are_resolved_with_an_issue(tmp_path: Path) -> None:
    other = replace(DAUGHTER, phone="07700 900999")
    record = CareRecord(replace(DECISION, others_consulted=(DAUGHTER,)), replace(PLAN, lpa=(other,)))
    _, issues = write_all("bundle", tmp_path, [record])
    assert [i.message_id for i in issues] == ["WRITE_CONFLICTING_DUPLICATE"]
    (bundle,) = bundles(tmp_path)
    refs = [ref(e["resource"]) for e in bundle["entry"]]
    assert len(refs) == len(set(refs))


def test_entry_origins_map_every_entry_back_to_its_source_records(tmp_path: Path) -> None:
    records = other_patient_records(4)
    write_all("bundle", tmp_path, records, chunk_size=30)
    origins = ndjson(tmp_path / ORIGINS_FILE)
    by_file: dict[str, set[str]] = {}
    for line in origins:
        by_file.setdefault(line["file"], set()).add(line["resource"])
    for path in sorted(tmp_path.glob("bundle-*.json")):
        entries = {ref(e["resource"]) for e in orjson.loads(path.read_bytes())["entry"]}
        assert by_file[path.name] == {r for r in entries if not r.startswith("Provenance/")}
    patient = f"Patient/{IDS.id_for('Patient', PATIENT.nhs_number)}"
    lines_for_patient = sorted(o["origin"] for o in origins if o["resource"] == patient)
    assert lines_for_patient == ["register.csv, line 3", "register.csv, line 4"]  # records 2 and 3 (1-based)


def test_output_is_byte_identical_on_a_rerun(tmp_path: Path) -> None:
    records = other_patient_records(6)
    for fmt in ("bundle", "ndjson"):
        write_all(fmt, tmp_path / f"{fmt}-1", records, chunk_size=20)
        write_all(fmt, tmp_path / f"{fmt}-2", records, chunk_size=20)
        first = {p.name: p.read_bytes() for p in (tmp_path / f"{fmt}-1").iterdir()}
        second = {p.name: p.read_bytes() for p in (tmp_path / f"{fmt}-2").iterdir()}
        assert first == second


@settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    deadline=None,
)
@given(st.lists(care_records(), min_size=1, max_size=8), st.integers(2, 40))
def test_bundles_read_back_as_the_records_written(tmp_path_factory, records, chunk_size) -> None:
    out = tmp_path_factory.mktemp("bundles")
    _, issues = write_all("bundle", out, records, chunk_size=chunk_size)
    for bundle in bundles(out):
        refs = [ref(e["resource"]) for e in bundle["entry"]]
        assert len(refs) == len(set(refs))
    versions: dict[str, dict] = {}
    for record in records:
        for resource in build_resources(record, IDS):
            if versions.setdefault(ref(resource), resource) != resource:
                return  # records share a party id with different details: the later one wins (tested above)
    assert issues == []
    keys = [
        k for r in records for k in {(i.source.system, i.source.record_id) for i in (r.decision, r.plan) if i}
    ]
    if len(keys) != len(set(keys)):
        return  # two records share a source id: they pair differently (documented)
    pool = index_resources(e["resource"] for b in bundles(out) for e in b["entry"])
    result = parse_records(pool)
    expected = [without_local_origin(r) for r in records]
    remaining = list(result.records)
    for record in expected:
        remaining.remove(record)
    assert remaining == []


# --- NDJSON ------------------------------------------------------------------------------------------


def test_ndjson_layout_each_resource_once_per_run(tmp_path: Path) -> None:
    records = other_patient_records(9)
    counts, issues = write_all("ndjson", tmp_path, records, chunk_size=10)
    assert issues == []
    files = sorted(p.name for p in tmp_path.iterdir())
    types = (
        "CarePlan",
        "Condition",
        "Consent",
        "DocumentReference",
        "Organization",
        "Patient",
        "Practitioner",
    )
    types += ("Provenance", "RelatedPerson")
    assert files == sorted([f"{t}.ndjson" for t in types] + [ORIGINS_FILE])
    everything: list[dict] = []
    for path in tmp_path.glob("[A-Z]*.ndjson"):
        raw = path.read_bytes()
        assert raw.endswith(b"\n") and b"\n\n" not in raw
        resources = ndjson(path)
        assert {r["resourceType"] for r in resources} == {path.stem}
        assert counts[path.stem] == len(resources)
        everything += resources
    refs = [ref(r) for r in everything]
    assert len(refs) == len(set(refs))
    assert counts["Patient"] == 2 and counts["Consent"] == 9


def test_ndjson_provenance_targets_cover_every_resource_exactly_once(tmp_path: Path) -> None:
    write_all("ndjson", tmp_path, other_patient_records(9), chunk_size=10)
    provenances = ndjson(tmp_path / "Provenance.ndjson")
    targets = [t["reference"] for p in provenances for t in p["target"]]
    written = [ref(r) for p in tmp_path.glob("[A-Z]*.ndjson") if p.stem != "Provenance" for r in ndjson(p)]
    assert sorted(targets) == sorted(written)
    assert all(len(p["target"]) >= 10 for p in provenances[:-1])  # a chunk closes at a record boundary
    assert [p["id"] for p in provenances] == [
        IDS.id_for("Provenance", SHA, str(n)) for n in range(1, len(provenances) + 1)
    ]


def test_ndjson_keeps_the_first_version_and_reports_a_later_different_one(tmp_path: Path) -> None:
    moved = replace(PATIENT, postcode="LS1 1AA")
    second = CareRecord(replace(DECISION, source=replace(DECISION.source, record_id="RS-2"), patient=moved))
    _, issues = write_all("ndjson", tmp_path, [RESPECT, second])
    (patient,) = ndjson(tmp_path / "Patient.ndjson")
    assert patient["address"][0]["postalCode"] == PATIENT.postcode
    assert [i.message_id for i in issues] == ["WRITE_CONFLICTING_DUPLICATE"]
    origins = ndjson(tmp_path / ORIGINS_FILE)
    assert {o["origin"] for o in origins if o["resource"] == ref(patient)} == {
        "register.csv, line 2",
        "register.csv, line 3",
    }


def test_ndjson_folder_reads_back_as_the_records(tmp_path: Path) -> None:
    records = other_patient_records(5)
    write_all("ndjson", tmp_path, records)
    pool = index_resources(r for p in sorted(tmp_path.glob("[A-Z]*.ndjson")) for r in ndjson(p))
    remaining = parse_records(pool).records
    for record in records:
        remaining.remove(record)
    assert remaining == []


# --- FHIR XML -----------------------------------------------------------------------------------------


def test_xml_bundles_carry_the_same_content_as_json(tmp_path: Path) -> None:
    records = other_patient_records(4)
    write_all("bundle", tmp_path / "json", records, chunk_size=30)
    write_all("xml", tmp_path / "xml", records, chunk_size=30)
    json_files = sorted((tmp_path / "json").glob("bundle-*.json"))
    xml_files = sorted((tmp_path / "xml").glob("bundle-*.xml"))
    assert [p.stem for p in json_files] == [p.stem for p in xml_files]
    for json_file, xml_file in zip(json_files, xml_files, strict=True):
        parsed, issues = parse_xml(xml_file.read_bytes())
        assert issues == []
        assert parsed == orjson.loads(json_file.read_bytes())
    assert {o["file"] for o in ndjson(tmp_path / "xml" / ORIGINS_FILE)} == {p.name for p in xml_files}


# --- folder and argument safety -----------------------------------------------------------------------


def test_existing_output_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    write_all("ndjson", tmp_path, [RESPECT])
    with pytest.raises(FileExistsError):
        write_all("ndjson", tmp_path, [RESPECT])
    (tmp_path / "notes.txt").write_text("mine")
    counts, _ = write_all("ndjson", tmp_path, [CareRecord(DECISION)], overwrite=True)
    assert "CarePlan" not in counts and not (tmp_path / "CarePlan.ndjson").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [("csv", {}), ("bundle", {"chunk_size": 1}), ("bundle", {"run_time": datetime(2025, 1, 1)})],
)
def test_bad_arguments_are_refused(tmp_path: Path, fmt: str, kwargs: dict) -> None:
    options = {"ids": IDS, "source_file": "f.csv", "source_sha256": SHA, "run_time": RUN, **kwargs}
    with pytest.raises(ValueError):
        open_writer(fmt, tmp_path, **options)


def test_a_different_version_in_a_later_bundle_is_reported_not_silent(tmp_path: Path) -> None:
    moved = replace(PATIENT, postcode="LS1 1AA")
    second = CareRecord(replace(DECISION, source=replace(DECISION.source, record_id="RS-2"), patient=moved))
    same = CareRecord(replace(DECISION, source=replace(DECISION.source, record_id="RS-3"), patient=moved))
    _, issues = write_all("bundle", tmp_path, [RESPECT, second, same], chunk_size=2)
    assert len(bundles(tmp_path)) == 3, "each record in a bundle of its own"
    (issue,) = issues  # the third record repeats the second's version: nothing to say
    assert issue.message_id == "WRITE_CONFLICTING_DUPLICATE"
    assert issue.location.startswith("Patient/")
    assert "line 3" in issue.message and "bundle-00001.json" in issue.message
    assert "bundle-00002.json" in issue.message and "LS1" not in issue.message
