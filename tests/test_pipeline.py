"""The ledger pipeline: attribution statuses, de-duplication, pricing and allocation, exactly."""

from decimal import Decimal

import duckdb
import numpy as np
import pytest

from allocation_kit.attribute import hash_table
from allocation_kit.config import load_workspace
from allocation_kit.errors import ConfigError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger

from .conftest import PRICING, REGISTRY, request


def run(workspace, rows, period="2026-10", **files):
    return period_ledger(load_workspace(workspace(rows, **files)), parse_period(period))


def lines(ledger):
    """(status, team, application, requests, cost) of every allocation line."""
    return [
        (line.allocation_status, line.team, line.application, line.requests, line.cost)
        for line in ledger.allocation
    ]


def test_application_tag_allocates_to_the_application_owner(workspace):
    ledger = run(workspace, [request("r1", team=None)])
    line = ledger.allocation[0]
    assert (line.allocation_status, line.team, line.business_unit, line.cost_center) == (
        "allocated", "search", "product", "CC-100"
    )  # fmt: skip
    assert (line.allocation_rule, line.cost) == ("direct: application owner", Decimal("0.0014"))


def test_team_tag_alone_allocates_to_the_team(workspace):
    ledger = run(workspace, [request("r1", team="support", application=None)])
    assert lines(ledger) == [("allocated", "support", None, 1, Decimal("0.0014"))]
    assert ledger.allocation[0].allocation_rule == "direct: team tag"


@pytest.mark.parametrize(
    ("tags", "status", "detail"),
    [
        ({"team": None, "application": None}, "untagged", "no team and no application tag"),
        ({"application": "ghost-app"}, "unknown_owner",
         "application ghost-app is not in the registry"),
        # both ids unknown: both named, so that one edit of the registry settles it
        ({"team": "marketing", "application": "ghost-app"}, "unknown_owner",
         "application ghost-app is not in the registry, nor is team marketing"),
        ({"team": "marketing", "application": None}, "unknown_owner",
         "team marketing is not in the registry"),
        # an id the registry lacks is unknown, not a disagreement with the application's team
        ({"team": "marketing", "application": "ticket-bot"}, "unknown_owner",
         "team marketing is not in the registry (application ticket-bot is owned by support)"),
        # a tag differing from a registered id only in case says which id it may mean
        ({"team": "Search", "application": None}, "unknown_owner",
         "team Search is not in the registry (did you mean search?)"),
        ({"team": "support", "application": "Ticket-Bot"}, "unknown_owner",
         "application Ticket-Bot is not in the registry (did you mean ticket-bot?)"),
        ({"team": "search", "application": "ticket-bot"}, "conflict",
         "team tag search disagrees with application ticket-bot owned by support"),
        ({"cached_input_tokens": 1001}, "quarantined",
         "cached_input_tokens + cache_write_tokens exceed input_tokens"),
        ({"reasoning_tokens": 101}, "quarantined", "reasoning_tokens exceed output_tokens"),
    ],
)  # fmt: skip
def test_each_unallocated_status_keeps_its_cost_visible(workspace, tags, status, detail):
    ledger = run(workspace, [request("r1", **tags)])
    line = ledger.allocation[0]
    assert (line.allocation_status, line.team, line.business_unit) == (status, None, None)
    assert line.allocation_rule == f"unallocated: {status.replace('_', ' ')}"
    queue = ledger.con.execute("SELECT request_id, allocation_status, detail FROM lines").fetchall()
    assert queue == [("r1", status, detail)]
    assert ledger.ledger_cost == line.cost


def test_a_team_among_those_sharing_an_application_is_no_conflict(workspace):
    ledger = run(workspace, [request("r1", application="gateway-fixed", team="support")])
    assert {line.allocation_status for line in ledger.allocation} == {"shared"}


