"""Decoding that notices bad bytes without stopping: each is replaced by U+FFFD *and counted*.

A reader flags a record that holds U+FFFD only when the counter moved while its file was being read, so a
U+FFFD that is really in the data (a valid character) is never mistaken for an encoding problem in a
clean file. The count is per thread: readers in other threads cannot disturb it.
"""

from __future__ import annotations

import codecs
import threading

ERRORS = "fhir-dnacpr-count-and-replace"
REPLACEMENT = "\ufffd"


class _Count(threading.local):
    """The per-thread count; 0 until a thread meets a bad byte (a class default, so reading it in a
    thread that never did is a plain attribute read, not a failed lookup)."""

    count = 0


COUNT = _Count()
"""``COUNT.count`` is ``decode_errors()`` without the call, for readers checking it once per row."""


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    COUNT.count += 1
    return REPLACEMENT, exc.end


codecs.register_error(ERRORS, _count_and_replace)


def decode_errors() -> int:
    """How many undecodable byte sequences this thread has met so far (compare before and after)."""
    return COUNT.count
