"""The client's round trip against the real HAPI server, on the three bundled example exports.

convert → push → pull (by patient) → parse: every record that converted comes back equal to the
canonical record mapped straight from the source export (superseded ones as superseded). Then the
pull is reverse-mapped into the spec's own layout and mapped again: equal once more, for the
records the layout can hold.

Whole records are compared. What the FHIR server round trip cannot give back is named in
``comparable`` and ``settle_shared_parties`` below, each with its reason (docs/fhir-mapping.md,
"What does not round-trip").
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from server_testdata import bundle_resources, delete_all

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.fhir.parse import index_resources, parse_records
from fhir_dnacpr.mapping import MappingSpec, load_spec
from fhir_dnacpr.model import CareRecord, Professional, RecordStatus, RelatedParty
from fhir_dnacpr.pipeline import ConvertOptions, convert
from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.pull import Puller, PullQuery
from fhir_dnacpr.server.push import Pusher
from fhir_dnacpr.server.retry import RetryPolicy
from fhir_dnacpr.server.reverse import REJECTS_FILE, read_ndjson_dir, reverse_map

pytestmark = pytest.mark.server

FAST = RetryPolicy(total=4, backoff_base=0.05, backoff_max=0.5, retry_after_cap=2)

EXAMPLES = {
    # name: (export, reverse-map format or None when the layout cannot be written back)
    "epaccs": ("register.csv", "csv"),
    "respect": ("respect-forms.xml", None),  # unmap does not write XML (MappingSpec.unmap)
    "acp-app": ("plans.ndjson", "json"),
}
SUPERSEDED = {"epaccs": {"EP-0009"}, "respect": {"RS-1006"}, "acp-app": {"ACP-5006"}}
"""The records a newer decision for the same patient supersedes (examples/README.md)."""

Key = tuple[str, str]


def key_of(record: CareRecord) -> Key:
    item = record.decision or record.plan
    assert item is not None
    return item.source.system, item.source.record_id


def source_records(spec: MappingSpec, export: Path, superseded: set[str]) -> dict[Key, CareRecord]:
    """The canonical records of the export, straight from spec.read + spec.map (no FHIR involved)."""
    records: dict[Key, CareRecord] = {}
    for raw in spec.read(export):
        record = spec.map(raw).record
        if record is None:
            continue  # rejected by the mapping: convert rejects it too (checked by the counts)
        if key_of(record)[1] in superseded:
            record = with_status(record, RecordStatus.SUPERSEDED)
        records[key_of(record)] = record  # an exact duplicate maps to the same record
    return records


def with_status(record: CareRecord, status: RecordStatus) -> CareRecord:
    decision = dataclasses.replace(record.decision, status=status) if record.decision else None
    plan = dataclasses.replace(record.plan, status=status) if record.plan else None
    return dataclasses.replace(record, decision=decision, plan=plan)


def map_parties(record: CareRecord, change: Callable[[object], object]) -> CareRecord:
    """``record`` with ``change`` applied to every professional and related party, in a fixed order."""
    decision, plan = record.decision, record.plan
    if decision is not None:
        endorsement = decision.senior_endorsement
        decision = dataclasses.replace(
            decision,
            others_consulted=tuple(change(p) for p in decision.others_consulted),
            decision_maker=change(decision.decision_maker) if decision.decision_maker else None,
            senior_endorsement=(
                dataclasses.replace(endorsement, by=change(endorsement.by)) if endorsement else None
            ),
        )
    if plan is not None:
        plan = dataclasses.replace(
            plan,
            author=change(plan.author) if plan.author else None,
            lpa=tuple(change(p) for p in plan.lpa),
            people_to_involve=tuple(change(p) for p in plan.people_to_involve),
        )
    return dataclasses.replace(record, decision=decision, plan=plan)


def comparable(record: CareRecord) -> CareRecord:
    """The record without what a FHIR server round trip cannot carry, each for a stated reason.

    - ``SourceRef.file`` / ``location``: where the row sat in one export file, not part of the
      record (the model says so); a pull has no export file.
    - ``SourceRef.last_updated``: written as ``meta.lastUpdated``, which the server owns and sets to
      its own write time (FHIR R4 ``Resource.meta``).
    - ``CareRecord.warnings``: mapping warnings belong to the convert run, not to the record.
    - ``Professional.organisation``: no PractitionerRole in v0.1, so a decision maker's or author's
      organisation is not written (``representation_issues`` reports it at convert time).
    """

    def source_only(item):
        if item is None:
            return None
        source = dataclasses.replace(item.source, file=None, location=None, last_updated=None)
        return dataclasses.replace(item, source=source)

    def without_organisation(party):
        return dataclasses.replace(party, organisation=None) if isinstance(party, Professional) else party

    plain = dataclasses.replace(
        record, decision=source_only(record.decision), plan=source_only(record.plan), warnings=()
    )
    return map_parties(plain, without_organisation)


def party_identity(record: CareRecord, party: object) -> tuple:
    """The natural key the builder gives the party's resource (docs/fhir-mapping.md, ids table)."""
    if isinstance(party, RelatedParty):
        return ("RelatedPerson", record.patient.nhs_number, str(party.role), party.name)
    assert isinstance(party, Professional)
    if party.registration_number:
        return ("Practitioner", party.registration_body, party.registration_number)
    return ("Practitioner", party.display_name)


