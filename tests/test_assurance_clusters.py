"""Blanket-decision clusters on realistic synthetic data: the planted cluster, all of it, nothing else."""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.assurance import AuditConfig, ClusterSettings, audit
from fhir_dnacpr.assurance.clusters import RawCluster, distinct_clusters, find_clusters
from fhir_dnacpr.assurance.similarity import _FOLD_ASCII, folded, normalise, similarity, text_hash
from fhir_dnacpr.assurance.synthetic import (
    BLANKET_TEMPLATE,
    Generator,
    Truth,
    plant_blanket_cluster,
    ref,
    scenario,
)
from fhir_dnacpr.model import CprDecisionValue

AS_OF = date(2023, 1, 1)


@pytest.fixture(scope="module")
def data():
    return scenario(seed=7, background=3000)


@pytest.fixture(scope="module")
def result(data):
    return audit(data.records, AuditConfig(as_of=AS_OF))


def cluster_sets(result) -> list[set[str]]:
    return [{e.ref for e in c.finding.evidence} for c in result.clusters]


def test_planted_cluster_found_with_all_members_and_nothing_else(data, result) -> None:
    assert cluster_sets(result) == data.truth.clusters
    # the look-alikes around it were there to be (wrongly) picked up
    assert data.truth.cluster_noise
    assert not data.truth.cluster_noise & set().union(*cluster_sets(result))


def test_cluster_finding_says_where_who_when(data, result) -> None:
    [cluster] = result.clusters
    assert cluster.people == 6
    assert cluster.first_day == date(2020, 4, 8) and cluster.last_day == date(2020, 4, 9)
    assert cluster.finding.organisation == data.world.care_homes[0].gp_practice.ods_code
    assert cluster.setting.startswith("postcode sector ZY")  # the care home, masked to its sector
    assert cluster.finding.quarter == "2020-Q2"
    assert "GMC" in cluster.decision_maker
    assert result.metrics.cells[(cluster.finding.organisation, "2020-Q2")].clusters == 1


def test_input_order_does_not_matter(data, result) -> None:
    shuffled = list(data.records)
    random.Random(3).shuffle(shuffled)
    again = audit(shuffled, AuditConfig(as_of=AS_OF))
    assert cluster_sets(again) == cluster_sets(result)


def test_comparisons_stay_within_blocks(result, data) -> None:
    n = len(data.records)
    # all pairs would be ~n^2/2 = 4.6 million; blocking keeps it to a handful per record
    assert result.sweep.comparisons < 2 * n


def test_thresholds_are_configurable(data) -> None:
    strict = dataclasses.replace(AuditConfig(as_of=AS_OF), cluster=ClusterSettings(min_cluster_size=7))
    assert audit(data.records, strict).clusters == []
    exact = dataclasses.replace(AuditConfig(as_of=AS_OF), cluster=ClusterSettings(similarity_threshold=1.0))
    [found] = audit(data.records, exact).clusters
    # the templates differ only in case and punctuation except one wording change
    assert found.people < 6 and found.min_similarity == 1.0


def test_window_joins_decisions_a_few_days_apart_but_not_weeks() -> None:
    gen = Generator(seed=11)
    truth = Truth()
    day = date(2021, 1, 12)
    records = plant_blanket_cluster(gen, truth, day, size=3)
    members = sorted(truth.clusters[0])
    config = AuditConfig(as_of=AS_OF)
    assert cluster_sets(audit(records, config)) == [set(members)]
    # move one member two weeks later: only two people remain in any window, so no cluster
    moved = [
        dataclasses.replace(
            r, decision=dataclasses.replace(r.decision, decision_date=day + timedelta(days=14))
        )  # type: ignore[arg-type]
        if ref(r) == members[0]
        else r
        for r in records
    ]
    assert audit(moved, config).clusters == []
    wide = dataclasses.replace(config, cluster=ClusterSettings(window_days=14))
    assert len(audit(moved, wide).clusters) == 1


