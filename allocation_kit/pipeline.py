"""The ledger pipeline of one period: load → attribute → price → allocate, on DuckDB.

`period_ledger` wires the stage functions together. The row-level work is three passes over the
ledger files: one reads the hashes that find duplicates and logical calls (and flags values the
loader rejects); one groups the ordinary rows on the ledger's own columns (`raw_groups`), which
then meet the registry and the prices once per group; one lists the rows a reviewer must see
(exceptions, duplicate candidates) one by one (`items`). Together they write the small table
`lines`. Every later stage reads `lines` or queries the `requests` view again; nothing pulls the
ledger into pandas.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np

from .allocate import AllocationLine, UsageLine, allocation_lines
from .attribute import (
    UNALLOCATED_STATUSES,
    bad_tokens_sql,
    duplicate_candidates,
    register_registry,
    tag_status_sql,
)
from .config import Workspace
from .errors import ConfigError, EmptyPeriod
from .load import (
    CANONICAL_COLUMNS,
    LoadedLedger,
    connect,
    file_sha256,
    load_requests,
    unordered,
)
from .periods import Period
from .present import counted
from .price import (
    COST_TYPE,
    DIRECTIONS,
    PriceLayout,
    band_of_tier_sql,
    billable_sql,
    direction_pico_sql,
    pico_to_cost,
    price_band_sql,
    price_tier_sql,
    register_prices,
)

__all__ = [
    "Counts",
    "PeriodLedger",
    "counted_requests_sql",
    "nothing_in_period",
    "period_filter_sql",
    "period_ledger",
    "timestamp_sql",
]

ITEM_COLUMNS = (
    "request_id",
    "timestamp",
    "team",
    "workload_class",
    "feature",
    "job_id",
    "caller_id",
    "endpoint",
    "status_code",
    "idempotency_key",
    "source_file",
)
# Mixed into the request_id hash of an attempt without idempotency_key (see `_ledger_hashes`).
KEYLESS_SALT = np.uint64(0x9E3779B97F4A7C15)
TOKEN_SUMS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True)
class Counts:
    """Row counts a reviewer needs next to the money."""

    rows_read: int
    out_of_period: int
    in_period: int
    duplicate_copies: int  # extra copies of identical logging duplicates (counted once)
    attempted: int  # unique attempts in the period
    logical_calls: int  # attempts grouped by idempotency_key (retries of one call count once)
    successful: int  # 2xx (or no status recorded)
    failed: int  # non-2xx
    billable: int
    unpriced: int  # billable attempts whose model had no price in effect
    quarantined: int
    served_from_cache: int = 0  # successful attempts the gateway answered from its cache


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
    rows_by_file: dict[str, tuple[int, int]]  # file -> (rows inside, rows outside the period)
    timings: dict[str, float] = field(default_factory=dict)
    validation: list = field(default_factory=list)  # SuiteResult of every suite run
    validation_parameters: dict = field(default_factory=dict)
    input_sha256: Future | None = None  # {path: SHA-256} of the ledger files, being computed
    own_files: tuple[str, ...] = ()  # the files that belong to the period (`own_file`)

    @property
    def out_of_period_by_file(self) -> dict[str, int]:
        return {f: outside for f, (_, outside) in self.rows_by_file.items() if outside}

    @property
    def period_files(self) -> list[str]:
        """The files that belong to this period (`own_file`). Their rows outside the period are
        strays (late or early logging) and are listed one by one in the exception queue; other
        files' rows are only counted."""
        return list(self.own_files)

    def cost_by_status(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.allocation:
            status = line.allocation_status
            totals[status] = totals.get(status, Decimal(0)) + line.cost
        return totals


def timestamp_sql(moment: datetime) -> str:
    """A naive-UTC TIMESTAMP literal, comparable with the ledger's `timestamp` column."""
    return f"TIMESTAMP '{moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}'"


def period_filter_sql(period: Period) -> str:
    """SQL condition: the row's timestamp is inside [start, end) of the period."""
    return f"timestamp >= {timestamp_sql(period.start)} AND timestamp < {timestamp_sql(period.end)}"


def _lit(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _quarantined_sql(quarantine: dict[str, str] | None) -> tuple[str, str]:
    """SQL (condition, detail) over the ledger row `r`: quarantined by a token check or by a
    failed row-level expectation that no pipeline rule settles (`quarantine`)."""
    bad, bad_detail = bad_tokens_sql("r")
    if quarantine:
        bad = "(" + " OR ".join([bad, *(f"({c})" for c in quarantine.values())]) + ")"
        named = " ".join(
            f"WHEN {c} THEN {_lit('failed expectation ' + name)}" for name, c in quarantine.items()
        )
        bad_detail = f"COALESCE({bad_detail}, CASE {named} END)"
    return bad, bad_detail


def attributed_sql(
    failed_calls_billable: bool,
    with_candidates: bool,
    quarantine: dict[str, str] | None = None,
    layout: PriceLayout | None = None,
    rows: str = "period_requests",
) -> str:
    """SQL: every attempt of `rows` (by default `period_requests`) with its tag pair's status
    (table `tags`), billability, the price entry and tier it pays, cost per direction in
    picodollars, whether it is an exception (unallocated, quarantined or unpriced) and whether
    it is itemised (an exception or, `with_candidates`, a duplicate candidate: a row a reviewer
    must see)."""
    bad, bad_detail = _quarantined_sql(quarantine)
    billable = billable_sql("r", failed_calls_billable)
    candidate = "d.h IS NOT NULL" if with_candidates else "false"
    join_candidates = (
        "LEFT JOIN dup_hashes d ON d.h = hash(r.request_id)" if with_candidates else ""
    )
    picos = ",\n                ".join(
        f"CASE WHEN {billable} AND p.model IS NOT NULL THEN {expr} ELSE 0 END AS pico_{name}"
        for name, expr in direction_pico_sql("r", "p", layout).items()
    )
    batch = "r.batch" if layout and layout.batch else "false"
    # plain booleans (not the status strings) decide what is an exception: this runs per row
    exception = f"({bad} OR s.unallocated OR ({billable} AND p.model IS NULL))"
    return f"""
        SELECT *, exception OR dup_candidate AS itemised
        FROM (
            SELECT r.*, s.tag_id, {bad} AS quarantined,
                CASE WHEN {bad} THEN 'quarantined' ELSE s.allocation_status END
                    AS allocation_status,
                CASE WHEN {bad} THEN NULL ELSE s.owner_team END AS owner_team,
                COALESCE({bad_detail}, s.detail) AS detail,
                {candidate} AS dup_candidate, {billable} AS billable, {exception} AS exception,
                (r.status_code IS NULL OR r.status_code BETWEEN 200 AND 299) AS successful,
                p.model IS NOT NULL AS priced,
                {price_band_sql("r", "p", layout)} AS price_band,
                p.effective_from AS price_from, {price_tier_sql("r", "p", layout)} AS price_tier,
                {batch} AS batch_key,
                {picos}
            FROM {rows} r
            JOIN tags s ON s.application IS NOT DISTINCT FROM r.application
                AND s.team IS NOT DISTINCT FROM r.team
            {join_candidates}
            LEFT JOIN prices p ON p.model = r.model AND r.timestamp >= p.effective_from
                AND (p.effective_to IS NULL OR r.timestamp < p.effective_to)
        )"""


# The grain of `lines`: owner line × model × day × billability (× price band, when the snapshot
# has batch or tier prices).
KEYS = (
    "allocation_status",
    "owner_team",
    "application",
    "environment",
    "model",
    "day",
    "billable",
    "priced",
    "price_band",
)


def _cost_columns(pico: Callable[[str], str]) -> str:
    """cost and cost_<direction>, DECIMAL(38, 12), from picodollar expressions."""
    total = " + ".join(pico(d) for d in DIRECTIONS)
    parts = [f"{pico_to_cost(total)} AS cost"]
    parts += [f"{pico_to_cost(pico(d))} AS cost_{d}" for d in DIRECTIONS]
    return ", ".join(parts)


# What identifies a group of ordinary attempts (and the price they pay) in `line_groups`.
GROUP_KEYS = (
    "tag_id",
    "environment",
    "model",
    "day",
    "billable",
    "price_from",
    "price_tier",
    "batch_key",
)


def line_groups_sql(
    con: duckdb.DuckDBPyConnection,
    failed_calls_billable: bool,
    quarantine: dict[str, str] | None,
    layout: PriceLayout,
    absent: frozenset[str] = frozenset(),
) -> tuple[str, str]:
    """SQL (raw groups, line groups). Line groups: the attempts that are no exception
    (duplicate candidates included: `net_groups_sql` takes them out), grouped by tag pair,
    environment, model, day, billability and the price entry and tier they pay, with their
    token sums.

    The ledger is grouped first on its own columns (raw groups, the table `raw_groups`; the tag
    pairs of `tags` come from it), before any join: by tags, environment,
    model and day, plus what decides the price without looking it up per row — the time
    segment between price changes that fall inside a day, and the band of input tokens between
    the snapshot's long-context thresholds. Each group then meets `tags` and `prices` once
    (any of its timestamps finds its entry: no price changes inside a segment).

    Costing happens after grouping: these rows pass every token check (cached + cache writes
    <= input, reasoning <= output), so their cost is linear in their token sums and the sums
    priced once per group give the exact cost. The query reads no request_id, and does not sum
    the canonical columns the ledger does not have (`absent`: constant 0 tokens or no recorded
    cost), whose sums it knows.
    """
    bad, _ = _quarantined_sql(quarantine)
    billable = billable_sql("r", failed_calls_billable)
    batch = "r.batch" if layout.batch else "false"
    moments = sorted(
        {
            moment
            for row in con.execute(
                "SELECT effective_from FROM prices UNION SELECT effective_to FROM prices"
            ).fetchall()
            for moment in row
            if moment is not None and moment.time() != dt_time(0)
        }
    )
    segment = " + ".join(f"CAST(r.timestamp >= {timestamp_sql(m)} AS INTEGER)" for m in moments)
    thresholds: list[int] = []
    for t in range(1, layout.tiers + 1):
        found = con.execute(f"SELECT DISTINCT tier{t}_above FROM prices").fetchall()
        thresholds += [row[0] for row in found if row[0] is not None]
    thresholds = sorted(set(thresholds), reverse=True)
    floor = " ".join(f"WHEN r.input_tokens > {t} THEN {t}" for t in thresholds)
    floor = f"CASE {floor} END" if thresholds else "CAST(NULL AS BIGINT)"
    # the entry's tier: the highest whose threshold the band's floor reaches
    tier = " ".join(
        f"WHEN g.input_floor >= p.tier{t}_above THEN {t}" for t in range(layout.tiers, 0, -1)
    )
    tier = f"CASE {tier} ELSE 0 END" if layout.tiers else "0"
    sums = ", ".join(
        f"CAST(0 AS HUGEINT) AS {c}" if c in absent else f"sum({c}) AS {c}" for c in TOKEN_SUMS
    )
    recorded = (
        "CAST(NULL AS DECIMAL(38, 12)) AS recorded_cost, CAST(0 AS BIGINT) AS recorded_requests"
        if "recorded_cost" in absent
        else "sum(r.recorded_cost) AS recorded_cost, count(r.recorded_cost) AS recorded_requests"
    )
    totals = ", ".join(f"sum(g.{c}) AS {c}" for c in TOKEN_SUMS)
    grouped = f"""
        SELECT s.tag_id, g.environment, g.model, g.day, g.billable,
            p.effective_from AS price_from, {tier} AS price_tier, g.batch_key,
            sum(g.requests) AS requests, sum(g.successful_requests) AS successful_requests,
            {totals}, sum(g.recorded_cost) AS recorded_cost,
            sum(g.recorded_requests) AS recorded_requests
        FROM raw_groups g
        JOIN tags s ON s.application IS NOT DISTINCT FROM g.application
            AND s.team IS NOT DISTINCT FROM g.team
        LEFT JOIN prices p ON p.model = g.model AND g.first_at >= p.effective_from
            AND (p.effective_to IS NULL OR g.first_at < p.effective_to)
        WHERE NOT (g.quarantined OR s.unallocated OR (g.billable AND p.model IS NULL))
        GROUP BY ALL"""
    raw = f"""
            SELECT r.application, r.team, r.environment, r.model,
                CAST(r.timestamp AS DATE) AS day, {segment or "0"} AS segment,
                {billable} AS billable, {batch} AS batch_key, {floor} AS input_floor,
                {bad} AS quarantined, min(r.timestamp) AS first_at, count(*) AS requests,
                count(*) FILTER (WHERE r.status_code IS NULL OR r.status_code BETWEEN 200 AND 299)
                    AS successful_requests,
                {sums}, {recorded}
            FROM period_requests r GROUP BY ALL"""
    return raw, grouped


def unpriced_models_sql() -> str:
    """SQL: the models of `raw_groups` with billable calls that no price entry covers."""
    return """
        SELECT DISTINCT g.model FROM raw_groups g
        LEFT JOIN prices p ON p.model = g.model AND g.first_at >= p.effective_from
            AND (p.effective_to IS NULL OR g.first_at < p.effective_to)
        WHERE g.billable AND p.model IS NULL"""


def net_groups_sql() -> str:
    """SQL: `line_groups` less the duplicate candidates in it (itemised in `items` instead)."""
    keys = ", ".join(GROUP_KEYS)
    negated = ", ".join(f"-{c} AS {c}" for c in TOKEN_SUMS)
    sums = ", ".join(f"sum({c}) AS {c}" for c in TOKEN_SUMS)
    return f"""
        SELECT {keys}, sum(requests) AS requests,
            sum(successful_requests) AS successful_requests, {sums},
            sum(recorded_cost) AS recorded_cost, sum(recorded_requests) AS recorded_requests
        FROM (
            SELECT * FROM line_groups
            UNION ALL BY NAME
            SELECT {keys}, -1 AS requests, -CAST(successful AS INTEGER) AS successful_requests,
                {negated}, -recorded_cost AS recorded_cost,
                -CAST(recorded_cost IS NOT NULL AS INTEGER) AS recorded_requests
            FROM items WHERE dup_candidate AND NOT exception
        ) GROUP BY ALL HAVING sum(requests) > 0"""


def aggregated_lines_sql(layout: PriceLayout | None = None) -> str:
    """SQL: `net_groups_sql` as lines: given their status and owner from `tags`, their price
    band, and their cost per direction from their token sums and the price entry they pay."""
    types = CANONICAL_COLUMNS | {"source_file": "VARCHAR", "detail": "VARCHAR"}
    items = ", ".join(f"CAST(NULL AS {types[c]}) AS {c}" for c in (*ITEM_COLUMNS, "detail"))
    tokens = ", ".join(f"CAST(g.{c} AS BIGINT) AS {c}" for c in TOKEN_SUMS)
    picos = direction_pico_sql("g", "p", layout, tier="price_tier")
    picos["per_call"] = f"g.requests * {picos['per_call']}"
    charged = {
        d: f"(CASE WHEN g.billable AND p.model IS NOT NULL THEN {e} ELSE 0 END)"
        for d, e in picos.items()
    }
    return f"""
        SELECT s.allocation_status, s.owner_team, s.application, g.environment, g.model, g.day,
            g.billable, g.price_from IS NOT NULL AS priced,
            {band_of_tier_sql("g.price_tier", "g.batch_key", layout)}
                AS price_band,
            false AS dup_candidate, {items}, CAST(g.requests AS BIGINT) AS requests,
            CAST(g.successful_requests AS BIGINT) AS successful_requests, {tokens},
            {_cost_columns(lambda d: charged[d])},
            CAST(0 AS BIGINT) AS duplicate_copies, g.recorded_cost,
            CAST(g.recorded_requests AS BIGINT) AS recorded_requests
        FROM (SELECT *, batch_key AS batch FROM ({net_groups_sql()})) g
        JOIN tags s USING (tag_id)
        LEFT JOIN prices p ON p.model = g.model AND p.effective_from = g.price_from"""


def item_candidates_sql(
    failed_calls_billable: bool, quarantine: dict[str, str] | None, with_candidates: bool
) -> str:
    """SQL: the attempts of `period_requests` that may be itemised, found before any join so
    that only these (a few percent) meet `tags`, the duplicate candidates and `prices`: a
    quarantined row, a tag pair whose status is unallocated, a billable call of a model some
    group found unpriced (`unpriced_models`), a repeated request_id hash. A superset: `itemised`
    then decides exactly."""
    bad, _ = _quarantined_sql(quarantine)
    billable = billable_sql("r", failed_calls_billable)
    parts = [
        bad,
        "hash(r.application, r.team) IN "
        "(SELECT hash(application, team) FROM tags WHERE unallocated)",
        f"({billable} AND r.model IN (SELECT model FROM unpriced_models))",
    ]
    if with_candidates:
        parts.append("hash(r.request_id) IN (SELECT h FROM dup_hashes)")
    return f"(SELECT * FROM period_requests r WHERE {' OR '.join(parts)})"


def itemised_rows_sql(source: str = "attributed") -> str:
    """SQL: the attempts of `source` (an `attributed_sql` view) a reviewer must see, one row
    each, with a hash of their content."""
    # what makes two rows the same logged request (the file it came from does not)
    content = ", ".join(c for c in CANONICAL_COLUMNS if c != "request_id")
    keys = ", ".join(KEYS).replace("day", "CAST(timestamp AS DATE) AS day")
    picos = ", ".join(f"pico_{d}" for d in DIRECTIONS)
    return f"""
        SELECT {keys}, tag_id, price_from, price_tier, batch_key, exception, successful,
            dup_candidate, {", ".join(ITEM_COLUMNS)}, detail, {", ".join(TOKEN_SUMS)}, {picos},
            hash({content}) AS content_hash, recorded_cost
        FROM {source} WHERE itemised"""


def kept_items_sql() -> str:
    """SQL: the rows of `items` that count: the first of identical copies of one request_id,
    and every copy when the copies differ (they are quarantined), with `versions` and `copies`.
    Only duplicate candidates can have copies; the other items are kept as they are."""
    return """
        WITH versions AS (
            SELECT request_id, count(DISTINCT content_hash) AS versions, count(*) AS copies
            FROM items WHERE dup_candidate GROUP BY request_id
        ), ranked AS (
            SELECT i.*, v.versions, v.copies,
                row_number() OVER (PARTITION BY i.request_id, i.content_hash
                                   ORDER BY i.source_file) AS copy
            FROM items i JOIN versions v USING (request_id) WHERE i.dup_candidate
        )
        SELECT * FROM ranked WHERE versions > 1 OR copy = 1
        UNION ALL BY NAME
        SELECT *, 1 AS versions, 1 AS copies, 1 AS copy FROM items WHERE NOT dup_candidate"""


def itemised_lines_sql() -> str:
    """SQL: `items` as lines. Identical copies of one request_id collapse into one line (its
    `duplicate_copies` counts the rest); different content under one id quarantines each copy."""
    others = ", ".join(k for k in KEYS if k not in {"allocation_status", "owner_team"})
    return f"""
        SELECT
            CASE WHEN versions > 1 THEN 'quarantined' ELSE allocation_status END
                AS allocation_status,
            CASE WHEN versions > 1 THEN NULL ELSE owner_team END AS owner_team,
            {others}, dup_candidate, {", ".join(ITEM_COLUMNS)},
            CASE WHEN versions > 1
                 THEN 'request_id logged ' || copies || ' times with different content'
                 ELSE detail END AS detail,
            CAST(1 AS BIGINT) AS requests,
            CAST(CASE WHEN successful THEN 1 ELSE 0 END AS BIGINT) AS successful_requests,
            {", ".join(TOKEN_SUMS)}, {_cost_columns(lambda d: f"pico_{d}")},
            CASE WHEN versions = 1 THEN copies - 1 ELSE 0 END AS duplicate_copies,
            recorded_cost, CAST(recorded_cost IS NOT NULL AS BIGINT) AS recorded_requests
        FROM ({kept_items_sql()})"""


def counted_requests_sql() -> str:
    """SQL: the rows of `period_requests` with a column `counted`, 1 each, plus one row per
    identical logging duplicate (from `lines`) whose `counted` takes its extra copies back, so
    that `sum(counted)` (and `sum(counted * input_tokens)`) counts each request once, as `lines`
    does: identical copies once, copies with different content each."""
    columns = ", ".join(c for c in CANONICAL_COLUMNS if c in {*ITEM_COLUMNS, *KEYS, *TOKEN_SUMS})
    return f"""
        SELECT *, 1 AS counted FROM period_requests
        UNION ALL BY NAME
        SELECT {columns}, -duplicate_copies AS counted FROM lines WHERE duplicate_copies > 0"""


def period_ledger(
    workspace: Workspace,
    period: Period,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: Callable[[str], None] | None = None,
    validate: bool = True,
) -> PeriodLedger:
    """Load, validate, attribute, price and allocate the period's request ledger.

    `validate=False` skips the Great Expectations suites (benchmarks time them separately).
    """
    con = con or connect()
    timings: dict[str, float] = {}
    say = progress or (lambda _msg: None)

    def stage(name: str, started: float, note: str = "") -> None:
        timings[name] = time.perf_counter() - started
        say(f"{name:<10} {timings[name]:6.2f} s  {note}".rstrip())

    started = time.perf_counter()
    loaded = load_requests(
        con,
        workspace.kit.requests,
        workspace.root,
        str(workspace.config_path),
        check=False,
        aliases=workspace.ledger_aliases,
        callers=workspace.ledger_callers,
        priced=workspace.priced_models,
    )
    # The manifest's SHA-256 of every ledger file: hashlib releases the GIL, so the files are
    # read and hashed on a thread while DuckDB works.
    hashing = ThreadPoolExecutor(1)
    input_sha256 = hashing.submit(lambda: {f: file_sha256(f) for f in loaded.files})
    hashing.shutdown(wait=False)
    with unordered(con):  # the hashes are sorted anyway
        ids, calls, rows = _ledger_hashes(con, loaded, period)
    loaded = replace(loaded, rows=rows)
    if not len(ids):
        raise nothing_in_period(con, loaded, period)
    register_registry(con, workspace.registry)
    layout = register_prices(con, workspace.pricing)
    inside = period_filter_sql(period)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW period_requests AS SELECT * FROM requests WHERE {inside}"
    )
    by_file = rows_by_file(con, period, workspace.root)
    prefix = str(workspace.root.resolve()).rstrip("/") + "/"
    empty = []
    for path in loaded.files:  # a file with no rows (a failed export?) is listed all the same
        name = str(path.resolve())
        relative = name[len(prefix) :] if name.startswith(prefix) else name
        if relative not in by_file:
            by_file[relative] = (name, 0, 0, 0)
            empty.append(relative)
    note = f"; no rows in {', '.join(empty)}" if empty else ""
    files = counted(len(loaded.files), "file")
    stage("load", started, f"{counted(loaded.rows, 'row')} from {files}{note}")

    started = time.perf_counter()
    suites, parameters = (
        period_validation(con, workspace, period, by_file=by_file) if validate else ([], {})
    )
    quarantine = _settled_by_expectations(suites)
    failed = sum(r.success is False for s in suites for r in s.results)
    stage("validate", started, f"{failed} expectation(s) failed, {len(quarantine)} quarantine")

    started = time.perf_counter()
    candidates, logical_calls = duplicate_candidates(ids, calls)
    del ids, calls
    con.register("dup_hashes_arrow", candidates)
    con.execute("CREATE OR REPLACE TEMP TABLE dup_hashes AS SELECT h FROM dup_hashes_arrow")
    con.unregister("dup_hashes_arrow")
    stage("dedupe", started, f"{candidates.num_rows:,} repeated request_id(s)")

    started = time.perf_counter()
    sql = attributed_sql(
        workspace.pricing.failed_calls_billable, candidates.num_rows > 0, quarantine, layout
    )
    # Temp tables whose row order nothing reads: every later query groups or orders them.
    with unordered(con):
        billable_failed = workspace.pricing.failed_calls_billable
        absent = frozenset(c for c, source in loaded.columns.items() if not source)
        raw, groups = line_groups_sql(con, billable_failed, quarantine, layout, absent)
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_groups AS {raw}")
        unallocated = ", ".join(_lit(s) for s in UNALLOCATED_STATUSES)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE tags AS SELECT *, "
            f"allocation_status IN ({unallocated}) AS unallocated "
            f"FROM ({tag_status_sql('raw_groups')})"
        )
        con.execute(f"CREATE OR REPLACE TEMP VIEW attributed AS {sql}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE line_groups AS {groups}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE unpriced_models AS {unpriced_models_sql()}")
        some = item_candidates_sql(billable_failed, quarantine, candidates.num_rows > 0)
        items = attributed_sql(billable_failed, candidates.num_rows > 0, quarantine, layout, some)
        con.execute(f"CREATE OR REPLACE TEMP TABLE items AS {itemised_rows_sql(f'({items})')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE lines AS {aggregated_lines_sql(layout)}")
        con.execute(f"INSERT INTO lines BY NAME {itemised_lines_sql()}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW counted_requests AS {counted_requests_sql()}")
    stage("price", started)

    started = time.perf_counter()
    sums = ", ".join(f"sum({c})::BIGINT" for c in TOKEN_SUMS)
    usage = [
        UsageLine(*row)
        for row in con.execute(
            f"""SELECT allocation_status, owner_team, application, environment,
                sum(requests)::BIGINT, {sums},
                COALESCE(sum(requests) FILTER (WHERE billable AND NOT priced), 0)::BIGINT,
                CAST(sum(cost) AS {COST_TYPE}),
                COALESCE(sum(requests) FILTER (WHERE billable), 0)::BIGINT,
                COALESCE(sum(input_tokens + output_tokens) FILTER (WHERE billable), 0)::BIGINT
            FROM lines GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    ]
    allocation = allocation_lines(usage, workspace.registry)
    counts, ledger_cost = _counts(con, loaded.rows, logical_calls, by_file)
    unpriced = ""
    if counts.unpriced:  # said where the run is watched, not only in the packet
        models = [
            m for (m,) in con.execute("SELECT model FROM unpriced_models ORDER BY 1").fetchall()
        ]
        shown = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
        unpriced = (
            f"{counts.unpriced:,} billable call{'s' if counts.unpriced != 1 else ''} "
            f"without a price in effect ({shown})"
        )
    stage("allocate", started, unpriced)
    return PeriodLedger(
        workspace=workspace,
        period=period,
        con=con,
        loaded=loaded,
        usage=usage,
        allocation=allocation,
        counts=counts,
        ledger_cost=ledger_cost,
        rows_by_file={f: (inside, outside) for f, (_, inside, outside, _) in by_file.items()},
        own_files=tuple(f for f, (_, *counts) in by_file.items() if own_file(*counts)),
        timings=timings,
        validation=suites,
        validation_parameters=parameters,
        input_sha256=input_sha256,
    )


def _ledger_hashes(
    con: duckdb.DuckDBPyConnection, loaded: LoadedLedger, period: Period
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """One pass over the ledger files: the hashes `duplicate_candidates` reads, of the rows
    inside the period (no idempotency_key hashes when the ledger has no such column), and the
    number of rows read. The same pass flags rows with values the loader rejects; if there are
    any (or no rows at all), `check_values` names the first.

    An attempt without an idempotency_key is its own logical call: its key hash becomes its
    request_id hash XOR a constant, so it cannot meet another attempt's key (hashing
    `'id:' || request_id` in SQL instead builds 10M strings: a fifth of the pass).
    """

    def select(c: dict[str, str]) -> str:
        ts = c["timestamp"]
        inside = (
            f"COALESCE({ts} >= {timestamp_sql(period.start)} "
            f"AND {ts} < {timestamp_sql(period.end)}, false)"
        )
        calls = f"hash({c['idempotency_key']}) AS k, " if loaded.columns["idempotency_key"] else ""
        return f"hash({c['request_id']}) AS h, {calls}{inside} AS inside"

    try:
        found = con.execute(loaded.scan_sql(select)).fetchnumpy()
    except duckdb.Error as exc:  # a CSV row past the part DuckDB's sniffer read, say
        raise loaded.unreadable(exc) from None
    ids = np.asarray(found["h"], dtype=np.uint64)
    calls = np.asarray(found["k"], dtype=np.uint64) if "k" in found else None
    inside_mask, bad = (np.asarray(found[n], dtype=bool) for n in ("inside", "bad"))
    if not len(bad) or bad.any():
        loaded.check_values(con)  # raises InputError naming the file and row
    if calls is not None:
        (null_hash,) = con.execute("SELECT hash(NULL)").fetchone()
        keyless = calls == null_hash
        calls[keyless] = ids[keyless] ^ KEYLESS_SALT
    if not inside_mask.all():
        ids = ids[inside_mask]
        calls = None if calls is None else calls[inside_mask]
    return ids, calls, len(bad)


def unpriced_in_period(
    con: duckdb.DuckDBPyConnection, workspace: Workspace, period: Period
) -> list[tuple[str, int, datetime, datetime | None, datetime | None]]:
    """(model, billable calls in the period without a price in effect (a request_id logged
    twice counts once), the first of them, the start of the model's first price entry and the
    end of its last (None: no entry; an open end)), most calls first: what `run` will list as
    unpriced, for `validate` to say before it (a snapshot imported today starts after last
    month's calls)."""
    register_prices(con, workspace.pricing)
    billable = billable_sql("r", workspace.pricing.failed_calls_billable)
    return con.execute(
        f"""SELECT r.model, count(DISTINCT r.request_id)::BIGINT AS calls,
            min(r.timestamp) AS first_call,
            (SELECT min(effective_from) FROM prices p2 WHERE p2.model = r.model) AS first_from,
            (SELECT CASE WHEN bool_or(effective_to IS NULL) THEN NULL ELSE max(effective_to) END
             FROM prices p3 WHERE p3.model = r.model) AS last_to
        FROM requests r
        WHERE r.{period_filter_sql(period).replace(" AND timestamp", " AND r.timestamp")}
            AND {billable} AND NOT EXISTS (
            SELECT 1 FROM prices p WHERE p.model = r.model AND r.timestamp >= p.effective_from
                AND (p.effective_to IS NULL OR r.timestamp < p.effective_to))
        GROUP BY r.model ORDER BY calls DESC, r.model"""
    ).fetchall()


def nothing_in_period(con: duckdb.DuckDBPyConnection, loaded: LoadedLedger, period: Period):
    """EmptyPeriod for a ledger none of whose rows fall in the period, with the span they cover
    (most likely the period or the ledger path is mistyped)."""
    # formatted by DuckDB: a timestamp past year 9999 has no Python datetime
    first, last = con.execute(
        "SELECT strftime(min(timestamp), '%Y-%m-%d %H:%M'), "
        "strftime(max(timestamp), '%Y-%m-%d %H:%M') FROM requests"
    ).fetchone()
    files = ", ".join(str(f) for f in loaded.files)
    span = f"{period.start:%Y-%m-%d} to {period.end - timedelta(days=1):%Y-%m-%d}"
    return EmptyPeriod(
        files,
        None,
        f"none of its {counted(loaded.rows, 'row')} falls in {period.label} ({span} UTC); they "
        "run from "
        f"{first} to {last} UTC: check the period or the ledger path",
    )


# Rows logged just outside a period: within this of its bounds (the widest UTC offset, +14:00:
# a month exported by local time holds hours of the next month's, never more).
NEAR = timedelta(hours=14)
# Rows further out are few in a file of the period's own: at most STRAY_ROWS, and at most this
# share of its rows. More of them are another period's rows (the rest of the month beside a date
# range), not rows logged outside this one.
STRAY_SHARE = Decimal("0.1")
STRAY_ROWS = 100


def rows_by_file(
    con: duckdb.DuckDBPyConnection, period: Period, root
) -> dict[str, tuple[str, int, int, int]]:
    """{ledger file relative to the workspace: (its name in the view `requests`, rows inside
    the period, rows outside it, rows outside it by more than NEAR)}."""
    inside = period_filter_sql(period)
    near = (
        f"timestamp >= {timestamp_sql(period.start - NEAR)} "
        f"AND timestamp < {timestamp_sql(period.end + NEAR)}"
    )
    prefix = str(root.resolve()).rstrip("/") + "/"
    return {  # grouped by the raw file name (cheap) and made relative here
        (name[len(prefix) :] if name.startswith(prefix) else name): (name, n_in, n_out, n_far)
        for name, n_in, n_out, n_far in con.execute(
            f"""SELECT source_path, count(*) FILTER (WHERE {inside})::BIGINT,
                count(*) FILTER (WHERE NOT ({inside}))::BIGINT,
                count(*) FILTER (WHERE NOT ({near}))::BIGINT
            FROM requests GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    }


def own_file(inside: int, outside: int, far: int) -> bool:
    """Whether a ledger file with `inside` rows in the period and `outside` rows outside it, of
    which `far` are more than NEAR outside, belongs to the period: most of its rows fall inside,
    and the far ones are few (at most STRAY_ROWS and STRAY_SHARE of its rows). A month's file
    is no date range's own when the range leaves out more than a day or so of it: the rest of
    the month is no stray of the range, whatever the size of the file."""
    few = far <= STRAY_ROWS and far <= STRAY_SHARE * (inside + outside)
    return inside > outside and few


def reviewed_rows_sql(period: Period, by_file: dict[str, tuple[str, int, int, int]]) -> str:
    """SQL: the ledger rows a period's review covers: every row inside the period, and the
    strays of the period's own files (`own_file`). Other files' rows outside the period (the
    months beside it, when the ledger path is a wildcard; the rest of the month beside a date
    range) are only counted."""
    own = [name for name, *counts in by_file.values() if own_file(*counts) and counts[1]]
    strays = f" OR source_path IN ({', '.join(_lit(n) for n in own)})" if own else ""
    return f"SELECT * FROM requests WHERE ({period_filter_sql(period)}){strays}"


def period_validation(
    con: duckdb.DuckDBPyConnection,
    workspace: Workspace,
    period: Period,
    relations: dict[str, str] | None = None,
    by_file: dict[str, tuple[str, int, int, int]] | None = None,
) -> tuple[list, dict]:
    """Run the Great Expectations suites on the ledger rows the review covers (view
    `reviewed_requests`, see `reviewed_rows_sql`), the registry and the pricing snapshot; a
    failed blocking suite stops the review (ConfigError naming it)."""
    from .config import read_yaml
    from .validate import (
        pricing_frame,
        registry_frame,
        suite_parameters,
        validation_results,
    )

    registry = read_yaml(workspace.registry_path)
    parameters = suite_parameters(
        period, registry, workspace.kit.currency, workspace.kit.expectations.mostly_registered
    )
    if relations is None:
        by_file = by_file if by_file is not None else rows_by_file(con, period, workspace.root)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW reviewed_requests AS {reviewed_rows_sql(period, by_file)}"
        )
        relations = {"requests": "reviewed_requests"}
    suites = validation_results(
        con,
        workspace.suites_dir,
        parameters,
        relations=relations,
        frames={
            "registry": registry_frame(registry),
            "pricing": pricing_frame(read_yaml(workspace.pricing_path)),
        },
    )
    stop_if_blocking_failed(suites)
    return suites, parameters


def stop_if_blocking_failed(suites: list) -> None:
    """ConfigError naming the first failed expectation of a failed blocking suite, if any."""
    for suite in suites:
        if suite.blocking and not suite.success:
            failed = next(r for r in suite.results if r.success is False)
            found = ""
            if failed.unexpected_count:
                values = list(dict.fromkeys(map(str, failed.sample_unexpected)))[:5]
                seen = f", such as {', '.join(map(repr, values))}" if values else ""
                found = f" by {counted(failed.unexpected_count, 'value')}{seen}"
            raise ConfigError(
                Path(os.path.normpath(suite.path)),  # a kit.yaml path with ../ in it, shortened
                failed.name,
                f"blocking expectation failed{found}",
            )


def _settled_by_expectations(suites: list) -> dict[str, str]:
    from .validate import quarantine_conditions

    return quarantine_conditions(suites, row="r")


def _counts(
    con: duckdb.DuckDBPyConnection,
    rows_read: int,
    logical_calls: int,
    by_file: dict[str, tuple[str, int, int, int]],
) -> tuple[Counts, Decimal]:
    (attempted, successful, billable, unpriced, quarantined, copies, cost, cached) = con.execute(
        f"""SELECT COALESCE(sum(requests), 0)::BIGINT,
            COALESCE(sum(successful_requests), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE billable), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE billable AND NOT priced), 0)::BIGINT,
            COALESCE(sum(requests) FILTER (WHERE allocation_status = 'quarantined'), 0)::BIGINT,
            COALESCE(sum(duplicate_copies), 0)::BIGINT,
            CAST(COALESCE(sum(cost), 0) AS {COST_TYPE}),
            -- successful but not billable: only a cache hit is (see `billable_sql`)
            COALESCE(sum(successful_requests) FILTER (WHERE NOT billable), 0)::BIGINT
        FROM lines"""
    ).fetchall()[0]
    out = sum(outside for _, _, outside, _ in by_file.values())
    counts = Counts(
        rows_read=rows_read,
        out_of_period=out,
        in_period=rows_read - out,
        duplicate_copies=copies,
        attempted=attempted,
        logical_calls=logical_calls,
        successful=successful,
        failed=attempted - successful,
        billable=billable,
        unpriced=unpriced,
        quarantined=quarantined,
        served_from_cache=cached,
    )
    return counts, cost
