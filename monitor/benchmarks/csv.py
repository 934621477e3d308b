"""CSV (and tab-separated ``.tsv``) benchmark files: a header row, then one item per row.

Every value stays a string, exactly as written in the file; the header names the fields.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from monitor.benchmarks.jsonl import unreadable
from monitor.errors import BenchmarkError


def read_csv(path: Path, *, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` for each non-blank data row of a CSV file.

    The line number is where the row starts (a quoted value may span lines). The header must
    hold every ``required`` column; a row with more or fewer values than the header is an error.
    """
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header: list[str] | None = None
    try:
        with path.open("rb") as handle:
            reader = csv.reader(_decoded_lines(path, handle), delimiter=delimiter)
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    raise BenchmarkError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
                if not row:
                    continue
                if header is None:
                    header = _check_header(path, start, row, required)
                elif len(row) != len(header):
                    raise BenchmarkError(
                        f"{path}:{start}: expected {len(header)} columns as in the header, "
                        f"got {len(row)}"
                    )
                else:
                    yield start, dict(zip(header, row, strict=True))
    except OSError as exc:
        raise unreadable(path, exc) from None
    if header is None:
        raise BenchmarkError(f"{path}: no header row (the file is empty)")


def _decoded_lines(path: Path, handle: Iterator[bytes]) -> Iterator[str]:
    # decode line by line so that an encoding error names its exact line
    for lineno, raw in enumerate(handle, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BenchmarkError(f"{path}:{lineno}: not valid UTF-8: {exc.reason}") from None
        yield text.removeprefix("\ufeff") if lineno == 1 else text


def _check_header(path: Path, line: int, header: list[str], required: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise BenchmarkError(f"{path}:{line}: header repeats column {name!r}")
        seen.add(name)
    for column in required:
        if column not in seen:
            raise BenchmarkError(
                f"{path}:{line}: header has no column {column!r} (columns: {', '.join(header)})"
            )
    return header
