"""What every reader yields: a raw record that remembers where it came from.

Readers never raise for a bad record: a record they cannot read becomes a ``RawRecord`` with
``error`` set, so the pipeline can send it to the rejects with its origin and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record sits in its export: file plus line (CSV/NDJSON) or element index (XML/JSON)."""

    file: str
    line: int | None = None
    index: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.index is not None:
            where.append(f"record {self.index}")
        if self.path:
            where.append(self.path)
        return ", ".join(where)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: ``data`` is a dict for CSV/JSON rows, an lxml element for XML.

    ``error`` says why the record could not be read (wrong field count, invalid JSON …) and
    ``error_id`` names that kind of failure stably (``read.csv.field-count``); such a record carries
    whatever raw text was seen in ``text`` for the reject file.
    """

    origin: Origin
    data: Any = None
    text: str | None = None
    error: str | None = None
    error_id: str | None = None
