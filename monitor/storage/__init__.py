"""Storage adapter: SQLModel tables, the `SqlStore` repository, Alembic migrations.

The only package that speaks SQL. It imports `monitor.core` and `monitor.errors`, never
another adapter. Supported backends: SQLite (embedded default) and PostgreSQL (psycopg 3).
"""

from monitor.storage.repository import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
