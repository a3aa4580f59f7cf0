"""Extensions: resolved by URL, checked for context, then validated against their definition.

Unknown extensions follow the HL7 rule: an error ("could not be found so is not allowed here")
unless the URL is in a domain that is allowed to be unknown (example.org, acme.com, nema.org, HL7
tools), where it is only noted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.primitives import is_absolute_url
from fhir_dnacpr.validation.structure import ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.walker import Run

_INDEX = re.compile(r"\[[0-9]+\]")
_OF_TYPE = re.compile(r"\.ofType\(([^)]+)\)")
_RESOURCE_MARK = re.compile(r"/\*[^*]*\*/")


@lru_cache(maxsize=4096)
def _absolute(url: str) -> bool:
    """Absolute and well formed: a URL with whitespace is not one (as the HL7 validator says)."""
    return is_absolute_url(url) and not any(c.isspace() for c in url)


def allow_unknown(url: str, allow_examples: bool) -> bool:
    return (
        (allow_examples and ("example.org" in url or "acme.com" in url))
        or "nema.org" in url
        or url.startswith("http://hl7.org/fhir/tools/StructureDefinition/")
        or url == "http://hl7.org/fhir/StructureDefinition/structuredefinition-expression"
    )


def check_extension(run: Run, node: ElementNode, value: dict[str, Any], location: str) -> Any:
    """Report URL, modifier and context problems; return the extension's definition (a compiled
    structure the walker adds as one more layer of the value) or None when there is none to apply.

    The outcome depends on the URL and on where the extension sits (host path, host type), not on
    the value: when the definition's contexts are all element paths, it is remembered per place.
    """
    url = value.get("url")
    host_location, host_node, host_type, _host_value = run.hosts[-1]
    key = (
        "extension",
        url if type(url) is str else None,
        node.name,
        node.structure.type == "Extension",
        host_location,
        host_node,
        host_type,
        run.frame.resource.get("resourceType"),
        run.options.allow_example_extensions,
        run.options.any_extensions_allowed,
    )
    cache = run.validator.cache
    cached = cache.get(key) if key[1] is not None else None
    if cached is not None:
        definition, messages = cached
        for severity, code, message_id, message, where in messages:
            run.add_one(run.issue(severity, code, location if where is None else where, message_id, message))
        return definition
    holder: list[Any] = []
    found = run.collect(lambda: holder.append(_find_extension(run, node, value, location)))
    definition = holder[0] if holder else None
    for issue in found:
        run.add_one(issue)
    if key[1] is not None and _cacheable(definition) and len(cache) < 100_000:
        cache[key] = (
            definition,
            [
                (
                    i.severity.value,
                    i.code,
                    i.message_id,
                    i.message,
                    None if i.location == location else i.location,
                )
                for i in found
            ],
        )
    return definition


def _cacheable(definition: Any) -> bool:
    """Element contexts only (no FHIRPath or extension contexts, no context invariants)."""
    if definition is None:
        return True
    sd = definition.definition
    if sd.get("contextInvariant"):
        return False
    return all(ctx.get("type") == "element" for ctx in sd.get("context") or ())


def _find_extension(run: Run, node: ElementNode, value: dict[str, Any], location: str) -> Any:
    url = value.get("url")
    if not isinstance(url, str) or url == "":
        run.add_one(
            run.issue(
                "error",
                "invalid",
                location,
                "Extension_EXT_Url_NotFound",
                "Extension.url is required in order to identify, use and validate the extension",
            )
        )
        return None
    if not _absolute(url):
        if node.structure.type == "Extension":
            return None  # a sub-extension of a complex extension: checked by the definition's slices
        run.add_one(
            run.issue(
                "error",
                "invalid",
                location,
                "Extension_EXT_URL_Absolute",
                "Extension.url must be an absolute URL",
            )
        )
        return None
    definition = run.validator.structure(url.split("|")[0])
    if definition is None:
        if run.options.any_extensions_allowed or allow_unknown(url, run.options.allow_example_extensions):
            run.add_one(
                run.issue(
                    "information", "structure", location, "Extension_EXT_Unknown", f"Unknown extension {url}"
                )
            )
        else:
            run.add_one(
                run.issue(
                    "error",
                    "structure",
                    location,
                    "Extension_EXT_Unknown_NotHere",
                    f"The extension {url} could not be found so is not allowed here",
                )
            )
        return None
    if definition.type != "Extension":
        return None
    is_modifier = node.name == "modifierExtension"
    root_modifier = bool(definition.definition.get("snapshot", {}).get("element", [{}])[0].get("isModifier"))
    if is_modifier and not root_modifier:
        run.add_one(
            run.issue(
                "error",
                "structure",
                location,
                "Extension_EXT_Modifier_Y",
                f"The Extension '{url}' must not be used as a modifierExtension (it's a regular extension)",
            )
        )
    elif not is_modifier and root_modifier:
        run.add_one(
            run.issue(
                "error",
                "structure",
                location,
                "Extension_EXT_Modifier_N",
                f"The Extension '{url}' must not be used as an extension (it's a modifierExtension)",
            )
        )
    if definition.definition.get("context") or definition.definition.get("contextInvariant"):
        run.add(check_context(run, definition, node, location))
    return definition


def is_definition_root(node: ElementNode) -> bool:
    """The root of an extension definition (a layer the walker adds to an extension's value)."""
    structure = node.structure
    return node is structure.root and structure.type == "Extension" and structure.derivation == "constraint"


def check_simple_value(run: Run, definition: Any, value: dict[str, Any], location: str) -> None:
    """A simple extension (its definition allows value[x]) must carry a value."""
    value_node = definition.root.children.get("value")
    if value_node is None or value_node.max == 0 or value_node.min == 0:
        return
    for key in value:
        if key.startswith(("value", "_value")):
            return
    run.add_one(
        run.issue(
            "error",
            "structure",
            location,
            "Extension_EXT_Simple_ABSENT",
            f"The Extension '{definition.url}' definition is for a simple extension, so it must "
            "contain a value",
        )
    )


def wrong_value_type(run: Run, root: ElementNode, name: str, obj: dict[str, Any], location: str) -> None:
    """An extension value of a type its definition does not allow: reported on the extension (as
    the HL7 validator does), then the value is judged as the allowed type would be (a string
    where a boolean belongs is not 'true'/'false'; a coded value without a code misses its
    required binding)."""
    value_node = root.children.get("value")
    if value_node is None:
        return
    allowed = [t.code for t in value_node.types]
    suffix = name[len("value") :]
    found = (
        suffix[:1].lower() + suffix[1:]
        if run.validator.index.is_primitive(suffix[:1].lower() + suffix[1:])
        else suffix
    )
    run.add_one(
        run.issue(
            "error",
            "structure",
            location,
            "Extension_EXT_Type",
            f"The Extension '{root.structure.url}' definition allows for the types "
            f"[{', '.join(allowed)}] but found type {found}",
        )
    )
    if len(allowed) != 1:
        return
    expected = allowed[0]
    value = obj.get(name)
    value_location = f"{location}.value"
    if run.validator.index.is_primitive(expected):
        from fhir_dnacpr.validation.walker import Item

        if value is not None and not isinstance(value, dict | list):
            plan = run.validator.plan((value_node,), expected)
            run.walk_primitive(plan, Item(name, None, value, None, value_location, expected))
    elif value_node.binding and value_node.binding[0] == "required" and not isinstance(value, dict):
        expansion = run.validator.terminology.expand(value_node.binding[1])
        label = f"'{expansion.name}' ({expansion.label})" if expansion else value_node.binding[1]
        run.add_one(
            run.issue(
                "error",
                "code-invalid",
                value_location,
                "Terminology_TX_Code_ValueSet",
                f"No code provided, and a code is required from the value set {label}",
            )
        )


def host_paths(run: Run, host_location: str, host_node: ElementNode, host_type: str) -> list[str]:
    """HL7's 'this element is [...]' set: literal path without indexes plus logical type paths."""
    return _host_paths(host_location, host_node.path, host_node.base_path, host_type)


@lru_cache(maxsize=4096)
def _host_paths(host_location: str, node_path: str, base_path: str, host_type: str) -> list[str]:
    literal = host_location
    if "*/" in literal:
        head, tail = literal.rsplit("*/", 1)
        literal = (
            head.rsplit("/*", 1)[1].split("/")[0] + tail.lstrip(".")
            if not tail
            else head.rsplit("/*", 1)[1].split("/")[0] + tail
        )
    literal = _INDEX.sub("", literal)
    literal = _OF_TYPE.sub("", literal)
    paths = {literal}
    for path in (node_path, base_path):
        if "." in path:
            paths.add(path.replace("[x]", ""))
    if host_type and host_type != literal:
        paths.add(host_type)
    return sorted(paths)


def check_context(run: Run, definition, node: ElementNode, host_location: str) -> Iterator[Issue]:
    contexts = definition.definition.get("context") or []
    host_location, host_node, host_type, host_value = run.hosts[-1]
    plist = host_paths(run, host_location, host_node, host_type)
    ok = not contexts
    described = []
    for ctx in contexts:
        kind, expression = ctx.get("type"), ctx.get("expression", "")
        if kind == "element":
            described.append("e:" + expression)
            key = ("context", expression, tuple(plist), run.frame.resource.get("resourceType"))
            verdict = run.validator.cache.get(key)
            if verdict is None:
                verdict = run.validator.cache[key] = _element_context_ok(
                    run, expression, plist, host_location
                )
            if verdict:
                ok = True
        elif kind == "extension":
            described.append("x:" + expression)
            host_url = (
                host_value.get("url") if host_type == "Extension" and isinstance(host_value, dict) else None
            )
            if host_url is None and len(run.hosts) > 1 and run.hosts[-2][2] == "Extension":
                host_url = run.hosts[-2][3].get("url")
            if host_url == expression:
                ok = True
        elif kind == "fhirpath":
            described.append("p:" + expression)
            if run.validator.fhirpath.selects(expression, run.frame.resource, host_value, run.host):
                ok = True
        if ok:
            break
    if not ok:
        yield run.issue(
            "error",
            "structure",
            host_location or location_root(host_location),
            "Extension_EXT_Context_Wrong",
            f"The extension {definition.url} is not allowed to be used at this point (this element is "
            f"[{', '.join(plist)}]; allowed for this version = {', '.join(described)})",
        )
        return
    for invariant in definition.definition.get("contextInvariant") or ():
        type_path = host_node.path if "." in host_node.path else host_type
        verdict = run.validator.fhirpath.check(
            invariant, host_value, type_path, run.frame.resource, run.root, run.host
        )
        if verdict is False:
            yield run.issue(
                "error",
                "structure",
                host_location,
                "Profile_EXT_Not_Here",
                f"The extension {definition.url} is not allowed to be used at this point (based on "
                f"context invariant '{invariant}')",
            )


def location_root(location: str) -> str:
    return location


def _element_context_ok(run: Run, expression: str, plist: list[str], host_location: str) -> bool:
    if "#" in expression:
        return False
    if expression in ("Element", "Any"):
        return True
    frame = run.frame
    if expression == "Resource" and plist and plist[0] == frame.resource.get("resourceType"):
        return True
    for p in plist:
        if p == expression:
            return True
        head, _, tail = p.partition(".")
        current = head
        while current:
            if current + ("." + tail if tail else "") == expression:
                return True
            current = run.validator.index.base_types.get(current)
    return False
