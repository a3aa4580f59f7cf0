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
from fhir_dnacpr.assurance.similarity import normalised_words, word_shingles

SETTING_ORGANISATION = 0
SETTING_POSTCODE = 1


@dataclass(slots=True)
class _Component:
    members: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, patient, day)
    last_day: int = 0
    min_similarity: float = 1.0


class _Row:
    """One decision in the window: its text as a hash of its normalised words (exact duplicates) and,
    once it is compared, as shingles."""

    __slots__ = ("comp", "day", "grams", "patient", "seq", "thash", "words")

    def __init__(self, day: int, seq: int, thash: int, patient: int, words: list[str]) -> None:
        self.day = day
        self.seq = seq
        self.thash = thash
        self.patient = patient
        self.words = words
        self.comp: _Component | None = None
        self.grams: set[str] | None = None


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
    rows: Iterable[tuple[int, int, int, int, int, str | bytes | None]],
    settings: ClusterSettings,
    stats: SweepStats | None = None,
) -> Iterator[RawCluster]:
    """Clusters from candidate rows ``(bkey, stype, day, seq, patient, text)`` grouped by (bkey, stype)
    and sorted by day (then seq) within a group. Texts are compared after ``similarity.normalise``;
    a text may come already folded, as ``similarity.folded`` bytes.

    A blocking group with fewer than ``min_cluster_size`` different people cannot hold a cluster; it
    is swept all the same (the rows may come unfiltered), but counts in ``stats`` only if it has
    enough people, so the statistics describe the groups that could cluster.

    This loop runs once per candidate decision, so the per-row work is written out here with the
    group's state in local variables (see ``_GroupSweep`` for that state).
    """
    stats = stats if stats is not None else SweepStats()
    window_days = settings.window_days
    threshold = settings.similarity_threshold
    cap = settings.max_window_texts
    size = settings.shingle_size
    min_people = settings.min_cluster_size
    group: _GroupSweep | None = None
    current: int | None = None
    current_type: int | None = None
    window: deque[_Row] = deque()
    latest_by_hash: dict[int, _Row] = {}
    live: list[_Component] = []
    people: set[int] = set()
    for bkey, stype, day, seq, patient, text in rows:
        if bkey != current or stype != current_type:
            if group is not None:
                yield from group.finish()
            group = _GroupSweep(stype, settings, stats)
            window, latest_by_hash = group.window, group.latest_by_hash
            live, people = group.live, group.people
            current, current_type = bkey, stype
        if len(people) < min_people:
            people.add(patient)
        horizon = day - window_days
        while window and window[0].day < horizon:
            old = window.popleft()
            if latest_by_hash.get(old.thash) is old:
                del latest_by_hash[old.thash]
        if live:
            done = [comp for comp in live if comp.last_day < horizon]
            if done:
                live[:] = [comp for comp in live if comp.last_day >= horizon]
                for comp in done:
                    cluster = group._complete(comp)  # type: ignore[union-attr]
                    if cluster is not None:
                        yield cluster
        words = text.split() if text.__class__ is bytes else normalised_words(text)  # type: ignore[union-attr]
        thash = hash(tuple(words))
        row = _Row(day, seq, thash, patient, words)
        if latest_by_hash:
            same = latest_by_hash.get(thash)
            if same is not None:
                _join(row, same, 1.0, window, live)
            if len(latest_by_hash) > cap:
                group.over_cap += 1  # type: ignore[union-attr]
            elif threshold < 1.0:
                mine = None
                for other in latest_by_hash.values():
                    if other.thash == thash or (row.comp is not None and other.comp is row.comp):
                        continue
                    if mine is None:
                        mine = row.grams = word_shingles(words, size)
                    theirs = other.grams
                    if theirs is None:
                        theirs = other.grams = word_shingles(other.words, size)
                    a, b = len(mine), len(theirs)
                    if (a < threshold * b) if a < b else (b < threshold * a):
                        continue  # Jaccard is at most min/max of the set sizes
                    group.comparisons += 1  # type: ignore[union-attr]
                    # similarity.jaccard, written out (neither set is empty: b > 0 or a > 0 here)
                    inter = len(mine & theirs)
                    score = inter / (a + b - inter)
                    if score >= threshold:
                        _join(row, other, score, window, live)
        window.append(row)
        latest_by_hash[thash] = row
    if group is not None:
        yield from group.finish()


class _GroupSweep:
    """The state of one blocking group (setting + decision maker) while ``find_clusters`` sweeps it in
    date order: the window of recent decisions, the latest of each distinct text in it, the components
    that can still grow, and (up to ``min_cluster_size`` of) the people seen."""

    def __init__(self, stype: int, settings: ClusterSettings, stats: SweepStats) -> None:
        self.stype = stype
        self.settings = settings
        self.stats = stats
        self.window: deque[_Row] = deque()
        self.live: list[_Component] = []
        self.latest_by_hash: dict[int, _Row] = {}
        self.people: set[int] = set()
        self.comparisons = 0
        self.over_cap = 0

    def finish(self) -> Iterator[RawCluster]:
        for comp in self.live:
            cluster = self._complete(comp)
            if cluster is not None:
                yield cluster
        self.live.clear()
        self.window.clear()
        self.latest_by_hash.clear()
        if len(self.people) >= self.settings.min_cluster_size:
            self.stats.groups += 1
            self.stats.comparisons += self.comparisons
            self.stats.windows_over_cap += self.over_cap

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
