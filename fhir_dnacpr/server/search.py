"""Searching with paging: follow ``next`` links until the server has nothing more.

A ``next`` link that repeats (a server bug reported against fhirpy, issue #47) or a page that
repeats the previous page's entries would loop for ever; both end the search with a warning
instead. Each page's ``Bundle.meta.lastUpdated`` (else its ``Date`` header) is kept as the server's
own clock reading, which incremental pulls use as their next watermark.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from fhir_dnacpr.server.client import FhirClient, expect_json

log = logging.getLogger("fhir_dnacpr.server.search")

Params = Mapping[str, Any] | list[tuple[str, Any]]


@dataclass
class SearchStats:
    pages: int = 0
    matches: int = 0
    includes: int = 0
    server_time: datetime | None = None
    loop_guard_tripped: bool = False
    warnings: list[str] = field(default_factory=list)


def server_time(bundle: dict[str, Any], response: requests.Response) -> datetime | None:
    """When the server ran the search, by its own clock: ``meta.lastUpdated``, else ``Date``."""
    stamp = (bundle.get("meta") or {}).get("lastUpdated")
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    date_header = response.headers.get("Date")
    if date_header:
        try:
            return parsedate_to_datetime(date_header).astimezone(UTC)
        except (TypeError, ValueError):
            return None
    return None


def search_pages(
    client: FhirClient, path: str, params: Params | None = None, stats: SearchStats | None = None
) -> Iterator[dict[str, Any]]:
    """Each searchset Bundle page of ``GET [base]/path?params``, following ``next``."""
    stats = stats if stats is not None else SearchStats()
    seen_links: set[str] = set()
    previous_ids: tuple[str, ...] | None = None
    url: str | None = path
    query: Params | None = params
    while url:
        response = client.request("GET", url, params=query)
        bundle = expect_json(response)
        if bundle.get("resourceType") != "Bundle":
            raise ValueError(f"a search answered {bundle.get('resourceType')!r}, not a Bundle")
        stats.pages += 1
        if stats.server_time is None:
            stats.server_time = server_time(bundle, response)
        ids = tuple(
            f"{(e.get('resource') or {}).get('resourceType')}/{(e.get('resource') or {}).get('id')}"
            for e in bundle.get("entry") or ()
        )
        if ids and ids == previous_ids:
            _trip(stats, "a page repeated the previous page's entries; paging stopped")
            return
        previous_ids = ids
        yield bundle
        next_url = next(
            (link.get("url") for link in bundle.get("link") or () if link.get("relation") == "next"), None
        )
        if next_url and next_url in seen_links:
            _trip(stats, "the server sent a next link it had sent before; paging stopped")
            return
        if next_url:
            seen_links.add(next_url)
        url, query = next_url, None


def search_resources(
    client: FhirClient, path: str, params: Params | None = None, stats: SearchStats | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(mode, resource)`` for every entry: mode ``match`` or ``include`` (``outcome`` skipped)."""
    stats = stats if stats is not None else SearchStats()
    for page in search_pages(client, path, params, stats):
        for entry in page.get("entry") or ():
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            if mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
                continue
            if mode == "include":
                stats.includes += 1
            else:
                stats.matches += 1
            yield mode, resource


def _trip(stats: SearchStats, message: str) -> None:
    stats.loop_guard_tripped = True
    stats.warnings.append(message)
    log.warning(message)
