"""Configuration loading: validation, ${ENV} secrets, and file:line: field error messages."""

from __future__ import annotations

import math
import re
import socket
import time
from pathlib import Path

import pytest

from monitor.bounded_yaml import load
from monitor.config import load_settings, parse_duration, parse_rate, parse_settings
from monitor.errors import ConfigError
from monitor.scheduling import check_schedules
from monitor.templating import DEFAULT_LIMITS, TemplateLimits

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
            "monitor.yaml:14: endpoints[1].name: duplicate name 'chat-prod' (first at line 4)",
            "monitor.yaml:28: monitors[0].endpoints[1]: unknown endpoint 'legacy-api'",
        ]

    def test_duplicate_yaml_key(self) -> None:
        """A key given twice in one mapping is an error instead of last-one-wins."""
        msg = error_of(GOOD.replace("retries: 3", "retries: 3\n    retries: 5"))
        assert msg == "monitor.yaml:14: endpoints[0].retries: duplicate key (first at line 13)"

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
        assert lines[0].startswith("monitor.yaml:29: monitors[0].schedule.cron: invalid cron")
        assert lines[1].startswith("monitor.yaml:30: monitors[0].drift.baseline: invalid baseline")

    def test_min_baseline_runs_beyond_window(self) -> None:
        """Requiring more baseline runs than the window holds is an error naming both."""
        text = GOOD.replace(
            'baseline: "rolling:5",', 'baseline: "rolling:5", min_baseline_runs: 8,'
        )
        assert error_of(text) == (
            "monitor.yaml:30: monitors[0].drift: min_baseline_runs (8) exceeds the rolling "
            "window (rolling:5)"
        )

    def test_rolling_window_defaults(self) -> None:
        """Without `drift:` a monitor judges over up to 20 runs, from 5 runs on."""
        text = re.sub(r"    drift: \{.*\}\n", "", GOOD)
        drift = (
            parse_settings(text, source="monitor.yaml", environ=ENV).monitor("intents-prod").drift
        )
        assert (drift.baseline, drift.rolling_window, drift.required_runs) == ("rolling:20", 20, 5)
        assert drift.model_copy(update={"baseline": "rolling:3"}).required_runs == 3

    def test_wrong_type(self) -> None:
        """A string where a number belongs names the field."""
        msg = error_of(GOOD.replace("concurrency: 16", "concurrency: lots"))
        assert msg.startswith("monitor.yaml:10: endpoints[0].concurrency:")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config path that does not exist is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config"):
            load_settings(tmp_path / "nope.yaml")


