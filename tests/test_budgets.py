"""Budgets: each status, the run-rate forecast of a partial period, weekly proration."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
import yaml

from allocation_kit.allocate import AllocationLine
from allocation_kit.budgets import (
    Budgets,
    budget_lines,
    budget_rows,
    data_gaps,
    load_budgets,
    month_to_date_lines,
    month_to_date_period,
    prorated_budget,
)
from allocation_kit.config import Registry
from allocation_kit.errors import ConfigError
from allocation_kit.periods import parse_period

from .conftest import REGISTRY

REG = Registry.model_validate(yaml.safe_load(REGISTRY))
OCTOBER = parse_period("2026-10")
WHOLE_OCTOBER = (datetime(2026, 9, 30, 23, 58), datetime(2026, 11, 1, 0, 4))  # ledger span


def line(team, cost, environment="production", status="allocated"):
    return AllocationLine(
        business_unit=None, team=team, application=None, environment=environment,
        cost_center=None, allocation_status=status, allocation_rule="direct: team tag",
        requests=1, input_tokens=0, cached_input_tokens=0, cache_write_tokens=0,
        output_tokens=0, reasoning_tokens=0, unpriced_requests=0, cost=Decimal(cost),
    )  # fmt: skip


def budgets(*entries, thresholds=(50, 80, 100)):
    return Budgets.model_validate(
        {"thresholds_pct": list(thresholds), "budgets": [dict(e) for e in entries]}
    )


def test_each_status_with_production_only_by_default():
    config = budgets(
        {"team": "search", "monthly": 1000},
        {"team": "support", "monthly": 100},
        {"team": "platform", "monthly": 50},
    )
    allocation = [
        line("search", "400.00"),
        line("search", "300.00", environment="staging"),  # shown beside, not counted
        line("support", "60.00"),
        line("support", "25.00", status="shared"),
        line("platform", "50.000000000001"),
        line(None, "999", status="untagged"),
    ]
    result = budget_lines(config, allocation, REG, OCTOBER, WHOLE_OCTOBER, "USD")
    assert [(b.team, b.budget, b.actual, b.pct_used, b.status, b.threshold_crossed)
            for b in result] == [
        ("search", Decimal("1000.00"), Decimal("400.00"), Decimal("40.00"), "ok", None),
        ("support", Decimal("100.00"), Decimal("85.00"), Decimal("85.00"), "warning", 80),
        ("platform", Decimal("50.00"), Decimal("50.000000000001"), Decimal("100.00"),
         "exceeded", 100),
    ]  # fmt: skip
    assert result[0].other_environments_actual == Decimal("300.00")
    assert [b.reason for b in result] == [
        "",
        "85.00% of budget used (threshold 80%)",
        "over budget by $0.00",
    ]
    assert [b.forecast for b in result] == [Decimal("400.00"), Decimal("85.00"), Decimal("50.00")]
    assert result[1].budget_owner == "support-lead"


def test_a_budget_whose_actual_leaves_out_unpriced_calls_says_so():
    from dataclasses import replace

    config = budgets({"team": "search", "monthly": 1000})
    allocation = [
        replace(line("search", "100.00"), unpriced_requests=3),
        replace(line("search", "5.00", environment="staging"), unpriced_requests=7),  # not counted
        line("search", "20.00"),
    ]
    (result,) = budget_lines(config, allocation, REG, OCTOBER, WHOLE_OCTOBER, "USD")
    assert (result.actual, result.status, result.reason) == (
        Decimal("120.00"),
        "warning",  # an actual known to be short is not within budget
        "actual leaves out 3 unpriced calls in production (no price in the snapshot: cost unknown)",
    )
    assert result.exceeded_text("USD") == (
        "search's production spend is $120.00 against its budget of $1,000.00 (12.0% used)"
    )


def test_forecast_extends_the_run_rate_when_the_data_stops_early():
    config = budgets({"team": "search", "monthly": 3000}, thresholds=(80, 100))
    span = (datetime(2026, 10, 1, 0, 2), datetime(2026, 10, 11))  # rows until 10 Oct midnight
    result = budget_lines(config, [line("search", "1000")], REG, OCTOBER, span, "USD")
    [b] = result
    # 1,000 in 10 of 31 days: 3,100 by month end, over the 3,000 budget though only 33% is used
    assert (b.pct_used, b.forecast, b.status) == (Decimal("33.33"), Decimal("3100.00"), "warning")
    assert b.reason == (
        "data through 2026-10-11 00:00 UTC: forecast at the run rate of 10 of 31 days "
        "(14,400 of 44,640 minutes); the forecast is over budget"
    )
    assert (b.data_through, str(b.monthly_budget), b.budget_basis) == (
        date(2026, 10, 11), "3000.00", "month"
    )  # fmt: skip


def test_a_few_rows_after_midnight_are_not_a_day_of_data():
    """The ledger ends 9 minutes into 1 November: 7 days of a 14-day range are covered, not 8."""
    period = parse_period("2026-10-25..2026-11-07")
    config = budgets({"team": "search", "monthly": 3100})
    span = (datetime(2026, 10, 1), datetime(2026, 11, 1, 0, 9))
    [b] = budget_lines(config, [line("search", "700")], REG, period, span, "USD")
    # 700 × 14 days / (7 days 9 minutes) = 1,398.75…; not 700 × 14 / 8 = 1,225
    assert b.forecast == Decimal("1398.75")
    assert b.reason == (
        "data through 2026-11-01 00:09 UTC: forecast at the run rate of 7 of 14 days "
        "(10,089 of 20,160 minutes)"
    )
    assert b.budget_basis == "prorated: 7/31 of 2026-10 + 7/30 of 2026-11"


def test_a_ledger_that_starts_inside_the_period_says_so():
    week = parse_period("2026-W31")  # 27 July to 2 August
    config = budgets({"team": "search", "monthly": 3100})
    span = (datetime(2026, 7, 31, 23, 2), datetime(2026, 8, 31, 23, 59))
    [b] = budget_lines(config, [line("search", "10")], REG, week, span, "USD")
    # 27 to 30 July have no rows; 31 July has, from 23:02
    assert b.reason == "the ledger starts 2026-07-31 23:02 UTC: the first 4 days have no rows"
    assert b.forecast == Decimal("10.00")  # the period's end is covered: no run-rate forecast


def test_less_than_a_day_of_data_gives_no_forecast():
    """A few rows after midnight on the 1st are no run rate for a month (× 720 of an hour)."""
    config = budgets({"team": "search", "monthly": 3000})
    span = (datetime(2026, 10, 1), datetime(2026, 11, 1, 0, 9))
    [b] = budget_lines(config, [line("search", "0.24")], REG, parse_period("2026-11"), span, "USD")
    assert (b.actual, b.forecast, b.status) == (Decimal("0.24"), None, "ok")
    assert (
        b.reason == "data through 2026-11-01 00:09 UTC: too little of the period to forecast from"
    )
    assert budget_rows([b])[0]["forecast"] == ""


def test_weekly_periods_prorate_each_day_by_its_own_month():
    # 2026-W44 is Monday 26 October to Sunday 1 November: 6 October days and 1 November day
    week = parse_period("2026-W44")
    exact = Fraction(3000) * (Fraction(6, 31) + Fraction(1, 30))
    assert float(exact) == pytest.approx(680.6451612903226)
    assert prorated_budget(Decimal(3000), week) == Decimal("680.65")
    assert prorated_budget(Decimal(3000), parse_period("2026-W42")) == Decimal("677.42")
    assert prorated_budget(Decimal("3000.00"), OCTOBER) == Decimal("3000.00")
    assert prorated_budget(Decimal(3000), parse_period("2026-02")) == Decimal("3000.00")
    config = budgets({"team": "search", "monthly": 3000})
    span = (datetime(2026, 10, 1), datetime(2026, 11, 1, 23, 30))
    [b] = budget_lines(config, [line("search", "700")], REG, week, span, "USD")
    assert (b.budget, b.status, b.reason) == (
        Decimal("680.65"), "exceeded", "over budget by $19.35"
    )  # fmt: skip
    assert (b.monthly_budget, b.budget_basis) == (
        Decimal(3000), "prorated: 6/31 of 2026-10 + 1/30 of 2026-11"
    )  # fmt: skip


def test_a_week_has_its_month_to_date_against_the_whole_month():
    week = parse_period("2026-W42")  # 12 to 18 October
    assert month_to_date_period(week) == parse_period("2026-10-01..2026-10-18")
    # 26 October to 1 November: October's close (6 of its 7 days), not a day of November
    assert month_to_date_period(parse_period("2026-W44")).label == "2026-10-01..2026-10-31"
    assert month_to_date_period(parse_period("2026-10-31..2026-11-01")).label == (
        "2026-11-01..2026-11-01"  # a tie: the later month
    )
    assert month_to_date_period(parse_period("2026-10-01..2026-10-15")).label == (
        "2026-10-01..2026-10-15"
    )
    assert month_to_date_period(OCTOBER) is None
    config = budgets({"team": "search", "monthly": 3000}, {"team": "support", "monthly": 1000},
                     thresholds=(80, 100))  # fmt: skip
    so_far = [line("search", "1800"), line("support", "1100")]  # 1 to 18 October
    # the ledger runs on past the week: cut at its end
    mtd = month_to_date_period(week)
    search, support = month_to_date_lines(config, so_far, REG, mtd, WHOLE_OCTOBER, "USD")
    assert [(b.period, b.budget, b.actual, b.pct_used, b.forecast, b.status, b.reason)
            for b in (search, support)] == [
        # 60% used, but $1,800 over 18 days runs to $3,100 by 31 October
        ("2026-10", Decimal("3000.00"), Decimal("1800"), Decimal("60.00"), Decimal("3100.00"),
         "warning", "month to date through 2026-10-18: forecast at the run rate of 18 of 31 days "
         "(25,920 of 44,640 minutes); the forecast is over budget"),
        ("2026-10", Decimal("1000.00"), Decimal("1100"), Decimal("110.00"), Decimal("1894.44"),
         "exceeded", "over budget by $100.00; month to date through 2026-10-18: forecast at the "
         "run rate of 18 of 31 days (25,920 of 44,640 minutes)"),
    ]  # fmt: skip
    # a ledger that stops inside the week says so, as the week's own line does
    stops = (datetime(2026, 9, 30, 23, 58), datetime(2026, 10, 15, 12, 0))
    search, _ = month_to_date_lines(config, so_far[:1], REG, mtd, stops, "USD")
    assert (search.forecast, search.reason) == (
        Decimal("3848.28"),  # 1800 × 31 / 14.5
        "data through 2026-10-15 12:00 UTC: forecast at the run rate of 14.5 of 31 days (20,880 "
        "of 44,640 minutes); the forecast is over budget",
    )
    # budgets.csv: the week's row carries its month to date; a month's row leaves them empty
    week_lines = budget_lines(config, [line("search", "700")], REG, week, WHOLE_OCTOBER, "USD")
    row = budget_rows(week_lines, [search])[0]
    assert (row["period"], row["budget"], row["month"], row["month_to_date"],
            row["month_forecast"], row["month_status"]) == (
        "2026-W42", "677.42", "2026-10", "1800.000000000000", "3848.28", "warning"
    )  # fmt: skip
    month_row = budget_rows(budget_lines(config, so_far, REG, OCTOBER, WHOLE_OCTOBER, "USD"))[0]
    assert [month_row[c] for c in ("month", "month_to_date", "month_status")] == ["", "", ""]


def test_bad_budgets_are_one_line(tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  - {team: ghosts, monthly: 10}\n")
    with pytest.raises(ConfigError) as caught:
        load_budgets(path, REG)
    assert caught.value.line() == (
        f"{path}: budgets[0] (ghosts).team: unknown team 'ghosts'; expected one of platform, "
        "search, support"
    )
    path.write_text("budgets:\n  - {team: search, monthly: 10, environments: [prod]}\n")
    with pytest.raises(ConfigError) as caught:
        load_budgets(path, REG)
    assert caught.value.line() == (
        f"{path}: budgets[0] (search).environments: unknown environment 'prod'; expected one of "
        "production, staging"
    )
    path.write_text("thresholds_pct: [80, 50]\nbudgets: []\n")
    with pytest.raises(ConfigError) as caught:
        load_budgets(path, REG)
    assert caught.value.line() == (
        f"{path}: thresholds_pct: expected distinct percentages in rising order"
    )
    path.write_text("budgets:\n  - {team: search, monthly: -5}\n")
    with pytest.raises(ConfigError) as caught:
        load_budgets(path, REG)
    assert caught.value.line() == (
        f"{path}: budgets[0] (search).monthly: got -5, expected at least 0"
    )


def test_the_packet_shows_the_monthly_budget_and_its_proration_for_a_range():
    from pathlib import Path
    from types import SimpleNamespace

    from allocation_kit.packet import Review

    period = parse_period("2026-10-01..2026-10-15")
    config = budgets({"team": "support", "monthly": 1000})
    span = (datetime(2026, 9, 1), datetime(2026, 10, 31, 23, 59))
    lines = budget_lines(config, [line("support", "896.09")], REG, period, span, "USD")
    ledger = SimpleNamespace(
        period=period, workspace=SimpleNamespace(kit=SimpleNamespace(currency="USD"))
    )
    month = month_to_date_lines(config, [line("support", "896.09")], REG, period, span, "USD")
    review = Review(
        ledger, {}, Path("."), "finops-analyst", datetime(2026, 11, 2),
        analysis=SimpleNamespace(budgets=lines, month_budgets=month),
    )  # fmt: skip
    page = review.budgets().text
    assert '<th class="num">Monthly budget</th><th class="num">Budget (prorated)</th>' in page
    assert (
        '<td class="num">$1,000.00</td><td class="num">$483.87</td><td class="num">$896.09</td>'
    ) in page
    assert (
        '<p class="ak-note">Budgets are monthly amounts; 2026-10-01..2026-10-15 takes each '
        "day's share of its own month: 15/31 of 2026-10 of the monthly budget.</p>"
    ) in page
    # the range starts on the 1st: its month to date is itself, against the whole month
    assert "<p><strong>Month to date: 2026-10 through 15 Oct.</strong> Each budget for" in page
    assert page.endswith(
        '<td class="num">$1,000.00</td><td class="num">$896.09</td><td class="num">89.6%</td>'
        '<td class="num">$1,851.92</td><td class="txt">warning</td><td class="txt">89.61% of '
        "budget used (threshold 80%); month to date through 2026-10-15: forecast at the run "
        "rate of 15 of 31 days (21,600 of 44,640 minutes)</td></tr></tbody></table>"
    )


def test_a_share_of_unpriced_calls_on_a_shared_application_is_named_though_its_count_is_0():
    from dataclasses import replace

    # one unpriced gateway call split 70/30: search's line counts it, support's counts 0 calls
    # of it, yet support's share of its cost is as unknown
    config = budgets({"team": "search", "monthly": 1000}, {"team": "support", "monthly": 1000})
    shared = {"status": "shared"}
    allocation = [
        replace(line("search", "7.00", **shared), application="gw", unpriced_requests=1),
        replace(line("support", "3.00", **shared), application="gw", unpriced_requests=0),
    ]
    result = budget_lines(config, allocation, REG, OCTOBER, WHOLE_OCTOBER, "USD")
    assert [(b.team, b.status, b.reason) for b in result] == [
        ("search", "warning", "actual leaves out 1 unpriced call in production and its share "
         "of the unpriced calls on shared gw (no price in the snapshot: cost unknown)"),
        ("support", "warning", "actual leaves out its share of the unpriced calls on shared gw "
         "(no price in the snapshot: cost unknown)"),
    ]  # fmt: skip


def test_a_weeks_packet_names_a_month_to_date_over_budget_among_its_findings():
    from pathlib import Path
    from types import SimpleNamespace

    import duckdb

    from allocation_kit.packet import Review

    week = parse_period("2026-W42")  # 12 to 18 October: 7/31 of $1,000 is $225.81
    config = budgets({"team": "support", "monthly": 1000}, {"team": "search", "monthly": 1000})
    lines = budget_lines(config, [line("support", "200")], REG, week, WHOLE_OCTOBER, "USD")
    so_far = [line("support", "1100"), line("search", "900")]
    month = month_to_date_lines(
        config, so_far, REG, month_to_date_period(week), WHOLE_OCTOBER, "USD"
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE exception_queue (reason VARCHAR, cost DECIMAL(38, 12))")
    usd = SimpleNamespace(kit=SimpleNamespace(currency="USD"))
    ledger = SimpleNamespace(period=week, con=con, ledger_cost=Decimal(200), workspace=usd)
    review = Review(
        ledger, {}, Path("."), "finops-analyst", datetime(2026, 11, 2),
        analysis=SimpleNamespace(budgets=lines, month_budgets=month, anomalies=[], chargeback=[]),
    )  # fmt: skip
    # the week is within its share; support's month so far is not (search's is, at 90%)
    assert review.findings().text == (
        '<ol class="ak-findings"><li>Over budget for 2026-10 so far: support&#x27;s production '
        "spend from 1 Oct through 18 Oct is $1,100.00 against its monthly budget of $1,000.00 "
        "(110.0% used).</li></ol>"
    )
    # 2026-W44 (26 October to 1 November) closes October: no "so far"
    ledger.period = parse_period("2026-W44")
    assert review.findings().text == (
        '<ol class="ak-findings"><li>Over budget for 2026-10: support&#x27;s production spend '
        "from 1 Oct through 31 Oct is $1,100.00 against its monthly budget of $1,000.00 "
        "(110.0% used).</li></ol>"
    )


def test_the_packet_says_once_what_every_budget_row_would_repeat():
    from pathlib import Path
    from types import SimpleNamespace

    from allocation_kit.packet import Review

    config = budgets({"team": "search", "monthly": 3000}, {"team": "support", "monthly": 100},
                     thresholds=(80, 100))  # fmt: skip
    stops = (datetime(2026, 9, 30, 23, 58), datetime(2026, 10, 15, 12, 0))
    allocation = [line("search", "1000"), line("support", "90")]
    lines = budget_lines(config, allocation, REG, OCTOBER, stops, "USD")
    usd = SimpleNamespace(kit=SimpleNamespace(currency="USD"))
    review = Review(
        SimpleNamespace(period=OCTOBER, workspace=usd), {}, Path("."), "finops-analyst",
        datetime(2026, 11, 2), analysis=SimpleNamespace(budgets=lines, month_budgets=[]),
    )  # fmt: skip
    page = review.budgets().text
    whys = re.findall(r'<td class="txt">([^<]*)</td></tr>', page.replace("<wbr>", ""))
    assert whys == ["", "90.00% of budget used (threshold 80%)"]
    assert page.endswith(
        '<p class="ak-note">For every budget: data through 2026-10-15 12:00 UTC: forecast at the '
        "run rate of 14.5 of 31 days (20,880 of 44,640 minutes).</p>"
    )


@pytest.mark.parametrize(
    ("last", "gap", "gaps"),
    [
        # 200 calls a month, one every 3.7 hours: the last at 22:58 on the 31st ends the month
        (datetime(2026, 10, 31, 22, 58), timedelta(hours=3.7), []),
        # the same last call in a ledger of a call a minute: an hour is missing
        (datetime(2026, 10, 31, 22, 58), timedelta(minutes=1),
         ["data through 2026-10-31 22:58 UTC"]),
        (datetime(2026, 10, 31, 22, 58), None, ["data through 2026-10-31 22:58 UTC"]),
        # however sparse: a day and more without a row is a gap (three gaps of 10 h would not be)
        (datetime(2026, 10, 30, 23, 0), timedelta(hours=10), ["data through 2026-10-30 23:00 UTC"]),
    ],
)  # fmt: skip
def test_sparse_traffic_ends_a_period_within_three_of_its_gaps_and_a_day(last, gap, gaps):
    assert data_gaps(OCTOBER, (datetime(2026, 10, 1, 0, 30), last, gap)) == gaps


def test_a_threshold_is_judged_on_the_exact_share_not_its_rounding():
    # $799.96 of $1,000: 79.996% is shown as 80.00, but has not reached the 80% threshold
    config = budgets({"team": "search", "monthly": 1000}, thresholds=(80, 100))
    below = budget_lines(config, [line("search", "799.96")], REG, OCTOBER, WHOLE_OCTOBER, "USD")
    at = budget_lines(config, [line("search", "800")], REG, OCTOBER, WHOLE_OCTOBER, "USD")
    assert [(b.pct_used, b.status, b.threshold_crossed) for b in (*below, *at)] == [
        (Decimal("80.00"), "ok", None),
        (Decimal("80.00"), "warning", 80),
    ]
