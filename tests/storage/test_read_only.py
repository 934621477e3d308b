"""A database that was read-only for a while: the store recovers without help."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from monitor.core.model import ItemResult
from monitor.errors import StorageError
from monitor.storage import SqlStore, open_store
from tests.conftest import PG

pytestmark = pytest.mark.postgres


def set_read_only(url: str, on: bool) -> None:
    """Flip `default_transaction_read_only` for the database behind `url`."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(name), sql.SQL("on" if on else "off")
            )
        )


@pytest.fixture
def store(pg_database: str) -> Iterator[SqlStore]:
    s = open_store(pg_database)
    yield s
    s.close()


class TestReadOnly:
    def test_connections_opened_while_read_only_are_dropped_after(
        self, store: SqlStore, pg_database: str
    ) -> None:
        """Writes fail while read-only; once writable, the next attempt succeeds."""
        run = store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v",
            endpoint="e",
            trigger="manual",
            started_at=datetime.now(UTC),
        )
        store.close()  # the pool is empty: the next sessions open while read-only
        set_read_only(pg_database, True)
        try:
            with pytest.raises(StorageError):
                store.add_item_results(run.id, [ItemResult("k0", "x", {"s": 1.0}, 0.1)])
        finally:
            set_read_only(pg_database, False)
        # The failed session was read-only for life; it must not come back from the pool.
        store.add_item_results(run.id, [ItemResult("k1", "x", {"s": 1.0}, 0.1)])
        assert [r.item_key for r in store.item_results(run.id)] == ["k1"]
