"""Repeats: a monitor's `repeats: n` samples each item n times.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Adds `run.repeats` (samples per item; NULL for older runs, which took one) and
`item_result.repeats` (each sample's scores, error, latency and a prefix of its answer).
Runs with another number of samples are another history (monitor/judge.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns."""
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("repeats", sa.Integer(), nullable=True))
    with op.batch_alter_table("item_result") as batch:
        batch.add_column(sa.Column("repeats", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("item_result") as batch:
        batch.drop_column("repeats")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("repeats")
