"""Streaming CSV reader: any delimiter, RFC 4180 quoting, detected or declared encoding.

The file is decoded as it is read (never whole), so memory stays flat. A row that cannot be read (wrong
field count, broken quoting, bytes invalid in the encoding) becomes an error record carrying its raw
text and the physical line it starts on; reading goes on with the next row.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.decoding import ERRORS, REPLACEMENT, decode_errors

DELIMITER_CANDIDATES = (",", ";", "\t", "|")
"""What sniffing chooses from: the candidate found most often in the header line wins."""

_DETECT_CHUNK = 1 << 18


def detect_encoding(path: str | Path) -> str:
    """``utf-8-sig`` when the file starts with a UTF-8 BOM, ``utf-8`` when every byte is valid UTF-8,
    else ``cp1252`` (what Windows-based clinical systems export).

    Checks the whole file in chunks (an early all-ASCII stretch proves nothing), holding one chunk at
    a time.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        first = handle.read(_DETECT_CHUNK)
        if first.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        chunk = first
        try:
            while chunk:
                decoder.decode(chunk)
                chunk = handle.read(_DETECT_CHUNK)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def sniff_delimiter(header_line: str) -> str:
    """The delimiter candidate occurring most often in the header line outside quotes (``,`` on a tie)."""
    unquoted = header_line.split('"')[::2]
    text = "".join(unquoted)
    counts = {c: text.count(c) for c in DELIMITER_CANDIDATES}
    best = max(DELIMITER_CANDIDATES, key=lambda c: (counts[c], c == ","))
    return best if counts[best] else ","


def _unique_header(names: list[str]) -> list[str]:
    """Strip names; a repeated name becomes ``name#2``, ``name#3`` so every column stays addressable."""
    seen: dict[str, int] = {}
    header = []
    for raw in names:
        name = raw.strip().lstrip("\ufeff")
        count = seen.get(name, 0) + 1
        seen[name] = count
        header.append(name if count == 1 else f"{name}#{count}")
    return header


def read_csv(
    path: str | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    quotechar: str = '"',
) -> Iterator[RawRecord]:
    """Yield one ``RawRecord`` per data row, ``data`` a dict keyed by header name.

    ``encoding`` None or ``auto`` detects (see ``detect_encoding``); ``delimiter`` None sniffs it from
    the header line. ``Origin.line`` is the physical line where the record starts (a quoted field may
    span lines); ``Origin.index`` the data row number (1-based). Blank lines are skipped.
    """
    name = str(path)
    if encoding in (None, "", "auto"):
        encoding = detect_encoding(path)
    errors_before = decode_errors()
    with open(path, encoding=encoding, errors=ERRORS, newline="") as handle:
        pending: list[str] = []

        def lines() -> Iterator[str]:
            for line in handle:
                pending.append(line)
                yield line

        source = lines()
        if delimiter is None:
            first = next(source, None)
            if first is None:
                return
            chosen = sniff_delimiter(first)

            def replay(head: str = first, rest: Iterator[str] = source) -> Iterator[str]:
                yield head
                yield from rest

            source = replay()
        else:
            chosen = delimiter
        reader = csv.reader(source, delimiter=chosen, quotechar=quotechar, strict=True)
        yield from _records(reader, pending, name, encoding, errors_before)


def _records(
    reader: Any, pending: list[str], name: str, encoding: str, errors_before: int
) -> Iterator[RawRecord]:
    header: list[str] | None = None
    width = 0
    index = 0
    next_line = 1
    while True:
        start = next_line
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            next_line = reader.line_num + 1
            index += 1
            text = "".join(pending)
            pending.clear()
            yield RawRecord(
                Origin(name, line=start, index=index),
                text=text,
                error=f"the row cannot be read as CSV ({exc}); check its quoting",
                error_id="read.csv.quoting",
            )
            continue
        next_line = reader.line_num + 1
        if not row:
            pending.clear()
            continue
        if header is None:
            header = _unique_header(row)
            width = len(header)
            pending.clear()
            continue
        index += 1
        if len(row) != width:
            text = "".join(pending)
            pending.clear()
            yield RawRecord(
                Origin(name, line=start, index=index),
                text=text,
                error=(
                    f"the row has {len(row)} fields but the header has {width}; check the delimiter and "
                    "quoting of this row (an unquoted delimiter or line break inside a field)"
                ),
                error_id="read.csv.field-count",
            )
            continue
        # The counter first: one call, and it moves only in a file with undecodable bytes.
        if decode_errors() != errors_before and any(REPLACEMENT in line for line in pending):
            text = "".join(pending)
            pending.clear()
            yield RawRecord(
                Origin(name, line=start, index=index),
                text=text,
                error=(
                    f"the row holds bytes that are not valid {encoding}; declare the file's real encoding "
                    "(source.encoding in the mapping spec)"
                ),
                error_id="read.csv.encoding",
            )
            continue
        pending.clear()
        yield RawRecord(Origin(name, line=start, index=index), data=dict(zip(header, row, strict=True)))
