"""Field checks that run after conversion: identifiers, ranges, dates that cannot be right.

Each check gets the converted value and returns it (possibly normalised) or ``INVALID`` after adding an
issue. Messages say which source field failed and what to do, never the value itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fhir_dnacpr import model
from fhir_dnacpr.issues import Severity
from fhir_dnacpr.mapping.fields import Context, ObjectSpec, Scalar
from fhir_dnacpr.terminology.identifiers import (
    is_valid_nhs_number,
    is_valid_ods_code,
    is_valid_registration_number,
    normalise_nhs_number,
)

Check = Callable[[Any, Context, Scalar], Any]


def nhs_number(value: str, ctx: Context, node: Scalar) -> Any:
    number = value
    if len(number) != 10 or not (number.isascii() and number.isdigit()):  # else nothing to normalise
        number = normalise_nhs_number(value)
    if len(number) != 10 or not number.isdigit():
        return node.fail(
            ctx,
            "value",
            "mapping.nhs-number.format",
            "the NHS number",
            "is not 10 digits; correct it in the source system (or check the column mapping)",
        )
    if not is_valid_nhs_number(number):
        return node.fail(
            ctx,
            "value",
            "mapping.nhs-number.check-digit",
            "the NHS number",
            "fails the Modulus 11 check; correct it in the source system",
        )
    return number


def _weighted_thousands(weights: tuple[int, int, int]) -> dict[str, int]:
    """Each three-digit text and its digits' sum weighted by ``weights``."""
    texts = (f"{n:03d}" for n in range(1000))
    return {t: sum(int(d) * w for d, w in zip(t, weights, strict=True)) for t in texts}


_NHS_HEAD = _weighted_thousands((10, 9, 8))
_NHS_MIDDLE = _weighted_thousands((7, 6, 5))
_NHS_TAIL = _weighted_thousands((4, 3, 2))
_NHS_CHECK_DIGIT = {r: str((11 - r) % 11) for r in range(11) if r != 1}
"""The check digit by the weighted sum's remainder mod 11 (remainder 1 means check digit 10: none)."""


def clean_nhs_number(text: str) -> bool:
    """Whether ``nhs_number`` passes ``text`` unchanged with no issue: ten ASCII digits, Modulus 11 right.

    Three table lookups of three digits each (a text with anything but ASCII digits there finds no
    entry) instead of nine multiplications: the NHS number is checked on every record.
    """
    if len(text) != 10:
        return False
    try:
        total = _NHS_HEAD[text[:3]] + _NHS_MIDDLE[text[3:6]] + _NHS_TAIL[text[6:9]]
    except KeyError:
        return False
    return _NHS_CHECK_DIGIT.get(total % 11) == text[9]


nhs_number.accepts = clean_nhs_number  # type: ignore[attr-defined]
"""What generated mapping code tests first: a clean NHS number is kept as it is, without the check."""


def not_in_future(value: date | datetime, ctx: Context, node: Scalar) -> Any:
    day = value.date() if isinstance(value, datetime) else value
    if day > ctx.today:
        return node.fail(
            ctx,
            "value",
            "mapping.date.future",
            "the date",
            "is in the future; correct it in the source system",
        )
    return value


not_in_future.uses_today = True  # type: ignore[attr-defined]
"""Its verdict depends on ``ctx.today``: values remembered by cell are keyed with the day too."""


def postcode(value: str, ctx: Context, node: Scalar) -> Any:
    return " ".join(value.upper().split())


def ods_code(value: str, ctx: Context, node: Scalar) -> Any:
    code = value.upper()
    if not is_valid_ods_code(code):
        ctx.add(
            Severity.WARNING,
            "value",
            "mapping.ods-code.format",
            f"the ODS code in {node.where(ctx)} is not 3-10 letters or digits; check it",
            node.location(ctx),
        )
    return code


def care_priority_score(value: int, ctx: Context, node: Scalar) -> Any:
    if not 0 <= value <= 100:
        return node.fail(
            ctx,
            "value",
            "mapping.care-priority.range",
            "the care priority score",
            "is outside 0-100 (0 prioritise sustaining life, 100 prioritise comfort); correct it or map it",
        )
    return value


def registration_number(spec: ObjectSpec, kwargs: dict[str, Any], ctx: Context) -> None:
    """A GMC/NMC/HCPC number in the wrong format is kept but flagged: the register is the authority."""
    body = kwargs.get("registration_body")
    number = kwargs.get("registration_number")
    if body is None or not number or is_valid_registration_number(body.value, number):
        return
    node = dict(spec.nodes).get("registration_number")
    where = node.where(ctx) if node is not None else spec.label
    ctx.add(
        Severity.WARNING,
        "value",
        "mapping.registration-number.format",
        f"the {body.value.upper()} number in {where} does not have the {body.value.upper()} format; check it",
        node.location(ctx) if node is not None else spec.label,
    )


_CHECKS: dict[tuple[type, str], Check] = {
    (model.Person, "nhs_number"): nhs_number,
    (model.Person, "birth_date"): not_in_future,
    (model.Person, "postcode"): postcode,
    (model.Organisation, "ods_code"): ods_code,
    (model.AdvanceCarePlan, "care_priority_score"): care_priority_score,
}


def for_field(owner: type, name: str) -> Check | None:
    return _CHECKS.get((owner, name))
