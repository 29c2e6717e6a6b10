"""Anomalies: what changed against a baseline of earlier periods, in plain language.

Every review writes its spend profile (`spend_profile.csv`: requests, cost and tokens per team,
application, model, caller, endpoint and day). The next review of the same kind of period reads
the profiles of up to six earlier periods from the same output folder and compares:

- spend and request spikes per team, application and model;
- input/output token ratio shifts per application and model;
- new teams, applications, models and callers (absent from every earlier period);
- day-level spikes inside the period (against the period's own median day).

Statistics are robust: the baseline is the median of the earlier periods and the spread their
median absolute deviation (MAD), so one bad month neither hides the next nor becomes the norm.
The score is a modified z-score, (actual − median) / max(1.4826 × MAD, 10% of the median); a
change is flagged at a score of 3.5 or more (Iglewicz and Hoaglin's cut-off) and only when it is
material: at least 1% of the period's ledger cost (or requests). With fewer than two earlier
periods there is no baseline, and the evidence says so instead of flagging noise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from statistics import median

from .history import BASELINE_PERIODS, cell_text, prior_evidence
from .periods import prior_periods
from .pipeline import PeriodLedger
from .present import counted, listed, money, unit_money

__all__ = [
    "ANOMALY_COLUMNS",
    "PROFILE_COLUMNS",
    "Anomaly",
    "anomalies",
    "anomaly_rows",
    "robust_score",
    "spend_profile",
]

PROFILE_COLUMNS = (
    "period",
    "scope",
    "key",
    "requests",
    "cost",
    "input_tokens",
    "output_tokens",
    # billable calls without a price: the cost leaves them out (empty for callers and endpoints)
    "unpriced_requests",
)
ANOMALY_COLUMNS = (
    "scope",
    "key",
    "metric",
    "baseline",
    "actual",
    "score",
    "explanation",
    # after the columns
    "period",
    "baseline_periods",
    "change_pct",
)
SCORE_CUTOFF = Decimal("3.5")
MAD_TO_SIGMA = Decimal("1.4826")
RELATIVE_FLOOR = Decimal("0.10")  # the spread is never taken below 10% of the baseline
MATERIALITY = Decimal("0.01")  # a flagged change is at least 1% of the period's total
MIN_HISTORY = 2
_Q = Decimal("0.01")
_UNALLOCATED = "unallocated: "


@dataclass(frozen=True)
class Anomaly:
    scope: str
    key: str
    metric: str
    baseline: Decimal | None
    actual: Decimal | None
    score: Decimal | None
    explanation: str
    period: str
    baseline_periods: str
    change_pct: Decimal | None


def robust_score(history: list[Decimal], actual: Decimal) -> tuple[Decimal, Decimal]:
    """(median of history, at the ledger's 12 places, and the modified z-score of actual
    against it)."""
    base = Decimal(median(history)).quantize(Decimal("1e-12"), ROUND_HALF_EVEN)
    mad = Decimal(median([abs(v - base) for v in history]))
    scale = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(base))
    if scale == 0:  # an all-zero history: any activity is new rather than a spike
        return base, Decimal(0)
    return base, ((actual - base) / scale).quantize(_Q, ROUND_HALF_EVEN)


# --- the profile of one period ----------------------------------------------------------------


def spend_profile(ledger: PeriodLedger) -> list[dict[str, object]]:
    """Requests, cost and tokens of the period per team (owner, after shared splits), application,
    model, caller, endpoint and day. Callers and endpoints come from the request rows (volume and
    tokens only; identical logging duplicates once, see `counted_requests_sql`); the rest from
    the priced lines."""
    rows: list[dict[str, object]] = []
    label = ledger.period.label

    def add(scope: str, key: object, requests, cost, tokens_in, tokens_out, unpriced) -> None:
        rows.append(
            {
                "period": label,
                "scope": scope,
                "key": str(key),
                "requests": int(requests),
                "cost": cost,
                "input_tokens": int(tokens_in),
                "output_tokens": int(tokens_out),
                "unpriced_requests": unpriced,
            }
        )

    teams: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0, 0, 0])
    for line in ledger.allocation:
        key = line.team or _UNALLOCATED + line.allocation_status
        acc = teams[key]
        acc[0] += line.requests
        acc[1] += line.cost
        acc[2] += line.input_tokens
        acc[3] += line.output_tokens
        acc[4] += line.unpriced_requests
    for key in sorted(teams):
        add("team", key, *teams[key])
    con = ledger.con
    for scope, column in (("application", "application"), ("model", "model"), ("day", "day")):
        for key, *numbers in con.execute(
            f"""SELECT {column}, sum(requests)::BIGINT, sum(cost), sum(input_tokens)::BIGINT,
                sum(output_tokens)::BIGINT,
                COALESCE(sum(requests) FILTER (WHERE billable AND NOT priced), 0)::BIGINT
            FROM lines WHERE {column} IS NOT NULL GROUP BY ALL ORDER BY ALL"""
        ).fetchall():
            add(scope, key, *numbers)
    for caller, endpoint, *numbers in con.execute(
        """SELECT caller_id, endpoint, sum(counted)::BIGINT,
            COALESCE(sum(counted * input_tokens), 0)::BIGINT,
            COALESCE(sum(counted * output_tokens), 0)::BIGINT
        FROM counted_requests GROUP BY GROUPING SETS ((caller_id), (endpoint))
        HAVING caller_id IS NOT NULL OR endpoint IS NOT NULL ORDER BY ALL"""
    ).fetchall():
        scope, key = ("caller", caller) if caller is not None else ("endpoint", endpoint)
        requests, tokens_in, tokens_out = numbers
        add(scope, key, requests, None, tokens_in, tokens_out, None)
    return rows


# --- comparison -------------------------------------------------------------------------------


def _number(value: object) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _index(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["scope"], r["key"]): r for r in rows}


def _requests(row: dict) -> str:
    n = int(_number(row["requests"]))
    return f"{n:,} request{'' if n == 1 else 's'}"


def _what(scope: str, key: str) -> str:
    if scope == "team" and key.startswith(_UNALLOCATED):
        return f"unallocated spend ({key[len(_UNALLOCATED) :].replace('_', ' ')})"
    return f"{scope} {key}"


def _material(row: dict, total_cost: Decimal, total_requests: Decimal) -> bool:
    """At least 1% of the period's cost or of its requests."""
    return (total_cost > 0 and _number(row["cost"]) >= MATERIALITY * total_cost) or _number(
        row["requests"]
    ) >= MATERIALITY * total_requests


