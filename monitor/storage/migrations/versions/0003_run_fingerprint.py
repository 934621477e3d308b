"""What each run measured, and what judging noticed (docs/statistics.md, "Served-model changes").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Adds `run.fingerprint` (monitor/core/fingerprint.py: endpoint type and host, configured
model and parameters, benchmark version, scorers, monitor's version, and the served
models and system fingerprints counted over the answers) and `run.events` (a list of
JSON objects, e.g. a served-model change against the baseline). Both nullable: runs
stored before this revision have neither.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the two nullable JSON columns (batch mode: SQLite may rebuild the table)."""
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("fingerprint", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("events", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the columns again."""
    with op.batch_alter_table("run") as batch:
        batch.drop_column("events")
        batch.drop_column("fingerprint")
