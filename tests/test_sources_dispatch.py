"""Choosing a reader by declared format or extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_dnacpr.sources import format_for, open_source


def test_extension_picks_the_format() -> None:
    assert [format_for(f"x{ext}") for ext in (".csv", ".TSV", ".xml", ".json", ".ndjson", ".jsonl")] == [
        "csv",
        "csv",
        "xml",
        "json",
        "ndjson",
        "ndjson",
    ]


def test_declared_format_wins_and_unknown_ones_are_refused() -> None:
    assert format_for("export.txt", "ndjson") == "ndjson"
    with pytest.raises(ValueError, match="unknown source format"):
        format_for("x.csv", "excel")
    with pytest.raises(ValueError, match="cannot tell"):
        format_for("export.dat")


def test_tsv_defaults_to_tab_and_none_options_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2\n")
    [record] = open_source(path, encoding=None, delimiter=None)
    assert record.data == {"a": "1", "b": "2"}


def test_xml_needs_a_record_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="record_path"):
        open_source(tmp_path / "x.xml")
