"""Billing: read the provider's bill into DuckDB as `billing_lines`, one row per bill line.

Two formats (kit.yaml `billing.format`):

- `focus`: a FOCUS 1.0–1.3 cost and usage export, CSV or Parquet. The model comes from
  `SkuPriceDetails.ModelId`; the token direction from `SkuPriceDetails` (`TokenDirection` +
  `TokenCacheAction`, or the older `TokenType`), else from the `SkuMeter` text; a line metered
  in requests, calls or images is `per_call`. `billing.columns` renames FOCUS columns
  (`{BilledCost: Cost}`) and may name a request-count column (`{request_count: x_Requests}`).
- `generic`: a CSV with one row per date, model (and optionally direction), with quantity and
  cost, mapped by `billing.columns` (`{date: Day, model: Model, cost: Amount, …}`). A date is a
  day (2026-10-05) or a month (2026-10); the billing period is that calendar month.

Only this module reads the bill, in one pass per file. `billing_lines` is a view over one temp
table per file (rows in file order, so row_number is exact without copying them). Every problem
is one InputError line naming the file, the row and the column. Money stays exact:
DECIMAL(38,12), the ledger's scale (a BilledCost with more than 12 decimals is rounded there).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .config import BillingSource
from .errors import ConfigError, InputError
from .load import matching_files
from .price import COST_TYPE, DIRECTIONS

__all__ = [
    "BILLING_COLUMNS",
    "CHARGE_CATEGORIES",
    "FOCUS_REQUIRED",
    "GENERIC_FIELDS",
    "BillingLoaded",
    "load_billing",
]

# normalised column -> DuckDB type of `billing_lines`, in order. Timestamps are naive UTC, like
# the ledger's; periods are [start, end).
BILLING_COLUMNS: dict[str, str] = {
    "source_file": "VARCHAR",
    "row_number": "BIGINT",  # 1-based data row of the file (the header is not a row)
    "billing_period_start": "TIMESTAMP",
    "billing_period_end": "TIMESTAMP",
    "charge_period_start": "TIMESTAMP",
    "charge_period_end": "TIMESTAMP",
    "charge_category": "VARCHAR",  # Usage, Tax, Credit, Adjustment, Purchase
    "charge_class": "VARCHAR",  # NULL or Correction
    "description": "VARCHAR",
    "billed_cost": COST_TYPE,
    "effective_cost": COST_TYPE,  # FOCUS EffectiveCost (commitment drawdown), NULL when absent
    "currency": "VARCHAR",
    "consumed_quantity": COST_TYPE,
    "consumed_unit": "VARCHAR",
    "pricing_quantity": COST_TYPE,
    "pricing_unit": "VARCHAR",
    "list_unit_price": COST_TYPE,
    "sku_id": "VARCHAR",
    "sku_meter": "VARCHAR",
    "model": "VARCHAR",
    "direction": "VARCHAR",  # uncached_input, cached_input, cache_write, output, per_call or NULL
    # the line's tokens (or calls, for per_call) in plain units, scaled from ConsumedQuantity or
    # else PricingQuantity by its unit ("1000000 Tokens"); NULL when the unit is neither
    "quantity": COST_TYPE,
    "quantity_unit": "VARCHAR",  # tokens | requests | NULL
    "provider_name": "VARCHAR",
    "service_name": "VARCHAR",
    "tags": "VARCHAR",  # JSON text
    "request_count": "BIGINT",
}
CHARGE_CATEGORIES = ("Usage", "Tax", "Credit", "Adjustment", "Purchase")
FOCUS_REQUIRED = (
    "BilledCost",
    "BillingCurrency",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)
FOCUS_OPTIONAL = (
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeClass",
    "ChargeDescription",
    "EffectiveCost",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "ListUnitPrice",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "ServiceProviderName",  # FOCUS 1.3
    "ProviderName",  # FOCUS 1.0–1.2
    "ServiceName",
    "Tags",
    "request_count",  # not FOCUS: a provider's request-count column, named in billing.columns
)
GENERIC_FIELDS = (
    "date",
    "model",
    "cost",
    "direction",
    "quantity",
    "currency",
    "charge_category",
    "description",
    "request_count",
)
GENERIC_REQUIRED = ("date", "model", "cost")

# SkuMeter wording (lower case) -> direction, for exports without token keys in SkuPriceDetails
METER_DIRECTIONS = {
    "input tokens": "uncached_input",
    "cached input tokens": "cached_input",
    "cache read input tokens": "cached_input",
    "cache write input tokens": "cache_write",
    "output tokens": "output",
}
# a generic bill's direction values (lower case) -> direction
GENERIC_DIRECTIONS = {
    **{d: d for d in DIRECTIONS},
    "input": "uncached_input",
    "uncached": "uncached_input",
    "cached": "cached_input",
    "cache_read": "cached_input",
    "cacheread": "cached_input",
    "cachewrite": "cache_write",
    "requests": "per_call",
    "calls": "per_call",
    "images": "per_call",
}
# "Tokens", "1000000 Tokens", "1K Tokens", "Requests", "Images": an optional scale, then a kind
_UNIT_PATTERN = r"^\s*([0-9]+(?:\.[0-9]+)?)?\s*([km])?\s*(tokens?|requests?|calls?|images?)\s*$"
_TIMESTAMP_EXAMPLE = "an ISO 8601 timestamp such as 2025-05-01T00:00:00Z"
_NUMBER_EXAMPLE = "a decimal number such as 12.50"
_STAGED_COLUMNS = list(BILLING_COLUMNS.items())[2:]  # all but source_file and row_number


@dataclass(frozen=True)
class BillingLoaded:
    """The bill as the DuckDB view `billing_lines`, and the files behind it."""

    files: tuple[Path, ...]
    format: str  # focus | generic
    rows: int
    table: str = "billing_lines"


@dataclass(frozen=True)
class _Plan:
    """How one file becomes billing_lines rows, as SQL over the file's columns as text.

    `fields` maps each field (a FOCUS column, or a generic field) to the file's column ('' when
    absent); in SQL the field's text is `t_<field>` (NULL when empty). `layers` are computed in
    order, each seeing the ones before; `columns` and the `checks` (field, condition, expected)
    use them all.
    """

    fields: dict[str, str]
    layers: list[dict[str, str]]
    columns: dict[str, str]
    checks: list[tuple[str, str, str]]


def load_billing(
    con: duckdb.DuckDBPyConnection,
    source: BillingSource,
    root: Path,
    config_name: str,
    currency: str,
) -> BillingLoaded:
    """Create the temp view `billing_lines` (BILLING_COLUMNS) over the bill's files.

    `currency` is the workspace currency, assumed for a generic bill without a currency column.
    Raises InputError for an unreadable file, a missing required column, and (naming the row and
    column) missing or non-numeric costs, unparseable dates, bad SkuPriceDetails JSON, unknown
    charge categories.
    """
    files = matching_files(root, source.path, "billing", config_name)
    known = FOCUS_REQUIRED + FOCUS_OPTIONAL if source.format == "focus" else GENERIC_FIELDS
    for key in source.columns:
        if key not in known:
            what = "a FOCUS column" if source.format == "focus" else "a generic billing field"
            raise ConfigError(
                config_name,
                f"billing.columns.{key}",
                f"not {what}; expected one of {', '.join(known)}",
            )
    rows, parts = 0, []
    for index, path in enumerate(files):
        reader = _reader(path)
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        except duckdb.Error as exc:
            raise _unreadable(path, reader, exc) from None
        found = {name: kind for name, kind, *_ in described}
        if source.format == "focus":
            plan = _focus_plan(path, found, source.columns)
        else:
            plan = _generic_plan(path, found, source.columns, currency)
        table = f"billing_file_{index}"
        rows += _stage(con, path, reader, found, plan, table)
        names = ", ".join(c for c, _ in _STAGED_COLUMNS)
        parts.append(
            f"SELECT {_literal(_relative(path, root))} AS source_file, "
            f"rowid + 1 AS row_number, {names} FROM {table}"
        )
    # a view, not a copy: each file's table keeps its rows in file order (rowid = row - 1)
    con.execute(f"CREATE OR REPLACE TEMP VIEW billing_lines AS {' UNION ALL '.join(parts)}")
    return BillingLoaded(tuple(files), source.format, rows)


# --- reading ------------------------------------------------------------------------------------


def _reader(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return f"read_parquet({_literal(str(path))})"
    if suffixes[-1:] in ([".csv"], [".tsv"]) or suffixes[-2:] == [".csv", ".gz"]:
        # RFC 4180, stated rather than sniffed: a sniffer takes a ragged last row for the header
        delimiter = "\t" if suffixes[-1:] == [".tsv"] else ","
        return (
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true, skip = 0, "
            f"delim = '{delimiter}', quote = '\"', escape = '\"')"
        )
    raise InputError(
        path, None, "cannot tell the format from the suffix; expected .csv or .parquet"
    )


def _text(name: str, kind: str) -> str:
    """SQL: the column as text; nested Parquet values (a SkuPriceDetails struct) become JSON."""
    ref = _quote(name)
    if kind == "VARCHAR":
        return ref
    if kind.startswith(("STRUCT", "MAP")) or kind.endswith("[]") or kind == "JSON":
        return f"CAST(to_json({ref}) AS VARCHAR)"
    return f"CAST({ref} AS VARCHAR)"


def _stage(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    reader: str,
    found: dict[str, str],
    plan: _Plan,
    table: str,
) -> int:
    """Create the temp table `table` (the plan's columns, in file order) in one pass over the
    file, and raise an InputError for the first check (in order) a row fails. Returns its rows."""
    texts = ", ".join(
        f"NULLIF({_text(column, found[column])}, '') AS t_{field}"
        if column
        else f"CAST(NULL AS VARCHAR) AS t_{field}"
        for field, column in plan.fields.items()
    )
    query = f"SELECT {texts} FROM {reader}"
    for layer in plan.layers:
        query = (
            f"SELECT *, {', '.join(f'{sql} AS {name}' for name, sql in layer.items())} "
            f"FROM ({query})"
        )
    checks = [c for c in plan.checks if plan.fields.get(c[0])]
    flags = [
        f"COALESCE({condition}, false) AS bad_{i}" for i, (_, condition, _) in enumerate(checks)
    ]
    values = [f"CAST({plan.columns[c]} AS {kind}) AS {c}" for c, kind in _STAGED_COLUMNS]
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT {', '.join(values + flags)} FROM ({query})"
        )
    except duckdb.Error as exc:
        raise _unreadable(path, reader, exc) from None
    counts = ", ".join(
        ["count(*)"] + [f"count(*) FILTER (WHERE bad_{i})" for i in range(len(checks))]
    )
    total, *bad = con.execute(f"SELECT {counts} FROM {table}").fetchall()[0]
    for i, ((field, _, expected), n) in enumerate(zip(checks, bad, strict=True)):
        if n:
            (rowid,) = con.execute(
                f"SELECT rowid FROM {table} WHERE bad_{i} ORDER BY rowid LIMIT 1"
            ).fetchall()[0]
            column = plan.fields[field]
            got = _raw_value(con, reader, column, found[column], rowid)
            shown = "empty" if got is None or not got.strip() else repr(_shorten(got))
            others = f" ({n - 1} more rows like it)" if n > 1 else ""
            raise InputError(
                path,
                f"{_row_text(path, rowid + 1)}, column {column!r}",
                f"got {shown}, expected {expected}{others}",
            )
    return total


def _raw_value(
    con: duckdb.DuckDBPyConnection, reader: str, column: str, kind: str, rowid: int
) -> str | None:
    """The text of one cell as the file holds it (error path only: reads the column again)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE billing_cell AS SELECT {_text(column, kind)} AS v "
        f"FROM {reader}"
    )
    (value,) = con.execute("SELECT v FROM billing_cell WHERE rowid = ?", [rowid]).fetchall()[0]
    con.execute("DROP TABLE billing_cell")
    return value


