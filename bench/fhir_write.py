"""Bench: FHIR build (+ NDJSON / bundle write) records/s on one core, as a ratio to a JSON baseline.

Records: 2,000 hypothesis-generated canonical records (tests/strategies.py), made unique per copy
(new record ids, new NHS numbers, so ids and NDJSON dedupe do real work). CPU time (process_time),
so other load on the machine distorts less. Ends with `name: value` lines.
"""

import dataclasses
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from strategies import care_records  # noqa: E402

from fhir_dnacpr.fhir.build import build_resources  # noqa: E402
from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, IdFactory  # noqa: E402
from fhir_dnacpr.fhir.writers import open_writer  # noqa: E402
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def sample(n: int = 2000) -> list:
    found = []

    @settings(max_examples=n, suppress_health_check=list(HealthCheck), phases=[Phase.generate], database=None)
    @given(care_records())
    def collect(record):
        found.append(record)

    collect()
    return found


def unique_copies(records: list, n: int) -> list:
    out = []
    serial = 0
    for i in range(n):
        record = records[i % len(records)]
        while True:
            first_nine = f"999{serial:06d}"
            serial += 1
            check = nhs_number_check_digit(first_nine)
            if check is not None:
                break
        nhs = first_nine + str(check)
        patient = dataclasses.replace(record.patient, nhs_number=nhs)
        decision = plan = None
        if record.decision:
            src = dataclasses.replace(
                record.decision.source, record_id=f"{record.decision.source.record_id}-{i}"
            )
            decision = dataclasses.replace(record.decision, source=src, patient=patient)
        if record.plan:
            src = dataclasses.replace(record.plan.source, record_id=f"{record.plan.source.record_id}-{i}")
            plan = dataclasses.replace(record.plan, source=src, patient=patient)
        out.append(dataclasses.replace(record, decision=decision, plan=plan))
    return out


def main() -> None:
    records = unique_copies(sample(), N)
    gc.collect()
    gc.freeze()  # the pipeline streams records; here they are all alive, so keep them out of GC scans
    ids = IdFactory(DEFAULT_EXAMPLE_KEY)
    probe = build_resources(records[0], ids)
    # Interleaved slices: baseline, build, build+NDJSON, build+bundle take turns on the same CPU, so
    # load from other processes hits all of them alike and the ratios stay meaningful.
    slice_size = 500
    totals = {"baseline": 0.0, "build": 0.0, "ndjson": 0.0, "bundle": 0.0}
    counts = {}
    with tempfile.TemporaryDirectory() as out:
        writers = {
            fmt: open_writer(
                fmt,
                Path(out) / fmt,
                ids=IdFactory(b"bench-" + fmt.encode()),
                source_file="bench.csv",
                source_sha256="0" * 64,
                run_time=datetime.now(UTC),
            )
            for fmt in ("ndjson", "bundle")
        }
        build_ids = IdFactory(b"bench-build")
        for start in range(0, N, slice_size):
            part = records[start : start + slice_size]
            t = time.process_time()
            for _ in part:
                orjson.loads(orjson.dumps(probe))
            totals["baseline"] += time.process_time() - t
            t = time.process_time()
            for r in part:
                build_resources(r, build_ids)
            totals["build"] += time.process_time() - t
            for fmt, writer in writers.items():
                t = time.process_time()
                for i, r in enumerate(part, start):
                    writer.write(f"bench.csv, line {i + 2}", build_resources(r, writer.ids))
                totals[fmt] += time.process_time() - t
        for fmt, writer in writers.items():
            t = time.process_time()
            counts[fmt] = writer.close()
            totals[fmt] += time.process_time() - t
    rate = {k: N / v for k, v in totals.items()}
    resources = sum(v for k, v in counts["ndjson"].items() if k != "Provenance")
    print(f"records: {N}")
    print(f"resources_per_record: {resources / N:.2f}")
    print(f"baseline_orjson_roundtrip_records_per_s: {rate['baseline']:.0f}")
    print(f"build_records_per_s: {rate['build']:.0f}")
    print(f"build_ndjson_records_per_s: {rate['ndjson']:.0f}")
    print(f"build_bundle_records_per_s: {rate['bundle']:.0f}")
    print(f"build_vs_baseline: {rate['build'] / rate['baseline']:.3f}")
    print(f"build_ndjson_vs_baseline: {rate['ndjson'] / rate['baseline']:.3f}")
    print(f"build_bundle_vs_baseline: {rate['bundle'] / rate['baseline']:.3f}")


if __name__ == "__main__":
    main()
