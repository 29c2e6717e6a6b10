"""Reconciliation: the ledger against the provider's bill, in money and tokens, with a verdict."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation_kit.billing import workspace_billing
from allocation_kit.chargeback import bill_charges
from allocation_kit.config import load_workspace
from allocation_kit.errors import InputError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.reconcile import (
    RECONCILIATION_LINE_COLUMNS,
    reconciliation,
    reconciliation_lines_rows,
    reconciliation_record,
    variance_pct,
)

from .conftest import KIT, PRICING, request
from .test_billing import FOCUS_EXAMPLES, focus_row, needs_examples, write_csv

KIT_WITH_BILL = KIT.replace(
    "registry: registry.yaml", "billing: {path: bill.csv, format: focus}\nregistry: registry.yaml"
)
REVIEWED_AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)

# chat-small before 2026-10-15 (input 1.00, cached 0.50, output 4.00 per 1M):
#   600,000 × 1.00 + 400,000 × 0.50 + 250,000 × 4.00 = 0.60 + 0.20 + 1.00 = 1.80
# cacher (3.00, cached 0.30, cache write 3.75, output 15.00):
#   20,000 × 3.00 + 60,000 × 0.30 + 20,000 × 3.75 + 10,000 × 15.00 = 0.06 + 0.018 + 0.075 + 0.15
# painter: one call at 0.04; r4 failed (500): counted, not billable.  Ledger: 2.143
ROWS = [
    request("r1", input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=250_000),
    request("r2", model="cacher", input_tokens=100_000, cached_input_tokens=60_000,
            cache_write_tokens=20_000, output_tokens=10_000),
    request("r3", model="painter", input_tokens=0, output_tokens=0),
    request("r4", status_code=500),
]  # fmt: skip

DETAILS = {
    "uncached_input": {"TokenCacheAction": "Uncached", "TokenDirection": "Input"},
    "cached_input": {"TokenCacheAction": "CacheRead", "TokenDirection": "Input"},
    "cache_write": {"TokenCacheAction": "CacheWrite", "TokenDirection": "Input"},
    "output": {"TokenDirection": "Output"},
    "per_call": {},
}


def usage(model: str, direction: str, quantity: int, cost: str, **values: object) -> dict:
    """A monthly October usage line of the bill for one model and direction."""
    return focus_row(**{
        "BilledCost": cost,
        "ChargeDescription": f"{model} {direction}",
        "ConsumedQuantity": str(quantity),
        "ConsumedUnit": "Requests" if direction == "per_call" else "Tokens",
        "PricingQuantity": "",
        "PricingUnit": "",
        "SkuMeter": "",
        "SkuPriceDetails": json.dumps({"ModelId": model, **DETAILS[direction]}),
        **values,
    })  # fmt: skip


def charge(category: str, cost: str, description: str, **values: object) -> dict:
    return focus_row(
        ChargeCategory=category, BilledCost=cost, ChargeDescription=description,
        ConsumedQuantity="", ConsumedUnit="", PricingQuantity="", PricingUnit="", SkuMeter="",
        SkuPriceDetails="", **values,
    )  # fmt: skip


CLEAN_BILL = [
    usage("chat-small", "uncached_input", 600_000, "0.60"),
    usage("chat-small", "cached_input", 400_000, "0.20"),
    usage("chat-small", "output", 250_000, "1.00"),
    usage("cacher", "uncached_input", 20_000, "0.06"),
    usage("cacher", "cached_input", 60_000, "0.018"),
    usage("cacher", "cache_write", 20_000, "0.075"),
    usage("cacher", "output", 10_000, "0.15"),
    usage("painter", "per_call", 1, "0.04"),
]


def reconcile(workspace, rows, bill, *, period="2026-10", kit=KIT_WITH_BILL, pricing=PRICING):
    config = workspace(rows, kit=kit, pricing=pricing)
    if bill is not None:
        write_csv(config.parent / "bill.csv", bill, list(dict.fromkeys(k for r in bill for k in r)))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period(period))
    return reconciliation(ledger, workspace_billing(ledger.con, ws))


def record(recon) -> dict:
    return reconciliation_record(recon, "finops-analyst", REVIEWED_AT)


def codes(recon) -> list[tuple[str, str]]:
    return [(r.code, r.effect) for r in recon.reasons]


def message(recon, code: str) -> str:
    return next(r.message for r in recon.reasons if r.code == code)


def table(recon) -> list[tuple]:
    """(model, direction, ledger tokens, billed tokens, ledger cost, variance, finding)."""
    return [
        (r["model"], r["direction"], r["ledger_tokens"], r["billed_tokens"], r["ledger_cost"],
         r["variance"], r["finding"])
        for r in reconciliation_lines_rows(recon)
    ]  # fmt: skip


# --- the verdicts -------------------------------------------------------------------------------


def test_a_bill_that_matches_the_ledger_passes_with_every_line_reconciled(workspace):
    recon = reconcile(workspace, ROWS, CLEAN_BILL)
    doc = record(recon)
    assert {k: doc[k] for k in ("period_start", "period_end", "currency", "ledger_cost",
                                "billed_cost", "variance", "variance_pct", "tolerance_pct",
                                "result")} == {
        "period_start": "2026-10-01T00:00:00+00:00",
        "period_end": "2026-11-01T00:00:00+00:00",
        "currency": "USD",
        "ledger_cost": "2.143000000000",
        "billed_cost": "2.143000000000",
        "variance": "0.000000000000",
        "variance_pct": "0.0000",
        "tolerance_pct": "1",
        "result": "pass",
    }  # fmt: skip
    assert doc["reasons"] == [
        {
            "code": "within_tolerance",
            "effect": "info",
            "subject": "total",
            "numbers": {
                "ledger_cost": "2.143000000000",
                "billed_cost": "2.143000000000",
                "variance": "0.000000000000",
                "variance_pct": "0.0000",
                "tolerance_pct": "1",
            },
            "message": "Usage billed $2.14 vs $2.14 computed from the ledger: variance $0.00 "
            "(0.0000%), within the 1% tolerance.",
        }
    ]
    z = "0.000000000000"
    assert table(recon) == [
        ("cacher", "", 110_000, 110_000, "0.303000000000", z, "match"),
        ("cacher", "uncached_input", 20_000, 20_000, "0.060000000000", z, "match"),
        ("cacher", "cached_input", 60_000, 60_000, "0.018000000000", z, "match"),
        ("cacher", "cache_write", 20_000, 20_000, "0.075000000000", z, "match"),
        ("cacher", "output", 10_000, 10_000, "0.150000000000", z, "match"),
        ("chat-small", "", 1_250_000, 1_250_000, "1.800000000000", z, "match"),
        ("chat-small", "uncached_input", 600_000, 600_000, "0.600000000000", z, "match"),
        ("chat-small", "cached_input", 400_000, 400_000, "0.200000000000", z, "match"),
        ("chat-small", "output", 250_000, 250_000, "1.000000000000", z, "match"),
        ("painter", "", 1, 1, "0.040000000000", z, "match"),
        ("painter", "per_call", 1, 1, "0.040000000000", z, "match"),
    ]
    assert (doc["daily"], doc["other_charges"], doc["corrections"]) == (None, [], [])
    assert {k: doc["counts"][k] for k in ("attempted", "successful", "billable", "failed")} == {
        "attempted": 4, "successful": 3, "billable": 3, "failed": 1
    }  # fmt: skip
    assert (doc["total_calls_logged"], doc["billing_reported_count"]) == (4, None)
    assert (doc["reviewed_by"], doc["reviewed_at"]) == (
        "finops-analyst", "2026-11-03T09:30:00+00:00"
    )  # fmt: skip


def test_a_5_pct_overbill_on_one_model_fails_naming_the_model_and_direction(workspace):
    bill = [dict(line) for line in CLEAN_BILL]
    for line, cost in zip(bill[:3], ("0.63", "0.21", "1.05"), strict=True):
        line["BilledCost"] = cost  # chat-small billed 1.89 instead of 1.80
    recon = reconcile(workspace, ROWS, bill)
    assert recon.result == "fail"
    # -0.09 / 2.233 = -4.03045… %
    assert (recon.variance, recon.variance_pct) == (Decimal("-0.09"), Decimal("-4.0305"))
    assert codes(recon) == [("variance_over_tolerance", "fail")] + [("price_mismatch", "info")] * 3
    assert recon.reasons[0].message == (
        "Usage billed $2.23 vs $2.14 computed from the ledger: variance −$0.09 (−4.0305%), "
        "beyond the 1% tolerance; largest difference: chat-small output tokens (−$0.05)."
    )
    assert recon.reasons[3].message == (
        "chat-small output tokens billed 250,000 vs 250,000 logged, but billed $1.05 vs $1.00 "
        "computed ($4.20 per 1M tokens billed vs $4.00 priced, on average): either the price "
        "snapshot is stale (check the provider's price for the period) or the provider billed "
        "above its price (dispute the difference)."
    )
    assert recon.reasons[3].numbers == {
        "model": "chat-small",
        "direction": "output",
        "ledger_tokens": 250_000,
        "billed_tokens": 250_000,
        "ledger_cost": "1.000000000000",
        "billed_cost": "1.050000000000",
        "variance": "-0.050000000000",
        "variance_pct": "-4.7619",
    }


def test_billed_tokens_the_ledger_lacks_read_as_missing_traffic(workspace):
    bill = [dict(line) for line in CLEAN_BILL]
    bill[2] |= {"ConsumedQuantity": "262500", "BilledCost": "1.05"}
    recon = reconcile(workspace, ROWS, bill)
    assert recon.result == "fail"
    assert message(recon, "token_mismatch") == (
        "chat-small output tokens billed 262,500 vs 250,000 logged (billed $1.05 vs $1.00 "
        "computed): the bill has 12,500 tokens more: traffic missing from the ledger (unlogged "
        "callers or lost log rows)."
    )


def test_a_billed_model_absent_from_the_ledger_is_inconclusive(workspace):
    recon = reconcile(workspace, ROWS, [*CLEAN_BILL, usage("ghost-model", "output", 1000, "0.5")])
    assert recon.result == "inconclusive"
    assert codes(recon) == [("within_tolerance", "info"), ("model_not_in_ledger", "inconclusive")]
    assert [r.message for r in recon.reasons] == [
        "Usage billed $2.64 vs $2.14 computed from the ledger: variance −$0.50 (−18.9179%); "
        "judged on the 3 models both sides have and the ledger fully prices: $2.14 billed vs "
        "$2.14 computed (0.0000%), within the 1% tolerance.",
        "ghost-model: billed $0.50 (1,000 tokens) but absent from the ledger: traffic the ledger "
        "does not log (another key or gateway), or the model id is spelt differently.",
    ]
    assert table(recon)[9:11] == [
        ("ghost-model", "", 0, 1000, "0.000000000000", "-0.500000000000", "not_in_ledger"),
        ("ghost-model", "output", 0, 1000, "0.000000000000", "-0.500000000000", "not_in_ledger"),
    ]


def test_a_ledger_model_missing_from_the_bill_is_inconclusive(workspace):
    recon = reconcile(workspace, ROWS, CLEAN_BILL[:-1])
    assert recon.result == "inconclusive"
    assert message(recon, "model_not_in_bill") == (
        "painter: 1 billable call ($0.04 computed) in the ledger but absent from the bill: the "
        "model id is spelt differently, the traffic is billed elsewhere, or a bill line is missing."
    )


def test_a_model_neither_priced_nor_billed_has_an_unknown_cost_not_a_zero(workspace):
    rows = [
        *ROWS,
        request("m1", model="mystery-model", input_tokens=1000, output_tokens=100),
        request("m2", model="mystery-model", input_tokens=500, output_tokens=50),
    ]
    recon = reconcile(workspace, rows, CLEAN_BILL)
    assert message(recon, "model_not_in_bill") == (
        "mystery-model: 2 billable calls (no price: cost unknown) in the ledger but absent from "
        "the bill: the model id is spelt differently, the traffic is billed elsewhere, or a bill "
        "line is missing."
    )
    reason = next(r for r in recon.reasons if r.code == "model_not_in_bill")
    assert (reason.numbers["ledger_cost"], reason.numbers["unpriced_calls"]) == (None, 2)
    (line,) = [r for r in reconciliation_lines_rows(recon) if r["model"] == "mystery-model"]
    assert (line["ledger_tokens"], line["ledger_cost"], line["billed_cost"]) == (
        1650,
        "",
        "0.000000000000",
    )
    assert (line["variance"], line["variance_pct"], line["finding"]) == ("", "", "not_in_bill")


def test_an_unpriced_ledger_model_is_inconclusive_not_a_failure(workspace):
    rows = [*ROWS, request("m1", model="mystery-model", input_tokens=1000, output_tokens=100)]
    bill = [*CLEAN_BILL, usage("mystery-model", "uncached_input", 1000, "0.30")]
    recon = reconcile(workspace, rows, bill)
    assert recon.result == "inconclusive"
    assert codes(recon) == [("within_tolerance", "info"), ("unpriced_model", "inconclusive")]
    assert message(recon, "unpriced_model") == (
        "mystery-model: 1 billable call (1,100 tokens) has no price in the snapshot, so the "
        "ledger cannot cost it (billed $0.30); add the model to pricing.yaml."
    )
    assert [line.finding for line in recon.lines[9:11]] == ["unpriced", "unpriced"]
    # as evidence, its cost is unknown, not zero: no ledger cost, no variance
    rows_ = [r for r in reconciliation_lines_rows(recon) if r["model"] == "mystery-model"]
    assert [
        (r["direction"], r["ledger_cost"], r["billed_cost"], r["variance"], r["variance_pct"])
        for r in rows_
    ] == [
        ("", "", "0.300000000000", "", ""),
        ("uncached_input", "", "0.300000000000", "", ""),
        ("output", "", "0.000000000000", "", ""),  # 100 output tokens the bill did not charge
    ]


def test_a_real_overcharge_still_fails_beside_an_unmatched_model(workspace):
    bill = [dict(line) for line in CLEAN_BILL]
    bill[2]["BilledCost"] = "1.20"
    recon = reconcile(workspace, ROWS, [*bill, usage("ghost-model", "output", 1000, "0.5")])
    assert recon.result == "fail"
    assert codes(recon) == [
        ("variance_over_tolerance", "fail"),
        ("model_not_in_ledger", "inconclusive"),
        ("price_mismatch", "info"),
    ]


# --- what is compared, and what is listed beside ------------------------------------------------


def test_tax_and_credits_are_listed_beside_never_in_the_usage_variance(workspace):
    bill = [*CLEAN_BILL, charge("Tax", "0.16", "Sales tax"), charge("Credit", "-0.05", "Promo")]
    recon = reconcile(workspace, ROWS, bill)
    doc = record(recon)
    assert (doc["result"], doc["billed_cost"], doc["variance"]) == (
        "pass", "2.143000000000", "0.000000000000"
    )  # fmt: skip
    assert doc["other_charges"] == [
        {
            "charge_category": "Tax",
            "charge_class": None,
            "description": "Sales tax",
            "currency": "USD",
            "amount": "0.160000000000",
            "bill_lines": 1,
            "charge_period_start": "2026-10-01T00:00:00",
            "charge_period_end": "2026-11-01T00:00:00",
            "billing_period_start": "2026-10-01T00:00:00",
            "billing_period_end": "2026-11-01T00:00:00",
        },
        {
            "charge_category": "Credit",
            "charge_class": None,
            "description": "Promo",
            "currency": "USD",
            "amount": "-0.050000000000",
            "bill_lines": 1,
            "charge_period_start": "2026-10-01T00:00:00",
            "charge_period_end": "2026-11-01T00:00:00",
            "billing_period_start": "2026-10-01T00:00:00",
            "billing_period_end": "2026-11-01T00:00:00",
        },
    ]
    assert message(recon, "other_charges") == (
        "Other charges beside usage, not in the variance: Tax $0.16 (Sales tax); "
        "Credit −$0.05 (Promo)."
    )


def test_a_months_tax_beside_a_week_is_listed_per_month_as_a_whole_charge(workspace):
    september = {
        "ChargePeriodStart": "2026-09-01T00:00:00Z", "ChargePeriodEnd": "2026-10-01T00:00:00Z",
        "BillingPeriodStart": "2026-09-01T00:00:00Z", "BillingPeriodEnd": "2026-10-01T00:00:00Z",
    }  # fmt: skip
    bill = [
        *CLEAN_BILL,
        charge("Tax", "0.10", "Sales tax", **september),
        charge("Tax", "0.16", "Sales tax"),
    ]
    # 2026-W40 runs from 2026-09-28 to 2026-10-04: both months' tax lines overlap it
    rows = [dict(r, timestamp="2026-10-02T12:00:00Z") for r in ROWS]
    recon = reconcile(workspace, rows, bill, period="2026-W40")
    assert [(c.amount, c.charge_period_start.date()) for c in recon.other_charges] == [
        (Decimal("0.100000000000"), date(2026, 9, 1)),
        (Decimal("0.160000000000"), date(2026, 10, 1)),
    ]
    assert message(recon, "other_charges") == (
        "Other charges beside usage, not in the variance: Tax $0.10 (Sales tax), charged for "
        "2026-09-01 to 2026-09-30, beyond 2026-W40: the whole charge, not prorated; Tax $0.16 "
        "(Sales tax), charged for 2026-10-01 to 2026-10-31, beyond 2026-W40: the whole charge, "
        "not prorated."
    )


def test_a_correction_is_its_own_line_outside_the_variance(workspace):
    correction = usage(
        "chat-small", "output", 0, "-0.10", ChargeClass="Correction",
        ChargeDescription="Output overbilled in September",
        ChargePeriodStart="2026-09-01T00:00:00Z", ChargePeriodEnd="2026-10-01T00:00:00Z",
    )  # fmt: skip
    recon = reconcile(workspace, ROWS, [*CLEAN_BILL, correction])
    doc = record(recon)
    assert (doc["result"], doc["billed_cost"]) == ("pass", "2.143000000000")
    assert doc["corrections"] == [
        {
            "charge_category": "Usage",
            "charge_class": "Correction",
            "description": "Output overbilled in September",
            "currency": "USD",
            "amount": "-0.100000000000",
            "bill_lines": 1,
            "charge_period_start": "2026-09-01T00:00:00",
            "charge_period_end": "2026-10-01T00:00:00",
            "billing_period_start": "2026-10-01T00:00:00",
            "billing_period_end": "2026-11-01T00:00:00",
        }
    ]
    # on October's invoice: October's chargeback books it, whatever usage it corrects
    assert bill_charges(doc, "USD") == (doc["corrections"], [])
    assert message(recon, "corrections") == (
        "1 correction line (−$0.10) listed beside usage, not in the variance: they correct "
        "earlier periods' bills."
    )


def test_daily_charge_periods_are_compared_day_by_day(workspace):
    rows = [
        request("a", input_tokens=1_000_000, output_tokens=0, timestamp="2026-10-02T23:59:59Z"),
        request("b", input_tokens=500_000, output_tokens=0, timestamp="2026-10-03T00:00:00Z"),
    ]
    bill = [
        usage("chat-small", "uncached_input", 1_000_000, "1.00",
              ChargePeriodStart="2026-10-02T00:00:00Z", ChargePeriodEnd="2026-10-03T00:00:00Z"),
        usage("chat-small", "uncached_input", 400_000, "0.40",
              ChargePeriodStart="2026-10-03T00:00:00Z", ChargePeriodEnd="2026-10-04T00:00:00Z"),
        usage("chat-small", "uncached_input", 100_000, "0.10",
              ChargePeriodStart="2026-10-04T00:00:00Z", ChargePeriodEnd="2026-10-05T00:00:00Z"),
    ]  # fmt: skip
    recon = reconcile(workspace, rows, bill)
    assert recon.result == "pass"
    assert len(recon.daily) == 31
    assert [(d.day, d.ledger_cost, d.billed_cost, d.variance_pct) for d in recon.daily[:5]] == [
        (date(2026, 10, 1), Decimal(0), Decimal(0), Decimal("0.0000")),
        (date(2026, 10, 2), Decimal(1), Decimal(1), Decimal("0.0000")),
        (date(2026, 10, 3), Decimal("0.5"), Decimal("0.4"), Decimal("25.0000")),
        (date(2026, 10, 4), Decimal(0), Decimal("0.1"), Decimal("-100.0000")),
        (date(2026, 10, 5), Decimal(0), Decimal(0), Decimal("0.0000")),
    ]
    assert message(recon, "daily_variance") == (
        "2 of 31 days differ by more than the 1% tolerance (largest: 2026-10-03, billed $0.40 "
        "vs $0.50 computed); over- and under-billed days offset each other, which usually means "
        "the bill cuts days in another time zone than UTC."
    )
    assert record(recon)["daily"][2] == {
        "day": "2026-10-03",
        "ledger_cost": "0.500000000000",
        "billed_cost": "0.400000000000",
        "variance": "0.100000000000",
        "variance_pct": "25.0000",
    }


def test_days_are_compared_on_the_models_both_sides_price(workspace):
    # mystery has no price in the snapshot: its billed $0.30 on 2 October would otherwise be a
    # daily variance nothing in the ledger can explain
    rows = [
        request("a", input_tokens=1_000_000, output_tokens=0, timestamp="2026-10-02T12:00:00Z"),
        request("m", model="mystery", timestamp="2026-10-02T12:00:00Z"),
    ]
    day = {"ChargePeriodStart": "2026-10-02T00:00:00Z", "ChargePeriodEnd": "2026-10-03T00:00:00Z"}
    bill = [
        usage("chat-small", "uncached_input", 1_000_000, "1.00", **day),
        usage("mystery", "uncached_input", 1_000, "0.30", **day),
    ]
    recon = reconcile(workspace, rows, bill)
    assert recon.daily_leaves_out == ["mystery"]
    assert (recon.daily[1].day, recon.daily[1].ledger_cost, recon.daily[1].billed_cost) == (
        date(2026, 10, 2), Decimal(1), Decimal(1)
    )  # fmt: skip
    assert not [r for r in recon.reasons if r.code == "daily_variance"]
    assert record(recon)["daily_leaves_out"] == ["mystery"]


def test_monthly_charge_periods_give_no_daily_comparison(workspace):
    assert reconcile(workspace, ROWS, CLEAN_BILL).daily is None


@pytest.mark.parametrize(
    ("calls", "cost", "code", "expected"),
    [
        (2, "0.08", "token_mismatch",
         "painter calls billed 2 vs 1 logged (billed $0.08 vs $0.04 computed): the bill has 1 "
         "call more: traffic missing from the ledger (unlogged callers or lost log rows)."),
        (1, "0.05", "price_mismatch",
         "painter calls billed 1 vs 1 logged, but billed $0.05 vs $0.04 computed ($0.05 per call "
         "billed vs $0.04 priced, on average): either the price snapshot is stale (check the "
         "provider's price for the period) or the provider billed above its price (dispute the "
         "difference)."),
    ],
)  # fmt: skip
def test_per_call_models_compare_requests_and_their_rate(workspace, calls, cost, code, expected):
    bill = [*CLEAN_BILL[:-1], usage("painter", "per_call", calls, cost)]
    assert message(reconcile(workspace, ROWS, bill), code) == expected


def test_a_bill_reporting_request_counts_is_compared_with_billable_calls(workspace):
    bill = [line | {"x_RequestCount": "1"} for line in CLEAN_BILL]
    recon = reconcile(workspace, ROWS, bill)
    assert (recon.result, recon.billing_reported_count, recon.total_calls_logged) == ("pass", 8, 4)
    assert message(recon, "request_count_differs") == (
        "The bill reports 8 requests; the ledger has 3 billable calls (4 logged)."
    )


def test_usage_drawn_down_from_a_prepaid_commitment_is_compared_at_its_effective_cost(workspace):
    """BilledCost 0 (prepaid), EffectiveCost the share of the prepayment it used: the ledger's
    $1.80 matches that, line by line; the verdict says how it was compared."""
    bill = [
        line | {"BilledCost": "0", "EffectiveCost": line["BilledCost"]} for line in CLEAN_BILL[:3]
    ]
    recon = reconcile(workspace, ROWS[:1], bill)
    assert (recon.result, recon.billed_cost, recon.variance) == ("pass", Decimal("1.8"), 0)
    assert message(recon, "commitment_drawdown") == (
        "Usage billed $0.00 has an effective cost of $1.80: it is drawn down from a prepaid "
        "commitment, whose purchase is listed under other charges; it is compared with the "
        "ledger at its effective cost."
    )
    assert {r["finding"] for r in reconciliation_lines_rows(recon)} == {"match"}


def test_a_drawdown_whose_effective_cost_differs_still_fails(workspace):
    bill = [
        line | {"BilledCost": "0", "EffectiveCost": line["BilledCost"]} for line in CLEAN_BILL[:2]
    ] + [CLEAN_BILL[2] | {"BilledCost": "0", "EffectiveCost": "1.50"}]  # output: 1.00 computed
    recon = reconcile(workspace, ROWS[:1], bill)
    assert (recon.result, recon.billed_cost, recon.variance) == (
        "fail",
        Decimal("2.3"),
        Decimal("-0.5"),
    )


def test_aliases_let_a_dated_ledger_model_and_a_prefixed_bill_model_meet_their_price(workspace):
    # the gateway logs the dated snapshot, the bill prefixes the vendor: one priced model
    pricing = (
        PRICING + "aliases:\n  chat-small-2026-05-01: chat-small\n  vendor/chat-small: chat-small\n"
    )
    rows = [
        {**r, "model": "chat-small-2026-05-01"} if r["model"] == "chat-small" else r for r in ROWS
    ]
    bill = [
        {
            **line,
            "SkuPriceDetails": line["SkuPriceDetails"].replace(
                '"chat-small"', '"vendor/chat-small"'
            ),
        }
        for line in CLEAN_BILL
    ]
    recon = reconcile(workspace, rows, bill, pricing=pricing)
    assert (recon.result, recon.variance) == ("pass", Decimal(0))
    assert {line.model for line in recon.lines} == {"chat-small", "cacher", "painter"}


# --- when the comparison cannot be trusted ------------------------------------------------------


def test_a_bill_in_another_currency_is_inconclusive_even_when_the_amounts_agree(workspace):
    eur = {"BillingCurrency": "EUR"}
    tax = charge("Tax", "0.16", "VAT") | eur
    recon = reconcile(workspace, ROWS, [line | eur for line in CLEAN_BILL] + [tax])
    assert recon.result == "inconclusive"
    # euros are not the ledger's dollars: no billed total, variance or lines, as for a bill that
    # cannot be cut to the period; a charge beside usage keeps its own currency
    assert codes(recon) == [("currency_mismatch", "inconclusive"), ("other_charges", "info")]
    assert recon.reasons[0].message == (
        "The bill is in EUR but the ledger is priced in USD: the amounts cannot be compared."
    )
    assert recon.reasons[1].message == (
        "Other charges beside usage, not in the variance: Tax €0.16 (VAT)."
    )
    doc = record(recon)
    assert (doc["billing_currencies"], doc["billed_cost"], doc["variance"], doc["lines"]) == (
        ["EUR"], None, None, []
    )  # fmt: skip


def test_a_tax_line_in_another_currency_leaves_the_usage_comparable(workspace):
    # dollars of usage reconcile; the euro VAT line is listed in euros, never added to them
    vat = charge("Tax", "0.16", "VAT") | {"BillingCurrency": "EUR"}
    dollars = charge("Tax", "0.10", "Sales tax")
    recon = reconcile(workspace, ROWS, [*CLEAN_BILL, vat, dollars])
    assert (recon.result, recon.variance) == ("pass", Decimal(0))
    assert message(recon, "other_charges") == (
        "Other charges beside usage, not in the variance: Tax $0.10 (Sales tax); Tax €0.16 (VAT)."
    )
    [other] = [r for r in recon.reasons if r.code == "other_charges"]
    assert other.numbers["amount"] is None  # no one total of two currencies


def test_a_bill_for_another_period_is_inconclusive(workspace):
    september = {
        "BillingPeriodStart": "2026-09-01T00:00:00Z", "BillingPeriodEnd": "2026-10-01T00:00:00Z",
        "ChargePeriodStart": "2026-09-01T00:00:00Z", "ChargePeriodEnd": "2026-10-01T00:00:00Z",
    }  # fmt: skip
    recon = reconcile(workspace, ROWS, [line | september for line in CLEAN_BILL])
    # nothing billed in October is known: no billed total of zero, no lines, no variance
    assert (recon.result, recon.comparable, recon.lines) == ("inconclusive", False, [])
    record = reconciliation_record(recon, "finops-analyst", REVIEWED_AT)
    assert (record["billed_cost"], record["variance"], record["variance_pct"]) == (None,) * 3
    assert codes(recon) == [
        ("no_bill_lines", "inconclusive"),
        ("bill_lines_outside_period", "info"),
    ]
    assert recon.reasons[0].message == (
        "The bill has no usage charged in 2026-10 (its 8 lines cover 2026-09-01 to 2026-09-30): "
        "nothing to compare."
    )
    assert message(recon, "bill_lines_outside_period") == (
        "8 bill lines ($2.14) are charged outside 2026-10 and are not compared; by billing "
        "period: 2026-09 $2.14 (8 lines)."
    )


def test_a_bill_picked_up_twice_is_named_and_inconclusive(workspace):
    config = workspace(ROWS, kit=KIT_WITH_BILL.replace("path: bill.csv", "path: 'bill*.csv'"))
    columns = list(dict.fromkeys(k for r in CLEAN_BILL for k in r))
    write_csv(config.parent / "bill.csv", CLEAN_BILL, columns)
    write_csv(config.parent / "bill_copy.csv", CLEAN_BILL, columns)
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"))
    recon = reconciliation(ledger, workspace_billing(ledger.con, ws))
    assert (recon.result, recon.billed_cost) == ("inconclusive", Decimal("4.286"))
    assert message(recon, "bill_lines_repeated") == (
        "8 bill lines ($2.14) of 2026-10 appear again, the same in every column, in another "
        "file (bill.csv and bill_copy.csv): the same export picked up twice? Remove the copy "
        "from the billing path; the billed total counts it."
    )


def test_the_bills_of_several_providers_are_reconciled_together(workspace):
    # a gateway in front of two providers: painter is billed by the second
    kit = KIT_WITH_BILL.replace(
        "billing: {path: bill.csv, format: focus}",
        "billing:\n  - {path: chat/bill.csv, format: focus}\n  - {path: images/*.csv}",
    )
    config = workspace(ROWS, kit=kit)
    columns = list(dict.fromkeys(k for r in CLEAN_BILL for k in r))
    for folder, lines in (("chat", CLEAN_BILL[:-1]), ("images", CLEAN_BILL[-1:])):
        (config.parent / folder).mkdir()
        write_csv(config.parent / folder / "bill.csv", lines, columns)
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"))
    billing = workspace_billing(ledger.con, ws)
    assert (billing.format, billing.rows, [p.name for p in billing.files]) == (
        "focus+focus",
        8,
        ["bill.csv", "bill.csv"],
    )
    assert [str(f.relative_to(config.parent)) for f in billing.focus_files()] == [
        "chat/bill.csv", "images/bill.csv"
    ]  # fmt: skip
    recon = reconciliation(ledger, billing)
    assert (recon.result, recon.billed_cost, recon.variance) == (
        "pass", Decimal("2.143"), Decimal(0)
    )  # fmt: skip
    assert [line.finding for line in recon.lines if line.level == "model"] == ["match"] * 3
    # with the first bill alone, painter is not in the bill
    alone = kit.replace("\n  - {path: images/*.csv}", "")
    (config.parent / "kit.yaml").write_text(alone)
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"))
    recon = reconciliation(ledger, workspace_billing(ledger.con, ws))
    assert recon.result == "inconclusive" and "model_not_in_bill" in [r.code for r in recon.reasons]
    # a second bill that matches nothing is named by its place in the list
    (config.parent / "kit.yaml").write_text(kit.replace("images/*.csv", "scans/*.csv"))
    ws = load_workspace(config)
    with pytest.raises(InputError) as missing:
        workspace_billing(period_ledger(ws, parse_period("2026-10")).con, ws)
    assert missing.value.line() == (
        f"{config}: billing[1].path: no files match 'scans/*.csv' (looked in {config.parent})"
    )


def test_bill_lines_outside_the_period_are_named_by_billing_period(workspace):
    # a billing glob that also picks up other invoices: each is named, not one unexplained sum
    def month(start: str, end: str) -> dict:
        return {"BillingPeriodStart": start, "BillingPeriodEnd": end,
                "ChargePeriodStart": start, "ChargePeriodEnd": end}  # fmt: skip

    august = month("2026-08-01T00:00:00Z", "2026-09-01T00:00:00Z")
    fortnight = month("2026-09-01T00:00:00Z", "2026-09-15T00:00:00Z")
    bill = CLEAN_BILL + [line | august for line in CLEAN_BILL] + [CLEAN_BILL[0] | fortnight]
    recon = reconcile(workspace, ROWS, bill)
    assert recon.result == "pass"
    assert message(recon, "bill_lines_outside_period") == (
        "9 bill lines ($2.74) are charged outside 2026-10 and are not compared; by billing "
        "period: 2026-08 $2.14 (8 lines), 2026-09-01 to 2026-09-14 $0.60 (1 line)."
    )
    # an August invoice line in euros is never added to the dollars
    euro = CLEAN_BILL[1] | august | {"BillingCurrency": "EUR"}
    recon = reconcile(workspace, ROWS, [*bill, euro])
    assert message(recon, "bill_lines_outside_period") == (
        "10 bill lines (€0.20 + $2.74) are charged outside 2026-10 and are not compared; by "
        "billing period: 2026-08 €0.20 (1 line), 2026-08 $2.14 (8 lines), 2026-09-01 to "
        "2026-09-14 $0.60 (1 line)."
    )


def test_daily_lines_of_the_same_month_outside_a_week_are_counted_as_outside_it(workspace):
    # a daily bill of October whose billing period overlaps 2026-W41 (5 to 11 October): the
    # days of the month outside the week are not compared, and the count says so
    def day(line: dict, first: str, last: str) -> dict:
        return line | {"ChargePeriodStart": first, "ChargePeriodEnd": last}

    inside = [day(line, "2026-10-10T00:00:00Z", "2026-10-11T00:00:00Z") for line in CLEAN_BILL]
    later = day(CLEAN_BILL[0], "2026-10-20T00:00:00Z", "2026-10-21T00:00:00Z")
    recon = reconcile(workspace, ROWS, [*inside, later], period="2026-W41")
    assert message(recon, "bill_lines_outside_period") == (
        "1 bill line ($0.60) is charged outside 2026-W41 and is not compared; by billing "
        "period: 2026-10 $0.60 (1 line)."
    )


def test_a_monthly_bill_cannot_judge_a_week(workspace):
    recon = reconcile(workspace, ROWS, CLEAN_BILL, period="2026-W41")
    assert recon.result == "inconclusive"
    # one reason, not a month's bill set against a week's ledger model by model
    assert codes(recon) == [("charge_period_exceeds_period", "inconclusive")]
    assert recon.reasons[0].message == (
        "8 usage lines ($2.14) are charged for periods reaching outside 2026-W41 (2026-10-01 to "
        "2026-10-31): the bill cannot be cut to this period, so no billed total or variance is "
        "given; review a period the bill's charge periods fit."
    )
    assert (recon.lines, recon.daily, recon.comparable) == ([], None, False)
    record = reconciliation_record(recon, "finops-analyst", datetime(2026, 11, 2, tzinfo=UTC))
    assert (record["billed_cost"], record["variance"], record["variance_pct"]) == (None,) * 3
    assert record["ledger_cost"] == "2.143000000000"


def test_a_bill_covering_half_the_period_is_inconclusive(workspace):
    half = {
        "BillingPeriodEnd": "2026-10-16T00:00:00Z",
        "ChargePeriodStart": "2026-10-10T00:00:00Z", "ChargePeriodEnd": "2026-10-11T00:00:00Z",
    }  # fmt: skip
    recon = reconcile(workspace, ROWS, [line | half for line in CLEAN_BILL])
    assert recon.result == "inconclusive"
    assert recon.reasons[0].message == (
        "The bill's billing periods cover 2026-10-01 to 2026-10-15 but not 2026-10-16 to "
        "2026-10-31 of 2026-10: part of the period is missing from this export."
    )


def test_without_a_billing_section_the_result_is_inconclusive(workspace):
    recon = reconcile(workspace, ROWS, None, kit=KIT)
    # one reason, not one "absent from the bill" per model; no billed cost, not a zero one
    assert (recon.result, codes(recon), recon.lines) == (
        "inconclusive",
        [("no_billing_export", "inconclusive")],
        [],
    )
    doc = record(recon)
    assert (doc["ledger_cost"], doc["billed_cost"], doc["variance"], doc["variance_pct"]) == (
        "2.143000000000",
        None,
        None,
        None,
    )


# --- other bills --------------------------------------------------------------------------------


DAILY_KIT = KIT.replace(
    "registry: registry.yaml",
    "billing: {path: bill.csv, format: generic, columns: {date: Day, cost: Amount, "
    "quantity: Tokens, direction: Kind}}\nregistry: registry.yaml",
)
DAILY_BILL = [  # r1 of ROWS, billed on its day
    {"Day": "2026-10-10", "model": "chat-small", "Kind": "input", "Tokens": 600_000,
     "Amount": "0.6"},
    {"Day": "2026-10-10", "model": "chat-small", "Kind": "cached", "Tokens": 400_000,
     "Amount": "0.2"},
    {"Day": "2026-10-10", "model": "chat-small", "Kind": "output", "Tokens": 250_000,
     "Amount": "1"},
]  # fmt: skip


def test_a_generic_daily_bill_reconciles(workspace):
    recon = reconcile(workspace, ROWS[:1], DAILY_BILL, kit=DAILY_KIT)
    assert (recon.result, recon.variance, len(recon.daily)) == ("pass", Decimal(0), 31)


def test_a_daily_bill_that_stops_before_the_ledger_does_is_inconclusive(workspace):
    """Exported on the 11th: the ledger's usage of the 20th has no bill line yet."""
    late = request("r9", timestamp="2026-10-20T09:00:00Z", input_tokens=1000, output_tokens=1000)
    recon = reconcile(workspace, [ROWS[0], late], DAILY_BILL, kit=DAILY_KIT)
    assert recon.result == "inconclusive"
    # r9 after the 15 October price change: 1,000 × 0.80 + 1,000 × 3.20 per 1M = 0.004
    assert message(recon, "bill_days_missing") == (
        "The bill's daily usage runs from 2026-10-10 to 2026-10-10, but the ledger has $0.004 of "
        "billable usage on 1 day outside it (2026-10-20), left out of the comparison by model "
        "and day: the export looks cut short (exported before the period ended?); reconcile a "
        "complete bill."
    )
    # the day the bill covers matches: no token mismatch blames the ledger for the 20th
    assert codes(recon) == [("bill_days_missing", "inconclusive"), ("variance", "info")]
    assert [line.finding for line in recon.lines if line.level == "model"] == ["match"]
    assert [(d.day, d.variance) for d in recon.daily] == [(date(2026, 10, 10), Decimal(0))]


