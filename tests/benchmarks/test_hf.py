"""Hugging Face style dataset folders: JSON lines, JSON and CSV layouts (Parquet: test_parquet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.hf import find_data_files
from monitor.config import BenchmarkSettings
from monitor.core.model import ScorerSpec
from monitor.errors import BenchmarkError


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {
        "name": "hub",
        "data": str(path),
        "scorers": [ScorerSpec(kind="exact_match", name="exact_match")],
    }
    return BenchmarkSettings(**(values | overrides))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def keys(folder: Path, **overrides: Any) -> list[str]:
    return [i.key for i in load_benchmark(settings(folder, **overrides)).items]


def load_error(path: Path, **overrides: Any) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(settings(path, **overrides))
    return str(info.value)


class TestDatasetLayouts:
    """Every data file of the folder is read, in sorted order of its relative path."""

    def test_a_folder_is_detected_as_a_dataset(self, tmp_path: Path) -> None:
        """`format: auto` on a directory reads it as a dataset folder."""
        write(tmp_path / "test.jsonl", jsonl({"id": "a", "label": "x"}))
        bench = load_benchmark(settings(tmp_path, reference="label"))
        assert [(i.key, i.reference) for i in bench.items] == [("a", "x")]

    def test_sharded_files_under_data_are_read_in_order(self, tmp_path: Path) -> None:
        """Shard 00000 is read before shard 00001, whichever was written first."""
        write(tmp_path / "data" / "test-00001-of-00002.jsonl", jsonl({"id": "c"}, {"id": "d"}))
        write(tmp_path / "data" / "test-00000-of-00002.jsonl", jsonl({"id": "a"}, {"id": "b"}))
        write(tmp_path / "README.md", "# card\n")
        assert keys(tmp_path) == ["a", "b", "c", "d"]

    def test_split_subfolder_can_be_selected_directly(self, tmp_path: Path) -> None:
        """Pointing `data:` at one split's folder reads only that split."""
        write(tmp_path / "train" / "part-0.jsonl", jsonl({"id": "t1"}))
        write(tmp_path / "test" / "part-0.jsonl", jsonl({"id": "e1"}))
        assert keys(tmp_path) == ["e1", "t1"]
        assert keys(tmp_path / "test") == ["e1"]

    def test_json_list_json_lines_and_csv_files(self, tmp_path: Path) -> None:
        """A .json file may be a JSON list or JSON lines; CSV values stay strings."""
        write(tmp_path / "a.json", json.dumps([{"id": "l1", "n": 1}, {"id": "l2", "n": 2}]))
        write(tmp_path / "b.json", jsonl({"id": "j1", "n": 3}))
        write(tmp_path / "c.csv", "id,n\nc1,4\n")
        items = load_benchmark(settings(tmp_path)).items
        assert [(i.key, i.fields["n"]) for i in items] == [
            ("l1", 1),
            ("l2", 2),
            ("j1", 3),
            ("c1", "4"),
        ]

    def test_metadata_and_hidden_files_are_skipped(self, tmp_path: Path) -> None:
        """datasets metadata (dataset_info.json, state.json) and hidden folders are not data."""
        write(tmp_path / "test.jsonl", jsonl({"id": "a"}))
        write(tmp_path / "dataset_info.json", '{"features": {}}')
        write(tmp_path / "state.json", '{"_data_files": []}')
        write(tmp_path / ".cache" / "x.jsonl", jsonl({"id": "hidden"}))
        assert find_data_files(tmp_path) == [tmp_path / "test.jsonl"]

    def test_explicit_hf_format_on_a_file_is_an_error(self, tmp_path: Path) -> None:
        """`format: hf` needs a folder."""
        path = write(tmp_path / "test.jsonl", jsonl({"id": "a"}))
        assert load_error(path, format="hf") == f"{path}: format hf needs a folder of data files"


class TestDatasetErrors:
    """Problems name the folder, or the file and line inside it."""

    def test_arrow_only_folder_explains_how_to_export(self, tmp_path: Path) -> None:
        """A save_to_disk folder is refused with the export command to run."""
        write(tmp_path / "dataset_info.json", "{}")
        write(tmp_path / "state.json", "{}")
        write(tmp_path / "data-00000-of-00001.arrow", "ARROW1")
        message = load_error(tmp_path)
        assert message.startswith(
            f"{tmp_path}: holds only Arrow files (data-00000-of-00001.arrow), as "
            "datasets.save_to_disk writes them, which monitor does not read; export the split"
        )
        assert (
            f"datasets.load_from_disk('{tmp_path}')['test'].to_parquet('test.parquet')" in message
        )

    def test_arrow_files_list_a_few_names(self, tmp_path: Path) -> None:
        """Many Arrow shards are named three at a time, with a count of the rest."""
        for i in range(5):
            write(tmp_path / "data" / f"test-{i:05d}-of-00005.arrow", "ARROW1")
        assert load_error(tmp_path).startswith(
            f"{tmp_path}: holds only Arrow files (data/test-00000-of-00005.arrow, "
            "data/test-00001-of-00005.arrow, data/test-00002-of-00005.arrow and 2 more)"
        )

    def test_folder_without_data_files(self, tmp_path: Path) -> None:
        """Unsupported files are listed so the user sees what was found."""
        write(tmp_path / "README.md", "# card\n")
        write(tmp_path / "test.jsonl.gz", "")
        assert load_error(tmp_path) == (
            f"{tmp_path}: no data files (*.parquet, *.jsonl, *.ndjson, *.json, *.csv, *.tsv) "
            "(found: README.md, test.jsonl.gz)"
        )

    def test_empty_folder(self, tmp_path: Path) -> None:
        """An empty folder says so."""
        assert load_error(tmp_path) == (
            f"{tmp_path}: no data files (*.parquet, *.jsonl, *.ndjson, *.json, *.csv, *.tsv) "
            "(the folder is empty)"
        )

    def test_bad_line_names_the_file_inside_the_folder(self, tmp_path: Path) -> None:
        """Errors point at the data file and line, not just the folder."""
        write(tmp_path / "a.jsonl", jsonl({"id": "a"}))
        bad = write(tmp_path / "b.jsonl", '{"id": "b"}\n{oops\n')
        assert load_error(tmp_path) == (
            f"{bad}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)"
        )

    def test_json_list_element_that_is_not_an_object(self, tmp_path: Path) -> None:
        """Elements of a JSON list file must be objects; the line is given."""
        bad = write(tmp_path / "a.json", '[\n{"id": "a"},\n3\n]')
        assert load_error(tmp_path) == f"{bad}:3: expected a JSON object, got number"

    def test_duplicate_ids_across_files(self, tmp_path: Path) -> None:
        """Loading train and test together with overlapping ids names both files."""
        test = write(tmp_path / "test.jsonl", jsonl({"id": "1"}))
        train = write(tmp_path / "train.jsonl", jsonl({"id": "0"}, {"id": "1"}))
        assert load_error(tmp_path) == (f"{train}:2: duplicate item key '1' (first at {test}:1)")
