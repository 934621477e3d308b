"""Model prices from the maintained `genai-prices` table (docs/decisions/0008-prices.md).

The one module that imports `genai_prices`. It is imported when a run's cost is
computed, not at start-up: loading the table costs ~0.2 s once per process.
"""

from __future__ import annotations

from datetime import datetime

from monitor.core.cost import TokenTotals

__all__ = ["TablePricer"]


class TablePricer:
    """`Pricer` over genai-prices: the provider is named, or matched from the API's URL."""

    def table_price(
        self,
        tokens: TokenTotals,
        *,
        model: str,
        provider: str | None,
        api_url: str | None,
        when: datetime,
    ) -> tuple[float, str] | None:
        """Dollars and where the price came from; None when the table has no price."""
        from genai_prices import Usage, calc_price  # noqa: PLC0415 - see the module doc

        usage = Usage(
            input_tokens=tokens.prompt,
            output_tokens=tokens.completion,
            cache_read_tokens=min(tokens.cached, tokens.prompt) or None,
        )
        try:
            if provider is not None:
                found = calc_price(
                    usage, model_ref=model, provider_id=provider, genai_request_timestamp=when
                )
            else:
                found = calc_price(
                    usage, model_ref=model, provider_api_url=api_url, genai_request_timestamp=when
                )
        except LookupError:  # no such provider, or no such model in it
            return None
        return float(found.total_price), f"genai-prices {found.provider.id}/{found.model.id}"
