"""One `monitor serve` per SQLite file: an exclusive lock on `<db>.lock`.

SQLite has no advisory locks across processes that survive a crash cleanly, and two
daemons on one file would both run every schedule. The kernel drops a `flock` when its
process dies, so a SIGKILLed daemon never leaves a stale lock; the file is removed on a
clean stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import TextIO

from monitor.errors import ConfigError

__all__ = ["SqliteLock"]


class SqliteLock:
    """`acquire` raises ConfigError when another process serves the same SQLite file."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._path: Path | None = None
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            self._path = Path(url.removeprefix("sqlite:///") + ".lock")
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        if self._path is None:
            return  # PostgreSQL (leader election instead) or an in-memory database
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(
                f"{self._url}: another `monitor serve` is using this SQLite database "
                f"(lock {self._path}); use PostgreSQL to run several replicas"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            if self._path is not None:
                with contextlib.suppress(OSError):
                    self._path.unlink()  # unlink while still holding: no one else can race in
            self._handle.close()
            self._handle = None
