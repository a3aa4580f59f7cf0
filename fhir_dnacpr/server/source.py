"""Reading a ``convert`` output directory as the stream of bundles a push sends.

Two layouts are understood, as the writers produce them:

- ``bundle-00001.json`` … — transaction bundles of ``PUT Type/id`` entries. Without a bundle size the
  files are sent as they are (the converter already made each one self-contained); with one, they
  are re-cut into reference-closed units and packed (``bundles.py``), and annotation resources
  (Provenance) follow once everything else is on the server.
- ``Consent.ndjson``, ``Patient.ndjson`` … — one resource a line. Types are sent in dependency
  order, one *wave* per tier (Organization before Patient before Consent …), and the pusher waits
  for a wave to finish before the next starts, so references resolve even with many threads.

``entry-origins.ndjson`` maps each ``Type/id`` to the source record it came from, so every verdict
the server gives lands on a record. A line of input that cannot be read is reported (file and line)
through ``problems`` and the rest goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.server.bundles import ANNOTATION_TYPES, PushBundle, PushEntry, pack, units_of

ORIGINS_FILE = "entry-origins.ndjson"
DEFAULT_NDJSON_BUNDLE_SIZE = 100
_BUNDLE_FILE = re.compile(r"^bundle-\d+\.(json|xml)$")
MAX_ORIGINS_KEPT = 10
_TIERS = {
    "Organization": 0,
    "Location": 0,
    "Practitioner": 1,
    "Device": 1,
    "Patient": 1,
    "PractitionerRole": 2,
    "RelatedPerson": 2,
    "DocumentReference": 2,
    "Condition": 2,
    "Consent": 4,
    "CarePlan": 5,
    "Provenance": 6,
    "AuditEvent": 6,
}
_UNKNOWN_TIER = 3


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A piece of input that could not become a push entry, with where it is."""

    origin: str
    message: str
    resource: str | None = None


@dataclass
class PushPlan:
    """The bundles of a push, in waves; iterate ``bundles()`` once."""

    directory: Path
    layout: str
    bundle_size: int | None
    origins: dict[str, Any]
    problems: list[InputProblem] = field(default_factory=list)

    def bundles(self) -> Iterator[tuple[int, PushBundle]]:
        """``(wave, bundle)`` pairs; bundles of one wave may run concurrently, waves run in order."""
        if self.layout == "bundles":
            yield from self._from_bundle_files()
        else:
            yield from self._from_ndjson_files()

    # --- bundle-*.json -------------------------------------------------------------------------

    def _bundle_files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if _BUNDLE_FILE.match(p.name))

    def _entries_of(self, path: Path) -> list[PushEntry]:
        try:
            bundle = _read_bundle(path)
        except (OSError, ValueError) as exc:
            self.problems.append(InputProblem(path.name, f"cannot read the bundle: {exc}"))
            return []
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            self.problems.append(InputProblem(path.name, "not a FHIR Bundle"))
            return []
        entries = []
        for index, raw in enumerate(bundle.get("entry") or ()):
            resource = raw.get("resource") if isinstance(raw, dict) else None
            entry = self._entry(
                resource, f"{path.name}, entry {index}", raw.get("fullUrl") if resource else None
            )
            if entry is not None:
                entries.append(entry)
        return entries

    def _from_bundle_files(self) -> Iterator[tuple[int, PushBundle]]:
        if self.bundle_size is None:
            for number, path in enumerate(self._bundle_files(), start=1):
                entries = self._entries_of(path)
                if entries:
                    packed = list(pack([entries], max(len(entries), 1), number))
                    yield 1, packed[0]
            return
        held_back: list[list[PushEntry]] = []
        number = 1

        def units() -> Iterator[list[PushEntry]]:
            for path in self._bundle_files():
                body, annotations = units_of(self._entries_of(path))
                held_back.extend([a] for a in annotations)
                yield from body

        for bundle in pack(units(), self.bundle_size, number):
            number = bundle.number + 1
            yield 1, bundle
        for bundle in pack(held_back, self.bundle_size, number):
            yield 2, bundle

    # --- Type.ndjson ----------------------------------------------------------------------------

    def _ndjson_files(self) -> list[Path]:
        files = [
            p
            for p in self.directory.iterdir()
            if p.suffix == ".ndjson" and p.name[:1].isupper() and p.is_file()
        ]
        return sorted(files, key=lambda p: (_tier(p.stem.split(".")[0]), p.name))

    def _from_ndjson_files(self) -> Iterator[tuple[int, PushBundle]]:
        size = self.bundle_size or DEFAULT_NDJSON_BUNDLE_SIZE
        number = 1
        files = self._ndjson_files()
        tiers = sorted({_tier(p.stem.split(".")[0]) for p in files})
        for wave, tier in enumerate(tiers, start=1):
            units = (
                [entry]
                for path in files
                if _tier(path.stem.split(".")[0]) == tier
                for entry in self._ndjson_entries(path)
            )
            for bundle in pack(units, size, number):
                number = bundle.number + 1
                yield wave, bundle

    def _ndjson_entries(self, path: Path) -> Iterator[PushEntry]:
        with path.open("rb") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path.name}, line {line_no}"
                try:
                    resource = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    self.problems.append(InputProblem(where, f"invalid JSON: {exc}"))
                    continue
                entry = self._entry(resource, where)
                if entry is not None:
                    yield entry

    def _entry(self, resource: Any, where: str, full_url: str | None = None) -> PushEntry | None:
        if not isinstance(resource, dict):
            self.problems.append(InputProblem(where, "entry holds no resource"))
            return None
        try:
            entry = PushEntry.of(resource, full_url=full_url)
        except ValueError as exc:
            self.problems.append(InputProblem(where, str(exc), resource.get("resourceType")))
            return None
        origin = self.origins.get(entry.ref)
        return PushEntry(entry.ref, resource, origin if origin is not None else where, full_url)


