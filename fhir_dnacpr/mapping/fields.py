"""Compiled field mappings: the objects a spec becomes, each able to ``get`` (map) and ``put`` (unmap).

Mapping one record walks this tree once: no spec interpretation at run time, no exceptions on the good
path, problems reported into a ``Context`` as located ``Issue`` objects whose messages name the source
path but never a patient's values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fhir_dnacpr.frozen import maker
from fhir_dnacpr.issues import Issue, Severity
from fhir_dnacpr.mapping.dates import DateParser, DateValueError
from fhir_dnacpr.mapping.paths import ABSENT, Accessor, Column, JsonPath, ShapeError

_DATE_CACHE_SIZE = 4096
_MEMO_SIZE = 4096
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID", "__bool__": lambda self: False})()
"""A value that was present but wrong; its issue is already in the context."""
MISSING: Any = object()
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
"""A model field no source value, constant or default has set (yet), in generated builders."""


def identity(value: Any, *_: Any) -> Any:
    """The conversion (and the writing back) of a text field: the text itself."""
    return value


class UnmapError(ValueError):
    """A canonical record that cannot be written back in the spec's layout without losing data."""


class Flagged:
    """A special source value (``Indefinite``): the field stays empty and sibling fields are set."""

    __slots__ = ("sets", "source")

    def __init__(self, sets: dict[str, Any], source: str) -> None:
        self.sets = sets
        self.source = source


class Context:
    """Per-record state: collected issues, the item prefix inside lists, and today's date."""

    __slots__ = ("issues", "prefix", "today")

    def __init__(self, today: date) -> None:
        self.issues: list[Issue] = []
        self.prefix = ""
        self.today = today

    def add(self, severity: Severity, code: str, message_id: str, message: str, location: str | None) -> None:
        self.issues.append(Issue(severity, code, message, location, message_id))


class Node:
    """Common shape: ``get(data, ctx)`` → value | ABSENT | INVALID | Flagged; ``put(value, out)``."""

    label: str = ""
    line: int | None = None
    accessors: tuple[Accessor, ...] = ()

    def get(self, data: Any, ctx: Context) -> Any:
        raise NotImplementedError

    def put(self, value: Any, out: dict[str, Any]) -> None:
        raise NotImplementedError

    def where(self, ctx: Context) -> str:
        acc = self.accessors[0] if self.accessors else None
        if acc is None:
            return f"the spec's {self.label}"
        word = acc.where.split(" ", 1)[0]
        return f"{word} {ctx.prefix}{acc.text}" if acc.text != "." else f"{ctx.prefix.rstrip('.')}"

    def location(self, ctx: Context) -> str:
        acc = self.accessors[0] if self.accessors else None
        if acc is None:
            return self.label
        return f"{ctx.prefix}{acc.text}" if acc.text != "." else ctx.prefix.rstrip(".")

    def spec_line(self) -> str:
        return f" (mapping spec line {self.line})" if self.line else ""