def test_ledger_days_before_a_daily_bill_starts_are_left_out_and_named(workspace):
    early = [
        request(f"e{day}", timestamp=f"2026-10-0{day}T09:00:00Z", input_tokens=1000,
                output_tokens=1000)
        for day in (5, 6)
    ]  # fmt: skip
    recon = reconcile(workspace, [*early, ROWS[0]], DAILY_BILL, kit=DAILY_KIT)
    assert recon.result == "inconclusive"
    # before the price change: 1,000 × 1.00 + 1,000 × 4.00 per 1M = 0.005 a day
    assert message(recon, "bill_days_missing") == (
        "The bill's daily usage runs from 2026-10-10 to 2026-10-10, but the ledger has $0.01 of "
        "billable usage on 2 days outside it (2026-10-05 to 2026-10-06), left out of the "
        "comparison by model and day: reconcile with a bill that covers them."
    )
    assert codes(recon) == [("bill_days_missing", "inconclusive"), ("variance", "info")]


def test_a_weeks_day_beyond_the_bills_month_is_left_out_and_blamed_on_the_bill(workspace):
    """2026-W44 ends on Sunday 1 November; October's daily bill cannot hold that day."""
    rows = [
        request("a", timestamp="2026-10-30T10:00:00Z"),
        request("b", timestamp="2026-11-01T00:05:00Z"),
    ]
    day = {"ChargePeriodStart": "2026-10-30T00:00:00Z", "ChargePeriodEnd": "2026-10-31T00:00:00Z"}
    bill = [  # chat-small after the 15 October change: 0.80 input, 3.20 output per 1M
        usage("chat-small", "uncached_input", 1000, "0.0008", **day),
        usage("chat-small", "output", 100, "0.00032", **day),
    ]
    recon = reconcile(workspace, rows, bill, period="2026-W44")
    assert codes(recon) == [
        ("billing_period_gap", "inconclusive"),
        ("bill_days_missing", "inconclusive"),
        ("variance", "info"),
    ]
    assert message(recon, "bill_days_missing").endswith(
        "on 1 day outside it (2026-11-01), left out of the comparison by model and day: they lie "
        "outside the bill's billing periods (above)."
    )
    assert [(line.direction, line.finding) for line in recon.lines] == [
        (None, "match"), ("uncached_input", "match"), ("output", "match")
    ]  # fmt: skip


