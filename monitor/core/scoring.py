"""Per-item scorers and run-level aggregates with confidence intervals.

A benchmark names its scorers in configuration; `build_scorer` turns each
`ScorerSpec` into a `Scorer`, validating parameters up front so a bad config
fails at load time, never halfway through a run. A scorer maps one model output
and the item's reference to a score in [0, 1]. It never raises on odd output
(that is a wrong answer, not a crash), and a missing (`None`) reference scores 0.

=============== ===== ======================================== ==========================
kind            score params (default)                         reference
=============== ===== ======================================== ==========================
exact_match     0/1   normalize (["strip"])                    text, or list: any matches
contains        0/1   normalize (["strip", "lower"])           text, or list: any is found
regex           0/1   pattern (required), mode (fullmatch),    unused: the output alone is
                      flags ([]), normalize (["strip"])        matched
numeric         0/1   abs_tol (1e-6), rel_tol (0)              number or numeric text
token_f1        0..1  -                                        text, or list: best F1
choice          0/1   choices ("ABCD")                         letter, or 0-based index
json_valid      0/1   -                                        unused
json_schema     0/1   schema (required)                        unused
classification  0/1   -                                        label
=============== ===== ======================================== ==========================

Scorer notes:

- normalize steps (`NORMALIZERS`) always run in one canonical order, lower ->
  strip_punctuation -> collapse_whitespace -> strip, whatever order the config
  lists them in, so normalization is idempotent and order cannot surprise.
  strip_punctuation removes ASCII punctuation and every Unicode punctuation
  character (curly quotes, CJK full stops).
- regex also strips the output by default, because LLM outputs usually end in
  a newline that would fail a fullmatch anchored pattern.
- numeric reads the FIRST number in the output: integers, decimals, signs
  (including U+2212), thousands separators (1,234.5) and exponents (1.5e-3).
- token_f1 is SQuAD F1: lowercase, drop punctuation and the articles a/an/the,
  split on whitespace, F1 of the token multisets; two empty texts score 1.
- choice extracts a letter in this order: the whole output is one letter
  ("B", "(b)", "**B.**"); an answer phrase ("Answer: B", "the answer is (c)");
  else the first standalone capital letter or bracketed letter among the
  choices. Lower-case letters count only when unambiguous, since "a" is
  usually the English article.
- json_valid / json_schema parse the whole output as strict JSON (no NaN or
  Infinity), also when it is wrapped in one ```json fenced block. Schemas are
  checked against their meta-schema and every $ref must resolve at build time;
  remote schemas are never fetched (core does no I/O). `format` is asserted.
- classification scores label equality after strip + lower; the run-level
  macro F1 comes from `macro_f1` over the same normalized labels.

Custom scorers are the user's functions, found by monitor/plugins.py (a
``module:function`` reference or an entry point of the group ``monitor.scorers``)
and handed in on `ScorerSpec.custom`; core never imports user code. One is called
as ``function(output, reference, **params)`` with the config's parameters, which
are checked against its signature at build time. It must return a number in
[0, 1] (a bool counts as 0/1), or 0/1 exactly if it declared itself binary; a
function that raises or returns anything else fails the run with a ValueError
naming the scorer, because a silent 0 would look like a regression.

`summarize_scores` turns item scores into a mean with a confidence interval:
Wilson score interval for binary scorers, Student-t for continuous ones.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin

from monitor.core.model import CustomScorer, ScorerSpec, ScoreSummary

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import referencing

# numpy, scipy and jsonschema/referencing are imported inside the functions that use
# them: together they cost ~0.3 s, and `monitor run` must start in well under 1 s.
# numpy is needed once the first run is summarized, scipy only for a Student-t interval
# and jsonschema only when a json_schema scorer is built.

__all__ = [
    "NORMALIZERS",
    "SCORER_KINDS",
    "Scorer",
    "build_scorer",
    "macro_f1",
    "normalize_text",
    "summarize_scores",
]

NORMALIZERS: tuple[str, ...] = ("strip", "lower", "collapse_whitespace", "strip_punctuation")

ScoreFn = Callable[[str, object], float]


@dataclass(frozen=True, slots=True)
class Scorer:
    """A built scorer: call it with (output, reference) to get a score in [0, 1]."""

    name: str
    kind: str
    binary: bool  # every score is 0 or 1: summaries use the Wilson interval
    score: ScoreFn = field(repr=False, compare=False)

    def __call__(self, output: str, reference: object) -> float:
        return self.score(output, reference)


# --------------------------------------------------------------------------- normalization

_WHITESPACE = re.compile(r"\s+")


@cache
def _punctuation_table() -> dict[int, None]:
    """Translate table deleting ASCII punctuation and all Unicode punctuation (category P*).

    Built on first use, not at import: the scan takes ~15 ms. Planes above 1
    hold only ideographs, tags and private use, so scanning 0..0x1FFFF is complete.
    """
    table: dict[int, None] = dict.fromkeys(map(ord, string.punctuation))
    for cp in range(0x20000):
        if unicodedata.category(chr(cp)).startswith("P"):
            table[cp] = None
    return table


def _identity(text: str) -> str:
    return text


def _strip_lower(text: str) -> str:
    return text.strip().lower()


@lru_cache(maxsize=64)
def _compile_normalizer(steps: frozenset[str]) -> Callable[[str], str]:
    """One function applying `steps` in canonical order; common cases get a fast path."""
    unknown = sorted(steps - set(NORMALIZERS))
    if unknown:
        raise ValueError(
            f"unknown normalize step {unknown[0]!r} (allowed: {', '.join(NORMALIZERS)})"
        )
    if steps <= {"strip", "lower"}:
        if steps == {"strip", "lower"}:
            return _strip_lower
        if steps == {"strip"}:
            return str.strip
        if steps == {"lower"}:
            return str.lower
        return _identity
    lower = "lower" in steps
    table = _punctuation_table() if "strip_punctuation" in steps else None
    collapse = "collapse_whitespace" in steps
    strip = "strip" in steps

    def normalize(text: str) -> str:
        if lower:
            text = text.lower()
        if table is not None:
            text = text.translate(table)
        if collapse:
            # split() both collapses and strips; re.sub keeps the ends.
            text = " ".join(text.split()) if strip else _WHITESPACE.sub(" ", text)
        elif strip:
            text = text.strip()
        return text

    return normalize


def _steps_set(steps: Sequence[str]) -> frozenset[str]:
    # A bare string is a Sequence[str] too; iterating it would yield letters.
    if isinstance(steps, str):
        raise ValueError(  # noqa: TRY004 - callers handle bad config as ValueError
            f"normalize steps must be a list of step names, not the string {steps!r}"
        )
    return frozenset(steps)


def normalize_text(text: str, steps: Sequence[str]) -> str:
    """Apply normalization `steps` (names from NORMALIZERS) in canonical order."""
    return _compile_normalizer(_steps_set(steps))(text)


# --------------------------------------------------------------------------- parameters


class _Params:
    """Typed access to a scorer's params that raises ValueError naming the scorer and key."""

    __slots__ = ("_params", "where")

    def __init__(self, where: str, params: object, allowed: tuple[str, ...]) -> None:
        self.where = where
        if not isinstance(params, Mapping):
            raise ValueError(  # noqa: TRY004 - config loading handles bad params as ValueError
                f"{where}: params must be a mapping, got {type(params).__name__}"
            )
        for key in params:
            if key not in allowed:
                hint = f"allowed: {', '.join(allowed)}" if allowed else "it takes no parameters"
                raise ValueError(f"{where}: unknown parameter {key!r} ({hint})")
        self._params: Mapping[str, Any] = params

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.where}: {message}")

    def get(self, key: str, default: object = None) -> object:
        return self._params.get(key, default)

    def require(self, key: str) -> object:
        if key not in self._params:
            raise self.error(f"missing required parameter {key!r}")
        return self._params[key]

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._params.get(key, default)
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise self.error(f"parameter {key!r} must be a list of strings, got {value!r}")
        for item in value:
            if not isinstance(item, str):
                raise self.error(f"parameter {key!r} must be a list of strings, got {value!r}")
        return tuple(value)

    def normalizer(self, default: tuple[str, ...]) -> Callable[[str], str]:
        steps = self.string_list("normalize", default)
        try:
            return _compile_normalizer(frozenset(steps))
        except ValueError as exc:
            raise self.error(f"parameter 'normalize': {exc}") from None

    def tolerance(self, key: str, default: float) -> float:
        value = self._params.get(key, default)
        # bool is an int; "abs_tol: true" is a config mistake, not 1.0.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise self.error(f"parameter {key!r} must be a finite number >= 0, got {value!r}")
        return float(value)


