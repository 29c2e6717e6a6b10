"""validate: the GX suites on the ledger (GX's SQL engine on DuckDB), the billing export, the
registry and the pricing snapshot; failing rows as SQL; errors; evidence and terminal output."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml

from allocation_kit.config import load_workspace
from allocation_kit.errors import ConfigError
from allocation_kit.load import connect, load_requests
from allocation_kit.periods import parse_period
from allocation_kit.validate import (
    default_suites_dir,
    failing_rows_sql,
    pricing_frame,
    quarantine_conditions,
    registry_frame,
    suite_parameters,
    validation_document,
    validation_results,
    validation_table,
)

from .conftest import PRICING, REGISTRY, request

SUITES = default_suites_dir()
PERIOD = parse_period("2026-10")
CLEAN = [request(f"r{i}") for i in range(4)]


def ledger(workspace, rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """A connection with the view `requests` over the ledger rows, as the loader builds it."""
    ws = load_workspace(workspace(rows))
    con = connect()
    load_requests(con, ws.kit.requests, ws.root, ws.config_path.name)
    return con


def parameters(registry: str = REGISTRY, mostly: float = 0.95) -> dict:
    return suite_parameters(PERIOD, yaml.safe_load(textwrap.dedent(registry)), "USD", mostly)


def outcome(suite) -> dict[str, tuple]:
    """Expectation name -> (success, element_count, unexpected_count)."""
    return {r.name: (r.success, r.element_count, r.unexpected_count) for r in suite.results}


def only_failures(suite, failures: dict[str, tuple[int | None, int | None]]) -> None:
    """Exactly `failures` fail, with those (element_count, unexpected_count); the rest pass."""
    for r in suite.results:
        if r.name in failures:
            assert (r.success, r.element_count, r.unexpected_count) == (False, *failures[r.name])
        else:
            assert r.success is True, r.name
            assert r.unexpected_count in (0, None), r.name
    assert set(failures) <= {r.name for r in suite.results}


# --- requests ------------------------------------------------------------------------------------


def test_clean_ledger_passes_every_requests_expectation(workspace):
    """Four well-formed requests: every expectation passes and counts all four rows."""
    con = ledger(workspace, CLEAN)
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    assert (suite.name, suite.blocking, suite.target, suite.success) == (
        "requests",
        False,
        "requests",
        True,
    )
    counts = outcome(suite)
    assert counts.pop("canonical_columns_present") == (True, None, None)
    assert counts == {name: (True, 4, 0) for name in counts}
    assert len(counts) == 17


@pytest.mark.parametrize(
    ("extra_rows", "failures"),
    [
        ([request("r0")], {"request_id_unique": (5, 2)}),
        (
            [
                request("late", timestamp="2026-11-01T00:00:00Z"),
                request("early", timestamp="2026-09-30T23:59:59Z"),
            ],
            {"timestamp_in_period": (6, 2)},
        ),
        ([request("c", cached_input_tokens=1001)], {"cached_within_input": (5, 1)}),
        ([request("r", reasoning_tokens=101)], {"reasoning_within_output": (5, 1)}),
        (
            [request("s", status_code=99), request("t", status_code=600)],
            {"status_code_http": (6, 2)},
        ),
        ([request("e", environment="prod")], {"environment_registered": (5, 1)}),
        ([request("w", workload_class="training")], {"workload_class_registered": (5, 1)}),
        ([request("u", team="nobody")], {"team_registered": (5, 1)}),
        ([request("a", application="mystery")], {"application_registered": (5, 1)}),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_each_requests_expectation_fails_on_its_defect(workspace, extra_rows, failures):
    """A ledger with one kind of defect fails exactly that expectation, with exact counts."""
    con = ledger(workspace, CLEAN + extra_rows)
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    only_failures(suite, failures)


@pytest.mark.parametrize(
    ("replace", "failures"),
    [
        ("NULL AS request_id", {"request_id_present": (4, 1)}),
        ("NULL AS timestamp", {"timestamp_present": (4, 1)}),
        ("NULL AS model", {"model_present": (4, 1)}),
        (
            "-1 AS output_tokens",
            {"output_tokens_non_negative": (4, 1), "reasoning_within_output": (4, 1)},
        ),
        ("-1 AS cached_input_tokens", {"cached_input_tokens_non_negative": (4, 1)}),
        ("-1 AS reasoning_tokens", {"reasoning_tokens_non_negative": (4, 1)}),
        ("-1 AS cache_write_tokens", {"cache_write_tokens_non_negative": (4, 1)}),
        (
            "-1 AS input_tokens",
            {"input_tokens_non_negative": (4, 1), "cached_within_input": (4, 1)},
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_defects_the_loader_rejects_still_fail_their_expectation(workspace, replace, failures):
    """Nulls in required columns and negative token counts never get past the loader; on a
    relation that has them (one row changed), their expectations fail with exact counts."""
    con = ledger(workspace, CLEAN)
    column = replace.split(" AS ")[1]
    con.execute(
        f"CREATE TEMP VIEW ledger AS SELECT * REPLACE "
        f"(CASE WHEN request_id = 'r3' THEN {replace.split(' AS ')[0]} ELSE {column} END "
        f"AS {column}) FROM requests"
    )
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "ledger"})
    only_failures(suite, failures)


def test_missing_canonical_column_fails_the_columns_expectation(workspace):
    """A relation without `batch` fails canonical_columns_present; nothing else names it."""
    con = ledger(workspace, CLEAN)
    con.execute("CREATE TEMP VIEW ledger AS SELECT * EXCLUDE (batch) FROM requests")
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "ledger"})
    only_failures(suite, {"canonical_columns_present": (None, None)})
    (columns,) = [r for r in suite.results if r.name == "canonical_columns_present"]
    assert "batch" not in columns.observed_value
    assert "request_id" in columns.observed_value


def test_mostly_registered_threshold_comes_from_the_parameter(workspace):
    """1 unknown team in 20 rows is 95 % registered: passes at mostly 0.95, fails at 0.99."""
    rows = [request(f"r{i}") for i in range(19)] + [request("u", team="nobody")]
    con = ledger(workspace, rows)
    (loose,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    (strict,) = validation_results(
        con, SUITES, parameters(mostly=0.99), relations={"requests": "requests"}
    )
    assert outcome(loose)["team_registered"] == (True, 20, 1)
    assert outcome(strict)["team_registered"] == (False, 20, 1)
    (team,) = [r for r in loose.results if r.name == "team_registered"]
    assert team.kwargs["mostly"] == 0.95
    assert team.sample_unexpected == ("nobody",)
    assert team.pipeline_rule == "unknown_owner"


def test_failing_rows_sql_selects_exactly_the_unexpected_rows(workspace):
    """For every expectation that found unexpected rows, its SQL condition counts them again
    exactly; only failures without a pipeline rule are quarantined."""
    rows = [
        *CLEAN,
        request("r0"),
        request("late", timestamp="2026-11-03T10:00:00Z"),
        request("c", cached_input_tokens=5000),
        request("s", status_code=700),
        request("e", environment="prod"),
        request("w", workload_class="training"),
        request("u", team="nobody", application=None),
        request("a", application="mystery"),
    ]
    con = ledger(workspace, rows)
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    found = {r.name: r for r in suite.results if r.unexpected_count}
    assert sorted(found) == [
        "application_registered",
        "cached_within_input",
        "environment_registered",
        "request_id_unique",
        "status_code_http",
        "team_registered",
        "timestamp_in_period",
        "workload_class_registered",
    ]
    for name, result in found.items():
        (count,) = con.execute(
            f"SELECT count(*) FROM requests WHERE {result.failing_rows_sql}"
        ).fetchone()
        assert count == result.unexpected_count, name
    assert {name: r.pipeline_rule for name, r in found.items()} == {
        "application_registered": "unknown_owner",
        "cached_within_input": "token_subsets",
        "environment_registered": None,
        "request_id_unique": "duplicate_requests",
        "status_code_http": None,
        "team_registered": "unknown_owner",
        "timestamp_in_period": "out_of_period",
        "workload_class_registered": None,
    }
    assert found["request_id_unique"].sample_unexpected == ("r0", "r0")
    assert found["cached_within_input"].sample_unexpected == ([1000, 5000],)
    assert found["timestamp_in_period"].sample_unexpected == ("2026-11-03 10:00:00",)
    assert quarantine_conditions([suite], row="r") == {
        "status_code_http": "r.status_code IS NOT NULL AND NOT "
        "(r.status_code >= 100 AND r.status_code <= 599)",
        "environment_registered": "r.environment IS NOT NULL AND "
        "r.environment NOT IN ('production', 'staging')",
        "workload_class_registered": "r.workload_class IS NOT NULL AND "
        "r.workload_class NOT IN ('user_facing_chat', 'batch')",
    }


def test_uniqueness_counts_every_copy_of_every_repeated_value(workspace):
    # the repeated values are found from sorted 64-bit hashes, then grouped exactly
    rows = [*CLEAN, request("r0"), request("r1"), request("r1"), request("solo")]
    con = ledger(workspace, rows)
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    (result,) = [r for r in suite.results if r.name == "request_id_unique"]
    assert (result.success, result.element_count, result.unexpected_count) == (False, 8, 5)
    assert result.unexpected_percent == 62.5
    assert result.sample_unexpected == ("r0", "r0", "r1", "r1", "r1")
    assert (
        con.execute(f"SELECT count(*) FROM requests WHERE {result.failing_rows_sql}").fetchone()[0]
        == 5
    )


def test_repeated_values_leave_nulls_and_single_values_out():
    from allocation_kit.validate import _repeated_values

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (NULL), (NULL), (NULL), ('x'), ('x'), ('y'), "
        "('z'), ('z'), ('z')) v(team)"
    )
    table = _repeated_values(con, "t", "team")
    assert con.execute(f"SELECT value FROM {table} ORDER BY value").fetchall() == [
        ("x",), ("x",), ("z",), ("z",), ("z",)
    ]  # fmt: skip
    con.execute("CREATE TABLE u AS SELECT * FROM (VALUES ('a'), ('b'), (NULL)) v(team)")
    empty = _repeated_values(con, "u", "team")
    assert con.execute(f"SELECT count(*) FROM {empty}").fetchone() == (0,)


def test_in_set_on_duckdb_counts_values_outside_the_set_and_ignores_nulls(workspace):
    rows = [
        *CLEAN,
        request("n1", team=None, application=None),
        request("o1", environment="prod"),
        request("o2", environment="qa"),
        request("o3", environment="qa"),
    ]
    con = ledger(workspace, rows)
    (suite,) = validation_results(con, SUITES, parameters(), relations={"requests": "requests"})
    got = outcome(suite)
    assert got["environment_registered"] == (False, 8, 3)
    assert got["team_registered"] == (True, 8, 0)  # the NULL team is not unexpected


def test_failing_rows_sql_of_each_row_level_kind():
    """The SQL conditions, written out: NULLs are ignored like GX does."""
    assert failing_rows_sql(
        "expect_column_values_to_be_unique", {"column": "request_id"}, "requests"
    ) == ("request_id IN (SELECT request_id FROM requests GROUP BY request_id HAVING count(*) > 1)")
    assert failing_rows_sql(
        "expect_column_values_to_be_between",
        {
            "column": "timestamp",
            "min_value": PERIOD.start,
            "max_value": PERIOD.end,
            "strict_max": True,
        },
        "requests",
        row="r",
    ) == (
        "r.timestamp IS NOT NULL AND NOT (r.timestamp >= TIMESTAMP '2026-10-01 00:00:00' "
        "AND r.timestamp < TIMESTAMP '2026-11-01 00:00:00')"
    )
    assert failing_rows_sql(
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "BillingPeriodEnd", "column_B": "ChargePeriodEnd", "or_equal": True},
        "billing",
    ) == (
        'NOT ("BillingPeriodEnd" IS NULL AND "ChargePeriodEnd" IS NULL) '
        'AND NOT ("BillingPeriodEnd" >= "ChargePeriodEnd")'
    )
    assert failing_rows_sql("expect_column_values_to_not_be_null", {"column": "model"}, "x") == (
        "model IS NULL"
    )
    assert failing_rows_sql(
        "expect_column_values_to_be_in_set", {"column": "team", "value_set": ["o'brien"]}, "x"
    ) == ("team IS NOT NULL AND team NOT IN ('o''brien')")
    assert failing_rows_sql("expect_table_row_count_to_be_between", {"min_value": 1}, "x") is None


def test_registry_without_environments_leaves_that_expectation_not_run(workspace):
    """A registry that lists no environments sets no parameter: reported as not run."""
    registry = REGISTRY.replace("environments: [production, staging]\n", "")
    con = ledger(workspace, [*CLEAN, request("e", environment="anything")])
    (suite,) = validation_results(
        con, SUITES, parameters(registry), relations={"requests": "requests"}
    )
    (env,) = [r for r in suite.results if r.name == "environment_registered"]
    assert (env.success, env.note) == (None, "not run: parameter 'environments' is not set")
    assert suite.success


# --- billing -------------------------------------------------------------------------------------

FOCUS = {
    "BilledCost": "42.00",
    "BillingCurrency": "USD",
    "BillingPeriodStart": "2026-10-01T00:00:00Z",
    "BillingPeriodEnd": "2026-11-01T00:00:00Z",
    "ChargeCategory": "Usage",
    "ChargePeriodStart": "2026-10-01T00:00:00Z",
    "ChargePeriodEnd": "2026-10-02T00:00:00Z",
    "ConsumedQuantity": "8400000",
    "ConsumedUnit": "Tokens",
    "SkuPriceDetails": '{"ModelId": "chat-small", "TokenDirection": "Input"}',
}


def billing(tmp_path: Path, changes: list[dict], drop: str | None = None):
    """A connection holding the view `billing` over a FOCUS CSV: three clean rows + changes."""
    rows = [dict(FOCUS) for _ in range(3)] + [{**FOCUS, **c} for c in changes]
    columns = [c for c in FOCUS if c != drop]
    path = tmp_path / "billing.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    con = connect()
    con.execute(f"CREATE TEMP VIEW billing AS SELECT * FROM read_csv('{path}')")
    (suite,) = validation_results(con, SUITES, parameters(), relations={"billing": "billing"})
    return suite


def test_clean_billing_export_passes(tmp_path):
    """Three FOCUS rows in USD inside their billing period pass every billing expectation."""
    suite = billing(tmp_path, [])
    assert (suite.name, suite.blocking) == ("billing", False)
    assert outcome(suite) == {
        "focus_columns_present": (True, None, None),
        "billed_cost_present": (True, 3, 0),
        "currency_is_workspace_currency": (True, 3, 0),
        "currency_single_valued": (True, None, None),
        "charge_starts_in_billing_period": (True, 3, 0),
        "charge_ends_in_billing_period": (True, 3, 0),
        "consumed_quantity_non_negative": (True, 3, 0),
    }


@pytest.mark.parametrize(
    ("change", "failures"),
    [
        ({"BilledCost": ""}, {"billed_cost_present": (4, 1)}),
        (
            {"BillingCurrency": "EUR"},
            {"currency_is_workspace_currency": (4, 1), "currency_single_valued": (None, None)},
        ),
        (
            {"ChargePeriodStart": "2026-09-30T00:00:00Z"},
            {"charge_starts_in_billing_period": (4, 1)},
        ),
        ({"ChargePeriodEnd": "2026-11-02T00:00:00Z"}, {"charge_ends_in_billing_period": (4, 1)}),
        ({"ConsumedQuantity": "-5"}, {"consumed_quantity_non_negative": (4, 1)}),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_each_billing_expectation_fails_on_its_defect(tmp_path, change, failures):
    """One defective FOCUS row fails exactly the expectation about it."""
    only_failures(billing(tmp_path, [change]), failures)


def test_billing_export_missing_a_focus_column(tmp_path):
    """Without ConsumedQuantity the columns expectation fails and the quantity one is not run."""
    suite = billing(tmp_path, [], drop="ConsumedQuantity")
    results = {r.name: r for r in suite.results}
    assert results["focus_columns_present"].success is False
    quantity = results["consumed_quantity_non_negative"]
    assert (quantity.success, quantity.note) == (
        None,
        "not run: column 'ConsumedQuantity' is missing from the input",
    )


def test_currency_single_valued_reports_the_distinct_count(tmp_path):
    """Two currencies: the aggregate expectation reports 2 as its observed value."""
    suite = billing(tmp_path, [{"BillingCurrency": "EUR"}])
    (single,) = [r for r in suite.results if r.name == "currency_single_valued"]
    assert single.observed_value == 2


# --- registry and pricing ------------------------------------------------------------------------


def frames_suite(name: str, text: str):
    document = yaml.safe_load(textwrap.dedent(text))
    frame = registry_frame(document) if name == "registry" else pricing_frame(document)
    registry = document if name == "registry" else yaml.safe_load(REGISTRY)
    params = suite_parameters(PERIOD, registry, "USD", 0.95)
    (suite,) = validation_results(duckdb.connect(), SUITES, params, frames={name: frame})
    return suite


def test_a_split_in_exact_thirds_sums_to_100_as_the_registry_reads_it(tmp_path):
    """Shares whose YAML text sums to 100 exactly pass, as the registry accepts them: their
    float values (33.333333333333336 twice) once summed to 100.00000000000001 and failed the
    blocking suite."""
    from allocation_kit.config import read_yaml

    thirds = (
        "{search: 33.3333333333333333, support: 33.3333333333333333, platform: 33.3333333333333334}"
    )
    text = REGISTRY.replace("{search: 70, support: 30}", thirds)
    assert text != REGISTRY
    (tmp_path / "registry.yaml").write_text(textwrap.dedent(text))
    frame = registry_frame(read_yaml(tmp_path / "registry.yaml"))
    assert frame["split_total"].dropna().tolist() == [100.0]
    params = suite_parameters(PERIOD, yaml.safe_load(text), "USD", 0.95)
    (suite,) = validation_results(duckdb.connect(), SUITES, params, frames={"registry": frame})
    assert suite.success


def test_clean_registry_passes():
    """The test registry: 3 teams, 5 applications, 7 share rows; every expectation passes."""
    suite = frames_suite("registry", REGISTRY)
    assert (suite.blocking, suite.target) == (True, "frame")
    assert outcome(suite) == {name: (True, 15, 0) for name in outcome(suite)}
    assert len(suite.results) == 5


@pytest.mark.parametrize(
    ("old", "new", "failures"),
    [
        (
            "applications:",
            "  - {id: search, business_unit: x, cost_center: y, budget_owner: z}\napplications:",
            {"team_ids_unique": (16, 2)},
        ),
        (
            "  - {id: ticket-bot, team: support}",
            "  - {id: ticket-bot, team: support}\n  - {id: search-api, team: search}",
            {"application_ids_unique": (16, 2)},
        ),
        (
            "  - {id: ticket-bot, team: support}",
            "  - {id: ticket-bot, team: supprt}",
            {"application_team_exists": (15, 1)},
        ),
        (
            "split: {search: 70, support: 30}",
            "split: {search: 70, legal: 30}",
            {"shared_team_exists": (15, 1)},
        ),
        (
            "split: {search: 70, support: 30}",
            "split: {search: 70, support: 20}",
            {"shared_split_sums_to_100": (15, 1)},
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_each_registry_expectation_fails_on_its_defect(old, new, failures):
    """A registry with one defect (which config.py would also refuse) fails that expectation."""
    assert old in REGISTRY
    only_failures(frames_suite("registry", REGISTRY.replace(old, new)), failures)


def test_clean_pricing_passes():
    """The test snapshot's 5 entries pass every pricing expectation."""
    suite = frames_suite("pricing", PRICING)
    assert (suite.blocking, suite.target) == (True, "frame")
    assert outcome(suite) == {name: (True, 5, 0) for name in outcome(suite)}
    assert len(suite.results) == 10


