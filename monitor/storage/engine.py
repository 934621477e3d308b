"""Engine creation for the two supported backends: SQLite (embedded) and PostgreSQL.

* SQLite: every new connection gets ``journal_mode=WAL`` (readers never block the
  writer), ``synchronous=NORMAL`` (durable at checkpoints, safe with WAL),
  ``foreign_keys=ON`` and ``busy_timeout=5000`` ms (the switch to WAL, which SQLite
  refuses at once to connections racing for a fresh file, is retried for as long);
  ``check_same_thread=False`` because
  the async runner calls the store from worker threads (the pool still hands one
  connection to one thread at a time). An in-memory database (``sqlite://``) uses a
  single shared connection, otherwise each connection would see its own empty
  database; it is meant for single-threaded tests, not for the daemon.
* PostgreSQL: always through psycopg 3 (``postgresql://`` and ``postgres://`` URLs are
  rewritten to ``postgresql+psycopg://``), with ``pool_pre_ping`` so a restarted server
  costs one reconnect rather than one failed run.

Both engines serialize JSON with non-finite floats turned into ``null`` (PostgreSQL
rejects ``NaN`` in JSON), and hide bound parameters from error messages (item outputs
are long and may be sensitive).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from monitor.errors import StorageError

# busy_timeout first, so the others already wait for locks; journal_mode has its own retry.
SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# How long a new connection keeps retrying the switch to WAL while another one holds the lock.
WAL_SWITCH_SECONDS = 5.0

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL, pinning PostgreSQL to psycopg 3; reject other backends."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError("invalid database URL (expected sqlite:/// or postgresql://)") from exc
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        return parsed
    raise StorageError(
        f"unsupported database backend {parsed.drivername!r}: use sqlite or postgresql"
    )


def mask_url(url: str | URL) -> str:
    """Render a URL with its password replaced by ``***`` (safe to log and print)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def _finite(value: Any) -> Any:
    """Copy a JSON-shaped value with NaN and infinities replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(inner) for inner in value]
    return value


def _json_default(value: Any) -> Any:
    """Convert numpy scalars and arrays (as found in dataset fields) to plain Python."""
    for method in ("tolist", "item"):  # numpy arrays / numpy scalars
        convert = getattr(value, method, None)
        if callable(convert):
            return _finite(convert())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_json(value: Any) -> str:
    """Serialize for a JSON column: compact, NaN/inf as null, numpy values as Python ones.

    Anything else that is not JSON raises TypeError (reported as a `StorageError`).
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError:
        # Only non-finite floats make json.dumps raise ValueError (TypeError otherwise).
        return json.dumps(
            _finite(value), separators=(",", ":"), allow_nan=False, default=_json_default
        )


def _execute_pragma(cursor: Any, pragma: str) -> None:
    """Run one PRAGMA; retry the switch to WAL while another connection holds the lock.

    Switching a fresh file to WAL takes an exclusive lock, and SQLite reports "database is
    locked" at once, without the busy handler, when connections opening the same new file
    race for it (3 replicas upgrading one fresh database: ~7 races in 100).
    """
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    delay = 0.005
    while True:
        try:
            cursor.execute(pragma)
        except sqlite3.OperationalError as exc:
            retry = "journal_mode" in pragma and "locked" in str(exc)
            if not retry or time.monotonic() + delay > deadline:
                raise
        else:
            return
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            _execute_pragma(cursor, pragma)
    finally:
        cursor.close()


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or bool(url.query.get("mode") == "memory")


def create_engine(url: str | URL) -> Engine:
    """Create the engine for `url` with the per-backend settings of this module."""
    parsed = normalize_url(url)
    common: dict[str, Any] = {"json_serializer": dump_json, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        sqlite_args: dict[str, Any] = {"check_same_thread": False}
        if _is_memory_sqlite(parsed):
            engine = sa.create_engine(
                parsed, connect_args=sqlite_args, poolclass=StaticPool, **common
            )
        else:
            engine = sa.create_engine(parsed, connect_args=sqlite_args, **common)
        sa.event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    pg_args: dict[str, Any] = {}
    if "application_name" not in parsed.query:
        pg_args["application_name"] = "monitor"
    if "connect_timeout" not in parsed.query:
        pg_args["connect_timeout"] = 10
    engine = sa.create_engine(parsed, connect_args=pg_args, pool_pre_ping=True, **common)
    sa.event.listen(engine, "handle_error", _read_only_is_a_disconnect)
    return engine


_READ_ONLY_SQL_TRANSACTION = "25006"


def _read_only_is_a_disconnect(context: ExceptionContext) -> None:
    """Drop a connection that a write found read-only (SQLSTATE 25006).

    A session takes `default_transaction_read_only` when it connects: during a failover to
    a replica, or while a disk-full database is set read-only, every pooled connection
    opened then stays read-only after the database is writable again, and each write of
    the run would keep failing. Treated as a disconnect, the connection is discarded and
    the store's retry gets a fresh session.
    """
    if getattr(context.original_exception, "sqlstate", None) == _READ_ONLY_SQL_TRANSACTION:
        context.is_disconnect = True
