"""Unit economics: each denominator kind, definition changes, zero denominators, bad definitions."""

import csv
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from allocation_kit.config import load_workspace
from allocation_kit.economics import UNIT_ECONOMICS_COLUMNS, unit_economics, unit_economics_rows
from allocation_kit.errors import ConfigError, InputError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger

from .conftest import KIT, request

UNIT = """\
cost_units:
  - name: {name}
    numerator: {numerator}
    denominator: {denominator}
    owner: search-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-04-28
"""

# chat-small before 2026-10-15 costs 0.001 per 1,000 input and 0.0004 per 100 output tokens:
# every default request costs 0.0014.
ROWS = [
    request("r1", job_id="j1"),
    request("r1", job_id="j1"),  # an identical logging duplicate: counted once
    request("r2", job_id="j1"),
    request("r3", job_id="j2"),
    request("r4", job_id="j3", team="support", application="ticket-bot"),  # not matched
    request("r5", job_id="j4", status_code=500),  # failed, not billable: in neither number
]


def units(tmp_path, workspace, rows, definitions, period="2026-10", events=None):
    config = workspace(rows, kit=KIT + "cost_units: cost_units.yaml\n")
    (tmp_path / "cost_units.yaml").write_text(definitions)
    if events is not None:
        (tmp_path / "events.csv").write_text(textwrap.dedent(events))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period(period), validate=False)
    return unit_economics(ledger, ws.cost_units, tmp_path / "reports")


def one(name="u", numerator="{application: search-api}", denominator="{count: requests}"):
    return UNIT.format(name=name, numerator=numerator, denominator=denominator)


@pytest.mark.parametrize(
    ("denominator", "value", "kind", "unit_cost"),
    [
        ("{distinct: job_id}", Decimal(2), "distinct job_id", Decimal("0.002100000000")),
        ("{count: requests}", Decimal(3), "requests", Decimal("0.001400000000")),
        ("{sum: output_tokens, per: 1000}", Decimal("0.3"), "output_tokens per 1,000",
         Decimal("0.014000000000")),
        ("{sum: total_tokens}", Decimal(3300), "total_tokens", Decimal("0.000001272727")),
        ("{events: events.csv, column: orders}", Decimal(8), "events: orders",
         Decimal("0.000525000000")),
    ],
)  # fmt: skip
def test_each_denominator_kind(tmp_path, workspace, denominator, value, kind, unit_cost):
    events = """\
        date,orders
        2026-09-30,100
        2026-10-01,5
        2026-10-31T23:00:00,3
        2026-11-01,7
    """
    [u] = units(tmp_path, workspace, ROWS, one(denominator=denominator), events=events)
    assert (u.numerator_cost, u.denominator_value, u.denominator_kind) == (
        Decimal("0.004200000000"), value, kind
    )  # fmt: skip
    assert (u.unit_cost, u.matching_requests, u.unpriced_requests) == (unit_cost, 3, 0)
    assert (u.previous_unit_cost, u.change_pct, u.definition_changed, u.note) == (
        None, None, False, ""
    )  # fmt: skip


def test_an_events_column_named_with_a_quote_is_read(tmp_path, workspace):
    """The name went into the SQL unescaped: a multi-line parser error."""
    events = 'date,"orders ""net"""\n2026-10-01,5\n'
    definition = one(denominator="{events: events.csv, column: 'orders \"net\"'}")
    [u] = units(tmp_path, workspace, ROWS, definition, events=events)
    assert (u.denominator_value, u.denominator_kind) == (Decimal(5), 'events: orders "net"')


def test_an_events_file_that_is_not_utf8_names_its_line(tmp_path, workspace):
    config = workspace(ROWS, kit=KIT + "cost_units: cost_units.yaml\n")
    (tmp_path / "cost_units.yaml").write_text(one(denominator="{events: events.csv, column: n}"))
    (tmp_path / "events.csv").write_bytes("date,n,note\n2026-10-01,5,café\n".encode("latin-1"))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    with pytest.raises(InputError) as caught:
        unit_economics(ledger, ws.cost_units, tmp_path / "reports")
    assert caught.value.line() == (
        f"{tmp_path / 'events.csv'}: line 2: byte 0xe9 at column 17 is not UTF-8 text; expected "
        "a file saved as UTF-8"
    )


def test_numerator_filters_combine_columns_and_lists(tmp_path, workspace):
    rows = [
        request("a", feature="answer"),
        request("b", feature="rewrite", environment="staging"),
        request("c", feature="rewrite"),
        request("d", feature="other"),
    ]
    definition = one(numerator="{feature: [answer, rewrite], environment: production}")
    [u] = units(tmp_path, workspace, rows, definition)
    assert (u.numerator_cost, u.denominator_value, u.numerator_filter) == (
        Decimal("0.002800000000"), Decimal(2),
        "feature = answer or rewrite; environment = production",
    )  # fmt: skip