# --------------------------------------------------------------------------- scorers


def _bool_score(matched: bool) -> float:
    return 1.0 if matched else 0.0


def _build_exact_match(p: _Params) -> tuple[ScoreFn, bool]:
    norm = p.normalizer(("strip",))

    def exact_match(output: str, reference: object) -> float:
        if reference is None:
            return 0.0
        out = norm(output)
        if isinstance(reference, str):
            return 1.0 if out == norm(reference) else 0.0
        if isinstance(reference, list | tuple):
            for ref in reference:
                if ref is not None and out == norm(str(ref)):
                    return 1.0
            return 0.0
        return 1.0 if out == norm(str(reference)) else 0.0

    return exact_match, True


def _build_contains(p: _Params) -> tuple[ScoreFn, bool]:
    norm = p.normalizer(("strip", "lower"))

    def found(out: str, ref: object) -> bool:
        needle = norm(ref if isinstance(ref, str) else str(ref))
        # An empty needle is "in" every string; treat it as a missing reference.
        return bool(needle) and needle in out

    def contains(output: str, reference: object) -> float:
        if reference is None:
            return 0.0
        out = norm(output)
        if isinstance(reference, list | tuple):
            return _bool_score(any(ref is not None and found(out, ref) for ref in reference))
        return _bool_score(found(out, reference))

    return contains, True


