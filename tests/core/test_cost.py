"""Tokens and cost: the arithmetic by hand, the configured prices' dates, unknown prices."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from monitor.core.cost import (
    Price,
    PricingPlan,
    TableLookup,
    TokenTotals,
    configured_price,
    price_tokens,
    run_usage,
)
from monitor.core.model import Usage

WHEN = datetime(2026, 11, 15, 12, tzinfo=UTC)
TOKENS = TokenTotals(prompt=1000, completion=100, cached=200, reasoning=40, answers=4)


class TestTotals:
    def test_usage_adds_up_and_none_adds_nothing(self) -> None:
        totals = TokenTotals().add(Usage(10, 2, cached_tokens=4)).add(None).add(Usage(5, None))
        assert totals == TokenTotals(prompt=15, completion=2, cached=4, reasoning=0, answers=2)


class TestConfiguredPrice:
    def test_by_hand(self) -> None:
        """1000 prompt tokens at $3/M and 100 completion at $15/M: $0.003 + $0.0015."""
        price = Price(date(2026, 1, 1), 3.0, 15.0)
        assert price_tokens(TOKENS, price) == pytest.approx(0.0045)

    def test_cached_rate_applies_to_the_cached_part_only(self) -> None:
        """800 at $3/M + 200 at $0.30/M + 100 at $15/M = 0.0024 + 0.00006 + 0.0015."""
        price = Price(date(2026, 1, 1), 3.0, 15.0, cached_input_per_million=0.3)
        assert price_tokens(TOKENS, price) == pytest.approx(0.00396)

    def test_the_newest_price_on_or_before_the_day_is_in_force(self) -> None:
        old, new = Price(date(2026, 1, 1), 3.0, 15.0), Price(date(2026, 11, 15), 2.0, 8.0)
        later = Price(date(2026, 12, 1), 1.0, 4.0)
        assert configured_price([later, old, new], WHEN) == new  # from its first day
        assert configured_price([later], WHEN) is None


class TestRunUsage:
    def table(self, found: tuple[float, str] | None = None) -> tuple[list[Any], TableLookup]:
        """A price table that answers `found`, and the lookups it was asked."""
        calls: list[Any] = []

        def lookup(
            tokens: TokenTotals, model: str, provider: str | None, url: str | None, when: datetime
        ) -> tuple[float, str] | None:
            calls.append((tokens, model, provider, url, when))
            return found

        return calls, lookup

    def test_a_configured_price_wins_over_the_table(self) -> None:
        calls, lookup = self.table((9.9, "table"))
        plan = PricingPlan(prices=(Price(date(2026, 11, 1), 3.0, 15.0),), configured="m")
        usage = run_usage(TOKENS, plan, served_model="m-2026", when=WHEN, table=lookup)
        assert usage.dollars == pytest.approx(0.0045)
        assert usage.basis == "configured price since 2026-11-01"
        assert calls == []

    def test_before_its_date_the_table_prices_the_served_model(self) -> None:
        calls, lookup = self.table((0.0035, "genai-prices openai/gpt-4o"))
        plan = PricingPlan(
            prices=(Price(date(2026, 12, 1), 3.0, 15.0),), provider="openai", configured="gpt-4o"
        )
        usage = run_usage(TOKENS, plan, served_model="gpt-4o-2024-08-06", when=WHEN, table=lookup)
        assert (usage.dollars, usage.basis) == (0.0035, "genai-prices openai/gpt-4o")
        assert calls == [(TOKENS, "gpt-4o-2024-08-06", "openai", None, WHEN)]

    def test_no_price_is_unknown_not_zero(self) -> None:
        _, lookup = self.table()
        plan = PricingPlan(configured="ours")
        usage = run_usage(TOKENS, plan, served_model=None, when=WHEN, table=lookup)
        assert usage.dollars is None
        assert usage.basis == "unknown: no price for 'ours' in the price table"
        silent = run_usage(TokenTotals(), PricingPlan(), served_model=None, when=WHEN, table=None)
        assert (silent.dollars, silent.basis) == (
            None,
            "unknown: the answers reported no token usage",
        )