class Scalar(Node):
    """One model field from one or more source paths, through trim, nulls, specials, map and type."""

    __slots__ = (
        "accessors",
        "check",
        "convert",
        "default",
        "format_back",
        "get",
        "ignore_case",
        "inverse",
        "join",
        "kind",
        "label",
        "line",
        "lower",
        "many",
        "mapping",
        "native",
        "nulls",
        "one",
        "special",
        "split",
        "trim",
        "unmapped",
        "upper",
    )

    def __init__(
        self,
        *,
        label: str,
        line: int | None,
        kind: str,
        many: bool,
        accessors: tuple[Accessor, ...],
        convert: Callable[[str, Context, Scalar], Any],
        format_back: Callable[[Any], Any],
        join: str = " ",
        trim: bool = True,
        nulls: frozenset[str] = frozenset(),
        special: dict[str, Flagged] | None = None,
        upper: bool = False,
        lower: bool = False,
        split: str | None = None,
        mapping: dict[str, Any] | None = None,
        inverse: dict[Any, str] | None = None,
        ignore_case: bool = True,
        unmapped: str = "error",
        check: Callable[[Any, Context, Scalar], Any] | None = None,
        native: bool = False,
        default: Any = None,
    ) -> None:
        self.default = default
        self.label = label
        self.line = line
        self.kind = kind
        self.many = many
        self.accessors = accessors
        self.convert = convert
        self.format_back = format_back
        self.join = join
        self.trim = trim
        self.nulls = nulls
        self.special = special or None
        self.upper = upper
        self.lower = lower
        self.split = split
        self.mapping = mapping
        self.inverse = inverse
        self.ignore_case = ignore_case
        self.unmapped = unmapped
        self.check = check
        self.native = native
        self._build()

    # -- map ---------------------------------------------------------------------------------
    def _raw(self, data: Any, ctx: Context) -> Any:
        accessors = self.accessors
        try:
            if len(accessors) == 1:
                return accessors[0].get(data)
            values = [a.get(data) for a in accessors]
        except ShapeError as exc:
            ctx.add(Severity.ERROR, exc.code, exc.message_id, exc.message, self.location(ctx))
            return INVALID
        if self.many:
            out: list[Any] = []
            for v in values:
                if isinstance(v, list):
                    out.extend(v)
                elif v is not ABSENT and v is not None:
                    out.append(v)
            return out or ABSENT
        parts = []
        for v in values:
            if v is ABSENT or v is None:
                continue
            if isinstance(v, dict | list):
                self._wrong_type(ctx, v)
                return INVALID
            text = str(v).strip() if self.trim else str(v)
            if text and text.lower() not in self.nulls:
                parts.append(text)
        return self.join.join(parts) if parts else ABSENT

    def _build(self) -> None:
        """Specialise ``get`` and ``one`` for this field's options: closures over plain locals, with
        a fast path for a blank CSV cell; this is the mapping hot loop.
        """
        self.one = _make_one(self)
        one = self.one
        accessors = self.accessors
        many = self.many
        if self.many:
            self.get = self._get_general
            if self.split is None and len(accessors) > 1 and all(isinstance(a, Column) for a in accessors):
                self.get = _columns_getter(self)
            return
        if len(accessors) == 1 and isinstance(accessors[0], Column):
            column = accessors[0].name
            missing = self._missing_column

            def get_column(data: Any, ctx: Context) -> Any:
                try:
                    value = data[column]
                except (KeyError, TypeError):
                    return missing(data, ctx)
                if not value:
                    return ABSENT
                return one(value, ctx)

            self.get = get_column
            return
        del many
        self.get = self._get_general

    def _missing_column(self, data: Any, ctx: Context) -> Any:
        try:
            self.accessors[0].get(data)
        except ShapeError as exc:
            ctx.add(Severity.ERROR, exc.code, exc.message_id, exc.message, self.location(ctx))
        return INVALID

    def _get_general(self, data: Any, ctx: Context) -> Any:
        try:
            raw = self.accessors[0].get(data) if len(self.accessors) == 1 else self._raw(data, ctx)
        except ShapeError as exc:
            ctx.add(Severity.ERROR, exc.code, exc.message_id, exc.message, self.location(ctx))
            return INVALID
        if raw is ABSENT or raw is None or raw is INVALID:
            return raw if raw is INVALID else ABSENT
        if self.many:
            return self._many(raw, ctx)
        return self.one(raw, ctx)

    def _native(self, raw: Any, ctx: Context) -> Any:
        """A JSON number or boolean: used as is when the field takes one, else read as text."""
        kind = type(raw)
        if kind is bool:
            if self.mapping is None and self.kind == "bool":
                return _Done(raw)
            return "true" if raw else "false"
        if kind is int or kind is float:
            if self.mapping is None and self.kind == "int" and float(raw).is_integer():
                value = int(raw)
                return _Done(value if self.check is None else self.check(value, ctx, self))
            return str(int(raw)) if kind is float and raw.is_integer() else str(raw)
        self._wrong_type(ctx, raw)
        return _Done(INVALID)

    def _many(self, raw: Any, ctx: Context) -> Any:
        values = raw if isinstance(raw, list) else [raw]
        out = []
        one = self.one
        for value in values:
            parts = value.split(self.split) if isinstance(value, str) and self.split is not None else [value]
            for part in parts:
                if part is None:
                    continue
                result = one(part, ctx)
                if result is INVALID:
                    return INVALID
                if result is not ABSENT and not isinstance(result, Flagged):
                    out.append(result)
        return tuple(out) if out else ABSENT

    def _wrong_type(self, ctx: Context, value: Any) -> None:
        from fhir_dnacpr.sources.json import json_type_name

        found = f"{len(value)} values" if isinstance(value, list) else json_type_name(value)
        ctx.add(
            Severity.ERROR,
            "structure",
            "mapping.value.wrong-type",
            f"expected a single value in {self.where(ctx)} for {self.label} but found {found}; correct the "
            f"export or the path{self.spec_line()}",
            self.location(ctx),
        )

    def fail(self, ctx: Context, code: str, message_id: str, what: str, fix: str) -> Any:
        ctx.add(Severity.ERROR, code, message_id, f"{what} in {self.where(ctx)} {fix}", self.location(ctx))
        return INVALID

    # -- unmap -------------------------------------------------------------------------------
    def render(self, value: Any) -> Any:
        """The source form of one model value (inverse map, date format, Y/N …)."""
        if self.inverse is not None:
            key = self.inverse.get(_inverse_key(value), MISSING)
            if key is MISSING:
                if self.unmapped == "keep":
                    return self.format_back(value)
                raise UnmapError(
                    f"{self.label}: the value has no entry in the value map{self.spec_line()}, so it "
                    "cannot be written back"
                )
            return key
        return self.format_back(value)

    def put(self, value: Any, out: dict[str, Any]) -> None:
        if not self.accessors:
            return
        first = self.accessors[0]
        if value is None or value == ():
            _blank(self.accessors, out)
            return
        if self.many:
            rendered = [self.render(v) for v in value]
            if self.split is not None:
                self._spread([self.split.join(str(r) for r in rendered)], out)
            elif len(self.accessors) > 1:
                self._spread(rendered, out)
            elif isinstance(first, JsonPath):
                first.put(out, rendered)
            elif len(rendered) == 1:
                first.put(out, rendered[0])
            else:
                raise UnmapError(
                    f"{self.label}: {len(rendered)} values but one source field and no split:"
                    f"{self.spec_line()}; add split: to write them back"
                )
            return
        self._spread([self.render(value)], out)

    def _spread(self, values: list[Any], out: dict[str, Any]) -> None:
        accessors = self.accessors
        if len(values) > len(accessors):
            raise UnmapError(
                f"{self.label}: {len(values)} values but only {len(accessors)} source fields"
                f"{self.spec_line()}; the rest cannot be written back"
            )
        for i, acc in enumerate(accessors):
            if i < len(values):
                acc.put(out, values[i])
            else:
                _blank((acc,), out)


