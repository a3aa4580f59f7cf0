"""FHIRPath invariants: fhirpathpy plus the FHIR-specific functions it lacks, and native fast paths.

Expressions are parsed once and cached. The FHIR functions fhirpathpy does not implement
(``hasValue``, ``memberOf``, ``conformsTo``, ``resolve``, ``htmlChecks``, ``getValue`` …) are added
through its user-invocation hook and call back into the running validation (terminology, reference
resolution, profile checks). The handful of invariants that sit on nearly every element or resource
(ext-1, dom-2/4/5/6) are evaluated natively: they dominate run time otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from fhirpathpy import apply_parsed_path
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from fhirpathpy.parser import parse

from fhir_dnacpr.validation.fhirpath_compiler import Env, Fallback, Unsupported, compile_expression

log = logging.getLogger(__name__)
R4_MODEL = models["r4"]


class Host(Protocol):
    """What FHIRPath functions need from the running validation."""

    def member_of(self, value: Any, value_set: str) -> bool | None: ...

    def conforms_to(self, resource: Any, profile: str) -> bool: ...

    def resolve_reference(self, reference: str) -> dict | None: ...


def _ext_1(ext: Any) -> bool:
    """ext-1: an extension has either nested extensions or a value, not both and not neither."""
    if not isinstance(ext, dict):
        return True
    has_value = False
    for key in ext:
        if key.startswith("value"):
            has_value = True
            break
    return bool(ext.get("extension")) != has_value


def _contained(resource: dict) -> list[dict]:
    return [c for c in resource.get("contained", ()) if isinstance(c, dict)]


NATIVE: dict[str, Callable[[Any], bool]] = {
    "extension.exists() != value.exists()": lambda ext: _ext_1(ext),
    "contained.contained.empty()": lambda r: not any(c.get("contained") for c in _contained(r)),
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": lambda r: (
        not any(
            isinstance(c.get("meta"), dict) and ("versionId" in c["meta"] or "lastUpdated" in c["meta"])
            for c in _contained(r)
        )
    ),
    "contained.meta.security.empty()": lambda r: (
        not any(isinstance(c.get("meta"), dict) and c["meta"].get("security") for c in _contained(r))
    ),
    "text.`div`.exists()": lambda r: isinstance(r.get("text"), dict) and "div" in r["text"],
    # ref-1 needs %rootResource: see ``check``; per-1 compares two dateTimes of equal precision
    "start.hasValue().not() or end.hasValue().not() or (start <= end)": lambda p: _period_ok(p),
    "policy.exists() or policyRule.exists()": lambda c: bool(c.get("policy")) or "policyRule" in c,
}
for _code in ("patient-privacy", "research", "adr", "treatment"):
    NATIVE[
        f"patient.exists() or scope.coding.where(system='something' and code='{_code}').exists().not()"
    ] = lambda c, _code=_code: (
        "patient" in c
        or not any(
            isinstance(x, dict) and x.get("system") == "something" and x.get("code") == _code
            for x in ((c.get("scope") or {}).get("coding") or [])
        )
    )
REF_1 = (
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))"
)


def ref_1(reference_value: Any, root_resource: Any) -> bool:
    """ref-1: a local reference ('#id') must point at a contained resource of the root resource."""
    reference = reference_value.get("reference") if isinstance(reference_value, dict) else None
    if not isinstance(reference, str) or not reference.startswith("#") or reference == "#":
        return True  # "#" is the container itself
    contained = root_resource.get("contained") if isinstance(root_resource, dict) else None
    return any(isinstance(c, dict) and c.get("id") == reference[1:] for c in contained or ())


#: Native checks that also need %rootResource.
NATIVE_WITH_ROOT: dict[str, Callable[[Any, Any], bool]] = {REF_1: ref_1}
USER_FUNCTIONS = ("hasValue", "getValue", "memberOf", "conformsTo", "resolve", "htmlChecks", "htmlchecks")


def _period_ok(period: Any) -> bool:
    if not isinstance(period, dict):
        return True
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) or not isinstance(end, str) or len(start) != len(end):
        return True  # different precisions: leave undecided rather than guess
    return start <= end


#: Invariants the HL7 validator does not evaluate from FHIRPath (done in code, or narrative checks).
SKIPPED_KEYS = frozenset({"dom-3", "ele-1", "txt-1", "txt-2"})


_NOT_COMPILED = object()


class FhirPathEngine:
    """Evaluates invariants: native fast paths, then the compiled subset, then fhirpathpy."""

    def __init__(self) -> None:
        self._parsed: dict[str, Any] = {}
        self._compiled: dict[str, Any] = {}

    def compiled(self, expression: str) -> Any:
        """The compiled closure for an expression, or None when it is outside the subset."""
        found = self._compiled.get(expression, _NOT_COMPILED)
        if found is _NOT_COMPILED:
            try:
                found = compile_expression(self.parsed(expression))
            except Unsupported as exc:
                log.debug("FHIRPath %r not compiled: %s", expression, exc)
                found = None
            except Exception as exc:  # unparseable: fhirpathpy reports it when evaluating
                log.debug("FHIRPath %r not parsed: %s", expression, exc)
                found = None
            self._compiled[expression] = found
        return found

    def parsed(self, expression: str) -> Any:
        tree = self._parsed.get(expression)
        if tree is None:
            tree = parse(expression)
            self._parsed[expression] = tree
        return tree

    def evaluate(
        self,
        expression: str,
        data: Any,
        type_path: str,
        resource: Any,
        root_resource: Any,
        host: Host,
        extra_options: dict | None = None,
    ) -> list[Any]:
        is_resource = isinstance(data, dict) and "resourceType" in data
        node = data if is_resource else ResourceNode.create_node(data, type_path)
        variables = {"resource": resource, "rootResource": root_resource, "context": node}
        options: dict[str, Any] = {"traceFn": _no_trace, **(extra_options or {})}
        if any(name in expression for name in USER_FUNCTIONS):
            options["userInvocationTable"] = _user_functions(host)
        return apply_parsed_path(node, self.parsed(expression), variables, R4_MODEL, options)

    def selects(self, expression: str, resource: Any, target: Any, host: Host) -> bool:
        """Is ``target`` (by identity) among the nodes ``expression`` selects from ``resource``?"""
        compiled = self.compiled(expression)
        if compiled is not None:
            try:
                return any(n is target for n in compiled([resource], Env(resource, resource, resource, host)))
            except Fallback:
                pass
        try:
            nodes = self.evaluate(expression, resource, "", resource, resource, host, {"returnRawData": True})
        except Exception as exc:
            log.debug("FHIRPath %r not evaluated: %s", expression, exc)
            return True
        return any(getattr(n, "data", n) is target for n in nodes)

    def check(
        self,
        expression: str,
        data: Any,
        type_path: str,
        resource: Any,
        root_resource: Any,
        host: Host,
        context_type: str | None = None,
    ) -> bool | None:
        """True/False like HL7's evaluateToBoolean; None when the engine cannot evaluate it."""
        native = NATIVE.get(expression)
        if native is not None:
            return native(data)
        if expression == REF_1:
            return ref_1(data, root_resource)
        compiled = self.compiled(expression)
        result = None
        if compiled is not None:
            try:
                result = compiled([data], Env(resource, root_resource, data, host, context_type))
            except Fallback:
                result = None
        if result is None:
            try:
                result = self.evaluate(expression, data, type_path, resource, root_resource, host)
            except Exception as exc:
                log.debug("FHIRPath %r not evaluated: %s", expression, exc)
                return None
        if len(result) == 1 and isinstance(result[0], bool):
            return result[0]
        return True  # empty or non-boolean results do not fail an invariant (HL7 engine behaviour)


