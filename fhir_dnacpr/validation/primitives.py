"""Checks of primitive values: JSON type, lexical format, length, numeric and whitespace rules.

Each rule follows the HL7 validator's ``checkPrimitive`` so verdicts agree: the same regexes for
date/dateTime/instant/time, the timezone rule for dateTime in core definitions, base64 alphabet,
id characters and length, code whitespace, uri whitespace and ``oid:``/``uuid:`` prefixes, integer
ranges, the 1 MB string limit. Findings are ``(severity, code, message_id, message)`` tuples; the
walker adds the location.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

Finding = tuple[str, str, str, str]  # severity, issue code, message id, message

_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?\Z"
)
_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?\Z"
)
_INSTANT = re.compile(
    r"-?[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
    r"(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))\Z"
)
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?\Z")
_INTEGER = re.compile(r"-?[0-9]+\Z")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
_ID_CHARS = re.compile(r"[A-Za-z0-9\-.]*\Z")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/=\s]*\Z")

STRING_TYPES = frozenset(
    {
        "string",
        "code",
        "id",
        "markdown",
        "uri",
        "url",
        "canonical",
        "oid",
        "uuid",
        "date",
        "dateTime",
        "instant",
        "time",
        "base64Binary",
        "xhtml",
    }
)
INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
MAX_STRING = 1024 * 1024
INT32 = (-(2**31), 2**31 - 1)


def json_type_problem(type_code: str, value: Any) -> Finding | None:
    """The HL7 JSON parser's complaint when a primitive has the wrong JSON type."""
    if type_code == "boolean":
        ok, expected = isinstance(value, bool), "boolean"
    elif type_code in INTEGER_TYPES or type_code == "decimal":
        ok, expected = isinstance(value, int | float | Decimal) and not isinstance(value, bool), "number"
    else:
        ok, expected = isinstance(value, str), "string"
    if ok:
        return None
    return (
        "error",
        "invalid",
        f"Error_parsing_JSON_the_primitive_value_must_be_a_{expected}",
        f"Error parsing JSON: the primitive value must be a {expected}",
    )


#: Primitive types whose values are codes or identifiers of definitions, never free text: only these
#: are quoted in messages, so an issue never echoes clinical content or personal data.
QUOTABLE_TYPES = frozenset({"code", "id", "uri", "url", "canonical", "oid", "uuid", "boolean"})
NOT_SHOWN = "(not shown)"


def shown_value(type_code: str, value: Any) -> str:
    """``'value'`` for codes/URIs/booleans, ``(not shown)`` for anything that may be free text."""
    if type_code in QUOTABLE_TYPES or isinstance(value, bool):
        return f"'{text_of(value)}'"
    return NOT_SHOWN


def text_of(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


_NO_WHITESPACE = re.compile(r"\S+\Z")
_TIMEZONE = re.compile(r"(Z|[+-]\d\d:\d\d)\Z")
_URI_PREFIXES = ("oid:", "uuid:", "urn:uuid:", "urn:oid:")
_LONGEST_SAFE = MAX_STRING // 4  # UTF-8 needs at most 4 bytes a character


def plainly_valid(type_code: str, text: str, core: bool, max_length: int | None) -> bool:
    """A quick screen for the common case: True only when ``check_primitive`` would find nothing
    in this (non-empty) string. False means "run the full checks", not "invalid"."""
    if max_length and len(text) > max_length:
        return False
    if type_code == "string" or type_code == "markdown":
        return text.strip() == text and len(text) <= _LONGEST_SAFE
    if type_code == "code":
        return " ".join(text.split()) == text
    if type_code == "id":
        return _ID.match(text) is not None
    if type_code in ("uri", "url", "canonical"):
        if _NO_WHITESPACE.match(text) is None or text.startswith(_URI_PREFIXES):
            return False
        return type_code != "canonical" or text.startswith("#") or _is_absolute(text)
    if type_code == "dateTime":
        if _DATETIME.match(text) is None or not _real_date(text[:10]):
            return False
        return not core or "T" not in text or _TIMEZONE.search(text) is not None
    if type_code == "date":
        return _DATE.match(text) is not None and _real_date(text)
    return False


def check_primitive(type_code: str, value: Any, *, core: bool, max_length: int | None) -> Iterator[Finding]:
    """Lexical checks of one primitive value (already known to be present)."""
    problem = json_type_problem(type_code, value)
    if problem:
        yield problem
        return
    text = text_of(value)
    if text == "" and type_code != "string":
        yield "error", "invalid", "Type_Specific_Checks_DT_Primitive_NotEmpty", "value cannot be empty"
        return
    checker = _CHECKS.get(type_code)
    if checker:
        yield from checker(text, core)
    if type_code in ("uri", "url", "canonical", "oid", "uuid"):
        yield from _check_uri(type_code, text)
    if max_length and len(text) > max_length:
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_Primitive_Length",
            f"value is longer than permitted maximum length of {max_length}",
        )


