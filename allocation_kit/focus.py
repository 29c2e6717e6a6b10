"""FOCUS export: the period's allocated cost as a FOCUS 1.0 cost and usage dataset.

`focus_allocated_rows(ledger)` turns the ledger's `lines` into one row per owner line, model, token
direction and price entry: every FOCUS 1.0 column, plus the allocation in provider-extension
columns named after FOCUS 1.3's split cost allocation columns (`x_AllocatedMethodId`,
`x_AllocatedMethodDetails`, `x_AllocatedResourceId`, `x_AllocatedResourceName`,
`x_AllocatedTags`) and a flat `x_AllocatedRatio`.

What a row is:

- An *origin charge* is the usage of one (allocation status, owner, application, environment,
  model, direction, price entry) in the period, with its exact cost from the ledger.
- A direct or unallocated origin charge is one row (the `x_Allocated*` columns are null; an
  unallocated row keeps its status in `Tags` and `x_AllocationStatus`, and no SubAccount).
- A shared application's origin charge is split among the receiving teams by the registry rule,
  one row per team (largest remainder, so the shares sum exactly to the origin charge). The
  ratios are exact decimals at 12 places that sum to exactly 1 per origin charge
  (`x_OriginChargeId` groups them).

Only billable, priced usage is exported: unpriced calls have no cost (they are exceptions, never a
zero) and failed calls cost nothing; both stay in exceptions.csv. So the export's BilledCost sums
exactly to the ledger's priced total.

The kit's prices are the pricing snapshot's, so ListCost = ContractedCost = EffectiveCost =
BilledCost and the unit prices are the snapshot's per 1M tokens (per call for per-call models).
A model whose price changes during the period gets one row per price entry (SkuPriceId names
the entry, the charge period is the entry's part of the period); usage is assigned to an entry
by UTC day, so a price that changes at a time other than midnight leaves that day's usage on the
entry in effect when the day began.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from .allocate import direct_usage, shared_weights, split_exact
from .attribute import UNALLOCATED_STATUSES
from .config import EvenSplit, FixedSplit, ModelPrice, ProportionalSplit, TokenPrices
from .history import spreadsheet_safe
from .pipeline import PeriodLedger
from .price import band_prices

__all__ = ["FOCUS_ALLOCATED_COLUMNS", "focus_allocated_rows", "write_focus_allocated"]

# FOCUS 1.0's columns, in the specification's alphabetical order, then the extensions.
FOCUS_10_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
EXTENSION_COLUMNS = (
    "x_AllocationStatus",  # allocated, shared, untagged, unknown_owner, conflict, quarantined
    "x_AllocationRule",  # the rule in words, as in allocation.csv
    "x_OriginChargeId",  # the origin charge a row belongs to (a split's rows share it)
    "x_AllocatedMethodId",  # shared-fixed, shared-proportional-<basis>, shared-even
    "x_AllocatedMethodDetails",  # FOCUS 1.3 AllocatedMethodDetails object
    "x_AllocatedRatio",  # this row's share of the origin charge, exact, 12 places
    "x_AllocatedResourceId",  # the receiving team
    "x_AllocatedResourceName",
    "x_AllocatedTags",  # the receiving team's tags
    "x_SkuPriceDetails",  # FOCUS 1.2+ SkuPriceDetails: ModelId, TokenDirection, TokenCacheAction
)
FOCUS_ALLOCATED_COLUMNS = FOCUS_10_COLUMNS + EXTENSION_COLUMNS

RATIO_QUANTUM = Decimal("1e-12")
TOKENS_PER_PRICING_UNIT = Decimal(1_000_000)
# direction -> (SkuPriceDetails keys, words); reasoning exists only when priced apart from output
_DIRECTIONS = {
    "uncached_input": ({"TokenDirection": "Input", "TokenCacheAction": "Uncached"}, "input tokens"),
    "cached_input": (
        {"TokenDirection": "Input", "TokenCacheAction": "CacheRead"},
        "cached input tokens",
    ),
    "cache_write": (
        {"TokenDirection": "Input", "TokenCacheAction": "CacheWrite"},
        "cache write input tokens",
    ),
    "output": ({"TokenDirection": "Output"}, "output tokens"),
    "reasoning": (
        {"TokenDirection": "Output", "x_TokenType": "Reasoning"},
        "reasoning output tokens",
    ),
    "per_call": ({}, "calls"),
}
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class OriginCharge:
    """The usage of one owner line, model, direction and price entry in the period."""

    allocation_status: str
    owner_team: str | None
    application: str | None
    environment: str | None
    model: str
    direction: str
    entry: ModelPrice
    quantity: int  # tokens, or requests for per_call
    cost: Decimal
    band: str = ""  # the entry's price block: '' or 'batch', 'tier1', 'tier1 batch', …


def origin_charges(ledger: PeriodLedger) -> list[OriginCharge]:
    """The period's billable, priced usage per owner line, model, direction and price entry."""
    entries = {(e.model, _naive(e.effective_from)): e for e in ledger.workspace.pricing.models}
    # each (line, day) goes to the entry in effect when the day began (else the first that day)
    rows = ledger.con.execute(
        """WITH daily AS (  -- the priced lines per owner line, model and day, numbered
            SELECT row_number() OVER () AS id, allocation_status, owner_team, application,
                environment, model, day, price_band, sum(input_tokens) AS input_tokens,
                sum(cached_input_tokens) AS cached_input_tokens,
                sum(cache_write_tokens) AS cache_write_tokens,
                sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
                sum(requests) AS requests, sum(cost_uncached_input) AS cost_uncached_input,
                sum(cost_cached_input) AS cost_cached_input,
                sum(cost_cache_write) AS cost_cache_write, sum(cost_output) AS cost_output,
                sum(cost_per_call) AS cost_per_call
            FROM lines WHERE billable AND priced GROUP BY ALL
        ), dated AS (
            SELECT l.*, p.effective_from AS entry_from
            FROM daily l JOIN prices p ON p.model = l.model
                AND p.effective_from < CAST(l.day AS TIMESTAMP) + INTERVAL 1 DAY
                AND (p.effective_to IS NULL OR p.effective_to > CAST(l.day AS TIMESTAMP))
            QUALIFY row_number() OVER (PARTITION BY l.id ORDER BY p.effective_from) = 1
        )
        SELECT allocation_status, owner_team, application, environment, model, entry_from,
            price_band,
            sum(input_tokens - cached_input_tokens - cache_write_tokens)::HUGEINT,
            sum(cached_input_tokens)::HUGEINT, sum(cache_write_tokens)::HUGEINT,
            sum(output_tokens)::HUGEINT, sum(reasoning_tokens)::HUGEINT, sum(requests)::HUGEINT,
            sum(cost_uncached_input), sum(cost_cached_input), sum(cost_cache_write),
            sum(cost_output), sum(cost_per_call)
        FROM dated GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    charges = []
    for status, team, app, env, model, entry_from, band, *numbers in rows:
        entry = entries[(model, entry_from)]
        uncached, cached, write, output, reasoning, requests = (int(n) for n in numbers[:6])
        costs = dict(
            zip(
                ("uncached_input", "cached_input", "cache_write", "output", "per_call"),
                numbers[6:],
                strict=True,
            )
        )
        quantities = {
            "uncached_input": uncached,
            "cached_input": cached,
            "cache_write": write,
            "output": output,
            "per_call": requests,
        }
        _split_reasoning(band_prices(entry, band), quantities, costs, reasoning)
        for direction, cost in costs.items():
            if cost == 0 and not (quantities[direction] and _unit_price(entry, direction, band)):
                continue
            charges.append(
                OriginCharge(
                    status,
                    team,
                    app,
                    env,
                    model,
                    direction,
                    entry,
                    quantities[direction],
                    cost,
                    band,
                )
            )
    return charges


def _split_reasoning(
    prices: TokenPrices | None,
    quantities: dict[str, int],
    costs: dict[str, Decimal],
    reasoning: int,
) -> None:
    """Give reasoning tokens their own charge when the prices put them apart from output."""
    if prices is None or prices.reasoning is None or prices.reasoning == prices.output:
        return
    cost = reasoning * prices.reasoning / TOKENS_PER_PRICING_UNIT
    if not 0 <= reasoning <= quantities["output"] or cost > costs["output"]:
        return  # malformed rows (more reasoning than output) were capped: keep them together
    quantities["reasoning"], quantities["output"] = reasoning, quantities["output"] - reasoning
    costs["reasoning"], costs["output"] = cost, costs["output"] - cost


def _unit_price(entry: ModelPrice, direction: str, band: str = "") -> Decimal | None:
    """The snapshot's price of one pricing unit (1M tokens, or one call) in the price band, as
    the ledger applies it (cached input and cache writes fall back to the input price)."""
    if direction == "per_call":
        return entry.per_call
    t = band_prices(entry, band)
    if t is None:
        return None
    return {
        "uncached_input": t.input,
        "cached_input": t.cached_input if t.cached_input is not None else t.input,
        "cache_write": t.cache_write if t.cache_write is not None else t.input,
        "output": t.output,
        "reasoning": t.reasoning,
    }[direction]


def focus_allocated_rows(ledger: PeriodLedger) -> list[dict[str, str]]:
    """The FOCUS rows of the period's allocated cost (FOCUS_ALLOCATED_COLUMNS, CSV text; empty
    text is null), origin charges in order, a split's rows by receiving team."""
    ws, period = ledger.workspace, ledger.period
    cfg = ws.kit.focus
    provider = cfg.provider_name
    teams = {t.id: t for t in ws.registry.teams}
    apps = {a.id: a for a in ws.registry.applications}
    direct = direct_usage(ledger.usage)
    common = {
        "BillingAccountId": cfg.billing_account_id or ws.kit.name,
        "BillingAccountName": cfg.billing_account_name or ws.kit.name,
        "BillingCurrency": ws.kit.currency,
        "BillingPeriodStart": _stamp(period.start),
        "BillingPeriodEnd": _stamp(period.end),
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "PricingCategory": "Standard",
        "ServiceCategory": "AI and Machine Learning",
    }
    rows = []
    for charge in origin_charges(ledger):
        seller = charge.entry.provider or provider  # the snapshot's entry, else kit.yaml's
        names = {
            "InvoiceIssuerName": cfg.invoice_issuer_name or seller,
            "ProviderName": seller,
            "PublisherName": charge.entry.publisher or cfg.publisher_name or seller,
            "ServiceName": cfg.service_name or seller,
        }
        details, words = _DIRECTIONS[charge.direction]
        price = _unit_price(charge.entry, charge.direction, charge.band)
        sku = f"{charge.model}/{charge.direction}"
        sku_price = f"{sku}/{charge.entry.effective_from:%Y-%m-%dT%H:%M:%SZ}"
        if charge.band:  # batch and long-context prices are prices of their own
            sku_price += "/" + charge.band.replace(" ", "-")
        per_call = charge.direction == "per_call"
        start = max(period.start, charge.entry.effective_from)
        end = min(period.end, charge.entry.effective_to or period.end)
        owner = teams.get(charge.owner_team) if charge.owner_team else None
        tags = {
            "application": charge.application,
            "environment": charge.environment,
            "team": charge.owner_team,
            "business_unit": owner.business_unit if owner else None,
            "cost_center": owner.cost_center if owner else None,
            "allocation_status": charge.allocation_status,
        }
        origin_id = "|".join(
            [
                charge.allocation_status,
                charge.owner_team or "",
                charge.application or "",
                charge.environment or "",
                sku_price,
            ]
        )
        base = (
            common
            | names
            | {
                "ChargeDescription": f"{charge.model} {words}"
                + (f" ({charge.band} prices)" if charge.band else "")
                + (f" of {charge.application}" if charge.application else "")
                + (f" ({charge.environment})" if charge.environment else ""),
                "ChargePeriodStart": _stamp(start),
                "ChargePeriodEnd": _stamp(end),
                **_quantities(Decimal(charge.quantity), per_call),
                "ConsumedUnit": "Requests" if per_call else "Tokens",
                "ContractedUnitPrice": _text(price, 6),
                "ListUnitPrice": _text(price, 6),
                "PricingUnit": "Requests" if per_call else "1000000 Tokens",
                "ResourceId": charge.application,
                "ResourceName": charge.application,
                "ResourceType": "Application" if charge.application else None,
                "SkuId": sku,
                "SkuPriceId": sku_price,
                "x_AllocationStatus": charge.allocation_status,
                "x_OriginChargeId": origin_id,
                "x_SkuPriceDetails": json.dumps({"ModelId": charge.model, **details}),
            }
        )
        if charge.allocation_status == "shared":
            rule = apps[charge.application].shared
            weights, rule_words = shared_weights(rule, direct)
            costs = split_exact(charge.cost, weights)
            ratios = split_exact(1, weights, RATIO_QUANTUM)
            # quantities split like the cost, so that they sum to the origin's too
            consumed = split_exact(charge.quantity, weights, RATIO_QUANTUM)
            unit, quantities = _method_basis(rule, rule_words, weights)
            for team_id in sorted(weights):
                team = teams[team_id]
                row = (
                    base
                    | _money(costs[team_id])
                    | _quantities(consumed[team_id], per_call)
                    | {
                        "SubAccountId": team_id,
                        "SubAccountName": team_id,
                        "Tags": _json_object(tags),
                        "x_AllocationRule": rule_words,
                        "x_AllocatedMethodId": _method_id(rule, rule_words),
                        "x_AllocatedMethodDetails": _method_details(
                            ratios[team_id], unit, quantities[team_id]
                        ),
                        "x_AllocatedRatio": _text(ratios[team_id], 12),
                        "x_AllocatedResourceId": team_id,
                        "x_AllocatedResourceName": team_id,
                        "x_AllocatedTags": _json_object(
                            {
                                "team": team_id,
                                "business_unit": team.business_unit,
                                "cost_center": team.cost_center,
                            }
                        ),
                    }
                )
                rows.append(row)
        else:
            unallocated = charge.allocation_status in UNALLOCATED_STATUSES
            if unallocated:
                rule_words = f"unallocated: {charge.allocation_status.replace('_', ' ')}"
            elif charge.application:
                rule_words = "direct: application owner"
            else:
                rule_words = "direct: team tag"
            team_id = None if unallocated else charge.owner_team
            rows.append(
                base
                | _money(charge.cost)
                | {
                    "SubAccountId": team_id,
                    "SubAccountName": team_id,
                    "Tags": _json_object(tags),
                    "x_AllocationRule": rule_words,
                }
            )
    return [
        {c: "" if row.get(c) is None else str(row[c]) for c in FOCUS_ALLOCATED_COLUMNS}
        for row in rows
    ]


