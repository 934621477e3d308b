"""What a run measured: its fingerprint, whether two runs are comparable, and served-model changes.

A run's score means something only next to runs that measured the same thing: the same
endpoint type and host, configured model, parameters and request shape, the same
benchmark version and scorers. Those are the *configured* fields; two runs that differ in
one of them are not comparable (`differences`). The *served* fields record what the
endpoint said it ran: the ``model`` values of its answers and, where the API returns it,
the ``system_fingerprint``. A provider can change those behind a fixed configured model;
`served_change` tells when a run's served model is not its baseline's (docs/statistics.md,
"Served-model changes").
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "BENCHMARK_FIELDS",
    "CONFIGURED",
    "Difference",
    "Fingerprint",
    "JudgeServedChange",
    "ServedChange",
    "differences",
    "judged_alike",
    "served_alike",
    "served_change",
]

#: what two endpoints compared for model selection must share: the same test
BENCHMARK_FIELDS = ("benchmark_version", "scorers")
#: the fields that define the measurement; a difference in one makes runs incomparable
CONFIGURED = (
    "endpoint_type",
    "endpoint_host",
    "model",
    "params",
    "request",
    "benchmark_version",
    "scorers",
)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What defines one run's measurement, and what the endpoint said it served."""

    endpoint_type: str
    endpoint_host: str
    model: str | None
    params: Mapping[str, Any]
    # a digest of the request and response templates (http-json, mlflow, kserve-v2)
    request: str | None
    benchmark_version: str
    scorers: tuple[str, ...]
    monitor_version: str
    # value -> number of answers that carried it
    served_models: Mapping[str, int] = field(default_factory=dict)
    system_fingerprints: Mapping[str, int] = field(default_factory=dict)
    # judge scorer -> {"judge": its configured identity, and once the run is over the
    # "served_models" and "system_fingerprints" its judge's answers carried}
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def served(
        self,
        models: Mapping[str, int],
        fingerprints: Mapping[str, int],
        judges: Mapping[str, tuple[Mapping[str, int], Mapping[str, int]]] | None = None,
    ) -> Fingerprint:
        """This fingerprint with the served values counted over a run's answers (and over
        its judges' answers)."""
        judged = {name: dict(entry) for name, entry in self.judges.items()}
        for name, (judge_models, judge_prints) in (judges or {}).items():
            entry = judged.setdefault(name, {})
            entry["served_models"] = dict(judge_models)
            entry["system_fingerprints"] = dict(judge_prints)
        return replace(
            self,
            served_models=dict(models),
            system_fingerprints=dict(fingerprints),
            judges=judged,
        )

    def judge_served(self, scorer: str) -> tuple[str | None, str | None]:
        """The model and system fingerprint most of `scorer`'s judge answers carried."""
        entry = self.judges.get(scorer) or {}
        return (
            _dominant(entry.get("served_models") or {}),
            _dominant(entry.get("system_fingerprints") or {}),
        )

    @property
    def served_model(self) -> str | None:
        """The model value most answers carried (ties: the smallest), or None."""
        return _dominant(self.served_models)

    @property
    def system_fingerprint(self) -> str | None:
        """The system_fingerprint most answers carried (ties: the smallest), or None."""
        return _dominant(self.system_fingerprints)

    def to_json(self) -> dict[str, Any]:
        """A plain JSON object (the stored form and the API's)."""
        return {
            "endpoint_type": self.endpoint_type,
            "endpoint_host": self.endpoint_host,
            "model": self.model,
            "params": dict(self.params),
            "request": self.request,
            "benchmark_version": self.benchmark_version,
            "scorers": list(self.scorers),
            "monitor_version": self.monitor_version,
            "served_models": dict(self.served_models),
            "system_fingerprints": dict(self.system_fingerprints),
            "judges": {name: dict(entry) for name, entry in self.judges.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fingerprint:
        """The inverse of `to_json`."""
        return cls(
            endpoint_type=str(data["endpoint_type"]),
            endpoint_host=str(data["endpoint_host"]),
            model=data.get("model"),
            params=dict(data.get("params") or {}),
            request=data.get("request"),
            benchmark_version=str(data["benchmark_version"]),
            scorers=tuple(data.get("scorers") or ()),
            monitor_version=str(data.get("monitor_version", "")),
            served_models={str(k): int(v) for k, v in (data.get("served_models") or {}).items()},
            system_fingerprints={
                str(k): int(v) for k, v in (data.get("system_fingerprints") or {}).items()
            },
            judges={str(k): dict(v) for k, v in (data.get("judges") or {}).items()},
        )


def _dominant(counts: Mapping[str, int]) -> str | None:
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], value))


@dataclass(frozen=True, slots=True)
class Difference:
    """One configured field that two fingerprints disagree on."""

    field: str
    a: Any
    b: Any

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.a)} -> {_show(self.b)}"

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "a": self.a, "b": self.b}


