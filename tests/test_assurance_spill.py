"""The audit's on-disk state: what goes in comes back, grouped and ordered as the sweeps need."""

from __future__ import annotations

import gc
import platform
import random
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.similarity import folded, normalised_words
from fhir_dnacpr.assurance.spill import EVIDENCE_FIELDS, KEY_COLUMNS, PARTITIONS, SpillStore, partition_of


class _Code(str):
    """A str subclass, as some source libraries hand out (marshal refuses these)."""


def _evidence(i: int) -> tuple:
    values = [f"{name}-{i}" for name in EVIDENCE_FIELDS]
    values[EVIDENCE_FIELDS.index("file")] = None
    values[EVIDENCE_FIELDS.index("rationale")] = "Frailty; Ms Ünal’s wishes — 92 yo" if i % 2 else None
    values[EVIDENCE_FIELDS.index("status")] = i % 3  # the engine stores numbers too
    values[EVIDENCE_FIELDS.index("location")] = _Code("line 3") if i == 3 else values[2]
    return tuple(values)


def test_evidence_comes_back_by_seq_across_flushes(tmp_path) -> None:
    with SpillStore(tmp_path) as store:
        for seq in range(1, 45_001):  # more than one buffered batch
            store.add_record((seq % 7, 700_000 + seq, seq, 0, 0, 0, 0, seq), _evidence(seq))
        wanted = [44_999, 3, 1, 20_000, 20_001, 45_000]
        rows = store.records(wanted)
        assert set(rows) == set(wanted)
        for seq in wanted:
            row = rows[seq]
            assert tuple(row[name] for name in EVIDENCE_FIELDS) == _evidence(seq)
            assert (row["seq"], row["pkey"], row["dayn"]) == (seq, seq % 7, 700_000 + seq)
        assert type(rows[3]["location"]) is str
        # more records after a read still land where they should
        store.add_record((1, 1, 45_001, 0, 0, 0, 0, 1), _evidence(45_001))
        assert store.records([45_001])[45_001]["record_id"] == "record_id-45001"
        assert store.records([2])[2]["record_id"] == "record_id-2"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=200),
    st.lists(st.integers(0, 1200), max_size=40),
    st.integers(0, 200),
)
def test_evidence_look_ups_find_each_record(gaps, wanted, read_after) -> None:
    """Each record is found through its chunk, written or still pending, whatever the seqs (with
    gaps), and a seq never stored is left out; a look-up in the middle of the stream changes nothing
    that follows."""
    seqs = list(accumulate(gaps))
    stored: dict[int, tuple] = {}
    with SpillStore() as store:
        for n, seq in enumerate(seqs):
            keys = (-seq, 700_000 + seq, seq, 0, 0, seq % 3, seq % 5, seq)
            evidence = (
                f"R{seq}",
                None if seq % 4 else "file.csv",
                "x" * (seq % 50),
                None,
                0,
                seq % 3,
                "Frail, 92 yo" if seq % 2 else None,
                None,
                None,
                seq % 7 or None,
            )
            store.add_record(keys, evidence)
            stored[seq] = (keys, evidence)
            if n == read_after:
                assert store.evidence(wanted) == {s: stored[s] for s in sorted(set(wanted)) if s in stored}
        found = store.evidence(wanted)
        assert list(found) == sorted(s for s in set(wanted) if s in stored)
        assert found == {s: stored[s] for s in found}
        rows = store.records(wanted)
        assert all(tuple(rows[s][f] for f in EVIDENCE_FIELDS) == stored[s][1] for s in rows)
        assert all(tuple(rows[s][f] for f in KEY_COLUMNS) == stored[s][0] for s in rows)


