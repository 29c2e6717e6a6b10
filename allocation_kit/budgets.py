"""Budgets: each team's allocated cost against its budget, with thresholds and a run-rate forecast.

`budgets.yaml` holds monthly budgets per team for a set of environments (production unless said
otherwise); spend in the team's other environments is shown beside it, not counted against it.
A weekly or date-range period prorates the monthly budget day by day (a week that spans two
months takes each day's share of its own month; `budget_basis` says which). When the ledger
stops before the period's last hour, the forecast extends the run rate of the time covered to
the whole period.

Status: `exceeded` when the actual cost is over budget; `warning` when it has crossed a threshold
(or the forecast is over budget, or the actual leaves out unpriced calls); `ok` otherwise.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from .allocate import AllocationLine, unpriced_shares
from .config import Money, Percent, Registry, _KeyProblem, _Strict, parse_document
from .errors import ConfigError
from .history import cell_text
from .periods import Period, parse_period
from .present import money, pct_of, percent

__all__ = [
    "BUDGET_COLUMNS",
    "BudgetLine",
    "Budgets",
    "budget_basis",
    "budget_lines",
    "budget_rows",
    "data_gaps",
    "load_budgets",
    "month_to_date_lines",
    "month_to_date_period",
    "prorated_budget",
]

BUDGET_COLUMNS = (
    "team",
    "period",
    "budget",
    "actual",
    "pct_used",
    "forecast",
    "status",
    # after the columns
    "budget_owner",
    "environments",
    "other_environments_actual",
    "threshold_crossed",
    "data_through",
    "reason",
    "monthly_budget",
    "budget_basis",
)
# A week or date range's month to date (the month of its last day, from the 1st through its
# last day) against the whole monthly budget; empty for a month.
MONTH_COLUMNS = (
    "month",
    "month_to_date",
    "month_to_date_pct",
    "month_forecast",
    "month_status",
    "month_reason",
)
BUDGET_COLUMNS += MONTH_COLUMNS
# A ledger whose last row falls within the period's last hour (or after it) covers the period.
COMPLETE_WITHIN = timedelta(hours=1)
SPARSE_WITHIN = timedelta(days=1)  # however sparse the traffic: a day without rows is a gap
# A run rate needs a day of data: an hour after midnight is no month.
MIN_RUN_RATE = timedelta(days=1)
CENT = Decimal("0.01")


class TeamBudget(_Strict):
    team: str = Field(min_length=1)
    monthly: Money
    environments: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["production"]
    )


class Budgets(_Strict):
    thresholds_pct: list[Percent] = Field(
        default_factory=lambda: [Decimal(50), Decimal(80), Decimal(100)]
    )
    budgets: list[TeamBudget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_teams(self) -> Budgets:
        if list(self.thresholds_pct) != sorted(set(self.thresholds_pct)):
            raise _KeyProblem("thresholds_pct", "expected distinct percentages in rising order")
        seen: set[str] = set()
        for i, budget in enumerate(self.budgets):
            if budget.team in seen:
                raise _KeyProblem(f"budgets[{i}].team", f"duplicate budget for {budget.team!r}")
            seen.add(budget.team)
        return self


def load_budgets(path: Path, registry: Registry) -> Budgets:
    """budgets.yaml, with every team and environment checked against the registry."""
    parsed: Budgets = parse_document(path, Budgets)
    teams = {t.id for t in registry.teams}
    environments = set(registry.environments)
    for i, budget in enumerate(parsed.budgets):
        where = f"budgets[{i}] ({budget.team})"
        if budget.team not in teams:
            raise ConfigError(
                path,
                f"{where}.team",
                f"unknown team {budget.team!r}; expected one of {', '.join(sorted(teams))}",
            )
        for env in budget.environments:
            if environments and env not in environments:
                raise ConfigError(
                    path,
                    f"{where}.environments",
                    f"unknown environment {env!r}; expected one of "
                    f"{', '.join(sorted(environments))}",
                )
    return parsed


def prorated_budget(monthly: Decimal, period: Period) -> Decimal:
    """The monthly budget's share for the period's days, each day 1/(days in its month); exact
    until one rounding to the cent."""
    share = Fraction(0)
    day = period.first_day
    while day <= period.last_day:
        share += Fraction(1, calendar.monthrange(day.year, day.month)[1])
        day += timedelta(days=1)
    exact = Fraction(monthly) * share
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(CENT, ROUND_HALF_EVEN)


def budget_basis(period: Period) -> str:
    """How a monthly budget becomes the period's: 'month', or the share of each month's days
    the period covers ('prorated: 6/31 of 2026-10 + 1/30 of 2026-11')."""
    if period.kind == "month":
        return "month"
    days: dict[tuple[int, int], int] = {}
    day = period.first_day
    while day <= period.last_day:
        days[day.year, day.month] = days.get((day.year, day.month), 0) + 1
        day += timedelta(days=1)
    parts = [
        f"{n}/{calendar.monthrange(y, m)[1]} of {y}-{m:02d}" for (y, m), n in sorted(days.items())
    ]
    return "prorated: " + " + ".join(parts)


def _cents(amount: Decimal) -> Decimal:
    """The amount to the cent like `budget` (60 → 60.00), unless it has finer places."""
    return amount.quantize(min(CENT, Decimal(1).scaleb(amount.as_tuple().exponent)))


def _days(span: timedelta) -> str:
    days = Decimal(span.total_seconds()) / 86400
    return f"{days.quantize(Decimal('0.1'), ROUND_HALF_EVEN).normalize():f}"


@dataclass(frozen=True)
class BudgetLine:
    """One row of budgets.csv."""

    team: str
    period: str
    budget: Decimal
    actual: Decimal
    pct_used: Decimal | None
    forecast: Decimal | None  # None: the ledger covers too little of the period to forecast
    status: str
    budget_owner: str
    environments: str
    other_environments_actual: Decimal
    threshold_crossed: Decimal | None
    data_through: date | None
    reason: str
    monthly_budget: Decimal
    budget_basis: str

    def exceeded_text(self, currency: str) -> str:
        """'search's production spend is $1,559.32 against its budget of $1,000.00 (155.9%
        used)': the environments named, since other sections show the team's whole cost; a week
        or date range's budget is named as the month's share it is."""
        budget = (
            f"its budget of {money(self.budget, currency)}"
            if self.budget_basis == "month"
            else f"its share of the monthly budget for {self.period}, "
            f"{money(self.budget, currency)}"
        )
        return (
            f"{self.team}'s {self.environments} spend is {money(self.actual, currency)} against "
            f"{budget} ({percent(pct_of(self.actual, self.budget))} used)"
        )


def complete_within(ledger_span: tuple | None) -> timedelta:
    """How near the period's end the ledger's last row must fall for the period to count as
    complete: COMPLETE_WITHIN, or for sparse traffic three of its typical gaps between rows
    (`ledger_span`'s optional third value: the period's length over its rows), at most a day.
    A ledger of 200 calls a month logs none in most hours: its last call at 22:58 on the 31st
    ends the month."""
    gap = ledger_span[2] if ledger_span is not None and len(ledger_span) > 2 else None
    return min(max(COMPLETE_WITHIN, 3 * gap), SPARSE_WITHIN) if gap else COMPLETE_WITHIN


def data_gaps(period: Period, ledger_span: tuple | None) -> list[str]:
    """What of the period the ledger (`ledger_span`: its first and last timestamp, naive UTC,
    every file read) lacks, in words: its end, when its last row falls before the period's last
    hour (always first), and its start, when a whole day or more of the period has no rows."""
    if ledger_span is None:
        return []
    start, end = (p.astimezone(UTC).replace(tzinfo=None) for p in (period.start, period.end))
    first, last = ledger_span[:2]
    gaps = []
    if last < end - complete_within(ledger_span):
        gaps.append(f"data through {last:%Y-%m-%d %H:%M} UTC")
    if first >= start + timedelta(days=1):
        days = (first - start).days
        empty = "the period's first day has" if days == 1 else f"the first {days} days have"
        gaps.append(f"the ledger starts {first:%Y-%m-%d %H:%M} UTC: {empty} no rows")
    return gaps


def budget_lines(
    budgets: Budgets,
    allocation: list[AllocationLine],
    registry: Registry,
    period: Period,
    ledger_span: tuple[datetime, datetime] | None,
    currency: str,
) -> list[BudgetLine]:
    """Every budget's actual (allocated and shared cost in its environments), use, forecast and
    status. `ledger_span` is the first and last timestamp of the whole ledger (naive UTC, every
    file read): when it ends before the period's last hour, the forecast extends the run rate
    of the time it covers (hours, not whole days: a few rows after midnight are not a day);
    when it starts after the period began, the reason says so."""
    owners = {t.id: t.budget_owner for t in registry.teams}
    start, end = (p.astimezone(UTC).replace(tzinfo=None) for p in (period.start, period.end))
    span = end - start
    covered, data_through = span, period.last_day
    notes = data_gaps(period, ledger_span)
    if ledger_span is not None and ledger_span[1] < end - complete_within(ledger_span):
        last = ledger_span[1]
        # whole minutes, as the reason states them: the forecast can be recomputed from it
        covered = timedelta(minutes=max(last - start, COMPLETE_WITHIN) // timedelta(minutes=1))
        data_through = max(last.date(), period.first_day)
        minutes = (covered // timedelta(minutes=1), span // timedelta(minutes=1))
        notes[0] += (
            f": forecast at the run rate of {_days(covered)} of {period.days} days "
            f"({minutes[0]:,} of {minutes[1]:,} minutes)"
            if covered >= MIN_RUN_RATE
            else ": too little of the period to forecast from"
        )
    basis = budget_basis(period)
    unpriced_shared = unpriced_shares(allocation)
    lines = []
    for b in budgets.budgets:
        budget = prorated_budget(b.monthly, period)
        actual = other = Decimal("0E-12")  # the scale of the evidence: 0 reads as 0.000000000000
        unpriced = 0
        shares: set[str] = set()  # shared applications whose unpriced calls the team shares
        for line in allocation:
            if line.team == b.team and line.allocation_status in ("allocated", "shared"):
                if line.environment in b.environments:
                    actual += line.cost
                    unpriced += line.unpriced_requests
                    if (line.application, line.environment) in unpriced_shared:
                        shares.add(line.application or "")
                else:
                    other += line.cost
        forecast = (
            (actual * Decimal(span.total_seconds()) / Decimal(covered.total_seconds())).quantize(
                CENT, ROUND_HALF_EVEN
            )
            if covered >= MIN_RUN_RATE
            else None
        )
        pct = (actual / budget * 100).quantize(CENT, ROUND_HALF_EVEN) if budget else None
        # judged on the exact share: 79.996% rounds to 80.00 but has not reached 80
        crossed = [t for t in budgets.thresholds_pct if budget and actual * 100 >= t * budget]
        reasons = []
        if actual > budget:
            status = "exceeded"
            reasons.append(f"over budget by {money(actual - budget, currency)}")
        elif crossed:
            status = "warning"
            reasons.append(f"{pct}% of budget used (threshold {crossed[-1]}%)")
        else:
            status = "ok"
        if unpriced or shares:
            parts = []
            if unpriced:
                envs = ", ".join(b.environments)
                parts.append(f"{unpriced:,} unpriced call{'s' if unpriced != 1 else ''} in {envs}")
            if shares:
                parts.append(
                    f"its share of the unpriced calls on shared {', '.join(sorted(shares))}"
                )
            calls = " and ".join(parts)
            reasons.append(f"actual leaves out {calls} (no price in the snapshot: cost unknown)")
            if status == "ok":  # an actual known to be short cannot be called within budget
                status = "warning"
        reasons += notes
        if covered < span and forecast is not None and forecast > budget and status == "ok":
            status = "warning"
            reasons.append("the forecast is over budget")
        lines.append(
            BudgetLine(
                team=b.team,
                period=period.label,
                budget=budget,
                actual=actual,
                pct_used=pct,
                forecast=forecast,
                status=status,
                budget_owner=owners[b.team],
                environments=", ".join(b.environments),
                other_environments_actual=other,
                threshold_crossed=crossed[-1] if crossed else None,
                data_through=data_through,
                reason="; ".join(reasons),
                monthly_budget=_cents(b.monthly),
                budget_basis=basis,
            )
        )
    return lines


def month_to_date_period(period: Period) -> Period | None:
    """The month to date of a week or date range: from the 1st of the month most of its days
    fall in (the later one on a tie) through its last day in that month; None for a month, its
    own month to date. A week from 26 October to 1 November has October's close, 1 to 31
    October; the first day of November comes with the next week."""
    if period.kind == "month":
        return None
    days: dict[tuple[int, int], int] = {}
    day = period.first_day
    while day <= period.last_day:
        days[day.year, day.month] = days.get((day.year, day.month), 0) + 1
        day += timedelta(days=1)
    year, month = max(days, key=lambda ym: (days[ym], ym))
    last = min(period.last_day, date(year, month, calendar.monthrange(year, month)[1]))
    return parse_period(f"{year}-{month:02d}-01..{last.isoformat()}")


def month_to_date_lines(
    budgets: Budgets,
    allocation: list[AllocationLine],
    registry: Registry,
    period: Period,
    ledger_span: tuple[datetime, datetime] | None,
    currency: str,
) -> list[BudgetLine]:
    """`budget_lines` of the month of a week or date range's month to date (`period`: that
    month to date, `month_to_date_period`), from its allocation (`allocation`): the actual so far
    against the whole monthly budget, the forecast running the month-to-date rate to the
    month's end. Rows after the month to date do not count (the ledger is cut at its end)."""
    month = parse_period(f"{period.first_day:%Y-%m}")
    end = period.end.astimezone(UTC).replace(tzinfo=None)
    span = (
        None
        if ledger_span is None
        else (ledger_span[0], min(ledger_span[1], end), *ledger_span[2:])
    )
    lines = budget_lines(budgets, allocation, registry, month, span, currency)
    if ledger_span is not None and ledger_span[1] < month.start.astimezone(UTC).replace(
        tzinfo=None
    ):
        # a week into a month whose rows have not come yet
        said = (
            f"no ledger rows in {month.label} yet (data through {ledger_span[1]:%Y-%m-%d %H:%M} "
            "UTC): nothing to forecast from"
        )
        return [replace(line, reason=said) for line in lines]
    stops_early = ledger_span is not None and ledger_span[1] < end - complete_within(ledger_span)
    if ledger_span is None or stops_early or period.end == month.end:
        return lines  # the ledger stops early (its "data through" stands), or the month is whole
    cut = f"data through {end:%Y-%m-%d %H:%M} UTC"
    said = f"month to date through {period.last_day}"
    return [replace(line, reason=line.reason.replace(cut, said)) for line in lines]


def budget_rows(
    lines: list[BudgetLine], month: list[BudgetLine] | None = None
) -> list[dict[str, str]]:
    """budgets.csv: each budget line, with its month-to-date line (`month`, same order) in the
    month_* columns for a week or date range."""
    by_team = {m.team: m for m in month or []}
    rows = []
    for line in lines:
        row = {c: cell_text(getattr(line, c)) for c in BUDGET_COLUMNS if c not in MONTH_COLUMNS}
        m = by_team.get(line.team)
        row |= {
            "month": m.period if m else "",
            "month_to_date": cell_text(m.actual if m else None),
            "month_to_date_pct": cell_text(m.pct_used if m else None),
            "month_forecast": cell_text(m.forecast if m else None),
            "month_status": m.status if m else "",
            "month_reason": m.reason if m else "",
        }
        rows.append(row)
    return rows
