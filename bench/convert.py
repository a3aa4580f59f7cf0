"""Benchmark: convert throughput and memory on the EPaCCS CSV layout, against the floor any converter pays.

    python bench/convert.py                 # 10^5 and 10^6 rows (a few minutes)
    python bench/convert.py --sizes 20000   # quick look

For each size N it generates N rows of the examples/epaccs layout (synthetic, valid, every row a
different person up to ~909,000 rows, the size of the 999 test range; 1 in 50 a second decision for
someone, so supersession does real work), then in
fresh processes pinned to one core:

* convert: ``fhir_dnacpr.pipeline.convert`` — read, map, duplicate/supersession ledger, build, write
  NDJSON (no validation: that has its own benchmark, bench/validate.py);
* floor: the minimal hand-written loop — csv module → plain dicts → orjson lines.

Targets (issue 2): ≥ 10,000 rows/s, at least a quarter of the floor's speed, and peak RSS at 10^6 rows
within 1.2× of that at 10^5. Ends with ``convert_rows_per_s``, ``floor_fraction`` and
``rss_ratio_1e6_vs_1e5`` lines.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from _measure import peak_rss_mib, pin_to_one_core, report, run_child  # noqa: E402

EPACCS = REPO / "examples" / "epaccs"


def _templates() -> tuple[list[str], list[dict[str, str]]]:
    """Header and the example rows that map cleanly (the first 12 records of the example)."""
    text = (EPACCS / "register.csv").read_text(encoding="cp1252")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    good = [r for r in rows if r["register_id"].startswith("EP-00")]
    return list(rows[0].keys()), good


def _nhs_numbers(rng: random.Random):
    """Valid NHS numbers from the 999 test range, in order, starting again when it runs out.

    The range holds ~909,000 valid numbers, so at 10^6 rows the last ~9 % of rows are further
    decisions for people met earlier (more supersession work in pass two — a realistic load).
    """
    from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

    while True:
        for serial in range(1_000_000):
            first_nine = f"999{serial:06d}"
            check = nhs_number_check_digit(first_nine)
            if check is not None:
                yield first_nine + str(check)


def generate(path: Path, n: int, seed: int = 7) -> None:
    """Write n rows of the EPaCCS layout (Windows-1252, CRLF, quoted where needed)."""
    rng = random.Random(seed)
    header, templates = _templates()
    numbers = _nhs_numbers(rng)
    previous: str | None = None
    start = date(2020, 1, 1)
    with path.open("w", encoding="cp1252", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        for i in range(n):
            row = dict(templates[i % len(templates)])
            row["register_id"] = f"GEN-{i:07d}"
            repeat = previous is not None and rng.random() < 0.02
            row["nhs_no"] = previous if repeat else next(numbers)
            previous = row["nhs_no"]
            decided = start + timedelta(days=rng.randrange(1400))
            row["decision_date"] = decided.strftime("%d/%m/%Y")
            row["last_updated"] = decided.strftime("%d/%m/%Y") + " 12:00"
            if row["review_date"] not in ("", "Indefinite", "N/K"):
                row["review_date"] = (decided + timedelta(days=180)).strftime("%d/%m/%Y")
            for key in ("discussion_date", "nok1_consulted_on", "nok2_consulted_on", "endorsed_on"):
                if row.get(key):
                    row[key] = decided.strftime("%d/%m/%Y")
            if row.get("recorded_at"):
                row["recorded_at"] = decided.strftime("%d/%m/%Y") + " 14:30"
            writer.writerow(row)


def run_convert(data: Path) -> dict:
    from datetime import UTC, datetime

    from fhir_dnacpr.fhir.ids import IdFactory
    from fhir_dnacpr.mapping import load_spec
    from fhir_dnacpr.pipeline import ConvertOptions, convert

    with tempfile.TemporaryDirectory() as out:
        options = ConvertOptions(
            input_path=data,
            spec=load_spec(EPACCS / "mapping.yaml"),
            out_dir=Path(out),
            ids=IdFactory(b"bench-key"),
            fmt="ndjson",
            validate=None,
            run_time=datetime(2026, 1, 1, tzinfo=UTC),
        )
        started = time.perf_counter()
        summary = convert(options)
        seconds = time.perf_counter() - started
    return {
        "rows": summary.records_in,
        "converted": summary.records_converted,
        "rejected": summary.records_rejected,
        "seconds": seconds,
        "rss_mib": peak_rss_mib(),
    }


def run_floor(data: Path) -> dict:
    """The floor: csv module → dicts → orjson, one line each — no mapping, no FHIR."""
    import orjson

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        rows = 0
        with (
            data.open(encoding="cp1252", newline="") as f,
            (Path(out) / "rows.ndjson").open("wb") as sink,
        ):
            for row in csv.DictReader(f):
                sink.write(orjson.dumps(row) + b"\n")
                rows += 1
        seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "rss_mib": peak_rss_mib()}


def child(kind: str, data: str) -> None:
    pin_to_one_core()
    result = run_convert(Path(data)) if kind == "convert" else run_floor(Path(data))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"epaccs-{n}.csv"
            generate(data, n)
            results[n] = {
                "convert": run_child(Path(__file__), "--child", "convert", str(data)),
                "floor": run_child(Path(__file__), "--child", "floor", str(data)),
            }
            data.unlink()
            c, f = results[n]["convert"], results[n]["floor"]
            print(
                f"N={n:>9,}: convert {c['rows'] / c['seconds']:>9,.0f} rows/s "
                f"(converted {c['converted']:,}, rejected {c['rejected']:,}, "
                f"peak RSS {c['rss_mib']:.0f} MiB) | "
                f"floor {f['rows'] / f['seconds']:>9,.0f} rows/s (peak RSS {f['rss_mib']:.0f} MiB)"
            )

    largest = max(results)
    c, f = results[largest]["convert"], results[largest]["floor"]
    convert_rate = c["rows"] / c["seconds"]
    floor_rate = f["rows"] / f["seconds"]
    targets = {"convert_rows_per_s": convert_rate, "floor_fraction": convert_rate / floor_rate}
    if 100_000 in results and 1_000_000 in results:
        targets["rss_ratio_1e6_vs_1e5"] = (
            results[1_000_000]["convert"]["rss_mib"] / results[100_000]["convert"]["rss_mib"]
        )
    report(**targets)


if __name__ == "__main__":
    main()
