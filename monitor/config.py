"""YAML configuration -> validated, frozen settings.

Loading is three steps, each reporting errors as ``file:line: field.path: message``:

1. parse YAML into plain data while recording the line of every key and value
   (duplicate keys are errors: YAML would silently keep the last one);
2. substitute ``${VAR}`` / ``${VAR:-default}`` in strings from an explicit environ mapping;
   substituted values are remembered as secrets so logs and stores can mask them;
3. validate with pydantic (unknown keys are errors) and check cross references.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.bounded_yaml import build_data, compose, format_path, load
from monitor.core.judging import JUDGE_KINDS, judge_spec
from monitor.core.model import Benchmark, Item, ScorerSpec
from monitor.core.scoring import SCORER_KINDS, build_scorer
from monitor.errors import ConfigError
from monitor.plugins import resolve_scorer
from monitor.templating import DEFAULT_LIMITS, Template, TemplateLimits

# ---------------------------------------------------------------- scalar types

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from ``30s``, ``15m``, ``1h30m``, ``250ms`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"invalid duration {value!r}: must be a finite number of seconds")
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    text = str(value).strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (examples: 30s, 15m, 1h30m, 250ms)")
    return total


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|d)\s*$")


def parse_rate(value: object) -> float:
    """Requests per second from ``20/s``, ``600/m``, ``5/h``."""
    match = _RATE.match(str(value))
    if isinstance(value, bool) or match is None or float(match.group(1)) <= 0:
        raise ValueError(f"invalid rate limit {value!r} (examples: 20/s, 600/m)")
    return float(match.group(1)) / _UNIT_SECONDS[match.group(2)]


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def check_name(value: object) -> object:
    """Names are 1-100 characters of ``A-Z a-z 0-9 _ . : -`` starting with a letter or digit."""
    if isinstance(value, str) and not _NAME.fullmatch(value):
        raise ValueError(
            f"invalid name {value!r} (1-100 characters of A-Z a-z 0-9 _ . : -, "
            "starting with a letter or digit)"
        )
    return value


def _check_fields(value: object) -> object:
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    ):
        return value
    raise ValueError(f"expected a field name or a list of field names, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Name = Annotated[str, BeforeValidator(check_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Templated(_Model):
    """Settings holding templates, which render within the config's `templates` limits."""

    # set by parse_settings from the `templates` section
    _template_limits: TemplateLimits = PrivateAttr(default=DEFAULT_LIMITS)

    @property
    def template_limits(self) -> TemplateLimits:
        """The caps on rendering this entry's templates (monitor/templating.py)."""
        return self._template_limits


# ---------------------------------------------------------------- sections


class StorageSettings(_Model):
    url: str = "sqlite:///monitor.db"
    retention_days: int | None = Field(default=None, ge=1)


class ServerSettings(_Model):
    listen: str = "127.0.0.1:9464"
    api_token: str | None = None
    shutdown_grace: Duration = 30.0
    dashboard_url: str | None = None
    # where people and alert links reach the pages and the API; by default http://{listen}
    public_url: str | None = None
    # replicas on PostgreSQL: stay up and campaign again, or exit for a supervisor to
    # restart (docs/operations.md, "Leadership and fencing")
    on_leadership_lost: Literal["stay", "exit"] = "stay"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"invalid listen address {value!r} (expected host:port)")
        return value

    # the web pages under /ui/ take the bearer token `api_token` too (docs/ui.md); with
    # no token set they are then refused, never open
    ui_auth: bool = False

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                f"invalid public_url {value!r} (expected http:// or https://host[:port][/path])"
            )
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        """The URL that links to the daemon start with: `public_url`, else ``http://{listen}``.

        A wildcard listen address (``0.0.0.0``, ``::``) is nobody's address, so the
        machine's host name stands in for it.
        """
        if self.public_url:
            return self.public_url
        host = self.listen.rpartition(":")[0]
        if self.host in {"0.0.0.0", "::"}:  # noqa: S104 - recognizing it, not binding
            host = socket.gethostname()
        return f"http://{host}:{self.port}"


EndpointType = Literal["openai-chat", "openai-completions", "http-json", "mlflow", "kserve-v2"]


class InputSettings(_Model):
    """How item fields become a model input (mlflow, kserve-v2)."""

    field: Annotated[str | list[str], BeforeValidator(_check_fields)]
    format: Literal["inputs", "dataframe_records", "dataframe_split"] = "inputs"
    tensor: str = "input-0"
    datatype: str = "FP64"


