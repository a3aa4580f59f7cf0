"""References: target types, resolution inside the instance (contained, Bundle, Parameters),
and the Bundle rules (fullUrl, links, document reachability) of the HL7 validator.

Resolution inside a Bundle follows the FHIR rules the HL7 validator implements: absolute references
match ``fullUrl``; relative ones are resolved against the referencing entry's ``fullUrl`` base (for
``urn:`` bases, ``urn:uuid:`` + id), so a same type/id entry with a non-matching ``fullUrl`` is *not*
a match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fhir_dnacpr.issues import Issue
from fhir_dnacpr.validation.primitives import is_absolute_url
from fhir_dnacpr.validation.structure import CompiledStructure, ElementNode

if TYPE_CHECKING:
    from fhir_dnacpr.validation.walker import Frame, Run

CORE = "http://hl7.org/fhir/StructureDefinition/"
_REST_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")


def rest_url_parts(url: str, resource_types: set[str] | None = None) -> tuple[str, str, str] | None:
    """``http://x/fhir/Patient/1`` → (base, type, id) when it looks like a RESTful URL."""
    match = _REST_TAIL.search(url)
    if not match:
        return None
    rtype = match.group(1)
    if resource_types is not None and rtype not in resource_types:
        return None
    base = url[: match.start(1)]
    return base, rtype, match.group(2)


@dataclass(slots=True)
class Resolved:
    resource: dict[str, Any]
    internal: bool
    frame_kind: str  # contained | entry | parameter


def _entries(bundle: dict) -> list[dict]:
    entries = bundle.get("entry")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _resource_types(run: Run) -> set[str]:
    return run.validator.index.resource_types


# -- resolution -----------------------------------------------------------------------------


def resolve(run: Run, ref: str, frame: Frame) -> tuple[Resolved | None, list[tuple[str, str, str]], bool]:
    """Resolve a reference from inside ``frame``; returns (target, problems, stop).

    problems are (severity, message_id, message) from bundle rules; stop means resolution is not
    attempted (the reference is external).
    """
    if ref.startswith("#"):
        return _resolve_contained(ref, frame), [], False
    current: Frame | None = frame
    full_url = None
    while current is not None:
        if current.kind == "entry" and full_url is None:
            full_url = current.full_url
        if current.resource.get("resourceType") == "Bundle" and current is not frame:
            return _get_from_bundle(run, current.resource, ref, full_url)
        if current.kind == "parameter" and current.parent is not None:
            params = current.parent.resource
            target = _find_in_parameters(params, ref)
            if target is not None:
                return Resolved(target, True, "parameter"), [], False
        current = current.parent
    return None, [], False


def _resolve_contained(ref: str, frame: Frame) -> Resolved | None:
    current: Frame | None = frame
    was_contained = False
    while current is not None:
        resource = current.resource
        if ref == "#" and current.kind != "contained" and was_contained:
            return Resolved(resource, True, "contained")
        if current.kind == "contained":
            was_contained = True
        for contained in resource.get("contained", ()) or ():
            if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                return Resolved(contained, True, "contained")
        if current.kind in ("entry", "parameter"):
            return None
        current = current.parent
    return None


def _find_in_parameters(params: dict, ref: str) -> dict | None:
    def walk(parameters: Any) -> dict | None:
        for p in parameters or ():
            if not isinstance(p, dict):
                continue
            res = p.get("resource")
            if isinstance(res, dict) and f"{res.get('resourceType')}/{res.get('id')}" == ref:
                return res
            found = walk(p.get("part"))
            if found is not None:
                return found
        return None

    return walk(params.get("parameter"))


