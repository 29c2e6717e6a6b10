"""Price: cost each request from the snapshot price in effect at its timestamp.

Token semantics follow the OpenAI usage object: input includes cached input and cache
writes; output includes reasoning. A model with no price in effect is `unpriced` (cost unknown,
never zero). Failed (non-2xx) attempts cost nothing unless the snapshot says they are billable.

Row-level arithmetic is in integer picodollars (10⁻¹² of the currency unit): per-1M prices carry
at most 6 decimal places, so a per-token price is a whole number of picodollars and
tokens × price is exact in 64-bit integers (DuckDB raises on overflow, it never wraps). Sums are
128-bit; `pico_to_cost` turns them into DECIMAL(38, 12) without any rounding.

Batch and long-context (tier) prices are extra columns of the same `prices` row, present only
when some model of the snapshot has them (`PriceLayout`); the per-direction SQL then picks the
block of each request (its tier by input tokens, then batch or not) with CASE. A snapshot
without them gets exactly the plain column references, so costing stays as cheap as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import duckdb

from .config import MAX_TOKENS, ModelPrice, PricingSnapshot, TokenPrices

__all__ = [
    "COST_TYPE",
    "DIRECTIONS",
    "PER_TOKEN_SCALE",
    "PriceLayout",
    "alias_sql",
    "band_of_tier_sql",
    "band_prices",
    "billable_sql",
    "cost_sql",
    "direction_pico_sql",
    "pico_to_cost",
    "price_band_sql",
    "price_layout",
    "price_tier_sql",
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


TOKEN_PRICES = ("input", "cached_input", "cache_write", "output", "reasoning")


@dataclass(frozen=True)
class PriceLayout:
    """Which price blocks the `prices` table holds beyond each entry's per_1m_tokens."""

    tiers: int = 0  # the most long-context tiers any entry has
    batch: bool = False  # some entry (or tier) has batch prices

    def blocks(self) -> list[str]:
        """Column prefixes of the token price blocks: '' (per_1m_tokens), 'batch_',
        'tier1_', 'tier1_batch_', …"""
        tiers = ["", *(f"tier{t}_" for t in range(1, self.tiers + 1))]
        return [f"{tier}{kind}" for tier in tiers for kind in ("", "batch_")[: 1 + self.batch]]

    def columns(self) -> list[str]:
        """The `prices` columns after model, effective_from and effective_to."""
        columns: list[str] = []
        for block in self.blocks():
            if block.startswith("tier") and not block.endswith("batch_"):
                columns.append(f"{block}above")
            columns += [f"{block}{name}" for name in TOKEN_PRICES]
        return [*columns, "per_call"]


def price_layout(pricing: PricingSnapshot) -> PriceLayout:
    """The PriceLayout that holds every entry of the snapshot."""
    return PriceLayout(
        tiers=max((len(e.tiers) for e in pricing.models), default=0),
        batch=any(e.batch or any(t.batch for t in e.tiers) for e in pricing.models),
    )


def _token_picos(block: TokenPrices | None) -> list[int | None]:
    return [
        _pico(getattr(block, name), _PICO_PER_TOKEN_PER_1M) if block else None
        for name in TOKEN_PRICES
    ]


def _entry_picos(entry: ModelPrice, layout: PriceLayout) -> list[int | None]:
    # A block the entry lacks repeats the prices that apply instead (a batch request without
    # batch prices pays the interactive ones), so SQL only has to pick the request's block.
    values = _token_picos(entry.per_1m_tokens)
    if layout.batch:
        values += _token_picos(entry.batch) if entry.batch else values
    for t in range(layout.tiers):
        tier = entry.tiers[t] if t < len(entry.tiers) else None
        if tier is None:
            values += [None] * (1 + len(TOKEN_PRICES) * (1 + layout.batch))
            continue
        plain = _token_picos(tier.per_1m_tokens)
        values += [tier.above_input_tokens, *plain]
        if layout.batch:
            values += _token_picos(tier.batch) if tier.batch else plain
    return [*values, _pico(entry.per_call, _PICO_PER_UNIT)]


def price_rows(pricing: PricingSnapshot, layout: PriceLayout | None = None) -> list[tuple]:
    """One row per model price entry: per-token and per-call prices in picodollars."""
    layout = layout or price_layout(pricing)
    return [
        (
            entry.model,
            _naive_utc(entry.effective_from),
            _naive_utc(entry.effective_to),
            *_entry_picos(entry, layout),
        )
        for entry in pricing.models
    ]


