"""UK identifier checks: the NHS number Modulus 11 check against its definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.terminology.identifiers import (
    is_valid_nhs_number,
    nhs_number_check_digit,
    normalise_nhs_number,
)


def _modulus_11(value: str) -> bool:
    """The check as the NHS defines it, written plainly: weights 10..2, 11 → 0, 10 → never issued."""
    if len(value) != 10 or not all(ch in "0123456789" for ch in value):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


ten_digits = st.text(alphabet="0123456789", min_size=10, max_size=10)
near_misses = st.text(alphabet="0123456789 -x\u0661\u00b2", min_size=8, max_size=12)


@given(ten_digits | near_misses)
def test_the_fast_check_is_the_modulus_11_definition(value: str) -> None:
    assert is_valid_nhs_number(value) == _modulus_11(value)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_the_check_digit_completes_a_valid_number(first_nine: str) -> None:
    check = nhs_number_check_digit(first_nine)
    valid = [d for d in "0123456789" if _modulus_11(first_nine + d)]
    assert valid == ([] if check is None else [str(check)])


def test_examples() -> None:
    assert is_valid_nhs_number("9434765919")
    assert not is_valid_nhs_number("9434765918")
    assert not is_valid_nhs_number("943476591")
    assert not is_valid_nhs_number("\u0669434765919")  # an Arabic-Indic nine is a digit, not ASCII


@given(st.text(alphabet="0123456789 -\t", max_size=16))
def test_normalising_drops_spaces_and_hyphens_only(value: str) -> None:
    assert normalise_nhs_number(value) == value.replace(" ", "").replace("-", "").strip()
