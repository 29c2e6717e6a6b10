"""Billing: read the provider's bill into the DuckDB table `billing_lines`, one row per bill line.

Two formats (kit.yaml `billing.format`):

- `focus`: a FOCUS 1.0–1.3 cost and usage export, CSV or Parquet. The model comes from
  `SkuPriceDetails.ModelId`; the token direction from `SkuPriceDetails` (`TokenDirection` +
  `TokenCacheAction`, or the older `TokenType`), else from the `SkuMeter` text; a line metered
  in requests, calls or images is `per_call`. `billing.columns` renames FOCUS columns
  (`{BilledCost: Cost}`) and may name a request-count column (`{request_count: x_Requests}`).
- `generic`: a CSV with one row per date, model (and optionally direction), with quantity and
  cost, mapped by `billing.columns` (`{date: Day, model: Model, cost: Amount, …}`). A date is a
  day (2026-10-05) or a month (2026-10); the billing period is that calendar month.

Only this module reads the bill. Every problem is one InputError line naming the file, the row
and the column. Money stays exact: DECIMAL(38,12), the ledger's scale.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
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
_UNIT = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)?\s*(?P<m>[km])?\s*(?P<kind>tokens?|requests?|calls?|images?)\s*$",
    re.IGNORECASE,
)
_TIMESTAMP_EXAMPLE = "an ISO 8601 timestamp such as 2025-05-01T00:00:00Z"
_NUMBER_EXAMPLE = "a decimal number such as 12.50"


@dataclass(frozen=True)
class BillingLoaded:
    """The bill as the DuckDB table `billing_lines`, and the files behind it."""

    files: tuple[Path, ...]
    format: str  # focus | generic
    rows: int
    table: str = "billing_lines"


def load_billing(
    con: duckdb.DuckDBPyConnection,
    source: BillingSource,
    root: Path,
    config_name: str,
    currency: str,
) -> BillingLoaded:
    """Create the temp table `billing_lines` (BILLING_COLUMNS) from the bill's files.

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
                config_name, f"billing.columns.{key}", f"not {what}; expected one of "
                + ", ".join(known),
            )  # fmt: skip
    columns = ", ".join(f"{name} {kind}" for name, kind in BILLING_COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE billing_lines ({columns})")
    rows = 0
    for path in files:
        raw = _raw_table(con, path)
        try:
            found = {row[0]: row[1] for row in con.execute(f"DESCRIBE {raw}").fetchall()}
            if source.format == "focus":
                select = _focus_select(con, raw, path, found, source.columns)
            else:
                select = _generic_select(con, raw, path, found, source.columns, currency)
            direction = select.pop("direction")
            values = ", ".join(
                f"CAST({select[c]} AS {kind})" if c != "direction" else "billing_direction"
                for c, kind in list(BILLING_COLUMNS.items())[2:]
            )
            con.execute(
                f"INSERT INTO billing_lines SELECT {_literal(_relative(path, root))}, "
                f"billing_row + 1, {values} FROM (SELECT *, rowid AS billing_row, "
                f"{direction} AS billing_direction FROM {raw})"
            )
            rows += con.execute(f"SELECT count(*) FROM {raw}").fetchone()[0]
        finally:
            con.execute(f"DROP TABLE IF EXISTS {raw}")
    return BillingLoaded(tuple(files), source.format, rows)


# --- reading ------------------------------------------------------------------------------------


def _raw_table(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """A temp table of the file's rows as text, in file order (rowid = data row - 1)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        fmt, reader = "Parquet", f"read_parquet({_literal(str(path))})"
    elif suffixes[-1:] in ([".csv"], [".tsv"]) or suffixes[-2:] == [".csv", ".gz"]:
        fmt = "CSV"
        reader = f"read_csv({_literal(str(path))}, all_varchar = true, header = true)"
    else:
        raise InputError(path, None, "cannot tell the format from the suffix; expected .csv or "
                         ".parquet")  # fmt: skip
    try:
        kinds = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        # text for every column; nested Parquet values (a SkuPriceDetails struct) become JSON
        texts = ", ".join(f"{_text(name, kind)} AS {_quote(name)}" for name, kind, *_ in kinds)
        con.execute(f"CREATE OR REPLACE TEMP TABLE billing_raw AS SELECT {texts} FROM {reader}")
    except duckdb.Error as exc:
        raise InputError(path, None, f"cannot read as {fmt}: {_first_line(exc)}") from None
    return "billing_raw"


def _text(name: str, kind: str) -> str:
    ref = _quote(name)
    if kind == "VARCHAR":
        return ref
    if kind.startswith(("STRUCT", "MAP")) or kind.endswith("[]") or kind == "JSON":
        return f"CAST(to_json({ref}) AS VARCHAR)"
    return f"CAST({ref} AS VARCHAR)"


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
    path: Path, columns: dict[str, str], required: tuple[str, ...], mapping: dict[str, str],
    found: dict[str, str], what: str,
) -> None:  # fmt: skip
    missing = [field for field in required if not columns[field]]
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


def _focus_select(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    path: Path,
    found: dict[str, str],
    mapping: dict[str, str],
) -> dict[str, str]:
    """SQL per billing_lines column normalising a FOCUS export; other expressions may refer to
    `billing_direction`, the value of the `direction` expression."""
    columns = _resolve(found, FOCUS_REQUIRED + FOCUS_OPTIONAL, mapping)
    _require(path, columns, FOCUS_REQUIRED, mapping, found, "FOCUS")

    def value(field: str) -> str:
        return f"NULLIF(TRIM({_quote(columns[field])}), '')" if columns[field] else "NULL"

    details = value("SkuPriceDetails")
    checks = [
        *_required_checks(FOCUS_REQUIRED, value),
        ("BilledCost", f"TRY_CAST({value('BilledCost')} AS {COST_TYPE}) IS NULL", _NUMBER_EXAMPLE),
        (
            "BillingCurrency",
            f"NOT regexp_full_match(upper({value('BillingCurrency')}), '[A-Z]{{3}}')",
            "a 3-letter currency code such as USD",
        ),
        (
            "ChargeCategory",
            f"{_category_sql(value('ChargeCategory'))} IS NULL",
            "one of " + ", ".join(CHARGE_CATEGORIES),
        ),
        (
            "ChargeClass",
            f"{value('ChargeClass')} IS NOT NULL AND lower({value('ChargeClass')}) <> 'correction'",
            "empty or Correction",
        ),
    ]
    for field in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        checks.append(_timestamp_check(field, value(field)))
    for start, end in (("ChargePeriodStart", "ChargePeriodEnd"),
                       ("BillingPeriodStart", "BillingPeriodEnd")):  # fmt: skip
        checks.append(
            (
                end,
                f"{_timestamp_sql(value(end))} < {_timestamp_sql(value(start))}",
                f"a time at or after {start}",
            )
        )
    for field in ("EffectiveCost", "ConsumedQuantity", "PricingQuantity", "ListUnitPrice"):
        checks.append(
            (field, f"{value(field)} IS NOT NULL AND TRY_CAST({value(field)} AS {COST_TYPE}) "
             "IS NULL", _NUMBER_EXAMPLE)
        )  # fmt: skip
    checks.append(_count_check("request_count", value("request_count")))
    checks.append(
        (
            "SkuPriceDetails",
            f"{details} IS NOT NULL AND CASE WHEN json_valid({details}) "
            f"THEN json_type({details}) <> 'OBJECT' ELSE true END",
            'a JSON object such as {"ModelId": "…", "TokenDirection": "Input"}',
        )
    )
    _check_rows(con, raw, path, checks, columns)

    def key(name: str) -> str:
        return f"lower(NULLIF(TRIM(json_extract_string({details}, '$.{name}')), ''))"

    units = _unit_scales(con, raw, [value("ConsumedUnit"), value("PricingUnit")])
    meter = f"lower({value('SkuMeter')})"
    direction = f"""CASE
        WHEN {key("TokenDirection")} = 'output' THEN 'output'
        WHEN {key("TokenDirection")} = 'input'
            AND {key("TokenCacheAction")} IN ('read', 'cacheread') THEN 'cached_input'
        WHEN {key("TokenDirection")} = 'input'
            AND {key("TokenCacheAction")} IN ('write', 'cachewrite') THEN 'cache_write'
        WHEN {key("TokenDirection")} = 'input' THEN 'uncached_input'
        WHEN {key("TokenType")} = 'output' THEN 'output'
        WHEN {key("TokenType")} = 'input' THEN 'uncached_input'
        WHEN {key("TokenType")} = 'cacheread' THEN 'cached_input'
        WHEN {key("TokenType")} = 'cachewrite' THEN 'cache_write'
        WHEN {key("TokenCacheAction")} IN ('read', 'cacheread') THEN 'cached_input'
        WHEN {key("TokenCacheAction")} IN ('write', 'cachewrite') THEN 'cache_write'
        {" ".join(f"WHEN {meter} = {_literal(m)} THEN {_literal(d)}"
                  for m, d in METER_DIRECTIONS.items())}
        WHEN {_unit_kind_sql(units, value("ConsumedUnit"))} = 'requests' THEN 'per_call'
        WHEN {value("ConsumedUnit")} IS NULL
            AND {_unit_kind_sql(units, value("PricingUnit"))} = 'requests' THEN 'per_call'
        END"""  # fmt: skip
    quantity = _quantity_sql(
        units,
        [
            (f"TRY_CAST({value('ConsumedQuantity')} AS {COST_TYPE})", value("ConsumedUnit")),
            (f"TRY_CAST({value('PricingQuantity')} AS {COST_TYPE})", value("PricingUnit")),
        ],
    )
    select = {
        "billing_period_start": _timestamp_sql(value("BillingPeriodStart")),
        "billing_period_end": _timestamp_sql(value("BillingPeriodEnd")),
        "charge_period_start": _timestamp_sql(value("ChargePeriodStart")),
        "charge_period_end": _timestamp_sql(value("ChargePeriodEnd")),
        "charge_category": _category_sql(value("ChargeCategory")),
        "charge_class": f"CASE WHEN lower({value('ChargeClass')}) = 'correction' "
        "THEN 'Correction' END",
        "description": value("ChargeDescription"),
        "billed_cost": f"CAST({value('BilledCost')} AS {COST_TYPE})",
        "effective_cost": f"CAST({value('EffectiveCost')} AS {COST_TYPE})",
        "currency": f"upper({value('BillingCurrency')})",
        "consumed_quantity": f"CAST({value('ConsumedQuantity')} AS {COST_TYPE})",
        "consumed_unit": value("ConsumedUnit"),
        "pricing_quantity": f"CAST({value('PricingQuantity')} AS {COST_TYPE})",
        "pricing_unit": value("PricingUnit"),
        "list_unit_price": f"CAST({value('ListUnitPrice')} AS {COST_TYPE})",
        "sku_id": value("SkuId"),
        "sku_meter": value("SkuMeter"),
        "model": f"NULLIF(TRIM(json_extract_string({details}, '$.ModelId')), '')",
        "direction": direction,
        "quantity": f"""CASE WHEN billing_direction = 'per_call' THEN {quantity["requests"]}
            WHEN billing_direction IS NOT NULL OR {quantity["tokens"]} IS NOT NULL
            THEN {quantity["tokens"]} END""",
        "quantity_unit": f"""CASE WHEN billing_direction = 'per_call' THEN 'requests'
            WHEN billing_direction IS NOT NULL OR {quantity["tokens"]} IS NOT NULL
            THEN 'tokens' END""",
        "provider_name": f"COALESCE({value('ServiceProviderName')}, {value('ProviderName')})",
        "service_name": value("ServiceName"),
        "tags": value("Tags"),
        "request_count": f"CAST(CAST({value('request_count')} AS DECIMAL(38, 0)) AS BIGINT)",
    }
    return select


# --- generic ------------------------------------------------------------------------------------


def _generic_select(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    path: Path,
    found: dict[str, str],
    mapping: dict[str, str],
    currency: str,
) -> dict[str, str]:
    """SQL per billing_lines column normalising a generic CSV (see _focus_select)."""
    columns = _resolve(found, GENERIC_FIELDS, mapping)
    _require(path, columns, GENERIC_REQUIRED, mapping, found, "billing")

    def value(field: str) -> str:
        return f"NULLIF(TRIM({_quote(columns[field])}), '')" if columns[field] else "NULL"

    date = value("date")
    month = f"regexp_full_match({date}, '\\d{{4}}-\\d{{2}}')"
    day_start = f"CAST(TRY_CAST({date} AS DATE) AS TIMESTAMP)"
    month_start = f"CAST(TRY_CAST({date} || '-01' AS DATE) AS TIMESTAMP)"
    start = f"CASE WHEN {month} THEN {month_start} ELSE {day_start} END"
    end = (
        f"CASE WHEN {month} THEN {month_start} + INTERVAL 1 MONTH "
        f"ELSE {day_start} + INTERVAL 1 DAY END"
    )
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in GENERIC_DIRECTIONS.items())
    direction = f"MAP {{{pairs}}}[lower({value('direction')})]"
    category = _category_sql(value("charge_category")) if columns["charge_category"] else "'Usage'"
    checks = [
        *_required_checks(("date", "cost"), value),
        ("date", f"{start} IS NULL", "a day such as 2026-10-05 or a month such as 2026-10"),
        ("cost", f"TRY_CAST({value('cost')} AS {COST_TYPE}) IS NULL", _NUMBER_EXAMPLE),
        (
            "quantity",
            f"{value('quantity')} IS NOT NULL AND TRY_CAST({value('quantity')} AS {COST_TYPE}) "
            "IS NULL",
            "a number of tokens (or of calls, for per_call)",
        ),
        (
            "direction",
            f"{value('direction')} IS NOT NULL AND {direction} IS NULL",
            "empty or one of " + ", ".join(GENERIC_DIRECTIONS),
        ),
        (
            "currency",
            f"{value('currency')} IS NOT NULL "
            f"AND NOT regexp_full_match(upper({value('currency')}), '[A-Z]{{3}}')",
            "a 3-letter currency code such as USD",
        ),
        (
            "charge_category",
            f"{value('charge_category')} IS NOT NULL AND {category} IS NULL",
            "one of " + ", ".join(CHARGE_CATEGORIES),
        ),
        _count_check("request_count", value("request_count")),
    ]
    _check_rows(con, raw, path, checks, columns)
    quantity = f"TRY_CAST({value('quantity')} AS {COST_TYPE})"
    select = {
        "billing_period_start": f"date_trunc('month', {start})",
        "billing_period_end": f"date_trunc('month', {start}) + INTERVAL 1 MONTH",
        "charge_period_start": start,
        "charge_period_end": end,
        "charge_category": category,
        "charge_class": "NULL",
        "description": value("description"),
        "billed_cost": f"CAST({value('cost')} AS {COST_TYPE})",
        "effective_cost": "NULL",
        "currency": f"COALESCE(upper({value('currency')}), {_literal(currency)})",
        "consumed_quantity": quantity,
        "consumed_unit": f"CASE WHEN {quantity} IS NOT NULL THEN "
        "(CASE WHEN billing_direction = 'per_call' THEN 'Requests' ELSE 'Tokens' END) END",
        "pricing_quantity": "NULL",
        "pricing_unit": "NULL",
        "list_unit_price": "NULL",
        "sku_id": "NULL",
        "sku_meter": "NULL",
        "model": value("model"),
        "direction": direction,
        "quantity": quantity,
        "quantity_unit": f"CASE WHEN {quantity} IS NULL THEN NULL "
        "WHEN billing_direction = 'per_call' THEN 'requests' ELSE 'tokens' END",
        "provider_name": "NULL",
        "service_name": "NULL",
        "tags": "NULL",
        "request_count": f"CAST(CAST({value('request_count')} AS DECIMAL(38, 0)) AS BIGINT)",
    }
    return select


# --- shared pieces ------------------------------------------------------------------------------


def _required_checks(required: tuple[str, ...], value: Callable[[str], str]) -> list[tuple]:
    return [(f, f"{value(f)} IS NULL", "a value (the column is required)") for f in required]


def _timestamp_sql(text: str) -> str:
    return f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"


def _timestamp_check(field: str, text: str) -> tuple[str, str, str]:
    return (field, f"{text} IS NOT NULL AND TRY_CAST({text} AS TIMESTAMPTZ) IS NULL",
            _TIMESTAMP_EXAMPLE)  # fmt: skip


def _count_check(field: str, text: str) -> tuple[str, str, str]:
    whole = f"TRY_CAST({text} AS DECIMAL(38, 0))"
    return (
        field,
        f"{text} IS NOT NULL AND (TRY_CAST({text} AS DECIMAL(38, 12)) IS NULL "
        f"OR TRY_CAST({text} AS DECIMAL(38, 12)) <> {whole} OR {whole} < 0)",
        "a whole number of requests, 0 or more",
    )


def _category_sql(text: str) -> str:
    cases = " ".join(f"WHEN {_literal(c.lower())} THEN {_literal(c)}" for c in CHARGE_CATEGORIES)
    return f"CASE lower({text}) {cases} END"


def _unit_scales(
    con: duckdb.DuckDBPyConnection, raw: str, units: list[str]
) -> dict[str, tuple[str, Decimal]]:
    """Each distinct unit text of the file that counts tokens or requests -> (kind, scale)."""
    scales: dict[str, tuple[str, Decimal]] = {}
    for unit in units:
        if unit == "NULL":
            continue
        for (text,) in con.execute(f"SELECT DISTINCT {unit} FROM {raw}").fetchall():
            match = _UNIT.match(text or "")
            if match:
                kind = "tokens" if match["kind"].lower().startswith("token") else "requests"
                scale = (
                    Decimal(match["n"] or 1)
                    * {"k": 1000, "m": 1_000_000, None: 1}[(match["m"] or "").lower() or None]
                )
                scales[text] = (kind, scale)
    return scales


def _unit_kind_sql(scales: dict[str, tuple[str, Decimal]], unit: str) -> str:
    if unit == "NULL" or not scales:
        return "NULL"
    cases = " ".join(f"WHEN {_literal(t)} THEN {_literal(k)}" for t, (k, _) in scales.items())
    return f"(CASE {unit} {cases} END)"


def _quantity_sql(
    scales: dict[str, tuple[str, Decimal]], sources: list[tuple[str, str]]
) -> dict[str, str]:
    """SQL per kind: the first (quantity × scale of its unit) whose unit is of that kind."""
    result = {}
    for kind in ("tokens", "requests"):
        options = []
        for quantity, unit in sources:
            matching = [(t, s) for t, (k, s) in scales.items() if k == kind]
            if unit == "NULL" or not matching:
                continue
            cases = " ".join(f"WHEN {_literal(t)} THEN {quantity} * {s}" for t, s in matching)
            options.append(f"(CASE {unit} {cases} END)")
        result[kind] = f"COALESCE({', '.join(options)})" if options else "NULL"
    return result


def _check_rows(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    path: Path,
    checks: list[tuple[str, str, str]],
    columns: dict[str, str],
) -> None:
    """Raise an InputError for the first check (in order) that some row fails."""
    checks = [c for c in checks if columns.get(c[0])]
    if not checks:
        return
    counts = ", ".join(f"count(*) FILTER (WHERE {condition})" for _, condition, _ in checks)
    bad = con.execute(f"SELECT {counts} FROM {raw}").fetchone()
    for (field, condition, expected), n in zip(checks, bad, strict=True):
        if not n:
            continue
        column = columns[field]
        rowid, got = con.execute(
            f"SELECT rowid, {_quote(column)} FROM {raw} WHERE {condition} ORDER BY rowid LIMIT 1"
        ).fetchone()
        shown = "empty" if got is None or not got.strip() else repr(_shorten(got))
        others = f" ({n - 1} more rows like it)" if n > 1 else ""
        raise InputError(
            path, f"{_row_text(path, rowid + 1)}, column {column!r}",
            f"got {shown}, expected {expected}{others}",
        )  # fmt: skip


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


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
