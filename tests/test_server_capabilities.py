"""Reading a CapabilityStatement: version, interactions, client ids, conditional writes, $export."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_dnacpr.server.capabilities import Capabilities


def statement(**overrides: Any) -> dict[str, Any]:
    """Shaped like HAPI 8.8's answer (which declares 'transaction' but not 'batch')."""
    base: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "software": {"name": "HAPI FHIR Server", "version": "8.8.0"},
        "format": ["application/fhir+xml", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}, {"code": "history-system"}],
                "operation": [{"name": "export"}, {"name": "export-poll-status"}],
                "resource": [
                    {
                        "type": "Consent",
                        "interaction": [{"code": c} for c in ("read", "update", "create", "search-type")],
                        "conditionalCreate": True,
                        "conditionalUpdate": True,
                        "searchInclude": ["Consent:patient", "Consent:actor"],
                        "searchParam": [{"name": "patient"}, {"name": "status"}, {"name": "category"}],
                    },
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "update"}],
                        "updateCreate": False,
                        "operation": [{"name": "$export"}],
                    },
                ],
            }
        ],
    }
    base.update(overrides)
    return base


def test_hapi_like_statement() -> None:
    caps = Capabilities.from_json(statement())
    assert caps.is_r4 and caps.fhir_version == "4.0.1"
    assert caps.supports_transaction and not caps.supports_batch
    assert caps.supports_bulk_export
    consent = caps.resource("Consent")
    assert consent is not None and consent.supports("update") and consent.conditional_update
    assert "Consent:patient" in consent.search_includes and "status" in consent.search_params
    assert caps.allows_client_ids("Consent")
    assert not caps.allows_client_ids("Patient"), "updateCreate false: the server picks ids"
    assert caps.allows_client_ids("Observation"), "unknown types are tried; a refusal switches them"
    assert caps.summary()["software"] == "HAPI FHIR Server 8.8.0"


@pytest.mark.parametrize(
    ("version", "r4"), [("4.0.0", True), ("4.0.1", True), ("4.3.0", False), ("5.0.0", False), ("", False)]
)
def test_only_4_0_x_counts_as_r4(version: str, r4: bool) -> None:
    assert Capabilities.from_json(statement(fhirVersion=version)).is_r4 is r4


def test_patient_level_export_counts_as_bulk_support() -> None:
    doc = statement()
    doc["rest"][0]["operation"] = []
    assert Capabilities.from_json(doc).supports_bulk_export
    doc["rest"][0]["resource"][1]["operation"] = []
    assert not Capabilities.from_json(doc).supports_bulk_export


def test_client_mode_rest_blocks_are_ignored() -> None:
    doc = statement()
    doc["rest"].append({"mode": "client", "interaction": [{"code": "batch"}]})
    assert not Capabilities.from_json(doc).supports_batch


def test_not_a_capability_statement() -> None:
    with pytest.raises(ValueError):
        Capabilities.from_json({"resourceType": "OperationOutcome"})
