"""Anomalies against earlier periods' evidence: robust scores, spikes, new keys, no noise."""

import csv
from decimal import Decimal

from allocation_kit.anomalies import robust_score
from allocation_kit.config import load_workspace
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import write_analysis

from .conftest import request

MONTHS = ("2026-07", "2026-08", "2026-09", "2026-10")


def calls(month: str, n: int, **values) -> list[dict]:
    return [
        request(f"{month}-{values.get('model', 'm')}-{i}", timestamp=f"{month}-10T12:00:00Z",
                caller_id="svc-search", **values)
        for i in range(n)
    ]  # fmt: skip


def review(workspace, tmp_path, rows, months=MONTHS):
    """Run each month in order into tmp_path/reports; the last month's Analysis."""
    ws = load_workspace(workspace(rows))
    for month in months:
        ledger = period_ledger(ws, parse_period(month), validate=False)
        evidence = tmp_path / "reports" / month / "evidence"
        evidence.mkdir(parents=True)
        analysis = write_analysis(evidence, ledger, {}, "finops-analyst")
    return analysis


def flagged(analysis):
    return [(a.scope, a.key, a.metric, a.baseline, a.actual, a.score) for a in analysis.anomalies]


def test_robust_score_uses_median_and_mad_with_a_relative_floor():
    assert robust_score([Decimal(10), Decimal(12), Decimal(11)], Decimal(20)) == (
        Decimal(11), Decimal("6.07")
    )  # MAD 1 → scale 1.4826  # fmt: skip
    # one bad month in the history does not hide the next spike
    assert robust_score([Decimal(10), Decimal(10), Decimal(90)], Decimal(50)) == (
        Decimal(10), Decimal("40.00")
    )  # MAD 0 → scale is 10% of the median  # fmt: skip
    assert robust_score([Decimal(0), Decimal(0)], Decimal(5)) == (Decimal(0), Decimal(0))
    # the median of an even history is kept at the ledger's 12 places, as evidence shows it
    base, _ = robust_score([Decimal("1.000000000001"), Decimal("1.000000000002")], Decimal(1))
    assert str(base) == "1.000000000002"  # 1.0000000000015, half to even


def test_a_spike_after_three_normal_periods_is_flagged_and_explained(workspace, tmp_path):
    rows = [r for m in MONTHS[:3] for r in calls(m, 10)] + calls("2026-10", 50)
    analysis = review(workspace, tmp_path, rows)
    spend = (Decimal("0.014000000000"), Decimal("0.070000000000"), Decimal("40.00"))
    volume = (Decimal(10), Decimal(50), Decimal("40.00"))
    assert flagged(analysis) == [
        ("application", "search-api", "spend", *spend),
        ("application", "search-api", "requests", *volume),
        ("model", "chat-small", "spend", *spend),
        ("model", "chat-small", "requests", *volume),
        ("team", "search", "spend", *spend),
        ("team", "search", "requests", *volume),
    ]
    by_key = {(a.scope, a.metric): a for a in analysis.anomalies}
    assert by_key["application", "spend"].explanation == (
        "application search-api: spend $0.07 in 2026-10 against a median of $0.01 over the 3 "
        "earlier periods (5.0× the baseline), score 40.00. Largest caller: svc-search, 50 "
        "requests on 2026-10-10 (100% of the application's requests)"
    )
    assert by_key["team", "spend"].explanation == (
        "team search: spend $0.07 in 2026-10 against a median of $0.01 over the 3 earlier "
        "periods (5.0× the baseline), score 40.00; includes the spike of application "
        "search-api (+$0.06)"
    )
    assert by_key["team", "spend"].change_pct == Decimal("400.00")
    assert by_key["team", "spend"].baseline_periods == "2026-07, 2026-08, 2026-09"
    assert analysis.spend_review["anomalies"]["count"] == 6
    with (tmp_path / "reports" / "2026-10" / "evidence" / "anomalies.csv").open() as handle:
        first = next(csv.DictReader(handle))
    assert (first["scope"], first["key"], first["metric"], first["baseline"], first["actual"],
            first["score"]) == (
        "application", "search-api", "spend", "0.014000000000", "0.070000000000", "40.00"
    )  # fmt: skip


