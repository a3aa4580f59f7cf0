"""FHIR XML ↔ FHIR JSON, driven by the base R4 definitions.

XML does not say which elements repeat or which primitives are numbers, so both directions consult
the core type index: arrays where the definition says ``max != 1``, JSON booleans and numbers for
``boolean``/``integer``/``decimal``, ``_name`` objects for ids and extensions on primitives, the
narrative ``div`` as an XHTML string, resources inside ``contained``/``resource`` wrappers. Output
XML follows definition element order. What XML can carry but JSON cannot (stray text, unknown
attributes) is reported as issues in the same shape the HL7 parser uses; unknown elements are
reported and dropped.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from fhir_dnacpr.definitions.elements import (
    JSON_BOOLEAN,
    JSON_DECIMAL,
    JSON_INTEGER,
    ChildInfo,
    TypeIndex,
    type_index,
)
from fhir_dnacpr.issues import Issue, Severity

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_F = f"{{{FHIR_NS}}}"
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


class RepeatedSingle(list):
    """A single-valued element that the XML repeats: kept (nothing lost) and marked so the
    validator reports it once, as a cardinality problem, like the HL7 XML parser does."""

    from_xml = True


class PartialElement(dict):
    """An element whose XML content was all unknown (and reported): it is not 'empty' (ele-1)."""

    had_unknown_content = True


class FhirXmlError(ValueError):
    """The document is not well-formed XML or its root is not a FHIR resource."""


def parse_xml(
    source: bytes | str | Path, *, exact_decimals: bool = False
) -> tuple[dict[str, Any] | None, list[Issue]]:
    """Parse a FHIR XML document into FHIR JSON; returns ``(resource or None, issues)``.

    Malformed XML gives ``None`` and one fatal issue (like the HL7 validator), never an exception.
    Decimals become ``float`` by default, exactly what ``json``/``orjson`` give for the same
    resource in JSON, so the result serialises anywhere. With ``exact_decimals`` they become
    ``decimal.Decimal`` and keep their digits (``1.50`` stays ``Decimal('1.50')``): the validator
    reads that way, and ``to_xml`` writes a ``Decimal`` back unchanged.
    """
    if isinstance(source, Path):
        source = source.read_bytes()
    if isinstance(source, str):
        source = source.encode("utf-8")
    parser = etree.XMLParser(resolve_entities=False, remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = etree.fromstring(source, parser)
    except etree.XMLSyntaxError as exc:
        return None, [_fatal(_xml_error_text(exc), "(xml)", "XML_PARSE_ERROR")]
    reader = _XmlReader(type_index(), exact_decimals)
    resource = reader.read_resource(root, "")
    return resource, reader.issues


def _xml_error_text(exc: etree.XMLSyntaxError) -> str:
    message = str(exc.msg or exc)
    match = re.search(r"Entity '([^']+)' not defined", message)
    if match:
        return f'The entity "{match.group(1)}" was referenced, but not declared.'
    return message


def _fatal(message: str, location: str, message_id: str) -> Issue:
    return Issue(Severity.FATAL, "invalid", message, location, message_id)


class _XmlReader:
    def __init__(self, index: TypeIndex, exact_decimals: bool = False) -> None:
        self.index = index
        self.exact_decimals = exact_decimals
        self.issues: list[Issue] = []
        self._orders: dict[str, dict[str, int]] = {}

    def error(self, message: str, location: str, message_id: str, line: int | None = None) -> None:
        suffix = f" (line {line})" if line else ""
        self.issues.append(Issue(Severity.ERROR, "structure", message + suffix, location, message_id))

    def read_resource(self, el: etree._Element, xpath: str, fhirpath: str = "") -> dict[str, Any] | None:
        name = etree.QName(el).localname
        xpath = f"{xpath}/f:{name}"
        if etree.QName(el).namespace != FHIR_NS or not self.index.is_resource(name):
            self.error(
                f"Unknown resource type '{name}'", xpath, "Validation_VAL_Unknown_Resource", el.sourceline
            )
            return None
        out: dict[str, Any] = {"resourceType": name}
        self.check_attributes(el, name, xpath, allowed=set())
        self.read_children(el, name, out, xpath, fhirpath or name)
        return out

    def check_attributes(self, el: etree._Element, type_name: str, xpath: str, allowed: set[str]) -> None:
        for attr in el.attrib:
            qname = etree.QName(attr)
            if qname.namespace is None and qname.localname in allowed:
                continue
            shown = f"xsi:{qname.localname}" if qname.namespace == XSI_NS else qname.localname
            tag = etree.QName(el).localname
            self.error(
                f"Undefined attribute '@{shown}' on {tag} for type {type_name}",
                xpath,
                "UNDEFINED_ATTRIBUTE__ON__FOR_TYPE__PROPERTIES__",
                el.sourceline,
            )

    def check_text(self, el: etree._Element, xpath: str) -> None:
        texts = [el.text] + [child.tail for child in el]
        for text in texts:
            if text and text.strip():
                # the stray text itself is not quoted: it may be clinical content
                self.error("Text should not be present", xpath, "Text_should_not_be_present")

    def read_children(
        self, el: etree._Element, path: str, out: dict[str, Any], xpath: str, fhirpath: str = ""
    ) -> None:
        self.check_text(el, xpath)
        order = self._order(path)
        last_position, last_name = -1, ""
        counts: dict[str, int] = {}
        for child in el:
            if not isinstance(child.tag, str):
                continue
            qname = etree.QName(child)
            known_ns = qname.namespace == FHIR_NS or (
                qname.namespace == XHTML_NS and qname.localname == "div"
            )
            resolved = self.index.resolve(path, qname.localname) if known_ns else None
            if resolved is None:
                self.error(
                    f"Undefined element '{qname.localname}' at {xpath}",
                    xpath,
                    "Undefined_element_",
                    child.sourceline,
                )
                continue
            info, type_code = resolved
            key = info.name + (type_code[:1].upper() + type_code[1:] if info.choice else "")
            child_xpath = f"{xpath}/f:{qname.localname}"
            seen = counts.get(info.name, 0)
            counts[info.name] = seen + 1
            child_path = f"{fhirpath}.{info.name}" + (f"[{seen}]" if info.many else "")
            position = order.get(info.name, -1)
            if position < last_position:
                self.issues.append(
                    Issue(
                        Severity.ERROR,
                        "structure",
                        f"Element '{info.name}' is out of order (found after {last_name}): XML elements "
                        "must follow the order of the definition",
                        child_path,
                        "Validation_VAL_Profile_OutOfOrder",
                    )
                )
            else:
                last_position, last_name = position, info.name
            if self.index.is_primitive(type_code) or type_code in ("xhtml",):
                value, extra = self.read_primitive(child, type_code, child_xpath, child_path)
                _put(out, key, value, info.many)
                _put(out, "_" + key, extra, info.many, align_with=out.get(key))
            elif type_code == "Resource" or self.index.is_resource(type_code):
                _put(out, key, self.read_wrapped_resource(child, child_xpath, child_path), info.many)
            else:
                _put(out, key, self.read_complex(child, info, type_code, child_xpath, child_path), info.many)
        _trim_primitive_arrays(out)

    def _order(self, path: str) -> dict[str, int]:
        """Definition order of the children of a type or backbone element (cached)."""
        cached = self._orders.get(path)
        if cached is None:
            cached = self._orders[path] = {name: i for i, name in enumerate(self.index.children(path))}
        return cached

    def read_primitive(
        self, el: etree._Element, type_code: str, xpath: str, fhirpath: str = ""
    ) -> tuple[Any, dict | None]:
        if type_code == "xhtml":
            self.check_attributes(
                el, type_code, xpath, allowed={"lang", "{http://www.w3.org/XML/1998/namespace}lang"}
            )
            return _xhtml_string(el), None
        allowed = {"value", "id"}
        self.check_attributes(el, type_code, xpath, allowed)
        self.check_text(el, xpath)
        extra: dict[str, Any] = {}
        if "id" in el.attrib:
            extra["id"] = el.attrib["id"]
        for child in el:
            if not isinstance(child.tag, str):
                continue
            qname = etree.QName(child)
            if qname.namespace == FHIR_NS and qname.localname == "extension":
                ext_info = self.index.children("Element")["extension"]
                position = len(extra.get("extension", ()))
                extra.setdefault("extension", []).append(
                    self.read_complex(
                        child,
                        ext_info,
                        "Extension",
                        f"{xpath}/f:extension",
                        f"{fhirpath}.extension[{position}]",
                    )
                )
            else:
                self.error(
                    f"Undefined element '{qname.localname}' at {xpath}",
                    xpath,
                    "Undefined_element_",
                    child.sourceline,
                )
        raw = el.attrib.get("value")
        if raw is None:
            return None, extra  # present but empty: kept so the validator can say so
        return primitive_from_text(type_code, raw, self.exact_decimals), (extra or None)

    def read_wrapped_resource(
        self, el: etree._Element, xpath: str, fhirpath: str = ""
    ) -> dict[str, Any] | None:
        self.check_text(el, xpath)
        inner = [c for c in el if isinstance(c.tag, str)]
        if len(inner) != 1:
            self.error(
                "A resource container must hold exactly one resource",
                xpath,
                "XML_RESOURCE_WRAPPER",
                el.sourceline,
            )
            return None
        name = etree.QName(inner[0]).localname
        return self.read_resource(inner[0], xpath, f"{fhirpath}/*{name}*/" if fhirpath else "")

    def read_complex(
        self, el: etree._Element, info: ChildInfo, type_code: str, xpath: str, fhirpath: str = ""
    ) -> dict[str, Any]:
        children_path = self.index.children_path(info, type_code)
        out: dict[str, Any] = {}
        attr_children = {name for name, c in self.index.children(children_path).items() if c.xml_attr}
        self.check_attributes(el, type_code, xpath, attr_children)
        for name in attr_children:
            if name in el.attrib:
                out[name] = el.attrib[name]
        self.read_children(el, children_path, out, xpath, fhirpath)
        if not out and any(isinstance(c.tag, str) for c in el):
            return PartialElement()
        return out


def primitive_from_text(type_code: str, raw: str, exact_decimals: bool = False) -> Any:
    """XML attribute text → JSON value (booleans and numbers typed, invalid text kept as a string).

    A decimal becomes ``Decimal`` (its digits kept) with ``exact_decimals``, else what a JSON
    parser gives for the same number: ``int`` without a fraction or exponent, ``float`` otherwise.
    """
    if type_code in JSON_BOOLEAN and raw in ("true", "false"):
        return raw == "true"
    if type_code in JSON_INTEGER and _INTEGER.match(raw):
        return int(raw)
    if type_code in JSON_DECIMAL and _DECIMAL.match(raw):
        if exact_decimals:
            return Decimal(raw)
        return int(raw) if _INTEGER.match(raw) else float(raw)
    return raw


def _xhtml_string(el: etree._Element) -> str:
    copy = etree.fromstring(etree.tostring(el, with_tail=False))
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="unicode", with_tail=False)


def _put(out: dict, key: str, value: Any, many: bool, align_with: Any = None) -> None:
    if key.startswith("_"):
        if many:
            existing = out.setdefault(key, [])
            target_len = len(align_with) if isinstance(align_with, list) else 0
            while len(existing) < target_len - 1:
                existing.append(None)
            existing.append(value)
        elif value is not None:
            out[key] = value
        return
    if many:
        out.setdefault(key, []).append(value)
    elif key in out:
        previous = out[key]
        out[key] = RepeatedSingle([*previous, value] if isinstance(previous, list) else [previous, value])
    elif value is not None:
        out[key] = value


def _trim_primitive_arrays(out: dict) -> None:
    for key in [k for k in out if k.startswith("_")]:
        extras = out[key]
        if isinstance(extras, list):
            if all(e is None for e in extras):
                del out[key]
                continue
            values = out.get(key[1:])
            if isinstance(values, list) and len(extras) < len(values):
                extras.extend([None] * (len(values) - len(extras)))
    for key, values in list(out.items()):
        if isinstance(values, list) and values and all(v is None for v in values) and "_" + key in out:
            del out[key]


# ---------------------------------------------------------------------------------------------
# JSON → XML


def to_xml(resource: dict[str, Any], *, pretty: bool = True, strict: bool = True) -> bytes:
    """Serialise a FHIR JSON resource as FHIR XML, elements in definition order.

    With ``strict`` (the default) properties the definitions do not know raise ``ValueError``
    rather than being dropped silently.
    """
    writer = _XmlWriter(type_index(), strict)
    root = writer.write_resource(resource)
    if pretty:
        _indent(root, 0)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _indent(el: etree._Element, level: int) -> None:
    """Indent FHIR elements only: narrative XHTML keeps its whitespace exactly."""
    children = [c for c in el if isinstance(c.tag, str)]
    if not children or etree.QName(el).namespace == XHTML_NS:
        return
    pad = "\n" + "  " * (level + 1)
    el.text = pad
    for child in children:
        if etree.QName(child).namespace != XHTML_NS:
            _indent(child, level + 1)
        child.tail = pad
    children[-1].tail = "\n" + "  " * level


class _XmlWriter:
    def __init__(self, index: TypeIndex, strict: bool) -> None:
        self.index = index
        self.strict = strict

    def write_resource(
        self, resource: dict[str, Any], parent: etree._Element | None = None
    ) -> etree._Element:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not self.index.is_resource(rtype):
            raise ValueError(f"not a FHIR R4 resource type: {rtype!r}")
        if parent is None:
            el = etree.Element(_F + rtype, nsmap={None: FHIR_NS})
        else:
            el = etree.SubElement(parent, _F + rtype)
        self.write_children(el, resource, rtype, rtype, {"resourceType"})
        return el

    def write_children(self, el: etree._Element, obj: dict, path: str, where: str, skip: set[str]) -> None:
        used = set(skip)
        for info in self.index.children(path).values():
            for key, type_code in self._keys_for(info, obj):
                used.update((key, "_" + key))
                if info.xml_attr:
                    if obj.get(key) is not None:
                        el.set(info.name, _text(obj[key]))
                    continue
                self._write_element(
                    el, key, info, type_code, obj.get(key), obj.get("_" + key), f"{where}.{key}"
                )
        unknown = sorted(set(obj) - used)
        if unknown and self.strict:
            raise ValueError(f"unknown properties at {where}: {', '.join(unknown)}")

    def _keys_for(self, info: ChildInfo, obj: dict):
        if not info.choice:
            if info.name in obj or "_" + info.name in obj:
                yield info.name, info.types[0] if info.types else ""
            return
        for code in info.types:
            key = info.name + code[:1].upper() + code[1:]
            if key in obj or "_" + key in obj:
                yield key, code

    def _write_element(self, el, key, info, type_code, value, extra, where) -> None:
        values = value if isinstance(value, list) else [value]
        extras = extra if isinstance(extra, list) else [extra]
        count = max(len(values) if value is not None else 0, len(extras) if extra is not None else 0)
        for i in range(count):
            item = values[i] if value is not None and i < len(values) else None
            item_extra = extras[i] if extra is not None and i < len(extras) else None
            where_i = f"{where}[{i}]" if info.many else where
            if type_code == "xhtml":
                el.append(etree.fromstring(item))
            elif self.index.is_primitive(type_code):
                self._write_primitive(el, key, item, item_extra, where_i)
            elif type_code == "Resource" or self.index.is_resource(type_code):
                wrapper = etree.SubElement(el, _F + key)
                self.write_resource(item, wrapper)
            else:
                child = etree.SubElement(el, _F + key)
                self.write_children(child, item, self.index.children_path(info, type_code), where_i, set())

    def _write_primitive(self, el, key, item, item_extra, where) -> None:
        child = etree.SubElement(el, _F + key)
        if item_extra and item_extra.get("id") is not None:
            child.set("id", str(item_extra["id"]))
        if item is not None:
            child.set("value", _text(item))
        for ext in (item_extra or {}).get("extension", ()):
            ext_el = etree.SubElement(child, _F + "extension")
            self.write_children(ext_el, ext, "Extension", f"{where}.extension", set())


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)  # a Decimal keeps its digits: Decimal('1.50') → "1.50"
