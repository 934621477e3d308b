"""The start-up path of the store: an up-to-date database is opened without Alembic.

`monitor run` must start in well under a second; importing Alembic (with Mako and
Pygments) alone costs ~0.1 s, so `open_store` only imports it when there is something
to migrate. These tests pin that behaviour and the `HEAD_REVISION` constant it relies on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from monitor.errors import StorageError
from monitor.storage import open_store
from monitor.storage.engine import create_engine
from monitor.storage.migrations import (
    HEAD_REVISION,
    alembic_config,
    current_revision,
    is_at_head,
    stored_revisions,
)

ROOT = Path(__file__).resolve().parents[2]

# Opens the store at argv[1] in a fresh interpreter and reports which heavy modules it
# imported along the way, as JSON.
OPEN_AND_REPORT = """
import json, sys
from monitor.storage import open_store
store = open_store(sys.argv[1])
store.ping()
store.close()
print(json.dumps({m: m in sys.modules for m in ("alembic", "mako", "pygments")}))
"""

# Imports what `monitor run` imports before it reaches the database.
IMPORT_RUN_PATH = """
import json, sys
import monitor.cli
from monitor.app import cli_service
heavy = ("alembic", "scipy", "jsonschema", "referencing", "numpy", "mako")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _run_python(code: str, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class TestHeadRevision:
    def test_constant_is_alembics_head(self) -> None:
        """HEAD_REVISION is the single head of versions/: update it with each new revision."""
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
        assert heads == [HEAD_REVISION]

    def test_stored_revisions(self, database_url: str) -> None:
        """None before the first migration, (HEAD_REVISION,) after it."""
        engine = create_engine(database_url)
        try:
            assert stored_revisions(engine) is None
            assert not is_at_head(engine)
            open_store(database_url).close()
            assert stored_revisions(engine) == (HEAD_REVISION,)
            assert is_at_head(engine)
            assert current_revision(engine) == HEAD_REVISION
        finally:
            engine.dispose()


class TestOpenWithoutAlembic:
    def test_up_to_date_database_does_not_import_alembic(self, database_url: str) -> None:
        """Opening a database already at head imports neither Alembic nor its templating."""
        open_store(database_url).close()
        imported = _run_python(OPEN_AND_REPORT, database_url)
        assert imported == {"alembic": False, "mako": False, "pygments": False}

    def test_fresh_database_is_created_without_alembic(self, database_url: str) -> None:
        """An empty database is created from the table metadata and stamped at head."""
        imported = _run_python(OPEN_AND_REPORT, database_url)
        assert imported == {"alembic": False, "mako": False, "pygments": False}
        engine = create_engine(database_url)
        try:
            assert is_at_head(engine)
            assert "run" in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()

    def test_database_to_migrate_imports_alembic(self, database_url: str) -> None:
        """The checks above are live: a database below head does import Alembic."""
        open_store(database_url).close()
        engine = create_engine(database_url)
        try:
            with engine.begin() as conn:
                command.downgrade(alembic_config(conn), "0003")
            imported = _run_python(OPEN_AND_REPORT, database_url)
            assert isinstance(imported, dict)
            assert imported["alembic"] is True
            assert is_at_head(engine)
        finally:
            engine.dispose()

    def test_older_database_is_upgraded(self, database_url: str) -> None:
        """A database below head (here: downgraded to base) is upgraded by open_store."""
        open_store(database_url).close()
        engine = create_engine(database_url)
        try:
            with engine.begin() as conn:
                command.downgrade(alembic_config(conn), "base")
            assert stored_revisions(engine) == ()
            open_store(database_url).close()
            assert is_at_head(engine)
            assert "run" in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()

    def test_unknown_revision_is_a_storage_error(self, database_url: str) -> None:
        """A revision this release does not know (a newer replica) fails as StorageError."""
        open_store(database_url).close()
        engine = create_engine(database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        finally:
            engine.dispose()
        with pytest.raises(StorageError, match=r"could not migrate .*9999"):
            open_store(database_url)


def test_run_path_imports_no_heavy_library() -> None:
    """`monitor run` imports scipy, jsonschema, numpy and Alembic only when it needs them.

    Together they cost ~0.5-1 s. When this fails, find the culprit with
    ``python -X importtime -c "import monitor.cli, monitor.app"`` and move the import into
    the function that needs it (`benchmarks/startup.py` measures the result).
    """
    imported = _run_python(IMPORT_RUN_PATH)
    assert imported == [], f"imported at start-up by `monitor run`: {imported}"
