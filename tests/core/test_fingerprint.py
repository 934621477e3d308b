"""Run fingerprints: comparability, served-model changes, and the stored JSON form."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from monitor.config import EndpointSettings
from monitor.core.fingerprint import Difference, Fingerprint, differences, served_change
from monitor.core.model import Benchmark, Item, ScorerSpec
from monitor.service import measurement

BASE = Fingerprint(
    endpoint_type="openai-chat",
    endpoint_host="llm.internal:8443",
    model="gpt-x",
    params={"temperature": 0, "max_tokens": 64},
    request=None,
    benchmark_version="v1",
    scorers=("exact_match=exact_match",),
    monitor_version="0.1.0",
)


def served(models: dict[str, int], prints: dict[str, int] | None = None) -> Fingerprint:
    return BASE.served(models, prints or {})


class TestDifferences:
    def test_identical_runs_are_comparable(self) -> None:
        """Same configuration: no difference, whatever was served or monitor's version."""
        other = replace(served({"a": 3}, {"fp": 3}), monitor_version="0.2.0")
        assert differences(BASE, other) == []

    def test_a_parameter_is_named(self) -> None:
        """A changed temperature is `params.temperature`, old and new value."""
        hot = replace(BASE, params={"temperature": 0.7, "max_tokens": 64})
        assert differences(BASE, hot) == [Difference("params.temperature", 0, 0.7)]
        assert str(differences(BASE, hot)[0]) == "params.temperature: 0 -> 0.7"

    def test_an_added_parameter_is_unset_before(self) -> None:
        """A parameter only one run has differs from `unset`."""
        seeded = replace(BASE, params={**BASE.params, "seed": 7})
        (diff,) = differences(BASE, seeded)
        assert (diff.field, diff.a, diff.b) == ("params.seed", None, 7)
        assert str(diff) == "params.seed: unset -> 7"

    def test_every_configured_field_counts(self) -> None:
        """Type, host, model, request shape, version and scorers each break comparability."""
        changes: dict[str, Any] = {
            "endpoint_type": "openai-completions",
            "endpoint_host": "other:80",
            "model": "gpt-y",
            "request": "abc",
            "benchmark_version": "v2",
            "scorers": ("exact_match=regex",),
        }
        for name, value in changes.items():
            (diff,) = differences(BASE, replace(BASE, **{name: value}))
            assert diff.field == name

    def test_symmetric_in_fields(self) -> None:
        """a vs b and b vs a name the same fields, values swapped."""
        other = replace(BASE, model="gpt-y", params={"temperature": 1})
        forward, backward = differences(BASE, other), differences(other, BASE)
        assert [d.field for d in forward] == [d.field for d in backward]
        assert [(d.a, d.b) for d in forward] == [(d.b, d.a) for d in backward]


class TestServedChange:
    def test_no_change_while_served_alike(self) -> None:
        """The same model and fingerprint as every baseline run: nothing to say."""
        base = [served({"m1": 40}, {"fp_a": 40})] * 3
        assert served_change(served({"m1": 40}, {"fp_a": 40}), base) is None

    def test_a_new_model_id_is_named_first(self) -> None:
        """A new model id wins over a new fingerprint; the baseline's values are listed."""
        base = [served({"m1": 40}, {"fp_a": 40})] * 2
        change = served_change(served({"m2": 40}, {"fp_b": 40}), base)
        assert change is not None
        assert (change.field, change.before, change.after) == ("model", ("m1",), "m2")
        assert str(change) == "served model changed: baseline m1, this run m2"

    def test_a_new_fingerprint_behind_the_same_model(self) -> None:
        base = [served({"m1": 40}, {"fp_a": 40})] * 2
        change = served_change(served({"m1": 40}, {"fp_b": 40}), base)
        assert change is not None
        assert change.to_json() == {
            "kind": "served_model_changed",
            "field": "system_fingerprint",
            "before": ["fp_a"],
            "after": "fp_b",
        }

    def test_replicas_in_every_run_raise_nothing(self) -> None:
        """An API answering from two backends in every run is not a change, whichever leads."""
        base = [
            served({"m1": 40}, {"fp_a": 25, "fp_b": 15}),
            served({"m1": 40}, {"fp_b": 30, "fp_a": 10}),
        ]
        assert served_change(served({"m1": 40}, {"fp_b": 21, "fp_a": 19}), base) is None

    def test_a_mixed_baseline_keeps_saying_so(self) -> None:
        """After a change, runs from before it in the window keep the note alive."""
        base = [served({"m1": 40}, {"fp_a": 40}), served({"m1": 40}, {"fp_b": 40})]
        change = served_change(served({"m1": 40}, {"fp_b": 40}), base)
        assert change is not None
        assert change.before == ("fp_a", "fp_b")

    def test_a_configured_model_change_is_not_a_silent_update(self) -> None:
        """Baseline runs of another configured model are another measurement: ignored."""
        base = [replace(served({"old": 40}), model="gpt-old")]
        assert served_change(served({"new": 40}), base) is None

    def test_apis_that_return_nothing(self) -> None:
        """No model or fingerprint in the answers: nothing is compared."""
        assert served_change(served({}), [served({})] * 3) is None
        assert served_change(served({"m1": 4}), [served({})] * 3) is None

    def test_dominant_value_breaks_ties_by_name(self) -> None:
        assert served({"b": 2, "a": 2, "c": 1}).served_model == "a"
        assert served({}).served_model is None


counts = st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 1000), max_size=4)
json_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))


@given(
    params=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4),
    models=counts,
    prints=counts,
    model=st.one_of(st.none(), st.text(max_size=8)),
)
def test_json_round_trip(
    params: dict[str, Any], models: dict[str, int], prints: dict[str, int], model: str | None
) -> None:
    """from_json(to_json(f)) == f for any parameters and served counts."""
    fp = replace(BASE, params=params, model=model).served(models, prints)
    assert Fingerprint.from_json(fp.to_json()) == fp


class TestMeasurement:
    def test_host_only_and_secrets_masked(self) -> None:
        """The URL's path and credentials stay out; a secret parameter value is masked."""
        ep = EndpointSettings(
            name="ep",
            type="openai-chat",
            url="https://user:pw@llm.internal:8443/v1?key=abc",
            model="gpt-x",
            params={"temperature": 0, "user": "tenant-sk-secret-1234"},
        )
        bench = Benchmark(
            name="b",
            version="v9",
            items=(Item(key="i0", fields={}),),
            scorers=(ScorerSpec("regex", "fmt", {"pattern": "^a$"}),),
        )
        fp = measurement(ep, bench, secrets={"sk-secret-1234"})
        assert fp.endpoint_host == "llm.internal:8443"
        assert fp.params == {"temperature": 0, "user": "tenant-***"}
        assert fp.scorers == ('fmt=regex{"pattern": "^a$"}',)
        assert (fp.benchmark_version, fp.request) == ("v9", None)

    def test_the_request_template_enters_as_a_digest(self) -> None:
        """http-json: a changed body template changes the fingerprint's `request`."""

        def fp(body: str) -> Fingerprint:
            ep = EndpointSettings(
                name="ep", type="http-json", url="http://x:1/p", body=body, response="$.y"
            )
            return measurement(ep, Benchmark(name="b", version="v", items=(), scorers=()))

        first, second = fp('{"q": {{ text | tojson }}}'), fp('{"query": {{ text | tojson }}}')
        assert first.request is not None
        assert len(first.request) == 16
        assert [d.field for d in differences(first, second)] == ["request"]
