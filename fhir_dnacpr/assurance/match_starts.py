"""Run a regular expression only where a match can start: at one of the literal texts it begins with.

Python's regex engine skips ahead to a literal prefix on its own, but not when the pattern begins with
``\\b`` or is case-insensitive, and the term patterns are both: so it tries a match at every position
of every rationale. Most term patterns begin (after ``\\b``) with one of a few words ("over", "above"
…); reading those prefixes from the parsed pattern, ``str.find`` for each (a fast substring search)
finds every place a match could start, and the pattern is tried there only. The matches are exactly
``finditer``'s: a match starts with one of the prefixes, so no position skipped could start one, and
after a match the search resumes where it ended, as ``finditer`` does.

Case-insensitive patterns are searched in ``text.lower()``, which only ASCII text is sure to keep
aligned with the text (and where the only case variants of an ASCII letter are its ASCII upper and
lower case); other text goes the plain ``finditer`` way.

The parsed pattern also tells whether its matches stay inside sentences (``sentence_local``), which lets
the term matcher remember per sentence which expressions can match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

sre: ModuleType | None
sre_parse: ModuleType | None
try:  # the parsed form of a pattern: private modules, so every surprise means "no prefixes"
    import re._constants as sre
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - a Python that moved them: patterns run as plain finditer
    sre = sre_parse = None

_Items = list[tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class StartFinder:
    """The pattern, and the literal texts every match of it begins with."""

    pattern: re.Pattern[str]
    prefixes: tuple[str, ...]  # lower-cased for a case-insensitive pattern
    fold: bool  # the pattern ignores case: look for the prefixes in the lower-cased text

    def finditer(self, text: str, ascii_lowered: str | None) -> Iterator[re.Match[str]]:
        """The matches ``pattern.finditer(text)`` yields. ``ascii_lowered`` is ``text.lower()`` when
        the text is ASCII, else None."""
        if not self.fold:
            return self._at_starts(text, text)
        if ascii_lowered is None:
            return self.pattern.finditer(text)
        return self._at_starts(text, ascii_lowered)

    def _at_starts(self, text: str, haystack: str) -> Iterator[re.Match[str]]:
        match = self.pattern.match
        pos = 0
        for start in self._starts(haystack):
            if start < pos:
                continue  # inside the last match
            found = match(text, start)
            if found is not None:
                yield found
                pos = found.end()  # > its start: every prefix is at least one character

    def _starts(self, haystack: str) -> list[int]:
        """Every place a prefix occurs, in order. ``str.find`` per prefix, not one regex of them all:
        a regex of several prefixes stops at every character any of them begins with."""
        starts: set[int] = set()
        for prefix in self.prefixes:
            at = haystack.find(prefix)
            while at >= 0:
                starts.add(at)
                at = haystack.find(prefix, at + 1)
        return sorted(starts)


def start_finder(pattern: re.Pattern[str]) -> StartFinder | None:
    """A ``StartFinder`` for ``pattern``, or None when its matches do not all begin with a literal."""
    if sre_parse is None or not isinstance(pattern.pattern, str):
        return None
    fold = bool(pattern.flags & re.IGNORECASE)
    try:
        prefixes = _prefixes(list(sre_parse.parse(pattern.pattern, pattern.flags).data), fold)
    except Exception:  # an internal API: whatever it does differently, do without prefixes
        return None
    if not prefixes:
        return None
    # a prefix that begins with another adds no start the shorter one does not find
    unique = sorted({p.lower() if fold else p for p in prefixes}, key=len)
    kept: list[str] = []
    for prefix in unique:
        if not any(prefix.startswith(shorter) for shorter in kept):
            kept.append(prefix)
    return StartFinder(pattern, tuple(kept), fold)


def _prefixes(items: _Items, fold: bool) -> list[str] | None:
    """The literal texts one of which starts every match of the parsed ``items``, or None.

    Zero-width assertions at the start (``\\b``, ``^``) are passed over (the pattern still checks them
    when it is tried); a run of literal characters is followed by what the alternatives or the group
    after it (if one comes next) begin with."""
    i = 0
    while i < len(items) and items[i][0] is sre.AT:
        i += 1
    head = []
    while i < len(items) and items[i][0] is sre.LITERAL and _plain(items[i][1], fold):
        head.append(chr(items[i][1]))
        i += 1
    tails = _group_prefixes(items[i], fold) if i < len(items) else None
    if tails:
        return ["".join(head) + tail for tail in tails]
    return ["".join(head)] if head else None


def _group_prefixes(item: tuple[Any, Any], fold: bool) -> list[str] | None:
    """What alternatives (each), or a group's contents, begin with; None for anything else."""
    op, av = item
    if op is sre.BRANCH:
        found: list[str] = []
        for alternative in av[1]:
            sub = _prefixes(list(alternative), fold)
            if not sub:
                return None
            found += sub
        return found
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub_pattern = av
        if add_flags or del_flags:  # (?i:…) and the like: a different case rule inside
            return None
        return _prefixes(list(sub_pattern.data), fold)
    return None


