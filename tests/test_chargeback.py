"""The chargeback to the bill: teams' own cost plus their shares of what kit.yaml spreads, in cents
that add up to the bill's total exactly."""

from __future__ import annotations

import csv
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocation_kit.allocate import AllocationLine
from allocation_kit.chargeback import (
    SPREADABLE,
    bill_charges,
    booked_parts,
    chargeback,
    foot,
    foot_both_ways,
    ledger_cents,
)
from allocation_kit.config import Registry, Team, load_workspace
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import atomic_period_folder, write_evidence

from .conftest import request
from .test_billing import write_csv
from .test_reconcile import KIT_WITH_BILL, charge, usage

CENT = Decimal("0.01")


def line(team: str | None, cost: str, status: str = "allocated") -> AllocationLine:
    return AllocationLine(
        business_unit="bu" if team else None, team=team, application=None, environment=None,
        cost_center=f"CC-{team}" if team else None, allocation_status=status,
        allocation_rule="", requests=1, input_tokens=0, cached_input_tokens=0,
        cache_write_tokens=0, output_tokens=0, reasoning_tokens=0, unpriced_requests=0,
        cost=Decimal(cost),
    )  # fmt: skip


OCTOBER = {"charge_period_start": "2026-10-01T00:00:00", "charge_period_end": "2026-11-01T00:00:00"}


def bill(result: str, billed: str, *charges: tuple[str, str, str], **period: str) -> dict:
    """A reconciliation record of 2026-10 (or `period`): its verdict, billed usage and
    (category, amount, currency) charged for October."""
    return {
        "period": "2026-10",
        "period_start": "2026-10-01T00:00:00+00:00",
        "period_end": "2026-11-01T00:00:00+00:00",
        **period,
        "result": result,
        "billed_cost": billed,
        "other_charges": [
            {"charge_category": c, "amount": a, "currency": u, **OCTOBER} for c, a, u in charges
        ],
        "corrections": [],
    }


def teams(*ids: str) -> Registry:
    return Registry(
        teams=[Team(id=t, business_unit="bu", cost_center=f"CC-{t}", budget_owner="x") for t in ids]
    )


# search $1.00 and support $3.00 of their own, $0.50 untagged: a ledger of $4.50
ALLOCATION = [line("search", "1.00"), line("support", "3.00"), line(None, "0.50", "untagged")]
REGISTRY = teams("search", "support")


def summary(schedule) -> list[tuple]:
    """(team, own cost, {item: share}, exact total, charge) of every line."""
    return [(c.team, c.own_cost, c.shares, c.total, c.charge) for c in schedule.lines]


def test_spread_items_follow_the_teams_own_cost_and_the_cents_add_up_to_the_bill():
    # billed usage $4.53 (+$0.03 over the ledger), tax $0.36, a credit of $0.10: the bill $4.79
    record = bill("pass", "4.53", ("Tax", "0.36", "USD"), ("Credit", "-0.10", "USD"))
    spread = ["unallocated", "usage_difference", "tax", "credit"]
    schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, spread, "USD")
    # search carries 1/4 of each: 0.125 + 0.0075 + 0.09 − 0.025 = 1.1975; support 3/4: 3.5925.
    # In cents 1.19 and 3.59 leave one cent: it goes to the larger remainder (search's 0.75)
    assert summary(schedule) == [
        ("support", Decimal("3.00"),
         {"unallocated": Decimal("0.375"), "usage_difference": Decimal("0.0225"),
          "tax": Decimal("0.27"), "credit": Decimal("-0.075")},
         Decimal("3.5925"), Decimal("3.59")),
        ("search", Decimal("1.00"),
         {"unallocated": Decimal("0.125"), "usage_difference": Decimal("0.0075"),
          "tax": Decimal("0.09"), "credit": Decimal("-0.025")},
         Decimal("1.1975"), Decimal("1.20")),
        (None, Decimal(0), {}, Decimal(0), Decimal("0.00")),
    ]  # fmt: skip
    assert (schedule.total, schedule.footed, schedule.against_bill) == (
        Decimal("4.79"), Decimal("4.79"), True
    )  # fmt: skip
    assert (schedule.spread, schedule.kept) == (tuple(spread), {})


