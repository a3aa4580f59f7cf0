"""Merged plans: every element definition that applies to one value, compiled into one walk.

A value in an instance is usually constrained by several definitions at once: the base resource
type, each profile in ``meta.profile``, the slices it falls into, the extension definition its
``url`` names. Walking the instance once per definition repeats the expensive part (visiting every
value, resolving JSON names, checking formats) for each of them. A ``Plan`` is the union of those
definitions (its *layers*) for one value of one type: the children of all layers merged by name,
the primitive-format variants deduplicated, the invariants grouped by expression, the value checks
(fixed/pattern, bindings, references …) listed per layer only where a layer has them. Plans are
built once per (layers, type) and cached on the validator, so the walker does no definition work.

Each layer still reports its own findings with its own wording (``from <profile>``), exactly as a
separate walk per definition would.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.validation.fhirpath import NATIVE, NATIVE_WITH_ROOT, SKIPPED_KEYS
from fhir_dnacpr.validation.structure import ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.validator import Validator

#: Value types whose findings are remembered per value (codes repeat across records).
MEMO_TYPES = frozenset({"Coding", "CodeableConcept"})
#: FHIRPath that reads beyond the value an invariant sits on.
CONTEXT_MARKERS = ("%", "resolve(", "conformsTo(", "memberOf(", "descendants(", "children(")
#: (type, format rule sets) → {string value: findings}; shared by plans with the same rules, bounded.
FORMAT_CACHES: dict[tuple, dict[str, tuple]] = {}
SYSTEM_PRIMITIVES = frozenset({"string", "boolean", "integer", "decimal", "date", "dateTime", "time"})
PRIMITIVE, RESOURCE, COMPLEX = 0, 1, 2


@dataclass(slots=True, eq=False)
class KeyPlan:
    """How one JSON property name resolves in each layer of the parent plan."""

    name: str  # the element's JSON name without choice suffix ("value")
    type_code: str  # concrete type ("Quantity" for valueQuantity)
    nodes: tuple[ElementNode | None, ...]  # per layer: the child definition, None where unknown
    unknown: tuple[int, ...]  # layers where the name does not resolve
    choice: bool
    base_max_one: bool
    shape_node: ElementNode | None  # first non-profile layer's node: JSON array/object shape rules
    resolved: bool  # at least one layer knows the name
    wrong_type_layers: tuple[tuple[int, ElementNode], ...] = ()  # choice present with a disallowed type
    layers: tuple[ElementNode, ...] = ()  # the distinct resolved nodes: the value's own plan layers
    complete: bool = True  # every layer resolved the name
    item_plan: Plan | None = None  # the plan for values under this name (without slices), cached
    slice_plans: dict | None = None  # matched slices → the plan with those slices as layers
    primitive: bool = False  # values are primitives (may have a "_name" sibling)
    group: GroupPlan | None = None
    direct: bool = False  # complete, not a choice, not sliced: checked and walked immediately
    underscored: str = ""  # "_name": where a primitive keeps its id/extensions
    mode: int = 0  # GENERAL | SCALAR | FAST_PRIMITIVE (see the walker)


@dataclass(slots=True, eq=False)
class GroupPlan:
    """One child element (by name) across layers: cardinality, slicing, per-layer node."""

    name: str
    per_layer: tuple[tuple[int, ElementNode], ...]  # distinct nodes, with the first layer index using each
    min_needed: int
    max_allowed: int  # sys.maxsize when unbounded
    sliced: tuple[tuple[int, ElementNode], ...]
    check_absent: bool


@dataclass(slots=True, eq=False)
class InvariantEntry:
    node: ElementNode
    constraint: dict[str, Any]
    key: str
    severity: str
    message: str
    message_id: str
    best_practice: bool


@dataclass(slots=True, eq=False)
class InvariantGroup:
    expression: str
    type_path: str
    entries: list[InvariantEntry]
    native: Any = None  # a hand-written Python check for the commonest core invariants
    native_root: Any = None  # the same, for checks that need %rootResource (ref-1)
    contextual: bool = False  # reads more than the value (%resource, resolve(), conformsTo …)


@dataclass(slots=True, eq=False)
class Plan:
    layers: tuple[ElementNode, ...]
    type_code: str
    kind: int
    child_maps: tuple[dict[str, ElementNode], ...] = ()
    keys: dict[str, KeyPlan] = field(default_factory=dict)
    groups: dict[str, GroupPlan] = field(default_factory=dict)
    required: tuple[GroupPlan, ...] = ()
    invariants: tuple[InvariantGroup, ...] = ()
    type_invariants: tuple[InvariantGroup, ...] = ()
    # complex values
    fixed_layers: tuple[ElementNode, ...] = ()
    bindings: tuple[ElementNode, ...] = ()
    enforced_binding: bool = False  # a required binding applies: it judges the codes
    reference_layers: tuple[ElementNode, ...] = ()
    profile_layers: tuple[ElementNode, ...] = ()
    quantity_layers: tuple[ElementNode, ...] = ()
    extension_node: ElementNode | None = None
    extension_plans: dict | None = None  # definition root → this plan plus that layer
    memo: bool = False  # findings depend on the value alone: remember them (see the walker)
    # primitives
    formats: tuple[tuple[bool, int | None], ...] = ()
    value_cache: dict[str, tuple] | None = None  # text value → findings (all rules are value-only)
    fast_primitive: bool = False  # no invariants: string values take the cached path
    format_only: bool = False  # only lexical rules (no fixed/pattern/min/max/binding/minLength)
    special: tuple[ElementNode, ...] = ()
    binding_required: bool = False
    min_lengths: tuple[tuple[ElementNode, int], ...] = ()
    # contained resources
    contained_base: bool = False


def build_plan(validator: Validator, layers: tuple[ElementNode, ...], type_code: str) -> Plan:
    index = validator.index
    roots = all(node is node.structure.root for node in layers)
    if type_code in SYSTEM_PRIMITIVES or index.is_primitive(type_code):
        kind = PRIMITIVE
    elif (type_code == "Resource" or index.is_resource(type_code)) and not roots:
        kind = RESOURCE
    else:
        kind = COMPLEX
    plan = Plan(layers, type_code, kind)
    if kind == RESOURCE:
        plan.contained_base = any(n.structure.derivation != "constraint" for n in layers)
        return plan
    plan.child_maps = tuple(validator.children_of(node, type_code) for node in layers)
    _build_groups(plan)
    plan.invariants = _invariant_groups(layers, type_code)
    if kind == PRIMITIVE:
        _build_primitive(plan)
    elif not (roots and layers[0].structure.kind == "resource"):
        _build_complex(validator, plan)
        plan.memo = type_code in MEMO_TYPES and not plan.profile_layers
    return plan


def _build_groups(plan: Plan) -> None:
    names: dict[str, None] = {}
    for children in plan.child_maps:
        names.update(dict.fromkeys(children))
    required = []
    for name in names:
        seen: dict[int, int] = {}
        per_layer = []
        for i, children in enumerate(plan.child_maps):
            node = children.get(name)
            if node is not None and id(node) not in seen:
                seen[id(node)] = i
                per_layer.append((i, node))
        maxes = [n.max for _, n in per_layer if n.max is not None]
        sliced = tuple((i, n) for i, n in per_layer if n.slicing is not None or n.slices)
        group = GroupPlan(
            name=name,
            per_layer=tuple(per_layer),
            min_needed=max((n.min for _, n in per_layer), default=0),
            max_allowed=min(maxes) if maxes else sys.maxsize,
            sliced=sliced,
            check_absent=any(n.min > 0 or any(s.min > 0 for s in n.slices) for _, n in per_layer),
        )
        plan.groups[name] = group
        if group.check_absent:
            required.append(group)
    plan.required = tuple(required)


#: KeyPlan.mode: how the walker handles a property (decided once per plan and name)
GENERAL, SCALAR, FAST_PRIMITIVE = 0, 1, 2


def resolve_key(plan: Plan, name: str, validator: Validator | None = None) -> KeyPlan:
    """Resolve a JSON property name against every layer (cached on the plan)."""
    from fhir_dnacpr.validation.checks import choice_for, resolve_child

    nodes: list[ElementNode | None] = []
    unknown = []
    wrong_type = []
    type_code = ""
    first = None
    shape_node = None
    for i, children in enumerate(plan.child_maps):
        resolved = resolve_child(children, name)
        if resolved is None:
            nodes.append(None)
            unknown.append(i)
            choice = choice_for(children, name)
            if choice is not None:
                wrong_type.append((i, choice))
            continue
        child, child_type = resolved
        nodes.append(child)
        if first is None:
            first, type_code = child, child_type
        if shape_node is None and child.structure.derivation != "constraint":
            shape_node = child
    key_plan = KeyPlan(
        name=first.name if first is not None else name,
        type_code=type_code,
        nodes=tuple(nodes),
        unknown=tuple(unknown),
        choice=first.choice if first is not None else False,
        base_max_one=first.base_max_one if first is not None else True,
        shape_node=shape_node,
        resolved=first is not None,
        wrong_type_layers=tuple(wrong_type),
        layers=tuple(dict.fromkeys(n for n in nodes if n is not None)),
        complete=not unknown,
    )
    key_plan.primitive = key_plan.resolved and _is_primitive(type_code)
    key_plan.group = plan.groups.get(key_plan.name)
    key_plan.direct = (
        key_plan.complete
        and key_plan.group is not None
        and not key_plan.group.sliced
        and (key_plan.choice or key_plan.name == name)
    )
    key_plan.underscored = "_" + name
    if validator is not None and key_plan.layers:
        key_plan.item_plan = validator.plan(key_plan.layers, type_code)
        group = key_plan.group
        if key_plan.direct and not key_plan.choice and group.min_needed <= 1 and group.max_allowed >= 1:
            fast = key_plan.item_plan.kind == PRIMITIVE and key_plan.item_plan.fast_primitive
            key_plan.mode = FAST_PRIMITIVE if fast and key_plan.base_max_one else SCALAR
    plan.keys[name] = key_plan
    return key_plan


def _is_primitive(type_code: str) -> bool:
    from fhir_dnacpr.definitions.elements import type_index

    return type_code in SYSTEM_PRIMITIVES or type_index().is_primitive(type_code)


def _invariant_groups(
    layers: tuple[ElementNode, ...], type_code: str, skip_for: tuple[ElementNode, ...] = ()
) -> tuple[InvariantGroup, ...]:
    groups: dict[str, InvariantGroup] = {}
    seen: set[tuple[int, str]] = set()
    for node in layers:
        for constraint in node.constraints:
            key = constraint.get("key", "")
            expression = constraint.get("expression")
            if not expression or key in SKIPPED_KEYS:
                continue
            if skip_for and all(key in _own_keys(other) for other in skip_for):
                continue  # every layer checks this key itself (type-level invariants)
            if (id(node.structure), key) in seen:
                continue
            seen.add((id(node.structure), key))
            group = groups.get(expression)
            if group is None:
                structure = node.structure
                type_path = node.path if structure.kind == "resource" or "." in node.path else type_code
                group = groups[expression] = InvariantGroup(
                    expression,
                    type_path,
                    [],
                    NATIVE.get(expression),
                    NATIVE_WITH_ROOT.get(expression),
                    any(marker in expression for marker in CONTEXT_MARKERS),
                )
            group.entries.append(_invariant_entry(node, constraint, key))
    return tuple(groups.values())


def _own_keys(node: ElementNode) -> frozenset[str]:
    return frozenset(c.get("key") for c in node.constraints)


def _invariant_entry(node: ElementNode, constraint: dict[str, Any], key: str) -> InvariantEntry:
    message = f"Constraint failed: {key}: '{constraint.get('human', '')}'"
    source = constraint.get("source")
    structure = node.structure
    if source and source != structure.url and not source.endswith("/" + structure.type):
        message += f" (defined in {source})"
    best_practice = bool(constraint.get("bestPractice")) or any(
        e.get("url", "").endswith("elementdefinition-bestpractice") and e.get("valueBoolean")
        for e in constraint.get("extension", ())
    )
    return InvariantEntry(
        node=node,
        constraint=constraint,
        key=key,
        severity=constraint.get("severity", "error"),
        message=message,
        message_id=f"{source or structure.url}#{key}",
        best_practice=best_practice,
    )


def _build_primitive(plan: Plan) -> None:
    formats: dict[tuple[bool, int | None], None] = {}
    special: list[ElementNode] = []
    min_lengths = []
    for node in plan.layers:
        structure = node.structure
        min_length = structure.definition.get("_min_length", {}).get(node.id)
        if min_length:
            min_lengths.append((node, min_length))
        if node.binding and node.binding[0] == "required":
            plan.binding_required = True
        if node.path.endswith(".id") and node.path.count(".") == 1 and structure.kind == "resource":
            continue  # Resource.id: checked with the resource (HL7 'Invalid Resource id' messages)
        core = bool(structure.definition.get("_core", False)) and plan.type_code == "dateTime"  # TZ rule only
        formats[(core, node.max_length)] = None
        if node.fixed or node.pattern or node.min_value or node.max_value or node.binding:
            special.append(node)
    plan.formats = tuple(formats)
    plan.special = tuple(_distinct_bindings(special))
    plan.min_lengths = tuple(min_lengths)
    plan.format_only = not plan.special and not plan.min_lengths
    if plan.special or plan.min_lengths:
        plan.value_cache = {}
    else:  # format rules only: share the cache with every plan that has the same rules
        plan.value_cache = FORMAT_CACHES.setdefault((plan.type_code, plan.formats), {})
    plan.fast_primitive = not plan.invariants


def _distinct_bindings(nodes: list[ElementNode]) -> list[ElementNode]:
    """Layers whose only extra rule is a binding already listed add nothing (same message)."""
    out = []
    bindings_seen: set[tuple[str, str]] = set()
    for node in nodes:
        only_binding = not (node.fixed or node.pattern or node.min_value or node.max_value)
        if only_binding and node.binding in bindings_seen:
            continue
        if node.binding:
            bindings_seen.add(node.binding)
        out.append(node)
    return out


def _distinct_reference_layers(layers: tuple[ElementNode, ...]) -> tuple[ElementNode, ...]:
    """A profile layer whose reference rules equal a base layer's adds only duplicate messages."""

    def rules(node: ElementNode) -> tuple:
        return tuple((t.code, t.target_profiles, t.aggregation) for t in node.types)

    base_rules = {rules(n) for n in layers if n.structure.derivation != "constraint"}
    return tuple(n for n in layers if n.structure.derivation != "constraint" or rules(n) not in base_rules)


