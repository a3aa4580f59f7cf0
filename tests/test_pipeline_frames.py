"""Spill frames: what ``write_frame`` writes, ``read_frames`` gives back, whatever share of a blob
each (unbuffered) ``write`` call takes; a file cut short is an error, never a silently lost record."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_dnacpr.pipeline.frames import read_frames, write_frame

VALUES = st.lists(
    st.tuples(st.integers(0, 10**6), st.text(max_size=20), st.lists(st.binary(max_size=300), max_size=4)),
    max_size=6,
)


class _Trickle(io.BytesIO):
    """A file whose ``write`` takes at most ``step`` bytes per call, as a raw file may."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def write(self, data) -> int:  # type: ignore[override]
        return super().write(bytes(memoryview(data)[: self.step]))


@given(st.lists(VALUES, max_size=8), st.sampled_from([1, 3, 7, 1 << 20]))
def test_frames_come_back_in_order_however_writes_are_cut(frames, step: int) -> None:
    file = _Trickle(step)
    for value in frames:
        write_frame(file, value)
    file.seek(0)
    assert list(read_frames(file)) == frames


def test_a_frame_cut_short_is_an_error() -> None:
    file = io.BytesIO()
    write_frame(file, [(1, "line 2", [b"{}"])])
    truncated = io.BytesIO(file.getvalue()[:-3])
    with pytest.raises(EOFError):
        list(read_frames(truncated))
