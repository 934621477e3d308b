"""Alembic environment of `monitor`: run by `alembic.command`, never imported directly.

`monitor.storage.migrations.upgrade` hands over an open connection through
``config.attributes["connection"]``; without one (for example a developer running the
``alembic`` command with ``-x url=...`` or ``sqlalchemy.url``), an engine is created here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from monitor.storage.engine import create_engine
from monitor.storage.migrations import include_name
from monitor.storage.tables import METADATA

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no connection given: pass -x url=... or set sqlalchemy.url")
    return url


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=METADATA,
        include_name=include_name,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
