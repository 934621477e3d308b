"""The genai-prices adapter (monitor/pricing.py) against the package's real table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.core.cost import TokenTotals
from monitor.pricing import TablePricer

WHEN = datetime(2026, 11, 15, 12, tzinfo=UTC)
TOKENS = TokenTotals(prompt=1000, completion=100, cached=200, reasoning=40, answers=4)


class TestPriceTable:
    """The genai-prices table, checked by hand against its published gpt-4o price
    ($2.50 per million input tokens, $1.25 cached, $10 output)."""

    def test_gpt_4o_by_hand(self) -> None:
        tokens = TokenTotals(prompt=1000, completion=100, answers=1)
        found = TablePricer().table_price(
            tokens, model="gpt-4o", provider="openai", api_url=None, when=WHEN
        )
        assert found is not None
        assert found[0] == pytest.approx(1000 * 2.5e-6 + 100 * 10e-6)  # $0.0035
        assert found[1] == "genai-prices openai/gpt-4o"

    def test_cached_tokens_at_their_rate_and_the_provider_from_the_url(self) -> None:
        found = TablePricer().table_price(
            TOKENS,
            model="gpt-4o-2024-08-06",
            provider=None,
            api_url="https://api.openai.com/v1",
            when=WHEN,
        )
        assert found is not None
        assert found[0] == pytest.approx(800 * 2.5e-6 + 200 * 1.25e-6 + 100 * 10e-6)  # $0.00325

    def test_an_unknown_model_or_host_has_no_price(self) -> None:
        pricer = TablePricer()
        ours = pricer.table_price(
            TOKENS, model="our-model", provider="openai", api_url=None, when=WHEN
        )
        local = pricer.table_price(
            TOKENS, model="gpt-4o", provider=None, api_url="http://127.0.0.1:9/v1", when=WHEN
        )
        assert (ours, local) == (None, None)
