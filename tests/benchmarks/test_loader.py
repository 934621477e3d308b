"""load_benchmark: format detection, content versions and the example datasets."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from monitor.benchmarks import load_benchmark
from monitor.benchmarks.loader import detect_format
from monitor.benchmarks.versioning import canonical_json
from monitor.config import BenchmarkSettings, load_settings, parse_settings
from monitor.core.model import Benchmark, ScorerSpec
from monitor.errors import BenchmarkError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXACT = ScorerSpec(kind="exact_match", name="exact_match")


def settings(path: Path, **overrides: Any) -> BenchmarkSettings:
    values: dict[str, Any] = {"name": "bench", "data": str(path), "scorers": [EXACT]}
    return BenchmarkSettings(**(values | overrides))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"id": "a", "text": "refund please", "label": "refund"},
    {"id": "b", "text": "double charge", "label": "billing"},
]


def version_of(path: Path, **overrides: Any) -> str:
    return load_benchmark(settings(path, **overrides)).version


class TestFormatDetection:
    """The format comes from `format:`, else from the extension, else a folder means hf."""

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("d.jsonl", "jsonl"),
            ("d.NDJSON", "jsonl"),
            ("d.csv", "csv"),
            ("d.tsv", "csv"),
            ("export.json", "labelstudio"),
            ("test-00000-of-00001.PARQUET", "parquet"),
        ],
    )
    def test_by_extension(self, tmp_path: Path, name: str, expected: str) -> None:
        """Known extensions map to their reader, case-insensitively."""
        path = tmp_path / name
        path.write_text("", encoding="utf-8")
        assert detect_format(path) == expected

    def test_a_folder_is_hf(self, tmp_path: Path) -> None:
        """A directory is a Hugging Face style dataset folder."""
        assert detect_format(tmp_path) == "hf"

    def test_unknown_extension_names_the_file(self, tmp_path: Path) -> None:
        """An unknown extension is an error that says how to fix it."""
        path = tmp_path / "data.txt"
        path.write_text('{"id": 1}\n', encoding="utf-8")
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path))
        assert str(info.value) == (
            f"{path}: unknown benchmark format '.txt': expected .jsonl, .ndjson, .csv, .tsv, "
            ".json, .parquet or a folder, or set `format:` to jsonl, csv, labelstudio, parquet "
            "or hf"
        )

    def test_explicit_format_overrides_the_extension(self, tmp_path: Path) -> None:
        """`format: jsonl` reads a .txt file as JSON lines."""
        path = tmp_path / "data.txt"
        path.write_text('{"id": 1}\n', encoding="utf-8")
        assert [i.key for i in load_benchmark(settings(path, format="jsonl")).items] == ["1"]

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path that does not exist is reported before the format is guessed."""
        path = tmp_path / "gone.txt"
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path))
        assert str(info.value) == f"{path}: cannot read benchmark data: No such file or directory"


