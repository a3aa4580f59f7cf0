"""DigestTable: the compact "already written?" map behaves like a dict of 64-bit ints."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.fhir.seen import DigestTable

INT64 = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(st.tuples(INT64 | st.sampled_from([0, 1, -1, 2**63 - 1]), INT64), max_size=400))
def test_behaves_like_dict_setdefault(pairs: list[tuple[int, int]]) -> None:
    table = DigestTable(4)  # tiny start: growth happens many times
    model: dict[int, int] = {}
    for key, value in pairs:
        stored_key = key or 1  # the documented stand-in for a 0 key
        expected = model.get(stored_key)
        assert table.setdefault(key, value) == expected
        model.setdefault(stored_key, value)
    assert len(table) == len(model)
    for key, value in model.items():
        assert table.get(key) == value


def test_growth_keeps_everything_and_memory_is_16_bytes_a_slot() -> None:
    table = DigestTable(2)
    for n in range(1, 20001):
        assert table.setdefault(hash(f"Patient/{n}"), n) is None
    assert len(table) == 20000
    assert all(table.get(hash(f"Patient/{n}")) == n for n in range(1, 20001))
    assert table.get(hash("Patient/absent")) is None
    slots = table.memory_bytes() // 16
    assert 20000 / 0.7 <= slots <= 4 * 20000  # load kept at or below 0.7, never wasteful