def _get_from_bundle(
    run: Run, bundle: dict, ref: str, full_url: str | None
) -> tuple[Resolved | None, list, bool]:
    problems: list[tuple[str, str, str]] = []
    btype = bundle.get("type")
    version = ""
    resource_type = None
    if is_absolute_url(ref):
        target = ref
        if "/_history/" in ref:
            target, version = ref.split("/_history/", 1)
    elif full_url is None:
        if btype not in ("batch-response", "transaction-response"):
            problems.append(
                (
                    "error",
                    "Bundle_BUNDLE_FullUrl_Missing",
                    "Relative Reference appears inside Bundle whose entry is missing a fullUrl",
                )
            )
        return None, problems, False
    elif ref.count("/") not in (1, 3):
        problems.append(
            (
                "error",
                "Reference_REF_Format2",
                f"Relative URLs must be of the format [ResourceName]/[id]. Encountered {ref}",
            )
        )
        return None, problems, False
    else:
        if full_url.startswith("urn"):
            base = ":".join(full_url.split(":")[:-1]) + ":"
        else:
            base = "/".join(full_url.split("/")[:-2]) + "/"
        if "/_history/" in ref:
            head, version = ref.split("/_history/", 1)
            resource_type, rid = head.split("/")[:2]
            target = base + resource_type + "/" + rid
        elif base.startswith("urn"):
            resource_type, rid = ref.split("/")[:2]
            target = base + rid
        else:
            target = base + ref
    match = None
    for entry in _entries(bundle):
        if entry.get("fullUrl") != target:
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if version and (resource.get("meta") or {}).get("versionId") != version:
            continue
        if match is not None:
            problems.append(
                ("error", "Bundle_BUNDLE_MultipleMatches", f"Multiple matches in bundle for reference {ref}")
            )
        match = resource
    if match is not None and resource_type is not None and match.get("resourceType") != resource_type:
        problems.append(
            (
                "error",
                "Reference_REF_ResourceType",
                f"Matching reference for reference {ref} has resourceType {match.get('resourceType')}",
            )
        )
    if match is None:
        return None, problems, False
    return Resolved(match, True, "entry"), problems, False


# -- the Reference check ----------------------------------------------------------------------


def allowed_target_types(run: Run, node: ElementNode) -> tuple[set[str], list[str]]:
    key = ("targets", node)
    found = run.validator.cache.get(key)
    if found is None:
        found = run.validator.cache[key] = _allowed_target_types(run, node)
    return found


def _allowed_target_types(run: Run, node: ElementNode) -> tuple[set[str], list[str]]:
    profiles = [p for t in node.types if t.code == "Reference" for p in t.target_profiles]
    types: set[str] = set()
    for url in profiles:
        structure = run.validator.structure(url)
        if structure is not None:
            types.add(structure.type)
        elif url.startswith(CORE):
            types.add(url[len(CORE) :])
    return types, profiles


def check_reference(
    run: Run, node: ElementNode, value: dict, location: str, structure: CompiledStructure
) -> Iterator[Issue]:
    ref = value.get("reference")
    if not isinstance(ref, str) or not ref:
        return
    is_base_walk = structure.derivation != "constraint"
    types, profiles = allowed_target_types(run, node)
    frame = run.frame
    cache_key = (ref, id(frame))
    cached = run.resolutions.get(cache_key)
    if cached is None or cached[0] is not frame:
        cached = run.resolutions[cache_key] = (frame, *resolve(run, ref, frame))
    _frame, resolved, problems, _stop = cached
    if is_base_walk:
        for severity, message_id, message in problems:
            code = (
                "forbidden"
                if message_id == "Bundle_BUNDLE_MultipleMatches"
                else "required"
                if message_id == "Reference_REF_ResourceType"
                else "invalid"
            )
            yield run.issue(severity, code, location, message_id, message)
    declared = value.get("type")
    restricted = types and "Resource" not in types
    if resolved is not None:
        target_type = resolved.resource.get("resourceType")
    elif isinstance(declared, str) or (restricted and run.options.assume_valid_rest_references):
        target_type = _type_from_url(run, ref)  # only then is the type in the URL needed
    else:
        target_type = None
    if ref.startswith("#") and resolved is None and is_base_walk:
        yield run.issue(
            "error",
            "structure",
            location,
            "Reference_REF_CantResolve",
            f"Unable to resolve resource with reference '{ref}'",
        )
    policy = run.options.validate_reference
    grouped = any(f.kind == "parameter" for f in run.frames)
    if (
        resolved is None
        and grouped
        and not ref.startswith("#")
        and policy in ("CHECK_EXISTS", "CHECK_EXISTS_AND_TYPE", "CHECK_VALID")
        and is_base_walk
    ) and not ("example.org" in ref or "acme.com" in ref):
        yield run.issue(
            "error",
            "structure",
            location,
            "Reference_REF_CantResolve",
            f"Unable to resolve resource with reference '{ref}'",
        )
    if isinstance(declared, str) and target_type and declared != target_type:
        yield run.issue(
            "error",
            "structure",
            location,
            "Reference_REF_BadTargetType",
            f"Invalid Resource target type. Found {declared}, but expected one of ({target_type})",
        )
    if resolved is not None and restricted:
        actual = resolved.resource.get("resourceType")
        if actual not in types and not any(run.validator.index.is_subtype(actual, t) for t in types):
            yield run.issue(
                "error",
                "structure",
                location,
                "Reference_REF_BadTargetType",
                f"Invalid Resource target type. Found {actual}, but expected one of "
                f"({', '.join(sorted(types))})",
            )
        else:
            # a target found in the instance itself (contained, Bundle entry, Parameters) is always
            # checked as CHECK_VALID, whatever the policy for external references (as HL7 does)
            specific = [p for p in profiles if not p.startswith(CORE)]
            if specific:
                yield from _check_target_profiles(run, resolved, ref, specific, location)
    elif (
        resolved is None
        and restricted
        and target_type
        and run.options.assume_valid_rest_references
        and target_type not in types
    ):
        shown = "[" + ", ".join(sorted(types)) + "]"
        yield run.issue(
            "error",
            "structure",
            location,
            "Reference_REF_BadTargetType2",
            f"The type '{target_type}' implied by the reference URL {ref} is not a valid "
            f"Target for this element (must be one of {shown})",
        )
    if resolved is None and not ref.startswith("#"):
        aggregation = [a for t in node.types if t.code == "Reference" for a in t.aggregation]
        if aggregation and "referenced" not in aggregation:
            in_bundle = any(f.resource.get("resourceType") == "Bundle" for f in run.frames)
            if in_bundle or run.options.enforce_aggregation_outside_bundles:
                yield run.issue(
                    "error",
                    "structure",
                    location,
                    "Reference_REF_Aggregation",
                    "Reference is external which isn't supported by the specified aggregation "
                    f"mode(s) for the reference ({', '.join(aggregation)})",
                )


