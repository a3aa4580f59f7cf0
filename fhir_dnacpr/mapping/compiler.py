"""Turn a spec's YAML nodes into compiled field nodes, collecting every located problem on the way.

Everything that can be decided from the spec alone is decided here, once: which model field a key
names and what type it has, how a source value converts, what each value-map target is (already typed),
which XPath/JSON path to use. A spec with any problem is refused before any data is read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from lxml import etree

from fhir_dnacpr import model
from fhir_dnacpr.mapping import checks
from fhir_dnacpr.mapping.catalogue import CATALOGUE, SENSITIVE, FieldKind
from fhir_dnacpr.mapping.dates import LONDON, DateFormat, DateParser, FormatError
from fhir_dnacpr.mapping.fields import (
    Const,
    Context,
    EachList,
    FixedList,
    Flagged,
    Node,
    ObjectSpec,
    Scalar,
    date_converter,
)
from fhir_dnacpr.mapping.fields import identity as _identity
from fhir_dnacpr.mapping.paths import Accessor, Column, Itself, JsonPath, XPathExpr
from fhir_dnacpr.mapping.yamlnodes import (
    SpecProblem,
    is_map,
    is_null,
    is_scalar,
    is_seq,
    items,
    line_of,
    text,
    typed,
)
from fhir_dnacpr.terminology import codes

VALUE_KEYS = {
    "path",
    "paths",
    "join",
    "const",
    "default",
    "trim",
    "upper",
    "lower",
    "null_values",
    "special",
    "split",
    "map",
    "ignore_case",
    "unmapped",
    "formats",
    "timezone",
    "true",
    "false",
    "system",
}
LIST_KEYS = {"each", "fields", "split"}
SOURCE_KEYS = {"format", "encoding", "delimiter", "quotechar", "record_path", "namespaces", "array_path"}
DEFAULT_KEYS = {
    "date_formats",
    "timezone",
    "null_values",
    "true_values",
    "false_values",
    "ignore_case",
    "trim",
}
TOP_KEYS = {
    "version",
    "description",
    "source",
    "source_system",
    "id_key_env",
    "record_id",
    "last_updated",
    "yields",
    "defaults",
    "patient",
    "decision",
    "plan",
    "redact",
}
REDACT_KEYS = {"keep", "mask"}
DEFAULT_TRUE = ("Y", "Yes", "True", "T", "1")
DEFAULT_FALSE = ("N", "No", "False", "F", "0")
DEFAULT_NULLS = ("N/K", "NK", "Not known")
UNMAPPED = ("error", "keep", "blank")


def _known_displays() -> dict[tuple[str, str], str]:
    table = {}
    for value in vars(codes).values():
        if isinstance(value, codes.Code):
            table[(value.system, value.code)] = value.display
    for value in codes.PREFERRED_PLACE_OF_DEATH.values():
        table[(value.system, value.code)] = value.display
    return table


KNOWN_DISPLAYS = _known_displays()


@dataclass
class Settings:
    """Spec-wide defaults a field can override."""

    date_formats: list[DateFormat]
    zone: tzinfo = LONDON
    nulls: frozenset[str] = frozenset(v.lower() for v in DEFAULT_NULLS)
    true_values: tuple[str, ...] = DEFAULT_TRUE
    false_values: tuple[str, ...] = DEFAULT_FALSE
    ignore_case: bool = True
    trim: bool = True


@dataclass
class SensitivePaths:
    """Source paths by whether what they map to may be shown in a reject file."""

    safe: set[str] = field(default_factory=set)
    masked: set[str] = field(default_factory=set)


class Compiler:
    """One compile of one spec: ``problems`` collects everything wrong."""

    def __init__(self, fmt: str, namespaces: Mapping[str, str], settings: Settings) -> None:
        self.fmt = fmt
        self.namespaces = dict(namespaces)
        self.settings = settings
        self.problems: list[SpecProblem] = []
        self.paths = SensitivePaths()
        self.prefix_stack: list[str] = []

    # -- problems ----------------------------------------------------------------------------
    def problem(self, node: yaml.Node | None, key: str, what: str, fix: str = "") -> None:
        self.problems.append(SpecProblem(line_of(node), key, what, fix))

    def unknown_key(self, node: yaml.Node, key: str, name: str, allowed: set[str] | list[str]) -> None:
        close = difflib.get_close_matches(name, list(allowed), n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(sorted(allowed))}"
        self.problem(node, key, f"unknown key {name!r}", fix)

    # -- paths -------------------------------------------------------------------------------
    def accessor(self, node: yaml.Node, key: str) -> Accessor | None:
        if not is_scalar(node) or not text(node).strip():
            self.problem(
                node, key, "a source path must be a non-empty text", "write the column, XPath or JSON path"
            )
            return None
        path = text(node).strip()
        if path == ".":
            return Itself()
        try:
            if self.fmt == "csv":
                return Column(path)
            if self.fmt == "xml":
                unknown = sorted(set(_xpath_prefixes(path)) - set(self.namespaces))
                if unknown:
                    self.problem(
                        node,
                        key,
                        f"the XPath uses the prefix {unknown[0]!r}, which source.namespaces does not declare",
                        "add it to source.namespaces",
                    )
                    return None
                return XPathExpr(path, self.namespaces)
            return JsonPath(path)
        except etree.XPathSyntaxError as exc:
            self.problem(node, key, f"the XPath does not compile ({exc})", "fix the expression")
        except etree.XPathEvalError as exc:
            self.problem(
                node, key, f"the XPath does not compile ({exc})", "declare its prefixes in source.namespaces"
            )
        except ValueError as exc:
            self.problem(node, key, str(exc), "")
        return None

    def note_path(self, accessor: Accessor, sensitive: bool) -> None:
        """Remember a source path as safe or masked for the reject file, in the form redaction walks:
        a CSV column, an XPath from the record element, or a dotted JSON path with ``[]`` for items.
        """
        steps = [*self.prefix_stack, accessor.text] if accessor.text != "." else list(self.prefix_stack)
        if not steps:
            return
        if self.fmt == "csv":
            name = steps[0]
        elif self.fmt == "xml":
            name = "/".join(steps)
        else:
            name = "".join(f"{step}[]." for step in steps[:-1]) + steps[-1]
            if accessor.text == ".":
                name += "[]"
            name = re.sub(r"\[\d+\]", "[]", name)
        (self.paths.masked if sensitive else self.paths.safe).add(name)

    # -- objects -----------------------------------------------------------------------------
    def object_spec(
        self,
        node: yaml.Node,
        key: str,
        cls: type,
        *,
        hidden: frozenset[str] = frozenset(),
        extra: frozenset[str] = frozenset(),
        drop_if_incomplete: bool = False,
    ) -> ObjectSpec | None:
        if not is_map(node):
            self.problem(
                node, key, f"expected a mapping of {cls.__name__} fields", "indent the field mappings"
            )
            return None
        catalogue = {k: v for k, v in CATALOGUE[cls].items() if k not in hidden}
        nodes: list[tuple[str, Node]] = []
        consts: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        specials: list[tuple[yaml.Node, str, Scalar]] = []
        for name, key_node, value_node in items(node):
            if name in extra:
                continue
            here = f"{key}.{name}"
            kind = catalogue.get(name)
            if kind is None:
                self.unknown_key(key_node, here, name, set(catalogue) | extra)
                continue
            if cls is model.Coded and name == "system" and is_scalar(value_node):
                consts[name] = text(value_node)  # a code system is a URI, never a source path
                continue
            compiled = self.field(value_node, here, cls, kind)
            if compiled is None:
                continue
            if isinstance(compiled, Const):
                consts[name] = compiled.value
                continue
            if isinstance(compiled, Scalar) and compiled.default is not None:
                defaults[name] = compiled.default
            if isinstance(compiled, Scalar) and compiled.special:
                specials.append((value_node, here, compiled))
            nodes.append((name, compiled))
        for value_node, here, compiled in specials:
            for flagged in compiled.special.values():  # type: ignore[union-attr]
                flagged.sets = self.special_sets(value_node, here, cls, catalogue, flagged.sets)
        required = tuple(name for name, kind in catalogue.items() if kind.required and name not in consts)
        mapped = {n for n, _ in nodes} | set(consts) | set(defaults)
        for name in required:
            if name not in mapped and not drop_if_incomplete:
                self.problem(node, key, f"{cls.__name__}.{name} is required but not mapped", f"add {name}:")
        spec = ObjectSpec(
            cls=cls,
            label=key,
            line=line_of(node),
            nodes=nodes,
            consts=consts,
            defaults=defaults,
            required=required,
            drop_if_incomplete=drop_if_incomplete,
        )
        if cls is model.Coded:
            spec.finish = _known_display
        elif cls is model.Professional:
            spec.finish = checks.registration_number
        if cls in (model.Professional, model.Organisation):
            spec.remember_by_columns()  # shared parties repeat across rows
        return spec

    def special_sets(
        self,
        node: yaml.Node,
        key: str,
        cls: type,
        catalogue: dict[str, FieldKind],
        raw_sets: dict[str, Any],
    ) -> dict[str, Any]:
        out = {}
        for name, (value_node, value) in raw_sets.items():
            kind = catalogue.get(name)
            if kind is None or kind.kind == "object" or kind.many:
                self.problem(
                    value_node, f"{key}.special", f"{name!r} is not a simple field of {cls.__name__}"
                )
                continue
            converted = self.target(value_node, f"{key}.special.{name}", kind, value)
            if converted is not _BAD:
                out[name] = converted
        return out

    def field(self, node: yaml.Node, key: str, owner: type, kind: FieldKind) -> Node | None:
        sensitive = kind.name in _sensitive_names(owner)
        if kind.kind == "object":
            if kind.many:
                return self.object_list(node, key, kind)
            return self.object_spec(node, key, kind.target, drop_if_incomplete=kind.target in _DROPPABLE)
        if kind.many and is_seq(node):
            return self.fixed_scalar_list(node, key, owner, kind)
        if kind.many and is_map(node) and any(k == "each" for k, _, _ in items(node)):
            return self.each_list(node, key, owner, kind)
        if kind.kind == "coded" and is_map(node) and _is_coded_object(node):
            return self.object_spec(node, key, model.Coded)
        return self.scalar(node, key, owner, kind, sensitive)

    def object_list(self, node: yaml.Node, key: str, kind: FieldKind) -> Node | None:
        cls = kind.target
        if is_seq(node):
            specs = []
            for i, item in enumerate(node.value):
                compiled = self.object_spec(item, f"{key}[{i}]", cls, drop_if_incomplete=True)
                if compiled is not None:
                    specs.append(compiled)
            return FixedList(key, line_of(node), specs)
        if is_map(node) and any(k == "each" for k, _, _ in items(node)):
            return self.each_list(node, key, cls, kind)
        self.problem(
            node,
            key,
            f"a list of {cls.__name__} is either a YAML list of item mappings or each: + fields:",
            "see 'Nested objects and lists' in docs/mapping.md",
        )
        return None

    def fixed_scalar_list(
        self, node: yaml.SequenceNode, key: str, owner: type, kind: FieldKind
    ) -> Node | None:
        one = FieldKind(kind.name, kind.kind, False, kind.target, False)
        specs: list[Node] = []
        for i, item in enumerate(node.value):
            if kind.kind == "coded" and is_map(item) and _is_coded_object(item):
                compiled: Node | None = self.object_spec(item, f"{key}[{i}]", model.Coded)
            else:
                compiled = self.scalar(item, f"{key}[{i}]", owner, one, kind.name in _sensitive_names(owner))
            if compiled is not None:
                specs.append(compiled)
        return FixedList(key, line_of(node), specs)

    def each_list(self, node: yaml.MappingNode, key: str, owner: type, kind: FieldKind) -> Node | None:
        entries = {name: (kn, vn) for name, kn, vn in items(node)}
        each_node = entries["each"][1]
        accessor = self.accessor(each_node, f"{key}.each")
        split = None
        if "split" in entries:
            split = self.string(entries["split"][1], f"{key}.split")
        if accessor is None:
            return None
        self.prefix_stack.append(accessor.text)
        try:
            if kind.kind == "object":
                unknown = set(entries) - LIST_KEYS
                for name in unknown:
                    self.unknown_key(entries[name][0], f"{key}.{name}", name, LIST_KEYS)
                if "fields" not in entries:
                    self.problem(node, key, "each: needs fields: (the item's field mappings)", "add fields:")
                    return None
                item: Node | None = self.object_spec(
                    entries["fields"][1], f"{key}.fields", kind.target, drop_if_incomplete=True
                )
            elif kind.kind == "coded" and "fields" in entries:
                item = self.object_spec(entries["fields"][1], f"{key}.fields", model.Coded)
            else:
                rest = [(n, kn, vn) for n, kn, vn in items(node) if n not in ("each", "split")]
                inner = yaml.MappingNode("tag:yaml.org,2002:map", [(kn, vn) for _, kn, vn in rest])
                inner.start_mark = node.start_mark
                if not any(n in ("path", "paths", "const") for n, _, _ in rest):
                    dot = yaml.ScalarNode("tag:yaml.org,2002:str", ".")
                    dot.start_mark = node.start_mark
                    key_node = yaml.ScalarNode("tag:yaml.org,2002:str", "path")
                    inner.value.append((key_node, dot))
                one = FieldKind(kind.name, kind.kind, False, kind.target, False)
                item = self.scalar(inner, key, owner, one, kind.name in _sensitive_names(owner))
        finally:
            self.prefix_stack.pop()
        if item is None:
            return None
        return EachList(key, line_of(node), accessor, split, item)

    # -- scalars -----------------------------------------------------------------------------
    def scalar(
        self, node: yaml.Node, key: str, owner: type, kind: FieldKind, sensitive: bool
    ) -> Scalar | Const | None:
        if is_scalar(node):
            entries: dict[str, tuple[yaml.Node, yaml.Node]] = {"path": (node, node)}
        elif is_map(node):
            entries = {name: (kn, vn) for name, kn, vn in items(node)}
        else:
            self.problem(
                node, key, "expected a source path or a mapping of value options", "see docs/mapping.md"
            )
            return None
        for name, (key_node, _) in entries.items():
            if name not in VALUE_KEYS:
                self.unknown_key(key_node, f"{key}.{name}", name, VALUE_KEYS)
        settings = self.settings
        sources = [n for n in ("path", "paths", "const") if n in entries]
        if len(sources) > 1:
            self.problem(node, key, f"give only one of path, paths, const (found {', '.join(sources)})")
            return None
        if "const" in entries or (not sources and "default" in entries):
            which = "const" if "const" in entries else "default"
            value_node = entries[which][1]
            value = self.target(value_node, f"{key}.{which}", kind, typed(value_node))
            if value is _BAD:
                return None
            if kind.many and not isinstance(value, tuple):
                value = (value,)
            return Const(key, line_of(node), value)
        if not sources:
            self.problem(node, key, "no source: give path:, paths: or const:", "add path: <column or path>")
            return None
        accessors: list[Accessor] = []
        if "path" in entries:
            acc = self.accessor(entries["path"][1], f"{key}.path")
            if acc is None:
                return None
            accessors.append(acc)
        else:
            paths_node = entries["paths"][1]
            if not is_seq(paths_node) or not paths_node.value:
                self.problem(paths_node, f"{key}.paths", "paths: must be a non-empty list of source paths")
                return None
            for i, item in enumerate(paths_node.value):
                acc = self.accessor(item, f"{key}.paths[{i}]")
                if acc is None:
                    return None
                accessors.append(acc)

        def flag(name: str, default: bool) -> bool:
            if name not in entries:
                return default
            value = typed(entries[name][1])
            if not isinstance(value, bool):
                self.problem(entries[name][1], f"{key}.{name}", "expected true or false")
                return default
            return value

        trim = flag("trim", settings.trim)
        ignore_case = flag("ignore_case", settings.ignore_case)
        upper = flag("upper", False)
        lower = flag("lower", False)
        nulls = settings.nulls
        if "null_values" in entries:
            nulls = nulls | {
                v.lower() for v in self.string_list(entries["null_values"][1], f"{key}.null_values")
            }
        join = self.string(entries["join"][1], f"{key}.join") if "join" in entries else " "
        split = None
        if "split" in entries:
            split = self.string(entries["split"][1], f"{key}.split")
            if not kind.many:
                self.problem(entries["split"][0], f"{key}.split", f"{kind.name} holds one value, not a list")
        unmapped = "error"
        if "unmapped" in entries:
            unmapped = text(entries["unmapped"][1])
            if unmapped not in UNMAPPED:
                self.problem(
                    entries["unmapped"][1], f"{key}.unmapped", "unknown choice", f"use {' | '.join(UNMAPPED)}"
                )
        if kind.kind not in ("date", "datetime", "date_or_datetime"):
            for name in ("formats", "timezone"):
                if name in entries:
                    self.problem(entries[name][0], f"{key}.{name}", f"{kind.name} is not a date")
        if kind.kind != "bool":
            for name in ("true", "false"):
                if name in entries:
                    self.problem(entries[name][0], f"{key}.{name}", f"{kind.name} is not a yes/no field")
        if kind.kind != "coded" and "system" in entries:
            self.problem(entries["system"][0], f"{key}.system", f"{kind.name} is not a coded field")

        convert, back, native = self.converter(entries, key, kind)
        system = None
        if kind.kind == "coded" and "system" in entries:
            system = text(entries["system"][1])
        mapping = inverse = None
        if "map" in entries:
            mapping, inverse = self.value_map(entries["map"][1], f"{key}.map", kind, ignore_case, system)
        elif kind.kind == "coded" and system:
            convert = _coded_code(system)
            back = _coded_back
        if kind.kind == "coded" and mapping is None and not system:
            sensitive = True  # coded from free text: the text may be clinical narrative
        for acc in accessors:
            self.note_path(acc, sensitive)
        special = None
        if "special" in entries:
            special = self.specials(entries["special"][1], f"{key}.special")
        default = None
        if "default" in entries:
            default = self.target(entries["default"][1], f"{key}.default", kind, typed(entries["default"][1]))
            default = None if default is _BAD else default
        scalar = Scalar(
            label=key,
            line=line_of(node),
            kind=kind.kind,
            many=kind.many,
            accessors=tuple(accessors),
            convert=convert,
            format_back=back,
            join=join or " ",
            trim=trim,
            nulls=nulls,
            special=special,
            upper=upper,
            lower=lower,
            split=split,
            mapping=mapping,
            inverse=inverse,
            ignore_case=ignore_case,
            unmapped=unmapped,
            check=checks.for_field(owner, kind.name),
            native=native and self.fmt in ("json", "ndjson") and mapping is None,
            default=default,
        )
        return scalar

    def converter(
        self, entries: dict[str, tuple[yaml.Node, yaml.Node]], key: str, kind: FieldKind
    ) -> tuple[Callable[[str, Context, Scalar], Any], Callable[[Any], Any], bool]:
        json_like = self.fmt in ("json", "ndjson")
        if kind.kind in ("date", "datetime", "date_or_datetime"):
            formats = self.settings.date_formats
            if "formats" in entries:
                formats = self.date_formats(entries["formats"][1], f"{key}.formats") or formats
            zone = self.settings.zone
            if "timezone" in entries:
                zone = self.zone(entries["timezone"][1], f"{key}.timezone") or zone
            parser = DateParser(formats, zone)
            method = {"date": "parse_date", "datetime": "parse_datetime", "date_or_datetime": "parse"}[
                kind.kind
            ]
            return date_converter(parser, method), parser.format, False
        if kind.kind == "bool":
            true_values = self.settings.true_values
            false_values = self.settings.false_values
            custom = "true" in entries or "false" in entries
            if "true" in entries:
                true_values = tuple(self.string_list(entries["true"][1], f"{key}.true"))
            if "false" in entries:
                false_values = tuple(self.string_list(entries["false"][1], f"{key}.false"))
            tokens = {v.lower(): True for v in true_values} | {v.lower(): False for v in false_values}
            shown = "/".join([*true_values[:2], *false_values[:2]])

            def convert_bool(value: str, ctx: Context, node: Scalar) -> Any:
                result = tokens.get(value.lower())
                if result is None:
                    return node.fail(
                        ctx,
                        "value",
                        "mapping.boolean.unknown",
                        "the value",
                        f"is not a yes/no value ({shown} …); correct it or add it to true:/false:"
                        f"{node.spec_line()}",
                    )
                return result

            def back_bool(value: Any) -> Any:
                if json_like and not custom:
                    return bool(value)
                return true_values[0] if value else false_values[0]

            return convert_bool, back_bool, not custom
        if kind.kind == "int":

            def convert_int(value: str, ctx: Context, node: Scalar) -> Any:
                try:
                    return int(value)
                except ValueError:
                    return node.fail(
                        ctx,
                        "value",
                        "mapping.integer.invalid",
                        "the value",
                        "is not a whole number; correct it",
                    )

            return convert_int, (lambda v: v if json_like else str(v)), True
        if kind.kind == "enum":
            members = {m.value.lower(): m for m in kind.target}
            allowed = ", ".join(m.value for m in kind.target)

            def convert_enum(value: str, ctx: Context, node: Scalar) -> Any:
                member = members.get(value.lower())
                if member is None:
                    return node.fail(
                        ctx,
                        "code-invalid",
                        "mapping.value-map.unknown",
                        "the value",
                        f"is not one of {allowed}; add a map:{node.spec_line()} from the source's values",
                    )
                return member

            return convert_enum, (lambda v: v.value), False
        if kind.kind == "coded":
            return _coded_text, _coded_back, False
        return _identity, _identity, False

    def value_map(
        self, node: yaml.Node, key: str, kind: FieldKind, ignore_case: bool, system: str | None
    ) -> tuple[dict[str, Any], dict[Any, str]]:
        mapping: dict[str, Any] = {}
        inverse: dict[Any, str] = {}
        if not is_map(node) or not node.value:
            self.problem(node, key, "map: must be a mapping from source values to model values")
            return mapping, inverse
        for source, key_node, value_node in items(node):
            lookup = source.lower() if ignore_case else source
            if lookup in mapping:
                self.problem(key_node, f"{key}.{source}", "this source value is mapped twice", "keep one")
                continue
            if kind.kind == "coded":
                target = self.coded_target(value_node, f"{key}.{source}", system)
            elif is_null(value_node):
                target = None
            else:
                target = self.target(value_node, f"{key}.{source}", kind, typed(value_node))
            if target is _BAD:
                continue
            mapping[lookup] = target
            if target is not None:
                inverse.setdefault(_inverse_key(target), source)
        return mapping, inverse

    def coded_target(self, node: yaml.Node, key: str, system: str | None) -> Any:
        if is_scalar(node):
            code = text(node).strip()
            if not code:
                return None
            sys = system or codes.SNOMED
            return model.Coded(system=sys, code=code, display=KNOWN_DISPLAYS.get((sys, code)))
        if is_map(node):
            parts = {name: text(vn) for name, _, vn in items(node)}
            unknown = set(parts) - {"system", "code", "display", "text"}
            for name in unknown:
                self.problem(node, f"{key}.{name}", "unknown key", "use system, code, display, text")
            sys = parts.get("system") or system or (codes.SNOMED if parts.get("code") else None)
            code = parts.get("code")
            display = parts.get("display") or (KNOWN_DISPLAYS.get((sys, code)) if sys and code else None)
            if not code and not parts.get("text"):
                self.problem(node, key, "a coded target needs code: or text:")
                return _BAD
            return model.Coded(system=sys, code=code, display=display, text=parts.get("text"))
        self.problem(node, key, "a coded target is a code or a mapping {system, code, display}")
        return _BAD

    def target(self, node: yaml.Node, key: str, kind: FieldKind, value: Any) -> Any:
        """A model value written in the spec (map target, const, default), converted to the field's type."""
        raw = text(node) if is_scalar(node) else None
        try:
            if kind.many and is_seq(node):
                one = FieldKind(kind.name, kind.kind, False, kind.target)
                return tuple(self.target(n, key, one, typed(n)) for n in node.value)
            if not is_scalar(node):
                raise ValueError("expected a single value")
            if kind.kind == "bool":
                if isinstance(value, bool):
                    return value
                lowered = raw.lower() if raw else ""
                if lowered in {v.lower() for v in self.settings.true_values}:
                    return True
                if lowered in {v.lower() for v in self.settings.false_values}:
                    return False
                raise ValueError("expected true or false")
            if kind.kind == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("expected a whole number")
                return value
            if kind.kind == "enum":
                allowed = {m.value: m for m in kind.target}
                if raw not in allowed:
                    raise ValueError(f"expected one of {', '.join(allowed)}")
                return allowed[raw]
            if kind.kind in ("date", "date_or_datetime", "datetime"):
                if isinstance(value, datetime | date):
                    return value
                return DateParser([DateFormat("iso")], self.settings.zone).parse(raw or "")
            if kind.kind == "coded":
                return self.coded_target(node, key, None)
            return raw
        except (ValueError, TypeError) as exc:
            self.problem(node, key, f"not a valid value for {kind.name}: {exc}", "")
            return _BAD

    def specials(self, node: yaml.Node, key: str) -> dict[str, Flagged] | None:
        if not is_map(node):
            self.problem(
                node,
                key,
                "special: maps a source value to the fields it sets",
                "e.g. special: {Indefinite: {review_indefinite: true}}",
            )
            return None
        out = {}
        for source, _, value_node in items(node):
            if not is_map(value_node):
                self.problem(value_node, f"{key}.{source}", "expected a mapping of fields to set")
                continue
            sets = {name: (vn, typed(vn)) for name, _, vn in items(value_node)}
            out[source.lower()] = Flagged(sets, source)
        return out

    # -- small readers -----------------------------------------------------------------------
    def string(self, node: yaml.Node, key: str) -> str | None:
        if not is_scalar(node):
            self.problem(node, key, "expected a text value")
            return None
        return text(node)

    def string_list(self, node: yaml.Node, key: str) -> list[str]:
        if is_scalar(node):
            return [text(node)]
        if is_seq(node) and all(is_scalar(n) for n in node.value):
            return [text(n) for n in node.value]
        self.problem(node, key, "expected a list of text values")
        return []

    def date_formats(self, node: yaml.Node, key: str) -> list[DateFormat]:
        out = []
        values = node.value if is_seq(node) else [node]
        for item in values:
            if not is_scalar(item):
                self.problem(item, key, "expected a date format text")
                continue
            try:
                out.append(DateFormat(text(item)))
            except FormatError as exc:
                self.problem(item, key, str(exc))
        return out

    def zone(self, node: yaml.Node, key: str) -> tzinfo | None:
        try:
            return ZoneInfo(text(node))
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(node, key, "unknown time zone", "use an IANA name such as Europe/London")
            return None


