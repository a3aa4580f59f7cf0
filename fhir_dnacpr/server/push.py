"""Pushing a convert output directory to a FHIR server: bundles in, one verdict per record out.

The flow for one bundle (``Pusher.send_bundle``, run on ``concurrency`` threads):

1. POST it as a ``transaction`` (default) or ``batch`` of ``PUT Type/id`` entries.
2. A transaction refused *as a whole* (4xx, or a 5xx that retries did not cure) is re-sent as a
   batch, so the entries that are fine get written and the bad ones are located one by one — one
   bad record does not sink the ninety-nine good ones beside it. A batch refused as a whole (HAPI
   does so when one resource cannot even be parsed) is halved and re-sent until the bad entries
   stand alone: about 2·log2(n) extra requests per bad entry.
3. Batch entries that failed with a transient status (409 write race, 429, 5xx) are re-sent, with
   backoff, while the retry policy allows.
4. An entry refused because the server does not accept client-assigned ids switches its resource
   type to conditional update (``PUT Type?identifier=…``) and is re-sent that way.
5. An entry refused because something it references is not there *yet* (another bundle, still in
   flight) is retried once after every other bundle is done.

Each verdict is mapped back to its source record through ``entry-origins.ndjson``: failures go to
``push-rejects.ndjson`` ({origin, resource, status, outcome}); counts to ``push-summary.json``. A
bundle is checkpointed once every entry has a definite verdict; if the server becomes unreachable
or refuses our credentials, the run stops, says how much was not sent, and a re-run resumes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fhir_dnacpr.issues import operation_outcome
from fhir_dnacpr.issues import warning as warning_issue
from fhir_dnacpr.server.bundles import ConditionalWrites, PushBundle, PushEntry, bundle_body, plain_entry
from fhir_dnacpr.server.checkpoint import Checkpoint
from fhir_dnacpr.server.client import FhirClient, json_body
from fhir_dnacpr.server.errors import AuthError, ServerError, UnreachableError, UnsupportedError
from fhir_dnacpr.server.outcome import EntryVerdict, Result, classify, failure
from fhir_dnacpr.server.source import InputProblem, open_plan

log = logging.getLogger("fhir_dnacpr.server.push")

REJECTS_FILE = "push-rejects.ndjson"
SUMMARY_FILE = "push-summary.json"
TRANSIENT_ENTRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
_CLIENT_ID_REFUSED = re.compile(
    r"client[- ]assigned|clients may only assign|HAPI-0959|HAPI-0960|not allow(ed)? .*client.*\bid", re.I
)
_MISSING_REFERENCE = re.compile(
    r"HAPI-1094|not found, specified in path|reference.*(not found|does not exist)|unknown reference", re.I
)


@dataclass
class BundleOutcome:
    """Verdicts for one bundle (one per entry, same order) and how they were obtained."""

    bundle: PushBundle
    verdicts: list[EntryVerdict]
    fell_back_to_batch: bool = False
    pending: list[int] = field(default_factory=list)  # entries waiting for the final retry


class _WholeFailure(Exception):
    """The server refused a whole bundle (not an entry): status and OperationOutcome say why."""

    def __init__(self, status: int | None, outcome: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.outcome = outcome


class _NotSent(Exception):
    """A queued bundle not sent because the run was already stopping."""


@dataclass
class PushSummary:
    """What ``push-summary.json`` holds: counts of this run, plus the totals with resumed bundles."""

    server: str
    mode: str
    bundle_size: int | None
    complete: bool = False
    stopped_because: str | None = None
    bundles: int = 0
    bundles_skipped: int = 0
    bundles_fell_back_to_batch: int = 0
    bundles_unacknowledged: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    not_sent: int = 0
    deduplicated: int = 0
    superseded: int = 0
    input_problems: int = 0
    retries: int = 0
    requests: int = 0
    auth_refreshes: int = 0
    seconds: float = 0.0
    conditional_types: list[str] = field(default_factory=list)
    previous_runs: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["seconds"] = round(self.seconds, 3)
        data["resources_per_second"] = round(self.sent / self.seconds, 1) if self.seconds > 0 else None
        return data


class Pusher:
    """Sends bundles to one server; see the module docstring for what happens to each."""

    def __init__(
        self,
        client: FhirClient,
        *,
        mode: str = "transaction",
        concurrency: int = 4,
        require_r4: bool = True,
    ) -> None:
        if mode not in ("transaction", "batch"):
            raise ValueError("mode must be 'transaction' or 'batch'")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.client = client
        self.mode = mode
        self.concurrency = concurrency
        self.require_r4 = require_r4
        self.conditional = ConditionalWrites(base_url=client.base_url)
        self._conditional_lock = threading.Lock()
        # Write races between concurrent bundles (two PUTs creating one shared Patient) answer 409;
        # the writes are idempotent, so a 409 is retried like a 503.
        self._retry = replace(client.retry, statuses=client.retry.statuses | {409})

    # --- set-up -----------------------------------------------------------------------------------

    def check_server(self) -> None:
        """Read the capability statement; pick transaction/batch and id strategy from it."""
        caps = self.client.capabilities()
        if self.require_r4 and not caps.is_r4:
            raise UnsupportedError(f"the server speaks FHIR {caps.fhir_version or '?'}, not R4 (4.0.x)")
        if self.mode == "transaction" and not caps.supports_transaction and caps.system_interactions:
            if not caps.supports_batch:
                raise UnsupportedError("the server declares neither transaction nor batch")
            log.warning("server declares no transaction support; pushing as batch")
            self.mode = "batch"
        self.conditional.conditional_update = {n for n, r in caps.resources.items() if r.conditional_update}
        self.conditional.conditional_create = {n for n, r in caps.resources.items() if r.conditional_create}
        for name in caps.resources:
            if not caps.allows_client_ids(name):
                self.conditional.enable(name)

    # --- one bundle -------------------------------------------------------------------------------

    def send_bundle(self, bundle: PushBundle) -> BundleOutcome:
        """Send one bundle and get a verdict for every entry (thread-safe)."""
        entries = bundle.entries
        verdicts: list[EntryVerdict | None] = [None] * len(entries)
        fell_back = False
        todo = list(range(len(entries)))
        if self.mode == "transaction":
            try:
                got = self._post("transaction", entries, todo)
            except _WholeFailure as refused:
                log.info(
                    "bundle %d: transaction refused (%s), locating entries by batch",
                    bundle.number,
                    refused.status,
                )
                fell_back = True
            else:
                for i, verdict in got.items():
                    verdicts[i] = verdict
                todo = []
        if todo:
            self._batch_with_retries(entries, todo, verdicts)
        self._switch_refused_types(entries, verdicts)
        pending = [
            i
            for i, v in enumerate(verdicts)
            if v is not None and v.result is Result.FAILED and _mentions(v, _MISSING_REFERENCE)
        ]
        done = [v if v is not None else failure(None, "no verdict from the server") for v in verdicts]
        return BundleOutcome(bundle, done, fell_back, pending)

    def _batch_with_retries(
        self, entries: tuple[PushEntry, ...], todo: list[int], verdicts: list[EntryVerdict | None]
    ) -> None:
        attempt = 0
        while todo:
            try:
                got = self._post("batch", entries, todo)
            except _WholeFailure as refused:
                if len(todo) == 1:
                    verdicts[todo[0]] = EntryVerdict(Result.FAILED, refused.status, outcome=refused.outcome)
                    return
                # Refused as a whole (a server that parses the bundle before its entries fails them
                # all for one bad resource): halve and resend, in order, until the bad ones stand alone.
                middle = len(todo) // 2
                self._batch_with_retries(entries, todo[:middle], verdicts)
                self._batch_with_retries(entries, todo[middle:], verdicts)
                return
            for i, verdict in got.items():
                verdicts[i] = verdict
            todo = [
                i
                for i in todo
                if verdicts[i].result is Result.FAILED  # type: ignore[union-attr]
                and verdicts[i].status in TRANSIENT_ENTRY_STATUSES  # type: ignore[union-attr]
            ]
            if not todo or not self._retry.can_retry(attempt):
                return
            self.client.stats.record(retry=True)
            self.client.sleep(self._retry.backoff(attempt))
            attempt += 1

    def _switch_refused_types(
        self, entries: tuple[PushEntry, ...], verdicts: list[EntryVerdict | None]
    ) -> None:
        """Entries refused for carrying our id: switch their type to conditional writes, re-send once.

        (Also when another thread switched the type while this bundle was in flight.)
        """
        refused = [
            i
            for i, v in enumerate(verdicts)
            if v is not None
            and v.result is Result.FAILED
            and v.status in (400, 403, 405, 409, 422)
            and _mentions(v, _CLIENT_ID_REFUSED)
        ]
        if not refused:
            return
        with self._conditional_lock:
            for i in refused:
                if entries[i].resource_type not in self.conditional.types:
                    log.warning(
                        "server refuses client-assigned ids for %s; using conditional update",
                        entries[i].resource_type,
                    )
                    self.conditional.enable(entries[i].resource_type)
        self._batch_with_retries(entries, refused, verdicts)

    def _post(self, kind: str, entries: tuple[PushEntry, ...], which: list[int]) -> dict[int, EntryVerdict]:
        """POST the chosen entries as one bundle; verdicts by entry index, or ``_WholeFailure``."""
        chosen = tuple(entries[i] for i in which)
        verdicts: dict[int, EntryVerdict] = {}
        if self.conditional.applies(chosen):
            with self._conditional_lock:
                request_entries, refused = self.conditional.rewrite(chosen)
            for pos, reason in refused.items():
                verdicts[which[pos]] = failure(None, reason)
            sent = [which[pos] for pos in range(len(chosen)) if pos not in refused]
        else:
            request_entries = [plain_entry(e, base_url=self.client.base_url) for e in chosen]
            sent = list(which)
        if not sent:
            return verdicts
        body = bundle_body(kind, request_entries)
        garbled = 0
        request_id = {"X-Request-ID": str(uuid.uuid4())}  # kept when an unreadable answer is asked again
        while True:
            sent_at = datetime.now(UTC)
            response = self.client.request(
                "POST", self.client.base_url, json=body, retry=self._retry, headers=request_id
            )
            status = response.status_code
            if status in (401, 403):
                raise AuthError(f"the server answered {status} to a {kind}", status=status)
            if self.client.retry.is_retryable_status(status):  # 429/502/503/504 outlasted every retry
                raise UnreachableError(
                    f"the server kept answering {status}", attempts=self._retry.total + 1, last_status=status
                )
            answer = json_body(response)
            if 200 <= status < 300:
                answered = answer.get("entry") if isinstance(answer, dict) else None
                if (
                    isinstance(answer, dict)
                    and answer.get("resourceType") == "Bundle"
                    and isinstance(answered, list)
                    and len(answered) == len(sent)
                ):
                    for i, item in zip(sent, answered, strict=True):
                        verdicts[i] = classify(
                            item.get("response") if isinstance(item, dict) else None, sent_at
                        )
                    return verdicts
                # A 2xx we cannot read (cut short, HTML from a proxy): writes are idempotent, so ask again.
                if self._retry.can_retry(garbled):
                    self.client.stats.record(retry=True)
                    self.client.sleep(self._retry.backoff(garbled))
                    garbled += 1
                    continue
                raise _WholeFailure(status, _unreadable(status, kind))
            outcome = (
                answer
                if isinstance(answer, dict) and answer.get("resourceType") == "OperationOutcome"
                else None
            )
            raise _WholeFailure(status, outcome or _unreadable(status, kind))

    def send_entries(self, entries: list[PushEntry]) -> list[EntryVerdict]:
        """Send loose entries as one batch (used for the final retry of deferred entries)."""
        verdicts: list[EntryVerdict | None] = [None] * len(entries)
        self._batch_with_retries(tuple(entries), list(range(len(entries))), verdicts)
        return [v if v is not None else failure(None, "no verdict from the server") for v in verdicts]

    # --- a whole run ------------------------------------------------------------------------------

    def push_directory(
        self,
        directory: str | Path,
        *,
        bundle_size: int | None = None,
        out_dir: str | Path | None = None,
        resume: bool = True,
    ) -> PushSummary:
        """Push a convert output directory; results go to ``out_dir`` (default: the directory)."""
        plan = open_plan(directory, bundle_size)
        return self.push_plan(
            plan.bundles(),
            Path(out_dir or directory),
            bundle_size=bundle_size,
            problems=plan.problems,
            resume=resume,
        )

    def push_plan(
        self,
        bundles: Iterable[tuple[int, PushBundle]],
        out_dir: Path,
        *,
        bundle_size: int | None = None,
        problems: list[InputProblem] | None = None,
        resume: bool = True,
    ) -> PushSummary:
        """Push ``(wave, bundle)`` pairs; waves run one after another, bundles of a wave in parallel."""
        started = time.monotonic()
        out_dir.mkdir(parents=True, exist_ok=True)
        self.check_server()
        summary = PushSummary(
            server=_public_url(self.client.base_url), mode=self.mode, bundle_size=bundle_size
        )
        stats_before = (
            self.client.stats.requests,
            self.client.stats.retries,
            self.client.stats.auth_refreshes,
        )
        checkpoint = Checkpoint.open(out_dir, self.client.base_url, self.mode, resume=resume)
        run = _Run(self, summary, checkpoint, out_dir, problems if problems is not None else [])
        try:
            run.execute(bundles)
        finally:
            checkpoint.close()
            run.close()
            summary.requests = self.client.stats.requests - stats_before[0]
            summary.retries = self.client.stats.retries - stats_before[1]
            summary.auth_refreshes = self.client.stats.auth_refreshes - stats_before[2]
            summary.conditional_types = sorted(self.conditional.types)
            summary.seconds = time.monotonic() - started
            (out_dir / SUMMARY_FILE).write_bytes(
                orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
            )
        return summary


class _Run:
    """The bookkeeping of one push run: threads, rejects file, checkpoint, counters (main thread only)."""

    def __init__(
        self,
        pusher: Pusher,
        summary: PushSummary,
        checkpoint: Checkpoint,
        out_dir: Path,
        problems: list[InputProblem],
    ) -> None:
        self.pusher = pusher
        self.summary = summary
        self.checkpoint = checkpoint
        self.problems = problems
        self.rejects = (out_dir / REJECTS_FILE).open("ab" if checkpoint.resumed else "wb")
        self.waiting: dict[int, BundleOutcome] = {}  # bundles with entries deferred to the final retry
        self.stop: ServerError | None = None
        self.stopping = threading.Event()  # set by the first worker that hits a run-ending error
        if checkpoint.resumed:
            totals: Counter[str] = Counter()
            for counts in checkpoint.acknowledged.values():
                totals.update(counts)
            summary.previous_runs = dict(totals)

    def close(self) -> None:
        self.rejects.close()

    def execute(self, bundles: Iterable[tuple[int, PushBundle]]) -> None:
        pusher = self.pusher
        in_flight: dict[Future[BundleOutcome], PushBundle] = {}
        current_wave: int | None = None
        with ThreadPoolExecutor(max_workers=pusher.concurrency, thread_name_prefix="push") as pool:
            for wave, bundle in self._skip_acknowledged(bundles):
                self._report_problems()
                if self.stop is not None:
                    self._not_sent(bundle)
                    continue
                if current_wave is not None and wave != current_wave:
                    self._drain(in_flight, until=0)  # barrier: this wave's references must exist first
                current_wave = wave
                self._drain(in_flight, until=pusher.concurrency * 2 - 1)
                if self.stop is not None:
                    self._not_sent(bundle)
                    continue
                in_flight[pool.submit(self._send, bundle)] = bundle
            self._drain(in_flight, until=0)
        self._report_problems()
        if self.stop is None:
            self._final_retry()
        for outcome in self.waiting.values():  # only left when the run stopped early
            self._not_sent(outcome.bundle)
        self.summary.complete = self.stop is None
        if self.stop is not None:
            self.summary.stopped_because = str(self.stop)

    def _send(self, bundle: PushBundle) -> BundleOutcome:
        """Worker: send unless the run is already stopping (then the bundle stays unacknowledged)."""
        if self.stopping.is_set():
            raise _NotSent
        try:
            return self.pusher.send_bundle(bundle)
        except ServerError:
            self.stopping.set()
            raise

    def _skip_acknowledged(
        self, bundles: Iterable[tuple[int, PushBundle]]
    ) -> Iterator[tuple[int, PushBundle]]:
        for wave, bundle in bundles:
            if self.checkpoint.is_acknowledged(bundle.digest):
                self.summary.bundles_skipped += 1
                continue
            yield wave, bundle

    def _drain(self, in_flight: dict[Future[BundleOutcome], PushBundle], until: int) -> None:
        while len(in_flight) > until:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                bundle = in_flight.pop(future)
                try:
                    outcome = future.result()
                except _NotSent:
                    self._not_sent(bundle)
                    continue
                except ServerError as exc:
                    if self.stop is None:
                        self.stop = exc
                        log.error("push stopped: %s", exc)
                    self._not_sent(bundle)
                    continue
                self._account(outcome)

    def _account(self, outcome: BundleOutcome) -> None:
        summary = self.summary
        bundle = outcome.bundle
        summary.bundles += 1
        summary.deduplicated += bundle.duplicates
        if outcome.fell_back_to_batch:
            summary.bundles_fell_back_to_batch += 1
        for entry in bundle.superseded:
            summary.superseded += 1
            self._reject(
                entry,
                bundle.number,
                None,
                operation_outcome(
                    [
                        warning_issue(
                            "duplicate",
                            "another record in the same bundle carried different content for this resource; "
                            "the later one was sent and this version was not",
                            message_id="push-superseded-in-bundle",
                        )
                    ]
                ),
            )
        if outcome.pending:
            self.waiting[bundle.number] = outcome
            return
        self._finish(outcome)

    def _finish(self, outcome: BundleOutcome) -> None:
        counts: Counter[str] = Counter()
        for entry, verdict in zip(outcome.bundle.entries, outcome.verdicts, strict=True):
            counts["sent"] += 1
            counts[verdict.result.value] += 1
            if verdict.result is Result.FAILED:
                self._reject(entry, outcome.bundle.number, verdict.status, verdict.outcome)
        for key in ("sent", "created", "updated", "unchanged", "failed"):
            setattr(self.summary, key, getattr(self.summary, key) + counts[key])
        self.checkpoint.record(outcome.bundle.number, outcome.bundle.digest, counts)

    def _final_retry(self) -> None:
        """Entries that named a resource not there yet get one more try, now everything else is in."""
        if not self.waiting:
            return
        pending = [(o, i) for o in self.waiting.values() for i in o.pending]
        size = max(1, max(len(o.bundle.entries) for o in self.waiting.values()))
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            try:
                verdicts = self.pusher.send_entries([o.bundle.entries[i] for o, i in chunk])
            except ServerError as exc:
                self.stop = exc
                return
            for (outcome, i), verdict in zip(chunk, verdicts, strict=True):
                outcome.verdicts[i] = verdict
        for outcome in self.waiting.values():
            self._finish(outcome)
        self.waiting.clear()

    def _not_sent(self, bundle: PushBundle) -> None:
        self.summary.bundles_unacknowledged += 1
        self.summary.not_sent += len(bundle.entries)

    def _report_problems(self) -> None:
        while self.problems:
            problem = self.problems.pop(0)
            self.summary.input_problems += 1
            outcome = operation_outcome(
                [warning_issue("invalid", problem.message, message_id="push-input-unreadable")]
            )
            self._write_reject(
                {"origin": problem.origin, "resource": problem.resource, "status": None, "outcome": outcome}
            )

    def _reject(
        self, entry: PushEntry, bundle: int, status: int | None, outcome: dict[str, Any] | None
    ) -> None:
        self._write_reject(
            {
                "origin": entry.origin,
                "resource": entry.ref,
                "status": status,
                "outcome": outcome,
                "bundle": bundle,
            }
        )

    def _write_reject(self, record: dict[str, Any]) -> None:
        self.rejects.write(orjson.dumps(record, default=str) + b"\n")
        self.rejects.flush()


def _mentions(verdict: EntryVerdict, pattern: re.Pattern[str]) -> bool:
    outcome = verdict.outcome or {}
    texts = [
        str(issue.get("diagnostics", "")) + " " + str((issue.get("details") or {}).get("text", ""))
        for issue in outcome.get("issue", ())
    ]
    return any(pattern.search(t) for t in texts)


def _unreadable(status: int | None, kind: str) -> dict[str, Any]:
    from fhir_dnacpr.issues import error as error_issue

    return operation_outcome(
        [
            error_issue(
                "processing",
                f"the server answered HTTP {status} to the {kind} with a body that is not a FHIR response",
                message_id="push-unreadable-answer",
            )
        ]
    )


def _public_url(url: str) -> str:
    """The base URL without any user:password part."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
