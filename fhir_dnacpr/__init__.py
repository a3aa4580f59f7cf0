"""fhir-dnacpr: DNACPR decisions and advance care plans, from legacy exports to FHIR R4 and back."""

__version__ = "0.1.0"
