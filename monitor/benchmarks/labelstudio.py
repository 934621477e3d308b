"""Label Studio JSON exports: a list of tasks, each with its data and its annotations.

A task looks like::

    {"id": 17, "data": {"text": "..."},
     "annotations": [{"was_cancelled": false, "ground_truth": false,
                      "result": [{"from_name": "intent", "type": "choices",
                                  "value": {"choices": ["refund"]}}]}]}

The item's fields are ``data``; its key is the task ``id``. The reference is taken from the
annotations: ground-truth annotations first, then the others in export order, skipping
cancelled ones; within an annotation, the first result holding ``choices`` or ``text`` gives its
first value, unless a result's ``from_name`` equals the benchmark's ``reference`` setting, which
then wins. Exports from Label Studio 1.0 and older name the annotations ``completions``; both
names are read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.benchmarks.jsonl import read_json_array, read_text, type_name
from monitor.errors import BenchmarkError


@dataclass(frozen=True, slots=True)
class Task:
    """One task of an export: where it is, its id, data and annotated reference (if any)."""

    index: int
    line: int
    id: str | None
    data: dict[str, Any]
    annotated: bool
    reference: Any = None


def read_labelstudio(path: Path, *, control: str | None = None) -> Iterator[Task]:
    """Yield the tasks of a Label Studio JSON export in file order.

    ``control`` (the benchmark's reference setting) picks the result whose ``from_name``
    matches it when an annotation has several.
    """
    text = read_text(path)
    for index, line, task in read_json_array(path, text):
        where = f"{path}:{line}: task[{index}]"
        if not isinstance(task, dict):
            raise BenchmarkError(f"{where}: expected a task object, got {type_name(task)}")
        data = task.get("data")
        if not isinstance(data, dict):
            raise BenchmarkError(
                f"{where}: no 'data' object (a Label Studio JSON export is a list of tasks "
                "with 'data' and 'annotations'; use a .jsonl file for plain items)"
            )
        task_id = task.get("id")
        if task_id is not None and (
            isinstance(task_id, bool) or not isinstance(task_id, int | str)
        ):
            raise BenchmarkError(f"{where}: task 'id' must be a number or string")
        annotations = task.get("annotations", task.get("completions")) or []
        if not isinstance(annotations, list):
            raise BenchmarkError(f"{where}: 'annotations' must be a list")
        found, reference = _annotated_reference(where, annotations, control)
        yield Task(
            index=index,
            line=line,
            id=None if task_id is None else str(task_id),
            data=data,
            annotated=found,
            reference=reference,
        )


def _annotated_reference(
    where: str, annotations: list[Any], control: str | None
) -> tuple[bool, Any]:
    for position, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise BenchmarkError(f"{where}: annotations[{position}] must be an object")
    usable = [a for a in annotations if not a.get("was_cancelled")]
    usable.sort(key=lambda a: not a.get("ground_truth"))  # stable: ground truth first
    for annotation in usable:
        results = annotation.get("result") or []
        if not isinstance(results, list):
            raise BenchmarkError(f"{where}: annotation 'result' must be a list")
        values = [v for v in map(_result_value, results) if v is not None]
        if not values:
            continue
        for from_name, value in values:
            if control is not None and from_name == control:
                return True, value
        return True, values[0][1]
    return False, None


def _result_value(result: Any) -> tuple[Any, Any] | None:
    """``(from_name, first choice or text)`` of one annotation result, if it holds one."""
    if not isinstance(result, Mapping):
        return None
    value = result.get("value")
    if not isinstance(value, Mapping):
        return None
    for name in ("choices", "text"):
        chosen = value.get(name)
        if isinstance(chosen, list) and chosen:
            return result.get("from_name"), chosen[0]
        if isinstance(chosen, str):
            return result.get("from_name"), chosen
    return None
