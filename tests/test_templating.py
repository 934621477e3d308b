"""Sandboxed templates: rendering, missing fields and escape attempts."""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import pytest

from monitor.benchmarks import load_benchmark
from monitor.config import check_body_templates, load_settings
from monitor.errors import ConfigError
from monitor.templating import Template, TemplateLimitError, TemplateLimits


class TestTemplate:
    def test_renders_fields_and_plain_json(self) -> None:
        """`tojson` writes plain JSON (no HTML escaping) for request bodies."""
        t = Template('{"text": {{ text | tojson }}}')
        assert t.render({"text": 'a<b&"c'}) == '{"text": "a<b&\\"c"}'
        assert t.fields == {"text"}

    def test_missing_fields_are_listed(self) -> None:
        """The fields a template reads but an item lacks are reported, sorted."""
        t = Template("{{ b }} {{ a }} {{ c }}")
        assert t.missing_fields({"c": 1}) == ["a", "b"]

    @pytest.mark.parametrize("source", ["{{ missing }}", "{{ missing | tojson }}"])
    def test_missing_field_at_render_is_value_error(self, source: str) -> None:
        """Rendering with a missing field raises ValueError naming it."""
        with pytest.raises(ValueError, match="'missing' is undefined"):
            Template(source).render({})

    @pytest.mark.parametrize(
        "source",
        [
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ text.__class__ }}",
            "{{ cycler.__init__.__globals__ }}",
            "{{ text.format.__globals__ }}",
            "{% set x = [].append(1) %}{{ x }}",
        ],
    )
    def test_escape_attempts_are_blocked(self, source: str) -> None:
        """Attribute and mutation escapes fail inside the sandbox instead of running."""
        with pytest.raises(ValueError, match="template error"):
            Template(source).render({"text": "hi"})

    def test_syntax_error_is_value_error(self) -> None:
        """A template that does not parse is rejected when compiled."""
        with pytest.raises(ValueError, match="invalid template"):
            Template("{{ unclosed ")


# Hostile templates: each must fail with a limit (or a clean error) quickly and in little memory.
HOSTILE = {
    "nested_loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    ),
    "nested_silent_loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "string_times_huge": "{{ 'x' * 1000000000 }}",
    "list_times_huge": "{{ [1, 2] * 1000000000 }}",
    "center_huge": "{{ 'x'|center(999999999) }}",
    "method_width": "{{ 'x'.ljust(999999999) }}",
    "format_width": "{{ '{:>999999999}'.format(1) }}",
    "format_repeat": "{{ ('{0}' * 5000).format('y' * 1000) }}",
    "percent_width": "{{ '%999999999d' % 1 }}",
    "format_filter_star": "{{ '%*d'|format(999999999, 1) }}",
    "concat_doubling": (
        "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}"
    ),
    "plus_doubling": (
        "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}"
    ),
    "shared_list_doubling": (
        "{% set ns = namespace(x='ab') %}{% for i in range(60) %}"
        "{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x|tojson }}"
    ),
    "integer_squaring": (
        "{% set ns = namespace(x=3) %}{% for i in range(50) %}"
        "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}"
    ),
    "power_tower": "{{ 2 ** 100000000 }}",
    "macro_recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "macro_binary_tree": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}"
    ),
    "recursive_loop": "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "join_huge_separator": "{{ range(100000)|join('y' * 100000) }}",
    "replace_amplifies": "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}",
    "replace_empty": "{{ ('x' * 100000)|replace('', 'y' * 1000) }}",
    "indent_huge": "{{ ('x\n' * 100000)|indent('y' * 1000) }}",
    "wordwrap_huge": "{{ ('x ' * 100000)|wordwrap(1, true, 'y' * 1000) }}",
    "scan_in_loop": (
        "{% set big = 'x' * 900000 %}{% for i in range(99999) %}"
        "{% if 'zz' in big %}{% endif %}{% endfor %}"
    ),
    "sort_in_loop": "{% for i in range(1000) %}{{ range(100000)|list|sort|length }}{% endfor %}",
    "upper_in_loop": (
        "{% set big = 'x' * 900000 %}{% for i in range(99999) %}{% set y = big|upper %}{% endfor %}"
    ),
    "sum_of_lists": "{{ range(100000)|batch(1)|sum(start=[]) }}",
    "slice_many": "{{ range(10)|slice(999999)|list|length }}",
    "static_text_in_macro": (
        "{% macro m() %}{% for i in range(100000) %}" + "s" * 2000 + "{% endfor %}{% endmacro %}"
        "{{ m()|length }}"
    ),
    "deep_parentheses": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "long_sum": "{{ " + "+".join(["1"] * 15000) + " }}",
    "lipsum_gone": "{{ lipsum(100000) }}",
}


