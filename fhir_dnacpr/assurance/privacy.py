"""Pseudonyms and masking: the audit keeps and shows no NHS number or name unless asked to.

Per-person state is keyed by a keyed hash (BLAKE2b with the deployment key) of the NHS number: an
unkeyed hash of a ten-digit number is trivially enumerable, a keyed one is not.
"""

from __future__ import annotations

import hashlib
import re
import struct

from fhir_dnacpr.model import Person
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number, normalise_nhs_number

_PERSON_TAG = b"dnacpr-audit"
_TEN_DIGITS = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
_SIGNED_64 = struct.Struct(">q")  # a key: the digest as a signed big-endian 64-bit integer


class Pseudonymiser:
    """Turns NHS numbers into compact keys (64-bit ints) and display labels (``pt-1a2b3c4d``)."""

    __slots__ = ("_key", "_keyed")

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, digest_size=32, person=_PERSON_TAG).digest()
        # BLAKE2b hashes its key as a first block: hash it once, and copy that state for every number
        # (the same digest as passing ``key=`` each time, without compressing the key block again)
        self._keyed = hashlib.blake2b(key=self._key, digest_size=8)

    def person_key(self, nhs_number: str | None) -> int | None:
        """The key of a valid NHS number (spaces and hyphens forgiven), else None: what the audit
        needs of every record's number, in one call and one encoding."""
        digits = _valid_digits(nhs_number or "")
        if digits is None:
            return None
        keyed = self._keyed.copy()
        keyed.update(digits)
        return _SIGNED_64.unpack(keyed.digest())[0]

    def digest(self, nhs_number: str) -> bytes:
        keyed = self._keyed.copy()
        keyed.update(nhs_number.encode())
        return keyed.digest()

    def key_of(self, nhs_number: str) -> int:
        """Signed 64-bit key (fits an SQLite INTEGER); collisions are ~1 in 2^64 per pair."""
        return int.from_bytes(self.digest(nhs_number), "big", signed=True)

    @staticmethod
    def label_of_key(key: int) -> str:
        """``pt-`` and the key's top 32 bits in hex (of its unsigned 64-bit form)."""
        return f"pt-{(key >> 32) & 0xFFFFFFFF:08x}"

    def label(self, nhs_number: str) -> str:
        return self.label_of_key(self.key_of(nhs_number))


def patient_nhs_number(person: Person) -> str | None:
    """The person's NHS number if it is a valid one (Modulus 11), else None."""
    digits = _valid_digits(person.nhs_number or "")
    return None if digits is None else digits.decode()


def valid_nhs_number(v: str) -> bool:
    """The same answer as ``identifiers.is_valid_nhs_number``: the fast check ``person_key`` makes, as a
    yes or no (the audit itself calls ``person_key``; the tests hold this to the reference)."""
    return len(v) == 10 and _valid_digits(v) is not None


def _valid_digits(value: str) -> bytes | None:
    """``value`` without spaces and hyphens, as ASCII bytes, if that is a valid NHS number, else None.

    Modulus 11 with the check digit weighted 1 (weights 10, 9, ..., 2, 1) says: valid exactly when
    W = sum((k + 1) * d_k) is a multiple of 11, d_k being the k-th digit from the right (a check
    digit of 10 cannot be written, so those numbers never pass). Read as base 12, the digits are
    N = sum(d_k * 12**k), and 12**(k + 1) = (1 + 11)**(k + 1) is 1 + 11 * (k + 1) modulo 121, so
    12 * N - sum(d_k) is 11 * W modulo 121: a multiple of 121 exactly when W is one of 11. ``int``
    and ``sum`` do that in C, with no bytecode per digit. The bytes are returned so the caller
    hashing them need not encode the number again.
    """
    if len(value) != 10:
        value = normalise_nhs_number(value)
        if len(value) != 10:
            return None
    if not value.isascii():  # before encoding: a lone surrogate would not encode
        return None
    digits = value.encode()
    # sum(digits) counts each ASCII digit 48 over: add back 48 * 10
    if digits.isdigit() and (12 * int(value, 12) - sum(digits) + 480) % 121 == 0:
        return digits
    return None


def format_nhs_number(value: str) -> str:
    return f"{value[:3]} {value[3:6]} {value[6:]}" if len(value) == 10 else value


def patient_display(person: Person, label: str, show_identifiers: bool) -> str:
    """What the report shows for a person: the pseudonym, or NHS number and name when unmasked."""
    if not show_identifiers:
        return label
    name = " ".join((*person.given_names, person.family_name or "")).strip()
    number = format_nhs_number(normalise_nhs_number(person.nhs_number or "")) or "(no NHS number)"
    return f"{number} {name}".strip()


def mask_text(text: str | None, person: Person | None, show_identifiers: bool, limit: int = 240) -> str:
    """An excerpt of free text with the person's own names and any ten-digit number masked."""
    if not text:
        return ""
    excerpt = text if len(text) <= limit else text[: limit - 1] + "…"
    if show_identifiers:
        return excerpt
    if _TEN_DIGITS.search(excerpt):
        excerpt = _TEN_DIGITS.sub("[number]", excerpt)
    if person is not None:
        lowered = excerpt.lower()
        for name in (person.family_name, *person.given_names):
            if name and len(name) > 1 and name.lower() in lowered:
                excerpt = re.sub(rf"\b{re.escape(name)}\b", "[name]", excerpt, flags=re.IGNORECASE)
    return excerpt


def mask_record_id(record_id: str, show_identifiers: bool) -> str:
    """Record ids are shown (they find the record), unless one is itself an NHS number."""
    if show_identifiers or not 10 <= len(record_id) <= 12:
        return record_id
    if is_valid_nhs_number(normalise_nhs_number(record_id)):
        return "[NHS-number-like id]"
    return record_id
