"""A compact map of 64-bit keys to 64-bit values, for "have I written this resource already?".

The NDJSON writer must remember every resource it wrote in a run (a Patient shared by many records
is written once) and notice when a later record brings a different version of one. A dict of
40-character id strings costs ~120 bytes an entry; two ``array('q')`` columns with open addressing
cost 16 bytes a slot (about 25 an entry at the load kept here), so 10^6 records (~6·10^6 resources)
fit in roughly 150–270 MB instead of ~700 MB.
"""

from __future__ import annotations

from array import array

_MAX_LOAD = 0.7


class DigestTable:
    """Open addressing with linear probing; key 0 marks an empty slot (a real 0 is stored as 1)."""

    __slots__ = ("_count", "_keys", "_mask", "_values")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity:
            size <<= 1
        self._keys = array("q", bytes(8 * size))
        self._values = array("q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def setdefault(self, key: int, value: int) -> int | None:
        """Store ``value`` under ``key`` unless present; return the value already there, else None."""
        key = key or 1
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self._values[slot]
            if found == 0:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._values[slot] = value
        self._count += 1
        if self._count > _MAX_LOAD * (mask + 1):
            self._grow()
        return None

    def get(self, key: int) -> int | None:
        key = key or 1
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self._values[slot]
            if found == 0:
                return None
            slot = (slot + 1) & mask

    def memory_bytes(self) -> int:
        return 2 * self._keys.itemsize * len(self._keys)

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        size = 2 * len(old_keys)
        keys = array("q", bytes(8 * size))
        values = array("q", bytes(8 * size))
        mask = size - 1
        for key, value in zip(old_keys, old_values, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                values[slot] = value
        self._keys, self._values, self._mask = keys, values, mask
