"""The shape of base R4 types: which children an element has, in which order, of which types.

Serialisers (FHIR XML ↔ JSON) and the validator both need to know, without reading a profile, that
``Patient.name`` is an array of ``HumanName`` or that ``valueQuantity`` is the ``value[x]`` choice.
This index answers that from the core StructureDefinitions, built once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from fhir_dnacpr.definitions import core_definitions

#: FHIR primitive types whose JSON representation is not a string.
JSON_BOOLEAN = frozenset({"boolean"})
JSON_INTEGER = frozenset({"integer", "positiveInt", "unsignedInt"})
JSON_DECIMAL = frozenset({"decimal"})
#: Types whose children are defined inline in the owning structure (path, not type, gives children).
INLINE_TYPES = frozenset({"BackboneElement", "Element"})


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One child element of a type or backbone element, as the base specification defines it."""

    name: str  # JSON/XML name, without "[x]"
    path: str  # full element path in its defining structure, e.g. "Patient.contact.name"
    types: tuple[str, ...]  # type codes (choice: several)
    choice: bool
    many: bool
    inline_path: str | None  # for backbone elements / contentReference: where its children live
    xml_attr: bool = False
    xhtml: bool = False

    def type_for_suffix(self, suffix: str) -> str | None:
        """For a choice ``value[x]`` and JSON name ``valueQuantity`` → ``Quantity``."""
        for code in self.types:
            if code[:1].upper() + code[1:] == suffix:
                return code
        return None


class TypeIndex:
    """Children of every base type and backbone element, keyed by type name or element path."""

    def __init__(self, structure_definitions: list[dict]) -> None:
        self.kinds: dict[str, str] = {}
        self._children: dict[str, dict[str, ChildInfo]] = {}
        self.base_types: dict[str, str | None] = {}
        for sd in structure_definitions:
            if sd.get("derivation") == "constraint" or sd.get("kind") == "logical":
                continue
            name = sd["type"]
            self.kinds[name] = sd["kind"]
            base = sd.get("baseDefinition")
            self.base_types[name] = base.rsplit("/", 1)[-1] if base else None
            self._index(sd["snapshot"]["element"])

    def _index(self, elements: list[dict]) -> None:
        for element in elements:
            path = element["path"]
            if "." not in path:
                self._children.setdefault(path, {})
                continue
            parent, raw_name = path.rsplit(".", 1)
            choice = raw_name.endswith("[x]")
            name = raw_name[:-3] if choice else raw_name
            types = tuple(t["code"] for t in element.get("type", ()))
            if "contentReference" in element:
                inline = element["contentReference"].lstrip("#")
                ref_types = self._type_of(elements, inline)
                types = ref_types
            elif len(types) == 1 and types[0] in INLINE_TYPES:
                inline = path
            else:
                inline = None
            representation = element.get("representation", ())
            self._children.setdefault(parent, {})[name] = ChildInfo(
                name=name,
                path=path,
                types=types,
                choice=choice,
                many=element.get("max") != "1",
                inline_path=inline,
                xml_attr="xmlAttr" in representation,
                xhtml="xhtml" in representation,
            )

    @staticmethod
    def _type_of(elements: list[dict], path: str) -> tuple[str, ...]:
        for element in elements:
            if element["path"] == path:
                return tuple(t["code"] for t in element.get("type", ()))
        return ()

    @property
    def resource_types(self) -> set[str]:
        cached = getattr(self, "_resource_types", None)
        if cached is None:
            cached = {name for name, kind in self.kinds.items() if kind == "resource"}
            self._resource_types = cached
        return cached

    def children(self, path: str) -> dict[str, ChildInfo]:
        """Children of a type (``"HumanName"``) or backbone element (``"Patient.contact"``)."""
        return self._children.get(path, {})

    def has(self, path: str) -> bool:
        return path in self._children

    def is_primitive(self, type_name: str) -> bool:
        return self.kinds.get(type_name) == "primitive-type"

    def is_resource(self, type_name: str) -> bool:
        return self.kinds.get(type_name) == "resource"

    def resolve(self, path: str, json_name: str) -> tuple[ChildInfo, str] | None:
        """Find the child for a JSON name (choice-aware) → (info, concrete type code)."""
        kids = self.children(path)
        info = kids.get(json_name)
        if info is not None and not info.choice:
            return info, (info.types[0] if info.types else "")
        for name, info in kids.items():
            if info.choice and json_name.startswith(name):
                code = info.type_for_suffix(json_name[len(name) :])
                if code:
                    return info, code
        return None

    def children_path(self, info: ChildInfo, type_code: str) -> str:
        """Where the children of a value of this child live: inline path or the type name."""
        return info.inline_path or type_code

    def is_subtype(self, type_name: str, ancestor: str) -> bool:
        current: str | None = type_name
        while current:
            if current == ancestor:
                return True
            current = self.base_types.get(current)
        return False


@cache
def type_index() -> TypeIndex:
    """The shared index over the shipped core definitions."""
    return TypeIndex(core_definitions()["StructureDefinition"])
