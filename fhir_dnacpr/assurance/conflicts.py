"""Per-person checks across records: conflicting active decisions, and stale copies still active.

Rows arrive grouped by person (keyed hash of the NHS number) and ordered by decision date, from the
spill store's sorted scan, so only one person's few records are in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
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
    """Issues from rows ``(patient, day, seq, value, status, system, org, rid)`` sorted by patient."""
    current: int | None = None
    group: list[tuple[int, ...]] = []
    for raw in rows:
        if raw[0] != current:
            if len(group) > 1:
                yield from _check_person(list(map(_make_row, group)))
            current = raw[0]
            group = [raw]
        else:
            group.append(raw)
    if len(group) > 1:
        yield from _check_person(list(map(_make_row, group)))


#: ``PersonRow._make`` without its Python frame: ``tuple.__new__`` in C, on rows of exactly its fields.
_make_row = partial(tuple.__new__, PersonRow)


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
                "a newer decision for the same person is active in another source or organisation",
            )
        elif ended:
            yield PersonIssue(
                "stale",
                row.patient,
                (row.seq, *(o.seq for o in ended)),
                "the same decision is recorded as cancelled or superseded in another source or organisation",
            )