REASONER = """  - model: reasoner
    effective_from: 2026-01-01
    per_1m_tokens: {input: 2.00, output: 8.00, reasoning: 10.00}
"""


@pytest.mark.parametrize(
    ("old", "new", "failures"),
    [
        (
            "effective_from: 2026-10-15",
            "effective_from: 2026-10-01",
            {"effective_ranges_do_not_overlap": (5, 1)},
        ),
        (
            REASONER,
            REASONER + REASONER,
            {"model_effective_range_unique": (6, 2), "effective_ranges_do_not_overlap": (6, 1)},
        ),
        (
            "{input: 3.00, cached_input: 0.30",
            "{input: -3.00, cached_input: 0.30",
            {"input_price_non_negative": (5, 1)},
        ),
        ("per_call: 0.04", "per_call: -0.04", {"per_call_price_non_negative": (5, 1)}),
        ("reviewed_on: 2026-09-28\n", "", {"reviewed_on_present": (5, 5)}),
        ("  - model: painter\n", "  - model: null\n", {"model_present": (5, 1)}),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_each_pricing_expectation_fails_on_its_defect(old, new, failures):
    """A snapshot with one defect fails exactly the expectation about it."""
    assert old in PRICING
    only_failures(frames_suite("pricing", PRICING.replace(old, new)), failures)


# --- errors --------------------------------------------------------------------------------------


def custom_suite(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "suites"
    folder.mkdir(exist_ok=True)
    (folder / "requests.json").write_text(text)
    return folder


def suite_error(tmp_path: Path, expectations: list[dict] | str) -> str:
    text = (
        expectations
        if isinstance(expectations, str)
        else json.dumps({"name": "requests", "expectations": expectations})
    )
    folder = custom_suite(tmp_path, text)
    con = duckdb.connect()
    con.execute("CREATE TEMP VIEW ledger AS SELECT 'a' AS request_id, 'search' AS team")
    with pytest.raises(ConfigError) as raised:
        validation_results(con, folder, parameters(), relations={"requests": "ledger"})
    return raised.value.line().replace(str(folder / "requests.json"), "requests.json")


def test_malformed_suite_json_names_the_file_and_position(tmp_path):
    """A truncated suite file: one line with the file, line and column."""
    assert suite_error(tmp_path, '{"name": "requests", "expectations": [') == (
        "requests.json: line 1, column 39: malformed JSON (Expecting value)"
    )


def test_expectation_naming_a_missing_column_names_the_suite_and_expectation(tmp_path):
    """A typo in a column name: the suite file, the expectation and the columns there are."""
    expectation = {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {"column": "tema"},
        "meta": {"name": "team_tagged"},
    }
    assert suite_error(tmp_path, [expectation]) == (
        "requests.json: expectations[0] (team_tagged): column 'tema' is not in ledger; "
        "expected one of request_id, team"
    )


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (
            {"type": "expect_column_values_to_be_awesome", "kwargs": {"column": "team"}},
            "expectations[0] (expect_column_values_to_be_awesome): unknown expectation type",
        ),
        (
            {"type": "expect_column_values_to_be_unique", "kwargs": {"colum": "team"}},
            "expectations[0] (expect_column_values_to_be_unique): kwargs.column: field required "
            "(and 1 more problem)",
        ),
        (
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "team", "value_set": {"$PARAMETER": "team_ids"}},
            },
            "expectations[0] (expect_column_values_to_be_in_set): unknown parameter 'team_ids'; "
            "expected one of applications, currencies, environments, mostly_registered, "
            "period_end, period_start, teams, workload_classes",
        ),
        (
            {
                "type": "expect_column_values_to_match_regex",
                "kwargs": {"column": "team", "regex": "^s"},
                "meta": {"name": "team_lowercase"},
            },
            "expectations[0] (team_lowercase): Great Expectations could not evaluate it on "
            "DuckDB: Regex is not supported for dialect duckdb",
        ),
        ("not an object", "expectations[0]: expected an object with type and kwargs"),
    ],
    ids=["unknown type", "bad kwargs", "unknown parameter", "regex on duckdb", "not an object"],
)
def test_suite_problems_are_one_line(tmp_path, expectation, message):
    """Each problem in a suite file is one ConfigError line naming the file and expectation."""
    assert suite_error(tmp_path, [expectation]) == f"requests.json: {message}"


