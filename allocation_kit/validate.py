"""Validate: Great Expectations suites from `expectations/`, run where the data lives.

One GX 1.x ExpectationSuite JSON file per input (`requests.json`, `billing.json`,
`registry.json`, `pricing.json`); users add expectations by editing them, and a workspace can
point at its own folder. Values that depend on the review (period bounds, the registry's
vocabularies, the `mostly` threshold, the currency) are suite parameters, written
`{"$PARAMETER": "period_start"}` and substituted by GX at evaluation time (`suite_parameters`
lists them).

The ledger is never pulled into pandas: GX's own SQL execution engine evaluates the suites on
the kit's in-process DuckDB connection, so every metric is a DuckDB query over the `requests`
view (GX is the engine of record for success and counts). Two small adaptations make that
work and scale, both scoped to the classes defined in `_gx()`: a buffering subclass of GX's
SqlAlchemyExecutionEngine (GX fetches results after closing their connection, which DuckDB
does not survive), and a hash-aggregate form of the metric behind
`expect_column_values_to_be_unique`. For an expectation that found unexpected rows, the kit
writes the SQL condition selecting them (`failing_rows_sql`, so the pipeline can quarantine
them) and reads a few samples with it, instead of GX scanning the ledger once per expectation
for samples. The registry and pricing snapshot are tiny and validated as pandas frames built
from their parsed YAML.

`import great_expectations` takes seconds, so GX is imported on the first validation only.
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from .config import exact_decimal
from .errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from .periods import Period

__all__ = [
    "PIPELINE_RULES",
    "SAMPLE_SIZE",
    "ExpectationResult",
    "SuiteResult",
    "default_suites_dir",
    "failing_rows_sql",
    "pricing_frame",
    "quarantine_conditions",
    "registry_frame",
    "suite_file_label",
    "suite_parameters",
    "validation_document",
    "validation_results",
    "validation_table",
]

SAMPLE_SIZE = 5  # unexpected values shown per expectation

# Defects the pipeline already settles by its own rule. The expectation still reports them;
# the rule, not a quarantine, decides what happens to the rows.
PIPELINE_RULES: dict[str, str] = {
    "load": "the loader rejects the ledger with one line naming the file and row",
    "duplicate_requests": "identical copies count once; differing copies are quarantined",
    "out_of_period": "excluded from the period and counted per file",
    "unknown_owner": "kept, with allocation status unknown_owner",
    "token_subsets": "quarantined by attribution (token subset larger than its total)",
}
_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
)
# (expectation type, columns it names) on the `requests` suite -> the pipeline's rule
_RULES: dict[tuple[str, tuple[str, ...]], str] = {
    **{
        ("expect_column_values_to_not_be_null", (c,)): "load"
        for c in ("request_id", "timestamp", "model")
    },
    **{("expect_column_values_to_be_between", (c,)): "load" for c in _TOKEN_COLUMNS},
    ("expect_column_values_to_be_unique", ("request_id",)): "duplicate_requests",
    ("expect_column_values_to_be_between", ("timestamp",)): "out_of_period",
    ("expect_column_values_to_be_in_set", ("team",)): "unknown_owner",
    ("expect_column_values_to_be_in_set", ("application",)): "unknown_owner",
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        ("input_tokens", "cached_input_tokens"),
    ): "token_subsets",
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        ("output_tokens", "reasoning_tokens"),
    ): "token_subsets",
}
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")
_COLUMN_SET_TYPES = ("expect_table_columns_to_match_set",)


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's outcome. `success` is None when it was not run (see `note`)."""

    name: str
    expectation_type: str
    kwargs: dict[str, Any]  # parameters substituted
    success: bool | None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample_unexpected: tuple[Any, ...] = ()
    observed_value: Any = None
    failing_rows_sql: str | None = None  # selects the failing rows (failed row-level only)
    pipeline_rule: str | None = None  # key of PIPELINE_RULES that already handles them
    note: str | None = None


@dataclass(frozen=True)
class SuiteResult:
    """A suite's results on one input (a DuckDB relation or a small frame)."""

    name: str
    path: Path
    blocking: bool  # a failure stops the review
    target: str  # the DuckDB relation, or "frame"
    results: tuple[ExpectationResult, ...]

    @property
    def success(self) -> bool:
        return all(r.success is not False for r in self.results)


def suite_file_label(path: Path) -> str:
    """The kit's own suites as `allocation-kit/expectations/<file>` (not this machine's install
    path); any other suite file as its path."""
    kit = default_suites_dir().resolve().parent
    try:
        return f"allocation-kit/{Path(path).resolve().relative_to(kit)}"
    except ValueError:
        return str(path)


