"""On-disk state for the cross-record rules, so memory stays flat however many records stream by.

Clusters and conflicts need to see records together, but only those sharing a key (setting + decision
maker, or person). Each record is written once, to a private SQLite file: its evidence (record refs,
dates) and the small integers the sweeps sort on (keyed hash of the person, day number). Cluster
candidates add a row per blocking key, in a table per kind of setting. At the end SQLite — in C, with
its external sort — hands them back grouped and in date order, one group at a time.

Nearly every candidate has an organisation key, and nearly all of those are swept, so the rationale
travels with the organisation row (and is not stored again with the record): one sorted scan then
gives the sweep everything. Postcode keys are mostly one person's home and dropped in SQL for having
too few people; the few rows left pick up their texts by primary key. Organisation keys are few and
nearly all busy, so they are not filtered: the sweep itself ignores a group with too few people.
People with a single record are dropped in SQL too.

For cluster candidates the rationale and the person's names are kept too, so an excerpt can be masked
when (and only if) a record is shown. The file lives in a private temporary folder (mode 0700) and is
deleted when the run ends.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BATCH = 20_000
#: Columns of a record row, in the order ``add_record`` takes them.
RECORD_COLUMNS = (
    "seq",
    "system",
    "record_id",
    "file",
    "location",
    "patient",
    "org",
    "decision",
    "day",
    "status",
    "quarter",
    "rationale",
    "names",
    "setting",
    "maker",
    "pkey",
    "dayn",
    "value",
    "scode",
    "sys_id",
    "org_id",
    "rid",
)
#: The evidence part, as ``record`` returns it (``pkey`` too: the pseudonym is made from it).
EVIDENCE_COLUMNS = (*RECORD_COLUMNS[:15], "pkey")
#: Blocking-key tables by setting type (``clusters.SETTING_ORGANISATION``, ``SETTING_POSTCODE``).
_CANDIDATE_TABLES = ("cand_org", "cand_pc")
_TEXT_BATCH = 500

_SCHEMA = """
CREATE TABLE rec (seq INTEGER PRIMARY KEY, system TEXT, record_id TEXT, file TEXT, location TEXT,
                  patient TEXT, org TEXT, decision TEXT, day TEXT, status TEXT, quarter TEXT,
                  rationale TEXT, names TEXT, setting TEXT, maker TEXT,
                  pkey INTEGER, dayn INTEGER, value INTEGER, scode INTEGER, sys_id INTEGER,
                  org_id INTEGER, rid INTEGER);
CREATE TABLE cand_org (seq INTEGER PRIMARY KEY, bkey INTEGER, dayn INTEGER, pkey INTEGER, text TEXT);
CREATE TABLE cand_pc (bkey INTEGER, dayn INTEGER, seq INTEGER, pkey INTEGER);
"""


class SpillStore:
    """Append-only buffered tables, then filtered, sorted scans. One store per audit run."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="dnacpr-audit-", dir=directory)
        self.path = Path(self._dir.name) / "state.sqlite"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        for pragma in (
            "PRAGMA journal_mode=OFF",
            "PRAGMA synchronous=OFF",
            "PRAGMA temp_store=FILE",
            "PRAGMA cache_size=-16384",
            "PRAGMA locking_mode=EXCLUSIVE",
        ):
            self._db.execute(pragma)
        self._db.executescript(_SCHEMA)
        self._records: list[tuple[Any, ...]] = []
        self._cands: tuple[list[tuple[Any, ...]], ...] = ([], [])
        self._insert_record = f"INSERT INTO rec VALUES ({','.join('?' * len(RECORD_COLUMNS))})"

    def add_record(
        self,
        row: tuple[Any, ...],
        org_bkey: int | None = None,
        postcode_bkey: int | None = None,
        text: str | None = None,
    ) -> None:
        """One record, in ``RECORD_COLUMNS`` order (``seq`` first), with its blocking keys if it is a
        cluster candidate: by organisation (kept with ``text``, its rationale, which the record row
        then leaves out) and by postcode."""
        self._records.append(row)
        if org_bkey is not None:
            self._cands[0].append((row[0], org_bkey, row[16], row[15], text))
        if postcode_bkey is not None:
            self._cands[1].append((postcode_bkey, row[16], row[0], row[15]))
        if len(self._records) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._records:
            return
        self._db.execute("BEGIN")
        if self._records:
            self._db.executemany(self._insert_record, self._records)
            self._records.clear()
        for table, rows in zip(_CANDIDATE_TABLES, self._cands, strict=True):
            if rows:
                marks = ",".join("?" * len(rows[0]))
                self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
                rows.clear()
        self._db.execute("COMMIT")

    flush = _flush

    def candidates_sorted(self, min_people: int) -> Iterator[tuple[int, int, int, int, int, str | None]]:
        """(bkey, stype, dayn, seq, pkey, rationale) grouped by (stype, bkey), by day then seq within a
        group.

        Postcode keys with fewer than ``min_people`` different people are left out; organisation keys
        are not filtered (see the module docstring)."""
        self._flush()
        yield from self._db.execute(
            "SELECT bkey, 0, dayn, seq, pkey, text FROM cand_org ORDER BY bkey, dayn, seq"
        )
        rows = self._db.execute(
            "SELECT bkey, dayn, seq, pkey FROM cand_pc WHERE bkey IN ("
            "  SELECT bkey FROM cand_pc GROUP BY bkey HAVING COUNT(DISTINCT pkey) >= ?) "
            "ORDER BY bkey, dayn, seq",
            (min_people,),
        )
        while batch := rows.fetchmany(_TEXT_BATCH):
            texts = self._texts([row[2] for row in batch])
            yield from [(bkey, 1, dayn, seq, pkey, texts[seq]) for bkey, dayn, seq, pkey in batch]

    def _texts(self, seqs: list[int]) -> dict[int, str | None]:
        """The rationale of each record, wherever it is kept."""
        marks = ",".join("?" * len(seqs))
        return dict(
            self._db.execute(
                f"SELECT r.seq, coalesce(r.rationale, c.text) FROM rec r LEFT JOIN cand_org c "
                f"ON c.seq = r.seq WHERE r.seq IN ({marks})",
                seqs,
            )
        )

    def people_sorted(self) -> Iterator[tuple[int, ...]]:
        """(pkey, dayn, seq, value, scode, sys_id, org_id, rid) for people with more than one record,
        ordered by person, then day."""
        self._flush()
        yield from self._db.execute(
            "SELECT pkey, dayn, seq, value, scode, sys_id, org_id, rid FROM rec "
            "WHERE scode IS NOT NULL AND pkey IN ("
            "  SELECT pkey FROM rec WHERE scode IS NOT NULL GROUP BY pkey HAVING COUNT(*) > 1) "
            "ORDER BY pkey, dayn, seq"
        )

    def records(self, seqs: list[int]) -> dict[int, dict[str, Any]]:
        """The stored evidence and context of the given records, by ``seq``."""
        self._flush()
        out: dict[int, dict[str, Any]] = {}
        columns = ", ".join(EVIDENCE_COLUMNS)
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(f"SELECT {columns} FROM rec WHERE seq IN ({marks})", chunk):
                out[row[0]] = dict(zip(EVIDENCE_COLUMNS, row, strict=True))
            for seq, text in self._texts(chunk).items():
                out[seq]["rationale"] = text
        return out

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
