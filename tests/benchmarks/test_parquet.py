"""Parquet files and Hugging Face dataset folders in Parquet, written by the tests themselves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import arro3.core as ac
import arro3.io as aio
import pytest

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.parquet import read_parquet
from monitor.config import BenchmarkSettings, load_settings
from monitor.core.model import ScorerSpec
from monitor.errors import BenchmarkError

DT = ac.DataType
EXACT = ScorerSpec(kind="exact_match", name="exact_match")

# nested values, unicode, ints next to floats, nulls: what Hub datasets hold
ROWS: list[dict[str, Any]] = [
    {
        "question": "Quelle est la capitale de la France ?",
        "answer": "Paris",
        "choices": ["Paris", "Lyon"],
        "meta": {"difficulty": 1, "score": 0.5, "source": None},
        "turns": [{"role": "user", "content": "hi"}],
    },
    {
        "question": "2 + 2 = ?",
        "answer": "4",
        "choices": [],
        "meta": {"difficulty": 2, "score": 1.25, "source": "gsm"},
        "turns": [],
    },
]


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {"name": "hub", "data": str(path), "scorers": [EXACT]}
    return BenchmarkSettings(**(values | overrides))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]], **options: Any) -> Path:
    """A Parquet copy of JSON rows, nested columns included (schema inferred from the JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = write_jsonl(path.with_name(f".{path.name}.source.jsonl"), rows)
    table = aio.read_json(str(source), aio.infer_json_schema(str(source))).read_all()
    source.unlink()
    aio.write_parquet(table, str(path), **options)
    return path


def write_columns(path: Path, columns: Mapping[str, ac.Array]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    aio.write_parquet(ac.Table.from_pydict(dict(columns)), str(path))
    return path


def load_error(path: Path, **overrides: Any) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(settings(path, **overrides))
    return str(info.value)


class TestParquetDatasets:
    """Parquet rows become items whose fields are the columns."""

    def test_hub_folder_of_parquet_shards_loads_in_order(self, tmp_path: Path) -> None:
        """Shards under data/ are read in the order of their names, rows in file order."""
        rows = [{"id": f"q{i}", "text": f"t{i}", "label": str(i % 2)} for i in range(6)]
        write_parquet(tmp_path / "data" / "test-00001-of-00002.parquet", rows[3:])
        write_parquet(tmp_path / "data" / "test-00000-of-00002.parquet", rows[:3])
        (tmp_path / "README.md").write_text("# card\n", "utf-8")
        bench = load_benchmark(settings(tmp_path, reference="label", prompt="Q: {{ text }}"))
        assert [i.key for i in bench.items] == [f"q{i}" for i in range(6)]
        assert bench.items[4].fields == {"id": "q4", "text": "t4", "label": "0"}
        assert bench.items[4].reference == "0"
        assert bench.items[4].prompt == "Q: t4"

    def test_a_single_parquet_file_is_read_by_its_extension(self, tmp_path: Path) -> None:
        """`data:` may name one split's Parquet file directly."""
        path = write_parquet(tmp_path / "test.parquet", ROWS)
        bench = load_benchmark(settings(path, reference="answer"))
        assert [i.reference for i in bench.items] == ["Paris", "4"]
        assert bench.items[0].fields == ROWS[0]

    @pytest.mark.parametrize("compression", ["snappy", "zstd(3)", "gzip(6)", "uncompressed"])
    def test_parquet_and_jsonl_copies_have_one_version(
        self, tmp_path: Path, compression: str
    ) -> None:
        """The same rows in Parquet and in JSON lines give the same keys and version."""
        jsonl = write_jsonl(tmp_path / "jsonl" / "test.jsonl", ROWS)
        parquet = write_parquet(tmp_path / "pq" / "test.parquet", ROWS, compression=compression)
        from_jsonl = load_benchmark(settings(jsonl.parent, reference="answer"))
        from_parquet = load_benchmark(settings(parquet.parent, reference="answer"))
        assert [i.fields for i in from_parquet.items] == ROWS
        assert [i.key for i in from_parquet.items] == [i.key for i in from_jsonl.items]
        assert from_parquet.version == from_jsonl.version

    def test_a_changed_value_changes_the_version(self, tmp_path: Path) -> None:
        """The version follows the Parquet content: one changed answer gives a new one."""
        first = write_parquet(tmp_path / "a" / "test.parquet", ROWS)
        changed = [ROWS[0], {**ROWS[1], "answer": "5"}]
        second = write_parquet(tmp_path / "b" / "test.parquet", changed)
        versions = [
            load_benchmark(settings(p, reference="answer")).version for p in (first, second)
        ]
        assert versions[0] != versions[1]

    def test_limit_reads_only_the_first_rows(self, tmp_path: Path) -> None:
        """A limit takes the first rows of the first shard."""
        rows = [{"id": i} for i in range(3000)]
        path = write_parquet(tmp_path / "test.parquet", rows, max_row_group_size=500)
        assert [i.key for i in load_benchmark(settings(path, limit=3)).items] == ["0", "1", "2"]

    def test_dates_and_timestamps_become_iso_strings(self, tmp_path: Path) -> None:
        """Date and timestamp columns read as ISO 8601 text, as JSON has no date type."""
        days = ac.Array([19723], DT.int32()).cast(DT.date32())
        stamps = ac.Array([1_704_164_645_000_000], DT.int64()).cast(DT.timestamp("us", tz="UTC"))
        path = write_columns(tmp_path / "t.parquet", {"day": days, "at": stamps})
        assert list(read_parquet(path)) == [
            (1, {"day": "2024-01-01", "at": "2024-01-02T03:04:05+00:00"})
        ]

    def test_mixed_folder_reads_parquet_and_jsonl(self, tmp_path: Path) -> None:
        """A folder may mix Parquet and JSON lines files; all are read in name order."""
        write_parquet(tmp_path / "a.parquet", [{"id": "p"}])
        write_jsonl(tmp_path / "b.jsonl", [{"id": "j"}])
        assert [i.key for i in load_benchmark(settings(tmp_path)).items] == ["p", "j"]


class TestParquetErrors:
    """Broken files and values without a JSON form name the file, the row and the column."""

    def test_truncated_download(self, tmp_path: Path) -> None:
        """A file cut short (an interrupted download) is named with its size."""
        path = write_parquet(tmp_path / "test.parquet", ROWS)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        assert load_error(tmp_path) == (
            f"{path}: truncated Parquet file ({len(data) // 2} bytes, no complete footer): "
            "download it again"
        )

    def test_not_a_parquet_file(self, tmp_path: Path) -> None:
        """A text file with a .parquet name is refused before any decoding."""
        path = tmp_path / "test.parquet"
        path.write_text('{"id": 1}\n', "utf-8")
        assert load_error(path) == f"{path}: not a Parquet file (it does not start with PAR1)"

    def test_encrypted_footer(self, tmp_path: Path) -> None:
        """A file with an encrypted footer (magic PARE) is named as such, not as truncated."""
        path = tmp_path / "test.parquet"
        path.write_bytes(b"PARE" + b"\0" * 32 + (16).to_bytes(4, "little") + b"PARE")
        assert load_error(path) == f"{path}: encrypted Parquet files are not supported"

    def test_corrupt_footer_is_a_benchmark_error(self, tmp_path: Path) -> None:
        """A footer that does not decode is a BenchmarkError, never an escaping Rust panic."""
        path = write_parquet(tmp_path / "test.parquet", ROWS)
        data = bytearray(path.read_bytes())
        footer = int.from_bytes(data[-8:-4], "little")
        data[-8 - footer : -8] = b"\xab" * footer
        path.write_bytes(bytes(data))
        assert load_error(path).startswith(f"{path}: not a readable Parquet file: ")

    def test_nan_names_row_and_column(self, tmp_path: Path) -> None:
        """NaN is refused as in JSON lines, naming the row and the nested column."""
        values = ac.Array([0.5, float("nan")], DT.float64())
        path = write_columns(tmp_path / "t.parquet", {"score": values})
        assert load_error(path) == (
            f"{path}: row 2: column 'score': nan is not valid JSON (write null instead)"
        )

    def test_binary_column_is_refused(self, tmp_path: Path) -> None:
        """Image or audio bytes have no JSON form; the message says to drop the column."""
        path = write_columns(tmp_path / "t.parquet", {"image": ac.Array([b"\x89PNG"], DT.binary())})
        assert load_error(path) == (
            f"{path}: row 1: column 'image': binary values (images, audio) have no JSON form; "
            "drop the column"
        )

    def test_config_errors_name_the_config_field_and_the_row(self, tmp_path: Path) -> None:
        """Loaded from a config, a bad row names config file:line: field, then file and row."""
        values = ac.Array([1.0, 2.0, float("inf")], DT.float64())
        path = write_columns(tmp_path / "data" / "test.parquet", {"x": values})
        config = tmp_path / "monitor.yaml"
        config.write_text(
            "benchmarks:\n  - name: hub\n    data: data\n    scorers: [exact_match]\n", "utf-8"
        )
        bench = load_settings(config).benchmarks[0]
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(bench)
        assert str(info.value) == (
            f"{config}:3: benchmarks[0].data: {path.resolve()}: row 3: column 'x': "
            "inf is not valid JSON (write null instead)"
        )

    def test_explicit_parquet_format(self, tmp_path: Path) -> None:
        """`format: parquet` reads a file whatever its name."""
        path = write_parquet(tmp_path / "export.bin", [{"id": "a"}])
        assert [i.key for i in load_benchmark(settings(path, format="parquet")).items] == ["a"]