def default_suites_dir() -> Path:
    """The kit's own suites: packaged beside the module, or the source tree's `expectations/`."""
    here = Path(__file__).resolve().parent
    packaged = here / "expectations"
    return packaged if packaged.is_dir() else here.parent / "expectations"


# --- parameters and frames ----------------------------------------------------------------------


def _ids(entries: Any, key: str = "id") -> list[str]:
    if not isinstance(entries, list):
        return []
    return [str(e[key]) for e in entries if isinstance(e, dict) and e.get(key) is not None]


def suite_parameters(
    period: Period, registry_document: Mapping[str, Any], currency: str, mostly_registered: float
) -> dict[str, Any]:
    """The values substituted for `{"$PARAMETER": name}` in the suites.

    A registry without environments or workload classes leaves that parameter None, and the
    expectations using it are reported as not run rather than failing every row.
    """
    environments = [  # an entry with aliases is {id, aliases}: the loader reads them as the id
        str(e.get("id")) if isinstance(e, dict) else str(e)
        for e in registry_document.get("environments") or []
    ]
    workload_classes = [str(w) for w in registry_document.get("workload_classes") or []]
    return {
        "period_start": period.start.astimezone(UTC).replace(tzinfo=None),
        "period_end": period.end.astimezone(UTC).replace(tzinfo=None),
        "teams": _ids(registry_document.get("teams")),
        "applications": _ids(registry_document.get("applications")),
        "environments": environments or None,
        "workload_classes": workload_classes or None,
        "mostly_registered": float(mostly_registered),
        "currencies": [currency],
    }


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return float(number) if number.is_finite() else None


