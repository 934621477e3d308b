"""Hugging Face style dataset folders in their plain-file layouts.

Supported: a folder (searched recursively) holding ``*.parquet`` files (the Hub's usual
format, e.g. ``data/test-00000-of-00002.parquet``), ``*.jsonl`` / ``*.ndjson`` (JSON lines),
``*.json`` (JSON lines, as ``Dataset.to_json`` writes, or one JSON list of objects) and
``*.csv`` / ``*.tsv`` files, e.g. ``test.jsonl``, ``test/part-0.jsonl`` or
``data/test-00000-of-00002.csv``, the layouts of Hub dataset repositories. Every data file is
read, in sorted order of its path inside the folder; point ``data:`` at one split's file or
sub-folder to use only that split. Hidden files and folders (``.git``, ``.cache``) and the
``datasets`` metadata files (``dataset_info.json``, ``state.json``...) are skipped.

Not supported: the Arrow files written by ``datasets.save_to_disk``; the error says how to
export them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.benchmarks.csv import read_csv
from monitor.benchmarks.jsonl import (
    is_json_array,
    read_json_array,
    read_json_lines,
    read_text,
    type_name,
    unreadable,
)
from monitor.benchmarks.parquet import read_parquet
from monitor.errors import BenchmarkError

DATA_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv", ".tsv")
_METADATA = frozenset(
    {"dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"}
)
_ARROW = ".arrow"


def read_dataset_dir(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, object)`` for every item of every data file in the folder; ``where``
    is ``file:line`` (``file: row N`` for Parquet), the place error messages name."""
    for path in find_data_files(folder):
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            for line, row in read_csv(path):
                yield f"{path}:{line}", row
        elif suffix == ".parquet":
            for number, obj in read_parquet(path):
                yield f"{path}: row {number}", obj
        elif suffix == ".json":
            for line, obj in _read_json_document(path):
                yield f"{path}:{line}", obj
        else:
            for line, obj in read_json_lines(path):
                yield f"{path}:{line}", obj


def find_data_files(folder: Path) -> list[Path]:
    """The data files of a dataset folder in sorted order; an error if there are none."""
    try:
        files = sorted(
            (p for p in folder.rglob("*") if p.is_file()),
            key=lambda p: p.relative_to(folder).as_posix(),
        )
    except OSError as exc:
        raise unreadable(folder, exc) from None
    visible = [
        p for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    data = [
        p for p in visible if p.suffix.lower() in DATA_SUFFIXES and p.name.lower() not in _METADATA
    ]
    if data:
        return data
    arrow = [p for p in visible if p.suffix.lower() == _ARROW]
    if arrow:
        raise BenchmarkError(
            f"{folder}: holds only Arrow files ({_names(folder, arrow)}), as "
            "datasets.save_to_disk writes them, which monitor does not read; export the split "
            "to Parquet or JSON lines and point `data:` at that file, e.g. "
            f"python -c \"import datasets; datasets.load_from_disk('{folder}')['test']"
            ".to_parquet('test.parquet')\""
        )
    found = f" (found: {_names(folder, visible)})" if visible else " (the folder is empty)"
    patterns = ", ".join(f"*{s}" for s in DATA_SUFFIXES)
    raise BenchmarkError(f"{folder}: no data files ({patterns}){found}")


def _read_json_document(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text(path)
    if not is_json_array(text):
        del text
        yield from read_json_lines(path)
        return
    for _, line, value in read_json_array(path, text):
        if not isinstance(value, dict):
            raise BenchmarkError(f"{path}:{line}: expected a JSON object, got {type_name(value)}")
        yield line, value


def _names(folder: Path, paths: list[Path], most: int = 3) -> str:
    names = [p.relative_to(folder).as_posix() for p in paths[:most]]
    more = f" and {len(paths) - most} more" if len(paths) > most else ""
    return ", ".join(names) + more
