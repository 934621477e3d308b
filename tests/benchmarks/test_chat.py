"""Chat-structured benchmarks: system, few_shot and conversation, from config to item messages."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from monitor.benchmarks import load_benchmark
from monitor.config import load_settings
from monitor.core.model import Benchmark, ChatMessage
from monitor.errors import BenchmarkError, ConfigError
from tests.benchmarks.test_parquet import write_parquet

ROWS: list[dict[str, Any]] = [
    {
        "id": "a",
        "text": "charged twice",
        "label": "billing",
        "turns": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "I was charged twice"},
        ],
    },
]


def write_benchmark(folder: Path, body: str, rows: list[dict[str, Any]] = ROWS) -> Path:
    """A config with one benchmark (``body`` holds its chat keys) over ``rows``."""
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    config = folder / "monitor.yaml"
    text = "benchmarks:\n  - name: chat\n    data: items.jsonl\n    scorers: [exact_match]\n"
    config.write_text(text + textwrap.indent(textwrap.dedent(body), "    "), "utf-8")
    return config


def load(folder: Path, body: str, rows: list[dict[str, Any]] = ROWS) -> Benchmark:
    return load_benchmark(load_settings(write_benchmark(folder, body, rows)).benchmarks[0])


def config_error(folder: Path, body: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(write_benchmark(folder, body))
    return str(info.value)


def data_error(folder: Path, body: str, rows: list[dict[str, Any]] = ROWS) -> str:
    with pytest.raises(BenchmarkError) as info:
        load(folder, body, rows)
    return str(info.value)


class TestMessages:
    """Items of a chat benchmark carry the whole chat, in a fixed order."""

    def test_order_is_system_few_shot_conversation_prompt(self, tmp_path: Path) -> None:
        """System, few-shot, the item's conversation, then the prompt as the user's turn."""
        bench = load(
            tmp_path,
            """\
            system: "Answer with one word."
            few_shot:
              - {role: user, content: "refund please"}
              - {role: assistant, content: refund}
            conversation: turns
            prompt: "So: {{ text }}?"
            """,
        )
        assert bench.items[0].messages == (
            ChatMessage("system", "Answer with one word."),
            ChatMessage("user", "refund please"),
            ChatMessage("assistant", "refund"),
            ChatMessage("user", "hello"),
            ChatMessage("assistant", "Hi, how can I help?"),
            ChatMessage("user", "I was charged twice"),
            ChatMessage("user", "So: charged twice?"),
        )
        assert bench.items[0].prompt == "So: charged twice?"

    def test_plain_benchmark_has_no_messages(self, tmp_path: Path) -> None:
        """Without chat keys, items keep only their prompt (one user message when sent)."""
        bench = load(tmp_path, 'prompt: "{{ text }}"\n')
        assert bench.items[0].messages == ()

    def test_every_chat_key_is_part_of_the_version(self, tmp_path: Path) -> None:
        """Changing the system text, a few-shot message or the conversation field re-versions."""
        rows = [{**ROWS[0], "other": ROWS[0]["turns"][:1]}]
        bodies = [
            'prompt: "{{ text }}"\n',
            'prompt: "{{ text }}"\nsystem: "Be brief."\n',
            'prompt: "{{ text }}"\nsystem: "Be briefer."\n',
            'prompt: "{{ text }}"\nsystem: "Be brief."\nfew_shot: [{role: user, content: hi}]\n',
            'prompt: "{{ text }}"\nsystem: "Be brief."\nfew_shot: [{role: user, content: yo}]\n',
            "conversation: turns\n",
            "conversation: other\n",
        ]
        versions = []
        for i, body in enumerate(bodies):
            folder = tmp_path / str(i)
            folder.mkdir()
            versions.append(load(folder, body, rows).version)
        assert len(set(versions)) == len(bodies)
        again = tmp_path / "again"
        again.mkdir()
        assert load(again, bodies[1], rows).version == versions[1]


class TestConfigErrors:
    """Bad chat keys are config errors naming file:line: field."""

    def test_few_shot_role(self, tmp_path: Path) -> None:
        """Few-shot messages are user or assistant turns."""
        message = config_error(
            tmp_path,
            """\
            prompt: "{{ text }}"
            few_shot:
              - {role: user, content: hi}
              - {role: tool, content: "{}"}
            """,
        )
        assert message == (
            f"{tmp_path / 'monitor.yaml'}:8: benchmarks[0].few_shot[1].role: "
            "Input should be 'user' or 'assistant'"
        )

    def test_few_shot_unknown_key(self, tmp_path: Path) -> None:
        """A misspelt key inside a few-shot message is named."""
        message = config_error(
            tmp_path, 'prompt: "{{ text }}"\nfew_shot:\n  - {role: user, contnet: hi}\n'
        )
        assert f"{tmp_path / 'monitor.yaml'}:7: benchmarks[0].few_shot[0].contnet: unknown key" in (
            message
        )

    def test_system_without_a_user_turn(self, tmp_path: Path) -> None:
        """A system prompt alone leaves the user nothing to say."""
        assert config_error(tmp_path, 'system: "Be brief."\n') == (
            f"{tmp_path / 'monitor.yaml'}:2: benchmarks[0]: `system` and `few_shot` need a "
            "`prompt` or a `conversation` for the user's turn"
        )

    def test_system_template_that_does_not_parse(self, tmp_path: Path) -> None:
        """Template syntax errors in system name that field."""
        message = config_error(tmp_path, 'prompt: "{{ text }}"\nsystem: "Be {{ brief"\n')
        assert message.startswith(
            f"{tmp_path / 'monitor.yaml'}:6: benchmarks[0].system: invalid template: "
        )

    def test_few_shot_template_that_does_not_parse(self, tmp_path: Path) -> None:
        """Template syntax errors in a few-shot message name its content."""
        message = config_error(
            tmp_path, 'prompt: "{{ text }}"\nfew_shot:\n  - {role: user, content: "{% if %}"}\n'
        )
        assert message.startswith(
            f"{tmp_path / 'monitor.yaml'}:7: benchmarks[0].few_shot[0].content: invalid template: "
        )


class TestDataErrors:
    """Items that do not fit the chat name the config field, then the data file and line."""

    def where(self, tmp_path: Path, field: str, line: int = 1) -> str:
        config = tmp_path / "monitor.yaml"
        data = (tmp_path / "items.jsonl").resolve()
        lines = {"conversation": 5, "system": 6, "few_shot": 6}
        return f"{config}:{lines[field]}: benchmarks[0].{field}: {data}:{line}: item 'a'"

    def test_system_template_uses_a_missing_field(self, tmp_path: Path) -> None:
        """A system template reading a field the item lacks is caught at load time."""
        message = data_error(tmp_path, 'prompt: "{{ text }}"\nsystem: "For {{ product }}."\n')
        assert message == (
            f"{tmp_path / 'monitor.yaml'}:6: benchmarks[0].system: "
            f"{(tmp_path / 'items.jsonl').resolve()}:1: system message uses field 'product' "
            "missing from item 'a'"
        )

    def test_missing_conversation_field(self, tmp_path: Path) -> None:
        """An item without the conversation field is named."""
        message = data_error(tmp_path, "conversation: history\n")
        assert message == f"{self.where(tmp_path, 'conversation')}: no conversation field 'history'"

    @pytest.mark.parametrize(
        ("turns", "problem"),
        [
            (
                "hello",
                "conversation field 'turns' must be a list of {role, content} messages, got "
                "string (CSV values are always text: use JSON lines or Parquet)",
            ),
            ([["user", "hi"]], "turns[0] must be a {role, content} object, got list"),
            (
                [{"role": "tool", "content": "{}"}],
                "turns[0].role must be one of system, developer, user, assistant, got 'tool'",
            ),
            ([{"role": "user", "content": None}], "turns[0].content must be a string, got null"),
            (
                [{"role": "user", "content": "hi", "name": "bob"}],
                "turns[0] has keys other than role and content ('name')",
            ),
        ],
    )
    def test_malformed_conversation(self, tmp_path: Path, turns: object, problem: str) -> None:
        """Each way a conversation can be malformed is reported with the message's index."""
        message = data_error(tmp_path, "conversation: turns\n", [{"id": "a", "turns": turns}])
        assert message == f"{self.where(tmp_path, 'conversation')}: {problem}"

    def test_conversation_ending_with_the_answer(self, tmp_path: Path) -> None:
        """A chat ending on an assistant turn would show the model the answer: refused."""
        turns = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
        message = data_error(tmp_path, "conversation: turns\n", [{"id": "a", "turns": turns}])
        assert message == (
            f"{self.where(tmp_path, 'conversation')}: the chat ends with a 'assistant' message, "
            "not the user's turn; set `prompt:` for the final user message, or drop a final "
            "assistant turn from the data (it may be the answer: give it its own field and "
            "name that in `reference:`)"
        )

    def test_csv_conversation_hint(self, tmp_path: Path) -> None:
        """A conversation read from CSV is text; the message says which formats hold lists."""
        (tmp_path / "items.csv").write_text('id,turns\na,"[]"\n', "utf-8")
        config = tmp_path / "monitor.yaml"
        config.write_text(
            "benchmarks:\n  - name: chat\n    data: items.csv\n    scorers: [exact_match]\n"
            "    conversation: turns\n",
            "utf-8",
        )
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(load_settings(config).benchmarks[0])
        assert str(info.value).endswith(
            "got string (CSV values are always text: use JSON lines or Parquet)"
        )


class TestParquetConversations:
    """Hub chat datasets keep conversations as Parquet lists of structs."""

    def test_parquet_message_structs_with_null_extras(self, tmp_path: Path) -> None:
        """A Parquet list of message structs works; keys that are null in a message are ignored."""
        turns = [
            {"role": "user", "content": "hi", "name": None},
            {"role": "assistant", "content": "hello", "name": "bot"},
            {"role": "user", "content": "refund?", "name": None},
        ]
        write_parquet(tmp_path / "data" / "test.parquet", [{"id": "a", "turns": turns[:1]}])
        config = tmp_path / "monitor.yaml"
        config.write_text(
            "benchmarks:\n  - name: chat\n    data: data\n    scorers: [exact_match]\n"
            "    conversation: turns\n",
            "utf-8",
        )
        bench = load_benchmark(load_settings(config).benchmarks[0])
        assert bench.items[0].messages == (ChatMessage("user", "hi"),)
        write_parquet(tmp_path / "data" / "test.parquet", [{"id": "a", "turns": turns}])
        with pytest.raises(
            BenchmarkError, match=r"turns\[1\] has keys other than role and content \('name'\)"
        ):
            load_benchmark(load_settings(config).benchmarks[0])
