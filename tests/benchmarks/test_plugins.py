"""Custom scorers: `module:function` references and `monitor.scorers` entry points, for real."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.benchmarks import load_benchmark
from monitor.config import Settings, load_settings
from monitor.core.scoring import build_scorer
from monitor.errors import ConfigError
from monitor.plugins import ENTRY_POINT_GROUP, resolve_scorer, scorer

SCORER_SOURCE = '''
from monitor.plugins import scorer


@scorer(version="{version}")
def overlap(output: str, reference: object, *, weight: float = 1.0) -> float:
    """Share of the reference's words found in the output, times weight."""
    words = str(reference).lower().split()
    found = sum(1 for w in words if w in output.lower())
    return weight * found / len(words) if words else 0.0


def exact(output: str, reference: object) -> bool:
    return output.strip() == str(reference)


exact.version = "1"
exact.binary = True


def unversioned(output: str, reference: object) -> float:
    return 0.0


def broken(output: str, reference: object) -> float:
    return 1 / 0


def too_big(output: str, reference: object) -> float:
    return 1.5


def half(output: str, reference: object) -> float:
    return 0.5


half.version = "1"
half.binary = True
broken.version = too_big.version = "1"


class Rubric:
    """A callable object: its version is an attribute like a function's."""

    version = "3"
    binary = True

    def __call__(self, output: str, reference: object) -> float:
        return float(str(reference) in output)


class Scorers:
    rubric = Rubric()
