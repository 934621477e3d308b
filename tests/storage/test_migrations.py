"""Tests for monitor.storage.migrations: idempotent upgrade, schema == SQLModel metadata."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from monitor.storage import migrations
from monitor.storage.engine import create_engine
from monitor.storage.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    include_name,
    upgrade,
)
from monitor.storage.tables import METADATA


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh, never migrated database."""
    created = create_engine(database_url)
    try:
        yield created
    finally:
        created.dispose()


def schema_diff(engine: Engine) -> list[object]:
    """Alembic's differences between the live schema and the SQLModel metadata."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_name": include_name, "compare_type": True}
        )
        return list(compare_metadata(context, METADATA))


def table_names(engine: Engine) -> set[str]:
    """Names of the tables in the database of `engine`."""
    return set(sa.inspect(engine).get_table_names())


class TestUpgrade:
    def test_fresh_database_reaches_head(self, engine: Engine) -> None:
        """Upgrading an empty database creates every table and stamps the head revision."""
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0004"
        assert table_names(engine) == {*METADATA.tables, "alembic_version"}

    def test_upgrade_twice_is_a_no_op(self, engine: Engine) -> None:
        """A second upgrade changes neither the revision nor the schema nor the data."""
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO endpoint (name, config_hash, updated_at)"
                    " VALUES ('e', 'h', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(engine)
        assert current_revision(engine) == "0004"
        assert table_names(engine) == {*METADATA.tables, "alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM endpoint")).scalar_one() == 1

    def test_concurrent_upgrades(self, database_url: str) -> None:
        """Replicas upgrading the same fresh database at once all succeed, once."""
        engines = [create_engine(database_url) for _ in range(3)]
        errors: list[BaseException] = []

        def run(engine: Engine) -> None:
            try:
                upgrade(engine)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
            assert current_revision(engines[0]) == "0004"
            assert schema_diff(engines[0]) == []
        finally:
            for engine in engines:
                engine.dispose()

    def test_schema_matches_metadata(self, engine: Engine) -> None:
        """The migrated schema has no differences from the SQLModel table classes."""
        upgrade(engine)
        assert schema_diff(engine) == []

    def test_diff_detects_drift(self, engine: Engine) -> None:
        """The comparison is live: a dropped index shows up as a difference."""
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_run_status"))
        assert [d[0] for d in schema_diff(engine) if isinstance(d, tuple)] == ["add_index"]

    def test_foreign_tables_are_ignored(self, engine: Engine) -> None:
        """Tables of other components in the same database (the job store) are left alone."""
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)"))
        upgrade(engine)
        assert schema_diff(engine) == []
        assert "apscheduler_jobs" in table_names(engine)

    def test_downgrade_to_base_and_back(self, engine: Engine) -> None:
        """The initial revision downgrades cleanly and upgrades again."""
        upgrade(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert table_names(engine) == {"alembic_version"}
        upgrade(engine)
        assert schema_diff(engine) == []

    def test_failed_sqlite_upgrade_leaves_nothing(self, tmp_path: Path) -> None:
        """On SQLite a failing upgrade rolls back every table it created."""
        engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        try:
            with engine.begin() as conn:
                # A clashing object makes the last statements of revision 0001 fail.
                conn.execute(sa.text("CREATE TABLE alert (x INTEGER)"))
            with pytest.raises(sa.exc.OperationalError, match="already exists"):
                upgrade(engine)
            assert table_names(engine) == {"alert"}
            assert current_revision(engine) is None
        finally:
            engine.dispose()


class TestPackaging:
    def test_scripts_ship_inside_the_package(self) -> None:
        """env.py, the script template and the revisions live in the package directory."""
        root = Path(migrations.__file__).parent
        assert (root / "env.py").is_file()
        assert (root / "script.py.mako").is_file()
        assert (root / "versions" / "__init__.py").is_file()
        assert (root / "versions" / "0001_initial.py").is_file()
        assert not (root / "alembic.ini").exists()
