"""A running daemon with history, serving the API and /ui/ on 127.0.0.1, and headless Chromium.

The daemon is the real one (`monitor.app.build_daemon`) with a manual clock and scripted
endpoints at its edge, as in tests/daemon/test_inprocess.py; its history comes from real
runs judged by the real judge. It runs in a thread with its own event loop, because
Selenium's calls block. Chromium is Debian's `chromium` driven through `chromium-driver`
(scripts/test.sh installs both); the tests skip when they are missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from monitor.api import create_api, serve_api
from monitor.app import build_daemon
from monitor.config import EndpointSettings, ServerSettings, load_settings
from monitor.daemon import Daemon
from monitor.notify import Notifier
from monitor.ports import EndpointClient
from monitor.scheduling import RunSpec
from tests.daemon.harness import free_port
from tests.fakes import ManualClock, RecordingSleep, ScriptedEndpoint

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
N = 200
RUNS = 5  # runs of ep-a before the one that regresses
XSS = {
    "i3": "<script>window.__xss = 1; alert(1)</script>",
    "i13": '"><img src=x onerror="window.__xss = 2; alert(2)">',
    "i23": '<a href="javascript:window.__xss = 3; alert(3)">click me</a>',
}
# a 90% model: wrong on every 10th item, so scores vary; the break adds 17 wrong answers
WRONG = {f"i{k}": "no" for k in range(0, N, 10)}
BROKEN = WRONG | XSS | {f"i{k}": "no" for k in range(5, 150, 10)}

CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}", api_token: "t0ken", ui_auth: {ui_auth}}}
endpoints:
  - {{name: ep-a, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}
  - {{name: ep-b, type: openai-chat, url: "http://127.0.0.1:1/v1", model: m}}
benchmarks:
  - {{name: qa, data: items.jsonl, prompt: "{{{{ text }}}}", reference: label, split: level,
      scorers: [exact_match]}}
monitors:
  - name: qa
    benchmark: qa
    endpoints: [ep-a, ep-b]
    drift: {{baseline: "rolling:3", alpha: 0.01, min_effect: 0.01}}
  - {{name: idle, benchmark: qa, endpoints: [ep-b]}}
"""


class LiveDaemon:
    """The daemon in a thread: built, given history, serving HTTP until `stop`."""

    def __init__(self, folder: Path, *, ui_auth: bool = False, history: bool = True) -> None:
        self.folder, self.history = folder, history
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rows = [
            {
                "id": f"i{k}",
                "text": f"question {k}",
                "label": "yes",
                "level": ("easy", "hard")[k % 2],
            }
            for k in range(N)
        ]
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.config = folder / "monitor.yaml"
        self.config.write_text(
            CONFIG.format(db=folder / "monitor.db", port=self.port, ui_auth=str(ui_auth).lower())
        )
        self.models = {
            "ep-a": ScriptedEndpoint(WRONG, name="ep-a", default="yes", model_id="model-a"),
            # ep-b differs from ep-a's usual answers on two items only
            "ep-b": ScriptedEndpoint(
                WRONG | {"i1": "no", "i10": "yes"}, name="ep-b", default="yes", model_id="model-b"
            ),
        }
        self.clock = ManualClock()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, daemon=True)

    def endpoints(self, settings: EndpointSettings) -> EndpointClient:
        return self.models[settings.name]

    def start(self) -> LiveDaemon:
        self._thread.start()
        if not self.ready.wait(60):
            raise TimeoutError("the daemon did not come up in 60 s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()

    async def _run(self, daemon: Daemon, endpoint: str) -> None:
        self.clock.advance(3600)
        await daemon.submit(RunSpec("qa", endpoint, "manual"))
        await daemon.wait_idle()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        settings = load_settings(self.config)
        daemon, close = build_daemon(
            self.config,
            settings,
            clock=self.clock,
            endpoints=self.endpoints,
            notifier=Notifier(sleep=RecordingSleep(), timeout=2.0),
        )
        try:
            async with daemon.running():
                if self.history:
                    for _ in range(RUNS):
                        await self._run(daemon, "ep-a")
                        await self._run(daemon, "ep-b")
                    self.models["ep-a"].answers = dict(BROKEN)
                    await self._run(daemon, "ep-a")
                server, task = serve_api(
                    create_api(daemon), ServerSettings(listen=f"127.0.0.1:{self.port}")
                )
                while not server.started:  # uvicorn exposes only a flag
                    if task.done():
                        await task
                    await asyncio.sleep(0.01)
                self.ready.set()
                await self._stop.wait()
                server.should_exit = True
                await task
        finally:
            close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """A daemon with six runs of qa@ep-a (the last one regressed) and five of qa@ep-b."""
    daemon = LiveDaemon(tmp_path_factory.mktemp("ui")).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromium-driver, with its console log kept."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/test.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/, where the screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
