"""Write the fixture databases of the CURRENT schema revision (run once per new revision).

    python tests/data/schemas/make_fixture.py

Creates `<rev>.sqlite` and `<rev>.pg.sql` (pg_dump --inserts of PostgreSQL on 127.0.0.1)
holding a few runs, item results, scores, verdicts, a pinned baseline and an alert, so
later migrations are tested against real data of every released schema version. Never
regenerate an existing revision's files: they stand for databases users already have.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from monitor.core.model import (
    Benchmark,
    ChangedItems,
    ErrorKind,
    Item,
    ItemResult,
    RunStatus,
    ScorerSpec,
    ScoreSummary,
    Verdict,
    VerdictKind,
)
from monitor.storage import open_store
from monitor.storage.migrations import head_revision

HERE = Path(__file__).resolve().parent
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def fill(url: str) -> None:
    store = open_store(url)
    bench = Benchmark(
        "intents",
        "v1",
        tuple(Item(f"q{i}", {"text": f"request {i}"}, f"p{i}", "refund") for i in range(5)),
        (ScorerSpec("exact_match", "exact_match"),),
    )
    store.save_benchmark(bench, T0)
    store.save_endpoint("chat", "abc123", T0)
    for k in range(3):
        started = T0 + timedelta(hours=k)
        run = store.start_run(
            monitor="m",
            benchmark="intents",
            benchmark_version="v1",
            endpoint="chat",
            trigger="schedule",
            started_at=started,
        )
        store.add_item_results(
            run.id,
            [ItemResult(f"q{i}", "refund", {"exact_match": 1.0}, 0.1) for i in range(4)]
            + [ItemResult("q4", None, {}, 0.2, error=ErrorKind.TIMEOUT, error_detail="30s")],
        )
        store.finish_run(
            run.id,
            status=RunStatus.SUCCEEDED,
            finished_at=started + timedelta(seconds=5),
            n_items=5,
            n_errors=1,
            model_id="model-1",
            scores=[ScoreSummary("exact_match", 1.0, 0.51, 1.0, 4)],
        )
        store.save_verdicts(
            run.id,
            [
                Verdict(
                    "exact_match",
                    VerdictKind.OK,
                    "mcnemar_exact",
                    "rolling:1",
                    p_value=0.5,
                    p_adjusted=1.0,
                    effect=0.0,
                    effect_ci=(-0.2, 0.2),
                    changed=ChangedItems(("q1",), ()),
                )
            ],
        )
    store.pin_baseline(monitor="m", endpoint="chat", run_ids=[1], now=T0)
    store.close()


def main() -> None:
    rev = head_revision()
    lite = HERE / f"{rev}.sqlite"
    pg = HERE / f"{rev}.pg.sql"
    if lite.exists() or pg.exists():
        sys.exit(f"fixtures for revision {rev} exist already; never regenerate them")
    fill(f"sqlite:///{lite}")
    name = f"fixture_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        fill(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "--inserts",
                "--no-owner",
                "--no-privileges",
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        pg.write_text(dump)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    print(f"wrote {lite.name} and {pg.name}")


if __name__ == "__main__":
    main()
