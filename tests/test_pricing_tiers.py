"""Batch and long-context (tier) prices: config rules, and exact costs through the pipeline."""

import csv
import textwrap
from decimal import Decimal

import pytest
import yaml

from allocation_kit.config import PricingSnapshot, load_workspace
from allocation_kit.errors import ConfigError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.price import PriceLayout, direction_pico_sql, price_layout
from allocation_kit.report import write_exceptions

from .conftest import PRICING, request

TIERED = """
currency: USD
source_url: https://example.com/pricing
reviewed_on: 2026-09-28
reviewed_by: finops-analyst
models:
  - model: long-ctx
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.25, cached_input: 0.125, output: 10.00}
    batch: {input: 0.625, output: 5.00}
    tiers:
      - above_input_tokens: 200000
        per_1m_tokens: {input: 2.50, cached_input: 0.25, output: 15.00}
        batch: {input: 1.25, cached_input: 0.125, output: 7.50}
  - model: tier-no-batch
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.00, output: 4.00}
    batch: {input: 0.50, output: 2.00}
    tiers:
      - above_input_tokens: 128000
        per_1m_tokens: {input: 2.00, output: 8.00}
  - model: two-tiers
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.00, output: 2.00}
    tiers:
      - above_input_tokens: 100000
        per_1m_tokens: {input: 3.00, output: 6.00}
      - above_input_tokens: 500000
        per_1m_tokens: {input: 5.00, output: 10.00, reasoning: 20.00}
  - model: plain
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.00, output: 4.00}
  - model: painter
    effective_from: 2026-01-01
    per_call: 0.04
"""


def cost_of(workspace, pricing=TIERED, **values) -> Decimal:
    kit = workspace([request("r1", **values)], pricing=pricing)
    ledger = period_ledger(load_workspace(kit), parse_period("2026-10"), validate=False)
    return ledger.ledger_cost


@pytest.mark.parametrize(
    ("values", "cost"),
    [
        # exactly at the threshold is not above it: 200,000 × 1.25 + 1,000 × 10.00 per 1M
        ({"input_tokens": 200_000}, "0.26"),
        # one token above: the whole request at the tier, 200,001 × 2.50 + 1,000 × 15.00
        ({"input_tokens": 200_001}, "0.5150025"),
        # cached tokens follow the tier too: 100,001 × 2.50 + 100,000 × 0.25 + 1,000 × 15.00
        ({"input_tokens": 200_001, "cached_input_tokens": 100_000}, "0.29000250"),
        # batch at the threshold: 200,000 × 0.625 + 1,000 × 5.00
        ({"input_tokens": 200_000, "batch": "true"}, "0.13"),
        # batch above it: 100,001 × 1.25 + 100,000 × 0.125 + 1,000 × 7.50
        ({"input_tokens": 200_001, "cached_input_tokens": 100_000, "batch": "true"},
         "0.14500125"),
        # batch prices without cached_input: cache reads at the batch input price
        ({"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 100,
          "batch": "true"}, "0.001125"),
        ({"input_tokens": 1000, "output_tokens": 100, "batch": "false"}, "0.00225"),
    ],
)  # fmt: skip
def test_long_context_and_batch_prices_cost_exactly(workspace, values, cost):
    values = {"model": "long-ctx", "output_tokens": 1000, **values}
    assert cost_of(workspace, **values) == Decimal(cost)


@pytest.mark.parametrize(
    ("values", "cost"),
    [
        ({"input_tokens": 128_000, "batch": "true"}, "0.066"),  # base batch: 0.50 and 2.00
        # a tier without batch prices charges batch requests the tier's prices
        ({"input_tokens": 128_001, "batch": "true"}, "0.264002"),
        ({"input_tokens": 128_001}, "0.264002"),
    ],
)
def test_a_tier_without_batch_prices_charges_batch_requests_its_own_prices(workspace, values, cost):
    assert cost_of(workspace, model="tier-no-batch", output_tokens=1000, **values) == Decimal(cost)


@pytest.mark.parametrize(
    ("input_tokens", "cost"),
    [
        (100_000, "0.102"),  # 100,000 × 1.00 + 1,000 × 2.00
        (100_001, "0.306003"),  # 100,001 × 3.00 + 1,000 × 6.00
        (500_000, "1.506"),  # 500,000 × 3.00 + 1,000 × 6.00
        # 500,001 × 5.00 + 600 plain output × 10.00 + 400 reasoning × 20.00
        (500_001, "2.514005"),
    ],
)
def test_the_highest_tier_the_input_exceeds_applies(workspace, input_tokens, cost):
    values = {"input_tokens": input_tokens, "output_tokens": 1000, "reasoning_tokens": 400}
    assert cost_of(workspace, model="two-tiers", **values) == Decimal(cost)


def test_models_without_tiers_or_batch_prices_keep_their_prices(workspace):
    assert cost_of(workspace, model="plain", input_tokens=300_000, batch="true") == Decimal(
        "0.3004"
    )
    assert cost_of(workspace, model="painter", batch="true") == Decimal("0.04")


def test_one_validated_period_sums_batch_tier_and_plain_requests_exactly(workspace):
    rows = [
        request("a", model="long-ctx", input_tokens=200_000, output_tokens=1000),
        request("b", model="long-ctx", input_tokens=200_001, output_tokens=1000, batch="true"),
        request("c", model="plain", batch="true"),
        request("d", model="long-ctx", input_tokens=300_000, status_code=500),
    ]
    ledger = period_ledger(load_workspace(workspace(rows, pricing=TIERED)), parse_period("2026-10"))
    # 0.26 + (200,001 × 1.25 + 1,000 × 7.50) / 1M + 0.0014; the failed call costs nothing
    assert ledger.ledger_cost == Decimal("0.26") + Decimal("0.25750125") + Decimal("0.0014")
    assert sum((line.cost for line in ledger.allocation), Decimal(0)) == ledger.ledger_cost


