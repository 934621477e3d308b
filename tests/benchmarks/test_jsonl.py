"""JSON lines benchmarks: parsing, keys, references, prompts and their error messages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.jsonl import read_json_lines
from monitor.benchmarks.versioning import content_key
from monitor.config import BenchmarkSettings
from monitor.core.model import ScorerSpec
from monitor.errors import BenchmarkError


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {
        "name": "qa",
        "data": str(path),
        "scorers": [ScorerSpec(kind="exact_match", name="exact_match")],
    }
    return BenchmarkSettings(**(values | overrides))


def write_jsonl(path: Path, *rows: dict[str, Any] | str) -> Path:
    """Write one line per row: dicts as JSON, strings verbatim."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path: Path, **overrides: Any) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(settings(path, **overrides))
    return str(info.value)


class TestReadJsonLines:
    """The line reader yields one object per non-blank line and names the line of any problem."""

    def test_yields_objects_with_their_line_numbers(self, tmp_path: Path) -> None:
        """Blank and whitespace-only lines are skipped but still counted."""
        path = write_jsonl(tmp_path / "d.jsonl", {"a": 1}, "", "   ", {"a": 2})
        assert list(read_json_lines(path)) == [(1, {"a": 1}), (4, {"a": 2})]

    def test_tolerates_a_byte_order_mark_and_crlf(self, tmp_path: Path) -> None:
        """A UTF-8 BOM on the first line and Windows line endings are accepted."""
        path = tmp_path / "d.jsonl"
        path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": "\xc3\xa9"}\r\n')
        assert list(read_json_lines(path)) == [(1, {"a": 1}), (2, {"a": "é"})]

    def test_line_separator_inside_a_string_does_not_split_the_line(self, tmp_path: Path) -> None:
        """U+2028 is legal inside a JSON string; only newline ends a line."""
        path = tmp_path / "d.jsonl"
        path.write_text('{"a": "x\u2028y"}\n{"a": 2}\n', encoding="utf-8")
        assert list(read_json_lines(path)) == [(1, {"a": "x\u2028y"}), (2, {"a": 2})]

    def test_invalid_json_names_the_line(self, tmp_path: Path) -> None:
        """A syntax error reports path:LINE, the decoder's message and the column."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, "", '{"id": "b" "x": 1}')
        with pytest.raises(BenchmarkError) as info:
            list(read_json_lines(path))
        assert str(info.value) == f"{path}:3: invalid JSON: Expecting ',' delimiter (column 12)"

    def test_a_line_that_is_not_an_object_is_an_error(self, tmp_path: Path) -> None:
        """Each line must hold an object, not a list or a scalar."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, "[1, 2]")
        with pytest.raises(BenchmarkError) as info:
            list(read_json_lines(path))
        assert str(info.value) == f"{path}:2: expected a JSON object, got list"

    def test_nan_is_rejected(self, tmp_path: Path) -> None:
        """NaN, which Python writes by default, is not JSON and is refused with its line."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, '{"id": "b", "score": NaN}')
        with pytest.raises(BenchmarkError) as info:
            list(read_json_lines(path))
        assert str(info.value) == (
            f"{path}:2: invalid JSON: NaN is not valid JSON (use null or a string)"
        )

    def test_invalid_utf8_names_the_line(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are reported on their own line."""
        path = tmp_path / "d.jsonl"
        path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
        with pytest.raises(BenchmarkError) as info:
            list(read_json_lines(path))
        assert str(info.value) == f"{path}:2: not valid UTF-8: invalid start byte"