class PriceSettings(_Model):
    """The team's own price of an endpoint's tokens, from a date on."""

    since: date
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)


class PricingSettings(_Model):
    """How runs on an endpoint are priced (docs/configuration.md, `pricing`)."""

    # the price table's provider id (openai, anthropic, google, ...); default: from `url`
    provider: str | None = None
    # the model name to look up; default: the model the answers name, else `model`
    model: str | None = None
    # configured prices win over the table from their `since` date on
    prices: list[PriceSettings] = Field(default_factory=list)


class RateLimitSettings(_Model):
    """A provider's published limits (``rate_limit: {requests_per_minute: 600, ...}``)."""

    requests_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # prompt plus completion tokens, as the answers' usage reports them
    tokens_per_minute: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check_some(self) -> RateLimitSettings:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("give requests_per_minute, tokens_per_minute or both")
        return self


def _rate_limit_kind(value: object) -> str:
    return "limits" if isinstance(value, Mapping | RateLimitSettings) else "rate"


# `20/s` (requests per second, the original form) or a mapping of per-minute limits
RateLimit = Annotated[
    Annotated[Rate, Tag("rate")] | Annotated[RateLimitSettings, Tag("limits")],
    Discriminator(_rate_limit_kind),
]


class EndpointSettings(_Templated):
    name: Name
    type: EndpointType
    url: str
    model: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    # the most requests in flight; the adaptive limit stays within [1, concurrency]
    # (docs/decisions/0009-adaptive-concurrency.md)
    concurrency: int = Field(default=8, ge=1, le=1024)
    # read through the `rate_limit` (requests per second) and `tokens_per_minute`
    # properties; the field has its own name so the properties keep the original meaning
    limits: RateLimit | None = Field(default=None, alias="rate_limit")
    timeout: Annotated[Duration, Field(gt=0)] = 30.0
    retries: int = Field(default=3, ge=0, le=20)
    backoff: Duration = 0.5
    max_response_bytes: int = Field(default=1 << 20, ge=1024)
    verify_tls: bool = True
    ca_bundle: str | None = None
    body: str | None = None  # http-json: Jinja2 JSON template over item fields
    response: str | None = None  # http-json / mlflow: path to the prediction, e.g. $.result.label
    input: InputSettings | None = None  # mlflow / kserve-v2
    output: str | None = None  # kserve-v2: output tensor name
    pricing: PricingSettings = Field(default_factory=PricingSettings)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"invalid url {value!r} (expected http:// or https://)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_type_fields(self) -> EndpointSettings:
        needs: dict[str, tuple[str, ...]] = {
            "openai-chat": ("model",),
            "openai-completions": ("model",),
            "http-json": ("body", "response"),
            "mlflow": ("input",),
            "kserve-v2": ("model", "input"),
        }
        missing = [f for f in needs[self.type] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"type {self.type} requires: {', '.join(missing)}")
        return self

    @property
    def rate_limit(self) -> float | None:
        """Requests per second, from either form of ``rate_limit``; None without one."""
        limits = self.limits
        if isinstance(limits, RateLimitSettings):
            rpm = limits.requests_per_minute
            return None if rpm is None else rpm / 60.0
        return limits

    @property
    def tokens_per_minute(self) -> float | None:
        limits = self.limits
        return limits.tokens_per_minute if isinstance(limits, RateLimitSettings) else None

    def fingerprint(self) -> str:
        """Hash of the settings that change what is measured; header values are excluded
        because they hold secrets and rotating a key does not change the model, and prices
        because they change what a run costs, not what it measures."""
        data = self.model_dump(mode="json", exclude={"headers", "pricing", "limits"})
        # under its configured key, as before the per-minute form: old hashes stay valid
        limits = self.limits
        data["rate_limit"] = (
            limits.model_dump(mode="json", exclude_none=True)
            if isinstance(limits, RateLimitSettings)
            else limits
        )
        data["header_names"] = sorted(self.headers)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _parse_scorer(value: object) -> ScorerSpec:
    """``exact_match`` or ``{regex: {pattern: ...}}``; an optional ``name`` param renames it.

    Any other kind is a custom scorer (``module:function`` or an entry point name), imported
    now by monitor/plugins.py so that a typo fails check-config, not the first run.
    """
    if isinstance(value, ScorerSpec):
        return value
    if isinstance(value, str):
        kind, params = value, {}
    elif isinstance(value, Mapping) and len(value) == 1:
        kind, raw = next(iter(value.items()))
        params = dict(raw) if isinstance(raw, Mapping) else {}
        if raw is not None and not isinstance(raw, Mapping):
            raise ValueError(f"scorer {kind!r}: parameters must be a mapping")
    else:
        raise ValueError("a scorer is a name or a mapping {kind: {params}}")
    builtin = SCORER_KINDS | set(JUDGE_KINDS)
    custom = None if kind in builtin else resolve_scorer(kind, builtin=builtin)
    name = str(params.pop("name", kind))
    check_name(name)  # it becomes the `scorer` label value of every score series
    spec = ScorerSpec(kind=kind, name=name, params=params, custom=custom)
    if kind in JUDGE_KINDS:
        judge_spec(spec)  # its endpoint is checked with the other names (_judges)
    else:
        build_scorer(spec)  # fail at load time, not at run time
    return spec


