"""Pseudonyms and masking: the audit keeps and shows no NHS number or name unless asked to.

Per-person state is keyed by a keyed hash (BLAKE2b with the deployment key) of the NHS number: an
unkeyed hash of a ten-digit number is trivially enumerable, a keyed one is not.
"""

from __future__ import annotations

import hashlib
import re

from fhir_dnacpr.model import Person
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number, normalise_nhs_number

_PERSON_TAG = b"dnacpr-audit"
_TEN_DIGITS = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")


class Pseudonymiser:
    """Turns NHS numbers into compact keys (64-bit ints) and display labels (``pt-1a2b3c4d``)."""

    __slots__ = ("_key", "_keyed")

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, digest_size=32, person=_PERSON_TAG).digest()
        # BLAKE2b hashes its key as a first block: hash it once, and copy that state for every number
        # (the same digest as passing ``key=`` each time, without compressing the key block again)
        self._keyed = hashlib.blake2b(key=self._key, digest_size=8)

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
    value = person.nhs_number or ""
    if len(value) != 10:
        value = normalise_nhs_number(value)
    return value if valid_nhs_number(value) else None


def valid_nhs_number(v: str) -> bool:
    """Modulus 11 check, unrolled: the same answer as ``identifiers.is_valid_nhs_number``, run on every
    record, so written for speed."""
    if len(v) != 10 or not (v.isascii() and v.isdigit()):
        return False
    b = v.encode()  # indexing bytes gives ints: no ord() calls
    total = 10 * b[0] + 9 * b[1] + 8 * b[2] + 7 * b[3] + 6 * b[4] + 5 * b[5] + 4 * b[6] + 3 * b[7] + 2 * b[8]
    check = 11 - (total - 48 * 54) % 11  # 54 = sum of the weights, 48 = ord("0")
    if check == 11:
        check = 0
    return check != 10 and check == b[9] - 48


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
