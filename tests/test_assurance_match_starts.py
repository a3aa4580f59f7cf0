"""Trying a pattern only where a match can start gives exactly the matches ``finditer`` gives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_dnacpr.assurance.match_starts import StartFinder, sentence_local, start_finder
from fhir_dnacpr.assurance.terms import default_matcher


def spans(matches) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in matches]


def fast(finder: StartFinder, text: str) -> list[tuple[int, int, str]]:
    return spans(finder.finditer(text, text.lower() if text.isascii() else None))


@pytest.mark.parametrize(
    ("pattern", "flags", "starts"),
    [
        (r"\b(?:over|above)\s*\d+", re.IGNORECASE, {"over", "above"}),
        (r"\bautism\b|\bautistic\b|\basperger", re.IGNORECASE, {"autism", "autistic", "asperger"}),
        (r"\b(?:aspergers|asperger)\b", re.IGNORECASE, {"asperger"}),  # the longer adds no start
        (r"\bLD(?:['’]?s)?\b", 0, {"LD"}),
        (r"\bDown’s\b", 0, {"Down’s"}),
        (r"\bdown[’']?s", re.IGNORECASE, {"down"}),
        (r"\bcafé", re.IGNORECASE, {"caf"}),  # a non-ASCII letter ends the prefix when case is ignored
    ],
)
def test_reads_the_literal_texts_every_match_begins_with(pattern: str, flags: int, starts: set[str]) -> None:
    finder = start_finder(re.compile(pattern, flags))
    assert finder is not None
    assert set(finder.prefixes) == starts


@pytest.mark.parametrize(
    "pattern",
    [r"\b\d{2,3}\s*yo\b", r"(?:over|\s+above)", r"\b(?i:over)", r"[ab]c", r"x?y", r"\bKelvin"],
)
def test_no_finder_when_a_match_need_not_begin_with_a_literal(pattern: str) -> None:
    flags = re.IGNORECASE if "Kelvin" in pattern else 0
    # "\u212a" (Kelvin sign) ignores case to "k": a case-insensitive K is not a literal to search for
    assert start_finder(re.compile(pattern.replace("K", "\u212a"), flags)) is None


_WORDS = ["over", "OVER", "Over", "above", "age", "aged", "LD", "ld", "down", "Down’s", "downs", "of"]
_GLUE = [" ", "", "  ", "-", "’", "'", "9", "80", ".", "\n", "\u212a", "ſ", "İ", "é"]


@st.composite
def patterns(draw) -> re.Pattern[str]:
    """Small patterns of the shapes term files use: \\b, words, alternatives, optional bits."""

    def word() -> str:
        return re.escape(draw(st.sampled_from(_WORDS)))

    def piece() -> str:
        kind = draw(st.integers(0, 4))
        if kind == 0:
            return word()
        if kind == 1:
            return "(?:" + "|".join(word() for _ in range(draw(st.integers(1, 3)))) + ")"
        if kind == 2:
            return draw(st.sampled_from([r"\s*", r"\s+", r"\d{2}", r"[’']?", r"s?", r"\b"]))
        if kind == 3:
            return "(" + word() + ")"
        return "(?:" + word() + ")?"

    body = "".join(piece() for _ in range(draw(st.integers(1, 4))))
    lead = draw(st.sampled_from(["", r"\b"]))
    alternatives = [lead + body]
    if draw(st.booleans()):
        alternatives.append(lead + "".join(piece() for _ in range(draw(st.integers(1, 3)))))
    flags = draw(st.sampled_from([0, re.IGNORECASE, re.IGNORECASE | re.ASCII]))
    return re.compile("|".join(alternatives), flags)


_TEXTS = st.lists(st.one_of(st.sampled_from(_WORDS), st.sampled_from(_GLUE)), max_size=16).map("".join)


@settings(max_examples=600, deadline=None)
@given(patterns(), _TEXTS)
def test_matches_are_exactly_finditers(pattern: re.Pattern[str], text: str) -> None:
    finder = start_finder(pattern)
    if finder is not None:
        assert fast(finder, text) == spans(pattern.finditer(text))


_CLINICAL_PIECES = [
    "over 80",
    "Over the past 6 months",
    "aged 92",
    "LD",
    "Down’s syndrome",
    "not for ICU",
    "no IV fluids",
    "comfort care only",
    "Autistic",
    "frail",
    "CFS 6",
    "care home resident",
    "ſ",
    "İ",
    ", ",
    ". ",
]
_CLINICAL = st.lists(st.sampled_from(_CLINICAL_PIECES), max_size=10).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_CLINICAL)
def test_every_term_scanner_finds_what_finditer_finds(text: str) -> None:
    for category in default_matcher().categories:
        for scanner in category.scanners:
            assert spans(scanner.matches(text, text.lower() if text.isascii() else None)) == spans(
                scanner.pattern.finditer(text)
            )


@pytest.mark.parametrize(
    ("pattern", "local"),
    [
        (r"\b(?:over|above)\s*(?:the\s*age\s*of\s*)?\d{2,3}\b", True),
        (r"^[a-z]+\s*[\w\-’']*$", True),  # ^ and $ hold at every sentence's ends
        (r"\Acfs(?>\s*)\d++\Z", True),
        (r"over.\d", False),  # any character: a full stop too
        (r"over\.\d", False),
        (r"over[^a]", False),
        (r"over\W", False),
        (r"over[,-/]", False),  # a range with the full stop in it
        (r"over(?=\d)", False),  # lookarounds see past the match
        (r"(?<!not )over", False),
        (r"(o)ver\1", False),
        (r"over\B", False),  # holds between two full stops, not in the empty text between them
    ],
)
def test_tells_which_patterns_keep_within_sentences(pattern: str, local: bool) -> None:
    assert sentence_local(re.compile(pattern, re.IGNORECASE)) is local


def test_no_character_but_the_full_stop_matches_one_when_case_is_ignored() -> None:
    # sentence_local looks for the full stop itself in literals and ranges: no case variant of another
    # character may stand for it
    everything_else = re.compile(r"[\x00-\x2d\x2f-\U0010ffff]", re.IGNORECASE)
    assert everything_else.search(".") is None


_LOCAL_PIECES = [r"\.", ".", "[^o]", r"\W", r"[,-/]", r"[\s.]", r"(?=\.)", r"(?<=\.)", r"\B", "^", "$"]
_EDGE_PIECES = [r"\A", r"\Z", r"(?m:^)", r"(?m:$)", r"\n", r"\s*", r"\w*", r"[^.]"]


@st.composite
def sentence_patterns(draw) -> re.Pattern[str]:
    """Small patterns with words, anchors and pieces that may or may not take or see a full stop."""
    pieces = st.one_of(st.sampled_from(_WORDS).map(re.escape), st.sampled_from(_LOCAL_PIECES + _EDGE_PIECES))
    alternatives = draw(
        st.lists(st.lists(pieces, min_size=1, max_size=3).map("".join), min_size=1, max_size=2)
    )
    return re.compile("|".join(alternatives), draw(st.sampled_from([0, re.IGNORECASE, re.MULTILINE])))


_SENTENCE_TEXTS = st.lists(
    st.one_of(st.sampled_from(_WORDS), st.sampled_from([*_GLUE, ".", "..", "\n", ". ", ".\n"])), max_size=16
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(sentence_patterns(), _SENTENCE_TEXTS)
def test_a_sentence_local_pattern_matches_a_text_only_where_a_sentence_of_it_matches(
    pattern: re.Pattern[str], text: str
) -> None:
    if not sentence_local(pattern):
        return
    for m in pattern.finditer(text):
        begin = text.rfind(".", 0, m.start()) + 1
        end = text.find(".", m.start())
        sentence = text[begin : len(text) if end < 0 else end]
        assert m.end() <= begin + len(sentence), (m, sentence)
        assert pattern.search(sentence) is not None, (m, sentence)
