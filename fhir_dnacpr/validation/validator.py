"""The public validator: loaded definitions + compiled-profile cache + one walk per resource."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_dnacpr.definitions.elements import TypeIndex, type_index
from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.validation.fhirpath import FhirPathEngine
from fhir_dnacpr.validation.implied import global_profiles
from fhir_dnacpr.validation.options import ValidationOptions
from fhir_dnacpr.validation.plan import Plan, build_plan
from fhir_dnacpr.validation.registry import Registry
from fhir_dnacpr.validation.snapshot import SnapshotError, snapshot_elements
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode, compile_structure
from fhir_dnacpr.validation.terminology import Terminology
from fhir_dnacpr.validation.walker import Run

log = logging.getLogger(__name__)
MIN_LENGTH_EXT = "http://hl7.org/fhir/StructureDefinition/minLength"


class Validator:
    """Validates FHIR R4 resources (JSON dicts) against base R4 and loaded profiles.

    >>> v = Validator()
    >>> v.load_ig("profiles/")                       # doctest: +SKIP
    >>> issues = v.validate(resource, profile="https://example.org/StructureDefinition/X")  # doctest: +SKIP

    Profiles are compiled once (snapshot generated from the differential when needed) and cached;
    loading more definitions clears the cache.
    """

    def __init__(self, *, options: ValidationOptions | None = None, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        self.options = options or ValidationOptions()
        self.index: TypeIndex = type_index()
        self.terminology = Terminology(self.registry)
        self.fhirpath = FhirPathEngine()
        self._compiled: dict[str, CompiledStructure | None] = {}
        self._plans: dict[tuple[tuple[ElementNode, ...], str], Plan] = {}
        self._children: dict[tuple[ElementNode, str], dict[str, ElementNode]] = {}
        self.cache: dict[Any, Any] = {}  # definition-derived lookups of the check modules
        self._generation = self.registry.generation
        self.load_problems: list[Issue] = []
        self._guides: list[dict[str, Any]] = []
        self._guides_generation = -1

    # -- definitions -------------------------------------------------------------------------

    def load_ig(self, path: str | Path) -> int:
        """Load conformance resources from a folder, package .tgz, or file; returns how many."""
        return self.registry.load(path)

    def add_definition(self, resource: dict[str, Any]) -> None:
        self.registry.add(resource)

    def structure(self, canonical: str) -> CompiledStructure | None:
        """The compiled profile for a canonical URL (``url`` or ``url|version``), or None."""
        if self._generation != self.registry.generation:
            self._reset()
        if canonical in self._compiled:
            return self._compiled[canonical]
        sd = self.registry.structure(canonical)
        compiled = None
        if sd is not None:
            try:
                elements = snapshot_elements(sd, self.registry)
                compiled = compile_structure(sd, elements)
                _collect_min_lengths(sd, elements)
                unmatched = sd.get("_snapshot_unmatched")
                if unmatched:
                    self._unmatched_problem(canonical, unmatched)
            except SnapshotError as exc:
                log.warning("cannot use %s: %s", canonical, exc)
                self.load_problems.append(
                    Issue(
                        Severity.ERROR,
                        "processing",
                        f"Profile {canonical}: error generating snapshot: {exc}",
                        None,
                        "Profile___Error_generating_snapshot",
                    )
                )
        self._compiled[canonical] = compiled
        return compiled

    def _unmatched_problem(self, canonical: str, unmatched: list[str]) -> None:
        text = (
            f"The profile {canonical} has {len(unmatched)} element(s) in the differential "
            f"({', '.join(unmatched)}) that don't have a matching element in the snapshot: "
            "they are ignored"
        )
        log.warning("%s", text)
        self.load_problems.append(
            Issue(Severity.ERROR, "value", text, None, "Profile___Error_generating_snapshot")
        )

    def _reset(self) -> None:
        self._compiled.clear()
        self._plans.clear()
        self._children.clear()
        self.cache.clear()
        self._generation = self.registry.generation

    def plan(self, layers: tuple[ElementNode, ...], type_code: str) -> Plan:
        """The merged plan for a value constrained by ``layers`` (cached; see ``plan``)."""
        key = (layers, type_code)
        plan = self._plans.get(key)
        if plan is None:
            if self._generation != self.registry.generation:
                self._reset()
            plan = self._plans[key] = build_plan(self, layers, type_code)
        return plan

    def memo_for(self, options: ValidationOptions) -> dict:
        """Remembered findings of context-free values, per option set (cleared with the plans)."""
        return self.cache.setdefault(("memo", options), {})

    def children_of(self, node: ElementNode, type_code: str) -> dict[str, ElementNode]:
        """Child definitions of a node for a value of ``type_code``: its own, its content
        reference's, or (when the profile does not spell them out) those of the type."""
        key = (node, type_code)
        found = self._children.get(key)
        if found is not None:
            return found
        found = node.children
        if not found and node.content_ref:
            target = node.structure.by_id.get(node.content_ref.split("#", 1)[-1])
            if target is not None and target.children:
                found = target.children
        if not found:
            type_structure = self.type_structure(type_code)
            found = type_structure.root.children if type_structure is not None else {}
        self._children[key] = found
        return found

    def global_profiles(self, resource_type: str) -> list[str]:
        """Profiles that loaded ImplementationGuides declare ``global`` for a resource type."""
        if self._guides_generation != self.registry.generation:
            self._guides = list(self.registry.all("ImplementationGuide"))
            self._guides_generation = self.registry.generation
        return global_profiles(self._guides, resource_type) if self._guides else []

    def type_structure(self, type_code: str) -> CompiledStructure | None:
        if not type_code:
            return None
        if "/" in type_code:
            return self.structure(type_code)
        return self.structure("http://hl7.org/fhir/StructureDefinition/" + type_code)

    # -- validation --------------------------------------------------------------------------

    def validate(
        self,
        resource: dict[str, Any],
        profile: str | None = None,
        options: ValidationOptions | None = None,
        *,
        profiles_by_type: dict[str, list[str]] | None = None,
    ) -> list[Issue]:
        """All issues for one resource: base R4, its ``meta.profile``s, and ``profile`` if given.

        ``profiles_by_type`` (resource type → profile URLs) applies profiles to every resource of
        that type, the top-level one and those nested in Bundles, Parameters or ``contained``.
        """
        return list(self.iter_issues(resource, profile, options, profiles_by_type=profiles_by_type))

    def iter_issues(
        self,
        resource: dict[str, Any],
        profile: str | None = None,
        options: ValidationOptions | None = None,
        *,
        profiles_by_type: dict[str, list[str]] | None = None,
    ) -> Iterator[Issue]:
        run = Run(self, options or self.options, resource)
        if profiles_by_type:
            run.type_profiles = profiles_by_type
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        location = rtype if isinstance(rtype, str) else "(resource)"
        extra = [profile] if profile else []
        if profile and self.structure(profile) is None:
            run.add(
                [
                    Issue(
                        Severity.WARNING,
                        "not-found",
                        f"Profile reference '{profile}' has not been checked because it could not be found",
                        location,
                        "Validation_VAL_Profile_Unknown",
                    )
                ]
            )
            extra = []
        run.validate_resource(resource, location, extra)
        yield from run.issues

    def is_valid(self, resource: dict[str, Any], profile: str | None = None) -> bool:
        return not any(i.is_error for i in self.iter_issues(resource, profile))


def _collect_min_lengths(sd: dict[str, Any], elements: list[dict[str, Any]]) -> None:
    found = {}
    for element in elements:
        for ext in element.get("extension", ()):
            if ext.get("url") == MIN_LENGTH_EXT and isinstance(ext.get("valueInteger"), int):
                found[element["id"]] = ext["valueInteger"]
    sd["_min_length"] = found
