"""Tokens and cost of a run: totals over its answers, and its price in dollars.

Prices come from two places (docs/decisions/0008-prices.md): the team's own, configured
per endpoint with the date they apply from (`Price`), and otherwise a maintained price
table behind the `Pricer` port (monitor/pricing.py). A run whose model has no known price
has cost None, shown as unknown, never as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from monitor.core.model import Usage

__all__ = [
    "Price",
    "PricingPlan",
    "RunUsage",
    "TableLookup",
    "TokenTotals",
    "configured_price",
    "price_tokens",
    "run_usage",
]

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenTotals:
    """Token counts summed over a run's answers; `answers` is how many reported usage."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    reasoning: int = 0
    answers: int = 0

    def add(self, usage: Usage | None) -> TokenTotals:
        """These totals with one more answer's usage added (None adds nothing)."""
        if usage is None:
            return self
        return TokenTotals(
            self.prompt + (usage.prompt_tokens or 0),
            self.completion + (usage.completion_tokens or 0),
            self.cached + (usage.cached_tokens or 0),
            self.reasoning + (usage.reasoning_tokens or 0),
            self.answers + 1,
        )


@dataclass(frozen=True, slots=True)
class Price:
    """Dollars per million tokens, from a date on (a configured override)."""

    since: date
    input_per_million: float
    output_per_million: float
    # cached prompt tokens, where the provider bills them at their own rate
    cached_input_per_million: float | None = None


@dataclass(frozen=True, slots=True)
class RunUsage:
    """A run's tokens and what they cost; `dollars` is None when no price is known."""

    tokens: TokenTotals
    dollars: float | None
    basis: str  # where the price came from, or why there is none


def configured_price(prices: Sequence[Price], when: datetime) -> Price | None:
    """The configured price in force at `when`: the newest `since` on or before its date."""
    day = when.date()
    valid = [p for p in prices if p.since <= day]
    return max(valid, key=lambda p: p.since) if valid else None


def price_tokens(tokens: TokenTotals, price: Price) -> float:
    """The dollars `tokens` cost at `price`.

    Cached tokens are part of the prompt tokens (as OpenAI reports them): with a cached
    rate they are billed at it and the rest of the prompt at the input rate; without one,
    every prompt token is billed at the input rate. Reasoning tokens are part of the
    completion tokens and billed with them.
    """
    cached = min(tokens.cached, tokens.prompt) if price.cached_input_per_million is not None else 0
    cached_rate = price.cached_input_per_million or 0.0
    return (
        (tokens.prompt - cached) * price.input_per_million
        + cached * cached_rate
        + tokens.completion * price.output_per_million
    ) / MILLION


@dataclass(frozen=True, slots=True)
class PricingPlan:
    """How one endpoint's runs are priced (from its `pricing:` settings)."""

    prices: tuple[Price, ...] = ()
    provider: str | None = None  # the table's provider id; None: matched from `api_url`
    model: str | None = None  # the name to look up; None: the served model, else `configured`
    configured: str | None = None
    api_url: str | None = None


#: tokens, model, provider, api_url, when -> (dollars, basis) from a price table, or None
TableLookup = Callable[
    [TokenTotals, str, str | None, str | None, datetime], tuple[float, str] | None
]


def run_usage(
    tokens: TokenTotals,
    plan: PricingPlan,
    *,
    served_model: str | None,
    when: datetime,
    table: TableLookup | None,
) -> RunUsage:
    """A run's tokens and cost: a configured price in force at `when` first, else the
    table's price of the model, else unknown (with the reason in `basis`)."""
    if tokens.answers == 0:
        return RunUsage(tokens, None, "unknown: the answers reported no token usage")
    configured = configured_price(plan.prices, when)
    if configured is not None:
        return RunUsage(
            tokens, price_tokens(tokens, configured), f"configured price since {configured.since}"
        )
    model = plan.model or served_model or plan.configured
    if model is None or table is None:
        return RunUsage(tokens, None, "unknown: no model name to look up")
    found = table(tokens, model, plan.provider, plan.api_url, when)
    if found is None:
        return RunUsage(tokens, None, f"unknown: no price for {model!r} in the price table")
    return RunUsage(tokens, found[0], found[1])
