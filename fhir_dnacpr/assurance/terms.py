"""Find flagged terms (age, disability, treatment ceilings …) in free-text rationale.

The term list is data (``data/rationale_terms.yaml``) so clinical reviewers can change it without
touching code. A category's phrases compile into one regular expression per case mode; an index of
the words every match contains ("anchors") decides which expressions a text needs at all, and a memory
of which expressions match in each sentence seen before decides it for texts made of such sentences,
so most rationales run none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from fhir_dnacpr.assurance.match_starts import StartFinder, sentence_local, start_finder

DEFAULT_TERMS_FILE = Path(__file__).resolve().parent / "data" / "rationale_terms.yaml"
_SENTENCE_END = re.compile(r"[.;!?\n]")
#: Words as the anchor index sees them: runs of ASCII letters, lower-cased; every other byte (digits,
#: punctuation, apostrophes) separates words ("92yo" → "yo", "Down's" → "down s"). bytes.translate with
#: a 256-byte table is the cheapest tokeniser Python has, and this runs on every rationale; the table
#: lower-cases too, so the bytes need no ``lower()`` pass of their own.
_TOKEN_TABLE = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 else 32 for c in range(256))
#: The non-ASCII characters a case-insensitive pattern takes for ASCII letters (Python's ``re`` folds
#: "ſ" to "s", the Kelvin sign to "k", dotted and dotless I to "i"); every other non-ASCII character is
#: a word separator here ("?" from ``encode(errors="replace")``): a no-break space or a dash between
#: words separates them as a space does, and a term's letters are never non-ASCII.
_ASCII_LOOKALIKES = {0x017F: "s", 0x212A: "k", 0x0130: "i", 0x0131: "i"}
_HAS_LOOKALIKE = re.compile("[" + "".join(map(chr, _ASCII_LOOKALIKES)) + "]")


def _spaced(text: str) -> bytes:
    """The text's words (see ``_TOKEN_TABLE``) separated by runs of spaces, one byte per character of
    the text, so positions in it are positions in the text."""
    if not text.isascii() and _HAS_LOOKALIKE.search(text) is not None:
        text = text.translate(_ASCII_LOOKALIKES)
    return text.encode("ascii", "replace").translate(_TOKEN_TABLE)


def _words(text: str) -> list[bytes]:
    return _spaced(text).split()


#: Punctuation that folding turns into spaces (apostrophes, slashes and comparison signs are kept).
_PUNCTUATION = str.maketrans({c: " " for c in '!"#$%&()*+,-.:;?@[\\]^_`{|}~–—…•·'})


class TermsError(ValueError):
    """The term file is malformed; the message names the category and entry."""


@dataclass(frozen=True, slots=True)
class TermHit:
    """One flagged term found in a text: which category, the words matched, and where."""

    category: str
    rule: str
    matched: str
    start: int
    end: int


def phrase_pattern(phrase: str) -> str:
    """Regex for a plain phrase: word boundaries, flexible spaces/hyphens, optional plural or 's."""
    words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase.strip()) if w]
    if not words:
        raise TermsError(f"empty term {phrase!r}")
    body = r"[\s\-]+".join(words)
    if words[-1][-1:].isalnum():
        body += r"(?:['’]?s)?"
    lead = r"\b" if phrase.strip()[0].isalnum() else ""
    tail = r"\b" if phrase.strip()[-1].isalnum() or body.endswith("?") else ""
    return f"{lead}{body}{tail}"


@dataclass(frozen=True, slots=True)
class _Scanner:
    """A compiled expression and the literal anchors any match contains (None: always run it)."""

    pattern: re.Pattern[str]
    anchors: tuple[str, ...] | None  # words (or phrases) a match contains; None = always run
    case_sensitive_anchors: bool = False
    phrase: bool = False
    starts: StartFinder | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", start_finder(self.pattern))

    def matches(self, text: str, ascii_lowered: str | None) -> Iterator[re.Match[str]]:
        """``pattern.finditer(text)``, tried only where a match can start when that is known (see
        ``match_starts``). ``ascii_lowered`` is ``text.lower()`` if the text is ASCII, else None."""
        if self.starts is None:
            return self.pattern.finditer(text)
        return self.starts.finditer(text, ascii_lowered)


@dataclass(frozen=True, slots=True)
class _Category:
    id: str
    rule: str
    label: str
    scanners: tuple[_Scanner, ...]
    exclude: re.Pattern[str] | None


