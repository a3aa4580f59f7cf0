"""Streaming JSON readers: NDJSON (one object a line) and JSON arrays (read element by element).

The array reader never loads the whole file: it decodes one element at a time with the C-accelerated
``json`` scanner over a sliding buffer, so memory is bounded by the largest single record
(``MAX_RECORD_CHARS``). The array may sit at the top level or under object keys (``array_path``).
A broken element cannot be resynchronised, so it ends the file with an error record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.decoding import ERRORS, REPLACEMENT, decode_errors

MAX_RECORD_CHARS = 64 * 1024 * 1024
_CHUNK = 1 << 18
_WHITESPACE = " \t\r\n"
_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """How a JSON value's type reads in a message (``an object``, ``a number`` …)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def read_ndjson(path: str | Path) -> Iterator[RawRecord]:
    """Yield one ``RawRecord`` per non-blank line; ``Origin.line`` is the line number.

    A line that is not valid JSON (or not UTF-8), or whose value is not an object, becomes an error
    record with its text; blank lines are skipped.
    """
    name = str(path)
    index = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            index += 1
            origin = Origin(name, line=number, index=index)
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield RawRecord(
                    origin,
                    text=line.decode("utf-8", "replace").rstrip("\r\n"),
                    error=f"the line is not valid JSON ({_reason(exc)}); fix or remove the line",
                    error_id="read.json.invalid",
                )
                continue
            if not isinstance(value, dict):
                yield RawRecord(
                    origin,
                    text=line.decode("utf-8", "replace").rstrip("\r\n"),
                    error=(
                        f"the line holds {json_type_name(value)}, not an object; each line must be one record"
                    ),
                    error_id="read.json.not-object",
                )
                continue
            yield RawRecord(origin, data=value)


def _reason(exc: Exception) -> str:
    """The decoder's reason without the offending text (which may hold patient data)."""
    text = str(exc)
    return text.split(":", 1)[0] if ":" in text else text


class _Broken(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _Buffer:
    """A sliding window over a text file: enough text to decode the next value, and line counting."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.replaced = False

    def fill(self) -> bool:
        """Read another chunk (dropping what was consumed); False at end of file."""
        if self.eof:
            return False
        chunk = self.handle.read(_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + chunk
        self.pos = 0
        return True

    def skip_whitespace(self) -> str | None:
        """Advance past whitespace; the next character or None at end of file."""
        while True:
            text, pos = self.text, self.pos
            end = len(text)
            while pos < end and text[pos] in _WHITESPACE:
                if text[pos] == "\n":
                    self.line += 1
                pos += 1
            self.pos = pos
            if pos < end:
                return text[pos]
            if not self.fill():
                return None

    def advance(self, count: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def decode(self, decoder: json.JSONDecoder) -> Any:
        """Decode the value at the cursor, reading more text while it is incomplete."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                near_end = exc.pos >= len(self.text) - 64 or exc.msg.startswith("Unterminated")
                if near_end and len(self.text) - self.pos < MAX_RECORD_CHARS and self.fill():
                    continue
                line = self.line + self.text.count("\n", self.pos, exc.pos)
                raise _Broken(line, exc.msg) from None
            if end == len(self.text) and not self.eof and self.fill():
                continue  # a number at the very end of the buffer may go on in the next chunk
            self.replaced = self.text.find(REPLACEMENT, self.pos, end) != -1
            self.advance(end - self.pos)
            return value


def read_json_array(
    path: str | Path,
    *,
    array_path: str | None = None,
    encoding: str = "utf-8-sig",
) -> Iterator[RawRecord]:
    """Yield one ``RawRecord`` per element of a JSON array, decoding one element at a time.

    ``array_path`` (dotted object keys, e.g. ``export.records``) finds an array nested in objects;
    None means the file is the array. ``Origin.index`` is the element number (1-based), ``line`` the
    line where it starts and ``path`` ``$[i]`` (0-based, as in JSONPath). An element that is not an
    object becomes an error record; broken JSON ends the file with an error record.
    """
    name = str(path)
    keys = [k for k in (array_path or "").split(".") if k]
    decoder = json.JSONDecoder()
    index = 0
    errors_before = decode_errors()
    with open(path, encoding=encoding, errors=ERRORS, newline="") as handle:
        buffer = _Buffer(handle)
        buffer.fill()
        try:
            _enter_array(buffer, decoder, keys)
            first = True
            while True:
                char = buffer.skip_whitespace()
                if char == "]":
                    return
                if not first:
                    if char != ",":
                        raise _Broken(buffer.line, "expected ',' or ']' after an array element")
                    buffer.advance(1)
                    buffer.skip_whitespace()
                first = False
                line = buffer.line
                origin = Origin(name, line=line, index=index + 1, path=f"$[{index}]")
                value = buffer.decode(decoder)
                index += 1
                if not isinstance(value, dict):
                    yield RawRecord(
                        origin,
                        error=f"array element {index} is {json_type_name(value)}, not an object",
                        error_id="read.json.not-object",
                    )
                elif buffer.replaced and decode_errors() != errors_before:
                    yield RawRecord(
                        origin,
                        error=(
                            f"the record holds bytes that are not valid {encoding}; declare the file's "
                            "encoding (source.encoding)"
                        ),
                        error_id="read.json.encoding",
                    )
                else:
                    yield RawRecord(origin, data=value)
        except _Broken as broken:
            yield RawRecord(
                Origin(name, line=broken.line, index=index + 1, path=f"$[{index}]"),
                error=(
                    f"the JSON is broken near line {broken.line} ({broken.reason}); {index} record(s) "
                    "before it were read, the rest of the file was not: fix the file and convert it again"
                ),
                error_id="read.json.broken",
            )


def _enter_array(buffer: _Buffer, decoder: json.JSONDecoder, keys: list[str]) -> None:
    """Move the cursor just inside the array at ``keys``, skipping sibling values on the way."""
    for key in keys:
        if buffer.skip_whitespace() != "{":
            raise _Broken(buffer.line, f"expected an object holding {key!r}")
        buffer.advance(1)
        while True:
            char = buffer.skip_whitespace()
            if char == "}" or char is None:
                raise _Broken(buffer.line, f"the key {key!r} of array_path was not found")
            if char == ",":
                buffer.advance(1)
                continue
            found = buffer.decode(decoder)
            if buffer.skip_whitespace() != ":":
                raise _Broken(buffer.line, "expected ':' after an object key")
            buffer.advance(1)
            buffer.skip_whitespace()
            if found == key:
                break
            buffer.decode(decoder)
    if buffer.skip_whitespace() != "[":
        where = ".".join(keys) or "the top level"
        raise _Broken(buffer.line, f"expected an array at {where}")
    buffer.advance(1)
