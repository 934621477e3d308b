"""Benchmark loaders: JSON lines, CSV, Parquet, Label Studio exports and Hugging Face folders.

``load_benchmark(settings)`` is the one entry point; it returns a frozen, versioned
:class:`monitor.core.model.Benchmark` or raises :class:`monitor.errors.BenchmarkError` naming
the file and line of the problem.
"""

from __future__ import annotations

from monitor.benchmarks.loader import load_benchmark

__all__ = ["load_benchmark"]
