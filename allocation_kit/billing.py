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

- `openai-usage`: OpenAI's organization Usage API (completions) and Costs API responses as saved
  JSON pages (see `_load_openai_usage`).

Only this module reads the bill, in one pass per file. `billing_lines` is a view over one temp
table per file (rows in file order, so row_number is exact without copying them). Every problem
is one InputError line naming the file, the row and the column. Money stays exact:
DECIMAL(38,12), the ledger's scale (a BilledCost with more than 12 decimals is rounded there).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from .config import BillingSource, Workspace
from .errors import ConfigError, InputError
from .load import matching_files
from .malformed import duplicate_header, header_delimiter, not_utf8_error, ragged_row
from .malformed import sql_identifier as _quote
from .price import COST_TYPE, DIRECTIONS, alias_sql

__all__ = [
    "BILLING_COLUMNS",
    "CHARGE_CATEGORIES",
    "FOCUS_REQUIRED",
    "GENERIC_FIELDS",
    "BillingLoaded",
    "load_billing",
    "workspace_billing",
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
    # which bill a line is on, for the books: FOCUS BillingAccountId, InvoiceId, InvoiceIssuerName
    "billing_account_id": "VARCHAR",
    "invoice_id": "VARCHAR",
    "invoice_issuer": "VARCHAR",
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
    "BillingAccountId",
    "InvoiceId",  # FOCUS 1.2
    "InvoiceIssuerName",
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
# Amounts and quantities beyond this (either sign) are no bill's: refused, they keep every sum
# within exact decimal arithmetic (28 digits at the ledger's 12 decimal places).
MAX_BILL_NUMBER = 10**15
_TOO_LARGE = f"a number of at most {MAX_BILL_NUMBER:,} either side of 0"
# usage is never billed below nothing: a refund is a credit, an undone charge a correction
_NEGATIVE_USAGE = (
    "0 or more on a Usage line: a refund or rebate is a Credit, and a change to an earlier "
    "charge has ChargeClass Correction"
)


def _bounded(field: str) -> tuple[str, str, str]:
    return (field, f"abs(n_{field}) > {MAX_BILL_NUMBER}", _TOO_LARGE)


_STAGED_COLUMNS = list(BILLING_COLUMNS.items())[2:]  # all but source_file and row_number


@dataclass(frozen=True)
class BillingLoaded:
    """The bill as the DuckDB view `billing_lines`, and the files behind it."""

    files: tuple[Path, ...]
    format: str  # focus | generic | openai-usage; several: the formats of `parts`, joined by +
    rows: int
    table: str = "billing_lines"
    parts: tuple[BillingLoaded, ...] = ()  # several bills: each one, in kit.yaml's order

    def focus_files(self) -> list[Path]:
        """The files read as FOCUS (the billing suite checks them as they are)."""
        parts = self.parts or (self,)
        return [f for part in parts if part.format == "focus" for f in part.files]


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
    aliases: Mapping[str, str] | None = None,
    *,
    key: str = "billing",
    view: str = "billing_lines",
) -> BillingLoaded:
    """Create the temp view `view` (BILLING_COLUMNS) over the bill's files.

    `aliases` (pricing.yaml's other names of priced models) rename the bill's models. `key` is
    where kit.yaml names the source (`billing[1]` for the second of several).
    `currency` is the workspace currency, assumed for a generic bill without a currency column.
    Raises InputError for an unreadable file, a missing required column, and (naming the row and
    column) missing or non-numeric costs, unparseable dates, bad SkuPriceDetails JSON, unknown
    charge categories.
    """
    files = matching_files(root, source.path, key, config_name)
    if source.format == "openai-usage":
        return _load_openai_usage(
            con, files, root, config_name, source, currency, aliases, key=key, view=view
        )
    known = FOCUS_REQUIRED + FOCUS_OPTIONAL if source.format == "focus" else GENERIC_FIELDS
    for column in source.columns:
        if column not in known:
            what = "a FOCUS column" if source.format == "focus" else "a generic billing field"
            raise ConfigError(
                config_name,
                f"{key}.columns.{column}",
                f"not {what}; expected one of {', '.join(known)}",
            )
    rows, parts = 0, []
    for index, path in enumerate(files):
        reader = _reader(path)
        if path.stat().st_size == 0:
            raise InputError(path, None, "the file is empty; expected a billing export")
        if reader.startswith("read_csv") and (twice := duplicate_header(path, _delimiter(path))):
            raise InputError(path, *twice)
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        except duckdb.Error as exc:
            raise _unreadable(path, reader, exc) from None
        found = {name: kind for name, kind, *_ in described}
        if source.format == "focus":
            plan = _focus_plan(path, found, source.columns)
        else:
            plan = _generic_plan(path, found, source.columns, currency, source.directions)
        table = f"{view}_file_{index}"
        rows += _stage(con, path, reader, found, plan, table)
        names = ", ".join(c for c, _ in _STAGED_COLUMNS)
        parts.append(
            f"SELECT {_literal(_relative(path, root))} AS source_file, "
            f"rowid + 1 AS row_number, {names} FROM {table}"
        )
    if not rows:  # a header and nothing else: most likely an export that failed
        raise InputError(
            ", ".join(str(f) for f in files),
            None,
            "the bill has no rows (only a header); export it again, or remove `billing` from "
            f"{config_name} to review without one",
        )
    # a view, not a copy: each file's table keeps its rows in file order (rowid = row - 1)
    union = " UNION ALL ".join(parts)
    if aliases:
        union = f"SELECT * REPLACE ({alias_sql('model', aliases)} AS model) FROM ({union})"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {union}")
    return BillingLoaded(tuple(files), source.format, rows, view)


