"""Parquet files, as the Hugging Face Hub serves datasets (``data/test-00000-of-00001.parquet``).

Read with arro3-io, a small build of the Rust ``arrow``/``parquet`` crates (about 12 MB of
wheels against pyarrow's 55 MB; see docs/configuration.md), imported on first use so that
commands which never meet a Parquet file do not pay for it. Batches are read one at a time,
so a ``limit`` stops reading early.

Each row becomes one item whose fields are the columns, with the values a JSON lines copy of
the same data would give: strings, numbers, booleans, null, lists and objects (structs), so
both copies get the same benchmark version. Dates and times become ISO 8601 strings. Values
JSON has no form for are refused, naming the file, the row (counted from 1) and the column:
binary columns (images, audio), decimals, durations, and NaN or infinite floats (as the JSON
lines reader refuses them: stores such as PostgreSQL's JSONB reject them later).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from monitor.benchmarks.jsonl import unreadable
from monitor.errors import BenchmarkError

_MAGIC = b"PAR1"
_ENCRYPTED = b"PARE"  # the magic of files with an encrypted footer
_TAIL = 8  # footer length (4 bytes, little-endian) + magic


class _ValueError(Exception):
    """A value with no JSON form; `column` is the path inside the row (``meta.score``)."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, object)`` for every row of a Parquet file, rows counted from 1."""
    _check_envelope(path)
    import arro3.io  # noqa: PLC0415 - lazy: see the module docstring

    try:
        reader = arro3.io.read_parquet(str(path))
    except BaseException as exc:
        # arro3 turns a footer it cannot decode into a Rust panic, a BaseException;
        # anything else (KeyboardInterrupt, SystemExit) is re-raised as it is
        if not _is_decode_failure(exc):
            raise
        raise BenchmarkError(f"{path}: not a readable Parquet file: {_reason(exc)}") from None
    row = 0
    for batch in _batches(path, reader):
        for record in batch.to_struct_array().to_pylist():
            row += 1
            try:
                yield row, {str(k): _json_value(v, str(k)) for k, v in record.items()}
            except _ValueError as exc:
                raise BenchmarkError(
                    f"{path}: row {row}: column {exc.column!r}: {exc.message}"
                ) from None


def _check_envelope(path: Path) -> None:
    """Refuse a truncated or foreign file before arro3 sees it (see `read_parquet`)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_MAGIC))
            size = handle.seek(0, 2)
            if size >= len(_MAGIC) + _TAIL:
                handle.seek(size - _TAIL)
                tail = handle.read(_TAIL)
            else:
                tail = b""
    except OSError as exc:
        raise unreadable(path, exc) from None
    if head == _ENCRYPTED or tail[4:] == _ENCRYPTED:
        raise BenchmarkError(f"{path}: encrypted Parquet files are not supported")
    if head != _MAGIC:
        raise BenchmarkError(f"{path}: not a Parquet file (it does not start with PAR1)")
    footer = int.from_bytes(tail[:4], "little") if len(tail) == _TAIL else -1
    if tail[4:] != _MAGIC or not 0 < footer <= size - len(_MAGIC) - _TAIL:
        raise BenchmarkError(
            f"{path}: truncated Parquet file ({size} bytes, no complete footer): download it again"
        )


def _is_decode_failure(exc: BaseException) -> bool:
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _reason(exc: BaseException) -> str:
    text = str(exc).removeprefix("called `Result::unwrap()` on an `Err` value: ")
    return " ".join(text.split())[:200] or type(exc).__name__


def _batches(path: Path, reader: Any) -> Iterator[Any]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except BaseException as exc:
            if not _is_decode_failure(exc):
                raise
            raise BenchmarkError(f"{path}: cannot read Parquet data: {_reason(exc)}") from None
        yield batch


def _json_value(value: Any, column: str) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _ValueError(column, f"{value} is not valid JSON (write null instead)")
        return value
    if isinstance(value, dict):
        return {str(k): _json_value(v, f"{column}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{column}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raise _ValueError(
            column, "binary values (images, audio) have no JSON form; drop the column"
        )
    raise _ValueError(column, f"{type(value).__name__} values have no JSON form")