def _metric(row: dict | None, metric: str) -> Decimal | None:
    if row is None:
        return Decimal(0)
    if metric == "spend":
        return _number(row["cost"])
    if metric == "requests":
        return _number(row["requests"])
    output = _number(row["output_tokens"])
    return _number(row["input_tokens"]) / output if output else None


def anomalies(ledger: PeriodLedger, profile: list[dict], out: Path) -> list[Anomaly]:
    """The anomalies of the period against the earlier periods' profiles in out."""
    period = ledger.period
    history = prior_evidence(out, period, "spend_profile.csv", BASELINE_PERIODS)
    labels = ", ".join(p.label for p, _ in history)
    currency = ledger.workspace.kit.currency
    current = _index(profile)
    total_cost = ledger.ledger_cost
    total_requests = Decimal(ledger.counts.attempted)
    found: list[Anomaly] = []

    def flag(scope, key, metric, base, actual, score, text, change=None) -> None:
        found.append(
            Anomaly(scope, key, metric, base, actual, score, text, period.label, labels, change)
        )

    found.extend(_day_spikes(ledger, profile, currency, history))
    if len(history) < MIN_HISTORY:
        if history:
            have = f"only {labels} has"
        elif period.kind in ("month", "week"):
            have = f"no earlier {period.kind} has"
        else:  # a range compares with the ranges of its length before it, not weeks or months
            looked = prior_periods(period, BASELINE_PERIODS)
            span = f" ({looked[0].label} back to {looked[-1].label})" if looked else ""
            have = f"no earlier range of its length{span} has"
        flag(
            "baseline",
            period.label,
            "history",
            None,
            Decimal(len(history)),
            None,
            f"{have} evidence in the output folder: spikes, shifts and new callers need a "
            f"baseline of at least {MIN_HISTORY} earlier periods, so none are flagged "
            "(day-level spikes inside the period are still checked)",
        )
        return found
    earlier = [_index(rows) for _, rows in history]
    registry = ledger.workspace.registry
    registered = {  # a new key outside them is unallocated spend, as material as its queue rows
        "team": {t.id for t in registry.teams},
        "application": {a.id for a in registry.applications},
    }
    for (scope, key), row in sorted(current.items()):
        if scope not in {"team", "application", "model", "caller"}:
            continue
        seen = [e.get((scope, key)) for e in earlier]
        if all(s is None or _number(s["requests"]) == 0 for s in seen):
            unowned = key.startswith(_UNALLOCATED) or key not in registered.get(scope, {key})
            if unowned and not _material(row, total_cost, total_requests):
                continue  # a handful of new exception rows: the exception queue lists them
            cost = ""
            if scope != "caller":
                spent = _number(row["cost"])
                cost = f", {unit_money(spent, currency)}" if spent else ", no priced cost"
            flag(
                scope,
                key,
                "new",
                Decimal(0),
                _number(row["requests"]),
                None,
                f"new {_what(scope, key)}: {_requests(row)}{cost} in "
                f"{period.label}, none in the {len(history)} earlier periods ({labels})",
            )
            continue
        if scope == "caller":
            continue
        for metric, total in (("spend", total_cost), ("requests", total_requests)):
            _spike(flag, scope, key, metric, row, seen, total, currency, history, ledger)
        if scope in {"application", "model"} and _number(row["cost"]) >= MATERIALITY * total_cost:
            _ratio_shift(flag, scope, key, row, seen, labels)
    found = _linked(ledger, found, currency)
    found.sort(key=lambda a: (a.metric == "history", -(a.score or 0), a.scope, a.key))
    return found


