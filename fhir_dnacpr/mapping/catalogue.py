"""What each canonical model field is, read once from the model's type hints.

The spec compiler uses this to know how to convert a source value (a date, a yes/no, an enum, a
nested object, a list …) without the spec having to say so, and which fields hold identifiers or free
text (masked in the reject file).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from fhir_dnacpr import model


@dataclass(frozen=True, slots=True)
class FieldKind:
    """``kind`` is one of str, date, datetime, date_or_datetime, bool, int, enum, coded, object;
    ``many`` marks a tuple of them; ``target`` is the enum or dataclass for enum/object kinds.
    """

    name: str
    kind: str
    many: bool = False
    target: Any = None
    required: bool = False


def _kind_of(hint: Any) -> tuple[str, bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if set(args) == {date, datetime}:
            return "date_or_datetime", False, None
        if len(args) == 1:
            return _kind_of(args[0])
        raise TypeError(f"unsupported union {hint}")
    if origin is tuple:
        kind, _, target = _kind_of(typing.get_args(hint)[0])
        return kind, True, target
    if hint is str:
        return "str", False, None
    if hint is bool:
        return "bool", False, None
    if hint is int:
        return "int", False, None
    if hint is datetime:
        return "datetime", False, None
    if hint is date:
        return "date", False, None
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return "enum", False, hint
    if hint is model.Coded:
        return "coded", False, model.Coded
    if dataclasses.is_dataclass(hint):
        return "object", False, hint
    raise TypeError(f"unsupported field type {hint}")


def fields_of(cls: type) -> dict[str, FieldKind]:
    hints = typing.get_type_hints(cls, vars(model))
    out = {}
    for f in dataclasses.fields(cls):
        kind, many, target = _kind_of(hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = FieldKind(f.name, kind, many, target, required)
    return out


CATALOGUE: dict[type, dict[str, FieldKind]] = {
    cls: fields_of(cls)
    for cls in (
        model.Person,
        model.Professional,
        model.RelatedParty,
        model.Organisation,
        model.Endorsement,
        model.TreatmentRecommendation,
        model.Coded,
        model.CprDecision,
        model.AdvanceCarePlan,
    )
}
SECTION_HIDDEN = frozenset({"source", "patient"})
"""Fields of CprDecision / AdvanceCarePlan that the spec never maps: the mapper fills them."""

SENSITIVE: dict[type, frozenset[str]] = {
    model.Person: frozenset(
        {"nhs_number", "family_name", "given_names", "birth_date", "address_lines", "postcode"}
    ),
    model.Professional: frozenset({"family_name", "given_names"}),
    model.RelatedParty: frozenset({"name", "phone", "email"}),
    model.CprDecision: frozenset({"rationale", "reason_not_discussed", "document_location"}),
    model.AdvanceCarePlan: frozenset({"wishes", "care_priority_text", "adrt_location", "document_location"}),
    model.TreatmentRecommendation: frozenset({"note"}),
    model.Coded: frozenset({"text", "display"}),
}
"""Identifiers and free text: masked when a record goes to the reject file, never put in messages."""


def is_sensitive(cls: type, name: str) -> bool:
    return name in SENSITIVE.get(cls, ())
