"""The canonical model's classes: the fast ``__init__`` behaves as the dataclass one it replaces."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from datetime import date

import pytest
from hypothesis import given, settings
from strategies import care_records

from fhir_dnacpr import model

CLASSES = [
    value
    for value in vars(model).values()
    if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == model.__name__
]


def test_every_model_class_is_a_frozen_slots_dataclass_with_the_fast_init() -> None:
    assert len(CLASSES) == 11
    for cls in CLASSES:
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        assert "__slots__" in cls.__dict__, cls
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_the_signature_is_the_fields_in_order_with_their_defaults(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields, strict=True):
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        expected = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
        assert parameter.default is expected


def test_positional_keyword_and_default_arguments() -> None:
    source = model.SourceRef("https://example.org", "R1")
    assert source == model.SourceRef(system="https://example.org", record_id="R1")
    assert (source.last_updated, source.file, source.location) == (None, None, None)
    decision = model.CprDecision(
        source, model.Person("9991000011"), model.CprDecisionValue.NOT_FOR_CPR, date(2024, 3, 1)
    )
    assert decision.status is model.RecordStatus.ACTIVE
    assert decision.others_consulted == () and decision.review_indefinite is False
    assert model.CareRecord(decision).warnings == ()
    with pytest.raises(TypeError, match="nhs_number"):
        model.Person()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.Person("9991000011", nickname="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        model.SourceRef("a", "b", None, None, None, "extra")  # type: ignore[call-arg]


def test_instances_stay_frozen() -> None:
    person = model.Person("9991000011")
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.family_name = "Changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del person.nhs_number  # type: ignore[misc]


@settings(max_examples=60, deadline=None)
@given(care_records(representable=False))
def test_rebuilding_copying_and_pickling_give_equal_records(record: model.CareRecord) -> None:
    for item in (record, record.decision, record.plan, record.patient):
        if item is None:
            continue
        again = type(item)(**{f.name: getattr(item, f.name) for f in dataclasses.fields(item)})
        assert again == item and hash(again) == hash(item) and repr(again) == repr(item)
        assert dataclasses.replace(item) == item
        assert pickle.loads(pickle.dumps(item)) == item