def party_details(party: object) -> tuple:
    """What the party's one shared resource holds beyond its identity (consulted_on is per Consent)."""
    if isinstance(party, RelatedParty):
        return (party.relationship, party.phone, party.email)
    assert isinstance(party, Professional)
    return (party.family_name, party.given_names, party.role)


def with_details(party: object, details: tuple) -> object:
    if isinstance(party, RelatedParty):
        return dataclasses.replace(party, relationship=details[0], phone=details[1], email=details[2])
    return dataclasses.replace(party, family_name=details[0], given_names=details[1], role=details[2])


def versions_in_export(records: list[CareRecord]) -> dict[tuple, set[tuple]]:
    """Every version of each party's details the export holds, by the party's resource identity."""
    versions: dict[tuple, set[tuple]] = {}

    def note(record: CareRecord) -> Callable[[object], object]:
        def collect(party: object) -> object:
            versions.setdefault(party_identity(record, party), set()).add(party_details(party))
            return party

        return collect

    for record in records:
        map_parties(record, note(record))
    return versions


def settle_shared_parties(
    expected: CareRecord, got: CareRecord, versions: dict[tuple, set[tuple]]
) -> CareRecord:
    """``expected`` with each party's details as they came back, once checked to be a version the
    export itself gives for that party.

    Why: one person is one FHIR resource (a RelatedPerson per patient + role + name, a Practitioner
    per registration number), shared by every place and record that names them. Where the export
    gives that person different details in different places (the consulted LPA with a relationship,
    the plan's LPA without one; an endorser without the role the same GMC number has as decision
    maker elsewhere), the server keeps one version — the last one written — and every place reads
    that one back (the bundle writer reports a conflict inside one bundle as
    ``WRITE_CONFLICTING_DUPLICATE``; each example fits one bundle). Which
    version wins depends on the push order, so the check is: identity unchanged, details one of
    the export's own versions (nothing invented, nothing from another person). Parties with a single
    version in the export must come back exactly.
    """
    returned: list[object] = []

    def remember(party: object) -> object:
        returned.append(party)
        return party

    map_parties(got, remember)
    queue = iter(returned)

    def settle(party: object) -> object:
        back = next(queue, None)
        if back is None or party_identity(expected, back) != party_identity(expected, party):
            return party  # a missing or different party: the record comparison will show it
        assert party_details(back) in versions[party_identity(expected, party)], (
            f"{key_of(expected)[1]}: details of a party that the export never gave"
        )
        return with_details(party, party_details(back))

    return map_parties(expected, settle)


def assert_same_records(
    expected: dict[Key, CareRecord], got: list[CareRecord], versions: dict[tuple, set[tuple]]
) -> None:
    by_key = {key_of(record): comparable(record) for record in got}
    assert len(by_key) == len(got), "each record comes back once"
    assert sorted(by_key) == sorted(expected)
    for key, record in expected.items():
        want = settle_shared_parties(comparable(record), by_key[key], versions)
        assert by_key[key] == want, f"{key[1]} differs after the round trip"


