"""NDJSON writer with a RepeatFilter: the same files and the same issues as without one.

The filter only lets resources it rules out as repeats skip the on-disk "written before?" check, so
on any stream (shared resources, conflicting versions, repeats inside one record, batches cut
anywhere) the output must be byte for byte what the exact path writes.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.seen import RepeatFilter
from fhir_dnacpr.fhir.writers import NdjsonWriter, Serialised

IDS = IdFactory(b"writer-test-key")
RUN = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)

ITEM = st.tuples(
    st.sampled_from(["Patient", "Consent", "Practitioner"]), st.integers(0, 30), st.integers(0, 2)
)
RECORDS = st.lists(st.lists(ITEM, min_size=1, max_size=5), max_size=40)


def _items(record: list[tuple[str, int, int]]) -> list[Serialised]:
    return [
        (f"{rtype}/{n}", rtype, orjson.dumps({"resourceType": rtype, "id": str(n), "version": version}))
        for rtype, n, version in record
    ]


def _write(out: Path, records: list[list[Serialised]], batch: int, repeats: RepeatFilter | None) -> tuple:
    writer = NdjsonWriter(out, 4, IDS, "in.csv", "ab" * 32, RUN, batch_records=batch, repeats=repeats)
    issues = []
    for i, items in enumerate(records):
        issues += writer.write_serialised(f"in.csv, line {i + 2}", items)
    counts = writer.close()
    issues += writer.closing_issues
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return counts, [(i.location, i.message) for i in issues], files


@settings(max_examples=60, deadline=None)
@given(RECORDS, st.sampled_from([1, 3, 1000]), st.sampled_from([3, 26]))
def test_repeat_filter_changes_nothing_written(records, batch: int, bits_log2: int) -> None:
    serialised = [_items(record) for record in records]
    repeats = RepeatFilter(seen_bits_log2=bits_log2, repeated_bits_log2=bits_log2)
    for items in serialised:
        repeats.note([item[0] for item in items])
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as filtered_dir:
        plain = _write(Path(plain_dir), serialised, batch, None)
        filtered = _write(Path(filtered_dir), serialised, batch, repeats)
    assert filtered == plain
