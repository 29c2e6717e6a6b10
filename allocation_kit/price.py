"""Price: cost each request from the snapshot price in effect at its timestamp.

Token semantics follow the OpenAI usage object: input includes cached input and cache
writes; output includes reasoning. A model with no price in effect is `unpriced` (cost unknown,
never zero). Failed (non-2xx) attempts cost nothing unless the snapshot says they are billable.

Row-level arithmetic is in integer picodollars (10⁻¹² of the currency unit): per-1M prices carry
at most 6 decimal places, so a per-token price is a whole number of picodollars and
tokens × price is exact in 64-bit integers (DuckDB raises on overflow, it never wraps). Sums are
128-bit; `pico_to_cost` turns them into DECIMAL(38, 12) without any rounding.
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
    "direction_pico_sql",
    "pico_to_cost",
    "register_prices",
]

PER_TOKEN_SCALE = 12
COST_TYPE = f"DECIMAL(38, {PER_TOKEN_SCALE})"
DIRECTIONS = ("uncached_input", "cached_input", "cache_write", "output", "per_call")
_PICO_PER_UNIT = Decimal(10) ** PER_TOKEN_SCALE
_PICO_PER_TOKEN_PER_1M = Decimal(10) ** (PER_TOKEN_SCALE - 6)


def _pico(value: Decimal | None, per: Decimal) -> int | None:
    if value is None:
        return None
    pico = value * per
    if pico != pico.to_integral_value():  # config validation keeps prices within the scale
        raise ValueError(f"price {value} is finer than 10^-{PER_TOKEN_SCALE}")
    return int(pico)


def _naive_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def price_rows(pricing: PricingSnapshot) -> list[tuple]:
    """One row per model price entry: per-token and per-call prices in picodollars."""
    rows = []
    for entry in pricing.models:
        t = entry.per_1m_tokens
        per_token = [
            _pico(getattr(t, name), _PICO_PER_TOKEN_PER_1M) if t else None
            for name in ("input", "cached_input", "cache_write", "output", "reasoning")
        ]
        per_call = _pico(entry.per_call, _PICO_PER_UNIT)
        rows.append(
            (
                entry.model,
                _naive_utc(entry.effective_from),
                _naive_utc(entry.effective_to),
                *tuple(per_token),
                per_call,
            )
        )
    return rows


def register_prices(con: duckdb.DuckDBPyConnection, pricing: PricingSnapshot) -> None:
    """Create the temp table `prices` (picodollars per token / per call) from the snapshot."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE prices (
            model VARCHAR, effective_from TIMESTAMP, effective_to TIMESTAMP,
            input BIGINT, cached_input BIGINT, cache_write BIGINT,
            output BIGINT, reasoning BIGINT, per_call BIGINT)"""
    )
    rows = price_rows(pricing)
    if rows:
        con.executemany("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def billable_sql(row: str, failed_calls_billable: bool) -> str:
    """SQL boolean: is this attempt billable? (2xx, or unknown status, or failed calls billable)."""
    if failed_calls_billable:
        return "true"
    return f"({row}.status_code IS NULL OR {row}.status_code BETWEEN 200 AND 299)"


def direction_pico_sql(row: str, price: str) -> dict[str, str]:
    """SQL BIGINT expressions: the cost of one priced attempt per token direction, in pico.

    Directions follow FOCUS's SkuPriceDetails (TokenDirection × TokenCacheAction): uncached
    input, cached input (cache reads), cache writes, output (reasoning included), plus the
    per-call price. Subsets larger than their totals are capped at the total.
    """
    cached = f"LEAST({row}.cached_input_tokens, {row}.input_tokens)"
    write = f"LEAST({row}.cache_write_tokens, {row}.input_tokens - {cached})"
    reasoning = f"LEAST({row}.reasoning_tokens, {row}.output_tokens)"
    return {
        "uncached_input": f"({row}.input_tokens - {cached} - {write}) * COALESCE({price}.input, 0)",
        "cached_input": f"{cached} * COALESCE({price}.cached_input, {price}.input, 0)",
        "cache_write": f"{write} * COALESCE({price}.cache_write, {price}.input, 0)",
        "output": f"({row}.output_tokens - {reasoning}) * COALESCE({price}.output, 0) "
        f"+ {reasoning} * COALESCE({price}.reasoning, {price}.output, 0)",
        "per_call": f"COALESCE({price}.per_call, 0)",
    }


def pico_to_cost(expression: str) -> str:
    """SQL: an integer amount of picodollars as an exact DECIMAL(38, 12)."""
    return (
        f"CAST(CAST({expression} AS DECIMAL(38, 0)) * CAST(0.000000000001 AS DECIMAL(13, 12)) "
        f"AS {COST_TYPE})"
    )


def cost_sql(row: str, price: str) -> str:
    """SQL: the exact cost of one priced attempt, DECIMAL(38, 12)."""
    return pico_to_cost(" + ".join(f"({e})" for e in direction_pico_sql(row, price).values()))