def _check_target_profiles(
    run: Run, resolved: Resolved, ref: str, profiles: list[str], location: str
) -> Iterator[Issue]:
    key = id(resolved.resource)
    good = 0
    for url in profiles:
        structure = run.validator.structure(url)
        if structure is None or structure.type != resolved.resource.get("resourceType"):
            continue
        cache_key = (key, url)
        verdict = run.reference_verdicts.get(cache_key)
        if verdict is None:
            run.reference_verdicts[cache_key] = True  # assume valid while in progress (circular links)
            verdict = run.conforms_to(resolved.resource, url)
            run.reference_verdicts[cache_key] = verdict
        if verdict:
            good += 1
    if good == 0:
        yield run.issue(
            "error",
            "structure",
            location,
            "Reference_REF_CantMatchChoice",
            f"Unable to find a profile match for {ref} among choices: {', '.join(profiles)}",
        )


def _type_from_url(run: Run, ref: str) -> str | None:
    return _type_in_url(ref)


@lru_cache(maxsize=8192)
def _type_in_url(ref: str) -> str | None:
    from fhir_dnacpr.definitions.elements import type_index

    parts = rest_url_parts(ref.split("?")[0], type_index().resource_types)
    return parts[1] if parts else None


# -- contained ---------------------------------------------------------------------------------


def check_contained_referenced(run: Run, resource: dict, location: str) -> Iterator[Issue]:
    """dom-3 done in code as the HL7 validator does: each contained resource must be referenced."""
    contained = resource.get("contained")
    if not isinstance(contained, list) or run.options.validate_contains == "IGNORE":
        return
    refs = set()
    _collect_refs(resource, refs, skip_contained=True)
    for i, item in enumerate(contained):
        if not isinstance(item, dict):
            continue
        cid = item.get("id")
        inner: set[str] = set()
        _collect_refs(item, inner, skip_contained=False)
        if f"#{cid}" in refs or "#" in inner:
            continue
        yield run.issue(
            "error",
            "invalid",
            f"{location}.contained[{i}]",
            "http://hl7.org/fhir/StructureDefinition/DomainResource#dom-3",
            f"The contained resource '{cid}' is not referenced to from elsewhere in the containing "
            "resource nor does it "
            "refer to the containing resource (dom-3)",
        )


