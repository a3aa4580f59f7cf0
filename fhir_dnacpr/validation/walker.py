"""The instance walker: descends a resource once, with a merged plan per value, and reports issues.

One ``Run`` per top-level validation holds the state a walk needs (the resource stack for
``%resource``/contained/bundle resolution, the issue list with de-duplication). Each value is
walked once against all the definitions that apply to it (see ``plan``); the walker only routes:
each kind of constraint is a small function in its own module (``checks``, ``bindings``,
``slicing``, ``extensions``, ``references``) that yields ``Issue`` objects, called only where a
layer of the plan has that kind of constraint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.validation import bindings, checks, extensions, references, slicing
from fhir_dnacpr.validation.implied import implied_profiles
from fhir_dnacpr.validation.options import ValidationOptions
from fhir_dnacpr.validation.plan import COMPLEX, FAST_PRIMITIVE, PRIMITIVE, SCALAR, Plan, resolve_key
from fhir_dnacpr.validation.primitives import check_resource_id, plainly_valid
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.validator import Validator

NOT_EVALUATED = "VALIDATION_INVARIANT_NOT_EVALUATED"


@dataclass(slots=True)
class Frame:
    """A resource being validated and where it sits (for contained/bundle resolution)."""

    resource: dict[str, Any]
    location: str
    parent: Frame | None = None
    kind: str = "root"  # root | contained | entry | parameter | reference
    full_url: str | None = None
    entry_index: int | None = None
    bundle: dict[str, Any] | None = None


class Item:
    """One value of an element in the instance (a primitive's value and its ``_`` part).

    ``plan`` is how its JSON name resolved in the parent's layers (None for probes and for
    wrong-type placeholders); ``slices`` are the slices it matched (filled in by slicing).
    """

    __slots__ = ("extra", "key", "location", "nodes", "plan", "slices", "type_code", "value")

    def __init__(
        self, key: str, plan: Any, value: Any, extra: Any, location: str, type_code: str = ""
    ) -> None:
        self.key = key
        self.plan = plan
        self.type_code = plan.type_code if plan is not None else type_code
        self.value = value
        self.extra = extra
        self.location = location
        self.nodes = plan.nodes if plan is not None else ()
        self.slices: list[ElementNode] = []


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
    resolutions: dict[tuple, tuple] = field(default_factory=dict)  # reference → resolution, per frame
    type_profiles: dict[str, list[str]] = field(default_factory=dict)  # extra profiles by resource type
    bound_codings: int = 0  # > 0 inside a CodeableConcept under a required binding
    memo: dict | None = None  # findings of context-free values (see walk_complex_value)
    impure: bool = False  # the current walk consulted context (resource, references): not memoised

    # -- FHIRPath host functions -------------------------------------------------------------

    @property
    def host(self) -> Run:
        return self

    def member_of(self, value: Any, value_set: str) -> bool | None:
        return bindings.member_of(self, value, value_set)

    def resolve_reference(self, reference: str) -> dict | None:
        self.impure = True
        resolved, _problems, _stop = references.resolve(self, reference, self.frame)
        return resolved.resource if resolved else None

    def conforms_to(self, resource: Any, profile: str) -> bool:
        """Does ``resource`` (a resource or element) validate against ``profile`` without errors?"""
        self.impure = True
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
        plan = self.validator.plan((structure.root,), structure.type)
        if structure.kind == "resource":
            frame = self._frame_for(resource, structure.type)
            self.frames.append(frame)
            try:
                self.walk_complex(plan, resource, resource.get("resourceType", structure.type), True)
            finally:
                self.frames.pop()
        else:
            self.walk_complex(plan, resource, structure.type)

    def _frame_for(self, resource: dict, location: str) -> Frame:
        """A frame for checking ``resource`` on its own (slice by profile, reference target).

        A Bundle entry keeps its place (entry frame with its ``fullUrl``) so its own relative
        references still resolve in the Bundle, as they do when the entry is walked."""
        parent = self.frames[-1] if self.frames else None
        current = parent
        while current is not None:
            is_bundle = current.resource.get("resourceType") == "Bundle"
            entries = current.resource.get("entry") if is_bundle else None
            if isinstance(entries, list):
                for index, entry in enumerate(entries):
                    if isinstance(entry, dict) and entry.get("resource") is resource:
                        frame = Frame(resource, location, parent, "entry")
                        frame.bundle = current.resource
                        frame.entry_index = index
                        frame.full_url = entry.get("fullUrl")
                        return frame
                break  # the nearest Bundle is the one whose entries can be resolved against
            current = current.parent
        return Frame(resource, location, parent, "reference")

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
        probe = Item(item.key, None, item.value, item.extra, item.location, item.type_code)
        return self.collect(lambda: self.walk_against(structure.root, probe))

    def walk_against(self, node: ElementNode, item: Item) -> None:
        """One value against one definition only (probes: profile choices, slice conformance)."""
        plan = self.validator.plan((node,), item.type_code)
        if isinstance(item.value, dict):
            self.walk_complex(plan, item.value, item.location)
            self.run_invariants(plan.invariants, item.value, item.location)
        else:
            self.walk_primitive(plan, item)

    def walk_value(self, node: ElementNode, item: Item, parent: str = "") -> None:
        """Walk one value against one definition node, as a full element (slice probes)."""
        self.walk_item((node,), item, parent)

    # -- reporting ---------------------------------------------------------------------------

    def add(self, issues: Iterable[Issue]) -> None:
        for issue in issues:
            key = (issue.severity, issue.location, issue.message)
            if key not in self._seen:
                self._seen.add(key)
                self.issues.append(issue)

    def add_one(self, issue: Issue) -> None:
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

    def children_of(self, node: ElementNode, type_code: str, structure: Any = None):
        """(children by JSON name, owning structure) of a definition node for a value type."""
        children = self.validator.children_of(node, type_code)
        owner = next(iter(children.values())).structure if children else node.structure
        return children, owner

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
            self.add_one(
                self.issue(
                    "error",
                    "structure",
                    location,
                    "Validation_VAL_Content_Unknown",
                    "A resource must be a JSON object",
                )
            )
            return
        rtype = resource.get("resourceType")
        base_structure = self.validator.type_structure(rtype) if isinstance(rtype, str) else None
        if base_structure is None or base_structure.kind != "resource":
            self.add_one(
                self.issue(
                    "error",
                    "invalid",
                    location,
                    "Validation_VAL_Profile_NoDefinition",
                    f"No definition found for resource type '{rtype}'",
                )
            )
            return
        frame = frame or Frame(resource, location)
        self.frames.append(frame)
        try:
            structures = [base_structure] if base else []
            profile_urls = list(extra_profiles)
            meta = resource.get("meta")
            if base and isinstance(meta, dict) and isinstance(meta.get("profile"), list):
                profile_urls[:0] = [p for p in meta["profile"] if isinstance(p, str)]
            if base:
                if self.options.vital_signs_profiles:
                    profile_urls += implied_profiles(resource)
                profile_urls += self.validator.global_profiles(rtype)
                if self.type_profiles:
                    profile_urls += self.type_profiles.get(rtype, ())
            for url in dict.fromkeys(profile_urls):
                structure = self.validator.structure(url)
                if structure is None:
                    self.add_one(
                        self.issue(
                            "warning",
                            "processing",
                            location,
                            "VALIDATION_VAL_PROFILE_UNKNOWN_NOT_POLICY",
                            f"Profile reference '{url}' has not been checked because it could not be found",
                        )
                    )
                elif structure.type != rtype and self.validator.index.is_resource(structure.type):
                    self.add_one(
                        self.issue(
                            "error",
                            "structure",
                            location,
                            "Validation_VAL_Profile_WrongType",
                            f"Specified profile type was '{structure.type}' in profile "
                            f"'{url}', but found type '{rtype}'",
                        )
                    )
                elif structure not in structures:
                    structures.append(structure)
            if structures:
                layers = tuple(dict.fromkeys(s.root for s in structures))
                plan = self.validator.plan(layers, rtype)
                self.walk_complex(plan, resource, location, is_resource=True)
                self.run_invariants(plan.invariants, resource, location, rtype)
            if base:
                self.add(self.resource_checks(resource, location))
        finally:
            self.frames.pop()

    def resource_checks(self, resource: dict[str, Any], location: str) -> Iterator[Issue]:
        finding = check_resource_id(resource.get("id"))
        if finding:
            severity, code, message_id, message = finding
            yield self.issue(severity, code, f"{location}.id", message_id, message)
        if "contained" in resource:
            yield from references.check_contained_referenced(self, resource, location)
        if resource.get("resourceType") == "Bundle":
            yield from references.check_bundle(self, resource, location)

    # -- elements ----------------------------------------------------------------------------

    def walk_complex(
        self,
        plan: Plan,
        obj: dict[str, Any],
        location: str,
        is_resource: bool = False,
        primitive_extra: bool = False,
    ) -> None:
        """Walk the children of one object against every layer of ``plan`` at once."""
        hosts = self.hosts
        hosts.append((location, plan.layers[0], plan.type_code, obj))
        self._walk_children(plan, obj, location, is_resource or primitive_extra)
        hosts.pop()

    def _walk_children(self, plan: Plan, obj: dict, location: str, skip_ele1: bool) -> None:
        """Children of one object: each property resolved, counted and walked.

        A property that resolves in every layer, is not a choice and is not sliced (the common
        case) is checked and walked at once; the others are collected first, because their
        cardinality, slice membership or wrong-type placeholders need all their values together.
        """
        deferred: dict[str, list[Item]] | None = None
        choices: dict[str, list[Item]] | None = None  # choice values walked at once, counted here
        keys = plan.keys
        for key in obj:
            if key[0] == "_":
                name = key[1:]
                if name in obj:
                    continue
                value = None
                extra = obj[key]
            else:
                if key == "resourceType" and skip_ele1:
                    continue
                name = key
                value = obj[key]
                extra = None
            key_plan = keys.get(name)
            if key_plan is None:
                key_plan = resolve_key(plan, name, self.validator)
            mode = key_plan.mode
            if mode == FAST_PRIMITIVE and type(value) is str and value and key_plan.underscored not in obj:
                # the commonest value of all: a plain string whose rules depend on the value alone
                findings = key_plan.item_plan.value_cache.get(value)
                if findings is None:
                    findings = self._primitive_findings(key_plan.item_plan, name, value)
                if findings:
                    for severity, code, message_id, message in findings:
                        self.add_one(self.issue(severity, code, f"{location}.{name}", message_id, message))
                continue
            if mode == SCALAR and type(value) is dict:
                item_plan = key_plan.item_plan
                loc = f"{location}.{name}" if key_plan.base_max_one else f"{location}.{name}[0]"
                if key_plan.shape_node is not None and not key_plan.base_max_one:
                    self.add(checks.json_shape(self, key_plan.shape_node, name, value, None, location))
                item = Item(name, key_plan, value, None, loc)
                if item_plan.kind == COMPLEX:
                    self.walk_complex_value(item_plan, item, location)
                else:
                    self._walk_items(key_plan, (item,), location)
                continue
            if not key_plan.complete:
                if deferred is None:
                    deferred = {}
                self._unknown(plan, key_plan, name, obj, location, deferred)
                if not key_plan.resolved:
                    continue
            if key_plan.primitive and value is not None:
                extra = obj.get(key_plan.underscored)
            is_array = type(value) is list or type(extra) is list
            shape = key_plan.shape_node
            if shape is not None and (
                is_array == shape.base_max_one or (is_array and not (value or extra)) or extra is not None
            ):
                self.add(checks.json_shape(self, shape, name, value, extra, location))
            if key_plan.direct:
                group = key_plan.group
                if not is_array:
                    if key_plan.choice:
                        item = Item(
                            name,
                            key_plan,
                            value,
                            extra,
                            f"{location}.{key_plan.name}.ofType({key_plan.type_code})",
                        )
                        if choices is None:
                            choices = {}
                        choices.setdefault(key_plan.name, []).append(item)
                    else:
                        loc = f"{location}.{name}" if key_plan.base_max_one else f"{location}.{name}[0]"
                        if group.min_needed > 1 or group.max_allowed < 1:
                            self._check_group(
                                group, [Item(name, key_plan, value, extra, loc)], location, True
                            )
                        item_plan = key_plan.item_plan
                        if (
                            item_plan is not None
                            and item_plan.fast_primitive
                            and extra is None
                            and type(value) is str
                            and value
                        ):  # the commonest value of all: a plain string with format rules only
                            findings = item_plan.value_cache.get(value)
                            if findings is None:
                                findings = self._primitive_findings(item_plan, name, value)
                            if findings:
                                for severity, code, message_id, message in findings:
                                    self.add_one(self.issue(severity, code, loc, message_id, message))
                            continue
                        item = Item(name, key_plan, value, extra, loc)
                    self._walk_items(key_plan, (item,), location)
                    continue
                found = self._array_items(key_plan, name, value, extra, f"{location}.{key_plan.name}", [])
                if key_plan.choice:
                    if choices is None:
                        choices = {}
                    choices.setdefault(key_plan.name, []).extend(found)
                elif len(found) < group.min_needed or len(found) > group.max_allowed:
                    self._check_group(group, found, location, True)
                self._walk_items(key_plan, found, location)
                continue
            if deferred is None:
                deferred = {}
            bucket = deferred.get(key_plan.name)
            if bucket is None:
                bucket = deferred[key_plan.name] = []
            if not is_array:
                if key_plan.choice:
                    loc = f"{location}.{key_plan.name}.ofType({key_plan.type_code})"
                elif key_plan.base_max_one:
                    loc = f"{location}.{name}"
                else:
                    loc = f"{location}.{name}[{len(bucket)}]"
                bucket.append(Item(name, key_plan, value, extra, loc))
            else:
                self._array_items(key_plan, name, value, extra, f"{location}.{key_plan.name}", bucket)
        groups = plan.groups
        if choices:
            for name, found in choices.items():
                group = groups[name]
                if deferred and name in deferred:
                    continue  # counted with the deferred values of the same element below
                if len(found) < group.min_needed or len(found) > group.max_allowed:
                    self._check_group(group, found, location, True)
        if deferred:
            for name, found in deferred.items():
                group = groups.get(name)
                if group is not None:
                    counted = found + choices[name] if choices and name in choices else found
                    uniform = all(None not in it.nodes for it in counted)
                    self._check_group(group, counted, location, uniform)
            for found in deferred.values():
                for item in found:
                    if item.plan is not None:
                        self._walk_items(item.plan, (item,), location)
        for group in plan.required:
            name = group.name
            if (
                name in obj
                or ("_" + name) in obj
                or (deferred and name in deferred)
                or (choices and name in choices)
            ):
                continue
            self._check_group(group, [], location, True)
        if (
            not skip_ele1
            and (not obj or (len(obj) == 1 and "id" in obj))
            and not getattr(obj, "had_unknown_content", False)
        ):
            self.add_one(checks.ele1(self, location))

    def _array_items(
        self, key_plan, name: str, value: Any, extra: Any, base_loc: str, bucket: list[Item]
    ) -> list[Item]:
        values = value if type(value) is list else [value] if value is not None else []
        extras = extra if type(extra) is list else [extra] if extra is not None else []
        if key_plan.base_max_one and not getattr(value, "from_xml", False):
            # a JSON array where one value belongs: reported as such and, like the HL7 JSON
            # parser, not read at all (the element counts as absent)
            return bucket
        choice = key_plan.choice
        if not extras:
            for item_value in values:
                if item_value is not None:
                    loc = (
                        f"{base_loc}.ofType({key_plan.type_code})" if choice else f"{base_loc}[{len(bucket)}]"
                    )
                    bucket.append(Item(name, key_plan, item_value, None, loc))
            return bucket
        for i in range(max(len(values), len(extras))):
            item_value = values[i] if i < len(values) else None
            item_extra = extras[i] if i < len(extras) else None
            if item_value is None and item_extra is None:
                continue
            loc = f"{base_loc}.ofType({key_plan.type_code})" if choice else f"{base_loc}[{len(bucket)}]"
            bucket.append(Item(name, key_plan, item_value, item_extra, loc))
        return bucket

    def _walk_items(self, key_plan, items: Iterable[Item], location: str) -> None:
        """Walk values of one property against their layers (plus any slices they matched)."""
        if not key_plan.layers:
            return  # a wrong-type placeholder: counted, not walked
        for item in items:
            if item.slices:
                slice_plans = key_plan.slice_plans
                if slice_plans is None:
                    slice_plans = key_plan.slice_plans = {}
                chosen = tuple(item.slices)
                item_plan = slice_plans.get(chosen)
                if item_plan is None:
                    layers = tuple(dict.fromkeys(key_plan.layers + chosen))
                    item_plan = slice_plans[chosen] = self.validator.plan(layers, key_plan.type_code)
            else:
                item_plan = key_plan.item_plan
                if item_plan is None:
                    item_plan = key_plan.item_plan = self.validator.plan(key_plan.layers, key_plan.type_code)
            kind = item_plan.kind
            if kind == PRIMITIVE:
                value = item.value
                if item_plan.fast_primitive and item.extra is None and type(value) is str and value:
                    findings = item_plan.value_cache.get(value)
                    if findings is None:
                        findings = self._primitive_findings(item_plan, item.key, value)
                    if findings:
                        for severity, code, message_id, message in findings:
                            self.add_one(self.issue(severity, code, item.location, message_id, message))
                    continue
                self.walk_primitive(item_plan, item)
            elif kind == COMPLEX:
                self.walk_complex_value(item_plan, item, location)
            else:
                self.walk_contained_resource(item_plan, item)

    def _unknown(
        self, plan: Plan, key_plan, name: str, obj: dict, location: str, items: dict[str, list[Item]]
    ) -> None:
        for i in key_plan.unknown:
            layer = plan.layers[i]
            if extensions.is_definition_root(layer) and name.startswith("value"):
                extensions.wrong_value_type(self, layer, name, obj, location)
                continue
            self.add(checks.unknown_property(self, plan.child_maps[i], name, obj, location, layer.structure))
        for i, choice in key_plan.wrong_type_layers:
            if not _has_valid_choice(plan.child_maps[i], obj, choice):
                # present, if of the wrong type: cardinality is satisfied in that layer
                placeholder = Item(name, None, None, None, location)
                placeholder.nodes = tuple(choice if j == i else None for j in range(len(plan.layers)))
                items.setdefault(choice.name, []).append(placeholder)

    def _check_group(self, group, found: list[Item], location: str, uniform: bool) -> None:
        count = len(found)
        if not uniform or count < group.min_needed or count > group.max_allowed:
            for i, node in group.per_layer:
                layer_items = found if uniform else [it for it in found if it.nodes[i] is not None]
                n = len(layer_items)
                if node.min > n or (node.max is not None and n > node.max):
                    self.add(checks.cardinality(self, node, layer_items, location, node.structure))
        for i, node in group.sliced:
            layer_items = found if uniform else [it for it in found if it.nodes[i] is not None]
            self.add(slicing.check_slices(self, node, layer_items, location, node.structure))

    def walk_item(self, layers: tuple[ElementNode, ...], item: Item, parent_location: str) -> None:
        """Walk one value against every definition in ``layers``."""
        plan = self.validator.plan(layers, item.type_code)
        kind = plan.kind
        if kind == PRIMITIVE:
            self.walk_primitive(plan, item)
        elif kind == COMPLEX:
            self.walk_complex_value(plan, item, parent_location)
        else:
            self.walk_contained_resource(plan, item)

    def walk_complex_value(self, plan: Plan, item: Item, parent_location: str) -> None:
        """Walk one complex value. Codings and CodeableConcepts repeat across records (the same
        codes over and over): their findings depend on the value alone, so they are remembered
        per (plan, value) and replayed at the new location."""
        if plan.memo and item.extra is None:
            frozen = _freeze(item.value)
            if frozen is not None:
                key = (plan, frozen, self.bound_codings)
                memo = self.memo
                if memo is None:
                    memo = self.memo = self.validator.memo_for(self.options)
                recorded = memo.get(key)
                location = item.location
                if recorded is not None:
                    for severity, code, suffix, message_id, message in recorded:
                        if _HERE in message:
                            message = message.replace(_HERE, location)
                        self.add_one(self.issue(severity, code, location + suffix, message_id, message))
                    return
                start = len(self.issues)
                issues = self.issues
                outer_impure, self.impure = self.impure, False
                self._walk_complex_value(plan, item, parent_location)
                if not self.impure and self.issues is issues:
                    if len(memo) > 50_000:
                        memo.clear()
                    memo[key] = tuple(
                        (
                            i.severity.value,
                            i.code,
                            (i.location or "")[len(location) :],
                            i.message_id,
                            i.message.replace(location, _HERE) if location in i.message else i.message,
                        )
                        for i in issues[start:]
                        if (i.location or "").startswith(location)
                    )
                    if any(not (i.location or "").startswith(location) for i in issues[start:]):
                        del memo[key]  # a finding outside the value: do not replay
                self.impure = self.impure or outer_impure
                return
        self._walk_complex_value(plan, item, parent_location)

    def _walk_complex_value(self, plan: Plan, item: Item, parent_location: str) -> None:
        value = item.value
        location = item.location
        if not isinstance(value, dict):
            self.add_one(
                self.issue(
                    "error",
                    "structure",
                    location,
                    "UNRECOGNISED_PROPERTY_TYPE",
                    f"Invalid JSON type for the element {plan.layers[0].name}; expected an object",
                )
            )
            return
        type_code = plan.type_code
        if plan.extension_node is not None:
            definition = extensions.check_extension(self, plan.extension_node, value, location)
            if definition is not None:
                extensions.check_simple_value(self, definition, value, location)
            if definition is not None and self.extension_depth < 8:
                root = definition.root
                if root not in plan.layers:
                    cached = plan.extension_plans
                    if cached is None:
                        cached = plan.extension_plans = {}
                    extended = cached.get(root)
                    if extended is None:
                        extended = cached[root] = self.validator.plan((*plan.layers, root), type_code)
                    plan = extended
                    self.extension_depth += 1
                    self.walk_complex(plan, value, location)
                    self.extension_depth -= 1
                else:
                    self.walk_complex(plan, value, location)
            else:
                self.walk_complex(plan, value, location)
        elif type_code == "CodeableConcept" and plan.enforced_binding:
            self.bound_codings += 1  # its codings are judged by the binding, not one by one
            self.walk_complex(plan, value, location)
            self.bound_codings -= 1
        else:
            self.walk_complex(plan, value, location)
        for node in plan.fixed_layers:
            self.add(checks.fixed_and_pattern(self, node, value, location, node.structure))
        for node in plan.bindings:
            self.add(bindings.check_binding(self, node, type_code, value, location, node.structure))
        if type_code == "Coding" and not self.bound_codings and not plan.enforced_binding:
            unknown = bindings.check_coding_known(self, value, location)
            if unknown is not None:
                self.add_one(unknown)
        elif type_code == "Attachment":
            self.add(checks.attachment(self, value, location))
        for node in plan.reference_layers:
            self.add(references.check_reference(self, node, value, location, node.structure))
        for node in plan.quantity_layers:
            self.add(checks.quantity_range(self, node, value, location))
        for node in plan.profile_layers:
            self.add(checks.type_profiles(self, node, type_code, item, node.structure))
        if plan.invariants:
            self.run_invariants(plan.invariants, value, location, type_code)
        if plan.type_invariants:
            self.run_invariants(plan.type_invariants, value, location, type_code)

    def _primitive_findings(self, plan: Plan, key: str, value: str) -> tuple:
        """Every rule of a primitive plan depends on the value alone: compute once, remember."""
        if plan.format_only and all(
            plainly_valid(plan.type_code, value, core, max_length) for core, max_length in plan.formats
        ):
            findings: tuple = ()
        else:
            issues = checks.primitive_merged(self, plan, Item(key, None, value, None, "", plan.type_code))
            findings = tuple((i.severity.value, i.code, i.message_id, i.message) for i in issues)
        cache = plan.value_cache
        if len(cache) > 20_000:
            cache.clear()  # bounded: ids and free text are mostly unique
        cache[value] = findings
        return findings

    def walk_primitive(self, plan: Plan, item: Item) -> None:
        for issue in checks.primitive_merged(self, plan, item):
            self.add_one(issue)
        extra = item.extra
        if isinstance(extra, dict) and extra:
            if "value" in extra:
                extra = {k: v for k, v in extra.items() if k != "value"}
                self.add_one(
                    self.issue(
                        "error",
                        "invalid",
                        item.location,
                        "ILLEGAL_PROPERTY",
                        "The property 'value' is invalid",
                    )
                )
            if extra:
                self.walk_complex(plan, extra, item.location, primitive_extra=True)
        if plan.invariants and item.value is not None:
            self.run_invariants(plan.invariants, item.value, item.location, plan.type_code)

    def run_invariants(self, groups, value: Any, location: str, type_code: str | None = None) -> None:
        """Evaluate each distinct expression once; report it for every layer that defines it."""
        for group in groups:
            native = group.native
            if native is not None:
                if native(value):
                    continue
                verdict: bool | None = False
            elif group.native_root is not None:
                self.impure = True  # depends on %rootResource
                if group.native_root(value, self.root_resource()):
                    continue
                verdict = False
            else:
                if group.contextual:
                    self.impure = True  # %resource, resolve() …: the verdict is not the value's alone
                expression = group.expression
                frame = self.frames[-1]
                cache_key = (id(value), expression, id(frame.resource))
                verdict = self.verdicts.get(cache_key, ...)
                if verdict is ...:
                    verdict = self.validator.fhirpath.check(
                        expression,
                        value,
                        group.type_path,
                        frame.resource,
                        self.root_resource(),
                        self,
                        context_type=type_code,
                    )
                    self.verdicts[cache_key] = verdict
                if verdict is True:
                    continue
            for entry in group.entries:
                if verdict is None:
                    self.add_one(
                        self.issue(
                            "warning",
                            "processing",
                            location,
                            NOT_EVALUATED,
                            f"Constraint {entry.key} could not be evaluated offline (FHIRPath "
                            f"'{expression}' is beyond the supported engine); it was not checked",
                        )
                    )
                    continue
                severity = entry.severity
                message = entry.message
                if entry.best_practice:
                    level = self.options.best_practice
                    if level in ("ignore", "hint"):
                        continue
                    severity = "error" if level == "error" else "warning"
                    message += " (Best Practice Recommendation)"
                if severity not in ("error", "warning"):
                    severity = "warning"
                self.add_one(self.issue(severity, "invariant", location, entry.message_id, message))

    def walk_contained_resource(self, plan: Plan, item: Item) -> None:
        resource = item.value
        if not isinstance(resource, dict):
            self.add_one(
                self.issue(
                    "error",
                    "structure",
                    item.location,
                    "Validation_VAL_Content_Unknown",
                    "A resource must be a JSON object",
                )
            )
            return
        rtype = resource.get("resourceType")
        location = f"{item.location}/*{rtype}/{resource.get('id', 'null')}*/"
        profiles: list[str] = []
        choices: list[tuple[str, ...]] = []  # a type listing several profiles: one must match
        for node in plan.layers:
            for t in node.types:
                if t.code in (rtype, "Resource", "DomainResource") and t.profiles:
                    if len(t.profiles) == 1:
                        profiles.append(t.profiles[0])
                    elif t.profiles not in choices:
                        choices.append(t.profiles)
        profiles = list(dict.fromkeys(profiles))
        parent = self.frame
        container_type = parent.resource.get("resourceType")
        name = plan.layers[0].name
        kind = "contained" if name == "contained" else "entry" if container_type == "Bundle" else "parameter"
        if kind == "contained" and self.options.validate_contains == "IGNORE":
            return
        frame = Frame(resource, location, parent, kind)
        if kind == "entry":
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
        if plan.contained_base:
            self.validate_resource(resource, location, profiles, frame)
        elif profiles:
            self.validate_resource(resource, location, profiles, frame, base=False)
        for allowed in choices:
            self.check_profile_choice(resource, location, frame, kind, allowed)

    def check_profile_choice(
        self, resource: dict, location: str, frame: Frame, kind: str, allowed: tuple[str, ...]
    ) -> None:
        """A nested resource whose type lists several profiles must conform to one of them; as in
        HL7's validator, the candidates' own findings are not reported, only a failure to match any."""
        matched = 0
        for url in allowed:
            structure = self.validator.structure(url)
            if structure is None or structure.type != resource.get("resourceType"):
                continue
            found = self.collect(
                lambda url=url: self.validate_resource(resource, location, [url], frame, base=False)
            )
            matched += not any(i.is_error for i in found)
        if not matched:
            self.add_one(
                self.issue(
                    "error",
                    "invalid",
                    location,
                    "BUNDLE_BUNDLE_ENTRY_MULTIPLE_PROFILES_NO_MATCH",
                    f"The {kind} resource did not match any of the allowed profiles "
                    f"(Type {resource.get('resourceType')}: {', '.join(allowed)})",
                )
            )


_HERE = "\x00here\x00"  # stands for the value's own location in remembered messages


def _freeze(value: Any, depth: int = 0) -> Any:
    """A hashable copy of a small JSON value, or None when it holds extensions or primitive
    extras (``_x``: their validation depends on context) or is too deep to be worth it."""
    if type(value) is not dict or depth > 3:
        return None
    out = []
    for key, item in value.items():
        if key[0] == "_" or key == "extension" or key == "modifierExtension":
            return None
        kind = type(item)
        if kind is str:
            out.append((key, item))
        elif kind is list:
            frozen = []
            for element in item:
                if type(element) is str:
                    frozen.append(element)
                else:
                    inner = _freeze(element, depth + 1)
                    if inner is None:
                        return None
                    frozen.append(inner)
            out.append((key, ("[", *frozen)))
        elif kind is dict:
            inner = _freeze(item, depth + 1)
            if inner is None:
                return None
            out.append((key, inner))
        elif kind in (bool, int, float) or item is None:
            out.append((key, (kind, item)))  # True and 1 must not meet in one key
        else:
            return None
    return tuple(out)


def _has_valid_choice(children: dict[str, ElementNode], obj: dict, choice: ElementNode) -> bool:
    for key in obj:
        resolved = checks.resolve_child(children, key.lstrip("_"))
        if resolved is not None and resolved[0] is choice:
            return True
    return False


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
