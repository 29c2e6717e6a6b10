"""Tiny workspaces built inline: a registry, a pricing snapshot and a CSV ledger."""

from __future__ import annotations

import atexit
import csv
import os
import sys
import textwrap
from pathlib import Path

import pytest

REGISTRY = """
teams:
  - {id: search, business_unit: product, cost_center: CC-100, budget_owner: search-lead}
  - {id: support, business_unit: operations, cost_center: CC-200, budget_owner: support-lead}
  - {id: platform, business_unit: corporate, cost_center: CC-900, budget_owner: cto}
applications:
  - {id: search-api, team: search}
  - {id: ticket-bot, team: support}
  - id: gateway-fixed
    team: platform
    shared: {method: fixed, split: {search: 70, support: 30}}
  - id: gateway-prop
    team: platform
    shared: {method: proportional, basis: tokens, teams: [search, support]}
  - id: gateway-even
    team: platform
    shared: {method: even, teams: [search, support, platform]}
environments: [production, staging]
workload_classes: [user_facing_chat, batch]
"""

PRICING = """
currency: USD
source_url: https://example.com/pricing
reviewed_on: 2026-09-28
reviewed_by: finops-analyst
failed_calls_billable: false
models:
  - model: chat-small
    effective_from: 2026-01-01
    effective_to: 2026-10-15
    per_1m_tokens: {input: 1.00, cached_input: 0.50, output: 4.00}
  - model: chat-small
    effective_from: 2026-10-15
    per_1m_tokens: {input: 0.80, cached_input: 0.40, output: 3.20}
  - model: reasoner
    effective_from: 2026-01-01
    per_1m_tokens: {input: 2.00, output: 8.00, reasoning: 10.00}
  - model: cacher
    effective_from: 2026-01-01
    per_1m_tokens: {input: 3.00, cached_input: 0.30, cache_write: 3.75, output: 15.00}
  - model: painter
    effective_from: 2026-01-01
    per_call: 0.04
"""

KIT = """
name: Test workspace
currency: USD
requests: {path: requests.csv}
registry: registry.yaml
pricing: pricing.yaml
reconciliation: {tolerance_pct: 1}
review: {reviewer_role: finops-analyst}
"""

LEDGER_COLUMNS = [
    "request_id", "timestamp", "team", "application", "environment", "workload_class",
    "feature", "job_id", "caller_id", "endpoint", "model", "input_tokens", "output_tokens",
    "cached_input_tokens", "reasoning_tokens", "status_code", "idempotency_key", "batch",
]  # fmt: skip


def request(request_id: str, **values: object) -> dict[str, object]:
    """A ledger row with sensible defaults: a 2xx chat-small call in 2026-10 by search-api."""
    row: dict[str, object] = {
        "request_id": request_id,
        "timestamp": "2026-10-10T12:00:00Z",
        "team": "search",
        "application": "search-api",
        "environment": "production",
        "workload_class": "user_facing_chat",
        "model": "chat-small",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "status_code": 200,
    }
    row.update(values)
    return row


def write_ledger(
    path: Path, rows: list[dict[str, object]], columns: list[str] | None = None
) -> Path:
    columns = columns or sorted({c for r in rows for c in r}, key=_column_order)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def _column_order(column: str) -> tuple[int, str]:
    return (LEDGER_COLUMNS.index(column) if column in LEDGER_COLUMNS else 99, column)


@pytest.fixture
def workspace(tmp_path: Path):
    """A function writing a workspace (kit.yaml path returned) with the given ledger rows."""

    def make(rows: list[dict[str, object]], *, kit: str = KIT, registry: str = REGISTRY,
             pricing: str = PRICING) -> Path:  # fmt: skip
        (tmp_path / "registry.yaml").write_text(textwrap.dedent(registry))
        (tmp_path / "pricing.yaml").write_text(textwrap.dedent(pricing))
        (tmp_path / "kit.yaml").write_text(textwrap.dedent(kit))
        write_ledger(tmp_path / "requests.csv", rows)
        return tmp_path / "kit.yaml"

    return make


def pytest_sessionfinish(session, exitstatus):
    """Once Great Expectations and duckdb-engine are imported, duckdb's nanobind bindings print a
    leak report at interpreter exit (an upstream issue), after pytest's summary line. End the
    process right after pytest is done, with pytest's exit status, so the summary stays last."""
    if "great_expectations" not in sys.modules:
        return

    def end() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(exitstatus))

    atexit.register(end)


def cli(*args: str) -> int:
    """The exit code of `allocation-kit ARGS` run in this process (0 when it returns)."""
    from allocation_kit.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code
    return 0
