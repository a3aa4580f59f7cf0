"""Near-duplicate rationale text: normalise, shingle, compare.

Normalising (case, punctuation, whitespace, digits) makes templated text that differs only in
formatting or an age identical; comparing sets of words (or word n-grams) then tolerates a changed,
added or dropped word. The
comparison is exact Jaccard on shingle sets, which is affordable because it only ever runs between
decisions that share a blocking key (setting + decision maker) and fall within a few days.
"""

from __future__ import annotations

import hashlib

#: ASCII punctuation to space, every digit to "0" (one str.translate pass: faster than regexes).
_FOLD = str.maketrans(
    {**{chr(c): " " for c in range(128) if not chr(c).isalnum()}, **{d: "0" for d in "123456789"}}
)
#: The same folding for ASCII text as bytes, lower-casing as well (so it needs no ``bytes.lower`` pass).
_FOLD_ASCII = bytes(
    c + 32 if 65 <= c <= 90 else ord(_FOLD.get(c, c)) if isinstance(_FOLD.get(c, c), str) else c
    for c in range(256)
)


def normalise(text: str | None) -> str:
    """Lower case, digits folded to ``0``, punctuation and whitespace runs to one space.

    "Aged 91, FRAIL!" and "aged 87 frail" normalise alike, so templated text that differs only in
    formatting or a number counts as identical.
    """
    if not text:
        return ""
    return " ".join(text.lower().translate(_FOLD).split())


def normalised_words(text: str | None) -> list[bytes]:
    """The words of ``normalise(text)``, UTF-8 encoded: ``normalise`` is their ``" ".join``, decoded.

    The sweep hashes the word tuple (equal tuples, equal normalised text) and builds shingles from the
    same list, so each text is folded and split once.
    """
    return folded(text).split()


def folded(text: str | None) -> bytes:
    """The text folded as ``normalise`` folds it, UTF-8 encoded and not yet split into words.

    The audit folds each candidate's rationale once, as it arrives, and keeps these bytes for the
    sweep, which then only splits them (no decoding, re-encoding or folding of text read back from
    disk). Bytes, because ASCII text (nearly all of it) folds with ``bytes.translate``, several times
    faster than ``str.translate``; other text goes the ``str`` way and is encoded after (UTF-8 keeps
    words distinct, so the words compare the same).
    """
    if not text:
        return b""
    if text.isascii():
        return text.encode().translate(_FOLD_ASCII)
    return " ".join(text.lower().translate(_FOLD).split()).encode()


def text_hash(normalised: str) -> int:
    """Signed 64-bit hash of normalised text, for exact-duplicate grouping."""
    return int.from_bytes(hashlib.blake2b(normalised.encode(), digest_size=8).digest(), "big", signed=True)


def shingles(normalised: str, size: int = 1) -> set[str]:
    """The text's word ``size``-grams: size 1 is the set of words (a token-set comparison).

    Words, not characters: a 40-word rationale gives ~40 shingles instead of ~200, and building the
    set dominates the cost of a comparison.
    """
    return word_shingles(normalised.split(), size)


def word_shingles(words: list[str] | list[bytes], size: int = 1) -> set:
    """``shingles`` of the text whose normalised words are ``words`` (str, or bytes as the sweep has them)."""
    if size <= 1 or len(words) < size:
        return set(words)
    space = b" " if isinstance(words[0], bytes) else " "
    if len(words) == size:
        return {space.join(words)}  # type: ignore[arg-type]
    return {space.join(words[i : i + size]) for i in range(len(words) - size + 1)}  # type: ignore[arg-type]


def jaccard(a: set[str], b: set[str]) -> float:
    if a is b:
        return 1.0
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def similarity(text_a: str | None, text_b: str | None, size: int = 1) -> float:
    """Jaccard similarity of two raw texts after normalising (for tests and reports)."""
    return jaccard(shingles(normalise(text_a), size), shingles(normalise(text_b), size))
