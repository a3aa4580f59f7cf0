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
    ``any_extensions_allowed``: an extension whose definition is not loaded is only noted
    (information) instead of being an error — HAPI's ``FhirInstanceValidator`` default; the HL7
    validator CLI (and this default) reject it. ``vital_signs_profiles``: check Observations
    whose code is a vital sign against the matching core vital-signs profile, as the HL7
    validator CLI does (HAPI's ``FhirInstanceValidator`` does not).
    """

    validate_reference: str = "IGNORE"
    validate_contains: str = "CHECK_VALID"
    assume_valid_rest_references: bool = False
    best_practice: str = "warning"
    enforce_aggregation_outside_bundles: bool = True
    allow_example_extensions: bool = True
    any_extensions_allowed: bool = False
    vital_signs_profiles: bool = True

    @classmethod
    def hapi(cls) -> ValidationOptions:
        """The settings of HAPI FHIR's ``FhirInstanceValidator`` as the test server uses it:
        unknown extensions allowed, no vital-signs profiles implied by Observation codes."""
        return cls(any_extensions_allowed=True, vital_signs_profiles=False)

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
