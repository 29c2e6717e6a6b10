"""Teams at a glance: one row per registered team, gathering what the period's sections say
about it, for the budget owner who reads only their own row.

A row holds the team's own cost (allocated and shared) against the period before it (from that
period's evidence, when the same output folder has it), its line of the chargeback to the bill,
its budget, the anomalies behind which it stands, and its chargeback review. Nothing is
computed here that another section does not show: the row only brings it together, so the
figures agree with the sections to the digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .allocate import AllocationLine
from .attribute import UNALLOCATED_STATUSES
from .chargeback import Chargeback
from .config import Registry
from .history import cell_text

__all__ = ["TEAM_COLUMNS", "TeamSummary", "models_without_price", "team_rows", "team_summaries"]

TEAM_COLUMNS = (
    "period",
    "team",
    "business_unit",
    "cost_center",
    "budget_owner",
    "cost",
    "unpriced_requests",
    "unpriced_models",
    "previous_period",
    "previous_cost",
    "previous_unpriced_requests",
    "change_pct",
    "charge",
    "currency",
    "budget",
    "budget_actual",
    "budget_used_pct",
    "budget_status",
    "anomalies",
    "review_result",
    "reasons",
    "follow_up_owner",
)


@dataclass(frozen=True)
class TeamSummary:
    """One row of teams.csv."""

    team: str
    business_unit: str
    cost_center: str
    budget_owner: str
    cost: Decimal  # allocated and shared cost, exact
    unpriced_requests: int  # billable calls of the team without a price: the cost leaves them out
    unpriced_models: tuple[str, ...]  # their models, its shared applications' included
    previous_period: str | None  # the period compared with; None: no evidence of it
    previous_cost: Decimal | None
    previous_unpriced_requests: int | None  # None: not known (evidence of an older kit)
    change_pct: Decimal | None  # None: nothing to compare, or either cost is understated
    charge: Decimal  # the team's line of the chargeback schedule, in the minor unit
    budget: Decimal | None  # None: no budget for the team
    budget_actual: Decimal | None  # its cost in the budget's environments, exact
    budget_used_pct: Decimal | None
    budget_status: str | None
    anomalies: tuple[str, ...]  # "scope key: metric" of each anomaly the team stands behind
    review_result: str  # pass | needs_follow_up | fail
    reasons: str
    follow_up_owner: str


def team_summaries(
    registry: Registry,
    allocation: Sequence[AllocationLine],
    charges: Chargeback,
    budgets: Sequence,
    anomalies: Sequence[tuple[object, set[str | None]]],
    reviewed: Sequence,
    previous: tuple[str, Mapping[str, Decimal]] | None,
    previous_unpriced: Mapping[str, int] | None = None,
    unpriced_models: Mapping[str, Sequence[str]] | None = None,
) -> list[TeamSummary]:
    """A row per registered team, costliest first (then by id). `anomalies`: each flagged
    anomaly with the teams behind it (`review.anomaly_teams`); `reviewed`: the chargeback review
    rows; `previous`: (label, {team: cost}) of the period before, None without its evidence;
    `previous_unpriced`: {team: its unpriced calls} then, from that period's teams.csv (None
    when it has none): a change against an understated cost is no change; `unpriced_models`:
    {team: the models of its calls without a price} (`models_without_price`)."""
    cost: dict[str, Decimal] = {}
    unpriced: dict[str, int] = {}
    for line in allocation:
        if line.team and line.allocation_status not in UNALLOCATED_STATUSES:
            cost[line.team] = cost.get(line.team, Decimal(0)) + line.cost
            unpriced[line.team] = unpriced.get(line.team, 0) + line.unpriced_requests
    charged = {c.team: c.charge for c in charges.lines if c.team}
    budget = {b.team: b for b in budgets}
    review = {r.team: r for r in reviewed}
    rows = []
    for team in registry.teams:
        own = cost.get(team.id, Decimal(0))
        before = previous[1].get(team.id, Decimal(0)) if previous else None
        before_unpriced = (
            previous_unpriced.get(team.id, 0)
            if previous and previous_unpriced is not None
            else None
        )
        change = None
        if before and not unpriced.get(team.id) and not before_unpriced:
            change = ((own - before) / before * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        line = budget.get(team.id)
        checked = review[team.id]  # the chargeback review has a row for every team
        rows.append(
            TeamSummary(
                team=team.id,
                business_unit=team.business_unit,
                cost_center=team.cost_center,
                budget_owner=team.budget_owner,
                cost=own,
                unpriced_requests=unpriced.get(team.id, 0),
                unpriced_models=tuple((unpriced_models or {}).get(team.id, ())),
                previous_period=previous[0] if previous else None,
                previous_cost=before,
                previous_unpriced_requests=before_unpriced,
                change_pct=change,
                charge=charged.get(team.id, Decimal(0)),
                budget=line.budget if line else None,
                budget_actual=line.actual if line else None,
                budget_used_pct=line.pct_used if line else None,
                budget_status=line.status if line else None,
                anomalies=tuple(
                    f"{a.scope} {a.key}: {a.metric}" for a, behind in anomalies if team.id in behind
                ),
                review_result=checked.review_result,
                reasons=checked.reasons,
                follow_up_owner=checked.follow_up_owner,
            )
        )
    rows.sort(key=lambda r: (-r.cost, r.team))
    return rows


def team_rows(period: str, currency: str, rows: Sequence[TeamSummary]) -> list[dict[str, str]]:
    """The rows of teams.csv: exact amounts, anomalies joined by '; '."""
    return [
        {
            "period": period,
            "team": r.team,
            "business_unit": r.business_unit,
            "cost_center": r.cost_center,
            "budget_owner": r.budget_owner,
            "cost": cell_text(r.cost),
            "unpriced_requests": str(r.unpriced_requests),
            "unpriced_models": "; ".join(r.unpriced_models),
            "previous_period": cell_text(r.previous_period),
            "previous_cost": cell_text(r.previous_cost),
            "previous_unpriced_requests": cell_text(r.previous_unpriced_requests),
            "change_pct": cell_text(r.change_pct),
            "charge": cell_text(r.charge),
            "currency": currency,
            "budget": cell_text(r.budget),
            "budget_actual": cell_text(r.budget_actual),
            "budget_used_pct": cell_text(r.budget_used_pct),
            "budget_status": cell_text(r.budget_status),
            "anomalies": "; ".join(r.anomalies),
            "review_result": r.review_result,
            "reasons": r.reasons,
            "follow_up_owner": r.follow_up_owner,
        }
        for r in rows
    ]


def models_without_price(
    unpriced: Sequence[tuple[str, str | None, str | None, str]],
    allocation: Sequence[AllocationLine],
) -> dict[str, list[str]]:
    """{team: the models of its billable calls without a price, sorted}, from the (allocation
    status, owner team, application, model) of the period's unpriced lines: an allocated line's
    owner, and every team that receives a share of a shared application's."""
    receivers: dict[str | None, set[str]] = {}
    for line in allocation:
        if line.allocation_status == "shared" and line.team:
            receivers.setdefault(line.application, set()).add(line.team)
    models: dict[str, set[str]] = {}
    for status, owner, application, model in unpriced:
        teams = {owner} if status == "allocated" and owner else set()
        if status == "shared":
            teams = receivers.get(application, set())
        for team in teams:
            models.setdefault(team, set()).add(model)
    return {team: sorted(found) for team, found in models.items()}