def test_registry_aliases_read_other_names_of_a_team_and_an_application(workspace):
    # LiteLLM logs a team's UUID when the key has no team alias; a renamed service keeps
    # logging its old id for a while
    registry = (
        REGISTRY.replace("budget_owner: search-lead}", "budget_owner: search-lead,\n"
                         "      aliases: [0b7e6c2a-1f4d-4c8e-9a31-5d2f7e8b9c10]}")
        .replace("{id: ticket-bot, team: support}",
                 "{id: ticket-bot, team: support, aliases: [helpdesk-bot]}")
    )  # fmt: skip
    rows = [
        request("r1", team="0b7e6c2a-1f4d-4c8e-9a31-5d2f7e8b9c10", application=None),
        request("r2", team="support", application="helpdesk-bot"),
        request("r3", team="search", application="helpdesk-bot"),  # a conflict all the same
        request("r4", team="support", application="ticket-bot"),
    ]
    ledger = run(workspace, rows, registry=registry)
    assert lines(ledger) == [
        ("allocated", "support", "ticket-bot", 2, Decimal("0.0028")),
        ("allocated", "search", None, 1, Decimal("0.0014")),
        ("conflict", None, "ticket-bot", 1, Decimal("0.0014")),
    ]
    assert ledger.con.execute("SELECT detail FROM lines WHERE request_id = 'r3'").fetchall() == [
        ("team tag search disagrees with application ticket-bot owned by support",)
    ]


