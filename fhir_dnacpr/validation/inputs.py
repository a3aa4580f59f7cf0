"""Validating files: JSON and XML resources, NDJSON, folders — one result per resource found.

What an engineer points the validator at is rarely one resource: a folder of exports, a
transaction Bundle from ``convert``, a bulk-export NDJSON file. This module turns paths into
resources (with file and line, so every finding can be traced back) and validates each one.
Unreadable input becomes a fatal issue on its file or line; nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.validation.files import iter_ndjson, read_resource
from fhir_dnacpr.validation.validator import Validator

FHIR_SUFFIXES = (".json", ".xml", ".ndjson")
#: Package bookkeeping that sits next to resources in FHIR package folders: not instances.
NOT_RESOURCES = frozenset({"package.json", ".index.json", "fhirpkg.lock.json"})


@dataclass(slots=True)
class Result:
    """The issues of one resource (or of an input that did not yield one)."""

    file: Path
    line: int | None  # NDJSON line number
    resource_type: str | None
    resource_id: str | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``Consent/abc`` (or the type alone, or ``-`` when nothing could be read)."""
        if not self.resource_type:
            return "-"
        return f"{self.resource_type}/{self.resource_id}" if self.resource_id else self.resource_type

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    @property
    def has_errors(self) -> bool:
        return any(i.is_error for i in self.issues)


@dataclass(slots=True)
class Skipped:
    """A file met while walking a folder that holds no FHIR resource (reported, not validated)."""

    file: Path
    reason: str


def expand_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """Files to read: ``(path, named)``; folders are walked recursively (sorted, hidden files
    and package bookkeeping left out). ``named`` is False for files found inside a folder."""
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if (
                    file.is_file()
                    and file.suffix.lower() in FHIR_SUFFIXES
                    and not any(part.startswith(".") for part in file.relative_to(path).parts)
                    and file.name not in NOT_RESOURCES
                ):
                    yield file, False
        else:
            yield path, True


def read_inputs(paths: Iterable[Path]) -> Iterator[tuple[Path, int | None, Any, list[Issue]] | Skipped]:
    """``(file, line, resource or None, parse issues)`` per resource; ``Skipped`` for folder files
    that are not FHIR (e.g. a converter's summary.json next to its Bundles)."""
    for file, named in expand_paths(paths):
        if file.suffix.lower() == ".ndjson":
            lines = iter_ndjson(file)
            first = next(lines, None)
            if first is None:
                continue
            if not named and first[1] is not None and "resourceType" not in first[1]:
                yield Skipped(file, "NDJSON lines are not FHIR resources (no resourceType)")
                continue
            yield (file, *first)
            for line in lines:
                yield (file, *line)
            continue
        try:
            resource, issues = read_resource(file)
        except OSError as exc:
            yield file, None, None, [Issue(Severity.FATAL, "exception", f"Cannot read file: {exc.strerror}")]
            continue
        if not named and resource is not None and "resourceType" not in resource:
            yield Skipped(file, "not a FHIR resource (no resourceType)")
            continue
        if resource is not None and "resourceType" not in resource:
            issues = [*issues, Issue(Severity.FATAL, "structure", "Not a FHIR resource: no resourceType")]
            resource = None
        yield file, None, resource, issues


def validate_paths(
    validator: Validator, paths: Iterable[Path], profiles: Iterable[str] = ()
) -> Iterator[Result | Skipped]:
    """Validate every resource in ``paths``. ``profiles`` apply to each resource of their type,
    top-level or inside a Bundle; a profile that matched no resource of an input says so."""
    by_type: dict[str, list[str]] = {}
    for url in profiles:
        structure = validator.structure(url)
        if structure is None:
            raise ValueError(f"unknown profile {url}")
        by_type.setdefault(structure.type, []).append(url)
    for entry in read_inputs(paths):
        if isinstance(entry, Skipped):
            yield entry
            continue
        file, line, resource, issues = entry
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        rid = resource.get("id") if isinstance(resource, dict) else None
        result = Result(
            file, line, rtype if isinstance(rtype, str) else None, rid if isinstance(rid, str) else None
        )
        result.issues.extend(issues)
        if resource is not None:
            result.issues.extend(validator.validate(resource, profiles_by_type=by_type or None))
            for wanted_type, urls in by_type.items():
                if not _contains_type(resource, wanted_type):
                    result.issues.append(
                        Issue(
                            Severity.INFORMATION,
                            "informational",
                            f"Profile {', '.join(urls)} not applied: no {wanted_type} resource here",
                            rtype if isinstance(rtype, str) else None,
                            "PROFILE_NOT_APPLICABLE",
                        )
                    )
        yield result


def _contains_type(resource: Any, wanted: str) -> bool:
    if not isinstance(resource, dict):
        return False
    if resource.get("resourceType") == wanted:
        return True
    for key in ("entry", "contained", "parameter", "part"):
        for item in resource.get(key) or ():
            if isinstance(item, dict):
                nested = item if key == "contained" else item.get("resource")
                if _contains_type(nested, wanted) or (
                    key in ("parameter", "part") and _contains_type(item, wanted)
                ):
                    return True
    return False
