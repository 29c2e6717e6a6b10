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
    "JOURNAL_COLUMNS",
    "NO_WEIGHTS",
    "SPREADABLE",
    "USAGE_ITEMS",
    "Charge",
    "Chargeback",
    "bill_charges",
    "bill_items",
    "booked_parts",
    "charge_rows",
    "chargeback",
    "foot",
    "foot_both_ways",
    "journal_rows",
    "ledger_cents",
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
    # each charge is its total rounded down or up, by largest remainder unless the schedule's
    # parts could then not add up down the columns as well (`foot_both_ways`)
    _, charges, _ = foot_both_ways(_parts(lines), footed, minor_unit(currency))
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


def _max_flow(capacity: dict[tuple[int, int], int], order: list[int], s: int, t: int) -> int:
    """Edmonds-Karp on `capacity` ({(u, v): units}, changed in place into the residual
    capacities), visiting nodes in `order`: the largest flow from s to t."""
    flow = 0
    while True:
        came_from = {s: s}
        queue = [s]
        while queue and t not in came_from:
            u = queue.pop(0)
            for v in order:
                if v not in came_from and capacity.get((u, v), 0) > 0:
                    came_from[v] = u
                    queue.append(v)
        if t not in came_from:
            return flow
        path, v = [], t
        while v != s:
            path.append((came_from[v], v))
            v = came_from[v]
        pushed = min(capacity[e] for e in path)
        for u, v in path:
            capacity[(u, v)] -= pushed
            capacity[(v, u)] = capacity.get((v, u), 0) + pushed
        flow += pushed


def _raised(
    remainder: dict[tuple[int, int], Decimal],
    rows: list[tuple[int, int]],
    columns: list[tuple[int, int]],
    total: int,
) -> set[tuple[int, int]] | None:
    """The cells to raise by one unit so that row i gets between rows[i] units (low, high),
    column j between columns[j], and all of them `total`; None when no such choice exists. A
    flow with lower bounds: source -> row -> cell -> column -> sink, sink -> source `total`."""
    n, m = len(rows), len(columns)
    s, t, super_s, super_t = n + m, n + m + 1, n + m + 2, n + m + 3
    capacity: dict[tuple[int, int], int] = {}
    excess = [0] * (n + m + 2)
    bounded = [(s, i, *rows[i]) for i in range(n)]
    bounded += [(n + j, t, *columns[j]) for j in range(m)]
    bounded.append((t, s, total, total))
    for u, v, low, high in bounded:
        if low > high:
            return None
        capacity[(u, v)] = high - low
        excess[v] += low
        excess[u] -= low
    for i, j in remainder:
        capacity[(i, n + j)] = 1
    need = 0
    for node, amount in enumerate(excess):
        if amount > 0:
            capacity[(super_s, node)] = amount
            need += amount
        elif amount < 0:
            capacity[(node, super_t)] = -amount
    # rows first, and each row's cells largest remainder first: the flow prefers them
    by_size = sorted(remainder, key=lambda ij: (-remainder[ij], ij))
    order = [*range(n), *dict.fromkeys(n + j for _, j in by_size), *range(n, n + m)]
    order = [*dict.fromkeys(order), s, t, super_t]
    if _max_flow(capacity, order, super_s, super_t) != need:
        return None
    return {(i, j) for i, j in remainder if capacity[(i, n + j)] == 0}


def foot_both_ways(
    cells: Sequence[Sequence[Decimal]], footed: Decimal, unit: Decimal
) -> tuple[list[list[Decimal]], list[Decimal], list[Decimal]]:
    """(`cells` in multiples of `unit`, the row totals, the column totals) adding up to `footed`
    (their exact total rounded to the unit) across and down: a schedule whose rounded parts add
    up both ways. Every cell, row total and column total is its exact amount rounded down or
    up, so it differs from it by less than one unit.

    The row totals, and then the column totals, are `foot`'s (largest remainder) whenever the
    cells can be rounded to fit them; when they cannot, a column total and then a row total
    takes its other neighbour. Such a rounding always exists (Cox's controlled rounding: the
    remainders are a fractional flow through rows and columns, and an integral one of the
    rounded total exists beside it)."""
    rows, columns = len(cells), len(cells[0]) if cells else 0
    floors = [[(c / unit).to_integral_value(rounding=ROUND_FLOOR) for c in row] for row in cells]
    remainder = {
        (i, j): cells[i][j] / unit - floors[i][j]
        for i in range(rows)
        for j in range(columns)
        if cells[i][j] / unit != floors[i][j]
    }

    def bounds(fraction: Decimal) -> tuple[int, int]:  # its units beyond the floors: down, up
        low = int(fraction.to_integral_value(rounding=ROUND_FLOOR))
        return low, low + (fraction != low)

    row_fractions = [sum((remainder.get((i, j), 0) for j in range(columns)), Decimal(0))
                     for i in range(rows)]  # fmt: skip
    col_fractions = [sum((remainder.get((i, j), 0) for i in range(rows)), Decimal(0))
                     for j in range(columns)]  # fmt: skip
    floor_total = sum((f for row in floors for f in row), Decimal(0))
    total = int(footed / unit - floor_total)
    exact_rows = [sum(row, Decimal(0)) for row in cells]
    preferred = [
        int(r / unit - sum(row, Decimal(0)))
        for r, row in zip(foot(exact_rows, footed, unit), floors, strict=True)
    ]
    exact_columns = [sum((row[j] for row in cells), Decimal(0)) for j in range(columns)]
    col_floors = [sum((row[j] for row in floors), Decimal(0)) for j in range(columns)]
    col_preferred = [
        int(c / unit - f)
        for c, f in zip(foot(exact_columns, footed, unit), col_floors, strict=True)
    ]
    col_bounds = [bounds(f) for f in col_fractions]
    fixed_rows = [(r, r) for r in preferred]
    raised = None
    for row_range, col_range in (  # rows and columns by largest remainder, as far as they fit
        (fixed_rows, [(c, c) for c in col_preferred]),
        (fixed_rows, col_bounds),
        ([bounds(f) for f in row_fractions], col_bounds),
    ):
        raised = _raised(remainder, row_range, col_range, total)
        if raised is not None:
            break
    if raised is None:
        raise ValueError(f"{footed} is not the rounded total of the cells")
    rounded = [
        [(floors[i][j] + ((i, j) in raised)) * unit for j in range(columns)] for i in range(rows)
    ]
    row_totals = [sum(row, Decimal(0)) for row in rounded]
    col_totals = [sum((row[j] for row in rounded), Decimal(0)) for j in range(columns)]
    return rounded, row_totals, col_totals


