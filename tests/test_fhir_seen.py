"""WrittenSet: the on-disk "already written?" map behaves like a dict fed one batch at a time;
the Bloom filters in front of it never give a false "certainly new"."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.fhir.seen import BloomFilter, RepeatFilter, WrittenSet

REFS = st.sampled_from([f"Patient/{n}" for n in range(12)] + ["Practitioner/a", "Organization/b"])
DIGESTS = st.integers(-(2**63), 2**63 - 1)


@settings(deadline=None)  # an on-disk SQLite file: timing depends on the machine's load
@given(st.lists(st.dictionaries(REFS, DIGESTS, max_size=8), max_size=12))
def test_settle_returns_what_earlier_batches_wrote(batches: list[dict[str, int]]) -> None:
    written = WrittenSet()
    model: dict[str, int] = {}
    try:
        for batch in batches:
            assert written.settle(batch) == {ref: model[ref] for ref in batch if ref in model}
            for ref, digest in batch.items():
                model.setdefault(ref, digest)
        assert len(written) == len(model)
    finally:
        written.close()


def test_the_temporary_file_is_removed_on_close(tmp_path: Path) -> None:
    written = WrittenSet(tmp_path)
    written.settle({"Patient/1": 1})
    assert any(tmp_path.iterdir())
    written.close()
    assert not any(tmp_path.iterdir())


KEYS = st.text(min_size=1, max_size=6)


@given(st.lists(KEYS, max_size=200), st.sampled_from([3, 6, 20]))
def test_bloom_filter_never_forgets_a_key(keys: list[str], bits_log2: int) -> None:
    bloom = BloomFilter(bits_log2)
    added: set[str] = set()
    for key in keys:
        was_added = bloom.add(key)
        assert was_added or key not in added  # "certainly new" is never said of a key added before
        added.add(key)
        assert key in bloom
    assert all(key in bloom for key in added)


@given(st.lists(KEYS, max_size=200), st.sampled_from([3, 6, 26]))
def test_repeat_filter_flags_every_key_noted_twice(keys: list[str], bits_log2: int) -> None:
    repeats = RepeatFilter(seen_bits_log2=bits_log2, repeated_bits_log2=max(3, bits_log2 - 2))
    for start in range(0, len(keys), 7):  # noted a record (a few keys) at a time, like convert does
        repeats.note(keys[start : start + 7])
    counts = Counter(keys)
    assert all(repeats.may_repeat(key) for key, n in counts.items() if n > 1)


def test_repeat_filter_rules_out_most_keys_noted_once() -> None:
    # Not a correctness property (false positives only cost an exact check) but the point of the
    # filter: with its default size nearly every key noted once is ruled out.
    repeats = RepeatFilter()
    keys = [f"Consent/{n:040x}" for n in range(20_000)]
    repeats.note(keys)
    assert sum(repeats.may_repeat(key) for key in keys) < 20


def test_bloom_filter_size_is_checked() -> None:
    with pytest.raises(ValueError):
        BloomFilter(2)


@given(st.lists(KEYS, max_size=200), st.sampled_from([3, 6, 26]))
def test_note_one_changes_the_filters_as_two_bloom_filter_adds_do(keys: list[str], bits_log2: int) -> None:
    repeats = RepeatFilter(seen_bits_log2=bits_log2, repeated_bits_log2=max(3, bits_log2 - 2))
    seen, repeated = BloomFilter(bits_log2), BloomFilter(max(3, bits_log2 - 2))
    for key in keys:
        was_seen = seen.add(key)
        if was_seen:
            repeated.add(key)
        assert repeats.note_one(key) == was_seen
    assert repeats._seen._words.tobytes() == seen._words.tobytes()
    assert repeats._repeated._words.tobytes() == repeated._words.tobytes()