def test_for_cpr_decisions_never_cluster() -> None:
    gen = Generator(seed=5)
    truth = Truth()
    records = plant_blanket_cluster(gen, truth, date(2020, 5, 5))
    flipped = [
        dataclasses.replace(r, decision=dataclasses.replace(r.decision, decision=CprDecisionValue.FOR_CPR))  # type: ignore[arg-type]
        for r in records
    ]
    assert audit(flipped, AuditConfig(as_of=AS_OF)).clusters == []


def test_near_duplicate_similarity() -> None:
    a, b = BLANKET_TEMPLATE[0], BLANKET_TEMPLATE[1]
    assert normalise(a) == normalise(b)
    assert text_hash(normalise(a)) == text_hash(normalise(b))
    assert similarity(BLANKET_TEMPLATE[0], BLANKET_TEMPLATE[3]) >= 0.8
    different = "Metastatic prostate cancer with bone involvement. CPR would not be successful."
    assert similarity(BLANKET_TEMPLATE[0], different) < 0.5
    assert normalise("Aged 91,  FRAIL!") == normalise("aged 87 frail")


def test_sweep_on_raw_rows_is_single_link_in_time() -> None:
    # rows are (bkey, stype, day, seq, patient, text)
    # days 0, 2, 4, 6 with a 3-day window chain into one cluster of four people
    rows = [(7, 0, day, seq, 100 + seq, "same text") for seq, day in ((1, 0), (2, 2), (3, 4), (4, 6))]
    [cluster] = list(find_clusters(rows, ClusterSettings(window_days=3, min_cluster_size=3)))
    assert [m[0] for m in cluster.members] == [1, 2, 3, 4]
    # the same person three times is not three people
    same_person = [(7, 0, 0, seq, 100, "same text") for seq in (1, 2, 3)]
    assert list(find_clusters(same_person, ClusterSettings())) == []
    # near-identical texts join; different ones do not
    texts = [
        "frail resident cpr would not work",
        "frail resident cpr would not work now",
        "metastatic cancer",
    ]
    rows = [(7, 0, 0, i, i, t) for i, t in enumerate(texts)]
    assert list(find_clusters(rows, ClusterSettings(min_cluster_size=2))) == [
        RawCluster(0, ((0, 0, 0), (1, 1, 0)), pytest.approx(6 / 7))
    ]


def test_distinct_clusters_drop_subsets() -> None:
    big = RawCluster(0, ((1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 0)), 1.0)
    part = RawCluster(1, ((1, 1, 0), (2, 2, 0), (3, 3, 0)), 1.0)
    other = RawCluster(1, ((5, 5, 0), (6, 6, 0), (7, 7, 0)), 1.0)
    assert distinct_clusters([part, big, other]) == [big, other]
    by_org = RawCluster(0, other.members, 1.0)
    assert distinct_clusters([by_org, other]) == [other]  # the postcode (care home) view wins a tie


@pytest.mark.parametrize("seed", [1, 3, 5])
def test_planted_cluster_exact_for_other_seeds(seed: int) -> None:
    other = scenario(seed=seed, background=3000)
    assert cluster_sets(audit(other.records, AuditConfig(as_of=AS_OF))) == other.truth.clusters


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        i = parent[i]
    return i


