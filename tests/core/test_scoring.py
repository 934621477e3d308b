"""Tests for monitor.core.scoring: scorers, normalization, run aggregates and their CIs."""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from itertools import pairwise, permutations
from typing import Any

import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.model import ScorerSpec
from monitor.core.scoring import (
    NORMALIZERS,
    SCORER_KINDS,
    Scorer,
    build_scorer,
    macro_f1,
    normalize_text,
    summarize_scores,
)


def scorer(kind: str, **params: Any) -> Scorer:
    return build_scorer(ScorerSpec(kind=kind, name=kind, params=params))


# One instance of every kind (with non-default params where that widens coverage),
# shared by the property tests.
ALL_SCORERS: tuple[Scorer, ...] = (
    scorer("exact_match"),
    scorer("exact_match", normalize=list(NORMALIZERS)),
    scorer("contains"),
    scorer("regex", pattern=r"^(refund|billing|other)$", flags=["ignorecase"]),
    scorer("regex", pattern=r"\d+", mode="search"),
    scorer("numeric"),
    scorer("numeric", rel_tol=0.05),
    scorer("token_f1"),
    scorer("choice"),
    scorer("choice", choices="ABCDEFGHIJ"),
    scorer("json_valid"),
    scorer("json_schema", schema={"type": "object", "required": ["a"]}),
    scorer("classification"),
)

references = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=3),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)

outputs = st.one_of(
    st.text(max_size=200),
    # Near-misses of the formats the scorers parse, so the parsers are really exercised.
    st.from_regex(r"[-+\u2212]?[\d,\.eE]{1,20}", fullmatch=True),
    st.from_regex(r"(```(json)?\n?)?[\[\]{}\":,0-9a-z ]{0,30}(\n?```)?", fullmatch=True),
    st.from_regex(r"[*(\[ ]{0,2}(answer|Answer)?( is|:)? ?[A-Ja-j][)\].]?", fullmatch=True),
)


class TestNormalizeText:
    """normalize_text and the NORMALIZERS step names."""

    @pytest.mark.parametrize(
        ("text", "steps", "expected"),
        [
            ("  Refund \n", ["strip"], "Refund"),
            ("  Refund \n", ["lower"], "  refund \n"),
            ("a \t b\n\nc", ["collapse_whitespace"], "a b c"),
            (" a \t b ", ["collapse_whitespace"], " a b "),
            (" a \t b ", ["collapse_whitespace", "strip"], "a b"),
            ("Hello, world!", ["strip_punctuation"], "Hello world"),
            ("“Paris”。", ["strip_punctuation"], "Paris"),
            (
                "  The  END. ",
                ["strip", "lower", "collapse_whitespace", "strip_punctuation"],
                "the end",
            ),
            ("  Same  ", [], "  Same  "),
        ],
    )
    def test_steps(self, text: str, steps: list[str], expected: str) -> None:
        """Each step does what its name says, alone and combined."""
        assert normalize_text(text, steps) == expected

    def test_order_is_canonical(self) -> None:
        """Listing steps in a different order gives the same result."""
        text = " a . b "
        results = {normalize_text(text, list(p)) for p in permutations(NORMALIZERS)}
        assert results == {"a b"}

    def test_unknown_step_rejected(self) -> None:
        """An unknown step name raises ValueError listing the allowed names."""
        with pytest.raises(ValueError, match=r"unknown normalize step 'upper' \(allowed: strip,"):
            normalize_text("x", ["upper"])

    def test_bare_string_rejected(self) -> None:
        """A single string instead of a list is rejected rather than split into letters."""
        with pytest.raises(ValueError, match="must be a list of step names"):
            normalize_text("x", "lower")

    def test_strip_punctuation_covers_all_unicode_punctuation(self) -> None:
        """Every Unicode punctuation code point is removed by strip_punctuation."""
        punctuation = "".join(
            chr(cp)
            for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp)).startswith("P")
        )
        assert normalize_text(punctuation, ["strip_punctuation"]) == ""

    @given(text=st.text(), steps=st.lists(st.sampled_from(NORMALIZERS), unique=True))
    def test_idempotent(self, text: str, steps: list[str]) -> None:
        """Normalizing twice gives the same text as normalizing once."""
        once = normalize_text(text, steps)
        assert normalize_text(once, steps) == once

    @given(text=st.text(), steps=st.lists(st.sampled_from(NORMALIZERS), unique=True))
    def test_order_insensitive(self, text: str, steps: list[str]) -> None:
        """Reversing the listed steps never changes the result."""
        assert normalize_text(text, steps) == normalize_text(text, steps[::-1])