@pytest.fixture()
def client(fhir_base_url: str) -> Iterator[FhirClient]:
    with FhirClient(fhir_base_url, retry=FAST) as running:
        yield running


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_examples_come_back_as_the_canonical_records_of_their_export(
    example: str, client: FhirClient, tmp_path: Path, repo_root: Path
) -> None:
    folder = repo_root / "examples" / example
    export_name, layout = EXAMPLES[example]
    spec = load_spec(folder / "mapping.yaml")
    expected = source_records(spec, folder / export_name, SUPERSEDED[example])
    versions = versions_in_export(list(expected.values()))

    # Run-unique ids: the resources of this run are new on a shared server, and the Consents and
    # CarePlans that other runs wrote for the same (synthetic) patients are told apart by id.
    ids = IdFactory(f"roundtrip-{uuid.uuid4().hex}".encode())
    converted = tmp_path / "converted"
    summary = convert(ConvertOptions(folder / export_name, spec, converted, ids))
    assert summary.records_converted == len(expected)
    assert summary.superseded == len(SUPERSEDED[example])
    sent = list(bundle_resources(converted))
    items = {f"{r['resourceType']}/{r['id']}" for r in sent if r["resourceType"] in ("Consent", "CarePlan")}
    try:
        pushed = Pusher(client).push_directory(converted)
        assert pushed.complete and pushed.failed == 0

        everything: dict[str, dict] = {}
        unresolved = 0
        patients = sorted({record.patient.nhs_number for record in expected.values()})
        for n, nhs_number in enumerate(patients):
            out = tmp_path / "pulled" / str(n)
            pull = Puller(client).pull(PullQuery(patient=nhs_number), out)
            assert pull.complete
            unresolved += pull.unresolved_references
            everything.update(index_resources(read_ndjson_dir(out)))
        # The only reference left dangling is a plan's link to a CPR decision held elsewhere (ACP-5008).
        elsewhere = [
            r.plan
            for r in expected.values()
            if r.plan and r.plan.cpr_decision_record_id not in (None, *(k[1] for k in expected))
        ]
        assert unresolved == len(elsewhere)
        # Everything pulled for these patients; the decisions and plans of other runs stay out.
        ours = {
            ref: resource
            for ref, resource in everything.items()
            if resource["resourceType"] not in ("Consent", "CarePlan") or ref in items
        }
        assert {ref for ref in ours if ref.split("/")[0] in ("Consent", "CarePlan")} == items

        parsed = parse_records(ours)
        assert [issue for issue in parsed.issues if issue.is_error] == []
        assert_same_records(expected, parsed.records, versions)
        superseded = [r for r in parsed.records if key_of(r)[1] in SUPERSEDED[example]]
        assert superseded and all(
            item.status is RecordStatus.SUPERSEDED
            for r in superseded
            for item in (r.decision, r.plan)
            if item
        )

        if layout is not None:
            superseded_refs = {
                f"{kind}/{ids.id_for(kind, system, record_id)}"
                for system, record_id in expected
                if record_id in SUPERSEDED[example]
                for kind in ("Consent", "CarePlan")
            }
            assert_reverse_mapped(tmp_path / "ours", ours, spec, layout, expected, versions, superseded_refs)
    finally:
        delete_all(client, sent)


def assert_reverse_mapped(
    folder: Path,
    resources: dict[str, dict],
    spec: MappingSpec,
    layout: str,
    expected: dict[Key, CareRecord],
    versions: dict[tuple, set[tuple]],
    superseded_refs: set[str],
) -> None:
    """Pulled FHIR → the spec's layout (``reverse_map``) → spec.read + spec.map = the source records.

    A superseded record cannot be written in a layout whose status column has no value for
    "superseded" (the EPaCCS register only knows active / cancelled / entered in error):
    ``reverse_map`` rejects it with the reason; every other record must come back.
    """
    folder.mkdir()
    by_type: dict[str, list[bytes]] = {}
    for resource in resources.values():
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for resource_type, lines in by_type.items():
        (folder / f"{resource_type}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    summary = reverse_map(folder, spec, layout)
    assert summary.parse_errors == 0
    rejects = [json.loads(line) for line in (folder / REJECTS_FILE).read_text().splitlines()]
    assert summary.records + summary.rejected == len(expected) and summary.rejected == len(rejects)
    for reject in rejects:
        assert reject["stage"] == "unmap" and reject["reason"].startswith("decision.status: "), reject
        assert set(reject["resources"]) <= superseded_refs
    again: list[CareRecord] = []
    for raw in spec.read(folder / summary.output):
        result = spec.map(raw)
        assert result.record is not None, [issue.message for issue in result.issues]
        again.append(result.record)
    written = {key: record for key, record in expected.items() if key in {key_of(r) for r in again}}
    assert all(is_superseded(record) for key, record in expected.items() if key not in written)
    assert_same_records(written, again, versions)


def is_superseded(record: CareRecord) -> bool:
    return any(item.status is RecordStatus.SUPERSEDED for item in (record.decision, record.plan) if item)
