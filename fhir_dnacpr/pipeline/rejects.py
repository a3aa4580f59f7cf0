"""The reject file: one line per record that could not be converted, with where, when and why.

Lines are FHIR-friendly (issues as an OperationOutcome) and hold a redacted copy of the record, so
an engineer can fix the source and re-run without the reject file itself leaking patient data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fhir_dnacpr.issues import Issue, operation_outcome
from fhir_dnacpr.sources.base import Origin


def reason_of(issues: Sequence[Issue]) -> str:
    """The key a reject is counted under in the summary: the first error's stable message id."""
    first = next((i for i in issues if i.is_error), issues[0] if issues else None)
    if first is None:
        return "unknown"
    return first.message_id or first.code


class RejectSink:
    """Appends reject lines to ``rejects.ndjson``; the file exists (maybe empty) after every run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self.count = 0

    def reject(self, origin: Origin, stage: str, issues: Sequence[Issue], record: Any = None) -> None:
        line: dict[str, Any] = {
            "origin": {k: v for k, v in asdict(origin).items() if v is not None},
            "where": str(origin),
            "stage": stage,
            "reason": reason_of(issues),
            "outcome": operation_outcome(issues),
        }
        if record is not None:
            line["record"] = record
        self._file.write(orjson.dumps(line, default=str) + b"\n")
        self.count += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RejectSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
