"""Reading a spec: YAML nodes in, a compiled ``MappingSpec`` out, or every located problem at once."""

from __future__ import annotations

import codecs
import difflib
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from fhir_dnacpr import model
from fhir_dnacpr.mapping.catalogue import SECTION_HIDDEN, FieldKind
from fhir_dnacpr.mapping.compiler import (
    DEFAULT_KEYS,
    REDACT_KEYS,
    SOURCE_KEYS,
    TOP_KEYS,
    Compiler,
    Settings,
    default_settings,
)
from fhir_dnacpr.mapping.fields import Scalar
from fhir_dnacpr.mapping.spec import SECTIONS, MappingSpec, Section, SourceOptions
from fhir_dnacpr.mapping.yamlnodes import (
    SpecError,
    SpecProblem,
    compose,
    is_map,
    is_scalar,
    is_seq,
    items,
    line_of,
    text,
    typed,
)
from fhir_dnacpr.sources.dispatch import FORMATS
from fhir_dnacpr.sources.xml import RecordPath


def load_spec(path: str | Path, *, today: date | None = None) -> MappingSpec:
    """Read and compile a spec; raises ``SpecError`` listing every problem with its line."""
    spec_path = Path(path)
    try:
        content = spec_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            [SpecProblem(None, "(file)", f"cannot read the spec ({exc.strerror})")], str(path)
        ) from None
    except UnicodeDecodeError:
        raise SpecError(
            [SpecProblem(None, "(file)", "the spec is not UTF-8", "save it as UTF-8")], str(path)
        ) from None
    return spec_from_text(content, str(path), today)