def _blank(accessors: tuple[Accessor, ...], out: dict[str, Any]) -> None:
    """An empty CSV column is written as "" unless another field already wrote that column."""
    for acc in accessors:
        if isinstance(acc, Column):
            out.setdefault(acc.name, "")


def _columns_getter(node: Scalar) -> Callable[[Any, Context], Any]:
    """``get`` for a list field read from several CSV columns (``address_lines: {paths: [...]}``).

    The same result as ``_get_general`` without building the intermediate lists; any row that is
    not a plain dict of text cells (a missing column, say) takes the general path.
    """
    names = tuple(a.name for a in node.accessors)  # type: ignore[attr-defined]
    general = node._get_general
    one = node.one

    def get_columns(data: Any, ctx: Context) -> Any:
        try:
            cells = [data[name] for name in names]
        except (KeyError, TypeError):
            return general(data, ctx)
        for cell in cells:
            if cell and cell.__class__ is not str:
                return general(data, ctx)
        out = []
        for cell in cells:
            if not cell:
                continue
            value = one(cell, ctx)
            if value is INVALID:
                return INVALID
            if value is not ABSENT and value.__class__ is not Flagged:
                out.append(value)
        return tuple(out) if out else ABSENT

    return get_columns


class _Done:
    """A final result from ``_native`` (already converted and checked)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _make_one(node: Scalar, fast: bool = True) -> Callable[[Any, Context], Any]:
    """The per-value pipeline (trim, nulls, special, case, map, convert, check) as one closure.

    ``fast=False`` leaves out the shortcut for checked text (the tests hold it to the general closure).
    """
    trim = node.trim
    nulls = node.nulls
    special = node.special
    upper = node.upper
    lower = node.lower
    mapping = node.mapping
    ignore_case = node.ignore_case
    convert = node.convert
    check = node.check
    native = node._native
    # Only values no longer than the longest null/special word need lower-casing to compare.
    short_plain = max((len(v) for v in (*nulls, *(special or ()))), default=-1)
    plain = node.kind == "str" and not (special or upper or lower or mapping is not None or check)

    if (
        fast
        and node.kind == "str"
        and convert is identity
        and not (special or upper or lower or mapping is not None)
        and check is not None
    ):
        # Text with a check (NHS number, postcode): no map to look up, and a text's conversion is itself.
        short_checked = short_plain

        def one_checked(raw: Any, ctx: Context) -> Any:
            if type(raw) is str:
                value = raw.strip() if trim else raw
            else:
                value = native(raw, ctx)
                if type(value) is _Done:
                    return value.value
            if not value:
                return ABSENT
            if len(value) <= short_checked and value.lower() in nulls:
                return ABSENT
            return check(value, ctx, node)

        return one_checked

    if plain and trim:

        def one_plain(raw: Any, ctx: Context) -> Any:
            if type(raw) is not str:
                raw = native(raw, ctx)
                if type(raw) is _Done:
                    return raw.value
            value = raw.strip()
            if not value:
                return ABSENT
            if len(value) <= short_plain and value.lower() in nulls:
                return ABSENT
            return value

        return one_plain

    # One lookup answers the common cases: null words, special words and (case-insensitive) map hits.
    quick: dict[str, Any] = {}
    if mapping is not None and ignore_case:
        quick.update({k: (ABSENT if v is None else v) for k, v in mapping.items()})
    quick.update(special or {})
    quick.update(dict.fromkeys(nulls, ABSENT))
    always = mapping is not None and ignore_case
    short = max((len(k) for k in quick), default=-1)

    def one(raw: Any, ctx: Context) -> Any:
        if type(raw) is str:
            value = raw.strip() if trim else raw
        else:
            value = native(raw, ctx)
            if type(value) is _Done:
                return value.value
        if not value:
            return ABSENT
        if always or len(value) <= short:
            hit = quick.get(value.lower())
            if hit is not None:
                return hit
        if upper:
            value = value.upper()
        elif lower:
            value = value.lower()
        if mapping is not None:
            if not ignore_case:
                target = mapping.get(value, MISSING)
                if target is not MISSING:
                    return ABSENT if target is None else target
            return _unmapped(node, value, ctx)
        result = convert(value, ctx, node)
        if result is INVALID or check is None:
            return result
        return check(result, ctx, node)

    return one


def _unmapped(node: Scalar, value: str, ctx: Context) -> Any:
    """A value the field's map does not know: reject, keep (convert as is) or leave out with a warning."""
    if node.unmapped == "keep":
        result = node.convert(value, ctx, node)
        if result is INVALID or node.check is None:
            return result
        return node.check(result, ctx, node)
    if node.unmapped == "blank":
        ctx.add(
            Severity.WARNING,
            "code-unknown",
            "mapping.value-map.blanked",
            f"the value in {node.where(ctx)} is not in the value map for {node.label} and was left "
            f"out (unmapped: blank{node.spec_line()})",
            node.location(ctx),
        )
        return ABSENT
    ctx.add(
        Severity.ERROR,
        "code-invalid",
        "mapping.value-map.unknown",
        f"the value in {node.where(ctx)} is not in the value map for {node.label}; add it to "
        f"map:{node.spec_line()} or correct the source",
        node.location(ctx),
    )
    return INVALID