GENERIC_KIT = KIT.replace(
    "registry: registry.yaml", "billing: {path: bill.csv, format: generic}\nregistry: registry.yaml"
)


def test_a_bill_without_quantities_compares_money_per_model_only(workspace):
    bill = [{"date": "2026-10", "model": "chat-small", "cost": "1.90"}]
    recon = reconcile(workspace, ROWS[:1], bill, kit=GENERIC_KIT)
    assert recon.result == "fail"
    assert table(recon) == [
        ("chat-small", "", 1_250_000, "", "1.800000000000", "-0.100000000000", "cost_mismatch")
    ]
    assert message(recon, "cost_mismatch") == (
        "chat-small tokens: billed $1.90 vs $1.80 computed (−5.2632%); the bill gives no "
        "quantity to tell a stale price from missing traffic."
    )


def test_billed_usage_without_a_model_is_inconclusive(workspace):
    bill = [
        {"date": "2026-10", "model": "chat-small", "cost": "1.80"},
        {"date": "2026-10", "model": "", "cost": "0.01"},
    ]
    recon = reconcile(workspace, ROWS[:1], bill, kit=GENERIC_KIT)
    assert recon.result == "inconclusive"
    assert message(recon, "billed_without_model") == (
        "The bill has 1 usage line ($0.01) without a model id, which cannot be matched to the "
        "ledger."
    )


