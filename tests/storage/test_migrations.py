"""Tests for monitor.storage.migrations: idempotent upgrade, schema == SQLModel metadata."""

from __future__ import annotations

import subprocess
import sys
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


def schema_of(engine: Engine) -> dict[str, object]:
    """Every table of this package as the database describes it: columns with types,
    nullability and defaults, primary key, indexes, unique constraints, foreign keys.

    Columns are compared as a set: later revisions append theirs at the end of a table,
    the metadata declares them in place, and nothing here reads columns by position."""
    inspector = sa.inspect(engine)
    described: dict[str, object] = {}
    for table in sorted(METADATA.tables):
        described[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return described


def drop_everything(engine: Engine) -> None:
    with engine.begin() as conn:
        METADATA.drop_all(conn)
        conn.execute(sa.text("DROP TABLE alembic_version"))


WAYS = pytest.mark.parametrize("from_metadata", [True, False], ids=["metadata", "revisions"])


class TestUpgrade:
    @WAYS
    def test_fresh_database_reaches_head(self, engine: Engine, from_metadata: bool) -> None:
        """Upgrading an empty database creates every table and stamps the head revision."""
        assert current_revision(engine) is None
        upgrade(engine, from_metadata=from_metadata)
        assert current_revision(engine) == head_revision() == "0008"
        assert table_names(engine) == {*METADATA.tables, "alembic_version"}

    def test_metadata_and_revisions_give_the_same_schema(self, engine: Engine) -> None:
        """An empty database created from the metadata is the one the revisions build."""
        upgrade(engine, from_metadata=False)
        by_revisions = schema_of(engine)
        drop_everything(engine)
        upgrade(engine)
        assert schema_of(engine) == by_revisions
        assert by_revisions["run"]  # the description is not empty

    def test_a_new_database_is_created_without_alembic(self, tmp_path: Path) -> None:
        """`open_store` on a new SQLite file imports no Alembic (its ~0.4 s start-up)."""
        script = (
            "import sys\n"
            "from monitor.storage import open_store\n"
            f"open_store('sqlite:///{tmp_path / 'new.db'}').close()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]", done.stderr
        engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
        try:
            assert current_revision(engine) == "0008"
            assert schema_diff(engine) == []
        finally:
            engine.dispose()

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
        assert current_revision(engine) == "0008"
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
            assert current_revision(engines[0]) == "0008"
            assert schema_diff(engines[0]) == []
        finally:
            for engine in engines:
                engine.dispose()

    @WAYS
    def test_schema_matches_metadata(self, engine: Engine, from_metadata: bool) -> None:
        """The migrated schema has no differences from the SQLModel table classes."""
        upgrade(engine, from_metadata=from_metadata)
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

    @WAYS
    def test_downgrade_to_base_and_back(self, engine: Engine, from_metadata: bool) -> None:
        """The initial revision downgrades cleanly and upgrades again."""
        upgrade(engine, from_metadata=from_metadata)
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