def _inverse_key(value: Any) -> Any:
    from fhir_dnacpr.model import Coded

    if isinstance(value, Coded):
        return (value.system, value.code) if value.code else ("text", value.text)
    return value


class Const(Node):
    """A constant model value (``const:``): never read, never written back, not evidence of data."""

    __slots__ = ("label", "line", "value")

    def __init__(self, label: str, line: int | None, value: Any) -> None:
        self.label = label
        self.line = line
        self.value = value

    def get(self, data: Any, ctx: Context) -> Any:
        return self.value

    def put(self, value: Any, out: dict[str, Any]) -> None:
        return None


class ObjectSpec(Node):
    """A model dataclass built from its field nodes; absent when no field found source data."""

    __slots__ = (
        "build",
        "cls",
        "consts",
        "defaults",
        "drop_if_incomplete",
        "finish",
        "label",
        "line",
        "make",
        "nodes",
        "required",
    )

    def __init__(
        self,
        *,
        cls: type,
        label: str,
        line: int | None,
        nodes: list[tuple[str, Node]],
        consts: dict[str, Any],
        defaults: dict[str, Any],
        required: tuple[str, ...],
        drop_if_incomplete: bool,
    ) -> None:
        self.cls = cls
        self.make = maker(cls)
        """``cls``'s constructor, fast (``construct.maker``)."""
        self.label = label
        self.line = line
        self.nodes = nodes
        self.consts = consts
        self.defaults = defaults
        self.required = required
        self.drop_if_incomplete = drop_if_incomplete
        self.finish: Callable[[ObjectSpec, dict[str, Any], Context], None] | None = None
        """Optional last touch on the arguments (fill a known display, warn on a bad number)."""
        self.build: Callable[..., Any] = self._first_build
        """``build(data, ctx, force=False)``: the object, or ABSENT / INVALID (``unroll``). Written
        at its first call, once the compiler has set ``finish`` and compiled the whole spec."""
        self.memo_columns: tuple[str, ...] | None = None
        self._memo: dict[tuple[Any, ...], Any] = {}

    def remember_by_columns(self) -> None:
        """Reuse results for rows whose cells for this object are the same (see ``get``).

        Meant for shared parties — the clinician on a thousand forms, the GP practice of a whole
        register — whose mapping is a pure function of a few CSV cells. Only when every leaf is a
        single column or a constant; otherwise nothing changes.
        """
        columns = _leaf_columns(self)
        if columns is not None:
            self.memo_columns = tuple(dict.fromkeys(columns))

    def get(self, data: Any, ctx: Context) -> Any:
        columns = self.memo_columns
        if columns is None or type(data) is not dict:
            return self._get(data, ctx)
        # Same cells (and same "today", which date checks use) → same value. Only results that raised
        # no issue at all are kept, so every warning and error is still reported for every row. A row
        # without one of the columns is never looked up: its cell would read as None, like a row
        # whose cell is None, but only the missing column is an error.
        try:
            key = (ctx.today, *map(data.__getitem__, columns))
        except KeyError:
            return self._get(data, ctx)
        found = self._memo.get(key)
        if found is not None:
            return found
        issues_before = len(ctx.issues)
        return _remember(self._memo, key, self._get(data, ctx), issues_before, ctx)

    def _get(self, data: Any, ctx: Context) -> Any:
        return self.build(data, ctx)

    def _first_build(self, *args: Any) -> Any:
        from fhir_dnacpr.mapping.unroll import generate_build

        self.build = generate_build(self)
        return self.build(*args)

    def _incomplete(self, name: str, ctx: Context) -> Any:
        node = dict(self.nodes).get(name)
        where = node.location(ctx) if node is not None else f"{ctx.prefix}{self.label}.{name}"
        if self.drop_if_incomplete:
            ctx.add(
                Severity.WARNING,
                "incomplete",
                "mapping.item.dropped",
                f"the {self.label} at {ctx.prefix or 'this record'} has details but no {name}, so it was "
                "left out; add the missing value in the source",
                where,
            )
            return ABSENT
        mapped = f" (mapped from {node.where(ctx)})" if node is not None else ""
        ctx.add(
            Severity.ERROR,
            "required",
            "mapping.required.missing",
            f"{self.label}.{name} is required but the record has no value{mapped}; add it in the source",
            where,
        )
        return INVALID

    def put(self, value: Any, out: dict[str, Any]) -> None:
        for name, node in self.nodes:
            field_value = None if value is None else getattr(value, name)
            if value is not None and isinstance(node, Scalar) and node.special and field_value is None:
                flag = _special_for(node, value)
                if flag is not None:
                    node.accessors[0].put(out, flag)
                    continue
            node.put(field_value, out)