_REGEX_FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}


def _build_regex(p: _Params) -> tuple[ScoreFn, bool]:
    pattern = p.require("pattern")
    if not isinstance(pattern, str):
        raise p.error(f"parameter 'pattern' must be a string, got {pattern!r}")
    mode = p.get("mode", "fullmatch")
    if mode not in ("fullmatch", "search"):
        raise p.error(f"parameter 'mode' must be 'fullmatch' or 'search', got {mode!r}")
    flags = 0
    for name in p.string_list("flags", ()):
        if name not in _REGEX_FLAGS:
            raise p.error(f"unknown regex flag {name!r} (allowed: {', '.join(_REGEX_FLAGS)})")
        flags |= _REGEX_FLAGS[name]
    norm = p.normalizer(("strip",))
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise p.error(f"invalid pattern {pattern!r}: {exc}") from None
    match = compiled.fullmatch if mode == "fullmatch" else compiled.search

    def regex(output: str, _reference: object) -> float:
        return 1.0 if match(norm(output)) is not None else 0.0

    return regex, True


_NUMBER = re.compile(
    r"""
    (?:(?<!\w)[-+\u2212])?           # a sign, unless glued to a word ("x-5" reads as 5)
    (?:
        \d{1,3}(?:,\d{3})+(?!\d)     # thousands separators: 1,234,567
        (?:\.\d+)?
      | \d+(?:\.\d+)?                # plain: 12, 12.5 ("3." ends a sentence: just 3)
      | \.\d+                        # leading dot: .5
    )
    (?:[eE][-+]?\d+)?                # exponent
    """,
    re.VERBOSE,
)


def _first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    if found is None:
        return None
    try:
        return float(found.group().replace(",", "").replace("\u2212", "-"))
    except ValueError:  # \d admits digits of other scripts; float() takes most, not all
        return None


def _reference_number(reference: object) -> float | None:
    if isinstance(reference, bool):
        return None
    if isinstance(reference, int | float):
        try:
            return float(reference)
        except OverflowError:  # an int too large for a float
            return None
    if isinstance(reference, str):
        try:
            return float(reference)
        except ValueError:
            return _first_number(reference)  # "1,234" or "$12"
    return None


