"""On-disk state for the cross-record rules, so memory stays flat however many records stream by.

Clusters and conflicts need to see records together, but only those sharing a key (setting + decision
maker, or person). Each record is written once, to a private SQLite file: its evidence (record refs,
pseudonym, dates) and the small integers the sweeps sort on (keyed hash of the person, day number).
Cluster candidates add one row of integers per blocking key. At the end SQLite — in C, with its
external sort — drops the keys and people with too few records to matter and hands back the rest
grouped and in date order, one group at a time.

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
#: The evidence part, as ``record`` returns it.
EVIDENCE_COLUMNS = RECORD_COLUMNS[:15]

_SCHEMA = """
CREATE TABLE rec (seq INTEGER PRIMARY KEY, system TEXT, record_id TEXT, file TEXT, location TEXT,
                  patient TEXT, org TEXT, decision TEXT, day TEXT, status TEXT, quarter TEXT,
                  rationale TEXT, names TEXT, setting TEXT, maker TEXT,
                  pkey INTEGER, dayn INTEGER, value INTEGER, scode INTEGER, sys_id INTEGER,
                  org_id INTEGER, rid INTEGER);
CREATE TABLE cand (bkey INTEGER, stype INTEGER, dayn INTEGER, seq INTEGER, thash INTEGER, pkey INTEGER);
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
        self._cands: list[tuple[int, ...]] = []
        self._insert_record = f"INSERT INTO rec VALUES ({','.join('?' * len(RECORD_COLUMNS))})"

    def add_record(self, row: tuple[Any, ...]) -> None:
        """One record, in ``RECORD_COLUMNS`` order (``seq`` first)."""
        self._records.append(row)
        if len(self._records) >= _BATCH:
            self._flush()

    def add_candidate(self, bkey: int, stype: int, dayn: int, seq: int, thash: int, pkey: int) -> None:
        self._cands.append((bkey, stype, dayn, seq, thash, pkey))
        if len(self._cands) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not (self._records or self._cands):
            return
        self._db.execute("BEGIN")
        if self._records:
            self._db.executemany(self._insert_record, self._records)
            self._records.clear()
        if self._cands:
            self._db.executemany("INSERT INTO cand VALUES (?,?,?,?,?,?)", self._cands)
            self._cands.clear()
        self._db.execute("COMMIT")

    flush = _flush

    def candidates_sorted(self, min_people: int) -> Iterator[tuple[int, int, int, int, int, int, str]]:
        """(bkey, stype, dayn, seq, thash, pkey, rationale) for blocking keys with at least
        ``min_people`` different people, ordered by key, then day."""
        self._flush()
        yield from self._db.execute(
            "SELECT c.bkey, c.stype, c.dayn, c.seq, c.thash, c.pkey, r.rationale FROM cand c "
            "JOIN rec r ON r.seq = c.seq "
            "WHERE c.bkey IN (SELECT bkey FROM cand GROUP BY bkey HAVING COUNT(DISTINCT pkey) >= ?) "
            "ORDER BY c.bkey, c.dayn, c.seq",
            (min_people,),
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