def _naive_clusters(records, settings: ClusterSettings) -> list[set[str]]:
    """Blanket clusters the straightforward way, from the documented rule: every pair of candidates
    sharing a blocking key and at most ``window_days`` apart is compared (no spill store, no hashing,
    no sliding window), components are joined by union-find, then subsets are dropped."""
    from fhir_dnacpr.assurance.engine import NO_ORGANISATION, _maker_key, _org_key, _postcode_key
    from fhir_dnacpr.assurance.privacy import patient_nhs_number
    from fhir_dnacpr.model import RecordStatus

    groups: dict[tuple, list[tuple[int, int, str, str, str]]] = {}
    for seq, record in enumerate(records):
        d = record.decision
        if d is None or d.decision is not CprDecisionValue.NOT_FOR_CPR:
            continue
        nhs = patient_nhs_number(d.patient)
        maker = _maker_key(d.decision_maker)
        if d.status is RecordStatus.ENTERED_IN_ERROR or not (nhs and maker and d.decision_date):
            continue
        if not (d.rationale or settings.include_missing_rationale):
            continue
        row = (d.decision_date.toordinal(), seq, nhs, d.rationale or "", ref(record))
        org, postcode = _org_key(d.custodian), _postcode_key(d.patient.postcode)
        if org != NO_ORGANISATION:
            groups.setdefault((0, org, maker), []).append(row)
        if postcode is not None:
            groups.setdefault((1, postcode, maker), []).append(row)
    found: list[tuple[int, frozenset[str]]] = []
    for (stype, *_), rows in groups.items():
        parent = list(range(len(rows)))
        for j, (day_j, _, _, text_j, _) in enumerate(rows):
            for i, (day_i, _, _, text_i, _) in enumerate(rows[:j]):
                if abs(day_j - day_i) <= settings.window_days and (
                    normalise(text_i) == normalise(text_j)
                    or similarity(text_i, text_j, settings.shingle_size) >= settings.similarity_threshold
                ):
                    parent[_root(parent, j)] = _root(parent, i)
        components: dict[int, list[tuple[int, int, str, str, str]]] = {}
        for i, row in enumerate(rows):
            components.setdefault(_root(parent, i), []).append(row)
        for members in components.values():
            if len({m[2] for m in members}) >= settings.min_cluster_size:
                found.append((stype, frozenset(m[4] for m in members)))
    found.sort(key=lambda c: (-len(c[1]), -c[0]))
    kept: list[frozenset[str]] = []
    for _, refs in found:
        if not any(refs <= k for k in kept):
            kept.append(refs)
    return sorted(kept, key=sorted)


@pytest.mark.parametrize(
    ("seed", "settings"),
    [
        (7, ClusterSettings()),
        (3, ClusterSettings(similarity_threshold=0.5)),
        (5, ClusterSettings(window_days=10, min_cluster_size=2, similarity_threshold=0.6)),
        (9, ClusterSettings(shingle_size=2, similarity_threshold=0.6, window_days=7)),
    ],
)
def test_sweep_finds_exactly_what_comparing_all_pairs_finds(seed: int, settings: ClusterSettings) -> None:
    # the streaming sweep (spill store, exact-duplicate hashes, sliding window) against the plain rule
    records = scenario(seed=seed, background=1500).records
    config = dataclasses.replace(AuditConfig(as_of=AS_OF), cluster=settings)
    swept = sorted((frozenset(c) for c in cluster_sets(audit(records, config))), key=sorted)
    expected = _naive_clusters(records, settings)
    assert expected  # the planted cluster at least: the comparison is not vacuous
    assert swept == expected


def test_the_ascii_fold_table_lowers_as_it_folds() -> None:
    # folded() skips bytes.lower() on ASCII text: the table must give, for every byte, what lower()
    # then the plain folding table gave (translate works byte by byte, so all 256 bytes prove it)
    from fhir_dnacpr.assurance.similarity import _FOLD

    plain = bytes(ord(_FOLD.get(c, c)) if isinstance(_FOLD.get(c, c), str) else c for c in range(256))
    every_byte = bytes(range(256))
    assert every_byte.translate(_FOLD_ASCII) == every_byte.lower().translate(plain)


@given(st.text(alphabet=st.characters(max_codepoint=0x2030), max_size=60))
def test_folded_words_are_the_normalised_words(text: str) -> None:
    # the fast ASCII path of folded() (one bytes.translate) against the plain str normalise()
    assert folded(text).split() == normalise(text).encode().split()
