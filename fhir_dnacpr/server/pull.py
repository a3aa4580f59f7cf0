"""Pulling DNACPR decisions and care plans back from a FHIR server, as FHIR NDJSON.

A pull searches each type (Consent, CarePlan) with the filters asked for — one person by NHS
number (a chained search, ``patient.identifier=https://fhir.nhs.uk/Id/nhs-number|…``), category,
status, ``_lastUpdated`` — with ``_include`` for what the server can include, follows paging, and
then fetches whatever the pulled resources still reference (RelatedPerson, DocumentReference …),
so the output is complete enough to parse back into canonical records.

Incremental sync keeps a watermark per server and query in a state file: the server's own clock
reading when the previous pull's searches ran (``Bundle.meta.lastUpdated`` or ``Date``), never the
client's, so clock skew cannot open a gap; the next pull asks for ``_lastUpdated=ge<watermark>``.
Output: ``Type.ndjson`` per resource type, each resource once, and ``pull-summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fhir_dnacpr import canonical
from fhir_dnacpr.server.bundles import local_ref, references
from fhir_dnacpr.server.client import FhirClient
from fhir_dnacpr.server.errors import FhirResponseError, UnsupportedError
from fhir_dnacpr.server.search import SearchStats, search_resources
from fhir_dnacpr.terminology import codes

SUMMARY_FILE = "pull-summary.json"
DEFAULT_TYPES = ("Consent", "CarePlan")
DEFAULT_CATEGORIES = {
    "Consent": f"{codes.CATEGORY_DNR.system}|{codes.CATEGORY_DNR.code}",
    "CarePlan": f"{codes.ACP_CATEGORY.system}|{codes.ACP_CATEGORY.code}",
}
WANTED_INCLUDES = {
    "Consent": (
        "Consent:patient",
        "Consent:actor",
        "Consent:organization",
        "Consent:consentor",
        "Consent:source-reference",
    ),
    "CarePlan": (
        "CarePlan:subject",
        "CarePlan:patient",
        "CarePlan:performer",
        "CarePlan:condition",
        "CarePlan:care-team",
    ),
}
PAGE_SIZE = 200
ID_BATCH = 50
MAX_REFERENCE_DEPTH = 4


@dataclass(frozen=True, slots=True)
class PullQuery:
    """What to pull. ``category`` ``None`` means the DNACPR/ACP categories, ``"any"`` no filter."""

    patient: str | None = None
    types: tuple[str, ...] = DEFAULT_TYPES
    category: str | None = None
    status: str | None = None
    since: str | None = None

    def params(self, resource_type: str, includes: Iterable[str] = ()) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = [("_count", str(PAGE_SIZE))]
        if self.patient:
            name = "identifier" if resource_type == "Patient" else "patient.identifier"
            params.append((name, f"{canonical.NHS_NUMBER}|{self.patient}"))
        category = DEFAULT_CATEGORIES.get(resource_type) if self.category is None else self.category
        if category and category != "any":
            params.append(("category", category))
        if self.status:
            params.append(("status", self.status))
        if self.since:
            params.append(("_lastUpdated", f"ge{self.since}"))
        params.extend(("_include", name) for name in includes)
        return params

    def state_key(self, hide: Any = None) -> str:
        """Key of this query in the watermark file; the NHS number only as a keyed hash."""
        patient = None
        if self.patient:
            patient = hide(self.patient) if hide else "patient"
        return json.dumps(
            {"types": list(self.types), "category": self.category, "status": self.status, "patient": patient},
            sort_keys=True,
        )


@dataclass
class PullSummary:
    server: str
    complete: bool = False
    resources: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    matches: int = 0
    included: int = 0
    referenced_fetched: int = 0
    unresolved_references: int = 0
    warnings: list[str] = field(default_factory=list)
    since: str | None = None
    watermark: str | None = None
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    bulk: dict[str, Any] | None = None
    reverse: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["seconds"] = round(self.seconds, 3)
        data["total"] = sum(self.resources.values())
        return data

    def write(self, out_dir: Path) -> None:
        (out_dir / SUMMARY_FILE).write_bytes(
            orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )


class NdjsonOutput:
    """``Type.ndjson`` files in a folder, each ``Type/id`` once (a later copy is ignored)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("[A-Z]*.ndjson"):
            old.unlink()  # a pull writes a complete picture, never a mix with an earlier one
        self.refs: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._files: dict[str, BinaryIO] = {}

    def write(self, resource: dict[str, Any]) -> bool:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not rtype.isalpha() or not rid:
            return False
        ref = f"{rtype}/{rid}"
        if ref in self.refs:
            return False
        self.refs.add(ref)
        handle = self._files.get(rtype)
        if handle is None:
            handle = (self.out_dir / f"{rtype}.ndjson").open("wb")
            self._files[rtype] = handle
        handle.write(orjson.dumps(resource) + b"\n")
        self.counts[rtype] += 1
        return True

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


