"""A FHIRPath subset compiled to Python closures: the shapes invariants use, at native speed.

fhirpathpy interprets its parse tree on every call (1–3 ms for a typical profile invariant). Here the
same parse tree is turned once into nested closures over plain FHIR JSON values, so evaluating an
invariant costs microseconds. The subset covers what the R4 core, UK Core and our profiles use:
paths (choice-aware: ``value`` finds ``valueString``), ``$this``, literals, the boolean operators
with FHIRPath's three-valued logic, equality and comparison, arithmetic, union, membership, and the
common functions (exists/empty/count/where/all/select/not/hasValue/matches/substring/…), plus the
FHIR host functions (resolve, memberOf, conformsTo, htmlChecks, extension, getValue).

Anything outside the subset raises ``Unsupported`` at compile time, and anything whose meaning
depends on type information a JSON value does not carry (dates of different precision, ``is`` on a
data type, …) raises ``Fallback`` at run time: the caller then evaluates with fhirpathpy, so
compiling never changes a verdict it cannot get right.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_dnacpr.definitions.elements import type_index


class Unsupported(Exception):
    """The expression uses FHIRPath this compiler does not handle (evaluate with fhirpathpy)."""


class Fallback(Exception):
    """This evaluation needs type information the compiled form lacks (evaluate with fhirpathpy)."""


class Env:
    """What an evaluation sees besides its focus: %resource, %rootResource, %context, host, $this."""

    __slots__ = ("context", "context_type", "host", "resource", "root_resource", "this")

    def __init__(
        self, resource: Any, root_resource: Any, context: Any, host: Any, context_type: str | None = None
    ) -> None:
        self.resource = resource
        self.root_resource = root_resource
        self.context = context
        self.host = host
        self.this = context
        self.context_type = context_type  # the FHIR type of %context, which JSON does not carry


class Prim:
    """A primitive that carries ``_name`` data (id/extension) next to, or instead of, its value."""

    __slots__ = ("extra", "value")

    def __init__(self, value: Any, extra: Any) -> None:
        self.value = value
        self.extra = extra if isinstance(extra, dict) else {}


Compiled = Callable[[list, Env], list]

_CONSTANTS = {
    "ucum": "http://unitsofmeasure.org",
    "sct": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
}
_DATEISH = re.compile(r"\d{4}(-\d\d(-\d\d(T.*)?)?)?\Z|T?\d\d:\d\d")
_ESCAPES = {"\\'": "'", '\\"': '"', "\\`": "`", "\\\\": "\\", "\\/": "/", "\\f": "\f", "\\n": "\n"}
_ESCAPES |= {"\\r": "\r", "\\t": "\t"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_REGEX_CACHE: dict[str, re.Pattern] = {}


def _choice_names() -> tuple[frozenset[str], frozenset[str]]:
    index = type_index()
    names: set[str] = set()
    suffixes: set[str] = set()
    for children in index._children.values():
        for info in children.values():
            if info.choice:
                names.add(info.name)
                suffixes.update(code[:1].upper() + code[1:] for code in info.types)
    return frozenset(names), frozenset(suffixes)


CHOICE_NAMES, TYPE_SUFFIXES = _choice_names()


# -- values ---------------------------------------------------------------------------------------


def _value(item: Any) -> Any:
    if type(item) is Prim:
        if item.value is None:
            raise Fallback("primitive without a value")
        return item.value
    return item


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> int | Decimal:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _equal(left: Any, right: Any) -> bool:
    left, right = _value(left), _value(right)
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, str) and isinstance(right, str):
        if len(left) != len(right) and _DATEISH.match(left) and _DATEISH.match(right):
            raise Fallback("dates of different precision")
        return left == right
    if _is_number(left) and _is_number(right):
        return _number(left) == _number(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left == right
    if type(left) is not type(right):
        return False
    return left == right


def _compare(left: list, right: list) -> int | None:
    if not left or not right:
        return None
    if len(left) != 1 or len(right) != 1:
        raise Fallback("comparison of collections")
    a, b = _value(left[0]), _value(right[0])
    if isinstance(a, bool) or isinstance(b, bool):
        raise Fallback("comparison of booleans")
    if isinstance(a, str) and isinstance(b, str):
        if len(a) != len(b) and _DATEISH.match(a) and _DATEISH.match(b):
            raise Fallback("dates of different precision")
        return (a > b) - (a < b)
    if _is_number(a) and _is_number(b):
        a, b = _number(a), _number(b)
        return (a > b) - (a < b)
    if isinstance(a, str | int | float | Decimal) and isinstance(b, str | int | float | Decimal):
        return None  # a string against a number: not comparable, so empty (as the HL7 engine does)
    raise Fallback("comparison of these types")


def _bool3(collection: list) -> bool | None:
    """FHIRPath singleton evaluation to Boolean: empty → None; one Boolean → it; one other → True."""
    if not collection:
        return None
    if len(collection) == 1:
        value = collection[0]
        if type(value) is Prim:
            value = value.value
        if value is True or value is False:
            return value
        return True
    raise Fallback("Boolean expected, found a collection")


def _string(collection: list) -> str | None:
    if not collection:
        return None
    if len(collection) != 1:
        raise Fallback("string expected, found a collection")
    value = _value(collection[0])
    if not isinstance(value, str):
        raise Fallback("string expected")
    return value


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _contains(collection: list, item: Any) -> bool:
    return any(_equal(existing, item) for existing in collection)


def _distinct(collection: list) -> list:
    out: list = []
    for item in collection:
        if not _contains(out, item):
            out.append(item)
    return out


# -- navigation -----------------------------------------------------------------------------------


def _children_named(item: Any, name: str, out: list) -> None:
    if type(item) is Prim:
        item = item.extra
    if not isinstance(item, dict):
        return
    value = item.get(name)
    extra = item.get("_" + name)
    if value is None and extra is None and name in CHOICE_NAMES:
        for key in item:
            if key[0] != "_" and key.startswith(name) and key[len(name) :] in TYPE_SUFFIXES:
                value = item[key]
                extra = item.get("_" + key)
                break
        else:
            for key in item:
                if key.startswith("_" + name) and key[len(name) + 1 :] in TYPE_SUFFIXES:
                    extra = item[key]
                    break
    if extra is None:
        if value is None:
            return
        if type(value) is not list:
            out.append(value)
        elif None in value:
            out.extend([v for v in value if v is not None])
        else:
            out.extend(value)
        return
    values = value if isinstance(value, list) else [value]
    extras = extra if isinstance(extra, list) else [extra]
    for i in range(max(len(values) if value is not None else 0, len(extras))):
        v = values[i] if value is not None and i < len(values) else None
        e = extras[i] if i < len(extras) else None
        if e is None:
            if v is not None:
                out.append(v)
        elif isinstance(v, dict):
            out.append(v)
        else:
            out.append(Prim(v, e))


def _member(name: str) -> Compiled:
    if name[:1].isupper():

        def of_type_name(focus: list, env: Env) -> list:
            out = [x for x in focus if isinstance(x, dict) and x.get("resourceType") == name]
            if out or not focus:
                return out
            if any(not (isinstance(x, dict) and "resourceType" in x) for x in focus):
                raise Fallback("type name applied to a data type")
            return out

        return of_type_name

    underscored = "_" + name
    choice = name in CHOICE_NAMES

    def member(focus: list, env: Env) -> list:
        out: list = []
        for item in focus:
            if type(item) is dict and underscored not in item:
                value = item.get(name)
                if value is not None:
                    if type(value) is not list:
                        out.append(value)
                    elif None in value:
                        out.extend([v for v in value if v is not None])
                    else:
                        out.extend(value)
                    continue
                if not choice:
                    continue
            _children_named(item, name, out)
        return out

    member.member_name = name  # type: ignore[attr-defined]  (lets a following where() fuse with it)
    return member


def _all_children(item: Any) -> list:
    if type(item) is Prim:
        item = item.extra
    out: list = []
    if isinstance(item, dict):
        for key in item:
            if key == "resourceType" or key.startswith("_"):
                continue
            _children_named(item, key, out)
    return out


# -- compiler -------------------------------------------------------------------------------------


def compile_expression(tree: dict) -> Compiled:
    """Compile a fhirpathpy parse tree; raises ``Unsupported`` for FHIRPath outside the subset."""
    children = tree.get("children") or []
    if len(children) != 1:
        raise Unsupported("empty expression")
    return _compile(children[0])


def _compile(node: dict) -> Compiled:
    kind = node.get("type")
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise Unsupported(f"{kind} is not compiled")
    return handler(node)


def _term_expression(node: dict) -> Compiled:
    return _compile(node["children"][0])


def _invocation_term(node: dict) -> Compiled:
    return _invocation(node["children"][0], None)


def _invocation_expression(node: dict) -> Compiled:
    """``a.b.c``: the steps of a path run in one loop (no closure nesting per step)."""
    source = _compile(node["children"][0])
    invocation = node["children"][1]
    if invocation.get("type") == "ThisInvocation":
        raise Unsupported("$this after a path")
    step = _invocation(invocation, None)
    steps = [*getattr(source, "steps", (source,)), step]
    if len(steps) >= 2 and hasattr(steps[-1], "single") and hasattr(steps[-2], "member_name"):
        steps[-2:] = [_member_where(steps[-2], steps[-1])]

    def chain(focus: list, env: Env) -> list:
        for run_step in steps:
            focus = run_step(focus, env)
        return focus

    chain.steps = steps  # type: ignore[attr-defined]
    return chain


def _member_where(member: Compiled, where: Compiled) -> Compiled:
    """``name.where(key = 'literal')`` in one loop: the commonest invariant shape
    (``extension.where(url = '…')``). Anything unusual goes through the two general steps."""
    name = member.member_name  # type: ignore[attr-defined]
    key, text = where.single  # type: ignore[attr-defined]
    underscored = "_" + name
    dateish = bool(_DATEISH.match(text))
    if name in CHOICE_NAMES or name[:1].isupper():
        return lambda focus, env: where(member(focus, env), env)

    def member_where(focus: list, env: Env) -> list:
        out: list = []
        for item in focus:
            values = item.get(name) if type(item) is dict and underscored not in item else ...
            if values is None:
                continue
            if type(values) is list:
                for x in values:
                    found = x.get(key) if type(x) is dict else None
                    if type(found) is str and (found == text or not dateish):
                        if found == text:
                            out.append(x)
                    else:
                        out.extend(where([x], env))
                continue
            out.extend(where(member([item], env), env))
        return out

    return member_where


def _invocation(node: dict, source: Compiled | None) -> Compiled:
    kind = node.get("type")
    if kind == "MemberInvocation":
        step = _member(_identifier(node["children"][0]))
    elif kind == "ThisInvocation":

        def step(focus: list, env: Env) -> list:
            return [] if env.this is None else [env.this]

        if source is None:
            return step
        raise Unsupported("$this after a path")
    elif kind == "FunctionInvocation":
        functn = node["children"][0]
        name = _identifier(functn["children"][0])
        params = functn["children"][1]["children"] if len(functn["children"]) > 1 else []
        step = _function(name, params)
    else:
        raise Unsupported(f"{kind} invocation")
    if source is None:
        return step

    def chained(focus: list, env: Env) -> list:
        return step(source(focus, env), env)

    return chained


def _identifier(node: dict) -> str:
    if node.get("type") not in ("Identifier", "QualifiedIdentifier", "TypeSpecifier"):
        raise Unsupported(f"identifier expected, found {node.get('type')}")
    if node.get("type") != "Identifier":
        parts = []
        _collect_identifiers(node, parts)
        return ".".join(parts)
    return node["terminalNodeText"][0].strip("`")


def _collect_identifiers(node: dict, parts: list[str]) -> None:
    if node.get("type") == "Identifier":
        parts.append(node["terminalNodeText"][0].strip("`"))
    for child in node.get("children") or ():
        _collect_identifiers(child, parts)


def _literal_term(node: dict) -> Compiled:
    literal = node["children"][0]
    kind = literal.get("type")
    text = literal["terminalNodeText"][0] if literal.get("terminalNodeText") else ""
    if kind == "StringLiteral":
        value: Any = _unescape(text[1:-1])
    elif kind == "NumberLiteral":
        value = int(text) if re.fullmatch(r"-?\d+", text) else Decimal(text)
    elif kind == "BooleanLiteral":
        value = text == "true"
    elif kind == "NullLiteral":
        return lambda focus, env: []
    else:
        raise Unsupported(f"{kind} literal")
    result = [value]
    return lambda focus, env: list(result)


def _unescape(text: str) -> str:
    def replace(match: re.Match) -> str:
        code = match.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get("\\" + code, code)

    return _ESCAPE.sub(replace, text)


def _external_constant(node: dict) -> Compiled:
    constant = node["children"][0]
    name = _identifier(constant["children"][0])
    if name == "resource":
        return lambda focus, env: [] if env.resource is None else [env.resource]
    if name == "rootResource":
        return lambda focus, env: [] if env.root_resource is None else [env.root_resource]
    if name == "context":
        return lambda focus, env: [] if env.context is None else [env.context]
    if name in _CONSTANTS:
        value = _CONSTANTS[name]
        return lambda focus, env: [value]
    if name.startswith("vs-"):
        value = "http://hl7.org/fhir/ValueSet/" + name[3:]
        return lambda focus, env: [value]
    if name.startswith("ext-"):
        value = "http://hl7.org/fhir/StructureDefinition/" + name[4:]
        return lambda focus, env: [value]
    raise Unsupported(f"%{name}")


def _parenthesized(node: dict) -> Compiled:
    return _compile(node["children"][0])


def _indexer(node: dict) -> Compiled:
    source = _compile(node["children"][0])
    index = _compile(node["children"][1])

    def indexer(focus: list, env: Env) -> list:
        collection = source(focus, env)
        position = index(focus, env)
        if not position:
            return []
        i = _value(position[0])
        if not isinstance(i, int) or isinstance(i, bool):
            raise Fallback("index is not an integer")
        return [collection[i]] if 0 <= i < len(collection) else []

    return indexer


def _polarity(node: dict) -> Compiled:
    operand = _compile(node["children"][0])
    negative = node["terminalNodeText"][0] == "-"

    def polarity(focus: list, env: Env) -> list:
        value = operand(focus, env)
        if len(value) != 1 or not _is_number(_value(value[0])):
            raise Fallback("polarity of a non-number")
        number = _value(value[0])
        return [-number if negative else number]

    return polarity


def _binary(node: dict) -> tuple[Compiled, Compiled, str]:
    left, right = node["children"]
    return _compile(left), _compile(right), node["terminalNodeText"][0]


def _and(node: dict) -> Compiled:
    left, right, _op = _binary(node)

    def and_(focus: list, env: Env) -> list:
        a = _bool3(left(focus, env))
        if a is False:
            return [False]
        b = _bool3(right(focus, env))
        if b is False:
            return [False]
        if a is None or b is None:
            return []
        return [True]

    return and_


def _or(node: dict) -> Compiled:
    left, right, op = _binary(node)
    if op == "xor":

        def xor(focus: list, env: Env) -> list:
            a, b = _bool3(left(focus, env)), _bool3(right(focus, env))
            return [] if a is None or b is None else [a != b]

        return xor

    def or_(focus: list, env: Env) -> list:
        a = _bool3(left(focus, env))
        if a is True:
            return [True]
        b = _bool3(right(focus, env))
        if b is True:
            return [True]
        if a is None or b is None:
            return []
        return [False]

    return or_


def _implies(node: dict) -> Compiled:
    left, right, _op = _binary(node)

    def implies(focus: list, env: Env) -> list:
        a = _bool3(left(focus, env))
        if a is False:
            return [True]
        b = _bool3(right(focus, env))
        if b is True:
            return [True]
        if a is None or b is None:
            return []
        return [False]

    return implies


def _equality(node: dict) -> Compiled:
    left, right, op = _binary(node)
    if op not in ("=", "!="):
        raise Unsupported(f"operator {op}")
    negate = op == "!="

    def equality(focus: list, env: Env) -> list:
        a, b = left(focus, env), right(focus, env)
        if not a or not b:
            return []
        if len(a) != len(b):
            return [negate]
        same = all(_equal(x, y) for x, y in zip(a, b, strict=True))
        return [same != negate]

    return equality


def _inequality(node: dict) -> Compiled:
    left, right, op = _binary(node)
    accept = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (1, 0)}[op]

    def inequality(focus: list, env: Env) -> list:
        order = _compare(left(focus, env), right(focus, env))
        return [] if order is None else [order in accept]

    return inequality


def _union(node: dict) -> Compiled:
    left, right, _op = _binary(node)
    return lambda focus, env: _distinct(left(focus, env) + right(focus, env))


def _membership(node: dict) -> Compiled:
    left, right, op = _binary(node)

    def membership(focus: list, env: Env) -> list:
        a, b = left(focus, env), right(focus, env)
        item, collection = (a, b) if op == "in" else (b, a)
        if not item:
            return []
        if len(item) != 1:
            raise Fallback("membership of a collection")
        return [_contains(collection, item[0])]

    return membership


def _arithmetic(node: dict) -> Compiled:
    left, right, op = _binary(node)

    def arithmetic(focus: list, env: Env) -> list:
        a, b = left(focus, env), right(focus, env)
        if op == "&":
            return [(_string(a) or "" if a else "") + (_string(b) or "" if b else "")]
        if not a or not b:
            return []
        if len(a) != 1 or len(b) != 1:
            raise Fallback("arithmetic on collections")
        x, y = _value(a[0]), _value(b[0])
        if op == "+" and isinstance(x, str) and isinstance(y, str):
            return [x + y]
        if not (_is_number(x) and _is_number(y)):
            raise Fallback("arithmetic on non-numbers")
        x, y = _number(x), _number(y)
        if op == "+":
            return [x + y]
        if op == "-":
            return [x - y]
        if op == "*":
            return [x * y]
        if y == 0:
            return []
        if op == "/":
            return [Decimal(x) / Decimal(y)]
        if op == "div":
            return [int(Decimal(x) / Decimal(y))]
        if op == "mod":
            return [Decimal(x) % Decimal(y) if isinstance(x, Decimal) or isinstance(y, Decimal) else x % y]
        raise Fallback(f"operator {op}")

    return arithmetic


def _type_expression(node: dict) -> Compiled:
    source = _compile(node["children"][0])
    type_name = _identifier(node["children"][1])
    op = node["terminalNodeText"][0]
    test = _type_test(type_name)

    def type_expression(focus: list, env: Env) -> list:
        collection = source(focus, env)
        if not collection:
            return []
        if len(collection) != 1:
            raise Fallback("type test on a collection")
        matched = test(collection[0])
        if op == "is":
            return [matched]
        return collection if matched else []

    return type_expression


def _type_test(type_name: str) -> Callable[[Any], bool]:
    name = type_name.removeprefix("FHIR.")
    index = type_index()
    if not index.is_resource(name) and name not in ("Resource", "DomainResource"):
        raise Unsupported(f"type test for {type_name}")

    def test(item: Any) -> bool:
        if not (isinstance(item, dict) and isinstance(item.get("resourceType"), str)):
            raise Fallback("type test on a data type")
        return index.is_subtype(item["resourceType"], name)

    return test


_HANDLERS: dict[str, Callable[[dict], Compiled]] = {
    "TermExpression": _term_expression,
    "InvocationTerm": _invocation_term,
    "InvocationExpression": _invocation_expression,
    "LiteralTerm": _literal_term,
    "ExternalConstantTerm": _external_constant,
    "ParenthesizedTerm": _parenthesized,
    "IndexerExpression": _indexer,
    "PolarityExpression": _polarity,
    "AndExpression": _and,
    "OrExpression": _or,
    "ImpliesExpression": _implies,
    "EqualityExpression": _equality,
    "InequalityExpression": _inequality,
    "UnionExpression": _union,
    "MembershipExpression": _membership,
    "AdditiveExpression": _arithmetic,
    "MultiplicativeExpression": _arithmetic,
    "TypeExpression": _type_expression,
}


# -- functions ------------------------------------------------------------------------------------


def _function(name: str, params: list[dict]) -> Compiled:
    arity = len(params)
    if name in _CRITERIA_FUNCTIONS:
        if arity > 1 or (arity == 0 and name not in ("exists", "all")):
            raise Unsupported(f"{name} with {arity} arguments")
        criteria = _compile(params[0]) if params else None
        if name in ("where", "exists") and params:
            return _CRITERIA_FUNCTIONS[name](criteria, _fast_predicate(params[0]))
        return _CRITERIA_FUNCTIONS[name](criteria)
    if name in ("ofType", "is", "as"):
        if arity != 1:
            raise Unsupported(f"{name} arity")
        test = _type_test(_type_name(params[0]))
        if name == "ofType":
            return lambda focus, env: [x for x in focus if test(x)]
        if name == "is":

            def is_(focus: list, env: Env) -> list:
                if len(focus) != 1:
                    return [] if not focus else _raise("is() on a collection")
                return [test(focus[0])]

            return is_
        return lambda focus, env: [x for x in focus if test(x)]
    if name == "iif":
        if arity not in (2, 3):
            raise Unsupported("iif arity")
        condition, then = _compile(params[0]), _compile(params[1])
        otherwise = _compile(params[2]) if arity == 3 else None

        def iif(focus: list, env: Env) -> list:
            if _bool3(condition(focus, env)) is True:
                return then(focus, env)
            return otherwise(focus, env) if otherwise is not None else []

        return iif
    simple = _SIMPLE_FUNCTIONS.get(name)
    if simple is None:
        raise Unsupported(f"function {name}()")
    expected, implementation = simple
    if arity not in expected:
        raise Unsupported(f"{name} with {arity} arguments")
    arguments = [_compile(p) for p in params]
    if not arguments:
        return lambda focus, env: implementation(focus, env)

    def call(focus: list, env: Env) -> list:
        return implementation(focus, env, *[argument(focus, env) for argument in arguments])

    return call


def _raise(message: str) -> list:
    raise Fallback(message)


def _type_name(param: dict) -> str:
    node = param
    while node.get("type") in ("TermExpression", "InvocationTerm", "MemberInvocation"):
        node = node["children"][0]
    return _identifier(node)


def _with_this(criteria: Compiled, item: Any, env: Env) -> list:
    saved = env.this
    env.this = item
    try:
        return criteria([item], env)
    finally:
        env.this = saved


def _criteria_true(criteria: Compiled, item: Any, env: Env) -> bool:
    return _bool3(_with_this(criteria, item, env)) is True


def _where(criteria: Compiled | None, fast: Callable[[Any], bool | None] | None = None) -> Compiled:
    if fast is None:
        return lambda focus, env: [x for x in focus if _criteria_true(criteria, x, env)]
    single = getattr(fast, "single", None)
    if single is not None:
        name, text = single
        dateish = bool(_DATEISH.match(text))

        def where_equals(focus: list, env: Env) -> list:
            out = []
            for x in focus:
                value = x.get(name) if type(x) is dict else None
                if type(value) is str:
                    if value == text:
                        out.append(x)
                    elif dateish and fast(x) is None and _criteria_true(criteria, x, env):
                        out.append(x)  # a date of another precision: the general rules decide
                    continue
                verdict = fast(x)
                if verdict is None:
                    verdict = _criteria_true(criteria, x, env)
                if verdict:
                    out.append(x)
            return out

        where_equals.single = single  # type: ignore[attr-defined]
        return where_equals

    def where(focus: list, env: Env) -> list:
        out = []
        for x in focus:
            verdict = fast(x)
            if verdict is None:
                verdict = _criteria_true(criteria, x, env)
            if verdict:
                out.append(x)
        return out

    return where


def _exists(criteria: Compiled | None, fast: Callable[[Any], bool | None] | None = None) -> Compiled:
    if criteria is None:
        return lambda focus, env: [bool(focus)]
    if fast is None:
        return lambda focus, env: [any(_criteria_true(criteria, x, env) for x in focus)]

    def exists(focus: list, env: Env) -> list:
        for x in focus:
            verdict = fast(x)
            if verdict is None:
                verdict = _criteria_true(criteria, x, env)
            if verdict:
                return [True]
        return [False]

    return exists


def _fast_predicate(node: dict) -> Callable[[Any], bool | None] | None:
    """``name = 'literal'`` (and conjunctions of them) as a plain predicate on a JSON object.

    The predicate answers True/False when the member is absent or a plain string, and None (use
    the general evaluation) in every other case, so it never decides differently from it.
    """
    kind = node.get("type")
    if kind == "AndExpression" and node["terminalNodeText"][0] == "and":
        left, right = (_fast_predicate(c) for c in node["children"])
        if left is None or right is None:
            return None

        def both(item: Any) -> bool | None:
            a = left(item)
            if a is False:
                return False
            b = right(item)
            if b is False:
                return False
            return True if a and b else None

        return both
    if kind != "EqualityExpression" or node["terminalNodeText"][0] != "=":
        return None
    member, literal = node["children"]
    name = _simple_member(member)
    text = _string_literal(literal)
    if name is None or text is None or name[:1].isupper():
        return None
    dateish = bool(_DATEISH.match(text))
    choice = name in CHOICE_NAMES

    def equals(item: Any) -> bool | None:
        if type(item) is not dict:
            return None
        value = item.get(name)
        if type(value) is str:
            if value == text:
                return True
            if dateish and len(value) != len(text) and _DATEISH.match(value):
                return None
            return False
        if value is None and ("_" + name) not in item:
            if choice and any(k.startswith(name) and k[len(name) :] in TYPE_SUFFIXES for k in item):
                return None  # a choice element under its typed name
            return False  # empty: '=' is empty, not true
        return None

    equals.single = (name, text)  # type: ignore[attr-defined]
    return equals


def _simple_member(node: dict) -> str | None:
    if node.get("type") != "TermExpression":
        return None
    term = node["children"][0]
    if term.get("type") != "InvocationTerm":
        return None
    invocation = term["children"][0]
    if invocation.get("type") != "MemberInvocation":
        return None
    return _identifier(invocation["children"][0])


def _string_literal(node: dict) -> str | None:
    if node.get("type") != "TermExpression":
        return None
    term = node["children"][0]
    if term.get("type") != "LiteralTerm" or term["children"][0].get("type") != "StringLiteral":
        return None
    return _unescape(term["children"][0]["terminalNodeText"][0][1:-1])


def _all(criteria: Compiled | None) -> Compiled:
    if criteria is None:
        raise Unsupported("all() without criteria")
    return lambda focus, env: [all(_criteria_true(criteria, x, env) for x in focus)]


def _select(criteria: Compiled | None) -> Compiled:
    def select(focus: list, env: Env) -> list:
        out: list = []
        for item in focus:
            out.extend(_with_this(criteria, item, env))
        return out

    return select


_CRITERIA_FUNCTIONS: dict[str, Callable[[Compiled | None], Compiled]] = {
    "where": _where,
    "exists": _exists,
    "all": _all,
    "select": _select,
}


def _one_string(values: list) -> str | None:
    return _string(values) if values else None


def _fn_matches(focus: list, env: Env, pattern: list) -> list:
    text, regex = _string(focus), _one_string(pattern)
    if text is None or regex is None:
        return []
    compiled = _REGEX_CACHE.get(regex)
    if compiled is None:
        try:
            compiled = re.compile(regex, re.DOTALL)
        except re.error as exc:
            raise Fallback(f"regex: {exc}") from exc
        _REGEX_CACHE[regex] = compiled
    return [compiled.search(text) is not None]


def _fn_replace_matches(focus: list, env: Env, pattern: list, substitution: list) -> list:
    text, regex, replacement = _string(focus), _one_string(pattern), _one_string(substitution)
    if text is None or regex is None or replacement is None:
        return []
    try:
        return [re.sub(regex, replacement.replace("\\", "\\\\"), text, flags=re.DOTALL)]
    except re.error as exc:
        raise Fallback(f"regex: {exc}") from exc


def _fn_substring(focus: list, env: Env, start: list, length: list | None = None) -> list:
    text = _string(focus)
    if text is None or not start:
        return []
    begin = _value(start[0])
    if not isinstance(begin, int) or begin < 0 or begin >= len(text):
        return []
    if length is None:
        return [text[begin:]]
    if not length:
        return [text[begin:]]
    size = _value(length[0])
    if not isinstance(size, int):
        raise Fallback("substring length")
    return [text[begin : begin + max(size, 0)]]


def _fn_to_integer(focus: list, env: Env) -> list:
    if len(focus) != 1:
        return []
    value = _value(focus[0])
    if value is True or value is False:
        return [int(value)]
    if isinstance(value, int):
        return [value]
    if _is_number(value):
        return [int(value)] if int(value) == value else []
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
        return [int(value)]
    return []


def _fn_to_decimal(focus: list, env: Env) -> list:
    if len(focus) != 1:
        return []
    value = _value(focus[0])
    if value is True or value is False:
        return [Decimal(int(value))]
    if _is_number(value):
        return [Decimal(_text(value))]
    if isinstance(value, str):
        try:
            return [Decimal(value)] if re.fullmatch(r"[+-]?\d+(\.\d+)?", value) else []
        except InvalidOperation:
            return []
    return []


def _fn_to_string(focus: list, env: Env) -> list:
    if not focus:
        return []
    if len(focus) != 1:
        raise Fallback("toString() on a collection")
    value = _value(focus[0])
    if isinstance(value, dict | list):
        raise Fallback("toString() on a complex value")
    return [_text(value)]


def _string_fn(operation: Callable[[str, str], Any]) -> Callable[..., list]:
    def run(focus: list, env: Env, argument: list) -> list:
        text, other = _string(focus), _one_string(argument)
        if text is None or other is None:
            return []
        return [operation(text, other)]

    return run


def _fn_length(focus: list, env: Env) -> list:
    text = _string(focus)
    return [] if text is None else [len(text)]


def _fn_has_value(focus: list, env: Env) -> list:
    if len(focus) != 1:
        return [False]
    item = focus[0]
    if type(item) is Prim:
        return [item.value is not None]
    return [not isinstance(item, dict | list) and item is not None]


def _fn_get_value(focus: list, env: Env) -> list:
    out = []
    for item in focus:
        value = item.value if type(item) is Prim else item
        if value is not None and not isinstance(value, dict | list):
            out.append(value)
    return out[:1]


def _fn_not(focus: list, env: Env) -> list:
    value = _bool3(focus)
    return [] if value is None else [not value]


def _fn_extension(focus: list, env: Env, url: list) -> list:
    wanted = _one_string(url)
    out: list = []
    for item in focus:
        holder = item.extra if type(item) is Prim else item
        if isinstance(holder, dict):
            for ext in holder.get("extension") or ():
                if isinstance(ext, dict) and ext.get("url") == wanted:
                    out.append(ext)
    return out


def _fn_descendants(focus: list, env: Env) -> list:
    out: list = []
    stack = list(focus)
    while stack:
        children = _all_children(stack.pop())
        out.extend(children)
        stack.extend(children)
    return out


def _fn_children(focus: list, env: Env) -> list:
    out: list = []
    for item in focus:
        out.extend(_all_children(item))
    return out


def _fn_resolve(focus: list, env: Env) -> list:
    out = []
    for item in focus:
        reference = item.get("reference") if isinstance(item, dict) else _value(item)
        if isinstance(reference, str):
            target = env.host.resolve_reference(reference)
            if target is not None:
                out.append(target)
    return out


def _fn_member_of(focus: list, env: Env, value_set: list) -> list:
    if len(focus) != 1:
        return []
    url = _one_string(value_set)
    if url is None:
        return []
    verdict = env.host.member_of(_value(focus[0]), url)
    return [True] if verdict is None else [verdict]


def _fn_conforms_to(focus: list, env: Env, profile: list) -> list:
    url = _one_string(profile)
    if not focus or url is None:
        return []
    return [all(env.host.conforms_to(item, url) for item in focus)]


def _fn_type(focus: list, env: Env) -> list:
    out = []
    for item in focus:
        if isinstance(item, dict) and isinstance(item.get("resourceType"), str):
            out.append({"namespace": "FHIR", "name": item["resourceType"]})
        elif item is env.context and env.context_type:
            out.append({"namespace": "FHIR", "name": env.context_type})
        else:
            raise Fallback("type() of a data type")
    return out


def _fn_first(focus: list, env: Env) -> list:
    return focus[:1]


def _fn_last(focus: list, env: Env) -> list:
    return focus[-1:]


def _fn_tail(focus: list, env: Env) -> list:
    return focus[1:]


def _fn_single(focus: list, env: Env) -> list:
    if len(focus) > 1:
        raise Fallback("single() on several items")
    return focus


def _fn_skip(focus: list, env: Env, count: list) -> list:
    n = _value(count[0]) if count else 0
    return focus[n:] if isinstance(n, int) else _raise("skip")


def _fn_take(focus: list, env: Env, count: list) -> list:
    n = _value(count[0]) if count else 0
    return focus[: max(n, 0)] if isinstance(n, int) else _raise("take")


def _fn_subset_of(focus: list, env: Env, other: list) -> list:
    return [all(_contains(other, x) for x in focus)]


def _fn_superset_of(focus: list, env: Env, other: list) -> list:
    return [all(_contains(focus, x) for x in other)]


def _fn_intersect(focus: list, env: Env, other: list) -> list:
    return _distinct([x for x in focus if _contains(other, x)])


def _fn_exclude(focus: list, env: Env, other: list) -> list:
    return [x for x in focus if not _contains(other, x)]


def _truth(focus: list, wanted: bool, every: bool) -> list:
    values = [_value(x) for x in focus]
    if any(v is not True and v is not False for v in values):
        raise Fallback("Boolean collection expected")
    test = all if every else any
    return [test(v is wanted for v in values)]


_SIMPLE_FUNCTIONS: dict[str, tuple[tuple[int, ...], Callable[..., list]]] = {
    "empty": ((0,), lambda focus, env: [not focus]),
    "count": ((0,), lambda focus, env: [len(focus)]),
    "not": ((0,), _fn_not),
    "hasValue": ((0,), _fn_has_value),
    "getValue": ((0,), _fn_get_value),
    "first": ((0,), _fn_first),
    "last": ((0,), _fn_last),
    "tail": ((0,), _fn_tail),
    "single": ((0,), _fn_single),
    "skip": ((1,), _fn_skip),
    "take": ((1,), _fn_take),
    "distinct": ((0,), lambda focus, env: _distinct(focus)),
    "isDistinct": ((0,), lambda focus, env: [len(_distinct(focus)) == len(focus)]),
    "allTrue": ((0,), lambda focus, env: _truth(focus, True, True)),
    "anyTrue": ((0,), lambda focus, env: _truth(focus, True, False)),
    "allFalse": ((0,), lambda focus, env: _truth(focus, False, True)),
    "anyFalse": ((0,), lambda focus, env: _truth(focus, False, False)),
    "union": ((1,), lambda focus, env, other: _distinct(focus + other)),
    "combine": ((1,), lambda focus, env, other: focus + other),
    "intersect": ((1,), _fn_intersect),
    "exclude": ((1,), _fn_exclude),
    "subsetOf": ((1,), _fn_subset_of),
    "supersetOf": ((1,), _fn_superset_of),
    "trace": ((1, 2), lambda focus, env, *args: focus),
    "matches": ((1,), _fn_matches),
    "replaceMatches": ((2,), _fn_replace_matches),
    "substring": ((1, 2), _fn_substring),
    "startsWith": ((1,), _string_fn(str.startswith)),
    "endsWith": ((1,), _string_fn(str.endswith)),
    "contains": ((1,), _string_fn(lambda text, part: part in text)),
    "indexOf": ((1,), _string_fn(str.find)),
    "length": ((0,), _fn_length),
    "lower": ((0,), lambda focus, env: [] if _string(focus) is None else [_string(focus).lower()]),
    "upper": ((0,), lambda focus, env: [] if _string(focus) is None else [_string(focus).upper()]),
    "toString": ((0,), _fn_to_string),
    "toInteger": ((0,), _fn_to_integer),
    "toDecimal": ((0,), _fn_to_decimal),
    "extension": ((1,), _fn_extension),
    "children": ((0,), _fn_children),
    "descendants": ((0,), _fn_descendants),
    "resolve": ((0,), _fn_resolve),
    "memberOf": ((1,), _fn_member_of),
    "conformsTo": ((1,), _fn_conforms_to),
    "htmlChecks": ((0,), lambda focus, env: [True]),
    "htmlchecks": ((0,), lambda focus, env: [True]),
    "type": ((0,), _fn_type),
}