def _leaf_columns(node: Node) -> list[str] | None:
    """The CSV columns an object reads, when every leaf is one column or a constant; else None."""
    if isinstance(node, Const):
        return []
    if isinstance(node, Scalar):
        if node.accessors and all(isinstance(a, Column) for a in node.accessors):
            return [a.name for a in node.accessors]  # type: ignore[attr-defined]
        return None
    children = (
        [n for _, n in node.nodes]
        if isinstance(node, ObjectSpec)
        else node.items
        if isinstance(node, FixedList)
        else None
    )
    if children is None:
        return None
    columns: list[str] = []
    for child in children:
        found = _leaf_columns(child)
        if found is None:
            return None
        columns += found
    return columns


_CELL_MEMO_KINDS = frozenset({"date", "datetime", "date_or_datetime", "bool", "enum", "int", "coded"})


def _uses_today(node: Node) -> bool:
    """Whether a node's value can depend on ``ctx.today`` (a check such as "not in the future")."""
    if isinstance(node, Scalar):
        return bool(getattr(node.check, "uses_today", False))
    if isinstance(node, ObjectSpec):
        return any(_uses_today(n) for _, n in node.nodes)
    if isinstance(node, FixedList):
        return any(_uses_today(n) for n in node.items)
    if isinstance(node, EachList):
        return _uses_today(node.item)
    return False


