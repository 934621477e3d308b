"""The database away under a running daemon: the run waits and retries, or, when the
leader loses its lock, the daemon stays up and re-runs the scheduled run it lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from monitor.storage.leader import lock_key
from tests.conftest import PG, cluster
from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port, write_config
from tests.hardening.chaos import Cluster, Fault, Report, pg_answers, runs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ITEMS = 300


def cut_off_database(database: str) -> None:
    """This database alone refuses connections for 3 s and loses every session: what
    its clients see of a restart, without disturbing the other databases."""
    ident = sql.Identifier(database)
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        try:
            time.sleep(3.0)
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(ident))


class TestPostgresRestart:
    @pytest.mark.chaos
    def test_restart_during_run_loses_no_result(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """A follower's run waits out a restart (readyz 503) and completes with every item."""
        sim = Simulator(latency=0.03)
        # the test holds the leader lock: the daemon is a follower, whose manual run is
        # not cut by a lost leadership, so this is the store's retry path alone
        holder = psycopg.connect(pg_database.replace("+psycopg", ""), autocommit=True)
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("scheduler"),))
        try:
            port = free_port()
            config = write_config(
                tmp_path, sim.url, port=port, every=3600, items=ITEMS, concurrency=2
            )
            config.write_text(
                config.read_text().replace(f"sqlite:///{tmp_path / 'monitor.db'}", pg_database)
            )
            d = Daemon(config, port)
            daemons.append(d)
            d.wait_ready()
            assert d.request("POST", "/api/v1/monitors/fast/run", token=TOKEN)[0] == 202
            d.wait_for(lambda: [r for r in d.runs() if r["status"] == "running"], what="running")
            time.sleep(1.0)  # let some batches commit
            cluster("stop")
            try:
                d.wait_for(lambda: d.request("GET", "/readyz")[0] == 503, what="readyz 503")
                assert d.request("GET", "/healthz")[0] == 200
                time.sleep(3.0)
            finally:
                cluster("start")
            d.wait_for(lambda: d.request("GET", "/readyz")[0] == 200, timeout=60, what="ready")
            run = d.wait_for(
                lambda: [r for r in d.runs() if r["status"] != "running"],
                timeout=120,
                what="run finished",
            )[0]
            assert run["status"] == "succeeded", d.log_text()[-2000:]
            items = d.get(f"/api/v1/runs/{run['id']}/items?limit=1")
            assert items["total"] == ITEMS
            assert "storage_retry" in d.log_text()
            assert d.proc.poll() is None
        finally:
            holder.close()
            sim.stop()


class TestLeaderSurvives:
    # The database is cut off rather than the server restarted, so that this runs in the
    # main suite; the chaos suite (test_chaos.py) restarts the server under a leader of
    # 10 s ten times. This test failed on the code before #19: the daemon exited with 75.
    @pytest.mark.parametrize("outage", [pytest.param(cut_off_database, id="database-cut-off")])
    def test_leader_of_10_s_survives_and_reruns_its_run_once(
        self,
        outage: Callable[[str], None],
        tmp_path: Path,
        pg_database: str,
        daemons: list[Daemon],
    ) -> None:
        """A daemon that has led for 10 s stays up through the outage and re-runs once."""
        database = pg_database.rsplit("/", 1)[1]
        c = Cluster(tmp_path, pg_database, 1, daemons)
        (d,) = c.replicas
        try:
            wait_until(c.leader, 30, "leadership")
            led_since = time.time()
            wait_until(lambda: time.time() - led_since >= 10.0, 15, "10 s of leading")
            cut = c.wait_run(after=led_since)
            time.sleep(0.5)
            began = time.time()
            outage(database)
            wait_until(lambda: pg_answers(pg_database), 30, "the database")
            fault = Fault(began, time.time(), cut.id)
            wait_until(lambda: d.request("GET", "/readyz")[0] == 200, 30, "ready again")
            assert d.request("GET", "/healthz")[0] == 200
            c.back(fault)
            rerun = wait_until(
                lambda: next(
                    (
                        r
                        for r in runs(pg_database)
                        if r.trigger == "rerun" and r.status == "succeeded"
                    ),
                    None,
                ),
                30,
                "the re-run",
            )
            time.sleep(4.0)  # more leadership checks and fire times: no second re-run
            assert d.proc.poll() is None, d.log_text()[-3000:]
        finally:
            codes = c.stop()
        rows = {r.id: r for r in runs(pg_database)}
        why = (list(rows.values()), d.log_text()[-4000:])
        assert (rows[cut.id].status, rows[cut.id].reason) == ("aborted", "leadership_lost"), why
        assert rerun.id > cut.id, why
        assert [r.id for r in rows.values() if r.trigger == "rerun"] == [rerun.id], why
        assert [r for r in rows.values() if r.status == "running"] == [], why
        assert codes == [0], why
        report = Report(f"leader of 10 s, {outage.__name__}", 1)
        report.finish(pg_database, [fault], c.replicas)
        assert report.back_s[0] <= 10.0, (report, why)


class TestExitSetting:
    def test_exit_setting_leaves_with_code_75(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """With `server.on_leadership_lost: exit` a leader cut off exits 75, as it used to."""
        sim = Simulator()
        try:
            port = free_port()
            config = write_config(tmp_path, sim.url, port=port, every=3600)
            text = config.read_text().replace(f"sqlite:///{tmp_path / 'monitor.db'}", pg_database)
            config.write_text(
                text.replace("shutdown_grace:", "on_leadership_lost: exit, shutdown_grace:")
            )
            d = Daemon(config, port)
            daemons.append(d)
            d.wait_ready()
            d.wait_for(lambda: d.request("GET", "/readyz")[1].get("leader"), what="leadership")
            cut_off_database(pg_database.rsplit("/", 1)[1])
            assert d.wait_exit(30) == 75
            assert "exiting so no job runs twice" in d.log_text()
        finally:
            sim.stop()