def _build_numeric(p: _Params) -> tuple[ScoreFn, bool]:
    abs_tol = p.tolerance("abs_tol", 1e-6)
    rel_tol = p.tolerance("rel_tol", 0.0)

    def numeric(output: str, reference: object) -> float:
        target = _reference_number(reference)
        if target is None:
            return 0.0
        value = _first_number(output)
        if value is None:
            return 0.0
        return _bool_score(math.isclose(value, target, rel_tol=rel_tol, abs_tol=abs_tol))

    return numeric, True


_ARTICLES = frozenset({"a", "an", "the"})


def _build_token_f1(_p: _Params) -> tuple[ScoreFn, bool]:
    table = _punctuation_table()

    def tokens(text: str) -> list[str]:
        return [t for t in text.lower().translate(table).split() if t not in _ARTICLES]

    def f1(pred: Counter[str], n_pred: int, ref_text: str) -> float:
        ref = tokens(ref_text)
        if not ref or not n_pred:
            # SQuAD: with an empty side, only an empty match counts.
            return 1.0 if not ref and not n_pred else 0.0
        same = sum((pred & Counter(ref)).values())
        if same == 0:
            return 0.0
        precision = same / n_pred
        recall = same / len(ref)
        return 2 * precision * recall / (precision + recall)

    def token_f1(output: str, reference: object) -> float:
        if reference is None:
            return 0.0
        pred_tokens = tokens(output)
        pred = Counter(pred_tokens)
        n = len(pred_tokens)
        if isinstance(reference, list | tuple):
            return max((f1(pred, n, str(ref)) for ref in reference if ref is not None), default=0.0)
        return f1(pred, n, reference if isinstance(reference, str) else str(reference))

    return token_f1, False


def _choices_param(p: _Params) -> tuple[str, ...]:
    raw = p.get("choices", "ABCD")
    letters: list[str] | None = None
    if isinstance(raw, Sequence) and all(isinstance(c, str) for c in raw):
        letters = list(raw)  # "ABCD" or ["A", "B", "C", "D"]
    valid = (
        letters is not None
        and len(letters) > 0
        and all(len(c) == 1 and c.isascii() and c.isalnum() for c in letters)
        and len({c.upper() for c in letters}) == len(letters)
    )
    if not valid or letters is None:
        raise p.error(
            "parameter 'choices' must be distinct single letters or digits, as a string "
            f"like 'ABCDE' or a list like ['A', 'B'], got {raw!r}"
        )
    return tuple(c.upper() for c in letters)


def _build_choice(p: _Params) -> tuple[ScoreFn, bool]:
    choices = _choices_param(p)
    upper = re.escape("".join(choices))
    lower = re.escape("".join(choices).lower())
    any_case = f"[{upper}{lower}]"
    cap = f"[{upper}]"
    small = f"[{lower}]"
    # [^\W_] is a letter or digit: a choice letter must stand alone, not sit in a word.
    whole = re.compile(rf"[\W_]*({any_case})[\W_]*")
    answer = re.compile(
        rf"(?i:\banswer(?:\s+is)?)[\s:=*_\-]*"
        rf"(?:[(\[]({any_case})[)\]]|({cap})(?![^\W_])|({small})(?=[.):,]|\s*\Z))"
    )
    standalone = re.compile(rf"(?<![^\W_])(?:[(\[]({any_case})[)\]]|({cap}))(?![^\W_])")

    def letter_in(found: re.Match[str] | None) -> str | None:
        if found is None:
            return None
        return next(g for g in found.groups() if g is not None).upper()

    def extract(output: str) -> str | None:
        return (
            letter_in(whole.fullmatch(output))
            or letter_in(answer.search(output))
            or letter_in(standalone.search(output))
        )

    def reference_letter(reference: object) -> str | None:
        if isinstance(reference, str):
            if len(reference) == 1:
                return reference.upper() if reference.upper() in choices else None
            return letter_in(whole.fullmatch(reference))
        # Some datasets (MMLU on the Hub) store the answer as a 0-based index.
        if isinstance(reference, int) and not isinstance(reference, bool):
            return choices[reference] if 0 <= reference < len(choices) else None
        return None

    def choice(output: str, reference: object) -> float:
        expected = reference_letter(reference)
        if expected is None:
            return 0.0
        return 1.0 if extract(output) == expected else 0.0

    return choice, True


