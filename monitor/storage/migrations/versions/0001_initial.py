"""Initial schema (docs/architecture.md, "Data model").

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from `monitor.storage.tables`, so this
revision keeps meaning the same schema when the table classes change: `UtcDateTime` is
``DateTime(timezone=True)`` and `FiniteFloat` is ``Double`` in the database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table of the initial schema."""
    op.create_table(
        "benchmark_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_version")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_benchmark_version_name_version")),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark_version_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=True),
        sa.Column("split", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["benchmark_version_id"],
            ["benchmark_version.id"],
            name=op.f("fk_item_benchmark_version_id_benchmark_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item")),
        sa.UniqueConstraint(
            "benchmark_version_id", "item_key", name=op.f("uq_item_benchmark_version_id_item_key")
        ),
    )
    op.create_table(
        "endpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("config_hash", sa.String(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoint_name")),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("monitor", sa.String(), nullable=False),
        sa.Column("benchmark", sa.String(), nullable=False),
        sa.Column("benchmark_version", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_reason", sa.String(), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("n_errors", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=True),
        sa.Column("judged", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_run_monitor_endpoint_started_at"),
        "run",
        ["monitor", "endpoint", "started_at"],
        unique=False,
    )
    op.create_index(op.f("ix_run_status"), "run", ["status"], unique=False)
    op.create_table(
        "item_result",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("latency_s", sa.Double(), nullable=True),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_item_result_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_result")),
        sa.UniqueConstraint("run_id", "item_key", name=op.f("uq_item_result_run_id_item_key")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "run_score",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("ci_lower", sa.Double(), nullable=True),
        sa.Column("ci_upper", sa.Double(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_run_score_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "scorer", name=op.f("pk_run_score")),
    )
    op.create_table(
        "drift_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("test", sa.String(), nullable=False),
        sa.Column("baseline", sa.String(), nullable=False),
        sa.Column("statistic", sa.Double(), nullable=True),
        sa.Column("p_value", sa.Double(), nullable=True),
        sa.Column("p_adjusted", sa.Double(), nullable=True),
        sa.Column("effect", sa.Double(), nullable=True),
        sa.Column("effect_ci_lower", sa.Double(), nullable=True),
        sa.Column("effect_ci_upper", sa.Double(), nullable=True),
        sa.Column("baseline_score", sa.Double(), nullable=True),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("pass_to_fail", sa.JSON(), nullable=False),
        sa.Column("fail_to_pass", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_drift_result_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_result")),
    )
    op.create_index(op.f("ix_drift_result_run_id"), "drift_result", ["run_id"], unique=False)
    op.create_table(
        "baseline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("monitor", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("pinned_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_baseline_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline")),
        sa.UniqueConstraint(
            "monitor", "endpoint", "run_id", name=op.f("uq_baseline_monitor_endpoint_run_id")
        ),
    )
    op.create_table(
        "sequential_state",
        sa.Column("monitor", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("benchmark_version", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint(
            "monitor", "endpoint", "scorer", "benchmark_version", name=op.f("pk_sequential_state")
        ),
    )
    op.create_table(
        "alert",
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("since", _TS, nullable=False),
        sa.Column("last_notified", _TS, nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_alert")),
    )


def downgrade() -> None:
    """Drop every table of the initial schema."""
    op.drop_table("alert")
    op.drop_table("sequential_state")
    op.drop_table("baseline")
    op.drop_index(op.f("ix_drift_result_run_id"), table_name="drift_result")
    op.drop_table("drift_result")
    op.drop_table("run_score")
    op.drop_table("item_result")
    op.drop_index(op.f("ix_run_status"), table_name="run")
    op.drop_index(op.f("ix_run_monitor_endpoint_started_at"), table_name="run")
    op.drop_table("run")
    op.drop_table("endpoint")
    op.drop_table("item")
    op.drop_table("benchmark_version")
