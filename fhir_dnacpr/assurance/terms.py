"""Find flagged terms (age, disability, treatment ceilings …) in free-text rationale.

The term list is data (``data/rationale_terms.yaml``) so clinical reviewers can change it without
touching code. All terms compile into one regular expression per case mode, with a named group per
category, so a rationale is scanned once whatever the number of terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from fhir_dnacpr.assurance.match_starts import StartFinder, start_finder

DEFAULT_TERMS_FILE = Path(__file__).resolve().parent / "data" / "rationale_terms.yaml"
_SENTENCE_END = re.compile(r"[.;!?\n]")
#: Words as the anchor index sees them: ASCII letters (lower-cased) and apostrophes; everything else
#: (digits, punctuation, non-ASCII) separates words ("92yo" → "yo", "Down’s" → "downs"). bytes.translate
#: with a 256-byte table is the cheapest tokeniser Python has, and this runs on every rationale; the table
#: lower-cases too, so the bytes need no ``lower()`` pass of their own.
_TOKEN_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or c == 39) else 32 for c in range(256)
)


def _words(text: str) -> list[bytes]:
    return text.encode("ascii", "ignore").translate(_TOKEN_TABLE).split()


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
    """

    categories: tuple[_Category, ...]
    _negation: re.Pattern[str] | None
    negation_window: int
    _index: dict[bytes, list[tuple[bytes | None, str | None, int]]] = field(default_factory=dict)
    _triggers: frozenset[bytes] = frozenset()
    _always: frozenset[int] = frozenset()
    _scanners: tuple[tuple[_Category, _Scanner], ...] = ()
    _plan: dict[bytes, tuple[_Trigger, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Index every anchor by its first word (exact, as a token of the text).

        A one-word anchor also answers to its plural and possessive ("Down" → "Downs", "Down's"). A
        longer anchor is confirmed as a whole in the folded text; a case-sensitive one ("LD") in the
        original text.
        """
        scanners = tuple((cat, sc) for cat in self.categories for sc in cat.scanners)
        index: dict[bytes, list[tuple[bytes | None, str | None, int]]] = {}
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
                first = words[0]
                keys = {first}
                if len(words) == 1:
                    keys |= {first + b"s", first + b"'s"}
                verify = b" ".join(words) if len(words) > 1 else None
                case_anchor = anchor if sc.case_sensitive_anchors else None
                for key in keys:
                    index.setdefault(key, []).append((verify, case_anchor, i))
        object.__setattr__(self, "_scanners", scanners)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_plan", {key: _plan_of(entries) for key, entries in index.items()})
        object.__setattr__(self, "_triggers", frozenset(index))
        object.__setattr__(self, "_always", frozenset(always))

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
        spaced = text.encode("ascii", "ignore").translate(_TOKEN_TABLE)  # see _words
        tokens = spaced.split()
        hit = self._triggers.intersection(tokens)
        always = self._always
        if not hit and not always:
            return []
        run = set(always)
        folded: bytes | None = None
        plan = self._plan
        for key in hit:
            for i, unconditional, verify, case_pairs in plan[key]:
                if i in run:
                    continue
                if unconditional:
                    run.add(i)
                    continue
                if verify is not None and verify.search(spaced) is not None:
                    run.add(i)
                    continue
                for phrase, case_anchor in case_pairs:
                    if phrase is not None:
                        if folded is None:
                            folded = b" ".join(tokens)
                        if phrase not in folded:
                            continue
                    if case_anchor in text:
                        run.add(i)
                        break
        if not run:
            return []
        hits: list[TermHit] = []
        ascii_lowered = text.lower() if text.isascii() else None
        for i in sorted(run):
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


class _Trigger(NamedTuple):
    """What a trigger word asks of one scanner: run it outright, or if the folded text contains one of
    the anchor phrases starting with the word, or if a case-sensitive anchor (with its phrase, if any)
    is in the text.

    The phrases are one regex, searched in the text's words before they are joined with single spaces
    (``verify`` allows a run of spaces between words, so it matches there exactly where the phrase is
    in the joined text), with the trigger word as its literal prefix so the regex engine skips to it."""

    scanner: int
    unconditional: bool
    verify: re.Pattern[bytes] | None
    case_pairs: tuple[tuple[bytes | None, str], ...]


def _plan_of(entries: list[tuple[bytes | None, str | None, int]]) -> tuple[_Trigger, ...]:
    """Group a trigger word's index entries by scanner: the scanner runs if any entry holds."""
    by_scanner: dict[int, list[tuple[bytes | None, str | None]]] = {}
    for verify, case_anchor, i in entries:
        by_scanner.setdefault(i, []).append((verify, case_anchor))
    plan = []
    for i, conditions in by_scanner.items():
        phrases = [v for v, c in conditions if v is not None and c is None]
        plan.append(
            _Trigger(
                i,
                any(v is None and c is None for v, c in conditions),
                _phrases_pattern(phrases) if phrases else None,
                tuple((v, c) for v, c in conditions if c is not None),
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
