"""The builder's shortcuts change nothing: cached date texts, shared fixed fragments, shared parties
found by identity. Each is compared with the plain computation it replaces."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import care_records

from fhir_dnacpr import canonical as c
from fhir_dnacpr.fhir import build
from fhir_dnacpr.fhir.build import LOCAL_TIMEZONE, SharedParties, build_resources, fhir_datetime
from fhir_dnacpr.fhir.ids import DEFAULT_EXAMPLE_KEY, IdFactory
from fhir_dnacpr.model import Capacity, CareRecord, FormType, PartyRole
from fhir_dnacpr.pipeline.convert import mark_superseded

IDS = IdFactory(DEFAULT_EXAMPLE_KEY)
ZONES = [None, UTC, LOCAL_TIMEZONE, ZoneInfo("America/New_York"), timezone(timedelta(hours=-3, minutes=-30))]


def _plain(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=LOCAL_TIMEZONE)).isoformat()
    return value.isoformat()


moments = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=zone, fold=fold),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(ZONES),
    st.sampled_from([0, 1]),
)


@given(st.lists(moments | st.dates(), max_size=20))
def test_cached_date_texts_are_the_plain_ones(values: list[date | datetime]) -> None:
    for value in values * 2:  # the second round comes from the cache
        assert fhir_datetime(value) == _plain(value)


def test_equal_instants_in_other_zones_or_folds_keep_their_own_text() -> None:
    london = datetime(2024, 7, 1, 13, 0, tzinfo=LOCAL_TIMEZONE)
    utc = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert london == utc
    assert (fhir_datetime(london), fhir_datetime(utc)) == (
        "2024-07-01T13:00:00+01:00",
        "2024-07-01T12:00:00+00:00",
    )
    first = datetime(2024, 10, 27, 1, 30, tzinfo=LOCAL_TIMEZONE)  # the hour that happens twice
    second = first.replace(fold=1)
    assert (fhir_datetime(first), fhir_datetime(second)) == (
        "2024-10-27T01:30:00+01:00",
        "2024-10-27T01:30:00+00:00",
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(care_records(), min_size=2, max_size=5))
def test_marking_one_record_superseded_leaves_every_other_record_as_built(records: list[CareRecord]) -> None:
    """Fixed fragments are shared between records; the parts supersession changes never are."""
    shared = SharedParties(IDS)
    built = [build_resources(record, IDS, shared) for record in records]
    before = [orjson.dumps(resources) for resources in built]
    for resources in built[:-1]:
        for resource in resources:
            if resource["resourceType"] in ("Consent", "CarePlan"):
                mark_superseded(resource)
    assert orjson.dumps(built[-1]) == before[-1]
    assert orjson.dumps(build_resources(records[-1], IDS, shared)) == before[-1]
    for record, expected in zip(records[:-1], before[:-1], strict=True):
        assert orjson.dumps(build_resources(record, IDS)) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(care_records(), min_size=1, max_size=5))
def test_shared_parties_found_by_identity_or_by_value_build_the_same(records: list[CareRecord]) -> None:
    shared = SharedParties(IDS)
    for record in [*records, *records, *copy.deepcopy(records)]:  # same objects, then equal copies
        assert orjson.dumps(build_resources(record, IDS, shared)) == orjson.dumps(
            build_resources(record, IDS)
        )


def test_a_full_shared_parties_table_starts_again(monkeypatch) -> None:
    from test_fhir_build import RESPECT

    monkeypatch.setattr(SharedParties, "MAX_ENTRIES", 2)
    shared = SharedParties(IDS)

    expected = orjson.dumps(build_resources(RESPECT, IDS))
    for _ in range(5):
        assert orjson.dumps(build_resources(RESPECT, IDS, shared)) == expected
        assert len(shared.resources) <= 2 and len(shared.by_identity) <= 2


@pytest.mark.parametrize(
    ("table", "url", "system", "members", "as_concept"),
    [
        (build._CAPACITY_EXTENSIONS, c.EXT_MENTAL_CAPACITY, c.CS_MENTAL_CAPACITY, Capacity, True),
        (build._FORM_TYPE_EXTENSIONS, c.EXT_FORM_TYPE, c.CS_FORM_TYPE, FormType, False),
        (build._ROLE_EXTENSIONS, c.EXT_RELATED_PARTY_ROLE, c.CS_RELATED_PARTY_ROLE, PartyRole, False),
    ],
)
def test_extensions_read_from_the_enum_tables_are_the_plain_ones(table, url, system, members, as_concept):
    """The builder finds a coded extension by member (or by its text, as a plain str role is)."""
    for member in members:
        coding = {"system": system, "code": member.value}
        value = {"valueCodeableConcept": {"coding": [coding]}} if as_concept else {"valueCoding": coding}
        plain = {"url": url, **value}
        assert table[member] == plain
        assert table.get(str(member)) == plain
        assert orjson.dumps(table[member]) == orjson.dumps(plain)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(care_records(kinds=("plan", "both")), st.booleans())
def test_a_plan_points_at_the_consent_id_the_ids_give(record: CareRecord, another: bool) -> None:
    """The plan reuses the id of the Consent just built only when it is that Consent's."""
    if another and record.decision is not None:  # a plan pointing at some other decision
        record = replace(record, plan=replace(record.plan, cpr_decision_record_id="another-record"))
    plan = record.plan
    resources = build_resources(record, IDS)
    careplan = next(r for r in resources if r["resourceType"] == "CarePlan")
    refs = [s for s in careplan.get("supportingInfo", []) if s["reference"].startswith("Consent/")]
    if plan.cpr_decision_record_id:
        expected = IdFactory(DEFAULT_EXAMPLE_KEY).id_for(
            "Consent", plan.source.system, plan.cpr_decision_record_id
        )
        assert refs == [
            {
                "reference": f"Consent/{expected}",
                "identifier": {"system": plan.source.system, "value": plan.cpr_decision_record_id},
            }
        ]
    else:
        assert refs == []
    if record.decision is not None:
        consent = next(r for r in resources if r["resourceType"] == "Consent")
        assert consent["id"] == IDS.id_for(
            "Consent", record.decision.source.system, record.decision.source.record_id
        )


def test_local_times_cached_by_bare_value_keep_zone_fold_and_precision() -> None:
    """Naive and ``LOCAL_TIMEZONE`` times of fold 0 share one table keyed by the bare value: a naive time
    and its local twin, fold-1 twins and equal instants in other zones must each keep their own text,
    whichever comes first."""
    for minute in (5, 15, 25, 35):  # fresh values each round, met in a different order
        local = datetime(2024, 10, 27, 1, minute, tzinfo=LOCAL_TIMEZONE)  # the hour that happens twice
        values = [
            local,
            local.replace(fold=1),
            local.replace(tzinfo=None),
            local.replace(tzinfo=None, fold=1),
            local.astimezone(UTC),
            local.replace(fold=1).astimezone(UTC),
            datetime(2024, 10, 27, minute=minute, tzinfo=LOCAL_TIMEZONE),
        ]
        order = values[minute % 7 :] + values[: minute % 7]
        for value in order * 2:
            assert fhir_datetime(value) == _plain(value)
