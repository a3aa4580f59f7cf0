"""Per-person checks across records: conflicting active decisions, and stale copies still active.

Rows arrive grouped by person (keyed hash of the NHS number) and ordered by decision date, from the
spill store's sorted scan, so only one person's few records are in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

VALUE_NOT_FOR_CPR = 0
VALUE_FOR_CPR = 1
STATUS_ACTIVE = 0
STATUS_CANCELLED = 1
STATUS_SUPERSEDED = 2


class PersonRow(NamedTuple):
    """One status-bearing record of a person, as the spill store's person scan gives it.

    A named tuple: one is made for every record of every person with more than one, and tuples are
    made in C (a frozen dataclass sets each field through ``object.__setattr__``)."""

    patient: int
    day: int
    seq: int
    value: int
    status: int
    system: int
    org: int
    rid: int

    def elsewhere(self, other: PersonRow) -> bool:
        """Held by another source system or another organisation."""
        return self.system != other.system or self.org != other.org


@dataclass(frozen=True, slots=True)
class PersonIssue:
    """``kind`` is ``conflict`` or ``stale``; ``seqs`` the records shown (the flagged one first)."""

    kind: str
    patient: int
    seqs: tuple[int, ...]
    reason: str


def person_issues(rows: Iterable[tuple[int, ...]]) -> Iterator[PersonIssue]:
    """Issues from rows ``(patient, day, seq, value, status, system, org, rid)`` sorted by patient.

    With 10^6 records ~130,000 people come here, most with two records: ``groupby`` splits them in C,
    and a person with two records takes the short path of ``_check_pair``."""
    for _, records in groupby(rows, _PATIENT):
        group = list(records)
        if len(group) == 2:
            yield from _check_pair(*group)
        elif len(group) > 2:
            yield from _check_person(list(map(_make_row, group)))


#: ``PersonRow._make`` without its Python frame: ``tuple.__new__`` in C, on rows of exactly its fields.
_make_row = partial(tuple.__new__, PersonRow)
_PATIENT = itemgetter(0)
_ENDED = (STATUS_CANCELLED, STATUS_SUPERSEDED)
_NEWER_ELSEWHERE = "a newer decision for the same person is active in another source or organisation"
_ENDED_ELSEWHERE = (
    "the same decision is recorded as cancelled or superseded in another source or organisation"
)


def _check_person(rows: list[PersonRow]) -> Iterator[PersonIssue]:
    unique: dict[int, PersonRow] = {}
    for row in rows:  # the same source record seen twice is one record
        unique[row.rid] = row
    rows = sorted(unique.values(), key=lambda r: (r.day, r.seq))
    if len(rows) < 2:
        return
    active = [r for r in rows if r.status == STATUS_ACTIVE]
    values = {r.value for r in active}
    if len(values) > 1:
        latest = active[-1]
        yield PersonIssue(
            "conflict",
            latest.patient,
            tuple(r.seq for r in reversed(active)),
            f"{len(active)} active records disagree: "
            f"{sum(r.value == VALUE_NOT_FOR_CPR for r in active)} not for CPR, "
            f"{sum(r.value == VALUE_FOR_CPR for r in active)} for CPR",
        )
    for row in active:
        newer = [o for o in active if o.day > row.day and o.value == row.value and o.elsewhere(row)]
        ended = [
            o
            for o in rows
            if o.status in (STATUS_CANCELLED, STATUS_SUPERSEDED)
            and o.day == row.day
            and o.value == row.value
            and o.elsewhere(row)
        ]
        if newer:
            yield PersonIssue(
                "stale",
                row.patient,
                (row.seq, *(o.seq for o in newer)),
                _NEWER_ELSEWHERE,
            )
        elif ended:
            yield PersonIssue(
                "stale",
                row.patient,
                (row.seq, *(o.seq for o in ended)),
                _ENDED_ELSEWHERE,
            )


def _check_pair(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[PersonIssue, ...]:
    """``_check_person`` for exactly two rows, without its lists, sorting and named fields: the same
    issues in the same order (the tests hold it to that)."""
    if a[7] == b[7]:
        return ()  # one record seen twice
    if b[1] < a[1] or (b[1] == a[1] and b[2] < a[2]):
        a, b = b, a  # (day, seq) order
    _, a_day, a_seq, a_value, a_status, a_system, a_org, _ = a
    patient, b_day, b_seq, b_value, b_status, b_system, b_org, _ = b
    a_active = a_status == STATUS_ACTIVE
    b_active = b_status == STATUS_ACTIVE
    if a_value != b_value:
        if not (a_active and b_active):
            return ()
        not_for_cpr = (a_value == VALUE_NOT_FOR_CPR) + (b_value == VALUE_NOT_FOR_CPR)
        for_cpr = (a_value == VALUE_FOR_CPR) + (b_value == VALUE_FOR_CPR)
        reason = f"2 active records disagree: {not_for_cpr} not for CPR, {for_cpr} for CPR"
        return (PersonIssue("conflict", patient, (b_seq, a_seq), reason),)
    if a_system == b_system and a_org == b_org:
        return ()  # not elsewhere
    found: list[PersonIssue] = []
    if a_active:  # b is newer, or ended the same day
        if b_active and b_day > a_day:
            found.append(PersonIssue("stale", patient, (a_seq, b_seq), _NEWER_ELSEWHERE))
        elif b_status in _ENDED and b_day == a_day:
            found.append(PersonIssue("stale", patient, (a_seq, b_seq), _ENDED_ELSEWHERE))
    if b_active and a_status in _ENDED and a_day == b_day:  # a is not newer than b
        found.append(PersonIssue("stale", patient, (b_seq, a_seq), _ENDED_ELSEWHERE))
    return tuple(found)
