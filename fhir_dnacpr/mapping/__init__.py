"""Declarative mapping specs: a YAML file per export layout, compiled once, applied per record."""

from fhir_dnacpr.mapping.fields import UnmapError
from fhir_dnacpr.mapping.load import load_spec, spec_from_text
from fhir_dnacpr.mapping.redact import MASK
from fhir_dnacpr.mapping.spec import MappingSpec, MapResult
from fhir_dnacpr.mapping.yamlnodes import SpecError, SpecProblem

__all__ = [
    "MASK",
    "MapResult",
    "MappingSpec",
    "SpecError",
    "SpecProblem",
    "UnmapError",
    "load_spec",
    "spec_from_text",
]