def _memo_cell(node: Node) -> str | None:
    """The one CSV column a node's value is a pure function of, when remembering it by that cell pays.

    Codes, dates, yes/no flags and lists split from one cell recur across records, and working them
    out again (trim, null words, value map, date formats, checks) costs far more than a dict lookup.
    Free text (names, notes) and NHS numbers rarely repeat, so they are not remembered.
    """
    if isinstance(node, Scalar):
        if len(node.accessors) != 1 or not isinstance(node.accessors[0], Column):
            return None
        pays = (
            node.many or node.kind in _CELL_MEMO_KINDS or node.mapping is not None or node.special is not None
        )
        return node.accessors[0].name if pays else None  # type: ignore[attr-defined]
    if isinstance(node, EachList) and isinstance(node.accessors[0], Column):
        return node.accessors[0].name  # type: ignore[attr-defined]
    return None


def _plain_text(node: Node) -> bool:
    """A trimmed text field with no map, special words, case change or check: inlined in ``build``."""
    return (
        isinstance(node, Scalar)
        and not node.many
        and node.kind == "str"
        and node.trim
        and not (node.special or node.upper or node.lower or node.mapping is not None or node.check)
        and len(node.accessors) == 1
        and isinstance(node.accessors[0], Column)
    )


def _plain_text_columns(node: Node) -> bool:
    """A list of trimmed texts from several CSV columns (``address_lines: {paths: [...]}``) with no split,
    map, special words, case change or check: inlined in ``build`` (else ``_columns_getter``)."""
    return (
        isinstance(node, Scalar)
        and node.many
        and node.split is None
        and node.kind == "str"
        and node.trim
        and not (node.special or node.upper or node.lower or node.mapping is not None or node.check)
        and len(node.accessors) > 1
        and all(isinstance(a, Column) for a in node.accessors)
    )


def remembered_get(node: Scalar) -> Callable[[Any, Context], Any]:
    """``node.get`` remembering its results by cell text (see ``_memo_cell``), as an object's generated
    ``build`` does for its own fields; for a field read on its own (``last_updated``)."""
    column = _memo_cell(node)
    get = node.get
    if column is None:
        return get
    memo: dict[Any, Any] = {}
    by_day = _uses_today(node)

    def get_remembered(data: Any, ctx: Context) -> Any:
        cell = data.get(column) if data.__class__ is dict else None
        if cell.__class__ is not str:
            return get(data, ctx)
        key = (cell, ctx.today) if by_day else cell
        value = memo.get(key)
        if value is None:
            before = len(ctx.issues)
            value = _remember(memo, key, get(data, ctx), before, ctx)
        return value

    return get_remembered


def _remember(memo: dict[Any, Any], key: Any, value: Any, issues_before: int, ctx: Context) -> Any:
    """``value``, kept under ``key`` only when working it out raised no issue: a remembered value must
    not hide a warning or error the next row with the same cells should report too."""
    if value is not INVALID and len(ctx.issues) == issues_before:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = value
    return value


def _may_flag(node: Node) -> bool:
    """Whether ``node.get`` can answer a ``Flagged`` (only a single-valued field with special words)."""
    return isinstance(node, Scalar) and not node.many and node.special is not None


def _remembering(
    one: Callable[[Any, Context], Any], memo: dict[Any, Any], by_day: bool
) -> Callable[..., Any]:
    """``one(cell, ctx)`` for a text cell not remembered yet, remembering what it answers when that
    raised no issue (see ``_remember``); the generated ``build`` looks the memo up itself first."""

    def slow(cell: str, ctx: Context) -> Any:
        before = len(ctx.issues)
        return _remember(memo, (cell, ctx.today) if by_day else cell, one(cell, ctx), before, ctx)

    return slow