def _linked(ledger: PeriodLedger, found: list[Anomaly], currency: str) -> list[Anomaly]:
    """Point a team's or model's spend spike at the flagged application spikes inside it."""
    apps = {a.key: a for a in found if a.scope == "application" and a.metric == "spend"}
    if not apps:
        return found
    owner = {a.id: a.team for a in ledger.workspace.registry.applications}
    models = defaultdict(set)
    for application, model in ledger.con.execute(
        "SELECT DISTINCT application, model FROM lines WHERE application IS NOT NULL"
    ).fetchall():
        models[model].add(application)
    linked = []
    for a in found:
        inside = []
        if a.metric == "spend" and a.scope == "team":
            inside = [k for k in apps if owner.get(k) == a.key]
        elif a.metric == "spend" and a.scope == "model":
            inside = [k for k in apps if k in models[a.key]]
        if inside:
            parts = ", ".join(
                f"{k} (+{money(apps[k].actual - apps[k].baseline, currency)})" for k in inside
            )
            text = f"{a.explanation}; includes the spike of application {parts}"
            a = replace(a, explanation=text)
        linked.append(a)
    return linked


def _understated(row: dict | None) -> bool:
    """Whether a profile row's cost leaves out unpriced calls (unknown in evidence from before
    the column: taken as none)."""
    return row is not None and _number(row.get("unpriced_requests")) > 0


def _spike(flag, scope, key, metric, row, seen, total, currency, history, ledger) -> None:
    compared, left_out = len(seen), ""
    if metric == "spend":  # a period whose cost left out unpriced calls is no $ baseline
        unknown = [p.label for (p, _), s in zip(history, seen, strict=True) if _understated(s)]
        seen = [s for s in seen if not _understated(s)]
        if not seen:
            return
        compared = len(seen)
        if unknown:
            left_out = f"; {listed(unknown)} left out: its cost leaves out unpriced calls"
    values = [_metric(s, metric) for s in seen]
    actual = _metric(row, metric)
    base, score = robust_score(values, actual)
    if score < SCORE_CUTOFF or actual - base < MATERIALITY * total:
        return
    change = ((actual - base) / base * 100).quantize(_Q) if base else None
    shown = (lambda v: money(v, currency)) if metric == "spend" else _count
    noun = "spend" if metric == "spend" else "requests"
    times = f" ({(actual / base).quantize(Decimal('0.1'))}× the baseline)" if base else ""
    text = (
        f"{_what(scope, key)}: {noun} {shown(actual)} in {ledger.period.label} against a median "
        f"of {shown(base)} over {_periods(compared)}{times}, score {score}{left_out}"
    )
    if scope == "application":
        text += _driver(ledger, key)
    flag(scope, key, metric, base, actual, score, text, change)


def _periods(n: int) -> str:
    return "the earlier period" if n == 1 else f"the {n} earlier periods"


def _count(value: Decimal) -> str:
    """A request count or a median of counts (1,504.5 stays 1,504.5)."""
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.1f}"


def _ratio_shift(flag, scope, key, row, seen, labels) -> None:
    values = [v for v in (_metric(s, "ratio") for s in seen) if v is not None]
    actual = _metric(row, "ratio")
    if actual is None or len(values) < MIN_HISTORY:
        return
    base, score = robust_score(values, actual)
    if abs(score) < SCORE_CUTOFF:
        return
    direction = (
        "longer prompts or shorter answers" if score > 0 else "shorter prompts or longer answers"
    )
    change = ((actual - base) / base * 100).quantize(_Q) if base else None
    flag(
        scope,
        key,
        "input_output_ratio",
        base.quantize(_Q),
        actual.quantize(_Q),
        score,
        f"{scope} {key}: {actual.quantize(Decimal('0.1'))} input tokens per output token "
        f"against a median of {base.quantize(Decimal('0.1'))} ({labels}): {direction}",
        change,
    )


