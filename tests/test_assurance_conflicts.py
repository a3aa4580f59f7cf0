"""Per-person checks: the rows they are made from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.assurance.conflicts import PersonRow, _make_row
from fhir_dnacpr.assurance.spill import KEY_COLUMNS

_INT64 = st.integers(-(2**63), 2**63 - 1)


@given(st.tuples(_INT64, st.integers(1, 800_000), st.integers(1), *[st.integers(0, 9)] * 4, _INT64))
def test_person_rows_made_in_c_equal_the_named_tuple(raw) -> None:
    """``_make_row`` is ``PersonRow._make`` without the length check: the spill's person rows have
    exactly its fields (one per key column, in the order the person scan gives them)."""
    assert len(PersonRow._fields) == len(KEY_COLUMNS) == len(raw)
    row = _make_row(raw)
    assert (
        type(row) is PersonRow and row == PersonRow._make(raw) and row._asdict() == PersonRow(*raw)._asdict()
    )
