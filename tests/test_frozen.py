"""``frozen.maker(cls)`` builds exactly what ``cls`` builds, and stands aside where it could not."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import care_records

from fhir_dnacpr import model
from fhir_dnacpr.frozen import maker

MODEL_CLASSES = [
    value for value in vars(model).values() if isinstance(value, type) and dataclasses.is_dataclass(value)
]


def test_every_model_class_gets_a_fast_maker() -> None:
    assert len(MODEL_CLASSES) >= 10
    for cls in MODEL_CLASSES:
        assert maker(cls) is not cls, cls.__name__


def _objects(value: Any) -> list[Any]:
    """Every model object inside ``value`` (itself included), children first."""
    found: list[Any] = []
    if isinstance(value, tuple):
        for item in value:
            found += _objects(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found += _objects(getattr(value, f.name))
        found.append(value)
    return found


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(care_records(representable=False))
def test_a_made_object_is_the_constructed_one(record: model.CareRecord) -> None:
    for original in _objects(record):
        cls = type(original)
        values = {f.name: getattr(original, f.name) for f in dataclasses.fields(original)}
        by_name = maker(cls)(**values)
        by_position = maker(cls)(*values.values())
        plain = cls(**values)
        for made in (by_name, by_position):
            assert type(made) is cls
            assert made == plain == original
            assert repr(made) == repr(plain)
            assert hash(made) == hash(plain)
            with pytest.raises(FrozenInstanceError):
                setattr(made, dataclasses.fields(cls)[0].name, None)


def test_defaults_are_the_classes_own() -> None:
    assert maker(model.Coded)() == model.Coded()
    assert maker(model.CareRecord)() == model.CareRecord()
    with pytest.raises(TypeError):
        maker(model.SourceRef)()  # system and record_id have no default
    with pytest.raises(TypeError):
        maker(model.Coded)(colour="red")


@dataclass(frozen=True, slots=True)
class _Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


@dataclass(frozen=True, slots=True)
class _Listed:
    items: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Mutable:
    value: int


@dataclass(frozen=True)
class _NoSlots:
    value: int


@dataclass(frozen=True, slots=True)
class _KeywordOnly:
    value: int = dataclasses.field(kw_only=True)


def test_classes_the_twin_cannot_stand_in_for_are_built_by_themselves() -> None:
    for cls in (_Checked, _Listed, _Mutable, _NoSlots, _KeywordOnly, int):
        assert maker(cls) is cls, cls.__name__
    with pytest.raises(ValueError):
        maker(_Checked)(-1)
