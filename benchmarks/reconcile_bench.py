"""Benchmark what reconciliation adds to a period: the ledger alone, then ledger + bill.

    python benchmarks/reconcile_bench.py --rows 1000000 [--bill-lines 100000] [--repeat 3]

Generates one month of N synthetic requests with `run.write_workspace` (benchmarks/run.py) and a
daily FOCUS bill of about --bill-lines usage lines that reproduces the ledger exactly (each
day × model × direction split across sub-accounts), then times, alternating, in this process:

- ledger:    `period_ledger` (load → attribute → price → allocate);
- reconcile: `period_ledger`, then `load_billing`, `reconciliation` and the evidence rows.

After one untimed warm-up run, prints medians of --repeat runs, the added seconds and percent,
and the verdict (a `pass` with zero variance shows the bill and the ledger agree). Not a test:
figures go in the closing note.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import MODELS, write_workspace

from allocation_kit.billing import load_billing
from allocation_kit.config import load_workspace
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.reconcile import (
    reconciliation,
    reconciliation_lines_rows,
    reconciliation_record,
)

PERIOD = "2026-10"
DIRECTIONS = (  # direction, token expression, price column, SkuMeter, TokenCacheAction
    ("uncached_input", "input_tokens - cached_input_tokens", "i", "Input Tokens", "Uncached"),
    ("cached_input", "cached_input_tokens", "c", "Cached Input Tokens", "CacheRead"),
    ("output", "output_tokens", "o", "Output Tokens", None),
)


def _details(direction: str, action: str | None) -> str:
    """SQL json_object arguments of SkuPriceDetails after ModelId."""
    cache = f"'TokenCacheAction', '{action}', " if action else ""
    return f"{cache}'TokenDirection', '{'Output' if direction == 'output' else 'Input'}'"


def write_bill(root: Path, bill_lines: int) -> int:
    """Write root/bill.csv, a daily FOCUS bill of the ledger's billable usage; return its lines."""
    import duckdb

    groups = 31 * len(MODELS) * len(DIRECTIONS)
    parts = max(1, math.ceil(bill_lines / groups))  # sub-accounts per day × model × direction
    prices = ", ".join(
        f"('{m}', {i}::DECIMAL(18, 6), {c}::DECIMAL(18, 6), {o}::DECIMAL(18, 6))"
        for m, (i, c, o) in MODELS.items()
    )
    unpivot = " UNION ALL ".join(
        f"""SELECT day, model, '{d}' AS direction, {tokens} AS tokens,
            CAST(p.{col} / 1000000 AS DECIMAL(38, 12)) AS per_token, '{meter}' AS meter,
            CAST(json_object('ModelId', model, {_details(d, action)}) AS VARCHAR) AS details
        FROM usage JOIN (VALUES {prices}) p(model, i, c, o) USING (model)"""
        for d, tokens, col, meter, action in DIRECTIONS
    )
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE usage AS
        SELECT CAST(timestamp AS DATE) AS day, model,
            sum(input_tokens)::BIGINT AS input_tokens,
            sum(cached_input_tokens)::BIGINT AS cached_input_tokens,
            sum(output_tokens)::BIGINT AS output_tokens
        FROM (SELECT DISTINCT * FROM read_parquet('{root / "requests.parquet"}'))
        WHERE status_code BETWEEN 200 AND 299
            AND timestamp >= TIMESTAMP '2026-10-01' AND timestamp < TIMESTAMP '2026-11-01'
        GROUP BY ALL"""
    )
    con.execute(
        f"""COPY (
        WITH lines AS ({unpivot}), split AS (
            SELECT l.*, k, tokens // {parts} + CASE WHEN k < tokens % {parts} THEN 1 ELSE 0 END
                AS part_tokens
            FROM lines l, range({parts}) r(k)
        )
        SELECT CAST(CAST(part_tokens * per_token AS DECIMAL(38, 12)) AS VARCHAR) AS BilledCost,
            'USD' AS BillingCurrency,
            '2026-10-01T00:00:00Z' AS BillingPeriodStart,
            '2026-11-01T00:00:00Z' AS BillingPeriodEnd,
            'Usage' AS ChargeCategory, '' AS ChargeClass,
            meter || ' for ' || model AS ChargeDescription,
            strftime(day, '%Y-%m-%dT00:00:00Z') AS ChargePeriodStart,
            strftime(day + INTERVAL 1 DAY, '%Y-%m-%dT00:00:00Z') AS ChargePeriodEnd,
            part_tokens AS ConsumedQuantity, 'Tokens' AS ConsumedUnit,
            model || '-' || direction AS SkuId, meter AS SkuMeter, details AS SkuPriceDetails,
            'sub-' || lpad(CAST(k AS VARCHAR), 4, '0') AS SubAccountId,
            'CometAPI' AS ServiceProviderName, 'CometAPI' AS ServiceName
        FROM split ORDER BY day, model, direction, k
    ) TO '{root / "bill.csv"}' (HEADER, DELIMITER ',')"""
    )
    return con.execute(f"SELECT count(*) * {parts * len(DIRECTIONS)} FROM usage").fetchone()[0]


def run_ledger(config: Path) -> float:
    workspace = load_workspace(config)
    started = time.perf_counter()
    period_ledger(workspace, parse_period(PERIOD))
    return time.perf_counter() - started


def run_reconcile(config: Path) -> tuple[float, float, dict]:
    """(seconds in total, seconds after the ledger, the reconciliation record)."""
    workspace = load_workspace(config)
    started = time.perf_counter()
    ledger = period_ledger(workspace, parse_period(PERIOD))
    after_ledger = time.perf_counter()
    kit = workspace.kit
    billing = load_billing(
        ledger.con, kit.billing, workspace.root, workspace.config_path.name, kit.currency
    )
    recon = reconciliation(ledger, billing)
    record = reconciliation_record(recon, kit.review.reviewer_role, datetime.now(UTC))
    reconciliation_lines_rows(recon)
    done = time.perf_counter()
    return done - started, done - after_ledger, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bill-lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="allocation-kit-recon-bench-"))
    started = time.perf_counter()
    config = write_workspace(workdir, args.rows)
    lines = write_bill(workdir, args.bill_lines)
    with config.open("a") as handle:
        handle.write("billing: {path: bill.csv, format: focus}\n")
    size = (workdir / "bill.csv").stat().st_size / 1e6
    print(f"generated {args.rows:,} requests and a {lines:,}-line daily FOCUS bill "
          f"({size:.0f} MB) in {time.perf_counter() - started:.1f} s at {workdir}")  # fmt: skip

    run_reconcile(config)  # warm-up: imports, page cache; not timed
    ledger_runs, total_runs, added_runs = [], [], []
    record: dict = {}
    for _ in range(args.repeat):
        ledger_runs.append(run_ledger(config))
        total, added, record = run_reconcile(config)
        total_runs.append(total)
        added_runs.append(added)
    ledger = statistics.median(ledger_runs)
    total = statistics.median(total_runs)
    added = statistics.median(added_runs)
    print(f"ledger alone        median {ledger:6.2f} s  runs "
          f"{', '.join(f'{r:.2f}' for r in ledger_runs)}")  # fmt: skip
    print(f"ledger + reconcile  median {total:6.2f} s  runs "
          f"{', '.join(f'{r:.2f}' for r in total_runs)}")  # fmt: skip
    print(f"reconciliation      median {added:6.2f} s  (+{added / ledger * 100:.0f}% of the "
          f"ledger alone; wall difference {(total - ledger) / ledger * 100:+.0f}%)")  # fmt: skip
    print(
        f"verdict {record['result']}: ledger {record['ledger_cost']} vs billed "
        f"{record['billed_cost']}, variance {record['variance']} ({record['variance_pct']}%)"
    )


if __name__ == "__main__":
    main()
