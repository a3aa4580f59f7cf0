"""Element-level constraint checks, one small generator per kind of constraint.

Each function looks at one element (node of the compiled profile + instance value) and yields
``Issue`` objects; none of them walks further down the instance.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.primitives import (
    as_decimal,
    check_primitive,
    decodes_as_base64,
    is_valid_base64,
    shown_value,
    text_of,
)
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.plan import Plan
    from fhir_dnacpr.validation.walker import Item, Run

ELE1_MESSAGE = (
    "Constraint failed: ele-1: 'All FHIR elements must have a @value or children' "
    "(defined in http://hl7.org/fhir/StructureDefinition/Element)"
)
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def resolve_child(children: dict[str, ElementNode], name: str) -> tuple[ElementNode, str] | None:
    """JSON property name → (child node, concrete type code); choice-aware."""
    child = children.get(name)
    if child is not None and not child.choice:
        return child, (child.types[0].code if child.types else "")
    for child in children.values():
        if child.choice and name.startswith(child.name) and len(name) > len(child.name):
            suffix = name[len(child.name) :]
            if suffix[:1].isupper():
                type_ref = child.type_for_suffix(suffix)
                if type_ref is not None:
                    return child, type_ref.code
    return None


def choice_for(children: dict[str, ElementNode], name: str) -> ElementNode | None:
    for child in children.values():
        if (
            child.choice
            and name.startswith(child.name)
            and name[len(child.name) : len(child.name) + 1].isupper()
        ):
            return child
    return None


def unknown_property(
    run: Run,
    children: dict[str, ElementNode],
    name: str,
    obj: dict,
    location: str,
    structure: CompiledStructure,
) -> Iterator[Issue]:
    for child in children.values():
        if (
            child.choice
            and name.startswith(child.name)
            and name[len(child.name) : len(child.name) + 1].isupper()
        ):
            suffix = name[len(child.name) :]
            known_type = suffix[:1].lower() + suffix[1:]
            allowed = ", ".join(t.code for t in child.types)
            if run.validator.type_structure(known_type) or run.validator.type_structure(suffix):
                yield run.issue(
                    "error",
                    "structure",
                    f"{location}.{child.name}.ofType({known_type})",
                    "Validation_VAL_Profile_WrongType",
                    f"The Profile '{structure.versioned_url}' definition allows for the type "
                    f"{allowed} but found type {known_type}",
                )
            else:
                yield run.issue(
                    "error",
                    "structure",
                    location,
                    "Validation_VAL_Profile_NoType",
                    f"The type of element {name} is not known - it could not be determined from "
                    "the information "
                    f"available. Valid types at this point are {allowed}",
                )
            return
    yield run.issue(
        "error", "structure", location, "Unrecognised_property_", f"Unrecognized property '{name}'"
    )


def json_shape(
    run: Run, child: ElementNode, name: str, value: Any, extra: Any, location: str
) -> Iterator[Issue]:
    """Arrays where the definition repeats, single values where it does not, no empty arrays."""
    if child.structure.derivation == "constraint":
        return
    if getattr(value, "from_xml", False):
        return  # repeated single-valued XML element: reported as a cardinality problem only
    many = not child.base_max_one
    for candidate, key in ((value, name), (extra, "_" + name)):
        if candidate is None:
            continue
        if isinstance(candidate, list):
            if not many:
                yield run.issue(
                    "error",
                    "invalid",
                    f"{location}.{child.name}",
                    "This_property_must_be_an_simple_value_not_an_array",
                    f"The property {key} must be a JSON Object, not an Array (at {location})",
                )
            elif not candidate:
                yield run.issue(
                    "error",
                    "invalid",
                    f"{location}.{child.name}",
                    "Array_cannot_be_empty",
                    "Array cannot be empty - the property should not be present if it has no values",
                )
        elif many:
            yield run.issue(
                "error",
                "invalid",
                f"{location}.{child.name}",
                "This_property_must_be_an_Array_not_an_Object",
                f"The property {key} must be a JSON Array, not an Object (at {location})",
            )


def cardinality(
    run: Run, node: ElementNode, found: list[Item], location: str, structure: CompiledStructure
) -> Iterator[Issue]:
    count = len(found)
    owner = node.structure
    label = _path_label(node)
    if count < node.min:
        yield run.issue(
            "error",
            "structure",
            location,
            "Validation_VAL_Profile_Minimum",
            f"{label}: minimum required = {node.min}, but only found {count} (from {owner.versioned_url})",
        )
    if node.max is not None and count > node.max:
        yield run.issue(
            "error",
            "structure",
            location,
            "Validation_VAL_Profile_Maximum",
            f"{label}: max allowed = {node.max}, but found {count} (from {owner.versioned_url})",
        )


def _path_label(node: ElementNode) -> str:
    return node.id


def ele1(run: Run, location: str) -> Issue:
    return run.issue(
        "error", "invariant", location, "http://hl7.org/fhir/StructureDefinition/Element#ele-1", ELE1_MESSAGE
    )


_NO_ISSUES: list[Issue] = []


def primitive_merged(run: Run, plan: Plan, item: Item) -> list[Issue]:
    """All layers' checks of one primitive value: format once per distinct rule set, then the
    per-layer rules (fixed/pattern, min/max, bindings) where a layer has them. (The walker
    remembers the outcome per string value: it depends on nothing else.)"""
    value, extra, location = item.value, item.extra, item.location
    out: list[Issue] | None = None
    if extra is not None and not isinstance(extra, dict):
        out = [
            run.issue(
                "error",
                "structure",
                location,
                "UNRECOGNISED_PROPERTY_TYPE",
                f"Invalid JSON type for _{item.key}; expected an object",
            )
        ]
        extra = None
    if value is None or value == "":
        out = out or []
        if value == "":
            out.append(
                run.issue(
                    "error",
                    "invalid",
                    location,
                    "Type_Specific_Checks_DT_Primitive_NotEmpty",
                    "value cannot be empty",
                )
            )
        elif not extra:
            out.append(
                run.issue(
                    "error",
                    "invalid",
                    location,
                    "Type_Specific_Checks_DT_Primitive_ValueExt",
                    "Primitive types must have a value or must have child extensions",
                )
            )
        if not extra or not any(k != "id" for k in extra):
            out.append(ele1(run, location))
        if plan.binding_required and value is None:
            out.append(
                run.issue(
                    "error",
                    "code-invalid",
                    location,
                    "Terminology_TX_Code_ValueSet_MISSING",
                    "No code provided, and a code is required from the value set",
                )
            )
        return out
    type_code = item.type_code
    for _node, min_length in plan.min_lengths:
        if len(text_of(value)) < min_length:
            out = out or []
            out.append(
                run.issue(
                    "error",
                    "invalid",
                    location,
                    "PRIMITIVE_TOO_SHORT",
                    f"Value is shorter than permitted minimum length of {min_length}",
                )
            )
    for core, max_length in plan.formats:
        for severity, code, message_id, message in check_primitive(
            type_code, value, core=core, max_length=max_length
        ):
            out = out or []
            out.append(run.issue(severity, code, location, message_id, message))
    if plan.special:
        from fhir_dnacpr.validation.bindings import check_binding

        out = out or []
        for node in plan.special:
            out.extend(_fixed_primitive(run, node, value, location, node.structure, type_code))
            out.extend(_min_max_primitive(run, node, type_code, value, location))
            if node.binding is not None:
                out.extend(check_binding(run, node, type_code, value, location, node.structure))
    return out if out is not None else _NO_ISSUES


def _fixed_primitive(
    run: Run, node: ElementNode, value: Any, location: str, structure: CompiledStructure, type_code: str = ""
) -> Iterator[Issue]:
    for kind, spec in (("fixed", node.fixed), ("pattern", node.pattern)):
        if spec is None or isinstance(spec[1], dict | list):
            continue
        expected = spec[1]
        if text_of(expected) != text_of(value):
            shown = shown_value(type_code, value)
            yield run.issue(
                "error",
                "value",
                location,
                "Profile_VAL_Fixed" if kind == "fixed" else "Profile_VAL_Pattern",
                f"Value is {shown} but is required to be "
                f"'{text_of(expected)}' in the profile {node.structure.versioned_url}#{node.id}"
                if kind == "pattern"
                else f"Value is {shown} but is fixed to '{text_of(expected)}' in the profile "
                f"{node.structure.url}#{node.id}",
            )


def _min_max_primitive(
    run: Run, node: ElementNode, type_code: str, value: Any, location: str
) -> Iterator[Issue]:
    if node.max_value and not isinstance(node.max_value[1], dict) and _compare(value, node.max_value[1]) == 1:
        label = (
            "decimal"
            if type_code == "decimal"
            else "integer"
            if type_code in ("integer", "positiveInt", "unsignedInt")
            else "value"
        )
        shown = (
            f"DecimalType[{text_of(node.max_value[1])}]"
            if node.max_value[0] == "Decimal"
            else text_of(node.max_value[1])
        )
        yield run.issue(
            "error",
            "invalid",
            location,
            "Type_Specific_Checks_DT_Decimal_GT",
            f"{label} value is greater than permitted maximum value of {shown}",
        )
    if (
        node.min_value
        and not isinstance(node.min_value[1], dict)
        and _compare(value, node.min_value[1]) == -1
    ):
        label = (
            "decimal"
            if type_code == "decimal"
            else "integer"
            if type_code in ("integer", "positiveInt", "unsignedInt")
            else "value"
        )
        shown = (
            f"DecimalType[{text_of(node.min_value[1])}]"
            if node.min_value[0] == "Decimal"
            else text_of(node.min_value[1])
        )
        yield run.issue(
            "error",
            "invalid",
            location,
            "Type_Specific_Checks_DT_Decimal_LT",
            f"{label} value is less than permitted minimum value of {shown}",
        )


def _compare(value: Any, limit: Any) -> int | None:
    left, right = as_decimal(value), as_decimal(limit)
    if left is not None and right is not None:
        return (left > right) - (left < right)
    if isinstance(value, str) and isinstance(limit, str):
        return (value > limit) - (value < limit)
    return None


def fixed_and_pattern(
    run: Run, node: ElementNode, value: dict, location: str, structure: CompiledStructure
) -> Iterator[Issue]:
    if node.fixed is not None and isinstance(node.fixed[1], dict):
        yield from _compare_fixed(run, node.fixed[1], value, location, node)
    if (
        node.pattern is not None
        and isinstance(node.pattern[1], dict)
        and not matches_pattern(node.pattern[1], value)
    ):
        yield run.issue(
            "error",
            "value",
            location,
            "Profile_VAL_Pattern",
            f"The pattern [{_short(node.pattern[1])}] defined in the profile "
            f"{node.structure.versioned_url} "
            f"not found. Issues: value does not match pattern",
        )


#: Element names whose values are codes/URIs (safe to quote); anything else may be free text.
_FIXED_KEY_TYPES = {"system": "uri", "code": "code", "version": "code", "url": "uri", "use": "code"}


def _compare_fixed(run: Run, fixed: dict, value: dict, location: str, node: ElementNode) -> Iterator[Issue]:
    for key, expected in fixed.items():
        if key not in value:
            yield run.issue(
                "error",
                "value",
                location,
                "Profile_VAL_MissingElement",
                f"Missing element '{key}' - required by fixed value assigned in profile {node.structure.url}",
            )
        elif isinstance(expected, dict) and isinstance(value[key], dict):
            yield from _compare_fixed(run, expected, value[key], f"{location}.{key}", node)
        elif expected != value[key]:
            yield run.issue(
                "error",
                "value",
                f"{location}.{key}",
                "Profile_VAL_Fixed",
                f"Value is {shown_value(_FIXED_KEY_TYPES.get(key, ''), value[key])} but is fixed to "
                f"'{expected}' in the profile {node.structure.url}",
            )
    for key in value:
        if key not in fixed and key not in ("id", "extension"):
            yield run.issue(
                "error",
                "value",
                f"{location}.{key}",
                "Profile_VAL_NotAllowed",
                f"The element {key} is present in the instance but not allowed in the applicable "
                "fixed value specified in profile",
            )


def matches_pattern(pattern: Any, value: Any) -> bool:
    """FHIR pattern semantics: every element in the pattern must be present with equal value;
    arrays in the pattern must each match some item of the instance array."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if key not in value:
                return False
            actual = value[key]
            if type(sub) is str and type(actual) is str:
                if sub != actual:
                    return False
            elif not matches_pattern(sub, actual):
                return False
        return True
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        for sub in pattern:
            for actual in items:
                if matches_pattern(sub, actual):
                    break
            else:
                return False
        return True
    if type(pattern) is str and type(value) is str:
        return pattern == value
    return text_of(pattern) == text_of(value)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        coding = value.get("coding")
        if isinstance(coding, list) and coding:
            return ", ".join(f"{c.get('system')}#{c.get('code')}" for c in coding if isinstance(c, dict))
        if "system" in value or "code" in value:
            return f"{value.get('system')}#{value.get('code')}"
    return str(value)


