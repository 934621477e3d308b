"""Sandboxed templates: rendering, missing fields and escape attempts."""

from __future__ import annotations

import pytest

from monitor.templating import Template


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
