"""Security hardening, end to end: planted secrets, API auth, template sandbox, metric
labels, request size limits and TLS verification.

The daemon and CLI run as child processes (tests/daemon/harness.py); the fake model
endpoints, webhook receivers and TLS servers are threaded HTTP servers on 127.0.0.1 in the
test process. The unit tests at the end pin each product fix in isolation.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import select
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from monitor.api import MAX_BODY_BYTES, create_api
from monitor.benchmarks import load_benchmark
from monitor.config import (
    EndpointSettings,
    Settings,
    load_settings,
    mask_secrets,
    parse_settings,
)
from monitor.core.model import ErrorKind, Item, ItemResult, Rescore, ScorerSpec
from monitor.demo.data import PROMPT, write_items
from monitor.endpoints import HttpClient, build_endpoint
from monitor.errors import BenchmarkError, ConfigError
from monitor.log import Redactor, StdlibBridge, configure_logging, get_logger, redactor
from monitor.scheduling import RunSpec
from monitor.storage import SqlStore, open_store
from tests.daemon.harness import TOKEN, Daemon, Simulator, free_port

CORE = "PLANTED-9f3e1c"  # every planted secret contains it; it must appear nowhere


def planted(tag: str) -> str:
    """A distinctive secret value for one place of the config."""
    return f"sk-{CORE}-{tag}"


# ---------------------------------------------------------------- loopback servers


@dataclass
class Seen:
    """One request a loopback server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = Callable[[Seen], tuple[int, Any]]


@dataclass
class Loopback:
    """A threaded HTTP(S) server on 127.0.0.1 that answers with `reply` and records requests."""

    reply: Reply
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
                owner.requests.append(seen)
                status, doc = owner.reply(seen)
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if self.tls is not None:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def paths(self, prefix: str) -> list[str]:
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo_401(seen: Seen) -> tuple[int, Any]:
    """Refuse like a careless gateway: quote the credentials and the path back."""
    return 401, {
        "error": "invalid credentials",
        "authorization": seen.headers.get("Authorization"),
        "x-api-key": seen.headers.get("X-Api-Key"),
        "path": seen.path,
    }


def chat_ok(seen: Seen) -> tuple[int, Any]:
    """An OpenAI-compatible chat answer that is always `refund`."""
    return 200, {"model": "tls-model", "choices": [{"message": {"content": "refund"}}]}


@pytest.fixture
def echo() -> Iterator[Loopback]:
    """A loopback server that answers every POST with 401 and echoes the credentials."""
    server = Loopback(echo_401)
    yield server
    server.stop()


# ---------------------------------------------------------------- helpers