# --- the FOCUS specification's examples, reproduced by a ledger ---------------------------------


def example_reconciliation(workspace, name, model, prices, tokens, period):
    """Reconcile a ledger of one model and one call (`tokens`) against a FOCUS example file."""
    pricing = textwrap.dedent(f"""
        currency: USD
        source_url: https://focus.finops.org/
        reviewed_on: 2025-01-01
        reviewed_by: finops-analyst
        models:
          - model: {model}
            effective_from: 2024-01-01
            per_1m_tokens: {prices}
    """)  # fmt: skip
    kit = KIT.replace(
        "registry: registry.yaml",
        f"billing: {{path: '{FOCUS_EXAMPLES / name}'}}\nregistry: registry.yaml",
    )
    row = request("x1", model=model, timestamp=f"{period}-10T12:00:00Z", **tokens)
    return reconcile(workspace, [row], None, period=period, kit=kit, pricing=pricing)


@needs_examples
def test_a_ledger_reproducing_the_per_token_example_passes_with_zero_variance(workspace):
    recon = example_reconciliation(
        workspace, "ai_model_billing/per_token_ai_model_api.csv", "solora-saturn-4.8",
        "{input: 5.00, output: 25.00}", {"input_tokens": 8_400_000, "output_tokens": 2_100_000},
        "2025-05",
    )  # fmt: skip
    assert (recon.result, recon.ledger_cost, recon.billed_cost, recon.variance_pct) == (
        "pass", Decimal("94.5"), Decimal("94.5"), Decimal("0.0000")
    )  # fmt: skip
    z = "0.000000000000"
    assert table(recon) == [
        ("solora-saturn-4.8", "", 10_500_000, 10_500_000, "94.500000000000", z, "match"),
        ("solora-saturn-4.8", "uncached_input", 8_400_000, 8_400_000, "42.000000000000", z,
         "match"),
        ("solora-saturn-4.8", "output", 2_100_000, 2_100_000, "52.500000000000", z, "match"),
    ]  # fmt: skip
    assert codes(recon) == [("within_tolerance", "info")]


