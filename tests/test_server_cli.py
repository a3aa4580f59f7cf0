"""The push / pull / server commands, run as a user runs them, against the real HAPI server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from faultproxy import FaultProxy
from server_testdata import Synthetic
from token_server import TokenServer

from fhir_dnacpr.cli import pull as pull_cli
from fhir_dnacpr.cli import push as push_cli
from fhir_dnacpr.cli import server as server_cli
from fhir_dnacpr.server.checkpoint import CHECKPOINT_FILE

REPO = Path(__file__).resolve().parent.parent


def run(command, args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(command, args, env=env, catch_exceptions=False)


def test_usage_errors_need_no_server(tmp_path: Path) -> None:
    result = run(
        pull_cli.command,
        ["--server", "http://127.0.0.1:9/fhir", "--out", str(tmp_path), "--patient", "9990000017"],
    )
    assert result.exit_code == 2 and "not a valid NHS number" in result.output
    assert "9990000017" not in result.output, "the number is not echoed back"
    result = run(pull_cli.command, ["--server", "http://x/fhir", "--out", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 2 and "--mapping" in result.output
    result = run(push_cli.command, [str(tmp_path), "--server", "http://x/fhir", "--auth", "bearer"])
    assert result.exit_code == 2 and "--token-env" in result.output


@pytest.mark.server
def test_push_and_pull_commands(fhir_base_url: str, tmp_path: Path) -> None:
    data = Synthetic(records=6)
    out = data.write_bundles(tmp_path / "convert", per_bundle=4)
    result = run(push_cli.command, [str(out), "--server", fhir_base_url, "--bundle-size", "3"])
    assert result.exit_code == 0, result.output
    assert "created 13" in result.output
    summary = json.loads((out / "push-summary.json").read_text())
    assert summary["created"] == 13 and summary["bundle_size"] == 3

    pulled = tmp_path / "pulled"
    result = run(
        pull_cli.command, ["--server", fhir_base_url, "--out", str(pulled), "--patient", data.nhs[0]]
    )
    assert result.exit_code == 0, result.output
    assert data.nhs[0] not in result.output
    assert [json.loads(x)["id"] for x in (pulled / "Consent.ndjson").read_text().splitlines()] == [
        f"con-{data.tag}-0"
    ]


@pytest.mark.server
def test_push_exit_codes_for_rejects_and_for_a_server_that_goes_away(
    fhir_base_url: str, tmp_path: Path
) -> None:
    data = Synthetic(records=4)
    bad = data.write_bundles(tmp_path / "bad", per_bundle=4, overrides={1: data.consent(1, status="bogus")})
    result = run(push_cli.command, [str(bad), "--server", fhir_base_url])
    assert result.exit_code == 1 and "push-rejects.ndjson" in result.output
    with FaultProxy(fhir_base_url) as proxy:
        proxy.add("offline", match=lambda method, path: method == "POST")
        good = Synthetic(records=2).write_bundles(tmp_path / "good", per_bundle=1)
        result = run(
            push_cli.command, [str(good), "--server", proxy.base_url, "--retries", "1", "--concurrency", "1"]
        )
    assert result.exit_code == 3 and "Run the same command again to resume" in result.output


@pytest.mark.server
def test_server_check_reports_version_interactions_and_auth(fhir_base_url: str, tmp_path: Path) -> None:
    result = run(server_cli.command, ["check", fhir_base_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (
        report["fhirVersion"] == "4.0.1" and report["r4"] and report["transaction"] and report["bulkExport"]
    )
    assert "update" in report["resources"]["Consent"]["interactions"]
    assert report["auth"] == {"method": "NoAuth", "probe_status": 200, "ok": True}
    with TokenServer() as tokens, FaultProxy(fhir_base_url) as proxy:
        proxy.require_token = tokens.is_valid
        tokens.register_secret_client("svc", "pw-123")
        secret_file = tmp_path / "secret"
        secret_file.write_text("pw-123")
        args = [
            "check",
            proxy.base_url,
            "--auth",
            "client-secret",
            "--token-url",
            tokens.url,
            "--client-id",
            "svc",
        ]
        result = run(server_cli.command, [*args, "--secret-file", str(secret_file)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["auth"]["token"] == "obtained"
        result = run(
            server_cli.command,
            ["check", proxy.base_url, "--auth", "bearer", "--token-env", "T"],
            env={"T": "forged"},
        )
        assert result.exit_code == 1 and json.loads(result.output)["auth"]["ok"] is False
    result = run(server_cli.command, ["check", "http://127.0.0.1:9/fhir", "--retries", "0"])
    assert result.exit_code == 1 and json.loads(result.output)["reachable"] is False


@pytest.mark.server
def test_a_killed_push_resumes_from_its_checkpoint(fhir_base_url: str, tmp_path: Path) -> None:
    data = Synthetic(records=20)
    out = data.write_bundles(tmp_path / "convert", per_bundle=1)  # 20 bundles
    with FaultProxy(fhir_base_url) as proxy:
        args = [str(out), "--server", proxy.base_url, "--rate", "5", "--concurrency", "1"]
        code = "import sys; from fhir_dnacpr.cli.push import command; command(sys.argv[1:])"
        process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, stderr=subprocess.DEVNULL)
        checkpoint = out / CHECKPOINT_FILE
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if checkpoint.exists() and len(checkpoint.read_text().splitlines()) > 6:  # header + 6 bundles
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        acknowledged = len(checkpoint.read_text().splitlines()) - 1
        assert 6 <= acknowledged < 20
        killed_run = proxy.requests("POST")[0].correlation_id  # its last request may still be noted late
        result = run(push_cli.command, [str(out), "--server", proxy.base_url])
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "push-summary.json").read_text())
        assert summary["bundles_skipped"] == acknowledged
        resumed_posts = [s for s in proxy.requests("POST") if s.correlation_id != killed_run]
        assert len(resumed_posts) == 20 - acknowledged, "acknowledged bundles were not sent again"
    assert data.count(fhir_base_url) == 20
    for ref in data.all_refs():
        assert data.versions(fhir_base_url, ref) == 1