def call(
    base: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], str]:
    """One HTTP request with exactly these headers: (status, headers, body text)."""
    req = urllib.request.Request(base + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _lower(resp.headers.items()), resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:  # closes the error response's socket now, not at some later GC
            return err.code, _lower(err.headers.items()), err.read().decode()


def _lower(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def monitor_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m monitor ARGS` in a child process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else dict(os.environ),
        check=False,
    )


def db_text(db: Path) -> str:
    """Every row of every table as text: the SQL dump, plus blobs decoded leniently."""
    parts = []
    sqlite_cli = shutil.which("sqlite3")
    if sqlite_cli:
        dump = subprocess.run([sqlite_cli, str(db), ".dump"], capture_output=True, check=True)
        parts.append(dump.stdout.decode("utf-8", "replace"))
    conn = sqlite3.connect(db)
    try:
        parts.extend(conn.iterdump())
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the DB
                parts.extend(
                    value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    for value in row
                )
    finally:
        conn.close()
    return "\n".join(parts)


def leaks(outputs: dict[str, str], needle: str = CORE) -> dict[str, str]:
    """Where `needle` appears, with some context, by output name."""
    found = {}
    for name, text in outputs.items():
        at = text.find(needle)
        if at >= 0:
            found[name] = text[max(0, at - 200) : at + 80]
    return found


# ---------------------------------------------------------------- planted secrets

SWEEP_CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}", api_token: "${{LEAK_TOKEN}}"}}
endpoints:
  - name: leaky
    type: openai-chat
    url: {echo}/v1
    model: m
    headers: {{Authorization: "Bearer ${{LEAK_BEARER}}", X-Api-Key: "${{LEAK_APIKEY}}"}}
    retries: 0
    timeout: 5s
benchmarks:
  - name: intents
    data: items.jsonl
    prompt: {prompt}
    reference: label
    scorers: [exact_match]
monitors:
  - name: leakmon
    benchmark: intents
    endpoints: [leaky]
    schedule: {{every: 3600s}}
    alert: [oncall]
alerting:
  receivers:
    - name: oncall
      webhook:
        url: "{echo}/hook/${{LEAK_HOOKPATH}}"
        headers: {{Authorization: "Bearer ${{LEAK_HOOKKEY}}"}}
      slack: {{url: "{echo}/slack/${{LEAK_SLACK}}"}}
      alertmanager: {{url: "{echo}/am"}}
"""
SWEEP_SECRETS = ("TOKEN", "BEARER", "APIKEY", "HOOKPATH", "HOOKKEY", "SLACK", "FRESH")


def _broken(config: str) -> str:
    """The sweep config with two errors that quote secrets: a known one and a fresh one."""
    return config.replace("timeout: 5s", 'timeout: "${LEAK_BEARER}"').replace(
        "retries: 0", 'retries: 0\n    rate_limit: "${LEAK_FRESH}"'
    )


def _drive_daemon(
    d: Daemon, echo: Loopback, secrets: dict[str, str], config: Path
) -> dict[str, str]:
    """Run, fail, alert, reload a broken file, and read every GET route: the answers."""
    good = config.read_text()
    token = {"Authorization": f"Bearer {secrets['TOKEN']}"}
    outputs: dict[str, str] = {}
    d.wait_ready()
    assert call(d.base, "POST", "/api/v1/monitors/leakmon/run", headers=token)[0] == 202
    d.wait_for(lambda: [r for r in d.runs() if r["status"] != "running"], what="the run")
    d.wait_for(
        lambda: echo.paths("/hook/") and echo.paths("/slack/") and echo.paths("/am/"),
        what="alert deliveries",
    )
    # the planted secrets really went out, so their absence below means something
    sent = echo.requests[0].headers
    assert sent["Authorization"] == f"Bearer {secrets['BEARER']}"
    assert sent["X-Api-Key"] == secrets["APIKEY"]
    hook = next(r for r in echo.requests if r.path.startswith("/hook/"))
    assert hook.path == f"/hook/{secrets['HOOKPATH']}"
    assert hook.headers["Authorization"] == f"Bearer {secrets['HOOKKEY']}"

    config.write_text(_broken(good))
    status, _, text = call(d.base, "POST", "/-/reload", headers=token)
    assert status == 400
    assert "***" in text  # the errors are still reported, the values masked
    outputs["POST /-/reload (broken file)"] = text
    config.write_text(good)
    status, _, text = call(d.base, "POST", "/-/reload", headers=token)
    assert status == 200, text
    wrong = {"Authorization": f"Bearer {secrets['TOKEN']}x"}
    outputs["POST /-/reload (wrong token)"] = call(d.base, "POST", "/-/reload", headers=wrong)[2]

    runs = d.runs()
    assert [r["status"] for r in runs] == ["degraded"]
    paths = [
        *("/metrics", "/healthz", "/readyz", "/openapi.json", "/api/v1/benchmarks"),
        *("/api/v1/endpoints", "/api/v1/monitors", "/api/v1/alerts", "/api/v1/runs?limit=500"),
        "/api/v1/runs/999999",
    ]
    for run in runs:
        paths += [
            f"/api/v1/runs/{run['id']}",
            f"/api/v1/runs/{run['id']}/items?limit=1000",
            f"/api/v1/runs/{run['id']}/items?changed=true",
        ]
    for path in paths:
        status, _, text = call(d.base, "GET", path)
        assert status in {200, 404}, (path, status)
        outputs[f"GET {path}"] = text
    assert json.loads(outputs["GET /api/v1/alerts"])["alerts"], "the degraded run alerted"
    d.signal(signal.SIGTERM)
    assert d.wait_exit(30) == 0
    return outputs


def _cli_outputs(config: Path, broken: Path) -> dict[str, str]:
    """What the read-only commands print for the sweep's config and its broken twin."""
    outputs = {}
    for args in (
        ("check-config", str(config)),
        ("check-config", str(broken)),
        ("runs", "--format", "json", "--config", str(config)),
        ("runs", "--config", str(config)),
        ("compare", "1", "1", "--format", "json", "--config", str(config)),
    ):
        done = monitor_cli(*args)
        outputs[f"monitor {' '.join(args)}"] = done.stdout + done.stderr
    assert "***" in outputs[f"monitor check-config {broken}"]
    return outputs


class TestPlantedSecrets:
    def test_secrets_reach_no_log_row_metric_api_answer_or_cli_output(
        self, tmp_path: Path, echo: Loopback, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Secrets from ${ENV} appear in no log, DB row, metric, API answer or CLI output."""
        secrets = {name: planted(name.lower()) for name in SWEEP_SECRETS}
        for name, value in secrets.items():
            monkeypatch.setenv(f"LEAK_{name}", value)
        write_items(tmp_path / "items.jsonl", 20)
        port, db = free_port(), tmp_path / "monitor.db"
        config, broken = tmp_path / "monitor.yaml", tmp_path / "broken.yaml"
        good = SWEEP_CONFIG.format(db=db, port=port, echo=echo.url, prompt=json.dumps(PROMPT))
        config.write_text(good)
        broken.write_text(_broken(good))
        d = Daemon(config, port)
        try:
            outputs = _drive_daemon(d, echo, secrets, config)
        finally:
            d.kill()
        log = d.log_text()
        assert "alert_delivery_failed" in log
        assert "***" in log  # the failures were logged, with the secrets masked
        outputs["daemon log"] = log
        outputs |= _cli_outputs(config, broken)
        outputs["database"] = db_text(db)
        assert "invalid credentials" in outputs["database"]  # the error details are stored
        assert not leaks(outputs), json.dumps(leaks(outputs), indent=2)

    def test_secret_in_endpoint_url_is_not_stored(
        self, tmp_path: Path, echo: Loopback, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A secret in an endpoint URL (an API key query parameter) never reaches the DB."""
        monkeypatch.setenv("LEAK_URLKEY", planted("urlkey"))
        write_items(tmp_path / "items.jsonl", 3)
        db = tmp_path / "monitor.db"
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f'storage: {{url: "sqlite:///{db}"}}\n'
            "endpoints:\n"
            "  - name: keyed\n"
            "    type: http-json\n"
            f'    url: "{echo.url}/predict?key=${{LEAK_URLKEY}}"\n'
            "    body: '{\"text\": {{ text | tojson }}}'\n"
            "    response: $.label\n"
            "    retries: 0\n"
            "benchmarks: [{name: b, data: items.jsonl, reference: label, scorers: [exact_match]}]\n"
            "monitors: [{name: m, benchmark: b, endpoints: [keyed]}]\n"
        )
        done = monitor_cli("run", "m", "--format", "json", "--config", str(config))
        assert done.returncode == 3, done.stderr
        assert echo.requests
        assert CORE in echo.requests[0].path
        assert not leaks({"database": db_text(db), "cli": done.stdout + done.stderr})

    async def test_secret_cut_by_the_error_snippet_is_not_kept(self) -> None:
        """A secret quoted across the 256-byte snippet boundary leaves no prefix behind."""
        secret = planted("cut")
        # the secret starts at byte 16 + 222 = 238: the 256-byte cut keeps its first 18 chars
        server = Loopback(lambda _: (401, {"p": "x" * 222, "a": secret}))
        try:
            settings = EndpointSettings.model_validate(
                {"name": "ep", "type": "openai-chat", "url": server.url, "model": "m"}
                | {"retries": 0, "headers": {"Authorization": f"Bearer {secret}"}}
            )
            async with HttpClient() as http:
                response = await build_endpoint(settings, http).predict(
                    Item(key="k", fields={"text": "t"}, prompt="p")
                )
        finally:
            server.stop()
        assert response.error is ErrorKind.HTTP_4XX
        assert CORE not in (response.error_detail or "")


# ---------------------------------------------------------------- API authorization

AUTH_CONFIG = """\
storage: {{url: "sqlite:///{db}"}}
server: {{listen: "127.0.0.1:{port}"{token}}}
endpoints:
  - name: {endpoint}
    type: openai-chat
    url: {url}
    model: sim
    retries: 0
benchmarks:
  - name: {benchmark}
    data: items.jsonl
    prompt: {prompt}
    reference: label
    scorers: [exact_match, {{regex: {{pattern: "^(refund|billing|other)$", name: {scorer}}}}}]
monitors:
  - name: {monitor}
    benchmark: {benchmark}
    endpoints: [{endpoint}]
    schedule: {{every: 3600s}}
"""
# the longest names the config accepts, using every punctuation character it allows
MONITOR = ("mon.itor:a-b_C9" * 7)[:100]
ENDPOINT = "sim.v2:prod-A_1"
BENCHMARK = "intents:v1.0-rc_2"
SCORER = "label.ok:strict-v2_X"


def _auth_config(folder: Path, sim: Simulator, *, token: bool) -> tuple[Path, int]:
    write_items(folder / "items.jsonl", 12)
    port = free_port()
    path = folder / "monitor.yaml"
    path.write_text(
        AUTH_CONFIG.format(
            db=folder / "monitor.db",
            port=port,
            token=', api_token: "${MONITOR_TEST_TOKEN}"' if token else "",
            url=sim.url,
            prompt=json.dumps(PROMPT),
            monitor=MONITOR,
            endpoint=ENDPOINT,
            benchmark=BENCHMARK,
            scorer=SCORER,
        )
    )
    return path, port


@dataclass
class Secured:
    """A running daemon with the test token, one succeeded run and its config."""

    daemon: Daemon
    run_id: int
    config: Path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """A daemon with `server.api_token`, odd but valid names and one succeeded run."""
    sim = Simulator()
    config, port = _auth_config(tmp_path_factory.mktemp("secured"), sim, token=True)
    d = Daemon(config, port)
    try:
        d.wait_ready()
        assert d.request("POST", f"/api/v1/monitors/{MONITOR}/run", token=TOKEN)[0] == 202
        runs = d.wait_for(lambda: [r for r in d.runs() if r["status"] == "succeeded"], what="a run")
        yield Secured(d, runs[0]["id"], config)
    finally:
        d.kill()
        sim.stop()


MUTATING = (
    ("POST", f"/api/v1/monitors/{MONITOR}/run", None),
    ("POST", "/api/v1/baselines", "baseline"),
    ("POST", "/-/reload", None),
)
WRONG_AUTHORIZATIONS = {
    "missing": None,
    "wrong token": f"Bearer {TOKEN[::-1]}",
    "token with a suffix": f"Bearer {TOKEN}x",
    "token prefix": f"Bearer {TOKEN[:-1]}",
    "token twice": f"Bearer {TOKEN} {TOKEN}",
    "empty token": "Bearer ",
    "scheme only": "Bearer",
    "no scheme": TOKEN,
    "basic scheme": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode(),
    "token scheme": f"Token {TOKEN}",
    "bearer in a query": None,  # the token in the URL is not a credential
}


def _body(secured: Secured, kind: str | None) -> bytes | None:
    if kind is None:
        return None
    doc = {"monitor": MONITOR, "endpoint": ENDPOINT, "run_ids": [secured.run_id]}
    return json.dumps(doc).encode()


class TestAuthorization:
    @pytest.mark.parametrize("case", sorted(WRONG_AUTHORIZATIONS))
    @pytest.mark.parametrize(("method", "path", "body"), MUTATING)
    def test_wrong_credentials_get_401(
        self, secured: Secured, case: str, method: str, path: str, body: str | None
    ) -> None:
        """A missing, wrong, malformed or differently-schemed token is refused with 401."""
        value = WRONG_AUTHORIZATIONS[case]
        headers = {"Content-Type": "application/json"}
        if value is not None:
            headers["Authorization"] = value
        if case == "bearer in a query":
            path += ("&" if "?" in path else "?") + f"access_token={TOKEN}"
        status, answer_headers, text = call(
            secured.daemon.base, method, path, headers=headers, body=_body(secured, body)
        )
        assert status == 401, text
        assert answer_headers.get("www-authenticate") == "Bearer"
        assert json.loads(text) == {"detail": "missing or wrong bearer token"}

    def test_right_token_is_accepted_by_every_mutating_route(self, secured: Secured) -> None:
        """With the token each mutating route does its work (2xx); the scheme is case-blind."""
        base = secured.daemon.base
        for scheme in ("Bearer", "bearer"):
            headers = {"Authorization": f"{scheme} {TOKEN}", "Content-Type": "application/json"}
            answers = {
                path: call(base, method, path, headers=headers, body=_body(secured, body))
                for method, path, body in MUTATING
            }
            assert answers[MUTATING[0][1]][0] == 202
            assert json.loads(answers[MUTATING[1][1]][2])["pinned"] == [secured.run_id]
            assert json.loads(answers[MUTATING[2][1]][2]) == {
                "reloaded": True,
                "message": "reloaded",
            }

    def test_read_routes_need_no_token(self, secured: Secured) -> None:
        """GET routes are open: only mutating routes are guarded."""
        for path in ("/api/v1/runs", "/api/v1/monitors", "/api/v1/endpoints", "/metrics"):
            assert call(secured.daemon.base, "GET", path)[0] == 200

    def test_without_configured_token_mutating_routes_are_disabled(
        self, tmp_path: Path, simulator: Simulator, daemons: list[Daemon]
    ) -> None:
        """With no `server.api_token` every mutating route answers 403, whatever is sent."""
        config, port = _auth_config(tmp_path, simulator, token=False)
        d = Daemon(config, port)
        daemons.append(d)
        d.wait_ready()
        for method, path, _ in MUTATING:
            for value in (None, f"Bearer {TOKEN}", "Bearer ", "Bearer anything"):
                headers = {} if value is None else {"Authorization": value}
                status, _, text = call(d.base, method, path, headers=headers)
                assert status == 403, (path, value, text)
                assert "disabled" in json.loads(text)["detail"]
        assert call(d.base, "GET", "/api/v1/runs")[0] == 200
        assert d.runs() == []  # nothing was triggered


# ---------------------------------------------------------------- template sandbox

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ text.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.environ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__dict__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ text | attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(text) }}",
    "{{ text.upper.__self__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.environ }}",
    "{{ environ }}",
]
# how the product refuses: the sandbox's "unsafe", or a name that is no item field
REFUSALS = ("is unsafe", "is undefined", "missing from item", "needs field")
# what a successful escape would print; none of it may appear in any output
ESCAPE_MARKERS = ("<class", "__builtins__", "subclasses", "environ(", CORE)


def _uncaught(output: str) -> bool:
    """Whether a process printed a raw traceback (JSON log lines quote theirs escaped)."""
    return any(line.startswith("Traceback (most recent call last)") for line in output.split("\n"))


def _sandbox_config(folder: Path, url: str, *, prompt: str | None, body: str | None) -> Path:
    write_items(folder / "items.jsonl", 3)
    config = folder / "monitor.yaml"
    endpoint: dict[str, Any] = {"name": "ep", "url": url, "retries": 0, "timeout": "5s"}
    if body is None:
        endpoint.update(type="openai-chat", model="m")
    else:
        endpoint.update(type="http-json", body=body, response="$.choices[0].message.content")
    bench: dict[str, Any] = {
        "name": "b",
        "data": "items.jsonl",
        "reference": "label",
        "scorers": ["exact_match"],
        "prompt": prompt if prompt is not None else PROMPT,
    }
    doc = {
        "storage": {"url": f"sqlite:///{folder / 'monitor.db'}"},
        "endpoints": [endpoint],
        "benchmarks": [bench],
        "monitors": [{"name": "m", "benchmark": "b", "endpoints": ["ep"]}],
    }
    config.write_text(json.dumps(doc))  # JSON is YAML: no quoting surprises
    return config


@pytest.fixture
def chat() -> Iterator[Loopback]:
    """A loopback OpenAI-compatible model that always answers `refund`."""
    server = Loopback(chat_ok)
    yield server
    server.stop()


def _body_with(escape: str) -> str:
    """An http-json body template whose value is the escape attempt."""
    if escape.startswith("{%"):
        return '{"x": "' + escape + '"}'
    return '{"messages": [{"content": {{ (' + escape.strip("{} %") + ") | string | tojson }}}]}"


def _refusal(error: BaseException) -> str:
    text = str(error)
    assert any(w in text for w in REFUSALS), text
    assert not [m for m in ESCAPE_MARKERS if m in text], text
    return text


# the escapes the issue names, tried end to end through the CLI (the rest run in-process)
E2E_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
]


class TestTemplateSandbox:
    @pytest.mark.parametrize("escape", ESCAPES)
    def test_prompt_escape_fails_loading(
        self, tmp_path: Path, escape: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An escape in a benchmark prompt makes loading the benchmark fail cleanly."""
        monkeypatch.setenv("SANDBOX_SECRET", planted("sandbox"))
        config = _sandbox_config(tmp_path, "http://127.0.0.1:9", prompt=f"Q: {escape}", body=None)
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(load_settings(config).benchmarks[0])
        _refusal(info.value)

    @pytest.mark.parametrize("escape", ESCAPES)
    async def test_body_escape_fails_encoding(
        self, tmp_path: Path, escape: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An escape in an http-json body fails the item's encoding, before any request."""
        monkeypatch.setenv("SANDBOX_SECRET", planted("sandbox"))
        config = _sandbox_config(
            tmp_path, "http://127.0.0.1:9", prompt=None, body=_body_with(escape)
        )
        settings = load_settings(config)
        item = load_benchmark(settings.benchmarks[0]).items[0]
        async with HttpClient() as http:
            endpoint = build_endpoint(settings.endpoints[0], http)
            with pytest.raises(BenchmarkError) as info:
                await endpoint.predict(item)
        _refusal(info.value)

    @pytest.mark.parametrize("escape", E2E_ESCAPES)
    def test_prompt_escape_is_a_clean_check_config_error(
        self, tmp_path: Path, escape: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`monitor check-config` reports a prompt escape as one error line, exit code 2."""
        monkeypatch.setenv("SANDBOX_SECRET", planted("sandbox"))
        config = _sandbox_config(tmp_path, "http://127.0.0.1:9", prompt=f"Q: {escape}", body=None)
        done = monitor_cli("check-config", str(config))
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("error: ")
        assert not _uncaught(done.stderr)
        _refusal(RuntimeError(done.stdout + done.stderr))

    @pytest.mark.parametrize("escape", E2E_ESCAPES)
    def test_body_escape_fails_the_run_without_sending(
        self, tmp_path: Path, chat: Loopback, escape: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`monitor run` with an escape in an http-json body fails the run; nothing is sent."""
        monkeypatch.setenv("SANDBOX_SECRET", planted("sandbox"))
        config = _sandbox_config(tmp_path, chat.url, prompt=None, body=_body_with(escape))
        done = monitor_cli("run", "m", "--format", "json", "--config", str(config))
        out = done.stdout + done.stderr
        assert done.returncode == 3, out
        assert json.loads(done.stdout)["runs"][0]["status"] == "failed"
        assert not _uncaught(out)  # a failed run is logged (JSON, with its traceback); no crash
        _refusal(RuntimeError(out))
        assert chat.requests == []
        assert not leaks({"database": db_text(tmp_path / "monitor.db")}, "<class")

    def test_oversized_range_is_a_clean_config_error(self, tmp_path: Path, chat: Loopback) -> None:
        """A template asking for a huge range fails `check-config` with a one-line error."""
        config = _sandbox_config(
            tmp_path, chat.url, prompt="{{ range(10**9) | list | length }}", body=None
        )
        done = monitor_cli("check-config", str(config))
        assert done.returncode == 2, done.stderr
        assert not _uncaught(done.stderr)


# ---------------------------------------------------------------- metric labels

BAD_NAMES = {
    "double quote": 'a"b',
    "backslash": "a\\b",
    "newline": "a\nb",
    "brace": "a}b",
    "equals and comma": "a=b,c",
    "space": "a b",
    "non-ASCII": "ünïcode",
    "empty": "",
    "leading dot": ".hidden",
    "101 characters": "a" * 101,
}
VALID = {
    "endpoints": [{"name": "ep", "type": "openai-chat", "url": "http://x", "model": "m"}],
    "benchmarks": [{"name": "b", "data": "d.jsonl", "scorers": ["exact_match"]}],
    "monitors": [{"name": "m", "benchmark": "b", "endpoints": ["ep"], "alert": ["r"]}],
    "alerting": {"receivers": [{"name": "r", "webhook": {"url": "http://hook"}}]},
}


def _with_name(place: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(VALID))
    if place == "scorer":
        doc["benchmarks"][0]["scorers"] = [{"exact_match": {"name": name}}]
    elif place == "receiver":
        doc["alerting"]["receivers"][0]["name"] = name
        doc["monitors"][0]["alert"] = [name]
    else:
        doc[f"{place}s"][0]["name"] = name
        if place == "endpoint":
            doc["monitors"][0]["endpoints"] = [name]
        if place == "benchmark":
            doc["monitors"][0]["benchmark"] = name
    return doc


class TestLabelValues:
    @pytest.mark.parametrize("place", ["monitor", "endpoint", "benchmark", "scorer", "receiver"])
    @pytest.mark.parametrize("case", sorted(BAD_NAMES))
    def test_names_that_would_need_escaping_are_rejected(self, place: str, case: str) -> None:
        """Names that become label values are 1-100 safe characters; others fail the config."""
        text = json.dumps(_with_name(place, BAD_NAMES[case]))
        with pytest.raises(ConfigError, match="invalid name"):
            parse_settings(text, source="monitor.yaml", environ={})

    def test_valid_names_pass(self) -> None:
        """The same documents with safe names load, so the failures above are about names."""
        for place in ("monitor", "endpoint", "benchmark", "scorer", "receiver"):
            parse_settings(json.dumps(_with_name(place, MONITOR)), environ={})

    def test_metrics_with_long_punctuated_names_parse_and_lint(self, secured: Secured) -> None:
        """/metrics with the longest punctuated names parses and passes `promtool check`."""
        status, _, text = call(secured.daemon.base, "GET", "/metrics")
        assert status == 200
        labels = [
            s.labels
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "monitor_benchmark_score"
        ]
        assert {"monitor": MONITOR, "benchmark": BENCHMARK, "endpoint": ENDPOINT} | {
            "scorer": SCORER
        } in labels
        assert all(len(v) <= 100 for s in labels for v in s.values())
        promtool = shutil.which("promtool") or "/usr/bin/promtool"
        if not Path(promtool).exists():
            pytest.skip("promtool is not installed")
        lint = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


# ---------------------------------------------------------------- request size limits


def _raw_exchange(port: int, head: bytes, chunks: Iterator[bytes], timeout: float = 10.0) -> bytes:
    """Send a request head, then body chunks until the server answers; the answer's head."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or hung up) before the body was complete
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the server stopped reading and closed the connection
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer


class TestRequestSizeLimits:
    @pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
    def test_declared_huge_body_is_refused_before_it_is_read(
        self, secured: Secured, token: bool
    ) -> None:
        """A 10 MB Content-Length gets 413 at once, with or without a token."""
        port = secured.daemon.port
        auth = f"Authorization: Bearer {TOKEN}\r\n" if token else ""
        head = (
            f"POST /api/v1/baselines HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            "Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
        ).encode()
        t0 = time.monotonic()
        answer = _raw_exchange(port, head, iter([]))
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - t0 < 2
        assert call(secured.daemon.base, "GET", "/healthz")[0] == 200

    def test_chunked_body_over_the_limit_is_refused(self, secured: Secured) -> None:
        """A chunked body is cut off with 413 once it passes the limit."""
        head = (
            "POST /api/v1/baselines HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        piece = b"[" + b"1," * 32767 + b"1"

        def chunks() -> Iterator[bytes]:
            for _ in range(200):  # 13 MB at most: far past the limit
                yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

        t0 = time.monotonic()
        answer = _raw_exchange(secured.daemon.port, head, chunks())
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - t0 < 5
        assert call(secured.daemon.base, "GET", "/healthz")[0] == 200

    def test_ten_megabyte_json_from_a_plain_client(self, secured: Secured) -> None:
        """A client that sends 10 MB anyway gets 413 or a closed connection, quickly."""
        body = json.dumps({"monitor": MONITOR, "endpoint": ENDPOINT, "pad": "x" * 10_000_000})
        t0 = time.monotonic()
        try:
            status = call(
                secured.daemon.base,
                "POST",
                "/api/v1/baselines",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                body=body.encode(),
            )[0]
        except (ConnectionError, urllib.error.URLError):
            status = 413  # refused while the client was still sending
        assert status == 413
        assert time.monotonic() - t0 < 5
        assert call(secured.daemon.base, "GET", "/healthz")[0] == 200

    @pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
    def test_hundred_thousand_run_ids_are_refused(self, secured: Secured, token: bool) -> None:
        """100k run ids (under the byte limit) are refused with 422, or 401 without a token."""
        ids = list(range(1, 100_001))
        body = json.dumps({"monitor": MONITOR, "endpoint": ENDPOINT, "run_ids": ids}).encode()
        assert len(body) < MAX_BODY_BYTES
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {TOKEN}"
        t0 = time.monotonic()
        status, _, text = call(
            secured.daemon.base, "POST", "/api/v1/baselines", headers=headers, body=body
        )
        assert status == (422 if token else 401), text[:300]
        assert time.monotonic() - t0 < 3
        assert len(text) < 10_000  # the error does not echo the list back
        assert secured.daemon.proc.poll() is None


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_chat(self_signed: tuple[Path, Path]) -> Iterator[Loopback]:
    """An HTTPS OpenAI-compatible model on 127.0.0.1 with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    server = Loopback(chat_ok, tls=context)
    yield server
    server.stop()


def _tls_run(
    folder: Path, url: str, ca_bundle: Path | None
) -> tuple[int, dict[str, Any], set[str]]:
    """`monitor run` against `url`: exit code, the run document and its item error kinds."""
    write_items(folder / "items.jsonl", 4)
    endpoint: dict[str, Any] = {"name": "tls", "type": "openai-chat", "url": url, "model": "m"}
    endpoint.update(retries=1, timeout="5s", backoff="10ms")
    if ca_bundle is not None:
        endpoint["ca_bundle"] = str(ca_bundle)
    db = folder / "monitor.db"
    doc = {
        "storage": {"url": f"sqlite:///{db}"},
        "endpoints": [endpoint],
        "benchmarks": [
            {"name": "b", "data": "items.jsonl", "prompt": PROMPT, "reference": "label"}
            | {"scorers": ["exact_match"]}
        ],
        "monitors": [
            {"name": "m", "benchmark": "b", "endpoints": ["tls"], "degraded_threshold": 1}
        ],
    }
    (folder / "monitor.yaml").write_text(json.dumps(doc))
    done = monitor_cli("run", "m", "--format", "json", "--config", str(folder / "monitor.yaml"))
    (run,) = json.loads(done.stdout)["runs"]
    conn = sqlite3.connect(db)
    try:
        kinds = {str(k) for (k,) in conn.execute("SELECT DISTINCT error_kind FROM item_result")}
    finally:
        conn.close()
    return done.returncode, run, kinds


class TestTlsVerification:
    def test_self_signed_server_is_refused_by_default(
        self, tmp_path: Path, tls_chat: Loopback
    ) -> None:
        """Without a CA bundle the self-signed certificate fails every item with `connect`."""
        code, run, kinds = _tls_run(tmp_path, tls_chat.url, None)
        assert code == 3
        assert run["n_errors"] == run["n_items"] == 4
        assert kinds == {"connect"}
        assert tls_chat.requests == []  # no request got past the handshake

    def test_ca_bundle_trusts_the_server(
        self, tmp_path: Path, tls_chat: Loopback, self_signed: tuple[Path, Path]
    ) -> None:
        """With `ca_bundle` pointing at the certificate the run succeeds over TLS."""
        code, run, kinds = _tls_run(tmp_path, tls_chat.url, self_signed[0])
        assert code == 0, run
        assert run["status"] == "succeeded"
        assert run["n_errors"] == 0
        assert kinds == {"None"}
        assert len(tls_chat.requests) == 4


# ---------------------------------------------------------------- unit tests of the fixes


async def asgi(
    app: Any,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | list[bytes] = b"",
) -> tuple[int, dict[str, str], bytes]:
    """One request straight into an ASGI app; a list body arrives in chunks, unannounced."""
    chunks = body if isinstance(body, list) else [body]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if isinstance(body, bytes) and body:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": urllib.parse.unquote(route),
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, answer


@dataclass
class FakeDaemon:
    """The part of the daemon the API reads, over an empty SQLite store."""

    settings: Settings
    store: SqlStore
    leader: bool = True
    reload_answer: tuple[bool, str] = (True, "reloaded")
    submitted: list[RunSpec] = field(default_factory=list)

    def metrics_text(self) -> bytes:
        return b""

    async def firing_alerts(self) -> list[Any]:
        return []

    def ready(self) -> bool:
        return True

    def next_fire_times(self) -> dict[tuple[str, str], Any]:
        return {}

    def running_pairs(self) -> set[tuple[str, str]]:
        return set()

    async def submit(self, spec: RunSpec) -> str:
        self.submitted.append(spec)
        return "started"

    async def reload(self) -> tuple[bool, str]:
        return self.reload_answer

    async def rescore(self, run_ids: Sequence[int], spec: ScorerSpec) -> list[Rescore]:
        raise AssertionError("not called by these tests")


UNIT_CONFIG = """\
server: {api_token: "${API_TOKEN}"}
endpoints:
  - name: ep
    type: openai-chat
    url: "http://127.0.0.1:1/v1?key=${URL_KEY}"
    model: m
benchmarks: [{name: b, data: d.jsonl, scorers: [exact_match]}]
monitors: [{name: m, benchmark: b, endpoints: [ep]}]
"""
UNIT_ENV = {"API_TOKEN": planted("unit-token"), "URL_KEY": planted("unit-urlkey")}
AUTHORIZED = {"Authorization": f"Bearer {UNIT_ENV['API_TOKEN']}"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeDaemon]:
    """A fake daemon over an empty store, whose settings hold two secrets from ${ENV}."""
    store = open_store(f"sqlite:///{tmp_path / 'unit.db'}")
    yield FakeDaemon(parse_settings(UNIT_CONFIG, environ=UNIT_ENV), store)
    store.close()


class TestFixes:
    def test_config_errors_mask_values_from_the_environment(self) -> None:
        """A validation error quoting a value that came from ${ENV} shows *** instead."""
        text = UNIT_CONFIG.replace('"http://127.0.0.1:1/v1?key=${URL_KEY}"', '"${URL_KEY}"')
        with pytest.raises(ConfigError) as info:
            parse_settings(text, source="monitor.yaml", environ=UNIT_ENV)
        assert "endpoints[0].url: invalid url '***'" in str(info.value)
        assert CORE not in str(info.value)

    def test_mask_secrets_handles_overlaps_short_values_and_repr_escapes(self) -> None:
        """Longest secrets are masked first, values under 4 characters are kept."""
        assert mask_secrets("a-abcdef-abc", {"abc", "abcdef"}) == "a-***-abc"
        secret = "back\\slash-secret"
        assert mask_secrets(f"invalid {secret!r}", {secret}) == "invalid '***'"

    def test_log_redaction_reaches_nested_values(self) -> None:
        """Secrets inside lists and dicts of a log event are masked too."""
        redact = Redactor([planted("nested")])
        event = {
            "event": "x",
            "channels": [f"hook/{planted('nested')}"],
            "changes": {"a": (planted("nested"), 1)},
            "error": ValueError(planted("nested")),
        }
        out = redact(None, "info", event)
        assert CORE not in json.dumps(out, default=str)
        assert out["channels"] == ["hook/***"]
        assert out["changes"] == {"a": ["***", 1]}

    def test_log_output_is_redacted_end_to_end(self) -> None:
        """A configured logger writes masked JSON for nested values."""
        stream = StringIO()
        redactor.update([planted("e2e")])
        try:
            configure_logging(stream=stream, json=True)
            get_logger("test").info("event", detail={"url": f"http://x/{planted('e2e')}"})
        finally:
            redactor.update([])
            structlog.reset_defaults()
        assert CORE not in stream.getvalue()
        assert "http://x/***" in stream.getvalue()

    def test_stdlib_log_records_are_redacted(self) -> None:
        """Library warnings and tracebacks (uvicorn, APScheduler) pass the redactor too."""
        stream = StringIO()
        redactor.update([planted("stdlib")])
        try:
            configure_logging(stream=stream, json=True)
            configure_logging(stream=stream, json=True)  # twice: still one bridge
            logging.getLogger("uvicorn.error").warning("bad %s", planted("stdlib"))
            error = RuntimeError(planted("stdlib"))
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application", exc_info=(RuntimeError, error, None)
            )
        finally:
            redactor.update([])
            structlog.reset_defaults()
            root = logging.getLogger()
            for handler in [h for h in root.handlers if isinstance(h, StdlibBridge)]:
                root.removeHandler(handler)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [(e["component"], e["event"], e["level"]) for e in lines] == [
            ("uvicorn.error", "bad ***", "warning"),
            ("uvicorn.error", "Exception in ASGI application", "error"),
        ]
        assert "RuntimeError: ***" in lines[1]["exception"]
        assert CORE not in stream.getvalue()

    async def test_api_masks_secrets_in_endpoint_urls(self, fake: FakeDaemon) -> None:
        """/api/v1/endpoints never shows a URL's secret query value."""
        status, _, body = await asgi(create_api(fake), "GET", "/api/v1/endpoints")
        assert status == 200
        (endpoint,) = json.loads(body)["endpoints"]
        assert endpoint["url"] == "http://127.0.0.1:1/v1?key=***"

    async def test_api_masks_secrets_in_item_error_details(self, fake: FakeDaemon) -> None:
        """An error detail stored with a secret in it is shown with the secret masked."""
        assert fake.store is not None
        run = fake.store.start_run(
            monitor="m",
            benchmark="b",
            benchmark_version="v1",
            endpoint="ep",
            trigger="manual",
            started_at=datetime.now(UTC),
        )
        detail = f"HTTP 401: path /v1?key={planted('unit-urlkey')}"
        fake.store.add_item_results(
            run.id, [ItemResult("q1", None, {}, 0.1, ErrorKind.HTTP_4XX, detail)]
        )
        status, _, body = await asgi(create_api(fake), "GET", f"/api/v1/runs/{run.id}/items")
        assert status == 200
        (item,) = json.loads(body)["items"]
        assert item["error_detail"] == "HTTP 401: path /v1?key=***"

    async def test_api_masks_secrets_in_reload_messages(self, fake: FakeDaemon) -> None:
        """A refused reload's message is returned with the known secrets masked."""
        fake.reload_answer = (False, f"bad value {planted('unit-urlkey')}")
        status, _, body = await asgi(create_api(fake), "POST", "/-/reload", headers=AUTHORIZED)
        assert status == 400
        assert json.loads(body) == {"reloaded": False, "message": "bad value ***"}

    async def test_token_is_compared_in_constant_time(
        self, fake: FakeDaemon, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The bearer token goes through hmac.compare_digest, never ==."""
        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr("monitor.api.deps.hmac.compare_digest", spy)
        app, token = create_api(fake), UNIT_ENV["API_TOKEN"].encode()
        wrong = {"Authorization": "Bearer no"}
        assert (await asgi(app, "POST", "/-/reload", headers=wrong))[0] == 401
        assert (await asgi(app, "POST", "/-/reload", headers=AUTHORIZED))[0] == 200
        assert calls == [(b"no", token), (token, token)]

    async def test_body_limit_middleware(self, fake: FakeDaemon) -> None:
        """Bodies over MAX_BODY_BYTES get 413, declared or chunked; smaller ones pass intact."""
        app = create_api(fake)
        big = b"x" * (MAX_BODY_BYTES + 1)
        status, _, body = await asgi(app, "POST", "/-/reload", headers=AUTHORIZED, body=big)
        assert status == 413
        assert json.loads(body) == {"detail": f"request body exceeds {MAX_BODY_BYTES} bytes"}
        chunked = [big[:1000], big[1000:], b"never read"]
        assert (await asgi(app, "POST", "/-/reload", headers=AUTHORIZED, body=chunked))[0] == 413
        assert (await asgi(app, "POST", "/-/reload", headers=AUTHORIZED, body=big[:-1]))[0] == 200
        # a buffered body reaches the route intact, in one piece or in chunks
        doc = {"monitor": "m", "endpoint": "ep", "run_ids": [7]}
        raw = json.dumps(doc).encode()
        for body_in in (raw, [raw[:5], raw[5:20], raw[20:]]):
            status, _, body = await asgi(
                app, "POST", "/api/v1/baselines", headers=AUTHORIZED | JSON, body=body_in
            )
            assert (status, json.loads(body)) == (404, {"detail": "no run 7"})
        assert (await asgi(app, "GET", "/healthz"))[0] == 200

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/runs/0",
            f"/api/v1/runs/{2**63}",
            f"/api/v1/runs/{2**63}/items",
            "/api/v1/runs?monitor=%00",
            "/api/v1/runs?endpoint=a%20b",
        ],
    )
    async def test_out_of_range_parameters_are_422(self, fake: FakeDaemon, path: str) -> None:
        """Ids no run can have and names the config could never hold get 422, not 5xx."""
        assert (await asgi(create_api(fake), "GET", path))[0] == 422

    async def test_baseline_problems_have_precise_statuses(self, fake: FakeDaemon) -> None:
        """Pinning rejects impossible ids and names with 422 and unknown runs with 404."""
        app = create_api(fake)
        for doc, expected in (
            ({"monitor": "m", "endpoint": "ep", "run_ids": [2**63]}, 422),
            ({"monitor": 'm"', "endpoint": "ep", "run_ids": [1]}, 422),
            ({"monitor": "m", "endpoint": "ep", "run_ids": [1]}, 404),
        ):
            body = json.dumps(doc).encode()
            status, _, _ = await asgi(
                app, "POST", "/api/v1/baselines", headers=AUTHORIZED | JSON, body=body
            )
            assert status == expected, doc

    async def test_validation_errors_do_not_echo_large_inputs(self, fake: FakeDaemon) -> None:
        """A 422 quotes small rejected values but not a list of 100k run ids."""
        app = create_api(fake)
        doc = {"monitor": "m", "endpoint": "ep", "run_ids": list(range(1, 100_001))}
        status, _, body = await asgi(
            app,
            "POST",
            "/api/v1/baselines",
            headers=AUTHORIZED | JSON,
            body=json.dumps(doc).encode(),
        )
        assert status == 422
        assert len(body) < 1000
        (error,) = json.loads(body)["detail"]
        assert error["type"] == "too_long"
        assert "input" not in error
        status, _, body = await asgi(app, "GET", "/api/v1/runs?limit=0")
        assert status == 422
        assert json.loads(body)["detail"][0]["input"] == "0"

    async def test_openapi_documents_bearer_auth_and_error_answers(self, fake: FakeDaemon) -> None:
        """The published schema declares the bearer scheme and the 401/403/413 answers."""
        status, _, body = await asgi(create_api(fake), "GET", "/openapi.json")
        assert status == 200
        spec = json.loads(body)
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        for path in ("/api/v1/monitors/{name}/run", "/api/v1/baselines", "/-/reload"):
            op = spec["paths"][path]["post"]
            assert op["security"] == [{"HTTPBearer": []}]
            assert {"401", "403", "413"} <= set(op["responses"])