def register_prices(con: duckdb.DuckDBPyConnection, pricing: PricingSnapshot) -> PriceLayout:
    """Create the temp table `prices` (picodollars per token / per call) from the snapshot;
    its layout says which batch and tier columns it has."""
    layout = price_layout(pricing)
    columns = layout.columns()
    rows = price_rows(pricing, layout)
    # A request's cost in picodollars: at most MAX_TOKENS in and out at the dearest token price,
    # plus a call. Within 64 bits for any real snapshot; a wider one computes in 128 bits.
    picos = [v for row in rows for v in row[3:] if v is not None] or [0]
    kind = "BIGINT" if 2 * MAX_TOKENS * max(picos) + max(picos) < 2**63 else "HUGEINT"
    typed = ", ".join(f"{c} {kind}" for c in columns)
    if layout.batch:  # which blocks have batch prices of their own: bit 0 the base, bit t tier t
        typed += ", batch_blocks INTEGER"
        rows = [
            (*row, sum(1 << t for t, b in enumerate(_batch_blocks(e)) if b))
            for row, e in zip(rows, pricing.models, strict=True)
        ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE prices (model VARCHAR, effective_from TIMESTAMP, "
        f"effective_to TIMESTAMP, {typed})"
    )
    if rows:
        marks = ", ".join("?" for _ in range(len(rows[0])))
        con.executemany(f"INSERT INTO prices VALUES ({marks})", rows)
    return layout


def _batch_blocks(entry: ModelPrice) -> list[bool]:
    """Whether the entry's base prices, then each tier's, have batch prices of their own."""
    return [entry.batch is not None, *(t.batch is not None for t in entry.tiers)]


def alias_sql(expr: str, aliases: Mapping[str, str] | None, otherwise: str | None = None) -> str:
    """SQL: the name `expr` gives, read through `aliases` ({other name: the name the snapshot
    or registry uses}); else `otherwise` (by default `expr` itself)."""
    otherwise = expr if otherwise is None else otherwise
    if not aliases:
        return otherwise
    cases = " ".join(
        f"WHEN {_quoted(alias)} THEN {_quoted(model)}" for alias, model in sorted(aliases.items())
    )
    return f"(CASE {expr} {cases} ELSE {otherwise} END)"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def billable_sql(row: str, failed_calls_billable: bool) -> str:
    """SQL boolean: is this attempt billable? Not when the gateway served it from its cache;
    else when 2xx, or its status is unknown, or the snapshot bills failed calls."""
    served = f"NOT COALESCE({row}.cache_hit, false)"
    if failed_calls_billable:
        return served
    return f"({served} AND ({row}.status_code IS NULL OR {row}.status_code BETWEEN 200 AND 299))"


def _price_sql(
    row: str, price: str, layout: PriceLayout | None, tier: str | None = None
) -> dict[str, str]:
    """SQL per token price name: the price that applies to the request (its block). With
    `tier`, the column of `row` holding the request's tier (`price_tier_sql`) picks the tier
    instead of its input tokens (for rows that are sums of requests of one tier)."""
    layout = layout or PriceLayout()

    def block(prefix: str, name: str) -> str:
        if layout.batch:
            batch, plain = f"{price}.{prefix}batch_{name}", f"{price}.{prefix}{name}"
            return f"CASE WHEN {row}.batch THEN {batch} ELSE {plain} END"
        return f"{price}.{prefix}{name}"

    prices = {}
    for name in TOKEN_PRICES:
        if not layout.tiers:
            prices[name] = block("", name)
            continue
        # the highest threshold the input exceeds wins; an entry with fewer tiers has NULLs
        branches = " ".join(
            f"WHEN {_in_tier(row, price, t, tier)} THEN {block(f'tier{t}_', name)}"
            for t in range(layout.tiers, 0, -1)
        )
        prices[name] = f"CASE {branches} ELSE {block('', name)} END"
    return prices


def _in_tier(row: str, price: str, t: int, tier: str | None) -> str:
    if tier:
        return f"{row}.{tier} = {t}"
    return f"{row}.input_tokens > {price}.tier{t}_above"


def price_tier_sql(row: str, price: str, layout: PriceLayout | None) -> str:
    """SQL INTEGER: the long-context tier whose prices the request pays (the highest threshold
    its input exceeds), 0 for the entry's base prices (and always 0 without tiers)."""
    layout = layout or PriceLayout()
    if not layout.tiers:
        return "0"
    branches = " ".join(
        f"WHEN {_in_tier(row, price, t, None)} THEN {t}" for t in range(layout.tiers, 0, -1)
    )
    return f"CASE {branches} ELSE 0 END"


def band_of_tier_sql(tier: str, batch: str, layout: PriceLayout | None, price: str = "p") -> str:
    """SQL VARCHAR: `price_band_sql` of rows whose tier (`price_tier_sql`) and batch flag are
    the columns `tier` and `batch`, priced by the `prices` row `price`. A batch request pays
    batch prices only where its block has them of its own; else its band is the plain one."""
    layout = layout or PriceLayout()
    parts = []
    if layout.tiers:
        parts.append(f"CASE WHEN {tier} > 0 THEN 'tier' || {tier} ELSE '' END")
    if layout.batch:
        own = f"(({price}.batch_blocks >> {tier}) & 1) = 1"
        parts.append(f"CASE WHEN {batch} AND {own} THEN 'batch' ELSE '' END")
    if not parts:
        return "''"
    return f"trim(concat_ws(' ', {', '.join(parts)}))"


def price_band_sql(row: str, price: str, layout: PriceLayout | None) -> str:
    """SQL VARCHAR: which of the entry's price blocks the request pays: '' (per_1m_tokens),
    'batch', 'tier<N>' or 'tier<N> batch' (the same choice `direction_pico_sql` makes), so
    lines priced at different unit prices stay apart. '' for every row without batch or tiers."""
    return band_of_tier_sql(price_tier_sql(row, price, layout), f"{row}.batch", layout, price)


def band_prices(entry: ModelPrice, band: str) -> TokenPrices | None:
    """The per-1M prices an entry charges in a price band (see `price_band_sql`); a block the
    entry lacks falls back as `_entry_picos` does (batch to the plain prices of its tier)."""
    words = band.split()
    tier = next((int(w[4:]) for w in words if w.startswith("tier")), 0)
    block = entry.tiers[tier - 1] if tier else None
    plain = block.per_1m_tokens if block else entry.per_1m_tokens
    if "batch" in words:
        batch = block.batch if block else entry.batch
        return batch or plain
    return plain


def direction_pico_sql(
    row: str, price: str, layout: PriceLayout | None = None, tier: str | None = None
) -> dict[str, str]:
    """SQL BIGINT expressions: the cost of one priced attempt per token direction, in pico.

    Directions follow FOCUS's SkuPriceDetails (TokenDirection × TokenCacheAction): uncached
    input, cached input (cache reads), cache writes, output (reasoning included), plus the
    per-call price. Subsets larger than their totals are capped at the total. `layout` is what
    `register_prices` returned: with batch or tier columns, each request pays its block's prices.
    `tier` names a column of `row` that holds the tier (see `_price_sql`).
    """
    p = _price_sql(row, price, layout, tier)
    cached = f"LEAST({row}.cached_input_tokens, {row}.input_tokens)"
    write = f"LEAST({row}.cache_write_tokens, {row}.input_tokens - {cached})"
    reasoning = f"LEAST({row}.reasoning_tokens, {row}.output_tokens)"
    return {
        "uncached_input": f"({row}.input_tokens - {cached} - {write}) * COALESCE({p['input']}, 0)",
        "cached_input": f"{cached} * COALESCE({p['cached_input']}, {p['input']}, 0)",
        "cache_write": f"{write} * COALESCE({p['cache_write']}, {p['input']}, 0)",
        "output": f"({row}.output_tokens - {reasoning}) * COALESCE({p['output']}, 0) "
        f"+ {reasoning} * COALESCE({p['reasoning']}, {p['output']}, 0)",
        "per_call": f"COALESCE({price}.per_call, 0)",
    }


def pico_to_cost(expression: str) -> str:
    """SQL: an integer amount of picodollars as an exact DECIMAL(38, 12)."""
    return (
        f"CAST(CAST({expression} AS DECIMAL(38, 0)) * CAST(0.000000000001 AS DECIMAL(13, 12)) "
        f"AS {COST_TYPE})"
    )


def cost_sql(row: str, price: str, layout: PriceLayout | None = None) -> str:
    """SQL: the exact cost of one priced attempt, DECIMAL(38, 12)."""
    directions = direction_pico_sql(row, price, layout).values()
    return pico_to_cost(" + ".join(f"({e})" for e in directions))
