"""Configuration loading: validation, ${ENV} secrets, and file:line: field error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings, parse_duration, parse_rate, parse_settings
from monitor.errors import ConfigError

GOOD = """\
storage: {url: "sqlite:///monitor.db"}
server: {listen: "127.0.0.1:9464", api_token: "${MONITOR_API_TOKEN}"}
endpoints:
  - name: chat-prod
    type: openai-chat
    url: http://127.0.0.1:8089/v1
    model: our-model
    headers: {Authorization: "Bearer ${LLM_KEY}"}
    params: {temperature: 0, max_tokens: 64}
    concurrency: 16
    rate_limit: 20/s
    timeout: 30s
    retries: 3
  - name: legacy-api
    type: http-json
    url: http://127.0.0.1:9000/predict
    body: '{"text": {{ text | tojson }}}'
    response: $.result.label
benchmarks:
  - name: support-intents
    data: intents.jsonl
    prompt: "Classify: {{ text }}"
    reference: label
    scorers: [exact_match, {regex: {pattern: "^(refund|billing|other)$"}}]
monitors:
  - name: intents-prod
    benchmark: support-intents
    endpoints: [chat-prod, legacy-api]
    schedule: {cron: "*/30 * * * *"}
    drift: {baseline: "rolling:5", alpha: 0.01, min_effect: 0.01, sequential: cusum}
    alert: [oncall]
alerting:
  receivers:
    - name: oncall
      webhook: {url: "https://hooks.internal/monitor"}
  repeat_interval: 4h
"""
ENV = {"MONITOR_API_TOKEN": "tok-123456", "LLM_KEY": "sk-secret-abcdef"}


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, source="monitor.yaml", environ=ENV if environ is None else environ)
    return str(info.value)


class TestValidConfig:
    def test_parses_design_example(self) -> None:
        """The design document's example parses into typed, converted values."""
        s = parse_settings(GOOD, source="monitor.yaml", environ=ENV)
        ep = s.endpoint("chat-prod")
        assert ep.timeout == 30.0
        assert ep.rate_limit == 20.0
        assert ep.headers["Authorization"] == "Bearer sk-secret-abcdef"
        assert s.alerting.repeat_interval == 4 * 3600
        assert [sc.name for sc in s.benchmark("support-intents").scorers] == [
            "exact_match",
            "regex",
        ]
        assert s.monitor("intents-prod").drift.rolling_window == 5

    def test_env_values_are_recorded_as_secrets(self) -> None:
        """Every value substituted from the environment is remembered for masking."""
        s = parse_settings(GOOD, source="monitor.yaml", environ=ENV)
        assert s.secrets == {"tok-123456", "sk-secret-abcdef"}

    def test_fingerprint_ignores_header_values(self) -> None:
        """Rotating an API key does not change the endpoint's identity."""
        a = parse_settings(GOOD, environ=ENV).endpoint("chat-prod").fingerprint()
        b = parse_settings(GOOD, environ={**ENV, "LLM_KEY": "sk-other"}).endpoint("chat-prod")
        assert a == b.fingerprint()

    def test_env_default_is_used_when_unset(self) -> None:
        """`${VAR:-default}` falls back to its default."""
        s = parse_settings('storage: {url: "${DB_URL:-sqlite:///x.db}"}', environ={})
        assert s.storage.url == "sqlite:///x.db"

    def test_relative_data_path_resolves_against_config_folder(self, tmp_path: Path) -> None:
        """Benchmark data paths are relative to the config file, not the working directory."""
        cfg = tmp_path / "conf" / "monitor.yaml"
        cfg.parent.mkdir()
        cfg.write_text(GOOD)
        s = load_settings(cfg, environ=ENV)
        assert s.benchmark("support-intents").data == str(cfg.parent / "intents.jsonl")
        assert s.secrets == {"tok-123456", "sk-secret-abcdef"}


