"""Custom scorers: the one module that imports the user's code.

A scorer named in a benchmark's ``scorers:`` that is not built in is looked up here, when the
config is loaded (so ``monitor check-config`` finds a typo, not the first run):

- ``package.module:function``, a name with a ``:``, imports the module and takes the attribute
  (dots walk nested attributes, ``module:Class.method``);
- any other name is an entry point of the group ``monitor.scorers`` of an installed package::

      [project.entry-points."monitor.scorers"]
      politeness = "acme_scorers:politeness"

The function is called as ``function(output, reference, **params)``, with the parameters of its
config entry, and returns a score in [0, 1]. It declares a version, with the `scorer` decorator
or as attributes (``politeness.version = "2"``)::

    from monitor.plugins import scorer

    @scorer(version="2", binary=True)
    def politeness(output: str, reference: object) -> float: ...

The version is part of the benchmark version (monitor/benchmarks/versioning.py), as a built-in
scorer's parameters are: bump it whenever the function scores differently, and the benchmark
starts a new history instead of comparing new scores with old ones. Python imports a module
once per process, so an edited module takes effect after a restart, not on a reload (SIGHUP).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.core.model import CustomScorer

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["ENTRY_POINT_GROUP", "resolve_scorer", "scorer"]

ENTRY_POINT_GROUP = "monitor.scorers"

F = TypeVar("F", bound=Callable[..., Any])


def scorer(*, version: str, binary: bool = False) -> Callable[[F], F]:
    """Mark a function as a custom scorer with a version (and whether it scores only 0 or 1)."""
    if not isinstance(version, str) or not version.strip():
        raise ValueError(f"a scorer version is a non-empty string, got {version!r}")

    def mark(function: F) -> F:
        function.version = version  # type: ignore[attr-defined]  # read by resolve_scorer
        function.binary = binary  # type: ignore[attr-defined]
        return function

    return mark


def resolve_scorer(reference: str, *, builtin: Iterable[str] = ()) -> CustomScorer:
    """The custom scorer a config names; ValueError saying what is wrong and how to fix it.

    ``builtin`` lists the built-in kinds, for the message when ``reference`` is none of them
    and no entry point either.
    """
    if ":" in reference:
        target = _import_target(reference)
    else:
        target = _load_entry_point(reference, builtin)
    return _as_scorer(reference, target)


def _import_target(reference: str) -> object:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(
            f"invalid scorer reference {reference!r}: expected package.module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and f"{module_name}.".startswith(f"{exc.name}."):
            raise ValueError(
                f"scorer {reference!r}: cannot import module {module_name!r} ({exc}): install "
                "the package that has it, or add its folder to PYTHONPATH"
            ) from None
        raise ValueError(f"scorer {reference!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # user code may raise anything while it imports
        raise ValueError(
            f"scorer {reference!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"scorer {reference!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return target


def _load_entry_point(name: str, builtin: Iterable[str]) -> object:
    from importlib.metadata import entry_points  # noqa: PLC0415 - scans every installed package

    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        installed = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
        raise ValueError(
            f"unknown scorer {name!r} (known: {', '.join(sorted(builtin))}); no entry point "
            f"{name!r} in the group {ENTRY_POINT_GROUP} (installed: "
            f"{', '.join(installed) or 'none'}); a function of your own is named "
            "package.module:function"
        )
    if len({ep.value for ep in found}) > 1:
        sources = "; ".join(_describe(ep) for ep in found)
        raise ValueError(
            f"scorer {name!r}: {len(found)} installed packages define the entry point: {sources}"
        )
    entry = found[0]
    try:
        return entry.load()
    except Exception as exc:  # user code may raise anything while it imports
        raise ValueError(
            f"scorer {name!r}: loading the entry point {_describe(entry)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _describe(entry: EntryPoint) -> str:
    dist = entry.dist
    source = f"{dist.name} {dist.version}: " if dist is not None else ""
    return f"{source}{entry.value}"


def _as_scorer(reference: str, target: object) -> CustomScorer:
    if not callable(target):
        message = f"scorer {reference!r} is a {type(target).__name__}, not a function"
        raise ValueError(message)  # noqa: TRY004 - config errors are ValueErrors (pydantic)
    version = getattr(target, "version", None)
    if version is None:
        raise ValueError(
            f"scorer {reference!r} declares no version: decorate it with "
            '@monitor.plugins.scorer(version="1") or set its `version` attribute to a string'
        )
    if not isinstance(version, str) or not version.strip():
        raise ValueError(
            f"scorer {reference!r}: version must be a non-empty string, got {version!r}"
        )
    binary = getattr(target, "binary", False)
    if not isinstance(binary, bool):
        message = f"scorer {reference!r}: binary must be true or false, got {binary!r}"
        raise ValueError(message)  # noqa: TRY004 - config errors are ValueErrors (pydantic)
    return CustomScorer(function=target, version=version, binary=binary)
