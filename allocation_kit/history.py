"""Earlier periods' evidence in the same output folder: the baseline for trends and anomalies.

Each review writes its evidence to OUT/<period>/evidence; the next review of the same kind of
period (month after month, week after week) reads it back from there. Only evidence files the kit
wrote are read, and a missing period is simply absent from the baseline, never invented.
"""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .errors import InputError
from .periods import Period, prior_periods

__all__ = ["BASELINE_PERIODS", "baseline_files", "cell_text", "prior_evidence"]

BASELINE_PERIODS = 6  # how many earlier periods a baseline looks back at


# The columns of earlier evidence a baseline reads, and which of them are numbers.
READ_COLUMNS = {
    "spend_profile.csv": (
        ("scope", "key", "requests", "cost", "input_tokens", "output_tokens"),
        ("requests", "cost", "input_tokens", "output_tokens"),
    ),
    "unit_economics.csv": (("name", "unit_cost", "definition_sha256"), ("unit_cost",)),
    "teams.csv": (("team", "unpriced_requests"), ("unpriced_requests",)),
}


def baseline_files(out: Path, period: Period) -> list[Path]:
    """Every earlier evidence file a review of `period` reads as its baseline (what
    `prior_evidence` finds), for the manifest to hash: the anomalies and unit cost trends of
    a review depend on them as much as on its own inputs."""
    return [
        path
        for earlier in prior_periods(period, BASELINE_PERIODS)[::-1]
        for filename in READ_COLUMNS
        if (path := out / earlier.label / "evidence" / filename).is_file()
    ]


def prior_evidence(
    out: Path, period: Period, filename: str, count: int = BASELINE_PERIODS
) -> list[tuple[Period, list[dict[str, str]]]]:
    """The rows of evidence/<filename> of the `count` periods before `period` that have one,
    oldest first. Evidence that is not what the kit wrote (edited, truncated) is an InputError
    naming the file, the row and the column, never a traceback deep in a baseline."""
    found = []
    for earlier in prior_periods(period, count):
        path = out / earlier.label / "evidence" / filename
        if path.is_file():
            found.append((earlier, _evidence_rows(path, *READ_COLUMNS.get(filename, ((), ())))))
    return found[::-1]


def _evidence_rows(path: Path, columns: tuple[str, ...], numbers: tuple[str, ...]) -> list[dict]:
    expected = "the evidence an earlier run wrote (remove or re-run that period)"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, None, f"unreadable ({exc}); expected {expected}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(path, None, f"missing column {missing[0]!r}; expected {expected}")
    for i, row in enumerate(rows, start=1):
        for column in numbers:
            value = row[column]
            try:
                if value not in ("", None) and not Decimal(value).is_finite():
                    raise InvalidOperation  # NaN, Infinity: no amount
            except InvalidOperation:
                raise InputError(
                    path,
                    f"row {i} (line {i + 1}), column {column!r}",
                    f"got {value!r}, expected a number: {expected}",
                ) from None
    return rows


def cell_text(value: object) -> str:
    """An evidence CSV cell: exact decimals without exponent, empty for unknown, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
