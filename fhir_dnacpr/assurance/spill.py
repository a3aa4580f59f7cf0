"""On-disk state for the cross-record rules, so memory stays flat however many records stream by.

Clusters and conflicts need to see records together, but only those sharing a key (setting + decision
maker, or person), and every key is a signed 64-bit hash. So each row goes, as it arrives, to one of
``PARTITIONS`` partitions of its key's range (the key's top bits): by organisation key and by postcode
key for a cluster candidate, by person for the conflict rules. Partitions are buffered in memory, as
arrays of 64-bit integers (a candidate's folded rationale in a list beside them), and appended to one
flat file as the arrays' bytes and ``marshal`` blobs of texts. At the end each partition is read back
alone, put in key and date order in memory, and handed on: a partition is a small slice of the rows, so
memory stays bounded while the work stays linear in the number of records (no global sort, no
external merge). As the partitions split the key range in order, reading them in turn yields the rows
in key order, exactly as one big ``ORDER BY`` would.

A record is two tuples: its keys, the small integers the sweeps sort and compare on (keyed hash of
the person, day number, ``seq`` …), which are its row for the conflict rules as they stand, and its
evidence (record refs, labels, texts). Both go, with those of the records around it, into one
``marshal`` chunk per 16 records in a second file: the evidence is read back only for the few
records a cross-record finding shows, found by its ``seq`` (which must increase from one record to the
next) through a small in-memory table of where each chunk starts. A cluster candidate's rows (its
blocking keys and its folded rationale) are made from the keys.

Postcode keys are mostly one person's home: groups with too few people are dropped before the sweep
(their texts are read back only for the keys kept), as are people with a single record (a row tuple
is made only for the people kept). Organisation keys are not filtered: nearly all of them are swept,
and the sweep itself ignores a group with too few people.

The files live in a private temporary folder (mode 0700) and are deleted when the run ends.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import chain, compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

#: The evidence of a record beyond its keys, in the order ``add_record`` takes it: packed with them in
#: chunks in a flat file, because it is read back only for the few records a cross-record finding shows.
#: The engine stores numbers where it can (the decision maker's index in its table, the status and
#: decision by index): marshal packs them faster than text.
EVIDENCE_FIELDS = (
    "record_id",
    "file",
    "location",
    "patient",
    "decision",
    "status",
    "rationale",
    "names",
    "setting",
    "maker",
)
#: The small integers of a record the sweeps sort and compare on, as ``add_record`` takes them: in the
#: order of a person row (see ``people_sorted``), so that the keys are that row as they come.
KEY_COLUMNS = ("pkey", "dayn", "seq", "value", "scode", "sys_id", "org_id", "rid")
#: Partitions per kind of key (organisation, postcode, person). With 10^6 records a partition holds
#: a few thousand rows: the most the end-of-stream sweep holds in memory at once.
PARTITION_BITS = 8
PARTITIONS = 1 << PARTITION_BITS
_KEY_OFFSET = 1 << 63  # signed 64-bit key -> 0 .. 2^64 - 1, so its top bits order the partitions
_SHIFT = 64 - PARTITION_BITS
#: Records per evidence chunk: what one look-up reads and unpacks. A chunk is packed by one ``marshal``
#: call (a call per record cost more than packing the records); a look-up unpacks its whole chunk, and
#: the last chunk read is kept, since look-ups for one cluster are near one another. But the records
#: of a conflict or stale copy are usually far apart (10^6 synthetic records give ~43,000 such
#: findings, two chunks each): unpacking 16 records instead of 32 halves that cost, for a few more
#: packing calls while streaming.
_EVIDENCE_CHUNK = 16
#: Evidence chunks between two writes of the buffered rows: about 8,000 records, 20,000 rows.
_CHUNKS_PER_FLUSH = 512
#: marshal format 2 for rows: they are unique ints and bytes, so the back-references of later formats
#: (a hash table entry for every object written) cost time and save nothing.
_FORMAT = 2
#: format 4 for evidence: it copies ASCII text as it is (format 2 makes a UTF-8 copy of every str),
#: and texts shared by many records (a file name) are written once a chunk.
_EVIDENCE_FORMAT = 4
_WRITE_BUFFER = 1 << 20  # few system calls for many small appends
_KEY = itemgetter(0)
_SEQ = itemgetter(2)  # of a record's keys
_BY_DAY = itemgetter(2)  # of a candidate row (key, kind, day, ...): see ``_in_key_order``
_PERSON_DAY = itemgetter(1)  # of a person row (key, day, ...)
ORG = 0
POSTCODE = 1
_Chunk = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]  # an evidence chunk's keys and evidence


def partition_of(key: int) -> int:
    """The partition of a signed 64-bit key: its top ``PARTITION_BITS`` bits, after offsetting."""
    return (key + _KEY_OFFSET) >> _SHIFT


class _AppendOnly:
    """A file written only at its end, that keeps count of its size: ``tell`` or ``seek`` on a buffered
    file writes its buffer out (a system call every time), and reads (``os.pread``) do not move it."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w+b", buffering=_WRITE_BUFFER)
        self.size = 0

    def append(self, blob: bytes) -> int:
        """Write ``blob`` at the end; where it starts."""
        at = self.size
        self.file.write(blob)
        self.size = at + len(blob)
        return at

    def read(self, size: int, at: int) -> bytes:
        self.file.flush()  # nothing pending after the first read: one cheap call
        return os.pread(self.file.fileno(), size, at)