def test_what_is_not_spread_stays_with_the_reviewer_and_an_unsettled_difference_too():
    # the reconciliation failed: its +$0.30 is settled with the provider, not charged to teams;
    # a charge in euros is never added. The tax falls on all $4.80 of billed usage: the part on
    # the $0.80 the reviewer keeps ($0.50 unallocated, $0.30 disputed) stays with it:
    # $0.36 × 0.80 / 4.80 = $0.06; support $0.36 × 3 / 4.80 = $0.225, search $0.075
    record = bill("fail", "4.80", ("Tax", "0.36", "USD"), ("Tax", "5.00", "EUR"))
    schedule = chargeback(
        ALLOCATION, Decimal("4.50"), REGISTRY, record, ["usage_difference", "tax"], "USD"
    )
    # 3.225 and 1.075 leave one cent: equal remainders, so it goes to the first (support)
    assert summary(schedule) == [
        ("support", Decimal("3.00"), {"tax": Decimal("0.225")}, Decimal("3.225"),
         Decimal("3.23")),
        ("search", Decimal("1.00"), {"tax": Decimal("0.075")}, Decimal("1.075"), Decimal("1.07")),
        (None, Decimal(0), {"unallocated": Decimal("0.50"), "usage_difference": Decimal("0.30"),
                            "tax": Decimal("0.06")},
         Decimal("0.86"), Decimal("0.86")),
    ]  # fmt: skip
    assert schedule.kept == {
        "usage_difference": "the reconciliation failed, so what billed usage differs from the "
        "ledger is settled with the provider before any of it is charged"
    }
    assert (schedule.footed, schedule.spread) == (Decimal("5.16"), ("tax",))


def test_the_reviewer_keeps_the_tax_on_a_disputed_difference_when_unallocated_is_spread():
    # billed $4.80: the ledger's $4.50 (unallocated $0.50 spread to the teams) and $0.30 in
    # dispute, kept; tax $0.36 on all $4.80. The reviewer keeps 0.36 × 0.30 / 4.80 = $0.0225;
    # the teams carry 0.36 × 4.50 / 4.80 = $0.3375 by own cost: search $0.084375, support
    # $0.253125
    record = bill("fail", "4.80", ("Tax", "0.36", "USD"))
    spread = ["unallocated", "usage_difference", "tax"]
    schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, spread, "USD")
    # 3.628125, 1.209375 and 0.3225 floor to 5.14 of 5.16: the two cents go to the largest
    # remainders, search's 0.9375 and support's 0.8125
    assert summary(schedule) == [
        ("support", Decimal("3.00"),
         {"unallocated": Decimal("0.375"), "tax": Decimal("0.253125")},
         Decimal("3.628125"), Decimal("3.63")),
        ("search", Decimal("1.00"),
         {"unallocated": Decimal("0.125"), "tax": Decimal("0.084375")},
         Decimal("1.209375"), Decimal("1.21")),
        (None, Decimal(0), {"usage_difference": Decimal("0.30"), "tax": Decimal("0.0225")},
         Decimal("0.3225"), Decimal("0.32")),
    ]  # fmt: skip
    assert (schedule.footed, schedule.spread) == (Decimal("5.16"), ("unallocated", "tax"))


def test_a_months_charges_beside_a_week_are_not_the_weeks_and_never_spread():
    week = {"period": "2026-W42", "period_start": "2026-10-12T00:00:00+00:00",
            "period_end": "2026-10-19T00:00:00+00:00"}  # fmt: skip
    record = bill("pass", "4.50", ("Tax", "0.36", "USD"), **week)
    assert bill_charges(record, "USD") == (
        [], [(record["other_charges"][0], "whole charge, beyond 2026-W42: not added")]
    )  # fmt: skip
    schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, ["tax"], "USD")
    assert [(c.team, c.charge) for c in schedule.lines] == [
        ("support", Decimal("3.00")), ("search", Decimal("1.00")), (None, Decimal("0.50"))
    ]  # fmt: skip
    assert (schedule.footed, schedule.spread) == (Decimal("4.50"), ())