class TestErrorShapes:
    """Edge cases of the `file:line: field: message` shape (tests/data/bad has the corpus)."""

    def test_empty_file_is_an_error(self) -> None:
        """An empty (or comment-only) file is refused instead of meaning "no monitors"."""
        assert error_of("# nothing yet\n").startswith(
            "monitor.yaml:1: (top level): the file is empty"
        )

    @pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("hello\n", "a string")])
    def test_top_level_must_be_a_mapping(self, text: str, kind: str) -> None:
        """A document that is not a mapping says what it is instead."""
        assert (
            error_of(text)
            == f"monitor.yaml:1: (top level): expected a mapping of sections, got {kind}"
        )

    def test_tab_indentation_gets_a_hint(self) -> None:
        """A tab in the indentation names line and column and says to use spaces."""
        assert error_of("server:\n\tlisten: x\n") == (
            "monitor.yaml:2: invalid YAML: found character '\\t' that cannot start any token "
            "(column 1; indent with spaces: YAML does not allow tabs)"
        )

    def test_second_document_is_an_error(self) -> None:
        """Two YAML documents in one file are refused, naming where the second starts."""
        assert error_of("storage: {}\n---\nserver: {}\n") == (
            "monitor.yaml:2: invalid YAML: expected a single document in the stream (line 1), "
            "but found another document (column 1)"
        )

    def test_control_character_is_an_error_with_its_line(self) -> None:
        """A control character (which PyYAML reports without a mark) names its line."""
        assert error_of("server:\n  listen: 'a\x00b'\n") == (
            "monitor.yaml:2: invalid YAML: unacceptable character #x0000 "
            "(special characters are not allowed)"
        )

    def test_non_utf8_file_names_its_line(self, tmp_path: Path) -> None:
        """A config file that is not UTF-8 is a ConfigError naming the line, not a traceback."""
        cfg = tmp_path / "monitor.yaml"
        cfg.write_bytes("server: {}\n# caf\u00e9\n".encode("latin-1"))
        with pytest.raises(ConfigError) as info:
            load_settings(cfg)
        assert str(info.value) == f"{cfg}:2: not valid UTF-8: invalid continuation byte"

    def test_invalid_name_says_what_is_allowed(self) -> None:
        """A name with forbidden characters gets the rule, not a regular expression."""
        msg = error_of(GOOD.replace("name: chat-prod", "name: chat prod", 1))
        assert msg.splitlines()[0] == (
            "monitor.yaml:4: endpoints[0].name: invalid name 'chat prod' (1-100 characters of "
            "A-Z a-z 0-9 _ . : -, starting with a letter or digit)"
        )

    def test_duplicate_receiver_points_at_alerting_receivers(self) -> None:
        """Receivers live under `alerting`, and so does the error about a duplicate one."""
        text = GOOD.replace(
            '      webhook: {url: "https://hooks.internal/monitor"}\n',
            '      webhook: {url: "https://hooks.internal/monitor"}\n'
            '    - name: oncall\n      slack: {url: "https://hooks.internal/slack"}\n',
        )
        assert error_of(text) == (
            "monitor.yaml:36: alerting.receivers[1].name: duplicate name 'oncall' "
            "(first at line 34)"
        )

    def test_union_field_error_has_a_plain_path(self) -> None:
        """A bad `input.field` is one error at that path, without pydantic's union tags."""
        text = GOOD.replace(
            "    response: $.result.label\n",
            "    response: $.result.label\n    input: {field: 3}\n",
        )
        assert error_of(text) == (
            "monitor.yaml:19: endpoints[1].input.field: "
            "expected a field name or a list of field names, got 3"
        )

    def test_zero_timeout_is_refused(self) -> None:
        """A timeout of zero would fail every request, so it is an error."""
        assert error_of(GOOD.replace("timeout: 30s", "timeout: 0s")) == (
            "monitor.yaml:12: endpoints[0].timeout: Input should be greater than 0"
        )

    def test_templates_are_compiled_at_load_time(self) -> None:
        """Prompt and http-json body templates that do not parse name their field."""
        text = GOOD.replace("{{ text | tojson }}}", "{{ text | }}}").replace(
            '"Classify: {{ text }}"', '"Classify: {{ text"'
        )
        lines = error_of(text).splitlines()
        assert lines[0].startswith("monitor.yaml:17: endpoints[1].body: invalid template: ")
        assert lines[1].startswith("monitor.yaml:22: benchmarks[0].prompt: invalid template: ")

    def test_schedule_errors_name_their_key(self) -> None:
        """A zero `every` is reported at `schedule.every`, not at the whole schedule."""
        text = GOOD.replace('{cron: "*/30 * * * *"}', "{every: 0s}")
        assert error_of(text) == "monitor.yaml:29: monitors[0].schedule.every: must be positive"

    def test_benchmark_settings_know_their_location(self, tmp_path: Path) -> None:
        """Each benchmark remembers `file:line: benchmarks[i].field` for later data errors."""
        cfg = tmp_path / "monitor.yaml"
        cfg.write_text(GOOD)
        bench = load_settings(cfg, environ=ENV).benchmarks[0]
        assert bench.where("data") == f"{cfg}:21: benchmarks[0].data"
        assert bench.where("prompt") == f"{cfg}:22: benchmarks[0].prompt"
        assert parse_settings(GOOD, environ=ENV).benchmarks[0].where("data") == (
            "<string>:21: benchmarks[0].data"
        )


class TestScheduleChecks:
    """`check_schedules` reads schedules as the scheduler will and names the failing key."""

    def problems(self, schedule: str) -> str:
        text = GOOD.replace('{cron: "*/30 * * * *"}', schedule)
        settings = parse_settings(text, source="monitor.yaml", environ=ENV)
        with pytest.raises(ConfigError) as info:
            check_schedules(settings)
        return str(info.value)

    def test_out_of_range_cron_names_the_cron_field(self) -> None:
        """Hour 25 is reported as the hour field of the cron expression."""
        assert self.problems('{cron: "0 25 * * *"}') == (
            "monitor.yaml:29: monitors[0].schedule.cron: invalid cron '0 25 * * *': hour field "
            "'25': the last value (25) is higher than the maximum value (23)"
        )

    def test_bad_month_name_names_the_month_field(self) -> None:
        """An unknown month name is reported as the month field."""
        assert self.problems('{cron: "0 9 * JAN-XYZ *"}').startswith(
            "monitor.yaml:29: monitors[0].schedule.cron: invalid cron '0 9 * JAN-XYZ *': "
            "month field 'JAN-XYZ': "
        )

    def test_huge_interval_and_jitter_are_refused(self) -> None:
        """Durations beyond the calendar are errors on their key instead of an OverflowError."""
        assert self.problems("{every: 1000000000000000}") == (
            "monitor.yaml:29: monitors[0].schedule.every: interval of 1e+15 seconds is too large"
        )
        assert self.problems("{every: 15m, jitter: 1000000000000}") == (
            "monitor.yaml:29: monitors[0].schedule.jitter: jitter of 1e+12 seconds is too large"
        )

    def test_unknown_time_zone_points_at_timezone_even_with_cron(self) -> None:
        """A bad time zone next to a good cron is reported at `schedule.timezone`."""
        msg = self.problems('\n      cron: "0 9 * * *"\n      timezone: Mars/Olympus')
        assert msg == (
            "monitor.yaml:31: monitors[0].schedule.timezone: unknown time zone 'Mars/Olympus' "
            "(expected an IANA name such as UTC or Europe/Berlin)"
        )


