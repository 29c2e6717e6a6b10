"""Team statements: one self-contained page per team, rendered from the period's evidence."""

import csv
import re
import textwrap

from allocation_kit.config import load_workspace
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import write_evidence
from allocation_kit.statements import write_statements

from .conftest import KIT, request

BUDGETS = "budgets:\n  - {team: search, monthly: 0.05}\n"
UNITS = """
cost_units:
  - name: cost_per_search
    numerator: {application: search-api}
    denominator: {count: requests}
    owner: search-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-09-30
"""


def statements(workspace, tmp_path, rows, period="2026-10", budgets=BUDGETS):
    """Run `period` into tmp_path/reports/<period> (evidence only) and render its statements;
    {team: page}."""
    kit = KIT + "budgets: budgets.yaml\ncost_units: cost_units.yaml\n"
    config = workspace(rows, kit=kit)
    (tmp_path / "budgets.yaml").write_text(budgets)
    (tmp_path / "cost_units.yaml").write_text(textwrap.dedent(UNITS))
    ledger = period_ledger(load_workspace(config), parse_period(period), validate=False)
    folder = tmp_path / "reports" / period
    write_evidence(folder, ledger, {"period": period})
    return {p.stem: p.read_text() for p in write_statements(folder)}


def cells(page: str, heading: str) -> list[list[str]]:
    """The rows of the first table after `heading`, as the text of their cells."""
    section = page[page.index(f"<h2>{heading}</h2>") :]
    table = section[: section.index("</table>")].replace("<wbr>", "")  # break opportunities
    return [
        re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", row)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


ROWS = [
    request("r1"),  # search-api: $0.0014
    request("r2", environment="staging"),  # $0.0014
    request("r3", application="gateway-fixed", team=None, input_tokens=20_000),  # $0.0204
    request("r4", team=None, application=None),  # untagged $0.0014
    request("r5", team="support", application="ticket-bot"),  # $0.0014
]


def test_each_team_gets_a_self_contained_statement_of_its_charge(workspace, tmp_path):
    pages = statements(workspace, tmp_path, ROWS)
    assert sorted(pages) == ["platform", "search", "support"]
    search = pages["search"]
    assert "<title>search — AI spend statement 2026-10</title>" in search
    assert "<script" not in search
    assert not re.search(r"""(src|href)=["']https?://""", search)
    # search: its own $0.0028, 70% of gateway-fixed's $0.0204 = $0.01428; no bill, nothing
    # spread: the charge is the own cost, footed with support's $0.00612 + $0.0014 and the
    # reviewer's untagged $0.0014 to the ledger's $0.0260
    assert cells(search, "What the charge is made of") == [
        ["Application", "How", "Requests", "Production", "Other environments", "Cost"],
        ["search-api", "own application", "2", "$0.00", "$0.00", "$0.00"],
        ["gateway-fixed", "fixed split (search 70%, support 30%)", "1", "$0.02", "$0.00",
         "$0.02"],
        ["Own cost", "", "", "$0.02", "$0.00", "$0.02"],
        ["Charge", "to the cent", "", "", "", "$0.02"],
    ]  # fmt: skip
    # the cells add up to the own cost as booked ($0.0028 + $0.01428 = $0.01708 → $0.02): the
    # cent goes to the larger remainder, gateway-fixed, not $0.00 + $0.01 for $0.02
    assert "(here by up to" not in search
    # gateway-fixed's one request, split 70/30 like its cost: search's share is 1, support's 0
    assert (
        "Requests count every attempt, failed ones included; on a shared application, the "
        "team's share of them, split like its cost (the application's own count is in the "
        "packet)."
    ) in search
    # no bill: the charges add up to the ledger; the period is not signed off yet (untagged r4)
    assert "<strong>Interim:</strong> 2026-10 has no complete bill of its own" in search
    assert "<strong>Provisional:</strong> the review of 2026-10 proposes needs follow up" in search
    assert cells(search, "By model") == [
        ["Model", "Cost", "Share"], ["chat-small", "$0.02", "100.0%"],
        ["All models", "$0.02", ""],
    ]  # fmt: skip
    assert cells(search, "Budget") == [
        ["Environments", "Budget", "Actual", "Used", "Forecast", "Status", "Why"],
        # production only (the default): r1 $0.0014 + the gateway's $0.01428 = 31.4% of $0.05,
        # forecast over 31 days at the run rate of the 9.5 the ledger reaches: $0.0512
        ["production", "$0.05", "$0.02", "31.4%", "$0.05", "ok",
         "data through 2026-10-10 12:00 UTC: forecast at the run rate of 9.5 of 31 days "
         "(13,680 of 44,640 minutes); the "
         "ledger starts 2026-10-10 12:00 UTC: the first 9 days have no rows"],
    ]  # fmt: skip
    assert cells(search, "Unit costs you own") == [
        ["Unit", "Definition", "This period", "Unit cost", "Previous period", "Change", "Note"],
        # r1 and r2, $0.0014 each
        [
            "cost_per_search",
            "application = search-api ÷ requests",
            "$0.0028 ÷ 2",
            "$0.0014",
            "—",
            "—",
            "",
        ],
    ]
    assert (
        "Not looked for yet: no earlier month has evidence in the output folder: spikes, shifts "
        "and new callers need a baseline of at least 2 earlier periods"
    ) in search
    assert "Nothing for this team: its chargeback review passed, its budget is within" in search
    assert (
        "The budget counts the team's own cost in production. Not counted, though in "
        "the charge for 2026-10: its cost in other environments ($0.00)." in search
    )
    assert '<a href="../packet.html">' in search
    # platform owns the gateway but keeps none of its cost: nothing charged
    assert "No cost this period: nothing is charged." in pages["platform"]
    assert "No budget for this team in budgets.yaml." in pages["platform"]
    assert "Unit costs you own" not in pages["platform"]


def test_a_statement_shows_the_shares_it_carries_and_what_to_follow_up(workspace, tmp_path):
    from .test_chargeback import taxed_workspace

    conflict = request("c1", team="search", application="ticket-bot", input_tokens=0,
                       output_tokens=0)  # fmt: skip
    config = taxed_workspace(workspace, conflict)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    folder = tmp_path / "reports" / "2026-10"
    write_evidence(folder, ledger, {"period": "2026-10"})
    search = write_statements(folder)[1].read_text()
    assert "<title>search — AI spend statement 2026-10</title>" in search
    # a quarter of the untagged $0.50 and of the $0.36 tax: $1.215 exactly, $1.21 once the
    # schedule's cents add up to the bill's $4.86 (support's equal remainder takes the cent);
    # the shares as the schedule books them ($0.125 → $0.12), adding up to the charge
    assert cells(search, "What the charge is made of") == [
        ["Application", "How", "Requests", "Production", "Other environments", "Cost"],
        ["search-api", "own application", "1", "$1.00", "$0.00", "$1.00"],
        ["Own cost", "", "", "$1.00", "$0.00", "$1.00"],
        ["Share of unallocated spend", "in proportion to own cost", "", "", "", "$0.12"],
        ["Share of tax", "in proportion to own cost", "", "", "", "$0.09"],
        ["Charge", "to the cent", "", "", "", "$1.21"],
    ]
    assert "Interim" not in search  # the bill is the month's: the charges add up to it
    assert "Each amount is its exact value" not in search  # $1.00 + $0.12 + $0.09 = $1.21
    assert cells(search, "To follow up") == [
        ["What", "Who"],
        ["Chargeback review needs follow up: tag conflict: 1 request ($0.00) tags application "
         "ticket-bot (registered to support) with team search", "search-lead"],
    ]  # fmt: skip


def test_calls_without_a_price_are_named_not_listed_by_model(workspace, tmp_path):
    rows = [request("r1"), request("m1", model="mystery"), request("m2", model="mystery")]
    search = statements(workspace, tmp_path, rows)["search"]
    assert cells(search, "By model") == [
        ["Model", "Cost", "Share"], ["chat-small", "$0.00", "100.0%"],
        ["All models", "$0.00", ""],
    ]  # fmt: skip
    assert (
        "The team&#x27;s 2 billable calls of mystery without a price in the snapshot are not "
        "here: their cost is unknown."
    ) in search
    assert "leaves out 2 unpriced calls: no change given" in search


def test_a_team_id_that_is_no_safe_file_name_gets_one_of_its_own():
    from allocation_kit.statements import statement_file

    assert statement_file("search") == "search.html"
    assert statement_file("ml.infra_2-b") == "ml.infra_2-b.html"
    # a path, a hidden name, spaces: replaced, with the first 8 hex digits of the id's SHA-256
    # (`printf %s ml/infra | sha256sum`) so no two ids share a page
    assert statement_file("ml/infra") == "ml_infra-9797deb3.html"
    assert statement_file("ml_infra") == "ml_infra.html"
    assert statement_file("../etc") == "_etc-f7f9121f.html"
    assert statement_file("Équipe données") == "_quipe_donn_es-bd03df22.html"


def test_a_share_of_unallocated_spend_is_split_by_what_the_spend_is():
    from decimal import Decimal

    from allocation_kit.statements import unallocated_parts

    def line(team: str, status: str, cost: str) -> dict[str, str]:
        return {"team": team, "allocation_status": status, "cost": cost}

    allocation = [
        line("search", "allocated", "9.00"),
        line("", "untagged", "2.00"),
        line("", "untagged", "1.00"),
        line("", "conflict", "1.00"),
        line("", "quarantined", "0"),  # no cost: not a part
    ]
    # untagged $3 and conflict $1 of $4 unallocated: a $1 share is $0.75 and $0.25
    assert unallocated_parts(allocation, Decimal("1.00")) == {
        "untagged": Decimal("0.750000000000"), "conflict": Decimal("0.250000000000")
    }  # fmt: skip
    # thirds of a cent, exact at 10⁻¹²: the leftover 10⁻¹² goes to the largest remainder
    thirds = [line("", "untagged", "1"), line("", "conflict", "1"), line("", "unknown_owner", "1")]
    parts = unallocated_parts(thirds, Decimal("0.01"))
    assert sum(parts.values()) == Decimal("0.01")
    assert sorted(parts.values()) == [Decimal("0.003333333333")] * 2 + [Decimal("0.003333333334")]
    # all of one kind: no parts, the share is all of it
    assert unallocated_parts([line("", "untagged", "2.00")], Decimal("1.00")) == {}


def test_a_weeks_statement_shows_its_budget_share_and_the_month_to_date(workspace, tmp_path):
    # $1.00 each (1M input tokens at $1.00 before the 15 October price change, $0.80 after)
    rows = [
        request("r1", timestamp="2026-10-05T12:00:00Z", input_tokens=1_000_000, output_tokens=0),
        request("w1", timestamp="2026-10-14T12:00:00Z", input_tokens=1_000_000, output_tokens=0),
        # after 2026-W42 (12 to 18 October): in neither the week nor its month to date
        request("r2", timestamp="2026-10-25T12:00:00Z", input_tokens=1_000_000, output_tokens=0),
    ]
    pages = statements(
        workspace, tmp_path, rows, "2026-W42", "budgets:\n  - {team: search, monthly: 31}\n"
    )
    assert cells(pages["search"], "Budget") == [
        ["Period", "Environments", "Budget", "Actual", "Used", "Forecast", "Status", "Why"],
        # 7/31 of $31: $7.00; w1 alone
        ["2026-W42 (its share of the month)", "production", "$7.00", "$1.00", "14.3%", "$1.00",
         "ok", ""],
        # r1 + w1 against the whole month, at their rate over 18 of 31 days: $2 × 31 / 18
        ["2026-10 to date", "production", "$31.00", "$2.00", "6.5%", "$3.44", "ok",
         "month to date through 2026-10-18: forecast at the run rate of 18 of 31 days "
         "(25,920 of 44,640 minutes); the "
         "ledger starts 2026-10-05 12:00 UTC: the first 4 days have no rows"],
    ]  # fmt: skip
    with (tmp_path / "reports" / "2026-W42" / "evidence" / "budgets.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert {k: v for k, v in row.items() if k.startswith("month")} == {
        "monthly_budget": "31.00",
        "month": "2026-10",
        "month_to_date": "2.000000000000",
        "month_to_date_pct": "6.45",
        "month_forecast": "3.44",
        "month_status": "ok",
        "month_reason": "month to date through 2026-10-18: forecast at the run rate of 18 of 31 "
        "days (25,920 of 44,640 minutes); the ledger starts 2026-10-05 12:00 UTC: the first 4 days "
        "have no rows",
    }


def test_a_proportional_share_shows_the_teams_weight_so_it_can_be_checked(workspace, tmp_path):
    """A budget owner disputing a gateway share sees its weight: search 2,200 billable tokens
    (its failed call weighs nothing) of 3,300."""
    rows = [request("s1"), request("s2"), request("s-failed", status_code=500)]
    rows += [request("t1", team="support", application="ticket-bot")]
    rows += [request("g1", application="gateway-prop", team=None)]
    pages = statements(workspace, tmp_path, rows)
    shared = [
        row
        for row in cells(pages["search"], "What the charge is made of")
        if row[0] == "gateway-prop"
    ]
    assert shared == [[
        "gateway-prop",
        "proportional to the direct billable input + output tokens of search, support in the "
        "period (all environments): 66.67%, 2,200 of 3,300 billable tokens",
        "1", "$0.00", "$0.00", "$0.00",
    ]]  # fmt: skip


def test_a_statement_says_how_to_question_it_when_kit_yaml_does(workspace, tmp_path):
    pages = statements(workspace, tmp_path, ROWS)
    assert "To question a line" not in pages["search"]  # kit.yaml says nothing: nor does it
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, disputes: 'Reply to finops@example.com "
        "within 10 days & name the line.'}",
    )
    config = workspace(ROWS, kit=kit)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    folder = tmp_path / "reports" / "again"
    write_evidence(folder, ledger, {"period": "2026-10"})
    page = {p.stem: p.read_text() for p in write_statements(folder)}["search"]
    assert (
        '<p class="ak-disputes"><strong>To question a line:</strong> Reply to '
        "finops@example.com within 10 days &amp; name the line.</p>"
    ) in page
