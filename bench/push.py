"""Push throughput against the real HAPI FHIR test server, and a naive baseline in the same run.

Generates ``--n`` small synthetic resources (Patient + Consent pairs, keyed deterministic ids) per
bundle size and pushes them with ``Pusher`` in transaction mode at bundle sizes 10, 50, 100 and 500
(each size under its own ids, so every write is a create and the sizes compare fairly). The
baseline is what a naive client does: one ``PUT Type/id`` per resource over a new connection each
time, sequentially, measured on ``--naive-sample`` resources. The measurements are *paired and
round-robin*: each size's push runs in ``--segments`` parts, the sizes take turns, and a slice of the
naive sample runs just before each part, since the machine is shared and the database grows as the run
goes on. Both paths' inputs are made before their clocks start, and both run on a server warmed up
by ``--warmup`` resources first. The speed-up is the best bundle size's rate over the naive rate
measured alongside it. Prints resources/s per bundle size, then ``push_best_resources_per_s`` and
``push_speedup_vs_naive`` (target ≥ 10).

Uses $FHIR_BASE_URL, else starts the project's server with ``scripts/fhir-server start`` (and stops
it afterwards if it started it). Usage: ``python bench/push.py [--n 100000] [--concurrency 2]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import report
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.server import FhirClient, Pusher, RetryPolicy
from fhir_dnacpr.server.bundles import PushBundle, PushEntry, pack
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

REPO = Path(__file__).resolve().parent.parent
NHS = "https://fhir.nhs.uk/Id/nhs-number"
# The run keeps 4 x 10^5 resources and their indexes in in-memory H2, all on the JVM heap: with the
# serial collector and a small young generation, GC pauses took ~18 % of the server's time (jstat).
# A parallel collector with a 2 GB young generation brings that to ~4 %. Both paths hit the same server.
BENCH_JAVA_OPTS = "-Xms4g -Xmx8g -Xmn2g -XX:+UseParallelGC"


def nhs_number(i: int) -> str:
    """A valid synthetic 999-range NHS number for index i (skipping stems with no check digit)."""
    stem = 999_000_000 + (i * 7) % 1_000_000
    while True:
        digit = nhs_number_check_digit(str(stem))
        if digit is not None:
            return f"{stem}{digit}"
        stem = 999_000_000 + (stem + 1) % 1_000_000


def pair(ids: IdFactory, namespace: str, i: int) -> list[dict[str, Any]]:
    """One record's resources: a Patient and its DNACPR Consent (small, as in the brief)."""
    patient_id = ids.id_for("Patient", namespace, str(i))
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": NHS, "value": nhs_number(i)}],
        "name": [{"family": "Benchmark", "given": [f"P{i}"]}],
        "gender": "female" if i % 2 else "male",
        "birthDate": f"19{30 + i % 60:02d}-0{1 + i % 9}-1{i % 10}",
    }
    consent = {
        "resourceType": "Consent",
        "id": ids.id_for("Consent", namespace, str(i)),
        "identifier": [{"system": f"urn:fhir-dnacpr-bench:{namespace}", "value": f"R{i}"}],
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes", "code": "dnr"}
                ]
            }
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policy": [{"uri": "https://www.resus.org.uk/library/additional-guidance/guidance-resuscitation"}],
        "provision": {
            "type": "deny",
            "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "89666000"}]}],
        },
    }
    return [patient, consent]


