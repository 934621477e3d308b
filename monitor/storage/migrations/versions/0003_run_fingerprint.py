"""What each run measured and cost, and what judging noticed (docs/statistics.md, §11).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Adds `run.fingerprint` (monitor/core/fingerprint.py: endpoint type and host, configured
model and parameters, benchmark version, scorers, monitor's version, and the served
models and system fingerprints counted over the answers) and `run.events` (a list of
JSON objects, e.g. a served-model change against the baseline), the run's token totals
and cost (`cost_dollars` null: unknown), and each item result's cached and reasoning
tokens. All nullable: rows stored before this revision have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_RUN_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


def upgrade() -> None:
    """Add the nullable columns (batch mode: SQLite may rebuild the tables)."""
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("fingerprint", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("events", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("token_answers", sa.Integer(), nullable=True))
        for name in _RUN_TOKENS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("cost_dollars", sa.Double(), nullable=True))
        batch.add_column(sa.Column("cost_basis", sa.String(), nullable=True))
    with op.batch_alter_table("item_result") as batch:
        batch.add_column(sa.Column("cached_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reasoning_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop the columns again."""
    with op.batch_alter_table("item_result") as batch:
        batch.drop_column("reasoning_tokens")
        batch.drop_column("cached_tokens")
    with op.batch_alter_table("run") as batch:
        for name in ("cost_basis", "cost_dollars", *reversed(_RUN_TOKENS), "token_answers"):
            batch.drop_column(name)
        batch.drop_column("events")
        batch.drop_column("fingerprint")
