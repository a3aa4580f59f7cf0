"""Terminology bindings (required → error, extensible → warning) and code-system membership.

Only what can be decided offline is decided: value sets are expanded from the code systems we hold;
codes from systems we do not hold in full (SNOMED CT, LOINC …) pass without comment, as they do in
HAPI without a terminology server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.primitives import NOT_SHOWN
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.walker import Run

CODE_TYPES = frozenset({"code", "string", "uri"})
EXTENSIBLE_IN_PRACTICE = "http://hl7.org/fhir/ValueSet/ucum-vitals-common"


def check_binding(
    run: Run, node: ElementNode, type_code: str, value: Any, location: str, structure: CompiledStructure
) -> list[Issue]:
    """Binding findings for one value; a (binding, codes) pair found clean is remembered."""
    key = ("binding", node.binding, type_code, _codes_key(type_code, value))
    cache = run.validator.cache
    if key[3] is not None and cache.get(key) is True:
        return []
    found = list(_check_binding(run, node, type_code, value, location))
    if not found and key[3] is not None:
        cache[key] = True
    return found


def _codes_key(type_code: str, value: Any) -> Any:
    """The codes a binding verdict depends on, as a hashable key (None: do not cache)."""
    if type(value) is str:
        return value
    if not isinstance(value, dict):
        return None
    if type_code == "CodeableConcept":
        codings = value.get("coding")
        if not isinstance(codings, list):
            return ()
        pairs = []
        for coding in codings:
            if isinstance(coding, dict):
                system, code = coding.get("system"), coding.get("code")
                if not (system is None or type(system) is str) or not (code is None or type(code) is str):
                    return None
                pairs.append((system, code))
        return tuple(pairs)
    system, code = value.get("system"), value.get("code")
    if not (system is None or type(system) is str) or not (code is None or type(code) is str):
        return None
    return (system, code)


def _check_binding(run: Run, node: ElementNode, type_code: str, value: Any, location: str) -> Iterator[Issue]:
    strength, vs_url = node.binding  # type: ignore[misc]
    if vs_url.startswith(EXTENSIBLE_IN_PRACTICE):
        strength = "extensible"  # the HL7 validator reports these R4 vital-signs unit bindings as extensible
    if strength not in ("required", "extensible"):
        return
    expansion = run.validator.terminology.expand(vs_url)
    if expansion is None:
        return
    vs_label = f"'{expansion.name}' ({expansion.label})"
    severity = "error" if strength == "required" else "warning"
    if type_code in CODE_TYPES:
        if not isinstance(value, str):
            return
        verdict = expansion.contains(None, value)
        shown = f"'{value}'" if type_code != "string" else NOT_SHOWN  # strings may be free text
        if verdict is False and strength == "required":
            yield run.issue(
                "error",
                "not-found",
                location,
                "UNABLE_TO_INFER_CODESYSTEM",
                f"The System URI could not be determined for the code {shown} in the ValueSet "
                f"'{expansion.label}'",
            )
            yield run.issue(
                "error",
                "code-invalid",
                location,
                "Terminology_TX_NoValid_16",
                f"The value provided ({shown}) was not found in the value set {vs_label}, and a "
                "code is required "
                f"from this value set  (error message = The System URI could not be determined for the code "
                f"{shown} in the ValueSet '{expansion.label}')",
            )
        elif verdict is False:
            yield run.issue(
                "warning",
                "code-invalid",
                location,
                "Terminology_TX_NoValid_17",
                f"The value provided ({shown}) was not found in the value set {vs_label}, and a "
                "code should come "
                "from this value set unless it has no suitable code (note that the validator "
                "cannot judge what is suitable)",
            )
        return
    codings = _codings(type_code, value)
    if codings is None or not codings:
        return
    verdicts = [
        expansion.contains(c.get("system"), c.get("code")) for c in codings if isinstance(c.get("code"), str)
    ]
    if not verdicts or any(v is not False for v in verdicts):
        return
    shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings)
    if type_code == "CodeableConcept":
        text = (
            (
                f"None of the codings provided are in the value set {vs_label}, and a coding from "
                "this value set is "
                f"required) (codes = {shown})"
            )
            if strength == "required"
            else (
                f"None of the codings provided are in the value set {vs_label}, and a coding "
                "should come from this value "
                "set unless it has no suitable code (note that the validator cannot judge what is "
                f"suitable) (codes = {shown})"
            )
        )
        yield run.issue(
            severity,
            "code-invalid",
            location,
            "Terminology_TX_NoValid_1_CC" if strength == "required" else "Terminology_TX_NoValid_2_CC",
            text,
        )
    else:
        text = (
            f"The code provided ({shown}) was not found in the value set {vs_label}, and a code "
            "from this value set "
            f"is required: The provided code '{shown}' was not found in the value set '{expansion.label}'"
        )
        yield run.issue(
            severity,
            "code-invalid",
            location,
            "Terminology_TX_Confirm_4a" if strength == "required" else "Terminology_TX_Confirm_5",
            text,
        )


def _codings(type_code: str, value: Any) -> list[dict] | None:
    if not isinstance(value, dict):
        return None
    if type_code == "CodeableConcept":
        codings = value.get("coding")
        return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []
    if type_code == "Coding":
        return [value]
    if type_code == "Quantity" or type_code in (
        "Age",
        "Duration",
        "Distance",
        "Count",
        "SimpleQuantity",
        "Money",
    ):
        if value.get("code") is None:
            return []
        return [{"system": value.get("system"), "code": value.get("code")}]
    return None


def check_coding_known(run: Run, value: Any, location: str) -> Issue | None:
    """A code from a code system we hold in full must exist in it, whatever the binding.

    (Codings inside a CodeableConcept are walked as Codings, so this covers them too.)
    """
    system, code = value.get("system"), value.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return None
    key = ("coding-known", system, code)
    cache = run.validator.cache
    message = cache.get(key, ...)
    if message is ...:
        message = None
        cs = run.validator.terminology.code_system(system)
        if not (cs is None or not cs.complete or not cs.displays or cs.has(code)):
            version = f" version '{cs.version}'" if cs.version else ""
            message = f"Unknown code '{code}' in the CodeSystem '{system}'{version}"
        cache[key] = message
    if message is None:
        return None
    return run.issue("error", "code-invalid", location, "Unknown_Code_in_Version", message)


def member_of(run: Run, value: Any, vs_url: str) -> bool | None:
    expansion = run.validator.terminology.expand(vs_url)
    if expansion is None:
        return None
    if isinstance(value, str):
        return expansion.contains(None, value)
    if isinstance(value, dict):
        codings = value.get("coding") if "coding" in value else [value]
        verdicts = [
            expansion.contains(c.get("system"), c.get("code")) for c in codings or () if isinstance(c, dict)
        ]
        if any(v is True for v in verdicts):
            return True
        if any(v is None for v in verdicts):
            return None
        return False
    return None
