"""Label Studio JSON exports: task data as fields, task id as key, annotation as reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import load_benchmark
from monitor.config import BenchmarkSettings
from monitor.core.model import ScorerSpec
from monitor.errors import BenchmarkError


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {
        "name": "labelled",
        "data": str(path),
        "scorers": [ScorerSpec(kind="exact_match", name="exact_match")],
    }
    return BenchmarkSettings(**(values | overrides))


def write_export(path: Path, *tasks: Any) -> Path:
    """One task per line after the opening bracket, so task[i] is on line i + 2."""
    body = ",\n".join(json.dumps(t) for t in tasks)
    path.write_text(f"[\n{body}\n]\n", encoding="utf-8")
    return path


def choices(*values: str, from_name: str = "intent", **extra: Any) -> dict[str, Any]:
    result = {"from_name": from_name, "to_name": "text", "type": "choices"}
    return {"result": [result | {"value": {"choices": list(values)}}], **extra}


def task(task_id: Any, text: str, *annotations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "data": {"text": text}, "annotations": list(annotations), **extra}


def load_error(path: Path, **overrides: Any) -> str:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(settings(path, **overrides))
    return str(info.value)


class TestLabelStudioReference:
    """The reference is the first usable annotation's first choice or text."""

    def test_choices_annotation(self, tmp_path: Path) -> None:
        """Fields are the task data, the key is the task id, the reference the first choice."""
        path = write_export(tmp_path / "export.json", task(17, "refund me", choices("refund")))
        (item,) = load_benchmark(settings(path, prompt="{{ text }}")).items
        assert (item.key, item.fields, item.prompt, item.reference) == (
            "17",
            {"text": "refund me"},
            "refund me",
            "refund",
        )

    def test_text_annotation(self, tmp_path: Path) -> None:
        """A TextArea result gives its first text."""
        annotation = {"result": [{"value": {"text": ["Paris", "paris"]}, "from_name": "answer"}]}
        path = write_export(tmp_path / "export.json", task(1, "Capital of France?", annotation))
        (item,) = load_benchmark(settings(path)).items
        assert item.reference == "Paris"

    def test_first_choice_of_a_multi_choice_result(self, tmp_path: Path) -> None:
        """Several selected choices give the first one."""
        path = write_export(tmp_path / "e.json", task(1, "x", choices("billing", "refund")))
        assert load_benchmark(settings(path)).items[0].reference == "billing"

    def test_cancelled_annotations_are_skipped(self, tmp_path: Path) -> None:
        """A skipped (was_cancelled) annotation does not provide the reference."""
        path = write_export(
            tmp_path / "e.json",
            task(1, "x", choices("other", was_cancelled=True), choices("refund")),
        )
        assert load_benchmark(settings(path)).items[0].reference == "refund"

    def test_ground_truth_annotation_wins(self, tmp_path: Path) -> None:
        """An annotation marked ground truth is preferred over earlier ones."""
        path = write_export(
            tmp_path / "e.json",
            task(1, "x", choices("other"), choices("billing", ground_truth=True)),
        )
        assert load_benchmark(settings(path)).items[0].reference == "billing"

    def test_reference_setting_selects_a_control_by_from_name(self, tmp_path: Path) -> None:
        """With several labelling controls, `reference` names the one to use."""
        annotation = {
            "result": [
                {"from_name": "sentiment", "value": {"choices": ["negative"]}},
                {"from_name": "intent", "value": {"choices": ["refund"]}},
            ]
        }
        path = write_export(tmp_path / "e.json", task(1, "x", annotation))
        assert load_benchmark(settings(path)).items[0].reference == "negative"
        assert load_benchmark(settings(path, reference="intent")).items[0].reference == "refund"

    def test_old_exports_name_annotations_completions(self, tmp_path: Path) -> None:
        """Label Studio 1.0 exports call annotations `completions`."""
        old = {"id": 3, "data": {"text": "x"}, "completions": [choices("other")]}
        path = write_export(tmp_path / "e.json", old)
        assert load_benchmark(settings(path)).items[0].reference == "other"

    def test_unannotated_task_has_no_reference(self, tmp_path: Path) -> None:
        """Without annotations and without a reference setting, the reference is None."""
        path = write_export(tmp_path / "e.json", task(1, "x"), task(2, "y", choices("refund")))
        assert [i.reference for i in load_benchmark(settings(path)).items] == [None, "refund"]

    def test_unannotated_task_takes_the_reference_data_field(self, tmp_path: Path) -> None:
        """When `reference` names a data field, unannotated tasks take it from their data."""
        unlabeled = {"id": 1, "data": {"text": "x", "gold": "billing"}}
        labeled = {"id": 2, "data": {"text": "y", "gold": "other"}, "annotations": [choices("a")]}
        path = write_export(tmp_path / "e.json", unlabeled, labeled)
        items = load_benchmark(settings(path, reference="gold")).items
        assert [i.reference for i in items] == ["billing", "a"]

    def test_unannotated_task_without_the_reference_field(self, tmp_path: Path) -> None:
        """No annotation and no such data field: the task is named by line and index."""
        path = write_export(tmp_path / "e.json", task(1, "x", choices("a")), task(2, "y"))
        assert load_error(path, reference="gold") == (
            f"{path}:3: task[1]: item '2' has no annotation and no reference field 'gold'"
        )

    def test_task_without_id_is_keyed_by_content(self, tmp_path: Path) -> None:
        """A task without an id falls back to the id field, then to a content hash."""
        path = write_export(
            tmp_path / "e.json", {"data": {"id": "d1", "text": "x"}}, {"data": {"text": "y"}}
        )
        keys = [i.key for i in load_benchmark(settings(path)).items]
        assert keys[0] == "d1"
        assert len(keys[1]) == 16