def workspace_billing(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> BillingLoaded | None:
    """The bill kit.yaml names, loaded as `load_billing` does (None when it names none)."""
    kit = workspace.kit
    if kit.billing is None:
        return None
    many = len(kit.billing) > 1
    parts = tuple(
        load_billing(
            con,
            source,
            workspace.root,
            str(workspace.config_path),
            kit.currency,
            workspace.pricing.aliases,
            key=f"billing[{i}]" if many else "billing",
            view=f"billing_lines_{i}" if many else "billing_lines",
        )
        for i, source in enumerate(kit.billing)
    )
    if not many:
        return parts[0]
    union = " UNION ALL ".join(f"SELECT * FROM {part.table}" for part in parts)
    con.execute(f"CREATE OR REPLACE TEMP VIEW billing_lines AS {union}")
    return BillingLoaded(
        tuple(f for part in parts for f in part.files),
        "+".join(part.format for part in parts),
        sum(part.rows for part in parts),
        "billing_lines",
        parts,
    )


# --- reading ------------------------------------------------------------------------------------


def _delimiter(path: Path) -> str:
    """A bill CSV's delimiter: tab for .tsv, else the header's (a comma, or the semicolon of a
    spreadsheet saved in a locale whose decimal mark is a comma)."""
    if ".tsv" in [s.lower() for s in path.suffixes]:
        return "\t"
    return header_delimiter(path) if path.stat().st_size else ","


def _reader(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return f"read_parquet({_literal(str(path))})"
    if suffixes[-1:] in ([".csv"], [".tsv"]) or suffixes[-2:] == [".csv", ".gz"]:
        # RFC 4180, stated rather than sniffed: a sniffer takes a ragged last row for the header
        return (
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true, skip = 0, "
            f"delim = {_literal(_delimiter(path))}, quote = '\"', escape = '\"')"
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
    # any column kit.yaml maps must be there too: a typo would silently drop what it carries
    for field, name in mapping.items():
        if not fields.get(field):
            raise InputError(
                path,
                None,
                f"missing {what} column {field!r} (mapped to {name!r}); columns found: "
                f"{', '.join(found) or 'none'}",
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
        # a quantity beyond MAX_BILL_NUMBER is named by its check, before a scale overflows
        **{
            f"{kind}_q": f"COALESCE(CASE WHEN cu_kind = '{kind}' "
            f"AND abs(n_ConsumedQuantity) <= {MAX_BILL_NUMBER} "
            f"THEN n_ConsumedQuantity * cu_scale END, CASE WHEN pu_kind = '{kind}' "
            f"AND abs(n_PricingQuantity) <= {MAX_BILL_NUMBER} "
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
        "billing_account_id": "NULLIF(TRIM(t_BillingAccountId), '')",
        "invoice_id": "NULLIF(TRIM(t_InvoiceId), '')",
        "invoice_issuer": "NULLIF(TRIM(t_InvoiceIssuerName), '')",
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
        ("BilledCost", "category = 'Usage' AND COALESCE(class, '') <> 'correction' "
         "AND n_BilledCost < 0", _NEGATIVE_USAGE),
        *((f, f"t_{f} IS NOT NULL AND (ts_{f} IS NULL OR NOT isfinite(ts_{f}))",
           _TIMESTAMP_EXAMPLE) for f in times),
        ("ChargePeriodEnd", "ts_ChargePeriodEnd < ts_ChargePeriodStart",
         "a time at or after ChargePeriodStart"),
        ("BillingPeriodEnd", "ts_BillingPeriodEnd < ts_BillingPeriodStart",
         "a time at or after BillingPeriodStart"),
        *((f, f"t_{f} IS NOT NULL AND n_{f} IS NULL", _NUMBER_EXAMPLE) for f in numbers[1:5]),
        *(_bounded(f) for f in numbers[:5]),
        _count_check("request_count"),
        ("SkuPriceDetails", f"{details} IS NOT NULL AND j IS NULL",
         'a JSON object such as {"ModelId": "…", "TokenDirection": "Input"}'),
        # a value the direction cannot be told from would leave the line's tokens unplaced
        ("SkuPriceDetails", "td NOT IN ('input', 'output')", "a TokenDirection of Input or Output"),
        ("SkuPriceDetails", "tca NOT IN ('uncached', 'read', 'cacheread', 'write', 'cachewrite')",
         "a TokenCacheAction of Uncached, Read or Write"),
        ("SkuPriceDetails", "tt NOT IN ('input', 'output', 'cacheread', 'cachewrite')",
         "a TokenType of Input, Output, CacheRead or CacheWrite"),
    ]  # fmt: skip
    return _Plan(fields, [parsed, keys_and_units, direction], columns, checks)


# --- generic ------------------------------------------------------------------------------------


def _generic_plan(
    path: Path,
    found: dict[str, str],
    mapping: dict[str, str],
    currency: str,
    directions: Mapping[str, str] | None = None,
) -> _Plan:
    fields = _resolve(found, GENERIC_FIELDS, mapping)
    _require(path, fields, GENERIC_REQUIRED, mapping, found, "billing")
    # the bill's own words (billing.directions) before the kit's: `input` may mean all input
    words = GENERIC_DIRECTIONS | {k.strip().lower(): v for k, v in (directions or {}).items()}
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in words.items())
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
        "billing_account_id": "NULL",
        "invoice_id": "NULL",
        "invoice_issuer": "NULL",
    }
    checks = [
        *((f, f"t_{f} IS NULL", "a value (the column is required)") for f in ("date", "cost")),
        ("date", "start IS NULL", "a day such as 2026-10-05 or a month such as 2026-10"),
        ("cost", "n_cost IS NULL", _NUMBER_EXAMPLE),
        ("quantity", "t_quantity IS NOT NULL AND n_quantity IS NULL",
         "a number of tokens (or of calls, for per_call)"),
        _bounded("cost"),
        _bounded("quantity"),
        ("cost", "category = 'Usage' AND n_cost < 0",
         _NEGATIVE_USAGE.split(", and")[0] + " (charge_category Credit)"),
        ("direction", "t_direction IS NOT NULL AND direction IS NULL",
         "empty or one of " + ", ".join(words) + " (map your own words with "
         "billing.directions)"),
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


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _unreadable(path: Path, reader: str, exc: Exception) -> InputError:
    """The error for a file DuckDB cannot read; for a CSV, the first row whose number of fields
    differs from the header's, when that is the cause."""
    if reader.startswith("read_csv") and (found := not_utf8_error(exc, [path])):
        return found
    if reader.startswith("read_csv") and path.suffix.lower() in {".csv", ".tsv"}:
        ragged = ragged_row(path, _delimiter(path))
        if ragged:
            return InputError(path, *ragged)
    kind = "Parquet" if reader.startswith("read_parquet") else "CSV"
    return InputError(path, None, f"cannot read as {kind}: {str(exc).strip().splitlines()[0]}")


# --- OpenAI organization usage and costs --------------------------------------------------------

OPENAI_USAGE = "organization.usage.completions.result"
# embeddings (and moderations) count input tokens only: read as completions without output
OPENAI_INPUT_ONLY = (
    "organization.usage.embeddings.result",
    "organization.usage.moderations.result",
)
OPENAI_COSTS = "organization.costs.result"
_PICO = Decimal(10) ** 12


def _load_openai_usage(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    root: Path,
    config_name: str,
    source: BillingSource,
    currency: str,
    aliases: Mapping[str, str] | None = None,
    *,
    key: str = "billing",
    view: str = "billing_lines",
) -> BillingLoaded:
    """Create `view` from saved OpenAI Usage API (completions) and Costs API pages.

    A file holds one page (`{"object": "page", "data": [buckets]}`), a JSON list of pages, or
    one page per line (JSONL); pages of both APIs may be mixed. A usage result becomes one line
    per token direction (uncached input = input_tokens - input_cached_tokens, cached input,
    output), charged for its bucket, with num_model_requests as its request count. OpenAI does
    not price usage per model, so a usage line's cost is its tokens at the pricing snapshot's
    price in effect when the bucket starts (the `prices` table of the ledger's connection): per
    model, the reconciliation compares the provider's metered tokens at the agreed price. The
    Costs API's amounts are the money: for each bucket, what they charge beyond (or below) the
    usage lines' cost is one line without a model, so the bill's total is the Costs API's total
    and any difference from the agreed prices stays visible.
    """
    if source.columns:
        raise ConfigError(
            config_name, f"{key}.columns", "not used by format openai-usage; remove it"
        )
    prices = _snapshot_prices(con)
    lines: list[dict[str, object]] = []
    costs: dict[tuple[datetime, datetime], list[tuple[Decimal, str, str | None]]] = {}
    for path in files:
        name = _relative(path, root)
        usage = _openai_file_lines(path, prices, currency, costs, aliases or {})
        for number, line in enumerate(usage, start=1):
            line["source_file"], line["row_number"] = name, number
        lines += usage
    # the Costs API pages may be files of their own: their lines come after every file's usage
    for number, line in enumerate(_unexplained_costs(costs, lines, currency), start=1):
        line["source_file"], line["row_number"] = "Costs API beyond usage", number
        lines.append(line)
    # the pages cover the span of their buckets, empty ones included (the API returns a bucket
    # for every day asked for): that span is the export's billing period
    spans = [b for path in files for b in _openai_bucket_spans(path)]
    if spans:
        first, last = min(a for a, _ in spans), max(b for _, b in spans)
        for line in lines:
            line["billing_period_start"], line["billing_period_end"] = first, last
    columns = list(BILLING_COLUMNS)
    table = f"{view}_openai"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} ("
        + ", ".join(f"{c} {t}" for c, t in BILLING_COLUMNS.items())
        + ")"
    )
    if lines:
        con.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})",
            [[line.get(c) for c in columns] for line in lines],
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {table}")
    return BillingLoaded(tuple(files), "openai-usage", len(lines), view)


