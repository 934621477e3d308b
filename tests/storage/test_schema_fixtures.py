"""Every released schema version upgrades to head with its data intact (fixtures per revision)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from monitor.core.model import RunStatus
from monitor.storage import open_store
from monitor.storage.engine import create_engine
from monitor.storage.migrations import current_revision, head_revision

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "schemas"
REVISIONS = sorted(p.name.removesuffix(".sqlite") for p in FIXTURES.glob("*.sqlite"))
ADMIN = "host=127.0.0.1 user=postgres dbname=test"


def check_data(url: str) -> None:
    """The fixture's runs, items, scores, verdicts and pin are all readable after upgrade."""
    store = open_store(url)
    try:
        runs = store.list_runs(monitor="m")
        assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 3
        assert runs[0].started_at.tzinfo is not None
        assert len(store.item_results(runs[0].id)) == 5
        assert store.run_scores([runs[0].id])[runs[0].id][0].value == 1.0
        (verdict,) = store.run_verdicts([runs[0].id])[runs[0].id]
        assert verdict.changed.pass_to_fail == ("q1",)
        assert store.pinned_run_ids(monitor="m", endpoint="chat") == [1]
        run = store.start_run(
            monitor="m",
            benchmark="intents",
            benchmark_version="v1",
            endpoint="chat",
            trigger="manual",
            started_at=runs[0].started_at,
        )
        assert run.id == 4  # ids continue after the old data
    finally:
        store.close()
    engine = create_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    name = f"monitor_fixture_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class TestReleasedSchemas:
    def test_there_is_a_fixture_for_the_head_revision(self) -> None:
        """A new migration must come with fixtures of the schema it leaves behind."""
        assert head_revision() in REVISIONS

    @pytest.mark.parametrize("revision", REVISIONS)
    def test_sqlite_fixture_upgrades_with_data(self, revision: str, tmp_path: Path) -> None:
        """An SQLite database of an old revision opens, migrates and keeps its data."""
        db = tmp_path / "old.db"
        shutil.copy(FIXTURES / f"{revision}.sqlite", db)
        check_data(f"sqlite:///{db}")

    @pytest.mark.postgres
    @pytest.mark.parametrize("revision", REVISIONS)
    def test_postgres_fixture_upgrades_with_data(self, revision: str, fresh_pg: str) -> None:
        """A PostgreSQL dump of an old revision restores, migrates and keeps its data."""
        subprocess.run(
            [
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                fresh_pg,
                "-f",
                str(FIXTURES / f"{revision}.pg.sql"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        check_data(f"postgresql+psycopg://postgres@127.0.0.1:5432/{fresh_pg}")
