"""Write, per mapped object, one function that maps a record straight into the finished model object.

Mapping a CSV row is mostly "look up a cell, skip it if blank, keep the value"; written out as
straight-line Python for one spec (as dataclasses writes ``__init__``) that is a dict lookup and a
truth test per field. Each field's value goes into a local variable, nested objects (a GP practice,
the people consulted) are built inline in the same frame, and the object is made from the locals by
position: no dict of arguments per object and no ``**kwargs`` call. Plain text is trimmed and checked
against the null words inline; codes, dates and flags are remembered by their cell's text (only
results that raised no issue, so every warning and error is still reported on every record).
Anything off these fast paths calls the field's own ``get``/``one``, the reference behaviour, which
``fields._reference_build`` writes plainly for the tests to hold this one to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fhir_dnacpr.mapping.fields import (
    INVALID,
    UNSET,
    FixedList,
    Flagged,
    Node,
    ObjectSpec,
    Scalar,
    _may_flag,
    _memo_cell,
    _plain_text,
    _plain_text_columns,
    _remembering,
    _remembering_get,
    _uses_today,
)
from fhir_dnacpr.mapping.paths import ABSENT, Column


def generate_build(
    spec: ObjectSpec, given: tuple[str, ...] = (), fallback: str | None = None, *, forced: bool = False
) -> Callable[..., Any]:
    """``build(data, ctx, force=False)``: the object, ABSENT or INVALID; with ``given`` fields,
    ``build(data, ctx, force, *given, fallback=UNSET)``.

    ``given`` names fields the caller supplies (a section's source and patient); ``fallback`` names a
    field that takes the last argument when the spec left it empty (a plan's link to the decision).
    ``forced``: for a caller that always passes ``force=True`` (the patient, a section), so whether any
    field found data is not tracked.
    """
    writer = _Writer()
    params = ["data", "ctx", "force=False"]
    if given:
        params = ["data", "ctx", "force", *(f"given_{name}" for name in given), "fallback=UNSET"]
    lines = [f"def build({', '.join(params)}):"]
    if forced:
        writer.untracked = True
    lines += writer.object(spec, "    ", None, given, fallback)
    exec(compile("\n".join(lines), f"<mapping {spec.label}>", "exec"), writer.env)
    return writer.env["build"]  # type: ignore[no-any-return]


class _Writer:
    """The lines and the names they use (``env``) for one generated function; ``tag`` keeps each
    node's names apart, nested objects included."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"ABSENT": ABSENT, "INVALID": INVALID, "UNSET": UNSET, "Flagged": Flagged}
        self.count = 0
        self.untracked = False
        """Whether the next object written is forced, so not tracking ``found``."""
        self.tracking: set[str] = set()
        """The objects (by tag) tracking ``found``."""

    def tag(self) -> str:
        self.count += 1
        return f"n{self.count}"

    # -- objects ---------------------------------------------------------------------------------
    def object(
        self, spec: ObjectSpec, indent: str, target: str | None, given: tuple[str, ...], fallback: str | None
    ) -> list[str]:
        """Lines mapping ``spec``'s fields into locals and making the object: returned when ``target``
        is None (the function's own object, which may be forced), else assigned to ``target``."""
        tag = self.tag()
        env = self.env
        env[f"{tag}make"] = spec.make
        env[f"{tag}incomplete"] = spec._incomplete
        names = [f.name for f in dataclasses.fields(spec.cls)]
        class_defaults = {f.name: f.default for f in dataclasses.fields(spec.cls)}
        always_set = {*given, *spec.consts, *spec.defaults, *spec.required}
        # By keyword (a dict of the fields set, as the reference builds it) when ``finish`` wants that
        # dict, or when a field without a default may stay unset: the class then raises as it should.
        by_keyword = (
            spec.finish is not None
            or spec.make is spec.cls
            or any(d is dataclasses.MISSING and n not in always_set for n, d in class_defaults.items())
        )
        set_later = {*spec.defaults, *spec.required, *([fallback] if fallback else [])}
        lines = [f"{indent}{tag}invalid = False"]
        if not self.untracked:
            self.tracking.add(tag)
            lines.append(f"{indent}{tag}found = False")
        self.untracked = False
        for name in names:
            if name in given:
                continue
            local = f"{tag}_{name}"
            if name in spec.consts:
                env[f"{local}_const"] = spec.consts[name]
                lines.append(f"{indent}{local} = {local}_const")
            elif by_keyword or name in set_later or class_defaults[name] is dataclasses.MISSING:
                lines.append(f"{indent}{local} = UNSET")
            else:
                env[f"{local}_default"] = class_defaults[name]
                lines.append(f"{indent}{local} = {local}_default")
        for name, node in spec.nodes:
            lines += self.field(node, tag, name, indent)

        def result(value: str) -> str:
            return f"return {value}" if target is None else f"{target} = {value}"

        if tag in self.tracking:
            unforced = f"not {tag}found" if target is not None else f"not {tag}found and not force"
            lines += [
                f"{indent}if {unforced}:",
                f"{indent}    {result(f'INVALID if {tag}invalid else ABSENT')}",
            ]
        lines += [
            f"{indent}{'elif' if tag in self.tracking else 'if'} {tag}invalid:",
            f"{indent}    {result('INVALID')}",
            f"{indent}else:",
        ]
        inner = indent + "    "
        for k, (name, value) in enumerate(spec.defaults.items()):
            env[f"{tag}spec_default{k}"] = value
            lines += [f"{inner}if {tag}_{name} is UNSET:", f"{inner}    {tag}_{name} = {tag}spec_default{k}"]
        keyword = "if"
        for name in spec.required:
            missing = result(f"{tag}incomplete({name!r}, ctx)")
            lines += [f"{inner}{keyword} {tag}_{name} is UNSET:", f"{inner}    {missing}"]
            keyword = "elif"
        if keyword == "elif":
            lines.append(f"{inner}else:")
            inner += "    "
        if fallback:
            lines += [f"{inner}if {tag}_{fallback} is UNSET:", f"{inner}    {tag}_{fallback} = fallback"]
        if by_keyword:
            lines.append(f"{inner}kwargs = {{}}")
            for name in names:
                if name in given:
                    lines.append(f"{inner}kwargs[{name!r}] = given_{name}")
                else:
                    lines += [
                        f"{inner}if {tag}_{name} is not UNSET:",
                        f"{inner}    kwargs[{name!r}] = {tag}_{name}",
                    ]
            if spec.finish is not None:
                env[f"{tag}finish"] = spec.finish
                env[f"{tag}spec"] = spec
                lines.append(f"{inner}{tag}finish({tag}spec, kwargs, ctx)")
            lines.append(f"{inner}{result(f'{tag}make(**kwargs)')}")
            return lines
        args = []
        for name in names:
            if name in given:
                args.append(f"given_{name}")
            elif name == fallback:  # it has a default, else the object is made by keyword
                env[f"{tag}_{name}_default"] = class_defaults[name]
                args.append(f"({tag}_{name}_default if {tag}_{name} is UNSET else {tag}_{name})")
            else:
                args.append(f"{tag}_{name}")
        joined = ", ".join(args)
        lines.append(f"{inner}{result(f'{tag}make({joined})')}")
        return lines

    # -- one field -------------------------------------------------------------------------------
    def field(self, node: Node, owner: str, name: str, indent: str) -> list[str]:
        """Lines reading ``node`` and keeping its value in ``{owner}_{name}`` (or setting the fields its
        special word sets), with ``{owner}found`` / ``{owner}invalid`` updated."""
        i = self.tag()
        env = self.env
        local = f"{owner}_{name}"

        def keep(ind: str) -> list[str]:
            """A value that is neither ABSENT nor INVALID (a ``Flagged`` only from special words)."""
            lines = self.found(owner, ind)
            if not _may_flag(node):
                return [*lines, f"{ind}{local} = v"]
            flagged = sorted({n for f in node.special.values() for n in f.sets})  # type: ignore[union-attr]
            return [
                *lines,
                f"{ind}if v.__class__ is Flagged:",
                *(f"{ind}    {owner}_{n} = v.sets.get({n!r}, {owner}_{n})" for n in flagged),
                f"{ind}else:",
                f"{ind}    {local} = v",
            ]

        def tail(ind: str) -> list[str]:
            return [
                f"{ind}if v is not ABSENT:",
                f"{ind}    if v is INVALID:",
                f"{ind}        {owner}invalid = True",
                f"{ind}    else:",
                *keep(ind + "        "),
            ]

        def recalled(ind: str, work_out: str) -> list[str]:
            """After a memo look-up into ``v`` (None: not known): work the value out with the call
            ``work_out`` (which remembers it) and take it, or take the known value."""
            return [
                f"{ind}if v is None:",
                f"{ind}    v = {work_out}",
                *tail(ind + "    "),
                f"{ind}elif v is not ABSENT:",
                *keep(ind + "    "),
            ]

        def memo_or(at: str, by_day: bool, work_out: str, otherwise: str) -> list[str]:
            """A text ``cell``'s value from ``{i}memo`` (else worked out by ``work_out``, see
            ``recalled``); any other cell's by the call ``otherwise``."""
            inner = at + "    "
            return [
                f"{at}if cell.__class__ is str:",
                f"{inner}v = {i}memo.get({'(cell, ctx.today)' if by_day else 'cell'})",
                *recalled(inner, work_out),
                f"{at}else:",
                f"{inner}v = {otherwise}",
                *tail(inner),
            ]

        def read_cell() -> list[str]:
            """``cell = data[column]``; a missing column reports itself and makes the object INVALID.
            The caller writes the ``else:`` branch for a cell that was read."""
            env[f"{i}missing"] = node._missing_column  # type: ignore[attr-defined]
            return [
                f"{indent}try:",
                f"{indent}    cell = data[{node.accessors[0].name!r}]",  # type: ignore[attr-defined]
                f"{indent}except (KeyError, TypeError):",
                f"{indent}    {i}missing(data, ctx)",
                f"{indent}    {owner}invalid = True",
                f"{indent}else:",
            ]

        ind2, ind3, ind4 = indent + "        ", indent + "            ", indent + "                "
        if _plain_text(node):
            env[f"{i}one"] = node.one  # type: ignore[attr-defined]
            env[f"{i}nulls"] = node.nulls  # type: ignore[attr-defined]
            env[f"{i}short"] = _longest(node.nulls)  # type: ignore[attr-defined]
            return [
                *read_cell(),
                f"{indent}    if cell:",
                f"{indent}        if cell.__class__ is str:",
                f"{ind3}v = cell.strip()",
                f"{ind3}if v and (len(v) > {i}short or v.lower() not in {i}nulls):",
                *self.found(owner, ind4),
                f"{ind4}{local} = v",
                f"{ind2}else:",
                f"{ind3}v = {i}one(cell, ctx)",
                *tail(ind3),
            ]
        if isinstance(node, Scalar) and not node.many and _single_column(node):
            env[f"{i}one"] = node.one
            lines = [*read_cell(), f"{indent}    if cell:"]
            accepts = _accepts(node)
            memo_column = _memo_cell(node)
            if accepts is not None:
                # A cell the check passes unchanged (a clean NHS number) is the value itself.
                env[f"{i}accepts"] = accepts
                env[f"{i}nulls"] = node.nulls
                env[f"{i}short"] = _longest(node.nulls)
                return [
                    *lines,
                    f"{ind2}if cell.__class__ is str and {i}accepts(cell) and "
                    f"(len(cell) > {i}short or cell.lower() not in {i}nulls):",
                    *self.found(owner, ind3),
                    f"{ind3}{local} = cell",
                    f"{ind2}else:",
                    f"{ind3}v = {i}one(cell, ctx)",
                    *tail(ind3),
                ]
            if memo_column is None:
                return [*lines, f"{ind2}v = {i}one(cell, ctx)", *tail(ind2)]
            by_day = _uses_today(node)
            env[f"{i}memo"] = memo = _shared_memo(node)
            env[f"{i}slow"] = _remembering(node.one, memo, by_day)
            return [*lines, *memo_or(ind2, by_day, f"{i}slow(cell, ctx)", f"{i}one(cell, ctx)")]
        if _plain_text_columns(node):
            return [*self.text_columns(i, node, indent), *tail(indent)]  # type: ignore[arg-type]
        if isinstance(node, ObjectSpec) and node.memo_columns is None:
            return [*self.object(node, indent, "v", (), None), *tail(indent)]
        if isinstance(node, FixedList):
            return [*self.fixed_list(i, node, indent), *tail(indent)]
        env[f"{i}get"] = node.get
        if isinstance(node, ObjectSpec):
            # A shared party remembered by its cells (``remember_by_columns``): look it up here and let
            # its ``get`` work it out (and remember it) only when it is not known yet. A row without one
            # of the columns is left to ``get``, which reports it.
            env[f"{i}memo"] = node._memo
            cells = ", ".join(f"data[{column!r}]" for column in node.memo_columns)  # type: ignore[union-attr]
            return [
                f"{indent}v = None",
                f"{indent}if data.__class__ is dict:",
                f"{indent}    try:",
                f"{indent}        v = {i}memo.get((ctx.today, {cells}))",
                f"{indent}    except KeyError:",
                f"{indent}        pass",
                *recalled(indent, f"{i}get(data, ctx)"),
            ]
        memo_column = _memo_cell(node)
        if memo_column is not None:
            by_day = _uses_today(node)
            env[f"{i}memo"] = memo = {}
            env[f"{i}slow"] = _remembering_get(node.get, memo, by_day)
            return [
                f"{indent}cell = data.get({memo_column!r}) if data.__class__ is dict else None",
                *memo_or(indent, by_day, f"{i}slow(data, cell, ctx)", f"{i}get(data, ctx)"),
            ]
        return [f"{indent}v = {i}get(data, ctx)", *tail(indent)]

    def found(self, owner: str, indent: str) -> list[str]:
        """The line noting that ``owner`` found data, for an object that tracks it."""
        return [f"{indent}{owner}found = True"] if owner in self.tracking else []

    def text_columns(self, i: str, node: Scalar, indent: str) -> list[str]:
        """Lines setting ``v`` to what ``_columns_getter`` returns for a ``_plain_text_columns`` field:
        each cell trimmed and checked against the null words inline; anything unusual (a missing
        column, a cell that is not text) goes to the field's own ``get``."""
        self.env[f"{i}get"] = node.get
        self.env[f"{i}nulls"] = node.nulls
        self.env[f"{i}short"] = _longest(node.nulls)
        names = [a.name for a in node.accessors]  # type: ignore[attr-defined]
        cells = [f"c{k}" for k in range(len(names))]
        lines = [f"{indent}try:"]
        lines += [f"{indent}    {cell} = data[{name!r}]" for cell, name in zip(cells, names, strict=True)]
        lines += [
            f"{indent}except (KeyError, TypeError):",
            f"{indent}    v = {i}get(data, ctx)",
            f"{indent}else:",
            f"{indent}    if "
            + " and ".join(f"(not {cell} or {cell}.__class__ is str)" for cell in cells)
            + ":",
            f"{indent}        parts = []",
        ]
        for cell in cells:
            lines += [
                f"{indent}        if {cell}:",
                f"{indent}            t = {cell}.strip()",
                f"{indent}            if t and (len(t) > {i}short or t.lower() not in {i}nulls):",
                f"{indent}                parts.append(t)",
            ]
        lines += [
            f"{indent}        v = tuple(parts) if parts else ABSENT",
            f"{indent}    else:",
            f"{indent}        v = {i}get(data, ctx)",
        ]
        return lines

    def fixed_list(self, i: str, node: FixedList, indent: str) -> list[str]:
        """Lines setting ``v`` to what ``FixedList.get`` returns, object items built inline."""
        lines = [f"{indent}{i}items = []", f"{indent}{i}bad = False"]
        for item in node.items:
            if isinstance(item, ObjectSpec) and item.memo_columns is None:
                lines += self.object(item, indent, f"{i}item", (), None)
            else:
                tag = self.tag()
                self.env[f"{tag}get"] = item.get
                lines.append(f"{indent}{i}item = {tag}get(data, ctx)")
            lines += [
                f"{indent}if {i}item is INVALID:",
                f"{indent}    {i}bad = True",
                f"{indent}elif {i}item is not ABSENT:",
                f"{indent}    {i}items.append({i}item)",
            ]
        lines.append(f"{indent}v = INVALID if {i}bad else tuple({i}items) if {i}items else ABSENT")
        return lines


def _single_column(node: Node) -> bool:
    return len(node.accessors) == 1 and isinstance(node.accessors[0], Column)


def _longest(words: frozenset[str]) -> int:
    """Only a text no longer than the longest null word needs lower-casing to compare."""
    return max((len(w) for w in words), default=-1)


def _accepts(node: Scalar) -> Callable[[str], bool] | None:
    """The check's quick test for a cell it passes unchanged (``check.accepts``), when the field is
    checked text and nothing else (no map, special words or case change) could change the cell."""
    accepts = getattr(node.check, "accepts", None)
    if accepts is None or node.kind != "str" or not node.trim or node.mapping is not None:
        return None
    if node.special or node.upper or node.lower or node.many:
        return None
    return accepts  # type: ignore[no-any-return]


_SHARED_MEMOS: dict[tuple[Any, ...], dict[Any, Any]] = {}


def _shared_memo(node: Scalar) -> dict[Any, Any]:
    """Where a field remembers its values by cell: shared by the date fields that read a cell alike
    (same parsing, trimming and null words; no map, special words or check), since their values for
    a text are the same and one record's dates often are the same text; else the field's own."""
    parsing = getattr(node.convert, "parsing", None)
    if parsing is None or node.special or node.mapping is not None or node.check is not None:
        return {}
    if node.upper or node.lower or node.many:
        return {}
    return _SHARED_MEMOS.setdefault((parsing, node.trim, node.nulls), {})
