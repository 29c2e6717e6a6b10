"""Review periods: a calendar month, an ISO week, or an explicit date range, all in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .errors import ConfigError

__all__ = ["Period", "parse_period", "prior_periods"]

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
_WEEK = re.compile(r"^([0-9]{4})-W([0-9]{2})$")
_RANGE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})\.\.([0-9]{4}-[0-9]{2}-[0-9]{2})$")


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval [start, end) with the label the user gave it."""

    label: str
    kind: str  # month | week | range
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last calendar day inside the period (end is exclusive)."""
        return (self.end - timedelta(days=1)).date()

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        return self.label


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


YEARS = range(1970, 9999)  # a period, the one after it and its baseline are all dates


def parse_period(text: str) -> Period:
    """The Period named by `2026-10`, `2026-W42` or `2026-10-01..2026-10-15` (days inclusive)."""
    text = str(text).strip()
    if re.fullmatch(r"[0-9]{4}-w[0-9]{2}", text):
        text = text.upper()  # 2026-w42 is the week 2026-W42 (and its folder)
    expected = "a period like 2026-10 (month), 2026-W42 (ISO week) or 2026-10-01..2026-10-15"
    years = [int(y) for y in re.findall(r"(?<![0-9-])([0-9]{4})(?=-)", text)]
    if any(y not in YEARS for y in years):
        raise ConfigError(
            None,
            f"period {text!r}",
            f"the year must be from {YEARS.start} to {YEARS.stop - 1}; expected {expected}",
        )
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ConfigError(None, f"period {text!r}", f"month must be 01-12; expected {expected}")
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        return Period(text, "month", _midnight(start), _midnight(end))
    if m := _WEEK.match(text):
        try:
            start = date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError:
            raise ConfigError(
                None, f"period {text!r}", f"no such ISO week; expected {expected}"
            ) from None
        return Period(text, "week", _midnight(start), _midnight(start + timedelta(days=7)))
    if m := _RANGE.match(text):
        try:
            first, last = date.fromisoformat(m[1]), date.fromisoformat(m[2])
        except ValueError:
            raise ConfigError(
                None, f"period {text!r}", f"not a valid date; expected {expected}"
            ) from None
        if last < first:
            raise ConfigError(None, f"period {text!r}", "the range ends before it starts")
        return Period(text, "range", _midnight(first), _midnight(last + timedelta(days=1)))
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            date.fromisoformat(text)
            expected += f"; one day is the range {text}..{text}"
        except ValueError:
            expected += f"; {text} is not a valid date"
    raise ConfigError(None, f"period {text!r}", f"expected {expected}")


def prior_periods(period: Period, count: int) -> list[Period]:
    """The `count` periods of the same kind just before `period`, the nearest first.

    Months step back a calendar month, weeks an ISO week, and a range steps back by its own
    length (labelled as a range), or by a week when it is shorter than one, so that its days
    stay the same weekdays (a Monday is compared with Mondays, not with the weekend before): a
    baseline compares like with like.
    """
    found: list[Period] = []
    current = period
    for _ in range(count):
        if current.kind == "month":
            first = current.start.date()
            previous = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
            label = f"{previous:%Y-%m}"
        elif current.kind == "week":
            iso = (current.start - timedelta(days=7)).date().isocalendar()
            label = f"{iso.year}-W{iso.week:02d}"
        else:
            length = current.end - current.start
            step = max(length, timedelta(days=7))
            first = (current.start - step).date()
            last = (current.end - step - timedelta(days=1)).date()
            label = f"{first.isoformat()}..{last.isoformat()}"
        try:
            current = parse_period(label)
        except ConfigError:  # before the first year a period can name: nothing earlier
            break
        found.append(current)
    return found