class TestBuildScorer:
    """build_scorer: kinds, scorer metadata and parameter validation messages."""

    def test_kinds(self) -> None:
        """SCORER_KINDS lists exactly the documented scorer kinds."""
        assert (
            frozenset(
                {
                    "exact_match",
                    "contains",
                    "regex",
                    "numeric",
                    "token_f1",
                    "choice",
                    "json_valid",
                    "json_schema",
                    "classification",
                }
            )
            == SCORER_KINDS
        )

    @pytest.mark.parametrize("kind", sorted(SCORER_KINDS - {"regex", "json_schema"}))
    def test_builds_with_defaults(self, kind: str) -> None:
        """Every kind without required params builds from an empty params mapping."""
        built = build_scorer(ScorerSpec(kind=kind, name=f"my_{kind}"))
        assert (built.name, built.kind) == (f"my_{kind}", kind)
        assert built.binary is (kind != "token_f1")

    @pytest.mark.parametrize(
        ("kind", "params", "message"),
        [
            (
                "exact_match",
                {"foo": 1},
                "exact_match: unknown parameter 'foo' (allowed: normalize)",
            ),
            (
                "json_valid",
                {"strict": True},
                "json_valid: unknown parameter 'strict' (it takes no parameters)",
            ),
            (
                "regex",
                {"pattern": "("},
                "regex: invalid pattern '(': missing ), unterminated subpattern at position 0",
            ),
            ("regex", {}, "regex: missing required parameter 'pattern'"),
            ("regex", {"pattern": 5}, "regex: parameter 'pattern' must be a string, got 5"),
            (
                "regex",
                {"pattern": "x", "mode": "match"},
                "regex: parameter 'mode' must be 'fullmatch' or 'search', got 'match'",
            ),
            (
                "regex",
                {"pattern": "x", "flags": ["verbose"]},
                "regex: unknown regex flag 'verbose' (allowed: ignorecase, multiline, dotall)",
            ),
            (
                "regex",
                {"pattern": "x", "flags": "ignorecase"},
                "regex: parameter 'flags' must be a list of strings, got 'ignorecase'",
            ),
            (
                "exact_match",
                {"normalize": ["upper"]},
                "exact_match: parameter 'normalize': unknown normalize step 'upper' "
                "(allowed: strip, lower, collapse_whitespace, strip_punctuation)",
            ),
            (
                "contains",
                {"normalize": "lower"},
                "contains: parameter 'normalize' must be a list of strings, got 'lower'",
            ),
            (
                "numeric",
                {"abs_tol": -1},
                "numeric: parameter 'abs_tol' must be a finite number >= 0, got -1",
            ),
            (
                "numeric",
                {"rel_tol": "0.1"},
                "numeric: parameter 'rel_tol' must be a finite number >= 0, got '0.1'",
            ),
            (
                "numeric",
                {"abs_tol": True},
                "numeric: parameter 'abs_tol' must be a finite number >= 0, got True",
            ),
            (
                "numeric",
                {"abs_tol": math.inf},
                "numeric: parameter 'abs_tol' must be a finite number >= 0, got inf",
            ),
            ("choice", {"choices": "AaB"}, "choice: parameter 'choices' must be distinct"),
            ("choice", {"choices": ""}, "choice: parameter 'choices' must be distinct"),
            ("choice", {"choices": ["AB"]}, "choice: parameter 'choices' must be distinct"),
            ("json_schema", {}, "json_schema: missing required parameter 'schema'"),
            (
                "json_schema",
                {"schema": "object"},
                "json_schema: parameter 'schema' must be a mapping (a JSON Schema), got 'object'",
            ),
            (
                "json_schema",
                {"schema": {"type": "strin"}},
                "json_schema: invalid schema at $.type: 'strin' is not valid",
            ),
            (
                "json_schema",
                {"schema": {"$schema": "http://example.com/my-dialect"}},
                "json_schema: unknown JSON Schema dialect $schema='http://example.com/my-dialect'",
            ),
            (
                "json_schema",
                {"schema": {"properties": {"a": {"$ref": "#/$defs/missing"}}}},
                "json_schema: $ref '#/$defs/missing' at $.properties.a does not resolve",
            ),
            (
                "json_schema",
                {"schema": {"$ref": "https://example.com/schemas/order.json"}},
                "json_schema: $ref 'https://example.com/schemas/order.json' at $ does not "
                "resolve (remote schemas are never fetched; define it under $defs)",
            ),
        ],
    )
    def test_bad_params_message(self, kind: str, params: dict[str, Any], message: str) -> None:
        """A bad parameter raises ValueError whose message names the scorer and the parameter."""
        with pytest.raises(ValueError, match="^" + re.escape(message)):
            scorer(kind, **params)

    def test_unknown_kind(self) -> None:
        """An unknown kind raises ValueError listing the allowed kinds."""
        with pytest.raises(ValueError, match=r"^unknown scorer kind 'bleu' \(allowed: choice, "):
            build_scorer(ScorerSpec(kind="bleu", name="bleu"))

    def test_message_names_custom_scorer(self) -> None:
        """When the name differs from the kind, the message names both."""
        spec = ScorerSpec(kind="regex", name="intent_re", params={"pattern": "["})
        with pytest.raises(ValueError, match=r"^regex scorer 'intent_re': invalid pattern '\['"):
            build_scorer(spec)

    def test_params_must_be_mapping(self) -> None:
        """Params given as a list instead of a mapping are rejected clearly."""
        spec = ScorerSpec(kind="regex", name="regex", params=["x"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^regex: params must be a mapping, got list"):
            build_scorer(spec)

    def test_empty_name_rejected(self) -> None:
        """A scorer needs a name to key its scores."""
        with pytest.raises(ValueError, match="scorer name must not be empty"):
            build_scorer(ScorerSpec(kind="exact_match", name=""))


class TestExactMatch:
    """exact_match scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("refund", "refund", 1.0),
            ("refund\n", "refund", 1.0),
            ("  refund ", " refund", 1.0),
            ("Refund", "refund", 0.0),
            ("refund.", "refund", 0.0),
            ("billing", ["refund", "billing"], 1.0),
            ("other", ["refund", "billing"], 0.0),
            ("x", [None, "x"], 1.0),
            ("3", 3, 1.0),
            ("", "", 1.0),
            ("refund", None, 0.0),
        ],
    )
    def test_default(self, output: str, reference: object, expected: float) -> None:
        """By default only surrounding whitespace is ignored."""
        assert scorer("exact_match")(output, reference) == expected

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("Refund!", "refund", 1.0),
            ("The  Eiffel\nTower.", "the eiffel tower", 1.0),
            ("Eiffel", "the eiffel tower", 0.0),
        ],
    )
    def test_normalized(self, output: str, reference: object, expected: float) -> None:
        """Configured normalization applies to both output and reference."""
        built = scorer(
            "exact_match", normalize=["lower", "strip_punctuation", "collapse_whitespace"]
        )
        assert built(output, reference) == expected


class TestContains:
    """contains scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("The refund was issued yesterday.", "refund", 1.0),
            ("REFUND please", "refund", 1.0),
            ("Paris, France", " Paris ", 1.0),
            ("billing question", "refund", 0.0),
            ("It is in Lyon", ["Paris", "Lyon"], 1.0),
            ("It is in Nice", ["Paris", "Lyon"], 0.0),
            ("anything", "", 0.0),
            ("anything", None, 0.0),
            ("answer: 42", 42, 1.0),
        ],
    )
    def test_cases(self, output: str, reference: object, expected: float) -> None:
        """The reference (or any of a list) must occur in the output, case-insensitively."""
        assert scorer("contains")(output, reference) == expected

    def test_case_sensitive_when_configured(self) -> None:
        """With only strip, case matters."""
        assert scorer("contains", normalize=["strip"])("REFUND", "refund") == 0.0


