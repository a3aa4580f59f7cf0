"""Streaming XML reader: lxml iterparse, one record per matching element, memory flat on any size.

Each record element is detached from the tree once the next one is wanted, so the parsed tree never
grows; the element itself stays valid for as long as the consumer holds it. Malformed XML cannot be
resynchronised: the broken part becomes an error record and reading of that file stops (every record
read before it is kept).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from lxml import etree

from fhir_dnacpr.sources.base import Origin, RawRecord


class RecordPath:
    """Where records sit: ``/ex:Export/ex:Form`` (anchored at the root) or ``ex:Form`` / ``//ex:Form``
    (that tag anywhere). Prefixes resolve through ``namespaces``.
    """

    def __init__(self, path: str, namespaces: Mapping[str, str] | None = None) -> None:
        self.text = path
        namespaces = namespaces or {}
        anchored = path.startswith("/") and not path.startswith("//")
        steps = [s for s in path.strip("/").split("/") if s]
        if not steps:
            raise ValueError("the record path is empty; give the record element, e.g. /ex:Export/ex:Form")
        self.tags = tuple(_clark(step, namespaces) for step in steps)
        self.anchored = anchored
        self.tag = self.tags[-1]

    def matches(self, element: etree._Element) -> bool:
        """True when the element's ancestry is the path (the tag itself is filtered by iterparse)."""
        node = element
        for tag in reversed(self.tags[:-1]):
            node = node.getparent()
            if node is None or node.tag != tag:
                return False
        return not self.anchored or node.getparent() is None


def _clark(step: str, namespaces: Mapping[str, str]) -> str:
    if ":" in step:
        prefix, local = step.split(":", 1)
        if prefix not in namespaces:
            raise ValueError(f"the prefix {prefix!r} in the record path is not in the namespaces map")
        return f"{{{namespaces[prefix]}}}{local}"
    return step


def read_xml(
    path: str | Path,
    *,
    record_path: str,
    namespaces: Mapping[str, str] | None = None,
) -> Iterator[RawRecord]:
    """Yield one ``RawRecord`` per record element, ``data`` the lxml element.

    ``Origin.index`` is the record number (1-based), ``line`` the line where the element starts and
    ``path`` the record path with its position, e.g. ``/ex:Export/ex:Form[3]``. External entities and
    network access are disabled.
    """
    name = str(path)
    where = RecordPath(record_path, namespaces)
    events = etree.iterparse(
        name,
        events=("end",),
        tag=where.tag,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_blank_text=False,
    )
    index = 0
    previous: etree._Element | None = None
    try:
        for _event, element in events:
            if not where.matches(element):
                continue
            if previous is not None:
                _detach(previous)
            index += 1
            previous = element
            yield RawRecord(
                Origin(name, line=element.sourceline, index=index, path=f"{where.text}[{index}]"),
                data=element,
            )
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = exc.msg if hasattr(exc, "msg") and exc.msg else str(exc)
        yield RawRecord(
            Origin(name, line=line, index=index + 1, path=f"{where.text}[{index + 1}]"),
            text=None,
            error=(
                f"the XML is not well-formed at line {line}, column {column} ({message}); "
                f"{index} record(s) before it were read, the rest of the file was not: fix the file and "
                "convert it again"
            ),
            error_id="read.xml.malformed",
        )
    except OSError as exc:
        yield RawRecord(
            Origin(name, index=index + 1),
            error=f"the file cannot be read ({exc.strerror})",
            error_id="read.file.unreadable",
        )
    finally:
        if previous is not None:
            _detach(previous)


def _detach(element: etree._Element) -> None:
    """Drop a finished record (and anything before it) from the tree so the tree stays small."""
    parent = element.getparent()
    if parent is None:
        return
    while True:
        first = parent[0] if len(parent) else None
        if first is None:
            break
        parent.remove(first)
        if first is element:
            break
