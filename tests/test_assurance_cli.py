"""``fhir-dnacpr audit`` end to end: FHIR files, legacy exports with a mapping spec, rules files."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from fhir_dnacpr.assurance import AuditConfig, audit
from fhir_dnacpr.assurance.synthetic import scenario
from fhir_dnacpr.cli.audit import command

AS_OF = "2023-01-01"


@pytest.fixture(scope="module")
def data():
    return scenario(seed=9, background=400)


def write_fhir(records, folder: Path, *, bundles: bool = False) -> Path:
    """The records as FHIR R4 (the project's builder), as NDJSON per type or as one Bundle per record."""
    from fhir_dnacpr.fhir.build import build_resources
    from fhir_dnacpr.fhir.ids import IdFactory

    ids = IdFactory(b"INSECURE-EXAMPLE-KEY")
    folder.mkdir(parents=True, exist_ok=True)
    if bundles:
        for i, record in enumerate(records):
            entries = [{"resource": r} for r in build_resources(record, ids)]
            (folder / f"bundle-{i:05d}.json").write_bytes(
                orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
            )
        return folder
    seen: set[str] = set()
    files: dict[str, list[bytes]] = {}
    for record in records:
        for resource in build_resources(record, ids):
            ref = f"{resource['resourceType']}/{resource['id']}"
            if ref not in seen:
                seen.add(ref)
                files.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in files.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(command, list(args), catch_exceptions=False)


def test_audit_of_fhir_ndjson_matches_auditing_the_records(data, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.fhir.parse")
    folder = write_fhir(data.records, tmp_path / "fhir")
    out = tmp_path / "out"
    result = invoke(str(folder), "--out", str(out), "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    direct = audit(data.records, AuditConfig(as_of=date.fromisoformat(AS_OF)))
    assert summary["records"] == len(data.records) == summary["input_records"]
    assert summary["rejects"] == 0 and not (out / "rejects.csv").exists()
    assert summary["findings_by_rule"] == dict(sorted(direct.rule_counts.items()))
    for name in ("report.html", "findings.csv", "metrics.csv", "measure-report.json"):
        assert (out / name).is_file()
    # origins point back into the FHIR files
    with (out / "findings.csv").open() as f:
        assert all("Consent.ndjson, line " in row["origins"] for row in csv.DictReader(f))


def test_audit_of_fhir_bundles(data, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.fhir.parse")
    records = data.records[:60]
    folder = write_fhir(records, tmp_path / "bundles", bundles=True)
    out = tmp_path / "out"
    assert invoke(str(folder), "--out", str(out), "--as-of", AS_OF, "-q").exit_code == 0
    assert json.loads((out / "summary.json").read_text())["records"] == len(records)


def test_unreadable_fhir_lines_become_located_rejects(data, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.fhir.parse")
    folder = write_fhir(data.records[:20], tmp_path / "fhir")
    consent = folder / "Consent.ndjson"
    lines = consent.read_bytes().splitlines()
    lines[3] = b"{not json"
    broken = orjson.loads(lines[5])
    broken.pop("patient")
    lines[5] = orjson.dumps(broken)
    consent.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    result = invoke(str(folder), "--out", str(out), "--as-of", AS_OF, "-q")
    assert result.exit_code == 1
    with (out / "rejects.csv").open() as f:
        rejects = list(csv.DictReader(f))
    assert {r["origin"] for r in rejects} == {f"{consent}, line 4", f"{consent}, line 6"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] + summary["rejects"] == summary["input_records"] == 20


def test_legacy_export_through_mapping_spec(examples_dir, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.mapping")
    out = tmp_path / "out"
    result = invoke(
        str(examples_dir / "epaccs" / "register.csv"),
        "--mapping",
        str(examples_dir / "epaccs" / "mapping.yaml"),
        "--out",
        str(out),
        "--as-of",
        AS_OF,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] > 0
    assert summary["records"] + summary["rejects"] == summary["input_records"]
    if summary["rejects"]:
        assert result.exit_code == 1
        with (out / "rejects.csv").open() as f:
            assert all("register.csv, line" in r["origin"] and r["message"] for r in csv.DictReader(f))
    with (out / "findings.csv").open() as f:
        assert all("register.csv" in r["origins"] for r in csv.DictReader(f))


def test_rules_file_switches_rules_and_thresholds(data, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.fhir.parse")
    folder = write_fhir(data.records, tmp_path / "fhir")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  no-review-date: {enabled: false}\n"
        "  review-overdue: false\n"
        "  blanket-cluster: {min_cluster_size: 7}\n"
    )
    out = tmp_path / "out"
    assert (
        invoke(str(folder), "--out", str(out), "--rules", str(rules), "--as-of", AS_OF, "-q").exit_code == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert (
        "no-review-date" not in summary["findings_by_rule"]
        and "review-overdue" not in summary["findings_by_rule"]
    )
    assert summary["clusters"] == 0 and summary["cluster_settings"]["min_cluster_size"] == 7


def test_usage_errors(tmp_path, examples_dir) -> None:
    assert invoke("--out", str(tmp_path / "o")).exit_code == 2
    not_fhir = invoke(str(examples_dir / "epaccs" / "register.csv"), "--out", str(tmp_path / "o"))
    assert not_fhir.exit_code == 2 and "--mapping" in not_fhir.output
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("rules:\n  no-such-rule: false\n")
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "Consent.ndjson").write_text("")
    result = invoke(str(folder), "--out", str(tmp_path / "o"), "--rules", str(bad_rules))
    assert result.exit_code == 2 and "no-such-rule" in result.output


def test_show_identifiers_flag(data, tmp_path) -> None:
    pytest.importorskip("fhir_dnacpr.fhir.parse")
    folder = write_fhir(data.records[:40], tmp_path / "fhir")
    out = tmp_path / "out"
    invoke(str(folder), "--out", str(out), "--as-of", AS_OF, "--show-identifiers", "-q")
    assert json.loads((out / "summary.json").read_text())["identifiers_shown"] is True
    assert "IDENTIFIERS ARE SHOWN" in (out / "report.html").read_text()
