"""Unit economics: the cost of one declared unit of work, from signed-off definitions.

A cost unit (`cost_units.yaml`) is a written decision, as FinOps unit economics asks: which ledger
rows are the numerator (a filter on ledger columns), what is counted as the denominator (distinct
job ids, requests, thousands of tokens, or business events from a CSV), who owns it and who signed
it off. The numerator is the priced cost of the matching successful, billable calls in any
allocation status (identical logging duplicates once). Each unit has exactly one denominator
kind, so cost per token, per call and per business event are never mixed in one number.

One pass over the period's rows evaluates every unit. A unit whose definition (numerator or
denominator) differs from the one used in the previous period is flagged and its change is not
computed: a retroactive change breaks the comparison.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Literal

import duckdb
from pydantic import Field, model_validator

from .config import ConfigDate, Registry, _KeyProblem, _Strict, parse_document
from .errors import ConfigError, InputError
from .history import cell_text, prior_evidence
from .malformed import EMPTY_FILE, first_non_utf8, is_empty, ragged_row, sql_identifier
from .periods import Period
from .pipeline import PeriodLedger, kept_items_sql, timestamp_sql
from .price import DIRECTIONS, PER_TOKEN_SCALE, pico_to_cost

__all__ = [
    "FILTER_COLUMNS",
    "UNIT_ECONOMICS_COLUMNS",
    "CostUnit",
    "CostUnits",
    "UnitCost",
    "load_cost_units",
    "unit_economics",
    "unit_economics_rows",
]

FILTER_COLUMNS = (
    "team",
    "application",
    "feature",
    "model",
    "environment",
    "workload_class",
    "endpoint",
)
UNIT_ECONOMICS_COLUMNS = (
    "name",
    "period",
    "numerator_cost",
    "denominator_value",
    "denominator_kind",
    "unit_cost",
    "previous_unit_cost",
    "change_pct",
    "owner",
    "signed_off_by",
    # after the columns: what a reviewer needs to trust the number
    "signed_off_on",
    "numerator_filter",
    "matching_requests",
    "unpriced_requests",
    "definition_sha256",
    "definition_changed",
    "note",
)
UNIT_QUANTUM = Decimal(1).scaleb(-PER_TOKEN_SCALE)  # unit costs carry the ledger's 12 places

Filter = str | Annotated[list[str], Field(min_length=1)]
TokenColumn = Literal[
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "total_tokens",
]


class Numerator(_Strict):
    """Ledger columns and the value (or any of the values) a matching row has."""

    team: Filter | None = None
    application: Filter | None = None
    feature: Filter | None = None
    model: Filter | None = None
    environment: Filter | None = None
    workload_class: Filter | None = None
    endpoint: Filter | None = None

    def filters(self) -> dict[str, list[str]]:
        found = {}
        for column in FILTER_COLUMNS:
            value = getattr(self, column)
            if value is not None:
                found[column] = [value] if isinstance(value, str) else list(value)
        return found

    def text(self) -> str:
        parts = [f"{c} = {' or '.join(v)}" for c, v in self.filters().items()]
        return "; ".join(parts) or "every ledger row"


class Denominator(_Strict):
    """Exactly one of: distinct values of a column, a count of requests, a token sum (per N), or
    a column of a business-events CSV."""

    distinct: Literal["job_id", "caller_id", "idempotency_key", "feature", "application"] | None = (
        None
    )
    count: Literal["requests"] | None = None
    sum: TokenColumn | None = None
    per: Annotated[int, Field(gt=0)] = 1
    events: str | None = Field(default=None, min_length=1)
    column: str | None = Field(default=None, min_length=1)
    date_column: str = Field(default="date", min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Denominator:
        kinds = [k for k in ("distinct", "count", "sum", "events") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "expected exactly one of distinct, count, sum or events"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.events is not None and self.column is None:
            raise _KeyProblem("column", "an events denominator needs the column to add up")
        if self.per != 1 and self.sum is None:
            raise _KeyProblem("per", "per applies to a sum of tokens only")
        return self

    def kind(self) -> str:
        if self.distinct:
            return f"distinct {self.distinct}"
        if self.count:
            return "requests"
        if self.sum:
            return f"{self.sum} per {self.per:,}" if self.per != 1 else self.sum
        return f"events: {self.column}"


class CostUnit(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    numerator: Numerator = Field(default_factory=Numerator)
    denominator: Denominator
    owner: str = Field(min_length=1)
    signed_off_by: str = Field(min_length=1)
    signed_off_on: ConfigDate
    cadence: Literal["monthly", "weekly", "per period"] = "per period"

    def definition_sha256(self) -> str:
        """The fingerprint of what the number means: numerator and denominator, not who owns
        or described it."""
        math = {
            "numerator": self.numerator.filters(),
            "denominator": self.denominator.model_dump(exclude_defaults=True),
        }
        return hashlib.sha256(json.dumps(math, sort_keys=True).encode()).hexdigest()


class CostUnits(_Strict):
    cost_units: list[CostUnit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> CostUnits:
        seen: set[str] = set()
        for i, unit in enumerate(self.cost_units):
            if unit.name in seen:
                raise _KeyProblem(f"cost_units[{i}].name", f"duplicate name {unit.name!r}")
            seen.add(unit.name)
        return self


@dataclass(frozen=True)
class LoadedCostUnits:
    """The parsed definitions and the file they came from (events paths resolve against it)."""

    path: Path
    units: tuple[CostUnit, ...]

    def events_path(self, unit: CostUnit) -> Path:
        path = Path(unit.denominator.events or "")
        return path if path.is_absolute() else self.path.parent / path


def load_cost_units(path: Path, registry: Registry) -> LoadedCostUnits:
    """cost_units.yaml, checked against the registry's vocabulary and the events files."""
    parsed: CostUnits = parse_document(path, CostUnits)
    loaded = LoadedCostUnits(path, tuple(parsed.cost_units))
    vocabulary = {
        "team": {t.id for t in registry.teams},
        "application": {a.id for a in registry.applications},
        "environment": set(registry.environments),
        "workload_class": set(registry.workload_classes),
    }
    for i, unit in enumerate(loaded.units):
        where = f"cost_units[{i}] ({unit.name})"
        for column, values in unit.numerator.filters().items():
            known = vocabulary.get(column)
            for value in values:
                if known and value not in known:
                    raise ConfigError(
                        path,
                        f"{where}.numerator.{column}",
                        f"unknown {column} {value!r}; expected one of {', '.join(sorted(known))}",
                    )
        if unit.denominator.events is not None and not loaded.events_path(unit).is_file():
            found = "is a folder" if loaded.events_path(unit).is_dir() else "not found"
            raise ConfigError(
                path,
                f"{where}.denominator.events",
                f"events file {unit.denominator.events!r} {found} "
                f"(relative to {path.parent}); expected a CSV with columns "
                f"{unit.denominator.date_column} and {unit.denominator.column}",
            )
    return loaded