def test_missing_suite_file(tmp_path):
    """A suites folder without requests.json says so."""
    con = duckdb.connect()
    with pytest.raises(ConfigError) as raised:
        validation_results(con, tmp_path, parameters(), relations={"requests": "x"})
    assert raised.value.line() == (
        f"{tmp_path / 'requests.json'}: file not found; expected a Great Expectations suite (JSON)"
    )


# --- the engine ----------------------------------------------------------------------------------


def test_gx_sql_engine_needs_the_buffering_subclass_on_duckdb(workspace):
    """GX's stock SqlAlchemyExecutionEngine fetches after closing the connection and gets no
    rows from DuckDB; the kit's subclass returns them, on the kit's own connection."""
    from allocation_kit.validate import _gx, _sqlalchemy_engine_kwargs

    g = _gx()
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    con = ledger(workspace, CLEAN)
    engine = g.sa.create_engine("duckdb:///:memory:", **_sqlalchemy_engine_kwargs(con))
    query = g.sa.text("SELECT count(*) FROM requests")
    assert SqlAlchemyExecutionEngine(engine=engine).execute_query(query).fetchall() == []
    assert g.DuckDBExecutionEngine(engine=engine).execute_query(query).fetchall() == [(4,)]
    # GX left no transaction open and did not close the kit's connection
    con.execute("BEGIN")
    con.execute("ROLLBACK")
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (4,)


