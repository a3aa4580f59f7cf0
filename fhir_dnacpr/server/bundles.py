"""Cutting resources into the bundles a push sends: units that travel together, dedupe, request bodies.

A *unit* is a resource plus everything it references inside its source bundle (a Consent with its
Patient, Practitioner, Organization …). Units are never split, so a transaction always carries what
its references need even on a server that enforces referential integrity, and ``--bundle-size`` can
re-cut the converter's bundles freely. A bundle is units packed up to ``size`` distinct resources (a
single unit larger than that travels alone). Inside a bundle each ``Type/id`` appears once: identical
copies (the shared Organization of every record) are dropped and counted; if two *different*
versions of one resource meet, the later one is sent and the earlier reported as superseded.

*Annotation* resources (Provenance, AuditEvent) reference everything in their chunk; as units they
would glue whole chunks together, so they are held back and sent after all other bundles.

Each bundle's ``digest`` (over its resources) is what the checkpoint remembers, so a resumed push
skips exactly the bundles the server already acknowledged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

ANNOTATION_TYPES = frozenset({"Provenance", "AuditEvent"})
_URN_NAMESPACE = uuid.UUID("6f6b1c1e-2f3a-4d6b-9a51-3c0f1d7e8a20")


@dataclass(frozen=True, slots=True)
class PushEntry:
    """One resource to write: its ``Type/id``, the resource, and the source record it came from."""

    ref: str
    resource: dict[str, Any]
    origin: Any = None
    full_url: str | None = None

    @property
    def resource_type(self) -> str:
        return self.ref.split("/", 1)[0]

    def canonical_bytes(self) -> bytes:
        return orjson.dumps(self.resource, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def of(cls, resource: dict[str, Any], origin: Any = None, full_url: str | None = None) -> PushEntry:
        resource_type = resource.get("resourceType")
        resource_id = resource.get("id")
        if not resource_type or not resource_id:
            raise ValueError("a resource to push needs resourceType and id (deterministic ids)")
        return cls(f"{resource_type}/{resource_id}", resource, origin, full_url)


@dataclass(frozen=True, slots=True)
class PushBundle:
    """A numbered bundle ready to send, with what dedupe dropped from it."""

    number: int
    entries: tuple[PushEntry, ...]
    duplicates: int = 0
    superseded: tuple[PushEntry, ...] = ()
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.digest:
            sha = hashlib.sha256()
            for entry in self.entries:
                sha.update(entry.ref.encode())
                sha.update(b"\0")
                sha.update(entry.canonical_bytes())
                sha.update(b"\n")
            object.__setattr__(self, "digest", sha.hexdigest())


def references(node: Any) -> Iterator[str]:
    """Every ``reference`` string inside a resource (nested, in lists, in contained resources)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif isinstance(value, dict | list):
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def local_ref(reference: str) -> str:
    """``http://x/fhir/Patient/1/_history/2`` → ``Patient/1``; ``Patient/1`` stays; others unchanged."""
    path = reference.split("?", 1)[0].split("#", 1)[0]
    parts = [p for p in path.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return reference


def units_of(entries: list[PushEntry]) -> tuple[list[list[PushEntry]], list[PushEntry]]:
    """Split one source bundle into reference-closed units (dependencies first) and annotations.

    Roots are the entries nothing else in the bundle references; a unit is a root plus the closure of
    what it references. Entries on a reference cycle that no root reaches become roots themselves.
    """
    annotations = [e for e in entries if e.resource_type in ANNOTATION_TYPES]
    body = [e for e in entries if e.resource_type not in ANNOTATION_TYPES]
    by_key: dict[str, int] = {}
    for i, entry in enumerate(body):
        by_key.setdefault(entry.ref, i)
        if entry.full_url:
            by_key.setdefault(entry.full_url, i)
    edges: list[list[int]] = []
    referenced: set[int] = set()
    for i, entry in enumerate(body):
        targets = []
        for reference in references(entry.resource):
            j = by_key.get(reference, by_key.get(local_ref(reference)))
            if j is not None and j != i and j not in targets:
                targets.append(j)
                referenced.add(j)
        edges.append(targets)
    covered: set[int] = set()
    units: list[list[PushEntry]] = []

    def closure(root: int) -> list[int]:
        order: list[int] = []
        seen: set[int] = set()
        stack: list[tuple[int, int]] = [(root, 0)]
        seen.add(root)
        while stack:  # iterative post-order: dependencies before dependants
            node, next_edge = stack.pop()
            if next_edge < len(edges[node]):
                stack.append((node, next_edge + 1))
                child = edges[node][next_edge]
                if child not in seen:
                    seen.add(child)
                    stack.append((child, 0))
            else:
                order.append(node)
        return order

    roots = [i for i in range(len(body)) if i not in referenced]
    for root in roots:
        members = closure(root)  # shared dependencies repeat across units; the packer dedupes them
        covered.update(members)
        units.append([body[m] for m in members])
    for start in range(len(body)):
        if start not in covered:  # only on a reference cycle that no root reaches
            members = closure(start)
            covered.update(members)
            units.append([body[m] for m in members])
    return units, annotations


class Packer:
    """Packs units into bundles of at most ``size`` distinct resources, deduplicating as it goes."""

    def __init__(self, size: int, first_number: int = 1) -> None:
        if size < 1:
            raise ValueError("bundle size must be >= 1")
        self.size = size
        self.next_number = first_number
        self._entries: dict[str, PushEntry] = {}
        self._digests: dict[str, bytes] = {}
        self._duplicates = 0
        self._superseded: list[PushEntry] = []

    def add(self, unit: list[PushEntry]) -> Iterator[PushBundle]:
        """Add a unit; yields a full bundle first when the unit would not fit in the current one."""
        new = {e.ref for e in unit} - self._entries.keys()
        if self._entries and len(self._entries) + len(new) > self.size:
            yield self._emit()
        for entry in unit:
            self._put(entry)

    def flush(self) -> Iterator[PushBundle]:
        if self._entries:
            yield self._emit()

    def _put(self, entry: PushEntry) -> None:
        digest = hashlib.blake2b(entry.canonical_bytes(), digest_size=16).digest()
        previous = self._entries.get(entry.ref)
        if previous is None:
            self._entries[entry.ref] = entry
            self._digests[entry.ref] = digest
        elif self._digests[entry.ref] == digest:
            self._duplicates += 1
        else:
            self._superseded.append(previous)
            self._entries[entry.ref] = entry
            self._digests[entry.ref] = digest

    def _emit(self) -> PushBundle:
        bundle = PushBundle(
            self.next_number, tuple(self._entries.values()), self._duplicates, tuple(self._superseded)
        )
        self.next_number += 1
        self._entries = {}
        self._digests = {}
        self._duplicates = 0
        self._superseded = []
        return bundle


def pack(units: Iterable[list[PushEntry]], size: int, first_number: int = 1) -> Iterator[PushBundle]:
    """Bundles from a stream of units (see ``Packer``)."""
    packer = Packer(size, first_number)
    for unit in units:
        yield from packer.add(unit)
    yield from packer.flush()


def identifier_match(resource: dict[str, Any]) -> str | None:
    """``identifier=system|value`` search for the resource's first complete identifier, URL-encoded."""
    for identifier in resource.get("identifier") or ():
        system, value = identifier.get("system"), identifier.get("value")
        if system and value:
            return f"identifier={quote(system, safe='')}%7C{quote(value, safe='')}"
    return None


class ConditionalWrites:
    """Rewrites entries for servers that refuse client-assigned ids (per resource type).

    For a type in ``types`` the entry becomes a conditional update ``PUT Type?identifier=sys|val``
    (or, where the server has no conditional update, a conditional create ``POST`` with
    ``ifNoneExist``), without its id, under a ``urn:uuid`` fullUrl; references to it inside the same
    bundle point at that urn (the server swaps in the id it assigns) and references from later
    bundles become conditional references ``Type?identifier=…``. A resource with no identifier
    cannot be matched and is refused locally, with a reason, rather than duplicated by a plain POST.
    """

    def __init__(
        self,
        conditional_update: set[str] | None = None,
        conditional_create: set[str] | None = None,
        base_url: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.types: set[str] = set()
        self.conditional_update = conditional_update
        self.conditional_create = conditional_create
        self._match_urls: dict[str, str] = {}

    def enable(self, resource_type: str) -> None:
        self.types.add(resource_type)

    def applies(self, entries: Iterable[PushEntry]) -> bool:
        return bool(self.types) and any(e.resource_type in self.types for e in entries)

    def rewrite(self, entries: tuple[PushEntry, ...]) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """Request entries for ``entries``; the second value maps index → reason for those refused."""
        urns: dict[str, str] = {}
        refused: dict[int, str] = {}
        for i, entry in enumerate(entries):
            if entry.resource_type not in self.types:
                continue
            match = identifier_match(entry.resource)
            if match is None:
                refused[i] = (
                    f"the server does not accept client-assigned ids for {entry.resource_type} and this "
                    "resource has no identifier to match on; it was not sent"
                )
                continue
            urns[entry.ref] = f"urn:uuid:{uuid.uuid5(_URN_NAMESPACE, entry.ref)}"
            self._match_urls[entry.ref] = f"{entry.resource_type}?{match}"
        out: list[dict[str, Any]] = []
        for i, entry in enumerate(entries):
            if i in refused:
                continue
            resource = _rewrite_refs(entry.resource, urns, self._match_urls)
            if entry.ref in urns:
                resource = {k: v for k, v in resource.items() if k != "id"}
                match = self._match_urls[entry.ref].split("?", 1)[1]
                if self.conditional_update is None or entry.resource_type in self.conditional_update:
                    request = {"method": "PUT", "url": self._match_urls[entry.ref]}
                else:
                    request = {"method": "POST", "url": entry.resource_type, "ifNoneExist": match}
                out.append({"fullUrl": urns[entry.ref], "resource": resource, "request": request})
            else:
                out.append(plain_entry(entry, resource, self.base_url))
        return out, refused


def _rewrite_refs(node: Any, urns: dict[str, str], match_urls: dict[str, str]) -> Any:
    if not urns and not match_urls:
        return node
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                local = local_ref(value)
                out[key] = urns.get(local) or match_urls.get(local) or value
            else:
                out[key] = _rewrite_refs(value, urns, match_urls)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, urns, match_urls) for item in node]
    return node


def plain_entry(
    entry: PushEntry, resource: dict[str, Any] | None = None, base_url: str | None = None
) -> dict[str, Any]:
    """``PUT Type/id`` — update-as-create with our deterministic id, idempotent on re-runs.

    An absolute ``fullUrl`` written for a placeholder base is re-based on the server we push to, as
    R4 wants a PUT entry's fullUrl to agree with where the resource will live; ``urn:uuid`` stays.
    """
    out: dict[str, Any] = {}
    full_url = entry.full_url
    if base_url and (full_url is None or full_url.startswith(("http://", "https://"))):
        full_url = f"{base_url}/{entry.ref}"
    if full_url:
        out["fullUrl"] = full_url
    out["resource"] = entry.resource if resource is None else resource
    out["request"] = {"method": "PUT", "url": entry.ref}
    return out


def bundle_body(kind: str, request_entries: list[dict[str, Any]]) -> dict[str, Any]:
    if kind not in ("transaction", "batch"):
        raise ValueError(f"bundle type must be transaction or batch, not {kind!r}")
    return {"resourceType": "Bundle", "type": kind, "entry": request_entries}
