"""``load_benchmark``: settings -> a validated, versioned :class:`Benchmark`.

Every check that can fail on data happens here, at load time, with the file and line in the
message: unreadable files, bad lines, duplicate keys, missing reference fields, and prompt
templates that use a field an item does not have. A benchmark that loads can be run.

When the settings come from a config file, every error is prefixed with the config entry it
belongs to, ``monitor.yaml:17: benchmarks[0].data: `` (``.prompt``, ``.system`` or
``.few_shot`` for a template that uses a field an item lacks, ``.reference`` for an item
without its reference, ``.conversation`` for a conversation that is not a list of messages),
so that a message names both the config field and the data file's line.

A chat-structured benchmark (``system``, ``few_shot`` or ``conversation``) gives every item
its ``messages``: the system message, the few-shot messages, the item's conversation, then
``prompt`` as the user's turn. The chat must end with a user message: a conversation that
ends with the assistant's answer would show the model the answer (see docs/configuration.md).
"""

from __future__ import annotations

import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from monitor.benchmarks.csv import read_csv
from monitor.benchmarks.hf import read_dataset_dir
from monitor.benchmarks.jsonl import read_json_lines, type_name, unreadable
from monitor.benchmarks.labelstudio import read_labelstudio
from monitor.benchmarks.parquet import read_parquet
from monitor.benchmarks.versioning import (
    benchmark_frame,
    benchmark_version,
    item_digest,
    item_key,
    template_digest,
)
from monitor.config import BenchmarkSettings
from monitor.core.model import Benchmark, ChatMessage, Item
from monitor.core.slices import MAX_SLICE_VALUES, slice_values
from monitor.errors import BenchmarkError
from monitor.templating import Template

FORMAT_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "labelstudio",
    ".parquet": "parquet",
}


class _FieldError(BenchmarkError):
    """A BenchmarkError already prefixed with its config field (if the settings have one)."""


