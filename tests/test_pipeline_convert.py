"""The convert pipeline end to end: conservation, located rejects, supersession, determinism.

The fault corpus is the EPaCCS example layout with one record per kind of fault, so each assertion
names the exact line and reason a user would see in rejects.ndjson.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.mapping import load_spec
from fhir_dnacpr.pipeline import ConvertOptions, ExitCode, convert
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

EPACCS = Path(__file__).resolve().parent.parent / "examples" / "epaccs"
RUN_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def nhs(serial: int) -> str:
    """The serial-th valid NHS number in the 999 test range."""
    n = serial
    while True:
        first_nine = f"999{n:06d}"
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            return first_nine + str(check)
        n += 10_000


def _template() -> tuple[list[str], dict[str, str]]:
    text = (EPACCS / "register.csv").read_text(encoding="cp1252")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    good = next(r for r in rows if r["register_id"] == "EP-0004")
    return list(rows[0].keys()), good


def _row(base: dict[str, str], **changes: str) -> dict[str, str]:
    row = dict(base)
    row.update(changes)
    return row


def write_fault_corpus(path: Path) -> dict[int, str]:
    """Write the corpus; return {line number: expected reject reason} for the faulty rows."""
    header, good = _template()
    rows: list[dict[str, str] | str] = []
    expected: dict[int, str] = {}
    faults = [
        ("mapping.nhs-number.check-digit", {"nhs_no": nhs(1)[:9] + str((int(nhs(1)[9]) + 1) % 10)}),
        ("mapping.required.missing", {"nhs_no": ""}),
        ("mapping.nhs-number.format", {"nhs_no": "99912"}),
        ("mapping.date.impossible", {"decision_date": "31/02/2024"}),
        ("mapping.date.unparseable", {"decision_date": "next tuesday"}),
        ("mapping.decision-date.future", {"decision_date": "01/01/2099"}),
        ("mapping.review-date.before-decision", {"decision_date": "10/03/2024", "review_date": "01/03/2024"}),
        ("mapping.value-map.unknown", {"cpr_status": "Maybe later"}),
    ]
    for i in range(20):
        rows.append(_row(good, register_id=f"OK-{i:03d}", nhs_no=nhs(100 + i)))
    for i, (reason, change) in enumerate(faults):
        rows.append(_row(good, register_id=f"BAD-{i:03d}", **change))
        expected[len(rows) + 1] = reason  # +1: the header is line 1, one physical line per row here
    rows.append("BROKEN-1,02/03/2024,only,five,fields")
    expected[len(rows) + 1] = "read.csv.field-count"
    rows.append(rows[0])  # exact duplicate of OK-000
    # supersession: the same person, an older and a newer decision
    rows.append(
        _row(
            good,
            register_id="SUP-OLD",
            nhs_no=nhs(500),
            decision_date="01/01/2024",
            last_updated="01/01/2024 10:00",
        )
    )
    rows.append(
        _row(
            good,
            register_id="SUP-NEW",
            nhs_no=nhs(500),
            decision_date="01/02/2024",
            last_updated="01/02/2024 10:00",
        )
    )
    # a replaced version: the same record id twice, the later one wins
    rows.append(_row(good, register_id="VER-1", nhs_no=nhs(600), last_updated="01/01/2024 10:00"))
    rows.append(
        _row(good, register_id="VER-1", nhs_no=nhs(600), last_updated="02/01/2024 10:00", rationale="updated")
    )

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        if isinstance(row, str):
            buffer.write(row + "\r\n")
        else:
            writer.writerow(row)
    path.write_bytes(buffer.getvalue().encode("cp1252"))
    return expected


def run(tmp_path: Path, input_path: Path, spec_path: Path, **kw) -> tuple:
    out = tmp_path / kw.pop("out", "out")
    options = ConvertOptions(
        input_path=input_path,
        spec=load_spec(spec_path),
        out_dir=out,
        ids=IdFactory.from_env("FHIR_DNACPR_TEST_UNSET_KEY"),
        run_time=RUN_TIME,
        **kw,
    )
    return convert(options), out


def read_ndjson(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture()
def fault_corpus(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    path = tmp_path / "faults.csv"
    return path, write_fault_corpus(path)


def test_every_record_is_accounted_for_and_every_fault_rejected_where_it_is(tmp_path, fault_corpus):
    path, expected = fault_corpus
    summary, out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="ndjson")

    assert summary.records_in == 20 + len(expected) + 1 + 2 + 2
    assert summary.balanced
    assert summary.records_in == (
        summary.records_converted
        + summary.records_rejected
        + summary.duplicates_dropped
        + summary.versions_replaced
    )
    assert summary.duplicates_dropped == 1
    assert summary.versions_replaced == 1
    assert summary.superseded == 1
    assert summary.records_converted == 20 + 2 + 1
    assert summary.exit_code is ExitCode.REJECTS

    rejects = read_ndjson(out / "rejects.ndjson")
    got = {r["origin"]["line"]: r["reason"] for r in rejects}
    assert got == expected
    for reject in rejects:
        assert reject["where"].startswith(str(path))
        assert reject["outcome"]["resourceType"] == "OperationOutcome"
        assert reject["stage"] in ("read", "map")

    written = json.loads((out / "summary.json").read_text())
    assert written["records_rejected"]["total"] == len(expected)
    assert written["balanced"] is True


def test_rejects_do_not_leak_identifiers_unless_asked(tmp_path, fault_corpus):
    path, _ = fault_corpus
    _, out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="ndjson")
    text = (out / "rejects.ndjson").read_text()
    assert nhs(1)[:9] not in text
    _, raw_out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="ndjson", reject_raw=True, out="raw")
    assert nhs(1)[:9] in (raw_out / "rejects.ndjson").read_text()


def test_superseded_decision_is_kept_inactive_and_replaced_version_listed(tmp_path, fault_corpus):
    path, _ = fault_corpus
    _, out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="ndjson")
    consents = read_ndjson(out / "Consent.ndjson")
    by_record = {c["identifier"][0]["value"]: c for c in consents}
    assert by_record["SUP-OLD"]["status"] == "inactive"
    assert by_record["SUP-NEW"]["status"] == "active"
    assert sum(1 for c in consents if c["identifier"][0]["value"] == "VER-1") == 1
    assert len(read_ndjson(out / "replaced.ndjson")) == 1


def test_max_errors_stops_cleanly_with_exit_code_3(tmp_path, fault_corpus):
    path, _ = fault_corpus
    summary, out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="bundle", max_errors=3)
    assert summary.exit_code is ExitCode.ABORTED
    assert summary.records_rejected == 3
    assert "--max-errors" in summary.aborted
    assert len(read_ndjson(out / "rejects.ndjson")) == 3
    assert list(out.glob("bundle-*.json")), "records before the stop are still written"


def test_same_input_gives_byte_identical_output(tmp_path):
    _, out1 = run(tmp_path, EPACCS / "register.csv", EPACCS / "mapping.yaml", fmt="ndjson", out="a")
    _, out2 = run(tmp_path, EPACCS / "register.csv", EPACCS / "mapping.yaml", fmt="ndjson", out="b")
    names = sorted(p.name for p in out1.iterdir() if p.name != "summary.json")
    assert names == sorted(p.name for p in out2.iterdir() if p.name != "summary.json")
    for name in names:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name


def test_validation_rejects_nonconforming_records_with_located_issues(tmp_path, fault_corpus):
    from fhir_dnacpr.issues import Issue, Severity

    path, _ = fault_corpus

    def validate(resource: dict) -> list[Issue]:
        # a stand-in rule that really inspects the built resource: Consents of one record fail
        if resource["resourceType"] == "Consent" and resource["identifier"][0]["value"] == "OK-003":
            return [Issue(Severity.ERROR, "invariant", "planted failure", "Consent.status", "test.planted")]
        return []

    summary, out = run(tmp_path, path, EPACCS / "mapping.yaml", fmt="ndjson", validate=validate)
    rejects = [r for r in read_ndjson(out / "rejects.ndjson") if r["stage"] == "validate"]
    assert len(rejects) == 1
    assert rejects[0]["reason"] == "test.planted"
    assert rejects[0]["outcome"]["issue"][0]["expression"][0].startswith("Consent/")
    assert summary.balanced


def test_examples_convert_and_validate_against_our_profiles(tmp_path, examples_dir):
    from fhir_dnacpr.validation import default_validator

    for layout, source in (("epaccs", "register.csv"), ("respect", None), ("acp-app", None)):
        folder = examples_dir / layout
        data = (
            folder / source
            if source
            else next(p for p in folder.iterdir() if p.suffix in (".xml", ".ndjson"))
        )
        summary, out = run(
            tmp_path,
            data,
            folder / "mapping.yaml",
            fmt="ndjson",
            validate=default_validator().validate,
            out=layout,
        )
        assert summary.balanced
        stages = {r["stage"] for r in read_ndjson(out / "rejects.ndjson")}
        assert "validate" not in stages, f"{layout}: converted resources must conform to our profiles"
        assert summary.records_converted > 0


# --- the per-record helpers made cheaper than the plain forms: same answers --------------------------

from datetime import date, timedelta, timezone  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fhir_dnacpr.pipeline.convert import NO_ORDER, _order_key, _raw_digest, _RawDigests  # noqa: E402
from fhir_dnacpr.sources.base import Origin, RawRecord  # noqa: E402

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
ROWS = st.dictionaries(st.sampled_from(["a", "b", "nhs_no", "date", "é"]), VALUES, max_size=5)


def _raw(data: dict) -> RawRecord:
    return RawRecord(Origin("in.csv", line=2), data=data)


@given(st.lists(ROWS, min_size=2, max_size=8), st.randoms())
def test_row_digests_identify_content_like_the_plain_digest(rows, rng) -> None:
    # Same content in another key order is the same record; the cheap digest must agree with the
    # plain one about which rows are equal, whatever layouts it has cached.
    shuffled = []
    for row in rows:
        keys = list(row)
        rng.shuffle(keys)
        shuffled.append({k: row[k] for k in keys})
    stream = rows + shuffled
    digests = _RawDigests()
    cheap = [digests(_raw(row)) for row in stream]
    plain = [_raw_digest(_raw(row)) for row in stream]
    for i in range(len(stream)):
        for j in range(len(stream)):
            assert (cheap[i] == cheap[j]) == (plain[i] == plain[j])
    assert all(len(d) == 16 for d in cheap)


def _order_key_reference(last_updated, fallback) -> str:
    value = last_updated or fallback
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=-5)), ZoneInfo("Europe/London"), timezone(timedelta(0), "Z")]
)
INSTANTS = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    ZONES,
)


ORDER_VALUES = st.tuples(st.none() | INSTANTS, st.none() | st.dates() | INSTANTS)


def _sign(a, b) -> int:
    return (a > b) - (a < b)


@given(ORDER_VALUES, ORDER_VALUES)
def test_order_key_orders_like_the_utc_isoformat_text(first, second) -> None:
    # The ledger sorts by this key; the integer must order (and tie) exactly as the UTC text does.
    assert _sign(_order_key(*first), _order_key(*second)) == _sign(
        _order_key_reference(*first), _order_key_reference(*second)
    )


@given(ORDER_VALUES)
def test_order_key_is_below_nothing_only_without_a_date(values) -> None:
    assert (_order_key(*values) == NO_ORDER) == (values == (None, None))


def test_order_key_of_a_date_sorts_with_instants() -> None:
    assert _order_key(None, date(2024, 3, 1)) == _order_key(datetime(2024, 3, 1, tzinfo=UTC), None)
    assert _order_key(None, date(2024, 3, 1)) < _order_key(datetime(2024, 3, 1, 0, 0, 0, 1), None)


@given(INSTANTS, ZONES)
def test_order_key_ties_exactly_when_the_text_does(instant, zone) -> None:
    # The same instant written in another zone (or a naive time read as UTC) must tie, as its text does.
    other = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
    other = other.astimezone(zone) if zone is not None else other.astimezone(UTC).replace(tzinfo=None)
    same_text = _order_key_reference(instant, None) == _order_key_reference(other, None)
    assert (_order_key(instant, None) == _order_key(other, None)) == same_text


# --- _note_items makes each keyed hash and order key once per record: the same ledger rows --------

import dataclasses  # noqa: E402
import functools  # noqa: E402

from fhir_dnacpr.model import RecordStatus  # noqa: E402
from fhir_dnacpr.pipeline.convert import _LedgerKeys, _note_items  # noqa: E402


class _Rows:
    """Stands in for the ledger: records what ``add_item`` is given."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add_item(self, *row) -> None:
        self.rows.append(row)