@dataclass(frozen=True)
class UnitCost:
    """One row of unit_economics.csv."""

    name: str
    period: str
    numerator_cost: Decimal
    denominator_value: Decimal
    denominator_kind: str
    unit_cost: Decimal | None
    previous_unit_cost: Decimal | None
    change_pct: Decimal | None
    owner: str
    signed_off_by: str
    signed_off_on: date
    numerator_filter: str
    matching_requests: int
    unpriced_requests: int
    definition_sha256: str
    definition_changed: bool
    note: str


def _in_list(column: str, values: list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _match_sql(unit: CostUnit) -> str:
    return " AND ".join(_in_list(c, v) for c, v in unit.numerator.filters().items()) or "true"


def _denominator_sql(unit: CostUnit, match: str) -> str:
    d = unit.denominator
    if d.distinct:
        return f"count(DISTINCT {d.distinct}) FILTER (WHERE {match})"
    if d.count:
        return f"count(*) FILTER (WHERE {match})"
    if d.sum:
        column = "input_tokens + output_tokens" if d.sum == "total_tokens" else d.sum
        return f"COALESCE(sum({column}) FILTER (WHERE {match}), 0)"
    return "0"  # events: read from their own file


def _numbers(ledger: PeriodLedger, units: tuple[CostUnit, ...]) -> list[tuple]:
    """(cost, denominator, matching requests, unpriced requests) of every unit, in one pass over
    the period's billable rows (the aggregated ones from `attributed`, the itemised ones kept
    from `items`)."""
    columns = ", ".join(
        (
            *FILTER_COLUMNS,
            "job_id",
            "caller_id",
            "idempotency_key",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "reasoning_tokens",
            "cache_write_tokens",
            "priced",
        )
    )
    pico = " + ".join(f"pico_{d}" for d in DIRECTIONS)
    selects = []
    for unit in units:
        match = _match_sql(unit)
        selects += [
            pico_to_cost(f"COALESCE(sum(pico) FILTER (WHERE {match}), 0)"),
            f"CAST({_denominator_sql(unit, match)} AS DECIMAL(38, 0))",
            f"count(*) FILTER (WHERE {match})",
            f"count(*) FILTER (WHERE {match} AND NOT priced)",
        ]
    row = ledger.con.execute(
        f"""WITH billable_rows AS (
            SELECT {columns}, {pico} AS pico FROM attributed WHERE billable AND NOT itemised
            UNION ALL
            SELECT {columns}, {pico} AS pico FROM ({kept_items_sql()}) WHERE billable
        )
        SELECT {", ".join(selects)} FROM billable_rows"""
    ).fetchone()
    return [tuple(row[i : i + 4]) for i in range(0, len(row), 4)]


def _events(
    con: duckdb.DuckDBPyConnection, loaded: LoadedCostUnits, unit: CostUnit, period: Period
) -> Decimal:
    """The sum of the events column over the rows dated inside the period."""
    d = unit.denominator
    path = loaded.events_path(unit)
    # an events file is small: check its shape first (DuckDB's sniffer would take a ragged row
    # for the header and report a missing column)
    if is_empty(path):
        raise InputError(path, None, EMPTY_FILE)
    ragged = ragged_row(path)
    if ragged is not None:
        raise InputError(path, *ragged)
    if not_utf8 := first_non_utf8(path):  # DuckDB's own error names neither byte nor line
        raise not_utf8
    try:
        columns = {
            r[0]: r[1]
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_csv(?, header = true)", [str(path)]
            ).fetchall()
        }
    except duckdb.Error as exc:
        raise InputError(path, None, f"cannot read as CSV: {str(exc).splitlines()[0]}") from None
    for needed in (d.date_column, d.column):
        if needed not in columns:
            raise InputError(
                path,
                None,
                f"missing column {needed!r} (named in {loaded.path.name}, unit {unit.name}); "
                f"columns found: {', '.join(columns)}",
            )
    value, date_col = (sql_identifier(c) for c in (d.column, d.date_column))
    bad = con.execute(
        f"""SELECT row_number, {date_col}::VARCHAR, {value}::VARCHAR FROM (
                SELECT row_number() OVER () AS row_number, * FROM read_csv(?, header = true,
                    all_varchar = true))
            WHERE TRY_CAST({date_col} AS TIMESTAMP) IS NULL
               OR TRY_CAST({value} AS DECIMAL(38, 6)) IS NULL
               OR TRY_CAST({value} AS DECIMAL(38, 6)) < 0
            LIMIT 1""",
        [str(path)],
    ).fetchone()
    if bad:
        raise InputError(
            path,
            f"row {bad[0]} (line {bad[0] + 1})",
            f"expected a date in {d.date_column!r} and a number ≥ 0 in {d.column!r}, "
            f"got {_cell(bad[1])} and {_cell(bad[2])}",
        )
    total = con.execute(
        f"""SELECT COALESCE(sum(CAST({value} AS DECIMAL(38, 6))), 0) FROM read_csv(?,
                header = true, all_varchar = true)
            WHERE CAST({date_col} AS TIMESTAMP) >= {timestamp_sql(period.start)}
              AND CAST({date_col} AS TIMESTAMP) < {timestamp_sql(period.end)}""",
        [str(path)],
    ).fetchone()[0]
    if not total:
        return Decimal(0)
    value = Decimal(total).normalize()  # 14840.000000 → 14840, not 1.484E+4
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _previous(out: Path, period: Period) -> tuple[str | None, dict[str, dict[str, str]]]:
    earlier = prior_evidence(out, period, "unit_economics.csv", count=1)
    if not earlier:
        return None, {}
    previous_period, rows = earlier[-1]
    return previous_period.label, {r["name"]: r for r in rows}


