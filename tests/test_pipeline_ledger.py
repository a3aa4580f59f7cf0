"""The ledger: its Bloom-fronted duplicate set and candidate-only verdict query give exactly the
answers of the plain versions (a Python set; the window query over every item)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.pipeline.convert import NO_ORDER
from fhir_dnacpr.pipeline.ledger import DIGEST_SIZE, DuplicateSet, Ledger, Verdict

DIGESTS = st.integers(0, 40).map(lambda n: n.to_bytes(DIGEST_SIZE, "big"))


@given(st.lists(DIGESTS, max_size=200), st.sampled_from([3, 8, 25]), st.sampled_from([1, 7, 1000]))
def test_duplicate_set_answers_like_a_plain_set(
    stream: list[bytes], bloom_bits_log2: int, batch: int
) -> None:
    # A 2^3-bit filter says "maybe" to nearly everything, so the exact path (pending set, then
    # SQLite) is exercised as much as the "certainly new" one; tiny batches flush constantly.
    db = sqlite3.connect(":memory:")
    duplicates = DuplicateSet(db, bloom_bits_log2=bloom_bits_log2, batch=batch)
    seen: set[bytes] = set()
    for digest in stream:
        assert duplicates.is_duplicate(digest) == (digest in seen)
        seen.add(digest)
    db.close()


# The verdict query before it was limited to candidates: the reference the faster one must equal.
_REFERENCE = """
    CREATE TABLE replaced AS
        SELECT seq, kind FROM (
            SELECT seq, kind, ROW_NUMBER() OVER (
                PARTITION BY kind, record_key ORDER BY order_key DESC, seq DESC) AS n
            FROM item
        ) WHERE n > 1;
    CREATE TABLE superseded AS
        SELECT seq, kind FROM (
            SELECT seq, kind, active, ROW_NUMBER() OVER (
                PARTITION BY kind, patient_key ORDER BY order_key DESC, seq DESC) AS n
            FROM item WHERE (seq, kind) NOT IN (SELECT seq, kind FROM replaced)
        ) WHERE n > 1 AND active = 1;
"""


def _reference_verdicts(items: list[tuple[int, str, bytes, bytes, int, bool]]) -> set[tuple[int, str, str]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE item (seq, kind, record_key, patient_key, order_key, active)")
    db.executemany("INSERT INTO item VALUES (?, ?, ?, ?, ?, ?)", items)
    db.executescript(_REFERENCE)
    found = {(seq, kind, "replaced-version") for seq, kind in db.execute("SELECT * FROM replaced")}
    found |= {(seq, kind, "superseded") for seq, kind in db.execute("SELECT * FROM superseded")}
    db.close()
    return found


KEYS = st.integers(0, 6).map(lambda n: bytes([n]) * 16)
ITEM = st.tuples(
    st.sampled_from(["decision", "plan"]),
    KEYS,
    KEYS,
    st.sampled_from([NO_ORDER, 1_704_067_200_000_000, 1_706_745_600_000_000]),
    st.booleans(),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(ITEM, min_size=1, max_size=2), max_size=25), st.sampled_from([1, 4, 5000]))
def test_verdicts_equal_the_full_window_query(tmp_path_factory, records, batch: int) -> None:
    # Items are spooled in batches and only possible candidates reach SQLite: batches of 1 and 4
    # cut the spool everywhere; the answer must still be the full query's over every item.
    path = Path(tmp_path_factory.mktemp("ledger")) / "ledger.sqlite"
    ledger = Ledger(path, batch=batch)
    items = []
    try:
        for seq, record in enumerate(records):
            for kind, record_key, patient_key, order_key, active in {r[0]: r for r in record}.values():
                ledger.add_item(seq, kind, record_key, patient_key, order_key, active)
                items.append((seq, kind, record_key, patient_key, order_key, active))
        got = list(ledger.verdicts())
    finally:
        ledger.close()
    assert [seq for seq, _, _ in got] == sorted(seq for seq, _, _ in got)
    assert {(seq, kind, str(verdict)) for seq, kind, verdict in got} == _reference_verdicts(items)
    assert all(isinstance(verdict, Verdict) for _, _, verdict in got)
    assert not path.with_name(path.name + ".items").exists(), "the spool is removed"


def test_items_after_the_verdicts_are_refused_not_lost(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        ledger.add_item(0, "decision", b"r" * 16, b"p" * 16, 0, True)
        assert list(ledger.verdicts()) == []
        ledger.add_item(1, "decision", b"r" * 16, b"p" * 16, 1, True)
        with pytest.raises(RuntimeError):
            list(ledger.verdicts())
    finally:
        ledger.close()
