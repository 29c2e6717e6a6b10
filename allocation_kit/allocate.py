"""Allocate: direct cost to owners, split shared applications by their rule, keep the rest visible.

Pure functions over small aggregates (one row per owner line), exact in Decimal. Every split sums
exactly to what it splits (largest remainder at the ledger's precision), so allocated + shared +
unallocated equals the ledger total to the last digit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from .attribute import UNALLOCATED_STATUSES
from .config import EvenSplit, FixedSplit, ProportionalSplit, Registry
from .price import PER_TOKEN_SCALE

__all__ = [
    "COST_QUANTUM",
    "AllocationLine",
    "UsageLine",
    "allocation_lines",
    "direct_usage",
    "shared_weights",
    "split_exact",
    "unpriced_shares",
]

COST_QUANTUM = Decimal(1).scaleb(-PER_TOKEN_SCALE)
COUNT_FIELDS = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "unpriced_requests",
)


@dataclass(frozen=True)
class UsageLine:
    """Usage of one (status, owner team, application, environment) in the period."""

    allocation_status: str
    team: str | None
    application: str | None
    environment: str | None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    unpriced_requests: int
    cost: Decimal
    billable_requests: int  # the attempts the snapshot bills (failed ones only if it says so)
    billable_tokens: int  # their input + output tokens


@dataclass(frozen=True)
class AllocationLine:
    """One row of allocation.csv."""

    business_unit: str | None
    team: str | None
    application: str | None
    environment: str | None
    cost_center: str | None
    allocation_status: str
    allocation_rule: str
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    unpriced_requests: int
    cost: Decimal


def split_exact(
    total: Decimal | int, weights: Mapping[str, Decimal | int], quantum: Decimal = COST_QUANTUM
) -> dict[str, Decimal]:
    """Shares of total proportional to weights, in multiples of quantum, summing exactly to total.

    Largest remainder: every share is floored to the quantum, then the leftover quanta go one each
    to the largest remainders (ties to the first key in sorted order). Weights must not all be 0.
    """
    total = Decimal(total)
    keys = sorted(weights)
    weight_sum = sum((Decimal(weights[k]) for k in keys), Decimal(0))
    if weight_sum <= 0:
        raise ValueError("weights must have a positive sum")
    units = (total / quantum).to_integral_value()
    if units * quantum != total:
        raise ValueError(f"{total} is not a multiple of {quantum}")
    exact = {k: units * Decimal(weights[k]) / weight_sum for k in keys}
    floors = {k: exact[k].to_integral_value(rounding=ROUND_FLOOR) for k in keys}
    leftover = int(units - sum(floors.values()))
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - floors[k]), k))
    for k in by_remainder[:leftover]:
        floors[k] += 1
    return {k: floors[k] * quantum for k in keys}


_BASIS = {
    "tokens": "billable input + output tokens",
    "cost": "cost",
    "requests": "billable requests",
}


def shared_weights(
    rule: FixedSplit | ProportionalSplit | EvenSplit,
    direct: Mapping[str, Mapping[str, Decimal | int]],
) -> tuple[dict[str, Decimal], str]:
    """The weight of each receiving team under rule, and the rule in words.

    `direct` maps team -> {"tokens", "cost", "requests"} of its directly allocated usage in the
    period; a proportional rule with no direct usage at all falls back to an even split.
    """
    if isinstance(rule, FixedSplit):
        words = ", ".join(f"{team} {pct}%" for team, pct in rule.split.items())
        return dict(rule.split), f"shared: fixed split ({words})"
    if isinstance(rule, ProportionalSplit):
        weights = {t: Decimal(direct.get(t, {}).get(rule.basis, 0)) for t in rule.teams}
        if sum(weights.values()) > 0:
            return weights, (
                f"shared: proportional to the direct {_BASIS[rule.basis]} of "
                f"{', '.join(rule.teams)} in the period (all environments)"
            )
        return (
            {t: Decimal(1) for t in rule.teams},
            f"shared: even across {', '.join(rule.teams)} (no direct {rule.basis} to weigh by)",
        )
    return {t: Decimal(1) for t in rule.teams}, f"shared: even across {', '.join(rule.teams)}"


def direct_usage(usage: Sequence[UsageLine]) -> dict[str, dict[str, Decimal | int]]:
    """team -> {"tokens", "cost", "requests"} of its directly allocated usage (the basis of
    proportional shared splits): billable attempts only, so a team's failed calls, which cost
    nothing, earn it no larger share; a call without a price counts by its tokens and request
    (the provider bills it) and adds no cost."""
    direct: dict[str, dict[str, Decimal | int]] = {}
    for line in usage:
        if line.allocation_status == "allocated" and line.team:
            acc = direct.setdefault(line.team, {"tokens": 0, "cost": Decimal(0), "requests": 0})
            acc["tokens"] += line.billable_tokens
            acc["cost"] += line.cost
            acc["requests"] += line.billable_requests
    return direct


def _split_line(line: UsageLine, weights: Mapping[str, Decimal]) -> dict[str, dict[str, object]]:
    shares: dict[str, dict[str, object]] = {team: {} for team in weights}
    for field in COUNT_FIELDS:
        for team, part in split_exact(getattr(line, field), weights, Decimal(1)).items():
            shares[team][field] = int(part)
    for team, part in split_exact(line.cost, weights).items():
        shares[team]["cost"] = part
    return shares


def allocation_lines(usage: Sequence[UsageLine], registry: Registry) -> list[AllocationLine]:
    """The owner lines of the period: direct, shared (split per receiving team), unallocated."""
    apps = {a.id: a for a in registry.applications}
    teams = {t.id: t for t in registry.teams}
    direct = direct_usage(usage)

    lines: list[AllocationLine] = []

    def owner_line(team: str | None, status: str, rule: str, src: UsageLine, **numbers) -> None:
        owner = teams.get(team) if team else None
        values = {f: getattr(src, f) for f in (*COUNT_FIELDS, "cost")} | numbers
        lines.append(
            AllocationLine(
                business_unit=owner.business_unit if owner else None,
                team=team,
                application=src.application,
                environment=src.environment,
                cost_center=owner.cost_center if owner else None,
                allocation_status=status,
                allocation_rule=rule,
                **values,
            )
        )

    for line in usage:
        status = line.allocation_status
        if status in UNALLOCATED_STATUSES:
            owner_line(None, status, f"unallocated: {status.replace('_', ' ')}", line)
        elif status == "shared":
            rule = apps[line.application].shared
            weights, words = shared_weights(rule, direct)
            for team, numbers in _split_line(line, weights).items():
                owner_line(team, "shared", words, line, **numbers)
        elif line.application:
            owner_line(line.team, status, "direct: application owner", line)
        else:
            owner_line(line.team, status, "direct: team tag", line)
    return sorted(lines, key=_line_order)


def _line_order(line: AllocationLine) -> tuple:
    unallocated = line.allocation_status in UNALLOCATED_STATUSES
    return (
        unallocated,
        line.business_unit or "",
        line.team or "",
        line.allocation_status,
        line.application or "",
        line.environment or "",
    )


def unpriced_shares(allocation: Sequence[AllocationLine]) -> set[tuple[str | None, str | None]]:
    """(application, environment) of the shared lines with unpriced calls. Their count is split
    in whole calls, so a receiving team can get none of them while its share of the cost is
    still understated: it must hear of them all the same."""
    return {
        (line.application, line.environment)
        for line in allocation
        if line.allocation_status == "shared" and line.unpriced_requests
    }
