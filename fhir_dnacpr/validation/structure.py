"""Compile a StructureDefinition snapshot into a tree of element nodes, once.

The walker never re-reads ElementDefinitions: every fact it needs (cardinality, types, fixed and
pattern values, bindings, constraints, slicing) sits on an ``ElementNode`` keyed by JSON name.
Children a snapshot does not spell out come from the element's type, compiled on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_dnacpr.validation.snapshot import split_id

VALUE_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")


@dataclass(frozen=True, slots=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()
    aggregation: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """JSON name suffix of this type in a choice element (``valueQuantity``)."""
        return self.code[:1].upper() + self.code[1:]


@dataclass(frozen=True, slots=True)
class Discriminator:
    type: str  # value | pattern | type | profile | exists | position
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # open | closed | openAtEnd
    ordered: bool


EXTENSION_SLICING = Slicing((Discriminator("value", "url"),), "open", False)


@dataclass(slots=True, eq=False)
class ElementNode:
    id: str
    path: str
    name: str  # JSON name without "[x]"
    choice: bool
    min: int
    max: int | None  # None = unbounded
    types: tuple[TypeRef, ...]
    structure: CompiledStructure
    children: dict[str, ElementNode] = field(default_factory=dict)
    content_ref: str | None = None
    fixed: tuple[str, Any] | None = None  # (type suffix, value)
    pattern: tuple[str, Any] | None = None
    min_value: tuple[str, Any] | None = None
    max_value: tuple[str, Any] | None = None
    max_length: int | None = None
    binding: tuple[str, str] | None = None  # (strength, value set canonical)
    constraints: tuple[dict[str, Any], ...] = ()
    slicing: Slicing | None = None
    slices: list[ElementNode] = field(default_factory=list)
    slice_name: str | None = None
    base_max_one: bool = False
    base_path: str = ""
    slice_index: Any = None  # slicing's lookup table (url → slices), built on first use

    def type_for_suffix(self, suffix: str) -> TypeRef | None:
        for type_ref in self.types:
            if type_ref.suffix == suffix:
                return type_ref
        return None

    def type_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)


@dataclass(slots=True, eq=False)
class CompiledStructure:
    url: str
    version: str | None
    name: str
    type: str
    kind: str
    derivation: str | None
    base_definition: str | None
    root: ElementNode = None  # type: ignore[assignment]
    by_id: dict[str, ElementNode] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)

    @property
    def versioned_url(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def label(self) -> str:
        """HL7's ``(from url|version)`` rendering."""
        return self.versioned_url


def compile_structure(sd: dict[str, Any], elements: list[dict[str, Any]]) -> CompiledStructure:
    structure = CompiledStructure(
        url=sd["url"],
        version=sd.get("version"),
        name=sd.get("name") or sd["url"],
        type=sd.get("type") or elements[0]["path"],
        kind=sd.get("kind", "resource"),
        derivation=sd.get("derivation"),
        base_definition=sd.get("baseDefinition"),
        definition=sd,
    )
    for element in elements:
        node = _make_node(element, structure)
        structure.by_id[node.id] = node
        if structure.root is None:
            structure.root = node
            continue
        parent_id, last = split_id(node.id)
        if node.slice_name and ":" in last:
            name_part, _, slice_part = last.partition(":")
            sliced_id = f"{parent_id}.{name_part}" if parent_id else name_part
            if "/" in slice_part:
                sliced_id += ":" + slice_part.rsplit("/", 1)[0]
            sliced = structure.by_id.get(sliced_id)
            if sliced is not None:
                sliced.slices.append(node)
                continue
        parent = structure.by_id.get(parent_id)
        if parent is None:
            continue
        if node.name in parent.children and not node.slice_name:
            continue
        if node.slice_name and node.name in parent.children:
            parent.children[node.name].slices.append(node)
        else:
            parent.children[node.name] = node
    for node in structure.by_id.values():
        if node.slices and node.slicing is None and node.name in ("extension", "modifierExtension"):
            # extensions are always sliced by url (the base definitions say so; a differential
            # that adds extension slices may leave the slicing out)
            node.slicing = EXTENSION_SLICING
    return structure


def _make_node(element: dict[str, Any], structure: CompiledStructure) -> ElementNode:
    path = element["path"]
    raw_name = path.rsplit(".", 1)[-1]
    choice = raw_name.endswith("[x]")
    max_text = element.get("max", "*")
    base = element.get("base") or {}
    node = ElementNode(
        id=element["id"],
        path=path,
        name=raw_name[:-3] if choice else raw_name,
        choice=choice,
        min=int(element.get("min", 0) or 0),
        max=None if max_text == "*" else int(max_text),
        types=tuple(_type_ref(t) for t in element.get("type", ())),
        structure=structure,
        content_ref=element.get("contentReference"),
        max_length=element.get("maxLength"),
        constraints=tuple(element.get("constraint", ())),
        slice_name=element.get("sliceName"),
        base_max_one=str(base.get("max", max_text)) == "1",
        base_path=base.get("path", path),
    )
    for key, value in element.items():
        if key.startswith("fixed"):
            node.fixed = (key[5:], value)
        elif key.startswith("pattern"):
            node.pattern = (key[7:], value)
        elif key.startswith("minValue"):
            node.min_value = (key[8:], value)
        elif key.startswith("maxValue"):
            node.max_value = (key[8:], value)
    binding = element.get("binding")
    if binding and binding.get("valueSet") and binding.get("strength"):
        node.binding = (binding["strength"], binding["valueSet"])
    slicing = element.get("slicing")
    if slicing:
        node.slicing = Slicing(
            discriminators=tuple(
                Discriminator(d.get("type", "value"), d.get("path", "$this"))
                for d in slicing.get("discriminator", ())
            ),
            rules=slicing.get("rules", "open"),
            ordered=bool(slicing.get("ordered", False)),
        )
    return node


def _type_ref(raw: dict[str, Any]) -> TypeRef:
    code = raw.get("code", "")
    for ext in raw.get("extension", ()):
        if ext.get("url", "").endswith("structuredefinition-fhir-type") and ext.get("valueUrl"):
            code = ext["valueUrl"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        code = {
            "String": "string",
            "Boolean": "boolean",
            "Integer": "integer",
            "Decimal": "decimal",
            "Date": "date",
            "DateTime": "dateTime",
            "Time": "time",
        }.get(code.rsplit(".", 1)[-1], "string")
    return TypeRef(
        code=code,
        profiles=tuple(raw.get("profile", ())),
        target_profiles=tuple(raw.get("targetProfile", ())),
        aggregation=tuple(raw.get("aggregation", ())),
    )