def _check_string(text: str, core: bool, max_length: int | None = None) -> Iterator[Finding]:
    if text == "":
        yield "error", "invalid", "Type_Specific_Checks_DT_Primitive_NotEmpty", "value cannot be empty"
        return
    if text.isspace():
        yield (
            "warning",
            "invalid",
            "Type_Specific_Checks_DT_String_WS_ALL",
            "value should not be all whitespace",
        )
    elif text != text.strip():
        yield (
            "warning",
            "invalid",
            "Type_Specific_Checks_DT_String_WS",
            "value should not start or finish with whitespace",
        )
    if len(text.encode("utf-8")) > MAX_STRING:
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_String_Length",
            "value is longer than permitted maximum length of 1 MB (1048576 bytes)",
        )


def _check_date(text: str, core: bool) -> Iterator[Finding]:
    if not _DATE.match(text) or not _real_date(text):
        yield "error", "invalid", "Type_Specific_Checks_DT_Date_Valid", "Not a valid date format"


def _check_datetime(text: str, core: bool) -> Iterator[Finding]:
    if not _DATETIME.match(text) or not _real_date(text[:10]):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_DateTime_Valid",
            "Not a valid date/time format",
        )
        return
    if core and "T" in text and not (text.endswith("Z") or re.search(r"[+-]\d\d:\d\d\Z", text)):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_DateTime_TZ",
            "If a date has a time, it must have a timezone",
        )


def _check_instant(text: str, core: bool) -> Iterator[Finding]:
    if not _INSTANT.match(text) or not _real_date(text[:10]):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_DateTime_Regex",
            "Not a valid instant format",
        )


def _check_time(text: str, core: bool) -> Iterator[Finding]:
    if not _TIME.match(text):
        yield "error", "invalid", "Type_Specific_Checks_DT_Time_Valid", "Not a valid time"


def _check_boolean(text: str, core: bool) -> Iterator[Finding]:
    if text not in ("true", "false"):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_Boolean_Value",
            "Boolean values must be 'true' or 'false'",
        )


def _integer_checks(type_code: str):
    def check(text: str, core: bool) -> Iterator[Finding]:
        if not _INTEGER.match(text) or not INT32[0] <= int(text) <= INT32[1]:
            yield (
                "error",
                "invalid",
                "Type_Specific_Checks_DT_Integer_Valid",
                "The value is not a valid integer",
            )
            return
        number = int(text)
        if type_code == "unsignedInt" and number < 0:
            yield (
                "error",
                "invalid",
                "Type_Specific_Checks_DT_Integer_LT0",
                "value is less than permitted minimum value of 0",
            )
        if type_code == "positiveInt" and number < 1:
            yield (
                "error",
                "invalid",
                "Type_Specific_Checks_DT_Integer_LT1",
                "value is less than permitted minimum value of 1",
            )

    return check


def _check_decimal(text: str, core: bool) -> Iterator[Finding]:
    if not _DECIMAL.match(text):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_Decimal_Valid",
            "The value is not a valid decimal",
        )


def _check_code(text: str, core: bool) -> Iterator[Finding]:
    if text != text.strip() or "  " in text or any(c in text for c in "\t\r\n"):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_Code_WS",
            f"The code '{text}' is not valid (whitespace rules)",
        )


def _check_id(text: str, core: bool) -> Iterator[Finding]:
    if not _ID.match(text):
        yield "error", "invalid", "Type_Specific_Checks_DT_ID_Valid", f"id value '{text}' is not valid"


def _check_base64(text: str, core: bool) -> Iterator[Finding]:
    if not is_valid_base64(text):
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_Base64_Valid",
            "The value is not a valid Base64 value",
        )
    elif any(c.isspace() for c in text):
        yield (
            "warning",
            "invalid",
            "TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_WARNING",
            "Base64 encoded values SHOULD not contain any whitespace (per RFC 4648). Note that "
            "non-validating "
            "readers are encouraged to accept whitespace anyway",
        )


