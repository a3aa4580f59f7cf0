"""Blanket-decision clusters: many people, one setting, one decision maker, a few days, one rationale.

Decisions are blocked by (setting, decision maker) — never compared across the whole dataset — and
swept in date order with a sliding window of ``window_days``. Within the window a decision is joined
to any earlier one with identical normalised rationale (hash) or similar enough (Jaccard of shingles).
Joined decisions form a component (single link in text and time); a component that can no longer
grow (its last decision has left the window) is emitted if it covers enough different people.
State is the window plus its live components, so memory is bounded by the busiest few days of one
decision maker at one setting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fhir_dnacpr.assurance.config import ClusterSettings
from fhir_dnacpr.assurance.similarity import jaccard, normalise, shingles

SETTING_ORGANISATION = 0
SETTING_POSTCODE = 1


@dataclass(slots=True)
class _Component:
    members: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, patient, day)
    last_day: int = 0
    min_similarity: float = 1.0


@dataclass(slots=True)
class _Row:
    day: int
    seq: int
    thash: int
    patient: int
    text: str
    comp: _Component | None = None
    grams: set[str] | None = None


@dataclass(frozen=True, slots=True)
class RawCluster:
    """A cluster as found: its blocking dimension, members (seq, patient, day), weakest text link."""

    stype: int
    members: tuple[tuple[int, int, int], ...]
    min_similarity: float

    @property
    def seqs(self) -> frozenset[int]:
        return frozenset(m[0] for m in self.members)

    @property
    def patients(self) -> int:
        return len({m[1] for m in self.members})


@dataclass
class SweepStats:
    groups: int = 0
    comparisons: int = 0
    windows_over_cap: int = 0


def find_clusters(
    rows: Iterable[tuple[int, int, int, int, int, int, str]],
    settings: ClusterSettings,
    stats: SweepStats | None = None,
) -> Iterator[RawCluster]:
    """Clusters from candidate rows ``(bkey, stype, day, seq, thash, patient, text)`` sorted by bkey,
    then day; ``thash`` hashes the normalised text (see ``similarity.normalise``)."""
    stats = stats if stats is not None else SweepStats()
    sweeper: _GroupSweep | None = None
    current: int | None = None
    for bkey, stype, day, seq, thash, patient, text in rows:
        if bkey != current:
            if sweeper is not None:
                yield from sweeper.finish()
            sweeper = _GroupSweep(stype, settings, stats)
            current = bkey
            stats.groups += 1
        done = sweeper.feed(day, seq, thash, patient, text)  # type: ignore[union-attr]
        if done:
            yield from done
    if sweeper is not None:
        yield from sweeper.finish()


class _GroupSweep:
    """One blocking group (setting + decision maker), fed in date order."""

    def __init__(self, stype: int, settings: ClusterSettings, stats: SweepStats) -> None:
        self.stype = stype
        self.settings = settings
        self.stats = stats
        self.window: deque[_Row] = deque()
        self.live: list[_Component] = []
        self.latest_by_hash: dict[int, _Row] = {}
        self.window_days = settings.window_days
        self.threshold = settings.similarity_threshold
        self.cap = settings.max_window_texts
        self.size = settings.shingle_size

    def feed(self, day: int, seq: int, thash: int, patient: int, text: str) -> list[RawCluster] | None:
        """Add one decision; returns clusters that can no longer grow (usually None)."""
        horizon = day - self.window_days
        window, latest_by_hash = self.window, self.latest_by_hash
        while window and window[0].day < horizon:
            old = window.popleft()
            if latest_by_hash.get(old.thash) is old:
                del latest_by_hash[old.thash]
        done = None
        if self.live:
            still = []
            for comp in self.live:
                if comp.last_day < horizon:
                    cluster = self._complete(comp)
                    if cluster is not None:
                        done = [*(done or ()), cluster]
                else:
                    still.append(comp)
            self.live = still
        row = _Row(day, seq, thash, patient, text)
        if latest_by_hash:
            same = latest_by_hash.get(thash)
            if same is not None:
                _join(row, same, 1.0, window, self.live)
            threshold = self.threshold
            if len(latest_by_hash) > self.cap:
                self.stats.windows_over_cap += 1
            elif threshold < 1.0:
                for other in latest_by_hash.values():
                    if other.thash == thash or (row.comp is not None and other.comp is row.comp):
                        continue
                    mine = row.grams
                    if mine is None:
                        mine = row.grams = shingles(normalise(row.text), self.size)
                    theirs = other.grams
                    if theirs is None:
                        theirs = other.grams = shingles(normalise(other.text), self.size)
                    a, b = len(mine), len(theirs)
                    if (a < threshold * b) if a < b else (b < threshold * a):
                        continue  # Jaccard is at most min/max of the set sizes
                    self.stats.comparisons += 1
                    score = jaccard(mine, theirs)
                    if score >= threshold:
                        _join(row, other, score, window, self.live)
        window.append(row)
        latest_by_hash[thash] = row
        return done

    def finish(self) -> Iterator[RawCluster]:
        for comp in self.live:
            cluster = self._complete(comp)
            if cluster is not None:
                yield cluster
        self.live = []
        self.window.clear()
        self.latest_by_hash.clear()

    def _complete(self, comp: _Component) -> RawCluster | None:
        if len({m[1] for m in comp.members}) < self.settings.min_cluster_size:
            return None
        members = tuple(sorted(comp.members, key=lambda m: (m[2], m[0])))
        return RawCluster(self.stype, members, comp.min_similarity)


def _join(row: _Row, other: _Row, score: float, window: deque[_Row], live: list[_Component]) -> None:
    """Put ``row`` in ``other``'s component (merging components when both have one)."""
    target = other.comp
    if target is None:
        target = _Component(members=[(other.seq, other.patient, other.day)], last_day=other.day)
        other.comp = target
        live.append(target)
    if row.comp is None:
        row.comp = target
        target.members.append((row.seq, row.patient, row.day))
    elif row.comp is not target:
        source = row.comp
        target.members.extend(source.members)
        target.min_similarity = min(target.min_similarity, source.min_similarity)
        for r in window:
            if r.comp is source:
                r.comp = target
        row.comp = target
        live.remove(source)
    target.last_day = max(target.last_day, row.day)
    target.min_similarity = min(target.min_similarity, score)


def distinct_clusters(clusters: Iterable[RawCluster]) -> list[RawCluster]:
    """Drop clusters whose members all belong to a larger (or equal) cluster.

    When the same decisions cluster both by postcode and by organisation, the postcode (the care home
    itself) is the more telling setting, so it is kept.
    """
    ordered = sorted(clusters, key=lambda c: (-len(c.members), -c.stype, min(c.seqs)))
    kept: list[RawCluster] = []
    for cluster in ordered:
        seqs = cluster.seqs
        if any(seqs <= k.seqs for k in kept):
            continue
        kept.append(cluster)
    return kept