def test_an_environment_alias_reads_the_ledgers_other_name_as_the_registered_one(workspace):
    # old logs spell production "prod": registered as its alias, they are production's
    registry = REGISTRY.replace(
        "environments: [production, staging]",
        "environments: [{id: production, aliases: [prod, PROD]}, staging]",
    )
    rows = [
        request("r1", environment="prod"),
        request("r2", environment="PROD"),
        request("r3"),
        request("r4", environment="staging"),
    ]
    ledger = run(workspace, rows, registry=registry)
    assert ledger.counts.quarantined == 0
    assert ledger.con.execute(
        "SELECT environment, count(*) FROM requests GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [("production", 3), ("staging", 1)]
    failed = [r.name for s in ledger.validation for r in s.results if r.success is False]
    assert "environment_registered" not in failed


def test_a_registered_caller_owns_its_untagged_requests_and_never_overrides_a_tag(workspace):
    # the gateway owner knows whose API keys send no tags: key-legacy-cron is ticket-bot's
    registry = REGISTRY.replace(
        "{id: ticket-bot, team: support}",
        "{id: ticket-bot, team: support, callers: [key-legacy-cron]}",
    )
    rows = [
        request("r1", team=None, application=None, caller_id="key-legacy-cron"),  # ticket-bot's
        request("r2", team="search", application=None, caller_id="key-legacy-cron"),  # a tag wins
        request("r3", team=None, application=None, caller_id="key-personal-7f3a"),  # not listed
    ]
    ledger = run(workspace, rows, registry=registry)
    assert lines(ledger) == [
        ("allocated", "support", "ticket-bot", 1, Decimal("0.0014")),
        ("allocated", "search", None, 1, Decimal("0.0014")),
        ("untagged", None, None, 1, Decimal("0.0014")),
    ]


def test_a_caller_belongs_to_one_application(workspace):
    registry = REGISTRY.replace(
        "{id: search-api, team: search}", "{id: search-api, team: search, callers: [svc-a]}"
    ).replace(
        "{id: ticket-bot, team: support}", "{id: ticket-bot, team: support, callers: [svc-a]}"
    )
    with pytest.raises(ConfigError) as caught:
        run(workspace, [request("r1")], registry=registry)
    assert caught.value.line().endswith(
        "registry.yaml: applications[1] (ticket-bot).callers: 'svc-a' is already a caller of "
        "search-api; a caller's untagged requests belong to one application"
    )


def test_identical_duplicates_count_once_and_are_reported(workspace):
    ledger = run(workspace, [request("r1"), request("r1"), request("r1"), request("r2")])
    assert lines(ledger) == [("allocated", "search", "search-api", 2, Decimal("0.0028"))]
    assert (ledger.counts.attempted, ledger.counts.duplicate_copies) == (2, 2)


def test_same_request_id_with_different_content_quarantines_every_copy(workspace):
    ledger = run(workspace, [request("r1"), request("r1", output_tokens=200), request("r2")])
    assert lines(ledger) == [
        ("allocated", "search", "search-api", 1, Decimal("0.0014")),
        ("quarantined", None, "search-api", 2, Decimal("0.0032")),
    ]
    detail = ledger.con.execute(
        "SELECT DISTINCT detail FROM lines WHERE request_id = 'r1'"
    ).fetchall()
    assert detail == [("request_id logged 2 times with different content",)]


def test_the_price_in_effect_at_the_timestamp_applies(workspace):
    ledger = run(workspace, [
        request("before", timestamp="2026-10-14T23:59:59Z"),
        request("after", timestamp="2026-10-15T00:00:00Z"),
    ])  # fmt: skip
    costs = ledger.con.execute(
        "SELECT strftime(day, '%d'), cost FROM lines ORDER BY day"
    ).fetchall()
    assert costs == [("14", Decimal("0.0014")), ("15", Decimal("0.00112"))]


def test_a_price_change_inside_a_day_prices_each_side_of_it(workspace):
    # Ordinary rows are grouped before they meet the prices: a change at noon splits the day.
    pricing = PRICING.replace("2026-10-15\n", "2026-10-15T12:00:00Z\n")
    ledger = run(workspace, [
        request("morning-1", timestamp="2026-10-15T08:00:00Z"),
        request("morning-2", timestamp="2026-10-15T11:59:59Z"),
        request("noon", timestamp="2026-10-15T12:00:00Z"),
        request("evening", timestamp="2026-10-15T20:00:00Z"),
    ], pricing=pricing)  # fmt: skip
    rows = ledger.con.execute(
        "SELECT requests, cost FROM lines WHERE request_id IS NULL ORDER BY cost"
    ).fetchall()
    # 2 × 0.0014 at the old prices, 2 × 0.00112 at the new ones
    assert rows == [(2, Decimal("0.00224")), (2, Decimal("0.0028"))]
    assert ledger.ledger_cost == Decimal("0.00504")


@pytest.mark.parametrize(
    ("values", "cost"),
    [
        # 600 uncached × 1.00 + 400 cached × 0.50 + 100 output × 4.00, per 1M
        ({"cached_input_tokens": 400}, "0.0012"),
        # 1000 × 2.00 + 200 plain output × 8.00 + 300 reasoning × 10.00
        ({"model": "reasoner", "output_tokens": 500, "reasoning_tokens": 300}, "0.0066"),
        # 2000 uncached × 3.00 + 6000 cache reads × 0.30 + 2000 cache writes × 3.75 + 1000 × 15.00
        ({"model": "cacher", "input_tokens": 10000, "cached_input_tokens": 6000,
          "cache_write_tokens": 2000, "output_tokens": 1000}, "0.0303"),
        ({"model": "painter", "input_tokens": 0, "output_tokens": 0}, "0.04"),
        ({"status_code": 500}, "0"),
        ({"model": "painter", "status_code": 429}, "0"),
    ],
)  # fmt: skip
def test_token_semantics_and_per_call_prices(workspace, values, cost):
    ledger = run(workspace, [request("r1", **values)])
    assert ledger.ledger_cost == Decimal(cost)


def test_prices_within_the_snapshots_bounds_never_overflow_64_bits(workspace):
    """$10,000 per 1M tokens (LiteLLM lists $9,710) on 10⁹ tokens is 10¹⁹ picodollars, and a
    $10M call 10¹⁹ too: both past 64 bits, once a multi-line DuckDB overflow error."""
    pricing = PRICING + (
        "  - model: dear\n    effective_from: 2026-01-01\n"
        "    per_1m_tokens: {input: 10000, output: 0.6}\n    per_call: 10000000\n"
    )
    rows = [
        request("d1", model="dear", input_tokens=1_000_000_000, output_tokens=0),
        # an itemised (untagged) copy: its cost is computed row by row, not from group sums
        request("d2", model="dear", input_tokens=1_000_000_000, output_tokens=1_000_000,
                team=None, application=None),
    ]  # fmt: skip
    ledger = run(workspace, rows, pricing=pricing)
    # 10,000,000 + 10,000,000 per call; 10⁹ × 10,000/10⁶ twice; 10⁶ × 0.6/10⁶
    assert ledger.ledger_cost == Decimal("40000000.6")
    assert ledger.cost_by_status() == {
        "allocated": Decimal("20000000"), "untagged": Decimal("20000000.6")
    }  # fmt: skip


def test_failed_calls_are_counted_and_free_by_default(workspace):
    ledger = run(workspace, [
        request("a1", status_code=429, idempotency_key="k1"),
        request("a2", status_code=200, idempotency_key="k1"),
    ])  # fmt: skip
    counts = ledger.counts
    assert (counts.attempted, counts.successful, counts.failed, counts.billable) == (2, 1, 1, 1)
    assert counts.logical_calls == 1
    assert ledger.ledger_cost == Decimal("0.0014")


@pytest.mark.parametrize("with_column", [False, True])
def test_without_idempotency_keys_each_request_id_is_one_logical_call(workspace, with_column):
    """With no idempotency_key column (or only empty keys), a logged duplicate is still one
    call and a row outside the period is none."""
    extra = {"idempotency_key": None} if with_column else {}
    rows = [
        request("a1", status_code=429, **extra),
        request("a2", **extra),
        request("a2", **extra),
        request("a3", timestamp="2026-11-02T00:00:00Z", **extra),
    ]
    counts = run(workspace, rows).counts
    assert (counts.attempted, counts.duplicate_copies, counts.logical_calls) == (2, 1, 2)


def test_failed_calls_billable_prices_them(workspace):
    pricing = PRICING.replace("failed_calls_billable: false", "failed_calls_billable: true")
    ledger = run(workspace, [request("a1", status_code=500), request("a2")], pricing=pricing)
    assert (ledger.counts.billable, ledger.ledger_cost) == (2, Decimal("0.0028"))


def test_a_model_without_a_price_is_an_exception_never_a_zero(workspace):
    ledger = run(workspace, [request("r1", model="mystery-model"), request("r2")])
    assert ledger.counts.unpriced == 1
    assert ledger.ledger_cost == Decimal("0.0014")
    line = ledger.allocation[0]
    assert (line.requests, line.unpriced_requests, line.cost) == (2, 1, Decimal("0.0014"))


def test_rows_outside_the_period_are_excluded_and_counted(workspace):
    ledger = run(workspace, [
        request("edge", timestamp="2026-09-30T23:30:00Z"),
        request("far", timestamp="2026-08-15T12:00:00Z"),
        request("next", timestamp="2026-11-01T00:00:00Z"),
        request("in", timestamp="2026-10-31T23:59:59Z"),
    ])  # fmt: skip
    counts = ledger.counts
    assert (counts.rows_read, counts.out_of_period, counts.in_period, counts.attempted) == (
        4,
        3,
        1,
        1,
    )
    assert ledger.out_of_period_by_file == {"requests.csv": 3}


def test_a_file_is_the_periods_own_when_its_rows_far_outside_are_few():
    from allocation_kit.pipeline import own_file

    # (inside, outside, of which more than 14 hours outside)
    assert own_file(3, 1, 0)  # a late row beside three: logged just after the period
    assert own_file(108_353, 10, 0)  # a month's file and the rows logged just before it
    # a month exported by local time (UTC−5): five hours of the next month, all near
    assert own_file(100_000, 700, 0)
    assert own_file(9_000, 1_000, 100) and own_file(900, 100, 90)  # far: at most 100, a tenth
    assert not own_file(9_000, 1_000, 101)  # more than 100 far outside
    # 2026-10-05..2026-10-20 against a small October file (198 rows, 96 outside, 80 far): the
    # 100 rows allowed once made the rest of its month strays
    assert not own_file(102, 96, 80)
    # 2026-10-01..2026-10-29 against October's file: 30 and 31 October are no strays
    assert not own_file(93_500, 6_500, 4_500)
    assert not own_file(1, 1, 0) and not own_file(0, 0, 0)  # not even most of its rows


def test_the_rest_of_a_month_beside_a_date_range_is_counted_not_listed(workspace, tmp_path):
    from allocation_kit.report import write_evidence

    inside = [request(f"in{i}", timestamp="2026-10-10T12:00:00Z") for i in range(150)]
    later = [request(f"late{i}", timestamp="2026-10-25T12:00:00Z") for i in range(20)]
    ledger = run(workspace, inside + later, period="2026-10-01..2026-10-15")
    assert ledger.rows_by_file == {"requests.csv": (150, 20)}
    assert ledger.period_files == []  # 20 rows ten days out: more than a tenth of 170
    write_evidence(tmp_path / "out", ledger, {"period": ledger.period.label})
    queue = (tmp_path / "out" / "evidence" / "exceptions.csv").read_text()
    assert "out_of_period" not in queue
    # rows logged within 14 hours of the end are the period's own, however many: listed
    near = [request(f"late{i}", timestamp="2026-10-16T13:59:59Z") for i in range(20)]
    ledger = run(workspace, [*inside, *near], period="2026-10-01..2026-10-15")
    assert ledger.period_files == ["requests.csv"]


def test_fixed_split_follows_the_percentages(workspace):
    ledger = run(workspace, [request("r1", application="gateway-fixed", team=None)])
    assert [
        (line.team, line.requests, line.input_tokens, line.cost) for line in ledger.allocation
    ] == [
        ("support", 0, 300, Decimal("0.00042")),
        ("search", 1, 700, Decimal("0.00098")),
    ]
    assert ledger.allocation[0].allocation_rule == "shared: fixed split (search 70%, support 30%)"


def test_proportional_split_weighs_by_direct_tokens(workspace):
    rows = [request(f"s{i}") for i in range(3)]  # search: 3 × 1,100 direct tokens
    rows += [request("t1", team="support", application="ticket-bot")]  # support: 1,100
    rows += [request("g1", application="gateway-prop", team=None)]
    ledger = run(workspace, rows)
    shared = [
        (line.team, line.cost) for line in ledger.allocation if line.allocation_status == "shared"
    ]
    assert shared == [("support", Decimal("0.00035")), ("search", Decimal("0.00105"))]
    rule = {
        line.allocation_rule for line in ledger.allocation if line.allocation_status == "shared"
    }
    assert rule == {
        "shared: proportional to the direct billable input + output tokens of search, support in "
        "the period (all environments)"
    }


def test_proportional_split_leaves_out_failed_calls_and_counts_unpriced_ones(workspace):
    """Failed attempts cost nothing, so they earn a team no share of the gateway; a call without
    a price is billed by the provider, so its tokens weigh."""
    rows = [request("s1")]  # search: 1,100 billable tokens
    rows += [request(f"s-fail{i}", status_code=429) for i in range(5)]  # not billable
    rows += [request("t1", team="support", application="ticket-bot", model="mystery-model")]
    rows += [request("g1", application="gateway-prop", team=None)]  # $0.0014 to split 1:1
    ledger = run(workspace, rows)
    shared = [
        (line.team, line.requests, line.input_tokens, line.cost)
        for line in ledger.allocation
        if line.allocation_status == "shared"
    ]
    assert shared == [("support", 0, 500, Decimal("0.0007")), ("search", 1, 500, Decimal("0.0007"))]


def test_proportional_split_without_direct_usage_falls_back_to_even(workspace):
    ledger = run(workspace, [request("g1", application="gateway-prop", team=None)])
    assert [(line.team, line.cost) for line in ledger.allocation] == [
        ("support", Decimal("0.0007")), ("search", Decimal("0.0007"))
    ]  # fmt: skip
    assert ledger.allocation[0].allocation_rule == (
        "shared: even across search, support (no direct tokens to weigh by)"
    )


def test_even_split_hands_leftover_units_by_largest_remainder(workspace):
    ledger = run(workspace, [request("g1", application="gateway-even", team=None)])
    shares = {line.team: line.cost for line in ledger.allocation}
    assert shares == {
        "platform": Decimal("0.000466666667"),
        "search": Decimal("0.000466666667"),
        "support": Decimal("0.000466666666"),
    }
    assert sum(shares.values()) == ledger.ledger_cost == Decimal("0.0014")


def test_hash_table_hands_duckdb_every_64_bit_value():
    values = np.array([2**64 - 1, 0, 2**63, 12345], dtype=np.uint64)
    con = duckdb.connect()
    con.register("hashes", hash_table(values))
    assert con.execute("SELECT h FROM hashes").fetchall() == [
        (2**64 - 1,), (0,), (2**63,), (12345,)
    ]  # fmt: skip
    assert con.execute("SELECT typeof(h) FROM hashes LIMIT 1").fetchone() == ("UBIGINT",)


def test_the_progress_names_unpriced_calls_where_the_run_is_watched(workspace):
    rows = [request("r1"), request("r2", model="mystery-model"), request("r3", model="zz-model")]
    said: list[str] = []
    ws = load_workspace(workspace(rows))
    period_ledger(ws, parse_period("2026-10"), progress=said.append, validate=False)
    [allocate] = [line for line in said if line.startswith("allocate")]
    assert allocate.endswith("2 billable calls without a price in effect (mystery-model, zz-model)")


def test_a_failed_call_logged_without_usage_is_an_attempt_with_no_tokens(workspace):
    # app logs leave usage blank on 4xx/5xx: counted as a failed attempt, never a broken row
    blank = {"input_tokens": "", "output_tokens": "", "cached_input_tokens": ""}
    rows = [request("r1"), request("r2", status_code=503, **blank)]
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"), validate=False)
    assert (ledger.counts.attempted, ledger.counts.failed, ledger.counts.successful) == (2, 1, 1)
    assert ledger.con.execute(
        "SELECT input_tokens, output_tokens, cached_input_tokens FROM requests "
        "WHERE request_id = 'r2'"
    ).fetchall() == [(0, 0, 0)]
    assert ledger.ledger_cost == Decimal("0.001400000000")  # r1 alone: 1,000 in + 100 out
