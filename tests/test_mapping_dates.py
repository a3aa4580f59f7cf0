"""Date formats: patterns and strptime strings, impossible dates, and format-then-parse round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.mapping.dates import LONDON, DateFormat, DateParser, DateValueError, FormatError

FORMATS = ["dd/mm/yyyy", "%d/%m/%Y", "yyyy-mm-dd", "dd-MMM-yyyy", "dd MMMM yyyy", "yyyyMMdd", "iso"]
TIME_FORMATS = [
    "dd/MM/yyyy HH:mm",
    "dd/MM/yyyy HH:mm:ss",
    "%Y-%m-%dT%H:%M:%S%z",
    "yyyy-MM-dd HH:mm:ss.SSS XXX",
    "iso",
]


def test_patterns_and_strptime_strings_agree() -> None:
    assert (
        DateFormat("dd/mm/yyyy").parse("07/03/2024")
        == DateFormat("%d/%m/%Y").parse("07/03/2024")
        == date(2024, 3, 7)
    )
    assert DateFormat("dd-MMM-yyyy").parse("07-mar-2024") == date(2024, 3, 7)
    assert DateFormat("dd MMMM yyyy").parse("7 September 2024") == date(2024, 9, 7)


def test_impossible_dates_are_told_apart_from_unparseable_ones() -> None:
    parser = DateParser([DateFormat("dd/mm/yyyy")])
    with pytest.raises(DateValueError) as impossible:
        parser.parse("31/02/2024")
    assert impossible.value.impossible
    with pytest.raises(DateValueError) as garbled:
        parser.parse("Feb 2024")
    assert not garbled.value.impossible
    with pytest.raises(DateValueError) as iso:
        DateParser([DateFormat("iso")]).parse("2023-02-29")
    assert iso.value.impossible


def test_naive_times_are_london_and_offsets_are_kept() -> None:
    parser = DateParser([DateFormat("dd/MM/yyyy HH:mm"), DateFormat("iso")])
    assert parser.parse("01/07/2024 12:00").utcoffset() == timedelta(hours=1)
    assert parser.parse("2024-07-01T12:00:00Z").utcoffset() == timedelta(0)


@pytest.mark.parametrize("bad", ["%y-%m-%d", "dd/mm/yy", "%d/%m", "HH:mm", "%Q"])
def test_unusable_formats_are_refused(bad: str) -> None:
    with pytest.raises(FormatError):
        DateFormat(bad)


def test_minutes_and_months_in_patterns_with_time() -> None:
    assert DateFormat("dd/MM/yyyy HH:mm").parse("01/02/2024 10:05") == datetime(2024, 2, 1, 10, 5)
    with pytest.raises(FormatError):
        DateFormat("dd/mm/yyyy HH:mm")  # with hours, mm is minutes: the month is missing


dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


@given(day=dates, fmt=st.sampled_from(FORMATS))
def test_dates_round_trip_through_format_and_parse(day: date, fmt: str) -> None:
    parser = DateParser([DateFormat(fmt)])
    assert parser.parse_date(parser.format(day)) == day


@given(
    moment=st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    fmt=st.sampled_from(TIME_FORMATS),
    offset=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))]),
)
def test_date_times_round_trip(moment: datetime, fmt: str, offset: timezone | None) -> None:
    parser = DateParser([DateFormat(fmt)])
    aware = moment.replace(tzinfo=offset or LONDON)
    text = parser.format(aware)
    back = parser.parse_datetime(text)
    if "mm:ss" not in fmt and "%S" not in fmt and fmt != "iso":
        aware = aware.replace(second=0)
    assert back == aware or (back.fold != aware.fold and back.replace(fold=aware.fold) == aware)
