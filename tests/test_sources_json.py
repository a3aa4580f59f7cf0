"""NDJSON and streaming JSON-array readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.sources import json as json_source
from fhir_dnacpr.sources.json import read_json_array, read_ndjson


def write(tmp_path: Path, content: str | bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_ndjson_lines_blank_lines_and_bad_lines(tmp_path: Path) -> None:
    content = b'\xef\xbb\xbf{"a": 1}\n\n[1, 2]\n{"broken": \n{"b": "\xff"}\n"text"\n{"c": 3}'
    records = list(read_ndjson(write(tmp_path, content, "x.ndjson")))
    assert [r.origin.line for r in records] == [1, 3, 4, 5, 6, 7]
    assert records[0].data == {"a": 1}
    assert "an array, not an object" in (records[1].error or "")
    assert "not valid JSON" in (records[2].error or "") and records[2].text == '{"broken": '
    assert "not valid JSON" in (records[3].error or "")
    assert "a string, not an object" in (records[4].error or "")
    assert records[5].data == {"c": 3}
    assert [r.error_id for r in records] == [
        None,
        "read.json.not-object",
        "read.json.invalid",
        "read.json.invalid",
        "read.json.not-object",
        None,
    ]


def test_ndjson_error_messages_do_not_repeat_the_line(tmp_path: Path) -> None:
    [record] = read_ndjson(write(tmp_path, '{"nhs": "9991000011", oops}\n', "x.ndjson"))
    assert "9991000011" not in (record.error or "")


def test_json_array_at_the_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, '[\n  {"a": 1},\n  {"a": 2}\n]\n', "x.json")
    records = list(read_json_array(path))
    assert [r.data for r in records] == [{"a": 1}, {"a": 2}]
    assert [(r.origin.line, r.origin.index, r.origin.path) for r in records] == [
        (2, 1, "$[0]"),
        (3, 2, "$[1]"),
    ]


def test_json_array_nested_under_keys_skips_sibling_values(tmp_path: Path) -> None:
    doc = {
        "meta": {"tricky": ["]", "[", {"}": "{"}]},
        "export": {"count": 2, "records": [{"a": 1}, {"a": 2}]},
    }
    path = write(tmp_path, json.dumps(doc), "x.json")
    assert [r.data for r in read_json_array(path, array_path="export.records")] == [{"a": 1}, {"a": 2}]


def test_missing_array_path_is_an_error_record(tmp_path: Path) -> None:
    path = write(tmp_path, '{"other": []}', "x.json")
    [record] = read_json_array(path, array_path="records")
    assert "not found" in (record.error or "")


def test_non_object_elements_are_error_records_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"a": 1}, 12345678901234567890, "x", {"a": 2}]', "x.json")
    records = list(read_json_array(path))
    assert [r.error is None for r in records] == [True, False, False, True]
    assert "a number" in (records[1].error or "")


def test_broken_json_keeps_earlier_records_then_stops(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"a": 1},\n{"a": 2}\n{"a": 3}]', "x.json")
    records = list(read_json_array(path))
    assert [r.data for r in records[:2]] == [{"a": 1}, {"a": 2}]
    assert records[2].error is not None and records[2].origin.line == 3
    assert "2 record(s) before it were read" in records[2].error
    assert records[2].error_id == "read.json.broken"


def test_truncated_file_is_an_error_record(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"a": 1}, {"a": "unterminated', "x.json")
    records = list(read_json_array(path))
    assert records[0].data == {"a": 1} and records[1].error is not None


def test_empty_array(tmp_path: Path) -> None:
    assert list(read_json_array(write(tmp_path, " [ ] ", "x.json"))) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=6),
    indent=st.sampled_from([None, 1]),
)
def test_records_survive_any_chunk_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: list[dict], indent: int | None
) -> None:
    monkeypatch.setattr(json_source, "_CHUNK", 7)
    path = write(tmp_path, json.dumps(records, indent=indent, ensure_ascii=False), "x.json")
    assert [r.data for r in read_json_array(path)] == records


def _array_peak(path: Path) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        count = sum(1 for _ in read_json_array(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 0
    return peak


def test_json_array_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    record = {"nhs": "9991000011", "note": "x" * 300, "people": [{"name": "A"}, {"name": "B"}]}
    for name, count in (("small.json", 4_000), ("large.json", 16_000)):
        with (tmp_path / name).open("w", encoding="utf-8") as handle:
            handle.write("[\n" + ",\n".join(json.dumps(record) for _ in range(count)) + "\n]\n")
    small = _array_peak(tmp_path / "small.json")
    large = _array_peak(tmp_path / "large.json")
    assert (tmp_path / "large.json").stat().st_size > 5_000_000
    assert large < small * 1.3 + 200_000, f"peak grew from {small} to {large} bytes"
