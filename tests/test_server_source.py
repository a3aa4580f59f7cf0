"""Reading a convert output directory (as the real writers lay it out) into push bundles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.writers import open_writer
from fhir_dnacpr.server.source import open_plan, read_origins

RUN = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def record(n: int) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Organization", "id": "org-1", "name": "Synthetic Trust"},
        {
            "resourceType": "Patient",
            "id": f"pat-{n}",
            "managingOrganization": {"reference": "Organization/org-1"},
        },
        {
            "resourceType": "Consent",
            "id": f"con-{n}",
            "status": "active",
            "patient": {"reference": f"Patient/pat-{n}"},
        },
    ]


def convert_dir(tmp_path: Path, fmt: str, records: int, chunk_size: int = 10) -> Path:
    out = tmp_path / fmt
    with open_writer(
        fmt,
        out,
        ids=IdFactory(b"test-key"),
        source_file="export.csv",
        source_sha256="ab" * 32,
        run_time=RUN,
        chunk_size=chunk_size,
    ) as writer:
        for n in range(records):
            writer.write(f"export.csv, line {n + 2}", record(n))
    return out


def test_bundle_files_are_sent_as_they_are_without_a_size(tmp_path: Path) -> None:
    out = convert_dir(tmp_path, "bundle", records=7, chunk_size=10)
    plan = open_plan(out)
    bundles = list(plan.bundles())
    files = sorted(out.glob("bundle-*.json"))
    assert len(bundles) == len(files)
    for (wave, bundle), path in zip(bundles, files, strict=True):
        source = orjson.loads(path.read_bytes())
        assert wave == 1
        assert [e.ref for e in bundle.entries] == [
            f"{x['resource']['resourceType']}/{x['resource']['id']}" for x in source["entry"]
        ]
    first = bundles[0][1].entries
    consent = next(e for e in first if e.ref == "Consent/con-0")
    assert consent.origin == "export.csv, line 2"
    org = next(e for e in first if e.ref == "Organization/org-1")
    assert isinstance(org.origin, list) and org.origin[:2] == ["export.csv, line 2", "export.csv, line 3"]
    assert not plan.problems


def test_bundle_files_are_recut_into_closed_units(tmp_path: Path) -> None:
    out = convert_dir(tmp_path, "bundle", records=20, chunk_size=10)
    plan = open_plan(out, bundle_size=5)
    bundles = list(plan.bundles())
    body = [b for w, b in bundles if w == 1]
    held = [b for w, b in bundles if w == 2]
    assert held and all(e.resource_type == "Provenance" for b in held for e in b.entries)
    assert all(e.resource_type != "Provenance" for b in body for e in b.entries)
    for bundle in body:
        refs = {e.ref for e in bundle.entries}
        assert len(bundle.entries) <= 5
        for entry in bundle.entries:
            if entry.resource_type == "Consent":
                assert entry.resource["patient"]["reference"] in refs
    all_refs = {e.ref for _, b in bundles for e in b.entries}
    assert {f"Consent/con-{n}" for n in range(20)} <= all_refs
    numbers = [b.number for _, b in bundles]
    assert numbers == list(range(1, len(bundles) + 1))


def test_ndjson_layout_goes_in_dependency_waves(tmp_path: Path) -> None:
    out = convert_dir(tmp_path, "ndjson", records=5, chunk_size=100)
    bundles = list(open_plan(out, bundle_size=2).bundles())
    order = [(w, e.resource_type) for w, b in bundles for e in b.entries]
    waves = {t: w for w, t in order}
    assert waves["Organization"] < waves["Patient"] < waves["Consent"] < waves["Provenance"]
    assert sum(1 for _, t in order if t == "Consent") == 5
    assert sum(1 for _, t in order if t == "Organization") == 1


def test_bad_input_is_reported_with_its_place_and_the_rest_goes_on(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text(
        '{"resourceType":"Patient","id":"a"}\n{not json\n{"resourceType":"Patient"}\n\n'
        '{"resourceType":"Patient","id":"b"}\n'
    )
    plan = open_plan(tmp_path)
    refs = [e.ref for _, b in plan.bundles() for e in b.entries]
    assert refs == ["Patient/a", "Patient/b"]
    assert [p.origin for p in plan.problems] == ["Patient.ndjson, line 2", "Patient.ndjson, line 3"]
    assert "id" in plan.problems[1].message


def test_a_broken_bundle_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "bundle-00001.json").write_text("{")
    (tmp_path / "bundle-00002.json").write_text(
        '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p"}}]}'
    )
    plan = open_plan(tmp_path)
    assert [e.ref for _, b in plan.bundles() for e in b.entries] == ["Patient/p"]
    assert plan.problems[0].origin == "bundle-00001.json"


def test_origins_file_variants(tmp_path: Path) -> None:
    path = tmp_path / "entry-origins.ndjson"
    path.write_text(
        '{"resource":"Patient/a","origin":"f, line 1"}\n{"Consent/b":"f, line 2"}\nnot json\n\n'
        '{"resource":"Patient/a","origin":"f, line 9"}\n'
    )
    assert read_origins(path) == {"Patient/a": ["f, line 1", "f, line 9"], "Consent/b": "f, line 2"}
    assert read_origins(tmp_path / "missing.ndjson") == {}


def test_nothing_to_push(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_plan(tmp_path)
    with pytest.raises(FileNotFoundError):
        open_plan(tmp_path / "nope")
