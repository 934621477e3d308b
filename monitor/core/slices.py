"""Slices: a benchmark's items cut by the values of some of their fields.

A benchmark with `slices: [category, language]` gets, per scorer, one subset of item scores
per slice value (`category=refund`), named `scorer[category=refund]`. Each subset is tested
against the same items of its baseline runs with the scorer's paired test, and its p-value
joins the run's other checks in one Benjamini-Hochberg correction (monitor/core/policy.py,
`decide`). The CUSUM of a slice runs at an in-control run length `n` times the scorer's,
where `n` is the number of slices of the scorer: the slices' CUSUMs together then raise no
more false alarms over time than one would (a Bonferroni bound in time; docs/statistics.md,
"Slices").

Slice values become the `slice` label of Prometheus series, so their number is capped
(`MAX_SLICE_VALUES` per benchmark): a benchmark past the cap is a config error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the policy pulls in SciPy; the loader imports this module at start-up
    from monitor.core.policy import DriftSettings

__all__ = [
    "MAX_SLICE_VALUES",
    "MAX_VALUE_CHARS",
    "parse_slice_name",
    "slice_label",
    "slice_name",
    "slice_policy",
    "slice_values",
]

# Series per scorer and endpoint: 50 slices x a few scorers x endpoints stays a small label set.
MAX_SLICE_VALUES = 50
MAX_VALUE_CHARS = 64  # a longer field value is not a category (free text, an id)


def slice_label(field: str, value: str) -> str:
    """The `slice` label of one slice value: `field=value`."""
    return f"{field}={value}"


def slice_name(scorer: str, label: str) -> str:
    """The evidence and verdict name of a scorer's slice: `scorer[field=value]`."""
    return f"{scorer}[{label}]"


def parse_slice_name(name: str) -> tuple[str, str] | None:
    """(scorer, slice label) of a slice's name, None for any other name (split subsets
    `scorer[public]` have no `=`)."""
    if not name.endswith("]") or "[" not in name:
        return None
    scorer, _, label = name[:-1].partition("[")
    if "=" not in label or not scorer:
        return None
    return scorer, label


def slice_values(item_fields: Mapping[str, Any], fields: Sequence[str]) -> dict[str, str]:
    """field -> value of the slice fields an item has; a missing or null field puts the
    item in no slice of that field. Raises ValueError for a value that is not a string,
    number or boolean, or is longer than `MAX_VALUE_CHARS`."""
    out: dict[str, str] = {}
    for name in fields:
        value = item_fields.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            kind = type(value).__name__
            message = f"slice field {name!r} must be a string, number or boolean, got {kind}"
            raise ValueError(message)  # noqa: TRY004 - one error type for every bad value
        if not text or len(text) > MAX_VALUE_CHARS:
            raise ValueError(
                f"slice field {name!r} has a value of {len(text)} characters "
                f"(1 to {MAX_VALUE_CHARS} allowed)"
            )
        out[name] = text
    return out


def slice_policy(settings: DriftSettings, n_slices: int) -> DriftSettings:
    """The policy of each of a scorer's `n_slices` slices: the CUSUM's in-control run
    length multiplied by `n_slices`, the rest unchanged (the per-run p-values are
    corrected together by `decide`)."""
    if n_slices <= 1:
        return settings
    return replace(settings, arl0=settings.arl0 * n_slices)
