"""Resource ids: opaque, stable, and keyed, so an id never reveals the NHS number behind it.

An unkeyed hash of a 10-digit NHS number is not opaque: 10^10 inputs are enumerated in minutes. With a
deployment secret (HMAC-SHA-256) the same natural key always yields the same id — so PUT is idempotent
across re-runs — but nobody without the key can go from an id back to the person.
"""

from __future__ import annotations

import hashlib
import os

import orjson

_dumps = orjson.dumps

ID_KEY_ENV = "FHIR_DNACPR_ID_KEY"
DEFAULT_EXAMPLE_KEY = b"INSECURE-EXAMPLE-KEY"
"""For examples and tests only: it is public, so ids made with it are as enumerable as plain hashes."""

_BLOCK = 64  # SHA-256 block size
ID_LENGTH = 40
"""Hex characters kept (160 bits): fits the R4 ``id`` pattern ``[A-Za-z0-9\\-\\.]{1,64}``."""


class IdFactory:
    """Makes ``id_for(resource_type, *natural_key_parts)`` = HMAC-SHA-256(key, parts) in hex, 40 chars.

    The parts are encoded as a JSON array, so ``("a|b", "c")`` and ``("a", "b|c")`` never collide.
    ``None`` parts are allowed (an absent optional component of a natural key).

    Nothing is cached here: almost every key is met once (a record's Consent, CarePlan, Condition…),
    so a cache only costs its upkeep and memory; callers that meet a key again and again (the shared
    Organization/Practitioner table of a convert run) keep what they built instead.
    """

    __slots__ = ("_inner_copy", "_outer_copy", "uses_example_key")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the id key must not be empty")
        # HMAC (RFC 2104) by hand: copying two prepared hash states is ~2-3x faster than hmac.new()
        # or the one-shot hmac.digest() per id (both set the key up again each time).
        block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block = block.ljust(_BLOCK, b"\0")
        self._inner_copy = hashlib.sha256(bytes(b ^ 0x36 for b in block)).copy
        self._outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in block)).copy
        self.uses_example_key = key == DEFAULT_EXAMPLE_KEY

    @classmethod
    def from_env(cls, env_name: str = ID_KEY_ENV, *, allow_example_key: bool = True) -> IdFactory:
        """The factory for the key in ``env_name``; without one, the insecure example key (callers warn
        when ``uses_example_key`` is true) or, with ``allow_example_key=False``, a ``KeyError``."""
        value = os.environ.get(env_name, "")
        if value:
            return cls(value.encode("utf-8"))
        if not allow_example_key:
            raise KeyError(f"environment variable {env_name} holds no id key")
        return cls(DEFAULT_EXAMPLE_KEY)

    def id_for(self, resource_type: str, *natural_key_parts: str | None) -> str:
        inner = self._inner_copy()
        inner.update(_dumps([resource_type, *natural_key_parts]))  # a list: one object fewer than a tuple
        outer = self._outer_copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:ID_LENGTH]
