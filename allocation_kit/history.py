"""Earlier periods' evidence in the same output folder: the baseline for trends and anomalies.

Each review writes its evidence to OUT/<period>/evidence; the next review of the same kind of
period (month after month, week after week) reads it back from there. Only evidence files the kit
wrote are read, and a missing period is simply absent from the baseline, never invented.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from .periods import Period, prior_periods

__all__ = ["BASELINE_PERIODS", "cell_text", "prior_evidence"]

BASELINE_PERIODS = 6  # how many earlier periods a baseline looks back at


def prior_evidence(
    out: Path, period: Period, filename: str, count: int = BASELINE_PERIODS
) -> list[tuple[Period, list[dict[str, str]]]]:
    """The rows of evidence/<filename> of the `count` periods before `period` that have one,
    oldest first."""
    found = []
    for earlier in prior_periods(period, count):
        path = out / earlier.label / "evidence" / filename
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                found.append((earlier, list(csv.DictReader(handle))))
    return found[::-1]


def cell_text(value: object) -> str:
    """An evidence CSV cell: exact decimals without exponent, empty for unknown, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