class TestScalars:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30s", 30), ("15m", 900), ("1h30m", 5400), ("250ms", 0.25), (5, 5), ("2d", 172800)],
    )
    def test_durations(self, text: object, seconds: float) -> None:
        """Durations accept unit suffixes and bare seconds."""
        assert parse_duration(text) == pytest.approx(seconds)

    @pytest.mark.parametrize("text", ["", "abc", "10x", "-5", "5s3", True, -1, math.inf, math.nan])
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


def alias_bomb(levels: int = 8, width: int = 9) -> str:
    """``levels`` nested anchors of ``width`` aliases each: width**levels nodes expanded."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)
    ]
    return "\n".join(lines) + "\n"


class TestYamlLimits:
    """YAML is composed within limits (monitor/bounded_yaml.py), with file:line errors."""

    def test_alias_bomb_is_refused_at_its_alias_quickly(self) -> None:
        """Eight nested anchors of nine aliases are refused at the crossing alias in < 1 s."""
        start = time.process_time()
        message = error_of(alias_bomb())
        assert time.process_time() - start < 1.0
        assert message.startswith(
            "monitor.yaml:6: invalid YAML: the document expands to more than 100000 nodes "
            "(at alias *a4)"
        ), message

    def test_aliases_within_the_limit_still_work(self) -> None:
        """Anchors, aliases and merge keys expand as YAML defines them."""
        text = (
            "endpoints:\n"
            "  - &common\n"
            "    {name: a, type: openai-chat, model: m, timeout: 10s, url: 'http://127.0.0.1:1'}\n"
            "  - <<: *common\n"
            "    name: b\n"
            "    timeout: 20s\n"
        )
        settings = parse_settings(text, environ={})
        assert [(e.name, e.timeout, e.model) for e in settings.endpoints] == [
            ("a", 10.0, "m"),
            ("b", 20.0, "m"),
        ]

    def test_recursive_alias_is_refused(self) -> None:
        """An alias inside its own anchor has no expansion and names its line."""
        assert error_of("storage: &s\n  url: [*s]\n").startswith(
            "monitor.yaml:2: invalid YAML: recursive alias *s (it refers to itself)"
        )

    def test_deep_nesting_is_refused(self) -> None:
        """100,000 nested lists are refused at the 65th level, not with a RecursionError."""
        message = error_of("storage: " + "[" * 100_000 + "]" * 100_000 + "\n")
        assert message.startswith("monitor.yaml:1: invalid YAML: nested more than 64 levels")

    def test_expanded_text_is_capped(self) -> None:
        """A long string aliased many times is refused on its expanded characters."""
        text = f"a: &a '{'x' * 1_000_000}'\nb: [" + ", ".join(["*a"] * 20) + "]\n"
        assert "expands to more than 16777216 characters" in error_of(text)

    def test_huge_file_is_refused_before_parsing(self) -> None:
        """A config over 8 MiB is refused by its size."""
        message = error_of("# " + "x" * (8 * 1024 * 1024) + "\n")
        assert message.startswith("monitor.yaml:1: invalid YAML: the file is ")

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("storage: !!python/object:os.system {}\n", "monitor.yaml:1: storage: invalid YAML"),
            ("storage: {url: !secret x}\n", "monitor.yaml:1: storage.url: invalid YAML value"),
            ("storage: !!set {a, b}\n", "monitor.yaml:1: storage: invalid YAML value"),
            ("endpoints:\n  - <<: 3\n", "monitor.yaml:2: endpoints[0]: a merge key `<<` takes"),
        ],
    )
    def test_tags_and_bad_merges_name_their_line(self, text: str, expected: str) -> None:
        """Tags that are not plain data and a merge of a scalar are refused with their line."""
        assert error_of(text).startswith(expected)

    def test_bounded_load_gives_plain_data(self) -> None:
        """`bounded_yaml.load` reads any other YAML with the same limits."""
        assert load("a: &x [1, 2]\nb: *x\n", "f.yaml") == {"a": [1, 2], "b": [1, 2]}
        with pytest.raises(ConfigError, match=r"^f\.yaml:6: invalid YAML: the document expands"):
            load(alias_bomb(), "f.yaml")


class TestTemplateSettings:
    """The `templates` section sets the caps every template of the config renders within."""

    def test_defaults_and_overrides_reach_every_template(self) -> None:
        """Benchmarks and endpoints carry the section's limits; the defaults when absent."""
        settings = parse_settings(GOOD, environ=ENV)
        assert settings.benchmarks[0].template_limits == DEFAULT_LIMITS
        text = GOOD + "templates: {max_output: 5000, max_operations: 700}\n"
        settings = parse_settings(text, environ=ENV)
        expected = TemplateLimits(max_output=5000, max_operations=700)
        assert settings.benchmarks[0].template_limits == expected
        assert settings.endpoints[1].template_limits == expected

    def test_limits_survive_path_resolution(self, tmp_path: Path) -> None:
        """load_settings keeps the limits on the benchmarks it copies to resolve paths."""
        path = tmp_path / "monitor.yaml"
        path.write_text(GOOD + "templates: {max_operations: 700}\n")
        settings = load_settings(path, environ=ENV)
        assert settings.benchmarks[0].template_limits.max_operations == 700

    def test_limits_are_validated(self) -> None:
        """A limit below its floor is a field error with its line."""
        message = error_of(GOOD + "templates: {max_operations: 1}\n")
        line = GOOD.count("\n") + 1
        assert message.startswith(f"monitor.yaml:{line}: templates.max_operations: Input should")


