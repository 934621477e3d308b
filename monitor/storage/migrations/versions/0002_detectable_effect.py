"""The minimum detectable effect of each verdict (docs/statistics.md, "Honest verdicts").

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Adds `drift_result.detectable_effect`: the smallest drop of the score that the run's
test could flag with the configured power at its baseline's run-to-run noise
(`Verdict.detectable_effect`). Nullable: verdicts stored before this revision, drift
checks and untested runs have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table("drift_result") as batch:
        batch.add_column(sa.Column("detectable_effect", sa.Double(), nullable=True))


def downgrade() -> None:
    """Drop the column again."""
    with op.batch_alter_table("drift_result") as batch:
        batch.drop_column("detectable_effect")
