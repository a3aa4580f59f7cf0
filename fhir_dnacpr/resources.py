"""Where the data that ships with fhir-dnacpr lives, in a checkout and in an installed wheel alike.

In the checkout ``profiles/`` and ``examples/`` sit at the top level; setup.cfg maps them into the
wheel as ``fhir_dnacpr.profiles`` and ``fhir_dnacpr.examples``. Code asks here instead of guessing.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _packaged(name: str) -> Path | None:
    """The data folder installed beside the code (no __init__.py: it is data, not a module)."""
    path = _PACKAGE / name
    return path if path.is_dir() else None


def profiles_dir() -> Path:
    """Our FHIR package folder: ``$FHIR_DNACPR_PROFILES``, the checkout's profiles/, or the wheel's."""
    configured = os.environ.get("FHIR_DNACPR_PROFILES")
    if configured:
        return Path(configured)
    checkout = _CHECKOUT / "profiles"
    if (checkout / "package.json").is_file():
        return checkout
    packaged = _packaged("profiles")
    if packaged is None:
        raise FileNotFoundError("the fhir-dnacpr profiles are missing from this installation")
    return packaged


def examples_dir() -> Path:
    """The bundled example exports and their mapping specs."""
    checkout = _CHECKOUT / "examples"
    if checkout.is_dir():
        return checkout
    packaged = _packaged("examples")
    if packaged is None:
        raise FileNotFoundError("the fhir-dnacpr examples are missing from this installation")
    return packaged
