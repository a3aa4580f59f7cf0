"""The run summary: what came in, what went out, what was rejected and why — written to summary.json."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import orjson


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    CLEAN = 0
    REJECTS = 1
    USAGE = 2
    ABORTED = 3


@dataclass
class RunSummary:
    records_in: int = 0
    records_converted: int = 0
    duplicates_dropped: int = 0
    versions_replaced: int = 0
    superseded: int = 0
    warnings: int = 0
    resources_out: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0
    aborted: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def records_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def balanced(self) -> bool:
        """Conservation: every record read is accounted for exactly once."""
        accounted = (
            self.records_converted + self.records_rejected + self.duplicates_dropped + self.versions_replaced
        )
        return self.aborted is not None or accounted == self.records_in

    @property
    def exit_code(self) -> ExitCode:
        if self.aborted:
            return ExitCode.ABORTED
        return ExitCode.REJECTS if self.records_rejected else ExitCode.CLEAN

    def to_json(self) -> dict[str, Any]:
        by_stage: dict[str, dict[str, int]] = {}
        for (stage, reason), n in sorted(self.rejected.items()):
            by_stage.setdefault(stage, {})[reason] = n
        return {
            "records_in": self.records_in,
            "records_converted": self.records_converted,
            "records_rejected": {"total": self.records_rejected, "by_stage": by_stage},
            "duplicates_dropped": self.duplicates_dropped,
            "versions_replaced": self.versions_replaced,
            "superseded": self.superseded,
            "warnings": self.warnings,
            "resources_out": dict(sorted(self.resources_out.items())),
            "seconds": round(self.seconds, 3),
            "aborted": self.aborted,
            "balanced": self.balanced,
            "inputs": self.inputs,
            "settings": self.settings,
        }

    def write(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2) + b"\n")

    def brief(self) -> str:
        """A few lines for stderr; counts only, never record content."""
        lines = [
            f"records in: {self.records_in}  converted: {self.records_converted}  "
            f"rejected: {self.records_rejected}  duplicates: {self.duplicates_dropped}  "
            f"superseded: {self.superseded}  replaced versions: {self.versions_replaced}",
            "resources out: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.resources_out.items())) or "none"),
        ]
        for (stage, reason), n in self.rejected.most_common(8):
            lines.append(f"  rejected at {stage}: {reason} × {n}")
        if self.aborted:
            lines.append(f"ABORTED: {self.aborted}")
        lines.append(f"{self.seconds:.2f} s")
        return "\n".join(lines)
