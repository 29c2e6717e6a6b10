"""Splits are exact: shares sum to what they split, at the ledger's precision."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocation_kit.allocate import COST_QUANTUM, split_exact


def test_largest_remainder_gives_leftover_units_to_the_largest_remainders():
    assert split_exact(Decimal("0.10"), {"a": 1, "b": 1, "c": 1}, Decimal("0.01")) == {
        "a": Decimal("0.04"), "b": Decimal("0.03"), "c": Decimal("0.03")
    }  # fmt: skip
    assert split_exact(Decimal("1.00"), {"a": 1, "b": 2}, Decimal("0.01")) == {
        "a": Decimal("0.33"), "b": Decimal("0.67")
    }  # fmt: skip


def test_zero_weight_gets_nothing():
    assert split_exact(5, {"a": 0, "b": 3}, Decimal(1)) == {"a": Decimal(0), "b": Decimal(5)}


def test_all_zero_weights_are_refused():
    with pytest.raises(ValueError, match="weights must have a positive sum"):
        split_exact(5, {"a": 0}, Decimal(1))


costs = st.integers(min_value=0, max_value=10**20).map(lambda units: units * COST_QUANTUM)
weights = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.integers(min_value=0, max_value=10**6).map(Decimal),
    min_size=1,
    max_size=8,
).filter(lambda w: sum(w.values()) > 0)


@given(costs, weights)
def test_a_split_sums_exactly_and_each_share_is_within_one_unit(total, shares_by):
    shares = split_exact(total, shares_by)
    assert sum(shares.values()) == total
    weight_sum = sum(shares_by.values())
    for key, share in shares.items():
        exact = total * shares_by[key] / weight_sum
        assert abs(share - exact) < COST_QUANTUM
        assert share == share.quantize(COST_QUANTUM)
