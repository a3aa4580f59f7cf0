"""Streaming CSV reader: any delimiter, RFC 4180 quoting, detected or declared encoding.

The file is decoded as it is read (never whole), so memory stays flat. A row that cannot be read (wrong
field count, broken quoting, bytes invalid in the encoding) becomes an error record carrying its raw
text and the physical line it starts on; reading goes on with the next row.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.decoding import COUNT, ERRORS, REPLACEMENT, decode_errors
from fhir_dnacpr.sources.records import row_record

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
    """Strip names; a repeated name becomes ``name#2``, ``name#3`` so every column stays addressable.

    The names are interned: a mapping spec's column names are interned too (as constants of the code
    it is compiled to), so looking a cell up in a row's dict finds its key by identity, not by
    comparing the text, tens of times per row.
    """
    seen: dict[str, int] = {}
    header = []
    for raw in names:
        name = raw.strip().lstrip("\ufeff")
        count = seen.get(name, 0) + 1
        seen[name] = count
        header.append(sys.intern(name if count == 1 else f"{name}#{count}"))
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
        lines: Iterator[str] = handle
        if delimiter is None:
            first = next(handle, None)
            if first is None:
                return
            chosen = sniff_delimiter(first)
            lines = itertools.chain((first,), handle)
        else:
            chosen = delimiter
        feed = _Feed(lines)
        reader = csv.reader(feed, delimiter=chosen, quotechar=quotechar, strict=True)
        yield from _records(lines, reader, feed, _splitter(chosen, quotechar), name, encoding, errors_before)


class _Feed:
    """What the csv reader reads: the line the caller hands it, then (for a quoted field that goes on
    over several lines) the lines after it. Every line it gives is kept in ``taken`` for the record's
    raw text, until the caller clears it."""

    __slots__ = ("first", "rest", "taken")

    def __init__(self, rest: Iterator[str]) -> None:
        self.first: str | None = None
        self.rest = rest
        self.taken: list[str] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self.first
        if line is None:
            line = next(self.rest)
        else:
            self.first = None
        self.taken.append(line)
        return line


def _splitter(delimiter: str, quotechar: str | None) -> tuple[str | None, int]:
    """When a line without the quote character may be split on the delimiter instead of parsed: the
    quote character to look for and the longest such line (else None, 0: every line is parsed).

    Without quotes the csv module (strict, doubled quotes, no escape character) reads a line as its
    text up to the line break cut at each delimiter: a blank line is no row, no error is possible
    but a field longer than ``csv.field_size_limit()`` (so a longer line is parsed), and a record
    never goes on past the line's end.
    """
    if (
        isinstance(quotechar, str)
        and len(quotechar) == 1
        and isinstance(delimiter, str)
        and len(delimiter) == 1
        and delimiter not in "\r\n"
        and quotechar not in "\r\n"
        and delimiter != quotechar
    ):
        return quotechar, csv.field_size_limit()
    return None, 0


_WIDEST_UNROLLED = 4096


def row_dict(header: list[str]) -> Callable[[list[str]], dict[str, str]]:
    """A function making ``dict(zip(header, row))`` for a row of the header's width (names unique).

    It copies a dict that already holds the header's names and stores each cell under its name, in
    straight-line code written for this header: no pair tuple per cell and no resizing as the dict
    grows, about a third fewer instructions than ``dict(zip(...))`` for a typical export. Same keys
    (the header's own string objects), same order, same values.
    """
    if len(header) > _WIDEST_UNROLLED:
        return lambda row: dict(zip(header, row, strict=True))
    cells = [f"c{i}" for i in range(len(header))]
    body = [
        "def as_dict(row):",
        f"    {', '.join(cells)}, = row",
        "    made = copy()",
        *(f"    made[{name!r}] = {cell}" for name, cell in zip(header, cells, strict=True)),
        "    return made",
    ]
    env: dict[str, Any] = {"copy": dict.fromkeys(header).copy}
    exec(compile("\n".join(body), "<csv row>", "exec"), env)
    return env["as_dict"]  # type: ignore[no-any-return]


def _records(
    lines: Iterator[str],
    reader: Any,
    feed: _Feed,
    splitter: tuple[str | None, int],
    name: str,
    encoding: str,
    errors_before: int,
) -> Iterator[RawRecord]:
    """The rows of ``lines``: a line without quotes is split on the delimiter (see ``_splitter``), any
    other is handed to the csv reader, which reads on as far as the record goes."""
    quote, longest = splitter
    delimiter = reader.dialect.delimiter
    taken = feed.taken
    header: list[str] = []
    width = 0
    as_dict: Callable[[list[str]], dict[str, str]] = dict
    index = 0
    next_line = 1  # the physical line the next row starts on
    counter = COUNT
    for line in lines:
        start = next_line
        if quote is not None and quote not in line and len(line) <= longest:
            next_line = start + 1
            content = line.rstrip("\r\n")
            if not content:
                continue
            row = content.split(delimiter)
            text = line
        else:
            taken.clear()
            feed.first = line
            before = reader.line_num
            try:
                row = next(reader)
            except csv.Error as exc:
                next_line = start + reader.line_num - before
                index += 1
                yield RawRecord(
                    Origin(name, line=start, index=index),
                    text="".join(taken),
                    error=f"the row cannot be read as CSV ({exc}); check its quoting",
                    error_id="read.csv.quoting",
                )
                continue
            next_line = start + reader.line_num - before
            if not row:
                continue
            text = None  # joined from ``taken`` when needed
        if not width:
            header = _unique_header(row)
            width = len(header)
            as_dict = row_dict(header)
            continue
        index += 1
        if len(row) != width:
            yield RawRecord(
                Origin(name, line=start, index=index),
                text="".join(taken) if text is None else text,
                error=(
                    f"the row has {len(row)} fields but the header has {width}; check the delimiter "
                    "and quoting of this row (an unquoted delimiter or line break inside a field)"
                ),
                error_id="read.csv.field-count",
            )
            continue
        # The counter first: it moves only in a file with undecodable bytes.
        if counter.count != errors_before:
            if text is None:
                text = "".join(taken)
            if REPLACEMENT in text:
                yield RawRecord(
                    Origin(name, line=start, index=index),
                    text=text,
                    error=(
                        f"the row holds bytes that are not valid {encoding}; declare the file's real "
                        "encoding (source.encoding in the mapping spec)"
                    ),
                    error_id="read.csv.encoding",
                )
                continue
        yield row_record(name, start, index, as_dict(row))