def test_without_batch_or_tier_prices_the_cost_sql_is_unchanged():
    snapshot = PricingSnapshot.model_validate(yaml.safe_load(PRICING))
    assert price_layout(snapshot) == PriceLayout()
    assert direction_pico_sql("r", "p", price_layout(snapshot)) == direction_pico_sql("r", "p")
    assert "CASE" not in " ".join(direction_pico_sql("r", "p").values())


def test_the_layout_holds_the_most_tiers_and_any_batch_prices():
    snapshot = PricingSnapshot.model_validate(yaml.safe_load(TIERED))
    layout = price_layout(snapshot)
    assert layout == PriceLayout(tiers=2, batch=True)
    assert layout.blocks() == ["", "batch_", "tier1_", "tier1_batch_", "tier2_", "tier2_batch_"]


def pricing_error(workspace, models: str) -> str:
    head = PRICING.split("models:")[0]
    pricing = head + "models:\n" + textwrap.indent(textwrap.dedent(models), "  ")
    with pytest.raises(ConfigError) as caught:
        load_workspace(workspace([request("r1")], pricing=pricing))
    assert caught.value.exit_code == 2
    return caught.value.line().split("pricing.yaml: ")[1]


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           tiers:
             - {above_input_tokens: 200000, per_1m_tokens: {input: 2, output: 4}}
             - {above_input_tokens: 128000, per_1m_tokens: {input: 3, output: 6}}
         """,
         "models[0] (m).tiers[1].above_input_tokens: 128000 is not above the previous tier's "
         "200000; expected tiers in increasing order of above_input_tokens, each once"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           tiers:
             - {above_input_tokens: 200000, per_1m_tokens: {input: 2, output: 4}}
             - {above_input_tokens: 200000, per_1m_tokens: {input: 3, output: 6}}
         """,
         "models[0] (m).tiers[1].above_input_tokens: 200000 is not above the previous tier's "
         "200000; expected tiers in increasing order of above_input_tokens, each once"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           tiers: [{above_input_tokens: 0, per_1m_tokens: {input: 2, output: 4}}]
         """,
         "models[0] (m).tiers[0].above_input_tokens: got 0, expected more than 0"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           batch: {input: 0.5}
         """,
         "models[0] (m).batch.output: required key is missing"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           tiers: [{above_input_tokens: 1000, per_1m_tokens: {input: 2}}]
         """,
         "models[0] (m).tiers[0].per_1m_tokens.output: required key is missing"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_call: 0.04
           batch: {input: 0.5, output: 1}
         """,
         "models[0] (m).batch: needs per_1m_tokens (batch and tier prices are per token)"),
        ("""
         - model: m
           effective_from: 2026-01-01
           per_1m_tokens: {input: 1, output: 2}
           tiers: [{above_input_tokens: 1000, per_1m_tokens: {input: 2, output: 4}, bach: {}}]
         """,
         "models[0] (m).tiers[0].bach: unknown key (did you mean batch?); expected one of "
         "above_input_tokens, per_1m_tokens, batch"),
    ],
)  # fmt: skip
def test_tier_and_batch_mistakes_are_one_line_naming_the_key(workspace, models, expected):
    assert pricing_error(workspace, models) == expected


def test_a_stray_row_in_the_exception_queue_is_priced_at_its_tier(workspace, tmp_path):
    rows = [
        request("a", model="plain"),
        request("b", model="plain"),
        request("late", model="long-ctx", input_tokens=200_001, output_tokens=1000,
                timestamp="2026-09-30T23:00:00Z"),
    ]  # fmt: skip
    kit = workspace(rows, pricing=TIERED)
    ledger = period_ledger(load_workspace(kit), parse_period("2026-10"), validate=False)
    write_exceptions(tmp_path / "exceptions.csv", ledger)
    with (tmp_path / "exceptions.csv").open() as handle:
        stray = next(r for r in csv.DictReader(handle) if r["request_id"] == "late")
    assert (stray["reason"], Decimal(stray["cost"])) == ("out_of_period", Decimal("0.5150025"))


def test_a_batch_request_is_in_the_batch_band_only_where_its_block_has_batch_prices(workspace):
    rows = [
        request("a", model="long-ctx", input_tokens=1000, batch="true"),  # base batch prices
        request("b", model="long-ctx", input_tokens=200_001, batch="true"),  # tier batch prices
        request("c", model="plain", batch="true"),  # none: the plain prices, the plain band
        request("d", model="tier-no-batch", input_tokens=128_001, batch="true"),  # tier has none
        request("e", model="tier-no-batch", input_tokens=1000, batch="true"),  # base has them
    ]
    ledger = period_ledger(load_workspace(workspace(rows, pricing=TIERED)), parse_period("2026-10"))
    bands = ledger.con.execute(
        "SELECT model, price_band, sum(requests)::INTEGER FROM lines GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert bands == [
        ("long-ctx", "batch", 1),
        ("long-ctx", "tier1 batch", 1),
        ("plain", "", 1),
        ("tier-no-batch", "batch", 1),
        ("tier-no-batch", "tier1", 1),
    ]
