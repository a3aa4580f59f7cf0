"""Snapshot generation: a differential applied over its base definition's snapshot.

UK Core and many IGs ship differential-only StructureDefinitions; the validator compiles from a
snapshot. The rules kept here are the ones that decide validation outcomes: element lookup by id,
new slices copied from the sliced element, children of data types / content references expanded on
demand, constraints added to (never replacing) inherited ones, everything else overriding.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fhir_dnacpr.validation.registry import Registry

_VALUE_PREFIXES = ("fixed", "pattern")


class SnapshotError(ValueError):
    """The differential cannot be applied (unknown base, unknown element)."""


class UnmatchedElementError(SnapshotError):
    """A differential element names a path its base does not have."""


def split_id(element_id: str) -> tuple[str, str]:
    """``"Patient.identifier:nhs.system"`` → ``("Patient.identifier:nhs", "system")``."""
    depth = 0
    for i in range(len(element_id) - 1, -1, -1):
        ch = element_id[i]
        if ch == "]":
            depth += 1
        elif ch == "[":
            depth -= 1
        elif ch == "." and depth == 0:
            return element_id[:i], element_id[i + 1 :]
    return "", element_id


def assign_ids(elements: list[dict[str, Any]]) -> None:
    """Give every element an id (older definitions only have path + sliceName)."""
    stack: list[tuple[str, str]] = []  # (path, id)
    for element in elements:
        path = element["path"]
        while stack and not path.startswith(stack[-1][0] + "."):
            stack.pop()
        if "id" not in element:
            last = path.rsplit(".", 1)[-1]
            parent_id = stack[-1][1] if stack else ""
            element_id = f"{parent_id}.{last}" if parent_id else path
            if element.get("sliceName"):
                element_id += ":" + element["sliceName"]
            element["id"] = element_id
        stack.append((path, element["id"]))


def snapshot_elements(sd: dict[str, Any], registry: Registry) -> list[dict[str, Any]]:
    """The snapshot of ``sd``, generated (and cached on it) when only a differential exists."""
    snapshot = sd.get("snapshot", {}).get("element")
    if snapshot:
        if "_ids" not in sd:
            assign_ids(snapshot)
            sd["_ids"] = True
        return snapshot
    if sd.get("_generating"):
        raise SnapshotError(f"circular baseDefinition for {sd.get('url')}")
    sd["_generating"] = True
    try:
        elements = _generate(sd, registry)
    finally:
        sd.pop("_generating", None)
    sd["snapshot"] = {"element": elements}
    sd["_ids"] = True
    return elements


def _generate(sd: dict[str, Any], registry: Registry) -> list[dict[str, Any]]:
    base_url = sd.get("baseDefinition")
    base = registry.structure(base_url) if base_url else None
    if base is None:
        raise SnapshotError(f"base definition {base_url!r} of {sd.get('url')} is not loaded")
    elements = copy.deepcopy(snapshot_elements(base, registry))
    base_root = elements[0]["path"]
    own_root = sd.get("type") or base_root
    if own_root != base_root:
        for element in elements:
            element["path"] = own_root + element["path"][len(base_root) :]
            element["id"] = own_root + element["id"][len(base_root) :]
    differential = copy.deepcopy(sd.get("differential", {}).get("element", []))
    assign_ids(differential)
    builder = _Builder(elements, registry)
    unmatched = []
    for diff in differential:
        try:
            index = builder.find_or_make(diff["id"])
        except UnmatchedElementError:
            # as HL7's snapshot generator: the element has no place in the snapshot, which is
            # generated without it; the profile stays usable and the problem is reported
            unmatched.append(diff["id"])
            continue
        _merge(elements[index], diff)
    if unmatched:
        sd["_snapshot_unmatched"] = unmatched
    return elements


class _Builder:
    def __init__(self, elements: list[dict[str, Any]], registry: Registry) -> None:
        self.elements = elements
        self.registry = registry

    def find(self, element_id: str) -> int | None:
        for i, element in enumerate(self.elements):
            if element["id"] == element_id:
                return i
        return None

    def find_or_make(self, element_id: str) -> int:
        index = self.find(element_id)
        if index is not None:
            return index
        parent_id, last = split_id(element_id)
        name, _, slice_name = last.partition(":")
        if slice_name:
            return self._make_slice(parent_id, name, slice_name, element_id)
        if not parent_id:
            raise SnapshotError(f"unknown element {element_id}")
        self._expand(self.find_or_make(parent_id))
        index = self.find(element_id)
        if index is None:
            index = self._find_choice_rename(parent_id, name)
        if index is None:
            raise UnmatchedElementError(f"element {element_id} is not in the base definition")
        return index

    def _find_choice_rename(self, parent_id: str, name: str) -> int | None:
        """``Observation.valueQuantity`` written for ``Observation.value[x]`` (older profiles)."""
        for i, element in enumerate(self.elements):
            eid = element["id"]
            if (
                eid.startswith(parent_id + ".")
                and eid.endswith("[x]")
                and "." not in eid[len(parent_id) + 1 :]
            ):
                stem = eid[len(parent_id) + 1 : -3]
                if name.startswith(stem) and name != stem:
                    return i  # the differential then restricts the choice to that one type
        return None

    def _last_under(self, element_id: str) -> int:
        last = self.find(element_id)
        assert last is not None
        for i in range(last + 1, len(self.elements)):
            eid = self.elements[i]["id"]
            if eid.startswith((element_id + ".", element_id + ":", element_id + "/")):
                last = i
            else:
                break
        return last

    def _make_slice(self, parent_id: str, name: str, slice_name: str, element_id: str) -> int:
        sliced_id = f"{parent_id}.{name}" if parent_id else name
        if "/" in slice_name:  # re-slice: slice of a slice
            sliced_id += ":" + slice_name.rsplit("/", 1)[0]
        base_index = self.find_or_make(sliced_id)
        end = self._last_under(sliced_id)
        copies = [copy.deepcopy(self.elements[base_index])]
        for i in range(base_index + 1, end + 1):
            eid = self.elements[i]["id"]
            if eid.startswith(sliced_id + "."):
                copies.append(copy.deepcopy(self.elements[i]))
        for element in copies:
            element["id"] = element_id + element["id"][len(sliced_id) :]
        head = copies[0]
        head["sliceName"] = slice_name
        head.pop("slicing", None)
        head["min"] = 0
        self.elements[end + 1 : end + 1] = copies
        return end + 1

    def _expand(self, index: int) -> None:
        """Insert the children of the element at ``index`` from its type or content reference."""
        parent = self.elements[index]
        parent_id, parent_path = parent["id"], parent["path"]
        if index + 1 < len(self.elements) and self.elements[index + 1]["id"].startswith(parent_id + "."):
            return  # already expanded
        if "contentReference" in parent:
            ref = parent["contentReference"].split("#", 1)[-1]
            ref_index = self.find(ref)
            if ref_index is None:
                raise SnapshotError(f"content reference {ref} not found")
            source = [e for e in self.elements[ref_index + 1 :] if e["id"].startswith(ref + ".")]
            children = []
            for element in source:
                child = copy.deepcopy(element)
                child["id"] = parent_id + child["id"][len(ref) :]
                child["path"] = parent_path + child["path"][len(self.elements[ref_index]["path"]) :]
                children.append(child)
        else:
            children = self._type_children(parent)
        self.elements[index + 1 : index + 1] = children

    def _type_children(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        types = parent.get("type") or []
        if not types:
            raise SnapshotError(f"element {parent['id']} has no type to expand")
        type_ref = types[0]
        definition = None
        for profile in type_ref.get("profile", ()):
            definition = self.registry.structure(profile)
            if definition:
                break
        if definition is None:
            definition = self.registry.type_definition(type_ref["code"])
        if definition is None:
            raise SnapshotError(f"type {type_ref['code']} is not loaded")
        source = snapshot_elements(definition, self.registry)
        root_path = source[0]["path"]
        root_id = source[0]["id"]
        children = []
        for element in source[1:]:
            child = copy.deepcopy(element)
            child["id"] = parent["id"] + child["id"][len(root_id) :]
            child["path"] = parent["path"] + child["path"][len(root_path) :]
            children.append(child)
        return children


def _merge(target: dict[str, Any], diff: dict[str, Any]) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            known = {c.get("key") for c in target.get("constraint", ())}
            target["constraint"] = list(target.get("constraint", ())) + [
                c for c in value if c.get("key") not in known
            ]
        elif key == "binding" and isinstance(target.get("binding"), dict):
            target["binding"] = {**target["binding"], **value}
        elif key.startswith(_VALUE_PREFIXES):
            for old in [k for k in target if k.startswith(_VALUE_PREFIXES)]:
                del target[old]
            target[key] = value
        else:
            target[key] = value
