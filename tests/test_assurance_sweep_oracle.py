"""The fast sweep against a plain one, down to what it reports: the same clusters in the same order,
with the same weakest links, and the same ``SweepStats``.

``test_assurance_sweep`` checks the clusters against the rule itself (all pairs compared); this checks
the shortcuts that must not show at all: words split only when a row meets another, the early exit
from a comparison, the counting of comparisons. The plain sweep below does what the documented sweep
does, one step at a time, on objects, with ``similarity.jaccard`` on whole shingle sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.clusters import RawCluster, SweepStats, find_clusters
from fhir_dnacpr.assurance.config import ClusterSettings
from fhir_dnacpr.assurance.similarity import folded, jaccard, normalise, shingles

_WORDS = ["frail", "aged", "90", "care", "home", "resident", "CPR", "would", "not", "work", "AGED"]


@dataclass(eq=False)
class _Part:
    members: list[tuple[int, int, int]]
    last_day: int
    weakest: float = 1.0


@dataclass(eq=False)
class _Decision:
    day: int
    seq: int
    patient: int
    text: str
    part: _Part | None = field(default=None)


class _PlainGroup:
    """One blocking group swept the plain way."""

    def __init__(self, stype: int, cfg: ClusterSettings, found: list[RawCluster]) -> None:
        self.stype, self.cfg, self.found = stype, cfg, found
        self.window: list[_Decision] = []
        self.latest: dict[str, _Decision] = {}  # per normalised text, the latest in the window (dict order!)
        self.parts: list[_Part] = []
        self.compared = self.over_cap = 0

    def add(self, day: int, seq: int, patient: int, text: str) -> None:
        cfg = self.cfg
        for old in [d for d in self.window if d.day < day - cfg.window_days]:
            self.window.remove(old)
            if self.latest.get(old.text) is old:
                del self.latest[old.text]
        for part in [p for p in self.parts if p.last_day < day - cfg.window_days]:
            self.parts.remove(part)
            self.done(part)
        new = _Decision(day, seq, patient, normalise(text))
        if new.text in self.latest:
            self.join(new, self.latest[new.text], 1.0)
        if len(self.latest) > cfg.max_window_texts:
            self.over_cap += 1
        elif cfg.similarity_threshold < 1.0:
            for old in list(self.latest.values()):
                if old.text == new.text or (new.part is not None and old.part is new.part):
                    continue
                mine, theirs = shingles(new.text, cfg.shingle_size), shingles(old.text, cfg.shingle_size)
                small, large = sorted((len(mine), len(theirs)))
                if small < cfg.similarity_threshold * large:
                    continue
                self.compared += 1
                score = jaccard(mine, theirs)
                if score >= cfg.similarity_threshold:
                    self.join(new, old, score)
        self.window.append(new)
        self.latest[new.text] = new

    def join(self, new: _Decision, old: _Decision, score: float) -> None:
        if old.part is None:
            old.part = _Part([(old.seq, old.patient, old.day)], old.day)
            self.parts.append(old.part)
        target = old.part
        if new.part is None:
            new.part = target
            target.members.append((new.seq, new.patient, new.day))
        elif new.part is not target:
            source = new.part
            target.members += source.members
            target.weakest = min(target.weakest, source.weakest)
            for d in self.window:
                if d.part is source:
                    d.part = target
            new.part = target
            self.parts.remove(source)
        target.last_day = max(target.last_day, new.day)
        target.weakest = min(target.weakest, score)

    def done(self, part: _Part) -> None:
        if len({m[1] for m in part.members}) >= self.cfg.min_cluster_size:
            members = tuple(sorted(part.members, key=lambda m: (m[2], m[0])))
            self.found.append(RawCluster(self.stype, members, part.weakest))


def _plain_sweep(rows: list[tuple], cfg: ClusterSettings, stats: SweepStats) -> list[RawCluster]:
    found: list[RawCluster] = []
    for (_, stype), rows_of_group in groupby(rows, key=lambda r: (r[0], r[1])):
        group = list(rows_of_group)
        sweep = _PlainGroup(stype, cfg, found)
        for _, _, day, seq, patient, text in group:
            sweep.add(day, seq, patient, text)
        for part in sweep.parts:
            sweep.done(part)
        if len({r[4] for r in group}) >= cfg.min_cluster_size:
            stats.groups += 1
            stats.comparisons += sweep.compared
            stats.windows_over_cap += sweep.over_cap
    return found


_TEXT = st.lists(st.sampled_from(_WORDS), min_size=0, max_size=7).map(" ".join)
_ROW = st.tuples(
    st.sampled_from([-5, 0, 7]),  # blocking key
    st.integers(min_value=0, max_value=1),  # by organisation / by postcode
    st.integers(min_value=0, max_value=12),  # day
    st.integers(min_value=0, max_value=4),  # person
    st.one_of(_TEXT, st.sampled_from(["frail aged 90 care home", "CPR would not work", "frail, aged 87"])),
)
_SETTINGS = st.builds(
    ClusterSettings,
    window_days=st.integers(min_value=0, max_value=3),
    min_cluster_size=st.integers(min_value=1, max_value=3),
    similarity_threshold=st.sampled_from([0.3, 0.5, 0.6, 0.8, 0.9, 1.0]),
    shingle_size=st.sampled_from([1, 2]),
    max_window_texts=st.sampled_from([1, 3, 500]),
)


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(_ROW, max_size=40), cfg=_SETTINGS, as_bytes=st.booleans())
def test_fast_sweep_reports_what_the_plain_sweep_reports(raw, cfg, as_bytes) -> None:
    rows = sorted(
        (key, stype, day, seq, person, text)
        for seq, (key, stype, day, person, text) in enumerate(raw, start=1)
    )
    fast_rows = [(*row[:5], folded(row[5]) if as_bytes else row[5]) for row in rows]
    fast_stats, plain_stats = SweepStats(), SweepStats()
    fast = list(find_clusters(fast_rows, cfg, fast_stats))
    plain = _plain_sweep(rows, cfg, plain_stats)
    assert fast == plain  # same clusters, members, weakest links, in the same order
    assert fast_stats == plain_stats
