"""Length-prefixed ``marshal`` frames: how the pipeline's temporary files hold Python values.

``marshal`` suits a temporary file one interpreter writes and reads back: it holds only ints, str,
bytes, tuples and lists, and costs about a third of ``pickle`` each way. A 4-byte length before each
blob lets the reader cut the values back out without parsing what lies between them.
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
    file.write(_LENGTH.pack(len(blob)))
    file.write(blob)  # not ``header + blob``: that would copy the blob's bytes once more


def read_frames(file: BinaryIO) -> Iterator[Any]:
    """The values written with ``write_frame``, in order, from the file's current position."""
    read, loads, unpack, size = file.read, marshal.loads, _LENGTH.unpack, _LENGTH.size
    while header := read(size):
        yield loads(read(unpack(header)[0]))