class TestRegex:
    """regex scorer."""

    @pytest.mark.parametrize(
        ("params", "output", "expected"),
        [
            ({"pattern": "^(refund|billing|other)$"}, "refund", 1.0),
            ({"pattern": "^(refund|billing|other)$"}, "refund\n", 1.0),
            ({"pattern": "refund|billing"}, "refund now", 0.0),
            ({"pattern": "refund|billing", "mode": "search"}, "please refund now", 1.0),
            ({"pattern": "refund", "flags": ["ignorecase"]}, "REFUND", 1.0),
            ({"pattern": "refund"}, "REFUND", 0.0),
            ({"pattern": "^b$", "mode": "search", "flags": ["multiline"]}, "a\nb\nc", 1.0),
            ({"pattern": "a.c", "flags": ["dotall"]}, "a\nc", 1.0),
            ({"pattern": "a.c"}, "a\nc", 0.0),
            ({"pattern": r"\d{3}-\d{4}", "mode": "search"}, "call 555-1234", 1.0),
            ({"pattern": " x ", "normalize": []}, " x ", 1.0),
        ],
    )
    def test_cases(self, params: dict[str, Any], output: str, expected: float) -> None:
        """The output is matched against the pattern in the configured mode and flags."""
        assert scorer("regex", **params)(output, "ignored") == expected

    def test_reference_unused(self) -> None:
        """The score does not depend on the reference, even a missing one."""
        built = scorer("regex", pattern="ok")
        assert built("ok", None) == built("ok", "nope") == 1.0