def _snapshot_prices(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """model -> [(effective_from, effective_to, input, cached_input, output)] in picodollars."""
    try:
        rows = con.execute(
            "SELECT model, effective_from, effective_to, input, cached_input, output "
            "FROM prices ORDER BY model, effective_from"
        ).fetchall()
    except duckdb.Error:  # the pipeline registers `prices` before the bill is read
        rows = []
    prices: dict[str, list[tuple]] = {}
    for model, *entry in rows:
        prices.setdefault(model, []).append(tuple(entry))
    return prices


def _openai_pages(path: Path) -> list[tuple[str, object]]:
    """(where, page) of every page in the file: a page, a list of pages, or JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read as UTF-8 JSON: {exc}") from None
    try:
        document = json.loads(text, parse_float=Decimal)
        pages = document if isinstance(document, list) else [document]
        return [(f"page {i + 1}", page) for i, page in enumerate(pages)]
    except json.JSONDecodeError:
        pass
    pages = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                pages.append((f"line {number}", json.loads(line, parse_float=Decimal)))
            except json.JSONDecodeError as exc:
                raise InputError(
                    path, f"line {number}", f"expected a JSON page object ({exc.msg})"
                ) from None
    return pages


def _openai_bucket_spans(path: Path) -> list[tuple[datetime, datetime]]:
    return [
        (_unix_time(path, where, b.get("start_time")), _unix_time(path, where, b.get("end_time")))
        for where, page in _openai_pages(path)
        if isinstance(page, dict) and isinstance(page.get("data"), list)
        for b in page["data"]
        if isinstance(b, dict)
    ]


def _openai_file_lines(
    path: Path,
    prices: dict[str, list[tuple]],
    currency: str,
    costs: dict[tuple[datetime, datetime], list[tuple[Decimal, str, str | None]]],
    aliases: Mapping[str, str],
) -> list[dict[str, object]]:
    """The file's usage lines; its Costs API amounts are added to `costs` by bucket."""
    lines: list[dict[str, object]] = []
    for where, page in _openai_pages(path):
        if not isinstance(page, dict) or page.get("object") != "page":
            raise InputError(path, where, 'expected a page object ({"object": "page", …})')
        if not isinstance(page.get("data"), list):
            raise InputError(path, f"{where}.data", "expected a list of buckets")
        for b, bucket in enumerate(page["data"]):
            at = f"{where}, data[{b}]"
            start, end = (_unix_time(path, f"{at}.{k}", (bucket or {}).get(k))
                          for k in ("start_time", "end_time"))  # fmt: skip
            results = bucket.get("results")
            if not isinstance(results, list):
                raise InputError(path, f"{at}.results", "expected a list of results")
            for r, result in enumerate(results):
                spot = f"{at}.results[{r}]"
                kind = result.get("object") if isinstance(result, dict) else None
                if kind == OPENAI_USAGE or kind in OPENAI_INPUT_ONLY:
                    if kind in OPENAI_INPUT_ONLY:  # no output, no cache: a count of 0 each
                        result = {"output_tokens": 0, "input_cached_tokens": 0, **result}
                    lines += _usage_lines(path, spot, result, start, end, prices, currency, aliases)
                elif kind == OPENAI_COSTS:
                    amount = result.get("amount") or {}
                    value = _openai_number(path, f"{spot}.amount.value", amount.get("value"))
                    unit = str(amount.get("currency") or currency).upper()
                    costs.setdefault((start, end), []).append(
                        (value, unit, result.get("line_item"))
                    )
                else:
                    raise InputError(
                        path, f"{spot}.object",
                        f"got {kind!r}, expected {OPENAI_USAGE}, "
                        f"{', '.join(OPENAI_INPUT_ONLY)} or {OPENAI_COSTS}",
                    )  # fmt: skip
    return lines


def _usage_lines(
    path: Path,
    spot: str,
    result: dict,
    start: datetime,
    end: datetime,
    prices: dict[str, list[tuple]],
    currency: str,
    aliases: Mapping[str, str],
) -> list[dict[str, object]]:
    optional = {"input_cached_tokens": 0}  # the other counts are always in a result
    tokens = {
        k: _openai_count(path, f"{spot}.{k}", result.get(k, optional.get(k)))
        for k in ("input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests")
    }
    if tokens["input_cached_tokens"] > tokens["input_tokens"]:
        raise InputError(
            path, f"{spot}.input_cached_tokens", "expected at most input_tokens (a subset of them)"
        )
    model = result.get("model") or None
    model = aliases.get(model, model) if model else None  # OpenAI names dated snapshots
    entry = next(
        (e for e in prices.get(model, ()) if e[0] <= start and (e[1] is None or start < e[1])),
        None,
    )
    parts = (
        ("uncached_input", tokens["input_tokens"] - tokens["input_cached_tokens"], 2),
        ("cached_input", tokens["input_cached_tokens"], 3),
        ("output", tokens["output_tokens"], 4),
    )
    lines = []
    for direction, quantity, column in parts:
        if not quantity and direction != "uncached_input":
            continue
        price = None
        if entry is not None:
            price = entry[column] if entry[column] is not None else entry[2]
        cost = Decimal(quantity) * Decimal(price or 0) / _PICO
        lines.append(
            {
                "charge_period_start": start,
                "charge_period_end": end,
                "charge_category": "Usage",
                "description": f"{model or 'no model'} {direction.replace('_', ' ')} tokens"
                + ("" if entry else " (no price in the snapshot)"),
                "billed_cost": cost,
                "currency": currency,
                "consumed_quantity": Decimal(quantity),
                "consumed_unit": "Tokens",
                "model": model,
                "direction": direction,
                "quantity": Decimal(quantity),
                "quantity_unit": "tokens",
                "provider_name": "OpenAI",
                "service_name": "OpenAI API",
                "tags": json.dumps({"project_id": result.get("project_id")}),
                "request_count": tokens["num_model_requests"] if not lines else None,
            }
        )
    return lines


def _unexplained_costs(
    costs: dict[tuple[datetime, datetime], list[tuple[Decimal, str, str | None]]],
    usage: list[dict[str, object]],
    currency: str,
) -> list[dict[str, object]]:
    """Per bucket and currency: the Costs API's amount less the usage lines' cost, when not 0."""
    priced: dict[tuple, Decimal] = {}
    for line in usage:
        key = (line["charge_period_start"], line["charge_period_end"], line["currency"])
        priced[key] = priced.get(key, Decimal(0)) + line["billed_cost"]
    lines = []
    for (start, end), amounts in sorted(costs.items()):
        for unit in sorted({u for _, u, _ in amounts}):
            total = sum((v for v, u, _ in amounts if u == unit), Decimal(0))
            rest = total - priced.get((start, end, unit), Decimal(0))
            if rest == 0:
                continue
            items = sorted({str(i) for _, u, i in amounts if u == unit and i})
            lines.append(
                {
                    "charge_period_start": start,
                    "charge_period_end": end,
                    "charge_category": "Usage",
                    "description": "Costs API amount beyond the usage at the snapshot's prices"
                    + (f" ({', '.join(items)})" if items else ""),
                    "billed_cost": rest,
                    "currency": unit,
                    "provider_name": "OpenAI",
                    "service_name": "OpenAI API",
                }
            )
    return lines


def _unix_time(path: Path, where: str, value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise InputError(path, where, f"got {value!r}, expected Unix seconds such as 1759276800")
    return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)


def _openai_count(path: Path, where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(path, where, f"got {value!r}, expected a whole number, 0 or more")
    return value


def _openai_number(path: Path, where: str, value: object) -> Decimal:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) and value is not None else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InputError(path, where, f"got {value!r}, expected {_NUMBER_EXAMPLE} or its text")
    if abs(number) > MAX_BILL_NUMBER:
        raise InputError(path, where, f"got {value!r}, expected {_TOO_LARGE}")
    return number