def is_valid_base64(text: str) -> bool:
    """HL7's lenient test: the count of base64 alphabet characters is a multiple of 4."""
    count = sum(1 for c in text if c.isalnum() or c in "+/=")
    return count == 0 or count % 4 == 0


def decodes_as_base64(text: str) -> str | None:
    """None when strict decoding works, else the decoder's complaint (as Java words it)."""
    compact = "".join(text.split())
    bad = next((c for c in compact if not (c.isascii() and (c.isalnum() or c in "+/="))), None)
    if bad is not None:
        return f"Illegal base64 character {ord(bad):x}"
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        return str(exc)
    return None


def _check_uri(type_code: str, text: str) -> Iterator[Finding]:
    if text.startswith("oid:"):
        yield "error", "invalid", "Type_Specific_Checks_DT_URI_OID", "URI values cannot start with oid:"
    if text.startswith("uuid:"):
        yield "error", "invalid", "Type_Specific_Checks_DT_URI_UUID", "URI values cannot start with uuid:"
    if text != text.strip() or " " in text:
        yield (
            "error",
            "invalid",
            "Type_Specific_Checks_DT_URI_WS",
            f"URI values cannot have whitespace('{text}')",
        )
    if type_code == "oid" and not text.startswith("urn:oid:"):
        yield "error", "invalid", "Type_Specific_Checks_DT_OID_Start", "OIDs must start with urn:oid:"
    if type_code == "uuid" and not text.startswith("urn:uuid:"):
        yield "error", "invalid", "Type_Specific_Checks_DT_UUID_Strat", "UUIDs must start with urn:uuid:"
    if type_code == "canonical" and not (text.startswith("#") or _is_absolute(text)):
        yield (
            "error",
            "invalid",
            "TYPE_SPECIFIC_CHECKS_CANONICAL_ABSOLUTE",
            f"Canonical URLs must be absolute URLs if they are not fragment references ({text})",
        )
    if text.startswith("urn:uuid:"):
        uuid_part = text[9:].split("#", 1)[0]
        if type_code == "canonical":
            uuid_part = uuid_part.rsplit("|", 1)[0]
        if not _UUID.match(uuid_part):
            yield (
                "error",
                "invalid",
                "Type_Specific_Checks_DT_UUID_Valid",
                f"UUIDs must be valid and lowercase ({uuid_part})",
            )
    if text.startswith("urn:oid:"):
        oid_part = text[8:]
        if type_code == "canonical":
            oid_part = oid_part.split("|", 1)[0]
        if not _OID.match(oid_part) or not (oid_part.rfind(".") >= 4 or oid_part.startswith("1.3")):
            yield "error", "invalid", "Type_Specific_Checks_DT_OID_Valid", f"OIDs must be valid ({oid_part})"


def _is_absolute(url: str) -> bool:
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", url))


def is_absolute_url(url: str) -> bool:
    return _is_absolute(url)


def _real_date(text: str) -> bool:
    parts = text.split("-")
    if len(parts) < 3 or not parts[0].lstrip("-").isdigit():
        return True
    try:
        year, month, day = int(parts[0]), int(parts[1]), int(parts[2][:2])
    except ValueError:
        return True
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return day <= (29 if leap else 28)
    return day <= (30 if month in (4, 6, 9, 11) else 31)


def check_resource_id(text: Any) -> Finding | None:
    """Resource.id: the HL7 'Invalid Resource id' messages (length and characters)."""
    if not isinstance(text, str):
        return None
    if len(text) > 64:
        return (
            "error",
            "invalid",
            "Resource_RES_ID_Malformed_Length",
            f"Invalid Resource id: Too long ({len(text)} chars)",
        )
    if not _ID_CHARS.match(text) or text == "":
        return (
            "error",
            "invalid",
            "Resource_RES_ID_Malformed_Chars",
            f"Invalid Resource id: Invalid Characters ('{text}')",
        )
    return None


def as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(text_of(value))
    except (InvalidOperation, ValueError):
        return None


_CHECKS = {
    "string": _check_string,
    "markdown": _check_string,
    "date": _check_date,
    "dateTime": _check_datetime,
    "instant": _check_instant,
    "time": _check_time,
    "boolean": _check_boolean,
    "integer": _integer_checks("integer"),
    "positiveInt": _integer_checks("positiveInt"),
    "unsignedInt": _integer_checks("unsignedInt"),
    "decimal": _check_decimal,
    "code": _check_code,
    "id": _check_id,
    "base64Binary": _check_base64,
}