def attachment(run: Run, value: dict, location: str) -> Iterator[Issue]:
    data = value.get("data")
    if isinstance(data, str) and data and is_valid_base64(data):
        problem = decodes_as_base64(data)
        if problem:
            yield run.issue(
                "error",
                "structure",
                location,
                "TYPE_SPECIFIC_CHECKS_DT_ATT_B64_DECODE_FAIL",
                f"The base64 content in the data element is not valid base64: {problem}",
            )
            return
    elif isinstance(data, str) and data:
        return
    size = value.get("size")
    if isinstance(data, str) and data and isinstance(size, int) and not isinstance(size, bool):
        compact = "".join(data.split())
        actual = len(base64.b64decode(compact + "=" * (-len(compact) % 4)))
        if actual != size:
            yield run.issue(
                "error",
                "structure",
                location,
                "TYPE_SPECIFIC_CHECKS_DT_ATT_SIZE_CORRECT",
                f"Stated Attachment Size {size} does not match actual attachment size {actual}",
            )


_UCUM_MASS = {"g": 1, "kg": 1000, "mg": 0.001, "ug": 0.000001}


def quantity_range(run: Run, node: ElementNode, value: dict, location: str) -> Iterator[Issue]:
    amount = as_decimal(value.get("value"))
    if amount is None:
        return
    for limit, sign, word in ((node.min_value, -1, "less"), (node.max_value, 1, "greater")):
        if not limit or not isinstance(limit[1], dict):
            continue
        bound = as_decimal(limit[1].get("value"))
        if bound is None:
            continue
        unit, bound_unit = value.get("code"), limit[1].get("code")
        converted = amount
        note = ""
        if unit != bound_unit:
            if unit in _UCUM_MASS and bound_unit in _UCUM_MASS:
                converted = amount * as_decimal(_UCUM_MASS[unit]) / as_decimal(_UCUM_MASS[bound_unit])
                note = " after UCUM conversion"
            else:
                continue
        if (converted > bound and sign == 1) or (converted < bound and sign == -1):
            kind = "minValue" if sign == -1 else "maxValue"
            yield run.issue(
                "error",
                "invalid",
                location,
                f"TYPE_SPECIFIC_CHECKS_DT_QTY_{'MIN' if sign == -1 else 'MAX'}_VALUE",
                f"The value in the instance ({text_of(value.get('value'))} {unit}) is {word} than "
                "the specified "
                f"{kind} ({text_of(limit[1].get('value'))} {bound_unit}){note}",
            )


def type_profiles(
    run: Run, node: ElementNode, type_code: str, item: Item, structure: CompiledStructure
) -> Iterator[Issue]:
    """Profiles on a data type (``Address`` with profile p1, p2): the value must conform to one."""
    if type_code in ("Extension", "Reference", "Resource") or not node.types:
        return
    profiles = [p for t in node.types if t.code == type_code for p in t.profiles]
    if not profiles:
        return
    outcomes = []
    for url in profiles:
        profile = run.validator.structure(url)
        if profile is None or profile.url == CORE_PREFIX + type_code:
            return
        found = run.sub_validate(item, profile)
        errors = [i for i in found if i.is_error]
        if not errors:
            run.add([i for i in found])
            return
        outcomes.append((profile, found))
    if len(outcomes) == 1:
        yield from outcomes[0][1]
        return
    yield run.issue(
        "error",
        "structure",
        item.location,
        "Validation_VAL_Profile_NoMatch",
        "Unable to find a match for the specified profile among choices: " + ", ".join(profiles),
    )
    for _, found in outcomes:
        yield from found
