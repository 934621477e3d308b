"""Loaded benchmarks kept between runs, re-read when their settings or data file change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.benchmarks.loader import load_benchmark
from monitor.config import BenchmarkSettings
from monitor.core.model import Benchmark

__all__ = ["BenchmarkCache"]


class BenchmarkCache:
    """A `monitor.ports.BenchmarkSource` that loads each benchmark once per data file state.

    The key is the settings plus the data file's mtime and size: an hourly run of an
    unchanged 10,000-item benchmark then costs no parsing, and an edited file (or a
    reloaded config) is read again on the next run.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[Any, ...], Benchmark]] = {}

    def __call__(self, settings: BenchmarkSettings) -> Benchmark:
        path = Path(settings.data)
        try:
            stat = path.stat()
            stamp: tuple[Any, ...] = (settings, stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (settings, None, None)  # let the loader raise its own clear error
        hit = self._cache.get(settings.name)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        bench = load_benchmark(settings)
        self._cache[settings.name] = (stamp, bench)
        return bench
