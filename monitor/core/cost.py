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

from monitor.core.model import Item, Usage

__all__ = [
    "Budget",
    "Price",
    "PricingPlan",
    "Rates",
    "RunUsage",
    "TableLookup",
    "TokenTotals",
    "configured_price",
    "from_prompts",
    "over_day_budget",
    "over_run_budget",
    "price_tokens",
    "run_usage",
    "scaled",
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

    def add(self, usage: Usage | None, answers: int = 1) -> TokenTotals:
        """These totals with one more answer's usage added (None adds nothing); `answers`
        when `usage` is already the sum of several (a calibration re-score's calls)."""
        if usage is None:
            return self
        return TokenTotals(
            self.prompt + (usage.prompt_tokens or 0),
            self.completion + (usage.completion_tokens or 0),
            self.cached + (usage.cached_tokens or 0),
            self.reasoning + (usage.reasoning_tokens or 0),
            self.answers + answers,
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
    return Rates.of(price).dollars(tokens)


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


@dataclass(frozen=True, slots=True)
class Budget:
    """A monitor's limits per run and per UTC day; None means no limit."""

    run_dollars: float | None = None
    run_tokens: int | None = None
    day_dollars: float | None = None
    day_tokens: int | None = None

    @property
    def per_run(self) -> bool:
        return self.run_dollars is not None or self.run_tokens is not None

    @property
    def per_day(self) -> bool:
        return self.day_dollars is not None or self.day_tokens is not None


@dataclass(frozen=True, slots=True)
class Rates:
    """Dollars per token, for checking a budget after every answer without a table lookup."""

    prompt: float
    completion: float
    cached: float

    @classmethod
    def of(cls, price: Price) -> Rates:
        cached = price.cached_input_per_million
        return cls(
            price.input_per_million / MILLION,
            price.output_per_million / MILLION,
            (price.input_per_million if cached is None else cached) / MILLION,
        )

    def dollars(self, tokens: TokenTotals) -> float:
        cached = min(tokens.cached, tokens.prompt)
        return (
            (tokens.prompt - cached) * self.prompt
            + cached * self.cached
            + tokens.completion * self.completion
        )


def over_run_budget(tokens: TokenTotals, rates: Rates | None, budget: Budget) -> str | None:
    """Why a run that has spent `tokens` so far must stop, or None while it may go on.

    Without `rates` (no price known) only the token limit can be checked."""
    used = tokens.prompt + tokens.completion
    if budget.run_tokens is not None and used >= budget.run_tokens:
        return f"{used:,} tokens reached the run budget of {budget.run_tokens:,}"
    if budget.run_dollars is not None and rates is not None:
        spent = rates.dollars(tokens)
        if spent >= budget.run_dollars:
            return f"${spent:.4g} reached the run budget of ${budget.run_dollars:.4g}"
    return None


def over_day_budget(tokens: TokenTotals, dollars: float, budget: Budget) -> str | None:
    """Why the day's spending (`tokens`, known `dollars`) leaves no room, or None."""
    used = tokens.prompt + tokens.completion
    if budget.day_tokens is not None and used >= budget.day_tokens:
        return f"{used:,} tokens today reached the daily budget of {budget.day_tokens:,}"
    if budget.day_dollars is not None and dollars >= budget.day_dollars:
        return f"${dollars:.4g} today reached the daily budget of ${budget.day_dollars:.4g}"
    return None


CHARS_PER_TOKEN = 4  # a common rule of thumb for English text with GPT-style tokenizers


def scaled(tokens: TokenTotals, items: int) -> TokenTotals:
    """`tokens` of a run with `tokens.answers` answers, scaled to `items` answers."""
    if tokens.answers == 0:
        return TokenTotals()
    f = items / tokens.answers
    return TokenTotals(
        round(tokens.prompt * f),
        round(tokens.completion * f),
        round(tokens.cached * f),
        round(tokens.reasoning * f),
        items,
    )


def from_prompts(items: Sequence[Item], max_tokens: int | None) -> TokenTotals:
    """Tokens estimated from the prompts' length, and `max_tokens` per answer if set."""
    chars = 0
    for item in items:
        if item.messages:
            chars += sum(len(m.content) for m in item.messages)
        elif item.prompt is not None:
            chars += len(item.prompt)
    prompt = -(-chars // CHARS_PER_TOKEN)  # rounded up
    return TokenTotals(prompt=prompt, completion=(max_tokens or 0) * len(items), answers=len(items))
