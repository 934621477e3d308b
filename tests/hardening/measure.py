"""Run a command and measure its own CPU time and peak RSS.

A child forked straight from pytest reports pytest's resident set as its peak (the fork
shares pytest's pages until exec, and Linux keeps that high-water mark), so the command is
started by a small Python process instead, with ``posix_spawn``; that process reports the
command's ``wait4`` usage as a last line on stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_SPAWNER = """\
import json, os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(json.dumps([code, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024]), file=sys.stderr)
"""


@dataclass(frozen=True)
class Measured:
    """What a measured command did."""

    code: int
    stderr: str
    wall_s: float
    cpu_s: float
    rss_bytes: int


def run_measured(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 60.0
) -> Measured:
    """Run ``args`` (the first an absolute path) and measure its CPU seconds and peak RSS."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _SPAWNER, *args],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=True,
    )
    wall = time.monotonic() - start
    stderr, _, last = proc.stderr.rstrip("\n").rpartition("\n")
    code, cpu, rss = json.loads(last)
    return Measured(int(code), stderr + "\n" if stderr else "", wall, float(cpu), int(rss))
