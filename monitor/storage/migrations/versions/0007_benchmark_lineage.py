"""Benchmarks that evolve: versions compared item by item.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Adds `benchmark_version.frame` (what the items are measured with: scorers, reference
field and, unless declared cosmetic, the prompt's wording) and `template_digest`, and
`item.digest` (a hash of the item's fields and reference). Runs of versions that share a
frame are compared on the items whose key and digest are unchanged (monitor/judge.py).
Rows stored before this revision keep NULL: their versions are compared only with
themselves, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns and the index the lineage lookup uses."""
    with op.batch_alter_table("benchmark_version") as batch:
        batch.add_column(sa.Column("frame", sa.String(), nullable=True))
        batch.add_column(sa.Column("template_digest", sa.String(), nullable=True))
    with op.batch_alter_table("item") as batch:
        batch.add_column(sa.Column("digest", sa.String(), nullable=True))
    op.create_index("ix_benchmark_version_name_frame", "benchmark_version", ["name", "frame"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_benchmark_version_name_frame", "benchmark_version")
    with op.batch_alter_table("item") as batch:
        batch.drop_column("digest")
    with op.batch_alter_table("benchmark_version") as batch:
        batch.drop_column("template_digest")
        batch.drop_column("frame")
