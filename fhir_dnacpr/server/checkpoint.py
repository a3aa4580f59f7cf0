"""The push checkpoint: an append-only log of the bundles a server acknowledged.

A bundle counts as acknowledged once the server gave a definite verdict on every entry (written,
or refused with a reason that went to the rejects file). An interrupted push resumes by skipping
bundles whose digest is in the log — same content, same server, same mode — and re-sends the rest,
which is safe because every write is idempotent. One JSON line per bundle, flushed and fsynced, so a
crash loses at most the bundle in flight, never the log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

CHECKPOINT_FILE = "push-checkpoint.ndjson"
FORMAT_VERSION = 1
COUNTED = ("sent", "created", "updated", "unchanged", "failed")


@dataclass
class Checkpoint:
    """Acknowledged bundle digests for one (server, mode), with their counts for the summary."""

    path: Path
    server: str
    mode: str
    acknowledged: dict[str, dict[str, int]] = field(default_factory=dict)
    resumed: bool = False
    _file: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, directory: Path, server: str, mode: str, *, resume: bool = True) -> Checkpoint:
        """Load the log if it belongs to this server and mode (and ``resume``), else start afresh."""
        path = directory / CHECKPOINT_FILE
        checkpoint = cls(path, server, mode)
        if resume and path.is_file():
            checkpoint._load()
        if not checkpoint.resumed:
            with path.open("wb") as f:
                f.write(orjson.dumps({"checkpoint": FORMAT_VERSION, "server": server, "mode": mode}) + b"\n")
        elif not _ends_with_newline(path):
            with path.open("ab") as f:  # end a line torn by a crash so the next record starts clean
                f.write(b"\n")
        checkpoint._file = path.open("ab")
        return checkpoint

    def _load(self) -> None:
        with self.path.open("rb") as lines:
            header = _parse(lines.readline())
            if not header or header.get("server") != self.server or header.get("mode") != self.mode:
                return
            for line in lines:
                item = _parse(line)
                if item and isinstance(item.get("digest"), str):
                    self.acknowledged[item["digest"]] = {k: int(item.get(k, 0)) for k in COUNTED}
        self.resumed = True

    def is_acknowledged(self, digest: str) -> bool:
        return digest in self.acknowledged

    def record(self, number: int, digest: str, counts: dict[str, int]) -> None:
        kept = {k: int(counts.get(k, 0)) for k in COUNTED}
        self.acknowledged[digest] = kept
        self._file.write(orjson.dumps({"bundle": number, "digest": digest, **kept}) + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # a line torn by a crash mid-write is ignored; that bundle is simply re-sent
    return item if isinstance(item, dict) else None