def test_without_a_comparable_bill_the_schedule_foots_to_the_ledger_total():
    for record in (None, {"result": "inconclusive", "billed_cost": None}):
        schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, ["tax"], "USD")
        assert [(c.team, c.charge) for c in schedule.lines] == [
            ("support", Decimal("3.00")), ("search", Decimal("1.00")), (None, Decimal("0.50"))
        ]  # fmt: skip
        assert (schedule.footed, schedule.against_bill, schedule.spread) == (
            Decimal("4.50"), False, ()
        )  # fmt: skip


def test_with_no_team_cost_to_weigh_by_nothing_is_spread():
    allocation = [line(None, "0.50", "untagged")]
    schedule = chargeback(allocation, Decimal("0.50"), REGISTRY, None, ["unallocated"], "USD")
    assert summary(schedule) == [
        (None, Decimal(0), {"unallocated": Decimal("0.50")}, Decimal("0.50"), Decimal("0.50"))
    ]
    assert schedule.kept == {"unallocated": "no team has a cost to weigh the shares by"}


@pytest.mark.parametrize(
    ("amounts", "footed", "expected"),
    [
        # a third of a cent each: the cent goes to the largest remainder
        (["0.003333", "0.003333", "0.003334"], "0.01", ["0.00", "0.00", "0.01"]),
        # equal remainders: to the first
        (["1.005", "2.005", "-0.01"], "3.00", ["1.01", "2.00", "-0.01"]),
        (["-1.006", "-2.004"], "-3.01", ["-1.01", "-2.00"]),
    ],
)
def test_foot_hands_the_leftover_cents_to_the_largest_remainders(amounts, footed, expected):
    got = foot([Decimal(a) for a in amounts], Decimal(footed), CENT)
    assert got == [Decimal(e) for e in expected]


money = st.decimals(min_value=-1000, max_value=100_000, places=12, allow_nan=False)
costs = st.decimals(min_value=0, max_value=100_000, places=12, allow_nan=False)


# a random period: teams' own costs, unallocated spend, billed usage, other charges, the spread
PERIODS = {
    "own": st.lists(costs, min_size=1, max_size=8),
    "unallocated": costs,
    "billed": costs,
    "charges": st.lists(st.tuples(st.sampled_from(["Tax", "Credit", "Adjustment"]), money)),
    "spread": st.lists(st.sampled_from(SPREADABLE), unique=True),
}


def period_schedule(own, unallocated, billed, charges, spread):
    """(the teams t0, t1, …, the exact ledger total, the schedule) of a `PERIODS` draw."""
    names = [f"t{i}" for i in range(len(own))]
    allocation = [line(t, str(c)) for t, c in zip(names, own, strict=True)]
    allocation.append(line(None, str(unallocated), "untagged"))
    ledger = sum(own, Decimal(0)) + unallocated
    record = bill("pass", str(billed), *((c, str(a), "USD") for c, a in charges))
    return names, ledger, chargeback(allocation, ledger, teams(*names), record, spread, "USD")


@given(**PERIODS)
def test_every_schedule_adds_up_to_the_bill_to_the_cent(own, unallocated, billed, charges, spread):
    _, _, schedule = period_schedule(own, unallocated, billed, charges, spread)
    exact = billed + sum((a for _, a in charges), Decimal(0))
    assert schedule.total == exact
    assert sum(c.total for c in schedule.lines) == exact
    footed = exact.quantize(CENT, rounding=ROUND_HALF_UP)
    assert sum(c.charge for c in schedule.lines) == schedule.footed == footed
    assert all(abs(c.charge - c.total) < CENT for c in schedule.lines)
    for item in schedule.spread:  # every spread item is split exactly
        assert sum(c.shares.get(item, 0) for c in schedule.lines) == schedule.items[item]
    # the booked parts add up across to each charge and down to each column's total, in cents
    parts, totals = booked_parts(schedule)
    assert [sum(row, Decimal(0)) for row in parts] == [c.charge for c in schedule.lines]
    assert [sum(col, Decimal(0)) for col in zip(*parts, strict=True)] == totals
    assert sum(totals, Decimal(0)) == footed
    exact = [
        [c.own_cost, *(c.shares.get(i, Decimal(0)) for i in SPREADABLE)] for c in schedule.lines
    ]
    for row, exact_row in zip(parts, exact, strict=True):
        assert all(abs(b - e) < CENT and b % CENT == 0 for b, e in zip(row, exact_row, strict=True))


