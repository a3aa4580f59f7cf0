"""The CSV reader's fast paths give exactly what the plain reader gives, row for row.

The reference here is the plain form: every line through ``csv.reader``, each record's lines collected
as they are read, ``dict(zip(...))`` for the row and the dataclasses' own constructors. The reader
splits lines without quotes itself, parses only quoted ones, builds rows with a per-header function
and makes clean records with ``row_record``; all of it is held to the reference on generated files
(quotes, line breaks of every kind, blank lines, wrong field counts, broken quoting, bytes invalid in
the encoding, a field-size limit small enough to matter).
"""

from __future__ import annotations

import csv
import itertools
import threading
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.csv import _unique_header, read_csv, row_dict, sniff_delimiter
from fhir_dnacpr.sources.decoding import ERRORS, REPLACEMENT, decode_errors
from fhir_dnacpr.sources.records import row_record


def reference_read_csv(
    path: Path, *, encoding: str, delimiter: str | None = None, quotechar: str = '"'
) -> Iterator[RawRecord]:
    """The plain reader: what ``read_csv`` must give."""
    name = str(path)
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
            source = itertools.chain((first,), source)
        else:
            chosen = delimiter
        reader = csv.reader(source, delimiter=chosen, quotechar=quotechar, strict=True)
        header: list[str] | None = None
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
                pending.clear()
                continue
            index += 1
            text = "".join(pending)
            pending.clear()
            if len(row) != len(header):
                yield RawRecord(
                    Origin(name, line=start, index=index),
                    text=text,
                    error=(
                        f"the row has {len(row)} fields but the header has {len(header)}; check the "
                        "delimiter and quoting of this row (an unquoted delimiter or line break inside a "
                        "field)"
                    ),
                    error_id="read.csv.field-count",
                )
                continue
            if decode_errors() != errors_before and REPLACEMENT in text:
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
            yield RawRecord(Origin(name, line=start, index=index), data=dict(zip(header, row, strict=True)))


# Pieces a file is made of: text, delimiters, quotes (single, doubled, around fields), every kind of
# line break, blanks, a real U+FFFD, a NUL, and bytes that are not valid UTF-8 (0x81 is not valid
# cp1252 either).
PIECES = [
    b"a",
    b"Zo\xc3\xab",
    b" ",
    b",",
    b";",
    b"\t",
    b'"',
    b'""',
    b'"x,y"',
    b'"two\r\nlines"',
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    "\ufffd".encode(),
    b"\x00",
    b"\xff",
    b"\x81",
    b"\xe9",
    b"id,name,note\r\n",
]

files = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


def _records(records: Iterator[RawRecord]) -> list[tuple[object, ...]]:
    return [(r.origin, r.data, r.text, r.error, r.error_id) for r in records]


def _same(path: Path, **options: object) -> None:
    fast = _records(read_csv(path, **options))  # type: ignore[arg-type]
    plain = _records(reference_read_csv(path, **options))  # type: ignore[arg-type]
    assert fast == plain


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=files,
    encoding=st.sampled_from(["utf-8", "cp1252", "latin-1"]),
    delimiter=st.sampled_from([None, ",", ";", "\t"]),
)
def test_any_file_reads_like_the_plain_reader(
    tmp_path: Path, content: bytes, encoding: str, delimiter: str | None
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    _same(path, encoding=encoding, delimiter=delimiter)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=files, quotechar=st.sampled_from(["'", "|", REPLACEMENT]))
def test_another_quote_character_reads_like_the_plain_reader(
    tmp_path: Path, content: bytes, quotechar: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content.replace(b'"', quotechar.encode()))
    _same(path, encoding="utf-8", delimiter=",", quotechar=quotechar)


@pytest.fixture
def small_field_limit() -> Iterator[int]:
    saved = csv.field_size_limit(6)
    try:
        yield 6
    finally:
        csv.field_size_limit(saved)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=files)
def test_a_line_longer_than_the_field_limit_is_parsed_and_reads_like_the_plain_reader(
    tmp_path: Path, small_field_limit: int, content: bytes
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"a,b\r\n" + content)
    _same(path, encoding="utf-8", delimiter=",")


def test_a_long_unquoted_field_is_an_error_like_the_plain_reader(
    tmp_path: Path, small_field_limit: int
) -> None:
    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\r\n1234567,x\r\n123456,y\r\n")
    records = list(read_csv(path, encoding="utf-8", delimiter=","))
    assert records[0].error_id == "read.csv.quoting" and "field limit" in (records[0].error or "")
    assert records[1].data == {"a": "123456", "b": "y"}
    _same(path, encoding="utf-8", delimiter=",")


@given(st.lists(st.text(max_size=8), min_size=1, max_size=40, unique=True), st.data())
def test_row_dict_is_dict_of_zip_with_the_headers_own_names(header: list[str], data: st.DataObject) -> None:
    row = data.draw(st.lists(st.text(max_size=5), min_size=len(header), max_size=len(header)))
    made = row_dict(header)(row)
    assert made == dict(zip(header, row, strict=True))
    assert list(made) == header
    assert all(key is name for key, name in zip(made, header, strict=True))


def test_a_header_wider_than_unrolled_is_still_read(tmp_path: Path) -> None:
    header = [f"c{i}" for i in range(5000)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(header) + "\n" + ",".join(str(i) for i in range(5000)) + "\n", encoding="utf-8")
    [record] = read_csv(path)
    assert record.data == {f"c{i}": str(i) for i in range(5000)}


@given(
    st.text(max_size=20),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=4),
)
def test_row_record_is_the_plain_construction(file: str, line: int, index: int, data: object) -> None:
    made = row_record(file, line, index, data)
    plain = RawRecord(Origin(file, line=line, index=index), data=data)
    assert made == plain
    assert repr(made) == repr(plain)
    assert hash(made.origin) == hash(plain.origin)
    assert type(made) is RawRecord and type(made.origin) is Origin
    with pytest.raises(FrozenInstanceError):
        made.origin.line = 0  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        made.data = None  # type: ignore[misc]


def test_the_decode_error_count_is_per_thread_and_starts_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a\n\xff\n")
    before = decode_errors()
    list(read_csv(path, encoding="utf-8"))
    assert decode_errors() == before + 1
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(decode_errors()))
    thread.start()
    thread.join()
    assert seen == [0]