def spec_from_text(content: str, name: str = "<spec>", today: date | None = None) -> MappingSpec:
    root = compose(content, name)
    problems: list[SpecProblem] = []

    def problem(node: yaml.Node | None, key: str, what: str, fix: str = "") -> None:
        problems.append(SpecProblem(line_of(node), key, what, fix))

    if not is_map(root):
        raise SpecError([SpecProblem(line_of(root), "(top)", "the spec must be a YAML mapping")], name)
    entries = {k: (kn, vn) for k, kn, vn in items(root)}
    for key, (key_node, _) in entries.items():
        if key not in TOP_KEYS:
            problems.extend(_last_problem(key_node, key, TOP_KEYS))
    if "version" in entries and text(entries["version"][1]) not in ("1",):
        problem(entries["version"][1], "version", "unsupported spec version", "use version: 1")

    source = _source_options(entries, problem)
    settings, setting_problems = _settings(entries, problem)
    problems.extend(setting_problems)
    compiler = Compiler(source.format if source else "csv", source.namespaces if source else {}, settings)

    source_system = ""
    if "source_system" not in entries:
        problem(root, "source_system", "missing", "add source_system: <URI of the exporting system>")
    else:
        source_system = text(entries["source_system"][1]).strip()
        if ":" not in source_system or " " in source_system:
            problem(
                entries["source_system"][1],
                "source_system",
                "not a URI",
                "write e.g. https://trust.example/epaccs",
            )
    id_key_env = text(entries["id_key_env"][1]) if "id_key_env" in entries else None

    record_id = None
    if "record_id" not in entries:
        problem(root, "record_id", "missing", "add record_id: <the column or path of the record's key>")
    else:
        compiled = compiler.scalar(
            entries["record_id"][1], "record_id", model.SourceRef, FieldKind("record_id", "str"), False
        )
        record_id = compiled if isinstance(compiled, Scalar) else None
        if compiled is not None and record_id is None:
            problem(entries["record_id"][1], "record_id", "must be read from the record, not a constant")
    last_updated = None
    if "last_updated" in entries:
        compiled = compiler.scalar(
            entries["last_updated"][1],
            "last_updated",
            model.SourceRef,
            FieldKind("last_updated", "datetime"),
            False,
        )
        last_updated = compiled if isinstance(compiled, Scalar) else None

    patient = None
    if "patient" not in entries:
        problem(root, "patient", "missing", "add patient: with at least nhs_number:")
    else:
        patient = compiler.object_spec(entries["patient"][1], "patient", model.Person)

    wanted = _yields(entries, problem)
    sections: list[Section] = []
    for name in SECTIONS:
        if name not in entries:
            if name in wanted:
                problem(entries["yields"][1], "yields", f"yields {name} but there is no {name}: section")
            continue
        if wanted and name not in wanted:
            problem(
                entries[name][0],
                name,
                f"a {name}: section but yields: does not include it",
                f"add {name} to yields:",
            )
            continue
        node = entries[name][1]
        present_if = None
        if is_map(node):
            for key, _kn, value_node in items(node):
                if key == "present_if":
                    present_if = compiler.accessor(value_node, f"{name}.present_if")
        cls = model.CprDecision if name == "decision" else model.AdvanceCarePlan
        spec = compiler.object_spec(node, name, cls, hidden=SECTION_HIDDEN, extra=frozenset({"present_if"}))
        if spec is not None:
            sections.append(Section(name, spec, present_if))
    if not sections and "decision" not in entries and "plan" not in entries:
        problem(
            root, "decision/plan", "the spec maps neither a decision nor a plan", "add decision: and/or plan:"
        )

    keep: set[str] = set()
    mask: set[str] = set()
    if "redact" in entries:
        node = entries["redact"][1]
        if not is_map(node):
            problem(node, "redact", "expected keep: and/or mask: lists")
        else:
            for key, key_node, value_node in items(node):
                if key not in REDACT_KEYS:
                    problem(key_node, f"redact.{key}", "unknown key", "use keep: or mask:")
                    continue
                values = compiler.string_list(value_node, f"redact.{key}")
                (keep if key == "keep" else mask).update(values)

    problems.extend(compiler.problems)
    if problems or source is None or record_id is None or patient is None:
        problems.sort(key=lambda p: p.line or 0)
        raise SpecError(problems or [SpecProblem(None, "(spec)", "the spec is incomplete")], name)
    safe = set(compiler.paths.safe) - compiler.paths.masked
    safe.add(record_id.accessors[0].text)
    if last_updated is not None:
        safe.add(last_updated.accessors[0].text)
    return MappingSpec(
        text=content,
        name=name,
        source=source,
        source_system=source_system,
        id_key_env=id_key_env,
        record_id=record_id,
        last_updated=last_updated,
        patient=patient,
        sections=sections,
        safe_paths=safe,
        keep=keep,
        mask=mask,
        today=today,
    )


def _last_problem(node: yaml.Node, key: str, allowed: set[str]) -> list[SpecProblem]:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(sorted(allowed))}"
    return [SpecProblem(line_of(node), key, f"unknown key {key!r}", fix)]