def _resolve(
    found: dict[str, str], wanted: tuple[str, ...], mapping: dict[str, str]
) -> dict[str, str]:
    """Field -> the file's column for it: the mapped name, else the same name in any case."""
    by_lower = {name.lower(): name for name in found}
    resolved = {}
    for field in wanted:
        name = mapping.get(field, field)
        column = name if name in found else by_lower.get(name.lower(), "")
        if not column and field == "request_count" and "request_count" not in mapping:
            column = by_lower.get("x_requestcount", "")
        resolved[field] = column
    return resolved


def _require(
    path: Path,
    fields: dict[str, str],
    required: tuple[str, ...],
    mapping: dict[str, str],
    found: dict[str, str],
    what: str,
) -> None:
    missing = [field for field in required if not fields[field]]
    if missing:
        field = missing[0]
        hint = f" (mapped to {mapping[field]!r})" if field in mapping else ""
        raise InputError(
            path,
            None,
            f"missing required {what} column {field!r}{hint}; expected "
            f"{', '.join(required)}; columns found: {', '.join(found) or 'none'}",
        )


# --- FOCUS --------------------------------------------------------------------------------------


def _focus_plan(path: Path, found: dict[str, str], mapping: dict[str, str]) -> _Plan:
    fields = _resolve(found, FOCUS_REQUIRED + FOCUS_OPTIONAL, mapping)
    _require(path, fields, FOCUS_REQUIRED, mapping, found, "FOCUS")
    numbers = ("BilledCost", "EffectiveCost", "ConsumedQuantity", "PricingQuantity",
               "ListUnitPrice", "request_count")  # fmt: skip
    times = ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd")
    keys = ("ModelId", "TokenDirection", "TokenCacheAction", "TokenType")
    details = "t_SkuPriceDetails"
    parsed = {
        **{f"n_{f}": f"TRY_CAST(t_{f} AS {COST_TYPE})" for f in numbers},
        **{f"ts_{f}": f"CAST(TRY_CAST(t_{f} AS TIMESTAMPTZ) AS TIMESTAMP)" for f in times},
        "category": _category_sql("t_ChargeCategory"),
        "class": "lower(TRIM(t_ChargeClass))",
        # the SkuPriceDetails keys, or NULL when it is not a JSON object (parsed once)
        "j": f"CASE WHEN starts_with(ltrim({details}), '{{') THEN try(json_extract_string("
        f"{details}, [{', '.join(repr('$.' + k) for k in keys)}])) END",
        "cu": _unit_sql("t_ConsumedUnit"),
        "pu": _unit_sql("t_PricingUnit"),
    }
    keys_and_units = {
        "model": "NULLIF(TRIM(j[1]), '')",
        "td": "lower(NULLIF(TRIM(j[2]), ''))",
        "tca": "lower(NULLIF(TRIM(j[3]), ''))",
        "tt": "lower(NULLIF(TRIM(j[4]), ''))",
        **_unit_kind_scale("cu"),
        **_unit_kind_scale("pu"),
    }
    meters = " ".join(f"WHEN {_literal(m)} THEN {_literal(d)}" for m, d in METER_DIRECTIONS.items())
    direction = {
        "direction": f"""CASE
            WHEN td = 'output' THEN 'output'
            WHEN td = 'input' AND tca IN ('read', 'cacheread') THEN 'cached_input'
            WHEN td = 'input' AND tca IN ('write', 'cachewrite') THEN 'cache_write'
            WHEN td = 'input' THEN 'uncached_input'
            WHEN tt = 'output' THEN 'output'
            WHEN tt = 'input' THEN 'uncached_input'
            WHEN tt = 'cacheread' THEN 'cached_input'
            WHEN tt = 'cachewrite' THEN 'cache_write'
            WHEN tca IN ('read', 'cacheread') THEN 'cached_input'
            WHEN tca IN ('write', 'cachewrite') THEN 'cache_write'
            ELSE CASE lower(TRIM(t_SkuMeter)) {meters} ELSE CASE
                WHEN cu_kind = 'requests' THEN 'per_call'
                WHEN t_ConsumedUnit IS NULL AND pu_kind = 'requests' THEN 'per_call' END END
            END""",
        **{
            f"{kind}_q": f"COALESCE(CASE WHEN cu_kind = '{kind}' "
            f"THEN n_ConsumedQuantity * cu_scale END, CASE WHEN pu_kind = '{kind}' "
            "THEN n_PricingQuantity * pu_scale END)"
            for kind in ("tokens", "requests")
        },
    }
    columns = {
        "billing_period_start": "ts_BillingPeriodStart",
        "billing_period_end": "ts_BillingPeriodEnd",
        "charge_period_start": "ts_ChargePeriodStart",
        "charge_period_end": "ts_ChargePeriodEnd",
        "charge_category": "category",
        "charge_class": "CASE WHEN class = 'correction' THEN 'Correction' END",
        "description": "t_ChargeDescription",
        "billed_cost": "n_BilledCost",
        "effective_cost": "n_EffectiveCost",
        "currency": "upper(TRIM(t_BillingCurrency))",
        "consumed_quantity": "n_ConsumedQuantity",
        "consumed_unit": "t_ConsumedUnit",
        "pricing_quantity": "n_PricingQuantity",
        "pricing_unit": "t_PricingUnit",
        "list_unit_price": "n_ListUnitPrice",
        "sku_id": "t_SkuId",
        "sku_meter": "t_SkuMeter",
        "model": "model",
        "direction": "direction",
        "quantity": """CASE WHEN direction = 'per_call' THEN requests_q
            WHEN direction IS NOT NULL OR tokens_q IS NOT NULL THEN tokens_q END""",
        "quantity_unit": """CASE WHEN direction = 'per_call' THEN 'requests'
            WHEN direction IS NOT NULL OR tokens_q IS NOT NULL THEN 'tokens' END""",
        "provider_name": "COALESCE(t_ServiceProviderName, t_ProviderName)",
        "service_name": "t_ServiceName",
        "tags": "t_Tags",
        "request_count": "n_request_count",
    }
    checks = [
        *((f, f"t_{f} IS NULL", "a value (the column is required)") for f in FOCUS_REQUIRED),
        ("BilledCost", "n_BilledCost IS NULL", _NUMBER_EXAMPLE),
        (
            "BillingCurrency",
            "NOT regexp_full_match(upper(TRIM(t_BillingCurrency)), '[A-Z]{3}')",
            "a 3-letter currency code such as USD",
        ),
        ("ChargeCategory", "category IS NULL", "one of " + ", ".join(CHARGE_CATEGORIES)),
        ("ChargeClass", "class <> 'correction'", "empty or Correction"),
        *((f, f"t_{f} IS NOT NULL AND ts_{f} IS NULL", _TIMESTAMP_EXAMPLE) for f in times),
        ("ChargePeriodEnd", "ts_ChargePeriodEnd < ts_ChargePeriodStart",
         "a time at or after ChargePeriodStart"),
        ("BillingPeriodEnd", "ts_BillingPeriodEnd < ts_BillingPeriodStart",
         "a time at or after BillingPeriodStart"),
        *((f, f"t_{f} IS NOT NULL AND n_{f} IS NULL", _NUMBER_EXAMPLE) for f in numbers[1:5]),
        _count_check("request_count"),
        ("SkuPriceDetails", f"{details} IS NOT NULL AND j IS NULL",
         'a JSON object such as {"ModelId": "…", "TokenDirection": "Input"}'),
    ]  # fmt: skip
    return _Plan(fields, [parsed, keys_and_units, direction], columns, checks)


