"""What a finished run hands to its judge, and what its baseline runs contribute.

The runner collects `RunEvidence` in memory while items come back, so judging a run
never reads the run's own item results back from the store; a baseline contributes only
`BaselineSignals`, the few columns the drift checks need (no output text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.core.cost import RunUsage
from monitor.core.judging import Rescored

__all__ = ["LABEL_PREFIX_CHARS", "BaselineSignals", "RunEvidence", "predicted_label"]

# A predicted label is the answer stripped, lower-cased and cut to 100 characters; the
# baseline query reads at most this prefix of an output to rebuild it (docs/architecture.md).
LABEL_PREFIX_CHARS = 256


def predicted_label(output: str | None) -> str:
    """The label a classification answer predicts, as the label-mix drift check counts it."""
    return (output or "").strip().lower()[:100]


@dataclass(frozen=True, slots=True)
class RunEvidence:
    """Per-item evidence of one run, gathered by the runner as the answers arrive.

    `scores` maps each scorer (and each `scorer[split]` subset) to item key -> score;
    the signal lists cover the items that got an answer (no endpoint error).
    """

    scores: Mapping[str, Mapping[str, float]]
    latencies: Sequence[float] = ()
    output_lengths: Sequence[int] = ()
    labels: Sequence[str] = ()
    # completion tokens of the answers that reported them (verbosity: what a run costs)
    completion_tokens: Sequence[int] = ()
    # judge scorer -> its calibration set re-scored during the run (the sentinel)
    calibration: Mapping[str, Rescored] = field(default_factory=dict)
    # judge scorer -> what its judge said it served: (model ids, system fingerprints)
    judges_served: Mapping[str, tuple[Mapping[str, int], Mapping[str, int]]] = field(
        default_factory=dict
    )
    # judge scorer -> its calls' tokens and their cost in this run (answers and calibration)
    judge_usage: Mapping[str, RunUsage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BaselineSignals:
    """The drift signals of the answered items of some baseline runs."""

    latencies: list[float] = field(default_factory=list)
    output_lengths: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
