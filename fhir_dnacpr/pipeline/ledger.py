"""Pass-one bookkeeping on disk: exact duplicates, replaced versions and superseded decisions.

Deciding that a record is superseded needs every record of that person first, and a legacy export
can hold millions of rows; so pass one writes one small row per item to a temporary SQLite file and
asks SQL for the verdicts, which pass two reads back in input order (a merge join). Exact duplicates
are recognised as they arrive (a unique index), so they are never mapped. Memory stays flat.
Nothing identifying is stored: patient and record keys are keyed hashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

_BATCH = 5_000


class Verdict(StrEnum):
    REPLACED_VERSION = "replaced-version"
    """A later version of the same source record (same record id) is in the input: dropped, listed."""
    SUPERSEDED = "superseded"
    """A newer decision/plan for the same person is in the input: kept, marked inactive."""


class Ledger:
    """Collects (seq, item) facts in pass one and yields verdicts ordered by seq for pass two."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = FILE;
            CREATE TABLE raw (digest BLOB PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE item (
                seq INTEGER NOT NULL, kind TEXT NOT NULL, record_key BLOB NOT NULL,
                patient_key BLOB NOT NULL, order_key TEXT NOT NULL, active INTEGER NOT NULL
            );
            """
        )
        self._items: list[tuple[int, str, bytes, bytes, str, int]] = []

    def is_duplicate(self, digest: bytes) -> bool:
        """True when a record with this content digest was seen before; remembers it otherwise."""
        cursor = self._db.execute("INSERT OR IGNORE INTO raw VALUES (?)", (digest,))
        return cursor.rowcount == 0

    def add_item(
        self, seq: int, kind: str, record_key: bytes, patient_key: bytes, order_key: str, active: bool
    ) -> None:
        self._items.append((seq, kind, record_key, patient_key, order_key, int(active)))
        if len(self._items) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT INTO item VALUES (?, ?, ?, ?, ?, ?)", self._items)
        self._items.clear()

    def verdicts(self) -> Iterator[tuple[int, str, Verdict]]:
        """(seq, kind, verdict) in seq order, for the items that are not simply kept as they are.

        Order within a record id or a person is (order_key, seq): the latest last-updated (or decision
        date) wins and, between equals, the later row of the export.
        """
        self._flush()
        self._db.executescript(
            """
            CREATE TABLE replaced AS
                SELECT seq, kind FROM (
                    SELECT seq, kind, ROW_NUMBER() OVER (
                        PARTITION BY kind, record_key ORDER BY order_key DESC, seq DESC) AS n
                    FROM item
                ) WHERE n > 1;
            CREATE TABLE superseded AS
                SELECT seq, kind FROM (
                    SELECT seq, kind, active, ROW_NUMBER() OVER (
                        PARTITION BY kind, patient_key ORDER BY order_key DESC, seq DESC) AS n
                    FROM item WHERE (seq, kind) NOT IN (SELECT seq, kind FROM replaced)
                ) WHERE n > 1 AND active = 1;
            """
        )
        query = """
            SELECT seq, kind, 'replaced-version' FROM replaced
            UNION ALL SELECT seq, kind, 'superseded' FROM superseded
            ORDER BY 1
        """
        for seq, kind, verdict in self._db.execute(query):
            yield seq, kind, Verdict(verdict)

    def close(self) -> None:
        self._db.close()