def test_a_period_whose_cost_left_out_unpriced_calls_is_no_spend_baseline(workspace, tmp_path):
    """July's calls had no price: its $0 once counted as a month of $0 spend in the median."""
    rows = calls("2026-07", 10, model="mystery") + [r for m in MONTHS[1:3] for r in calls(m, 10)]
    rows += calls("2026-10", 50)
    analysis = review(workspace, tmp_path, rows)
    by_key = {(a.scope, a.key, a.metric): a for a in analysis.anomalies}
    assert by_key["application", "search-api", "spend"].explanation == (
        "application search-api: spend $0.07 in 2026-10 against a median of $0.01 over the 2 "
        "earlier periods (5.0× the baseline), score 40.00; 2026-07 left out: its cost leaves out "
        "unpriced calls. Largest caller: svc-search, 50 requests on 2026-10-10 (100% of the "
        "application's requests)"
    )
    # requests count whatever their price: July is in that median
    assert by_key["application", "search-api", "requests"].explanation.startswith(
        "application search-api: requests 50 in 2026-10 against a median of 10 over the 3 "
        "earlier periods"
    )
    with (tmp_path / "reports" / "2026-07" / "evidence" / "spend_profile.csv").open() as handle:
        july = {(r["scope"], r["key"]): r for r in csv.DictReader(handle)}
    assert (july["team", "search"]["cost"], july["team", "search"]["unpriced_requests"]) == (
        "0.000000000000", "10"
    )  # fmt: skip


def test_a_steady_series_flags_nothing(workspace, tmp_path):
    rows = [r for m in MONTHS for r in calls(m, 10)]
    analysis = review(workspace, tmp_path, rows)
    assert analysis.anomalies == []
    assert analysis.spend_review["anomalies"] == {"count": 0, "baseline": "ok", "flags": []}


def test_a_new_model_and_caller_are_flagged_without_a_score(workspace, tmp_path):
    rows = [r for m in MONTHS for r in calls(m, 10)]
    rows += [request("new", model="reasoner", timestamp="2026-10-11T00:00:00Z", caller_id="svc-x")]
    analysis = review(workspace, tmp_path, rows)
    assert flagged(analysis) == [
        ("caller", "svc-x", "new", Decimal(0), Decimal(1), None),
        ("model", "reasoner", "new", Decimal(0), Decimal(1), None),
    ]
    assert [a.explanation for a in analysis.anomalies] == [
        "new caller svc-x: 1 request in 2026-10, none in the 3 earlier periods "
        "(2026-07, 2026-08, 2026-09)",
        "new model reasoner: 1 request, $0.0028 in 2026-10, none in the 3 earlier periods "
        "(2026-07, 2026-08, 2026-09)",
    ]


def test_new_unallocated_spend_is_flagged_only_when_material(workspace, tmp_path):
    # 1 untagged request in 201 is below 1% of requests and cost: the exception queue lists it
    rows = [r for m in MONTHS for r in calls(m, 200)]
    untagged = {"team": "", "application": "", "timestamp": "2026-10-12T00:00:00Z"}
    analysis = review(workspace, tmp_path, [*rows, request("u0", **untagged)])
    assert analysis.anomalies == []
    more = [request(f"u{i}", **untagged) for i in range(3)]
    analysis = review(workspace, tmp_path / "again", rows + more)
    assert [a.explanation for a in analysis.anomalies] == [
        "new unallocated spend (untagged): 3 requests, $0.0042 in 2026-10, none in the 3 "
        "earlier periods (2026-07, 2026-08, 2026-09)"
    ]