# --- generic ------------------------------------------------------------------------------------


def _generic_plan(
    path: Path, found: dict[str, str], mapping: dict[str, str], currency: str
) -> _Plan:
    fields = _resolve(found, GENERIC_FIELDS, mapping)
    _require(path, fields, GENERIC_REQUIRED, mapping, found, "billing")
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in GENERIC_DIRECTIONS.items())
    month = (
        "CASE WHEN regexp_full_match(TRIM(t_date), '\\d{4}-\\d{2}') "
        "THEN TRY_CAST(TRIM(t_date) || '-01' AS DATE) END"
    )
    parsed = {
        "n_cost": f"TRY_CAST(t_cost AS {COST_TYPE})",
        "n_quantity": f"TRY_CAST(t_quantity AS {COST_TYPE})",
        "n_request_count": f"TRY_CAST(t_request_count AS {COST_TYPE})",
        "monthly": f"{month} IS NOT NULL",
        "start": f"CAST(COALESCE({month}, TRY_CAST(TRIM(t_date) AS DATE)) AS TIMESTAMP)",
        "direction": f"MAP {{{pairs}}}[lower(TRIM(t_direction))]",
        "category": _category_sql("t_charge_category") if fields["charge_category"] else "'Usage'",
    }
    columns = {
        "billing_period_start": "date_trunc('month', start)",
        "billing_period_end": "date_trunc('month', start) + INTERVAL 1 MONTH",
        "charge_period_start": "start",
        "charge_period_end": "CASE WHEN monthly THEN start + INTERVAL 1 MONTH "
        "ELSE start + INTERVAL 1 DAY END",
        "charge_category": "category",
        "charge_class": "NULL",
        "description": "t_description",
        "billed_cost": "n_cost",
        "effective_cost": "NULL",
        "currency": f"COALESCE(upper(TRIM(t_currency)), {_literal(currency)})",
        "consumed_quantity": "n_quantity",
        "consumed_unit": "CASE WHEN n_quantity IS NOT NULL THEN "
        "(CASE WHEN direction = 'per_call' THEN 'Requests' ELSE 'Tokens' END) END",
        "pricing_quantity": "NULL",
        "pricing_unit": "NULL",
        "list_unit_price": "NULL",
        "sku_id": "NULL",
        "sku_meter": "NULL",
        "model": "NULLIF(TRIM(t_model), '')",
        "direction": "direction",
        "quantity": "n_quantity",
        "quantity_unit": "CASE WHEN n_quantity IS NULL THEN NULL "
        "WHEN direction = 'per_call' THEN 'requests' ELSE 'tokens' END",
        "provider_name": "NULL",
        "service_name": "NULL",
        "tags": "NULL",
        "request_count": "n_request_count",
    }
    checks = [
        *((f, f"t_{f} IS NULL", "a value (the column is required)") for f in ("date", "cost")),
        ("date", "start IS NULL", "a day such as 2026-10-05 or a month such as 2026-10"),
        ("cost", "n_cost IS NULL", _NUMBER_EXAMPLE),
        ("quantity", "t_quantity IS NOT NULL AND n_quantity IS NULL",
         "a number of tokens (or of calls, for per_call)"),
        ("direction", "t_direction IS NOT NULL AND direction IS NULL",
         "empty or one of " + ", ".join(GENERIC_DIRECTIONS)),
        ("currency", "NOT regexp_full_match(upper(TRIM(t_currency)), '[A-Z]{3}')",
         "a 3-letter currency code such as USD"),
        ("charge_category", "t_charge_category IS NOT NULL AND category IS NULL",
         "one of " + ", ".join(CHARGE_CATEGORIES)),
        _count_check("request_count"),
    ]  # fmt: skip
    return _Plan(fields, [parsed], columns, checks)