def test_candidates_grouped_filtered_and_in_date_order(tmp_path) -> None:
    rng = random.Random(5)
    rows = []
    with SpillStore(tmp_path) as store:
        for seq in range(1, 2_001):
            org, pc = rng.randrange(4), rng.randrange(300)
            person, day = rng.randrange(500), rng.randrange(30)
            text = folded(rng.choice(["Frail, 92.", "Lives in a care home", None]))
            rows.append((seq, org, pc, person, day, text))
            store.add_record((person, day, seq, 0, None, 0, 0, seq), _evidence(seq), org, pc, text)
        out = list(store.candidates_sorted(min_people=3))
    by_org = [r for r in out if r[1] == 0]
    by_pc = [r for r in out if r[1] == 1]
    assert sorted(by_org) == by_org
    assert sorted(by_pc) == by_pc
    assert {(r[0], r[2], r[3], r[4], r[5]) for r in by_org} == {(o, d, s, p, t) for s, o, _, p, d, t in rows}
    people: dict[int, set[int]] = {}
    for _, _, pc, person, _, _ in rows:
        people.setdefault(pc, set()).add(person)
    busy = {pc for pc, who in people.items() if len(who) >= 3}
    assert {(r[0], r[2], r[3], r[4], r[5]) for r in by_pc} == {
        (pc, d, s, p, t) for s, _, pc, p, d, t in rows if pc in busy
    }


def test_people_with_more_than_one_record_in_person_then_date_order(tmp_path) -> None:
    with SpillStore(tmp_path) as store:
        keys = [(1, 5, 3), (2, 9, 1), (3, 5, 1), (4, 7, 2), (5, 9, 0)]  # seq, person, day
        for seq, person, day in keys:
            store.add_record((person, day, seq, 1, 0, 0, 0, seq), _evidence(seq))
        store.add_record((7, 5, 6, 1, None, 0, 0, 6), _evidence(6))  # a cluster-only row: no status
        got = [(row[0], row[1], row[2]) for row in store.people_sorted()]
    assert got == [(5, 1, 3), (5, 3, 1), (9, 0, 5), (9, 1, 2)]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(), st.text(alphabet="aZ 09.,;’é\u00a0\n-'")))
def test_folded_text_splits_into_the_normalised_words(text: str | None) -> None:
    assert folded(text).split() == normalised_words(text)


# -- partitioned rows: the same rows, order and filters as one big sort over everything -------------

_KEY = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # anywhere in the hash range
    st.integers(min_value=-3, max_value=3),  # a few keys, all in the middle partitions
    st.sampled_from([-(2**63), 2**63 - 1, -1, 0]),  # the edges of the range and of partitions
)
_ROW = st.tuples(
    st.one_of(st.none(), _KEY),  # organisation key
    st.one_of(st.none(), _KEY),  # postcode key
    st.integers(min_value=0, max_value=6),  # person (few: groups repeat); a stored record has one
    st.integers(min_value=737_000, max_value=737_010),  # day
    st.one_of(st.none(), st.integers(min_value=0, max_value=2)),  # status (None: a cluster-only row)
    st.binary(max_size=6),  # folded rationale
)


def _expected_candidates(rows: list[tuple], min_people: int) -> list[tuple]:
    """What the sweep must be given, the straightforward way: sort all rows, count people per key."""
    org = sorted((o, 0, d, s, p, t) for s, (o, _, p, d, _, t) in rows if o is not None)
    people: dict[int, set[int]] = {}
    for _, (_, pc, p, *_rest) in rows:
        if pc is not None and p is not None:
            people.setdefault(pc, set()).add(p)
    busy = {pc for pc, who in people.items() if len(who) >= min_people}
    postcode = sorted((pc, 1, d, s, p, t) for s, (_, pc, p, d, _, t) in rows if pc in busy)
    return org + postcode