def test_materiality_holds_in_a_period_without_priced_cost_and_for_unknown_applications(
    workspace, tmp_path
):
    # nothing priced: 1% of $0 is $0, which every row reached; and an unregistered application
    # is the unknown-owner row again, not news of its own
    rows = [r for m in MONTHS for r in calls(m, 200, model="mystery-model")]
    october = {"timestamp": "2026-10-12T00:00:00Z", "model": "mystery-model"}
    rows += [
        request("u1", team="", application="", **october),
        request("u2", team="", application="typo-app", **october),
    ]
    analysis = review(workspace, tmp_path, rows)
    assert analysis.anomalies == []


def test_fewer_than_two_earlier_periods_say_so_instead_of_flagging(workspace, tmp_path):
    rows = calls("2026-09", 10) + calls("2026-10", 50)
    analysis = review(workspace, tmp_path, rows, months=("2026-09", "2026-10"))
    [note] = analysis.anomalies
    assert (note.scope, note.key, note.metric, note.actual, note.score) == (
        "baseline", "2026-10", "history", Decimal(1), None
    )  # fmt: skip
    assert note.explanation == (
        "only 2026-09 has evidence in the output folder: spikes, shifts and new callers need a "
        "baseline of at least 2 earlier periods, so none are flagged (day-level spikes inside the "
        "period are still checked)"
    )
    assert analysis.spend_review["anomalies"] == {
        "count": 0, "baseline": "insufficient history", "flags": []
    }  # fmt: skip


def test_a_day_far_above_the_periods_median_day_is_flagged(workspace, tmp_path):
    rows = [
        request(f"d{day}-{i}", timestamp=f"2026-10-{day:02d}T09:00:00Z")
        for day in range(1, 11)
        for i in range(10 if day != 7 else 40)
    ]
    analysis = review(workspace, tmp_path, rows, months=("2026-10",))
    day = [a for a in analysis.anomalies if a.scope == "day"]
    assert [(a.key, a.baseline, a.actual, a.score) for a in day] == [
        ("2026-10-07", Decimal("0.014000000000"), Decimal("0.056000000000"), Decimal("30.00"))
    ]
    assert day[0].explanation == (
        "2026-10-07: ledger cost $0.06 against a median day of $0.01 in 2026-10; most of the "
        "extra came from application search-api (+$0.04)"
    )


def test_a_weeks_days_are_judged_against_the_earlier_weeks_days_too(workspace, tmp_path):
    """W42's four busy days are half its week: against its own median day they are the norm;
    against the days of W40 and W41 as well, each is a spike."""
    from datetime import date, timedelta

    def day_rows(first: date, counts: list[int]) -> list[dict]:
        return [
            request(f"{first + timedelta(n)}-{i}", timestamp=f"{first + timedelta(n)}T09:00:00Z")
            for n, count in enumerate(counts)
            for i in range(count)
        ]

    rows = day_rows(date(2026, 9, 28), [10] * 14)  # W40 and W41: 10 calls a day
    rows += day_rows(date(2026, 10, 12), [10, 40, 40, 40, 40, 10, 10])  # W42
    analysis = review(workspace, tmp_path, rows, months=("2026-W40", "2026-W41", "2026-W42"))
    day = [a for a in analysis.anomalies if a.scope == "day"]
    base = Decimal("0.014000000000")
    assert [(a.key, a.baseline, a.actual, a.score) for a in day] == [
        ("2026-10-13", base, Decimal("0.056000000000"), Decimal("30.00")),
        ("2026-10-14", base, Decimal("0.056000000000"), Decimal("30.00")),
        ("2026-10-15", base, Decimal("0.044800000000"), Decimal("22.00")),  # the price falls
        ("2026-10-16", base, Decimal("0.044800000000"), Decimal("22.00")),
    ]
    assert day[0].explanation == (
        "2026-10-13: ledger cost $0.06 against a median day of $0.01 over 2026-W40 to 2026-W42 "
        "(21 days); most of the extra came from application search-api (+$0.04)"
    )


