"""Checks on UK identifiers: NHS number (Modulus 11), ODS codes, GMC/NMC/HCPC numbers."""

from __future__ import annotations

import re

_ODS = re.compile(r"^[A-Z0-9]{3,10}$")
_GMC = re.compile(r"^\d{7}$")
_NMC = re.compile(r"^\d{2}[A-Z]\d{4}[A-Z]$")
_HCPC = re.compile(r"^[A-Z]{2}\d{5,6}$")


def normalise_nhs_number(value: str) -> str:
    """Strip the spaces and hyphens people type (``943 476 5919``) — nothing else is forgiven."""
    return value.replace(" ", "").replace("-", "").strip()


def _modulus_11(digits: bytes) -> int | None:
    """The check digit for the first nine of ``digits`` (ASCII), or None for remainder 10.

    Weights 10..2 written out: ASCII digit bytes are the digit plus 48, and the weights sum to 54.
    """
    d = digits
    total = d[0] * 10 + d[1] * 9 + d[2] * 8 + d[3] * 7 + d[4] * 6 + d[5] * 5 + d[6] * 4 + d[7] * 3 + d[8] * 2
    check = 11 - (total - 48 * 54) % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value`` is ten digits whose Modulus 11 check digit is right.

    A remainder giving check digit 10 means the number was never issued, so it is invalid.
    """
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        return False
    digits = value.encode("ascii")
    return _modulus_11(digits) == digits[9] - 48


def nhs_number_check_digit(first_nine: str) -> int | None:
    """The check digit completing ``first_nine``, or None when no valid number starts so."""
    if len(first_nine) != 9 or not (first_nine.isascii() and first_nine.isdigit()):
        raise ValueError("nhs_number_check_digit needs nine ASCII digits")
    return _modulus_11(first_nine.encode("ascii"))


def is_valid_ods_code(value: str) -> bool:
    return bool(_ODS.match(value))


def is_valid_registration_number(body: str, value: str) -> bool:
    """Format check for a GMC (7 digits), NMC (e.g. 12A3456B) or HCPC (e.g. PA12345) number."""
    pattern = {"gmc": _GMC, "nmc": _NMC, "hcpc": _HCPC}.get(body.lower())
    return bool(pattern and pattern.match(value))
