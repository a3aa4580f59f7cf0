"""The rationale term matcher: what it flags, what it must not, and how its data file is checked."""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.synthetic import CONDITIONS, COURSE, REASONS
from fhir_dnacpr.assurance.terms import DEFAULT_TERMS_FILE, TermMatcher, TermsError, default_matcher


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
    from fhir_dnacpr.assurance.terms import _phrases_pattern, _spaced, _words

    spaced = _spaced("".join(w + sep for w, sep in text))
    joined = b" " + b" ".join(spaced.split()) + b" "
    wanted = [b" ".join(_words(" ".join(p))) for p in phrases]
    assert (_phrases_pattern(wanted).search(spaced) is not None) == any(w in joined for w in wanted)


def test_the_token_table_keeps_ascii_letters_lowered_and_spaces_the_rest() -> None:
    # find() skips bytes.lower(): the table lower-cases as it splits (translate works byte by byte,
    # so all 256 bytes prove it)
    from fhir_dnacpr.assurance.terms import _TOKEN_TABLE

    every_byte = bytes(range(256))
    letters = bytes(range(ord("a"), ord("z") + 1))
    expected = bytes(b if b in letters else 32 for b in every_byte.lower())
    assert every_byte.translate(_TOKEN_TABLE) == expected


def test_the_ascii_lookalikes_are_every_character_a_pattern_takes_for_an_ascii_letter() -> None:
    # any other non-ASCII character separates words in the anchor index; one that a case-insensitive
    # expression matches as an ASCII letter must be read as that letter, or a word would be missed
    from fhir_dnacpr.assurance.terms import _ASCII_LOOKALIKES

    everything = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    found = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        for m in re.finditer(letter, everything, re.IGNORECASE):
            found[ord(m.group(0))] = letter
    assert found == _ASCII_LOOKALIKES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("learning\u00a0disability", {"learning-disability"}),  # a no-break space between the words
        ("Frail\u2014elderly", {"age", "frailty"}),  # an em dash
        ("frail\u2013elderly lady", {"age", "frailty"}),  # an en dash
        ("described as 'elderly'", {"age"}),  # in quotes
        ("'frail'", {"frailty"}),
        ("‘learning disability’", {"learning-disability"}),
        ("is diſabled", {"disability"}),  # a long s, which a case-insensitive pattern takes for "s"
        ("lives in a care home’s annexe", {"care-setting"}),
    ],
)
def test_words_joined_by_non_ascii_or_quotes_are_still_words(text: str, expected: set[str]) -> None:
    # the anchor index once dropped non-ASCII characters and kept apostrophes in words, so these
    # texts, which the expressions match, ran none of them
    assert categories(text) == expected


#: Pieces of text for the oracle below: terms and their variants, look-alikes, negations, numbers.
_TERMS = [
    *_PIECES,
    "learning disability",
    "Learning-Disabilities",
    "Down's syndrome",
    "downs syn",
    "DOWN’S SYNDROME",
    "trisomy 21",
    "autistic spectrum disorder",
    "over 80",
    "above the age of 70",
    "aged over 85",
    "92 years old",
    "80-yr-old",
    "90 y/o",
    "because of her age",
    "due to the patient's age",
    "age UK",
    "gestational age",
    "CFS score of 7",
    "clinical frailty scale",
    "wheelchair-bound",
    "bed bound",
    "not suitable for intensive care",
    "not appropriate for NIV",
    "do not ventilate",
    "no transfusions",
    "palliative care only",
    "withhold antibiotics",
    "all residents",
    "as per policy",
    "does not mean",
    "irrespective of",
    "not solely due to",
    "Age",
    "s",
    "o",
    "y",
    "resident",
    "diſabled",  # long s: a case-insensitive expression takes it for "s"
    "bl\u0130nd",  # dotted capital I, taken for "i"
    "\u212aeen on ICU",  # Kelvin sign, taken for "k"
]
_SEPARATORS = [
    " ",
    "  ",
    ", ",
    ". ",
    "; ",
    "\n",
    "-",
    " - ",
    "/",
    "'",
    "’",
    "'s ",
    "’s ",
    " (",
    ") ",
    "\u00a0",
    "\u2014",
    "\u2013",
    " 92 ",
    "7",
    "é",
    "ſ",
    "\u212a",
    "\u0130",
    " \U0001f600 ",
    "\t",
]


def _cased(piece: str, how: int) -> str:
    return (piece, piece.upper(), piece.lower(), piece.title())[how]


def _agree(text: str) -> None:
    matcher = default_matcher()
    found = [(h.category, h.rule, h.matched, h.start, h.end) for h in matcher.find(text)]
    assert found == _every_scanner(matcher, text), text


@pytest.mark.parametrize("term", _TERMS)
def test_find_agrees_with_every_expression_on_each_term_between_each_separator(term: str) -> None:
    for sep in _SEPARATORS:
        for how in range(4):
            _agree(f"{sep}{_cased(term, how)}{sep}{term}s{sep}")


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_TERMS + [*CONDITIONS, *COURSE, *REASONS][::4]),
            st.integers(0, 3),
            st.sampled_from(_SEPARATORS),
        ),
        max_size=10,
    )
)
def test_find_agrees_with_every_expression_on_mixed_text(pieces: list[tuple[str, int, str]]) -> None:
    # the anchor index, the sentence and decision memories and the start finder only decide where
    # expressions run: whatever the case, punctuation, quotes, numbers or non-ASCII characters, find()
    # must give what running every expression everywhere gives
    _agree("".join(_cased(piece, how) + sep for piece, how, sep in pieces))


