"""Alembic migrations, configured in code: there is no ``alembic.ini``.

`upgrade` brings a database to the newest revision and is idempotent, so the daemon
runs it at every start (`open_store(url, migrate=True)`) and ``monitor db upgrade``
runs it on demand. Concurrent upgrades are safe: on PostgreSQL the whole upgrade runs in
one transaction under an advisory lock (DDL is transactional there); on SQLite it runs in
one ``BEGIN IMMEDIATE`` transaction, so a failed upgrade leaves no half-created schema.

Writing a new revision (developers)::

    from alembic import command
    from monitor.storage.engine import create_engine
    from monitor.storage.migrations import alembic_config

    engine = create_engine("sqlite:///scratch.db")
    upgrade(engine)
    with engine.begin() as conn:
        command.revision(alembic_config(conn), "add foo", autogenerate=True, rev_id="0002")

then review the generated file in ``versions/`` (SQLite changes run in batch mode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from monitor.storage.tables import METADATA

SCRIPT_LOCATION = Path(__file__).resolve().parent

# Arbitrary constant key of the PostgreSQL advisory lock serializing upgrades.
MIGRATION_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Compare only this package's tables (the scheduler's job store shares the database)."""
    if type_ == "table":
        return name in METADATA.tables
    return True


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for the packaged scripts, optionally bound to `connection`."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of `engine` to `revision` (default: newest); a no-op when there."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite's legacy transaction handling would autocommit each DDL statement;
            # drive the transaction ourselves so the whole upgrade is atomic.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                command.upgrade(alembic_config(conn), revision)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        else:
            with conn.begin():
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                command.upgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database of `engine` is at, or None when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
