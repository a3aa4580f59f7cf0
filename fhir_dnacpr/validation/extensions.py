"""Extensions: resolved by URL, checked for context, then validated against their definition.

Unknown extensions follow the HL7 rule: an error ("could not be found so is not allowed here")
unless the URL is in a domain that is allowed to be unknown (example.org, acme.com, nema.org, HL7
tools), where it is only noted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.primitives import is_absolute_url
from fhir_dnacpr.validation.structure import ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.walker import Run

_INDEX = re.compile(r"\[[0-9]+\]")
_OF_TYPE = re.compile(r"\.ofType\(([^)]+)\)")
_RESOURCE_MARK = re.compile(r"/\*[^*]*\*/")


def allow_unknown(url: str, allow_examples: bool) -> bool:
    return (
        (allow_examples and ("example.org" in url or "acme.com" in url))
        or "nema.org" in url
        or url.startswith("http://hl7.org/fhir/tools/StructureDefinition/")
        or url == "http://hl7.org/fhir/StructureDefinition/structuredefinition-expression"
    )


def check_extension(
    run: Run, node: ElementNode, value: dict[str, Any], location: str, host_location: str
) -> Iterator[Issue]:
    url = value.get("url")
    if not isinstance(url, str) or url == "":
        yield run.issue(
            "error",
            "invalid",
            location,
            "Extension_EXT_Url_NotFound",
            "Extension.url is required in order to identify, use and validate the extension",
        )
        return
    if not is_absolute_url(url):
        if node.structure.type == "Extension":
            return  # a sub-extension of a complex extension: checked by the definition's slices
        yield run.issue(
            "error",
            "invalid",
            location,
            "Extension_EXT_URL_Absolute",
            "Extension.url must be an absolute URL",
        )
        return
    definition = run.validator.structure(url.split("|")[0])
    if definition is None:
        if allow_unknown(url, run.options.allow_example_extensions):
            yield run.issue(
                "information", "structure", location, "Extension_EXT_Unknown", f"Unknown extension {url}"
            )
        else:
            yield run.issue(
                "error",
                "structure",
                location,
                "Extension_EXT_Unknown_NotHere",
                f"The extension {url} could not be found so is not allowed here",
            )
        return
    if definition.type != "Extension":
        return
    is_modifier = node.name == "modifierExtension"
    root_modifier = bool(definition.definition.get("snapshot", {}).get("element", [{}])[0].get("isModifier"))
    if is_modifier and not root_modifier:
        yield run.issue(
            "error",
            "structure",
            location,
            "Extension_EXT_Modifier_Y",
            f"The Extension '{url}' must not be used as a modifierExtension (it's a regular extension)",
        )
    elif not is_modifier and root_modifier:
        yield run.issue(
            "error",
            "structure",
            location,
            "Extension_EXT_Modifier_N",
            f"The Extension '{url}' must not be used as an extension (it's a modifierExtension)",
        )
    yield from check_context(run, definition, node, host_location)
    if run.extension_depth < 8:
        run.extension_depth += 1
        try:
            run.walk_object(definition.root, value, "Extension", location, definition)
            run.add(run_invariants(run, definition, value, location))
        finally:
            run.extension_depth -= 1


def run_invariants(run: Run, definition, value: dict, location: str) -> Iterator[Issue]:
    from fhir_dnacpr.validation.checks import invariants

    yield from invariants(run, definition.root, value, "Extension", location, definition)


def host_paths(run: Run, host_location: str, host_node: ElementNode, host_type: str) -> list[str]:
    """HL7's 'this element is [...]' set: literal path without indexes plus logical type paths."""
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
    for path in (host_node.path, host_node.base_path):
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
            if _element_context_ok(run, expression, plist, host_location):
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
