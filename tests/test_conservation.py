"""Conservation of cost on random ledgers: allocated + shared + unallocated = ledger total, and
the total equals an independent Decimal computation over the unique, billable, priced rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation_kit.config import load_workspace
from allocation_kit.errors import InputError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger

from .conftest import request

PER_1M = {  # the fixture snapshot, in effect on the day the rows fall
    "chat-small": {"input": "1.00", "cached_input": "0.50", "output": "4.00"},
    "reasoner": {"input": "2.00", "output": "8.00", "reasoning": "10.00"},
}
START = datetime(2026, 10, 1, tzinfo=UTC)

rows = st.lists(
    st.fixed_dictionaries({
        "team": st.sampled_from([None, "search", "support", "platform", "marketing"]),
        "application": st.sampled_from(
            [None, "search-api", "ticket-bot", "gateway-fixed", "gateway-prop", "gateway-even",
             "ghost"]
        ),
        "model": st.sampled_from(["chat-small", "reasoner", "mystery"]),
        "input_tokens": st.integers(0, 50_000),
        "output_tokens": st.integers(0, 5_000),
        "cached_share": st.integers(0, 100),
        "reasoning_share": st.integers(0, 100),
        "status_code": st.sampled_from([200, 200, 200, 429, 500]),
        "minutes": st.integers(-120, 13 * 24 * 60),  # some rows fall before the period
        "copies": st.sampled_from([1, 1, 1, 2]),
    }),
    min_size=1,
    max_size=40,
)  # fmt: skip


def expected_total(generated):
    total = Decimal(0)
    for row in generated:
        price = PER_1M.get(row["model"])
        if row["minutes"] < 0 or row["status_code"] != 200 or price is None:
            continue
        cached = row["input_tokens"] * row["cached_share"] // 100
        reasoning = row["output_tokens"] * row["reasoning_share"] // 100
        p = {k: Decimal(v) for k, v in price.items()}
        total += (
            (row["input_tokens"] - cached) * p["input"]
            + cached * p.get("cached_input", p["input"])
            + (row["output_tokens"] - reasoning) * p["output"]
            + reasoning * p.get("reasoning", p["output"])
        ) / 1_000_000
    return total


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows)
def test_cost_is_conserved_on_random_ledgers(workspace, generated):
    ledger_rows = []
    for i, row in enumerate(generated):
        timestamp = START + timedelta(minutes=row["minutes"])
        values = request(
            f"r{i}",
            team=row["team"],
            application=row["application"],
            model=row["model"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_input_tokens=row["input_tokens"] * row["cached_share"] // 100,
            reasoning_tokens=row["output_tokens"] * row["reasoning_share"] // 100,
            status_code=row["status_code"],
            timestamp=timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        ledger_rows += [values] * row["copies"]
    config = workspace(ledger_rows)
    in_period = [r for r in generated if r["minutes"] >= 0]
    if not in_period:  # nothing to review: one line naming the span the rows cover
        with pytest.raises(InputError, match=r"none of its \d+ rows? falls in 2026-10 "):
            period_ledger(load_workspace(config), parse_period("2026-10"))
        return
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"))

    by_status = ledger.cost_by_status()
    assert sum(by_status.values()) == ledger.ledger_cost == expected_total(generated)
    assert sum(line.cost for line in ledger.allocation) == ledger.ledger_cost
    by_direction = ledger.con.execute(
        "SELECT sum(cost_uncached_input + cost_cached_input + cost_cache_write + cost_output"
        " + cost_per_call) FROM lines"
    ).fetchone()[0]
    assert (by_direction or 0) == ledger.ledger_cost
    assert sum(line.requests for line in ledger.allocation) == len(in_period)
    assert ledger.counts.duplicate_copies == sum(r["copies"] - 1 for r in in_period)
