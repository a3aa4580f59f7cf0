"""Offline terminology: code systems we hold, value sets expanded in memory.

A value set is expanded from its ``compose`` over the loaded code systems (concept lists, whole
systems, is-a / descendent-of / is-not-a filters, nested value sets). Systems we do not hold in full
(SNOMED CT, LOINC, UCUM …) stay *open*: a code from them is neither accepted nor rejected, which is
what the HAPI validator does without a terminology server. Expansions are cached per registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.definitions import iter_concepts

MIME_SYSTEM = "urn:ietf:bcp:13"
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?\Z")

if TYPE_CHECKING:
    from fhir_dnacpr.validation.registry import Registry


@dataclass(slots=True)
class CodeSystemIndex:
    url: str
    version: str | None
    name: str
    content: str
    case_sensitive: bool
    displays: dict[str, str | None]
    parents: dict[str, set[str]]

    @property
    def complete(self) -> bool:
        return self.content == "complete"

    def has(self, code: str) -> bool:
        if code in self.displays:
            return True
        if not self.case_sensitive:
            return code.lower() in {c.lower() for c in self.displays}
        return False

    def descendants(self, code: str, include_self: bool) -> set[str]:
        children: dict[str, set[str]] = {}
        for child, parents in self.parents.items():
            for parent in parents:
                children.setdefault(parent, set()).add(child)
        found: set[str] = {code} if include_self else set()
        stack = [code]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found


@dataclass(slots=True)
class Expansion:
    """Codes known to be in a value set; ``open_systems`` may hold further, unknowable codes."""

    url: str
    name: str
    version: str | None
    codes: set[tuple[str, str]] = field(default_factory=set)
    open_systems: set[str] = field(default_factory=set)
    incomplete: bool = False  # something (nested value set, unknown filter) could not be expanded

    @property
    def label(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def systems(self) -> set[str]:
        return {s for s, _ in self.codes} | self.open_systems

    def contains(self, system: str | None, code: str) -> bool | None:
        """True/False when known; None when membership cannot be decided offline."""
        if (
            MIME_SYSTEM in self.open_systems
            and system in (None, MIME_SYSTEM)
            and not _MIME.match(code)
            and code not in ("xml", "json", "ttl")
        ):
            return False  # not even the shape of a MIME type (BCP 13)
        if system is None:
            if any(c == code for _, c in self.codes):
                return True
            return None if (self.open_systems or self.incomplete) else False
        if (system, code) in self.codes:
            return True
        if system in self.open_systems or self.incomplete:
            return None
        return False


class Terminology:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._systems: dict[str, CodeSystemIndex | None] = {}
        self._expansions: dict[str, Expansion | None] = {}
        self._generation = registry.generation

    def _check_generation(self) -> None:
        if self._generation != self.registry.generation:
            self._systems.clear()
            self._expansions.clear()
            self._generation = self.registry.generation

    def code_system(self, url: str) -> CodeSystemIndex | None:
        self._check_generation()
        if url not in self._systems:
            self._systems[url] = self._index_system(url)
        return self._systems[url]

    def _index_system(self, url: str) -> CodeSystemIndex | None:
        resource = self.registry.code_system(url)
        if resource is None:
            return None
        displays: dict[str, str | None] = {}
        parents: dict[str, set[str]] = {}
        for code, display, parent in iter_concepts(resource.get("concept", [])):
            displays[code] = display
            if parent:
                parents.setdefault(code, set()).add(parent)
        return CodeSystemIndex(
            url=resource["url"],
            version=resource.get("version"),
            name=resource.get("name") or resource["url"],
            content=resource.get("content", "complete"),
            case_sensitive=resource.get("caseSensitive", True) is not False,
            displays=displays,
            parents=parents,
        )

    def expand(self, canonical: str) -> Expansion | None:
        """The in-memory expansion of a value set, or None when the value set is unknown."""
        self._check_generation()
        if canonical in self._expansions:
            return self._expansions[canonical]
        self._expansions[canonical] = None  # guards against cycles
        resource = self.registry.value_set(canonical)
        expansion = self._expand(resource) if resource else None
        self._expansions[canonical] = expansion
        return expansion

    def _expand(self, vs: dict[str, Any]) -> Expansion:
        expansion = Expansion(
            url=vs["url"], name=vs.get("name") or vs.get("title") or vs["url"], version=vs.get("version")
        )
        contains = vs.get("expansion", {}).get("contains")
        if contains and not vs.get("compose"):
            self._add_contains(expansion, contains)
            return expansion
        compose = vs.get("compose", {})
        for include in compose.get("include", ()):
            self._apply(expansion, include, add=True)
        for exclude in compose.get("exclude", ()):
            self._apply(expansion, exclude, add=False)
        return expansion

    def _add_contains(self, expansion: Expansion, contains: list[dict[str, Any]]) -> None:
        for item in contains:
            if item.get("system") and item.get("code"):
                expansion.codes.add((item["system"], item["code"]))
            self._add_contains(expansion, item.get("contains", []))

    def _apply(self, expansion: Expansion, part: dict[str, Any], add: bool) -> None:
        system = part.get("system")
        codes: set[tuple[str, str]] | None = set()
        open_system = False
        if system:
            cs = self.code_system(system)
            if part.get("concept"):
                codes = {(system, c["code"]) for c in part["concept"] if "code" in c}
            elif part.get("filter"):
                selected = self._filter(cs, part["filter"]) if cs and cs.complete else None
                if selected is None:
                    open_system = True
                else:
                    codes = {(system, c) for c in selected}
            elif cs is not None and cs.complete:
                codes = {(system, c) for c in cs.displays}
            else:
                open_system = True
        nested_ok = True
        for nested_url in part.get("valueSet", ()):
            nested = self.expand(nested_url)
            if nested is None:
                nested_ok = False
                continue
            nested_codes = nested.codes
            if system:
                codes = {c for c in codes if c in nested_codes} if codes else set()
            else:
                codes = (codes or set()) | nested_codes
                if add:
                    expansion.open_systems |= nested.open_systems
                    expansion.incomplete |= nested.incomplete
        if add:
            if not nested_ok:
                expansion.incomplete = True
            if open_system:
                expansion.open_systems.add(system)
            expansion.codes |= codes or set()
        elif codes:
            expansion.codes -= codes

    @staticmethod
    def _filter(cs: CodeSystemIndex, filters: list[dict[str, Any]]) -> set[str] | None:
        selected: set[str] | None = None
        for flt in filters:
            prop, op, value = flt.get("property"), flt.get("op"), flt.get("value", "")
            if prop != "concept" and op not in ("is-a", "descendent-of", "is-not-a"):
                return None
            if op == "is-a":
                found = cs.descendants(value, include_self=True)
            elif op == "descendent-of":
                found = cs.descendants(value, include_self=False)
            elif op == "is-not-a":
                found = set(cs.displays) - cs.descendants(value, include_self=True)
            elif op == "=" and prop == "concept":
                found = {value}
            elif op == "in" and prop == "concept":
                found = set(value.split(","))
            else:
                return None
            selected = found if selected is None else selected & found
        return selected
