"""Periods: month, ISO week and explicit range, as half-open UTC intervals."""

from datetime import UTC, datetime

import pytest

from allocation_kit.errors import ConfigError
from allocation_kit.periods import parse_period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_month_is_the_calendar_month_in_utc():
    period = parse_period("2026-10")
    assert (period.kind, period.start, period.end) == ("month", utc(2026, 10, 1), utc(2026, 11, 1))
    assert period.days == 31


def test_december_rolls_into_the_next_year():
    assert parse_period("2026-12").end == utc(2027, 1, 1)


def test_iso_week_starts_on_monday():
    period = parse_period("2026-W42")
    assert (period.kind, period.start, period.end) == ("week", utc(2026, 10, 12), utc(2026, 10, 19))


def test_a_lower_case_week_is_the_same_week_and_folder():
    period = parse_period("2026-w42")
    assert (period.label, period.start) == ("2026-W42", utc(2026, 10, 12))


def test_one_day_is_written_as_a_range_and_the_error_says_so():
    with pytest.raises(ConfigError) as caught:
        parse_period("2026-10-01")
    assert caught.value.line() == (
        "period '2026-10-01': expected a period like 2026-10 (month), 2026-W42 (ISO week) or "
        "2026-10-01..2026-10-15; one day is the range 2026-10-01..2026-10-01"
    )
    with pytest.raises(ConfigError) as caught:
        parse_period("2026-02-30")
    assert caught.value.line().endswith("2026-10-01..2026-10-15; 2026-02-30 is not a valid date")


def test_range_includes_both_days():
    period = parse_period("2026-10-01..2026-10-15")
    assert (period.start, period.end, period.days) == (utc(2026, 10, 1), utc(2026, 10, 16), 15)
    assert period.last_day.isoformat() == "2026-10-15"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "period '2026-13': month must be 01-12"),
        ("2026-W54", "period '2026-W54': no such ISO week"),
        (
            "2026-10-15..2026-10-01",
            "period '2026-10-15..2026-10-01': the range ends before it starts",
        ),
        ("October", "period 'October': expected a period like 2026-10"),
        # full-width digits: once a second folder beside 2026-10, the same month twice
        ("２０２６-10", "period '２０２６-10': expected a period like 2026-10"),
        # dates Python cannot hold (the period after 9999-12, year 0) were a traceback
        *(
            (text, f"period {text!r}: the year must be from 1970 to 9998; expected a period")
            for text in ("0000-01", "9999-12", "9999-W52", "9999-12-31..9999-12-31")
        ),
    ],
)
def test_bad_periods_name_what_was_expected(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_period(text)
    assert caught.value.line().startswith(message)


def test_earlier_periods_of_a_baseline_are_of_the_same_kind_and_weekdays():
    from allocation_kit.periods import prior_periods

    def labels(text: str, count: int = 2) -> list[str]:
        return [p.label for p in prior_periods(parse_period(text), count)]

    assert labels("2026-01") == ["2025-12", "2025-11"]
    assert labels("2026-W01") == ["2025-W52", "2025-W51"]
    # a range of a week or more steps back by its own length
    assert labels("2026-10-01..2026-10-15") == ["2026-09-16..2026-09-30", "2026-09-01..2026-09-15"]
    # a shorter one steps back a week: Monday 5 October is compared with Mondays
    assert labels("2026-10-05..2026-10-05") == ["2026-09-28..2026-09-28", "2026-09-21..2026-09-21"]
    assert labels("2026-10-05..2026-10-06", 1) == ["2026-09-28..2026-09-29"]
    # the earliest periods have fewer earlier ones, not an error about a period nobody asked for
    assert labels("1970-02", 6) == ["1970-01"]
    assert labels("1970-01") == []