@given(
    cells=st.integers(min_value=1, max_value=6).flatmap(
        lambda width: st.lists(st.lists(money, min_size=width, max_size=width), min_size=1,
                               max_size=8)
    ),
)  # fmt: skip
def test_a_matrix_is_rounded_to_add_up_across_and_down(cells):
    exact_rows = [sum(row, Decimal(0)) for row in cells]
    exact_columns = [sum(column, Decimal(0)) for column in zip(*cells, strict=True)]
    footed = sum(exact_rows, Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)
    rounded, rows, columns = foot_both_ways(cells, footed, CENT)
    assert [sum(row, Decimal(0)) for row in rounded] == rows
    assert [sum(column, Decimal(0)) for column in zip(*rounded, strict=True)] == columns
    assert sum(rows, Decimal(0)) == sum(columns, Decimal(0)) == footed
    for booked, exact in [
        *zip(rows, exact_rows, strict=True),
        *zip(columns, exact_columns, strict=True),
    ]:
        assert booked % CENT == 0 and abs(booked - exact) < CENT
    for row, exact_row in zip(rounded, cells, strict=True):
        for booked, amount in zip(row, exact_row, strict=True):
            assert booked % CENT == 0 and abs(booked - amount) < CENT


def test_charges_keep_their_largest_remainders_unless_the_columns_cannot_then_add_up():
    # rows 0.012 → 0.01 and 0.008 → 0.01; columns 0.010 → 0.01 and 0.010 → 0.01
    cells = [[Decimal("0.004"), Decimal("0.008")], [Decimal("0.006"), Decimal("0.002")]]
    rounded, rows, columns = foot_both_ways(cells, Decimal("0.02"), CENT)
    assert (rounded, rows, columns) == ([[0, CENT], [CENT, 0]], [CENT, CENT], [CENT, CENT])
    # largest remainder would raise the first two rows (0.5 cent each, above 0.45), but their
    # column adds up to one cent exactly: one of them gives its cent to the third row
    half, less = Decimal("0.005"), Decimal("0.0045")
    cells = [[half, Decimal(0)], [half, Decimal(0)], [Decimal(0), less], [Decimal(0), less]]
    assert foot([sum(r, Decimal(0)) for r in cells], 2 * CENT, CENT) == [CENT, CENT, 0, 0]
    rounded, rows, columns = foot_both_ways(cells, 2 * CENT, CENT)
    assert (rows, columns) == ([CENT, 0, CENT, 0], [CENT, CENT])
    assert rounded == [[CENT, 0], [0, 0], [0, CENT], [0, 0]]
    with pytest.raises(ValueError, match="not the rounded total"):
        foot_both_ways(cells, Decimal("0.05"), CENT)


def taxed_workspace(workspace, *more: dict) -> Path:
    """A workspace spreading unallocated spend and tax: search $1.00, support $3.00, $0.50
    untagged (and the rows `more`, at no cost), billed $4.50 plus $0.36 of tax; its kit.yaml."""
    kit = KIT_WITH_BILL + "chargeback: {spread: [unallocated, tax]}\n"
    rows = [
        request("s1", input_tokens=1_000_000, output_tokens=0),  # search $1.00
        request("t1", team="support", application="ticket-bot", input_tokens=3_000_000,
                output_tokens=0),  # support $3.00
        request("u1", team=None, application=None, input_tokens=500_000, output_tokens=0),
        *more,
    ]  # fmt: skip
    config = workspace(rows, kit=kit)
    lines = [usage("chat-small", "uncached_input", 4_500_000, "4.50"), charge("Tax", "0.36", "VAT")]
    write_csv(config.parent / "bill.csv", lines, list(dict.fromkeys(k for r in lines for k in r)))
    return config


