"""Price: cost each request from the snapshot price in effect at its timestamp.

Token semantics follow the OpenAI usage object: input includes cached input and cache
writes; output includes reasoning. A model with no price in effect is `unpriced` (cost NULL,
never zero). Failed (non-2xx) attempts cost nothing unless the snapshot says they are billable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import duckdb

from .config import PricingSnapshot

__all__ = [
    "COST_TYPE",
    "DIRECTIONS",
    "PER_TOKEN_SCALE",
    "billable_sql",
    "cost_sql",
    "direction_cost_sql",
    "register_prices",
]

PER_TOKEN_SCALE = 12  # per-1M prices carry at most 6 places, so per-token prices need 12
COST_TYPE = f"DECIMAL(38, {PER_TOKEN_SCALE})"
_MILLION = Decimal(1_000_000)


def _per_token(per_1m: Decimal | None) -> Decimal | None:
    return None if per_1m is None else per_1m / _MILLION


def _naive_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def price_rows(pricing: PricingSnapshot) -> list[tuple]:
    """One row per model price entry, per-token prices exact at 12 decimal places."""
    rows = []
    for entry in pricing.models:
        tokens = entry.per_1m_tokens
        rows.append(
            (
                entry.model,
                entry.effective_from,
                entry.effective_to,
                _per_token(tokens.input) if tokens else None,
                _per_token(tokens.cached_input) if tokens else None,
                _per_token(tokens.cache_write) if tokens else None,
                _per_token(tokens.output) if tokens else None,
                _per_token(tokens.reasoning) if tokens else None,
                entry.per_call,
            )
        )
    return rows


def register_prices(con: duckdb.DuckDBPyConnection, pricing: PricingSnapshot) -> None:
    """Create the temp table `prices` from the snapshot."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE prices (
            model VARCHAR, effective_from TIMESTAMP, effective_to TIMESTAMP,
            input {COST_TYPE}, cached_input {COST_TYPE}, cache_write {COST_TYPE},
            output {COST_TYPE}, reasoning {COST_TYPE}, per_call {COST_TYPE})"""
    )
    rows = price_rows(pricing)
    if rows:
        con.executemany("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def billable_sql(row: str, failed_calls_billable: bool) -> str:
    """SQL boolean: is this attempt billable? (2xx, or unknown status, or failed calls billable)."""
    if failed_calls_billable:
        return "true"
    return f"({row}.status_code IS NULL OR {row}.status_code BETWEEN 200 AND 299)"


def direction_cost_sql(row: str, price: str) -> dict[str, str]:
    """SQL expressions: the exact cost of one priced attempt per token direction.

    Directions follow FOCUS's SkuPriceDetails (TokenDirection × TokenCacheAction): uncached
    input, cached input (cache reads), cache writes, output (reasoning included), plus the
    per-call price. Subsets larger than their totals are capped at the total.
    """
    cached = f"LEAST({row}.cached_input_tokens, {row}.input_tokens)"
    write = f"LEAST({row}.cache_write_tokens, {row}.input_tokens - {cached})"
    reasoning = f"LEAST({row}.reasoning_tokens, {row}.output_tokens)"
    zero = f"CAST(0 AS {COST_TYPE})"
    return {
        "uncached_input": f"({row}.input_tokens - {cached} - {write}) "
        f"* COALESCE({price}.input, {zero})",
        "cached_input": f"{cached} * COALESCE({price}.cached_input, {price}.input, {zero})",
        "cache_write": f"{write} * COALESCE({price}.cache_write, {price}.input, {zero})",
        "output": f"({row}.output_tokens - {reasoning}) * COALESCE({price}.output, {zero}) "
        f"+ {reasoning} * COALESCE({price}.reasoning, {price}.output, {zero})",
        "per_call": f"COALESCE({price}.per_call, {zero})",
    }


DIRECTIONS = ("uncached_input", "cached_input", "cache_write", "output", "per_call")


def cost_sql(row: str, price: str) -> str:
    """SQL expression: the exact cost of one priced attempt (the sum of its directions)."""
    parts = "\n        + ".join(f"({e})" for e in direction_cost_sql(row, price).values())
    return f"CAST(\n        {parts}\n    AS {COST_TYPE})"