_XHTML_REF = re.compile(r"""(?:href|src)\s*=\s*["'](#[^"']*)["']""")


def _collect_refs(value: Any, found: set[str], skip_contained: bool) -> None:
    if isinstance(value, str) and value.startswith("<div"):
        found.update(_XHTML_REF.findall(value))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if skip_contained and key == "contained":
                for c in item if isinstance(item, list) else ():
                    _collect_refs(c, found, False)
                continue
            if isinstance(item, str) and item.startswith("#"):
                found.add(item)
            elif isinstance(item, str) and item.startswith("<div"):
                found.update(_XHTML_REF.findall(item))
            else:
                _collect_refs(item, found, False)
    elif isinstance(value, list):
        for item in value:
            _collect_refs(item, found, skip_contained)


# -- bundles -------------------------------------------------------------------------------------


def check_bundle(run: Run, bundle: dict, location: str) -> Iterator[Issue]:
    btype = bundle.get("type") or ""
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    yield from _check_links(run, bundle, btype, location)
    types = _resource_types(run)
    optional_full_url = btype in ("transaction", "transaction-response", "batch", "batch-response")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        full_url = entry.get("fullUrl")
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        rtype = resource.get("resourceType") if resource else None
        rid = resource.get("id") if resource else None
        if isinstance(full_url, str) and full_url:
            if is_absolute_url(full_url):
                if rtype and rest_url_parts(full_url, types) and full_url.startswith(("http:", "https:")):
                    if rid is None:
                        yield run.issue(
                            "error",
                            "invalid",
                            f"{location}.entry[{i}]",
                            "BUNDLE_ENTRY_URL_MATCHES_NO_ID",
                            f"The fullUrl '{full_url}' looks like a RESTful server URL, but the "
                            "resource has no id",
                        )
                    elif not full_url.endswith(f"/{rtype}/{rid}"):
                        yield run.issue(
                            "error",
                            "invalid",
                            f"{location}.entry[{i}]",
                            "BUNDLE_ENTRY_URL_MATCHES_TYPE_ID",
                            f"The fullUrl '{full_url}' looks like a RESTful server URL, so it must "
                            f"end with the correct type and id (/{rtype}/{rid})",
                        )
            else:
                yield run.issue(
                    "error",
                    "invalid",
                    f"{location}.entry[{i}]",
                    "BUNDLE_ENTRY_URL_ABSOLUTE",
                    f"The fullUrl must be an absolute URL (not '{full_url}')",
                )
        if not optional_full_url and full_url is None:
            yield run.issue(
                "error",
                "invalid",
                f"{location}.entry[{i}]",
                "BUNDLE_BUNDLE_ENTRY_FULLURL_REQUIRED",
                "Except for transactions and batches, each entry in a Bundle must have a fullUrl "
                "which is the identity of the resource in the entry",
            )
    if btype in ("document", "message") and not entries:
        yield run.issue(
            "error",
            "invalid",
            location,
            "Bundle_BUNDLE_Entry_NoFirst",
            "Documents or Messages must contain at least one entry",
        )
    elif btype == "document":
        yield from _check_document(run, bundle, entries, location)


def _check_links(run: Run, bundle: dict, btype: str, location: str) -> Iterator[Issue]:
    links = bundle.get("link") if isinstance(bundle.get("link"), list) else []
    seen: set[str] = set()
    unique = {"self", "first", "previous", "next", "last"} if btype == "searchset" else {"self"}
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            continue
        relation = link.get("relation")
        if relation in unique:
            if relation in seen:
                yield run.issue(
                    "error",
                    "invalid",
                    f"{location}.link[{i}]",
                    "BUNDLE_LINK_SEARCH_NO_DUPLICATES",
                    f"The link relationship type '{relation}' can only occur once",
                )
            seen.add(relation)