class TestJsonlItems:
    """Loading a JSON lines benchmark builds keyed items with reference, prompt and split."""

    def test_builds_items_from_fields(self, tmp_path: Path) -> None:
        """Key from the id field, reference and split from their fields, prompt rendered."""
        path = write_jsonl(
            tmp_path / "d.jsonl",
            {"id": "q1", "question": "2+2?", "answer": "4", "vis": "public"},
            {"id": 7, "question": "3+3?", "answer": "6", "vis": "private"},
        )
        bench = load_benchmark(
            settings(path, prompt="Q: {{ question }}", reference="answer", split="vis")
        )
        first, second = bench.items
        assert (first.key, first.prompt, first.reference, first.split) == (
            "q1",
            "Q: 2+2?",
            "4",
            "public",
        )
        assert first.fields == {"id": "q1", "question": "2+2?", "answer": "4", "vis": "public"}
        assert (second.key, second.prompt, second.reference, second.split) == (
            "7",
            "Q: 3+3?",
            "6",
            "private",
        )

    def test_without_reference_or_prompt_settings_both_are_none(self, tmp_path: Path) -> None:
        """Reference and prompt stay None unless configured; a missing split field gives None."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a", "label": "x"})
        (item,) = load_benchmark(settings(path, split="vis")).items
        assert (item.reference, item.prompt, item.split) == (None, None, None)

    def test_custom_id_field(self, tmp_path: Path) -> None:
        """`id_field` names the field holding the key."""
        path = write_jsonl(tmp_path / "d.jsonl", {"uid": "u-1", "id": "ignored"})
        (item,) = load_benchmark(settings(path, id_field="uid")).items
        assert item.key == "u-1"

    def test_items_without_id_are_keyed_by_content(self, tmp_path: Path) -> None:
        """The key is 16 hex digits of the SHA-256 of the canonical fields, order-independent."""
        path = write_jsonl(tmp_path / "d.jsonl", '{"b": 2, "a": 1}')
        (item,) = load_benchmark(settings(path)).items
        assert item.key == content_key({"a": 1, "b": 2})
        assert len(item.key) == 16
        assert int(item.key, 16) >= 0

    def test_null_id_is_an_error(self, tmp_path: Path) -> None:
        """An id that is present but null cannot key an item."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, {"id": None})
        assert load_error(path) == (
            f"{path}:2: id field 'id' must be a string or a number, got null"
        )

    def test_limit_keeps_the_first_items_and_reads_no_further(self, tmp_path: Path) -> None:
        """With `limit: 2` the third line is never parsed, even if it is broken."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, {"id": "b"}, "{broken")
        bench = load_benchmark(settings(path, limit=2))
        assert [i.key for i in bench.items] == ["a", "b"]


class TestJsonlErrors:
    """Bad data is reported at load time with the file, line and field."""

    def test_duplicate_keys_name_both_lines(self, tmp_path: Path) -> None:
        """The second occurrence is reported with the line of the first."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"}, {"id": "b"}, "", {"id": "a"})
        assert load_error(path) == (f"{path}:4: duplicate item key 'a' (first at {path}:1)")

    def test_identical_items_without_id_suggest_adding_one(self, tmp_path: Path) -> None:
        """Two identical id-less items hash to the same key; the message says what to do."""
        path = write_jsonl(tmp_path / "d.jsonl", {"q": "x"}, {"q": "y"}, {"q": "x"})
        key = content_key({"q": "x"})
        assert load_error(path) == (
            f"{path}:3: duplicate item key '{key}' (first at {path}:1): "
            "the items are identical; remove one or give each an 'id'"
        )

    def test_missing_reference_field(self, tmp_path: Path) -> None:
        """An item lacking the reference field is reported with line, key and field."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a", "label": "x"}, {"id": "b"})
        assert load_error(path, reference="label") == (
            f"{path}:2: item 'b' has no reference field 'label'"
        )

    def test_prompt_field_missing_from_an_item(self, tmp_path: Path) -> None:
        """A template field an item lacks fails the load, naming line, field and item."""
        rows = [{"id": f"q{i}", "question": "?"} for i in range(1, 7)]
        path = write_jsonl(tmp_path / "data.jsonl", *rows, {"id": "q7", "text": "?"})
        assert load_error(path, prompt="Q: {{ question }}") == (
            f"{path}:7: prompt uses field 'question' missing from item 'q7'"
        )

    def test_several_missing_prompt_fields_are_listed(self, tmp_path: Path) -> None:
        """All missing fields are named, sorted."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a"})
        assert load_error(path, prompt="{{ q }} {{ context }}") == (
            f"{path}:1: prompt uses fields 'context', 'q' missing from item 'a'"
        )

    def test_prompt_that_fails_to_render(self, tmp_path: Path) -> None:
        """A render-time error (a missing nested attribute) names the line and item."""
        path = write_jsonl(tmp_path / "d.jsonl", {"id": "a", "meta": {}})
        assert load_error(path, prompt="{{ meta.source }}") == (
            f"{path}:1: cannot render the prompt for item 'a': "
            "'dict object' has no attribute 'source'"
        )

    def test_template_syntax_error_names_the_benchmark(self, tmp_path: Path) -> None:
        """A template that does not compile is reported before the data is read."""
        path = tmp_path / "missing.jsonl"
        assert load_error(path, prompt="Q: {{ question ") == (
            "benchmark 'qa': invalid prompt template: "
            "unexpected end of template, expected 'end of print statement'."
        )

    def test_empty_file_has_no_items(self, tmp_path: Path) -> None:
        """A file with only blank lines is an error, not an empty benchmark."""
        path = tmp_path / "d.jsonl"
        path.write_text("\n\n", encoding="utf-8")
        assert load_error(path) == f"{path}: no items"

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable path is reported with the OS error."""
        path = tmp_path / "nope.jsonl"
        assert load_error(path) == f"{path}: cannot read benchmark data: No such file or directory"

    def test_directory_given_as_jsonl(self, tmp_path: Path) -> None:
        """Forcing `format: jsonl` on a folder reports the OS error for the path."""
        assert load_error(tmp_path, format="jsonl") == (
            f"{tmp_path}: cannot read benchmark data: Is a directory"
        )


class TestJsonlPerformance:
    """Large files load in linear time: one json.loads per line, no quadratic work.

    Measured as a ratio within one test (10x the items must cost well under 30x the
    time), so a busy machine cannot fail it; absolute speed is for benchmarks/.
    """

    def test_load_time_grows_linearly_with_items(self, tmp_path: Path) -> None:
        """100 000 items cost at most about ten times 10 000 items."""

        def load(n: int) -> float:
            path = tmp_path / f"big{n}.jsonl"
            with path.open("w", encoding="utf-8") as out:
                for i in range(n):
                    row = {"id": i, "question": f"What is {i} + {i}?", "answer": str(2 * i)}
                    out.write(json.dumps(row) + "\n")
            start = time.perf_counter()
            bench = load_benchmark(settings(path, prompt="Q: {{ question }}", reference="answer"))
            elapsed = time.perf_counter() - start
            assert len(bench.items) == n
            assert bench.items[-1].prompt == f"Q: What is {n - 1} + {n - 1}?"
            return elapsed

        small = min(load(10_000) for _ in range(3))
        large = load(100_000)
        assert large < 30 * small, (small, large)
