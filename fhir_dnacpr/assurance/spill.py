"""On-disk state for the cross-record rules, so memory stays flat however many records stream by.

Clusters and conflicts need to see records together, but only those sharing a key (setting + decision
maker, or person). Each record is written once, as one narrow row of a private SQLite table: the small
integers the sweeps sort and compare on (keyed hash of the person, day number, blocking keys …) and,
for a cluster candidate, its rationale. Its evidence (record refs, dates, labels) is packed with
``marshal`` into a flat file beside it and found again by offset: it is read back only for the few
records a cross-record finding shows, so it costs an append, not columns SQLite must bind, page and
carry through every sort. One row per record, with the blocking keys as columns, is one insert where
a table per use would be three. At the end SQLite — in C, with its external sort — hands the rows back
grouped and in date order, one group at a time.

Nearly every candidate has an organisation key, and nearly all of those are swept, so organisation
keys are not filtered: the sweep itself ignores a group with too few people. Postcode keys are mostly
one person's home and dropped in SQL for having too few people. People with a single record are
dropped in SQL too.

For cluster candidates the rationale and the person's names are kept too, so an excerpt can be masked
when (and only if) a record is shown. The files live in a private temporary folder (mode 0700) and
are deleted when the run ends.
"""

from __future__ import annotations

import marshal
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BATCH = 20_000
#: The evidence of a record, in the order ``add_record`` takes it: packed together in a flat file,
#: because it is read back only for the few records a cross-record finding shows.
EVIDENCE_FIELDS = (
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
)
#: The small integers of a record the sweeps sort and compare on, as ``add_record`` takes them.
KEY_COLUMNS = ("seq", "pkey", "dayn", "value", "scode", "sys_id", "org_id", "rid")
_TEXT_BATCH = 500

_SCHEMA = """
CREATE TABLE rec (seq INTEGER PRIMARY KEY, pkey INTEGER, dayn INTEGER, value INTEGER, scode INTEGER,
                  sys_id INTEGER, org_id INTEGER, rid INTEGER, ev_at INTEGER, ev_len INTEGER,
                  org_bkey INTEGER, pc_bkey INTEGER, text BLOB);
"""
_INSERT = "INSERT INTO rec VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"


class SpillStore:
    """An append-only buffered table and evidence file, then filtered, sorted scans. One per audit run."""

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
        self._evidence_file = (Path(self._dir.name) / "evidence.bin").open("w+b")
        self._evidence_size = 0  # bytes written or buffered: where the next record's evidence starts
        self._evidence: list[bytes] = []
        self._records: list[tuple[Any, ...]] = []

    def add_record(
        self,
        keys: tuple[Any, ...],
        evidence: tuple[Any, ...],
        org_bkey: int | None = None,
        postcode_bkey: int | None = None,
        text: bytes | None = None,
    ) -> None:
        """One record: its ``KEY_COLUMNS`` (``seq`` first) and ``EVIDENCE_FIELDS``, with its blocking
        keys (by organisation, by postcode) and its rationale ``text``, folded for the sweep
        (``similarity.folded``), if it is a cluster candidate."""
        try:
            packed = marshal.dumps(evidence)
        except ValueError:  # a str subclass from some source: store it as the plain text it is
            packed = marshal.dumps(tuple(v if v is None else str.__str__(v) for v in evidence))
        at = self._evidence_size
        size = len(packed)
        self._evidence_size = at + size
        self._evidence.append(packed)
        self._records.append((*keys, at, size, org_bkey, postcode_bkey, text))
        if len(self._records) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._records:
            return
        self._evidence_file.write(b"".join(self._evidence))
        self._evidence.clear()
        self._db.execute("BEGIN")
        self._db.executemany(_INSERT, self._records)
        self._db.execute("COMMIT")
        self._records.clear()

    flush = _flush

    def candidates_sorted(self, min_people: int) -> Iterator[tuple[int, int, int, int, int, bytes | None]]:
        """(bkey, stype, dayn, seq, pkey, folded rationale) grouped by (stype, bkey), by day then seq within a
        group.

        Postcode keys with fewer than ``min_people`` different people are left out; organisation keys
        are not filtered (see the module docstring)."""
        self._flush()
        yield from self._db.execute(
            "SELECT org_bkey, 0, dayn, seq, pkey, text FROM rec WHERE org_bkey IS NOT NULL "
            "ORDER BY org_bkey, dayn, seq"
        )
        yield from self._db.execute(
            "SELECT pc_bkey, 1, dayn, seq, pkey, text FROM rec WHERE pc_bkey IN ("
            "  SELECT pc_bkey FROM rec WHERE pc_bkey IS NOT NULL GROUP BY pc_bkey"
            "  HAVING COUNT(DISTINCT pkey) >= ?) "
            "ORDER BY pc_bkey, dayn, seq",
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
        """The stored evidence and context of the given records (``EVIDENCE_FIELDS``, ``seq`` and
        ``pkey``), by ``seq``."""
        self._flush()
        f = self._evidence_file
        f.flush()
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(seqs), _TEXT_BATCH):
            chunk = seqs[start : start + _TEXT_BATCH]
            marks = ",".join("?" * len(chunk))
            for seq, pkey, at, size in self._db.execute(
                f"SELECT seq, pkey, ev_at, ev_len FROM rec WHERE seq IN ({marks})", chunk
            ).fetchall():
                f.seek(at)
                row = dict(zip(EVIDENCE_FIELDS, marshal.loads(f.read(size)), strict=True))
                row["seq"], row["pkey"] = seq, pkey
                out[seq] = row
        f.seek(0, 2)  # back to the end, should more records be added
        return out

    def close(self) -> None:
        try:
            self._db.close()
            self._evidence_file.close()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
