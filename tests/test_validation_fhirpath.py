"""The compiled FHIRPath subset: same answers as fhirpathpy, three-valued logic, fallbacks, and an
invariant the engine cannot evaluate is reported (never passed silently)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from fhirpathpy import evaluate as fhirpathpy_evaluate
from fhirpathpy.models import models
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.definitions import core_definitions
from fhir_dnacpr.validation import Validator
from fhir_dnacpr.validation.fhirpath import FhirPathEngine
from fhir_dnacpr.validation.fhirpath_compiler import Env, Fallback, compile_expression
from fhir_dnacpr.validation.walker import NOT_EVALUATED

REPO = Path(__file__).resolve().parent.parent
ENGINE = FhirPathEngine()


def run(expression: str, resource: dict) -> list:
    compiled = ENGINE.compiled(expression)
    assert compiled is not None, f"{expression!r} should compile"
    return compiled([resource], Env(resource, resource, resource, None))


def consent_examples() -> list[dict]:
    return [
        json.loads(p.read_text()) for p in sorted((REPO / "profiles" / "examples").glob("consent-*.json"))
    ]


def test_paths_find_choice_values_and_skip_absent():
    ext = {"url": "x", "valueCodeableConcept": {"coding": [{"code": "a"}]}}
    assert run("value.coding.code", ext) == ["a"]
    assert run("valueString.exists()", ext) == [False]
    assert run("nothing.here", ext) == []


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{} and true", []),
        ("{} and false", [False]),
        ("{} or true", [True]),
        ("{} or false", []),
        ("false implies {}", [True]),
        ("true implies {}", []),
        ("true xor false", [True]),
        ("{} = 1", []),
        ("(1 | 2 | 2).count()", [2]),
        ("'abc'.substring(1, 1)", ["b"]),
        ("'12'.toInteger() + 1", [13]),
        ("'2024-03-01' >= '2024-01-31'", [True]),
        ("1.5 * 2 = 3.0", [True]),
        ("(1 | 2).all($this > 0)", [True]),
        ("'x' in ('x' | 'y')", [True]),
        ("iif(false, 'a', 'b')", ["b"]),
        ("'abc'.matches('^a')", [True]),
    ],
)
def test_operators_follow_fhirpath_semantics(expression: str, expected: list):
    assert run(expression, {"resourceType": "Basic"}) == expected


def test_dates_of_different_precision_fall_back_to_the_full_engine():
    compiled = compile_expression(ENGINE.parsed("a = b"))
    with pytest.raises(Fallback):
        compiled([{"a": "2024-03-01", "b": "2024-03-01T10:00:00Z"}], Env(None, None, None, None))


def test_a_string_and_a_number_are_not_comparable():
    assert run("a >= 0", {"a": "twelve"}) == []


def test_decimals_compare_exactly():
    assert run("a = 0.1", {"a": Decimal("0.1")}) == [True]
    assert run("a = 0.1", {"a": 0.1}) == [True]


def core_invariants() -> list[str]:
    expressions = set()
    for sd in core_definitions()["StructureDefinition"]:
        if sd["type"] in ("Consent", "CarePlan", "Patient", "Extension", "Reference", "Period", "Narrative"):
            for element in sd["snapshot"]["element"]:
                for constraint in element.get("constraint", ()):
                    if constraint.get("expression"):
                        expressions.add(constraint["expression"])
    for path in (REPO / "profiles").glob("StructureDefinition-*.json"):
        for element in json.loads(path.read_text()).get("differential", {}).get("element", ()):
            for constraint in element.get("constraint", ()):
                expressions.add(constraint["expression"])
    return sorted(expressions)


@pytest.mark.parametrize("expression", core_invariants())
def test_compiled_invariants_agree_with_fhirpathpy(expression: str):
    compiled = ENGINE.compiled(expression)
    if compiled is None:
        pytest.skip("outside the compiled subset: fhirpathpy evaluates it")
    # every expression is evaluated on each Consent example: both engines must agree on any input
    for consent in consent_examples():
        try:
            ours = compiled([consent], Env(consent, consent, consent, None))
        except Fallback:
            continue
        try:
            theirs = fhirpathpy_evaluate(
                consent, expression, {"resource": consent, "rootResource": consent}, models["r4"]
            )
        except Exception:
            continue  # fhirpathpy cannot evaluate it either (e.g. FHIR host functions)
        assert ours == theirs, (expression, consent["id"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "date", "indefinite"]), max_size=4),
)
def test_review_date_invariant_matches_fhirpathpy(parts: list[str]):
    expression = "extension.where(url = 'date').exists() != extension.where(url = 'indefinite').exists()"
    ext = {"url": "https://example.org/x", "extension": [{"url": p, "valueString": "v"} for p in parts]}
    assert run(expression, ext) == fhirpathpy_evaluate(ext, expression, {}, models["r4"])


def test_an_invariant_that_cannot_be_evaluated_is_reported_not_passed():
    validator = Validator()
    validator.add_definition(
        {
            "resourceType": "StructureDefinition",
            "url": "http://example.org/fhir/StructureDefinition/Odd",
            "name": "Odd",
            "status": "active",
            "kind": "resource",
            "abstract": False,
            "type": "Basic",
            "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Basic",
            "differential": {
                "element": [
                    {
                        "id": "Basic",
                        "path": "Basic",
                        "constraint": [
                            {
                                "key": "odd-1",
                                "severity": "error",
                                "human": "uses a function no engine here knows",
                                "expression": "code.noSuchFunction()",
                            }
                        ],
                    }
                ]
            },
        }
    )
    issues = validator.validate(
        {"resourceType": "Basic", "code": {"text": "x"}}, "http://example.org/fhir/StructureDefinition/Odd"
    )
    flagged = [i for i in issues if i.message_id == NOT_EVALUATED]
    assert flagged and flagged[0].severity.value == "warning" and "odd-1" in flagged[0].message
    assert not [i for i in issues if i.is_error]
