"""Audit settings: which rules run, their thresholds, the as-of date, and how identifiers are shown.

A rules file (YAML) can switch rules off and change thresholds, so a governance team can tune the
audit without code::

    rules:
      no-review-date: {enabled: false}
      blanket-cluster: {window_days: 2, min_cluster_size: 4, similarity_threshold: 0.85}
    terms_file: our-terms.yaml
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from fhir_dnacpr.assurance.rules import RULES
from fhir_dnacpr.assurance.terms import DEFAULT_TERMS_FILE

ID_KEY_ENV = "FHIR_DNACPR_ID_KEY"
INSECURE_EXAMPLE_KEY = b"INSECURE-EXAMPLE-KEY"


class ConfigError(ValueError):
    """The rules file is malformed; the message says where."""


@dataclass(frozen=True)
class ClusterSettings:
    """Thresholds for blanket-decision clusters."""

    window_days: int = 3
    min_cluster_size: int = 3
    similarity_threshold: float = 0.8
    shingle_size: int = 1
    include_missing_rationale: bool = False
    max_window_texts: int = 500


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit run needs besides the records.

    ``pseudonym_key`` keys the hash that replaces NHS numbers in state and in masked reports; the same
    key gives the same pseudonyms across runs. ``max_findings_kept`` bounds how many findings per rule
    the result keeps in memory (all are counted and streamed to ``on_finding``); None keeps all.
    """

    as_of: date = field(default_factory=lambda: datetime.now(UTC).date())
    enabled: frozenset[str] = frozenset(RULES)
    cluster: ClusterSettings = ClusterSettings()
    terms_file: Path = DEFAULT_TERMS_FILE
    show_identifiers: bool = False
    pseudonym_key: bytes = INSECURE_EXAMPLE_KEY
    max_findings_kept: int | None = None
    spill_dir: Path | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def is_enabled(self, rule_id: str) -> bool:
        return rule_id in self.enabled

    @property
    def uses_insecure_key(self) -> bool:
        return self.pseudonym_key == INSECURE_EXAMPLE_KEY

    def with_rules_file(self, path: Path | str) -> AuditConfig:
        """This config with the rules file's switches and thresholds applied."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        return self.with_rules(data, source=str(path), base_dir=Path(path).parent)

    def with_rules(
        self, data: Mapping[str, Any], source: str = "<rules>", base_dir: Path | None = None
    ) -> AuditConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping at the top level")
        unknown = set(data) - {"rules", "terms_file", "as_of"}
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)} (expected rules, terms_file, as_of)")
        enabled = set(self.enabled)
        cluster = self.cluster
        for rule_id, settings in (data.get("rules") or {}).items():
            if rule_id not in RULES:
                raise ConfigError(f"{source}: unknown rule {rule_id!r}; known: {', '.join(RULES)}")
            settings = {"enabled": settings} if isinstance(settings, bool) else (settings or {})
            if not isinstance(settings, Mapping):
                raise ConfigError(f"{source}: rules.{rule_id} must be a mapping or true/false")
            settings = dict(settings)
            if settings.pop("enabled", True):
                enabled.add(rule_id)
            else:
                enabled.discard(rule_id)
            if rule_id == "blanket-cluster" and settings:
                cluster = _cluster_settings(cluster, settings, f"{source}: rules.{rule_id}")
            elif settings:
                raise ConfigError(
                    f"{source}: rules.{rule_id} has no settings besides 'enabled': {sorted(settings)}"
                )
        changes: dict[str, Any] = {"enabled": frozenset(enabled), "cluster": cluster}
        if data.get("terms_file"):
            terms = Path(str(data["terms_file"]))
            changes["terms_file"] = terms if terms.is_absolute() or base_dir is None else base_dir / terms
        if data.get("as_of"):
            changes["as_of"] = _as_date(data["as_of"], f"{source}: as_of")
        return dataclasses.replace(self, **changes)


def _cluster_settings(current: ClusterSettings, settings: Mapping[str, Any], where: str) -> ClusterSettings:
    known = {f.name: f.type for f in dataclasses.fields(ClusterSettings)}
    unknown = set(settings) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    values = dict(settings)
    try:
        if "window_days" in values:
            values["window_days"] = int(values["window_days"])
            if values["window_days"] < 0:
                raise ValueError("window_days must be >= 0")
        if "min_cluster_size" in values:
            values["min_cluster_size"] = int(values["min_cluster_size"])
            if values["min_cluster_size"] < 2:
                raise ValueError("min_cluster_size must be >= 2")
        if "similarity_threshold" in values:
            values["similarity_threshold"] = float(values["similarity_threshold"])
            if not 0.0 < values["similarity_threshold"] <= 1.0:
                raise ValueError("similarity_threshold must be in (0, 1]")
        if "shingle_size" in values:
            values["shingle_size"] = int(values["shingle_size"])
            if values["shingle_size"] < 1:
                raise ValueError("shingle_size must be >= 1")
        if "max_window_texts" in values:
            values["max_window_texts"] = int(values["max_window_texts"])
        if "include_missing_rationale" in values:
            values["include_missing_rationale"] = bool(values["include_missing_rationale"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return dataclasses.replace(current, **values)


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: expected YYYY-MM-DD, got {value!r}") from exc


def key_from_env(env: str = ID_KEY_ENV) -> bytes:
    """The deployment's secret key (shared with resource ids), or the insecure example key."""
    value = os.environ.get(env)
    return value.encode() if value else INSECURE_EXAMPLE_KEY
