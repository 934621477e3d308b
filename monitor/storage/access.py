"""The plumbing every store class shares: transactions, error translation, upserts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError, StatementError

from monitor.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def describe_error(exc: BaseException, password: str | None) -> str:
    """A one-line description of a database error, with `password` masked."""
    # StatementError (and its subclass DBAPIError) wrap the driver's or a type's error.
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0] if lines else ''}"
    if password:
        text = text.replace(password, "***")
    return text[:300]


class EngineAccess:
    """Reads and writes on one engine; SQLAlchemy errors become `StorageError`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._password = engine.url.password
        self._dialect = engine.dialect.name

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn SQLAlchemy errors raised inside the block into `StorageError`."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StorageError(
                f"could not {action}: {describe_error(exc, self._password)}"
            ) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        """One write transaction, committed at the end of the block."""
        with self._translate(action), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        """One connection for reading."""
        with self._translate(action), self._engine.connect() as conn:
            yield conn

    def _insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """A dialect-specific INSERT that supports ON CONFLICT on both backends."""
        # The engine has already imported its own dialect: these imports are lookups.
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert(table)