def _source_options(entries: dict[str, tuple[yaml.Node, yaml.Node]], problem: Any) -> SourceOptions | None:
    if "source" not in entries:
        problem(None, "source", "missing", "add source: {format: csv|xml|json|ndjson}")
        return None
    node = entries["source"][1]
    if not is_map(node):
        problem(node, "source", "expected a mapping", "e.g. source: {format: csv, encoding: auto}")
        return None
    values = {k: (kn, vn) for k, kn, vn in items(node)}
    for key, (key_node, _) in values.items():
        if key not in SOURCE_KEYS:
            problems = _last_problem(key_node, key, SOURCE_KEYS)[0]
            problem(key_node, f"source.{key}", problems.problem, problems.fix)
    fmt = text(values["format"][1]) if "format" in values else ""
    if fmt not in FORMATS:
        problem(
            values.get("format", (node, node))[1],
            "source.format",
            "missing or unknown format",
            f"use one of: {', '.join(FORMATS)}",
        )
        return None
    options = SourceOptions(format=fmt)
    if "encoding" in values:
        encoding = text(values["encoding"][1])
        if encoding != "auto":
            try:
                codecs.lookup(encoding)
            except LookupError:
                problem(
                    values["encoding"][1],
                    "source.encoding",
                    "unknown encoding",
                    "use auto, utf-8, utf-8-sig or cp1252",
                )
        options.encoding = encoding
    if "delimiter" in values:
        delimiter = text(values["delimiter"][1]).replace("\\t", "\t")
        if len(delimiter) != 1:
            problem(values["delimiter"][1], "source.delimiter", "must be one character", 'e.g. ";" or "\\t"')
        options.delimiter = delimiter
    if "quotechar" in values:
        options.quotechar = text(values["quotechar"][1])
    if "namespaces" in values:
        ns_node = values["namespaces"][1]
        if not is_map(ns_node):
            problem(ns_node, "source.namespaces", "expected a mapping of prefix: URI")
        else:
            options.namespaces = {k: text(v) for k, _, v in items(ns_node)}
    if "record_path" in values:
        options.record_path = text(values["record_path"][1])
        try:
            RecordPath(options.record_path, options.namespaces)
        except ValueError as exc:
            problem(
                values["record_path"][1], "source.record_path", str(exc), "declare it in source.namespaces"
            )
    elif fmt == "xml":
        problem(
            node,
            "source.record_path",
            "an XML source needs record_path",
            "e.g. record_path: /ex:Export/ex:Form",
        )
    if "array_path" in values:
        options.array_path = text(values["array_path"][1])
    for key, allowed in (
        ("delimiter", "csv"),
        ("quotechar", "csv"),
        ("record_path", "xml"),
        ("namespaces", "xml"),
        ("array_path", "json"),
    ):
        if key in values and fmt != allowed:
            problem(values[key][0], f"source.{key}", f"only used for {allowed} sources")
    return options


def _settings(
    entries: dict[str, tuple[yaml.Node, yaml.Node]], problem: Any
) -> tuple[Settings, list[SpecProblem]]:
    settings = default_settings()
    if "defaults" not in entries:
        return settings, []
    node = entries["defaults"][1]
    if not is_map(node):
        problem(node, "defaults", "expected a mapping")
        return settings, []
    helper = Compiler("csv", {}, settings)
    for key, key_node, value_node in items(node):
        here = f"defaults.{key}"
        if key not in DEFAULT_KEYS:
            problem(key_node, here, "unknown key", f"use one of: {', '.join(sorted(DEFAULT_KEYS))}")
        elif key == "date_formats":
            formats = helper.date_formats(value_node, here)
            if formats:
                settings.date_formats = formats
        elif key == "timezone":
            try:
                settings.zone = ZoneInfo(text(value_node))
            except (ZoneInfoNotFoundError, ValueError):
                problem(value_node, here, "unknown time zone", "use an IANA name such as Europe/London")
        elif key == "null_values":
            settings.nulls = frozenset(v.lower() for v in helper.string_list(value_node, here))
        elif key == "true_values":
            settings.true_values = tuple(helper.string_list(value_node, here))
        elif key == "false_values":
            settings.false_values = tuple(helper.string_list(value_node, here))
        elif key in ("ignore_case", "trim"):
            value = typed(value_node)
            if not isinstance(value, bool):
                problem(value_node, here, "expected true or false")
            else:
                setattr(settings, key, value)
    return settings, helper.problems


def _yields(entries: dict[str, tuple[yaml.Node, yaml.Node]], problem: Any) -> set[str]:
    if "yields" not in entries:
        return set()
    node = entries["yields"][1]
    values = [text(n) for n in node.value] if is_seq(node) else [text(node)] if is_scalar(node) else []
    out = set()
    for value in values:
        if value not in SECTIONS:
            problem(node, "yields", f"unknown {value!r}", "use decision, plan or [decision, plan]")
        else:
            out.add(value)
    return out
