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

then review the generated file in ``versions/`` (SQLite changes run in batch mode), and
set `HEAD_REVISION` below to its revision id (a test compares it with Alembic's head).

Start-up cost: importing Alembic (with Mako and Pygments) takes ~0.1 s, more than the
rest of the storage package. `upgrade` therefore first reads ``alembic_version`` with
one plain SQLAlchemy query and returns at once when it holds exactly `HEAD_REVISION`;
Alembic is imported only when there is something to migrate (or to inspect). A database
without any of the tables is created from the metadata and stamped, with no Alembic either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from monitor.storage.tables import METADATA

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent

# The id of the newest revision in versions/: update it with every new revision.
HEAD_REVISION = "0008"

# Alembic's default version table (env.py does not rename it).
VERSION_TABLE = "alembic_version"

# Arbitrary constant key of the PostgreSQL advisory lock serializing upgrades.
MIGRATION_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Compare only this package's tables (the scheduler's job store shares the database)."""
    if type_ == "table":
        return name in METADATA.tables
    return True


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for the packaged scripts, optionally bound to `connection`."""
    from alembic.config import Config  # noqa: PLC0415 - lazy: see the module docstring

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def stored_revisions(engine: Engine) -> tuple[str, ...] | None:
    """The rows of ``alembic_version``, sorted; None when the table cannot be read.

    One plain query, no Alembic. Failing to connect raises as usual; a failing SELECT on
    an open connection (the table does not exist yet) gives None.
    """
    query = sa.select(sa.column("version_num", sa.String)).select_from(sa.table(VERSION_TABLE))
    with engine.connect() as conn:
        try:
            rows = conn.execute(query).scalars().all()
        except DBAPIError:
            return None
    return tuple(sorted(rows))


def is_at_head(engine: Engine) -> bool:
    """Whether the database of `engine` is exactly at `HEAD_REVISION` (without Alembic)."""
    return stored_revisions(engine) == (HEAD_REVISION,)


def upgrade(engine: Engine, revision: str = "head", *, from_metadata: bool = True) -> None:
    """Migrate the database of `engine` to `revision` (default: newest); a no-op when there.

    When the database is already at `HEAD_REVISION` and that is the target, this costs one
    query and does not import Alembic. A database that holds none of this package's tables
    (a new SQLite file, an empty PostgreSQL database) is created from the table metadata
    and stamped with `HEAD_REVISION`, also without Alembic: ~0.03 s instead of ~0.4 s, which
    a CI job on a fresh database pays on every `monitor run`. tests/storage/test_migrations.py
    checks that both ways give the same schema; `from_metadata=False` forces the revisions.
    """
    if revision in {"head", HEAD_REVISION}:
        stored = stored_revisions(engine)
        if stored == (HEAD_REVISION,):
            return
        if stored is None and from_metadata and _create_from_metadata(engine):
            return
    from alembic import command  # noqa: PLC0415 - lazy: see the module docstring

    with engine.connect() as conn, _exclusive(conn):
        command.upgrade(alembic_config(conn), revision)


@contextlib.contextmanager
def _exclusive(conn: Connection) -> Iterator[None]:
    """One transaction that no other upgrade runs beside, committed only if the block ends.

    On SQLite pysqlite's legacy transaction handling would autocommit each DDL statement,
    so the transaction is driven by hand (``BEGIN IMMEDIATE`` also takes the write lock at
    once). On PostgreSQL DDL is transactional, and an advisory lock serializes replicas.
    """
    if conn.dialect.name == "sqlite":
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
    else:
        with conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            yield


def _create_from_metadata(engine: Engine) -> bool:
    """Create the newest schema in a database without any of its tables; False if not empty.

    Emptiness is checked inside the exclusive transaction, so of replicas racing on a new
    database one creates it and the others find it at head.
    """
    with engine.connect() as conn, _exclusive(conn):
        present = set(sa.inspect(conn).get_table_names())
        if VERSION_TABLE in present or present & set(METADATA.tables):
            return False
        METADATA.create_all(conn)
        # the version table as Alembic itself creates it, holding the head revision
        version = sa.Table(
            VERSION_TABLE,
            sa.MetaData(),
            sa.Column("version_num", sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
        )
        version.create(conn)
        conn.execute(version.insert().values(version_num=HEAD_REVISION))
    return True


def current_revision(engine: Engine) -> str | None:
    """The revision the database of `engine` is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - lazy

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package, as Alembic finds it in versions/."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - lazy

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