def test_the_run_writes_chargeback_csv(workspace, tmp_path):
    config = taxed_workspace(workspace)
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"))
    with atomic_period_folder(tmp_path / "out", "2026-10") as folder:
        write_evidence(folder, ledger, {"period": "2026-10"})
    with (tmp_path / "out" / "2026-10" / "evidence" / "chargeback.csv").open() as handle:
        written = list(csv.DictReader(handle))
    zero = "0.000000000000"
    assert [
        (r["line"], r["team"], r["cost_center"], r["own_cost"], r["unallocated_share"],
         r["tax_share"], r["credit_share"], r["total_cost"], r["charge"], r["currency"])
        for r in written
    ] == [
        # 3.645 and 1.215 leave a cent on equal remainders: it goes to the larger charge
        ("team", "support", "CC-200", "3.000000000000", "0.375000000000", "0.270000000000",
         zero, "3.645000000000", "3.65", "USD"),
        ("team", "search", "CC-100", "1.000000000000", "0.125000000000", "0.090000000000",
         zero, "1.215000000000", "1.21", "USD"),
        ("kept_by_reviewer", "", "", zero, zero, zero, zero, zero, "0.00", "USD"),
    ]  # fmt: skip
    # the journal: each charge's parts in cents, adding up to it and, per component, to the
    # bill's amount (unallocated $0.50 splits 0.375 / 0.125: support's half cent rounds up so
    # that its parts make its $3.65)
    with (tmp_path / "out" / "2026-10" / "evidence" / "chargeback_journal.csv").open() as f:
        journal = list(csv.DictReader(f))
    assert list(journal[0]) == [
        "period", "line", "business_unit", "cost_center", "team", "component", "amount",
        "currency", "invoice_issuer", "billing_account_id", "invoice_id",
    ]  # fmt: skip
    assert [(r["cost_center"], r["team"], r["component"], r["amount"]) for r in journal] == [
        ("CC-200", "support", "own_cost", "3.00"),
        ("CC-200", "support", "unallocated", "0.38"),
        ("CC-200", "support", "tax", "0.27"),
        ("CC-100", "search", "own_cost", "1.00"),
        ("CC-100", "search", "unallocated", "0.12"),
        ("CC-100", "search", "tax", "0.09"),
    ]


def test_usage_drawn_down_from_a_prepaid_commitment_is_not_billed_twice():
    # usage bills $0 with an effective cost of $4.50, drawn from a $10.00 purchase this month:
    # the bill is $10.00, and teams carry their $4.00 of usage plus the purchase net of it,
    # $5.50, weighed with the $0.50 of unallocated spend the reviewer keeps (its part stays):
    # support 3.00 + 5.50 × 3/4.5, search 1.00 + 5.50 × 1/4.5, the reviewer 0.50 + 5.50 × 0.5/4.5
    record = bill("pass", "4.50", ("Purchase", "10.00", "USD"))
    record["reasons"] = [
        {"code": "commitment_drawdown", "numbers": {"billed_cost": "0", "effective_cost": "4.50"}}
    ]
    schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, ["purchase"], "USD")
    assert schedule.items["purchase"] == Decimal("5.50")
    assert (schedule.total, sum(c.charge for c in schedule.lines)) == (
        Decimal("10.00"), Decimal("10.00")
    )  # fmt: skip
    assert [(c.team, c.charge) for c in schedule.lines] == [
        ("support", Decimal("6.67")), ("search", Decimal("2.22")), (None, Decimal("1.11"))
    ]  # fmt: skip


def test_a_bill_that_lacks_days_of_the_period_is_no_total_to_charge():
    record = bill("inconclusive", "1.50", ("Tax", "0.10", "USD"))
    record["reasons"] = [{"code": "bill_days_missing"}]
    schedule = chargeback(ALLOCATION, Decimal("4.50"), REGISTRY, record, ["tax"], "USD")
    assert (schedule.against_bill, schedule.footed, schedule.spread) == (
        False, Decimal("4.50"), ()
    )  # fmt: skip


