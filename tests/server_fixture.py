"""The real HAPI FHIR test server for tests marked ``server``.

``fhir_base_url`` (session scope) is ``$FHIR_BASE_URL`` when set; otherwise it runs
``scripts/fhir-server start`` once per test session and stops the server at the end, but only
if this session started it (a server someone already had running is left alone). Set
``FHIR_SERVER_KEEP=1`` to leave a server this session started running for the next session.

Wire it in ``tests/conftest.py`` with ``from server_fixture import fhir_base_url  # noqa: F401``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "fhir-server"


class ServerStartError(RuntimeError):
    """The test server could not be started; the message carries the script's diagnostics."""


class _SessionServer:
    """Process-wide, reference-counted handle so several fixture registrations share one server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._url: str | None = None
        self._started_here = False

    def acquire(self) -> str:
        with self._lock:
            if self._url is None:
                self._url, self._started_here = _resolve_base_url()
            self._users += 1
            return self._url

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._started_here and os.environ.get("FHIR_SERVER_KEEP") != "1":
                _run_script("stop", timeout=120)
            self._url = None
            self._started_here = False


def _run_script(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _resolve_base_url() -> tuple[str, bool]:
    """Base URL plus whether this process started the server (and so must stop it)."""
    configured = os.environ.get("FHIR_BASE_URL")
    if configured:
        return configured.rstrip("/"), False
    already_running = _run_script("status", timeout=60).returncode == 0
    # Start-up budget: first Maven build + server start on a busy machine.
    start_timeout = int(os.environ.get("FHIR_SERVER_START_TIMEOUT", "300")) + 900
    result = _run_script("start", timeout=start_timeout)
    if result.returncode != 0:
        raise ServerStartError(
            f"scripts/fhir-server start failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    url = result.stdout.strip().splitlines()[-1]
    return url, not already_running


_SERVER = _SessionServer()


def start_session_server() -> str:
    """Base URL of the session's server, starting it if needed (pair with ``stop_session_server``)."""
    return _SERVER.acquire()


def stop_session_server() -> None:
    _SERVER.release()


@pytest.fixture(scope="session")
def fhir_base_url() -> Iterator[str]:
    """Base URL (``.../fhir``, no trailing slash) of a running HAPI FHIR R4 server."""
    try:
        url = start_session_server()
    except ServerStartError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield url
    finally:
        stop_session_server()