class TestLabelStudioErrors:
    """Malformed exports are reported with the file, the line and the task index."""

    def test_not_a_list(self, tmp_path: Path) -> None:
        """The export must be a JSON list of tasks."""
        path = tmp_path / "e.json"
        path.write_text('{"data": {}}', encoding="utf-8")
        assert load_error(path) == (
            f"{path}:1: expected a JSON list (starting with '['), found '{{'"
        )

    def test_task_without_data(self, tmp_path: Path) -> None:
        """A list of plain objects is not a Label Studio export."""
        path = write_export(tmp_path / "e.json", task(1, "x"), {"text": "plain"})
        assert load_error(path) == (
            f"{path}:3: task[1]: no 'data' object (a Label Studio JSON export is a list of "
            "tasks with 'data' and 'annotations'; use a .jsonl file for plain items)"
        )

    def test_task_that_is_not_an_object(self, tmp_path: Path) -> None:
        """Each element must be a task object."""
        path = write_export(tmp_path / "e.json", task(1, "x"), "oops")
        assert load_error(path) == f"{path}:3: task[1]: expected a task object, got string"

    def test_invalid_json(self, tmp_path: Path) -> None:
        """Syntax errors give the line and column from the decoder."""
        path = tmp_path / "e.json"
        path.write_text('[\n{"id": 1, "data": {}},\n{"id": 2,, "data": {}}\n]', encoding="utf-8")
        assert load_error(path) == (
            f"{path}:3: invalid JSON: Expecting property name enclosed in double quotes (column 10)"
        )

    def test_missing_comma_between_tasks(self, tmp_path: Path) -> None:
        """Two tasks without a comma between them are reported where the comma belongs."""
        path = tmp_path / "e.json"
        path.write_text('[\n{"id": 1, "data": {}}\n{"id": 2, "data": {}}\n]', encoding="utf-8")
        assert load_error(path) == (
            f"{path}:3: invalid JSON: expected ',' or ']' after list element 0"
        )

    def test_duplicate_task_ids(self, tmp_path: Path) -> None:
        """Two tasks with one id name both tasks."""
        path = write_export(tmp_path / "e.json", task(5, "x"), task(6, "y"), task(5, "z"))
        assert load_error(path) == (
            f"{path}:4: task[2]: duplicate item key '5' (first at {path}:2: task[0])"
        )

    def test_empty_export(self, tmp_path: Path) -> None:
        """An export with no tasks has no items."""
        path = tmp_path / "e.json"
        path.write_text("[ ]", encoding="utf-8")
        assert load_error(path) == f"{path}: no items"

    def test_prompt_field_missing_from_task_data(self, tmp_path: Path) -> None:
        """Template fields are checked against each task's data."""
        path = write_export(tmp_path / "e.json", task(9, "x"))
        assert load_error(path, prompt="{{ question }}") == (
            f"{path}:2: task[0]: prompt uses field 'question' missing from item '9'"
        )