def unit_economics(ledger: PeriodLedger, loaded: LoadedCostUnits, out: Path) -> list[UnitCost]:
    """Every declared unit's cost in the period, against the previous period's evidence."""
    if not loaded.units:
        return []
    numbers = _numbers(ledger, loaded.units)
    previous_label, previous = _previous(out, ledger.period)
    results = []
    for unit, (cost, denominator, matching, unpriced) in zip(loaded.units, numbers, strict=True):
        d = unit.denominator
        notes = []
        if d.events is not None:
            value = _events(ledger.con, loaded, unit, ledger.period)
        else:
            value = Decimal(denominator) / d.per if d.sum else Decimal(denominator)
        cost = Decimal(cost)
        if value == 0:
            unit_cost = None
            notes.append(f"no {d.kind()} in the period: the unit cost is not defined (÷ 0)")
        else:
            unit_cost = (cost / value).quantize(UNIT_QUANTUM, ROUND_HALF_EVEN)
        if matching == 0:
            notes.append("no billable ledger rows match the numerator")
        if unpriced:
            notes.append(
                f"{unpriced:,} matching request(s) have no price: the unit cost is understated"
            )
        sha = unit.definition_sha256()
        before = previous.get(unit.name)
        changed = before is not None and before.get("definition_sha256") != sha
        previous_cost = Decimal(before["unit_cost"]) if before and before.get("unit_cost") else None
        change = None
        # a unit cost that leaves out unpriced requests is no base for a change, either side
        understated = [
            label
            for label, count in (
                (previous_label, (before or {}).get("unpriced_requests")),
                (ledger.period.label, unpriced),
            )
            if count not in (None, "", "0", 0)
        ]
        if changed:
            notes.append(
                f"definition changed since {previous_label}: not comparable with its unit cost"
            )
        elif understated and previous_cost and unit_cost is not None:
            notes.append(
                f"no change against {previous_label} is given: the unit cost of "
                f"{' and '.join(understated)} leaves out unpriced requests"
            )
        elif previous_cost and unit_cost is not None:
            change = ((unit_cost - previous_cost) / previous_cost * 100).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
        results.append(
            UnitCost(
                name=unit.name,
                period=ledger.period.label,
                numerator_cost=cost,
                denominator_value=value,
                denominator_kind=d.kind(),
                unit_cost=unit_cost,
                previous_unit_cost=previous_cost,
                change_pct=change,
                owner=unit.owner,
                signed_off_by=unit.signed_off_by,
                signed_off_on=unit.signed_off_on,
                numerator_filter=unit.numerator.text(),
                matching_requests=matching,
                unpriced_requests=unpriced,
                definition_sha256=sha,
                definition_changed=changed,
                note="; ".join(notes),
            )
        )
    return results


def unit_economics_rows(units: list[UnitCost]) -> list[dict[str, str]]:
    """unit_economics.csv rows: exact decimals, empty cells for unknowns."""
    return [{c: cell_text(getattr(u, c)) for c in UNIT_ECONOMICS_COLUMNS} for u in units]


def _cell(value: str | None) -> str:
    """A CSV cell as an error message quotes it: its text, or "an empty cell"."""
    return "an empty cell" if value is None else repr(value)
