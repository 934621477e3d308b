"""Re-scored stored outputs: `monitor rescore` and `POST /api/v1/rescores`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Adds the table `rescore`: one row per scorer applied to one run's stored outputs after
the run, with its summary and per-item scores (and a judge's reasons). The run's own
item results and scores are never changed by it (docs/judges.md, "Re-scoring").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the table."""
    op.create_table(
        "rescore",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scorer", sa.String(), nullable=False),
        sa.Column("scorer_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("ci_lower", sa.Double(), nullable=True),
        sa.Column("ci_upper", sa.Double(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("judgments", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name="fk_rescore_run_id_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rescore"),
    )
    op.create_index("ix_rescore_run_id", "rescore", ["run_id"])


def downgrade() -> None:
    """Drop the table again."""
    op.drop_index("ix_rescore_run_id", "rescore")
    op.drop_table("rescore")
