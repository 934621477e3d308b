"""Item results as JSONL or CSV records, and back: `monitor export RUN`.

One record per item result with every stored field: `run_id`, `item_key`, `output`,
`scores` (an object of scorer -> value), `latency_s`, `error`, `error_detail`,
`prompt_tokens`, `completion_tokens`, `cached_tokens`, `reasoning_tokens`, `attempts`.
JSON has no NaN, so a value that was not computed is `null`. In CSV, `scores` is a JSON
object in one cell, and a null cell is written `\\N` (PostgreSQL's COPY convention) so that
a null output stays apart from an empty answer; `read_records` undoes both, so an export
reads back to the same results.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from monitor.core.model import TOKEN_FIELDS, ErrorKind, ItemResult, Usage

__all__ = ["FIELDS", "read_records", "record", "result_from_record", "write_records"]

FIELDS = (
    "run_id",
    "item_key",
    "output",
    "scores",
    "latency_s",
    "error",
    "error_detail",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "attempts",
)
_NULL = "\\N"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def record(run_id: int, result: ItemResult) -> dict[str, Any]:
    """The export record of one item result."""
    usage = result.usage
    return {
        "run_id": run_id,
        "item_key": result.item_key,
        "output": result.output,
        "scores": {name: _finite(v) for name, v in result.scores.items()},
        "latency_s": _finite(result.latency_s),
        "error": None if result.error is None else result.error.value,
        "error_detail": result.error_detail,
        **{name: None if usage is None else getattr(usage, name) for name in TOKEN_FIELDS},
        "attempts": result.attempts,
    }


def result_from_record(rec: Mapping[str, Any]) -> tuple[int, ItemResult]:
    """The run id and item result an export record describes."""
    # exports made before cached and reasoning tokens were stored lack those two fields
    usage = Usage.of(**{name: rec.get(name) for name in TOKEN_FIELDS})
    scores = rec["scores"] or {}
    return int(rec["run_id"]), ItemResult(
        item_key=str(rec["item_key"]),
        output=rec["output"],
        scores={k: math.nan if v is None else float(v) for k, v in scores.items()},
        latency_s=math.nan if rec["latency_s"] is None else float(rec["latency_s"]),
        error=None if rec["error"] is None else ErrorKind(rec["error"]),
        error_detail=rec["error_detail"],
        usage=usage,
        attempts=int(rec["attempts"]),
    )


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return _NULL
    if name == "scores":
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_records(records: Iterable[Mapping[str, Any]], out: TextIO, fmt: str) -> int:
    """Write records as `jsonl` or `csv`; returns how many were written."""
    count = 0
    if fmt == "jsonl":
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            count += 1
        return count
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for rec in records:
        writer.writerow([_csv_cell(name, rec[name]) for name in FIELDS])
        count += 1
    return count


_INTS = ("run_id", *TOKEN_FIELDS, "attempts")


def _from_csv(row: Mapping[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name in FIELDS:
        cell = row.get(name, _NULL)  # exports from before a field existed lack it
        if cell == _NULL:
            rec[name] = None
        elif name == "scores":
            rec[name] = json.loads(cell)
        elif name in _INTS:
            rec[name] = int(cell)
        elif name == "latency_s":
            rec[name] = float(cell)
        else:
            rec[name] = cell
    return rec


def read_records(text: str, fmt: str) -> Iterator[dict[str, Any]]:
    """The records of an export in `jsonl` or `csv`."""
    if fmt == "jsonl":
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(io.StringIO(text)):
        yield _from_csv(row)