Scorer = Annotated[ScorerSpec, BeforeValidator(_parse_scorer)]


class MessageSettings(_Model):
    """One few-shot message of a chat-structured benchmark; `content` is a template."""

    role: Literal["user", "assistant"]
    content: str


class BenchmarkSettings(_Templated):
    name: Name
    data: str
    format: Literal["auto", "jsonl", "csv", "labelstudio", "parquet", "hf"] = "auto"
    prompt: str | None = None
    reference: str | None = None
    id_field: str = "id"
    scorers: list[Scorer] = Field(min_length=1)
    split: str | None = None
    # item fields the scores are also cut by, each value tested on its own (docs/configuration.md)
    slices: list[str] = Field(default_factory=list, max_length=5)
    # "cosmetic": a changed prompt template or chat structure keeps comparing unchanged items
    # with earlier versions (recorded with the version); "breaking" starts a new history
    template_change: Literal["breaking", "cosmetic"] = "breaking"
    limit: int | None = Field(default=None, ge=1)
    # chat structure (openai-chat): system, few_shot, the item's conversation, then `prompt`
    system: str | None = None  # template: the system message
    few_shot: list[MessageSettings] = Field(default_factory=list)
    conversation: str | None = None  # item field holding earlier turns [{role, content}]

    # "file:line: benchmarks[i].field" per field, set when loaded from a config file, so
    # that data errors found later (check-config, reload, run) name the config entry too
    _where: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("scorers")
    @classmethod
    def _unique_scorers(cls, scorers: list[ScorerSpec]) -> list[ScorerSpec]:
        names = [s.name for s in scorers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate scorer names {dup}: give one a `name` parameter")
        return scorers

    @model_validator(mode="after")
    def _chat_ends_with_the_user(self) -> BenchmarkSettings:
        if (self.system is not None or self.few_shot) and not (self.prompt or self.conversation):
            raise ValueError(
                "`system` and `few_shot` need a `prompt` or a `conversation` for the user's turn"
            )
        return self

    @property
    def is_chat(self) -> bool:
        """Whether items are sent as a chat (system, few-shot or conversation messages)."""
        return self.system is not None or bool(self.few_shot) or self.conversation is not None

    def where(self, field: str) -> str | None:
        """``monitor.yaml:17: benchmarks[0].data`` when loaded from a file, else None."""
        return self._where.get(field)


class ScheduleSettings(_Model):
    cron: str | None = None
    every: Duration | None = None
    jitter: Duration = 0.0
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"invalid cron {value!r}: expected 5 fields (m h dom mon dow)")
        return value

    @field_validator("every")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be positive")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSettings:
        if (self.cron is None) == (self.every is None):
            raise ValueError("schedule needs exactly one of `cron` or `every`")
        return self


