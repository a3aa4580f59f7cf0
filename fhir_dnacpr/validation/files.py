"""Reading instances from files: JSON, FHIR XML, NDJSON; parse failures become issues, not crashes.

Decimals are read exactly (``decimal.Decimal``) from both formats, so ``1.50`` is validated as
written — a float would turn it into ``1.5`` and lose the precision FHIR says is significant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhir_dnacpr.fhirxml import parse_xml
from fhir_dnacpr.issues import Issue, Severity


def parse_json_text(text: str | bytes) -> tuple[dict[str, Any] | None, list[Issue]]:
    """Parse one JSON resource; malformed JSON gives one fatal issue with the line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        return None, [
            Issue(
                Severity.FATAL,
                "invalid",
                f"Error parsing JSON: {exc.msg} at Line {exc.lineno} (column {exc.colno})",
                None,
                "Error_parsing_JSON_",
            )
        ]
    if not isinstance(value, dict):
        return None, [
            Issue(
                Severity.FATAL,
                "invalid",
                "Error parsing JSON: the root must be an object",
                None,
                "Error_parsing_JSON_",
            )
        ]
    return value, []


def read_resource(path: str | Path) -> tuple[dict[str, Any] | None, list[Issue]]:
    """A resource from a ``.json`` or ``.xml`` file (by extension, else by first character)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix.lower() == ".xml" or data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        return parse_xml(data, exact_decimals=True)
    return parse_json_text(data)


def iter_ndjson(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, list[Issue]]]:
    """``(line number, resource or None, parse issues)`` for each non-blank NDJSON line."""
    with Path(path).open("r", encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                resource, issues = parse_json_text(line)
                yield number, resource, issues
