"""Offline FHIR R4 profile validation whose verdicts follow the HL7 reference validator.

    from fhir_dnacpr.validation import validate, Validator
    issues = validate(resource)                          # base R4 + meta.profile + our profiles/
    issues = validate(resource, profile="https://…/StructureDefinition/X")
    v = Validator(); v.load_ig("path/to/ig-folder-or.tgz"); v.validate(resource, profile=…)

Issues are ``fhir_dnacpr.issues.Issue``; render with ``fhir_dnacpr.issues.operation_outcome``.
Files, folders, Bundles and NDJSON: ``fhir_dnacpr.validation.inputs.validate_paths`` (what the
``fhir-dnacpr validate`` command uses). How it works and how it compares with HAPI: docs/validation.md.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.resources import profiles_dir
from fhir_dnacpr.validation.files import iter_ndjson, parse_json_text, read_resource
from fhir_dnacpr.validation.options import ValidationOptions
from fhir_dnacpr.validation.validator import Validator

__all__ = [
    "Issue",
    "ValidationOptions",
    "Validator",
    "default_validator",
    "iter_ndjson",
    "load_ig",
    "parse_json_text",
    "read_resource",
    "validate",
]


@cache
def default_validator() -> Validator:
    """Base R4 plus the project's ``profiles/`` folder (or ``$FHIR_DNACPR_PROFILES``)."""
    validator = Validator()
    validator.load_ig(profiles_dir())
    return validator


def validate(resource: dict[str, Any], profile: str | None = None) -> list[Issue]:
    """Validate with the default validator (see ``default_validator``)."""
    return default_validator().validate(resource, profile)


def load_ig(path: str | Path) -> int:
    """Load an IG (folder, package .tgz, file) into the default validator."""
    return default_validator().load_ig(path)
