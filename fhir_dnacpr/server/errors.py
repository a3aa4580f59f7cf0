"""Exceptions the client raises when a run cannot go on (per-record failures are data, not exceptions)."""

from __future__ import annotations

from typing import Any


class ServerError(Exception):
    """Base class: something about the server or the connection stops this call."""


class UnreachableError(ServerError):
    """The server could not be reached (or kept failing) after every retry the policy allows."""

    def __init__(self, message: str, *, attempts: int, last_status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


class AuthError(ServerError):
    """No usable credentials: the token endpoint refused us, or the server still says 401/403."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FhirResponseError(ServerError):
    """The server answered, but not with what the call needs (a status or body it cannot use)."""

    def __init__(self, message: str, *, status: int, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class UnsupportedError(ServerError):
    """The capability statement says the server does not do what was asked (FHIR version, $export …)."""
