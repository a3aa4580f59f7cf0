"""Pass-one bookkeeping on disk: exact duplicates, replaced versions and superseded decisions.

Deciding that a record is superseded needs every record of that person first, and a legacy export
can hold millions of rows; so pass one writes one small row per item to a temporary SQLite file and
asks SQL for the verdicts, which pass two reads back in input order (a merge join). Exact duplicates
are recognised as they arrive, so they are never mapped. Memory stays flat.
Nothing identifying is stored: patient and record keys are keyed hashes.

Costs that matter at 10^6 rows: a random-key insert into a large SQLite index costs microseconds and
a lookup more, so the duplicate set keeps a fixed-size Bloom filter in front (a record it has
certainly not seen — nearly all of them — never touches SQLite) and writes its digests in sorted
batches of thousands, one statement each.
Verdicts need sorting, but only items sharing a record key or a person with another item can get
one: each item row carries a flag set when a Bloom filter may have met one of its keys before, and
the sort runs over the items whose keys appear on a flagged row (a few per cent), not over all. So
item rows are first spooled to a flat file (``marshal`` batches, a fraction of an SQLite insert) and
only those that may be candidates — a flagged row's keys go into one more Bloom filter — are
inserted, once pass one is over.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from fhir_dnacpr.fhir.seen import BloomFilter
from fhir_dnacpr.pipeline.frames import read_frames, write_frame

_BATCH = 5_000
DIGEST_SIZE = 16
"""Bytes per raw-record digest (``is_duplicate`` refuses others: the batch insert slices by size)."""
_DIGEST_BATCH = 16_384


class Verdict(StrEnum):
    REPLACED_VERSION = "replaced-version"
    """A later version of the same source record (same record id) is in the input: dropped, listed."""
    SUPERSEDED = "superseded"
    """A newer decision/plan for the same person is in the input: kept, marked inactive."""


class DuplicateSet:
    """Exact "seen this digest before?" for the whole run, memory fixed (Bloom filter + SQLite).

    A digest the Bloom filter has certainly not seen is new (no disk access); otherwise the pending
    batch and then the table answer exactly. New digests wait in memory (at most ``_DIGEST_BATCH``)
    and go to the table sorted, in one statement.
    """

    def __init__(self, db: sqlite3.Connection, bloom_bits_log2: int = 25, batch: int = _DIGEST_BATCH) -> None:
        self._db = db
        self._db.execute("CREATE TABLE raw (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        self._bloom = BloomFilter(bloom_bits_log2)
        self._pending: set[bytes] = set()
        self._batch = batch

    def is_duplicate(self, digest: bytes) -> bool:
        """True when this digest was seen before; remembers it otherwise."""
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"a record digest is {DIGEST_SIZE} bytes")
        if self._bloom.add(digest) and (
            digest in self._pending
            or self._db.execute("SELECT 1 FROM raw WHERE digest = ?", (digest,)).fetchone() is not None
        ):
            return True
        self._pending.add(digest)
        if len(self._pending) >= self._batch:
            self.flush()
        return False

    def flush(self) -> None:
        if not self._pending:
            return
        blob = b"".join(sorted(self._pending))
        with self._db:
            # One statement for the whole batch: the digests are cut out of one blob inside SQLite.
            self._db.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                INSERT INTO raw SELECT substr(?1, i * ?3 + 1, ?3) FROM n
                """,
                (blob, len(self._pending) - 1, DIGEST_SIZE),
            )
        self._pending.clear()


