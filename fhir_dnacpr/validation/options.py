"""Validation options, named after the HL7 validator switches they mirror."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Switches that change verdicts (defaults as in the HL7 validator CLI).

    ``validate_reference``: IGNORE | CHECK_EXISTS | CHECK_EXISTS_AND_TYPE | CHECK_TYPE_OF_TARGET |
    CHECK_VALID — how far references to resources inside the instance (bundle, contained,
    parameters) are followed. ``validate_contains``: CHECK_VALID | IGNORE for contained resources.
    ``best_practice``: severity for best-practice invariants (hint | warning | error | ignore).
    """

    validate_reference: str = "IGNORE"
    validate_contains: str = "CHECK_VALID"
    assume_valid_rest_references: bool = False
    best_practice: str = "warning"
    enforce_aggregation_outside_bundles: bool = True
    allow_example_extensions: bool = True

    @classmethod
    def from_hl7(cls, options: dict) -> ValidationOptions:
        """Build from the option names used in the HL7 test-case manifest."""
        mapping = {
            "validateReference": "validate_reference",
            "validateContains": "validate_contains",
            "assumeValidRestReferences": "assume_valid_rest_references",
            "best-practice": "best_practice",
            "enforceAggregationOutsideBundles": "enforce_aggregation_outside_bundles",
        }
        kwargs = {}
        for key, value in options.items():
            if key in mapping:
                kwargs[mapping[key]] = value.lower() if key == "best-practice" else value
        return cls(**kwargs)