def _check_document(run: Run, bundle: dict, entries: list, location: str) -> Iterator[Issue]:
    first = entries[0] if entries and isinstance(entries[0], dict) else None
    composition = first.get("resource") if first else None
    if not isinstance(composition, dict):
        yield run.issue(
            "error",
            "invalid",
            f"{location}.entry[0]",
            "Bundle_BUNDLE_Entry_NoFirstResource",
            "No resource on first entry",
        )
        return
    if composition.get("resourceType") != "Composition":
        yield run.issue(
            "error",
            "invalid",
            f"{location}.entry[0]",
            "Bundle_BUNDLE_Entry_Document",
            "The first entry in a document must be a composition",
        )
        return
    resolver = _BundleResolver(run, bundle, location)
    full_url, cid = first.get("fullUrl"), composition.get("id")
    comp_loc = f"{location}.entry[0].resource"
    for prop, repeats in (("subject", False), ("author", True), ("encounter", False), ("custodian", False)):
        yield from resolver.check_refs(
            composition, prop, repeats, f"Composition.{prop}", full_url, cid, comp_loc
        )
    for parent, prop in (("attester", "party"), ("event", "detail")):
        for i, item in enumerate(_as_list(composition.get(parent))):
            if isinstance(item, dict):
                yield from resolver.check_refs(
                    item,
                    prop,
                    parent == "event",
                    f"Composition.{parent}.{prop}",
                    full_url,
                    cid,
                    f"{comp_loc}.{parent}[{i}]",
                )
    yield from _sections(resolver, composition, full_url, cid, comp_loc)
    yield from resolver.check_interlinked(entries)


def _sections(resolver, focus: dict, full_url, cid, loc) -> Iterator[Issue]:
    for i, section in enumerate(_as_list(focus.get("section"))):
        if not isinstance(section, dict):
            continue
        sloc = f"{loc}.section[{i}]"
        yield from resolver.check_refs(section, "author", True, "Section.author", full_url, cid, sloc)
        yield from resolver.check_refs(section, "focus", False, "Section.focus", full_url, cid, sloc)
        yield from resolver.check_refs(section, "entry", True, "Section Entry", full_url, cid, sloc)
        yield from _sections(resolver, section, full_url, cid, sloc)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