class WatermarkStore:
    """Per-server, per-query ``_since`` watermarks in a small JSON file (written atomically)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_state_path()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, server: str, key: str) -> str | None:
        return self._load().get(server.rstrip("/"), {}).get(key)

    def set(self, server: str, key: str, watermark: str) -> None:
        data = self._load()
        data.setdefault(server.rstrip("/"), {})[key] = watermark
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fhir-dnacpr" / "pull-watermarks.json"


class Puller:
    """Search-based pulls from one server (Bulk Data export is ``bulk.BulkExporter``)."""

    def __init__(self, client: FhirClient) -> None:
        self.client = client

    def _includes(self, resource_type: str) -> list[str]:
        caps = self.client.capabilities()
        declared = caps.resource(resource_type)
        wanted = WANTED_INCLUDES.get(resource_type, ())
        if declared is None:
            return []
        return [
            name for name in wanted if name in declared.search_includes or "*" in declared.search_includes
        ]

    def check(self, query: PullQuery) -> None:
        caps = self.client.capabilities()
        if not caps.is_r4:
            raise UnsupportedError(f"the server speaks FHIR {caps.fhir_version or '?'}, not R4 (4.0.x)")
        for resource_type in query.types:
            declared = caps.resource(resource_type)
            if declared is not None and declared.interactions and not declared.supports("search-type"):
                raise UnsupportedError(f"the server does not offer search on {resource_type}")

    def resources(self, query: PullQuery, stats: SearchStats) -> Iterator[dict[str, Any]]:
        """Every matching resource and every included one (duplicates possible; the output dedupes)."""
        for resource_type in query.types:
            params = query.params(resource_type, self._includes(resource_type))
            for _, resource in search_resources(self.client, resource_type, params, stats):
                yield resource

    def pull(
        self,
        query: PullQuery,
        out_dir: str | Path,
        *,
        state: WatermarkStore | None = None,
        incremental: bool = False,
        hide: Any = None,
    ) -> PullSummary:
        """Pull to ``out_dir`` as NDJSON; with ``incremental``, start from (and move) the watermark."""
        started = time.monotonic()
        out = Path(out_dir)
        before = (self.client.stats.requests, self.client.stats.retries)
        summary = PullSummary(server=self.client.base_url)
        key = query.state_key(hide)
        if incremental and query.since is None:
            store = state or WatermarkStore()
            previous = store.get(self.client.base_url, key)
            if previous:
                query = PullQuery(query.patient, query.types, query.category, query.status, previous)
        summary.since = query.since
        self.check(query)
        output = NdjsonOutput(out)
        try:
            stats = SearchStats()
            wanted: set[str] = set()
            for resource in self.resources(query, stats):
                if output.write(resource):
                    wanted.update(_local_refs(resource))
            summary.pages, summary.matches, summary.included = stats.pages, stats.matches, stats.includes
            summary.warnings.extend(stats.warnings)
            fetched, unresolved = self._fetch_references(output, wanted, summary.warnings)
            summary.referenced_fetched, summary.unresolved_references = fetched, unresolved
        finally:
            output.close()
        summary.resources = dict(sorted(output.counts.items()))
        if stats.server_time is not None:
            summary.watermark = _instant(stats.server_time)
            if incremental:
                (state or WatermarkStore()).set(self.client.base_url, key, summary.watermark)
        summary.complete = True
        summary.requests = self.client.stats.requests - before[0]
        summary.retries = self.client.stats.retries - before[1]
        summary.seconds = time.monotonic() - started
        summary.write(out)
        return summary

    def _fetch_references(
        self, output: NdjsonOutput, wanted: set[str], warnings: list[str]
    ) -> tuple[int, int]:
        """Fetch referenced resources not yet pulled (``Type?_id=a,b,…``), a few levels deep."""
        fetched = 0
        missing: set[str] = set()
        for _ in range(MAX_REFERENCE_DEPTH):
            todo = sorted(ref for ref in wanted - output.refs - missing)
            if not todo:
                break
            wanted = set()
            by_type: dict[str, list[str]] = {}
            for ref in todo:
                rtype, rid = ref.split("/", 1)
                by_type.setdefault(rtype, []).append(rid)
            for rtype, ids in by_type.items():
                for start in range(0, len(ids), ID_BATCH):
                    chunk = ids[start : start + ID_BATCH]
                    params = [("_id", ",".join(chunk)), ("_count", str(len(chunk)))]
                    try:
                        for _, resource in search_resources(self.client, rtype, params):
                            if output.write(resource):
                                fetched += 1
                                wanted.update(_local_refs(resource))
                    except FhirResponseError as exc:  # a type the server cannot search: left unresolved
                        warnings.append(f"could not fetch referenced {rtype} resources: HTTP {exc.status}")
                    missing.update(f"{rtype}/{i}" for i in chunk if f"{rtype}/{i}" not in output.refs)
        return fetched, len(missing)


def _local_refs(resource: dict[str, Any]) -> set[str]:
    """Relative ``Type/id`` references of a resource (contained ``#x``, URNs and searches skipped)."""
    out = set()
    for reference in references(resource):
        if reference.startswith(("#", "urn:")) or "?" in reference:
            continue
        local = local_ref(reference)
        parts = local.split("/")
        if len(parts) == 2 and parts[0].isalpha() and parts[0][:1].isupper() and parts[1]:
            out.add(local)
    return out


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