def test_importing_validate_does_not_import_great_expectations():
    """GX takes seconds to import: the module defers it to the first validation."""
    code = "import sys, allocation_kit.validate; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- evidence and terminal -----------------------------------------------------------------------


def test_validation_document_and_table(workspace, tmp_path):
    """validation.json holds every expectation with its counts; the table has one line each."""
    folder = custom_suite(
        tmp_path,
        json.dumps(
            {
                "name": "requests",
                "meta": {"blocking": True},
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "kwargs": {
                            "column": "environment",
                            "value_set": {"$PARAMETER": "environments"},
                        },
                        "meta": {"name": "environment_registered"},
                    },
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "model"}},
                ],
            }
        ),
    )
    con = ledger(workspace, [*CLEAN, request("e", environment="prod")])
    params = parameters()
    suites = validation_results(con, folder, params, relations={"requests": "requests"})
    document = validation_document(suites, params)
    assert json.loads(json.dumps(document)) == document
    assert document["success"] is False
    assert document["blocking_failures"] == ["requests"]
    assert document["statistics"] == {"evaluated": 2, "successful": 1, "failed": 1, "not_run": 0}
    assert document["parameters"]["period_start"] == "2026-10-01 00:00:00"
    # a workspace's own suite keeps its path; the kit's own suites are named in the kit
    assert document["suites"][0]["file"] == str(folder / "requests.json")
    kit_suites = validation_results(con, SUITES, params, relations={"requests": "requests"})
    assert validation_document(kit_suites, params)["suites"][0]["file"] == (
        "allocation-kit/expectations/requests.json"
    )
    env = document["suites"][0]["expectations"][0]
    assert env == {
        "name": "environment_registered",
        "expectation_type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "environment", "value_set": ["production", "staging"]},
        "success": False,
        "element_count": 5,
        "unexpected_count": 1,
        "unexpected_percent": 20.0,
        "sample_unexpected": ["prod"],
        "observed_value": None,
        "failing_rows_sql": "environment IS NOT NULL "
        "AND environment NOT IN ('production', 'staging')",
        "pipeline_rule": None,
        "handling": "rows quarantined",
        "quarantined": True,
        "note": None,
    }
    assert validation_table(suites).splitlines() == [
        "suite     expectation                          result  unexpected  rows      %  handling  "
        "        examples",
        "requests  environment_registered               FAIL             1     5  20.00  "
        "rows quarantined  'prod'",
        "requests  column_values_to_not_be_null(model)  pass             0     5   0.00",
        "",
        "2 expectations in 1 suites: 1 passed, 1 failed, 0 not run; "
        "blocking suite failed: requests",
    ]
    # the line that stops a run names what failed and the values it found
    from allocation_kit.errors import ConfigError
    from allocation_kit.pipeline import stop_if_blocking_failed

    with pytest.raises(ConfigError) as caught:
        stop_if_blocking_failed(suites)
    assert caught.value.line() == (
        f"{folder / 'requests.json'}: environment_registered: blocking expectation failed by "
        "1 value, such as 'prod'"
    )