@needs_examples
def test_a_ledger_reproducing_the_prompt_caching_example_passes(workspace):
    recon = example_reconciliation(
        workspace, "ai_prompt_caching/ai_prompt_caching_a.csv", "solora-reasoning-pro",
        "{input: 3.00, cached_input: 0.30, cache_write: 3.75, output: 15.00}",
        {"input_tokens": 10_500_000, "cached_input_tokens": 8_000_000,
         "cache_write_tokens": 2_000_000, "output_tokens": 1_500_000},
        "2025-01",
    )  # fmt: skip
    assert (recon.result, recon.ledger_cost, recon.variance) == ("pass", Decimal("33.9"), 0)
    assert [line.finding for line in recon.lines] == ["match"] * 5


@needs_examples
def test_cache_writes_on_the_input_meter_and_cache_storage_are_explained(workspace):
    recon = example_reconciliation(
        workspace, "ai_prompt_caching/ai_prompt_caching_b.csv",
        "latticescale.solora-reasoning-pro", "{input: 3.00, cached_input: 0.30, output: 15.00}",
        {"input_tokens": 10_500_000, "cached_input_tokens": 8_000_000,
         "cache_write_tokens": 2_000_000, "output_tokens": 1_500_000},
        "2025-01",
    )  # fmt: skip
    assert (recon.result, recon.ledger_cost, recon.billed_cost) == (
        "inconclusive", Decimal("32.4"), Decimal("38.4")
    )  # fmt: skip
    assert [(line.direction, line.ledger_tokens, line.finding) for line in recon.lines] == [
        (None, 12_000_000, "match"),  # writes counted once, on the input line
        ("uncached_input", 2_500_000, "match"),
        ("cached_input", 8_000_000, "match"),
        ("output", 1_500_000, "match"),
        ("other", None, "not_computable"),
    ]
    assert codes(recon) == [
        ("within_tolerance", "info"),
        ("usage_without_direction", "inconclusive"),
        ("cache_writes_billed_as_input", "info"),
    ]
    assert message(recon, "usage_without_direction") == (
        "latticescale.solora-reasoning-pro: $6.00 of usage has no token direction (Context Cache "
        "Storage): the ledger cannot compute it, so the model is judged without it."
    )


