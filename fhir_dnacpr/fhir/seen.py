"""Which resources a run has already written, kept on disk so memory stays flat at any input size.

The NDJSON writer must write each resource once per run (a Patient shared by many records, a
practitioner on thousands of forms) and notice when a later record brings a different version of one.
Held in memory, that set grows with the input (10^6 records are ~7·10^6 resources); so it lives in a
temporary SQLite file and is consulted once per *batch* of records — one ``executemany`` and one join
per batch instead of a round trip per resource. Keys are the exact ``Type/id`` text, so two
resources can never be confused; content is compared by a 64-bit digest (a collision could only hide
a conflicting-version warning, never drop a resource).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path


class WrittenSet:
    """``Type/id`` → digest of the version written, on disk; use ``settle`` once per batch."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fhir-dnacpr-written-", dir=directory))
        self._db = sqlite3.connect(self._dir / "written.sqlite", isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = MEMORY;
            CREATE TABLE written (ref TEXT PRIMARY KEY, digest INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TEMP TABLE batch (ref TEXT PRIMARY KEY, digest INTEGER NOT NULL) WITHOUT ROWID;
            """
        )
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def settle(self, batch: Mapping[str, int], *, keep: str = "first") -> dict[str, int]:
        """Remember ``batch`` (ref → digest of its version in the batch); return the refs that an
        earlier batch already wrote, each with the digest remembered for it. ``keep="first"`` (NDJSON:
        the first version written is the one on disk) or ``"last"`` (Bundles: every version is sent,
        so the latest is what a server ends up holding)."""
        if not batch:
            return {}
        db = self._db
        db.execute("BEGIN")
        db.execute("DELETE FROM batch")
        db.executemany("INSERT INTO batch VALUES (?, ?)", batch.items())
        known = dict(db.execute("SELECT w.ref, w.digest FROM batch b JOIN written w ON w.ref = b.ref"))
        verb = "INSERT OR IGNORE" if keep == "first" else "INSERT OR REPLACE"
        db.execute(f"{verb} INTO written SELECT ref, digest FROM batch")
        db.execute("COMMIT")
        self._count += len(batch) - len(known)
        return known

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)
