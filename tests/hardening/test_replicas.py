"""Three replicas on one PostgreSQL: only the leader runs jobs; SIGKILL it, another takes over."""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from tests.daemon.harness import Daemon, Simulator, free_port, write_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def leader_of(replicas: list[Daemon]) -> Daemon | None:
    for d in replicas:
        if d.proc.poll() is None:
            status, body = d.request("GET", "/readyz")
            if status == 200 and body.get("leader"):
                return d
    return None


class TestLeaderElection:
    def test_failover_without_duplicate_or_overlapping_runs(
        self,
        tmp_path: Path,
        pg_database: str,
        daemons: list[Daemon],
    ) -> None:
        """Only the leader runs jobs; after a SIGKILL another continues; runs never overlap."""
        sim = Simulator()
        try:
            replicas = []
            for i in range(3):
                folder = tmp_path / f"r{i}"
                folder.mkdir()
                port = free_port()
                config = write_config(folder, sim.url, port=port, every=1.0, items=20)
                config.write_text(
                    config.read_text().replace(f"sqlite:///{folder / 'monitor.db'}", pg_database)
                )
                d = Daemon(config, port)
                daemons.append(d)
                replicas.append(d)
            for d in replicas:
                d.wait_ready()
            first = replicas[0].wait_for(lambda: leader_of(replicas), what="a leader")
            assert sum(1 for d in replicas if d.request("GET", "/readyz")[1]["leader"]) == 1
            first.wait_for(lambda: len(first.runs()) >= 4, what="runs by the first leader")
            first.kill()
            killed_at = time.time()
            rest = [d for d in replicas if d is not first]
            second = rest[0].wait_for(lambda: leader_of(rest), what="a new leader")
            second.wait_for(
                lambda: any(
                    datetime.fromisoformat(r["started_at"]).timestamp() > killed_at + 0.5
                    and r["status"] == "succeeded"
                    for r in second.runs()
                ),
                what="runs by the new leader",
            )
            time.sleep(3)
            runs = sorted(second.runs(), key=lambda r: r["id"])
        finally:
            sim.stop()
        statuses = [r["status"] for r in runs]
        assert "running" not in statuses[:-1]
        finished = [r for r in runs if r["finished_at"]]
        for a, b in pairwise(finished):
            # one (monitor, endpoint): a run never starts before the previous one ended,
            # and two replicas never fire the same tick
            assert datetime.fromisoformat(b["started_at"]) >= datetime.fromisoformat(
                a["finished_at"]
            ), (a, b)
        aborted = [r for r in runs if r["status"] == "aborted"]
        assert len(aborted) <= 1, "at most the run the dead leader was executing"
