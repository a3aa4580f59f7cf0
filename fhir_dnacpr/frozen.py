"""Building frozen slots dataclasses fast: ``maker(cls)(...)`` is ``cls(...)``.

A frozen dataclass cannot assign its own fields, so its ``__init__`` stores each one through the slot's
descriptor, a generic C call per field. Readers build an origin and a raw record per row, and mapping
several model objects per record (the decision alone has twenty fields), millions per run. ``maker``
writes a function that fills a new object of a mutable twin class with the same slots (plain attribute
stores, which Python does in a few instructions) and then gives it the real class: the same object
``cls`` would have built, still frozen, equal and hashable as before, in about half the time.

Only for what the twin can stand in for exactly: a frozen slots dataclass straight on ``object``,
every field a positional ``__init__`` parameter with a plain default or none, no ``__post_init__``, and
an ``__init__`` that dataclasses (or ``model._fast_init``) wrote. Anything else gets ``cls`` back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def maker(cls: type) -> Callable[..., Any]:
    """A function with ``cls``'s parameters (same order, same defaults) answering what ``cls`` would."""
    if not _fillable(cls):
        return cls
    twin = type(f"_{cls.__name__}Slots", (), {"__slots__": cls.__slots__})
    try:
        trial = object.__new__(twin)
        trial.__class__ = cls  # the layouts must match; an unset object is never used
    except TypeError:
        return cls
    env: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    params = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    names = [f.name for f in dataclasses.fields(cls)]
    body = [
        f"def make_{cls.__name__}({', '.join(params)}):",
        "    made = _new(_twin)",
        *(f"    made.{name} = {name}" for name in names),
        "    made.__class__ = _cls",
        "    return made",
    ]
    exec(compile("\n".join(body), f"<make {cls.__name__}>", "exec"), env)
    return env[f"make_{cls.__name__}"]  # type: ignore[no-any-return]


def _fillable(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or cls.__bases__ != (object,):
        return False
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        return False
    if cls.__new__ is not object.__new__:
        return False
    if any(not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields):
        return False
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    # Written by dataclasses ("<string>") or by model._fast_init ("<Name.__init__>"): stores only.
    return code is not None and code.co_filename in ("<string>", f"<{cls.__name__}.__init__>")