# --- arithmetic and evidence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variance", "billed", "expected"),
    [
        ("-0.05", "1.05", "-4.7619"),
        ("1", "3", "33.3333"),
        ("2", "3", "66.6667"),
        ("0.00005", "1", "0.0050"),
        ("0.0000005", "1", "0.0001"),  # half-up at the 4th place
        ("-0.0000005", "1", "-0.0001"),
        ("0", "0", "0.0000"),
        ("1", "0", None),
    ],
)
def test_variance_pct_is_relative_to_billed_half_up_at_4_places(variance, billed, expected):
    got = variance_pct(Decimal(variance), Decimal(billed))
    assert got == (None if expected is None else Decimal(expected))
    assert got is None or str(got) == expected


def test_the_evidence_is_json_and_the_csv_rows_keep_their_column_order(workspace):
    recon = reconcile(workspace, ROWS, CLEAN_BILL)
    doc = record(recon)
    assert json.loads(json.dumps(doc)) == doc
    rows = reconciliation_lines_rows(recon)
    assert [list(r) for r in rows] == [list(RECONCILIATION_LINE_COLUMNS)] * 11
    assert rows[0] == {
        "period": "2026-10",
        "level": "model",
        "model": "cacher",
        "direction": "",
        "unit": "tokens",
        "ledger_tokens": 110_000,
        "billed_tokens": 110_000,
        "ledger_cost": "0.303000000000",
        "billed_cost": "0.303000000000",
        "variance": "0.000000000000",
        "variance_pct": "0.0000",
        "finding": "match",
    }


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["chat-small", "cacher", "painter", "mystery"]),
                  st.integers(0, 10**7), st.integers(0, 10**6)),
        min_size=1, max_size=6,
    ),
    billed=st.lists(
        st.tuples(st.sampled_from(["chat-small", "cacher", "ghost"]),
                  st.sampled_from(["uncached_input", "output", "per_call"]),
                  st.decimals("-5", "50", places=6)),
        max_size=6,
    ),
)  # fmt: skip
def test_lines_add_up_to_the_totals_whatever_the_bill(workspace, calls, billed):
    """A negative usage charge is a correction (a usage line below nothing is refused)."""
    rows = [
        request(f"r{i}", model=model, input_tokens=inp, output_tokens=out)
        for i, (model, inp, out) in enumerate(calls)
    ]
    bill = [
        usage(m, d, 1, str(cost), **({"ChargeClass": "Correction"} if cost < 0 else {}))
        for m, d, cost in billed
    ] or [charge("Tax", "1", "tax")]
    recon = reconcile(workspace, rows, bill)
    models = [line for line in recon.lines if line.level == "model"]
    assert sum(line.ledger_cost for line in models) == recon.ledger_cost
    assert sum(line.billed_cost for line in models) == recon.billed_cost
    assert recon.variance == recon.ledger_cost - recon.billed_cost
    for model in models:
        parts = [d for d in recon.lines if d.level == "direction" and d.model == model.model]
        if parts:
            assert sum(d.ledger_cost for d in parts) == model.ledger_cost
            assert sum(d.billed_cost for d in parts) == model.billed_cost
    assert recon.result in {"pass", "fail", "inconclusive"}
    assert all(r.message and r.effect in {"fail", "inconclusive", "info"} for r in recon.reasons)