# --- shared pieces ------------------------------------------------------------------------------


def _count_check(field: str) -> tuple[str, str, str]:
    n = f"n_{field}"
    return (
        field,
        f"t_{field} IS NOT NULL AND ({n} IS NULL OR {n} <> round({n}) OR {n} < 0)",
        "a whole number of requests, 0 or more",
    )


def _category_sql(text: str) -> str:
    cases = " ".join(f"WHEN {_literal(c.lower())} THEN {_literal(c)}" for c in CHARGE_CATEGORIES)
    return f"CASE lower(TRIM({text})) {cases} END"


def _unit_sql(text: str) -> str:
    """SQL struct {n, m, kind} of a unit text such as '1000000 Tokens' (kind '' if no match)."""
    return f"regexp_extract(lower({text}), {_literal(_UNIT_PATTERN)}, ['n', 'm', 'kind'])"


def _unit_kind_scale(unit: str) -> dict[str, str]:
    """SQL `<unit>_kind` (tokens | requests | NULL) and `<unit>_scale` from a _unit_sql struct."""
    return {
        f"{unit}_kind": f"CASE WHEN {unit}.kind LIKE 'token%' THEN 'tokens' "
        f"WHEN {unit}.kind <> '' THEN 'requests' END",
        f"{unit}_scale": f"COALESCE(TRY_CAST(NULLIF({unit}.n, '') AS DECIMAL(18, 6)), 1) "
        f"* CASE {unit}.m WHEN 'k' THEN 1000 WHEN 'm' THEN 1000000 ELSE 1 END",
    }


