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


# --- the NDJSON writer against a plain model of its identity rules --------------------------------
# The writer answers "written before?" from a bounded in-memory table of the latest batches' refs in
# front of the on-disk WrittenSet; the model keeps everything in one dict. A tiny table (cleared
# nearly every batch) and batches cut anywhere must write exactly what the model writes.


def _model(records: list[list[Serialised]]) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """Type.ndjson contents and the conflicts (ref, origin): each ref's first version wins; inside
    one record the later version of a ref replaces the earlier one (in the earlier one's place)."""
    written: dict[str, bytes] = {}
    files: dict[str, list[bytes]] = {}
    conflicts = []
    for i, items in enumerate(records):
        origin = f"in.csv, line {i + 2}"
        merged: dict[str, Serialised] = {}
        for item in items:
            if item[0] in merged and merged[item[0]][2] != item[2]:
                conflicts.append((item[0], origin))
            merged[item[0]] = item
        for ref, rtype, data in merged.values():
            if ref in written:
                if written[ref] != data:
                    conflicts.append((ref, origin))
                continue
            written[ref] = data
            files.setdefault(f"{rtype}.ndjson", []).append(data)
    return {name: b"".join(line + b"\n" for line in lines) for name, lines in files.items()}, conflicts


@settings(max_examples=60, deadline=None)
@given(RECORDS, st.sampled_from([1, 2, 5, 1000]), st.sampled_from([0, 2, 1 << 15]), st.booleans())
def test_ndjson_writer_writes_what_the_model_writes(records, batch: int, settled_max: int, filtered: bool):
    serialised = [_items(record) for record in records]
    repeats = None
    if filtered:
        repeats = RepeatFilter(seen_bits_log2=6, repeated_bits_log2=6)
        for items in serialised:
            repeats.note([item[0] for item in items])
    expected_files, expected_conflicts = _model(serialised)
    with tempfile.TemporaryDirectory() as out:
        writer = NdjsonWriter(
            Path(out), 4, IDS, "in.csv", "ab" * 32, RUN, batch_records=batch, repeats=repeats
        )
        writer._SETTLED_MAX = settled_max
        issues = []
        for i, items in enumerate(serialised):
            issues += writer.write_serialised(f"in.csv, line {i + 2}", items)
        writer.close()
        issues += writer.closing_issues
        files = {
            p.name: p.read_bytes()
            for p in Path(out).iterdir()
            if p.name not in ("Provenance.ndjson", "entry-origins.ndjson")
        }
    assert files == expected_files
    found = sorted((issue.location, issue.message.split(": ")[0]) for issue in issues)
    assert found == sorted((ref, f"{ref} from {origin}") for ref, origin in expected_conflicts)
