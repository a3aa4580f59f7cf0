"""Which resources a run has already written, kept on disk so memory stays flat at any input size.

The NDJSON writer must write each resource once per run (a Patient shared by many records, a
practitioner on thousands of forms) and notice when a later record brings a different version of one.
Held in memory, that set grows with the input (10^6 records are ~7·10^6 resources); so it lives in a
temporary SQLite file and is consulted once per *batch* of records — one ``executemany`` and one join
per batch instead of a round trip per resource. Keys are the exact ``Type/id`` text, so two
resources can never be confused; content is compared by a 64-bit digest (a collision could only hide
a conflicting-version warning, never drop a resource).

Most resources of an export occur once (the decision, its plan, the document reference), and a
random-key insert into a large on-disk table costs several microseconds. A caller that sees the whole
stream first (the convert pipeline's pass one) can note every ``Type/id`` in a ``RepeatFilter``: a
fixed-size pair of Bloom filters that answers "might this occur more than once?" with no false
negatives. Only those go to the ``WrittenSet``; the rest are written straight through.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path


class BloomFilter:
    """A fixed-size set with false positives but no false negatives: ``2**bits_log2`` bits, two probes.

    Probes come from Python's ``hash`` (SipHash, per-process seed), so the filter is for one process
    and one run only; memory is fixed at creation (e.g. 2^26 bits = 8 MiB stays under ~4 % false
    positives up to 7·10^6 keys) however many keys arrive.
    """

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits_log2: int = 26) -> None:
        if not 3 <= bits_log2 <= 32:
            raise ValueError("bits_log2 must be between 3 and 32")
        self._bits = bytearray(1 << (bits_log2 - 3))
        self._mask = (1 << bits_log2) - 1

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; True when it may have been added before (False: certainly new)."""
        h = hash(key)
        a, b = h & self._mask, (h >> 32) & self._mask
        bits = self._bits
        seen = bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7))
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)
        return bool(seen)

    def __contains__(self, key: Hashable) -> bool:
        h = hash(key)
        a, b = h & self._mask, (h >> 32) & self._mask
        bits = self._bits
        return bool(bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)))


class RepeatFilter:
    """Noted keys → "may this key have been noted more than once?" (never False for a real repeat).

    Two Bloom filters: every key goes into ``seen``; a key ``seen`` already reports goes into
    ``repeated``. A key noted once is in ``repeated`` only by a false positive, which costs the caller
    an exact check, never a wrong answer.
    """

    __slots__ = ("_repeated", "_seen")

    def __init__(self, seen_bits_log2: int = 26, repeated_bits_log2: int = 24) -> None:
        self._seen = BloomFilter(seen_bits_log2)
        self._repeated = BloomFilter(repeated_bits_log2)

    def note(self, keys: Iterable[Hashable]) -> None:
        # ``BloomFilter.add`` inlined for both filters (the same probes as ``add`` and ``in``): this
        # runs for every resource of an export.
        seen, mask = self._seen._bits, self._seen._mask
        repeated, repeated_mask = self._repeated._bits, self._repeated._mask
        for key in keys:
            h = hash(key)
            a, b = h & mask, (h >> 32) & mask
            ia, ma, ib, mb = a >> 3, 1 << (a & 7), b >> 3, 1 << (b & 7)
            if seen[ia] & ma and seen[ib] & mb:
                a, b = h & repeated_mask, (h >> 32) & repeated_mask
                repeated[a >> 3] |= 1 << (a & 7)
                repeated[b >> 3] |= 1 << (b & 7)
            else:
                seen[ia] |= ma
                seen[ib] |= mb

    def may_repeat(self, key: Hashable) -> bool:
        return key in self._repeated


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
