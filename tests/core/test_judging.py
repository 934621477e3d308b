"""The pure part of LLM-judge scorers: settings, answer parsing, votes (monitor/core/judging.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.judging import (
    JudgeScale,
    JudgmentError,
    combine_votes,
    judge_spec,
    label_score,
    parse_judgment,
    quote_untrusted,
)
from monitor.core.model import ScorerSpec

PF = JudgeScale()
FIVE = JudgeScale(5)


class TestSpec:
    def test_defaults_send_temperature_0_and_a_seed_over_the_endpoints_params(self) -> None:
        spec = judge_spec(ScorerSpec("llm_reference", "c", {"endpoint": "j"}))
        assert spec.request_params({"temperature": 0.7, "max_tokens": 9}) == {
            "temperature": 0,
            "seed": 0,
            "max_tokens": 9,
        }
        own = judge_spec(ScorerSpec("llm_reference", "c", {"endpoint": "j", "params": {"seed": 7}}))
        assert own.request_params({})["seed"] == 7

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({}, "`endpoint` is required"),
            ({"endpoint": "j", "votes": 2}, "must be odd"),
            ({"endpoint": "j", "votes": 10}, "from 1 to 9"),
            ({"endpoint": "j", "scale": 11}, "pass_fail or an integer from 3 to 10"),
            ({"endpoint": "j", "colour": 1}, "unknown parameter(s) ['colour']"),
            ({"endpoint": "j", "calibration": {"every": 2}}, "needs `data`"),
            ({"endpoint": "j", "params": {"messages": []}}, "must not set 'messages'"),
        ],
    )
    def test_bad_settings_name_the_scorer_and_the_key(
        self, params: dict[str, object], message: str
    ) -> None:
        with pytest.raises(ValueError, match="scorer 'c' \\(llm_reference\\)") as err:
            judge_spec(ScorerSpec("llm_reference", "c", params))
        assert message in str(err.value)

    def test_a_rubric_is_required_for_llm_rubric(self) -> None:
        with pytest.raises(ValueError, match="`rubric` must be a non-empty string"):
            judge_spec(ScorerSpec("llm_rubric", "q", {"endpoint": "j"}))

    def test_the_prompt_digest_changes_with_the_wording_only(self) -> None:
        a = judge_spec(ScorerSpec("llm_rubric", "q", {"endpoint": "j", "rubric": "be kind"}))
        b = judge_spec(ScorerSpec("llm_rubric", "q", {"endpoint": "k", "rubric": "be kind"}))
        c = judge_spec(ScorerSpec("llm_rubric", "q", {"endpoint": "j", "rubric": "be brief"}))
        assert a.prompt_digest() == b.prompt_digest() != c.prompt_digest()


class TestParse:
    @pytest.mark.parametrize(
        ("text", "score", "reason"),
        [
            ('{"reason": "fine", "verdict": "pass"}', 1.0, "fine"),
            ('{"verdict": "FAIL", "reason": "wrong"}', 0.0, "wrong"),
            ('Sure!\n```json\n{"verdict": "pass", "reason": "ok"}\n```', 1.0, "ok"),
            ('I think {not json} but {"verdict": true}', 1.0, ""),
            ("VERDICT: PASS\nREASON: matches", 1.0, "matches"),
            ("**Verdict:** fail\nReasoning: off", 0.0, "off"),
        ],
    )
    def test_pass_fail_answers(self, text: str, score: float, reason: str) -> None:
        judged = parse_judgment(text, PF)
        assert (judged.score, judged.reason) == (score, reason)

    @pytest.mark.parametrize(
        ("text", "score"),
        [('{"score": 5}', 1.0), ('{"score": 1}', 0.0), ('{"score": "3"}', 0.5), ("SCORE: 4", 0.75)],
    )
    def test_ordinal_answers_map_to_0_1(self, text: str, score: float) -> None:
        assert parse_judgment(text, FIVE).score == score

    @pytest.mark.parametrize(
        ("text", "scale", "message"),
        [
            ('{"reason": "the answer is right", "verdict": "pa', PF, "no verdict"),
            ("I cannot decide.", PF, "no verdict"),
            ("", PF, "empty answer"),
            ('{"verdict": "maybe"}', PF, "not on the scale pass_fail"),
            ('{"score": 6}', FIVE, "not on the scale 5"),
            ('{"score": 2.5}', FIVE, "not on the scale 5"),
            ('{"score": true}', FIVE, "not on the scale 5"),
        ],
    )
    def test_unreadable_answers_are_errors(
        self, text: str, scale: JudgeScale, message: str
    ) -> None:
        with pytest.raises(JudgmentError, match=message):
            parse_judgment(text, scale)

    @given(st.text(max_size=300))
    def test_any_text_gives_a_score_on_the_scale_or_a_judgment_error(self, text: str) -> None:
        for scale in (PF, FIVE):
            try:
                judged = parse_judgment(text, scale)
            except JudgmentError:
                continue
            assert 0.0 <= judged.score <= 1.0
            assert len(judged.reason) <= 2000


class TestVotesAndLabels:
    def test_majority_on_pass_fail_and_mean_on_ordinal(self) -> None:
        assert combine_votes([1.0, 0.0, 1.0], PF) == 1.0
        assert combine_votes([1.0, 0.0, 0.0], PF) == 0.0
        assert combine_votes([1.0, 0.5, 0.0], FIVE) == 0.5
        with pytest.raises(ValueError, match="no votes"):
            combine_votes([], PF)

    @pytest.mark.parametrize(
        ("raw", "scale", "score"),
        [("pass", PF, 1.0), ("No", PF, 0.0), (True, PF, 1.0), (0, PF, 0.0), (3, FIVE, 0.5),
         ("x", PF, None), (9, FIVE, None)],
    )  # fmt: skip
    def test_labels(self, raw: object, scale: JudgeScale, score: float | None) -> None:
        assert label_score(raw, scale) == score


@given(st.text(max_size=200))
def test_quoted_text_never_holds_a_closing_tag(text: str) -> None:
    quoted = quote_untrusted(text)
    for tag in ("answer", "reference", "task", "rubric"):
        assert f"</{tag}>" not in quoted.lower().replace(" ", "")
