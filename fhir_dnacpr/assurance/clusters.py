"""Blanket-decision clusters: many people, one setting, one decision maker, a few days, one rationale.

Decisions are blocked by (setting, decision maker) — never compared across the whole dataset — and
swept in date order with a sliding window of ``window_days``. Within the window a decision is joined
to any earlier one with identical normalised rationale (hash) or similar enough (Jaccard of shingles;
a comparison stops as soon as the pair can no longer reach the threshold).
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


# One decision in the window, as a list (made once per candidate, so cheaper than an object):
# [day, seq, text hash, patient, words, component, shingles]. The text hash is of its normalised
# words (exact duplicates); the shingles are made once it is compared, and the component once it joins.
# A row that comes to an empty window keeps its text in place of its words, and no hash, until another
# row comes while it is still in the window (``_add_words``): one row in eight of the benchmark's never
# meets another, and splitting and hashing were most of the cost of such a row.
_DAY, _SEQ, _THASH, _PATIENT, _WORDS, _COMP, _GRAMS = range(7)
_Row = list  # the layout above


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
    pending: _Row | None = None  # the row alone in the window, its text not split yet (see _Row)
    shingle = set if size <= 1 else None  # word sets need no n-grams: build them in C
    for bkey, stype, day, seq, patient, text in rows:
        if bkey != current or stype != current_type:
            if group is not None:
                yield from group.finish()
            group = _GroupSweep(stype, settings, stats)
            window, latest_by_hash = group.window, group.latest_by_hash
            live, people = group.live, group.people
            current, current_type = bkey, stype
            pending = None
        if len(people) < min_people:
            people.add(patient)
        horizon = day - window_days
        while window and window[0][0] < horizon:  # [0]: _DAY
            old = window.popleft()
            if latest_by_hash.get(old[2]) is old:  # [2]: _THASH
                del latest_by_hash[old[2]]
        if live:
            done = [comp for comp in live if comp.last_day < horizon]
            if done:
                live[:] = [comp for comp in live if comp.last_day >= horizon]
                for comp in done:
                    cluster = group._complete(comp)  # type: ignore[union-attr]
                    if cluster is not None:
                        yield cluster
        if pending is not None:
            if window:  # it is still in the window, so this row meets it: now it needs its words
                _add_words(pending)
                latest_by_hash[pending[2]] = pending  # [2]: _THASH
            pending = None
        if not window:  # nothing to compare with: its words can wait until a row comes in its window
            pending = [day, seq, None, patient, text, None, None]  # see _Row
            window.append(pending)
            continue
        # what ``_add_words`` does, written out: this is the path of nearly every row
        words = text.split() if text.__class__ is bytes else normalised_words(text)  # type: ignore[union-attr]
        thash = hash(tuple(words))
        row = [day, seq, thash, patient, words, None, None]  # see _Row
        same = latest_by_hash.get(thash)  # the window is not empty: there is a row to compare with
        if same is not None:
            _join(row, same, 1.0, window, live)
        if len(latest_by_hash) > cap:
            group.over_cap += 1  # type: ignore[union-attr]
        elif threshold < 1.0:
            mine = None
            for other in latest_by_hash.values():
                if other[2] == thash or (row[5] is not None and other[5] is row[5]):  # _THASH, _COMP
                    continue
                if mine is None:
                    mine = row[6] = shingle(words) if shingle else word_shingles(words, size)
                theirs = other[6]  # _GRAMS
                if theirs is None:
                    theirs = other[6] = shingle(other[4]) if shingle else word_shingles(other[4], size)
                a, b = len(mine), len(theirs)
                if (a < threshold * b) if a < b else (b < threshold * a):
                    continue  # Jaccard is at most min/max of the set sizes
                group.comparisons += 1  # type: ignore[union-attr]
                # similarity.jaccard, written out (neither set is empty: b > 0 or a > 0 here), with
                # an early exit: each of my shingles missing from theirs lowers the best score the
                # pair can reach, (a - missing) / (b + missing); once it is below the threshold the
                # pair fails (most pairs do, after a few shingles), without building the intersection
                missing = 0
                for gram in mine:
                    if gram not in theirs:
                        missing += 1
                        if (a - missing) / (b + missing) < threshold:
                            break
                else:
                    inter = a - missing
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


def _add_words(row: _Row) -> None:
    """Split the text of a row that came to an empty window into its words, in their place, and hash
    them (equal hashes: identical normalised text), now that another row has come in its window."""
    text = row[_WORDS]
    words = text.split() if text.__class__ is bytes else normalised_words(text)
    row[_WORDS] = words
    row[_THASH] = hash(tuple(words))


def _join(row: _Row, other: _Row, score: float, window: deque[_Row], live: list[_Component]) -> None:
    """Put ``row`` in ``other``'s component (merging components when both have one)."""
    target = other[_COMP]
    if target is None:
        target = _Component(members=[(other[_SEQ], other[_PATIENT], other[_DAY])], last_day=other[_DAY])
        other[_COMP] = target
        live.append(target)
    if row[_COMP] is None:
        row[_COMP] = target
        target.members.append((row[_SEQ], row[_PATIENT], row[_DAY]))
    elif row[_COMP] is not target:
        source = row[_COMP]
        target.members.extend(source.members)
        target.min_similarity = min(target.min_similarity, source.min_similarity)
        for r in window:
            if r[_COMP] is source:
                r[_COMP] = target
        row[_COMP] = target
        live.remove(source)
    target.last_day = max(target.last_day, row[_DAY])
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