_FENCE = re.compile(r"```(?:json)?[^\S\n]*\n?(.*?)```", re.IGNORECASE | re.DOTALL)
_NOT_PARSED = object()


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(output: str) -> object:
    """The JSON value of the whole output (or of one fenced block), else _NOT_PARSED."""
    text = output.strip()
    if text.startswith("```"):
        fenced = _FENCE.fullmatch(text)
        if fenced is None:
            return _NOT_PARSED
        text = fenced.group(1)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, huge ints, deep nesting
        return _NOT_PARSED


def _build_json_valid(_p: _Params) -> tuple[ScoreFn, bool]:
    def json_valid(output: str, _reference: object) -> float:
        return 0.0 if _parse_json(output) is _NOT_PARSED else 1.0

    return json_valid, True


_LATEST_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_INSTANCE_KEYWORDS = frozenset({"const", "default", "enum", "examples"})


def _is_dialect(uri: str) -> bool:
    import referencing.jsonschema  # noqa: PLC0415 - lazy: see the imports at the top

    try:
        referencing.jsonschema.specification_with(uri)
    except referencing.jsonschema.UnknownDialect:
        return False
    return True


def _check_refs(
    p: _Params, schema: Mapping[str, Any], spec: referencing.Specification[Any]
) -> None:
    """Raise unless every $ref resolves locally: a typo would otherwise surface mid-run."""
    import referencing  # noqa: PLC0415 - lazy: see the imports at the top
    import referencing.exceptions  # noqa: PLC0415

    resource = spec.create_resource(schema)
    root = resource.id() or ""
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(root, resource)

    def walk(node: object, base: str, path: str) -> None:
        if isinstance(node, Mapping):
            node_id = spec.id_of(node)
            if isinstance(node_id, str):
                base = urljoin(base, node_id)
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = urljoin(base, ref)
                # References to a meta-schema are served by jsonschema itself.
                if not _is_dialect(target):
                    try:
                        registry.resolver(base).lookup(ref)
                    except referencing.exceptions.Unresolvable:
                        raise p.error(
                            f"$ref {ref!r} at {path} does not resolve (remote schemas are "
                            "never fetched; define it under $defs)"
                        ) from None
            for key, value in node.items():
                if key not in _INSTANCE_KEYWORDS:
                    walk(value, base, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, base, f"{path}[{index}]")

    walk(schema, root, "$")


def _build_json_schema(p: _Params) -> tuple[ScoreFn, bool]:
    import referencing  # noqa: PLC0415 - lazy: see the imports at the top
    import referencing.jsonschema  # noqa: PLC0415
    from jsonschema import Draft202012Validator, SchemaError, validators  # noqa: PLC0415

    schema = p.require("schema")
    if not isinstance(schema, dict):
        raise p.error(f"parameter 'schema' must be a mapping (a JSON Schema), got {schema!r}")
    # Checked first: jsonschema only warns on an unknown $schema and falls back to the latest.
    dialect_id = schema.get("$schema", _LATEST_DIALECT)
    if not isinstance(dialect_id, str) or not _is_dialect(dialect_id):
        raise p.error(f"unknown JSON Schema dialect $schema={dialect_id!r}")
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise p.error(f"invalid schema at {exc.json_path}: {exc.message}") from None
    _check_refs(p, schema, referencing.jsonschema.specification_with(dialect_id))
    # An explicit empty registry: jsonschema's default one fetches remote $refs over HTTP.
    validator = cls(schema, registry=referencing.Registry(), format_checker=cls.FORMAT_CHECKER)
    is_valid = validator.is_valid

    def json_schema(output: str, _reference: object) -> float:
        value = _parse_json(output)
        if value is _NOT_PARSED:
            return 0.0
        try:
            return 1.0 if is_valid(cast(Any, value)) else 0.0
        except Exception:  # noqa: BLE001 - a validator failure on one odd output fails that item, not the run
            return 0.0

    return json_schema, True


def _label(value: object) -> str:
    return (value if isinstance(value, str) else str(value)).strip().lower()


