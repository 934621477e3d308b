"""SQLModel table classes: the database schema of `monitor` (docs/architecture.md, "Data model").

Only `repository` and the Alembic migrations use these; every other module sees the
frozen domain types of `monitor.core.model`. The repository talks to the tables through
SQLAlchemy Core (`Table` objects, `TABLES`) rather than ORM instances, because the hot
paths are bulk inserts and narrow selects.

Conventions:

* Every datetime column is `UtcDateTime`: aware datetimes go in (naive ones are
  rejected), aware UTC datetimes come out, on SQLite too (which keeps no offset).
* Every float column is `FiniteFloat`: NaN and infinities are stored as NULL.
* Status-like columns hold the `.value` of the matching `StrEnum` as plain strings, so
  adding a member needs no migration.
* Constraint and index names follow `NAMING_CONVENTION`, so the schema is identical on
  SQLite and PostgreSQL and Alembic batch operations can address constraints by name.

This module deliberately does not use ``from __future__ import annotations``: SQLModel
reads the field annotations at class creation time.
"""

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Stored outputs are capped at this many UTF-8 bytes (see repository.OUTPUT_CAP_BYTES).
OUTPUT_CAP_BYTES = 64 * 1024


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC, returned aware in UTC on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002  # TypeDecorator signature
    ) -> datetime | None:
        """Reject naive datetimes and convert aware ones to UTC before storing them."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002  # TypeDecorator signature
    ) -> datetime | None:
        """Attach UTC to the naive values SQLite returns; convert PostgreSQL's to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class FiniteFloat(sa.types.TypeDecorator[float]):
    """A double-precision float that stores NaN and +/-inf as NULL."""

    impl = sa.Double()
    cache_ok = True

    def process_bind_param(
        self,
        value: float | None,
        dialect: Dialect,  # noqa: ARG002  # TypeDecorator signature
    ) -> float | None:
        """Map non-finite values to NULL."""
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None


# A 64-bit surrogate key on PostgreSQL; SQLite needs exactly INTEGER for a rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class StorageModel(
    SQLModel, registry=registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))
):
    """Base of every table: its own metadata, so nothing else shares SQLModel's global one."""


class BenchmarkVersionRow(StorageModel, table=True):
    """One content version of a benchmark; its items are stored once per version."""

    __tablename__ = "benchmark_version"
    __table_args__ = (
        sa.UniqueConstraint("name", "version"),
        sa.Index("ix_benchmark_version_name_frame", "name", "frame"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String)
    version: str = Field(sa_type=sa.String)
    item_count: int
    created_at: datetime = Field(sa_type=UtcDateTime)
    # versions of one name sharing a frame are compared item by item (migration 0007)
    frame: str | None = Field(default=None, sa_type=sa.String, nullable=True)
    template_digest: str | None = Field(default=None, sa_type=sa.String, nullable=True)


class ItemRow(StorageModel, table=True):
    """One item of one benchmark version: raw fields and reference answer."""

    __tablename__ = "item"
    __table_args__ = (sa.UniqueConstraint("benchmark_version_id", "item_key"),)

    id: int | None = Field(default=None, primary_key=True)
    benchmark_version_id: int = Field(foreign_key="benchmark_version.id", ondelete="CASCADE")
    item_key: str = Field(sa_type=sa.String)
    fields: dict[str, Any] = Field(sa_type=sa.JSON)
    reference: Any | None = Field(default=None, sa_type=sa.JSON, nullable=True)
    split: str | None = Field(default=None, sa_type=sa.String)
    digest: str | None = Field(default=None, sa_type=sa.String, nullable=True)  # fields+reference


class EndpointRow(StorageModel, table=True):
    """A configured endpoint by name, with the hash of its (secret-free) configuration."""

    __tablename__ = "endpoint"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String, unique=True)
    config_hash: str = Field(sa_type=sa.String)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class RunRow(StorageModel, table=True):
    """One run of a monitor's benchmark version against one endpoint.

    `judged` is the worst verdict saved for the run (see `repository.VERDICT_SEVERITY`),
    NULL until verdicts are saved; `status_reason` says why a run was aborted.
    """

    __tablename__ = "run"
    __table_args__ = (
        sa.Index(None, "monitor", "endpoint", "started_at"),
        sa.Index(None, "status"),
        # retention's cutoff and the newest runs of all monitors (migration 0004)
        sa.Index(None, "started_at", "id"),
        # Ids are never reused on SQLite either, so "id < before_run_id" means "earlier".
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    monitor: str = Field(sa_type=sa.String)
    benchmark: str = Field(sa_type=sa.String)
    benchmark_version: str = Field(sa_type=sa.String)
    endpoint: str = Field(sa_type=sa.String)
    trigger: str = Field(sa_type=sa.String)
    status: str = Field(sa_type=sa.String)
    status_reason: str | None = Field(default=None, sa_type=sa.String)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    n_items: int = 0
    n_errors: int = 0
    model_id: str | None = Field(default=None, sa_type=sa.String)
    judged: str | None = Field(default=None, sa_type=sa.String)
    # what the run measured (monitor/core/fingerprint.py) and what judging noticed
    fingerprint: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON, nullable=True)
    events: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON, nullable=True)
    # tokens summed over the answers (monitor/core/cost.py) and their cost; a null cost
    # is unknown, never 0
    token_answers: int | None = None
    prompt_tokens: int | None = Field(default=None, sa_type=sa.BigInteger)
    completion_tokens: int | None = Field(default=None, sa_type=sa.BigInteger)
    cached_tokens: int | None = Field(default=None, sa_type=sa.BigInteger)
    reasoning_tokens: int | None = Field(default=None, sa_type=sa.BigInteger)
    cost_dollars: float | None = Field(default=None, sa_type=FiniteFloat)
    cost_basis: str | None = Field(default=None, sa_type=sa.String)
    repeats: int | None = None  # samples per item; NULL (runs before migration 0008) is 1


