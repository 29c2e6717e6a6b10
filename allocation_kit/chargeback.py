"""The chargeback to the bill: what each team is charged, in the currency's minor unit, so that
the charges and what the reviewer keeps add up to the bill's total exactly.

Each team carries its own cost (allocated and shared) and, when kit.yaml's `chargeback.spread`
names them, a share of the amounts no team caused by itself: unallocated spend, the billed usage
beyond the ledger, and the bill's tax, credits, adjustments, purchases and corrections. Shares
are in proportion to the teams' own cost, exact (largest remainder at 10⁻¹²). What is not spread
stays on one line kept by the reviewer, and with it the part of the bill's other items (tax,
credits, …) that falls on the spend it keeps: the teams' own cost and that spend weigh those
items together, so no team pays tax on spend that is not (yet) charged to it. The exact totals
are then rounded to the minor unit by largest remainder, so the rounded charges sum to the
rounded total: a schedule that foots, ready to book.

The billed usage difference is spread only when the reconciliation passed: a difference the
reconciliation could not explain is settled with the provider first, not charged to teams.
Without a bill that covers the period in the workspace's currency (none, another currency, days
or a billing period missing) the schedule foots to the ledger total. Usage drawn down from a
prepaid commitment was billed with its purchase: the purchase item is net of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import get_args

from .allocate import COST_QUANTUM, AllocationLine, split_exact
from .attribute import UNALLOCATED_STATUSES
from .config import Registry, Spreadable
from .present import minor_unit

__all__ = [
    "CHARGE_COLUMNS",
    "INCOMPLETE_BILL",
    "NO_WEIGHTS",
    "SPREADABLE",
    "USAGE_ITEMS",
    "Charge",
    "Chargeback",
    "bill_charges",
    "bill_items",
    "charge_rows",
    "chargeback",
    "foot",
    "prepaid_drawdown",
]

# What a team may carry beyond its own cost, in the order the schedule shows it.
SPREADABLE: tuple[str, ...] = get_args(Spreadable)
ITEM_WORDS = {
    "unallocated": "unallocated spend",
    "usage_difference": "usage difference",
    "tax": "tax",
    "credit": "credits",
    "adjustment": "adjustments",
    "purchase": "purchases",
    "correction": "corrections",
}
CHARGE_COLUMNS = (
    "period",
    "line",
    "business_unit",
    "cost_center",
    "team",
    "own_cost",
    *(f"{item}_share" for item in SPREADABLE),
    "total_cost",
    "charge",
    "currency",
    # the bill the schedule adds up to, for the journal entry ("; " between several)
    "invoice_issuer",
    "billing_account_id",
    "invoice_id",
)


@dataclass(frozen=True)
class Charge:
    """One line of the schedule: a team (`team` set) or what the reviewer keeps (`team` None)."""

    team: str | None
    business_unit: str | None
    cost_center: str | None
    own_cost: Decimal  # allocated and shared cost; 0 on the reviewer's line
    shares: dict[str, Decimal]  # spread item -> this line's part of it (exact)
    total: Decimal  # own cost + shares, exact
    charge: Decimal  # total in the minor unit; the charges add up to the footed total


@dataclass(frozen=True)
class Chargeback:
    """The schedule of one period."""

    lines: list[Charge]  # teams by charge, largest first, then the reviewer's line
    items: dict[str, Decimal]  # every amount beyond the teams' own cost, exact
    spread: tuple[str, ...]  # the items spread across teams
    kept: dict[str, str]  # item configured to be spread but kept by the reviewer -> why
    total: Decimal  # what the schedule adds up to, exact: the bill's total or the ledger's
    footed: Decimal  # the total in the minor unit
    against_bill: bool  # False: no comparable bill, the schedule foots to the ledger total
    currency: str
    # invoice_issuer, billing_account_id, invoice_id -> the bill's values (none without a bill)
    bill: dict[str, list[str]] = field(default_factory=dict)

    @property
    def reviewer(self) -> Charge:
        return self.lines[-1]


def bill_charges(record: Mapping, currency: str) -> tuple[list[dict], list[tuple[dict, str]]]:
    """The reconciliation record's other charges and corrections: (those in the period's bill,
    [(charge, why it is not added)]). A charge in another currency is never added to the
    workspace's, nor a charge whose charge period reaches outside the review period (a month's
    tax beside a week is not the week's), nor a correction whose invoice (billing period) does:
    a correction of September usage on October's invoice is October's, booked once with the
    invoice."""
    start, end = (_naive(record.get(k)) for k in ("period_start", "period_end"))
    added, apart = [], []
    for charge in [*(record.get("other_charges") or []), *(record.get("corrections") or [])]:
        unit = charge.get("currency") or currency
        correction = charge.get("charge_class") == "Correction"
        kind = "billing" if correction and charge.get("billing_period_start") else "charge"
        first, last = (_naive(charge.get(f"{kind}_period_{k}")) for k in ("start", "end"))
        if unit != currency:
            apart.append((charge, f"in {unit}: not added"))
        elif start and end and first and last and (first < start or last > end):
            beyond = record.get("period", "the period")
            apart.append((charge, f"whole charge, beyond {beyond}: not added"))
        else:
            added.append(charge)
    return added, apart


def _naive(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    moment = datetime.fromisoformat(stamp)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


NO_WEIGHTS = "no team has a cost to weigh the shares by"
# The items that are spend itself; the others (tax, credits, …) are charged on spend.
USAGE_ITEMS = ("unallocated", "usage_difference")
_REVIEWER = ""  # the reviewer's key among team ids in a split (no team id is empty)
# A bill that does not cover the whole period (days or a billing period missing) is no total to
# charge: the schedule then foots to the ledger.
INCOMPLETE_BILL = frozenset({"billing_period_gap", "bill_days_missing"})


def prepaid_drawdown(record: Mapping) -> Decimal:
    """What the bill's usage drew down from a prepaid commitment: its effective cost beyond
    what it bills (the reconciliation compares usage at that effective cost, while the money
    was billed with the commitment's purchase)."""
    for reason in record.get("reasons") or []:
        if reason.get("code") == "commitment_drawdown":
            numbers = reason.get("numbers") or {}
            return Decimal(numbers["effective_cost"]) - Decimal(numbers["billed_cost"])
    return Decimal(0)


def bill_items(record: Mapping | None, currency: str) -> dict[str, Decimal] | None:
    """{item: amount} of what the reconciliation record's bill charges for the period beside
    usage (tax, credit, …, correction; see `bill_charges`), or None when the bill is not
    comparable or does not cover the whole period. Usage drawn down from a prepaid commitment
    is compared at its effective cost but was billed with the purchase: the purchase item is
    net of it, so the items add up to what the bill charges."""
    if not record or record.get("billed_cost") is None:
        return None
    if any(r.get("code") in INCOMPLETE_BILL for r in record.get("reasons") or []):
        return None
    corrections = {id(c) for c in record.get("corrections") or []}
    items: dict[str, Decimal] = {}
    for charge in bill_charges(record, currency)[0]:
        item = "correction" if id(charge) in corrections else str(charge["charge_category"]).lower()
        item = item if item in SPREADABLE else "adjustment"
        items[item] = items.get(item, Decimal(0)) + Decimal(str(charge["amount"]))
    prepaid = prepaid_drawdown(record)
    if prepaid:
        items["purchase"] = items.get("purchase", Decimal(0)) - prepaid
    return items


def chargeback(
    allocation: Sequence[AllocationLine],
    ledger_cost: Decimal,
    registry: Registry,
    record: Mapping | None,
    spread: Sequence[str],
    currency: str,
    kept_cost_center: str | None = None,
) -> Chargeback:
    """The schedule from the period's allocation lines, its ledger total and its reconciliation
    record (None: no bill), spreading the items `spread` names."""
    own: dict[str, Decimal] = {}
    unallocated = Decimal(0)
    for line in allocation:
        if line.allocation_status in UNALLOCATED_STATUSES or not line.team:
            unallocated += line.cost
        else:
            own[line.team] = own.get(line.team, Decimal(0)) + line.cost
    items = {"unallocated": unallocated}
    billed = bill_items(record, currency)
    kept: dict[str, str] = {}
    if billed is not None:
        items["usage_difference"] = Decimal(str(record["billed_cost"])) - ledger_cost
        items |= billed
        result = record.get("result")
        if "usage_difference" in spread and result != "pass" and items["usage_difference"]:
            kept["usage_difference"] = (
                "the reconciliation failed, so what billed usage differs from the ledger is "
                "settled with the provider before any of it is charged"
                if result == "fail"
                else f"the reconciliation is {result}: what billed usage differs from the "
                "ledger is charged once its reasons are resolved (an unpriced model priced, "
                "a missing bill line found)"
            )
    weights = {team: cost for team, cost in own.items() if cost > 0}
    chosen = [i for i in SPREADABLE if i in spread and items.get(i) and i not in kept]
    if chosen and not weights:
        kept |= {i: NO_WEIGHTS for i in chosen}
        chosen = []
    # Tax, credits and the other bill items fall on all billed usage: the part on the spend the
    # reviewer keeps (unallocated spend, an unsettled usage difference) stays with it. The teams
    # carry their own cost plus the spend spread to them (`base`): weighed exactly, a team by
    # own × base and the reviewer by held × own total, each part is its spend ÷ (base + held).
    held = sum(
        (items[i] for i in USAGE_ITEMS if i not in chosen and items.get(i, 0) > 0), Decimal(0)
    )
    own_total = sum(weights.values(), Decimal(0))
    base = own_total + sum((items[i] for i in USAGE_ITEMS if i in chosen), Decimal(0))
    on_spend = weights
    if held and base > 0:
        on_spend = {t: w * base for t, w in weights.items()} | {_REVIEWER: held * own_total}
    shares: dict[str, dict[str, Decimal]] = {team: {} for team in own} | {_REVIEWER: {}}
    for item in chosen:
        by = weights if item in USAGE_ITEMS else on_spend
        for team, part in split_exact(items[item], by).items():
            shares[team][item] = part
    held_shares = shares.pop(_REVIEWER)
    total = ledger_cost + sum(
        (amount for item, amount in items.items() if item != "unallocated"), Decimal(0)
    )
    teams = {t.id: t for t in registry.teams}
    lines = [
        Charge(
            team=team,
            business_unit=teams[team].business_unit if team in teams else None,
            cost_center=teams[team].cost_center if team in teams else None,
            own_cost=cost,
            shares=shares[team],
            total=cost + sum(shares[team].values(), Decimal(0)),
            charge=Decimal(0),
        )
        for team, cost in own.items()
    ]
    lines.sort(key=lambda c: (-c.total, c.team))  # equal remainders favour the larger charge
    remaining = total - sum((line.total for line in lines), Decimal(0))
    kept_items = {i: a for i, a in items.items() if i not in chosen and a} | held_shares
    lines.append(
        Charge(None, None, kept_cost_center, Decimal(0), kept_items, remaining, Decimal(0))
    )
    footed = total.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    charges = foot([line.total for line in lines], footed, minor_unit(currency))
    lines = [replace(line, charge=charge) for line, charge in zip(lines, charges, strict=True)]
    return Chargeback(
        lines=lines,
        items=items,
        spread=tuple(chosen),
        kept=kept,
        total=total,
        footed=footed,
        against_bill=billed is not None,
        currency=currency,
        bill={
            k: list((record or {}).get("bill_references", {}).get(k, []))
            if billed is not None
            else []
            for k in ("invoice_issuer", "billing_account_id", "invoice_id")
        },
    )


def foot(amounts: Sequence[Decimal], footed: Decimal, unit: Decimal) -> list[Decimal]:
    """`amounts` in multiples of `unit` that add up to `footed` (their total, rounded): each is
    floored to the unit, and the units left over go one each to the largest remainders (ties to
    the first). Each differs from its exact amount by less than one unit."""
    floors = [(a / unit).to_integral_value(rounding=ROUND_FLOOR) for a in amounts]
    leftover = int(footed / unit - sum(floors, Decimal(0)))
    if not 0 <= leftover <= len(amounts):
        raise ValueError(f"{footed} is not the rounded total of the amounts")
    order = sorted(range(len(amounts)), key=lambda i: (-(amounts[i] / unit - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += 1
    return [f * unit for f in floors]


def charge_rows(period: str, schedule: Chargeback) -> list[dict[str, str]]:
    """The rows of chargeback.csv: exact amounts, and the charge in the minor unit."""

    def text(value: Decimal) -> str:
        return format(value.quantize(COST_QUANTUM), "f")

    rows = []
    for line in schedule.lines:
        rows.append(
            {
                "period": period,
                "line": "team" if line.team else "kept_by_reviewer",
                "business_unit": line.business_unit or "",
                "cost_center": line.cost_center or "",
                "team": line.team or "",
                "own_cost": text(line.own_cost),
                **{f"{i}_share": text(line.shares.get(i, Decimal(0))) for i in SPREADABLE},
                "total_cost": text(line.total),
                "charge": format(line.charge.quantize(minor_unit(schedule.currency)), "f"),
                "currency": schedule.currency,
                **{k: "; ".join(v) for k, v in schedule.bill.items()},
            }
        )
    return rows
