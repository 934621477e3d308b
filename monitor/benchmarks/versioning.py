"""Content identity: item keys and benchmark versions.

Both hash *canonical JSON*: keys sorted, no insignificant whitespace, non-ASCII escaped, so
the hash depends on the values only, never on the order of keys in the file or on the
formatting. A version changes when anything that changes what is measured changes: an item's
key, fields or reference, the order of the items, the prompt template, a scorer (kind, name,
parameter, or the declared version of a custom scorer) or which field holds the reference. It
does not change with the file's formatting, its path, its format or the order of keys inside an
item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from monitor.core.model import Item, ScorerSpec

_VERSION_SCHEME = "monitor-benchmark-v1"


def _jsonable(value: object) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical_json)
    return str(value)  # e.g. dates from YAML scorer parameters


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, compact separators, ASCII only."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_jsonable
    )


def short_hash(text: str) -> str:
    """The first 16 hex digits (64 bits) of the SHA-256 of a text."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def content_key(fields: Mapping[str, Any]) -> str:
    """The key of an item without an id: a hash of its canonical fields."""
    return short_hash(canonical_json(fields))


def item_key(fields: Mapping[str, Any], id_field: str) -> tuple[str, bool]:
    """The stable key of an item and whether it came from the id field.

    The id field's value as a string when present, otherwise :func:`content_key`. Raises
    ValueError when the id is not a non-empty string or a number.
    """
    if id_field not in fields:
        return content_key(fields), False
    value = fields[id_field]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = "null" if value is None else type(value).__name__
        message = f"id field {id_field!r} must be a string or a number, got {kind}"
        raise ValueError(message)  # noqa: TRY004 - one error type for every bad id
    key = str(value)
    if not key:
        raise ValueError(f"id field {id_field!r} is empty")
    return key, True


def _scorer_identity(spec: ScorerSpec) -> dict[str, Any]:
    params = dict(spec.params)
    if spec.judge is not None:
        # the calibration set watches the judge; it does not change what is measured
        params.pop("calibration", None)
    identity: dict[str, Any] = {"kind": spec.kind, "name": spec.name, "params": params}
    if spec.judge is not None:
        identity["judge"] = dict(spec.judge)
    if spec.custom is not None:
        # only custom scorers carry a version, so built-in benchmarks keep their versions
        identity["version"] = spec.custom.version
    return identity


def _header(
    prompt_template: str | None,
    scorers: Iterable[ScorerSpec],
    reference_field: str | None,
    chat: Mapping[str, Any] | None,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "scheme": _VERSION_SCHEME,
        "prompt_template": prompt_template,
        "reference_field": reference_field,
        "scorers": [_scorer_identity(s) for s in sorted(scorers, key=lambda s: (s.name, s.kind))],
    }
    if chat is not None:
        header["chat"] = dict(chat)
    return header


def item_digest(fields: Mapping[str, Any], reference: Any) -> str:
    """What an item asks and expects: its fields and reference. Two versions' items with
    one key and one digest are the same question, so their scores are paired."""
    return short_hash(canonical_json([fields, reference]))


def template_digest(prompt_template: str | None, chat: Mapping[str, Any] | None = None) -> str:
    """The prompt's wording: the template and the chat structure."""
    return short_hash(canonical_json([prompt_template, None if chat is None else dict(chat)]))


def benchmark_frame(
    *,
    prompt_template: str | None,
    scorers: Iterable[ScorerSpec],
    reference_field: str | None,
    chat: Mapping[str, Any] | None = None,
    cosmetic_template: bool = False,
) -> str:
    """What every item of a version is measured with: the scorers, the reference field and
    (unless the benchmark declares template changes cosmetic) the prompt's wording.

    Versions of one benchmark that share a frame are compared item by item on the items
    whose digest is unchanged (monitor/judge.py); another frame starts a new history.
    """
    header = _header(prompt_template, scorers, reference_field, chat)
    if cosmetic_template:
        header.pop("prompt_template")
        header.pop("chat", None)
        header["template"] = "cosmetic"
    return short_hash(canonical_json(header))


def benchmark_version(
    items: Iterable[Item],
    *,
    prompt_template: str | None,
    scorers: Iterable[ScorerSpec],
    reference_field: str | None,
    chat: Mapping[str, Any] | None = None,
) -> str:
    """The content version of a benchmark: 16 hex digits of a SHA-256.

    Scorers are hashed in order of name (their order in the config does not change what is
    measured); items are hashed in order, one canonical line each. ``chat`` is the chat
    structure (system and few-shot templates, conversation field), hashed only when given
    so that the versions of plain benchmarks stay as they were.
    """
    header = _header(prompt_template, scorers, reference_field, chat)
    digest = hashlib.sha256(canonical_json(header).encode("ascii"))
    for item in items:
        digest.update(b"\n")
        digest.update(canonical_json([item.key, item.fields, item.reference]).encode("ascii"))
    return digest.hexdigest()[:16]