def _expected_people(rows: list[tuple]) -> list[tuple]:
    kept = [
        (p, d, s, 1, st_, 0, 0, s) for s, (_, _, p, d, st_, _) in rows if p is not None and st_ is not None
    ]
    counts: dict[int, int] = {}
    for row in kept:
        counts[row[0]] = counts.get(row[0], 0) + 1
    return sorted(row for row in kept if counts[row[0]] > 1)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(_ROW, max_size=60), min_people=st.integers(min_value=1, max_value=4), batch=st.booleans()
)
def test_partitioned_scans_equal_one_global_sort(tmp_path_factory, rows, min_people, batch) -> None:
    numbered = list(enumerate(rows, start=1))
    with SpillStore(tmp_path_factory.mktemp("spill")) as store:
        for seq, (org, pc, person, day, status, text) in numbered:
            store.add_record((person, day, seq, 1, status, 0, 0, seq), _evidence(seq), org, pc, text)
            if batch and seq % 7 == 0:
                store.flush()  # rows both written out and still buffered
        candidates = list(store.candidates_sorted(min_people))
        people = list(store.people_sorted())
        wanted = [s for s, _ in numbered][::3]
        evidence = store.records(wanted)
    assert candidates == _expected_candidates(numbered, min_people)
    assert people == _expected_people(numbered)
    assert sorted(evidence) == wanted
    assert all(evidence[s]["record_id"] == f"record_id-{s}" for s in wanted)


def test_partitions_split_the_key_range_in_order() -> None:
    keys = [-(2**63), -(2**62), -1, 0, 1, 2**62, 2**63 - 1]
    parts = [partition_of(k) for k in keys]
    assert parts == sorted(parts)
    assert parts[0] == 0 and parts[-1] == PARTITIONS - 1
    assert partition_of(-1) + 1 == partition_of(0)  # the middle of the range is a partition boundary


def test_a_stored_record_needs_its_person_and_day(tmp_path) -> None:
    """Rows are arrays of integers: a record without a person key or day is refused whole, before
    any of its rows is half written (the engine stores only records it can place)."""
    with SpillStore(tmp_path) as store:
        for keys in ((None, 737_000, 1, 0, 0, 0, 0, 1), (5, None, 1, 0, 0, 0, 0, 1)):
            with pytest.raises(ValueError, match="person key and day"):
                store.add_record(keys, _evidence(1), 3, 4, b"frail")
        store.add_record((5, 737_000, 1, 0, 0, 0, 0, 1), _evidence(1), 3, 4, b"frail")
        assert [r[0] for r in store.candidates_sorted(min_people=1)] == [3, 4]


def test_records_must_come_in_increasing_seq_order(tmp_path) -> None:
    with SpillStore(tmp_path) as store:
        store.add_record((1, 1, 5, 0, 0, 0, 0, 5), _evidence(5))
        with pytest.raises(ValueError, match="increasing seq"):
            store.add_record((1, 1, 5, 0, 0, 0, 0, 5), _evidence(5))
        assert store.records([4, 5, 6]).keys() == {5}  # unknown seqs are left out


def test_spill_files_live_in_a_private_folder_removed_on_close(tmp_path) -> None:
    store = SpillStore(tmp_path)
    store.add_record((1, 1, 1, 0, 0, 0, 0, 1), _evidence(1), 7, 8, b"frail")
    store.flush()
    folder = store.path
    assert folder.is_dir() and folder.stat().st_mode & 0o077 == 0
    assert any(folder.iterdir())
    store.close()
    assert not folder.exists()


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython's collector counts")
def test_buffered_rows_leave_nothing_for_the_garbage_collector(tmp_path) -> None:
    """Rows wait in the buffers for thousands of records; kept as tuples they would count towards the
    collector's next run (three a record), so the buffers hold their values instead. What is left
    counting is the pending evidence chunk (its records' keys and evidence), at most two chunks."""
    with SpillStore(tmp_path) as store:
        records = [
            ((i, 7, i, 0, 0, 0, 0, i), _evidence(i), i * 7919, i * 104729, b"frail") for i in range(1, 3_001)
        ]
        enabled = gc.isenabled()
        gc.disable()
        try:
            before = gc.get_count()[0]
            for keys, evidence, org, postcode, text in records:
                store.add_record(keys, evidence, org, postcode, text)
            left = gc.get_count()[0] - before
        finally:
            if enabled:
                gc.enable()
        assert left < 2 * 16 * 2
        assert len(list(store.candidates_sorted(min_people=1))) == 2 * len(records)
        assert len(list(store.people_sorted())) == 0  # one record each: nobody has two