def _remembering_get(
    get: Callable[[Any, Context], Any], memo: dict[Any, Any], by_day: bool
) -> Callable[..., Any]:
    """As ``_remembering`` for a field read through its ``get`` (``cell`` is its one column's text)."""

    def slow(data: Any, cell: str, ctx: Context) -> Any:
        before = len(ctx.issues)
        return _remember(memo, (cell, ctx.today) if by_day else cell, get(data, ctx), before, ctx)

    return slow


def _generate_fields(spec: ObjectSpec) -> Callable[..., Any]:
    """The plain form of ``unroll.generate_build``'s work, for the tests to hold it to: ``fields(data,
    ctx, force=False)`` answers the constructor arguments as a dict (or ABSENT / INVALID), each field
    read through its own ``get``/``one``, nothing remembered, nothing inlined."""
    env: dict[str, Any] = {
        "ABSENT": ABSENT,
        "INVALID": INVALID,
        "Flagged": Flagged,
        "consts": spec.consts,
        "incomplete": spec._incomplete,
    }
    body = [
        "def fields(data, ctx, force=False):",
        "    kwargs = consts.copy()",
        "    found = False",
        "    invalid = False",
    ]
    for i, (name, node) in enumerate(spec.nodes):
        if (
            isinstance(node, Scalar)
            and not node.many
            and len(node.accessors) == 1
            and isinstance(node.accessors[0], Column)
        ):
            env[f"one{i}"] = node.one
            env[f"missing{i}"] = node._missing_column
            body += [
                "    try:",
                f"        cell = data[{node.accessors[0].name!r}]",  # type: ignore[attr-defined]
                "    except (KeyError, TypeError):",
                f"        v = missing{i}(data, ctx)",
                "    else:",
                f"        v = one{i}(cell, ctx) if cell else ABSENT",
            ]
        else:
            env[f"get{i}"] = node.get
            body.append(f"    v = get{i}(data, ctx)")
        body += [
            "    if v is not ABSENT:",
            "        if v is INVALID:",
            "            invalid = True",
            "        else:",
            "            found = True",
            "            if v.__class__ is Flagged:",
            "                kwargs.update(v.sets)",
            "            else:",
            f"                kwargs[{name!r}] = v",
        ]
    body += [
        "    if not found and not force:",
        "        return INVALID if invalid else ABSENT",
        "    if invalid:",
        "        return INVALID",
    ]
    for k, (name, value) in enumerate(spec.defaults.items()):
        env[f"default{k}"] = value
        body += [f"    if {name!r} not in kwargs:", f"        kwargs[{name!r}] = default{k}"]
    for name in spec.required:
        body += [f"    if {name!r} not in kwargs:", f"        return incomplete({name!r}, ctx)"]
    body.append("    return kwargs")
    exec(compile("\n".join(body), f"<mapping {spec.label} (reference)>", "exec"), env)
    return env["fields"]  # type: ignore[no-any-return]


def _reference_build(
    spec: ObjectSpec, given: tuple[str, ...] = (), fallback: str | None = None
) -> Callable[..., Any]:
    """``unroll.generate_build``'s contract (same signature, same answers) over ``_generate_fields``."""
    fields = _generate_fields(spec)

    def build(data: Any, ctx: Context, force: bool = False, *args: Any) -> Any:
        kwargs = fields(data, ctx, force)
        if kwargs is ABSENT or kwargs is INVALID:
            return kwargs
        if spec.finish is not None:
            spec.finish(spec, kwargs, ctx)
        kwargs.update(zip(given, args, strict=False))
        link = args[len(given)] if len(args) > len(given) else UNSET
        if fallback is not None and fallback not in kwargs and link is not UNSET:
            kwargs[fallback] = link
        return spec.make(**kwargs)

    return build


def _special_for(node: Scalar, value: Any) -> str | None:
    for flagged in (node.special or {}).values():
        if all(getattr(value, k, None) == v for k, v in flagged.sets.items()):
            return flagged.source
    return None