def registry_frame(document: Mapping[str, Any]) -> pd.DataFrame:
    """The parsed registry.yaml as one sparse frame, one row per team, application or share.

    Columns: team_id (team rows), application_id and application_team (application rows),
    split_total (fixed-split shared applications: the split's exact sum), shared_team (one row
    per team named in a shared rule).
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for team in document.get("teams") or []:
        if isinstance(team, dict):
            rows.append({"team_id": team.get("id")})
    for app in document.get("applications") or []:
        if not isinstance(app, dict):
            continue
        row: dict[str, Any] = {"application_id": app.get("id"), "application_team": app.get("team")}
        shared = app.get("shared")
        if isinstance(shared, dict):
            split = shared.get("split")
            if isinstance(split, dict):
                # each share as its YAML text says, as the registry reads it (a float's
                # shortest repr would not sum to 100 where the exact shares do)
                parts = [exact_decimal(v) for v in split.values() if _number(v) is not None]
                row["split_total"] = float(sum(parts, Decimal(0)))
                share_teams = list(split)
            else:
                share_teams = shared.get("teams") or []
            rows.extend({"shared_team": t} for t in share_teams)
        rows.append(row)
    columns = ["team_id", "application_id", "application_team", "split_total", "shared_team"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["split_total"] = frame["split_total"].astype("float64")
    return frame


_PRICE_KEYS = ("input", "cached_input", "cache_write", "output", "reasoning")


def _naive_utc(value: Any) -> Any:
    """A naive UTC pandas Timestamp (GX compares tz-aware columns through a deprecated path)."""
    import pandas as pd

    stamp = pd.to_datetime(value, errors="coerce", utc=True) if value is not None else pd.NaT
    return pd.NaT if pd.isna(stamp) else stamp.tz_convert(None)


def pricing_frame(document: Mapping[str, Any]) -> pd.DataFrame:
    """The parsed pricing.yaml as a frame, one row per models entry.

    `previous_effective_to` is the end of the same model's entry that starts before this one
    (open-ended: the far future), so "no overlapping ranges" is a column-pair expectation.
    """
    import pandas as pd

    rows = []
    for entry in document.get("models") or []:
        if not isinstance(entry, dict):
            continue
        tokens = entry.get("per_1m_tokens") if isinstance(entry.get("per_1m_tokens"), dict) else {}
        rows.append(
            {
                "model": entry.get("model"),
                "effective_from": _naive_utc(entry.get("effective_from")),
                "effective_to": _naive_utc(entry.get("effective_to")),
                **{key: _number(tokens.get(key)) for key in _PRICE_KEYS},
                "per_call": _number(entry.get("per_call")),
                "reviewed_on": document.get("reviewed_on"),
            }
        )
    columns = ["model", "effective_from", "effective_to", *_PRICE_KEYS, "per_call", "reviewed_on"]
    frame = pd.DataFrame(rows, columns=columns)
    for key in (*_PRICE_KEYS, "per_call"):
        frame[key] = frame[key].astype("float64")
    for key in ("effective_from", "effective_to"):
        frame[key] = pd.to_datetime(frame[key]).astype("datetime64[us]")
    far = pd.Timestamp("9999-12-31")
    ordered = frame.sort_values(["model", "effective_from"], kind="stable")
    ends = ordered["effective_to"].fillna(far).where(ordered["effective_from"].notna())
    frame["previous_effective_to"] = ends.groupby(ordered["model"]).shift(1).reindex(frame.index)
    frame["reviewed_on"] = frame["reviewed_on"].astype("object")
    return frame


# --- reading suites -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Expectation:
    index: int
    name: str
    type: str
    kwargs: dict[str, Any]  # as written
    meta: dict[str, Any]
    where: str  # "expectations[3] (expect_…)" for error lines


def _suite_document(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(path, None, "file not found; expected a Great Expectations suite (JSON)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(path, where, f"malformed JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "expected UTF-8 text") from None
    if not isinstance(document, dict):
        raise ConfigError(path, None, "expected a JSON object with name, expectations and meta")
    if not isinstance(document.get("expectations"), list):
        raise ConfigError(path, "expectations", "expected a list of expectations")
    meta = document.get("meta", {})
    if not isinstance(meta, dict):
        raise ConfigError(path, "meta", "expected an object")
    if not isinstance(meta.get("blocking", False), bool):
        raise ConfigError(path, "meta.blocking", "expected true or false")
    return document


def _columns_named(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    named: list[str] = []
    for key in _COLUMN_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str):
            named.append(value)
        elif isinstance(value, list):
            named.extend(str(v) for v in value)
    return tuple(named)


def _default_name(kind: str, kwargs: Mapping[str, Any]) -> str:
    columns = _columns_named(kwargs)
    short = kind.removeprefix("expect_")
    return f"{short}({', '.join(columns)})" if columns else short


def _expectations(path: Path, document: Mapping[str, Any]) -> list[_Expectation]:
    parsed = []
    for i, item in enumerate(document["expectations"]):
        if not isinstance(item, dict):
            raise ConfigError(path, f"expectations[{i}]", "expected an object with type and kwargs")
        kind = item.get("type")
        if not isinstance(kind, str) or not kind:
            raise ConfigError(path, f"expectations[{i}].type", "expected an expectation type")
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError(path, f"expectations[{i}] ({kind}).kwargs", "expected an object")
        meta = item.get("meta") or {}
        if not isinstance(meta, dict):
            raise ConfigError(path, f"expectations[{i}] ({kind}).meta", "expected an object")
        name = meta.get("name") if isinstance(meta.get("name"), str) else None
        where = f"expectations[{i}] ({name or kind})"
        parsed.append(
            _Expectation(i, name or _default_name(kind, kwargs), kind, kwargs, meta, where)
        )
    return parsed


def _parameter_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "$PARAMETER" in value:
            return [str(value["$PARAMETER"])]
        return [n for v in value.values() for n in _parameter_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _parameter_names(v)]
    return []


def _substituted(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        if "$PARAMETER" in value:
            return parameters[str(value["$PARAMETER"])]
        return {k: _substituted(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v, parameters) for v in value]
    return value


def _pydantic_problem(exc: Exception) -> str:
    errors = exc.errors() if hasattr(exc, "errors") else []
    if not errors:
        return str(exc).strip().splitlines()[0]
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    fields = {tuple(e.get("loc", ())) for e in errors}
    more = len(fields) - 1
    text = f"kwargs.{loc}: {first['msg']}" if loc else str(first["msg"])
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")


# --- Great Expectations, imported on first use --------------------------------------------------


@functools.cache
def _gx() -> SimpleNamespace:
    """GX and the two small classes that let its SQL engine run on the kit's DuckDB connection.

    Defined once per process: GX registers every Datasource subclass by its `type`.
    """
    with warnings.catch_warnings():
        # GX's import trips DeprecationWarnings inside its own dependencies (sre_constants, …)
        warnings.simplefilter("ignore")
        import great_expectations as gx
        import sqlalchemy as sa
        from duckdb_engine import ConnectionWrapper
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.datasource.fluent import SQLDatasource
        from great_expectations.execution_engine import SqlAlchemyExecutionEngine
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )
        from great_expectations.expectations.metrics.column_map_metrics.column_values_unique import (  # noqa: E501
            _DUP_KEY_SUBQUERY_ALIAS,
            _count_label,
        )
        from great_expectations.expectations.metrics.map_metric_provider import (
            ColumnMapMetricProvider,
            column_condition_partial,
            column_function_partial,
        )

    class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
        """GX's SQL engine, with query results buffered before their connection closes.

        `SqlAlchemyExecutionEngine.execute_query` runs the query inside
        `with self.get_connection() as connection:` and returns the CursorResult after that
        block has closed the connection; every metric then calls `.fetchall()` (or fetchone,
        fetchmany, scalar) on it. Closing the connection rolls back SQLAlchemy's autobegun
        transaction, and duckdb-engine sends that ROLLBACK through the same DuckDB connection
        whose single pending result the cursor reads from (its CursorWrapper has no result of
        its own), so the fetch returns no rows and GX fails with "list index out of range".
        Drivers whose cursors buffer their own rows (psycopg2, sqlite3) never notice.

        The fix: fetch while the connection is open, `Result.freeze()`, and hand GX a fresh
        Result over the buffered rows. GX only ever asks for small results here (aggregates,
        and with result_format BASIC at most `partial_unexpected_count` unexpected values).
        """

        def execute_query(self, query: Any) -> Any:
            with self.get_connection() as connection:
                result = self._execute_query_with_recovery(connection, query)
                return result.freeze()() if result.returns_rows else result

    class DuckDBColumnValuesCountPerValue(ColumnMapMetricProvider):
        """The per-row input of `column_values.unique` on DuckDB, without a window function.

        GX's SQL `expect_column_values_to_be_unique` reads `column_values.count_per_value`, a
        narrow projection (column, `_num_rows`) that it computes with
        `count(*) OVER (PARTITION BY column)`, and flags rows whose `_num_rows` is 2 or more.
        It queries that projection twice (the unexpected count, then the sample values). On
        DuckDB the window over every row is three times slower than a hash aggregate, so here
        `_num_rows` comes from the values that occur more than once (GROUP BY … HAVING, then
        a semi-join): 2 for a repeated value, 1 otherwise — all GX's condition reads.

        When the suite run found the repeated values beforehand (`_repeated_values`: one row
        per copy of each repeated value), the projection is those rows with `_num_rows` 2: the
        unexpected count GX takes from it (rows with 2 or more) and its sample values are the
        same, and no 10M-row query runs at all. Only `column_values.unique` reads this metric.
        """

        function_metric_name = "column_values.count_per_value"

        @column_function_partial(engine=DuckDBExecutionEngine)
        def _duckdb_function(cls, column: Any, _table: Any, **kwargs: Any) -> Any:
            label = _count_label(kwargs["_metrics"]["table.columns"])
            known = _REPEATED.get(getattr(column, "name", ""))
            if known:
                copies = sa.table(known, sa.column("value"))
                return sa.select(
                    copies.c.value.label(column.name), sa.literal(2).label(label)
                ).alias(_DUP_KEY_SUBQUERY_ALIAS)
            source = _table.subquery() if isinstance(_table, sa.Select) else _table
            repeated = (
                sa.select(column)
                .select_from(source)
                .where(column.is_not(None))
                .group_by(column)
                .having(sa.func.count() > 1)
                .correlate(None)
            )
            rows = sa.case((column.in_(repeated), 2), else_=1)
            return (
                sa.select(column, rows.label(label))
                .select_from(source)
                .alias(_DUP_KEY_SUBQUERY_ALIAS)
            )

    class DuckDBColumnValuesInSet(ColumnMapMetricProvider):
        """`column_values.in_set` on DuckDB as a semi-join against the set.

        GX writes `column IN ('a', 'b', …)`; inside the CASE of its bundled aggregate DuckDB
        tests such a list value by value on every row (24 registered applications: 1.3 s over
        10M rows). `column IN (SELECT unnest([…]))` is a hash lookup (0.1 s). Same rows: GX
        leaves NULLs out of map expectations before it reads the condition.
        """

        condition_metric_name = "column_values.in_set"
        condition_value_keys = ("value_set",)

        @column_condition_partial(engine=DuckDBExecutionEngine)
        def _duckdb(cls, column: Any, value_set: Any, **kwargs: Any) -> Any:
            values = list(value_set or [])
            if not values or any(v is None or isinstance(v, bool) for v in values):
                return column.in_(values)  # GX's own form for the odd cases
            listed = ", ".join(_sql_literal(v) for v in values)
            return column.in_(sa.select(sa.literal_column(f"unnest([{listed}])")))

    class AllocationKitDuckDBDatasource(SQLDatasource):
        """A SQL datasource whose engine is DuckDBExecutionEngine."""

        type: Literal["allocation_kit_duckdb"] = "allocation_kit_duckdb"

        @property
        def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
            return DuckDBExecutionEngine

    class SharedConnection(ConnectionWrapper):
        """duckdb-engine's DB-API wrapper around the kit's connection, which GX must not close:
        the `requests` view and its temp views live on that connection only."""

        def close(self) -> None:
            pass

    return SimpleNamespace(
        gx=gx,
        sa=sa,
        ExpectationConfiguration=ExpectationConfiguration,
        DataContextConfig=DataContextConfig,
        InMemoryStoreBackendDefaults=InMemoryStoreBackendDefaults,
        ProgressBarsConfig=ProgressBarsConfig,
        DuckDBExecutionEngine=DuckDBExecutionEngine,
        SharedConnection=SharedConnection,
    )


def _sqlalchemy_engine_kwargs(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """create_engine() arguments that make SQLAlchemy use `con` itself, never a new database."""
    g = _gx()
    return {"creator": lambda: g.SharedConnection(con), "poolclass": g.sa.pool.StaticPool}


_INDEX_KEY = "allocation_kit_index"  # meta key matching GX's results back to suite positions


def _gx_expectation(g: SimpleNamespace, path: Path, exp: _Expectation) -> Any:
    try:
        meta = {**exp.meta, _INDEX_KEY: exp.index}
        config = g.ExpectationConfiguration(type=exp.type, kwargs=exp.kwargs, meta=meta)
        return config.to_domain_obj()
    except Exception as exc:  # GX raises its own errors and pydantic's for bad kwargs
        if type(exc).__name__ == "ExpectationNotFoundError":
            raise ConfigError(path, exp.where, "unknown expectation type") from None
        raise ConfigError(path, exp.where, _pydantic_problem(exc)) from None


# --- running suites -----------------------------------------------------------------------------


def _relation_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _declared_columns(expectations: Iterable[_Expectation], parameters: Mapping) -> set[str]:
    declared: set[str] = set()
    for exp in expectations:
        if exp.type in _COLUMN_SET_TYPES:
            column_set = _substituted(exp.kwargs.get("column_set"), parameters)
            if isinstance(column_set, list):
                declared.update(str(c) for c in column_set)
    return declared


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    candidates = [info] if "raised_exception" in info else list(info.values())
    for item in candidates:
        if isinstance(item, dict) and item.get("raised_exception"):
            message = str(item.get("exception_message") or "unknown error")
            return message.strip().splitlines()[0]
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _json_safe(value.item())
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return _json_safe(value.to_pydatetime())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# column -> temp table of its repeated values, for the relation whose suite is running
_REPEATED: dict[str, str] = {}


def _repeated_values(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> str:
    """A temp table (value) with one row per copy of every non-null value of `relation.column`
    that occurs more than once; returns its name.

    A GROUP BY over every distinct value (10M strings) is the slowest query a uniqueness check
    can run on DuckDB. Here the 64-bit hashes of the values are sorted in numpy, and only the
    rows whose hash repeats are grouped exactly (equal values have equal hashes; a hash
    collision of different values is grouped apart and dropped by HAVING).
    """
    from .attribute import hash_arrays, hash_table, repeated_sorted

    col = _ident(column, None)
    table = "ak_repeated_" + re.sub(r"\W", "_", f"{relation}_{column}")
    (hashes,) = hash_arrays(con, f"SELECT hash({col}) FROM {relation} WHERE {col} IS NOT NULL")
    hashes.sort()
    repeated = repeated_sorted(hashes)
    if not len(repeated):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {col} AS value FROM {relation} LIMIT 0"
        )
        return table
    con.register("ak_repeated_hashes", hash_table(repeated))
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT value FROM (
                SELECT {col} AS value, count(*) AS copies FROM {relation}
                WHERE hash({col}) IN (SELECT h FROM ak_repeated_hashes)
                GROUP BY ALL HAVING count(*) > 1
            ), range(copies)"""
        )
    finally:
        con.unregister("ak_repeated_hashes")
    return table


