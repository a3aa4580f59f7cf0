"""Length-prefixed ``marshal`` frames: how the pipeline's temporary files hold Python values.

``marshal`` suits a temporary file one interpreter writes and reads back: it holds only ints, str,
bytes, tuples and lists, and costs about a third of ``pickle`` each way. A 4-byte length before each
blob lets the reader cut the values back out without parsing what lies between them.

A frame is tens of kilobytes, so callers open these files unbuffered (``buffering=0``): a buffer
would only copy every blob once more on the way out and once more on the way back in.
"""

from __future__ import annotations

import marshal
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

_LENGTH = struct.Struct("<I")


def write_frame(file: BinaryIO, value: Any) -> None:
    """Append ``value`` as one frame."""
    blob = marshal.dumps(value)
    _write_all(file, _LENGTH.pack(len(blob)))
    _write_all(file, blob)  # not ``header + blob``: that would copy the blob's bytes once more


def _write_all(file: BinaryIO, data: bytes) -> None:
    """``file.write`` until all of ``data`` is written (an unbuffered file may take less at once)."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError("the spill file took no bytes")
        view = view[written:]


def read_frames(file: BinaryIO) -> Iterator[Any]:
    """The values written with ``write_frame``, in order, from the file's current position."""
    read, loads, unpack, size = file.read, marshal.loads, _LENGTH.unpack, _LENGTH.size
    while header := read(size):
        length = unpack(header)[0]
        blob = read(length)
        if len(blob) != length:
            raise EOFError("a spill frame ends early: the temporary file was cut short")
        yield loads(blob)
