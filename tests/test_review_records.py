"""Chargeback review rows (one per team, a row per failure reason) and the spend review record."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from allocation_kit.config import load_workspace
from allocation_kit.demo import DEMO_PERIODS, write_demo_workspace
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import write_analysis
from allocation_kit.review import chargeback_review, chargeback_rows

from .conftest import KIT, request

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def reviewed(workspace, rows):
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"), validate=False)
    return {r.team: r for r in chargeback_review(ledger, "finops-analyst", AT)}


def test_clean_usage_passes_with_its_rule_and_units(workspace):
    rows = reviewed(workspace, [request("r1"), request("r2", application="gateway-fixed")])
    search = rows["search"]
    assert (search.review_id, search.usage_period, search.cost_center, search.cost) == (
        "CBR-2026-10-search", "2026-10", "CC-100", Decimal("0.002380000000")
    )  # fmt: skip
    assert search.allocation_rule == (
        "direct: application owner; shared: fixed split (search 70%, support 30%)"
    )
    assert search.usage_unit_checked == (
        "2 requests; 1,700 input and 170 output tokens; cost in USD"
    )
    assert (search.review_result, search.reasons, search.follow_up_owner) == ("pass", "", "")
    assert (search.reviewer_role, search.reviewed_at) == (
        "finops-analyst", "2026-11-02T09:30:00+00:00"
    )  # fmt: skip
    assert (rows["platform"].allocation_rule, rows["platform"].cost) == ("no usage", Decimal(0))
    assert list(rows) == ["search", "support", "platform"]  # registry order, every team


def test_unpriced_usage_fails(workspace):
    row = reviewed(workspace, [request("r1", model="mystery")])["search"]
    assert (row.review_result, row.reasons, row.follow_up_owner) == (
        "fail",
        "unpriced usage: 1 request has no price in the snapshot (cost understated)",
        "finops-analyst",
    )


def test_a_missing_owner_mapping_fails_the_tagging_team(workspace):
    rows = reviewed(workspace, [request("r1", application="ghost-app")])
    assert (rows["search"].review_result, rows["search"].reasons) == (
        "fail",
        "missing owner mapping: 1 request ($0.0014) tagged search with application ghost-app not "
        "in the registry",
    )
    assert rows["search"].follow_up_owner == "search-lead"


def test_an_unknown_team_on_a_registered_application_fails_the_applications_team(workspace):
    rows = reviewed(workspace, [request("r1", team="marketing", application="ticket-bot")])
    assert (rows["support"].review_result, rows["support"].reasons) == (
        "fail",
        "missing owner mapping: 1 request ($0.0014) of application ticket-bot tagged with unknown "
        "team marketing",
    )


def test_traffic_on_a_retired_application_is_allocated_and_needs_follow_up(workspace):
    from .conftest import REGISTRY

    registry = REGISTRY.replace(
        "{id: ticket-bot, team: support}", "{id: ticket-bot, team: support, active: false}"
    )
    rows = [request(f"r{i}", application="ticket-bot", team=None) for i in (1, 2)]
    config = workspace(rows, registry=registry)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    support = {r.team: r for r in chargeback_review(ledger, "finops-analyst", AT)}["support"]
    assert (support.cost, support.review_result, support.reasons, support.follow_up_owner) == (
        Decimal("0.002800000000"),
        "needs_follow_up",
        "retired application in use: 2 requests on ticket-bot, which the registry marks "
        "inactive (active: false)",
        "support-lead",
    )


def test_a_share_of_an_unpriced_shared_call_fails_every_receiving_team(workspace):
    # one unpriced call on gateway-fixed (search 70%, support 30%): the whole call is counted
    # for search, yet support's 30% of its cost is as unknown
    teams = reviewed(workspace, [request("r1", application="gateway-fixed", team=None,
                                         model="mystery-model")])  # fmt: skip
    assert (teams["search"].review_result, teams["search"].reasons) == (
        "fail", "unpriced usage: 1 request has no price in the snapshot (cost understated)"
    )  # fmt: skip
    assert (teams["support"].review_result, teams["support"].reasons) == (
        "fail", "a share of unpriced usage on shared gateway-fixed (cost understated)"
    )  # fmt: skip


def test_a_tag_conflict_needs_follow_up_from_both_teams(workspace):
    rows = reviewed(workspace, [request("r1", team="search", application="ticket-bot")])
    reason = (
        "tag conflict: 1 request ($0.0014) tags application ticket-bot (registered to support) "
        "with team search"
    )  # one chat-small call: 1000 × $1/1M + 100 × $4/1M
    assert (rows["support"].review_result, rows["support"].reasons) == ("needs_follow_up", reason)
    assert (rows["search"].review_result, rows["search"].reasons) == ("needs_follow_up", reason)
    assert (rows["search"].follow_up_owner, rows["support"].follow_up_owner) == (
        "search-lead", "support-lead"
    )  # fmt: skip


def test_shared_usage_without_its_documented_split_needs_follow_up(workspace):
    # gateway-prop splits by the tokens of search and support; with no direct usage to weigh by
    # it falls back to an even split, which nobody signed off
    rows = reviewed(workspace, [request("r1", team="platform", application="gateway-prop")])
    expected = (
        "needs_follow_up",
        "shared usage without a documented split: gateway-prop production was split evenly "
        "because its rule (proportional to tokens) had nothing to weigh by",
        "cto",  # the budget owner of platform, which owns the shared application
    )
    for team in ("search", "support"):
        assert (rows[team].review_result, rows[team].reasons, rows[team].follow_up_owner) == (
            expected
        )
        assert rows[team].cost == Decimal("0.000700000000")


def test_a_failed_reconciliation_puts_the_teams_of_the_blamed_model_on_follow_up(workspace):
    # chat-small is billed above the ledger's price: search used it directly and support through
    # the shared gateway; support's reasoner calls and platform (no usage) are not in question
    rows = [
        request("r1"),
        request("r2", team="support", application="ticket-bot", model="reasoner"),
        request("r3", application="gateway-fixed"),
    ]
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"), validate=False)
    line = {"level": "model", "model": "chat-small", "finding": "price_mismatch",
            "ledger_cost": "0.00238", "billed_cost": "0.00300", "variance": "-0.00062"}  # fmt: skip
    record = {"result": "fail", "tolerance_pct": "1.0", "lines": [line]}
    teams = {r.team: r for r in chargeback_review(ledger, "finops-analyst", AT, record)}
    sentence = (
        "chat-small is billed $0.003 against $0.00238 computed (reconciliation fail): the team's "
        "cost of it may change once the bill is settled"
    )
    for team in ("search", "support"):
        assert (teams[team].review_result, teams[team].reasons, teams[team].follow_up_owner) == (
            "needs_follow_up", sentence, "finops-analyst (the bill)"
        )  # fmt: skip
    assert teams["platform"].review_result == "pass"
    # from a cent up, amounts read as the reconciliation writes them: $0.80, not $0.8
    cents = {**record, "lines": [{**line, "billed_cost": "0.80", "ledger_cost": "0.4",
                                   "variance": "-0.4"}]}  # fmt: skip
    [search] = [
        r for r in chargeback_review(ledger, "finops-analyst", AT, cents) if r.team == "search"
    ]
    assert search.reasons.startswith("chat-small is billed $0.80 against $0.40 computed")
    # a passing reconciliation, or a line within the tolerance, questions no team
    passing = {**record, "result": "pass"}
    within = {**record, "lines": [{**line, "billed_cost": "0.00239", "variance": "-0.00001"}]}
    for rec in (passing, within):
        assert {r.review_result for r in chargeback_review(ledger, "finops-analyst", AT, rec)} == {
            "pass"
        }


def test_rows_are_written_with_exact_cost_and_empty_cells(workspace):
    [first, *_] = chargeback_rows(list(reviewed(workspace, [request("r1")]).values()))
    assert first == {
        "review_id": "CBR-2026-10-search",
        "usage_period": "2026-10",
        "team": "search",
        "cost_center": "CC-100",
        "allocation_rule": "direct: application owner",
        "usage_unit_checked": "1 requests; 1,000 input and 100 output tokens; cost in USD",
        "cost": "0.001400000000",
        "review_result": "pass",
        "reasons": "",
        "follow_up_owner": "",
        "reviewer_role": "finops-analyst",
        "reviewed_at": "2026-11-02T09:30:00+00:00",
    }


def test_spend_review_record(workspace, tmp_path):
    rows = [
        request("r1", caller_id="svc-a", endpoint="/v1/responses"),
        request("r2", caller_id="svc-a", endpoint="/v1/chat/completions"),
        request("r3", caller_id="svc-b", endpoint="/v1/chat/completions", team=None,
                application=None, reasoning_tokens=40),
    ]  # fmt: skip
    ws = load_workspace(workspace(rows))
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    evidence.mkdir(parents=True)
    record = {"billed_cost": "0.005", "result": "fail"}
    spend = write_analysis(evidence, ledger, record, "finops-analyst").spend_review
    assert spend["totals"] == {
        "ledger_cost": "0.004200000000",
        "allocated": "0.002800000000",
        "shared": "0",
        "unallocated": "0.001400000000",
        "billed_cost": "0.005",
        "reconciliation_result": "fail",
    }
    assert spend["requests"] == {
        "total": 3,
        "classified": 2,
        "unclassified": 1,
        "classification_rate_pct": "66.67",
        "by_status": {"allocated": 2, "untagged": 1},
    }
    assert spend["top_endpoint"] == {"endpoint": "/v1/chat/completions", "requests": 2}
    assert spend["top_caller"] == {"caller": "svc-a", "requests": 2}
    assert spend["tokens"] == {
        "input_tokens": 3000,
        "cached_input_tokens": 0,
        "output_tokens": 300,
        "reasoning_tokens": 40,
    }
    assert spend["chargeback"] == {"pass": 3, "needs_follow_up": 0, "fail": 0}
    assert spend["reviewer_role"] == "finops-analyst"


@pytest.fixture(scope="module")
def demo_october(tmp_path_factory):
    """The demo's three months reviewed in order (no notebook): October's analysis."""
    root = tmp_path_factory.mktemp("demo-analysis")
    ws = load_workspace(write_demo_workspace(root / "ws", rows_per_month=20_000))
    for month in DEMO_PERIODS:
        ledger = period_ledger(ws, parse_period(month), validate=False)
        evidence = Path(root / "reports" / month / "evidence")
        evidence.mkdir(parents=True)
        analysis = write_analysis(evidence, ledger, {}, "finops-analyst")
    return analysis


def test_the_demos_runaway_job_is_flagged_and_no_steady_team_is(demo_october):
    spikes = {(a.scope, a.key, a.metric) for a in demo_october.anomalies
              if a.metric in {"spend", "requests"}}  # fmt: skip
    assert ("application", "kb-summarizer", "spend") in spikes
    teams = {key for scope, key, _ in spikes if scope == "team"}
    assert teams == {"support"}  # the runaway job's team, and no steady team
    key = ("application", "kb-summarizer", "spend")
    runaway = next(a for a in demo_october.anomalies if (a.scope, a.key, a.metric) == key)
    assert "Largest job: kb-summarizer-20261013" in runaway.explanation
    assert "from 2026-10-13 to 2026-10-17" in runaway.explanation
    days = sorted(a.key for a in demo_october.anomalies if a.scope == "day")
    assert days and all("2026-10-13" <= d <= "2026-10-17" for d in days)
    units = {u.name: u for u in demo_october.unit_costs}
    assert units["cost_per_kb_summarizer_run"].change_pct > 100


def test_the_demos_anomalies_are_followed_up_by_the_owners_they_name(demo_october):
    # support: its team and kb-summarizer spikes, and most of claude-sonnet-4-5's traffic;
    # assistant: all of the new caller's and the new model's; the day spikes have no team, so
    # the reviewer follows them up too
    [finding] = [
        f for f in demo_october.spend_review["sign_off"]["findings"]
        if f["finding"].startswith("Anomalies:")
    ]  # fmt: skip
    assert finding == {
        "result": "needs_follow_up",
        "finding": "Anomalies: 10 flagged (6 against earlier periods; 4 days far above the "
        "period's median day)",
        "follow_up_owner": "assistant-lead, support-ops-lead, finops-analyst",
    }


def test_an_unpriced_model_that_decides_the_reconciliation_is_one_finding(workspace):
    from allocation_kit.review import sign_off_proposal

    rows = [request("r1"), request("r2", model="mystery-model")]
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"), validate=False)
    unpriced = {"code": "unpriced_model", "effect": "inconclusive", "message": "mystery-model…"}
    for reasons, expected in (
        ([unpriced], ["Reconciliation inconclusive: mystery-model…"]),
        (
            [{**unpriced, "code": "no_bill_lines"}],
            [
                "Reconciliation inconclusive: mystery-model…",
                "Unpriced: 1 billable call of a model with no price in effect: cost unknown, "
                "not in the ledger total",
            ],
        ),
    ):
        record = {"result": "inconclusive", "reasons": reasons}
        proposal = sign_off_proposal(ledger, [], [], [], record, "finops-analyst")
        assert [f["finding"] for f in proposal["findings"]] == expected


def billed_review(workspace, rows, bill, kit):
    """The chargeback review rows of rows reconciled against the FOCUS bill, by team."""
    from allocation_kit.billing import workspace_billing
    from allocation_kit.reconcile import reconciliation

    from .test_billing import write_csv
    from .test_reconcile import record

    config = workspace(rows, kit=kit)
    write_csv(config.parent / "bill.csv", bill, list(dict.fromkeys(k for r in bill for k in r)))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    reconciled = record(reconciliation(ledger, workspace_billing(ledger.con, ws)))
    return ledger, reconciled, {r.team: r for r in chargeback_review(ledger, "finops-analyst", AT,
                                                                     reconciled)}  # fmt: skip


def test_unpriced_usage_the_bill_charges_within_the_materiality_needs_follow_up(workspace):
    from .test_reconcile import KIT_WITH_BILL, usage

    # search: one chat-small call ($0.0014) and one of mystery-model, which the snapshot does
    # not price and the bill charges $7.50 + $2.50; support's ticket-bot call is priced
    rows = [request("r1"), request("r2", model="mystery-model"),
            request("r3", team="support", application="ticket-bot")]  # fmt: skip
    bill = [
        usage("chat-small", "uncached_input", 2_000, "0.002"),
        usage("chat-small", "output", 200, "0.0008"),
        usage("mystery-model", "uncached_input", 1_000, "7.50"),
        usage("mystery-model", "output", 100, "2.50"),
    ]
    billed = "no price in the snapshot (cost understated: the period's unpriced calls, of every "
    billed += "team, are billed $10.00"
    for materiality, expected in (
        (None, ("fail", f"unpriced usage: 1 request has {billed})")),
        ("9.99", ("fail", f"unpriced usage: 1 request has {billed})")),
        ("10", ("needs_follow_up", f"unpriced usage: 1 request has {billed}, within "
                "review.unpriced_materiality of $10.00)")),
    ):  # fmt: skip
        kit = KIT_WITH_BILL
        if materiality is not None:
            kit = kit.replace("review: {", f"review: {{unpriced_materiality: {materiality}, ")
        _, _, teams = billed_review(workspace, rows, bill, kit)
        assert (teams["search"].review_result, teams["search"].reasons) == expected
        assert teams["search"].follow_up_owner == "finops-analyst"  # reviewed_by of the snapshot
        assert (teams["support"].review_result, teams["support"].reasons) == ("pass", "")


def test_unpriced_usage_without_a_bill_figure_fails_whatever_the_materiality(workspace):
    from allocation_kit.review import unpriced_billed

    from .test_reconcile import KIT_WITH_BILL, usage

    kit = KIT_WITH_BILL.replace("review: {", "review: {unpriced_materiality: 1000, ")
    rows = [request("r1"), request("r2", model="mystery-model")]
    # the bill has no line of mystery-model: what its call costs is unknown
    bill = [usage("chat-small", "uncached_input", 1_000, "0.001"),
            usage("chat-small", "output", 100, "0.0004")]  # fmt: skip
    ledger, reconciled, teams = billed_review(workspace, rows, bill, kit)
    assert (teams["search"].review_result, teams["search"].reasons) == (
        "fail", "unpriced usage: 1 request has no price in the snapshot (cost understated)"
    )  # fmt: skip
    assert unpriced_billed(ledger, reconciled) is None
    assert unpriced_billed(ledger, None) is None  # no bill at all
    # a model priced in part: the bill's figure less what the ledger computes for the rest
    line = {"level": "model", "model": "mystery-model", "finding": "unpriced",
            "ledger_cost": "4.000000000000", "billed_cost": "12.500000000000"}  # fmt: skip
    assert unpriced_billed(ledger, {"lines": [line]}) == Decimal("8.500000000000")
    # a bill below what the ledger computes for the priced part tells nothing of the rest
    assert unpriced_billed(ledger, {"lines": [{**line, "billed_cost": "3.99"}]}) is None
    shared = [request("r1", application="gateway-fixed", team=None, model="mystery-model")]
    kit = KIT.replace("review: {", "review: {unpriced_materiality: 20, ")
    config = workspace(shared, kit=kit)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    unpriced = {"lines": [{**line, "ledger_cost": None}]}
    teams = {r.team: r for r in chargeback_review(ledger, "finops-analyst", AT, unpriced)}
    # support's share of gateway-fixed's unpriced call is within the materiality too
    assert (teams["support"].review_result, teams["support"].reasons) == (
        "needs_follow_up",
        "a share of unpriced usage on shared gateway-fixed (cost understated: the period's "
        "unpriced calls, of every team, are billed $12.50, within review.unpriced_materiality of "
        "$20.00)",
    )