class TestLimits:
    """Rendering is bounded in work and size (monitor/templating.py)."""

    @pytest.mark.parametrize("name", sorted(HOSTILE))
    def test_hostile_template_fails_fast_and_small(self, name: str) -> None:
        """A hostile template fails with a ValueError within 2 s of CPU and 50 MB of
        allocations (timed untraced: tracing allocations slows Python several times)."""
        start = time.process_time()
        with pytest.raises(ValueError, match="template"):
            Template(HOSTILE[name]).render({"text": "hello"})
        elapsed = time.process_time() - start
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="template"):
                Template(HOSTILE[name]).render({"text": "hello"})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert elapsed < 2.0, f"{name}: {elapsed:.2f} s of CPU"
        assert peak < 50e6, f"{name}: {peak / 1e6:.0f} MB allocated"

    def test_loops_over_the_operation_limit_name_it(self) -> None:
        """Nested loops fail on the operation limit, naming the setting."""
        with pytest.raises(TemplateLimitError, match=r"more than 100000 operations"):
            Template(HOSTILE["nested_loops"]).render({})

    def test_output_over_the_size_limit_names_it(self) -> None:
        """An output longer than max_output fails, naming the setting, before it is built."""
        limits = TemplateLimits(max_output=1000, max_operations=100_000)
        with pytest.raises(TemplateLimitError, match=r"over 1000 characters.*max_output"):
            Template("{{ 'x' * 1001 }}", limits).render({})
        with pytest.raises(TemplateLimitError, match=r"the output would be over 1000"):
            Template("{% for i in range(30) %}{{ text }}{% endfor %}", limits).render(
                {"text": "y" * 40}
            )
        assert Template("{{ 'x' * 1000 }}", limits).render({}) == "x" * 1000

    def test_limits_are_configurable(self) -> None:
        """A template refused under a small operation limit renders under a larger one."""
        source = "{% for i in range(2000) %}{{ i }}{% endfor %}"
        with pytest.raises(TemplateLimitError):
            Template(source, TemplateLimits(max_operations=1000)).render({})
        out = Template(source, TemplateLimits(max_operations=20_000)).render({})
        assert out == "".join(str(i) for i in range(2000))

    def test_a_field_over_the_size_limit_is_refused(self) -> None:
        """An item field longer than max_output cannot be written into the output."""
        limits = TemplateLimits(max_output=1000)
        with pytest.raises(TemplateLimitError, match="max_output"):
            Template("{{ text }}", limits).render({"text": "z" * 1001})

    def test_limits_are_deterministic(self) -> None:
        """The same template over the same item fails at the same point every time."""
        source = "{% for i in range(40000) %}{{ i }}{% endfor %}"
        messages = set()
        for _ in range(3):
            with pytest.raises(TemplateLimitError) as caught:
                Template(source).render({})
            messages.add(str(caught.value))
        assert len(messages) == 1

    @pytest.mark.parametrize(
        ("source", "fields", "expected"),
        [
            ("{{ a ~ b ~ 1 }}", {"a": "x", "b": "y"}, "xy1"),
            (
                "{{ 1 < n < 3 }} {{ 3 < n < 1 }} {{ 'a' in t }}",
                {"n": 2, "t": "cat"},
                "True False True",
            ),
            (
                "{% for x in xs if x > 1 %}{{ loop.index }}/{{ loop.length }} {% endfor %}",
                {"xs": [1, 2, 3]},
                "1/2 2/2 ",
            ),
            (
                "{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}",
                {"d": {"b": 2, "a": 1}},
                "a=1;b=2;",
            ),
            (
                "{% macro m(x) %}<{{ x }}{{ caller() if caller is defined }}>{% endmacro %}"
                "{{ m(1) }}{% call m(2) %}c{% endcall %}",
                {},
                "<1><2c>",
            ),
            (
                "{{ '%s-%d' % ('a', 3) }} {{ '{}!'.format(t) }} {{ '%05.1f'|format(2.5) }}",
                {"t": "hi"},
                "a-3 hi! 002.5",
            ),
            (
                "{{ xs|map('upper')|join(',') }} {{ xs|select('ne', 'b')|list|length }}",
                {"xs": ["a", "b"]},
                "A,B 1",
            ),
            (
                "{{ (t * 3)|replace('a', 'o')|indent(2) }} {{ 2 ** 10 }} {{ [1] * 3 }}",
                {"t": "ab"},
                "obobob 1024 [1, 1, 1]",
            ),
            (
                "{% set ns = namespace(n=0) %}{% for i in range(5) %}"
                "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
                {},
                "10",
            ),
            (
                "{{ xs|sum }} {{ xs|batch(2)|list }} {{ t|center(5) }}|",
                {"xs": [1, 2, 3], "t": "x"},
                "6 [[1, 2], [3]]   x  |",
            ),
        ],
    )
    def test_ordinary_templates_render_as_before(
        self, source: str, fields: dict[str, object], expected: str
    ) -> None:
        """Loops, macros, comparisons, `~`, formats and filters keep Jinja's results."""
        assert Template(source).render(fields) == expected

    def test_fields_are_still_found(self) -> None:
        """The instrumentation adds no variables: only the item fields are reported."""
        t = Template("{% for x in xs %}{{ x ~ y }}{% endfor %}{% if a in b %}{% endif %}")
        assert t.fields == {"xs", "y", "a", "b"}