def _run_suite(
    g: SimpleNamespace,
    con: duckdb.DuckDBPyConnection | None,
    name: str,
    path: Path,
    parameters: Mapping[str, Any],
    batch_for: Any,
    columns: list[str],
    relation: str | None,
) -> SuiteResult:
    document = _suite_document(path)
    expectations = _expectations(path, document)
    declared = _declared_columns(expectations, parameters)
    present = set(columns)
    planned: dict[int, ExpectationResult] = {}
    runnable: list[tuple[_Expectation, Any]] = []
    for exp in expectations:
        for param in _parameter_names(exp.kwargs):
            if param not in parameters:
                known = ", ".join(sorted(parameters))
                raise ConfigError(
                    path, exp.where, f"unknown parameter {param!r}; expected one of {known}"
                )
        kwargs = _substituted(exp.kwargs, parameters)
        unset = [p for p in _parameter_names(exp.kwargs) if parameters[p] is None]
        missing = [c for c in _columns_named(exp.kwargs) if c not in present]
        if missing and not set(missing) <= declared:
            target = relation or f"the {name} frame"
            raise ConfigError(
                path,
                exp.where,
                f"column {missing[0]!r} is not in {target}; expected one of {', '.join(columns)}",
            )
        note = None
        if unset:
            note = f"not run: parameter {unset[0]!r} is not set"
        elif missing:
            note = f"not run: column {missing[0]!r} is missing from the input"
        if note:
            planned[exp.index] = ExpectationResult(exp.name, exp.type, kwargs, None, note=note)
            continue
        runnable.append((exp, _gx_expectation(g, path, exp)))

    by_index: dict[int, Any] = {}
    repeated: dict[str, str] = {}
    if relation and con is not None:
        for exp, _ in runnable:
            column = exp.kwargs.get("column")
            if exp.type == "expect_column_values_to_be_unique" and isinstance(column, str):
                repeated[column] = _repeated_values(con, relation, column)
    if runnable:
        suite = g.gx.ExpectationSuite(name=name, expectations=[e for _, e in runnable])
        used = {p for exp, _ in runnable for p in _parameter_names(exp.kwargs)}
        _REPEATED.update(repeated)
        try:
            outcome = batch_for().validate(
                suite,
                expectation_parameters={p: parameters[p] for p in used},
                # On DuckDB every sample is a scan of its own, even for an expectation that
                # passed; samples of the few that found unexpected rows are read afterwards.
                result_format={
                    "result_format": "BASIC",
                    "partial_unexpected_count": 0 if relation else SAMPLE_SIZE,
                },
            )
        finally:
            _REPEATED.clear()
        by_index = {r.expectation_config.meta[_INDEX_KEY]: r for r in outcome.results}
    for exp, _ in runnable:
        result = by_index[exp.index]
        problem = _exception_message(result)
        if problem:
            engine = "DuckDB" if relation else "pandas"
            raise ConfigError(
                path, exp.where, f"Great Expectations could not evaluate it on {engine}: {problem}"
            )
        planned[exp.index] = _expectation_result(
            exp, result, parameters, name, relation, con, repeated.get(exp.kwargs.get("column"))
        )
    return SuiteResult(
        name=name,
        path=path,
        blocking=bool(document.get("meta", {}).get("blocking", False)),
        target=relation or "frame",
        results=tuple(planned[i] for i in sorted(planned)),
    )