def _note_items_plain(ledger, keys, seq, record) -> None:
    for kind, item in (("decision", record.decision), ("plan", record.plan)):
        if item is not None:
            clinical_date = item.decision_date if kind == "decision" else item.created
            ledger.add_item(
                seq,
                kind,
                keys(item.source.system, item.source.record_id),
                keys(item.source.system, item.patient.nhs_number),
                _order_key(item.source.last_updated, clinical_date),
                item.status is RecordStatus.ACTIVE,
            )


@functools.cache
def _example_records() -> list:
    spec = load_spec(EPACCS / "mapping.yaml")
    mapped = [spec.map(raw, today=date(2025, 6, 1)).record for raw in spec.read(EPACCS / "register.csv")]
    return [r for r in mapped if r is not None and r.decision is not None and r.plan is not None]


PLAN_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "record_id": st.sampled_from(["other-id", "EP-0001"]),
        "system": st.sampled_from(["https://other.example/system"]),
        "last_updated": st.none() | INSTANTS,
        "nhs_number": st.sampled_from([nhs(7), nhs(8)]),
        "created": st.none() | st.dates(),
    },
)


@given(PLAN_CHANGES, st.booleans())
def test_note_items_gives_the_ledger_what_the_plain_form_gives(changes, drop_decision) -> None:
    keys = _LedgerKeys()
    for record in _example_records()[:3]:
        plan = record.plan
        source = dataclasses.replace(
            plan.source,
            **{k: v for k, v in changes.items() if k in ("record_id", "system", "last_updated")},
        )
        patient = dataclasses.replace(
            plan.patient, nhs_number=changes.get("nhs_number", plan.patient.nhs_number)
        )
        plan = dataclasses.replace(
            plan, source=source, patient=patient, created=changes.get("created", plan.created)
        )
        variant = dataclasses.replace(record, plan=plan, decision=None if drop_decision else record.decision)
        fast, plain = _Rows(), _Rows()
        _note_items(fast, keys, 5, variant)
        _note_items_plain(plain, keys, 5, variant)
        assert fast.rows == plain.rows