def booked_parts(schedule: Chargeback) -> tuple[list[list[Decimal]], list[Decimal]]:
    """Each line's own cost and share of every spreadable item in the minor unit (columns: own
    cost, then SPREADABLE), adding up across to its charge and down to each column's total
    (`foot_both_ways`, which also chose the charges), and those totals."""
    cells, _, totals = foot_both_ways(
        _parts(schedule.lines), schedule.footed, minor_unit(schedule.currency)
    )
    return cells, totals


def ledger_cents(
    schedule: Chargeback | None, own: Mapping[str, Decimal], unallocated: Decimal, currency: str
) -> tuple[dict[str, Decimal], Decimal]:
    """({team: own cost}, unallocated spend) in the minor unit, adding up to the ledger total
    rounded half up: one rounding of these amounts for every page of the period, so that teams
    plus unallocated spend add up to the ledger total wherever they are shown. A team's own cost
    is the schedule's (`booked_parts`: what is booked, and what its statement shows) when the
    unallocated spend left beside them is within one unit of its exact amount; else each is
    rounded by largest remainder (`foot`). Each differs from its exact amount by less than one
    unit. `own`: each team's own cost (allocated and shared), exact."""
    unit = minor_unit(currency)
    total = (sum(own.values(), Decimal(0)) + unallocated).quantize(unit, rounding=ROUND_HALF_UP)
    if schedule is not None:
        cells, _ = booked_parts(schedule)
        booked = {
            line.team: row[0]
            for line, row in zip(schedule.lines, cells, strict=True)
            if line.team is not None
        }
        rest = total - sum(booked.values(), Decimal(0))
        same = all(booked.get(t, Decimal(0)) - c < unit and c - booked.get(t, Decimal(0)) < unit
                   for t, c in own.items())  # fmt: skip
        if same and set(booked) <= set(own) and abs(rest - unallocated) < unit:
            return {t: booked.get(t, Decimal(0)) for t in own}, rest
    *teams, kept = foot([*own.values(), unallocated], total, unit)
    return dict(zip(own, teams, strict=True)), kept


def _parts(lines: Sequence[Charge]) -> list[list[Decimal]]:
    """Each line's own cost and share of every spreadable item, exact."""
    return [
        [line.own_cost, *(line.shares.get(i, Decimal(0)) for i in SPREADABLE)] for line in lines
    ]


JOURNAL_COLUMNS = (
    "period",
    "line",
    "business_unit",
    "cost_center",
    "team",
    "component",
    "amount",
    "currency",
    "invoice_issuer",
    "billing_account_id",
    "invoice_id",
)


def journal_rows(period: str, schedule: Chargeback) -> list[dict[str, str]]:
    """The rows of chargeback_journal.csv: per line of the schedule and component (own cost,
    then each item it carries), the amount in the minor unit; a line's amounts add up to its
    charge and a component's to its total on the bill (`booked_parts`). Components of 0 are
    left out."""
    parts, _ = booked_parts(schedule)
    places = minor_unit(schedule.currency)
    rows = []
    for line, amounts in zip(schedule.lines, parts, strict=True):
        for component, amount in zip(("own_cost", *SPREADABLE), amounts, strict=True):
            if not amount:
                continue
            rows.append(
                _line_fields(period, line)
                | {"component": component, "amount": format(amount.quantize(places), "f")}
                | _booked_against(schedule)
            )
    return rows


def _line_fields(period: str, line: Charge) -> dict[str, str]:
    """Whose a row of chargeback.csv or chargeback_journal.csv is."""
    return {
        "period": period,
        "line": "team" if line.team else "kept_by_reviewer",
        "business_unit": line.business_unit or "",
        "cost_center": line.cost_center or "",
        "team": line.team or "",
    }


def _booked_against(schedule: Chargeback) -> dict[str, str]:
    """The currency and the bill a row is booked against ("; " between several)."""
    return {"currency": schedule.currency} | {k: "; ".join(v) for k, v in schedule.bill.items()}


def charge_rows(period: str, schedule: Chargeback) -> list[dict[str, str]]:
    """The rows of chargeback.csv: exact amounts, and the charge in the minor unit."""

    def text(value: Decimal) -> str:
        return format(value.quantize(COST_QUANTUM), "f")

    rows = []
    for line in schedule.lines:
        rows.append(
            _line_fields(period, line)
            | {
                "own_cost": text(line.own_cost),
                **{f"{i}_share": text(line.shares.get(i, Decimal(0))) for i in SPREADABLE},
                "total_cost": text(line.total),
                "charge": format(line.charge.quantize(minor_unit(schedule.currency)), "f"),
            }
            | _booked_against(schedule)
        )
    return rows