def _show(value: Any) -> str:
    return "unset" if value is None else json.dumps(value, sort_keys=True, default=str)


def differences(
    a: Fingerprint, b: Fingerprint, fields: Sequence[str] = CONFIGURED
) -> list[Difference]:
    """The configured `fields` in which `a` and `b` differ; empty when they are comparable.

    Parameters are compared one by one (``params.temperature``), so the report names the
    parameter, not the whole mapping. `monitor_version` and the served values are not
    part of comparability: the first does not change what is measured, the second is
    what `served_change` watches.
    """
    found: list[Difference] = []
    for name in fields:
        left, right = getattr(a, name), getattr(b, name)
        if name == "params":
            found.extend(
                Difference(f"params.{key}", left.get(key), right.get(key))
                for key in sorted(set(left) | set(right))
                if left.get(key) != right.get(key)
            )
        elif left != right:
            found.append(Difference(name, _plain(left), _plain(right)))
    return found


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class ServedChange:
    """The run's served model or system fingerprint is not what its baseline was served."""

    field: str  # "model" or "system_fingerprint"
    before: tuple[str, ...]  # what the baseline runs were served, most answers first
    after: str

    def __str__(self) -> str:
        was = ", ".join(self.before) or "none"
        return f"served {self.field} changed: baseline {was}, this run {self.after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "served_model_changed",
            "field": self.field,
            "before": list(self.before),
            "after": self.after,
        }


def served_change(current: Fingerprint, baseline: Iterable[Fingerprint]) -> ServedChange | None:
    """How `current`'s served model differs from what `baseline` runs were served, if it does.

    Only baseline runs with the same configured model and endpoint count: a configured
    change is a different measurement (`differences`), not a silent update. The value
    most of the run's answers carried must have been served in every baseline run that
    recorded one: an API answering from several replicas (several fingerprints in every
    run) raises nothing, while after a real change the runs from before it keep saying so
    until they leave the baseline window. The model id is checked first.
    """
    same = [
        fp
        for fp in baseline
        if (fp.endpoint_type, fp.endpoint_host, fp.model)
        == (current.endpoint_type, current.endpoint_host, current.model)
    ]
    for name, now in (
        ("model", current.served_model),
        ("system_fingerprint", current.system_fingerprint),
    ):
        counts = [
            c
            for fp in same
            if (c := fp.served_models if name == "model" else fp.system_fingerprints)
        ]
        if now is not None and any(now not in c for c in counts):
            return ServedChange(name, tuple(_ranked(counts)), now)
    return None


@dataclass(frozen=True, slots=True)
class JudgeServedChange:
    """A judge scorer's judge served another model or fingerprint than in some baseline
    runs: those runs leave that scorer's baseline (a changed judge is a new history)."""

    scorer: str
    field: str  # "model" or "system_fingerprint"
    before: tuple[str, ...]
    after: str
    left_out: int  # baseline runs judged by the other judge

    def __str__(self) -> str:
        was = ", ".join(self.before) or "none"
        return (
            f"the judge of {self.scorer} served {self.field} {self.after} (baseline: {was}); "
            f"{self.left_out} baseline run(s) judged otherwise left out"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "judge_served_changed",
            "scorer": self.scorer,
            "field": self.field,
            "before": list(self.before),
            "after": self.after,
            "left_out": self.left_out,
        }


def judged_alike(
    current: Fingerprint, baseline: Mapping[int, Fingerprint], scorer: str
) -> tuple[list[int], JudgeServedChange | None]:
    """The baseline runs whose judge of `scorer` served what `current`'s did (a run that
    recorded nothing is kept), and the change when some were left out."""
    model, print_ = current.judge_served(scorer)
    kept: list[int] = []
    before: dict[str, list[str]] = {"model": [], "system_fingerprint": []}
    for rid, fp in baseline.items():
        their_model, their_print = fp.judge_served(scorer)
        if model is not None and their_model is not None and their_model != model:
            before["model"].append(their_model)
        elif print_ is not None and their_print is not None and their_print != print_:
            before["system_fingerprint"].append(their_print)
        else:
            kept.append(rid)
    left = len(baseline) - len(kept)
    if not left:
        return kept, None
    name = "model" if before["model"] else "system_fingerprint"
    after = model if name == "model" else print_
    was = tuple(dict.fromkeys(before[name]))
    return kept, JudgeServedChange(scorer, name, was, str(after), left)


def served_alike(current: Fingerprint, other: Fingerprint) -> bool:
    """Whether `other` was served what `current` was (no `served_change` between them)."""
    return served_change(current, [other]) is None


def _ranked(counts: Sequence[Mapping[str, int]]) -> list[str]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return [value for value, _ in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]