def _build_complex(validator: Validator, plan: Plan) -> None:
    type_code = plan.type_code
    plan.fixed_layers = tuple(
        n
        for n in plan.layers
        if (n.fixed is not None and isinstance(n.fixed[1], dict))
        or (n.pattern is not None and isinstance(n.pattern[1], dict))
    )
    bindings: dict[tuple[str, str], ElementNode] = {}
    for node in plan.layers:
        if node.binding is not None and node.binding not in bindings:
            bindings[node.binding] = node
    plan.bindings = tuple(bindings.values())
    plan.enforced_binding = any(strength == "required" for strength, _vs in bindings)
    if type_code == "Reference":
        plan.reference_layers = _distinct_reference_layers(plan.layers)
    elif type_code == "Extension":
        plan.extension_node = next(
            (n for n in plan.layers if n.name in ("extension", "modifierExtension")), None
        )
    elif type_code == "Quantity":
        plan.quantity_layers = tuple(n for n in plan.layers if n.min_value or n.max_value)
    if type_code not in ("Extension", "Reference", "Resource"):
        plan.profile_layers = tuple(
            n for n in plan.layers if any(t.code == type_code and t.profiles for t in n.types)
        )
    type_structure = validator.type_structure(type_code)
    if type_structure is not None and type_structure.root.constraints:
        root = type_structure.root
        outside = tuple(n for n in plan.layers if n.structure is not type_structure)
        if outside:
            plan.type_invariants = _invariant_groups((root,), type_code, skip_for=outside)
