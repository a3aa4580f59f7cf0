"""The cluster sweep on varied raw rows against the rule done the slow, obvious way.

The sweep keeps a sliding window, compares a decision only with the latest decision of each distinct
text in it, stops a comparison early once the pair cannot reach the threshold, and gets its rows from
the partitioned spill store. None of that may change what is found: every pair of decisions sharing a
blocking key and at most ``window_days`` apart is joined if their texts match, and a component is a
cluster if it covers enough people.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.clusters import SweepStats, find_clusters
from fhir_dnacpr.assurance.config import ClusterSettings
from fhir_dnacpr.assurance.similarity import folded, normalise, similarity
from fhir_dnacpr.assurance.spill import EVIDENCE_FIELDS, SpillStore

_WORDS = ["frail", "aged", "90", "care", "home", "resident", "CPR", "would", "not", "work"]
_TEMPLATES = ["frail aged 90 care home resident", "CPR would not work", "frail resident CPR would not work"]


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """A template as is, or with a word dropped, added or changed: Jaccard scores near every threshold."""
    words = draw(st.sampled_from(_TEMPLATES)).split()
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        at = draw(st.integers(min_value=0, max_value=len(words)))
        edit = draw(st.sampled_from(["drop", "add", "change"]))
        if edit == "drop" and len(words) > 1:
            del words[min(at, len(words) - 1)]
        elif edit == "add":
            words.insert(at, draw(st.sampled_from(_WORDS)))
        else:
            words[min(at, len(words) - 1)] = draw(st.sampled_from(_WORDS))
    return " ".join(words)


_TEXT = st.one_of(_texts(), st.lists(st.sampled_from(_WORDS), min_size=1, max_size=7).map(" ".join))
_ROW = st.tuples(
    st.sampled_from([-(2**63), 0, 2**62]),  # blocking key: a few, in different partitions
    st.integers(min_value=0, max_value=1),  # by organisation / by postcode
    st.integers(min_value=0, max_value=8),  # day
    st.integers(min_value=0, max_value=5),  # person
    _TEXT,
)
_SETTINGS = st.builds(
    ClusterSettings,
    window_days=st.integers(min_value=0, max_value=4),
    min_cluster_size=st.integers(min_value=2, max_value=4),
    similarity_threshold=st.sampled_from([0.3, 0.5, 0.6, 0.8, 0.9, 1.0]),
    shingle_size=st.sampled_from([1, 2]),
)


def _naive(rows: list[tuple], cfg: ClusterSettings) -> set[tuple[int, frozenset[int]]]:
    """All pairs in each group compared directly; components by union-find."""
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for j, (key_j, type_j, day_j, _, text_j) in enumerate(rows):
        for i, (key_i, type_i, day_i, _, text_i) in enumerate(rows[:j]):
            if (key_i, type_i) != (key_j, type_j) or abs(day_i - day_j) > cfg.window_days:
                continue
            same = normalise(text_i) == normalise(text_j)
            if same or similarity(text_i, text_j, cfg.shingle_size) >= cfg.similarity_threshold:
                parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(rows)):
        members.setdefault(root(i), []).append(i)
    return {
        (rows[m[0]][1], frozenset(i + 1 for i in m))  # seq = position + 1
        for m in members.values()
        if len({rows[i][3] for i in m}) >= cfg.min_cluster_size
    }


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_ROW, min_size=4, max_size=40), cfg=_SETTINGS)
def test_sweep_through_the_spill_finds_what_comparing_all_pairs_finds(tmp_path_factory, rows, cfg) -> None:
    evidence = (None,) * len(EVIDENCE_FIELDS)
    with SpillStore(tmp_path_factory.mktemp("spill")) as store:
        for seq, (key, stype, day, person, text) in enumerate(rows, start=1):
            org, postcode = (key, None) if stype == 0 else (None, key)
            store.add_record((person, day, seq, 0, None, 0, 0, seq), evidence, org, postcode, folded(text))
        found = list(find_clusters(store.candidates_sorted(cfg.min_cluster_size), cfg, SweepStats()))
    assert {(c.stype, c.seqs) for c in found} == _naive(rows, cfg)
    assert len(found) == len({(c.stype, c.seqs) for c in found})  # each cluster once
