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

_PAIR_INDEX_MASK = 0xFFF
_BIT_PAIRS = tuple((1 << (i & 63)) | (1 << (i >> 6)) for i in range(_PAIR_INDEX_MASK + 1))
"""Every mask of two bit positions in a 64-bit word (one bit when they coincide), by 12 hash bits."""


class BloomFilter:
    """A fixed-size set with false positives but no false negatives: ``2**bits_log2`` bits, two probes.

    Both probes of a key fall in one 64-bit word (a "blocked" Bloom filter): a filter of megabytes is
    far larger than the CPU cache, so a key costs one cache miss instead of two, and one word read and
    one word write in Python instead of two of each; the false-positive rate stays close to that of
    free probes (2^26 bits hold 7·10^6 keys at ~4 %). Probes come from Python's ``hash`` (SipHash,
    per-process seed), so the filter is for one process and one run only; memory is fixed at creation
    however many keys arrive (at least one word, whatever ``bits_log2`` asks for). A key's word comes
    from the hash's low bits, its two bits from the high half.
    """

    __slots__ = ("_word_mask", "_words")

    def __init__(self, bits_log2: int = 26) -> None:
        if not 3 <= bits_log2 <= 32:
            raise ValueError("bits_log2 must be between 3 and 32")
        words_log2 = max(bits_log2 - 6, 0)
        self._words = memoryview(bytearray(8 << words_log2)).cast("Q")
        self._word_mask = (1 << words_log2) - 1

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; True when it may have been added before (False: certainly new)."""
        h = hash(key)
        mask = _BIT_PAIRS[(h >> 32) & _PAIR_INDEX_MASK]
        word = h & self._word_mask
        words = self._words
        bits = words[word]
        if bits & mask == mask:
            return True
        words[word] = bits | mask
        return False

    def __contains__(self, key: Hashable) -> bool:
        h = hash(key)
        mask = _BIT_PAIRS[(h >> 32) & _PAIR_INDEX_MASK]
        return self._words[h & self._word_mask] & mask == mask


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
        note_one = self.note_one
        for key in keys:
            note_one(key)

    def note_one(self, key: Hashable) -> bool:
        """Note ``key``; True when it may have been noted before. Once told True a caller may skip
        noting that key again: it is in ``repeated`` now, and noting it again would change nothing."""
        if not self._seen.add(key):
            return False
        self._repeated.add(key)
        return True

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
