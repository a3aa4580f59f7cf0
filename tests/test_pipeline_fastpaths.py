"""convert's fast paths against their plain forms: the memoised serialiser and the batched spill
give what ``serialise`` + ``RepeatFilter.note`` and one frame per record give; Consent and CarePlan,
unique by construction, skip the repeat check and the output is what checking them gives."""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from pathlib import Path
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline_convert import EPACCS, _row, _template, nhs, run

import fhir_dnacpr.pipeline.convert  # noqa: F401 (the module, for mock.patch.object)
from fhir_dnacpr.fhir.seen import RepeatFilter
from fhir_dnacpr.fhir.writers import serialise
from fhir_dnacpr.pipeline.convert import _Serialiser, _Spill, _spilled

convert_module = sys.modules["fhir_dnacpr.pipeline.convert"]

SHARED = [
    {"resourceType": "Organization", "id": "gp", "name": "Surgery"},
    {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Jones"}]},
    {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Jonas"}]},  # a second version
]
# A resource is a shared object (the same dict each time, as SharedParties hands out) or a fresh dict
# (a new object per record, so ids of dropped dicts get reused) with a few ids and versions.
RESOURCE = st.sampled_from(range(len(SHARED))) | st.tuples(
    st.sampled_from(["Patient", "Consent", "Practitioner"]), st.integers(0, 6), st.integers(0, 1)
)
RECORDS = st.lists(st.lists(RESOURCE, max_size=6), max_size=40)


class _TinySerialiser(_Serialiser):
    __slots__ = ()
    MAX_ENTRIES = 2  # cleared every few records


def _resources(record) -> list[dict]:
    return [
        SHARED[r] if isinstance(r, int) else {"resourceType": r[0], "id": str(r[1]), "v": r[2]}
        for r in record
    ]


def _bits(repeats: RepeatFilter) -> tuple[bytes, bytes]:
    return repeats._seen._words.tobytes(), repeats._repeated._words.tobytes()


@settings(max_examples=80, deadline=None)
@given(RECORDS, st.sampled_from([4, 6, 26]), st.booleans())
def test_serialiser_gives_serialise_and_notes_like_note(records, bits_log2: int, tiny: bool) -> None:
    fast_repeats = RepeatFilter(seen_bits_log2=bits_log2, repeated_bits_log2=bits_log2)
    plain_repeats = RepeatFilter(seen_bits_log2=bits_log2, repeated_bits_log2=bits_log2)
    fast = (_TinySerialiser if tiny else _Serialiser)(fast_repeats)
    for record in records:
        resources = _resources(record)
        items = fast(resources)
        expected = serialise(resources)
        plain_repeats.note([item[0] for item in expected])
        assert items == expected
        del resources  # fresh dicts die here: their ids come back for the next record's dicts
    assert _bits(fast_repeats) == _bits(plain_repeats)


@given(st.lists(st.lists(st.sampled_from(range(4)), max_size=5), max_size=60))
def test_spill_gives_back_every_record_in_order(records) -> None:
    shared = [("Organization/gp", "Organization", b'{"id":"gp"}'), ("Patient/1", "Patient", b"{}")]
    spilled = [(seq, f"line {seq}", [shared[i % 2] if i < 2 else ("X/1", "X", b"[]") for i in record])
               for seq, record in enumerate(records)]  # fmt: skip
    file = io.BytesIO()
    spill = _Spill(file)
    for record in spilled:
        spill.add(*record)
    spill.flush()
    file.seek(0)
    assert list(_spilled(file)) == spilled


# --- Consent and CarePlan skip the repeat check: the same output as checking them -----------------

VERSIONS = st.lists(
    st.tuples(
        st.integers(0, 4),  # register id: repeats are replaced versions
        st.integers(0, 3),  # person: repeats supersede
        st.sampled_from(["01/01/2024 10:00", "02/01/2024 10:00", ""]),  # last updated, ties included
    ),
    min_size=1,
    max_size=12,
)


def _write_rows(path: Path, rows: list[tuple[int, int, str]]) -> None:
    header, good = _template()
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for record, person, last_updated in rows:
        row = _row(good, register_id=f"R-{record}", nhs_no=nhs(700 + person), last_updated=last_updated)
        writer.writerow(row)
    path.write_bytes(buffer.getvalue().encode("cp1252"))


def _outputs(out: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "summary.json"}
    summary = orjson.loads((out / "summary.json").read_bytes())
    summary.pop("seconds")
    return {**files, "summary": orjson.dumps(summary)}


@settings(max_examples=25, deadline=None)
@given(VERSIONS)
def test_unique_types_write_what_the_checked_path_writes(rows) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.csv"
        _write_rows(path, rows)
        _, fast = run(Path(tmp), path, EPACCS / "mapping.yaml", fmt="ndjson", out="fast")
        with mock.patch.object(convert_module, "UNIQUE_TYPES", frozenset()):
            _, plain = run(Path(tmp), path, EPACCS / "mapping.yaml", fmt="ndjson", out="plain")
        assert _outputs(fast) == _outputs(plain)
