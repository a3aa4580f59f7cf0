"""Source paths: a CSV column, a JSON path (``a.b[0].c``) or an XPath, compiled once.

Each accessor reads a value from one record (``get``), lists repeating items (``items``) and, where the
layout allows, writes a value back (``put``, for ``unmap``). A record whose shape contradicts the path
(a number where an object should be, a column not in the header) raises ``ShapeError`` with a message
that names the path but never the record's values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from fhir_dnacpr.sources.json import json_type_name

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT", "__bool__": lambda self: False})()
"""No value in the source (missing key, empty result): distinct from a present empty string."""


class ShapeError(Exception):
    """The record's structure does not fit the path; ``code`` is the OperationOutcome issue type."""

    def __init__(self, message: str, message_id: str, code: str = "structure") -> None:
        super().__init__(message)
        self.message = message
        self.message_id = message_id
        self.code = code


class Accessor:
    text: str
    where: str

    def get(self, data: Any) -> Any:
        raise NotImplementedError

    def items(self, data: Any) -> list[Any]:
        value = self.get(data)
        if value is ABSENT or value is None:
            return []
        return value if isinstance(value, list) else [value]

    def put(self, out: dict[str, Any], value: Any) -> None:
        raise NotImplementedError


class Itself(Accessor):
    """``.``: the item itself (a split part, a JSON array element, an XML element's text)."""

    text = "."
    where = "the item"

    def get(self, data: Any) -> Any:
        if isinstance(data, etree._Element):
            return "".join(data.itertext())
        return data

    def put(self, out: dict[str, Any], value: Any) -> None:
        out["."] = value


class Column(Accessor):
    __slots__ = ("name", "text", "where")

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = name
        self.where = f"column {name}"

    def get(self, data: Mapping[str, str]) -> Any:
        try:
            return data[self.name]
        except KeyError:
            raise ShapeError(
                f"the column {self.name} named in the mapping spec is not in the file's header; "
                "correct the spec or the export",
                "mapping.column.missing",
            ) from None
        except TypeError:
            raise ShapeError(
                f"expected a row with a column {self.name}", "mapping.record.wrong-type"
            ) from None

    def put(self, out: dict[str, Any], value: Any) -> None:
        out[self.name] = value


_JSON_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_json_path(text: str) -> tuple[str | int, ...]:
    """``a.b[0].c`` → ("a", "b", 0, "c"); ValueError for anything else."""
    steps: list[str | int] = []
    pos = 0
    text = text.strip()
    if text.startswith("$."):
        text = text[2:]
    while pos < len(text):
        if text[pos] == "." and steps:
            pos += 1
        match = _JSON_STEP.match(text, pos)
        if match is None:
            raise ValueError(f"cannot read the JSON path at character {pos + 1}; write it as a.b[0].c")
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not steps:
        raise ValueError("the JSON path is empty")
    return tuple(steps)


class JsonPath(Accessor):
    __slots__ = ("steps", "text", "where")

    def __init__(self, text: str) -> None:
        self.steps = parse_json_path(text)
        self.text = text
        self.where = f"field {text}"

    def get(self, data: Any) -> Any:
        node = data
        for i, step in enumerate(self.steps):
            if node is None:
                return ABSENT
            if type(step) is str:
                if not isinstance(node, dict):
                    raise self._wrong(i, "an object", node)
                node = node.get(step, ABSENT)
                if node is ABSENT:
                    return ABSENT
            else:
                if not isinstance(node, list):
                    raise self._wrong(i, "an array", node)
                if step >= len(node):
                    return ABSENT
                node = node[step]
        return ABSENT if node is None else node

    def items(self, data: Any) -> list[Any]:
        value = self.get(data)
        if value is ABSENT:
            return []
        if not isinstance(value, list):
            raise self._wrong(len(self.steps), "an array", value)
        return value

    def _wrong(self, depth: int, expected: str, found: Any) -> ShapeError:
        where = _render_steps(self.steps[:depth]) or "the top of the record"
        return ShapeError(
            f"expected {expected} at {where} but found {json_type_name(found)}; "
            "correct the export or the path in the mapping spec",
            "mapping.json.wrong-type",
        )

    def put(self, out: dict[str, Any], value: Any) -> None:
        node: Any = out
        for step, following in zip(self.steps, (*self.steps[1:], None), strict=True):
            if following is None:
                _set(node, step, value)
                return
            child = _get_child(node, step)
            if child is None:
                child = {} if isinstance(following, str) else []
                _set(node, step, child)
            node = child


def _get_child(node: Any, step: str | int) -> Any:
    if isinstance(step, str):
        return node.get(step)
    return node[step] if step < len(node) else None


def _set(node: Any, step: str | int, value: Any) -> None:
    if isinstance(step, str):
        node[step] = value
        return
    while len(node) <= step:
        node.append(None)
    node[step] = value


def _render_steps(steps: tuple[str | int, ...]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


class XPathExpr(Accessor):
    """An XPath 1.0 expression relative to the record element, with the spec's namespace prefixes.

    Compiled once. (lxml's compiled XPath measured faster than ``findall`` even for plain child
    paths, so every path goes through it.)
    """

    __slots__ = ("compiled", "text", "where")

    def __init__(self, text: str, namespaces: Mapping[str, str]) -> None:
        self.text = text
        self.where = f"element {text}"
        self.compiled = etree.XPath(text, namespaces=dict(namespaces), smart_strings=True)

    def get(self, data: Any) -> Any:
        result = self.compiled(data)
        if isinstance(result, list):
            if not result:
                return ABSENT
            if len(result) == 1:
                return _node_text(result[0])
            return [_node_text(node) for node in result]
        if isinstance(result, bool):
            return "true" if result else "false"
        if isinstance(result, float):
            if result != result:  # NaN: number() of nothing
                return ABSENT
            return str(int(result)) if result.is_integer() else str(result)
        return result if result != "" else ABSENT

    def items(self, data: Any) -> list[Any]:
        result = self.compiled(data)
        if not isinstance(result, list):
            return [] if result in ("", None) else [str(result)]
        return result


def _node_text(node: Any) -> str:
    if isinstance(node, str):
        return str(node)  # attribute values and text() results (lxml "smart strings")
    if len(node):
        return "".join(node.itertext())
    return node.text or ""
