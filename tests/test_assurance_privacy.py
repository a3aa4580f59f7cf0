"""Pseudonyms and masking: no NHS number or name leaves the audit unless asked for."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.assurance.privacy import (
    Pseudonymiser,
    mask_record_id,
    mask_text,
    patient_nhs_number,
    valid_nhs_number,
)
from fhir_dnacpr.model import Person
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number


@given(st.text(alphabet="0123456789", min_size=9, max_size=11))
def test_fast_modulus_11_agrees_with_the_reference(value: str) -> None:
    assert valid_nhs_number(value) == is_valid_nhs_number(value)


@given(st.text(alphabet="0123456789١٢३", min_size=10, max_size=10).filter(lambda v: not v.isascii()))
def test_non_ascii_digits_are_not_an_nhs_number(value: str) -> None:
    assert not valid_nhs_number(value)


@given(st.integers(min_value=0, max_value=999_999))
def test_fast_modulus_11_on_the_test_range(n: int) -> None:
    value = f"999{n:06d}"
    for check in "0123456789":
        assert valid_nhs_number(value + check) == is_valid_nhs_number(value + check)


def test_patient_number_forgives_spaces_only() -> None:
    assert patient_nhs_number(Person("999 000 0018")) == "9990000018"
    assert patient_nhs_number(Person("999-000-0018")) == "9990000018"
    assert patient_nhs_number(Person("9990000019")) is None
    assert patient_nhs_number(Person("")) is None


def test_pseudonyms_are_short_stable_and_keyed() -> None:
    p = Pseudonymiser(b"secret")
    label = p.label("9990000018")
    assert label.startswith("pt-") and len(label) == 11
    assert label == Pseudonymiser(b"secret").label("9990000018")
    assert label != p.label("9990000026")
    assert -(2**63) <= p.key_of("9990000018") < 2**63


@given(st.binary(min_size=1, max_size=64), st.text(max_size=20))
def test_keys_are_the_keyed_blake2b_of_the_number(key: bytes, number: str) -> None:
    # key_of copies a pre-keyed hash state: it must equal hashing with the key each time
    pseudo = Pseudonymiser(key)
    derived = hashlib.blake2b(key, digest_size=32, person=b"dnacpr-audit").digest()
    plain = hashlib.blake2b(number.encode(), key=derived, digest_size=8).digest()
    assert pseudo.digest(number) == plain
    assert pseudo.key_of(number) == int.from_bytes(plain, "big", signed=True)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_labels_are_the_top_of_the_unsigned_key_in_hex(key: int) -> None:
    assert Pseudonymiser.label_of_key(key) == f"pt-{(key & 0xFFFFFFFFFFFFFFFF):016x}"[:11]


def test_mask_text() -> None:
    person = Person("9990000018", "O'Neil", ("Ann", "Marie"))
    text = "Ann O'Neil (9990000018, also 999 000 0018) told Dr Annan; marie agreed."
    assert (
        mask_text(text, person, False)
        == "[name] [name] ([number], also [number]) told Dr Annan; [name] agreed."
    )
    assert mask_text(text, person, True) == text
    assert mask_text("x" * 300, None, False).endswith("…")


def test_mask_record_id() -> None:
    assert mask_record_id("9990000018", False) == "[NHS-number-like id]"
    assert mask_record_id("9990000018", True) == "9990000018"
    assert mask_record_id("DNACPR-000123", False) == "DNACPR-000123"


_NUMBERISH = st.text(alphabet="0123456789 -١x\ud800", max_size=13)


@given(st.one_of(_NUMBERISH, st.builds(lambda n: f"999{n:07d}", st.integers(0, 9_999_999))))
def test_person_key_is_the_key_of_the_valid_normalised_number(value: str) -> None:
    # the one-call fast path against the plain steps: normalise if not ten long, check, hash
    pseudo = Pseudonymiser(b"secret")
    number = patient_nhs_number(Person(value))
    plain = value if len(value) == 10 else value.replace(" ", "").replace("-", "").strip()
    assert number == (plain if is_valid_nhs_number(plain) else None)
    assert pseudo.person_key(value) == (None if number is None else pseudo.key_of(number))


def test_person_key_of_a_missing_or_odd_number_is_none() -> None:
    pseudo = Pseudonymiser(b"secret")
    assert pseudo.person_key(None) is None and pseudo.person_key("") is None
    assert pseudo.person_key("\ud800" * 10) is None and not valid_nhs_number("\ud800" * 10)
    assert pseudo.person_key("99900_0018") is None  # int(..., 12) would read the underscore: not here
    assert pseudo.person_key("99900a0018") is None  # nor a base-12 digit
    assert pseudo.person_key("999 000 0018") == pseudo.key_of("9990000018")