@dataclass(frozen=True)
class TermMatcher:
    """Compiled term list; ``find(text)`` yields the hits that survive exclusions and negation.

    Running ~100 alternatives at every position of every rationale costs hundreds of microseconds, so
    every expression keeps the literal words a match must contain ("anchors") and runs only on text
    that contains one. Plain phrases are their own anchors (all of a category's phrases share one
    expression); a ``regex`` entry names its anchors, and without them it runs on every text.

    Rationales are mostly new texts made of sentences seen before ("CPR would not be successful"), so
    the expressions that match in a sentence are remembered (from its second sighting on): a text whose
    sentences are all remembered runs those expressions only, found with a dictionary look-up per
    sentence. That holds when no expression can match across a full stop (``sentence_local``); a term
    list with one that can reads every text by its anchor words.
    """

    categories: tuple[_Category, ...]
    _negation: re.Pattern[str] | None
    negation_window: int
    _gate_words: frozenset[bytes] = frozenset()
    _triggers: frozenset[bytes] = frozenset()
    _always: frozenset[int] = frozenset()
    _scanners: tuple[tuple[_Category, _Scanner], ...] = ()
    _plan: dict[bytes, tuple[_Trigger, ...]] = field(default_factory=dict)
    _by_sentence: bool = False
    _decisions: dict[frozenset[bytes], _Decision] = field(default_factory=dict, compare=False, repr=False)
    _sentence_memory: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    _sentences_seen_once: set[str] = field(default_factory=set, compare=False, repr=False)
    _scanned: dict[str, tuple[TermHit, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Index every anchor by its first word (exact, as a word of the text).

        An anchor's words are whole words of any match, the last one perhaps with a plural or
        possessive "s" ("Down" → "Downs", "Down's"). A longer anchor also needs one of its other words
        among the text's words before it is looked for as a whole (a set lookup rules most texts out
        without a search); a case-sensitive one ("LD") is confirmed in the original text.
        """
        scanners = tuple((cat, sc) for cat in self.categories for sc in cat.scanners)
        index: dict[bytes, list[_Anchor]] = {}
        always = set()
        for i, (_, sc) in enumerate(scanners):
            if sc.anchors is None:
                always.add(i)
                continue
            for anchor in sc.anchors:
                words = _words(anchor)
                if not words:  # e.g. ">": no word to index it by
                    always.add(i)
                    continue
                entry = _anchor_of(words, anchor if sc.case_sensitive_anchors else None, i)
                for key in _with_plural(words[0]) if len(words) == 1 else (words[0],):
                    index.setdefault(key, []).append(entry)
        gate_words = {w for entries in index.values() for entry in entries for w in entry.others}
        object.__setattr__(self, "_scanners", scanners)
        object.__setattr__(self, "_plan", {key: _plan_of(entries) for key, entries in index.items()})
        object.__setattr__(self, "_triggers", frozenset(index))
        object.__setattr__(self, "_gate_words", frozenset(index) | gate_words)
        object.__setattr__(self, "_always", frozenset(always))
        object.__setattr__(self, "_by_sentence", all(sentence_local(sc.pattern) for _, sc in scanners))

    @classmethod
    def from_file(cls, path: Path | str = DEFAULT_TERMS_FILE) -> TermMatcher:
        path = Path(path).resolve()
        return _load(str(path), path.stat().st_mtime_ns)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<terms>") -> TermMatcher:
        if not isinstance(data, Mapping) or not isinstance(data.get("categories"), Mapping):
            raise TermsError(f"{source}: expected a mapping with 'categories'")
        categories = []
        for cat_id, spec in data["categories"].items():
            where = f"{source}: category {cat_id!r}"
            if not isinstance(spec, Mapping) or "rule" not in spec or not spec.get("terms"):
                raise TermsError(f"{where}: needs 'rule' and a non-empty 'terms' list")
            phrases: dict[bool, list[tuple[str, str]]] = {False: [], True: []}
            scanners: list[_Scanner] = []
            try:
                for entry in spec["terms"]:
                    kind, pattern, case, anchors = _entry_pattern(entry, where)
                    if kind == "phrase":
                        phrases[case].append((pattern, anchors[0]))  # type: ignore[index]
                    else:
                        flags = 0 if case else re.IGNORECASE
                        folded = None if anchors is None else tuple(a.lower() for a in anchors)
                        scanners.append(_Scanner(re.compile(pattern, flags), folded))
                for case, items in phrases.items():
                    if items:
                        scanners.insert(
                            0,
                            _Scanner(
                                re.compile("|".join(p for p, _ in items), 0 if case else re.IGNORECASE),
                                tuple(dict.fromkeys(a for _, a in items)),
                                case_sensitive_anchors=case,
                                phrase=True,
                            ),
                        )
                exclude = spec.get("exclude")
                categories.append(
                    _Category(
                        str(cat_id),
                        str(spec["rule"]),
                        str(spec.get("label") or cat_id),
                        tuple(scanners),
                        re.compile("|".join(phrase_pattern(str(p)) for p in exclude), re.IGNORECASE)
                        if exclude
                        else None,
                    )
                )
            except re.error as exc:
                raise TermsError(f"{where}: {exc}") from exc
        cues = [phrase_pattern(str(c)) for c in data.get("negation_cues") or ()]
        return cls(
            categories=tuple(categories),
            _negation=re.compile("|".join(cues), re.IGNORECASE) if cues else None,
            negation_window=int(data.get("negation_window", 40)),
        )

    def labels(self) -> dict[str, str]:
        return {c.id: c.label for c in self.categories}

    def find(self, text: str | None) -> list[TermHit]:
        """All hits in ``text``, in order, after exclusions ("disabled parking") and negation."""
        if not text:
            return []
        run = self._scanners_by_sentence(text) if self._by_sentence else None
        if run is None:
            run = self._scanners_by_words(text)
        if not run:
            return []
        hits = self._scanned.get(text)
        if hits is None:
            if len(self._scanned) >= _SCANNED_KEPT:
                self._scanned.clear()
            hits = self._scanned[text] = tuple(self._scan(text, run))
        return list(hits)

    def _scan(self, text: str, run: int) -> list[TermHit]:
        """The hits of the scanners in ``run`` (a bit each), in order, the shorter of two nested hits
        of a rule left out."""
        hits: list[TermHit] = []
        ascii_lowered = text.lower() if text.isascii() else None
        for i in _bits(run):
            cat, scanner = self._scanners[i]
            for m in scanner.matches(text, ascii_lowered):
                start, end = m.start(), m.end()
                if cat.exclude is not None and self._excluded(cat.exclude, text, start, end):
                    continue
                if self._negated(text, start):
                    continue
                hits.append(TermHit(cat.id, cat.rule, m.group(0), start, end))
        if len(hits) < 2:
            return hits
        hits.sort(key=lambda h: (h.start, -h.end))
        kept: list[TermHit] = []
        for hit in hits:
            # "disability" inside "learning disability", "Downs" inside "Downs syndrome": the longer,
            # more specific hit of the same rule stands for both
            if any(k.rule == hit.rule and k.start <= hit.start and hit.end <= k.end for k in kept):
                continue
            kept.append(hit)
        return kept

    def _scanners_by_sentence(self, text: str) -> int | None:
        """The scanners (a bit each) that match in one of the text's sentences, or None when one of them
        is not remembered yet.

        A scanner with a match in the text has one in a sentence (``sentence_local``), so the others
        would find nothing. A sentence is learnt when it comes a second time; a text with a sentence
        not seen before is read by its words, so text that never repeats costs a look-up per text more,
        not a reading per sentence.
        """
        known = self._sentence_memory
        sentences = text.split(".")
        try:
            if not any(map(known.__getitem__, sentences)):
                return 0  # the common case: every sentence remembered, none with a match
        except KeyError:
            pass
        run = 0
        for sentence in sentences:
            scanners = known.get(sentence)
            if scanners is None:
                scanners = self._second_sighting(sentence)
                if scanners is None:
                    return None
            run |= scanners
        return run

    def _second_sighting(self, sentence: str) -> int | None:
        """The scanners that match in ``sentence`` if it was seen before (then remembered), else None."""
        seen_once = self._sentences_seen_once
        if sentence not in seen_once:
            if len(seen_once) >= _SENTENCES_KEPT:
                seen_once.clear()
            seen_once.add(sentence)
            return None
        seen_once.discard(sentence)
        scanners = 0
        for i in _bits(self._scanners_by_words(sentence)):
            if self._scanners[i][1].pattern.search(sentence) is not None:
                scanners |= 1 << i
        known = self._sentence_memory
        if len(known) >= _SENTENCES_KEPT:
            known.clear()
        known[sentence] = scanners
        return scanners

    def _scanners_by_words(self, text: str) -> int:
        """The scanners (a bit each) that the text's anchor words, phrases and case-sensitive anchors
        call for."""
        spaced = _spaced(text)
        words = self._gate_words.intersection(spaced.split())
        decision = self._decisions.get(words)
        if decision is None:
            decision = self._decide(words)
        run = decision.run
        for i, pattern in decision.phrases:
            if not run >> i & 1 and pattern.search(spaced) is not None:
                run |= 1 << i
        for i, case_anchor in decision.cased:
            if not run >> i & 1 and case_anchor in text:
                run |= 1 << i
        return run

    def _decide(self, words: frozenset[bytes]) -> _Decision:
        """What the text's anchor words (``words``) say about each scanner, remembered for the next text
        with the same words: the few combinations of common words ("not", "for", "over" …) recur."""
        run = set(self._always)
        phrases: dict[int, list[re.Pattern[bytes]]] = {}
        cased: dict[int, list[str]] = {}
        for key in self._triggers.intersection(words):
            for i, unconditional, others, verify, case_pairs in self._plan[key]:
                if unconditional:
                    run.add(i)
                if verify is not None and not words.isdisjoint(others):
                    phrases.setdefault(i, []).append(verify)
                for needed, case_anchor in case_pairs:
                    if not needed or not words.isdisjoint(needed):
                        cased.setdefault(i, []).append(case_anchor)
        decision = _Decision(
            sum(1 << i for i in run),
            tuple((i, p) for i, ps in phrases.items() if i not in run for p in ps),
            tuple((i, c) for i, cs in cased.items() if i not in run for c in cs),
        )
        if len(self._decisions) >= _DECISIONS_KEPT:
            self._decisions.clear()
        self._decisions[words] = decision
        return decision

    @staticmethod
    def _excluded(pattern: re.Pattern[str], text: str, start: int, end: int) -> bool:
        lo, hi = max(0, start - 30), min(len(text), end + 30)
        return any(e.start() <= start and e.end() >= end for e in pattern.finditer(text, lo, hi))

    def _negated(self, text: str, start: int) -> bool:
        if self._negation is None:
            return False
        lo = max(0, start - self.negation_window)
        before = text[lo:start]
        cut = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        return self._negation.search(before, cut) is not None


#: How many combinations of anchor words ``TermMatcher._decide`` remembers (then it starts afresh).
_DECISIONS_KEPT = 4096
#: How many texts that needed scanners ``TermMatcher.find`` remembers the hits of: a templated rationale
#: ("Frail elderly care home resident …", the blanket pattern) comes again and again.
_SCANNED_KEPT = 1024
#: How many sentences ``TermMatcher`` remembers the scanners of, and how many it remembers having seen
#: once (then it starts afresh).
_SENTENCES_KEPT = 16384


class _Decision(NamedTuple):
    """Which scanners run on a text with given anchor words: ``run`` (a bit each) whatever the text;
    each of ``phrases`` if its pattern is in the text's spaced words; each of ``cased`` if its
    case-sensitive anchor is in the text."""

    run: int
    phrases: tuple[tuple[int, re.Pattern[bytes]], ...]
    cased: tuple[tuple[int, str], ...]


def _bits(scanners: int) -> Iterator[int]:
    """The scanner numbers whose bits are set, in ascending order (the order of the term list)."""
    while scanners:
        low = scanners & -scanners
        yield low.bit_length() - 1
        scanners ^= low


class _Anchor(NamedTuple):
    """One anchor of scanner ``scanner``: the phrase its words make (None for one word), one of the words
    after the first (with its plural if it is the last) that must be among the text's words, and the
    anchor itself if it is case-sensitive."""

    scanner: int
    phrase: bytes | None
    others: frozenset[bytes]
    case_anchor: str | None


def _with_plural(word: bytes) -> tuple[bytes, bytes]:
    """A last word as the text may have it: "down" also answers to "downs" (and "down's", whose
    apostrophe splits it into "down" and "s")."""
    return word, word + b"s"


def _anchor_of(words: list[bytes], case_anchor: str | None, scanner: int) -> _Anchor:
    if len(words) == 1:
        return _Anchor(scanner, None, frozenset(), case_anchor)
    # the longest word after the first is likely the rarest: the one that rules most texts out
    at = max(range(1, len(words)), key=lambda k: len(words[k]))
    others = _with_plural(words[at]) if at == len(words) - 1 else (words[at],)
    return _Anchor(scanner, b" ".join(words), frozenset(others), case_anchor)


class _Trigger(NamedTuple):
    """What a trigger word asks of one scanner: run it outright; or if one of ``others`` is among the
    text's words and the text has one of the anchor phrases that start with the trigger (``verify``);
    or if a case-sensitive anchor is in the text (and one of its ``needed`` words, if any, among the
    text's words).

    The phrases are one regex, searched in the text's words before they are joined with single spaces
    (``verify`` allows a run of spaces between words, so it matches there exactly where the phrase is
    in the joined text), with the trigger word as its literal prefix so the regex engine skips to it."""

    scanner: int
    unconditional: bool
    others: frozenset[bytes]
    verify: re.Pattern[bytes] | None
    case_pairs: tuple[tuple[frozenset[bytes], str], ...]


def _plan_of(entries: list[_Anchor]) -> tuple[_Trigger, ...]:
    """Group a trigger word's anchors by scanner: the scanner runs if any anchor holds."""
    by_scanner: dict[int, list[_Anchor]] = {}
    for entry in entries:
        by_scanner.setdefault(entry.scanner, []).append(entry)
    plan = []
    for i, anchors in by_scanner.items():
        phrases = [a for a in anchors if a.phrase is not None and a.case_anchor is None]
        plan.append(
            _Trigger(
                i,
                any(a.phrase is None and a.case_anchor is None for a in anchors),
                frozenset().union(*(a.others for a in phrases)),
                _phrases_pattern([a.phrase for a in phrases]) if phrases else None,  # type: ignore[misc]
                tuple((a.others, a.case_anchor) for a in anchors if a.case_anchor is not None),
            )
        )
    return tuple(plan)


def _phrases_pattern(phrases: list[bytes]) -> re.Pattern[bytes]:
    """A regex for any of ``phrases`` (words separated by single spaces) in text whose words are
    separated by runs of spaces; a first word they all share is taken out as the literal prefix."""
    split = [p.split(b" ") for p in dict.fromkeys(phrases)]
    first = split[0][0]
    if all(len(words) > 1 and words[0] == first for words in split):
        rests = b"|".join(b" +".join(re.escape(w) for w in words[1:]) for words in split)
        return re.compile(re.escape(first) + b" +(?:" + rests + b")")
    return re.compile(b"|".join(b" +".join(re.escape(w) for w in words) for words in split))


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> TermMatcher:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TermsError(f"{path}: not valid YAML: {exc}") from exc
    return TermMatcher.from_dict(data, source=path)


def fold_tokens(text: str) -> list[str]:
    """Lower-cased words with most punctuation removed: the form anchors are looked up in."""
    return text.lower().translate(_PUNCTUATION).split()


def fold(text: str) -> str:
    return " ".join(fold_tokens(text))


def _entry_pattern(entry: Any, where: str) -> tuple[str, str, bool, list[str] | None]:
    """(kind, pattern, case-sensitive?, anchors) for one term entry; anchors None = always run."""
    if isinstance(entry, str):
        return "phrase", phrase_pattern(entry), False, [fold(entry)]
    if isinstance(entry, Mapping):
        case = bool(entry.get("case", False))
        if "regex" in entry:
            pattern = str(entry["regex"])
            try:
                re.compile(pattern)
            except re.error as exc:
                raise TermsError(f"{where}: bad regex {pattern!r}: {exc}") from exc
            anchors = entry.get("anchors")
            if anchors is not None and (not isinstance(anchors, list) or not all(anchors)):
                raise TermsError(f"{where}: 'anchors' of {pattern!r} must be a list of non-empty strings")
            return "regex", pattern, case, [fold(str(a)) for a in anchors] if anchors else None
        if "term" in entry:
            term = str(entry["term"])
            return "phrase", phrase_pattern(term), case, [term if case else fold(term)]
    raise TermsError(f"{where}: term entries are strings or {{regex: ...}} / {{term: ..., case: true}}")


@cache
def default_matcher() -> TermMatcher:
    return TermMatcher.from_file(DEFAULT_TERMS_FILE)


def categories_of(hits: Iterable[TermHit]) -> list[str]:
    """Distinct categories in first-seen order."""
    seen: dict[str, None] = {}
    for h in hits:
        seen.setdefault(h.category, None)
    return list(seen)
