"""The instance walker: descends a resource with a compiled profile and reports issues.

One ``Run`` per top-level validation holds the state a walk needs (the resource stack for
``%resource``/contained/bundle resolution, the issue list with de-duplication). The walker itself
only routes: each kind of constraint is a small function in its own module (``checks``,
``bindings``, ``slicing``, ``extensions``, ``references``) that yields ``Issue`` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.validation import bindings, checks, extensions, references, slicing
from fhir_dnacpr.validation.implied import implied_profiles
from fhir_dnacpr.validation.options import ValidationOptions
from fhir_dnacpr.validation.primitives import check_resource_id
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.validator import Validator

SYSTEM_PRIMITIVES = frozenset({"string", "boolean", "integer", "decimal", "date", "dateTime", "time"})


@dataclass(slots=True)
class Frame:
    """A resource being validated and where it sits (for contained/bundle resolution)."""

    resource: dict[str, Any]
    location: str
    parent: Frame | None = None
    kind: str = "root"  # root | contained | entry | parameter
    full_url: str | None = None
    entry_index: int | None = None
    bundle: dict[str, Any] | None = None


@dataclass(slots=True)
class Item:
    """One value of an element in the instance (a primitive's value and its ``_`` part)."""

    key: str
    type_code: str
    value: Any
    extra: Any
    location: str


@dataclass
class Run:
    validator: Validator
    options: ValidationOptions
    root: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    _seen: set[tuple] = field(default_factory=set)
    frames: list[Frame] = field(default_factory=list)
    hosts: list[tuple[str, ElementNode, str, Any]] = field(default_factory=list)
    extension_depth: int = 0
    reference_verdicts: dict[tuple, bool] = field(default_factory=dict)
    verdicts: dict[tuple, bool | None] = field(default_factory=dict)  # invariant results per value

    # -- FHIRPath host functions -------------------------------------------------------------

    @property
    def host(self) -> Run:
        return self

    def member_of(self, value: Any, value_set: str) -> bool | None:
        return bindings.member_of(self, value, value_set)

    def resolve_reference(self, reference: str) -> dict | None:
        resolved, _problems, _stop = references.resolve(self, reference, self.frame)
        return resolved.resource if resolved else None

    def conforms_to(self, resource: Any, profile: str) -> bool:
        """Does ``resource`` (a resource or element) validate against ``profile`` without errors?"""
        structure = self.validator.structure(profile)
        if structure is None or not isinstance(resource, dict):
            return False
        rtype = resource.get("resourceType")
        if (
            rtype
            and structure.kind == "resource"
            and not self.validator.index.is_subtype(rtype, structure.type)
        ):
            return False
        found = self.collect(lambda: self._validate_against(resource, structure))
        return not any(i.is_error for i in found)

    def _validate_against(self, resource: dict, structure: CompiledStructure) -> None:
        if structure.kind == "resource":
            frame = Frame(resource, structure.type, self.frames[-1] if self.frames else None, "reference")
            self.frames.append(frame)
            try:
                self.walk_object(
                    structure.root,
                    resource,
                    structure.type,
                    resource.get("resourceType", structure.type),
                    structure,
                    is_resource=True,
                )
            finally:
                self.frames.pop()
        else:
            self.walk_object(structure.root, resource, structure.type, structure.type, structure)

    def collect(self, action) -> list[Issue]:
        """Run ``action`` with a fresh issue list and return what it reported (not added)."""
        saved = self.issues, self._seen
        self.issues, self._seen = [], set()
        try:
            action()
            return self.issues
        finally:
            self.issues, self._seen = saved

    def sub_validate(self, item: Item, structure: CompiledStructure) -> list[Issue]:
        """Issues of one element value against a data-type profile, for profile-choice checks."""
        node = structure.root
        probe = Item(item.key, item.type_code, item.value, item.extra, item.location)
        return self.collect(lambda: self.walk_value_profile(node, probe, structure))

    def walk_value_profile(self, node: ElementNode, item: Item, structure: CompiledStructure) -> None:
        if isinstance(item.value, dict):
            self.walk_object(node, item.value, item.type_code, item.location, structure)
            self.add(checks.invariants(self, node, item.value, item.type_code, item.location, structure))
        else:
            self.walk_primitive(node, item, structure)

    def host_extension_url(self, location: str) -> str | None:
        for _loc, _node, type_code, value in reversed(self.hosts):
            if type_code == "Extension" and isinstance(value, dict):
                return value.get("url")
        return None

    # -- reporting ---------------------------------------------------------------------------

    def add(self, issues: Iterable[Issue]) -> None:
        for issue in issues:
            key = (issue.severity, issue.location, issue.message)
            if key not in self._seen:
                self._seen.add(key)
                self.issues.append(issue)

    def issue(self, severity: str, code: str, location: str, message_id: str, message: str) -> Issue:
        return Issue(Severity(severity), code, message, location, message_id)

    def root_resource(self) -> dict[str, Any]:
        """FHIRPath %rootResource: the resource holding the current one when it is contained."""
        frame = self.frames[-1] if self.frames else None
        while frame is not None and frame.kind == "contained" and frame.parent is not None:
            frame = frame.parent
        return frame.resource if frame is not None else self.root

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    # -- resources ---------------------------------------------------------------------------

    def validate_resource(
        self,
        resource: Any,
        location: str,
        extra_profiles: Iterable[str] = (),
        frame: Frame | None = None,
        base: bool = True,
    ) -> None:
        """Validate a (possibly nested) resource against its type, meta.profile and extra profiles."""
        if not isinstance(resource, dict):
            self.add(
                [
                    self.issue(
                        "error",
                        "structure",
                        location,
                        "Validation_VAL_Content_Unknown",
                        "A resource must be a JSON object",
                    )
                ]
            )
            return
        rtype = resource.get("resourceType")
        base_structure = self.validator.type_structure(rtype) if isinstance(rtype, str) else None
        if base_structure is None or base_structure.kind != "resource":
            self.add(
                [
                    self.issue(
                        "error",
                        "invalid",
                        location,
                        "Validation_VAL_Profile_NoDefinition",
                        f"No definition found for resource type '{rtype}'",
                    )
                ]
            )
            return
        frame = frame or Frame(resource, location)
        self.frames.append(frame)
        try:
            structures: list[CompiledStructure] = [base_structure] if base else []
            profile_urls = list(extra_profiles)
            meta = resource.get("meta")
            if base and isinstance(meta, dict) and isinstance(meta.get("profile"), list):
                profile_urls[:0] = [p for p in meta["profile"] if isinstance(p, str)]
            if base:
                profile_urls += implied_profiles(resource) + self.validator.global_profiles(rtype)
            for url in dict.fromkeys(profile_urls):
                structure = self.validator.structure(url)
                if structure is None:
                    self.add(
                        [
                            self.issue(
                                "warning",
                                "processing",
                                location,
                                "VALIDATION_VAL_PROFILE_UNKNOWN_NOT_POLICY",
                                f"Profile reference '{url}' has not been checked because it could "
                                "not be found",
                            )
                        ]
                    )
                elif structure.type != rtype and self.validator.index.is_resource(structure.type):
                    self.add(
                        [
                            self.issue(
                                "error",
                                "structure",
                                location,
                                "Validation_VAL_Profile_WrongType",
                                f"Specified profile type was '{structure.type}' in profile "
                                f"'{url}', but found type '{rtype}'",
                            )
                        ]
                    )
                else:
                    structures.append(structure)
            for structure in structures:
                self.walk_object(structure.root, resource, rtype, location, structure, is_resource=True)
                self.add(checks.invariants(self, structure.root, resource, rtype, location, structure))
            if base:
                self.add(self.resource_checks(resource, location))
        finally:
            self.frames.pop()

    def resource_checks(self, resource: dict[str, Any], location: str) -> Iterator[Issue]:
        finding = check_resource_id(resource.get("id"))
        if finding:
            severity, code, message_id, message = finding
            yield self.issue(severity, code, f"{location}.id", message_id, message)
        yield from references.check_contained_referenced(self, resource, location)
        if resource.get("resourceType") == "Bundle":
            yield from references.check_bundle(self, resource, location)

    # -- elements ----------------------------------------------------------------------------

    def children_of(
        self, node: ElementNode, type_code: str, structure: CompiledStructure
    ) -> tuple[dict[str, ElementNode], CompiledStructure]:
        if node.children:
            return node.children, structure
        if node.content_ref:
            target = structure.by_id.get(node.content_ref.split("#", 1)[-1])
            if target is not None and target.children:
                return target.children, structure
        type_structure = self.validator.type_structure(type_code)
        if type_structure is None:
            return {}, structure
        return type_structure.root.children, type_structure

    def walk_object(
        self,
        node: ElementNode,
        obj: dict[str, Any],
        type_code: str,
        location: str,
        structure: CompiledStructure,
        is_resource: bool = False,
        primitive_extra: bool = False,
    ) -> None:
        children, child_structure = self.children_of(node, type_code, structure)
        self.hosts.append((location, node, type_code, obj))
        try:
            self._walk_children(
                node,
                obj,
                type_code,
                location,
                structure,
                children,
                child_structure,
                is_resource or primitive_extra,
            )
        finally:
            self.hosts.pop()

    def _walk_children(
        self, node, obj, type_code, location, structure, children, child_structure, is_resource
    ) -> None:
        items: dict[str, list[Item]] = {}
        arrays: dict[str, bool] = {}
        for key in obj:
            if is_resource and key == "resourceType":
                continue
            name = key[1:] if key.startswith("_") else key
            if key.startswith("_") and name in obj:
                continue
            resolved = checks.resolve_child(children, name)
            if resolved is None:
                self.add(checks.unknown_property(self, children, name, obj, location, structure))
                wrong_type = checks.choice_for(children, name)
                if wrong_type is not None and not _has_valid_choice(children, obj, wrong_type):
                    # present, if of the wrong type: cardinality is satisfied
                    items.setdefault(wrong_type.name, []).append(Item(name, "", None, None, location))
                continue
            child, child_type = resolved
            value, extra = obj.get(name), obj.get("_" + name)
            shape_issues = list(checks.json_shape(self, child, name, value, extra, location))
            if shape_issues:
                self.add(shape_issues)
            values = value if isinstance(value, list) else [value] if name in obj else []
            extras = extra if isinstance(extra, list) else [extra] if ("_" + name) in obj else []
            is_array = isinstance(value, list) or isinstance(extra, list)
            arrays[child.name] = is_array
            count = max(len(values), len(extras))
            base_loc = f"{location}.{child.name}"
            bucket = items.setdefault(child.name, [])
            for i in range(count):
                item_value = values[i] if i < len(values) else None
                item_extra = extras[i] if i < len(extras) else None
                if item_value is None and item_extra is None and is_array:
                    continue
                loc = base_loc + (f"[{len(bucket)}]" if is_array or not child.base_max_one else "")
                if child.choice:
                    loc = f"{base_loc}.ofType({child_type})"
                bucket.append(Item(name, child_type, item_value, item_extra, loc))
        for name, child in children.items():
            found = items.get(name)
            if found is None:
                if child.min == 0 and not _has_required_slice(child):
                    continue  # absent and optional: nothing to check (the common case)
                found = []
            if child.min > len(found) or (child.max is not None and len(found) > child.max):
                self.add(checks.cardinality(self, child, found, location, structure))
            if child.slicing is not None or child.slices:
                self.add(slicing.check_slices(self, child, found, location, structure))
            for item in found:
                if item.type_code:
                    self.walk_value(child, item, child_structure, location)
        if is_resource:
            return
        if not any(k != "id" for k in obj) and not getattr(obj, "had_unknown_content", False):
            self.add([checks.ele1(self, location)])

    def walk_value(
        self, node: ElementNode, item: Item, structure: CompiledStructure, parent_location: str
    ) -> None:
        type_code = item.type_code
        index = self.validator.index
        if type_code in SYSTEM_PRIMITIVES or index.is_primitive(type_code):
            self.walk_primitive(node, item, structure)
            return
        if type_code == "Resource" or index.is_resource(type_code):
            self.walk_contained_resource(node, item, structure, parent_location)
            return
        value = item.value
        if not isinstance(value, dict):
            self.add(
                [
                    self.issue(
                        "error",
                        "structure",
                        item.location,
                        "UNRECOGNISED_PROPERTY_TYPE",
                        f"Invalid JSON type for the element {node.name}; expected an object",
                    )
                ]
            )
            return
        self.walk_object(node, value, type_code, item.location, structure)
        self.add(checks.fixed_and_pattern(self, node, value, item.location, structure))
        if node.binding is not None:
            self.add(bindings.check_binding(self, node, type_code, value, item.location, structure))
        if type_code in ("Coding", "CodeableConcept"):
            self.add(bindings.check_codings_known(self, type_code, value, item.location))
        if type_code == "Reference":
            self.add(references.check_reference(self, node, value, item.location, structure))
        elif type_code == "Extension" and node.name in ("extension", "modifierExtension"):
            self.add(extensions.check_extension(self, node, value, item.location, parent_location))
        elif type_code == "Attachment":
            self.add(checks.attachment(self, value, item.location))
        elif type_code == "Quantity" and (node.min_value or node.max_value):
            self.add(checks.quantity_range(self, node, value, item.location))
        self.add(checks.type_profiles(self, node, type_code, item, structure))
        self.add(checks.invariants(self, node, value, type_code, item.location, structure))
        type_structure = self.validator.type_structure(type_code)
        if type_structure is not None and type_structure is not structure and type_structure.root.constraints:
            own = {c.get("key") for c in node.constraints}
            self.add(
                checks.invariants(
                    self, type_structure.root, value, type_code, item.location, type_structure, skip=own
                )
            )

    def walk_primitive(self, node: ElementNode, item: Item, structure: CompiledStructure) -> None:
        self.add(checks.primitive(self, node, item, structure))
        extra = item.extra
        if isinstance(extra, dict) and extra:
            extra = dict(extra)
            if "value" in extra:
                del extra["value"]
                self.add(
                    [
                        self.issue(
                            "error",
                            "invalid",
                            item.location,
                            "ILLEGAL_PROPERTY",
                            "The property 'value' is invalid",
                        )
                    ]
                )
            if extra:
                self.walk_object(node, extra, item.type_code, item.location, structure, primitive_extra=True)
        if node.constraints and item.value is not None:
            self.add(checks.invariants(self, node, item.value, item.type_code, item.location, structure))

    def walk_contained_resource(
        self, node: ElementNode, item: Item, structure: CompiledStructure, parent_location: str
    ) -> None:
        resource = item.value
        if not isinstance(resource, dict):
            self.add(
                [
                    self.issue(
                        "error",
                        "structure",
                        item.location,
                        "Validation_VAL_Content_Unknown",
                        "A resource must be a JSON object",
                    )
                ]
            )
            return
        rtype = resource.get("resourceType")
        location = f"{item.location}/*{rtype}/{resource.get('id', 'null')}*/"
        profiles = [
            p for t in node.types if t.code in (rtype, "Resource", "DomainResource") for p in t.profiles
        ]
        is_base_walk = structure.derivation != "constraint"
        parent = self.frame
        container_type = parent.resource.get("resourceType")
        kind = (
            "contained"
            if node.name == "contained"
            else "entry"
            if container_type == "Bundle"
            else "parameter"
        )
        if kind == "contained" and self.options.validate_contains == "IGNORE":
            return
        frame = Frame(resource, location, parent, kind)
        if kind == "entry" and parent.resource.get("resourceType") == "Bundle":
            frame.bundle = parent.resource
            frame.entry_index = _entry_index(item.location)
            entries = parent.resource.get("entry")
            if (
                isinstance(entries, list)
                and frame.entry_index is not None
                and frame.entry_index < len(entries)
            ):
                entry = entries[frame.entry_index]
                if isinstance(entry, dict):
                    frame.full_url = entry.get("fullUrl")
        if is_base_walk:
            self.validate_resource(resource, location, profiles, frame)
        elif profiles:
            self.validate_resource(resource, location, profiles, frame, base=False)


def _has_valid_choice(children: dict[str, ElementNode], obj: dict, choice: ElementNode) -> bool:
    for key in obj:
        resolved = checks.resolve_child(children, key.lstrip("_"))
        if resolved is not None and resolved[0] is choice:
            return True
    return False


def _has_required_slice(node: ElementNode) -> bool:
    return any(s.min > 0 for s in node.slices)


def _entry_index(location: str) -> int | None:
    marker = "entry["
    pos = location.rfind(marker)
    if pos < 0:
        return None
    end = location.find("]", pos)
    try:
        return int(location[pos + len(marker) : end])
    except ValueError:
        return None