class TestBenchmarkObject:
    """The loaded benchmark carries its name, scorers, template and items in file order."""

    def test_fields_of_the_benchmark(self, tmp_path: Path) -> None:
        """Name, scorers and template come from the settings; items keep file order."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        bench = load_benchmark(settings(path, name="intents", prompt="{{ text }}"))
        assert isinstance(bench, Benchmark)
        assert (bench.name, bench.scorers, bench.prompt_template) == (
            "intents",
            (EXACT,),
            "{{ text }}",
        )
        assert [i.key for i in bench.items] == ["a", "b"]
        assert len(bench.version) == 16


class TestVersion:
    """The version changes with what is measured and with nothing else."""

    def test_reloading_an_unchanged_file_gives_the_same_version(self, tmp_path: Path) -> None:
        """Loading twice is deterministic."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        assert version_of(path) == version_of(path)

    def test_formatting_and_key_order_do_not_matter(self, tmp_path: Path) -> None:
        """Whitespace, blank lines and the order of keys in an object leave the version alone."""
        first = write_jsonl(tmp_path / "a.jsonl", ROWS)
        second = tmp_path / "b.jsonl"
        second.write_text(
            '\n{ "label":"refund",  "text": "refund please", "id": "a" }\n\n'
            '{"text":"double charge","label":"billing","id":"b"}\n',
            encoding="utf-8",
        )
        assert version_of(first) == version_of(second)

    def test_the_same_items_in_another_format_have_the_same_version(self, tmp_path: Path) -> None:
        """A CSV and a JSON lines file with equal string fields share a version."""
        jsonl_path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        csv_path = tmp_path / "d.csv"
        csv_path.write_text(
            "id,text,label\na,refund please,refund\nb,double charge,billing\n", encoding="utf-8"
        )
        assert version_of(jsonl_path, reference="label") == version_of(csv_path, reference="label")

    def test_changing_an_item_changes_the_version(self, tmp_path: Path) -> None:
        """Editing one field value gives a new version."""
        before = version_of(write_jsonl(tmp_path / "a.jsonl", ROWS))
        edited = [ROWS[0], {**ROWS[1], "text": "double charged"}]
        assert version_of(write_jsonl(tmp_path / "b.jsonl", edited)) != before

    def test_item_order_changes_the_version(self, tmp_path: Path) -> None:
        """Items are hashed in file order."""
        before = version_of(write_jsonl(tmp_path / "a.jsonl", ROWS))
        assert version_of(write_jsonl(tmp_path / "b.jsonl", ROWS[::-1])) != before

    def test_limit_changes_the_version(self, tmp_path: Path) -> None:
        """Fewer items is a different benchmark."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        assert version_of(path, limit=1) != version_of(path)

    def test_template_changes_the_version(self, tmp_path: Path) -> None:
        """A different prompt template, or none, gives a new version."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        versions = {
            version_of(path),
            version_of(path, prompt="{{ text }}"),
            version_of(path, prompt="Classify: {{ text }}"),
        }
        assert len(versions) == 3

    def test_scorer_params_change_the_version(self, tmp_path: Path) -> None:
        """A scorer parameter, kind or name is part of the version; scorer order is not."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        regex_a = ScorerSpec(kind="regex", name="regex", params={"pattern": "^a$"})
        regex_b = ScorerSpec(kind="regex", name="regex", params={"pattern": "^b$"})
        renamed = ScorerSpec(kind="exact_match", name="exact")
        assert version_of(path, scorers=[EXACT, regex_a]) != version_of(
            path, scorers=[EXACT, regex_b]
        )
        assert version_of(path, scorers=[EXACT]) != version_of(path, scorers=[renamed])
        assert version_of(path, scorers=[EXACT, regex_a]) == version_of(
            path, scorers=[regex_a, EXACT]
        )

    def test_scorer_param_order_does_not_matter(self, tmp_path: Path) -> None:
        """Parameters are hashed sorted by name."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        one = ScorerSpec(kind="numeric", name="numeric", params={"rel_tol": 0.1, "abs_tol": 1})
        two = ScorerSpec(kind="numeric", name="numeric", params={"abs_tol": 1, "rel_tol": 0.1})
        assert version_of(path, scorers=[one]) == version_of(path, scorers=[two])

    def test_reference_field_changes_the_version(self, tmp_path: Path) -> None:
        """Which field holds the reference is part of what is measured."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        assert version_of(path, reference="label") != version_of(path, reference="text")
        assert version_of(path, reference="label") != version_of(path)

    def test_split_field_does_not_change_the_version(self, tmp_path: Path) -> None:
        """The split only groups items for reporting; scores stay comparable."""
        path = write_jsonl(tmp_path / "d.jsonl", ROWS)
        assert version_of(path, split="label") == version_of(path)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
item_fields = st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda k: k != "id"), json_values, min_size=1, max_size=5
)


class TestVersionProperties:
    """Property: key order inside items never matters, any value change always does."""

    @hypothesis_settings(max_examples=60, deadline=None)
    @given(rows=st.lists(item_fields, min_size=1, max_size=5), data=st.data())
    def test_key_order_invariance_and_value_sensitivity(
        self, tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]], data: Any
    ) -> None:
        """Shuffled keys keep the version; replacing one field's value changes it."""
        folder = tmp_path_factory.mktemp("prop")
        rows = [{"id": f"i{n}", **fields} for n, fields in enumerate(rows)]
        rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
        shuffled = []
        for row in rows:
            pairs = list(row.items())
            rng.shuffle(pairs)
            shuffled.append(dict(pairs))
        base = version_of(write_jsonl(folder / "base.jsonl", rows))
        assert version_of(write_jsonl(folder / "shuffled.jsonl", shuffled)) == base

        index = data.draw(st.integers(0, len(rows) - 1), label="item")
        field = data.draw(st.sampled_from(sorted(rows[index])), label="field")
        old = rows[index][field]
        new = data.draw(
            json_values.filter(lambda v: canonical_json(v) != canonical_json(old)), label="new"
        )
        if field == "id":
            new = f"changed-{new}"  # keep ids strings and unique
        changed = [dict(r) for r in rows]
        changed[index][field] = new
        assert version_of(write_jsonl(folder / "changed.jsonl", changed)) != base


