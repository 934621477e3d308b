"""Frozen domain types shared by the core and every adapter.

These are value types shaped by the scoring and statistics code, not by the
database schema: storage converts between them and its tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from monitor.core.fingerprint import Fingerprint

if TYPE_CHECKING:  # cost builds on Usage here: imported for annotations only
    from monitor.core.cost import RunUsage


class RunStatus(StrEnum):
    """Life cycle of one run: running, then exactly one final state."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the run could not complete (benchmark or store broke)
    ABORTED = "aborted"  # interrupted: shutdown, crash, lost leadership
    DEGRADED = "degraded"  # completed, but too many endpoint errors to judge quality


class ErrorKind(StrEnum):
    """Why an item got no usable output from the endpoint."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    INVALID_RESPONSE = "invalid_response"
    # the model answered, but a judge scorer got no verdict for the answer (monitor/grading.py)
    JUDGE = "judge"


class VerdictKind(StrEnum):
    """Outcome of comparing one run's scorer with its baseline."""

    OK = "ok"
    WARN = "warn"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    NO_BASELINE = "no_baseline"
    INSUFFICIENT_DATA = "insufficient_data"
    DEGRADED = "degraded"
    # the judge of an LLM-judged scorer moved on its calibration set: the score's change
    # is not the model's (docs/judges.md)
    JUDGE_DRIFT = "judge_drift"


@dataclass(frozen=True, slots=True)
class CustomScorer:
    """A scorer function from the user's code, found by monitor/plugins.py.

    `version` is the function's declared version: it is part of the benchmark version, so a
    new version starts a new history. The function itself is neither compared nor hashed.
    """

    function: Callable[..., object] = field(compare=False)
    version: str
    binary: bool = False  # every score is 0 or 1 (summaries use the Wilson interval)


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    """A configured scorer: `kind` picks the function, `name` keys its scores.

    For a custom scorer `kind` is its reference (``package.module:function`` or the name of
    an entry point in the group ``monitor.scorers``) and `custom` holds what it resolved to.
    """

    kind: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    custom: CustomScorer | None = None
    # a judge scorer's configured judge (endpoint type, host, model, request parameters,
    # prompt digest), set by monitor/config.py once the endpoint is known: part of the
    # benchmark version, so a changed judge starts a new history
    judge: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat-structured item, as an openai-chat endpoint sends it."""

    role: str  # system, developer, user or assistant
    content: str


@dataclass(frozen=True, slots=True)
class Item:
    """One benchmark item: its stable key, raw fields, rendered prompt and reference.

    `messages` is the whole chat to send, ending with the user's turn (`prompt`, when the
    benchmark has one), for a benchmark with a system prompt, few-shot messages or a
    conversation field; it is empty otherwise, and chat endpoints send `prompt` alone.
    """

    key: str
    fields: Mapping[str, Any]
    prompt: str | None = None
    reference: Any = None
    split: str | None = None
    # slice field -> value, for the benchmark's `slices:` fields the item has
    slices: Mapping[str, str] = field(default_factory=dict)
    # hash of fields and reference (monitor/benchmarks/versioning.py): one key and one digest
    # in two versions are the same question
    digest: str | None = None
    messages: tuple[ChatMessage, ...] = ()
    # request parameters of this call only, over the endpoint's (a judge vote's seed)
    request_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A loaded benchmark at one content version (hash of items, prompt and scorers)."""

    name: str
    version: str
    items: tuple[Item, ...]
    scorers: tuple[ScorerSpec, ...]
    prompt_template: str | None = None
    # what the items are measured with (scorers, reference field, the prompt's wording unless
    # declared cosmetic): versions sharing it are compared item by item (docs/configuration.md,
    # "Benchmarks that evolve"); None for versions stored before it existed
    frame: str | None = None
    template_digest: str | None = None
    slices: tuple[str, ...] = ()  # the item fields the run's scores are also cut by


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the endpoint, when it reports any."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # parts of the two above, where the API reports them (OpenAI's *_tokens_details)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def of(cls, **counts: int | None) -> Usage | None:
        """A Usage from the counts given, or None when every count is None."""
        return None if all(v is None for v in counts.values()) else cls(**counts)


TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


@dataclass(frozen=True, slots=True)
class Response:
    """What an endpoint returned for one item (or why it returned nothing)."""

    output: str | None
    latency_s: float
    error: ErrorKind | None = None
    error_detail: str | None = None
    model_id: str | None = None
    usage: Usage | None = None
    attempts: int = 1
    system_fingerprint: str | None = None  # OpenAI-compatible APIs' `system_fingerprint`


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One item of one run: output, per-scorer scores (empty when errored), timing."""

    item_key: str
    output: str | None
    scores: Mapping[str, float]
    latency_s: float
    error: ErrorKind | None = None
    error_detail: str | None = None
    usage: Usage | None = None
    attempts: int = 1
    # judge scorer -> {"reason", "votes", "error"}: what each judge said about this answer
    judgments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # a monitor with `repeats: n`: each sample's {"scores", "error", "latency_s", "output"}
    # (output cut short); `scores` then holds their means and `output` the first answer
    repeats: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """Run-level aggregate of one scorer: mean with a confidence interval."""

    scorer: str
    value: float
    ci_lower: float
    ci_upper: float
    n: int


@dataclass(frozen=True, slots=True)
class Rescore:
    """A scorer applied afterwards to one run's stored outputs (`monitor rescore`): kept
    beside the run's own scores, never over them, and never judged for drift."""

    run_id: int
    scorer: str
    scorer_id: str  # name=kind plus parameters and, for a judge, its judge's identity
    summary: ScoreSummary | None  # None when no stored output could be scored
    scores: Mapping[str, float]  # item key -> score
    judgments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: int = 0  # outputs the scorer (its judge) gave no score for
    skipped: int = 0  # items of the run without a stored output (errored or pruned)
    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a monitor's benchmark version against one endpoint."""

    id: int
    monitor: str
    endpoint: str
    benchmark: str
    benchmark_version: str
    trigger: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    n_items: int = 0
    n_errors: int = 0
    model_id: str | None = None
    # what the run measured (None for runs stored before fingerprints, and unfinished ones)
    fingerprint: Fingerprint | None = None
    # what judging noticed about the run itself, e.g. a served-model change (JSON objects)
    events: tuple[Mapping[str, Any], ...] = ()
    # tokens summed over the answers and their cost (None for runs stored before it)
    usage: RunUsage | None = None
    status_reason: str | None = None  # why an aborted run was: budget, leadership_lost, ...
    repeats: int = 1  # samples per item (a monitor's `repeats:`); another value, another history


@dataclass(frozen=True, slots=True)
class ChangedItems:
    """Items whose outcome flipped between the baseline and the current run."""

    pass_to_fail: tuple[str, ...] = ()
    fail_to_pass: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one scorer of one run, with everything needed to explain it."""

    scorer: str
    verdict: VerdictKind
    test: str
    baseline: str
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None
    effect_ci: tuple[float, float] | None = None
    baseline_score: float | None = None
    changed: ChangedItems = field(default_factory=ChangedItems)
    detail: str = ""
    # sequential detector state to store and pass back with the next run of this
    # (monitor, endpoint, scorer); None when the check keeps no state
    cusum_state: float | None = None
    # minimum detectable effect: the smallest drop of the run's score (score units, 0.04 =
    # 4 points) that one run's test flags with the configured power (`detectable_power`,
    # default 0.8) at the reference window's noise; None for drift checks and untested runs
    detectable_effect: float | None = None
