"""The XML reader: record paths with namespaces, origins, malformed input, flat memory."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from fhir_dnacpr.sources.xml import RecordPath, read_xml

NS = {"ex": "urn:example:export"}
DOC = """<?xml version="1.0"?>
<ex:Export xmlns:ex="urn:example:export">
  <ex:Header>not a record</ex:Header>
  <ex:Form id="1"><ex:Nhs>9991000011</ex:Nhs><ex:Nested><ex:Form id="inner"/></ex:Nested></ex:Form>
  <ex:Form id="2"><ex:Nhs>9991000380</ex:Nhs></ex:Form>
  <ex:Batch><ex:Form id="3"/></ex:Batch>
</ex:Export>
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(text, encoding="utf-8")
    return path


def test_anchored_path_yields_only_the_record_elements(tmp_path: Path) -> None:
    records = list(read_xml(write(tmp_path, DOC), record_path="/ex:Export/ex:Form", namespaces=NS))
    assert [r.data.get("id") for r in records] == ["1", "2"]
    first = records[0]
    assert (first.origin.index, first.origin.line, first.origin.path) == (1, 4, "/ex:Export/ex:Form[1]")


def test_a_tag_alone_matches_at_any_depth(tmp_path: Path) -> None:
    records = list(read_xml(write(tmp_path, DOC), record_path="ex:Form", namespaces=NS))
    assert [r.data.get("id") for r in records] == ["inner", "1", "2", "3"]


def test_records_stay_usable_after_the_next_one_is_read(tmp_path: Path) -> None:
    records = list(read_xml(write(tmp_path, DOC), record_path="/ex:Export/ex:Form", namespaces=NS))
    assert [r.data.findtext("ex:Nhs", namespaces=NS) for r in records] == ["9991000011", "9991000380"]
    assert records[0].data.xpath("string(ex:Nhs)", namespaces=NS) == "9991000011"


def test_malformed_xml_keeps_earlier_records_then_stops_with_an_error_record(tmp_path: Path) -> None:
    broken = DOC.replace(
        '<ex:Form id="2"><ex:Nhs>9991000380</ex:Nhs></ex:Form>', '<ex:Form id="2"><ex:Nhs>x</ex:Nh></ex:Form>'
    )
    records = list(read_xml(write(tmp_path, broken), record_path="/ex:Export/ex:Form", namespaces=NS))
    assert [r.error is None for r in records] == [True, False]
    error = records[1]
    assert error.origin.line == 5 and error.origin.index == 2
    assert error.error_id == "read.xml.malformed"
    assert "not well-formed" in (error.error or "") and "1 record(s) before it were read" in (
        error.error or ""
    )


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    doc = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r><Form>&x;</Form></r>'
    records = list(read_xml(write(tmp_path, doc), record_path="/r/Form"))
    assert all(
        "TOP SECRET" not in ("".join(r.data.itertext()) if r.data is not None else "") for r in records
    )


def test_unknown_prefix_in_the_record_path_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        RecordPath("/zz:Export/zz:Form", NS)


def _generate(path: Path, forms: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write('<ex:Export xmlns:ex="urn:example:export">\n')
        for i in range(forms):
            handle.write(
                f'<ex:Form id="{i}"><ex:Nhs>9991000011</ex:Nhs><ex:Note>{"x" * 200}</ex:Note></ex:Form>\n'
            )
        handle.write("</ex:Export>\n")
    return path


def _peak(path: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_xml(path, record_path="/ex:Export/ex:Form", namespaces=NS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 0
    return peak


def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    """lxml allocates outside Python's tracker, so also check the tree is emptied as records go."""
    small = _peak(_generate(tmp_path / "small.xml", 5_000))
    large = _peak(_generate(tmp_path / "large.xml", 40_000))
    assert large < small * 1.5 + 200_000
    path = tmp_path / "large.xml"
    reader = read_xml(path, record_path="/ex:Export/ex:Form", namespaces=NS)
    for _ in range(30_000):
        record = next(reader)
    root = record.data.getroottree().getroot() if record.data.getparent() is not None else None
    assert root is None or len(root) < 1_000, (
        "finished records must be dropped from the tree (only read-ahead stays)"
    )
    reader.close()