def test_excess_ledger_tokens_within_what_conflicting_copies_add_are_explained_so(workspace):
    """r5 is logged twice with different content (both copies quarantined, both counted); the
    provider billed one copy. The ledger's excess is what the second copy adds."""
    rows = [
        *ROWS,
        request("r5", input_tokens=1000, output_tokens=100),
        request("r5", input_tokens=1000, output_tokens=300),
    ]
    bill = [
        usage("chat-small", "uncached_input", 601_000, "0.601"),
        usage("chat-small", "cached_input", 400_000, "0.20"),
        usage("chat-small", "output", 250_100, "1.0004"),  # the copy with 100 output tokens
        *CLEAN_BILL[3:],
    ]
    recon = reconcile(workspace, rows, bill)
    found = [r.message for r in recon.reasons if r.code == "token_mismatch"]
    # uncached input: 602,000 logged, 601,000 billed; either copy adds 1,000 beyond the other.
    # output: 250,400 logged, 250,100 billed; the second copy adds 100 (if the 300-token copy
    # was billed) to 300 (if the 100-token one was). 250,400 × 4.00 / 1M = 1.0016
    assert found == [
        "chat-small uncached input tokens billed 601,000 vs 602,000 logged (billed $0.601 vs "
        "$0.602 computed): the ledger has 1,000 tokens more, exactly the 1,000 tokens that 1 "
        "request_id logged more than once with different content add beyond one copy each: "
        "the provider bills such a call once, the ledger keeps every copy (quarantined, in the "
        "exception queue) until the log is corrected.",
        "chat-small output tokens billed 250,100 vs 250,400 logged (billed $1.000 vs $1.002 "
        "computed): the ledger has 300 tokens more, within the 100–300 tokens that 1 "
        "request_id logged more than once with different content add beyond one copy each: "
        "the provider bills such a call once, the ledger keeps every copy (quarantined, in the "
        "exception queue) until the log is corrected.",
    ]