class ItemResultRow(StorageModel, table=True):
    """One item of one run; (run_id, item_key) is unique so a retried write never duplicates."""

    __tablename__ = "item_result"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "item_key"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE")
    item_key: str = Field(sa_type=sa.String)
    output: str | None = Field(default=None, sa_type=sa.Text)
    scores: dict[str, float | None] = Field(sa_type=sa.JSON)
    latency_s: float | None = Field(default=None, sa_type=FiniteFloat)
    error_kind: str | None = Field(default=None, sa_type=sa.String)
    error_detail: str | None = Field(default=None, sa_type=sa.Text)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    attempts: int = 1
    # judge scorer -> {"reason", "votes"} or {"error"} (migration 0005)
    judgments: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON, nullable=True)
    # the samples of a repeated item (migration 0008)
    repeats: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON, nullable=True)


class RunScoreRow(StorageModel, table=True):
    """Run-level aggregate of one scorer with its confidence interval."""

    __tablename__ = "run_score"

    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", primary_key=True)
    scorer: str = Field(sa_type=sa.String, primary_key=True)
    value: float | None = Field(default=None, sa_type=FiniteFloat)
    ci_lower: float | None = Field(default=None, sa_type=FiniteFloat)
    ci_upper: float | None = Field(default=None, sa_type=FiniteFloat)
    n: int


class DriftResultRow(StorageModel, table=True):
    """One verdict of one run: the test, its numbers and the items that flipped."""

    __tablename__ = "drift_result"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    scorer: str = Field(sa_type=sa.String)
    test: str = Field(sa_type=sa.String)
    baseline: str = Field(sa_type=sa.String)
    statistic: float | None = Field(default=None, sa_type=FiniteFloat)
    p_value: float | None = Field(default=None, sa_type=FiniteFloat)
    p_adjusted: float | None = Field(default=None, sa_type=FiniteFloat)
    effect: float | None = Field(default=None, sa_type=FiniteFloat)
    effect_ci_lower: float | None = Field(default=None, sa_type=FiniteFloat)
    effect_ci_upper: float | None = Field(default=None, sa_type=FiniteFloat)
    baseline_score: float | None = Field(default=None, sa_type=FiniteFloat)
    # Verdict.detectable_effect: the smallest drop one run could flag (migration 0002)
    detectable_effect: float | None = Field(default=None, sa_type=FiniteFloat)
    decision: str = Field(sa_type=sa.String)
    pass_to_fail: list[str] = Field(sa_type=sa.JSON)
    fail_to_pass: list[str] = Field(sa_type=sa.JSON)
    detail: str = Field(default="", sa_type=sa.Text)


