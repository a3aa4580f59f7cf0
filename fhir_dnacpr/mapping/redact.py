"""Masking raw records for the reject file: show only what cannot identify a person or tell their story.

The spec knows which source paths map to non-identifying, non-free-text fields (codes, decision
dates, flags, ODS codes …); everything else — identifiers, names, contact details, narrative, and
every unmapped field — is replaced by ``MASK``. Blanks stay blank so a reader can still see what was
missing.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

MASK = "***"


def redact_flat(data: dict[str, Any], safe: set[str]) -> dict[str, Any]:
    """A CSV row: columns by name."""
    return {k: v if (k in safe or not v) else MASK for k, v in data.items()}


def redact_json(value: Any, path: str, safe: set[str]) -> Any:
    """A JSON value (a copy): dotted paths with ``[]`` for array items, as the spec compiler notes them."""
    if isinstance(value, dict):
        return {k: redact_json(v, f"{path}.{k}" if path else k, safe) for k, v in value.items()}
    if isinstance(value, list):
        item_path = path if path in safe else f"{path}[]"
        return [redact_json(v, item_path, safe) for v in value]
    if value is None or value == "":
        return value
    return value if path in safe else MASK


def redact_xml(element: Any, safe: set[str], namespaces: dict[str, str]) -> dict[str, Any]:
    """An XML record as a flat dict of element and attribute paths (``rs:Cpr@date``)."""
    prefixes = {uri: prefix for prefix, uri in namespaces.items()}
    keep_nodes: set[Any] = set()
    keep_attrs: set[tuple[Any, str]] = set()
    held: list[Any] = []
    for path in safe:
        try:
            result = etree.XPath(path, namespaces=namespaces)(element)
        except etree.XPathError:
            continue
        if not isinstance(result, list):
            continue
        for node in result:
            held.append(node)
            if isinstance(node, etree._Element):
                keep_nodes.add(node)
            elif getattr(node, "is_attribute", False):
                keep_attrs.add((node.getparent(), node.attrname))
            elif hasattr(node, "getparent"):
                keep_nodes.add(node.getparent())
    out: dict[str, Any] = {}
    _walk_xml(element, "", prefixes, keep_nodes, keep_attrs, out)
    return out


def _qname(tag: str, prefixes: dict[str, str]) -> str:
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        prefix = prefixes.get(uri)
        return f"{prefix}:{local}" if prefix else local
    return tag


def _walk_xml(
    element: Any,
    path: str,
    prefixes: dict[str, str],
    keep_nodes: set[Any],
    keep_attrs: set[tuple[Any, str]],
    out: dict[str, Any],
) -> None:
    for name, value in element.attrib.items():
        key = f"{path}@{_qname(name, prefixes)}" if path else f"@{_qname(name, prefixes)}"
        out[key] = value if (element, name) in keep_attrs or not value else MASK
    text_value = (element.text or "").strip()
    if text_value and path:
        out[path] = text_value if element in keep_nodes else MASK
    counts: dict[str, int] = {}
    children = [c for c in element if isinstance(c.tag, str)]
    for child in children:
        counts[child.tag] = counts.get(child.tag, 0) + 1
    seen: dict[str, int] = {}
    for child in children:
        seen[child.tag] = seen.get(child.tag, 0) + 1
        name = _qname(child.tag, prefixes)
        if counts[child.tag] > 1:
            name = f"{name}[{seen[child.tag]}]"
        _walk_xml(child, f"{path}/{name}" if path else name, prefixes, keep_nodes, keep_attrs, out)