class _Bad:
    pass


_BAD: Any = _Bad()
_DROPPABLE = {model.RelatedParty, model.TreatmentRecommendation, model.Endorsement}


def _is_coded_object(node: yaml.MappingNode) -> bool:
    names = {name for name, _, _ in items(node)}
    return bool(names & {"code", "display", "text"}) and not names & {"path", "paths", "const", "map"}


def _sensitive_names(owner: type) -> frozenset[str]:
    return SENSITIVE.get(owner, frozenset())


_XPATH_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
_XPATH_PREFIX = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]*):(?!:)")


def _xpath_prefixes(expression: str) -> list[str]:
    """Namespace prefixes an XPath uses (outside string literals; axes such as child:: excluded)."""
    return _XPATH_PREFIX.findall(_XPATH_STRINGS.sub("", expression))


def _known_display(spec: ObjectSpec, kwargs: dict[str, Any], ctx: Context) -> None:
    """A coded value read as system + code gets the display we know for it, when the source has none."""
    if not kwargs.get("display") and kwargs.get("code"):
        display = KNOWN_DISPLAYS.get((kwargs.get("system"), kwargs["code"]))
        if display:
            kwargs["display"] = display


def _coded_text(value: str, ctx: Context, node: Scalar) -> Any:
    return model.Coded(text=value)


def _coded_code(system: str) -> Callable[[str, Context, Scalar], Any]:
    def convert(value: str, ctx: Context, node: Scalar) -> Any:
        return model.Coded(system=system, code=value, display=KNOWN_DISPLAYS.get((system, value)))

    return convert


def _coded_back(value: Any) -> Any:
    return value.code or value.text


def _inverse_key(value: Any) -> Any:
    if isinstance(value, model.Coded):
        return (value.system, value.code) if value.code else ("text", value.text)
    if isinstance(value, StrEnum):
        return value
    return value


def default_settings() -> Settings:
    return Settings(date_formats=[DateFormat("iso")])
