"""The demo workspace: deterministic, well-formed, and carrying exactly the planted findings."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from allocation_kit.demo import DEMO_PERIODS, PLANTED, write_demo_workspace

ROWS = 5_000
MILLION = Decimal(1_000_000)

LEDGER_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("team", pa.string()),
    ("application", pa.string()),
    ("environment", pa.string()),
    ("workload_class", pa.string()),
    ("feature", pa.string()),
    ("job_id", pa.string()),
    ("caller_id", pa.string()),
    ("endpoint", pa.string()),
    ("model", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cached_input_tokens", pa.int64()),
    ("reasoning_tokens", pa.int64()),
    ("cache_write_tokens", pa.int64()),
    ("status_code", pa.int32()),
    ("idempotency_key", pa.string()),
    ("batch", pa.bool_()),
])  # fmt: skip


def per_100k(value: int) -> int:
    """A planted volume stated per 100k base calls, at the test's size."""
    return ROWS * value // 100_000


def in_periods(key: str, period: str) -> bool:
    return period in PLANTED[key]["periods"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_workspace(tmp_path_factory.mktemp("demo"), rows_per_month=ROWS).parent


@pytest.fixture(scope="module")
def ledgers(demo: Path) -> dict[str, list[dict]]:
    return {
        period: pq.read_table(demo / "data" / "requests" / f"{period}.parquet").to_pylist()
        for period in DEMO_PERIODS
    }


@pytest.fixture(scope="module")
def pricing(demo: Path) -> dict:
    return yaml.safe_load((demo / "pricing.yaml").read_text())


@pytest.fixture(scope="module")
def registry(demo: Path) -> dict:
    return yaml.safe_load((demo / "registry.yaml").read_text())


def bill_lines(demo: Path, period: str) -> list[dict[str, str]]:
    with (demo / "data" / "billing" / f"focus_{period}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def billed_usage_by_model(demo: Path, period: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in bill_lines(demo, period):
        if line["ChargeCategory"] == "Usage":
            totals[json.loads(line["SkuPriceDetails"])["ModelId"]] += Decimal(line["BilledCost"])
    return dict(totals)


def month_bounds(period: str) -> tuple[datetime, datetime]:
    year, month = map(int, period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def row_cost(row: dict, pricing: dict) -> Decimal | None:
    """Cost of one attempt from the pricing snapshot in effect at its timestamp (None: no price)."""
    day = row["timestamp"].date()
    for entry in pricing["models"]:
        if entry["model"] != row["model"] or not entry["effective_from"] <= day:
            continue
        if entry.get("effective_to") is not None and day >= entry["effective_to"]:
            continue
        if "per_call" in entry:
            return Decimal(str(entry["per_call"]))
        price = {k: Decimal(str(v)) for k, v in entry["per_1m_tokens"].items()}
        cached, write = row["cached_input_tokens"], row["cache_write_tokens"]
        reasoning = row["reasoning_tokens"]
        tokens = (
            (row["input_tokens"] - cached - write) * price["input"]
            + cached * price.get("cached_input", price["input"])
            + write * price.get("cache_write", price["input"])
            + (row["output_tokens"] - reasoning) * price["output"]
            + reasoning * price.get("reasoning", price["output"])
        )
        return tokens / MILLION
    return None


def provider_view(ledgers: dict[str, list[dict]], period: str) -> list[dict]:
    """Distinct successful attempts timestamped in the period, from every month file.

    A request_id logged twice counts once, with its first (true) content.
    """
    start, end = month_bounds(period)
    seen: set[str] = set()
    rows = []
    for period_rows in ledgers.values():
        for row in period_rows:
            if row["request_id"] in seen:
                continue
            seen.add(row["request_id"])
            if start <= row["timestamp"] < end and 200 <= row["status_code"] < 300:
                rows.append(row)
    return rows


def ledger_cost_by_model(rows: list[dict], pricing: dict) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        cost = row_cost(row, pricing)
        if cost is not None:
            totals[row["model"]] += cost
    return dict(totals)


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- determinism and files ---------------------------------------------------------------------


def test_same_seed_writes_identical_files_and_another_seed_differs(tmp_path: Path, demo: Path):
    write_demo_workspace(tmp_path / "again", rows_per_month=ROWS)
    write_demo_workspace(tmp_path / "other", rows_per_month=ROWS, seed=7)
    first, again, other = (
        file_digests(demo),
        file_digests(tmp_path / "again"),
        file_digests(tmp_path / "other"),
    )
    assert len(first) == 6 + 2 * len(DEMO_PERIODS)
    assert first == again
    for period in DEMO_PERIODS:
        name = f"data/requests/{period}.parquet"
        assert first[name] != other[name]


def test_returns_kit_yaml_and_writes_every_file(demo: Path):
    expected = {"kit.yaml", "registry.yaml", "pricing.yaml", "cost_units.yaml", "budgets.yaml"}
    expected.add("data/events/support_tickets.csv")
    expected |= {f"data/requests/{p}.parquet" for p in DEMO_PERIODS}
    expected |= {f"data/billing/focus_{p}.csv" for p in DEMO_PERIODS}
    assert set(file_digests(demo)) == expected


def test_ledger_files_have_the_canonical_columns_and_types(demo: Path):
    for period in DEMO_PERIODS:
        schema = pq.read_schema(demo / "data" / "requests" / f"{period}.parquet")
        assert schema.remove_metadata() == LEDGER_SCHEMA


# --- the planted findings ----------------------------------------------------------------------


def test_each_file_holds_base_calls_plus_exactly_the_planted_extra_rows(ledgers):
    retried = per_100k(PLANTED["retries"]["retried_calls_per_100k"])
    failed = retried + retried // PLANTED["retries"]["failing_twice_every"]
    identical = per_100k(PLANTED["logging_duplicates"]["identical_rows_per_100k"])
    outside = (
        PLANTED["out_of_period_rows"]["before_start"] + PLANTED["out_of_period_rows"]["after_end"]
    )
    for period, rows in ledgers.items():
        extra = failed + identical + outside
        extra += PLANTED["logging_duplicates"]["conflicting_request_ids"][period]
        for key in ("unpriced_model", "runaway_batch_job"):
            if in_periods(key, period):
                extra += per_100k(PLANTED[key]["calls_per_100k"])
        assert len(rows) == ROWS + extra, period


def test_request_ids_repeat_only_as_the_planted_logging_duplicates(ledgers):
    for period, rows in ledgers.items():
        by_id: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_id[row["request_id"]].append(row)
        repeated = [copies for copies in by_id.values() if len(copies) > 1]
        identical = [c for c in repeated if len(c) == 2 and c[0] == c[1]]
        conflicting = [c for c in repeated if len(c) == 2 and c[0] != c[1]]
        dup = PLANTED["logging_duplicates"]
        assert len(identical) == per_100k(dup["identical_rows_per_100k"]), period
        assert len(conflicting) == dup["conflicting_request_ids"][period], period
        assert len(repeated) == len(identical) + len(conflicting)


def test_token_counts_respect_the_usage_object_invariants(ledgers):
    for rows in ledgers.values():
        for row in rows:
            assert min(row[c] for c in row if c.endswith("_tokens")) >= 0
            assert row["cached_input_tokens"] <= row["input_tokens"]
            assert row["cache_write_tokens"] <= row["input_tokens"] - row["cached_input_tokens"]
            assert row["reasoning_tokens"] <= row["output_tokens"]
            if row["model"] != "claude-sonnet-4-5":
                assert row["cache_write_tokens"] == 0


def test_untagged_unknown_and_conflicting_tags_have_the_planted_counts(ledgers, registry):
    owner = {app["id"]: app["team"] for app in registry["applications"]}
    teams = {team["id"] for team in registry["teams"]}
    conflict = PLANTED["tag_conflict"]
    for period, rows in ledgers.items():
        untagged = [r for r in rows if r["team"] is None and r["application"] is None]
        unknown = [
            r for r in rows
            if (r["team"] is not None and r["team"] not in teams)
            or (r["application"] is not None and r["application"] not in owner)
        ]  # fmt: skip
        mismatched = [
            r for r in rows
            if r["application"] in owner and r["team"] is not None
            and r["team"] in teams and owner[r["application"]] != r["team"]
        ]  # fmt: skip
        assert len(untagged) == per_100k(PLANTED["untagged"]["calls_per_100k"]), period
        assert {r["caller_id"] for r in untagged} <= set(PLANTED["untagged"]["caller_ids"])
        assert len(unknown) == per_100k(PLANTED["unknown_owner"]["calls_per_100k"]), period
        assert {(r["team"], r["application"]) for r in unknown} == {
            (PLANTED["unknown_owner"]["team"], PLANTED["unknown_owner"]["application"])
        }
        assert len(mismatched) == per_100k(conflict["calls_per_100k"]), period
        assert {(r["caller_id"], r["application"], r["team"]) for r in mismatched} == {
            (conflict["caller_id"], conflict["application"], conflict["tagged_team"])
        }
        assert owner[conflict["application"]] == conflict["registered_team"]


def test_failed_attempts_precede_a_success_with_the_same_idempotency_key(ledgers):
    retries = PLANTED["retries"]
    retried = per_100k(retries["retried_calls_per_100k"])
    for period, rows in ledgers.items():
        distinct = {r["request_id"]: r for r in rows}.values()
        failed = [r for r in distinct if r["status_code"] != 200]
        assert len(failed) == retried + retried // retries["failing_twice_every"], period
        assert {r["status_code"] for r in failed} <= set(retries["status_codes"])
        attempts = defaultdict(list)
        for row in distinct:
            attempts[row["idempotency_key"]].append(row)
        shapes = Counter()
        for group in attempts.values():
            group.sort(key=lambda r: r["timestamp"])
            assert group[-1]["status_code"] == 200
            assert all(r["status_code"] != 200 for r in group[:-1])
            shapes[len(group)] += 1
        assert shapes[2] == retried - retried // retries["failing_twice_every"], period
        assert shapes[3] == retried // retries["failing_twice_every"], period


def test_each_file_has_rows_just_outside_its_month(ledgers):
    out = PLANTED["out_of_period_rows"]
    for period, rows in ledgers.items():
        start, end = month_bounds(period)
        before = [r for r in rows if r["timestamp"] < start]
        after = [r for r in rows if r["timestamp"] >= end]
        assert len(before) == out["before_start"], period
        assert len(after) == out["after_end"], period
        assert all((start - r["timestamp"]).total_seconds() <= 3600 for r in before)
        assert all((r["timestamp"] - end).total_seconds() <= 600 for r in after)


def test_the_unpriced_model_appears_only_in_its_trial_month(ledgers, pricing):
    unpriced = PLANTED["unpriced_model"]
    assert unpriced["model"] not in {entry["model"] for entry in pricing["models"]}
    for period, rows in ledgers.items():
        trial = [r for r in rows if r["model"] == unpriced["model"]]
        trial_month = in_periods("unpriced_model", period)
        expected = per_100k(unpriced["calls_per_100k"]) if trial_month else 0
        assert len(trial) == expected, period
        assert {(r["team"], r["application"]) for r in trial} <= {
            (unpriced["team"], unpriced["application"])
        }


def test_the_runaway_job_multiplies_its_application_spend(ledgers, pricing):
    runaway = PLANTED["runaway_batch_job"]
    spend = {}
    for period in DEMO_PERIODS:
        rows = provider_view(ledgers, period)
        spend[period] = sum(
            row_cost(r, pricing) for r in rows if r["application"] == runaway["application"]
        )
    assert spend["2026-10"] > 3 * max(spend["2026-08"], spend["2026-09"])
    late = datetime.fromisoformat(runaway["window"][1])
    stuck = [
        r for r in ledgers["2026-10"]
        if r["job_id"] == runaway["job_id"] and r["timestamp"].date() > date(2026, 10, 14)
    ]  # fmt: skip
    assert stuck
    assert all(r["timestamp"] < late and r["team"] == runaway["team"] for r in stuck)


# --- the bill ----------------------------------------------------------------------------------


def test_august_bill_equals_the_independently_priced_ledger_to_the_last_digit(
    demo, ledgers, pricing
):
    expected = ledger_cost_by_model(provider_view(ledgers, "2026-08"), pricing)
    assert billed_usage_by_model(demo, "2026-08") == expected


def test_september_bill_overcharges_one_model_and_direction_only(demo, ledgers, pricing):
    over = PLANTED["billing_overcharge"]
    rows = provider_view(ledgers, "2026-09")
    expected = ledger_cost_by_model(rows, pricing)
    output_tokens = sum(r["output_tokens"] for r in rows if r["model"] == over["model"])
    excess = output_tokens * (Decimal(over["billed_per_1m"]) - Decimal(over["priced_per_1m"]))
    expected[over["model"]] += excess / MILLION
    assert billed_usage_by_model(demo, "2026-09") == expected
    output_lines = [
        line for line in bill_lines(demo, "2026-09")
        if line["ChargeCategory"] == "Usage"
        and json.loads(line["SkuPriceDetails"]).get("TokenDirection") == over["token_direction"]
        and json.loads(line["SkuPriceDetails"])["ModelId"] == over["model"]
    ]  # fmt: skip
    assert {line["ListUnitPrice"] for line in output_lines} == {over["billed_per_1m"]}


def test_october_bill_adds_the_unpriced_model_at_the_provider_price(demo, ledgers, pricing):
    unpriced = PLANTED["unpriced_model"]
    rows = provider_view(ledgers, "2026-10")
    expected = ledger_cost_by_model(rows, pricing)
    price = {k: Decimal(v) for k, v in unpriced["provider_per_1m_tokens"].items()}
    trial = [r for r in rows if r["model"] == unpriced["model"]]
    expected[unpriced["model"]] = sum(
        (r["input_tokens"] * price["input"] + r["output_tokens"] * price["output"]) / MILLION
        for r in trial
    )
    assert billed_usage_by_model(demo, "2026-10") == expected


def test_bills_are_daily_focus_lines_plus_one_tax_and_one_credit(demo):
    for period in DEMO_PERIODS:
        lines = bill_lines(demo, period)
        start, end = month_bounds(period)
        assert Counter(line["ChargeCategory"] for line in lines)["Tax"] == 1
        assert Counter(line["ChargeCategory"] for line in lines)["Credit"] == 1
        (credit,) = [line for line in lines if line["ChargeCategory"] == "Credit"]
        assert Decimal(credit["BilledCost"]) < 0
        usage = [line for line in lines if line["ChargeCategory"] == "Usage"]
        for line in usage:
            assert line["BillingPeriodStart"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert line["BillingPeriodEnd"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
            day_start = datetime.fromisoformat(line["ChargePeriodStart"])
            day_end = datetime.fromisoformat(line["ChargePeriodEnd"])
            assert (day_end - day_start).days == 1
            assert start <= day_start < end
            details = json.loads(line["SkuPriceDetails"])
            if line["ConsumedUnit"] == "Tokens":
                assert details["TokenDirection"] in {"Input", "Output"}
                assert details.get("TokenCacheAction", "Uncached") in {
                    "Uncached",
                    "CacheRead",
                    "CacheWrite",
                }
            else:
                assert line["ConsumedUnit"] == "Requests"
            assert line["ServiceProviderName"] == "CometAPI"


# --- YAML files --------------------------------------------------------------------------------


def test_kit_yaml_points_at_the_workspace_files(demo):
    kit = yaml.safe_load((demo / "kit.yaml").read_text())
    assert kit == {
        "name": "Acme Corp AI spend (demo)",
        "currency": "USD",
        "engine": "duckdb",
        "requests": {"path": "data/requests/*.parquet", "format": "parquet"},
        "billing": {"path": "data/billing/*.csv", "format": "focus"},
        "registry": "registry.yaml",
        "pricing": "pricing.yaml",
        "cost_units": "cost_units.yaml",
        "budgets": "budgets.yaml",
        "reconciliation": {"tolerance_pct": 1.0},
        "review": {
            "reviewer_role": "finops-analyst",
            "disputes": "Reply to finops@acme.example (a placeholder) within 10 working days, "
            "naming the line.",
        },
        # the billing account as the bill names it, so focus_allocated.csv joins the bill
        "focus": {
            "provider_name": "CometAPI",
            "billing_account_id": "cometapi-acct-000000",
            "billing_account_name": "Acme Corp",
        },
        "chargeback": {"spread": ["unallocated", "usage_difference", "tax", "credit"]},
    }


def test_registry_has_teams_applications_and_one_shared_app_per_method(registry):
    assert set(registry) == {"teams", "applications", "environments", "workload_classes"}
    teams = {team["id"] for team in registry["teams"]}
    assert all(
        set(team) == {"id", "business_unit", "cost_center", "budget_owner"}
        for team in registry["teams"]
    )
    assert len(teams) == 8
    assert len({team["business_unit"] for team in registry["teams"]}) == 4
    assert len(registry["applications"]) == 25
    assert all(app["team"] in teams for app in registry["applications"])
    shared = {app["id"]: app["shared"] for app in registry["applications"] if "shared" in app}
    methods = {rule["method"]: app for app, rule in shared.items()}
    planted = PLANTED["shared_apps"]
    assert methods == {m: planted[m] for m in ("fixed", "proportional", "even")}
    assert sum(shared[planted["fixed"]]["split"].values()) == 100
    assert shared[planted["proportional"]]["basis"] == "tokens"
    for rule in shared.values():
        assert set(rule.get("split", {})) | set(rule.get("teams", [])) <= teams
    assert registry["environments"] == ["production", "staging", "development"]
    assert registry["workload_classes"] == [
        "user_facing_chat",
        "batch",
        "eval",
        "support",
        "internal_automation",
    ]


def test_ledger_tags_use_the_registry_vocabulary(ledgers, registry):
    for rows in ledgers.values():
        assert {r["environment"] for r in rows} <= set(registry["environments"])
        assert {r["workload_class"] for r in rows} <= set(registry["workload_classes"])
        assert all(r["batch"] == (r["workload_class"] == "batch") for r in rows)


def test_every_token_price_lists_its_output_price_even_when_free(pricing):
    tokens = {e["model"]: e["per_1m_tokens"] for e in pricing["models"] if "per_1m_tokens" in e}
    assert [m for m, prices in tokens.items() if "output" not in prices] == []
    assert tokens["text-embedding-3-small"] == {"input": 0.02, "output": 0}


def test_pricing_yaml_has_dated_entries_and_the_planted_price_change(pricing):
    assert pricing["currency"] == "USD"
    assert pricing["failed_calls_billable"] is False
    assert pricing["reviewed_on"] == date(2026, 7, 28)
    for entry in pricing["models"]:
        assert isinstance(entry["effective_from"], date)
        assert ("per_call" in entry) != ("per_1m_tokens" in entry)
    change = PLANTED["price_change"]
    entries = [e for e in pricing["models"] if e["model"] == change["model"]]
    switch = date.fromisoformat(change["effective"])
    assert [e.get("effective_to") for e in entries] == [switch, None]
    assert entries[1]["effective_from"] == switch
    for entry, key in zip(entries, ("per_1m_tokens_before", "per_1m_tokens_after"), strict=True):
        listed = {k: Decimal(str(v)) for k, v in entry["per_1m_tokens"].items()}
        assert listed == {k: Decimal(v) for k, v in change[key].items()}
    over = PLANTED["billing_overcharge"]
    (claude,) = [e for e in pricing["models"] if e["model"] == over["model"]]
    assert Decimal(str(claude["per_1m_tokens"]["output"])) == Decimal(over["priced_per_1m"])