class DriftConfig(_Model):
    baseline: str = "rolling:20"
    # Verdicts start once this many baseline runs exist (default: min(K, 5)); the
    # rolling window then grows to K, which sharpens every per-item estimate.
    min_baseline_runs: int | None = Field(default=None, ge=1, le=999)
    alpha: float = Field(default=0.005, gt=0, lt=1)
    min_effect: float = Field(default=0.01, ge=0, le=1)
    sequential: Literal["cusum", "none"] = "cusum"
    arl0: float = Field(default=10000.0, gt=1)
    # `alpha` bounds false alarms over this many runs; 1 makes it a per-run level (CI gates)
    horizon_runs: int = Field(default=30, ge=1, le=100_000)
    # when the served model or system fingerprint is not the baseline's: judge against the
    # baseline anyway and say so (keep), or judge only against baseline runs served the
    # same way, which starts a new baseline (docs/statistics.md, "Served-model changes")
    on_model_change: Literal["keep", "rebaseline"] = "keep"

    @field_validator("baseline")
    @classmethod
    def _check_baseline(cls, value: str) -> str:
        if value != "pinned" and not re.fullmatch(r"rolling:[1-9]\d{0,2}", value):
            raise ValueError(f"invalid baseline {value!r} (expected rolling:K or pinned)")
        return value

    @model_validator(mode="after")
    def _min_runs_within_window(self) -> DriftConfig:
        k = self.rolling_window
        if self.min_baseline_runs is not None and k is not None and self.min_baseline_runs > k:
            raise ValueError(
                f"min_baseline_runs ({self.min_baseline_runs}) exceeds the rolling window "
                f"({self.baseline})"
            )
        return self

    @property
    def rolling_window(self) -> int | None:
        return int(self.baseline.split(":")[1]) if self.baseline.startswith("rolling:") else None

    @property
    def required_runs(self) -> int:
        """Baseline runs needed before a rolling baseline gives verdicts."""
        k = self.rolling_window or 1
        return self.min_baseline_runs if self.min_baseline_runs is not None else min(k, 5)


class BudgetSettings(_Model):
    """Limits on what a monitor's runs may spend (docs/configuration.md, `budget`)."""

    run_dollars: float | None = Field(default=None, gt=0)
    run_tokens: int | None = Field(default=None, gt=0)
    # over all of the monitor's runs of the UTC day; once used up, scheduled runs wait
    # for the next day (manual runs still start)
    day_dollars: float | None = Field(default=None, gt=0)
    day_tokens: int | None = Field(default=None, gt=0)

    @property
    def per_day_set(self) -> bool:
        return self.day_dollars is not None or self.day_tokens is not None


class MonitorSettings(_Model):
    name: Name
    benchmark: str
    endpoints: list[str] = Field(min_length=1)
    schedule: ScheduleSettings | None = None
    drift: DriftConfig = Field(default_factory=DriftConfig)
    alert: list[str] = Field(default_factory=list)
    degraded_threshold: float = Field(default=0.05, ge=0, le=1)
    score_floor: float | None = Field(default=None, ge=0, le=1)
    # samples per item: scores are their means; pass@n and pass^n too (docs/configuration.md)
    repeats: int = Field(default=1, ge=1, le=20)
    # per slice value of the benchmark ("category=refund": 0.9): a floor for that slice alone
    slice_floors: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)

    @field_validator("slice_floors")
    @classmethod
    def _slice_labels(cls, floors: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k in floors if "=" not in k or k.startswith("=") or k.endswith("="))
        if bad:
            raise ValueError(f"slice_floors keys must be field=value, got {bad}")
        return floors


class WebhookReceiver(_Model):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class UrlReceiver(_Model):
    url: str


class ReceiverSettings(_Model):
    name: Name
    webhook: WebhookReceiver | None = None
    slack: UrlReceiver | None = None
    alertmanager: UrlReceiver | None = None


class AlertingSettings(_Model):
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    repeat_interval: Duration = 4 * 3600.0


class TemplateSettings(_Model):
    """Caps on rendering one prompt or body; over a cap is a config error at check-config
    and an item error at run time (docs/configuration.md, `templates`)."""

    max_output: int = Field(default=DEFAULT_LIMITS.max_output, ge=1000, le=1_000_000_000)
    max_operations: int = Field(default=DEFAULT_LIMITS.max_operations, ge=100, le=1_000_000_000)

    @property
    def limits(self) -> TemplateLimits:
        return TemplateLimits(max_output=self.max_output, max_operations=self.max_operations)