class BaselineRow(StorageModel, table=True):
    """One run of the pinned baseline set of a (monitor, endpoint)."""

    __tablename__ = "baseline"
    __table_args__ = (sa.UniqueConstraint("monitor", "endpoint", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    monitor: str = Field(sa_type=sa.String)
    endpoint: str = Field(sa_type=sa.String)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE")
    pinned_at: datetime = Field(sa_type=UtcDateTime)


class SequentialStateRow(StorageModel, table=True):
    """The running statistic of a sequential detector (e.g. a CUSUM sum)."""

    __tablename__ = "sequential_state"

    monitor: str = Field(sa_type=sa.String, primary_key=True)
    endpoint: str = Field(sa_type=sa.String, primary_key=True)
    scorer: str = Field(sa_type=sa.String, primary_key=True)
    benchmark_version: str = Field(sa_type=sa.String, primary_key=True)
    value: float | None = Field(default=None, sa_type=FiniteFloat)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class JudgeCheckRow(StorageModel, table=True):
    """One judge-drift sentinel check: a run's re-score of a judge scorer's calibration set
    (migration 0005). `sentinel` keys the history: judge identity and calibration content."""

    __tablename__ = "judge_check"
    __table_args__ = (sa.Index(None, "monitor", "endpoint", "scorer", "sentinel", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    monitor: str = Field(sa_type=sa.String)
    endpoint: str = Field(sa_type=sa.String)
    scorer: str = Field(sa_type=sa.String)
    sentinel: str = Field(sa_type=sa.String)
    created_at: datetime = Field(sa_type=UtcDateTime)
    scores: dict[str, float] = Field(sa_type=sa.JSON)
    n: int
    errors: int
    accuracy: float | None = Field(default=None, sa_type=FiniteFloat)
    kappa: float | None = Field(default=None, sa_type=FiniteFloat)
    p_value: float | None = Field(default=None, sa_type=FiniteFloat)
    moved: bool
    direction: str | None = Field(default=None, sa_type=sa.String)
    agreement: dict[str, Any] = Field(sa_type=sa.JSON)
    drift: dict[str, Any] = Field(sa_type=sa.JSON)


class RescoreRow(StorageModel, table=True):
    """A scorer applied to a run's stored outputs after the run (migration 0006): new
    score rows beside the run's own, which it never changes."""

    __tablename__ = "rescore"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", ondelete="CASCADE", index=True)
    scorer: str = Field(sa_type=sa.String)
    scorer_id: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    value: float | None = Field(default=None, sa_type=FiniteFloat)
    ci_lower: float | None = Field(default=None, sa_type=FiniteFloat)
    ci_upper: float | None = Field(default=None, sa_type=FiniteFloat)
    n: int
    errors: int
    skipped: int
    scores: dict[str, float] = Field(sa_type=sa.JSON)
    judgments: dict[str, Any] = Field(sa_type=sa.JSON)


class AlertRow(StorageModel, table=True):
    """The state of one built-in alert, deduplicated by its label fingerprint."""

    __tablename__ = "alert"

    fingerprint: str = Field(sa_type=sa.String, primary_key=True)
    labels: dict[str, str] = Field(sa_type=sa.JSON)
    annotations: dict[str, str] = Field(sa_type=sa.JSON)
    state: str = Field(sa_type=sa.String)
    since: datetime = Field(sa_type=UtcDateTime)
    last_notified: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


METADATA: sa.MetaData = StorageModel.metadata


def _table(model: type[StorageModel]) -> sa.Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLAlchemy's declarative scan
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


benchmark_version = _table(BenchmarkVersionRow)
item = _table(ItemRow)
endpoint = _table(EndpointRow)
run = _table(RunRow)
item_result = _table(ItemResultRow)
run_score = _table(RunScoreRow)
drift_result = _table(DriftResultRow)
baseline = _table(BaselineRow)
sequential_state = _table(SequentialStateRow)
alert = _table(AlertRow)
judge_check = _table(JudgeCheckRow)
rescore = _table(RescoreRow)