def test_a_bill_sharing_no_model_with_the_ledger_is_not_judged_within_tolerance(workspace):
    bill = [usage("stranger", "uncached_input", 1000, "2.143")]  # the ledger's total, by chance
    recon = reconcile(workspace, ROWS, bill)
    assert recon.result == "inconclusive"
    assert codes(recon)[0] == ("not_judged", "info")
    assert recon.reasons[0].message == (
        "Usage billed $2.14 vs $2.14 computed from the ledger: variance $0.00 (0.0000%); no "
        "model is on both sides and fully priced by the ledger, so nothing could be judged (the "
        "reasons below say why)."
    )
    assert ("model_not_in_ledger", "inconclusive") in codes(recon)


def test_the_packet_gives_no_billed_total_for_a_bill_that_cannot_be_cut_to_the_period(
    workspace, tmp_path
):
    from allocation_kit.packet import period_review

    config = workspace(ROWS, kit=KIT_WITH_BILL)
    bill = [*CLEAN_BILL, charge("Tax", "0.16", "Sales tax")]
    write_csv(config.parent / "bill.csv", bill, list(dict.fromkeys(k for r in bill for k in r)))
    review = period_review(config, "2026-W41", tmp_path / "reports")
    kpis = review.kpis().text
    assert 'Billed (usage)</div><div class="ak-tile-value">—</div>' in kpis
    assert "not comparable · inconclusive" in kpis
    assert review.reconciliation_banner().text.startswith(
        '<div class="ak-banner ak-warn"><strong>Reconciliation: INCONCLUSIVE</strong> — ledger '
        "$2.14; no billed total or variance (not comparable).<ul><li>8 usage lines ($2.14) are "
        "charged for periods reaching outside 2026-W41"
    )
    assert review.variance_chart().text == '<p class="ak-empty">No per-model variance to chart.</p>'
    # the month's tax is listed whole, with its charge period
    assert (
        '<td class="txt">Sales tax</td><td class="txt">2026-10-01 to 2026-10-31 (whole charge, '
        'beyond 2026-W41)</td><td class="num">$0.16</td>'
    ) in review.other_charges().text


def test_the_bills_invoice_and_account_reach_the_record_and_every_chargeback_row(workspace):
    """The controller books the chargeback against an invoice: its issuer, account and id (two
    invoices in one period: both, in order) are on every row of chargeback.csv."""
    from allocation_kit.chargeback import CHARGE_COLUMNS, charge_rows, chargeback

    refs = {"InvoiceIssuerName": "CometAPI", "BillingAccountId": "acct-42"}
    bill = [line | refs | {"InvoiceId": "INV-2026-10-001"} for line in CLEAN_BILL]
    bill += [charge("Tax", "0.10", "Sales tax") | refs | {"InvoiceId": "INV-2026-10-002"}]
    recon = reconcile(workspace, ROWS, bill)
    doc = record(recon)
    assert doc["bill_references"] == {
        "invoice_issuer": ["CometAPI"],
        "billing_account_id": ["acct-42"],
        "invoice_id": ["INV-2026-10-001", "INV-2026-10-002"],
    }
    ws = load_workspace(workspace(ROWS, kit=KIT_WITH_BILL))
    ledger = period_ledger(ws, parse_period("2026-10"))
    schedule = chargeback(ledger.allocation, ledger.ledger_cost, ws.registry, doc, [], "USD")
    rows = charge_rows("2026-10", schedule)
    assert list(rows[0]) == list(CHARGE_COLUMNS)
    assert {(r["invoice_issuer"], r["billing_account_id"], r["invoice_id"]) for r in rows} == {
        ("CometAPI", "acct-42", "INV-2026-10-001; INV-2026-10-002")
    }
    # without a bill, nothing to book against: the columns are empty
    alone = chargeback(ledger.allocation, ledger.ledger_cost, ws.registry, None, [], "USD")
    assert {r["invoice_id"] for r in charge_rows("2026-10", alone)} == {""}