class Settings(_Model):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    endpoints: list[EndpointSettings] = Field(default_factory=list)
    benchmarks: list[BenchmarkSettings] = Field(default_factory=list)
    monitors: list[MonitorSettings] = Field(default_factory=list)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)

    _secrets: frozenset[str] = PrivateAttr(default=frozenset())
    _source: str = PrivateAttr(default="<memory>")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @property
    def secrets(self) -> frozenset[str]:
        """Every value that came from the environment: never to be logged or stored."""
        return self._secrets

    @property
    def template_limits(self) -> TemplateLimits:
        """The `templates` caps, for every template of this config."""
        return self.templates.limits

    @property
    def source(self) -> str:
        return self._source

    def where(self, path: tuple[str | int, ...]) -> str:
        """``file:line: field.path`` for errors found after validation (cron, data files)."""
        line = 1
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                line = self._lines[path[:end]]
                break
        return f"{self._source}:{line}: {format_path(path)}"

    def endpoint(self, name: str) -> EndpointSettings:
        return next(e for e in self.endpoints if e.name == name)

    def benchmark(self, name: str) -> BenchmarkSettings:
        return next(b for b in self.benchmarks if b.name == name)

    def monitor(self, name: str) -> MonitorSettings:
        for m in self.monitors:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.monitors) or "none"
        raise ConfigError(f"{self._source}: no monitor named {name!r} (known: {known})")


# ---------------------------------------------------------------- YAML with lines

Path_ = tuple[str | int, ...]


class _Located:
    """The line of every path of the parsed document (filled by `bounded_yaml.build_data`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path_, int] = {}

    def line_of(self, path: Path_) -> int:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def error(self, line: int, path: Path_, message: str) -> ConfigError:
        return ConfigError(f"{self.source}:{line}: {format_path(path)}: {message}")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(
    data: Any, path: Path_, environ: Mapping[str, str], loc: _Located, secrets: set[str]
) -> Any:
    if isinstance(data, dict):
        return {k: _interpolate(v, (*path, k), environ, loc, secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate(v, (*path, i), environ, loc, secrets) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        var, default = match.group(1), match.group(2)
        if var in environ:
            value = environ[var]
            if value:
                secrets.add(value)
            return value
        if default is not None:
            return default
        raise loc.error(loc.line_of(path), path, f"environment variable {var} is not set")

    return _ENV_REF.sub(substitute, data)


# ---------------------------------------------------------------- loading


def _describe(err: Mapping[str, Any]) -> str:
    kind, msg = err["type"], str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required field"
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _clean_loc(loc: tuple[Any, ...], data: Any, *, missing: bool = False) -> Path_:
    """The data path of an error location: pydantic adds validator and union-member tags
    (``function-before[...]``, ``list[str]``, the `RateLimit` forms) that address no key of
    the data; drop them. Only a ``missing`` field's last part may name an absent key."""
    out: list[str | int] = []
    node = data
    last = len(loc) - 1
    for i, part in enumerate(loc):
        if isinstance(node, dict):
            if part not in node and not (missing and i == last):
                continue
            out.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if 0 <= part < len(node) else None
    return tuple(out)


def judge_identity(
    ep: EndpointSettings, spec: ScorerSpec, secrets: Collection[str] = ()
) -> dict[str, Any]:
    """What defines a judge scorer's judge: its endpoint's type, host and model, the
    parameters its requests send and the prompt's digest (secrets masked)."""
    judge = judge_spec(spec)
    url = urlsplit(ep.url)
    params = json.loads(mask_secrets(json.dumps(judge.request_params(ep.params)), secrets))
    return {
        "endpoint": ep.name,
        "type": ep.type,
        "host": url.hostname + (f":{url.port}" if url.port else "") if url.hostname else "",
        "model": ep.model,
        "params": params,
        "prompt": judge.prompt_digest(),
        "scale": judge.scale.label(),
        "votes": judge.votes,
    }