def test_the_ledger_suite_covers_the_periods_rows_not_the_months_beside_it(workspace, tmp_path):
    """A wildcard ledger path reads every month's file; October's review validates October's
    rows and the strays of October's own file, not September's file."""
    from allocation_kit.pipeline import period_ledger

    from .conftest import KIT, write_ledger

    september = [
        request(f"s{i}", timestamp="2026-09-15T12:00:00Z", team="nobody") for i in range(3)
    ]
    september += [request("s0", timestamp="2026-09-16T12:00:00Z")]  # repeated in September
    september += [request("s-late", timestamp="2026-10-01T00:00:05Z")]  # a stray into October
    october = [request(f"o{i}") for i in range(3)]
    october += [request("o-early", timestamp="2026-09-30T23:59:50Z")]  # October's own stray
    config = workspace(october[:1], kit=KIT.replace("requests.csv", "'requests/*.csv'"))
    (tmp_path / "requests.csv").unlink()
    (tmp_path / "requests").mkdir()
    write_ledger(tmp_path / "requests" / "2026-09.csv", september)
    write_ledger(tmp_path / "requests" / "2026-10.csv", october)
    ledger = period_ledger(load_workspace(config), PERIOD)
    (suite,) = [s for s in ledger.validation if s.name == "requests"]
    # 3 October rows + s-late (inside) + o-early (October file, outside) = 5 rows; September's
    # 3 unknown teams and its repeated s0 are not October's findings
    only_failures(suite, {"timestamp_in_period": (5, 1)})
    assert suite.target == "reviewed_requests"
    assert ledger.rows_by_file == {"requests/2026-09.csv": (1, 4), "requests/2026-10.csv": (3, 1)}
    assert (ledger.counts.rows_read, ledger.counts.out_of_period) == (9, 5)
