"""Recorded spend: the gateway's own cost of each call (LiteLLM's `spend`) as a second opinion on
the kit's price, compared per model over the period's priced lines.

The kit's cost comes from the reviewed pricing snapshot; the recorded cost is whatever the gateway
computed with its own price table when it logged the call (a float in LiteLLM, read from its
text). A difference beyond the tolerance means one of the two price tables is out of date, or
the gateway prices tokens the snapshot does not (or the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import duckdb

from .history import cell_text
from .price import COST_TYPE

RECORDED_SPEND_COLUMNS = (
    "model",
    "requests",
    "recorded_requests",
    "kit_cost",
    "recorded_cost",
    "difference",
    "difference_pct",
    "finding",
)

__all__ = [
    "RECORDED_SPEND_COLUMNS",
    "RecordedSpendLine",
    "recorded_spend_by_model",
    "recorded_spend_rows",
]


@dataclass(frozen=True)
class RecordedSpendLine:
    """One model: the kit's cost against the cost the gateway recorded for the same attempts."""

    model: str
    requests: int  # attempts in the period
    recorded_requests: int  # attempts that carry a recorded cost
    kit_cost: Decimal | None  # None: billable attempts without a price in the snapshot
    recorded_cost: Decimal
    difference: Decimal | None  # kit − recorded
    difference_pct: Decimal | None  # of the recorded cost
    finding: str  # agrees | differs | unpriced | partly recorded

    @property
    def agrees(self) -> bool:
        return self.finding == "agrees"


def _finding(
    kit: Decimal | None, recorded: Decimal, partial: bool, tolerance_pct: Decimal
) -> tuple[Decimal | None, Decimal | None, str]:
    if kit is None:
        return None, None, "unpriced"
    difference = kit - recorded
    pct = difference / recorded * 100 if recorded else None
    if partial:
        return difference, pct, "partly recorded"
    within = difference == 0 or (pct is not None and abs(pct) <= tolerance_pct)
    return difference, pct, "agrees" if within else "differs"


def recorded_spend_by_model(
    con: duckdb.DuckDBPyConnection, tolerance_pct: Decimal
) -> list[RecordedSpendLine]:
    """Per model with a recorded cost in the period (table `lines`), the kit's cost against the
    recorded one; within `tolerance_pct` percent of the recorded cost they agree."""
    rows = con.execute(
        f"""SELECT model, sum(requests)::BIGINT, sum(recorded_requests)::BIGINT,
            CAST(sum(cost) AS {COST_TYPE}),
            CAST(COALESCE(sum(recorded_cost), 0) AS {COST_TYPE}),
            bool_or(billable AND NOT priced)
        FROM lines GROUP BY model HAVING sum(recorded_requests) > 0 ORDER BY model"""
    ).fetchall()
    result = []
    for model, requests, recorded_requests, kit, recorded, unpriced in rows:
        kit = None if unpriced else kit
        difference, pct, finding = _finding(
            kit, recorded, recorded_requests < requests, tolerance_pct
        )
        result.append(
            RecordedSpendLine(
                model, requests, recorded_requests, kit, recorded, difference, pct, finding
            )
        )
    return result


def recorded_spend_rows(lines: list[RecordedSpendLine]) -> list[dict[str, str]]:
    """recorded_spend.csv rows: exact decimals (the % to 4 places), empty for unknowns."""

    def text(line: RecordedSpendLine, column: str) -> str:
        value = getattr(line, column)
        if column == "difference_pct" and value is not None:
            value = value.quantize(Decimal("0.0001"))
        return cell_text(value)

    return [{c: text(line, c) for c in RECORDED_SPEND_COLUMNS} for line in lines]