def scorer_option(settings: Settings, value: object, where: str = "--scorer") -> ScorerSpec:
    """A scorer given outside the config file (`monitor rescore --scorer`, the rescore API):
    YAML or JSON text or the parsed value, as in a benchmark's `scorers:` list, checked the
    same way; a judge scorer's endpoint must exist and its identity is stamped."""
    if isinstance(value, str):
        value = load(value, where)  # ConfigError "--scorer:1: invalid YAML: ..."
    kind = next(iter(value), None) if isinstance(value, Mapping) and len(value) == 1 else value
    if not isinstance(kind, str):
        raise ConfigError(f"{where}: a scorer is a name or a mapping {{kind: {{params}}}}")
    configured = {s.kind for b in settings.benchmarks for s in b.scorers}
    if kind not in SCORER_KINDS | set(JUDGE_KINDS) | configured:
        # importing a module named in a request would run its code: custom scorers come
        # from the config file only
        raise ConfigError(
            f"{where}: unknown scorer kind {kind!r}: a custom scorer must be configured in "
            "a benchmark first"
        )
    try:
        spec = _parse_scorer(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if spec.kind not in JUDGE_KINDS:
        return spec
    name = judge_spec(spec).endpoint
    endpoints = {e.name: e for e in settings.endpoints}
    if name not in endpoints:
        known = ", ".join(sorted(endpoints)) or "none"
        raise ConfigError(
            f"{where}: scorer {spec.name!r}: unknown judge endpoint {name!r} (known: {known})"
        )
    return replace(spec, judge=judge_identity(endpoints[name], spec, settings.secrets))


def _judges(settings: Settings, loc: _Located, secrets: Collection[str]) -> Settings:
    """Every judge scorer's endpoint must exist; its identity is stamped on its spec, so the
    benchmark's version (and the run's fingerprint) change when the judge does."""
    endpoints = {e.name: e for e in settings.endpoints}
    problems: list[tuple[int, str]] = []
    benchmarks = []
    for i, bench in enumerate(settings.benchmarks):
        scorers = []
        for j, given in enumerate(bench.scorers):
            spec = given
            if spec.kind in JUDGE_KINDS:
                name = judge_spec(spec).endpoint
                ep = endpoints.get(name)
                if ep is None:
                    path: Path_ = ("benchmarks", i, "scorers", j)
                    known = ", ".join(sorted(endpoints)) or "none"
                    problems.append(
                        (
                            loc.line_of(path),
                            f"{format_path(path)}: scorer {spec.name!r}: unknown judge "
                            f"endpoint {name!r} (known: {known})",
                        )
                    )
                    continue
                spec = replace(spec, judge=judge_identity(ep, spec, secrets))
            scorers.append(spec)
        benchmarks.append(bench.model_copy(update={"scorers": scorers}))
    if problems:
        report = "\n".join(f"{loc.source}:{line}: {msg}" for line, msg in sorted(problems))
        raise ConfigError(mask_secrets(report, secrets))
    if not any(s.kind in JUDGE_KINDS for b in settings.benchmarks for s in b.scorers):
        return settings
    return settings.model_copy(update={"benchmarks": benchmarks})


def _check_references(settings: Settings, loc: _Located) -> list[str]:
    """Checks across fields: duplicate names, templates that do not parse, unknown names."""
    problems: list[tuple[int, str]] = []

    def dup(section: Path_, names: list[str]) -> None:
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                path: Path_ = (*section, i, "name")
                first = loc.line_of((*section, seen[name], "name"))
                problems.append(
                    (
                        loc.line_of(path),
                        f"{format_path(path)}: duplicate name {name!r} (first at line {first})",
                    )
                )
            seen.setdefault(name, i)

    dup(("endpoints",), [e.name for e in settings.endpoints])
    dup(("benchmarks",), [b.name for b in settings.benchmarks])
    dup(("monitors",), [m.name for m in settings.monitors])
    dup(("alerting", "receivers"), [r.name for r in settings.alerting.receivers])
    # templates must parse (the fields they use are checked when the benchmark loads)
    templates: list[tuple[Path_, str | None]] = []
    templates += [(("endpoints", i, "body"), e.body) for i, e in enumerate(settings.endpoints)]
    templates += [
        (("benchmarks", i, "prompt"), b.prompt) for i, b in enumerate(settings.benchmarks)
    ]
    templates += [
        (("benchmarks", i, "system"), b.system) for i, b in enumerate(settings.benchmarks)
    ]
    templates += [
        (("benchmarks", i, "few_shot", j, "content"), m.content)
        for i, b in enumerate(settings.benchmarks)
        for j, m in enumerate(b.few_shot)
    ]
    for where, source in templates:
        if source is not None:
            try:
                Template(source)
            except ValueError as exc:
                problems.append((loc.line_of(where), f"{format_path(where)}: {exc}"))
    endpoints = {e.name for e in settings.endpoints}
    benchmarks = {b.name for b in settings.benchmarks}
    receivers = {r.name for r in settings.alerting.receivers}
    for i, mon in enumerate(settings.monitors):
        if mon.benchmark not in benchmarks:
            path: Path_ = ("monitors", i, "benchmark")
            problems.append(
                (loc.line_of(path), f"{format_path(path)}: unknown benchmark {mon.benchmark!r}")
            )
        for j, ep in enumerate(mon.endpoints):
            if ep not in endpoints:
                path = ("monitors", i, "endpoints", j)
                problems.append(
                    (loc.line_of(path), f"{format_path(path)}: unknown endpoint {ep!r}")
                )
        for j, rc in enumerate(mon.alert):
            if rc not in receivers:
                path = ("monitors", i, "alert", j)
                problems.append(
                    (loc.line_of(path), f"{format_path(path)}: unknown receiver {rc!r}")
                )
    return [f"{loc.source}:{line}: {msg}" for line, msg in sorted(problems)]


MAX_PROBLEMS = 100  # validation problems listed in one error; the rest are counted


def parse_settings(
    text: str,
    *,
    source: str = "<string>",
    environ: Mapping[str, str] | None = None,
    sections: Collection[str] | None = None,
) -> Settings:
    """Validate configuration text; raise ConfigError listing every problem found.

    With `sections`, only those top-level sections are read (the others take their
    defaults): commands that only read the database (`monitor runs`, `compare`, `export`,
    `db upgrade`) ask for `storage` alone, so they need none of the service's secrets.
    """
    loc = _Located(source)
    root = compose(text, source)  # bounded: alias bombs and deep nesting are refused here
    if root is None:
        raise ConfigError(
            f"{source}:1: (top level): the file is empty (expected a mapping of sections: "
            "storage, server, endpoints, benchmarks, monitors, alerting)"
        )
    data, loc.lines = build_data(root, source)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}:{root.start_mark.line + 1}: (top level): expected a mapping of sections, "
            f"got {_YAML_TYPES.get(type(data), type(data).__name__)}"
        )
    if sections is not None:
        data = {k: v for k, v in data.items() if k in sections}
    secrets: set[str] = set()
    data = _interpolate(data, (), os.environ if environ is None else environ, loc, secrets)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = sorted(
            {
                (loc.line_of(path), format_path(path), _describe(e))
                # without inputs and URLs: 100,000 errors would otherwise copy 100 MB
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
                for path in [_clean_loc(e["loc"], data, missing=e["type"] == "missing")]
            }
        )
        report = "\n".join(
            f"{source}:{line}: {path}: {msg}" for line, path, msg in problems[:MAX_PROBLEMS]
        )
        if len(problems) > MAX_PROBLEMS:  # a generated file can hold 100,000 bad entries
            report += f"\n{source}: ... and {len(problems) - MAX_PROBLEMS} more problems"
        raise ConfigError(mask_secrets(report, secrets)) from None
    reference_problems = _check_references(settings, loc)
    if reference_problems:
        raise ConfigError(mask_secrets("\n".join(reference_problems), secrets))
    settings = _judges(settings, loc, secrets)
    if settings.server.api_token:
        secrets.add(settings.server.api_token)  # a literal token is a secret all the same
    settings._secrets = frozenset(secrets)
    settings._source = source
    settings._lines = loc.lines
    for i, bench in enumerate(settings.benchmarks):
        bench._where = {
            name: settings.where(("benchmarks", i, name)) for name in BenchmarkSettings.model_fields
        }
    for entry in (*settings.benchmarks, *settings.endpoints):
        entry._template_limits = settings.template_limits
    return settings


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as written, or as ``repr`` escapes it) replaced by ``***``.

    Validation errors quote the offending value, and a value may have come from
    ``${ENV}``: an error must not carry it to a terminal, a log line or an API answer.
    Values under 4 characters are left alone, as the log redactor does.
    """
    forms = {form for s in secrets if len(s) >= 4 for form in (s, repr(s)[1:-1])}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


_YAML_TYPES = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


def _resolve_sqlite(storage: StorageSettings, base: Path) -> StorageSettings:
    """`sqlite:///relative.db` made absolute against `base`; other URLs unchanged."""
    prefix = "sqlite:///"
    url = storage.url
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return storage
    rest, sep, query = url.removeprefix(prefix).partition("?")
    if not rest or rest.startswith((":memory:", "file:")):
        return storage
    return storage.model_copy(update={"url": f"{prefix}{(base / rest).resolve()}{sep}{query}"})


def _calibration_paths(bench: BenchmarkSettings, base: Path) -> BenchmarkSettings:
    """A judge scorer's calibration file, like the benchmark's, is relative to the config."""
    scorers = []
    for spec in bench.scorers:
        cal = spec.params.get("calibration")
        entry: dict[str, Any] = {"data": cal} if isinstance(cal, str) else {}
        if isinstance(cal, Mapping):
            entry = dict(cal)
        data = entry.get("data")
        if spec.kind in JUDGE_KINDS and isinstance(data, str) and not Path(data).is_absolute():
            entry["data"] = str((base / data).resolve())
            scorers.append(replace(spec, params={**spec.params, "calibration": entry}))
        else:
            scorers.append(spec)
    return bench.model_copy(update={"scorers": scorers})


def load_settings(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    sections: Collection[str] | None = None,
) -> Settings:
    """Read and validate a config file (see `parse_settings` for `sections`).

    Relative paths resolve against the file's folder: benchmark data files, and a SQLite
    database (`sqlite:///monitor.db` next to the config, whatever the working directory).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8: {exc.reason}") from None
    settings = parse_settings(text, source=str(path), environ=environ, sections=sections)
    base = path.resolve().parent
    benchmarks = [
        _calibration_paths(b, base).model_copy(update={"data": str((base / b.data).resolve())})
        if not Path(b.data).is_absolute()
        else _calibration_paths(b, base)
        for b in settings.benchmarks
    ]
    resolved = settings.model_copy(
        update={"benchmarks": benchmarks, "storage": _resolve_sqlite(settings.storage, base)}
    )
    resolved._secrets = settings.secrets
    resolved._source = settings.source
    resolved._lines = settings._lines
    return resolved


