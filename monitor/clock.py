"""The wall clock: the one place the service reads the current time.

Everything else takes a `monitor.ports.Clock` argument, so tests hand in a clock they
can advance (tests/fakes.py) instead of patching `datetime`.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)