def test_remembered_sentences_and_decisions_give_what_a_fresh_matcher_gives() -> None:
    # the same sentences in other texts, and the same anchor words in other sentences
    texts = [
        "Frail. Lives in a care home. Not for ICU.",
        "Lives in a care home. Frail.",
        "Not for ICU. Lives alone.",
        "Lives alone. Not for ICU. LD.",
        "Not for ICU. ld.",
        "No further treatment. Over 80.",
        "Over 80. No further treatment planned. Over the past months.",
    ]
    shared = default_matcher()
    data = yaml.safe_load(DEFAULT_TERMS_FILE.read_text(encoding="utf-8"))
    for text in texts * 2:
        assert shared.find(text) == TermMatcher.from_dict(data).find(text), text


def _fresh_matcher() -> TermMatcher:
    """A matcher with empty sentence and decision memories."""
    return TermMatcher.from_dict(yaml.safe_load(DEFAULT_TERMS_FILE.read_text(encoding="utf-8")))


def _agree_with(matcher: TermMatcher, text: str) -> None:
    found = [(h.category, h.rule, h.matched, h.start, h.end) for h in matcher.find(text)]
    assert found == _every_scanner(matcher, text), text


def test_the_default_terms_let_find_remember_sentences() -> None:
    # every expression in the shipped term list stays within a sentence; one that did not would turn
    # the sentence memory off (correct, but every rationale read word by word again)
    assert default_matcher()._by_sentence


#: Sentences (pieces between full stops) for the memory oracle: terms, look-alikes, negations, numbers,
#: text that ends or starts where a full stop would cut a match ("over" | "80", "not for" | "ICU").
_SENTENCES = st.one_of(
    st.sampled_from([*_TERMS, *CONDITIONS, *COURSE, *REASONS, " 80", "ICU", " not for", "", " ", "\n"]),
    st.lists(st.sampled_from(_TERMS), min_size=2, max_size=3).map(" ".join),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_SENTENCES, min_size=1, max_size=5).map(".".join), min_size=1, max_size=8))
def test_texts_of_remembered_sentences_get_what_every_expression_finds(texts: list[str]) -> None:
    # read three times: sentences seen once, learnt on their second sighting, then taken from memory,
    # also in other texts; a sentence's expressions must stand for the text's whatever its neighbours
    matcher = _fresh_matcher()
    for text in texts * 3:
        _agree_with(matcher, text)
    assert matcher._sentence_memory


def test_the_memories_stay_within_their_bounds(monkeypatch) -> None:
    # starting afresh, even in the middle of a text, loses nothing but time
    import fhir_dnacpr.assurance.terms as terms

    monkeypatch.setattr(terms, "_SENTENCES_KEPT", 3)
    monkeypatch.setattr(terms, "_SCANNED_KEPT", 2)
    matcher = _fresh_matcher()
    texts = [
        "Frail. Aged 91. Not for ICU. Lives alone.",
        "Lives alone. Over 80. Frail. Over the past year.",
        "Not for ICU. Frail.",
    ]
    for text in texts * 6:
        _agree_with(matcher, text)
        assert len(matcher._sentence_memory) <= 3
        assert len(matcher._sentences_seen_once) <= 3
        assert len(matcher._scanned) <= 2


def test_remembered_hits_are_a_new_list_each_time() -> None:
    # find() remembers the hits of texts it scanned; a caller that changes its list changes only its own
    matcher = _fresh_matcher()
    first = matcher.find("Frail elderly care home resident.")
    first.clear()
    assert [h.category for h in matcher.find("Frail elderly care home resident.")] == [
        "frailty",
        "age",
        "care-setting",
    ]


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        (r"{regex: '\bover\.\s*\d+', anchors: [over]}", "Frail, over. 80"),  # a match with a full stop
        (r"{regex: '\bover[^a]\d+', anchors: [over]}", "over.80"),  # a class that takes a full stop
        (r"{regex: '(?<=\.)\s*over', anchors: [over]}", "Frail. Over"),  # looks behind the match
        (r"{regex: '\B'}", "Frail..."),  # holds between full stops, not in the empty text between
    ],
)
def test_an_expression_that_can_see_past_a_full_stop_reads_every_text_by_its_words(
    tmp_path, entry: str, text: str
) -> None:
    # each of these matches in the text but in none of its sentences: remembered sentences would miss it
    path = tmp_path / "terms.yaml"
    path.write_text(f"categories:\n  x:\n    rule: r\n    terms: [frail, {entry}]\n")
    matcher = TermMatcher.from_file(path)
    assert not matcher._by_sentence
    for _ in range(3):
        _agree_with(matcher, text)
    assert any(h.matched.lower() != "frail" for h in matcher.find(text))