def _read_bundle(path: Path) -> Any:
    if path.suffix == ".xml":
        from fhir_dnacpr.fhirxml import parse_xml  # lxml only when XML is there

        bundle, issues = parse_xml(path)
        if bundle is None:
            raise ValueError("; ".join(i.message for i in issues) or "unreadable FHIR XML")
        return bundle
    return orjson.loads(path.read_bytes())


def _tier(resource_type: str) -> int:
    return _TIERS.get(resource_type, _UNKNOWN_TIER)


def read_origins(path: Path) -> dict[str, Any]:
    """``Type/id`` → source origin, from ``entry-origins.ndjson`` (absent file: empty map).

    Lines are ``{"resource": "Type/id", "origin": …}`` (``ref``/``origins`` keys and single-pair
    ``{"Type/id": origin}`` lines are read too). A resource shared by several records (their Patient,
    an Organization) keeps a list of its first ``MAX_ORIGINS_KEPT`` distinct origins.
    """
    origins: dict[str, Any] = {}
    if not path.is_file():
        return origins
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(item, dict):
                continue
            ref = item.get("resource") or item.get("ref") or item.get("entry")
            if isinstance(ref, str):
                origin = item.get("origin", item.get("origins"))
            elif len(item) == 1:
                ((ref, origin),) = item.items()
            else:
                continue
            _add_origin(origins, ref, origin)
    return origins


def _add_origin(origins: dict[str, Any], ref: str, origin: Any) -> None:
    known = origins.get(ref)
    if known is None:
        origins[ref] = origin
    elif isinstance(known, list):
        if origin not in known and len(known) < MAX_ORIGINS_KEPT:
            known.append(origin)
    elif known != origin:
        origins[ref] = [known, origin]


def open_plan(directory: str | Path, bundle_size: int | None = None) -> PushPlan:
    """The push plan for a convert output directory (bundle files preferred over NDJSON)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    origins = read_origins(directory / ORIGINS_FILE)
    has_bundles = any(_BUNDLE_FILE.match(p.name) for p in directory.iterdir())
    layout = "bundles" if has_bundles else "ndjson"
    plan = PushPlan(directory, layout, bundle_size, origins)
    if layout == "ndjson" and not plan._ndjson_files():
        raise FileNotFoundError(f"{directory} holds no bundle-*.json or Type.ndjson files to push")
    return plan


__all__ = ["ANNOTATION_TYPES", "InputProblem", "PushPlan", "open_plan", "read_origins"]