class TestErrors:
    def test_bad_duration_names_line_and_field(self) -> None:
        """A bad duration is reported with file, line and field path."""
        msg = error_of(GOOD.replace("timeout: 30s", "timeout: abc"))
        assert msg.startswith("monitor.yaml:12: endpoints[0].timeout: invalid duration 'abc'")

    def test_unknown_key_is_rejected(self) -> None:
        """Unknown keys are errors, not silently ignored."""
        msg = error_of(GOOD.replace("retries: 3", "retries: 3\n    retires: 4"))
        assert "monitor.yaml:14: endpoints[0].retires: unknown key" in msg

    def test_missing_env_var_is_named(self) -> None:
        """A missing environment variable is named with its location."""
        msg = error_of(GOOD, environ={"MONITOR_API_TOKEN": "x"})
        assert msg == (
            "monitor.yaml:8: endpoints[0].headers.Authorization: "
            "environment variable LLM_KEY is not set"
        )

    def test_monitor_naming_missing_endpoint(self) -> None:
        """A monitor that names an undefined endpoint points at that list entry."""
        msg = error_of(GOOD.replace("[chat-prod, legacy-api]", "[chat-prod, nope]"))
        assert msg == "monitor.yaml:28: monitors[0].endpoints[1]: unknown endpoint 'nope'"

    def test_duplicate_names(self) -> None:
        """Two endpoints with one name are an error on the second."""
        msg = error_of(GOOD.replace("name: legacy-api", "name: chat-prod"))
        assert msg.splitlines() == [
            "monitor.yaml:14: endpoints[1].name: duplicate name 'chat-prod'",
            "monitor.yaml:28: monitors[0].endpoints[1]: unknown endpoint 'legacy-api'",
        ]

    def test_duplicate_yaml_key(self) -> None:
        """A key given twice in one mapping is an error instead of last-one-wins."""
        msg = error_of(GOOD.replace("retries: 3", "retries: 3\n    retries: 5"))
        assert msg == "monitor.yaml:14: endpoints[0].retries: duplicate key"

    def test_yaml_syntax_error_has_line(self) -> None:
        """Broken YAML reports the line of the problem."""
        msg = error_of("endpoints:\n  - name: [unclosed\n")
        assert msg.startswith("monitor.yaml:3: invalid YAML")

    def test_bad_scorer_parameter(self) -> None:
        """A scorer with an invalid regex fails at load time with its location."""
        msg = error_of(GOOD.replace('"^(refund|billing|other)$"', '"("'))
        assert msg.startswith("monitor.yaml:24: benchmarks[0].scorers[1]: regex")

    def test_unknown_scorer(self) -> None:
        """An unknown scorer kind lists the known ones."""
        msg = error_of(GOOD.replace("scorers: [exact_match,", "scorers: [exact_matc,"))
        assert "benchmarks[0].scorers[0]: unknown scorer 'exact_matc' (known:" in msg

    def test_type_specific_required_fields(self) -> None:
        """An http-json endpoint without a response path says what it needs."""
        msg = error_of(GOOD.replace("    response: $.result.label\n", ""))
        assert msg == "monitor.yaml:14: endpoints[1]: type http-json requires: response"

    def test_bad_cron_and_baseline(self) -> None:
        """Malformed schedules and baselines are both reported, sorted by line."""
        text = GOOD.replace('"*/30 * * * *"', '"*/30 * *"').replace("rolling:5", "rolling:x")
        lines = error_of(text).splitlines()
        assert lines[0].startswith("monitor.yaml:29: monitors[0].schedule: invalid cron")
        assert lines[1].startswith("monitor.yaml:30: monitors[0].drift.baseline: invalid baseline")

    def test_wrong_type(self) -> None:
        """A string where a number belongs names the field."""
        msg = error_of(GOOD.replace("concurrency: 16", "concurrency: lots"))
        assert msg.startswith("monitor.yaml:10: endpoints[0].concurrency:")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config path that does not exist is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config"):
            load_settings(tmp_path / "nope.yaml")


class TestScalars:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30s", 30), ("15m", 900), ("1h30m", 5400), ("250ms", 0.25), (5, 5), ("2d", 172800)],
    )
    def test_durations(self, text: object, seconds: float) -> None:
        """Durations accept unit suffixes and bare seconds."""
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize("text", ["", "abc", "10x", "-5", "5s3", True])
    def test_bad_durations(self, text: object) -> None:
        """Anything else is rejected."""
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(text)

    @pytest.mark.parametrize(("text", "rate"), [("20/s", 20), ("600/m", 10), ("36/h", 0.01)])
    def test_rates(self, text: str, rate: float) -> None:
        """Rate limits convert to requests per second."""
        assert parse_rate(text) == pytest.approx(rate)

    @pytest.mark.parametrize("text", ["20", "0/s", "x/s", "5/y"])
    def test_bad_rates(self, text: str) -> None:
        """Malformed or zero rates are rejected."""
        with pytest.raises(ValueError, match="invalid rate limit"):
            parse_rate(text)
