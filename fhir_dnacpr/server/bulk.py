"""Bulk Data ``$export`` (FHIR Bulk Data Access IG): kick off, poll, download, clean up, resume.

1. Kick-off: ``GET [base]/$export`` (or ``Patient/$export``) with ``Prefer: respond-async`` and
   ``_type``/``_since``; the server answers 202 with the status URL in ``Content-Location``.
2. Poll the status URL: 202 means "not yet" (``X-Progress``, ``Retry-After``), waits honour
   ``Retry-After`` but are capped (``max_wait``; HAPI asks for 120 s) and back off exponentially
   when the server gives no hint; 200 carries the manifest; 4xx/5xx carries an OperationOutcome.
3. Download each ``output`` file (``Accept: application/fhir+ndjson``) into ``Type.ndjson``, the
   ``error`` files into ``bulk-errors.ndjson`` and ``deleted`` ones into ``bulk-deleted.ndjson``.
4. ``DELETE`` the status URL so the server can drop the files.

The status URL is saved in ``bulk-export.json`` in the output folder as soon as the job starts, so
an interrupted export resumes polling the same job instead of starting another.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.server.client import FhirClient, json_body
from fhir_dnacpr.server.errors import FhirResponseError, UnsupportedError
from fhir_dnacpr.server.retry import parse_retry_after

log = logging.getLogger("fhir_dnacpr.server.bulk")

STATE_FILE = "bulk-export.json"
ERRORS_FILE = "bulk-errors.ndjson"
DELETED_FILE = "bulk-deleted.ndjson"
NDJSON = "application/fhir+ndjson"


@dataclass
class BulkResult:
    status_url: str
    manifest: dict[str, Any]
    resources: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    deleted: int = 0
    polls: int = 0
    resumed: bool = False
    cleaned_up: bool = False
    progress: str | None = None


class BulkExporter:
    """Runs ``$export`` jobs against one server; ``timeout`` bounds the whole wait (seconds)."""

    def __init__(
        self,
        client: FhirClient,
        *,
        max_wait: float = 120.0,
        min_wait: float = 1.0,
        timeout: float = 24 * 3600.0,
    ) -> None:
        self.client = client
        self.max_wait = max_wait
        self.min_wait = min_wait
        self.timeout = timeout

    def kick_off(
        self,
        *,
        types: tuple[str, ...] = (),
        since: str | None = None,
        level: str = "system",
        type_filters: tuple[str, ...] = (),
    ) -> str:
        caps = self.client.capabilities()
        if not caps.supports_bulk_export:
            raise UnsupportedError("the server's capability statement declares no $export")
        params: list[tuple[str, str]] = [("_outputFormat", NDJSON)]
        if types:
            params.append(("_type", ",".join(types)))
        if since:
            params.append(("_since", since))
        params.extend(("_typeFilter", f) for f in type_filters)
        path = "$export" if level == "system" else "Patient/$export"
        response = self.client.request("GET", path, params=params, headers={"Prefer": "respond-async"})
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            body = json_body(response)
            raise FhirResponseError(
                f"$export kick-off answered {response.status_code} without a status URL",
                status=response.status_code,
                outcome=body if isinstance(body, dict) else None,
            )
        return location

    def wait(self, status_url: str, result: BulkResult) -> dict[str, Any] | None:
        """Poll until the manifest is ready; None when the server no longer knows the job (404/410)."""
        deadline = time.monotonic() + self.timeout
        quiet_polls = 0
        while True:
            response = self.client.request("GET", status_url)
            result.polls += 1
            if response.status_code == 200:
                manifest = json_body(response)
                if not isinstance(manifest, dict):
                    raise FhirResponseError("the export manifest is not JSON", status=200)
                return manifest
            if response.status_code in (404, 410):
                return None
            if response.status_code != 202:
                body = json_body(response)
                raise FhirResponseError(
                    f"$export status answered {response.status_code}",
                    status=response.status_code,
                    outcome=body if isinstance(body, dict) else None,
                )
            progress = (response.headers.get("X-Progress") or "")[:100]
            if progress:  # the last progress the server reported
                result.progress = progress
                log.info("$export: %s", progress)
            hinted = parse_retry_after(response.headers.get("Retry-After"))
            if hinted is None:
                hinted = self.min_wait * (2**quiet_polls)
                quiet_polls += 1
            delay = max(self.min_wait, min(hinted, self.max_wait))
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"$export not finished after {self.timeout:.0f} s; re-run to resume")
            self.client.sleep(delay)

    def download(self, manifest: dict[str, Any], out_dir: Path, result: BulkResult) -> None:
        counts: Counter[str] = Counter()
        handles: dict[str, Any] = {}
        for old in (*out_dir.glob("[A-Z]*.ndjson"), out_dir / ERRORS_FILE, out_dir / DELETED_FILE):
            old.unlink(missing_ok=True)  # a fresh, complete picture: no files of an earlier pull
        try:
            for item in manifest.get("output") or ():
                rtype = str(item.get("type") or "Unknown")
                if not rtype.isalpha():
                    raise FhirResponseError(f"manifest names an odd resource type {rtype!r}", status=200)
                if rtype not in handles:
                    handles[rtype] = (out_dir / f"{rtype}.ndjson").open("wb")
                counts[rtype] += self._fetch_file(item["url"], handles[rtype])
            for key, name in (("error", ERRORS_FILE), ("deleted", DELETED_FILE)):
                items = manifest.get(key) or ()
                if not items:
                    continue
                with (out_dir / name).open("wb") as handle:
                    lines = sum(self._fetch_file(i["url"], handle) for i in items)
                setattr(result, "errors" if key == "error" else "deleted", lines)
        finally:
            for handle in handles.values():
                handle.close()
        result.resources = dict(sorted(counts.items()))

    def _fetch_file(self, url: str, handle: Any) -> int:
        """Stream one NDJSON file into ``handle``; returns its line count."""
        response = self.client.request("GET", url, accept=NDJSON, stream=True)
        if response.status_code != 200:
            raise FhirResponseError(
                f"export file download answered {response.status_code}", status=response.status_code
            )
        lines = 0
        tail = b"\n"
        try:
            for chunk in response.iter_content(chunk_size=1 << 16):
                if chunk:
                    handle.write(chunk)
                    lines += chunk.count(b"\n")
                    tail = chunk[-1:]
        finally:
            response.close()
        if tail != b"\n":
            handle.write(b"\n")
            lines += 1
        return lines

    def delete(self, status_url: str) -> bool:
        """Tell the server it may drop the job's files; a 404 (already gone) is fine too."""
        response = self.client.request("DELETE", status_url)
        return response.status_code in (200, 202, 204, 404)

    def run(
        self,
        out_dir: str | Path,
        *,
        types: tuple[str, ...] = (),
        since: str | None = None,
        level: str = "system",
        type_filters: tuple[str, ...] = (),
        resume: bool = True,
    ) -> BulkResult:
        """Kick off (or resume), wait, download, clean up."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state_path = out / STATE_FILE
        saved = _read_state(state_path) if resume else None
        status_url = None
        resumed = False
        if saved and saved.get("server") == self.client.base_url:
            status_url, resumed = saved.get("status_url"), True
        manifest = None
        result = BulkResult(status_url or "", {})
        if status_url:
            manifest = self.wait(status_url, result)
            if manifest is None:
                log.warning("the saved $export job is gone; starting a new one")
                status_url, resumed = None, False
        if status_url is None:
            status_url = self.kick_off(types=types, since=since, level=level, type_filters=type_filters)
            state_path.write_bytes(
                orjson.dumps(
                    {
                        "server": self.client.base_url,
                        "status_url": status_url,
                        "types": list(types),
                        "since": since,
                    }
                )
            )
            result.status_url = status_url
            manifest = self.wait(status_url, result)
            if manifest is None:
                raise FhirResponseError("the server lost the $export job it had just accepted", status=404)
        assert manifest is not None
        result.manifest, result.resumed, result.status_url = manifest, resumed, status_url
        self.download(manifest, out, result)
        result.cleaned_up = self.delete(status_url)
        state_path.unlink(missing_ok=True)
        return result


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