@pytest.mark.parametrize(
    ("currency", "charges"),
    [
        # the Chilean peso has no minor unit; the Kuwaiti dinar has three places (CLDR)
        ("CLP", ["75", "25", "0"]),
        ("KWD", ["75.251", "25.084", "0.000"]),
    ],
)
def test_charges_are_footed_in_the_currencys_own_minor_unit(currency, charges):
    allocation = [line("search", "25.083666"), line("support", "75.250999")]
    schedule = chargeback(allocation, Decimal("100.334665"), REGISTRY, None, [], currency)
    assert [c.charge for c in schedule.lines] == [Decimal(c) for c in charges]
    assert sum(c.charge for c in schedule.lines) == schedule.footed


@given(**PERIODS, with_schedule=st.booleans())
def test_teams_and_unallocated_are_shown_in_cents_that_add_up_to_the_ledger_total(
    own, unallocated, billed, charges, spread, with_schedule
):
    names, ledger, schedule = period_schedule(own, unallocated, billed, charges, spread)
    exact = dict(zip(names, own, strict=True))
    shown, kept = ledger_cents(schedule if with_schedule else None, exact, unallocated, "USD")
    # one rounding: the teams and the unallocated spend add up to the ledger total shown
    assert list(shown) == names
    assert sum(shown.values(), Decimal(0)) + kept == ledger.quantize(CENT, ROUND_HALF_UP)
    for amount, exact_amount in [*zip(shown.values(), own, strict=True), (kept, unallocated)]:
        assert amount % CENT == 0 and abs(amount - exact_amount) < CENT
    if with_schedule:  # a team's own cost is what its chargeback line books, when that fits
        parts, _ = booked_parts(schedule)
        booked = {c.team: row[0] for c, row in zip(schedule.lines, parts, strict=True) if c.team}
        if abs(ledger.quantize(CENT, ROUND_HALF_UP) - sum(booked.values()) - unallocated) < CENT:
            assert shown == {t: booked.get(t, Decimal(0)) for t in names}


def test_ledger_cents_follow_the_schedule_where_rounding_each_alone_would_not_add_up():
    # three teams of $0.005 each and $0.005 unallocated: each rounds half up to a cent, $0.04,
    # against a ledger total of $0.02; the schedule books two of the teams a cent
    allocation = [line(t, "0.005") for t in ("a", "b", "c")] + [line(None, "0.005", "untagged")]
    schedule = chargeback(allocation, Decimal("0.02"), teams("a", "b", "c"), {}, [], "USD")
    own = {t: Decimal("0.005") for t in ("a", "b", "c")}
    parts, _ = booked_parts(schedule)
    booked = {c.team: row[0] for c, row in zip(schedule.lines, parts, strict=True) if c.team}
    assert booked == {"a": CENT, "b": CENT, "c": Decimal(0)}
    assert ledger_cents(schedule, own, Decimal("0.005"), "USD") == (booked, Decimal(0))
    # without a schedule: largest remainder, ties to the first
    assert ledger_cents(None, own, Decimal("0.005"), "USD") == (
        {"a": CENT, "b": CENT, "c": Decimal(0)}, Decimal(0)
    )  # fmt: skip


@given(
    cells=st.integers(min_value=1, max_value=4).flatmap(
        lambda width: st.lists(st.lists(costs, min_size=width, max_size=width), min_size=1,
                               max_size=6)
    ),
    up=st.booleans(),
)  # fmt: skip
def test_a_matrix_adds_up_to_its_total_rounded_either_way(cells, up):
    """A team's cells foot to its own cost as its chargeback line books it, which is its exact
    total rounded up or down, not always half up."""
    exact = sum((c for row in cells for c in row), Decimal(0))
    footed = exact.quantize(CENT, rounding=ROUND_CEILING if up else ROUND_FLOOR)
    rounded, rows, columns = foot_both_ways(cells, footed, CENT)
    assert sum(rows, Decimal(0)) == sum(columns, Decimal(0)) == footed
    for row, exact_row in zip(rounded, cells, strict=True):
        for booked, amount in zip(row, exact_row, strict=True):
            assert booked % CENT == 0 and abs(booked - amount) < CENT
