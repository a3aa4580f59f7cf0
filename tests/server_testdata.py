"""Synthetic DNACPR data for the client's integration tests: hand-built transaction bundles.

Every call uses a fresh run tag in ids and identifier systems, so tests sharing one HAPI server
never see each other's resources. NHS numbers are from the 999 test range and pass Modulus 11.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import requests

from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.terminology.identifiers import nhs_number_check_digit

NHS = "https://fhir.nhs.uk/Id/nhs-number"
SNOMED = "http://snomed.info/sct"
FHIR_JSON = {"Accept": "application/fhir+json"}


def nhs_numbers(start: int = 0) -> Any:
    """Valid synthetic NHS numbers 999xxxxxxC, in order."""
    n = start
    while True:
        stem = f"999{n:06d}"
        digit = nhs_number_check_digit(stem)
        if digit is not None:
            yield f"{stem}{digit}"
        n += 1


class Synthetic:
    """Records of one test: a shared Organization, and per record a Patient and a Consent."""

    def __init__(self, records: int, start: int | None = None) -> None:
        self.tag = uuid.uuid4().hex[:12]
        self.system = f"urn:fhir-dnacpr-test:{self.tag}"
        # a random stretch of the 999 range: conditional writes match on NHS number across tests
        numbers = nhs_numbers(random.randrange(0, 990_000) if start is None else start)
        self.nhs = [next(numbers) for _ in range(records)]
        self.records = records

    def org_id(self) -> str:
        return f"org-{self.tag}"

    def patient(self, n: int) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": f"pat-{self.tag}-{n}",
            "identifier": [{"system": NHS, "value": self.nhs[n]}],
            "name": [{"family": "Testpatient", "given": [f"Synthetic{n}"]}],
            "gender": "female" if n % 2 else "male",
            "birthDate": f"19{40 + n % 50:02d}-0{1 + n % 9}-1{n % 10}",
            "managingOrganization": {"reference": f"Organization/{self.org_id()}"},
        }

    def organization(self) -> dict[str, Any]:
        return {
            "resourceType": "Organization",
            "id": self.org_id(),
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RR8"}],
            "name": "Synthetic Teaching Hospitals NHS Trust",
        }

    def consent(self, n: int, **changes: Any) -> dict[str, Any]:
        consent = {
            "resourceType": "Consent",
            "id": f"con-{self.tag}-{n}",
            "identifier": [{"system": self.system, "value": f"R{n:05d}"}],
            "status": "active",
            "scope": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "adr"}]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentcategorycodes",
                            "code": "dnr",
                        }
                    ]
                }
            ],
            "patient": {"reference": f"Patient/pat-{self.tag}-{n}"},
            "dateTime": "2026-01-15T10:30:00+00:00",
            "organization": [{"reference": f"Organization/{self.org_id()}"}],
            "policy": [
                {"uri": "https://www.resus.org.uk/library/additional-guidance/guidance-resuscitation"}
            ],
            "provision": {
                "type": "deny",
                "period": {"start": "2026-01-15"},
                "code": [{"coding": [{"system": SNOMED, "code": "89666000"}]}],
            },
        }
        consent.update(changes)
        return consent

    def record(self, n: int) -> list[dict[str, Any]]:
        return [self.organization(), self.patient(n), self.consent(n)]

    def write_bundles(
        self, directory: Path, per_bundle: int, overrides: dict[int, dict] | None = None
    ) -> Path:
        """Transaction bundles of PUT entries, ``per_bundle`` records each, plus entry-origins.ndjson."""
        directory.mkdir(parents=True, exist_ok=True)
        overrides = overrides or {}
        origins = []
        for number, first in enumerate(range(0, self.records, per_bundle), start=1):
            entries: dict[str, dict[str, Any]] = {}
            for n in range(first, min(first + per_bundle, self.records)):
                resources = self.record(n)
                if n in overrides:
                    resources[2] = overrides[n]
                for resource in resources:
                    ref = f"{resource['resourceType']}/{resource['id']}"
                    entries[ref] = resource
                    origins.append({"resource": ref, "origin": f"export.csv, line {n + 2}"})
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": f"https://fhir-dnacpr.invalid/fhir/{ref}",
                        "resource": r,
                        "request": {"method": "PUT", "url": ref},
                    }
                    for ref, r in entries.items()
                ],
            }
            (directory / f"bundle-{number:05d}.json").write_bytes(orjson.dumps(bundle))
        (directory / "entry-origins.ndjson").write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in origins))
        return directory

    # --- checks against the server ------------------------------------------------------------------

    def count(self, base: str) -> int:
        """How many Consents with this run's identifier system the server holds."""
        r = requests.get(
            f"{base}/Consent",
            params={"identifier": f"{self.system}|", "_summary": "count"},
            headers=FHIR_JSON,
            timeout=60,
        )
        r.raise_for_status()
        return int(r.json()["total"])

    def versions(self, base: str, ref: str) -> int:
        r = requests.get(
            f"{base}/{ref}/_history", params={"_summary": "count"}, headers=FHIR_JSON, timeout=60
        )
        r.raise_for_status()
        return int(r.json()["total"])

    def all_refs(self) -> list[str]:
        refs = [f"Organization/{self.org_id()}"]
        for n in range(self.records):
            refs += [f"Patient/pat-{self.tag}-{n}", f"Consent/con-{self.tag}-{n}"]
        return refs


def bundle_resources(directory: Path) -> Iterator[dict]:
    """The resources of a convert output folder in bundle format, in order."""
    for path in sorted(directory.glob("bundle-*.json")):
        for entry in orjson.loads(path.read_bytes())["entry"]:
            yield entry["resource"]


def delete_all(client: FhirClient, resources: list[dict]) -> None:
    """Remove this run's resources so a long-lived server does not collect them (best effort)."""
    refs = list(dict.fromkeys(f"{r['resourceType']}/{r['id']}" for r in resources))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": ref}} for ref in refs],
    }
    client.request("POST", client.base_url, data=orjson.dumps(bundle))
