"""Read a YAML spec as nodes so every problem can name its line.

Scalars are kept as written (``Y`` stays ``"Y"``, ``01`` stays ``"01"``): YAML 1.1 would otherwise turn
``Yes``/``No`` map keys into booleans and strip leading zeros from codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One thing wrong with a spec: where (line, key), what, and what to do about it."""

    line: int | None
    key: str
    problem: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "spec"
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}: {self.key}: {self.problem}{fix}"


@dataclass
class SpecError(Exception):
    """The spec cannot be used; ``problems`` lists every located problem found (not just the first)."""

    problems: list[SpecProblem]
    file: str | None = None
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.file}: " if self.file else ""
        count = len(self.problems)
        body = "\n".join(f"  {p}" for p in self.problems)
        return f"{head}{count} problem(s) in the mapping spec:\n{body}"


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def compose(text: str, name: str) -> yaml.Node | None:
    """The document's root node; a YAML syntax error becomes a located ``SpecError``."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecError(
            [
                SpecProblem(
                    line,
                    "(yaml)",
                    f"not valid YAML: {exc.problem or exc.context}",
                    "fix the indentation or quoting (values starting with % or : must be quoted)",
                )
            ],
            name,
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecProblem(None, "(yaml)", f"not valid YAML: {exc}")], name) from None


def is_map(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.MappingNode)


def is_seq(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.SequenceNode)


def is_scalar(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.ScalarNode)


def items(node: yaml.MappingNode) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """(key text, key node, value node) for each entry, in order."""
    return [(str(k.value) if is_scalar(k) else "?", k, v) for k, v in node.value]


def text(node: yaml.Node) -> str:
    """A scalar exactly as written; ``null``/``~``/empty give ""."""
    if node.tag == "tag:yaml.org,2002:null":
        return ""
    return str(node.value)


def typed(node: yaml.ScalarNode) -> object:
    """A scalar with YAML's usual typing (true/false, numbers, null)."""
    return _CONSTRUCTOR.construct_object(node, deep=True)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def is_null(node: yaml.Node) -> bool:
    return is_scalar(node) and node.tag == "tag:yaml.org,2002:null"