class TestNumeric:
    """numeric scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("42", 42, 1.0),
            ("The answer is 42.", "42", 1.0),
            ("It costs 1,234.5 dollars", 1234.5, 1.0),
            ("$1,000,000", "1,000,000", 1.0),
            ("-7 degrees", -7, 1.0),
            ("\u22127", -7, 1.0),
            ("+3", 3, 1.0),
            ("1.5e-3", 0.0015, 1.0),
            ("2.5E+2 m", 250, 1.0),
            (".5", 0.5, 1.0),
            ("about 3.14159", 3.14159, 1.0),
            ("41.9999999", 42, 1.0),
            ("41.99", 42, 0.0),
            ("first 3 then 4", 4, 0.0),
            ("1,2345", 12345, 0.0),
            ("x-5", 5, 1.0),
            ("no number here", 1, 0.0),
            ("42", None, 0.0),
            ("42", "forty-two", 0.0),
            ("1", True, 0.0),
            ("42", math.nan, 0.0),
            ("1e999", math.inf, 1.0),
            ("42", 10**400, 0.0),
        ],
    )
    def test_default_tolerance(self, output: str, reference: object, expected: float) -> None:
        """The first number in the output must equal the reference within 1e-6."""
        assert scorer("numeric")(output, reference) == expected

    @pytest.mark.parametrize(("output", "expected"), [("101", 1.0), ("99", 1.0), ("102", 0.0)])
    def test_relative_tolerance(self, output: str, expected: float) -> None:
        """rel_tol accepts values within that fraction of the reference."""
        assert scorer("numeric", rel_tol=0.01, abs_tol=0)(output, 100) == expected


class TestTokenF1:
    """token_f1 scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("the cat sat", "a cat sat", 1.0),
            ("Cat, sat!", "cat sat", 1.0),
            ("“Paris”", "Paris", 1.0),
            ("cat sat on mat", "cat sat", 2 / 3),
            ("cat cat", "cat", 2 / 3),
            ("dog", "cat", 0.0),
            ("", "", 1.0),
            ("the", "an", 1.0),
            ("", "cat", 0.0),
            ("cat", "", 0.0),
            ("Paris", ["London", "paris france"], 2 / 3),
            ("Paris", [], 0.0),
            ("cat", None, 0.0),
        ],
    )
    def test_cases(self, output: str, reference: object, expected: float) -> None:
        """SQuAD-style F1 over normalized tokens, best over a list of references."""
        assert scorer("token_f1")(output, reference) == pytest.approx(expected)

    def test_continuous(self) -> None:
        """token_f1 is the only continuous scorer."""
        assert scorer("token_f1").binary is False