def plan(
    ids: IdFactory, namespace: str, first: int, resources: int, size: int
) -> Iterator[tuple[int, PushBundle]]:
    """Bundles of ``size`` for records ``first//2 …``; one wave (each unit carries its Patient)."""
    start = first // 2
    units = ([PushEntry.of(r) for r in pair(ids, namespace, i)] for i in range(start, start + resources // 2))
    for bundle in pack(units, size):
        yield 1, bundle


def naive_resources(ids: IdFactory, namespace: str, resources: int, first: int = 0) -> list[dict[str, Any]]:
    """The naive client's input, made before its clock starts (as ``plan`` is for the pusher)."""
    return [r for i in range(first // 2, first // 2 + resources // 2) for r in pair(ids, namespace, i)]


def naive(base: str, resources: list[dict[str, Any]]) -> float:
    """One PUT per resource, each on a new connection (no session, Connection: close); seconds taken."""
    headers = {
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
        "Connection": "close",
    }
    started = time.perf_counter()
    for resource in resources:
        r = requests.put(
            f"{base}/{resource['resourceType']}/{resource['id']}",
            json=resource,
            headers=headers,
            timeout=60,
        )
        r.raise_for_status()
    return time.perf_counter() - started


def start_server() -> tuple[str, bool]:
    url = os.environ.get("FHIR_BASE_URL")
    if url:
        return url.rstrip("/"), False
    running = (
        subprocess.run([str(REPO / "scripts" / "fhir-server"), "status"], capture_output=True).returncode == 0
    )
    env = dict(os.environ)
    env.setdefault("FHIR_SERVER_JAVA_OPTS", BENCH_JAVA_OPTS)
    out = subprocess.run(
        [str(REPO / "scripts" / "fhir-server"), "start"], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip().splitlines()[-1], not running


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="resources pushed per bundle size")
    parser.add_argument("--sizes", default="10,50,100,500")
    parser.add_argument("--naive-sample", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=2, help="bundles in flight")
    parser.add_argument(
        "--warmup",
        type=int,
        default=40_000,
        help="resources pushed (across the sizes) before measuring; HAPI's JIT takes ~4 x 10^4 to settle",
    )
    parser.add_argument("--segments", type=int, default=10, help="paired naive/push slices per bundle size")
    parser.add_argument(
        "--tag", default=str(int(time.time())), help="id namespace (new ids per run by default)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base, started_here = start_server()
    ids = IdFactory(f"bench-{args.tag}".encode())
    print(
        f"server {base}; {args.n} resources per bundle size; concurrency {args.concurrency}; tag {args.tag}"
    )
    try:
        requests.get(f"{base}/metadata", timeout=120).raise_for_status()
        # Warm the server up first (JIT, caches, pools) through both paths, so neither pays for a cold JVM.
        naive(base, naive_resources(ids, "warm-naive", min(400, args.naive_sample)))
        warm_each = max(2, args.warmup // len(sizes)) // 2 * 2
        for run, size in enumerate(sizes):
            with tempfile.TemporaryDirectory() as out, FhirClient(base, pool_size=args.concurrency) as client:
                Pusher(client, concurrency=args.concurrency).push_plan(
                    plan(ids, "warm", run * warm_each, warm_each, size), Path(out), bundle_size=size
                )
        # Paired, round-robin measurement: the machine is shared and the database grows as the run
        # goes on, so every bundle size's push is cut into segments, the sizes take turns, and a slice
        # of the naive sample runs just before each segment: all of them meet the same load and the
        # same database sizes.
        segments = max(1, args.segments)
        per_segment = max(2, args.n // segments) // 2 * 2
        naive_per_segment = max(2, args.naive_sample // (len(sizes) * segments)) // 2 * 2
        results = {
            size: {
                "created": 0,
                "seconds": 0.0,
                "naive_resources": 0,
                "naive_seconds": 0.0,
                "bundles": 0,
                "retries": 0,
            }
            for size in sizes
        }
        for k in range(segments):
            for run, size in enumerate(sizes):
                r = results[size]
                r["naive_seconds"] += naive(
                    base, naive_resources(ids, f"naive{run}", naive_per_segment, k * naive_per_segment)
                )
                r["naive_resources"] += naive_per_segment
                with (
                    tempfile.TemporaryDirectory() as out,
                    FhirClient(base, retry=RetryPolicy(total=8), pool_size=args.concurrency) as client,
                ):
                    pusher = Pusher(client, concurrency=args.concurrency)
                    # Made before the clock starts: the bench times pushing, not its own data generator.
                    bundles = list(plan(ids, f"size{size}", k * per_segment, per_segment, size))
                    t0 = time.perf_counter()
                    summary = pusher.push_plan(bundles, Path(out), bundle_size=size)
                    r["seconds"] += time.perf_counter() - t0
                if not summary.complete or summary.failed:
                    raise SystemExit(f"bundle size {size}: push incomplete ({summary.failed} failed)")
                r["created"] += summary.created
                r["bundles"] += summary.bundles
                r["retries"] += summary.retries
            print(f"segment {k + 1}/{segments} done", flush=True)
        naive_total = {"resources": 0, "seconds": 0.0}
        for size, r in results.items():
            naive_total["resources"] += r["naive_resources"]
            naive_total["seconds"] += r["naive_seconds"]
            rate = r["created"] / r["seconds"]
            naive_rate = r["naive_resources"] / r["naive_seconds"]
            print(
                f"bundle size {size:>4}: {rate:8.1f} resources/s "
                f"({r['created']} created in {r['seconds']:.1f} s, {r['bundles']} bundles, "
                f"{r['retries']} retries); naive alongside: {naive_rate:6.1f} resources/s "
                f"on {r['naive_resources']} -> {rate / naive_rate:5.1f}x"
            )
        overall_naive = naive_total["resources"] / naive_total["seconds"]
        print(f"naive overall: {overall_naive:.1f} resources/s on {naive_total['resources']} resources")
        best = max(results, key=lambda s: results[s]["created"] / results[s]["seconds"])
        best_rate = results[best]["created"] / results[best]["seconds"]
        paired_naive = results[best]["naive_resources"] / results[best]["naive_seconds"]
        print(f"best bundle size: {best}")
        report(
            push_naive_resources_per_s=overall_naive,
            push_best_resources_per_s=best_rate,
            push_speedup_vs_naive=best_rate / paired_naive,
        )
    finally:
        if started_here:
            subprocess.run([str(REPO / "scripts" / "fhir-server"), "stop"], capture_output=True)


if __name__ == "__main__":
    main()