def _row_text(path: Path, row: int) -> str:
    """'row N (line L)' for a CSV (L counts quoted line breaks), 'row N' otherwise."""
    if path.suffix.lower() != ".csv":
        return f"row {row}"
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        line = 1
        for number, _ in enumerate(reader):  # number 0 is the header
            if number == row:
                return f"row {row} (line {line})"
            line = reader.line_num + 1
    return f"row {row}"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _unreadable(path: Path, reader: str, exc: Exception) -> InputError:
    """The error for a file DuckDB cannot read; for a CSV, the first row whose number of fields
    differs from the header's, when that is the cause."""
    if reader.startswith("read_csv") and path.suffix.lower() in {".csv", ".tsv"}:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader_ = csv.reader(handle, delimiter=delimiter)
            header = next(reader_, [])
            line = reader_.line_num + 1
            for number, record in enumerate(reader_, start=1):
                if len(record) != len(header):
                    return InputError(
                        path,
                        f"row {number} (line {line})",
                        f"got {len(record)} fields, expected {len(header)} like the header",
                    )
                line = reader_.line_num + 1
    kind = "Parquet" if reader.startswith("read_parquet") else "CSV"
    return InputError(path, None, f"cannot read as {kind}: {str(exc).strip().splitlines()[0]}")
