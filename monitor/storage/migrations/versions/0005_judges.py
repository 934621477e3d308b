"""LLM-judge scorers: the judges' reasons per item and the judge-drift sentinel's checks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Adds `item_result.judgments` (judge scorer -> its reason and votes, or its error; null
for items without a judge scorer) and the table `judge_check`: one row per re-score of
a judge scorer's calibration set, with its agreement with the human labels and its test
against the judge's earlier re-scores (docs/judges.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column and the table."""
    with op.batch_alter_table("item_result") as batch:
        batch.add_column(sa.Column("judgments", sa.JSON(), nullable=True))
    op.create_table(
        "judge_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("monitor", sa.String(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("sentinel", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Double(), nullable=True),
        sa.Column("kappa", sa.Double(), nullable=True),
        sa.Column("p_value", sa.Double(), nullable=True),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("direction", sa.String(), nullable=True),
        sa.Column("agreement", sa.JSON(), nullable=False),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name="fk_judge_check_run_id_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_judge_check"),
    )
    op.create_index("ix_judge_check_run_id", "judge_check", ["run_id"])
    op.create_index(
        "ix_judge_check_monitor_endpoint_scorer_sentinel_run_id",
        "judge_check",
        ["monitor", "endpoint", "scorer", "sentinel", "run_id"],
    )


def downgrade() -> None:
    """Drop the table and the column again."""
    op.drop_index("ix_judge_check_monitor_endpoint_scorer_sentinel_run_id", "judge_check")
    op.drop_index("ix_judge_check_run_id", "judge_check")
    op.drop_table("judge_check")
    with op.batch_alter_table("item_result") as batch:
        batch.drop_column("judgments")
