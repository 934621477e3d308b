"""JSON readers: JSON lines files, and JSON documents holding a list of objects.

Both report problems as ``path:LINE: message``. Only strict JSON is accepted: ``NaN`` and
``Infinity`` (which Python's ``json`` writes by default) are rejected because stores such as
PostgreSQL's JSONB refuse them later, far from the file that caused it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from monitor.errors import BenchmarkError

_BOM = "\ufeff"
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON (use null or a string)")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def unreadable(path: Path, exc: OSError) -> BenchmarkError:
    """The error for a file that cannot be opened or read, naming the path and the OS error."""
    return BenchmarkError(f"{path}: cannot read benchmark data: {exc.strerror or exc}")


def type_name(value: Any) -> str:
    """JSON's name for the type of a decoded value (``object``, ``list``, ``string``...)."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON lines file.

    Lines are split on ``\\n`` only (a JSON string may hold U+2028), decoded as strict UTF-8;
    a UTF-8 byte order mark on the first line is tolerated.
    """
    try:
        with path.open("rb") as lines:
            for lineno, raw in enumerate(lines, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BenchmarkError(
                        f"{path}:{lineno}: not valid UTF-8: {exc.reason}"
                    ) from None
                if lineno == 1:
                    text = text.removeprefix(_BOM)
                if not text.strip():
                    continue
                value = _decode_line(path, lineno, text)
                if not isinstance(value, dict):
                    raise BenchmarkError(
                        f"{path}:{lineno}: expected a JSON object, got {type_name(value)}"
                    )
                yield lineno, value
    except OSError as exc:
        raise unreadable(path, exc) from None


def _decode_line(path: Path, lineno: int, text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(
            f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    except ValueError as exc:  # NaN / Infinity
        raise BenchmarkError(f"{path}:{lineno}: invalid JSON: {exc}") from None
    except RecursionError:
        raise BenchmarkError(f"{path}:{lineno}: invalid JSON: nested too deeply") from None


def read_text(path: Path) -> str:
    """The whole file as strict UTF-8 text, without a leading byte order mark."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        return data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BenchmarkError(f"{path}:{line}: not valid UTF-8: {exc.reason}") from None


def is_json_array(text: str) -> bool:
    """Whether a JSON document starts with ``[`` (after whitespace)."""
    return text.startswith("[", _skip(text, 0))


def read_json_array(path: Path, text: str) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(index, line number, value)`` for each element of a JSON list document.

    Elements are decoded one at a time from the document text, so the line where each one
    starts is known (for error messages) without a second pass or a copy of the text.
    """
    pos = _skip(text, 0)
    if not text.startswith("[", pos):
        found = "nothing" if pos == len(text) else f"{text[pos]!r}"
        raise BenchmarkError(
            f"{path}:{_line_at(text, pos)}: expected a JSON list (starting with '['), found {found}"
        )
    pos = _skip(text, pos + 1)
    line, counted = 1 + text.count("\n", 0, pos), pos
    if text.startswith("]", pos):
        _expect_end(path, text, pos + 1)
        return
    index = 0
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise BenchmarkError(
                f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        except ValueError as exc:  # NaN / Infinity
            raise BenchmarkError(f"{path}:{line}: invalid JSON: {exc}") from None
        except RecursionError:
            raise BenchmarkError(f"{path}:{line}: invalid JSON: nested too deeply") from None
        yield index, line, value
        index += 1
        pos = _skip(text, end)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
        elif text.startswith("]", pos):
            _expect_end(path, text, pos + 1)
            return
        else:
            raise BenchmarkError(
                f"{path}:{_line_at(text, pos)}: invalid JSON: expected ',' or ']' "
                f"after list element {index - 1}"
            )


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)  # always matches (possibly the empty string)
    return match.end() if match else pos


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _expect_end(path: Path, text: str, pos: int) -> None:
    pos = _skip(text, pos)
    if pos != len(text):
        raise BenchmarkError(
            f"{path}:{_line_at(text, pos)}: invalid JSON: extra data after the list"
        )
