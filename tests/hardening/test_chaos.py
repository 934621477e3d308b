"""The chaos suite: real PostgreSQL, real `monitor serve` replicas, faults mid-run.

Each scenario reports, from the database: process exits, runs left `running`,
duplicated item results, runs that overlapped (two leaders at once), lost data points
(scheduled runs cut short and never re-run) and the time until the schedule is back
(docs/operations.md, "Chaos suite", holds the figures of a run of this file).

These tests restart the shared PostgreSQL server, so they are marked `chaos` and
scripts/test.sh runs them serially in their own pytest invocation after everything else.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from psycopg import sql

from tests.conftest import cluster
from tests.daemon.harness import Daemon
from tests.hardening.chaos import (
    AnswerWatch,
    Cluster,
    Fault,
    Report,
    admin,
    random_pause,
    runs,
    start_server,
    terminate_sessions,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.chaos]

RESTARTS = 10
DOWN_S = 2.0  # between `stop -m fast` and `start`
BACK_WITHIN_S = 10.0  # the goal: schedule back within 10 s of the database answering
LEASE_S = 5.0  # the leader lock's lease (monitor/storage/leader.py)


def check(report: Report, *, exits: int = 0, within: float = BACK_WITHIN_S) -> None:
    assert report.process_exits == exits, report
    assert report.left_running == 0, report
    assert report.duplicated_items == 0, report
    assert report.overlapping_runs == 0, report
    assert report.lost == 0, report
    assert report.reruns == report.cut_short, report  # each cut-short run re-run once
    assert report.back_s, report
    assert max(report.back_s) <= within, report


class TestPostgresRestarts:
    @pytest.mark.parametrize("replicas", [1, 3])
    def test_ten_restarts_at_random_points_of_runs(
        self, replicas: int, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """Ten restarts mid-run: every replica stays up and every cut run is re-run."""
        rng = random.Random(1900 + replicas)
        c = Cluster(tmp_path, pg_database, replicas, daemons)
        report = Report("PostgreSQL restart (stop -m fast, 2 s, start)", replicas)
        faults: list[Fault] = []
        try:
            wait_until(c.leader, 30, "a leader")
            after = time.time()
            if replicas == 1:  # the realistic case: a leader that has led for a while
                wait_until(lambda: time.time() - after >= 10.0, 15, "10 s of leading")
            for _ in range(RESTARTS):
                cut = c.wait_run(after)
                random_pause(rng)
                began = time.time()
                cluster("stop")
                time.sleep(DOWN_S)
                watch = AnswerWatch(pg_database)
                start_server()
                fault = Fault(began, watch.wait(), cut.id)
                c.back(fault)
                faults.append(fault)
                c.settled(cut)
                after = time.time()
                if c.exits() == 0:
                    report.survived += 1
            time.sleep(3 * 2.0)  # the last re-run finishes
            report.process_exits = c.exits()
        finally:
            codes = c.stop()
        report.finish(pg_database, faults, c.replicas)
        assert codes == [0] * replicas, list(c.logs())
        assert report.survived == RESTARTS
        check(report)


class TestPausedLeader:
    def test_sigstop_past_the_lease_then_sigcont_cannot_finish_its_run(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """A leader paused past its lease loses the lock; resumed, it cannot succeed its run."""
        c = Cluster(tmp_path, pg_database, 2, daemons)
        report = Report("SIGSTOP of the leader past the lease (5 s), then SIGCONT", 2)
        try:
            old = wait_until(c.leader, 30, "a leader")
            cut = c.wait_run()
            time.sleep(0.5)
            began = time.time()
            old.signal(signal.SIGSTOP)
            try:
                rest = [d for d in c.replicas if d is not old]
                wait_until(
                    lambda: next(
                        (d for d in rest if d.request("GET", "/readyz")[1].get("leader")), None
                    ),
                    30,
                    "a new leader",
                )
                fault = Fault(began, began, cut.id)
                # from the pause: the new leader's first run (the re-run of the cut one)
                c.back(fault)
            finally:
                old.signal(signal.SIGCONT)
            time.sleep(4.0)  # the old leader runs on: its workers, its lock check
            rows = {r.id: r for r in runs(pg_database)}
            assert rows[cut.id].status == "aborted", rows[cut.id]
            assert rows[cut.id].reason == "leadership_lost"
            status, body = old.request("GET", "/readyz")
            assert body["leader"] is False, (status, body)
            report.process_exits = c.exits()
        finally:
            codes = c.stop()
        report.finish(pg_database, [fault], c.replicas)
        assert codes == [0, 0], list(c.logs())
        assert "leadership_lost" in old.log_text()
        # measured from the pause: the lease (5 s) runs out before anyone may lead
        check(report, within=LEASE_S + BACK_WITHIN_S)


class TestReadOnlyDatabase:
    def test_read_only_mid_run(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """The database turned read-only mid-run: the run is aborted, then re-run."""
        database = pg_database.rsplit("/", 1)[1]
        c = Cluster(tmp_path, pg_database, 1, daemons)
        report = Report("database read-only for 4 s (default_transaction_read_only)", 1)
        ident = sql.Identifier(database)
        read_only = sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
        writable = sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only")
        try:
            wait_until(c.leader, 30, "a leader")
            cut = c.wait_run()
            random_pause(random.Random(19))
            began = time.time()
            admin(read_only.format(ident))
            terminate_sessions(database)  # sessions read the setting when they start
            try:
                time.sleep(4.0)
            finally:
                admin(writable.format(ident))
                # sessions opened meanwhile keep read-only (docs/operations.md)
                terminate_sessions(database)
            fault = Fault(began, time.time(), cut.id)
            c.back(fault)
            time.sleep(3.0)
            report.process_exits = c.exits()
        finally:
            codes = c.stop()
        report.finish(pg_database, [fault], c.replicas)
        assert codes == [0], list(c.logs())
        check(report)


class TestKilledLeader:
    def test_sigkill_of_the_leader_mid_run(
        self, tmp_path: Path, pg_database: str, daemons: list[Daemon]
    ) -> None:
        """A SIGKILLed leader's run is aborted and re-run by the next leader."""
        c = Cluster(tmp_path, pg_database, 2, daemons)
        report = Report("SIGKILL of the leader mid-run", 2)
        try:
            old = wait_until(c.leader, 30, "a leader")
            cut = c.wait_run()
            random_pause(random.Random(7))
            began = time.time()
            old.kill()
            fault = Fault(began, began, cut.id)
            c.back(fault)
            time.sleep(3.0)
            report.process_exits = c.exits(except_=old)
        finally:
            codes = c.stop()
        report.finish(pg_database, [fault], c.replicas)
        assert codes.count(0) == 1, list(c.logs())
        check(report)
