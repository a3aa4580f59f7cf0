"""The rationale term matcher: what it flags, what it must not, and how its data file is checked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.synthetic import CONDITIONS, COURSE, REASONS
from fhir_dnacpr.assurance.terms import TermMatcher, TermsError, default_matcher


def categories(text: str) -> set[str]:
    return {h.category for h in default_matcher().find(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Has a learning disability, not for CPR", {"learning-disability"}),
        ("learning-disabilities", {"learning-disability"}),
        ("LD. Epilepsy.", {"learning-disability"}),
        ("PMLD", {"learning-disability"}),
        ("Downs syndrome", {"downs-syndrome"}),
        ("Down's syndrome", {"downs-syndrome"}),
        ("Patient has Downs", {"downs-syndrome"}),
        ("trisomy 21", {"downs-syndrome"}),
        ("Autistic, non-verbal", {"autism"}),
        ("Aged 94", {"age"}),
        ("92-year-old man", {"age"}),
        ("92yo", {"age"}),
        ("over 80", {"age"}),
        ("not appropriate due to her age", {"age"}),
        ("Elderly lady", {"age"}),
        ("is disabled", {"disability"}),
        ("wheelchair user", {"disability"}),
        ("registered blind", {"disability"}),
        ("Clinical Frailty Scale 7", {"frailty"}),
        ("CFS 6", {"frailty"}),
        ("frail", {"frailty"}),
        ("care home resident", {"care-setting"}),
        ("As per home policy", {"care-setting"}),
        ("Not for ICU", {"treatment-ceiling"}),
        ("not for IV antibiotics", {"treatment-ceiling"}),
        ("do not admit to hospital", {"treatment-ceiling"}),
        ("ceiling of care is ward based care only", {"treatment-ceiling"}),
        ("no antibiotics", {"treatment-ceiling"}),
    ],
)
def test_flags_terms_and_variants(text: str, expected: set[str]) -> None:
    assert categories(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "wife uses disabled parking at the hospice",
        "blue badge holder; disabled badge in the car",
        "ICD disabled at the patient's request",
        "Decision not based on age or disability",
        "regardless of his learning disability, CPR would not restart the heart",
        "life has had its ups and downs",
        "enrolled in a double-blind trial",
        "end-stage renal failure",  # 'age' inside 'stage'
        "the ward manager's image of the ld",  # lower-case 'ld' is not the abbreviation
        "ASD repaired in childhood",  # atrial septal defect, deliberately not an autism term
        "DNACPR does not mean not for ICU; all other treatment continues",
        "blood pressure 80/50, old MI",
        "Age UK volunteer visits",
        "age-related macular degeneration",
    ],
)
def test_does_not_flag_look_alikes(text: str) -> None:
    assert categories(text) == set()


def test_reports_matched_words_and_positions() -> None:
    text = "Frail, aged 91. Not for ICU."
    hits = default_matcher().find(text)
    assert [(h.category, text[h.start : h.end]) for h in hits] == [
        ("frailty", "Frail"),
        ("age", "aged 91"),
        ("treatment-ceiling", "Not for ICU"),
    ]
    assert {h.rule for h in hits} == {"rationale-protected-characteristic", "cpr-decision-conflated"}


def test_negation_stops_at_sentence_end() -> None:
    # the cue belongs to the previous sentence, so the new sentence's term still counts
    assert categories("Not because of anything else. Elderly.") == {"age"}


def background_texts() -> st.SearchStrategy[str]:
    return st.builds(
        lambda c, k, r: f"{c.capitalize()}. {k.format(m=5, k=12)}. {r}",
        st.sampled_from(CONDITIONS),
        st.sampled_from(COURSE),
        st.sampled_from(REASONS),
    )


@settings(max_examples=60, deadline=None)
@given(
    background_texts(),
    st.sampled_from(["learning disability", "Down's syndrome", "autism", "frailty", "aged 90"]),
)
def test_a_term_inserted_anywhere_in_clinical_text_is_found(text: str, term: str) -> None:
    assert categories(text) == set()
    sentences = text.split(". ")
    for i in range(len(sentences) + 1):
        changed = ". ".join([*sentences[:i], f"Has {term}", *sentences[i:]])
        assert categories(changed), changed


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    default_matcher().find(text)


def test_custom_term_file(tmp_path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text(
        "negation_cues: [not due to]\n"
        "categories:\n"
        "  dementia:\n"
        "    rule: rationale-protected-characteristic\n"
        "    terms: [dementia, {regex: '\\bAlzheimer''?s\\b', anchors: [alzheimer]}]\n"
        "    exclude: [dementia nurse]\n"
    )
    matcher = TermMatcher.from_file(path)
    assert [h.category for h in matcher.find("Advanced Alzheimer's")] == ["dementia"]
    assert matcher.find("seen by the dementia nurse") == []
    assert matcher.find("not due to dementia") == []


@pytest.mark.parametrize(
    "content",
    [
        "categories: []\n",
        "categories:\n  x:\n    terms: [a]\n",
        "categories:\n  x:\n    rule: r\n    terms: [{regex: '(unclosed'}]\n",
        "categories:\n  x:\n    rule: r\n    terms: [{regex: 'a', anchors: ''}]\n",
        "categories:\n  x:\n    rule: r\n    terms: [42]\n",
    ],
)
def test_bad_term_files_are_refused_with_the_category(tmp_path, content: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(TermsError):
        TermMatcher.from_file(path)


def test_regex_without_anchors_always_runs(tmp_path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text("categories:\n  x:\n    rule: r\n    terms: [{regex: '\\bzz\\d+'}]\n")
    assert [h.matched for h in TermMatcher.from_file(path).find("code zz12")] == ["zz12"]


def _every_scanner(matcher: TermMatcher, text: str) -> list[tuple[str, str, int, int]]:
    """The straightforward way: every expression on every text, no anchor prefilter."""
    hits = []
    for cat in matcher.categories:
        for scanner in cat.scanners:
            for m in scanner.pattern.finditer(text):
                if cat.exclude is not None and matcher._excluded(cat.exclude, text, m.start(), m.end()):
                    continue
                if not matcher._negated(text, m.start()):
                    hits.append((cat.id, cat.rule, m.group(0), m.start(), m.end()))
    hits.sort(key=lambda h: (h[3], -h[4]))
    kept: list[tuple[str, str, int, int]] = []
    for hit in hits:
        if not any(k[1] == hit[1] and k[3] <= hit[3] and hit[4] <= k[4] for k in kept):
            kept.append(hit)
    return kept


_PIECES = [
    "not for ICU",
    "no IV antibiotics",
    "no  further treatment",
    "do not admit",
    "don't escalate",
    "ceiling of care",
    "ward-based care only",
    "comfort care only",
    "LD",
    "ld",
    "old",
    "Downs",
    "ups and downs",
    "Down’s syndrome",
    "aged 92",
    "92yo",
    "over 80",
    "over the past 6 months",
    "elderly",
    "frail",
    "CFS 6",
    "lives in a care home",
    "COVID-19 policy",
    "disabled parking",
    "double-blind",
    "blind",
    "not based on age",
    "regardless of disability",
    "cannot form",
    "PMLD",
    "ASC",
    "withholding fluids",
    ".",
    ";",
    ",",
    "-",
    "\n",
]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(_PIECES), st.sampled_from(CONDITIONS + COURSE + REASONS)),
        max_size=14,
    )
)
def test_anchor_prefilter_finds_what_every_expression_finds(pieces: list[str]) -> None:
    # the anchor index only decides which expressions run: it must never skip one that would match
    text = " ".join(pieces)
    matcher = default_matcher()
    found = [(h.category, h.rule, h.matched, h.start, h.end) for h in matcher.find(text)]
    assert found == _every_scanner(matcher, text)


_WORDS = ["not", "for", "no", "icu", "cannot", "form", "lives", "in", "a", "care", "home", "don't"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_WORDS), min_size=2, max_size=4), min_size=1, max_size=4),
    st.lists(st.tuples(st.sampled_from(_WORDS), st.sampled_from([" ", ", ", " - ", ".  ", "\n", "’"]))),
)
def test_anchor_phrases_are_searched_in_spaced_words_as_in_joined_words(
    phrases: list[list[str]], text: list[tuple[str, str]]
) -> None:
    # the prefilter looks for anchor phrases in the text's words before joining them with single
    # spaces: it must agree with looking in the joined words
    from fhir_dnacpr.assurance.terms import _TOKEN_TABLE, _phrases_pattern

    raw = "".join(w + sep for w, sep in text)
    spaced = raw.encode("ascii", "ignore").lower().translate(_TOKEN_TABLE)
    joined = b" ".join(spaced.split())
    wanted = [" ".join(p).encode() for p in phrases]
    assert (_phrases_pattern(wanted).search(spaced) is not None) == any(w in joined for w in wanted)


def test_the_token_table_lowers_as_it_splits() -> None:
    # find() skips bytes.lower(): the table must give, for every byte, what lower() then the old
    # letters-and-apostrophes table gave (translate works byte by byte, so all 256 bytes prove it)
    from fhir_dnacpr.assurance.terms import _TOKEN_TABLE

    letters_kept = bytes(c if (65 <= c <= 90 or 97 <= c <= 122 or c == 39) else 32 for c in range(256))
    every_byte = bytes(range(256))
    assert every_byte.translate(_TOKEN_TABLE) == every_byte.lower().translate(letters_kept)
