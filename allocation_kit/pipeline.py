"""The ledger pipeline of one period: load → attribute → price → allocate, on DuckDB.

`period_ledger` wires the stage functions together and returns a `PeriodLedger`: small exact
aggregates for the evidence and the packet, and the DuckDB connection whose views (`requests`,
`ledger`) let later stages query the rows without pulling them into pandas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import duckdb

from .allocate import AllocationLine, UsageLine, allocation_lines
from .attribute import attributed_view_sql, duplicate_ids_sql, register_registry
from .config import Workspace
from .load import LoadedLedger, connect, load_requests
from .periods import Period
from .price import COST_TYPE, billable_sql, cost_sql, register_prices

__all__ = ["Counts", "PeriodLedger", "period_ledger"]

# Out-of-period rows this close to the period's edges are listed one by one in the exception
# queue (late or early logging, time-zone slips); rows further away are only counted per file.
BOUNDARY_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Counts:
    """Row counts a reviewer needs next to the money."""

    rows_read: int
    out_of_period: int
    in_period: int
    duplicate_copies: int  # extra copies of identical logging duplicates (counted once)
    attempted: int  # unique attempts in the period
    successful: int  # 2xx
    failed: int  # non-2xx
    billable: int
    unpriced: int  # billable attempts whose model had no price in effect
    quarantined: int


@dataclass
class PeriodLedger:
    """The priced, attributed ledger of one period and its exact aggregates."""

    workspace: Workspace
    period: Period
    con: duckdb.DuckDBPyConnection
    loaded: LoadedLedger
    usage: list[UsageLine]
    allocation: list[AllocationLine]
    counts: Counts
    ledger_cost: Decimal
    out_of_period_by_file: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)

    def cost_by_status(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.allocation:
            totals[line.allocation_status] = (
                totals.get(line.allocation_status, Decimal(0)) + line.cost
            )
        return totals


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def period_ledger(
    workspace: Workspace,
    period: Period,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: Callable[[str], None] | None = None,
) -> PeriodLedger:
    """Load, attribute, price and allocate the period's request ledger."""
    con = con or connect()
    timings: dict[str, float] = {}
    say = progress or (lambda _msg: None)

    def stage(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        say(f"{name:<10} {timings[name]:6.2f} s")

    started = time.perf_counter()
    loaded = load_requests(con, workspace.kit.requests, workspace.root, workspace.config_path.name)
    register_registry(con, workspace.registry)
    register_prices(con, workspace.pricing)
    stage("load", started)

    started = time.perf_counter()
    start, end = _lit(period.start.isoformat()), _lit(period.end.isoformat())
    inside = f"timestamp >= {start}::TIMESTAMPTZ AND timestamp < {end}::TIMESTAMPTZ"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW period_requests AS SELECT * FROM requests WHERE {inside}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE duplicate_ids AS {duplicate_ids_sql('period_requests')}"
    )
    billable = billable_sql("a", workspace.pricing.failed_calls_billable)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW ledger AS
        SELECT a.*, {billable} AS billable,
            (a.status_code IS NULL OR a.status_code BETWEEN 200 AND 299) AS successful,
            p.model IS NOT NULL AS priced,
            CASE WHEN NOT {billable} THEN CAST(0 AS {COST_TYPE})
                 WHEN p.model IS NULL THEN NULL
                 ELSE {cost_sql("a", "p")} END AS cost
        FROM ({attributed_view_sql("period_requests", "duplicate_ids")}) a
        LEFT JOIN prices p ON p.model = a.model AND a.timestamp >= p.effective_from
            AND (p.effective_to IS NULL OR a.timestamp < p.effective_to)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE usage AS
        SELECT allocation_status, owner_team AS team, application, environment, workload_class,
            model, CAST(timestamp AS DATE) AS day, billable, successful, priced,
            count(*) AS requests,
            sum(input_tokens) AS input_tokens,
            sum(cached_input_tokens) AS cached_input_tokens,
            sum(cache_write_tokens) AS cache_write_tokens,
            sum(output_tokens) AS output_tokens,
            sum(reasoning_tokens) AS reasoning_tokens,
            CAST(COALESCE(sum(cost), 0) AS {COST_TYPE}) AS cost
        FROM ledger GROUP BY ALL"""
    )
    stage("price", started)

    started = time.perf_counter()
    usage = [
        UsageLine(*row)
        for row in con.execute(
            """SELECT allocation_status, team, application, environment,
                sum(requests)::BIGINT, sum(input_tokens)::BIGINT, sum(cached_input_tokens)::BIGINT,
                sum(cache_write_tokens)::BIGINT, sum(output_tokens)::BIGINT,
                sum(reasoning_tokens)::BIGINT,
                COALESCE(sum(requests) FILTER (WHERE billable AND NOT priced), 0)::BIGINT,
                sum(cost)
            FROM usage GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    ]
    allocation = allocation_lines(usage, workspace.registry)
    stage("allocate", started)

    counts, ledger_cost, by_file = _counts(con, inside)
    return PeriodLedger(
        workspace=workspace,
        period=period,
        con=con,
        loaded=loaded,
        usage=usage,
        allocation=allocation,
        counts=counts,
        ledger_cost=ledger_cost,
        out_of_period_by_file=by_file,
        timings=timings,
    )


def _counts(con: duckdb.DuckDBPyConnection, inside: str) -> tuple[Counts, Decimal, dict[str, int]]:
    by_file = dict(
        con.execute(
            f"SELECT source_file, count(*) FROM requests WHERE NOT ({inside}) "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    )
    rows_read = con.execute("SELECT count(*) FROM requests").fetchone()[0]
    copies = con.execute(
        "SELECT COALESCE(sum(copies - 1), 0)::BIGINT FROM duplicate_ids WHERE identical"
    ).fetchone()[0]
    (attempted, successful, billable, unpriced, quarantined, cost) = con.execute(
        f"""SELECT sum(requests)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE successful), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE billable), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE billable AND NOT priced), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE allocation_status = 'quarantined'), 0)::BIGINT,
            CAST(COALESCE(sum(cost), 0) AS {COST_TYPE})
        FROM usage"""
    ).fetchone()
    out = sum(by_file.values())
    counts = Counts(
        rows_read=rows_read,
        out_of_period=out,
        in_period=rows_read - out,
        duplicate_copies=copies,
        attempted=attempted or 0,
        successful=successful,
        failed=(attempted or 0) - successful,
        billable=billable,
        unpriced=unpriced,
        quarantined=quarantined,
    )
    return counts, cost, by_file