class _BundleResolver:
    """HL7 BundleValidator.resolveInBundle: one error per referencing element at most."""

    def __init__(self, run: Run, bundle: dict, location: str) -> None:
        self.run = run
        self.bundle = bundle
        self.location = location
        self.entries = _entries(bundle)
        self.by_full_url: dict[str | None, list[dict]] = {}
        self.by_type_id: dict[str, list[dict]] = {}
        self.reported: set[int] = set()
        for entry in self.entries:
            fu = entry.get("fullUrl")
            self.by_full_url.setdefault(fu, []).append(entry)
            resource = entry.get("resource")
            if isinstance(resource, dict) and resource.get("id") is not None:
                key = f"{resource.get('resourceType')}/{resource['id']}"
                self.by_type_id.setdefault(key, []).append(entry)
                version = (
                    (resource.get("meta") or {}).get("versionId")
                    if isinstance(resource.get("meta"), dict)
                    else None
                )
                if version:
                    self.by_full_url.setdefault(f"{fu}/_history/{version}", []).append(entry)
                    self.by_type_id.setdefault(f"{key}/_history/{version}", []).append(entry)
        self.types = _resource_types(run)

    def check_refs(
        self, owner: dict, prop: str, repeats: bool, name: str, full_url, rid, loc
    ) -> Iterator[Issue]:
        values = _as_list(owner.get(prop))
        if not repeats:
            values = values[:1]
        for i, ref_value in enumerate(values):
            if not isinstance(ref_value, dict):
                continue
            ref = ref_value.get("reference")
            if isinstance(ref, str) and ref and not ref.startswith("#"):
                where = (
                    f"{loc}.{prop}[{i}]" if repeats or isinstance(owner.get(prop), list) else f"{loc}.{prop}"
                )
                _target, issues = self.resolve(ref, full_url, "Composition", rid, name, where, warning=False)
                yield from issues

    def resolve(self, ref: str, full_url, rtype, rid, name: str, where: str, warning: bool):
        issues: list[Issue] = []
        if "#" in ref:
            ref = ref.split("#", 1)[0]
        if is_absolute_url(ref):
            found = self.by_full_url.get(ref)
            if not found:
                if not warning and not (rest_url_parts(ref, self.types) and False):
                    issues.append(
                        self.run.issue(
                            "error",
                            "not-found",
                            where,
                            "Bundle_BUNDLE_Entry_NotFound",
                            f"Can't find '{ref}' in the bundle ({name})",
                        )
                    )
                return None, issues
            if len(found) > 1:
                issues.append(
                    self.run.issue(
                        "error",
                        "invalid",
                        where,
                        "BUNDLE_BUNDLE_ENTRY_FOUND_MULTIPLE",
                        f"Found {len(found)} matches for '{ref}' in the bundle ({name})",
                    )
                )
                return None, issues
            return found[0], issues
        u = None
        if full_url and rest_url_parts(full_url, self.types) and full_url.endswith(f"{rtype}/{rid}"):
            u = full_url[: len(full_url) - len(f"{rtype}/{rid}")] + ref
        found = self.by_full_url.get(u) if u else None
        if found:
            if len(found) == 1:
                return found[0], issues
            issues.append(
                self.run.issue(
                    "error",
                    "invalid",
                    where,
                    "BUNDLE_BUNDLE_ENTRY_FOUND_MULTIPLE",
                    f"Found {len(found)} matches for '{ref}' in the bundle ({name})",
                )
            )
            return None, issues
        parts = ref.split("/")
        if len(parts) >= 2 and parts[0] in self.types:
            same = self.by_type_id.get("/".join(parts[:2]) if len(parts) == 2 else ref)
            if same:
                if not warning:
                    count = len(same)
                    fus = ",".join(sorted(e.get("fullUrl") or "<missing>" for e in same))
                    note = (
                        "Note that there is a resource in the bundle with the same type and id, "
                        "but it does not match"
                        if count == 1
                        else f"Note that there are {count} resources in the bundle with the same "
                        "type and id, but they do not match"
                    )
                    issues.append(
                        self.run.issue(
                            "error",
                            "invalid",
                            where,
                            "BUNDLE_BUNDLE_ENTRY_NOTFOUND_APPARENT",
                            f"Can't find '{ref}' in the bundle ({name}). {note} because of the "
                            f"fullUrl based rules around matching relative references. Found {fus}",
                        )
                    )
            elif not warning:
                issues.append(
                    self.run.issue(
                        "error",
                        "not-found",
                        where,
                        "Bundle_BUNDLE_Entry_NotFound",
                        f"Can't find '{ref}' in the bundle ({name})",
                    )
                )
        return None, issues

    def check_interlinked(self, entries: list) -> Iterator[Issue]:
        summaries = [
            (i, e)
            for i, e in enumerate(entries)
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
        targets: dict[int, set[int]] = {i: set() for i, _ in summaries}
        for i, entry in summaries:
            resource = entry["resource"]
            for ref in _references_in(resource):
                tgt, _issues = self.resolve(
                    ref,
                    entry.get("fullUrl"),
                    resource.get("resourceType"),
                    resource.get("id"),
                    "",
                    f"{self.location}.entry[{i}]",
                    warning=True,
                )
                if tgt is not None:
                    j = next((k for k, e in summaries if e is tgt), None)
                    if j is not None and j != i:
                        targets[i].add(j)
        visited: set[int] = set()

        def visit(k: int) -> None:
            if k in visited:
                return
            visited.add(k)
            for t in targets.get(k, ()):
                visit(t)

        if summaries:
            visit(summaries[0][0])
        changed = True
        while changed:
            changed = False
            for i, _ in summaries:
                if i not in visited and any(t in visited for t in targets[i]):
                    visit(i)
                    changed = True
        for i, entry in summaries:
            if i not in visited:
                fu = entry.get("fullUrl")
                shown = f"'{fu}'" if fu is not None else ""
                yield self.run.issue(
                    "error",
                    "informational",
                    f"{self.location}.entry[{i}]",
                    "Bundle_BUNDLE_Entry_Orphan_DOCUMENT",
                    f"Entry {shown} isn't reachable by traversing links (forward or backward) from "
                    "the Composition",
                )


_SKIP_URI_KEYS = {"fullUrl", "system", "profile", "url", "endpoint", "address"}


def _references_in(value: Any, found: list[str] | None = None) -> list[str]:
    found = [] if found is None else found
    if isinstance(value, dict):
        if value.get("resourceType") == "Bundle" and found:
            return found
        ref = value.get("reference")
        if isinstance(ref, str) and not ref.startswith("#") and ref not in found:
            found.append(ref)
        for key, item in value.items():
            if key == "reference":
                continue
            _references_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _references_in(item, found)
    return found
