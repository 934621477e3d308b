"""An index on `run.started_at` for retention and the newest runs of all monitors.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

`SqlStore.prune_item_results` selects the runs started before the retention cutoff, and
`SqlStore.list_runs` without a monitor lists the newest runs first (`GET /api/v1/runs`);
the (monitor, endpoint, started_at) index serves neither, so both scanned every run and
sorted them. (started_at, id) is the listing's whole order. The run table is small (one
row per run), so building the index takes milliseconds even under a year of history
(benchmarks/history.py); tests/storage/test_query_plans.py checks that it is used.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the index."""
    op.create_index("ix_run_started_at_id", "run", ["started_at", "id"])


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_run_started_at_id", table_name="run")