class TestChoice:
    """choice scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("B", "B", 1.0),
            ("b", "B", 1.0),
            ("(B)", "B", 1.0),
            ("B.", "B", 1.0),
            ("**C**", "C", 1.0),
            ("Answer: B", "B", 1.0),
            ("**Answer:** C", "C", 1.0),
            ("The answer is (c).", "C", 1.0),
            ("The answer is d.", "D", 1.0),
            ("I think the answer is D because it is larger.", "D", 1.0),
            ("Looking at A and B, the answer is B", "B", 1.0),
            ("Option C is correct.", "C", 1.0),
            ("Either way (d) fits.", "D", 1.0),
            ("the answer is a good one, but B fits better", "B", 1.0),
            ("B", "A", 0.0),
            ("answer: b because", "B", 0.0),
            ("E", "E", 0.0),
            ("No idea.", "A", 0.0),
            ("", "A", 0.0),
            ("B", 1, 1.0),
            ("B", "(b)", 1.0),
            ("B", None, 0.0),
            ("B", 7, 0.0),
            ("A", True, 0.0),
        ],
    )
    def test_default_choices(self, output: str, reference: object, expected: float) -> None:
        """The extracted letter among A-D matches the reference letter or 0-based index."""
        assert scorer("choice")(output, reference) == expected

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("I think the answer is J", "J", 1.0),
            ("(e)", "E", 1.0),
            ("The answer is 3", "3", 0.0),
        ],
    )
    def test_custom_choices(self, output: str, reference: object, expected: float) -> None:
        """Custom choices widen the letters that can be extracted."""
        assert scorer("choice", choices="ABCDEFGHIJ")(output, reference) == expected

    def test_digit_choices(self) -> None:
        """Choices given as a list of digits work like letters."""
        assert scorer("choice", choices=["1", "2", "3"])("Answer: 2", "2") == 1.0


class TestJsonValid:
    """json_valid scorer."""

    @pytest.mark.parametrize(
        ("output", "expected"),
        [
            ('{"a": 1}', 1.0),
            ('  {"a": [1, 2.5, null, true]}\n', 1.0),
            ("[1, 2]", 1.0),
            ('"text"', 1.0),
            ("42", 1.0),
            ('```json\n{"a": 1}\n```', 1.0),
            ("```JSON\n[1]\n```", 1.0),
            ("```\n[1]\n```", 1.0),
            ('Here it is: {"a": 1}', 0.0),
            ('```json\n{"a": 1}\n``` and more', 0.0),
            ('{"a": 1,}', 0.0),
            ("{'a': 1}", 0.0),
            ("NaN", 0.0),
            ('{"a": Infinity}', 0.0),
            ("", 0.0),
            ("```json\n```", 0.0),
            ("[" * 100_000, 0.0),
            ("[" * 100_000 + "]" * 100_000, 0.0),
        ],
    )
    def test_cases(self, output: str, expected: float) -> None:
        """The whole output, or one fenced block, must be strict JSON."""
        assert scorer("json_valid")(output, None) == expected


ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "integer"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
        "email": {"type": "string", "format": "email"},
    },
    "$defs": {"item": {"type": "object", "required": ["sku"]}},
    "additionalProperties": False,
}


class TestJsonSchema:
    """json_schema scorer."""

    @pytest.mark.parametrize(
        ("output", "expected"),
        [
            ('{"id": 1, "items": [{"sku": "x"}]}', 1.0),
            ('```json\n{"id": 1, "items": []}\n```', 1.0),
            ('{"id": 1, "items": [{"sku": "x"}], "email": "a@b.c"}', 1.0),
            ('{"id": 1, "items": [{"sku": "x"}], "email": "not-an-email"}', 0.0),
            ('{"id": "1", "items": []}', 0.0),
            ('{"id": 1, "items": [{}]}', 0.0),
            ('{"id": 1}', 0.0),
            ('{"id": 1, "items": [], "extra": 0}', 0.0),
            ("not json", 0.0),
            ("[" * 100_000 + "]" * 100_000, 0.0),
        ],
    )
    def test_cases(self, output: str, expected: float) -> None:
        """The output must parse and validate, with $refs and formats enforced."""
        assert scorer("json_schema", schema=ORDER_SCHEMA)(output, None) == expected

    @pytest.mark.parametrize(
        "schema",
        [
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": {"n": {"type": "integer"}},
                "properties": {"a": {"$ref": "#/definitions/n"}},
            },
            {
                "$id": "https://example.com/root.json",
                "$defs": {"n": {"$id": "n.json", "type": "integer"}},
                "properties": {"a": {"$ref": "n.json"}},
            },
            {
                "$defs": {"n": {"$anchor": "num", "type": "integer"}},
                "properties": {"a": {"$ref": "#num"}},
            },
        ],
    )
    def test_local_refs_resolve(self, schema: dict[str, Any]) -> None:
        """Draft-07 definitions, nested $id and anchors all resolve at build and at scoring."""
        built = scorer("json_schema", schema=schema)
        assert built('{"a": 1}', None) == 1.0
        assert built('{"a": "x"}', None) == 0.0

    def test_ref_inside_instance_data_is_not_checked(self) -> None:
        """A "$ref" key inside enum values is data, not a reference, so it builds and matches."""
        built = scorer("json_schema", schema={"enum": [{"$ref": "#/not/a/schema"}]})
        assert built('{"$ref": "#/not/a/schema"}', None) == 1.0


class TestClassification:
    """classification scorer."""

    @pytest.mark.parametrize(
        ("output", "reference", "expected"),
        [
            ("refund", "refund", 1.0),
            (" Refund\n", "refund", 1.0),
            ("REFUND", "Refund ", 1.0),
            ("billing", "refund", 0.0),
            ("refund request", "refund", 0.0),
            ("3", 3, 1.0),
            ("refund", None, 0.0),
        ],
    )
    def test_cases(self, output: str, reference: object, expected: float) -> None:
        """Labels match after strip and lower-casing."""
        assert scorer("classification")(output, reference) == expected


class TestScorerProperties:
    """Properties every scorer must have."""

    @given(output=outputs, reference=references)
    def test_score_in_unit_interval(self, output: str, reference: object) -> None:
        """Every scorer returns a float in [0, 1] for any output and reference, never raising."""
        for built in ALL_SCORERS:
            value = built(output, reference)
            assert isinstance(value, float)
            assert 0.0 <= value <= 1.0, built.name

    @given(output=outputs, reference=references)
    def test_binary_scorers_give_zero_or_one(self, output: str, reference: object) -> None:
        """Scorers declared binary only ever return 0 or 1."""
        for built in ALL_SCORERS:
            if built.binary:
                assert built(output, reference) in (0.0, 1.0), built.name

    def test_missing_reference_scores_zero(self) -> None:
        """Scorers that need a reference score 0 without one, even on a plausible output."""
        for kind in ("exact_match", "contains", "numeric", "token_f1", "choice", "classification"):
            assert scorer(kind)("", None) == 0.0
            assert scorer(kind)("A", None) == 0.0


class TestSummarizeScores:
    """summarize_scores: means with Wilson and Student-t intervals."""

    def test_wilson_textbook_value(self) -> None:
        """8 of 10 at 95% gives the textbook Wilson interval [0.4902, 0.9433]."""
        summary = summarize_scores("acc", [1.0] * 8 + [0.0] * 2, binary=True)
        assert summary.scorer == "acc"
        assert summary.n == 10
        assert summary.value == pytest.approx(0.8)
        assert summary.ci_lower == pytest.approx(0.4902, abs=1e-4)
        assert summary.ci_upper == pytest.approx(0.9433, abs=1e-4)

    @pytest.mark.parametrize(
        ("successes", "n", "lower", "upper"),
        [
            (0, 10, 0.0, 0.2775),
            (10, 10, 0.7225, 1.0),
            (1, 1, 0.2065, 1.0),
            (50, 100, 0.4038, 0.5962),
        ],
    )
    def test_wilson_edges(self, successes: int, n: int, lower: float, upper: float) -> None:
        """Wilson stays inside [0, 1] and is non-degenerate at 0%, 100% and n=1."""
        values = [1.0] * successes + [0.0] * (n - successes)
        summary = summarize_scores("acc", values, binary=True)
        assert (summary.ci_lower, summary.ci_upper) == pytest.approx((lower, upper), abs=1e-4)

    @pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
    def test_t_interval_matches_scipy(self, confidence: float) -> None:
        """The continuous interval equals scipy.stats.t.interval around the mean."""
        values = [0.4, 0.5, 0.6, 0.55, 0.45, 0.52]
        summary = summarize_scores("f1", values, binary=False, confidence=confidence)
        expected = scipy.stats.t.interval(
            confidence, df=len(values) - 1, loc=sum(values) / 6, scale=scipy.stats.sem(values)
        )
        assert summary.value == pytest.approx(sum(values) / 6)
        assert (summary.ci_lower, summary.ci_upper) == pytest.approx(expected, rel=1e-9)

    def test_t_interval_clipped(self) -> None:
        """A t interval reaching past the score range is clipped to [0, 1]."""
        summary = summarize_scores("f1", [0.0, 1.0, 1.0], binary=False)
        assert (summary.ci_lower, summary.ci_upper) == (0.0, 1.0)

    def test_single_continuous_value(self) -> None:
        """With one continuous value the interval is the whole range [0, 1]."""
        summary = summarize_scores("f1", [0.7], binary=False)
        assert (summary.value, summary.ci_lower, summary.ci_upper, summary.n) == (0.7, 0.0, 1.0, 1)

    def test_constant_continuous_values(self) -> None:
        """Identical continuous values give a zero-width interval at the mean."""
        summary = summarize_scores("f1", [0.25] * 5, binary=False)
        assert (summary.ci_lower, summary.ci_upper) == (0.25, 0.25)

    @pytest.mark.parametrize("binary", [True, False])
    def test_empty(self, binary: bool) -> None:
        """No values give NaN mean and bounds with n=0."""
        summary = summarize_scores("acc", [], binary=binary)
        assert summary.n == 0
        assert math.isnan(summary.value)
        assert math.isnan(summary.ci_lower)
        assert math.isnan(summary.ci_upper)

    @pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 95.0, math.nan])
    def test_bad_confidence(self, confidence: float) -> None:
        """A confidence outside (0, 1) is rejected."""
        with pytest.raises(ValueError, match="confidence must be strictly between 0 and 1"):
            summarize_scores("acc", [1.0], binary=True, confidence=confidence)

    @pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, math.inf])
    def test_bad_values(self, bad: float) -> None:
        """Scores outside [0, 1] or not finite are rejected instead of poisoning the mean."""
        with pytest.raises(ValueError, match=r"acc: scores must be finite values in \[0, 1\]"):
            summarize_scores("acc", [1.0, bad], binary=False)

    @pytest.mark.parametrize("binary", [True, False])
    @pytest.mark.parametrize("n_pass", [1, 5, 9])
    def test_higher_confidence_wider(self, binary: bool, n_pass: int) -> None:
        """Raising the confidence level never narrows the interval (metamorphic)."""
        values = [1.0] * n_pass + [0.0] * (10 - n_pass) if binary else [0.1 * n_pass, 0.5, 0.6]
        widths = []
        for confidence in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999):
            s = summarize_scores("x", values, binary=binary, confidence=confidence)
            widths.append((s.ci_lower, s.ci_upper))
        for (lo_a, hi_a), (lo_b, hi_b) in pairwise(widths):
            assert lo_b <= lo_a
            assert hi_b >= hi_a
            assert (lo_b, hi_b) != (lo_a, hi_a) or (lo_a, hi_a) == (0.0, 1.0)

    @given(
        values=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50),
        binary=st.booleans(),
        confidences=st.tuples(
            st.floats(min_value=0.01, max_value=0.999), st.floats(min_value=0.01, max_value=0.999)
        ),
    )
    def test_interval_contains_mean_and_nests(
        self, values: list[float], binary: bool, confidences: tuple[float, float]
    ) -> None:
        """The interval lies in [0, 1], contains the mean, and nests as confidence grows."""
        low_c, high_c = sorted(confidences)
        narrow = summarize_scores("x", values, binary=binary, confidence=low_c)
        wide = summarize_scores("x", values, binary=binary, confidence=high_c)
        for s in (narrow, wide):
            assert 0.0 <= s.ci_lower <= s.value <= s.ci_upper <= 1.0
        assert wide.ci_lower <= narrow.ci_lower + 1e-12
        assert wide.ci_upper >= narrow.ci_upper - 1e-12


class TestMacroF1:
    """macro_f1 run-level aggregate."""

    def test_hand_computed(self) -> None:
        """Per-class F1 of a small confusion, averaged without weights."""
        predictions = ["refund", "refund", "billing", "refund", "other"]
        references = ["refund", "refund", "billing", "billing", "billing"]
        # refund: 2TP/(predicted+actual) = 4/5; billing: 2/4; other (never true): 0.
        assert macro_f1(predictions, references) == pytest.approx((0.8 + 0.5 + 0.0) / 3)

    def test_label_only_in_predictions_counts(self) -> None:
        """A label only ever predicted is a class with F1 0, as in scikit-learn."""
        assert macro_f1(["a", "b", "zzz"], ["a", "b", "b"]) == pytest.approx((1 + 2 / 3 + 0) / 3)

    def test_labels_normalized(self) -> None:
        """Labels compare after strip + lower, like the classification scorer."""
        assert macro_f1([" Refund\n", "BILLING"], ["refund", "billing"]) == 1.0

    def test_length_mismatch(self) -> None:
        """Sequences of different length are rejected."""
        with pytest.raises(ValueError, match="2 predictions but 1 references"):
            macro_f1(["a", "b"], ["a"])

    def test_empty(self) -> None:
        """Empty input has no classes and gives NaN."""
        assert math.isnan(macro_f1([], []))

    @given(
        pairs=st.lists(
            st.tuples(st.sampled_from("abcd"), st.sampled_from("abcde")), min_size=1, max_size=60
        )
    )
    def test_in_unit_interval(self, pairs: list[tuple[str, str]]) -> None:
        """Macro F1 always lies in [0, 1]."""
        predictions, refs = zip(*pairs, strict=True)
        assert 0.0 <= macro_f1(predictions, refs) <= 1.0

    @given(refs=st.lists(st.text(max_size=8), min_size=1, max_size=40))
    def test_perfect_predictions(self, refs: list[str]) -> None:
        """Predicting every reference exactly gives macro F1 of 1."""
        assert macro_f1(refs, refs) == 1.0