def write_focus_allocated(path: Path, ledger: PeriodLedger) -> int:
    """Write focus_allocated.csv; return its number of rows."""
    rows = focus_allocated_rows(ledger)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FOCUS_ALLOCATED_COLUMNS)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    return len(rows)


# --- pieces -------------------------------------------------------------------------------------


_BASIS_UNITS = {"tokens": "Tokens", "cost": "Cost", "requests": "Requests"}


def _method_id(rule: FixedSplit | ProportionalSplit | EvenSplit, words: str) -> str:
    """shared-fixed, shared-proportional-<basis>, or shared-even (also a proportional rule that
    fell back to even for want of direct usage, as its words say)."""
    if isinstance(rule, FixedSplit):
        return "shared-fixed"
    if isinstance(rule, ProportionalSplit) and words.startswith("shared: proportional"):
        return f"shared-proportional-{rule.basis}"
    return "shared-even"


def _method_basis(
    rule: FixedSplit | ProportionalSplit | EvenSplit, words: str, weights: dict[str, Decimal]
) -> tuple[str, dict[str, Decimal]]:
    """The UsageUnit of AllocatedMethodDetails and each team's UsageQuantity."""
    method = _method_id(rule, words)
    if method == "shared-fixed":
        return "Percent", weights
    if method == "shared-even":
        return "Teams", {team: Decimal(1) for team in weights}
    return _BASIS_UNITS[rule.basis], weights