def check_body_templates(
    settings: Settings, benchmarks: Iterable[Benchmark], *, first: int = 3
) -> None:
    """Render every http-json endpoint's ``body`` over the first items of each benchmark a
    monitor sends it, as a run would (the item's fields plus ``prompt``); raise ConfigError
    naming ``file:line: endpoints[i].body`` for a body that fails: a `templates` limit
    crossed, a missing field, or output that is not JSON.

    Prompts need no such check: `load_benchmark` renders every item's prompt already.
    """
    loaded = {b.name: b for b in benchmarks}
    problems: list[str] = []
    for i, ep in enumerate(settings.endpoints):
        if ep.body is None:
            continue
        try:
            template = Template(ep.body, ep.template_limits)
        except ValueError:
            continue  # parse errors were reported when the config was validated
        for mon in settings.monitors:
            bench = loaded.get(mon.benchmark)
            if ep.name not in mon.endpoints or bench is None:
                continue
            for item in bench.items[:first]:
                problem = _body_problem(template, item)
                if problem is not None:
                    where = settings.where(("endpoints", i, "body"))
                    problems.append(
                        f"{where}: item {item.key!r} of benchmark {bench.name!r}: {problem}"
                    )
                    break
    if problems:
        raise ConfigError(mask_secrets("\n".join(dict.fromkeys(problems)), settings.secrets))


