"""Streaming readers for legacy exports: CSV, XML, JSON arrays and NDJSON."""

from fhir_dnacpr.sources.base import Origin, RawRecord
from fhir_dnacpr.sources.csv import detect_encoding, read_csv
from fhir_dnacpr.sources.dispatch import FORMATS, format_for, open_source
from fhir_dnacpr.sources.json import read_json_array, read_ndjson
from fhir_dnacpr.sources.xml import read_xml

__all__ = [
    "FORMATS",
    "Origin",
    "RawRecord",
    "detect_encoding",
    "format_for",
    "open_source",
    "read_csv",
    "read_json_array",
    "read_ndjson",
    "read_xml",
]