class TestExamples:
    """The example datasets shipped in examples/ load and have the documented shape."""

    def test_support_intents(self) -> None:
        """About 60 labelled requests over refund, billing and other, split public/private."""
        bench = load_benchmark(
            BenchmarkSettings(
                name="support-intents",
                data=str(EXAMPLES / "support_intents.jsonl"),
                prompt="Classify the request: {{ text }}",
                reference="label",
                split="visibility",
                scorers=[EXACT],
            )
        )
        assert len(bench.items) == 60
        assert {i.reference for i in bench.items} == {"refund", "billing", "other"}
        assert {i.split for i in bench.items} == {"public", "private"}
        assert all(i.prompt and i.prompt.startswith("Classify the request: ") for i in bench.items)

    def test_digits(self) -> None:
        """Thirty 8x8 images with pixel values 0-16 and a digit label."""
        bench = load_benchmark(
            BenchmarkSettings(
                name="digits",
                data=str(EXAMPLES / "digits.jsonl"),
                reference="label",
                scorers=[EXACT],
            )
        )
        assert len(bench.items) == 30
        assert {i.reference for i in bench.items} == set("0123456789")
        for item in bench.items:
            pixels = item.fields["pixels"]
            assert len(pixels) == 64
            assert all(isinstance(p, int) and 0 <= p <= 16 for p in pixels)


class TestConfigLocation:
    """Benchmarks loaded from a config file prefix their errors with the config entry."""

    CONFIG = """\
benchmarks:
  - name: bench
    data: {data}
    prompt: "Q: {{{{ {field} }}}}"
    reference: label
    scorers: [exact_match]
"""

    def load_error(self, tmp_path: Path, rows: list[dict[str, Any]], field: str = "text") -> str:
        write_jsonl(tmp_path / "d.jsonl", rows)
        config = tmp_path / "monitor.yaml"
        config.write_text(self.CONFIG.format(data="d.jsonl", field=field))
        bench = load_settings(config, environ={}).benchmarks[0]
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(bench)
        return str(info.value)

    def test_data_error_names_the_data_field(self, tmp_path: Path) -> None:
        """A bad data line is reported after `monitor.yaml:LINE: benchmarks[0].data`."""
        msg = self.load_error(tmp_path, [*ROWS, ROWS[0]])
        data = tmp_path.resolve() / "d.jsonl"  # relative data paths resolve against the config
        assert msg == (
            f"{tmp_path / 'monitor.yaml'}:3: benchmarks[0].data: {data}:3: "
            f"duplicate item key 'a' (first at {data}:1)"
        )

    def test_missing_prompt_field_names_the_prompt_field(self, tmp_path: Path) -> None:
        """A template using a field the items lack points at `benchmarks[0].prompt`."""
        msg = self.load_error(tmp_path, ROWS, field="question")
        assert msg.startswith(f"{tmp_path / 'monitor.yaml'}:4: benchmarks[0].prompt: ")
        assert msg.endswith("d.jsonl:1: prompt uses field 'question' missing from item 'a'")

    def test_missing_reference_names_the_reference_field(self, tmp_path: Path) -> None:
        """An item without its reference points at `benchmarks[0].reference`."""
        msg = self.load_error(tmp_path, [ROWS[0], {"id": "b", "text": "x"}])
        assert msg.startswith(f"{tmp_path / 'monitor.yaml'}:5: benchmarks[0].reference: ")
        assert msg.endswith("d.jsonl:2: item 'b' has no reference field 'label'")

    def test_settings_built_in_code_have_no_prefix(self, tmp_path: Path) -> None:
        """Settings not read from a file report the data file's line alone."""
        path = tmp_path / "missing.jsonl"
        with pytest.raises(BenchmarkError) as info:
            load_benchmark(settings(path))
        assert str(info.value).startswith(f"{path}: cannot read benchmark data")


class TestSpecialFiles:
    def test_a_device_is_refused_not_read_forever(self) -> None:
        """`data: /dev/zero` is a clear error instead of a check-config that never ends."""
        cfg = parse_settings(
            "benchmarks: [{name: b, data: /dev/zero, format: jsonl, scorers: [exact_match]}]\n"
        )
        with pytest.raises(BenchmarkError, match="not a regular file"):
            load_benchmark(cfg.benchmarks[0])
