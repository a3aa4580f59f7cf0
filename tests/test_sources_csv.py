"""The CSV reader: encodings, delimiters, RFC 4180 quoting, broken rows, origins, flat memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_dnacpr.sources.csv import detect_encoding, read_csv, sniff_delimiter


def write(tmp_path: Path, content: bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_utf8_with_bom_is_detected_and_the_bom_is_not_in_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffid,name\r\n1,Zoë\r\n".encode())
    assert detect_encoding(path) == "utf-8-sig"
    [record] = read_csv(path)
    assert record.data == {"id": "1", "name": "Zoë"}


def test_plain_utf8_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path, "id,name\n1,Zoë\n".encode())
    assert detect_encoding(path) == "utf-8"
    assert next(read_csv(path)).data["name"] == "Zoë"


def test_windows_1252_is_detected_even_when_the_first_megabyte_is_ascii(tmp_path: Path) -> None:
    filler = b"".join(b"%d,plain\r\n" % i for i in range(120_000))
    path = write(tmp_path, b"id,note\r\n" + filler + "999999,£5 for Renée\r\n".encode("cp1252"))
    assert detect_encoding(path) == "cp1252"
    *_, last = read_csv(path)
    assert last.data["note"] == "£5 for Renée"


def test_declared_encoding_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "id,name\n1,café\n".encode("latin-1"))
    assert next(read_csv(path, encoding="latin-1")).data["name"] == "café"


def test_bytes_invalid_in_the_declared_encoding_make_an_error_record_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, b"id,name\n1,caf\xe9\n2,ok\n")
    first, second = read_csv(path, encoding="utf-8")
    assert first.error is not None and "not valid utf-8" in first.error
    assert first.origin.line == 2
    assert second.data == {"id": "2", "name": "ok"}


def test_embedded_newlines_and_doubled_quotes_and_start_lines(tmp_path: Path) -> None:
    content = 'id,note\r\n1,"line one\r\nline ""two"""\r\n\r\n2,"a,b"\r\n'
    path = write(tmp_path, content.encode())
    first, second = read_csv(path)
    assert first.data["note"] == 'line one\r\nline "two"'
    assert (first.origin.line, first.origin.index) == (2, 1)
    assert (second.origin.line, second.origin.index) == (5, 2)  # the blank line 4 is skipped
    assert second.data["note"] == "a,b"


def test_wrong_field_count_is_an_error_record_with_the_raw_text(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b,c\n1,2,3\n4,5\n6,7,8\n")
    records = list(read_csv(path))
    assert [r.error is None for r in records] == [True, False, True]
    assert records[1].text == "4,5\n"
    assert records[1].origin.line == 3
    assert "2 fields but the header has 3" in (records[1].error or "")


def test_broken_quoting_is_an_error_record_and_the_next_row_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,"x"y\n2,z\n')
    bad, good = read_csv(path)
    assert bad.error is not None and "quoting" in bad.error
    assert bad.text == '1,"x"y\n'
    assert good.data == {"a": "2", "b": "z"}


def test_unterminated_quote_at_end_of_file_is_an_error_record(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,ok\n2,"never closed\n3,x\n')
    records = list(read_csv(path))
    assert records[0].data == {"a": "1", "b": "ok"}
    assert records[1].error is not None
    assert records[1].origin.line == 3
    assert "3,x" in (records[1].text or "")


def test_delimiter_is_sniffed_from_the_header(tmp_path: Path) -> None:
    for delimiter in (";", "\t", "|", ","):
        path = write(tmp_path, f'id{delimiter}name{delimiter}x\n1{delimiter}"a,b"{delimiter}z\n'.encode())
        assert next(read_csv(path)).data == {"id": "1", "name": "a,b", "x": "z"}


def test_sniffing_ignores_delimiters_inside_quoted_header_names() -> None:
    assert sniff_delimiter('"a;b;c",d,e\n') == ","


def test_declared_delimiter_wins(tmp_path: Path) -> None:
    path = write(tmp_path, b"a;b,c\n1;2,3\n")
    assert next(read_csv(path, delimiter=";")).data == {"a": "1", "b,c": "2,3"}


def test_repeated_header_names_stay_addressable(tmp_path: Path) -> None:
    path = write(tmp_path, b"name,name,id\nx,y,1\n")
    assert next(read_csv(path)).data == {"name": "x", "name#2": "y", "id": "1"}


def test_empty_file_and_header_only_file_yield_nothing(tmp_path: Path) -> None:
    assert list(read_csv(write(tmp_path, b""))) == []
    assert list(read_csv(write(tmp_path, b"a,b\r\n", "h.csv"))) == []


text_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(text_values, text_values), min_size=1, max_size=8),
    delimiter=st.sampled_from(",;|\t"),
)
def test_any_text_round_trips_through_rfc4180_quoting(
    tmp_path: Path, rows: list[tuple[str, str]], delimiter: str
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["first", "second"])
    writer.writerows(rows)
    path = write(tmp_path, buffer.getvalue().encode("utf-8"), "round.csv")
    records = list(read_csv(path, delimiter=delimiter, encoding="utf-8"))
    assert [(r.data["first"], r.data["second"]) for r in records] == rows


def _peak_reading(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_csv(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def _generate(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("id,nhs,note\r\n")
        for i in range(rows):
            handle.write(f'{i},9991000011,"a note that is long enough to matter,\r\nnumber {i}"\r\n')
    return path


def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    small_count, small_peak = _peak_reading(_generate(tmp_path / "small.csv", 8_000))
    large = _generate(tmp_path / "large.csv", 32_000)
    large_count, large_peak = _peak_reading(large)
    assert (small_count, large_count) == (8_000, 32_000)
    assert large.stat().st_size > 2_000_000
    assert large_peak < small_peak * 1.3 + 100_000, f"peak grew from {small_peak} to {large_peak} bytes"


def test_error_records_carry_stable_error_ids(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1\n2,"x"y\n3,caf\xe9\n', "ids.csv")
    assert [r.error_id for r in read_csv(path, encoding="utf-8")] == [
        "read.csv.field-count",
        "read.csv.quoting",
        "read.csv.encoding",
    ]


def test_a_real_replacement_character_is_not_an_encoding_error(tmp_path: Path) -> None:
    path = write(tmp_path, "id,note\n1,\ufffd is a real character\n".encode(), "fffd.csv")
    [record] = read_csv(path, encoding="utf-8")
    assert record.error is None and record.data["note"].startswith("\ufffd")