'''


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for scorer modules; every module imported from it is forgotten."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        del sys.modules[name]


WriteModule = Callable[..., str]


@pytest.fixture
def write_module(plugin_dir: Path) -> WriteModule:
    """Write the scorer module under a fresh name (or a given one) and return that name."""

    def write(version: str = "1", name: str | None = None) -> str:
        module = name or f"scorers_{uuid.uuid4().hex[:8]}"
        (plugin_dir / f"{module}.py").write_text(SCORER_SOURCE.format(version=version), "utf-8")
        sys.modules.pop(module, None)  # a rewritten module must be imported again
        importlib.invalidate_caches()
        return module

    return write


def install_entry_points(plugin_dir: Path, dist: str, entries: dict[str, str]) -> None:
    """A minimal installed distribution: *.dist-info with METADATA and entry_points.txt."""
    info = plugin_dir / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", "utf-8")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}", "utf-8")
    importlib.invalidate_caches()


def write_config(folder: Path, scorers: str) -> Path:
    (folder / "items.jsonl").write_text(
        '{"id": "a", "text": "refund", "label": "money back"}\n'
        '{"id": "b", "text": "charge", "label": "billing"}\n',
        "utf-8",
    )
    config = folder / "monitor.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            benchmarks:
              - name: intents
                data: items.jsonl
                prompt: "Classify: {{{{ text }}}}"
                reference: label
                scorers: {scorers}
            """
        ),
        "utf-8",
    )
    return config


def load(folder: Path, scorers: str) -> Settings:
    return load_settings(write_config(folder, scorers))


def config_error(folder: Path, scorers: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(folder, scorers)
    return str(info.value)


class TestModuleReference:
    """`package.module:function` in a config imports the function and scores with it."""

    def test_reference_is_loaded_and_scores(self, tmp_path: Path, write_module) -> None:
        """The referenced function scores outputs, with the entry's parameters as keywords."""
        module = write_module()
        settings = load(tmp_path, f"[exact_match, {{{module}:overlap: {{weight: 0.5}}}}]")
        spec = settings.benchmarks[0].scorers[1]
        assert (spec.kind, spec.name, dict(spec.params)) == (
            f"{module}:overlap",
            f"{module}:overlap",
            {"weight": 0.5},
        )
        built = build_scorer(spec)
        assert built("I want my money back", "money back") == 0.5
        assert built("no", "money back") == 0.0
        assert built.binary is False

    def test_attributes_declare_version_and_binary(self, tmp_path: Path, write_module) -> None:
        """A plain function with `version` and `binary` attributes works without the decorator."""
        module = write_module()
        spec = load(tmp_path, f"[{{{module}:exact: {{name: exact}}}}]").benchmarks[0].scorers[0]
        built = build_scorer(spec)
        assert spec.name == "exact"
        assert built.binary is True
        assert built(" billing\n", "billing") == 1.0

    def test_nested_attribute_and_callable_object(self, tmp_path: Path, write_module) -> None:
        """`module:Class.attribute` walks attributes; a callable object with a version works."""
        module = write_module()
        spec = load(tmp_path, f"[{module}:Scorers.rubric]").benchmarks[0].scorers[0]
        assert spec.custom is not None
        assert (spec.custom.version, spec.custom.binary) == ("3", True)
        assert build_scorer(spec)("it is billing", "billing") == 1.0

    def test_loaded_benchmark_carries_the_scorer(self, tmp_path: Path, write_module) -> None:
        """load_benchmark keeps the resolved function, so runs build it from the benchmark."""
        module = write_module()
        bench = load_benchmark(load(tmp_path, f"[{module}:exact]").benchmarks[0])
        built = [build_scorer(s) for s in bench.scorers]
        assert [b("billing", bench.items[1].reference) for b in built] == [1.0]


class TestEntryPoint:
    """A name that is not built in is looked up in the `monitor.scorers` entry point group."""

    def test_entry_point_is_discovered(self, tmp_path: Path, plugin_dir, write_module) -> None:
        """An installed distribution's entry point is found by importlib.metadata and loaded."""
        module = write_module()
        install_entry_points(plugin_dir, "acme_scorers", {"word_overlap": f"{module}:overlap"})
        spec = load(tmp_path, "[word_overlap]").benchmarks[0].scorers[0]
        assert spec.kind == "word_overlap"
        assert spec.custom is not None
        assert spec.custom.version == "1"
        assert build_scorer(spec)("money", "money back") == 0.5

    def test_unknown_name_lists_builtins_and_installed(
        self, tmp_path: Path, plugin_dir, write_module
    ) -> None:
        """A typo names the config line and field and lists both kinds of known scorer."""
        install_entry_points(plugin_dir, "acme_scorers", {"word_overlap": "x:y"})
        message = config_error(tmp_path, "[exact_match, word_overlop]")
        assert message.startswith(
            f"{tmp_path / 'monitor.yaml'}:6: benchmarks[0].scorers[1]: unknown scorer "
            "'word_overlop' (known: choice, classification, "
        )
        assert "no entry point 'word_overlop' in the group monitor.scorers (installed: " in message
        assert "word_overlap" in message
        assert message.endswith("a function of your own is named package.module:function")

    def test_two_packages_with_one_name(self, tmp_path: Path, plugin_dir, write_module) -> None:
        """Two distributions defining the same name pointing elsewhere is an error, not a pick."""
        module = write_module()
        install_entry_points(plugin_dir, "acme_a", {"twin": f"{module}:overlap"})
        install_entry_points(plugin_dir, "acme_b", {"twin": f"{module}:exact"})
        message = config_error(tmp_path, "[twin]")
        assert "scorer 'twin': 2 installed packages define the entry point: " in message
        assert "acme_a 1.0" in message
        assert "acme_b 1.0" in message


class TestVersioning:
    """A custom scorer's declared version is part of the benchmark version."""

    def version(self, folder: Path, module: str, target: str = "overlap") -> str:
        settings = load(folder, f"[exact_match, {module}:{target}]")
        return load_benchmark(settings.benchmarks[0]).version

    def test_a_new_version_string_changes_the_benchmark_version(
        self, tmp_path: Path, write_module
    ) -> None:
        """Bumping the declared version gives a new benchmark version; the same one does not."""
        module = write_module(version="1")
        first = self.version(tmp_path, module)
        write_module(version="1", name=module)
        assert self.version(tmp_path, module) == first
        write_module(version="2", name=module)
        assert self.version(tmp_path, module) != first

    def test_entry_point_version_changes_the_benchmark_version(
        self, tmp_path: Path, plugin_dir, write_module
    ) -> None:
        """The rule is the same for a scorer found through an entry point."""
        module = write_module(version="1")
        install_entry_points(plugin_dir, "acme_scorers", {"word_overlap": f"{module}:overlap"})
        settings = load(tmp_path, "[word_overlap]")
        first = load_benchmark(settings.benchmarks[0]).version
        write_module(version="2", name=module)
        settings = load(tmp_path, "[word_overlap]")
        assert load_benchmark(settings.benchmarks[0]).version != first

    def test_builtin_benchmarks_keep_their_versions(self, tmp_path: Path) -> None:
        """Adding custom scorers did not change the version of a benchmark without one."""
        settings = load(tmp_path, "[exact_match, {contains: {name: has}}]")
        # the value computed by monitor/benchmarks/versioning.py before custom scorers existed
        assert load_benchmark(settings.benchmarks[0]).version == "b6e12169ed5b8a84"


class TestErrors:
    """Every way a reference can be wrong names the config file, line and field."""

    def test_module_that_cannot_be_imported(self, tmp_path: Path, plugin_dir) -> None:
        """A missing module says to install it or add its folder to PYTHONPATH."""
        assert config_error(tmp_path, "[exact_match, no_such_module_xyz:score]") == (
            f"{tmp_path / 'monitor.yaml'}:6: benchmarks[0].scorers[1]: scorer "
            "'no_such_module_xyz:score': cannot import module 'no_such_module_xyz' (No module "
            "named 'no_such_module_xyz'): install the package that has it, or add its folder "
            "to PYTHONPATH"
        )

    def test_module_whose_own_import_is_missing(self, tmp_path: Path, plugin_dir) -> None:
        """A module found but missing one of its own imports is not called missing itself."""
        (plugin_dir / "needs_dep_mod.py").write_text("import no_such_dep_xyz\n", "utf-8")
        assert config_error(tmp_path, "[needs_dep_mod:score]").endswith(
            "benchmarks[0].scorers[0]: scorer 'needs_dep_mod:score': importing 'needs_dep_mod' "
            "failed: No module named 'no_such_dep_xyz'"
        )

    def test_module_whose_import_fails(self, tmp_path: Path, plugin_dir) -> None:
        """An exception raised while the module imports is reported with its type."""
        (plugin_dir / "bad_scorers_mod.py").write_text("raise RuntimeError('no GPU')\n", "utf-8")
        assert config_error(tmp_path, "[bad_scorers_mod:score]").endswith(
            "benchmarks[0].scorers[0]: scorer 'bad_scorers_mod:score': importing "
            "'bad_scorers_mod' failed: RuntimeError: no GPU"
        )

    def test_missing_attribute(self, tmp_path: Path, write_module) -> None:
        """A function name the module does not have is named."""
        module = write_module()
        assert config_error(tmp_path, f"[{module}:nope]").endswith(
            f"benchmarks[0].scorers[0]: scorer '{module}:nope': module '{module}' has no "
            "attribute 'nope'"
        )

    def test_missing_version(self, tmp_path: Path, write_module) -> None:
        """A function without a version is refused, with the two ways to declare one."""
        module = write_module()
        assert config_error(tmp_path, f"[{module}:unversioned]").endswith(
            f"scorer '{module}:unversioned' declares no version: decorate it with "
            '@monitor.plugins.scorer(version="1") or set its `version` attribute to a string'
        )

    def test_parameter_the_function_does_not_take(self, tmp_path: Path, write_module) -> None:
        """Parameters are checked against the function's signature when the config loads."""
        module = write_module()
        message = config_error(tmp_path, f"[{{{module}:overlap: {{wieght: 2}}}}]")
        assert message.startswith(
            f"{tmp_path / 'monitor.yaml'}:6: benchmarks[0].scorers[0]: custom scorer "
            f"'{module}:overlap' ({module}:overlap): cannot be called as (output, reference, "
            "wieght=...): got an unexpected keyword argument 'wieght'"
        )

    def test_not_callable(self, tmp_path: Path, write_module) -> None:
        """A reference to something that is not a function is refused."""
        module = write_module()
        assert config_error(tmp_path, f"[{module}:__name__]").endswith(
            f"scorer '{module}:__name__' is a str, not a function"
        )

    def test_malformed_reference(self) -> None:
        """`module:` with nothing after the colon is not a reference."""
        with pytest.raises(ValueError, match=r"expected package\.module:function"):
            resolve_scorer("module:")

    def test_decorator_needs_a_version(self) -> None:
        """An empty version string is refused where the scorer is defined."""
        with pytest.raises(ValueError, match="non-empty string"):
            scorer(version=" ")


class TestScoringGuards:
    """A custom scorer that misbehaves while scoring fails loudly, naming itself."""

    def built(self, tmp_path: Path, module: str, target: str) -> Callable[[str, object], float]:
        spec = load(tmp_path, f"[{module}:{target}]").benchmarks[0].scorers[0]
        return build_scorer(spec)

    def test_exception_names_the_scorer(self, tmp_path: Path, write_module) -> None:
        """An exception inside the function becomes a ValueError naming scorer and cause."""
        module = write_module()
        with pytest.raises(ValueError, match=r"raised ZeroDivisionError: division by zero"):
            self.built(tmp_path, module, "broken")("x", "y")

    def test_score_outside_zero_one(self, tmp_path: Path, write_module) -> None:
        """A score above 1 is refused rather than stored."""
        module = write_module()
        with pytest.raises(ValueError, match=r"returned 1\.5: a score is a number in \[0, 1\]"):
            self.built(tmp_path, module, "too_big")("x", "y")

    def test_binary_scorer_returning_a_fraction(self, tmp_path: Path, write_module) -> None:
        """A scorer declared binary must return 0 or 1: its interval assumes so."""
        module = write_module()
        with pytest.raises(ValueError, match=r"is declared binary but returned 0\.5"):
            self.built(tmp_path, module, "half")("x", "y")