def write_previous(tmp_path: Path, period: str, rows: list[dict]) -> None:
    folder = tmp_path / "reports" / period / "evidence"
    folder.mkdir(parents=True)
    with (folder / "unit_economics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=UNIT_ECONOMICS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_change_against_the_previous_period_with_the_same_definition(tmp_path, workspace):
    sept = [request(f"s{i}", timestamp="2026-09-10T12:00:00Z") for i in range(4)]
    [before] = units(tmp_path, workspace, sept, one(), period="2026-09")
    write_previous(tmp_path, "2026-09", unit_economics_rows([before]))
    october = [request("o1"), request("o2", timestamp="2026-10-20T00:00:00Z")]
    [u] = units(tmp_path, workspace, october, one())
    # September: 4 × 0.0014 / 4; October: (0.0014 + 0.00112) / 2 = 0.00126
    assert (u.unit_cost, u.previous_unit_cost, u.change_pct) == (
        Decimal("0.001260000000"), Decimal("0.001400000000"), Decimal("-10.00")
    )  # fmt: skip
    assert not u.definition_changed


@pytest.mark.parametrize("unpriced_in", ["2026-09", "2026-10"])
def test_a_unit_cost_that_leaves_out_unpriced_requests_gives_no_change(
    tmp_path, workspace, unpriced_in
):
    sept = [request(f"s{i}", timestamp="2026-09-10T12:00:00Z") for i in range(2)]
    october = [request("o1"), request("o2")]
    (sept if unpriced_in == "2026-09" else october).append(
        request("x", model="mystery", timestamp=f"{unpriced_in}-10T12:00:00Z")
    )
    definition = one(numerator="{model: [chat-small, mystery]}")
    [before] = units(tmp_path, workspace, sept, definition, period="2026-09")
    write_previous(tmp_path, "2026-09", unit_economics_rows([before]))
    [u] = units(tmp_path, workspace, october, definition)
    assert (u.previous_unit_cost, u.change_pct) == (before.unit_cost, None)
    assert u.note.endswith(
        f"no change against 2026-09 is given: the unit cost of {unpriced_in} leaves out "
        "unpriced requests"
    )


def test_a_changed_definition_is_flagged_and_not_compared(tmp_path, workspace):
    sept = [request("s1", timestamp="2026-09-10T12:00:00Z")]
    [before] = units(tmp_path, workspace, sept, one(), period="2026-09")
    write_previous(tmp_path, "2026-09", unit_economics_rows([before]))
    changed = one(numerator="{application: search-api, environment: production}")
    [u] = units(tmp_path, workspace, [request("o1")], changed)
    assert (u.unit_cost, u.previous_unit_cost, u.change_pct, u.definition_changed) == (
        Decimal("0.001400000000"), Decimal("0.001400000000"), None, True
    )  # fmt: skip
    assert u.note == "definition changed since 2026-09: not comparable with its unit cost"
    assert u.definition_sha256 != before.definition_sha256
    # who owns or describes it is not part of the definition
    reworded = changed.replace("owner: search-lead", "owner: cto")
    [again] = units(tmp_path, workspace, [request("o1")], reworded)
    assert again.definition_sha256 == u.definition_sha256


def test_a_zero_denominator_gives_an_explained_empty_unit_cost(tmp_path, workspace):
    events = """\
        date,orders
        2026-09-30,100
    """
    definition = one(denominator="{events: events.csv, column: orders}")
    [u] = units(tmp_path, workspace, ROWS, definition, events=events)
    assert (u.numerator_cost, u.denominator_value, u.unit_cost) == (
        Decimal("0.004200000000"), Decimal(0), None
    )  # fmt: skip
    assert u.note == "no events: orders in the period: the unit cost is not defined (÷ 0)"
    [row] = unit_economics_rows([u])
    assert (row["unit_cost"], row["denominator_value"], row["change_pct"]) == ("", "0", "")


def test_no_matching_rows_and_unpriced_rows_are_explained(tmp_path, workspace):
    rows = [request("a", model="mystery"), request("b")]
    defs = one(name="a", numerator="{model: [mystery, chat-small]}") + one(
        name="b", numerator="{team: platform}"
    ).replace("cost_units:\n", "")
    first, second = units(tmp_path, workspace, rows, defs)
    assert (first.numerator_cost, first.unit_cost, first.unpriced_requests) == (
        Decimal("0.001400000000"), Decimal("0.000700000000"), 1
    )  # fmt: skip
    assert first.note == "1 matching request(s) have no price: the unit cost is understated"
    assert (second.matching_requests, second.unit_cost) == (0, None)
    assert second.note == (
        "no requests in the period: the unit cost is not defined (÷ 0); "
        "no billable ledger rows match the numerator"
    )


@pytest.mark.parametrize(
    ("numerator", "denominator", "where", "expected"),
    [
        ("{colour: blue}", "{count: requests}", "cost_units[0] (u).numerator.colour",
         "unknown key; expected one of team, application, feature, model, environment, "
         "workload_class, endpoint"),
        ("{application: ghost}", "{count: requests}", "cost_units[0] (u).numerator.application",
         "unknown application 'ghost'; expected one of gateway-even, gateway-fixed, "
         "gateway-prop, search-api, ticket-bot"),
        ("{}", "{count: requests, distinct: job_id}", "cost_units[0] (u).denominator",
         "expected exactly one of distinct, count, sum or events (got distinct, count)"),
        ("{}", "{events: missing.csv, column: orders}", "cost_units[0] (u).denominator.events",
         "events file 'missing.csv' not found (relative to {root}); expected a CSV with "
         "columns date and orders"),
        # a folder of that name is no events file, and is not "not found" either
        ("{}", "{events: folder.csv, column: orders}", "cost_units[0] (u).denominator.events",
         "events file 'folder.csv' is a folder (relative to {root}); expected a CSV with "
         "columns date and orders"),
        ("{}", "{events: events.csv}", "cost_units[0] (u).denominator.column",
         "an events denominator needs the column to add up"),
    ],
)  # fmt: skip
def test_bad_definitions_are_one_line(tmp_path, workspace, numerator, denominator, where, expected):
    config = workspace([request("r1")], kit=KIT + "cost_units: cost_units.yaml\n")
    (tmp_path / "cost_units.yaml").write_text(one(numerator=numerator, denominator=denominator))
    (tmp_path / "events.csv").write_text("date,orders\n")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_workspace(config)
    assert caught.value.line() == (
        f"{tmp_path / 'cost_units.yaml'}: {where}: {expected.format(root=tmp_path)}"
    )
    assert caught.value.exit_code == 2


def test_an_events_file_without_the_column_or_with_bad_values_names_it(tmp_path, workspace):
    definition = one(denominator="{events: events.csv, column: orders}")
    with pytest.raises(InputError) as caught:
        units(tmp_path, workspace, ROWS, definition, events="date,tickets\n2026-10-01,4\n")
    assert caught.value.line() == (
        f"{tmp_path / 'events.csv'}: missing column 'orders' (named in cost_units.yaml, unit u); "
        "columns found: date, tickets"
    )
    with pytest.raises(InputError) as caught:
        units(tmp_path, workspace, ROWS, definition, events="date,orders\n2026-10-01,4\nx,-1\n")
    assert caught.value.line() == (
        f"{tmp_path / 'events.csv'}: row 2 (line 3): expected a date in 'date' and a number ≥ 0 "
        "in 'orders', got 'x' and '-1'"
    )
    with pytest.raises(InputError) as caught:  # an empty cell is said so, not as None
        units(tmp_path, workspace, ROWS, definition, events="date,orders\n2026-10-01,\n")
    assert caught.value.line() == (
        f"{tmp_path / 'events.csv'}: row 1 (line 2): expected a date in 'date' and a number ≥ 0 "
        "in 'orders', got '2026-10-01' and an empty cell"
    )


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ("date,orders\n2026-10-01,100\n2026-10-05\n2026-10-06,5\n",
         "row 2 (line 3): got 1 field, expected 2 like the header"),
        ("", "the file is empty"),
    ],
)  # fmt: skip
def test_a_ragged_or_empty_events_file_says_so(tmp_path, workspace, events, expected):
    definition = one(denominator="{events: events.csv, column: orders}")
    with pytest.raises(InputError) as caught:
        units(tmp_path, workspace, ROWS, definition, events=events)
    assert caught.value.line() == f"{tmp_path / 'events.csv'}: {expected}"


def test_the_manifest_hashes_the_cost_units_and_their_events_files(tmp_path, workspace):
    import hashlib

    from allocation_kit.report import input_files

    config = workspace(ROWS, kit=KIT + "cost_units: cost_units.yaml\n")
    (tmp_path / "cost_units.yaml").write_text(one(denominator="{events: events.csv, column: n}"))
    (tmp_path / "events.csv").write_text("date,n\n2026-10-01,4\n")
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    inputs = input_files(ledger)
    assert [(i["role"], i["path"]) for i in inputs] == [
        ("config", "kit.yaml"),
        ("registry", "registry.yaml"),
        ("pricing", "pricing.yaml"),
        ("requests", "requests.csv"),
        ("cost_units", "cost_units.yaml"),
        ("events", "events.csv"),
    ]
    assert inputs[-1]["bytes"] == 20
    assert inputs[-1]["sha256"] == hashlib.sha256(b"date,n\n2026-10-01,4\n").hexdigest()
