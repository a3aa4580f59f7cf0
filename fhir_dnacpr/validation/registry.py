"""Conformance resources by canonical URL: the base R4 definitions plus any loaded IG.

Implementation guides arrive as folders of JSON/XML files, package tarballs (``package/`` inside)
or single files/Bundles. Everything lands here once; lookups are dictionary hits afterwards.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fhir_dnacpr.definitions import core_definitions
from fhir_dnacpr.fhirxml import parse_xml

CANONICAL_TYPES = frozenset({"StructureDefinition", "ValueSet", "CodeSystem", "ImplementationGuide"})
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


class Registry:
    """Holds canonical resources; newer loads of the same URL|version replace older ones."""

    def __init__(self, *, with_core: bool = True) -> None:
        self._by_url: dict[str, dict[str, dict[str, Any]]] = {}
        self.package_versions: dict[str, str] = {}
        self.generation = 0  # bumped on every change so caches know to reset
        if with_core:
            core = core_definitions()
            for kind in ("StructureDefinition", "CodeSystem", "ValueSet"):
                for resource in core[kind]:
                    self.add({"resourceType": kind, **resource}, core=True)

    def add(self, resource: dict[str, Any], *, core: bool = False) -> None:
        """Register one canonical resource (StructureDefinition, ValueSet, CodeSystem)."""
        url = resource.get("url")
        if resource.get("resourceType") not in CANONICAL_TYPES or not isinstance(url, str):
            return
        if not core:
            resource = copy.deepcopy(resource)
        resource.setdefault("_core", core)
        versions = self._by_url.setdefault(url, {})
        versions[str(resource.get("version", ""))] = resource
        versions[""] = resource
        self.generation += 1

    def resolve(self, canonical: str, resource_type: str | None = None) -> dict[str, Any] | None:
        """Look up ``url`` or ``url|version``; without a version the latest loaded wins."""
        url, _, version = canonical.partition("|")
        versions = self._by_url.get(url)
        if not versions:
            return None
        found = versions.get(version) if version else versions.get("")
        if found is None and version:
            # A versioned reference to a definition we hold in another version: HL7 takes the
            # loaded one for core versions (4.0.0 ≈ 4.0.1); do the same.
            found = versions.get("")
        if found is not None and resource_type and found.get("resourceType") != resource_type:
            return None
        return found

    def structure(self, canonical: str) -> dict[str, Any] | None:
        return self.resolve(canonical, "StructureDefinition")

    def type_definition(self, type_code: str) -> dict[str, Any] | None:
        if "/" in type_code:
            return self.structure(type_code)
        return self.structure(CORE_PREFIX + type_code)

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        return self.resolve(canonical, "ValueSet")

    def code_system(self, canonical: str) -> dict[str, Any] | None:
        return self.resolve(canonical, "CodeSystem")

    def all(self, resource_type: str) -> Iterator[dict[str, Any]]:
        seen: set[int] = set()
        for versions in self._by_url.values():
            for resource in versions.values():
                if resource.get("resourceType") == resource_type and id(resource) not in seen:
                    seen.add(id(resource))
                    yield resource

    # -- loading -----------------------------------------------------------------------------

    def load(self, path: str | Path) -> int:
        """Load a folder, a package ``.tgz``, or one JSON/XML file (a Bundle is unpacked).

        Returns how many canonical resources were added.
        """
        path = Path(path)
        count = 0
        for resource in iter_resources(path):
            if resource.get("resourceType") in CANONICAL_TYPES:
                self.add(resource)
                count += 1
        return count


def iter_resources(path: Path) -> Iterator[dict[str, Any]]:
    """Every resource in a folder / package tgz / file, Bundles unpacked."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() in (".json", ".xml") and not file.name.startswith("."):
                yield from _unpack(_read_file(file.name, file.read_bytes()))
    elif path.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name
                if member.isfile() and name.lower().endswith((".json", ".xml")) and "/." not in name:
                    yield from _unpack(_read_file(name, tar.extractfile(member).read()))
    else:
        yield from _unpack(_read_file(path.name, path.read_bytes()))


def _read_file(name: str, data: bytes) -> Any:
    if name.lower().endswith(".xml"):
        resource, _issues = parse_xml(data)
        return resource
    try:
        return json.load(io.BytesIO(data))
    except ValueError:
        return None


def _unpack(resource: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(resource, dict) or "resourceType" not in resource:
        return
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", ()):
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                yield from _unpack(entry["resource"])
    else:
        yield resource