class _Partitions:
    """Rows of integers bucketed by the range of their key, appended to a shared file.

    A partition's buffer is an ``array`` of 64-bit integers holding its rows one after another
    (``width`` values a row), written out as the array's bytes and read back the same way: no
    object per value or per row. A tuple per row, kept until the next write thousands of records
    later, counted towards the garbage collector's next run (a record made two or three), so the
    collector ran every few hundred records over everything young; an array is not tracked at all,
    and copying its bytes is cheaper than marshal packing and unpacking each value.

    With ``side`` each row also has a side value (its folded rationale), kept in a marshal blob of
    its own beside the rows' so a partition's rows can be read, and mostly dropped, without them.
    Each flush writes every non-empty partition's blobs one after another; memory is the buffered
    rows (bounded by the caller's flushes) and, per flush, where it starts and each blob's size (4
    bytes a partition), so that finding the chunks does not grow with the chunks written."""

    def __init__(self, out: _AppendOnly, width: int, side: bool = False) -> None:
        self._out = out
        self.row_width = width
        self.buffers: list[array[int]] = [array("q") for _ in range(PARTITIONS)]  # ``width`` a row
        self.side_buffers: list[list[Any]] | None = [[] for _ in range(PARTITIONS)] if side else None
        self._blobs = 2 if side else 1  # blobs per partition per flush: rows (, side values)
        self._flush_at = array("q")
        self._sizes = array("I")  # flush by flush, partition by partition

    def write(self) -> None:
        """Write the buffered rows out."""
        if not any(self.buffers):
            return
        out = self._out
        sides = self.side_buffers
        blobs = self._blobs
        sizes = array("I", bytes(4 * PARTITIONS * blobs))
        self._flush_at.append(out.size)
        for part, values in enumerate(self.buffers):
            if values:
                blob = values.tobytes()
                sizes[part * blobs] = len(blob)
                out.append(blob)
                del values[:]
                if sides is not None:
                    side = marshal.dumps(sides[part], _FORMAT)
                    sizes[part * blobs + 1] = len(side)
                    out.append(side)
                    sides[part].clear()
        self._sizes.extend(sizes)

    def scan(self) -> Iterator[tuple[list[array[int]], Callable[[], list[Any]]]]:
        """Each partition in turn (in key order): its rows' columns (an array per column, the rows in
        the order they were added), and a function that reads their side values, in the same order."""
        self._out.file.flush()  # then each blob is one ``pread``: no seek, no read-ahead into a buffer
        fd = self._out.file.fileno()
        blobs = self._blobs
        stride = PARTITIONS * blobs
        sizes = self._sizes
        row_width = self.row_width
        cursors = array("q", self._flush_at)  # where each flush's next partition starts
        for part in range(PARTITIONS):
            values = array("q")
            side_at: list[tuple[int, int]] = []
            for flush, at in enumerate(cursors):
                size = sizes[flush * stride + part * blobs]
                if not size:
                    continue
                values.frombytes(os.pread(fd, size, at))
                at += size
                if blobs == 2:
                    side_size = sizes[flush * stride + part * blobs + 1]
                    side_at.append((at, side_size))
                    at += side_size
                cursors[flush] = at
            values += self.buffers[part]
            columns = [values[i::row_width] for i in range(row_width)]
            yield columns, partial(self._read_side, part, side_at)

    def _read_side(self, part: int, chunks: list[tuple[int, int]]) -> list[Any]:
        assert self.side_buffers is not None
        values: list[Any] = []
        for at, size in chunks:
            values += marshal.loads(self._out.read(size, at))
        values += self.side_buffers[part]
        return values