def _plain(code: int, fold: bool) -> bool:
    """A literal character the prefix search can look for as it is: for a case-insensitive pattern,
    ASCII only (a non-ASCII literal such as the Kelvin sign also matches an ASCII "k")."""
    return code < 128 if fold else True


_FULL_STOP = ord(".")


def sentence_local(pattern: re.Pattern[str]) -> bool:
    """Whether every match of ``pattern`` in a text is also a match somewhere in the piece of the text
    between the full stops around it (``text.split(".")``), so that a text has a match only if one of
    its pieces has.

    True when no match can contain a full stop (a match then lies within one piece) and nothing in the
    pattern looks past the ends of a match but ``\\b``, ``^``, ``$``, ``\\A`` and ``\\Z``: at a piece's
    edge those see the piece's end where the text has a full stop or its own end, and answer as they do
    there or more readily (``^`` and ``$`` hold at every piece's ends). Lookarounds, back-references and
    ``\\B`` (which fails in an empty text but holds between two full stops) make it False, as does
    anything unexpected in the parsed form.
    """
    if sre_parse is None or not isinstance(pattern.pattern, str):
        return False
    try:
        return _stop_free(list(sre_parse.parse(pattern.pattern, pattern.flags).data))
    except Exception:  # an internal API: whatever it does differently, the answer is "not known"
        return False


def _stop_free(items: _Items) -> bool:
    """No match of the parsed ``items`` contains a full stop or depends on text outside it (see above)."""
    for op, av in items:
        if op is sre.LITERAL:
            ok = av != _FULL_STOP  # no other character matches "." even when case is ignored
        elif op is sre.IN:
            ok = all(_class_item_stop_free(kind, value) for kind, value in av)
        elif op is sre.AT:
            ok = av not in (sre.AT_NON_BOUNDARY, sre.AT_UNI_NON_BOUNDARY, sre.AT_LOC_NON_BOUNDARY)
        elif op is sre.BRANCH:
            ok = all(_stop_free(list(alternative)) for alternative in av[1])
        elif op is sre.SUBPATTERN:
            ok = _stop_free(list(av[3]))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            ok = _stop_free(list(av[2]))
        elif op is sre.ATOMIC_GROUP:
            ok = _stop_free(list(av))
        else:  # ANY, NOT_LITERAL, lookarounds, back-references …
            ok = False
        if not ok:
            return False
    return True


def _class_item_stop_free(kind: Any, value: Any) -> bool:
    if kind is sre.LITERAL:
        return value != _FULL_STOP
    if kind is sre.RANGE:
        low, high = value
        return not low <= _FULL_STOP <= high
    if kind is sre.CATEGORY:
        return value in (sre.CATEGORY_DIGIT, sre.CATEGORY_SPACE, sre.CATEGORY_WORD)  # \d \s \w
    return False  # NEGATE and anything else
