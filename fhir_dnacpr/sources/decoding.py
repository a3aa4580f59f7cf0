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
_state = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _state.count = getattr(_state, "count", 0) + 1
    return REPLACEMENT, exc.end


codecs.register_error(ERRORS, _count_and_replace)


def decode_errors() -> int:
    """How many undecodable byte sequences this thread has met so far (compare before and after)."""
    return getattr(_state, "count", 0)
