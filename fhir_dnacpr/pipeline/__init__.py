"""The convert pipeline: read → map → drop duplicates / mark superseded → build → validate → write.

Every stage can reject; a reject carries the record's origin, the stage and located issues, and the
run summary counts it, so ``records_in == converted + rejected + duplicates + replaced versions``.
"""

from fhir_dnacpr.pipeline.convert import ConvertOptions, convert
from fhir_dnacpr.pipeline.summary import ExitCode, RunSummary

__all__ = ["ConvertOptions", "ExitCode", "RunSummary", "convert"]
