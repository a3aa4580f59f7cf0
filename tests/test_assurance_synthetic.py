"""The synthetic generator that tests and the benchmark rely on: realistic, deterministic, planted."""

from __future__ import annotations

import itertools
from collections import Counter

from fhir_dnacpr.assurance.metrics import quarter_of
from fhir_dnacpr.assurance.synthetic import Generator, nhs_numbers, scenario, stream
from fhir_dnacpr.assurance.terms import default_matcher
from fhir_dnacpr.terminology.identifiers import is_valid_nhs_number


def test_nhs_numbers_are_valid_test_range_numbers() -> None:
    numbers = list(itertools.islice(nhs_numbers(), 500))
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)
    assert len(set(numbers)) == 500


def test_background_rationales_carry_no_flagged_terms() -> None:
    matcher = default_matcher()
    records = list(Generator(seed=3).background(2000))
    assert not [r.decision.rationale for r in records if matcher.find(r.decision.rationale)]  # type: ignore[union-attr]


def test_scenario_is_deterministic() -> None:
    a, b = scenario(seed=5, background=300), scenario(seed=5, background=300)
    assert a.records == b.records and a.truth == b.truth
    assert scenario(seed=6, background=300).records != a.records


def test_spring_2020_surge_is_visible() -> None:
    records = list(Generator(seed=2).background(6000))
    per_quarter = Counter(quarter_of(r.decision.decision_date) for r in records)  # type: ignore[union-attr, arg-type]
    others = [v for q, v in per_quarter.items() if q != "2020-Q2"]
    assert per_quarter["2020-Q2"] > 1.8 * (sum(others) / len(others))


def test_mostly_valid_identifiers_with_a_few_realistic_gaps() -> None:
    records = list(Generator(seed=4).background(4000))
    invalid = sum(not is_valid_nhs_number(r.decision.patient.nhs_number) for r in records)  # type: ignore[union-attr]
    no_maker = sum(r.decision.decision_maker is None for r in records)  # type: ignore[union-attr]
    assert 0 < invalid < 60 and 0 < no_maker < 100


def test_stream_yields_exactly_n_records() -> None:
    assert sum(1 for _ in stream(1234, cluster_every=500)) == 1234