def test_a_range_without_earlier_ranges_of_its_length_says_which_it_looked_for(workspace, tmp_path):
    """Weeks in the folder are no baseline for the range 5 to 11 October: it says which
    ranges it would compare with."""
    rows = [request(f"w{i}", timestamp=f"2026-10-{d:02d}T09:00:00Z") for i, d in enumerate(
        (1, 6, 8, 13))]  # fmt: skip
    analysis = review(workspace, tmp_path, rows, months=("2026-W40", "2026-10-05..2026-10-11"))
    (history,) = [a for a in analysis.anomalies if a.metric == "history"]
    assert history.explanation == (
        "no earlier range of its length (2026-09-28..2026-10-04 back to 2026-08-24..2026-08-30) "
        "has evidence in the output folder: spikes, shifts and new callers need a baseline of at "
        "least 2 earlier periods, so none are flagged (day-level spikes inside the period are "
        "still checked)"
    )


def test_a_median_of_request_counts_keeps_its_half():
    from allocation_kit.anomalies import _count

    assert [_count(Decimal(v)) for v in ("1504.5", "1504", "12000")] == [
        "1,504.5",
        "1,504",
        "12,000",
    ]


def test_the_profile_counts_a_logging_duplicate_once_for_callers_and_endpoints(workspace, tmp_path):
    rows = [
        request("a", caller_id="svc-a", endpoint="/v1/chat/completions"),
        request("a", caller_id="svc-a", endpoint="/v1/chat/completions"),  # identical copy
        request("a", caller_id="svc-a", endpoint="/v1/chat/completions"),  # and another
        request("b", caller_id="svc-a", endpoint="/v1/responses", input_tokens=500),
        request("b", caller_id="svc-a", endpoint="/v1/responses", input_tokens=700),  # differs
        request("c", caller_id="svc-b", endpoint="/v1/responses", job_id="job-1"),
    ]
    review(workspace, tmp_path, rows, months=("2026-10",))
    with (tmp_path / "reports" / "2026-10" / "evidence" / "spend_profile.csv").open() as handle:
        profile = {
            (r["scope"], r["key"]): (r["requests"], r["input_tokens"], r["output_tokens"])
            for r in csv.DictReader(handle)
            if r["scope"] in {"caller", "endpoint", "application"}
        }
    # "a" once; both different copies of "b" (quarantined, each counted, as in lines)
    assert profile == {
        ("application", "search-api"): ("4", "3200", "400"),
        ("caller", "svc-a"): ("3", "2200", "300"),
        ("caller", "svc-b"): ("1", "1000", "100"),
        ("endpoint", "/v1/chat/completions"): ("1", "1000", "100"),
        ("endpoint", "/v1/responses"): ("3", "2200", "300"),
    }


def test_an_edited_earlier_profile_is_one_line_naming_file_row_and_column(workspace, tmp_path):
    import pytest

    from allocation_kit.errors import InputError

    rows = [r for m in MONTHS for r in calls(m, 10)]
    review(workspace, tmp_path, rows, months=MONTHS[:3])
    profile = tmp_path / "reports" / "2026-09" / "evidence" / "spend_profile.csv"
    text = profile.read_text().splitlines()
    text[2] = text[2].replace(",10,", ",1O,", 1)  # a letter O for a zero
    profile.write_text("\n".join(text) + "\n")
    ws = load_workspace(workspace(rows))
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    evidence.mkdir(parents=True)
    with pytest.raises(InputError) as caught:
        write_analysis(evidence, ledger, {}, "finops-analyst")
    assert caught.value.line() == (
        f"{profile}: row 2 (line 3), column 'requests': got '1O', expected a number: the "
        "evidence an earlier run wrote (remove or re-run that period)"
    )
    profile.write_text(profile.read_text().replace(",1O,", ",NaN,"))  # parses, is no amount
    with pytest.raises(InputError) as caught:
        write_analysis(evidence, ledger, {}, "finops-analyst")
    assert "column 'requests': got 'NaN', expected a number" in caught.value.line()