def _method_details(ratio: Decimal, unit: str, quantity: Decimal) -> str:
    """A FOCUS 1.3 AllocatedMethodDetails object; numbers written exactly (no float)."""
    return (
        f'{{"Elements": [{{"AllocatedRatio": {_text(ratio, 1)}, "UsageUnit": {json.dumps(unit)}, '
        f'"UsageQuantity": {_text(Decimal(quantity), 0)}}}]}}'
    )


def _quantities(consumed: Decimal, per_call: bool) -> dict[str, str]:
    """ConsumedQuantity (tokens or calls; a share of them on a split row, exact) and
    PricingQuantity (the same in the price's unit: 1M tokens, or calls)."""
    return {
        "ConsumedQuantity": _text(consumed.normalize(), 1),  # a decimal, also to pandas readers
        "PricingQuantity": _text(consumed / (1 if per_call else TOKENS_PER_PRICING_UNIT), 6),
    }


def _money(cost: Decimal) -> dict[str, str]:
    text = _text(cost, 12)
    return {"BilledCost": text, "EffectiveCost": text, "ListCost": text, "ContractedCost": text}


def _text(value: Decimal | None, places: int) -> str | None:
    """Exact decimal text with at least `places` decimals (never an exponent)."""
    if value is None:
        return None
    value = Decimal(value)
    if value.as_tuple().exponent > -places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return format(value, "f")


def _json_object(values: dict[str, object]) -> str:
    return json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
