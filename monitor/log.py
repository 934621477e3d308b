"""structlog set-up, done once at start: JSON lines when stderr is not a TTY, console otherwise.

Every event passes through `redact`, which masks the values that came from ``${ENV}``
(API keys, tokens) wherever they appear, so a secret cannot reach a log line even when
it is embedded in an error message or a URL.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO

# When rich is installed (it draws `monitor run`'s progress bar and tables), structlog
# imports it at once for pretty tracebacks: ~0.1 s of every command's start, before its
# first request. The renderers here never use it (`format_exc_info` turns an exception
# into text first), so rich is hidden while structlog loads and stays importable after.
_HIDE_RICH = "rich" not in sys.modules and "structlog" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail
try:
    import structlog
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

MASK = "***"
_MAX_DEPTH = 8  # nested event values deeper than this are left as they are


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
                event[key] = self._scrub(value)
        return event

    def _scrub(self, value: Any, depth: int = 0) -> Any:
        """``value`` with secrets masked in strings, exceptions and nested containers."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, BaseException):
            return self.mask(repr(value))
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            return {self._scrub(k, depth + 1): self._scrub(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(v, depth + 1) for v in value]
        return value


redactor = Redactor()


class StdlibBridge(logging.Handler):
    """Sends the standard library's records (uvicorn, APScheduler, asyncio) through structlog,
    so that they are rendered like every other event and pass the redactor: without it a
    library's warning or an unhandled-exception traceback reaches stderr unmasked."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's malformed %-format
            message = str(record.msg)
        logger = structlog.get_logger(component=record.name)
        level = record.levelname.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            level = "warning"
        if record.exc_info:
            getattr(logger, level)(message, exc_info=record.exc_info)
        else:
            getattr(logger, level)(message)


def configure_logging(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog for the process; `json` defaults to "stream is not a TTY".

    Standard-library warnings and errors are routed through the same pipeline.
    """
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
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdlibBridge)]:
        root.removeHandler(handler)
    root.addHandler(StdlibBridge(logging.WARNING))  # the level of logging's own last resort


def get_logger(name: str) -> Any:
    """A bound logger tagged with the emitting component."""
    return structlog.get_logger(component=name)


def mask_url_credentials(url: str) -> str:
    """`url` with any ``user:password@`` part replaced by ``***@``: credentials in a URL
    never leave the process (logs, API, console)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