def _driver(ledger: PeriodLedger, application: str) -> str:
    """What drove an application's spike: its largest job (or caller) this period."""
    row = ledger.con.execute(
        """SELECT COALESCE(job_id, caller_id) AS who, job_id IS NOT NULL AS is_job,
            sum(counted)::BIGINT AS n, min(timestamp)::DATE, max(timestamp)::DATE,
            (SELECT sum(counted)::BIGINT FROM counted_requests WHERE application = $app) AS total
        FROM counted_requests
        WHERE application = $app AND COALESCE(job_id, caller_id) IS NOT NULL
        GROUP BY ALL ORDER BY n DESC, who LIMIT 1""",
        {"app": application},
    ).fetchone()
    if not row:
        return ""
    who, is_job, n, first, last, total = row
    share = Decimal(n) / Decimal(total) * 100 if total else Decimal(0)
    days = f"on {first}" if first == last else f"from {first} to {last}"
    kind = "job" if is_job else "caller"
    return (
        f". Largest {kind}: {who}, {n:,} requests {days} ({share.quantize(Decimal('1'))}% of the "
        "application's requests)"
    )


# A period shorter than this (a week, a short range) has too few days of its own to tell a spike
# of several days from the norm: its earlier periods' days join the baseline.
OWN_DAYS = 28


def _day_spikes(
    ledger: PeriodLedger, profile: list[dict], currency: str, history: Sequence = ()
) -> list[Anomaly]:
    """Days whose ledger cost is far above the median day, with the application that grew most
    that day. The median day is the period's own; for a period shorter than OWN_DAYS days, of
    its days and those of the earlier periods in `history` ((period, spend_profile rows)), less
    the days whose cost leaves out unpriced calls."""
    days = {
        date.fromisoformat(r["key"]): Decimal(r["cost"]) for r in profile if r["scope"] == "day"
    }
    values = list(days.values())
    where = f"in {ledger.period.label}"
    period = ledger.period
    own_days = not history or period.end - period.start >= timedelta(days=OWN_DAYS)
    earlier = [
        _number(r["cost"])
        for _, rows in ([] if own_days else history)
        for r in rows
        if r["scope"] == "day" and not _understated(r)
    ]
    # an application's typical day: its median day in the period, or, with earlier periods'
    # days in the baseline, the median of its mean day in each of them
    if earlier:
        values += earlier
        first = min((p for p, _ in history), key=lambda p: p.start)
        where = f"over {first.label} to {period.label} ({counted(len(values), 'day')})"
        means = [
            {r["key"]: _number(r["cost"]) / (p.end - p.start).days
             for r in rows if r["scope"] == "application"}
            for p, rows in history
        ]  # fmt: skip
        typical = {a: median(m.get(a, Decimal(0)) for m in means) for m in means for a in m}
    else:
        typical = dict(
            ledger.con.execute(
                """SELECT application, median(cost) FROM (
                       SELECT application, day, sum(cost) AS cost FROM lines
                       WHERE application IS NOT NULL GROUP BY ALL) GROUP BY ALL"""
            ).fetchall()
        )
    if len(values) < 7:
        return []
    flagged = []
    for day, cost in sorted(days.items()):
        base, score = robust_score(values, cost)
        if score < SCORE_CUTOFF or cost - base < MATERIALITY * ledger.ledger_cost:
            continue
        that_day = ledger.con.execute(
            "SELECT application, sum(cost) FROM lines WHERE application IS NOT NULL AND day = ? "
            "GROUP BY ALL",
            [day],
        ).fetchall()
        extra = sorted((-(c - typical.get(a, Decimal(0))), a) for a, c in that_day)
        app = (extra[0][1], -extra[0][0]) if extra else None
        why = (
            f"; most of the extra came from application {app[0]} (+{money(app[1], currency)})"
            if app
            else ""
        )
        flagged.append(
            Anomaly(
                "day",
                day.isoformat(),
                "daily_spend",
                base,
                cost,
                score,
                f"{day}: ledger cost {money(cost, currency)} against a median day of "
                f"{money(base, currency)} {where}{why}",
                ledger.period.label,
                ledger.period.label,
                ((cost - base) / base * 100).quantize(_Q) if base else None,
            )
        )
    return flagged


def anomaly_rows(found: list[Anomaly]) -> list[dict[str, str]]:
    return [{c: cell_text(getattr(a, c)) for c in ANOMALY_COLUMNS} for a in found]


def profile_rows(profile: list[dict]) -> list[dict[str, str]]:
    return [{c: cell_text(r[c]) for c in PROFILE_COLUMNS} for r in profile]
