"""Shared fixtures: where the repo and the shared reference data are, and the real FHIR server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from server_fixture import fhir_base_url  # noqa: F401  (session fixture: the real HAPI server)

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The team's shared/ folder: $FHIR_DNACPR_SHARED, else beside the checkout (as CI lays it)."""
    configured = os.environ.get("FHIR_DNACPR_SHARED")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        pytest.fail(f"shared reference data not found at {path}; set FHIR_DNACPR_SHARED")
    return path


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO_ROOT / "examples"