def _build_classification(_p: _Params) -> tuple[ScoreFn, bool]:
    def classification(output: str, reference: object) -> float:
        if reference is None:
            return 0.0
        return 1.0 if _label(output) == _label(reference) else 0.0

    return classification, True


_Builder = Callable[[_Params], tuple[ScoreFn, bool]]

_BUILDERS: dict[str, tuple[tuple[str, ...], _Builder]] = {
    "exact_match": (("normalize",), _build_exact_match),
    "contains": (("normalize",), _build_contains),
    "regex": (("pattern", "mode", "flags", "normalize"), _build_regex),
    "numeric": (("abs_tol", "rel_tol"), _build_numeric),
    "token_f1": ((), _build_token_f1),
    "choice": (("choices",), _build_choice),
    "json_valid": ((), _build_json_valid),
    "json_schema": (("schema",), _build_json_schema),
    "classification": ((), _build_classification),
}

SCORER_KINDS: frozenset[str] = frozenset(_BUILDERS)


def _build_custom(spec: ScorerSpec, custom: CustomScorer) -> Scorer:
    where = f"custom scorer {spec.name!r} ({spec.kind})"
    function, binary = custom.function, custom.binary
    params = dict(spec.params)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins and C callables have none
        signature = None
    if signature is not None:
        try:
            signature.bind("", None, **params)
        except TypeError as exc:
            raise ValueError(
                f"{where}: cannot be called as (output, reference"
                f"{''.join(f', {k}=...' for k in params)}): {exc}"
            ) from None

    def custom_score(output: str, reference: object) -> float:
        try:
            value = function(output, reference, **params)
        except Exception as exc:
            raise ValueError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:  # NaN too
            raise ValueError(f"{where} returned {value!r}: a score is a number in [0, 1]")
        score = float(value)
        if binary and score not in (0.0, 1.0):
            raise ValueError(f"{where} is declared binary but returned {value!r}")
        return score

    return Scorer(name=spec.name, kind=spec.kind, binary=binary, score=custom_score)


def build_scorer(spec: ScorerSpec) -> Scorer:
    """Validate `spec` and return its scorer; raise ValueError naming the bad parameter.

    A custom scorer comes resolved on `spec.custom` (see the module docstring).
    """
    if spec.custom is not None:
        if not spec.name:
            raise ValueError(f"custom scorer {spec.kind!r}: scorer name must not be empty")
        return _build_custom(spec, spec.custom)
    entry = _BUILDERS.get(spec.kind)
    if entry is None:
        raise ValueError(
            f"unknown scorer kind {spec.kind!r} (allowed: {', '.join(sorted(SCORER_KINDS))})"
        )
    where = spec.kind if spec.name == spec.kind else f"{spec.kind} scorer {spec.name!r}"
    if not spec.name:
        raise ValueError(f"{where}: scorer name must not be empty")
    allowed, builder = entry
    fn, binary = builder(_Params(where, spec.params, allowed))
    return Scorer(name=spec.name, kind=spec.kind, binary=binary, score=fn)


# --------------------------------------------------------------------------- aggregates


def macro_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over every label seen in either sequence.

    Labels are compared after strip + lower, like the classification scorer.
    Empty input has no classes and gives NaN.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"macro_f1: {len(predictions)} predictions but {len(references)} references"
        )
    if not references:
        return math.nan
    preds = [_label(x) for x in predictions]
    refs = [_label(x) for x in references]
    true_pos = Counter(p for p, r in zip(preds, refs, strict=True) if p == r)
    n_pred = Counter(preds)
    n_ref = Counter(refs)
    labels = n_pred.keys() | n_ref.keys()
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual); never 0/0 for a seen label.
    return math.fsum(2 * true_pos[c] / (n_pred[c] + n_ref[c]) for c in labels) / len(labels)