def _field_error(settings: BenchmarkSettings, field: str, message: str) -> _FieldError:
    where = settings.where(field)
    return _FieldError(message if where is None else f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class _Record:
    """One item as read from a file, before keys, references and prompts are resolved."""

    where: str  # "data.jsonl:7", "test.parquet: row 7" or "export.json:12: task[3]"
    fields: dict[str, Any]
    key: str | None = None  # a key set by the format itself (a Label Studio task id)
    annotated: bool = False  # the format supplied `reference` (a Label Studio annotation)
    reference: Any = None
    from_annotations: bool = False  # the format reads references from annotations


def load_benchmark(settings: BenchmarkSettings) -> Benchmark:
    """Read, validate and version the benchmark described by ``settings``.

    Raises BenchmarkError naming the file and line (or Label Studio task) of the first problem,
    after the config entry (``monitor.yaml:17: benchmarks[0].data``) if the settings have one.
    """
    try:
        return _load(settings)
    except _FieldError:
        raise
    except BenchmarkError as exc:  # the readers' errors: a problem with the `data` file
        raise _field_error(settings, "data", str(exc)) from None


# roles an item's conversation may use; tool messages need call ids monitor does not keep
CONVERSATION_ROLES = ("system", "developer", "user", "assistant")


@dataclass(frozen=True, slots=True)
class _Templates:
    """The benchmark's compiled templates: the prompt and the chat's fixed messages."""

    prompt: Template | None
    system: Template | None = None
    few_shot: tuple[tuple[str, Template], ...] = ()


def _load(settings: BenchmarkSettings) -> Benchmark:
    path = Path(settings.data)
    _check_regular(path)
    templates = _compile_templates(settings)
    records = _read_records(path, detect_format(path, settings.format), settings)
    try:
        limited = records if settings.limit is None else islice(records, settings.limit)
        items = _build_items(limited, settings, templates)
    finally:
        records.close()  # with a limit, stop reading and close the file now
    if not items:
        raise BenchmarkError(f"{path}: no items")
    chat = _chat_identity(settings)
    version = benchmark_version(
        items,
        prompt_template=settings.prompt,
        scorers=settings.scorers,
        reference_field=settings.reference,
        chat=chat,
    )
    return Benchmark(
        name=settings.name,
        version=version,
        items=tuple(items),
        scorers=tuple(settings.scorers),
        prompt_template=settings.prompt,
        frame=benchmark_frame(
            prompt_template=settings.prompt,
            scorers=settings.scorers,
            reference_field=settings.reference,
            chat=chat,
            cosmetic_template=settings.template_change == "cosmetic",
        ),
        template_digest=template_digest(settings.prompt, chat),
        slices=tuple(settings.slices),
    )


def detect_format(path: Path, requested: str = "auto") -> str:
    """The data format: as requested, or a folder -> hf, else by the file extension."""
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except OSError as exc:
        raise unreadable(path, exc) from None
    if requested == "hf" and not is_dir:
        raise BenchmarkError(f"{path}: format hf needs a folder of data files")
    if requested != "auto":
        return requested
    if is_dir:
        return "hf"
    try:
        return FORMAT_BY_SUFFIX[path.suffix.lower()]
    except KeyError:
        known = ", ".join(FORMAT_BY_SUFFIX)
        raise BenchmarkError(
            f"{path}: unknown benchmark format {path.suffix or '(no extension)'!r}: expected "
            f"{known} or a folder, or set `format:` to jsonl, csv, labelstudio, parquet or hf"
        ) from None


def _chat_identity(settings: BenchmarkSettings) -> dict[str, Any] | None:
    """What of the chat structure changes what is measured; None for a plain benchmark."""
    if not settings.is_chat:
        return None
    return {
        "system": settings.system,
        "few_shot": [{"role": m.role, "content": m.content} for m in settings.few_shot],
        "conversation": settings.conversation,
    }


def _compile_templates(settings: BenchmarkSettings) -> _Templates:
    return _Templates(
        prompt=_compile(settings, "prompt", "prompt", settings.prompt),
        system=_compile(settings, "system", "system", settings.system),
        few_shot=tuple(
            (m.role, _compile_required(settings, "few_shot", f"few_shot[{j}]", m.content))
            for j, m in enumerate(settings.few_shot)
        ),
    )


def _compile(
    settings: BenchmarkSettings, field: str, what: str, source: str | None
) -> Template | None:
    return None if source is None else _compile_required(settings, field, what, source)


def _compile_required(settings: BenchmarkSettings, field: str, what: str, source: str) -> Template:
    try:
        return Template(source, settings.template_limits)
    except ValueError as exc:
        detail = str(exc).removeprefix("invalid template: ")
        raise _field_error(
            settings, field, f"benchmark {settings.name!r}: invalid {what} template: {detail}"
        ) from None


def _check_regular(path: Path) -> None:
    """Refuse a device, pipe or socket as data: `/dev/zero` would be read forever."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # the format's reader names a missing file in its own words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise BenchmarkError(f"{path}: not a regular file (a device, pipe or socket)")


def _read_records(
    path: Path, fmt: str, settings: BenchmarkSettings
) -> Generator[_Record, None, None]:
    if fmt == "jsonl":
        for line, obj in read_json_lines(path):
            yield _Record(f"{path}:{line}", obj)
    elif fmt == "csv":
        required = () if settings.reference is None else (settings.reference,)
        for line, row in read_csv(path, required=required):
            yield _Record(f"{path}:{line}", row)
    elif fmt == "labelstudio":
        for task in read_labelstudio(path, control=settings.reference):
            yield _Record(
                f"{path}:{task.line}: task[{task.index}]",
                task.data,
                key=task.id,
                annotated=task.annotated,
                reference=task.reference,
                from_annotations=True,
            )
    elif fmt == "parquet":
        for number, obj in read_parquet(path):
            yield _Record(f"{path}: row {number}", obj)
    elif fmt == "hf":
        for where, obj in read_dataset_dir(path):
            yield _Record(where, obj)
    else:  # pragma: no cover - settings validation allows only the formats above
        raise BenchmarkError(f"{path}: unknown benchmark format {fmt!r}")


def _build_items(
    records: Iterator[_Record], settings: BenchmarkSettings, templates: _Templates
) -> list[Item]:
    items: list[Item] = []
    first_seen: dict[str, str] = {}
    seen_slices: set[tuple[str, str]] = set()
    for record in records:
        key, from_id = _key_of(record, settings.id_field)
        if key in first_seen:
            hint = (
                ""
                if from_id
                else f": the items are identical; remove one or give each an {settings.id_field!r}"
            )
            raise BenchmarkError(
                f"{record.where}: duplicate item key {key!r} (first at {first_seen[key]}){hint}"
            )
        first_seen[key] = record.where
        template = templates.prompt
        prompt = None if template is None else _render(record, key, template, settings)
        reference = _reference_of(record, key, settings)
        items.append(
            Item(
                key=key,
                fields=record.fields,
                prompt=prompt,
                reference=reference,
                digest=item_digest(record.fields, reference),
                split=_split_of(record, settings.split),
                slices=_slices_of(record, settings, seen_slices),
                messages=_messages_of(record, key, settings, templates, prompt),
            )
        )

    return items


def _slices_of(
    record: _Record, settings: BenchmarkSettings, seen: set[tuple[str, str]]
) -> dict[str, str]:
    """The item's slice values; past `MAX_SLICE_VALUES` distinct values the benchmark is
    refused, naming the config entry and the item that crossed the cap."""
    if not settings.slices:
        return {}
    try:
        values = slice_values(record.fields, settings.slices)
    except ValueError as exc:
        raise _field_error(settings, "slices", f"{record.where}: {exc}") from None
    seen.update(values.items())
    if len(seen) > MAX_SLICE_VALUES:
        raise _field_error(
            settings,
            "slices",
            f"{record.where}: more than {MAX_SLICE_VALUES} slice values across "
            f"{', '.join(settings.slices)} (each value is a Prometheus series per scorer "
            "and endpoint); slice by a coarser field",
        )
    return values


def _key_of(record: _Record, id_field: str) -> tuple[str, bool]:
    if record.key is not None:
        return record.key, True
    try:
        return item_key(record.fields, id_field)
    except ValueError as exc:
        raise BenchmarkError(f"{record.where}: {exc}") from None


def _reference_of(record: _Record, key: str, settings: BenchmarkSettings) -> Any:
    field = settings.reference
    if record.annotated:
        return record.reference
    if field is None:
        return None
    if field not in record.fields:
        what = "no annotation and no" if record.from_annotations else "no"
        raise _field_error(
            settings,
            "reference",
            f"{record.where}: item {key!r} has {what} reference field {field!r}",
        )
    return record.fields[field]


def _render(
    record: _Record,
    key: str,
    template: Template,
    settings: BenchmarkSettings,
    *,
    field: str = "prompt",
    what: str = "prompt",
) -> str:
    missing = template.missing_fields(record.fields)
    if missing:
        noun = "field" if len(missing) == 1 else "fields"
        names = ", ".join(repr(name) for name in missing)
        raise _field_error(
            settings,
            field,
            f"{record.where}: {what} uses {noun} {names} missing from item {key!r}",
        )
    try:
        return template.render(record.fields)
    except ValueError as exc:
        detail = str(exc).removeprefix("template error: ")
        raise _field_error(
            settings,
            field,
            f"{record.where}: cannot render the {what} for item {key!r}: {detail}",
        ) from None


def _messages_of(
    record: _Record,
    key: str,
    settings: BenchmarkSettings,
    templates: _Templates,
    prompt: str | None,
) -> tuple[ChatMessage, ...]:
    if not settings.is_chat:
        return ()
    messages: list[ChatMessage] = []
    if templates.system is not None:
        content = _render(
            record, key, templates.system, settings, field="system", what="system message"
        )
        messages.append(ChatMessage("system", content))
    for j, (role, template) in enumerate(templates.few_shot):
        what = f"few_shot[{j}] message"
        messages.append(
            ChatMessage(role, _render(record, key, template, settings, field="few_shot", what=what))
        )
    if settings.conversation is not None:
        messages.extend(_conversation_of(record, key, settings, settings.conversation))
    if prompt is not None:
        messages.append(ChatMessage("user", prompt))
    if not messages or messages[-1].role != "user":
        ends = f"ends with a {messages[-1].role!r} message" if messages else "is empty"
        raise _field_error(
            settings,
            "conversation",
            f"{record.where}: item {key!r}: the chat {ends}, not the user's turn; set "
            "`prompt:` for the final user message, or drop a final assistant turn from the "
            "data (it may be the answer: give it its own field and name that in `reference:`)",
        )
    return tuple(messages)


def _conversation_of(
    record: _Record, key: str, settings: BenchmarkSettings, field: str
) -> list[ChatMessage]:
    def error(message: str) -> _FieldError:
        return _field_error(settings, "conversation", f"{record.where}: item {key!r}: {message}")

    if field not in record.fields:
        raise error(f"no conversation field {field!r}")
    value = record.fields[field]
    if not isinstance(value, list):
        hint = (
            " (CSV values are always text: use JSON lines or Parquet)"
            if isinstance(value, str)
            else ""
        )
        raise error(
            f"conversation field {field!r} must be a list of {{role, content}} messages, "
            f"got {type_name(value)}{hint}"
        )
    messages: list[ChatMessage] = []
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            raise error(f"{where} must be a {{role, content}} object, got {type_name(message)}")
        # null extras are tolerated: Parquet gives every message of a column the same keys
        extra = sorted(
            k for k, v in message.items() if k not in ("role", "content") and v is not None
        )
        if extra:
            names = ", ".join(repr(k) for k in extra)
            raise error(f"{where} has keys other than role and content ({names})")
        role, content = message.get("role"), message.get("content")
        if role not in CONVERSATION_ROLES:
            raise error(
                f"{where}.role must be one of {', '.join(CONVERSATION_ROLES)}, got {role!r}"
            )
        if not isinstance(content, str):
            raise error(f"{where}.content must be a string, got {type_name(content)}")
        messages.append(ChatMessage(role, content))
    return messages


def _split_of(record: _Record, field: str | None) -> str | None:
    if field is None:
        return None
    value = record.fields.get(field)
    return None if value is None else str(value)
