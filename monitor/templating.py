"""Sandboxed Jinja2 templates over item fields (prompts and http-json request bodies).

The sandbox blocks attribute escapes such as ``{{ ''.__class__.__mro__ }}``;
``StrictUndefined`` turns a missing field into an error instead of an empty string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _tojson(value: Any) -> str:
    # Jinja's own tojson HTML-escapes '<' and '&'; request bodies need plain JSON
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError naming the field
    return json.dumps(value, ensure_ascii=False)


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["tojson"] = _tojson
    return env


class Template:
    """A compiled template that knows which top-level fields it reads."""

    def __init__(self, source: str) -> None:
        env = _environment()
        try:
            parsed = env.parse(source)
            self.fields = frozenset(meta.find_undeclared_variables(parsed))
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ValueError(f"invalid template: {exc}") from None
        self.source = source

    def missing_fields(self, fields: Mapping[str, Any]) -> list[str]:
        """Fields the template reads that the item does not have, sorted."""
        return sorted(f for f in self.fields if f not in fields)

    def render(self, fields: Mapping[str, Any]) -> str:
        """Render; raises ValueError naming the problem (missing field, sandbox violation)."""
        try:
            return self._template.render(fields)
        # Security/UndefinedError are TemplateErrors; the sandbox raises OverflowError for a
        # range() past its limit; TypeError for operations on the wrong types.
        except (TemplateError, TypeError, OverflowError) as exc:
            raise ValueError(f"template error: {exc}") from None
