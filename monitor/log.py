"""structlog set-up, done once at start: JSON lines when stderr is not a TTY, console otherwise.

Every event passes through `redact`, which masks the values that came from ``${ENV}``
(API keys, tokens) wherever they appear, so a secret cannot reach a log line even when
it is embedded in an error message or a URL.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"


class Redactor:
    """A structlog processor that replaces secret substrings in every string value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole; very short
        # values are skipped because masking "1" everywhere would destroy every line.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def mask(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def __call__(
        self,
        logger: Any,  # noqa: ARG002 - structlog's processor signature
        name: str,  # noqa: ARG002
        event: MutableMapping[str, Any],
    ) -> MutableMapping[str, Any]:
        if self.secrets:
            for key, value in event.items():
                if isinstance(value, str):
                    event[key] = self.mask(value)
                elif isinstance(value, BaseException):
                    event[key] = self.mask(repr(value))
        return event


redactor = Redactor()


def configure_logging(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog for the process; `json` defaults to "stream is not a TTY"."""
    stream = stream or sys.stderr
    as_json = (not stream.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A bound logger tagged with the emitting component."""
    return structlog.get_logger(component=name)