def _no_trace(*_args: Any) -> None:
    """FHIRPath trace() output is not wanted on stdout."""


def _primitive(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _user_functions(host: Host) -> dict[str, dict[str, Any]]:
    def has_value(inputs: list[Any]) -> bool:
        return len(inputs) == 1 and _primitive(inputs[0])

    def get_value(inputs: list[Any]) -> list[Any]:
        return [i for i in inputs if _primitive(i)][:1]

    def member_of(inputs: list[Any], value_set: Any) -> list[bool]:
        if len(inputs) != 1:
            return []
        url = value_set[0] if isinstance(value_set, list) and value_set else value_set
        verdict = host.member_of(inputs[0], str(url))
        return [True] if verdict is None else [verdict]

    def conforms_to(inputs: list[Any], profile: Any) -> list[bool]:
        url = profile[0] if isinstance(profile, list) and profile else profile
        return [all(host.conforms_to(i, str(url)) for i in inputs)] if inputs else []

    def resolve(inputs: list[Any]) -> list[Any]:
        found = []
        for item in inputs:
            reference = item.get("reference") if isinstance(item, dict) else item
            if isinstance(reference, str):
                target = host.resolve_reference(reference)
                if target is not None:
                    found.append(target)
        return found

    def always_true(inputs: list[Any], *args: Any) -> list[bool]:
        return [True]

    return {
        "hasValue": {"fn": has_value, "arity": {0: []}},
        "getValue": {"fn": get_value, "arity": {0: []}},
        "memberOf": {"fn": member_of, "arity": {1: ["String"]}},
        "conformsTo": {"fn": conforms_to, "arity": {1: ["String"]}},
        "resolve": {"fn": resolve, "arity": {0: []}},
        "htmlChecks": {"fn": always_true, "arity": {0: []}},
        "htmlchecks": {"fn": always_true, "arity": {0: []}},
    }
