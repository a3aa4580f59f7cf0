"""Slicing: assign each repetition to a slice by its discriminators, then check slice rules.

Matched slices are recorded on the item (``item.slices``); the walker then validates the item
against its slices together with its other definitions, in the same pass.

Discriminators supported: value, pattern (fixed/pattern value or required binding at the path),
type, profile, exists; ``$this``, dotted paths, ``ofType()``, ``extension('url')``, ``resolve()``.
Rules: open / closed / openAtEnd, ordered, per-slice cardinality.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.checks import matches_pattern
from fhir_dnacpr.validation.primitives import text_of
from fhir_dnacpr.validation.structure import CompiledStructure, Discriminator, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.walker import Item, Run

_OF_TYPE = re.compile(r"ofType\(([^)]+)\)")
_EXTENSION = re.compile(r"extension\(['\"]([^'\"]+)['\"]\)")
UNKNOWN = object()


def check_slices(
    run: Run, node: ElementNode, items: list[Item], location: str, structure: CompiledStructure
) -> Iterator[Issue]:
    slices = node.slices
    rules = node.slicing.rules if node.slicing else "open"
    ordered = bool(node.slicing and node.slicing.ordered)
    counts: dict[int, int] = {}
    last_slice_index = -1
    index = _slice_index(node)
    positions = _positions(node)
    for item in items:
        if index is None:
            matched = [s for s in slices if slice_matches(run, node, s, item)]
        elif type(index) is dict:
            url = item.value.get("url") if isinstance(item.value, dict) else None
            matched = index.get(url, ()) if isinstance(url, str) else ()
        else:
            value = item.value
            matched = [
                s
                for s, fixed, expected in index
                if value is not None
                and (_equal(expected, value) if fixed else matches_pattern(expected, value))
            ]
        if not matched:
            sub_url = item.value.get("url") if isinstance(item.value, dict) else None
            if (
                rules == "closed"
                and node.path == "Extension.extension"
                and node.structure.type == "Extension"
                and isinstance(sub_url, str)
                and ":" not in sub_url
            ):
                yield run.issue(
                    "error",
                    "structure",
                    item.location,
                    "Extension_EXT_SubExtension_Invalid",
                    f"Sub-extension url '{sub_url}' is not defined by the Extension "
                    f"{node.structure.versioned_url}",
                )
            if rules == "closed" and slices:
                yield run.issue(
                    "error",
                    "invalid",
                    item.location,
                    "Validation_VAL_Profile_NotSlice",
                    "This element does not match any known slice defined in the profile "
                    f"{node.structure.versioned_url} "
                    f"and slicing is CLOSED: {item.location}: Does not match any slice",
                )
            elif rules == "openAtEnd" and last_slice_index >= 0:
                last_slice_index = len(slices)
            continue
        chosen = matched[0]
        position = positions[id(chosen)]
        if ordered and position < last_slice_index:
            yield run.issue(
                "error",
                "invalid",
                item.location,
                "Validation_VAL_Profile_SliceOrder",
                f"As specified by profile {node.structure.versioned_url}, Element "
                f"'{chosen.slice_name}' is out of order in ordered slice",
            )
        last_slice_index = max(last_slice_index, position)
        counts[id(chosen)] = counts.get(id(chosen), 0) + 1
        item.slices.append(chosen)  # the walker validates the item against its slice as well
        for reslice in chosen.slices:
            if slice_matches(run, chosen, reslice, item):
                counts[id(reslice)] = counts.get(id(reslice), 0) + 1
                item.slices.append(reslice)
    for s in _flat_slices(node):
        count = counts.get(id(s), 0)
        if count < s.min:
            if s.min == 1:
                text = (
                    f"Slice '{s.id}': a matching slice is required, but not found (from "
                    f"{s.structure.versioned_url}). "
                    "Note that other slices are allowed in addition to this required slice"
                )
            else:
                text = (
                    f"Slice '{s.id}': minimum required = {s.min}, but only found {count} "
                    f"(from {s.structure.versioned_url})"
                )
            yield run.issue("error", "structure", location, "Validation_VAL_Profile_Minimum_SLICE", text)
        if s.max is not None and count > s.max:
            yield run.issue(
                "error",
                "structure",
                location,
                "Validation_VAL_Profile_Maximum",
                f"{s.id}: max allowed = {s.max}, but found {count} (from {s.structure.versioned_url})",
            )


_NO_INDEX = object()


def _slice_index(node: ElementNode) -> Any:
    """A precomputed matcher for the two common slicings, built once per sliced element:
    extensions by ``url`` (url → slices: a lookup) and slices on ``$this`` by fixed/pattern value
    (a list of (slice, is_fixed, value)). None when the general discriminator logic is needed."""
    index = node.slice_index
    if index is None:
        index = node.slice_index = _build_url_index(node) or _build_this_index(node) or _NO_INDEX
    return None if index is _NO_INDEX else index


def _build_this_index(node: ElementNode) -> list[tuple[ElementNode, bool, Any]] | None:
    discriminators = node.slicing.discriminators if node.slicing else ()
    if len(discriminators) != 1 or discriminators[0].type not in ("value", "pattern"):
        return None
    if discriminators[0].path.strip() != "$this" or not node.slices:
        return None
    index = []
    for slice_node in node.slices:
        if slice_node.fixed is not None:
            index.append((slice_node, True, slice_node.fixed[1]))
        elif slice_node.pattern is not None:
            index.append((slice_node, False, slice_node.pattern[1]))
        else:
            return None
    return index


def _build_url_index(node: ElementNode) -> dict[str, list[ElementNode]] | None:
    discriminators = node.slicing.discriminators if node.slicing else ()
    if len(discriminators) != 1 or discriminators[0].type != "value":
        return None
    if discriminators[0].path.strip() not in ("url", "$this.url"):
        return None
    index: dict[str, list[ElementNode]] = {}
    for slice_node in node.slices:
        if slice_node.type_codes() != ("Extension",):
            return None
        url_node = slice_node.children.get("url")
        profiles = [p for t in slice_node.types for p in t.profiles]
        expected = (
            url_node.fixed[1]
            if url_node is not None and url_node.fixed
            else (profiles[0] if profiles else None)
        )
        if not isinstance(expected, str):
            return None  # a slice that matches any url: use the general path
        index.setdefault(expected.split("|")[0], []).append(slice_node)
    return index


_FLAT: dict[int, tuple[ElementNode, list[ElementNode]]] = {}
_POSITIONS: dict[int, tuple[ElementNode, dict[int, int]]] = {}


def _positions(node: ElementNode) -> dict[int, int]:
    """Slice → its position in the slicing (for ordered slicing), computed once per element."""
    cached = _POSITIONS.get(id(node))
    if cached is None or cached[0] is not node:
        cached = _POSITIONS[id(node)] = (node, {id(s): i for i, s in enumerate(node.slices)})
    return cached[1]


def _flat_slices(node: ElementNode) -> list[ElementNode]:
    """Slices and re-slices of a sliced element, depth first (computed once per element)."""
    cached = _FLAT.get(id(node))
    if cached is None or cached[0] is not node:
        cached = _FLAT[id(node)] = (node, list(_all_slices(node.slices)))
    return cached[1]


def _all_slices(slices: list[ElementNode]) -> Iterator[ElementNode]:
    for s in slices:
        yield s
        yield from _all_slices(s.slices)


def slice_matches(run: Run, base: ElementNode, slice_node: ElementNode, item: Item) -> bool:
    discriminators = base.slicing.discriminators if base.slicing else ()
    if not discriminators:
        # choice-type slices (value[x]:valueQuantity) or undiscriminated: match by type
        codes = slice_node.type_codes()
        return not codes or item.type_code in codes or _resource_type(item.value) in codes
    return all(_matches(run, d, slice_node, item) for d in discriminators)


def _resource_type(value: Any) -> str | None:
    return value.get("resourceType") if isinstance(value, dict) else None


def _matches(run: Run, discriminator: Discriminator, slice_node: ElementNode, item: Item) -> bool:
    path = discriminator.path.strip()
    kind = discriminator.type
    if kind in ("value", "pattern"):
        return _value_matches(run, path, slice_node, item)
    if kind == "type":
        spec_nodes = _spec_nodes(run, slice_node, path, item.type_code)
        codes = {
            c
            for n in spec_nodes
            for c in (
                (n.structure.type,)
                if n is n.structure.root and n.structure.kind == "resource"
                else n.type_codes()
            )
        }
        if not codes:
            return True
        actual_types = _actual_types(run, path, item)
        return any(t in codes for t in actual_types)
    if kind == "profile":
        spec_nodes = _spec_nodes(run, slice_node, path, item.type_code)
        profiles = [p for n in spec_nodes for t in n.types for p in (t.profiles or t.target_profiles)]
        if not profiles:
            return True
        targets = _navigate(run, item.value, path, item.type_code)
        if not targets:
            return False
        for url in profiles:
            structure = run.validator.structure(url)
            if structure is None:
                continue
            if all(run.conforms_to(t, url) for t in targets):
                return True
        return False
    if kind == "exists":
        spec_nodes = _spec_nodes(run, slice_node, path, item.type_code)
        exists = bool(_navigate(run, item.value, path, item.type_code))
        if not spec_nodes:
            return True
        spec = spec_nodes[0]
        if spec.max == 0:
            return not exists
        if spec.min > 0:
            return exists
        return True
    return False


def _value_matches(run: Run, path: str, slice_node: ElementNode, item: Item) -> bool:
    value = item.value
    if (path in ("url", "$this.url") and item.type_code == "Extension") or (
        path == "url" and slice_node.type_codes() == ("Extension",)
    ):
        profiles = [p for t in slice_node.types for p in t.profiles]
        url_node = slice_node.children.get("url")
        expected = (
            url_node.fixed[1]
            if url_node is not None and url_node.fixed
            else (profiles[0] if profiles else None)
        )
        if expected is None:
            return True
        return isinstance(value, dict) and value.get("url") == expected.split("|")[0]
    spec_nodes = _spec_nodes(run, slice_node, path, item.type_code)
    spec = next((n for n in spec_nodes if n.fixed is not None or n.pattern is not None), None)
    actual = _navigate(run, value, path, item.type_code)
    if spec is None:
        if any(n.max == 0 for n in spec_nodes):
            return not actual
        bound = next((n for n in spec_nodes if n.binding and n.binding[0] == "required"), None)
        if bound is not None:
            from fhir_dnacpr.validation.bindings import member_of

            return any(member_of(run, a, bound.binding[1]) is not False for a in actual) if actual else False
        constrained = [n for n in spec_nodes if n.slices or n.children]
        if constrained and actual:
            # the value is fixed deeper down (e.g. code.coding:SBPCode.code): match when the value
            # meets the slice's constraints at that path
            return any(_conforms_to_node(run, n, a) for n in constrained for a in actual)
        return True  # nothing to discriminate on: HL7 reports a profile error; accept the item
    expected = (spec.fixed or spec.pattern)[1]
    if not actual:
        return False
    if spec.fixed is not None:
        return any(_equal(expected, a) for a in actual)
    return any(matches_pattern(expected, a) for a in actual)


def _conforms_to_node(run: Run, node: ElementNode, value: Any) -> bool:
    from fhir_dnacpr.validation.walker import Item

    type_code = node.types[0].code if node.types else ""
    if not isinstance(value, dict) or not type_code:
        return True
    probe = Item("", None, value, None, "(slice)", type_code)
    found = run.collect(lambda: run.walk_value(node, probe, "(slice)"))
    return not any(i.is_error for i in found)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, (dict, list)):
        return matches_pattern(expected, actual)
    return text_of(expected) == text_of(actual)


@cache
def _segments(path: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return [p for p in parts if p and p != "$this"]


def _spec_nodes(run: Run, slice_node: ElementNode, path: str, type_code: str) -> list[ElementNode]:
    """The element definitions in the slice that the discriminator path points at (cached)."""
    key = ("spec_nodes", slice_node, path, type_code)
    found = run.validator.cache.get(key)
    if found is None:
        found = run.validator.cache[key] = _find_spec_nodes(run, slice_node, path, type_code)
    return found


def _find_spec_nodes(run: Run, slice_node: ElementNode, path: str, type_code: str) -> list[ElementNode]:
    nodes = [slice_node]
    current_type = type_code
    for segment in _segments(path):
        match_type = _OF_TYPE.fullmatch(segment)
        if match_type:
            wanted = match_type.group(1)
            narrowed = []
            for n in nodes:
                type_slices = [s for s in n.slices if wanted in s.type_codes()]
                narrowed.extend(type_slices or [n])
            nodes = narrowed
            current_type = wanted
            continue
        match_ext = _EXTENSION.fullmatch(segment)
        if match_ext:
            url = match_ext.group(1)
            found = []
            for n in nodes:
                children, _ = run.children_of(n, current_type, n.structure)
                ext = children.get("extension")
                if ext is not None:
                    found.extend(
                        s
                        for s in ext.slices
                        if any(url in t.profiles for t in s.types)
                        or (
                            s.children.get("url")
                            and s.children["url"].fixed
                            and s.children["url"].fixed[1] == url
                        )
                    )
            # a re-sliced extension slice stands for its mandatory re-slice (HL7's
            # pickMandatorySlice): that is where the discriminating value is fixed
            nodes = [next((r for r in n.slices if r.min > 0), n) for n in found]
            current_type = "Extension"
            continue
        if segment == "resolve()":
            found = []
            for n in nodes:
                for t in n.types:
                    for url in t.target_profiles:
                        structure = run.validator.structure(url)
                        if structure is not None:
                            found.append(structure.root)
            nodes = found
            current_type = nodes[0].structure.type if nodes else current_type
            continue
        next_nodes = []
        for n in nodes:
            children, _ = run.children_of(n, current_type, n.structure)
            child = children.get(segment)
            if child is None:
                # a profile on the type may define the element
                for t in n.types:
                    for profile_url in t.profiles:
                        profile = run.validator.structure(profile_url)
                        if profile is not None:
                            child = profile.root.children.get(segment)
                            if child is not None:
                                break
            if child is not None:
                next_nodes.append(child)
                next_nodes.extend(child.slices)  # fixed values may sit on the slices (coding:SBPCode)
        nodes = next_nodes
        if nodes and nodes[0].types:
            current_type = nodes[0].types[0].code
    return nodes


def _navigate(run: Run, value: Any, path: str, type_code: str) -> list[Any]:
    """Values at a simple FHIRPath-like path in the instance."""
    current = [value]
    for segment in _segments(path):
        match_type = _OF_TYPE.fullmatch(segment)
        if match_type:
            wanted = match_type.group(1)
            current = [v for v in current if _value_type(v, type_code) in (wanted, None)]
            continue
        match_ext = _EXTENSION.fullmatch(segment)
        if match_ext:
            url = match_ext.group(1)
            current = [
                e
                for v in current
                if isinstance(v, dict)
                for e in v.get("extension", ())
                if isinstance(e, dict) and e.get("url") == url
            ]
            continue
        if segment == "resolve()":
            resolved = []
            for v in current:
                ref = v.get("reference") if isinstance(v, dict) else None
                if isinstance(ref, str):
                    target = run.resolve_reference(ref)
                    if target is not None:
                        resolved.append(target)
            current = resolved
            continue
        following = []
        for v in current:
            if not isinstance(v, dict):
                continue
            if segment in v:
                found = v[segment]
            else:
                found = next(
                    (
                        v[k]
                        for k in v
                        if k.startswith(segment) and k[len(segment) : len(segment) + 1].isupper()
                    ),
                    None,
                )
            if found is None:
                continue
            following.extend(found if isinstance(found, list) else [found])
        current = following
    return [c for c in current if c is not None]


def _value_type(value: Any, default: str) -> str | None:
    if isinstance(value, dict) and "resourceType" in value:
        return value["resourceType"]
    return None


def _actual_types(run: Run, path: str, item: Item) -> list[str]:
    segments = _segments(path)
    if not segments:
        rtype = _resource_type(item.value)
        return [rtype] if rtype else [item.type_code]
    values = _navigate(run, item.value, path, item.type_code)
    types = []
    for v in values:
        rtype = _resource_type(v)
        if rtype:
            types.append(rtype)
    if not types and segments:
        # the type of a choice child: look at the JSON key
        parent = (
            _navigate(run, item.value, ".".join(segments[:-1]), item.type_code)
            if len(segments) > 1
            else [item.value]
        )
        stem = segments[-1]
        for p in parent:
            if isinstance(p, dict):
                for key in p:
                    if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
                        suffix = key[len(stem) :]
                        types.append(
                            suffix[:1].lower() + suffix[1:]
                            if run.validator.index.is_primitive(suffix[:1].lower() + suffix[1:])
                            else suffix
                        )
    return types
