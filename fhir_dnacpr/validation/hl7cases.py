"""Run the HL7 validator test cases (shared/fhir-test-cases/validator-r4) and compare error counts.

Used by ``tests/test_hl7_validator_cases.py`` and runnable directly for a per-case report:
``python -m fhir_dnacpr.validation.hl7cases [--failures] [NAME…]``.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_dnacpr.validation.files import read_resource
from fhir_dnacpr.validation.options import ValidationOptions
from fhir_dnacpr.validation.registry import iter_resources
from fhir_dnacpr.validation.validator import Validator

REPO_ROOT = Path(__file__).resolve().parents[2]


def cases_dir() -> Path:
    shared = os.environ.get("FHIR_DNACPR_SHARED")
    base = Path(shared) if shared else REPO_ROOT.parent / "shared"
    return base / "fhir-test-cases" / "validator-r4"


@dataclass
class StepResult:
    case: str
    step: str  # base | profile
    category: str
    expected: int
    actual: int
    errors: list[str]
    expected_messages: list[str]

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def _load_supporting(validator: Validator, folder: Path, files: list) -> None:
    for item in files:
        name = item["file"] if isinstance(item, dict) else item
        path = folder / name if name.startswith("files/") else folder / "files" / name
        if path.exists():
            for resource in iter_resources(path):
                validator.add_definition(resource)


def run_case(case: dict[str, Any], folder: Path) -> list[StepResult]:
    results = []
    instance, parse_issues = read_resource(folder / case["file"])
    upstream = case.get("upstream_manifest_entry", {})
    steps = [("base", None)]
    if case.get("validate_against_profile") and "profile" in case["expected"]:
        steps.append(("profile", case["validate_against_profile"]))
    for step, spec in steps:
        options = dict(case.get("options") or {})
        if step == "profile" and isinstance(upstream.get("profile"), dict):
            options.update(
                {
                    k: v
                    for k, v in upstream["profile"].items()
                    if k not in ("source", "java", "supporting") and not k.startswith("firely")
                }
            )
        validator = Validator(options=ValidationOptions.from_hl7(options))
        _load_supporting(validator, folder, case.get("supporting") or [])
        profile_url = None
        if spec:
            _load_supporting(validator, folder, [spec["file"]] if spec.get("file") else [])
            _load_supporting(validator, folder, spec.get("supporting") or [])
            profile_url = spec.get("url")
            if not profile_url and spec.get("file"):
                first = next(iter_resources(folder / spec["file"]), {})
                profile_url = first.get("url")
        issues = list(parse_issues)
        if instance is not None:
            issues += validator.validate(instance, profile_url)
        errors = [f"{i.severity.value} {i.location} | {i.message}" for i in issues if i.is_error]
        expected = case["expected"][step]
        results.append(
            StepResult(
                case=case["name"],
                step=step,
                category=case["primary_category"],
                expected=expected["errors"],
                actual=len(errors),
                errors=errors,
                expected_messages=[
                    f"{m['severity']} {(m.get('expression') or [''])[0]} | {m['text']}"
                    for m in expected.get("error_messages", [])
                ],
            )
        )
    return results


def run_all(names: list[str] | None = None) -> list[StepResult]:
    folder = cases_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    results: list[StepResult] = []
    for case in manifest["cases"]:
        if names and case["name"] not in names:
            continue
        try:
            results.extend(run_case(case, folder))
        except Exception as exc:
            for step in ("base", "profile"):
                if step in case["expected"] and (step == "base" or case.get("validate_against_profile")):
                    results.append(
                        StepResult(
                            case["name"],
                            step,
                            case["primary_category"],
                            case["expected"][step]["errors"],
                            -1,
                            [f"EXCEPTION {exc!r}"],
                            [],
                        )
                    )
    return results


def summarise(results: list[StepResult]) -> dict[str, Any]:
    """Agreement by step and by case (a case agrees when all its steps do), overall and per category."""
    cases: dict[str, list[StepResult]] = defaultdict(list)
    for r in results:
        cases[r.case].append(r)
    by_category: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_category[r.category]["steps"] += 1
        by_category[r.category]["steps_passed"] += r.passed
    for steps in cases.values():
        counter = by_category[steps[0].category]
        counter["cases"] += 1
        counter["cases_passed"] += all(r.passed for r in steps)
    steps_passed = sum(r.passed for r in results)
    cases_passed = sum(all(r.passed for r in steps) for steps in cases.values())
    return {
        "cases": len(cases),
        "cases_passed": cases_passed,
        "case_rate": cases_passed / len(cases) if cases else 0.0,
        "steps": len(results),
        "steps_passed": steps_passed,
        "step_rate": steps_passed / len(results) if results else 0.0,
        "by_category": {k: dict(v) for k, v in sorted(by_category.items())},
        "failing_cases": sorted(name for name, steps in cases.items() if not all(r.passed for r in steps)),
    }


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a short table: by category, then the totals by case and by step."""
    lines = [f"{'category':<24} {'cases':>9} {'steps':>9}"]
    for cat, c in summary["by_category"].items():
        lines.append(
            f"{cat:<24} {c['cases_passed']:>4}/{c['cases']:<4} {c['steps_passed']:>4}/{c['steps']:<4}"
        )
    lines.append(
        f"{'total':<24} {summary['cases_passed']:>4}/{summary['cases']:<4} "
        f"{summary['steps_passed']:>4}/{summary['steps']:<4}"
    )
    lines.append(f"by case {summary['case_rate']:.1%}, by step {summary['step_rate']:.1%}")
    return lines


def main(argv: list[str]) -> None:
    show_failures = "--failures" in argv
    names = [a for a in argv if not a.startswith("--")]
    results = run_all(names or None)
    for r in results:
        if (show_failures and not r.passed) or names:
            print(f"== {r.case} [{r.step}] expected {r.expected} got {r.actual}")
            for e in r.expected_messages:
                print("   exp:", e[:220])
            for e in r.errors:
                print("   got:", e[:220])
    summary = summarise(results)
    print("\n".join(report_lines(summary)))
    if show_failures:
        print("failing cases:", ", ".join(summary["failing_cases"]) or "none")


if __name__ == "__main__":
    main(sys.argv[1:])
