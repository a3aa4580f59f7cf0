"""What a server says it can do, read once from ``GET [base]/metadata`` (its CapabilityStatement).

The pusher and puller ask this object rather than guessing: is it FHIR 4.0.x, does it take
transactions or batches, may a client choose ids (``updateCreate``), conditional update/create,
which search parameters exist, is Bulk Data ``$export`` there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceCapability:
    """One ``rest.resource`` entry of the capability statement."""

    type: str
    interactions: frozenset[str] = frozenset()
    update_create: bool | None = None
    conditional_create: bool = False
    conditional_update: bool = False
    search_params: frozenset[str] = frozenset()
    search_includes: frozenset[str] = frozenset()
    search_rev_includes: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()

    def supports(self, interaction: str) -> bool:
        return interaction in self.interactions


@dataclass(frozen=True, slots=True)
class Capabilities:
    fhir_version: str
    software: str | None = None
    software_version: str | None = None
    system_interactions: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()
    formats: frozenset[str] = frozenset()
    resources: dict[str, ResourceCapability] = field(default_factory=dict)

    @property
    def is_r4(self) -> bool:
        """FHIR 4.0.x (R4); 4.3 is R4B and 5.x is R5, neither of which this adapter targets."""
        return self.fhir_version.startswith("4.0.")

    @property
    def supports_transaction(self) -> bool:
        return "transaction" in self.system_interactions

    @property
    def supports_batch(self) -> bool:
        return "batch" in self.system_interactions

    @property
    def supports_bulk_export(self) -> bool:
        """System-level ``$export`` (or at least Patient-level) is declared."""
        if "export" in self.operations:
            return True
        patient = self.resources.get("Patient")
        return bool(patient and "export" in patient.operations)

    def resource(self, resource_type: str) -> ResourceCapability | None:
        return self.resources.get(resource_type)

    def allows_client_ids(self, resource_type: str) -> bool:
        """Whether ``PUT Type/id`` may create a resource with our id.

        Unknown (no ``updateCreate`` stated) counts as allowed: the first refusal switches the
        pusher to conditional update for that type anyway.
        """
        cap = self.resources.get(resource_type)
        if cap is None:
            return True
        return "update" in cap.interactions and cap.update_create is not False

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest for ``server check`` and logs."""
        return {
            "fhirVersion": self.fhir_version,
            "software": " ".join(x for x in (self.software, self.software_version) if x) or None,
            "r4": self.is_r4,
            "transaction": self.supports_transaction,
            "batch": self.supports_batch,
            "bulkExport": self.supports_bulk_export,
            "resources": {
                name: {
                    "interactions": sorted(cap.interactions),
                    "updateCreate": cap.update_create,
                    "conditionalUpdate": cap.conditional_update,
                    "conditionalCreate": cap.conditional_create,
                }
                for name, cap in sorted(self.resources.items())
            },
        }

    @classmethod
    def from_json(cls, statement: dict[str, Any]) -> Capabilities:
        if statement.get("resourceType") != "CapabilityStatement":
            raise ValueError(f"expected a CapabilityStatement, got {statement.get('resourceType')!r}")
        software = statement.get("software") or {}
        system_interactions: set[str] = set()
        operations: set[str] = set()
        resources: dict[str, ResourceCapability] = {}
        for rest in statement.get("rest", ()):
            if rest.get("mode", "server") != "server":
                continue
            system_interactions.update(i.get("code", "") for i in rest.get("interaction", ()))
            operations.update(_operation_name(op) for op in rest.get("operation", ()))
            for res in rest.get("resource", ()):
                name = res.get("type")
                if not name:
                    continue
                resources[name] = ResourceCapability(
                    type=name,
                    interactions=frozenset(i.get("code", "") for i in res.get("interaction", ())),
                    update_create=res.get("updateCreate"),
                    conditional_create=bool(res.get("conditionalCreate")),
                    conditional_update=bool(res.get("conditionalUpdate")),
                    search_params=frozenset(p.get("name", "") for p in res.get("searchParam", ())),
                    search_includes=frozenset(res.get("searchInclude", ())),
                    search_rev_includes=frozenset(res.get("searchRevInclude", ())),
                    operations=frozenset(_operation_name(op) for op in res.get("operation", ())),
                )
        return cls(
            fhir_version=str(statement.get("fhirVersion", "")),
            software=software.get("name"),
            software_version=software.get("version"),
            system_interactions=frozenset(system_interactions),
            operations=frozenset(operations),
            formats=frozenset(statement.get("format", ())),
            resources=resources,
        )


def _operation_name(operation: dict[str, Any]) -> str:
    return str(operation.get("name", "")).lstrip("$")
