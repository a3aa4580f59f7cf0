"""Per-person checks: the rows they are made from, and the short paths against the plain forms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.assurance.conflicts import PersonRow, _check_pair, _check_person, _make_row, person_issues
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


_FIELDS = (  # after the person: small ranges, so that days tie and values, places and rids repeat
    st.integers(1, 3),  # day
    st.integers(1, 6),  # seq
    st.integers(0, 2),  # value: a value beyond the two decisions too
    st.integers(0, 2),  # status
    st.integers(0, 1),  # system
    st.integers(0, 1),  # org
    st.integers(0, 2),  # rid: the same record seen twice
)
_ROW = st.tuples(st.just(7), *_FIELDS)


@given(_ROW, _ROW)
def test_pair_check_matches_the_general_check(a, b) -> None:
    """The two-record short path gives the same issues, in the same order, as the general check."""
    assert list(_check_pair(a, b)) == list(_check_person([_make_row(a), _make_row(b)]))


@given(st.lists(st.tuples(st.integers(0, 3), *_FIELDS), max_size=12))
def test_person_issues_match_the_plain_grouping(raw) -> None:
    """Grouping by ``groupby`` and the short path for pairs give what a plain regrouping and the
    general check give."""
    rows = sorted(raw, key=lambda row: row[0])
    expected = []
    for patient in dict.fromkeys(row[0] for row in rows):
        group = [_make_row(row) for row in rows if row[0] == patient]
        if len(group) > 1:
            expected += _check_person(group)
    assert list(person_issues(rows)) == expected
