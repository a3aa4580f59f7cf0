"""Base FHIR R4 definitions (hl7.fhir.r4.core 4.0.1), shipped as one compact data file.

The file is produced at build time by ``scripts/extract-r4-core`` from the official package, so the
runtime needs neither the network nor the package itself. Provenance is in ``data/SOURCE.json``.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
CORE_FILE = DATA_DIR / "r4-core.json.gz"
FHIR_VERSION = "4.0.1"


@cache
def core_definitions() -> dict[str, list[dict[str, Any]]]:
    """The core conformance resources by resourceType (StructureDefinition, CodeSystem, ValueSet).

    StructureDefinitions keep only validator-relevant snapshot fields; constraints are restored from
    the shared table (the same dict objects are shared between elements: treat them as read-only).
    CodeSystem concepts are compact ``[code, display, children?]`` lists (see ``iter_concepts``).
    """
    data = json.loads(gzip.decompress(CORE_FILE.read_bytes()))
    constraints = data.pop("constraints")
    for sd in data["StructureDefinition"]:
        for element in sd["snapshot"]["element"]:
            if "constraint" in element:
                element["constraint"] = [constraints[i] for i in element["constraint"]]
    return data


def source_info() -> dict[str, Any]:
    """Where the shipped core data came from (package, version, tgz sha256, extraction date)."""
    return json.loads((DATA_DIR / "SOURCE.json").read_text())


def iter_concepts(concepts: list, parent: str | None = None):
    """Yield ``(code, display, parent_code)`` for compact or FHIR-shaped concept lists, depth first."""
    for concept in concepts:
        if isinstance(concept, dict):
            code, display, children = concept["code"], concept.get("display"), concept.get("concept")
        else:
            code, display = concept[0], concept[1]
            children = concept[2] if len(concept) > 2 else None
        yield code, display, parent
        if children:
            yield from iter_concepts(children, code)
