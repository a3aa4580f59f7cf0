"""Shared by the bench scripts: run a workload in a fresh process and read its time and peak RSS.

Each measurement runs in its own interpreter, so one run's peak memory cannot hide another's, and
is pinned to one core where the OS allows, so "on one core" means what it says.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pin_to_one_core() -> None:
    """Run this process on a single CPU (the benchmarks' targets are per core)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_child(script: Path, *args: str) -> dict[str, Any]:
    """Run ``script`` with ``args`` in a new interpreter; it prints one JSON object as its last line."""
    completed = subprocess.run(
        [sys.executable, str(script), *args], check=True, capture_output=True, text=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def report(**targets: float) -> None:
    """The machine-readable tail every bench prints: one ``name: value`` line per target."""
    for name, value in targets.items():
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