def _samples(
    con: duckdb.DuckDBPyConnection, relation: str, kwargs: Mapping[str, Any], condition: str
) -> list[Any]:
    """Up to SAMPLE_SIZE unexpected values (pairs for column-pair expectations)."""
    selected = ", ".join(_ident(c, None) for c in _columns_named(kwargs))
    rows = con.execute(
        f"SELECT {selected} FROM {relation} WHERE {condition} LIMIT {SAMPLE_SIZE}"
    ).fetchall()
    return [row[0] if len(row) == 1 else list(row) for row in rows]


def _expectation_result(
    exp: _Expectation,
    result: Any,
    parameters: Mapping[str, Any],
    suite: str,
    relation: str | None,
    con: duckdb.DuckDBPyConnection | None,
    repeated: str | None = None,
) -> ExpectationResult:
    kwargs = _substituted(exp.kwargs, parameters)
    details = result.result or {}
    sample = details.get("partial_unexpected_list") or []
    rule = _RULES.get((exp.type, _columns_named(exp.kwargs))) if suite == "requests" else None
    failing = None
    if relation and details.get("unexpected_count"):
        failing = failing_rows_sql(exp.type, kwargs, relation)
        if repeated and con is not None:  # a uniqueness check's repeated values, each copy
            sample = [
                row[0]
                for row in con.execute(
                    f"SELECT value FROM {repeated} ORDER BY value LIMIT {SAMPLE_SIZE}"
                ).fetchall()
            ]
        elif failing and con is not None:
            sample = _samples(con, relation, kwargs, failing)
    percent = details.get("unexpected_percent")
    return ExpectationResult(
        name=exp.name,
        expectation_type=exp.type,
        kwargs=kwargs,
        success=bool(result.success),
        element_count=details.get("element_count"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=None if percent is None else float(percent),
        sample_unexpected=tuple(_json_safe(v) for v in sample[:SAMPLE_SIZE]),
        observed_value=_json_safe(details.get("observed_value")),
        failing_rows_sql=failing,
        pipeline_rule=rule,
    )


def validation_results(
    con: duckdb.DuckDBPyConnection,
    suites_dir: Path,
    parameters: Mapping[str, Any],
    *,
    relations: Mapping[str, str] | None = None,
    frames: Mapping[str, pd.DataFrame] | None = None,
) -> list[SuiteResult]:
    """Run `suites_dir/<suite>.json` on each input and return every expectation's result.

    Args:
        con: the kit's DuckDB connection; GX's SQL engine runs on it, so its temp views (the
            `requests` view) are what the suites see. Only aggregates and samples leave DuckDB.
        suites_dir: the folder of suite files (`default_suites_dir()` or the workspace's own).
        parameters: values for `{"$PARAMETER": …}` (see `suite_parameters`).
        relations: suite name -> DuckDB relation, e.g. {"requests": "requests"}.
        frames: suite name -> small pandas frame, e.g. {"registry": registry_frame(doc)}.

    Raises ConfigError (one line naming the suite file and expectation) for a malformed suite,
    an unknown expectation type or parameter, bad kwargs, a column the input lacks, or an
    expectation GX cannot evaluate on that engine (regex expectations on DuckDB).
    """
    relations = dict(relations or {})
    frames = dict(frames or {})
    for suite in (*relations, *frames):  # suite problems first: they need no GX
        path = suites_dir / f"{suite}.json"
        _expectations(path, _suite_document(path))
    g = _gx()
    context = g.gx.get_context(
        mode="ephemeral",
        project_config=g.DataContextConfig(
            store_backend_defaults=g.InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=g.ProgressBarsConfig(globally=False),
        ),
    )
    results: list[SuiteResult] = []
    if relations:
        source = context.data_sources.add_allocation_kit_duckdb(
            name="allocation_kit_duckdb",
            connection_string="duckdb:///:memory:",  # unused: the creator hands over `con`
            kwargs=_sqlalchemy_engine_kwargs(con),
        )
        for suite, relation in relations.items():
            # a table asset, not a query asset: for a query GX reads the column names by
            # running the whole query, for a table with LIMIT 1
            asset = source.add_table_asset(name=suite, table_name=relation)
            definition = asset.add_batch_definition_whole_table("all")
            results.append(
                _run_suite(
                    g,
                    con,
                    suite,
                    suites_dir / f"{suite}.json",
                    parameters,
                    definition.get_batch,
                    _relation_columns(con, relation),
                    relation,
                )
            )
    if frames:
        pandas_source = context.data_sources.add_pandas(name="allocation_kit_frames")
        for suite, frame in frames.items():
            definition = pandas_source.add_dataframe_asset(
                name=suite
            ).add_batch_definition_whole_dataframe("all")
            results.append(
                _run_suite(
                    g,
                    None,
                    suite,
                    suites_dir / f"{suite}.json",
                    parameters,
                    functools.partial(definition.get_batch, batch_parameters={"dataframe": frame}),
                    [str(c) for c in frame.columns],
                    None,
                )
            )
    return results


# --- failing rows as SQL ------------------------------------------------------------------------


def _ident(name: str, row: str | None) -> str:
    quoted = (
        name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'
    )
    return f"{row}.{quoted}" if row else quoted


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def failing_rows_sql(
    expectation_type: str, kwargs: Mapping[str, Any], relation: str, row: str | None = None
) -> str | None:
    """SQL condition selecting the rows a row-level expectation finds unexpected, over the
    relation's columns (qualified by the alias `row` if given); None for other expectations.

    Mirrors GX's SQL semantics: map expectations ignore NULLs, column-pair expectations skip
    rows per `ignore_row_if`. `kwargs` have their parameters substituted.
    """
    column = kwargs.get("column")
    col = _ident(column, row) if isinstance(column, str) else None
    if expectation_type == "expect_column_values_to_not_be_null" and col:
        return f"{col} IS NULL"
    if expectation_type == "expect_column_values_to_be_null" and col:
        return f"{col} IS NOT NULL"
    if expectation_type == "expect_column_values_to_be_unique" and col:
        bare = _ident(column, None)
        return f"{col} IN (SELECT {bare} FROM {relation} GROUP BY {bare} HAVING count(*) > 1)"
    if expectation_type == "expect_column_values_to_be_between" and col:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        inside = []
        if low is not None:
            inside.append(f"{col} {'>' if kwargs.get('strict_min') else '>='} {_sql_literal(low)}")
        if high is not None:
            inside.append(f"{col} {'<' if kwargs.get('strict_max') else '<='} {_sql_literal(high)}")
        return f"{col} IS NOT NULL AND NOT ({' AND '.join(inside)})" if inside else None
    if (
        expectation_type
        in (
            "expect_column_values_to_be_in_set",
            "expect_column_values_to_not_be_in_set",
        )
        and col
    ):
        values = list(kwargs.get("value_set") or [])
        listed = ", ".join(_sql_literal(v) for v in values)
        if expectation_type == "expect_column_values_to_not_be_in_set":
            return f"{col} IN ({listed})" if values else None
        return f"{col} IS NOT NULL AND {col} NOT IN ({listed})" if values else f"{col} IS NOT NULL"
    a, b = kwargs.get("column_A"), kwargs.get("column_B")
    if isinstance(a, str) and isinstance(b, str):
        col_a, col_b = _ident(a, row), _ident(b, row)
        if expectation_type == "expect_column_pair_values_a_to_be_greater_than_b":
            holds = f"{col_a} >= {col_b}" if kwargs.get("or_equal") else f"{col_a} > {col_b}"
        elif expectation_type == "expect_column_pair_values_to_be_equal":
            holds = f"{col_a} = {col_b}"
        else:
            return None
        ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
        kept = {
            "both_values_are_missing": f"NOT ({col_a} IS NULL AND {col_b} IS NULL) AND ",
            "either_value_is_missing": f"{col_a} IS NOT NULL AND {col_b} IS NOT NULL AND ",
        }.get(ignore, "")
        return f"{kept}NOT ({holds})"
    return None


def quarantine_conditions(suites: Sequence[SuiteResult], row: str | None = None) -> dict[str, str]:
    """Expectation name -> SQL condition over the ledger (alias `row`) selecting the rows to
    quarantine: failed row-level `requests` expectations that no pipeline rule settles."""
    conditions: dict[str, str] = {}
    for suite in suites:
        if suite.name != "requests":
            continue
        for result in suite.results:
            if result.success is False and result.failing_rows_sql and not result.pipeline_rule:
                conditions[result.name] = failing_rows_sql(
                    result.expectation_type, result.kwargs, suite.target, row
                )
    return conditions


# --- evidence and terminal ----------------------------------------------------------------------


def validation_document(
    suites: Sequence[SuiteResult], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """The evidence file validation.json: every expectation run, with success and counts."""
    expectations = [r for s in suites for r in s.results]
    return {
        "success": all(s.success for s in suites),
        "blocking_failures": [s.name for s in suites if s.blocking and not s.success],
        "statistics": {
            "evaluated": sum(r.success is not None for r in expectations),
            "successful": sum(r.success is True for r in expectations),
            "failed": sum(r.success is False for r in expectations),
            "not_run": sum(r.success is None for r in expectations),
        },
        "parameters": _json_safe(dict(parameters)),
        "suites": [
            {
                "name": s.name,
                "file": suite_file_label(s.path),
                "target": s.target,
                "blocking": s.blocking,
                "success": s.success,
                "expectations": [
                    {
                        "name": r.name,
                        "expectation_type": r.expectation_type,
                        "kwargs": _json_safe(r.kwargs),
                        "success": r.success,
                        "element_count": r.element_count,
                        "unexpected_count": r.unexpected_count,
                        "unexpected_percent": r.unexpected_percent,
                        "sample_unexpected": list(r.sample_unexpected),
                        "observed_value": r.observed_value,
                        "failing_rows_sql": r.failing_rows_sql,
                        "pipeline_rule": r.pipeline_rule,
                        "handling": _handling(s, r),
                        "quarantined": _quarantines(s, r),
                        "note": r.note,
                    }
                    for r in s.results
                ],
            }
            for s in suites
        ],
    }


def _handling(suite: SuiteResult, result: ExpectationResult) -> str:
    """What happens because of this result, in a few words."""
    if result.success is None:
        return result.note or "not run"
    if result.success and not result.unexpected_count:
        return ""
    if result.pipeline_rule:
        return f"pipeline rule {result.pipeline_rule}"
    if result.success:
        return "within mostly"
    if _quarantines(suite, result):
        return "rows quarantined"
    return "blocks the review" if suite.blocking else "reported"


def _quarantines(suite: SuiteResult, result: ExpectationResult) -> bool:
    return (
        suite.name == "requests"
        and result.success is False
        and result.failing_rows_sql is not None
        and result.pipeline_rule is None
    )


def validation_table(suites: Sequence[SuiteResult]) -> str:
    """A plain-text summary for the terminal: one line per expectation, then the totals."""
    header = ("suite", "expectation", "result", "unexpected", "rows", "%", "handling", "examples")
    rows = [header]
    for suite in suites:
        for r in suite.results:
            # the distinct values that failed, a few: what to register, or to ask the callers about
            seen = list(dict.fromkeys(map(repr, r.sample_unexpected)))
            examples = ", ".join(seen[:3]) + (", …" if len(seen) > 3 else "")
            rows.append(
                (
                    suite.name,
                    r.name,
                    {True: "pass", False: "FAIL", None: "-"}[r.success],
                    "" if r.unexpected_count is None else f"{r.unexpected_count:,}",
                    "" if r.element_count is None else f"{r.element_count:,}",
                    "" if r.unexpected_percent is None else f"{r.unexpected_percent:.2f}",
                    _handling(suite, r),
                    examples if r.unexpected_count else "",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (3, 4, 5) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    results = [r for s in suites for r in s.results]
    failed = sum(r.success is False for r in results)
    not_run = sum(r.success is None for r in results)
    summary = (
        f"{len(results)} expectations in {len(suites)} suites: "
        f"{len(results) - failed - not_run} passed, {failed} failed, {not_run} not run"
    )
    blocking = [s.name for s in suites if s.blocking and not s.success]
    if blocking:
        summary += f"; blocking suite failed: {', '.join(blocking)}"
    return "\n".join([*lines, "", summary])
