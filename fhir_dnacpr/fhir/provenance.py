"""Provenance: one per output chunk, saying which export and which tool produced those resources.

The id comes from the source file's SHA-256 and the chunk number, so a re-run of the same export
replaces (PUT) its Provenance instead of piling up new ones; only ``recorded`` changes between runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_dnacpr import __version__
from fhir_dnacpr import canonical as c
from fhir_dnacpr.fhir.ids import IdFactory
from fhir_dnacpr.terminology import codes

ASSEMBLER = codes.Code(codes.PROVENANCE_PARTICIPANT_TYPE, "assembler", "Assembler")


def build_provenance(
    targets: list[dict[str, Any]] | list[str],
    source_file_name: str,
    source_sha256: str,
    run_time: datetime,
    chunk_no: int,
    ids: IdFactory,
) -> dict[str, Any]:
    """The Provenance for one chunk; ``targets`` are the chunk's resources or their ``Type/id``
    references (each cited once, in order).

    Only the file's base name is recorded: a full path can name a person's folder.
    """
    if run_time.tzinfo is None:
        raise ValueError("run_time must carry a time zone (Provenance.recorded is an instant)")
    if not targets:
        raise ValueError("a Provenance needs at least one target")
    refs: list[dict[str, str]] = []
    seen: set[str] = set()
    for resource in targets:
        ref = resource if isinstance(resource, str) else f"{resource['resourceType']}/{resource['id']}"
        if ref not in seen:
            seen.add(ref)
            refs.append({"reference": ref})
    return {
        "resourceType": "Provenance",
        "id": ids.id_for("Provenance", source_sha256, str(chunk_no)),
        "meta": {"profile": [c.PROFILE_UKCORE_PROVENANCE]},
        "target": refs,
        "recorded": run_time.isoformat(),
        "agent": [
            {
                "type": {"coding": [ASSEMBLER.coding()]},
                "who": {"display": f"{c.TOOL_DEVICE_NAME} {__version__}"},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": c.SOURCE_FILE_SHA256, "value": source_sha256},
                    "display": source_file_name.replace("\\", "/").rsplit("/", 1)[-1],
                },
            }
        ],
    }