class SpillStore:
    """Append-only partitioned rows and evidence chunks, then grouped, date-ordered scans. One per
    audit run."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="dnacpr-audit-", dir=directory)
        folder = Path(self._dir.name)
        self.path = folder
        self._rows = _AppendOnly(folder / "rows.bin")
        self._org = _Partitions(self._rows, 4, side=True)  # bkey, day, seq, pkey; the text beside
        self._postcode = _Partitions(self._rows, 4, side=True)
        self._person = _Partitions(self._rows, len(KEY_COLUMNS))
        self._org_buffers = self._org.buffers
        self._org_texts = self._org.side_buffers
        self._postcode_buffers = self._postcode.buffers
        self._postcode_texts = self._postcode.side_buffers
        self._person_buffers = self._person.buffers
        self._chunks_unflushed = 0  # evidence chunks written since the rows were
        self._evidence_out = _AppendOnly(folder / "evidence.bin")
        self._chunk_first_seq = array("q")  # the first seq of each evidence chunk written
        self._chunk_at = array("q")  # where each chunk starts (it ends where the next one starts)
        self._keys: list[tuple[Any, ...]] = []  # of the records not yet written, with their evidence
        self._evidence: list[tuple[Any, ...]] = []
        self._last_seq: int | None = None
        self._cached_chunk: tuple[int, _Chunk] | None = None

    def add_record(
        self,
        keys: tuple[Any, ...],
        evidence: tuple[Any, ...],
        org_bkey: int | None = None,
        postcode_bkey: int | None = None,
        text: bytes | None = None,
    ) -> None:
        """One record: its ``KEY_COLUMNS`` (its ``seq`` greater than the last record's) and
        ``EVIDENCE_FIELDS``, with its blocking keys (by organisation, by postcode) and its rationale
        ``text``, folded for the sweep (``similarity.folded``), if it is a cluster candidate. It must
        have a person key and a day; its keys are a row for the conflict rules if it has a status
        (``scode``)."""
        pkey, dayn, seq, _, scode, _, _, _ = keys
        if pkey is None or dayn is None:  # its rows are integers, and it could not be grouped or placed
            raise ValueError("a stored record needs its person key and day")
        last = self._last_seq
        if last is not None and seq <= last:
            raise ValueError(f"seq {seq} after {last}: records must come in increasing seq order")
        self._last_seq = seq
        self._keys.append(keys)
        self._evidence.append(evidence)
        if len(self._keys) >= _EVIDENCE_CHUNK:
            self._write_evidence()
        if org_bkey is not None:
            part = (org_bkey + _KEY_OFFSET) >> _SHIFT
            self._org_buffers[part].extend((org_bkey, dayn, seq, pkey))
            self._org_texts[part].append(text)  # type: ignore[index]
        if postcode_bkey is not None:
            part = (postcode_bkey + _KEY_OFFSET) >> _SHIFT
            self._postcode_buffers[part].extend((postcode_bkey, dayn, seq, pkey))
            self._postcode_texts[part].append(text)  # type: ignore[index]
        if scode is not None:
            self._person_buffers[(pkey + _KEY_OFFSET) >> _SHIFT].extend(keys)

    def _write_evidence(self) -> None:
        """Write the pending records' keys and evidence out as one chunk; every ``_CHUNKS_PER_FLUSH``
        chunks, the buffered rows too (a record makes at most three rows, so they stay bounded)."""
        if not self._keys:
            return
        self._chunk_first_seq.append(self._keys[0][2])
        self._chunk_at.append(self._evidence_out.append(_pack_chunk(self._keys, self._evidence)))
        self._keys, self._evidence = [], []
        self._chunks_unflushed += 1
        if self._chunks_unflushed >= _CHUNKS_PER_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows out (they are read back all the same: this only frees memory)."""
        self._org.write()
        self._postcode.write()
        self._person.write()
        self._chunks_unflushed = 0

    def candidates_sorted(self, min_people: int) -> Iterator[tuple[int, int, int, int, int, bytes | None]]:
        """(bkey, stype, dayn, seq, pkey, folded rationale): the organisation rows (stype 0), then the
        postcode rows (stype 1), each ordered by bkey, then day, then seq.

        Postcode keys with fewer than ``min_people`` different people are left out; organisation keys
        are not filtered (see the module docstring). The rows are sorted partition by partition and
        flattened by ``chain``, so handing a row on costs no Python code."""
        return chain.from_iterable(self._candidate_partitions(min_people))

    def _candidate_partitions(self, min_people: int) -> Iterator[list[tuple[Any, ...]]]:
        self.flush()  # so that the buffers are empty while the file is read
        for (bkeys, days, seqs, people), read_texts in self._org.scan():
            rows = zip(bkeys, repeat(ORG, len(bkeys)), days, seqs, people, read_texts(), strict=True)
            yield _in_key_order(list(rows), _BY_DAY)
        for (bkeys, days, seqs, people), read_texts in self._postcode.scan():
            busy = _busy_keys(bkeys, people, min_people)
            if not busy:
                continue  # the texts are not even read
            rows = zip(bkeys, repeat(POSTCODE, len(bkeys)), days, seqs, people, read_texts(), strict=True)
            yield _in_key_order(list(compress(rows, map(busy.__contains__, bkeys))), _BY_DAY)

    def people_sorted(self) -> Iterator[tuple[int, ...]]:
        """(pkey, dayn, seq, value, scode, sys_id, org_id, rid) for people with more than one record
        that has a status, ordered by person, then day, then seq (flattened from partitions, as above)."""
        return chain.from_iterable(self._person_partitions())

    def _person_partitions(self) -> Iterator[list[tuple[Any, ...]]]:
        self.flush()
        for columns, _ in self._person.scan():
            records = Counter(columns[0])  # counted in C: most people have one record
            repeated = {key for key, n in records.items() if n > 1}
            # a row tuple is made only for the people kept (``zip`` reuses the tuple ``compress`` drops)
            rows = compress(zip(*columns, strict=True), map(repeated.__contains__, columns[0]))
            yield _in_key_order(list(rows), _PERSON_DAY)

    def records(self, seqs: list[int]) -> dict[int, dict[str, Any]]:
        """The stored keys and evidence of the given records (``KEY_COLUMNS`` and ``EVIDENCE_FIELDS``),
        by ``seq``; a seq never stored is left out."""
        out: dict[int, dict[str, Any]] = {}
        for seq, (keys, values) in self.evidence(seqs).items():
            row = dict(zip(KEY_COLUMNS, keys, strict=True))
            row.update(zip(EVIDENCE_FIELDS, values, strict=True))
            out[seq] = row
        return out

    def evidence(self, seqs: Iterable[int]) -> dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """``records`` as (the keys, the evidence) ``add_record`` took, in increasing seq order."""
        out: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        for seq in sorted(set(seqs)):
            if self._keys and seq >= self._keys[0][2]:  # not written yet
                keys, evidence = self._keys, self._evidence
            else:
                n = bisect_right(self._chunk_first_seq, seq) - 1
                if n < 0:
                    continue
                keys, evidence = self._chunk(n)
            i = bisect_left(keys, seq, key=_SEQ)
            if i < len(keys) and keys[i][2] == seq:
                out[seq] = (keys[i], evidence[i])
        return out

    def _chunk(self, n: int) -> _Chunk:
        """Evidence chunk ``n``, unpacked (one read; the last one is kept)."""
        cached = self._cached_chunk
        if cached is not None and cached[0] == n:
            return cached[1]
        at = self._chunk_at[n]
        end = self._chunk_at[n + 1] if n + 1 < len(self._chunk_at) else self._evidence_out.size
        chunk = marshal.loads(self._evidence_out.read(end - at, at))
        self._cached_chunk = (n, chunk)
        return chunk

    def close(self) -> None:
        try:
            self._rows.file.close()
            self._evidence_out.file.close()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_key_order(
    rows: list[tuple[Any, ...]], by_day: Callable[[tuple[Any, ...]], Any]
) -> list[tuple[Any, ...]]:
    """The rows of one partition, sorted in place by key (``row[0]``), then day, then seq: the order
    of one ``ORDER BY key, day, seq``. Rows were added in increasing seq order and both sorts are
    stable, so sorting by day and then by key leaves each key's rows in day order, ties in seq order;
    two sorts on one integer each, in C, take about half the time of grouping the rows in Python."""
    rows.sort(key=by_day)
    rows.sort(key=_KEY)
    return rows


def _pack_chunk(keys: list[tuple[Any, ...]], evidence: list[tuple[Any, ...]]) -> bytes:
    try:
        return marshal.dumps((keys, evidence), _EVIDENCE_FORMAT)
    except ValueError:  # a str subclass from some source: store it as the plain text it is
        plain = [tuple(str.__str__(v) if isinstance(v, str) else v for v in ev) for ev in evidence]
        return marshal.dumps((keys, plain), _EVIDENCE_FORMAT)


def _busy_keys(keys: array[int], people: array[int], min_people: int) -> set[int]:
    """The keys shared by at least ``min_people`` different people (rows' ``keys`` and ``people``
    columns)."""
    records = Counter(keys)  # counted in C: a key with too few records has too few people
    maybe = {key for key, n in records.items() if n >= min_people}
    if not maybe:
        return maybe
    seen: dict[int, set[int]] = {}
    for key, person in zip(keys, people, strict=True):
        if key not in maybe:
            continue
        who = seen.get(key)
        if who is None:
            seen[key] = {person}
        else:
            who.add(person)
    return {key for key, who in seen.items() if len(who) >= min_people}