class TestCheckBodyTemplates:
    """`check_body_templates` renders http-json bodies over the first items at check time."""

    CONFIG = """\
endpoints:
  - name: api
    type: http-json
    url: http://127.0.0.1:9/predict
    body: '{BODY}'
    response: $.label
benchmarks:
  - name: b
    data: items.jsonl
    prompt: "Q: {{ text }}"
    scorers: [exact_match]
monitors:
  - name: m
    benchmark: b
    endpoints: [api]
"""

    def check(self, tmp_path: Path, body: str, templates: str = "") -> None:
        (tmp_path / "items.jsonl").write_text('{"id": 1, "text": "hi"}\n')
        path = tmp_path / "monitor.yaml"
        path.write_text(self.CONFIG.replace("{BODY}", body) + templates)
        settings = load_settings(path, environ={})
        check_body_templates(settings, [load_benchmark(b) for b in settings.benchmarks])

    def test_a_good_body_passes(self, tmp_path: Path) -> None:
        """A body that renders to JSON, with the item's prompt, passes."""
        self.check(tmp_path, '{"q": {{ prompt | tojson }}, "t": {{ text | tojson }}}')

    def test_a_body_over_the_work_limit_names_file_and_line(self, tmp_path: Path) -> None:
        """Nested loops in a body are a config error at the body's line, naming the limit."""
        body = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
        with pytest.raises(ConfigError) as caught:
            self.check(tmp_path, body)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / 'monitor.yaml'}:5: endpoints[0].body: item '1'")
        assert "more than 100000 operations (templates.max_operations)" in message

    def test_the_configured_limits_apply(self, tmp_path: Path) -> None:
        """A body within the defaults fails under a smaller `templates.max_output`."""
        body = '{"t": "{{ text * 600 }}"}'
        self.check(tmp_path, body)
        with pytest.raises(ConfigError, match=r"templates\.max_output"):
            self.check(tmp_path, body, "templates: {max_output: 1000}\n")

    @pytest.mark.parametrize(
        ("body", "problem"),
        [("{{ nope }}", "the body needs field(s) 'nope'"), ("{{ text }}", "not valid JSON")],
    )
    def test_missing_fields_and_bad_json_are_reported(
        self, tmp_path: Path, body: str, problem: str
    ) -> None:
        """A body that would fail on every item is reported with the item and benchmark."""
        with pytest.raises(ConfigError, match=re.escape(problem)):
            self.check(tmp_path, body)