def check_slice_floors(settings: Settings, benchmarks: Iterable[Benchmark]) -> None:
    """Raise ConfigError naming ``file:line: monitors[i].slice_floors`` for a floor on a
    slice its benchmark does not have: a mistyped value would otherwise guard nothing."""
    loaded = {b.name: b for b in benchmarks}
    problems: list[str] = []
    for i, mon in enumerate(settings.monitors):
        bench = loaded.get(mon.benchmark)
        if not mon.slice_floors or bench is None:
            continue
        labels = {f"{k}={v}" for item in bench.items for k, v in item.slices.items()}
        for label in mon.slice_floors:
            if label in labels:
                continue
            known = ", ".join(sorted(labels)[:10]) or "none: the benchmark has no `slices:`"
            where = settings.where(("monitors", i, "slice_floors"))
            problems.append(
                f"{where}: no item of benchmark {bench.name!r} is in slice {label!r} "
                f"(its slices: {known})"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _body_problem(template: Template, item: Item) -> str | None:
    context = dict(item.fields)
    if item.prompt is not None:  # as monitor/endpoints/http_json.py builds it
        context["prompt"] = item.prompt
    missing = template.missing_fields(context)
    if missing:
        return f"the body needs field(s) {', '.join(map(repr, missing))}"
    try:
        text = template.render(context)
    except ValueError as exc:
        return str(exc)
    try:
        json.loads(text)
    except ValueError as exc:
        return f"the body is not valid JSON ({exc})"
    return None
