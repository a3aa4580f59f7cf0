"""Checks on UK identifiers: NHS number (Modulus 11), ODS codes, GMC/NMC/HCPC numbers."""

from __future__ import annotations

import re

_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_ODS = re.compile(r"^[A-Z0-9]{3,10}$")
_GMC = re.compile(r"^\d{7}$")
_NMC = re.compile(r"^\d{2}[A-Z]\d{4}[A-Z]$")
_HCPC = re.compile(r"^[A-Z]{2}\d{5,6}$")


def normalise_nhs_number(value: str) -> str:
    """Strip the spaces and hyphens people type (``943 476 5919``) — nothing else is forgiven."""
    if " " in value or "-" in value:
        value = value.replace(" ", "").replace("-", "")
    return value.strip()


def is_valid_nhs_number(value: str) -> bool:
    """True when ``value`` is ten digits whose Modulus 11 check digit is right.

    A remainder giving check digit 10 means the number was never issued, so it is invalid.
    """
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        return False
    d = value.encode("ascii")  # ASCII digits: byte - 48 is the digit, and the weights sum to 54
    total = d[0] * 10 + d[1] * 9 + d[2] * 8 + d[3] * 7 + d[4] * 6 + d[5] * 5 + d[6] * 4 + d[7] * 3 + d[8] * 2
    check = 11 - (total - 48 * 54) % 11
    if check == 11:
        check = 0
    return check != 10 and check == d[9] - 48


def nhs_number_check_digit(first_nine: str) -> int | None:
    """The check digit completing ``first_nine``, or None when no valid number starts so."""
    total = sum(int(d) * w for d, w in zip(first_nine, _NHS_WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_ods_code(value: str) -> bool:
    return bool(_ODS.match(value))


def is_valid_registration_number(body: str, value: str) -> bool:
    """Format check for a GMC (7 digits), NMC (e.g. 12A3456B) or HCPC (e.g. PA12345) number."""
    pattern = {"gmc": _GMC, "nmc": _NMC, "hcpc": _HCPC}.get(body.lower())
    return bool(pattern and pattern.match(value))
