"""CSV benchmarks: header, string values, row line numbers and error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.csv import read_csv
from monitor.config import BenchmarkSettings
from monitor.core.model import ScorerSpec
from monitor.errors import BenchmarkError


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {
        "name": "intents",
        "data": str(path),
        "scorers": [ScorerSpec(kind="exact_match", name="exact_match")],
    }
    return BenchmarkSettings(**(values | overrides))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def read_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(BenchmarkError) as info:
        list(read_csv(path, **kwargs))
    return str(info.value)


class TestReadCsv:
    """The CSV reader maps each row onto the header and keeps every value a string."""

    def test_rows_become_string_fields(self, tmp_path: Path) -> None:
        """Numbers stay strings exactly as written (leading zeros kept, empty cells empty)."""
        path = write(tmp_path / "d.csv", "id,text,label\n007,hello,\n8,bye,billing\n")
        assert list(read_csv(path)) == [
            (2, {"id": "007", "text": "hello", "label": ""}),
            (3, {"id": "8", "text": "bye", "label": "billing"}),
        ]

    def test_quoted_values_and_the_line_where_a_row_starts(self, tmp_path: Path) -> None:
        """A quoted value may hold commas and newlines; the next row keeps its own line."""
        text = 'id,text\n1,"a, b\nc"\n2,"say ""hi"""\n'
        path = write(tmp_path / "d.csv", text)
        assert list(read_csv(path)) == [
            (2, {"id": "1", "text": "a, b\nc"}),
            (4, {"id": "2", "text": 'say "hi"'}),
        ]

    def test_blank_lines_bom_and_crlf(self, tmp_path: Path) -> None:
        """A BOM before the header, CRLF endings and blank lines are all tolerated."""
        path = tmp_path / "d.csv"
        path.write_bytes(b"\xef\xbb\xbfid,text\r\n\r\n1,x\r\n")
        assert list(read_csv(path)) == [(3, {"id": "1", "text": "x"})]

    def test_tsv_files_are_tab_separated(self, tmp_path: Path) -> None:
        """A .tsv extension switches the delimiter to tab."""
        path = write(tmp_path / "d.tsv", "id\ttext\n1\ta,b\n")
        assert list(read_csv(path)) == [(2, {"id": "1", "text": "a,b"})]

    def test_wrong_number_of_columns(self, tmp_path: Path) -> None:
        """A row with an extra value is reported with its line."""
        path = write(tmp_path / "d.csv", "id,text\n1,x\n2,y,z\n")
        assert read_error(path) == f"{path}:3: expected 2 columns as in the header, got 3"

    def test_too_few_columns(self, tmp_path: Path) -> None:
        """A row missing a value is reported with its line."""
        path = write(tmp_path / "d.csv", "id,text,label\n1,x\n")
        assert read_error(path) == f"{path}:2: expected 3 columns as in the header, got 2"

    def test_required_column_missing_from_header(self, tmp_path: Path) -> None:
        """The message lists the columns the header does have."""
        path = write(tmp_path / "d.csv", "a,b\n1,2\n")
        assert read_error(path, required=["label"]) == (
            f"{path}:1: header has no column 'label' (columns: a, b)"
        )

    def test_repeated_header_column(self, tmp_path: Path) -> None:
        """Two columns with one name would silently lose data, so it is an error."""
        path = write(tmp_path / "d.csv", "id,text,text\n1,a,b\n")
        assert read_error(path) == f"{path}:1: header repeats column 'text'"

    def test_empty_file_has_no_header(self, tmp_path: Path) -> None:
        """A header row is required."""
        path = write(tmp_path / "d.csv", "")
        assert read_error(path) == f"{path}: no header row (the file is empty)"

    def test_invalid_utf8_names_the_line(self, tmp_path: Path) -> None:
        """Encoding errors are reported on their physical line."""
        path = tmp_path / "d.csv"
        path.write_bytes(b"id,text\n1,ok\n2,\xe9t\xe9\n")
        assert read_error(path) == f"{path}:3: not valid UTF-8: invalid continuation byte"


class TestCsvBenchmark:
    """A CSV file loads into items like any other format."""

    def test_loads_items_with_reference_prompt_and_split(self, tmp_path: Path) -> None:
        """Reference, prompt and split come from the columns."""
        path = write(
            tmp_path / "d.csv",
            "id,text,label,visibility\nr1,Refund me,refund,public\nr2,Bill?,billing,private\n",
        )
        bench = load_benchmark(
            settings(path, prompt="Classify: {{ text }}", reference="label", split="visibility")
        )
        assert [(i.key, i.prompt, i.reference, i.split) for i in bench.items] == [
            ("r1", "Classify: Refund me", "refund", "public"),
            ("r2", "Classify: Bill?", "billing", "private"),
        ]

    def test_reference_column_missing_from_header(self, tmp_path: Path) -> None:
        """A reference column absent from the header fails on line 1, before any row."""
        path = write(tmp_path / "d.csv", "a,b\n1,2\n")
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path, reference="label"))
        assert str(info.value) == f"{path}:1: header has no column 'label' (columns: a, b)"

    def test_prompt_field_missing_from_the_columns(self, tmp_path: Path) -> None:
        """A template field with no column is reported on the first data row."""
        path = write(tmp_path / "d.csv", "id,text\nq1,x\n")
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path, prompt="{{ question }}"))
        assert str(info.value) == (f"{path}:2: prompt uses field 'question' missing from item 'q1'")

    def test_duplicate_ids(self, tmp_path: Path) -> None:
        """Duplicate ids name both lines."""
        path = write(tmp_path / "d.csv", "id,text\n1,a\n2,b\n1,c\n")
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path))
        assert str(info.value) == f"{path}:4: duplicate item key '1' (first at {path}:2)"

    def test_header_only_has_no_items(self, tmp_path: Path) -> None:
        """A header without rows is an empty benchmark, which is an error."""
        path = write(tmp_path / "d.csv", "id,text\n")
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path))
        assert str(info.value) == f"{path}: no items"
