"""Validator throughput: Consent resources per second on one core, warm (profiles compiled).

Usage: python bench/validate.py [N]
Prints ``name: value`` lines. The HAPI comparison (validating the same resources through the test
server's $validate) is not wired yet: it needs the HAPI test server (scripts/fhir-server).
"""

from __future__ import annotations

import sys
import time

from fhir_dnacpr.canonical import EXT_CPR_DECISION_FINDING, PROFILE_DNACPR_CONSENT
from fhir_dnacpr.validation import default_validator


def sample_consent(i: int) -> dict:
    """A synthetic DNACPR Consent (NHS number from the 999 test range)."""
    return {
        "resourceType": "Consent",
        "id": f"dnacpr-{i:06d}",
        "meta": {"profile": [PROFILE_DNACPR_CONSENT]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Not for CPR</div>'},
        "extension": [
            {
                "url": EXT_CPR_DECISION_FINDING,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "450476008",
                            "display": "Not for attempted cardiopulmonary resuscitation",
                        }
                    ]
                },
            }
        ],
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes", "code": "dnr"}
                ]
            }
        ],
        "patient": {
            "reference": f"Patient/p{i}",
            "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"},
        },
        "dateTime": "2024-03-01T10:15:00Z",
        "performer": [{"reference": f"Practitioner/pr{i}"}],
        "organization": [{"reference": "Organization/o1"}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]
        },
        "verification": [
            {
                "verified": True,
                "verifiedWith": {"reference": f"Patient/p{i}"},
                "verificationDate": "2024-03-01T10:15:00Z",
            }
        ],
        "provision": {
            "type": "deny",
            "period": {"start": "2024-03-01"},
            "code": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "89666000",
                            "display": "Cardiopulmonary resuscitation",
                        }
                    ]
                }
            ],
        },
    }


def main(n: int) -> None:
    validator = default_validator()
    resources = [sample_consent(i) for i in range(n)]
    for r in resources[:20]:  # warm: compile profiles, parse FHIRPath
        validator.validate(r)
    started = time.perf_counter()
    errors = 0
    for r in resources:
        errors += sum(1 for i in validator.validate(r) if i.is_error)
    elapsed = time.perf_counter() - started
    print(f"consent_resources: {n}")
    print(f"consent_errors_total: {errors}")
    print(f"consent_per_second: {n / elapsed:.0f}")
    print(f"microseconds_per_consent: {elapsed / n * 1e6:.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
