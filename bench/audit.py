"""Benchmark the assurance audit: records per second on one core, and whether memory stays flat.

Each size runs in a fresh subprocess pinned to one core. The child generates synthetic records a
thousand at a time (not timed) and feeds each batch to one streaming audit (timed), then times the
end-of-stream sweeps (clusters, conflicts); throughput is records / audit time. Times are the
process's CPU time (``time.process_time``): on a shared machine wall time also counts time spent
waiting for a core, which says nothing about the code; wall-clock figures are printed as well. Peak
RSS is the child's ``ru_maxrss`` (generation included). Memory is flat when the larger size's peak
RSS is close to the smaller's.

The floor, timed in the same child on the same batches: a loop that reads every field the
per-record rules read and does nothing with them, the least any audit of these records costs. The
machine's speed drifts by 10-20 % over hours, so records/s alone cannot be compared across runs;
the audit's cost in floors (``audit_floor_multiple``) can.

    python bench/audit.py            # 10^5 and 10^6 records (several minutes)
    python bench/audit.py --quick    # 10^4 and 10^5 records

Ends with ``audit_records_per_s: …``, ``audit_floor_multiple: …`` and ``rss_ratio_1e6_vs_1e5: …``
(``rss_ratio_1e5_vs_1e4`` with --quick).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def floor_pass(records: list) -> int:
    """Read each record's fields the per-record rules read (decision, status, dates, patient, maker,
    custodian, source, rationale, discussion and capacity facts), doing nothing with them."""
    seen = 0
    for record in records:
        d = record.decision
        if d is not None:
            patient, maker, custodian, source = d.patient, d.decision_maker, d.custodian, d.source
            facts = (
                d.status,
                d.decision_date,
                d.decision,
                d.rationale,
                d.review_date,
                d.review_indefinite,
                d.discussed_with_patient,
                d.reason_not_discussed,
                d.capacity,
                d.others_consulted,
                d.decision_maker_is_senior,
                d.senior_endorsement,
                patient.nhs_number,
                patient.postcode,
                patient.family_name,
                maker.registration_number if maker is not None else None,
                custodian.ods_code if custodian is not None else None,
                source.system,
                source.record_id,
                source.file,
            )
            seen += len(facts)
        p = record.plan
        if p is not None:
            seen += len((p.status, p.created, p.custodian, p.author, p.patient.nhs_number, p.source))
    return seen


def child(n: int) -> None:
    sys.path.insert(0, str(REPO))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from fhir_dnacpr.assurance import AuditConfig
    from fhir_dnacpr.assurance.engine import AuditRun
    from fhir_dnacpr.assurance.synthetic import stream

    counted = 0

    def count(_finding: object) -> None:
        nonlocal counted
        counted += 1

    run = AuditRun(AuditConfig(as_of=date(2023, 1, 1), max_findings_kept=1000), on_finding=count)
    records = stream(n)
    audit_cpu = audit_wall = gen_cpu = floor_cpu = 0.0
    while True:  # generate 1,000 records (not timed), audit them (timed): memory stays flat
        cpu = time.process_time()
        chunk = list(itertools.islice(records, 1000))
        gen_cpu += time.process_time() - cpu
        if not chunk:
            break
        wall, cpu = time.perf_counter(), time.process_time()
        for record in chunk:
            run.add(record)
        audit_cpu += time.process_time() - cpu
        audit_wall += time.perf_counter() - wall
        cpu = time.process_time()
        floor_pass(chunk)
        floor_cpu += time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    result = run.finish()
    finish_cpu = time.process_time() - cpu
    audit_cpu += finish_cpu
    audit_wall += time.perf_counter() - wall
    run.close()
    print(
        json.dumps(
            {
                "records": result.records,
                "generate_s": round(gen_cpu, 3),
                "audit_s": round(audit_cpu, 3),
                "finish_s": round(finish_cpu, 3),
                "audit_records_per_s": round(n / audit_cpu),
                "audit_records_per_wall_s": round(n / audit_wall),
                "floor_s": round(floor_cpu, 3),
                "floor_records_per_s": round(n / floor_cpu),
                "audit_floor_multiple": round(audit_cpu / floor_cpu, 1),
                "findings": counted,
                "clusters": len(result.clusters),
                "comparisons": result.sweep.comparisons,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def run(n: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, cwd=REPO
    )
    if out.returncode != 0:
        sys.exit(f"the {n:,}-record run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 records instead of 10^5 and 10^6")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    small, large = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    results = {}
    for n in (small, large):
        results[n] = run(n)
        r = results[n]
        print(
            f"{n:>9,} records: audit {r['audit_s']:.1f} CPU-s (end-of-stream sweeps {r['finish_s']:.1f}), "
            f"{r['audit_records_per_s']:,} records/CPU-s (wall {r['audit_records_per_wall_s']:,}/s; "
            f"generating them took {r['generate_s']:.1f} CPU-s, not counted), "
            f"{r['findings']:,} findings, {r['clusters']} clusters, peak RSS {r['peak_rss_mb']} MB; "
            f"floor {r['floor_records_per_s']:,} records/CPU-s, audit = {r['audit_floor_multiple']} floors",
            flush=True,
        )
    ratio = results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"]
    tag = "1e5_vs_1e4" if args.quick else "1e6_vs_1e5"
    print(f"audit_records_per_s: {results[large]['audit_records_per_s']}")
    print(f"audit_records_per_wall_s: {results[large]['audit_records_per_wall_s']}")
    print(f"floor_records_per_s: {results[large]['floor_records_per_s']}")
    print(f"audit_floor_multiple: {results[large]['audit_floor_multiple']}")
    print(f"peak_rss_mb_{large}: {results[large]['peak_rss_mb']}")
    print(f"rss_ratio_{tag}: {ratio:.3f}")


if __name__ == "__main__":
    main()