class TestManyProblems:
    """A file with thousands of bad entries gets a bounded report, quickly."""

    def test_problems_past_100_are_counted_not_listed(self) -> None:
        """20,000 bad endpoints give 100 lines and a count of the rest, in under 2 s."""
        start = time.process_time()
        message = error_of("endpoints: [" + ", ".join(["1"] * 20_000) + "]\n")
        assert time.process_time() - start < 2.0
        lines = message.splitlines()
        assert len(lines) == 101
        assert lines[0].startswith("monitor.yaml:1: endpoints[0]: Input should be")
        assert lines[-1] == "monitor.yaml: ... and 19900 more problems"


class TestOneYamlReader:
    """Every YAML the project reads goes through monitor/bounded_yaml.py."""

    def test_no_other_module_parses_yaml(self) -> None:
        """No module of the product, its deploy files or scripts calls PyYAML's loaders."""
        root = Path(__file__).resolve().parents[1]
        loader = re.compile(r"yaml\.(safe_|full_|unsafe_)?(load|compose|parse)(_all)?\(")
        offenders = [
            str(path.relative_to(root))
            for folder in ("monitor", "deploy", "scripts", "benchmarks", "dashboards")
            for path in sorted((root / folder).rglob("*.py"))
            if path.name != "bounded_yaml.py" and loader.search(path.read_text("utf-8"))
        ]
        assert offenders == []


class TestPublicUrl:
    """`server.public_url` is where links to the pages and the API start."""

    def base_url(self, server: str) -> str:
        text = GOOD.replace(
            'server: {listen: "127.0.0.1:9464", api_token: "${MONITOR_API_TOKEN}"}', server
        )
        return parse_settings(text, source="monitor.yaml", environ=ENV).server.base_url

    def test_defaults_to_the_listen_address(self) -> None:
        """Without public_url, links go to http://{listen}."""
        assert self.base_url('server: {listen: "127.0.0.1:9999"}') == "http://127.0.0.1:9999"

    def test_a_wildcard_listen_address_becomes_the_host_name(self) -> None:
        """0.0.0.0 is nobody's address: the machine's host name stands in for it."""
        assert self.base_url('server: {listen: "0.0.0.0:9464"}') == (
            f"http://{socket.gethostname()}:9464"
        )

    def test_public_url_wins_without_its_trailing_slash(self) -> None:
        """A reverse proxy's URL, with a path prefix, is kept as given."""
        url = self.base_url('server: {public_url: "https://ml.example.org/monitor/"}')
        assert url == "https://ml.example.org/monitor"

    @pytest.mark.parametrize("bad", ["ml.example.org", "ftp://x", "https://a b", "https://x?y=1"])
    def test_a_bad_public_url_names_its_line(self, bad: str) -> None:
        """Anything but an http(s) URL without query or fragment is refused."""
        msg = error_of(GOOD.replace("api_token:", f'public_url: "{bad}", api_token:'))
        assert msg.startswith("monitor.yaml:2: server.public_url: invalid public_url")