class Ledger:
    """Collects (seq, item) facts in pass one and yields verdicts ordered by seq for pass two."""

    def __init__(self, path: Path, batch: int = _BATCH) -> None:
        self._db = sqlite3.connect(path)
        self._batch = batch
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA temp_store = FILE;
            CREATE TABLE item (
                seq INTEGER NOT NULL, kind TEXT NOT NULL, record_key BLOB NOT NULL,
                patient_key BLOB NOT NULL, order_key INTEGER NOT NULL, active INTEGER NOT NULL,
                key_seen_before INTEGER NOT NULL
            );
            """
        )
        self._duplicates = DuplicateSet(self._db)
        self.is_duplicate = self._duplicates.is_duplicate
        self._items: list[tuple[int, str, bytes, bytes, int, bool, bool]] = []
        self._keys_seen: dict[str, BloomFilter] = {}
        """Per kind, a ``BloomFilter`` of the record and patient keys met so far (both in one
        filter: a cross hit only adds a candidate, never hides one)."""
        self._flagged_keys = BloomFilter(24)
        """Record and patient keys of every flagged row: an item with neither key here is no candidate."""
        self._spool_path = path.with_name(path.name + ".items")
        self._spool: BinaryIO | None = self._spool_path.open("wb", buffering=0)

    def add_item(
        self, seq: int, kind: str, record_key: bytes, patient_key: bytes, order_key: int, active: bool
    ) -> None:
        keys_seen = self._keys_seen.get(kind)
        if keys_seen is None:
            keys_seen = self._keys_seen[kind] = BloomFilter(24)
        # Both keys are added whatever the first one answers.
        seen_before = keys_seen.add(record_key) | keys_seen.add(patient_key)
        if seen_before:
            self._flagged_keys.add(record_key)
            self._flagged_keys.add(patient_key)
        self._items.append((seq, kind, record_key, patient_key, order_key, active, seen_before))
        if len(self._items) >= self._batch:
            self._spool_items()

    def _spool_items(self) -> None:
        """The pending items to the spool file, as one ``marshal`` blob (a fraction of an insert's cost)."""
        if not self._items:
            return
        if self._spool is None:
            raise RuntimeError("the ledger's verdicts were already read; it takes no more items")
        write_frame(self._spool, self._items)
        self._items.clear()

    def _load_candidates(self) -> None:
        """Every item that may be a candidate into the ``item`` table: the flagged rows and the rows
        sharing a key with one (plus a few Bloom false positives, which the query's own candidate
        test drops), so the verdict query sees each partition that matters whole."""
        self._spool_items()
        if self._spool is None:
            return  # loaded by an earlier call
        self._spool.close()
        self._spool = None
        flagged = self._flagged_keys
        with self._spool_path.open("rb", buffering=0) as spool, self._db:
            for items in read_frames(spool):
                rows = [item for item in items if item[6] or item[2] in flagged or item[3] in flagged]
                self._db.executemany("INSERT INTO item VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._spool_path.unlink()

    def verdicts(self) -> Iterator[tuple[int, str, Verdict]]:
        """(seq, kind, verdict) in seq order, for the items that are not simply kept as they are.

        Order within a record id or a person is (order_key, seq): the latest last-updated (or decision
        date) wins and, between equals, the later row of the export. Supersession is decided among the
        items that are not replaced versions (``r = 1`` is part of the person's partition).

        Only candidates are sorted: an item whose record key and patient key both occur once cannot
        get a verdict or change another's, and every key occurring twice is on a flagged row (the
        Bloom filter has no false negatives), so each partition that matters is complete.
        """
        self._load_candidates()
        query = """
            WITH candidate AS (
                SELECT * FROM item
                WHERE record_key IN (SELECT record_key FROM item WHERE key_seen_before)
                   OR patient_key IN (SELECT patient_key FROM item WHERE key_seen_before)
            )
            SELECT seq, kind, CASE WHEN r > 1 THEN 'replaced-version' ELSE 'superseded' END FROM (
                SELECT seq, kind, active, r, ROW_NUMBER() OVER (
                    PARTITION BY kind, patient_key, r = 1 ORDER BY order_key DESC, seq DESC) AS p
                FROM (
                    SELECT seq, kind, patient_key, order_key, active, ROW_NUMBER() OVER (
                        PARTITION BY kind, record_key ORDER BY order_key DESC, seq DESC) AS r
                    FROM candidate
                )
            )
            WHERE r > 1 OR (p > 1 AND active)
            ORDER BY seq
        """
        for seq, kind, verdict in self._db.execute(query):
            yield seq, kind, Verdict(verdict)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._spool_path.unlink(missing_ok=True)
        self._db.close()