class FixedList(Node):
    """A list field written as a YAML list: one item spec each (``nok1_*``, ``nok2_*`` columns)."""

    __slots__ = ("items", "label", "line")

    def __init__(self, label: str, line: int | None, items: list[Node]) -> None:
        self.label = label
        self.line = line
        self.items = items

    def get(self, data: Any, ctx: Context) -> Any:
        out = []
        invalid = False
        for item in self.items:
            value = item.get(data, ctx)
            if value is INVALID:
                invalid = True
            elif value is not ABSENT:
                out.append(value)
        if invalid:
            return INVALID
        return tuple(out) if out else ABSENT

    def put(self, value: Any, out: dict[str, Any]) -> None:
        values = tuple(value or ())
        if len(values) > len(self.items):
            raise UnmapError(
                f"{self.label}: {len(values)} items but the spec maps {len(self.items)}"
                f" (mapping spec line {self.line}); the rest cannot be written back"
            )
        for i, item in enumerate(self.items):
            item.put(values[i] if i < len(values) else None, out)


class EachList(Node):
    """A list field from repeating source items (``each:``): a JSON array, XML elements, split text."""

    __slots__ = ("accessors", "item", "label", "line", "split")

    def __init__(
        self, label: str, line: int | None, accessor: Accessor, split: str | None, item: Node
    ) -> None:
        self.label = label
        self.line = line
        self.accessors = (accessor,)
        self.split = split
        self.item = item

    def get(self, data: Any, ctx: Context) -> Any:
        accessor = self.accessors[0]
        try:
            items = accessor.items(data)
        except ShapeError as exc:
            ctx.add(Severity.ERROR, exc.code, exc.message_id, exc.message, self.location(ctx))
            return INVALID
        if self.split is not None:
            parts: list[Any] = []
            for item in items:
                if isinstance(item, str):
                    parts.extend(p.strip() for p in item.split(self.split) if p.strip())
                else:
                    parts.append(item)
            items = parts
        out = []
        invalid = False
        saved = ctx.prefix
        for i, item in enumerate(items):
            ctx.prefix = f"{saved}{accessor.text}[{i}]."
            value = self.item.get(item, ctx)
            if value is INVALID:
                invalid = True
            elif value is not ABSENT:
                out.append(value)
        ctx.prefix = saved
        if invalid:
            return INVALID
        return tuple(out) if out else ABSENT

    def put(self, value: Any, out: dict[str, Any]) -> None:
        accessor = self.accessors[0]
        values = tuple(value or ())
        rendered = []
        for item in values:
            holder: dict[str, Any] = {}
            self.item.put(item, holder)
            rendered.append(holder.get(".", holder) if "." in holder else holder)
        if self.split is not None:
            accessor.put(out, self.split.join(str(r) for r in rendered))
        elif isinstance(accessor, JsonPath):
            if rendered:
                accessor.put(out, rendered)
        else:
            raise UnmapError(f"{self.label}: items cannot be written back to {accessor.where}")


_DATE_CACHES: dict[tuple[Any, ...], dict[str, Any]] = {}
"""Parsed dates by text, one cache per parsing (method, formats, zone), shared by every field that
parses alike: a record's decision, discussion and endorsement dates are often the same text."""


def date_converter(parser: DateParser, method: str) -> Callable[[str, Context, Scalar], Any]:
    parse = getattr(parser, method)
    key = (method, tuple(f.text for f in parser.formats), parser.zone)
    cache = _DATE_CACHES.setdefault(key, {})  # parsed values are immutable

    def convert(value: str, ctx: Context, node: Scalar) -> Any:
        hit = cache.get(value)
        if hit is not None:
            return hit
        try:
            parsed = parse(value)
        except DateValueError as exc:
            if exc.impossible:
                return node.fail(
                    ctx,
                    "value",
                    "mapping.date.impossible",
                    "the date",
                    "is not a real calendar date (e.g. 31 February); correct it in the source system",
                )
            return node.fail(
                ctx,
                "value",
                "mapping.date.unparseable",
                "the date",
                f"does not match the formats {parser.describe()}; correct the value or add its format to "
                f"formats:{node.spec_line()}",
            )
        if len(cache) >= _DATE_CACHE_SIZE:
            cache.clear()
        cache[value] = parsed
        return parsed

    convert.parsing = key  # type: ignore[attr-defined]
    return convert
