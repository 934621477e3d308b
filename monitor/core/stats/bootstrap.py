"""One percentile bootstrap for every interval that resamples items.

Three intervals resample with replacement and read percentiles off the
replicates: the mean paired difference of continuous scores (`paired`), the
macro-F1 of a run (`monitor/core/scoring.py`) and the shift of a drift
signal's median (`monitor/core/policy.py`). They share the two steps here, so
the chunking (bounded memory on large benchmarks) and the percentile rule are
written once. numpy only: `scoring` imports this lazily on its start-up path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["bootstrap_replicates", "percentile_interval"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Index elements drawn at once: bounds the memory of one chunk (~16 MB of int64).
MAX_ELEMENTS = 2_000_000


def bootstrap_replicates(
    size: int,
    statistic: Callable[[IntArray], npt.ArrayLike],
    *,
    rng: np.random.Generator,
    resamples: int,
) -> FloatArray:
    """`statistic(idx)` for `resamples` resamples of `size` items, drawn in chunks.

    `idx` is a (rows, size) array of item indices drawn with replacement;
    `statistic` returns one value per row. The chunks come from one stream
    of the generator, so the replicates do not depend on the chunk size.
    """
    if size < 1:
        raise ValueError("the bootstrap needs at least one item")
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    out = np.empty(resamples)
    chunk = max(1, MAX_ELEMENTS // size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, size, size=(stop - start, size))
        out[start:stop] = np.asarray(statistic(idx), dtype=float)
    return out


def percentile_interval(replicates: npt.ArrayLike, confidence: float) -> tuple[float, float]:
    """The equal-tailed percentile interval of the replicates at `confidence`."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.asarray(replicates, dtype=float), [tail, 1.0 - tail])
    return float(lo), float(hi)
