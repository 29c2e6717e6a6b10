"""Teams at a glance: each registered team's row of the packet, gathered from the sections and
agreeing with them to the digit (teams.csv)."""

import csv
from decimal import Decimal

from allocation_kit.config import load_workspace
from allocation_kit.packet import Review
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import write_analysis

from .conftest import KIT, request

MONTHS = ("2026-07", "2026-08", "2026-09", "2026-10")


def calls(month: str, n: int, app: str, team: str, **values) -> list[dict]:
    return [
        request(f"{month}-{app}-{i}", timestamp=f"{month}-10T12:00:00Z", application=app,
                team=team, caller_id=f"svc-{app}", **values)
        for i in range(n)
    ]  # fmt: skip


def review(workspace, tmp_path, rows, months=MONTHS, budgets=""):
    """Run each month in order into tmp_path/reports; the last month's Analysis."""
    kit = KIT + ("budgets: budgets.yaml\n" if budgets else "")
    config = workspace(rows, kit=kit)
    if budgets:
        (tmp_path / "budgets.yaml").write_text(budgets)
    ws = load_workspace(config)
    for month in months:
        ledger = period_ledger(ws, parse_period(month), validate=False)
        evidence = tmp_path / "reports" / month / "evidence"
        evidence.mkdir(parents=True)
        analysis = write_analysis(evidence, ledger, {}, "finops-analyst")
    return ledger, analysis


def summary(analysis) -> list[tuple]:
    return [
        (t.team, t.cost, t.previous_period, t.previous_cost, t.change_pct, t.charge, t.budget,
         t.budget_used_pct, t.budget_status, len(t.anomalies), t.review_result)
        for t in analysis.teams
    ]  # fmt: skip


def test_each_team_gets_its_cost_change_charge_budget_anomalies_and_review(workspace, tmp_path):
    # search: 10 calls a month, then 50 in October (a spike); support: 10 a month, steady.
    # A chat-small call before 10-15 costs 1000 × $1/1M + 100 × $4/1M = $0.0014.
    rows = [r for m in MONTHS[:3] for r in calls(m, 10, "search-api", "search")]
    rows += calls("2026-10", 50, "search-api", "search")
    rows += [r for m in MONTHS for r in calls(m, 10, "ticket-bot", "support")]
    budgets = "budgets:\n  - {team: search, monthly: 0.10}\n  - {team: support, monthly: 0.01}\n"
    _, analysis = review(workspace, tmp_path, rows, budgets=budgets)
    assert summary(analysis) == [
        # $0.014 → $0.07: +400%; 70% of its $0.10 (past the 50% threshold); six anomalies (its
        # application, team and the model whose calls are mostly search's: spend and volume)
        ("search", Decimal("0.070000000000"), "2026-09", Decimal("0.014000000000"),
         Decimal("400.00"), Decimal("0.07"), Decimal("0.10"), Decimal("70.00"), "warning", 6,
         "pass"),
        ("support", Decimal("0.014000000000"), "2026-09", Decimal("0.014000000000"),
         Decimal("0.00"), Decimal("0.01"), Decimal("0.01"), Decimal("140.00"), "exceeded", 0,
         "pass"),
        # no calls now or before: no change, nothing charged, no budget
        ("platform", Decimal(0), "2026-09", Decimal(0), None, Decimal(0), None, None, None, 0,
         "pass"),
    ]  # fmt: skip
    assert analysis.teams[0].anomalies == (
        "application search-api: spend",
        "application search-api: requests",
        "team search: spend",
        "team search: requests",
        "model chat-small: spend",
        "model chat-small: requests",
    )  # in the order the anomalies section lists them
    with (tmp_path / "reports" / "2026-10" / "evidence" / "teams.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert [(r["team"], r["cost"], r["previous_cost"], r["change_pct"], r["charge"],
             r["budget_used_pct"], r["budget_status"]) for r in written] == [
        ("search", "0.070000000000", "0.014000000000", "400.00", "0.07", "70.00", "warning"),
        ("support", "0.014000000000", "0.014000000000", "0.00", "0.01", "140.00", "exceeded"),
        ("platform", "0", "0", "", "0", "", ""),
    ]  # fmt: skip
    assert (written[0]["period"], written[0]["business_unit"], written[0]["cost_center"],
            written[0]["budget_owner"], written[0]["currency"], written[1]["anomalies"]) == (
        "2026-10", "product", "CC-100", "search-lead", "USD", ""
    )  # fmt: skip