@lru_cache(maxsize=16)
def _normal_quantile(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@lru_cache(maxsize=256)
def _t_quantile(df: int, confidence: float) -> float:
    """The two-sided `confidence` quantile of Student's t with `df` degrees of freedom."""
    from scipy import special  # noqa: PLC0415 - lazy (~0.1 s): see the imports at the top

    return float(special.stdtrit(df, 0.5 + confidence / 2))


def summarize_scores(
    scorer: str, values: Sequence[float], *, binary: bool, confidence: float = 0.95
) -> ScoreSummary:
    """Mean of item scores with a two-sided `confidence` interval.

    Binary scorers get the Wilson score interval: it stays inside [0, 1] and keeps
    its coverage near 0 and 1, where the normal (Wald) interval collapses.
    Continuous scorers get the Student-t interval on the mean, clipped to [0, 1].
    With a single continuous value the sample variance is undefined, so no finite
    width is justified; the interval is then the whole score range [0, 1], which
    says "unknown" honestly instead of a zero-width interval claiming certainty.
    No values give NaN for the mean and both bounds.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    n = len(values)
    if n == 0:
        return ScoreSummary(
            scorer=scorer, value=math.nan, ci_lower=math.nan, ci_upper=math.nan, n=0
        )
    import numpy as np  # noqa: PLC0415 - lazy: see the imports at the top

    scores = np.asarray(values, dtype=np.float64)
    if not (np.all(scores >= 0.0) and np.all(scores <= 1.0)):  # also false for NaN
        raise ValueError(f"{scorer}: scores must be finite values in [0, 1]")
    mean = float(scores.mean())
    if binary:
        z = _normal_quantile(confidence)
        z2n = z * z / n
        center = (mean + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * math.sqrt(max(mean * (1 - mean), 0.0) / n + z2n / (4 * n))
        lower, upper = center - half, center + half
    elif n == 1:
        lower, upper = 0.0, 1.0
    else:
        t = _t_quantile(n - 1, confidence)
        half = t * float(scores.std(ddof=1)) / math.sqrt(n)
        lower, upper = mean - half, mean + half
    return ScoreSummary(
        scorer=scorer,
        value=mean,
        ci_lower=min(max(lower, 0.0), mean),
        ci_upper=max(min(upper, 1.0), mean),
        n=n,
    )


def macro_f1_summary(
    scorer: str,
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    confidence: float = 0.95,
    resamples: int = 400,
    seed: int = 0,
) -> ScoreSummary:
    """Macro-F1 of a run with a percentile bootstrap interval over items.

    Macro-F1 is not a mean of item scores, so neither Wilson nor t applies; the
    bootstrap resamples items (seeded: the same run always gets the same interval)
    and recomputes the statistic from per-class counts, vectorized with numpy.
    """
    value = macro_f1(predictions, references)
    n = len(references)
    if n == 0:
        return ScoreSummary(
            scorer=scorer, value=math.nan, ci_lower=math.nan, ci_upper=math.nan, n=0
        )
    import numpy as np  # noqa: PLC0415 - lazy: see the imports at the top

    codes: dict[str, int] = {}
    pred = np.array([codes.setdefault(_label(p), len(codes)) for p in predictions])
    ref = np.array([codes.setdefault(_label(r), len(codes)) for r in references])
    k = len(codes)
    from monitor.core.stats.bootstrap import (  # noqa: PLC0415 - lazy, as numpy above
        bootstrap_replicates,
        percentile_interval,
    )

    def replicate(idx: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        rows = idx.shape[0]
        p, r = pred[idx], ref[idx]
        offsets = (np.arange(rows) * k)[:, None]
        tp = np.bincount((offsets + p)[p == r], minlength=rows * k).reshape(rows, k)
        n_pred = np.bincount((offsets + p).ravel(), minlength=rows * k).reshape(rows, k)
        n_ref = np.bincount((offsets + r).ravel(), minlength=rows * k).reshape(rows, k)
        seen = (n_pred + n_ref) > 0
        f1 = np.where(seen, 2 * tp / np.maximum(n_pred + n_ref, 1), 0.0)
        return np.asarray(f1.sum(axis=1) / seen.sum(axis=1), dtype=float)

    replicates = bootstrap_replicates(
        n, replicate, rng=np.random.default_rng(seed), resamples=resamples
    )
    lower, upper = percentile_interval(replicates, confidence)
    return ScoreSummary(
        scorer=scorer,
        value=value,
        ci_lower=min(float(lower), value),
        ci_upper=max(float(upper), value),
        n=n,
    )
