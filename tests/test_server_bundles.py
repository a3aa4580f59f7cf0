"""Cutting resources into bundles: reference-closed units, packing, dedupe, digests, conditional writes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.server.bundles import (
    ConditionalWrites,
    PushBundle,
    PushEntry,
    bundle_body,
    identifier_match,
    pack,
    references,
    units_of,
)


def res(rtype: str, rid: str, *refs: str, **extra: Any) -> PushEntry:
    resource: dict[str, Any] = {"resourceType": rtype, "id": rid, **extra}
    if refs:
        resource["ref"] = [{"reference": r} for r in refs]
    return PushEntry.of(resource, origin=f"{rtype}-{rid}-origin")


def refs_of(unit: list[PushEntry]) -> list[str]:
    return [e.ref for e in unit]


def record(n: int) -> list[PushEntry]:
    """One converted record: Consent → Patient → Organization, Consent → Practitioner → Organization."""
    return [
        res("Organization", "org"),
        res("Patient", f"p{n}", "Organization/org"),
        res("Practitioner", f"dr{n}"),
        res("Consent", f"c{n}", f"Patient/p{n}", f"Practitioner/dr{n}", "Organization/org"),
    ]


def test_references_are_found_everywhere() -> None:
    resource = {
        "a": {"reference": "Patient/1"},
        "b": [{"x": {"reference": "Organization/2"}}],
        "reference": 3,
    }
    assert sorted(references(resource)) == ["Organization/2", "Patient/1"]


def test_a_unit_is_a_root_with_its_dependencies_first() -> None:
    units, annotations = units_of(record(1))
    assert annotations == []
    assert len(units) == 1
    unit = refs_of(units[0])
    assert unit[-1] == "Consent/c1"
    assert unit.index("Organization/org") < unit.index("Patient/p1")


def test_shared_resources_go_with_every_unit_and_provenance_waits() -> None:
    entries = record(1) + record(2)[1:]
    entries.append(res("Provenance", "prov", *[e.ref for e in entries]))
    units, annotations = units_of(entries)
    assert [u[-1].ref for u in units] == ["Consent/c1", "Consent/c2"]
    assert all("Organization/org" in refs_of(u) for u in units)
    assert [a.ref for a in annotations] == ["Provenance/prov"]


def test_absolute_and_versioned_references_count() -> None:
    entries = [res("Patient", "p"), res("Consent", "c", "http://server/fhir/Patient/p/_history/2")]
    units, _ = units_of(entries)
    assert refs_of(units[0]) == ["Patient/p", "Consent/c"]


def test_urn_uuid_full_urls_are_followed() -> None:
    patient = PushEntry.of({"resourceType": "Patient", "id": "p"}, full_url="urn:uuid:1")
    consent = PushEntry.of({"resourceType": "Consent", "id": "c", "patient": {"reference": "urn:uuid:1"}})
    units, _ = units_of([patient, consent])
    assert refs_of(units[0]) == ["Patient/p", "Consent/c"]


def test_reference_cycles_are_not_lost() -> None:
    units, _ = units_of([res("CarePlan", "a", "CarePlan/b"), res("CarePlan", "b", "CarePlan/a")])
    assert sorted(e.ref for u in units for e in u) == ["CarePlan/a", "CarePlan/b"]


def test_packing_respects_the_size_counting_distinct_resources() -> None:
    units = [units_of(record(n))[0][0] for n in range(10)]  # 4 entries each, Organization shared
    bundles = list(pack(units, 7))
    # the first unit brings 4 resources, each next one 3 new ones: 4 + 3 = 7 fit, the third does not
    assert [len(b.entries) for b in bundles] == [7, 7, 7, 7, 7]
    assert [b.number for b in bundles] == [1, 2, 3, 4, 5]
    assert sum(b.duplicates for b in bundles) == 5  # the shared Organization, once per extra unit


def test_a_unit_larger_than_the_size_travels_alone() -> None:
    big = [res("Patient", f"p{i}") for i in range(5)]
    bundles = list(pack([[res("Patient", "x")], big, [res("Patient", "y")]], 3))
    assert [len(b.entries) for b in bundles] == [1, 5, 1]


def test_identical_copies_are_dropped_differing_ones_superseded() -> None:
    old = PushEntry.of({"resourceType": "Patient", "id": "p", "gender": "male"}, origin="row 1")
    same = PushEntry.of({"gender": "male", "id": "p", "resourceType": "Patient"}, origin="row 2")
    new = PushEntry.of({"resourceType": "Patient", "id": "p", "gender": "female"}, origin="row 3")
    (bundle,) = pack([[old], [same], [new]], 10)
    assert [e.origin for e in bundle.entries] == ["row 3"]
    assert bundle.duplicates == 1
    assert [e.origin for e in bundle.superseded] == ["row 1"]


def test_digest_depends_on_content_only() -> None:
    a = PushBundle(1, (res("Patient", "p", gender="male"),))
    b = PushBundle(9, (PushEntry.of({"gender": "male", "resourceType": "Patient", "id": "p"}),))
    c = PushBundle(1, (res("Patient", "p", gender="female"),))
    assert a.digest == b.digest != c.digest


@st.composite
def graphs(draw: st.DrawFn) -> list[PushEntry]:
    n = draw(st.integers(1, 25))
    types = draw(
        st.lists(st.sampled_from(["Patient", "Consent", "CarePlan", "Provenance"]), min_size=n, max_size=n)
    )
    entries = []
    for i, rtype in enumerate(types):
        targets = draw(st.lists(st.integers(0, n - 1), max_size=4))
        entries.append(res(rtype, f"r{i}", *[f"{types[t]}/r{t}" for t in targets if t != i]))
    return entries


@given(graphs(), st.integers(1, 12))
def test_nothing_is_lost_and_units_are_closed(entries: list[PushEntry], size: int) -> None:
    units, annotations = units_of(entries)
    by_ref = {e.ref: e for e in entries}
    sent = {e.ref for u in units for e in u} | {a.ref for a in annotations}
    assert sent == set(by_ref), "every entry is in a unit or held back"
    for unit in units:
        members = set(refs_of(unit))
        for entry in unit:
            for target in references(entry.resource):
                if target in by_ref and by_ref[target].resource_type != "Provenance":
                    assert target in members, "a unit carries what its members reference"
    bundles = list(pack(units, size))
    assert {e.ref for b in bundles for e in b.entries} == {e.ref for u in units for e in u}
    for bundle in bundles:
        assert len({e.ref for e in bundle.entries}) == len(bundle.entries), "no Type/id twice in a bundle"


def test_identifier_match_is_url_encoded() -> None:
    resource = {
        "identifier": [
            {"value": "no system"},
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"},
        ]
    }
    assert identifier_match(resource) == "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990000018"
    assert identifier_match({}) is None


def test_conditional_writes_rewrite_ids_and_references() -> None:
    nhs = [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]
    patient = res("Patient", "p", identifier=nhs)
    consent = res("Consent", "c", "Patient/p", identifier=[{"system": "urn:src", "value": "R1"}])
    provenance = res("Provenance", "v", "Consent/c")
    writes = ConditionalWrites(conditional_update={"Patient"}, conditional_create={"Patient", "Consent"})
    writes.enable("Patient")
    writes.enable("Consent")
    writes.enable("Provenance")
    out, refused = writes.rewrite((patient, consent, provenance))
    assert list(refused) == [2] and "no identifier" in refused[2]
    p_entry, c_entry = out
    assert p_entry["request"]["method"] == "PUT" and p_entry["request"]["url"].startswith(
        "Patient?identifier="
    )
    assert "id" not in p_entry["resource"] and p_entry["fullUrl"].startswith("urn:uuid:")
    assert c_entry["resource"]["ref"][0]["reference"] == p_entry["fullUrl"], "in-bundle refs use the urn"
    assert c_entry["request"] == {
        "method": "POST",
        "url": "Consent",
        "ifNoneExist": "identifier=urn%3Asrc%7CR1",
    }
    # a later bundle referring to the Patient gets a conditional reference
    later, _ = writes.rewrite(
        (res("Consent", "c2", "Patient/p", identifier=[{"system": "urn:src", "value": "R2"}]),)
    )
    assert later[0]["resource"]["ref"][0]["reference"].startswith("Patient?identifier=")


def test_plain_entries_are_put_with_our_id() -> None:
    body = bundle_body("batch", [])
    assert body == {"resourceType": "Bundle", "type": "batch", "entry": []}
    with pytest.raises(ValueError):
        bundle_body("collection", [])
    with pytest.raises(ValueError):
        PushEntry.of({"resourceType": "Patient"})