def test_without_an_earlier_periods_evidence_there_is_no_change(workspace, tmp_path):
    rows = calls("2026-10", 3, "search-api", "search")
    _, analysis = review(workspace, tmp_path, rows, months=("2026-10",))
    first = analysis.teams[0]
    assert (first.team, first.cost, first.previous_period, first.previous_cost,
            first.change_pct, first.charge) == (
        "search", Decimal("0.004200000000"), None, None, None, Decimal("0.00")
    )  # fmt: skip


def test_a_team_with_unpriced_calls_gets_no_change_and_a_mark(workspace, tmp_path):
    # October's search calls include 2 of a model without a price: its cost is understated
    rows = [r for m in ("2026-09", "2026-10") for r in calls(m, 10, "search-api", "search")]
    rows += [request(f"u{i}", model="mystery", timestamp="2026-10-11T00:00:00Z") for i in range(2)]
    ledger, analysis = review(workspace, tmp_path, rows, months=("2026-09", "2026-10"))
    first = analysis.teams[0]
    assert (first.team, first.cost, first.unpriced_requests, first.unpriced_models,
            first.previous_cost, first.change_pct, first.review_result) == (
        "search", Decimal("0.014000000000"), 2, ("mystery",), Decimal("0.014000000000"), None,
        "fail"
    )  # fmt: skip
    from datetime import UTC, datetime

    shown = Review(ledger, {}, tmp_path, "finops-analyst", datetime.now(UTC), analysis=analysis)
    text = shown.teams().text
    assert '<td class="num">$0.01 †</td><td class="num">—</td>' in text
    assert "† leaves out 2 billable calls of a model with no price in the snapshot" in text
    assert '<th class="num">vs 2026-09</th>' in text


def test_no_change_is_given_against_a_period_whose_cost_left_out_unpriced_calls(
    workspace, tmp_path
):
    # September's search calls include one of a model without a price; October's are priced
    rows = [r for m in ("2026-09", "2026-10") for r in calls(m, 10, "search-api", "search")]
    rows += [request("u1", model="mystery", timestamp="2026-09-11T00:00:00Z")]
    _, analysis = review(workspace, tmp_path, rows, months=("2026-09", "2026-10"))
    first = analysis.teams[0]
    assert (first.team, first.cost, first.unpriced_requests, first.previous_cost,
            first.previous_unpriced_requests, first.change_pct) == (
        "search", Decimal("0.014000000000"), 0, Decimal("0.014000000000"), 1, None
    )  # fmt: skip
    support = next(t for t in analysis.teams if t.team == "support")
    assert (support.previous_unpriced_requests, support.change_pct) == (0, None)  # no cost


def test_the_models_without_a_price_reach_the_teams_that_share_them(workspace):
    from allocation_kit.teams import models_without_price

    # one unpriced call on gateway-fixed (search 70%, support 30%) and one of search's own
    rows = [
        request("g1", application="gateway-fixed", team=None, model="mystery"),
        request("s1", model="enigma"),
        request("u1", team=None, application=None, model="riddle"),  # untagged: no team's
    ]
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"),
                           validate=False)  # fmt: skip
    unpriced = ledger.con.execute(
        "SELECT DISTINCT allocation_status, owner_team, application, model FROM lines "
        "WHERE billable AND NOT priced ORDER BY ALL"
    ).fetchall()
    assert models_without_price(unpriced, ledger.allocation) == {
        "search": ["enigma", "mystery"], "support": ["mystery"]
    }  # fmt: skip
