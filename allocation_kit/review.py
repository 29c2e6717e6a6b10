"""Review records: one chargeback review row per team, and the period's spend review record.

A chargeback row passes when the team's cost can be charged as it stands. It fails when money is
missing or unknown: usage without a price (the cost is understated; a follow-up instead when the
bill charges at most kit.yaml's `review.unpriced_materiality` for all of the period's unpriced
calls) or requests the team tagged that map to no registered owner (their cost cannot reach the
team). It needs follow-up when the
rows are priced and owned but the ownership is in question (a tag conflict involving the team, a
shared application split by a fallback instead of its documented rule, traffic on a retired
application) or its price is (a failed reconciliation blames a model the team used).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from .allocate import unpriced_shares
from .chargeback import Chargeback, ledger_cents
from .config import ProportionalSplit
from .history import cell_text
from .pipeline import PeriodLedger, kept_items_sql
from .present import counted, money, unit_money
from .price import DIRECTIONS, pico_to_cost

__all__ = [
    "CHARGEBACK_COLUMNS",
    "ChargebackRow",
    "anomaly_teams",
    "chargeback_review",
    "chargeback_rows",
    "spend_review",
    "unpriced_billed",
]

CHARGEBACK_COLUMNS = (
    "review_id",
    "usage_period",
    "team",
    "cost_center",
    "allocation_rule",
    "usage_unit_checked",
    "cost",
    "review_result",
    "reasons",
    "follow_up_owner",
    "reviewer_role",
    "reviewed_at",
)


@dataclass(frozen=True)
class ChargebackRow:
    review_id: str
    usage_period: str
    team: str
    cost_center: str
    allocation_rule: str
    usage_unit_checked: str
    cost: Decimal
    review_result: str
    reasons: str
    follow_up_owner: str
    reviewer_role: str
    reviewed_at: str


def _ownership_issues(ledger: PeriodLedger) -> dict[str, list[tuple[str, str]]]:
    """team -> [(result, reason, follow-up owner)] for unknown owners and conflicts it is in."""
    registry = ledger.workspace.registry
    teams = {t.id: t for t in registry.teams}
    app_team = {a.id: a.team for a in registry.applications}
    issues: dict[str, list[tuple[str, str]]] = defaultdict(list)
    picos = " + ".join(f"pico_{d}" for d in DIRECTIONS)
    rows = ledger.con.execute(
        f"""SELECT allocation_status, team, application, count(*), {pico_to_cost(f"sum({picos})")}
        FROM ({kept_items_sql()})
        WHERE allocation_status IN ('unknown_owner', 'conflict') GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    currency = ledger.workspace.kit.currency
    for status, tagged, application, n, cost in rows:
        # what is at stake: their cost, unallocated until the tags or the registry are fixed
        amount = unit_money(cost, currency) if cost else money(cost, currency)
        requests = f"{counted(n, 'request')} ({amount})"
        if status == "conflict":
            owner = app_team.get(application)
            for team in dict.fromkeys(t for t in (owner, tagged) if t in teams):
                issues[team].append(
                    (
                        "needs_follow_up",
                        f"tag conflict: {requests} {'tags' if n == 1 else 'tag'} application "
                        f"{application} "
                        f"(registered to {owner}) with team {tagged}",
                    )
                )
        else:
            if tagged in teams:
                what = f"application {application}" if application else "no application"
                issues[tagged].append(
                    (
                        "fail",
                        f"missing owner mapping: {requests} tagged {tagged} with {what} "
                        "not in the registry",
                    )
                )
            if application in app_team and app_team[application] in teams and tagged not in teams:
                issues[app_team[application]].append(
                    (
                        "fail",
                        f"missing owner mapping: {requests} of application {application} "
                        f"tagged with unknown team {tagged}",
                    )
                )
    return issues


def _retired_traffic(ledger: PeriodLedger) -> dict[str, int]:
    """{application the registry marks inactive: its owned requests this period}, for those
    with traffic (still allocated to the owner: the cost is real, the tag or the registry is
    stale)."""
    retired = [a.id for a in ledger.workspace.registry.applications if not a.active]
    if not retired:
        return {}
    return dict(
        ledger.con.execute(
            """SELECT application, sum(requests)::BIGINT FROM lines
            WHERE allocation_status IN ('allocated', 'shared') AND list_contains($apps, application)
            GROUP BY ALL HAVING sum(requests) > 0 ORDER BY ALL""",
            {"apps": retired},
        ).fetchall()
    )


def _billed_otherwise(ledger: PeriodLedger, reconciliation: dict | None) -> dict[str, list[str]]:
    """{team: sentences} for the models a failed reconciliation blames: each model whose
    billed cost differs from the ledger's beyond the tolerance, for every team with priced usage
    of it (directly or through a shared application): its charge may change once the bill is
    settled."""
    from .present import money, unit_money
    from .reconcile import beyond_tolerance

    def shown(value: Decimal) -> str:  # $0.80 as the reconciliation says it; $0.0021 below a cent
        return (
            money(value, currency) if abs(value) >= Decimal("0.01") else unit_money(value, currency)
        )

    if not reconciliation or reconciliation.get("result") != "fail":
        return {}
    tolerance = Decimal(str(reconciliation.get("tolerance_pct", 1)))
    currency = ledger.workspace.kit.currency
    blamed = {
        line["model"]: (Decimal(line["billed_cost"]), Decimal(line["ledger_cost"]))
        for line in reconciliation.get("lines", [])
        if line.get("level") == "model"
        and line.get("finding") in {"price_mismatch", "token_mismatch", "cost_mismatch"}
        and line.get("ledger_cost") is not None
        and line.get("billed_cost") is not None
        and beyond_tolerance(Decimal(line["variance"]), Decimal(line["billed_cost"]), tolerance)
    }
    if not blamed:
        return {}
    apps = {a.id: a for a in ledger.workspace.registry.applications}
    found: dict[str, list[str]] = defaultdict(list)
    for model, status, team, application in ledger.con.execute(
        """SELECT DISTINCT model, allocation_status, owner_team, application FROM lines
        WHERE allocation_status IN ('allocated', 'shared') AND list_contains($models, model)
            AND priced AND billable AND requests > 0
        ORDER BY ALL""",
        {"models": list(blamed)},
    ).fetchall():
        receivers = apps[application].shared.teams if status == "shared" else [team]
        billed, computed = blamed[model]
        sentence = (
            f"{model} is billed {shown(billed)} against {shown(computed)} "
            "computed (reconciliation fail): the team's cost of it may change once the bill is "
            "settled"
        )
        for receiver in receivers:
            if sentence not in found[receiver]:
                found[receiver].append(sentence)
    return found


def unpriced_billed(ledger: PeriodLedger, reconciliation: dict | None) -> Decimal | None:
    """What the bill charges for the period's unpriced calls, of every team and status: for
    each model with billable calls and no price, its billed cost less what the ledger computes
    for its priced calls. None when a model has no such bill figure (no bill, the model absent
    from it, a bill below the priced part): the understatement is then unknown."""
    models = [
        m
        for (m,) in ledger.con.execute(
            "SELECT DISTINCT model FROM lines WHERE billable AND NOT priced AND requests > 0"
        ).fetchall()
    ]
    found = {
        line["model"]: line
        for line in (reconciliation or {}).get("lines", [])
        if line.get("level") == "model" and line.get("finding") == "unpriced"
    }
    total = Decimal(0)
    for model in models:
        line = found.get(model)
        if line is None or line.get("billed_cost") is None:
            return None
        part = Decimal(line["billed_cost"]) - Decimal(line.get("ledger_cost") or 0)
        if part < 0:
            return None
        total += part
    return total


def chargeback_review(
    ledger: PeriodLedger,
    reviewer_role: str,
    reviewed_at: datetime,
    reconciliation: dict | None = None,
) -> list[ChargebackRow]:
    """One review row per registered team, in registry order; `reconciliation` (the record of
    reconciliation.json) puts a team's row on follow-up when a failed reconciliation blames a
    model the team used."""
    ws = ledger.workspace
    registry = ws.registry
    shared_rules = {a.id: a.shared for a in registry.applications if a.shared}
    app_owner = {a.id: a.team for a in registry.applications}
    owners = {t.id: t.budget_owner for t in registry.teams}
    ownership = _ownership_issues(ledger)
    retired = _retired_traffic(ledger)
    billed_otherwise = _billed_otherwise(ledger, reconciliation)
    unpriced_shared = unpriced_shares(ledger.allocation)
    billed_unpriced = unpriced_billed(ledger, reconciliation) if ledger.counts.unpriced else None
    materiality = ws.kit.review.unpriced_materiality
    currency = ws.kit.currency
    understated, unpriced_result = "cost understated", "fail"
    if billed_unpriced is not None:
        understated = (
            f"cost understated: the period's unpriced calls, of every team, are billed "
            f"{money(billed_unpriced, currency)}"
        )
        if materiality is not None and billed_unpriced <= materiality:
            unpriced_result = "needs_follow_up"
            understated += f", within review.unpriced_materiality of {money(materiality, currency)}"
    rows = []
    for team in registry.teams:
        lines = [
            line
            for line in ledger.allocation
            if line.team == team.id and line.allocation_status in ("allocated", "shared")
        ]
        cost = sum((line.cost for line in lines), Decimal(0))
        requests = sum(line.requests for line in lines)
        tokens_in = sum(line.input_tokens for line in lines)
        tokens_out = sum(line.output_tokens for line in lines)
        rules = sorted({line.allocation_rule for line in lines})
        problems: list[tuple[str, str, str]] = []  # (result, reason, follow-up owner)
        unpriced = sum(line.unpriced_requests for line in lines)
        if unpriced:
            problems.append(
                (
                    unpriced_result,
                    f"unpriced usage: {counted(unpriced, 'request')} "
                    f"{'has' if unpriced == 1 else 'have'} no price in the snapshot "
                    f"({understated})",
                    ws.pricing.reviewed_by,
                )
            )
        shares = sorted(
            {
                line.application or ""
                for line in lines
                if line.allocation_status == "shared"
                and (line.application, line.environment) in unpriced_shared
                and not line.unpriced_requests  # its whole-call share is said above
            }
        )
        if shares:
            problems.append(
                (
                    unpriced_result,
                    f"a share of unpriced usage on shared {', '.join(shares)} ({understated})",
                    ws.pricing.reviewed_by,
                )
            )
        for result, reason in ownership.get(team.id, []):
            problems.append((result, reason, team.budget_owner))
        for line in lines:
            rule = shared_rules.get(line.application or "")
            if isinstance(rule, ProportionalSplit) and "(no direct" in line.allocation_rule:
                problems.append(
                    (
                        "needs_follow_up",
                        f"shared usage without a documented split: {line.application} "
                        f"{line.environment or ''} was split evenly because its rule "
                        f"(proportional to {rule.basis}) had nothing to weigh by",
                        owners[app_owner[line.application]],
                    )
                )
        for application, n in retired.items():
            if app_owner[application] == team.id:
                problems.append(
                    (
                        "needs_follow_up",
                        f"retired application in use: {counted(n, 'request')} on "
                        f"{application}, which the registry marks inactive (active: false)",
                        team.budget_owner,
                    )
                )
        for sentence in billed_otherwise.get(team.id, []):
            problems.append(("needs_follow_up", sentence, f"{reviewer_role} (the bill)"))
        if not team.cost_center:
            problems.append(("fail", "no cost center to charge", team.budget_owner))
        results = {p[0] for p in problems}
        result = "fail" if "fail" in results else "needs_follow_up" if results else "pass"
        rows.append(
            ChargebackRow(
                review_id=f"CBR-{ledger.period.label}-{team.id}",
                usage_period=ledger.period.label,
                team=team.id,
                cost_center=team.cost_center or "",
                allocation_rule="; ".join(rules) if rules else "no usage",
                usage_unit_checked=(
                    f"{requests:,} requests; {tokens_in:,} input and {tokens_out:,} output "
                    f"tokens; cost in {ws.kit.currency}"
                ),
                cost=cost,
                review_result=result,
                reasons="; ".join(dict.fromkeys(p[1] for p in problems)),
                follow_up_owner=", ".join(dict.fromkeys(p[2] for p in problems)),
                reviewer_role=reviewer_role,
                reviewed_at=reviewed_at.isoformat(timespec="seconds"),
            )
        )
    return rows


def chargeback_rows(rows: list[ChargebackRow]) -> list[dict[str, str]]:
    return [{c: cell_text(getattr(r, c)) for c in CHARGEBACK_COLUMNS} for r in rows]


def _top(profile: list[dict], scope: str) -> dict | None:
    candidates = [r for r in profile if r["scope"] == scope]
    if not candidates:
        return None
    best = min(candidates, key=lambda r: (-int(r["requests"]), r["key"]))
    return {scope: best["key"], "requests": int(best["requests"])}


def spend_review(
    ledger: PeriodLedger,
    profile: list[dict],
    flagged: list,
    chargeback: list[ChargebackRow],
    budgets: list,
    reconciliation: dict,
    reviewer_role: str,
    reviewed_at: datetime,
    gaps: list[str] | None = None,
    month_budgets: list | None = None,
    schedule: Chargeback | None = None,
) -> dict:
    """The period's spend review record (spend_review.json). `gaps`: what of the period the
    ledger lacks (`budgets.data_gaps`); `month_budgets`: a week's or range's month to date;
    `schedule`: the chargeback to the bill, whose cents the amounts of the sign-off follow."""
    by_status = ledger.cost_by_status()
    allocated = by_status.get("allocated", Decimal(0))
    shared = by_status.get("shared", Decimal(0))
    requests = defaultdict(int)
    tokens = defaultdict(int)
    for line in ledger.allocation:
        requests[line.allocation_status] += line.requests
        for field in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"):
            tokens[field] += getattr(line, field)
    total_requests = sum(requests.values())
    classified = requests.get("allocated", 0) + requests.get("shared", 0)
    rate = (
        (Decimal(classified) / total_requests * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        if total_requests
        else None
    )
    anomalies = [a for a in flagged if a.metric != "history"]
    return {
        "period": ledger.period.label,
        "period_start": ledger.period.start.isoformat(),
        "period_end": ledger.period.end.isoformat(),
        "currency": ledger.workspace.kit.currency,
        "totals": {
            "ledger_cost": format(ledger.ledger_cost, "f"),
            "allocated": format(allocated, "f"),
            "shared": format(shared, "f"),
            "unallocated": format(ledger.ledger_cost - allocated - shared, "f"),
            "billed_cost": reconciliation.get("billed_cost"),
            "reconciliation_result": reconciliation.get("result"),
        },
        "requests": {
            "total": total_requests,
            "classified": classified,
            "unclassified": total_requests - classified,
            "classification_rate_pct": cell_text(rate) or None,
            "by_status": dict(sorted(requests.items())),
        },
        "top_endpoint": _top(profile, "endpoint"),
        "top_caller": _top(profile, "caller"),
        "tokens": dict(tokens),
        "anomalies": {
            "count": len(anomalies),
            "baseline": "insufficient history"
            if any(a.metric == "history" for a in flagged)
            else "ok",
            "flags": [f"{a.scope} {a.key}: {a.metric}" for a in anomalies],
        },
        "budgets": {
            status: sum(b.status == status for b in budgets)
            for status in ("ok", "warning", "exceeded")
        }
        | (  # a week's or range's month so far, over the whole monthly budget
            {"month_to_date_exceeded": sum(b.status == "exceeded" for b in month_budgets)}
            if month_budgets
            else {}
        )
        if budgets
        else None,  # no budgets configured
        "chargeback": {
            result: sum(r.review_result == result for r in chargeback)
            for result in ("pass", "needs_follow_up", "fail")
        },
        "sign_off": sign_off_proposal(
            ledger, flagged, chargeback, budgets, reconciliation, reviewer_role, gaps, schedule
        ),
        "reviewer_role": reviewer_role,
        "reviewed_at": reviewed_at.isoformat(timespec="seconds"),
    }


def anomaly_teams(ledger: PeriodLedger, anomalies: list) -> list[set[str | None]]:
    """The registered teams behind each anomaly: a team, an application's owner, and for a
    model or a caller the teams whose requests make up most of its traffic (`_teams_behind`);
    {None} when no team is (days, unallocated spend: the reviewer's)."""
    registry = ledger.workspace.registry
    app_team = {a.id: a.team for a in registry.applications}
    team_ids = {t.id for t in registry.teams}

    def teams_of(a) -> set[str | None]:
        if a.scope == "team" and a.key in team_ids:
            return {a.key}
        if a.scope == "application" and a.key in app_team:
            return {app_team[a.key]}
        if a.scope in {"model", "caller"}:
            column = "caller_id" if a.scope == "caller" else "model"
            return set(_teams_behind(ledger, column, a.key, app_team, team_ids)) or {None}
        return {None}

    return [teams_of(a) for a in anomalies]


def _anomaly_owners(ledger: PeriodLedger, anomalies: list, reviewer_role: str) -> str:
    """The budget owners of the teams behind the anomalies (`anomaly_teams`), in registry
    order; the reviewer for the rest."""
    named = set().union(*anomaly_teams(ledger, anomalies))
    owners = [t.budget_owner for t in ledger.workspace.registry.teams if t.id in named]
    if None in named:
        owners.append(reviewer_role)
    return ", ".join(dict.fromkeys(owners))


def _teams_behind(
    ledger: PeriodLedger, column: str, key: str, app_team: dict[str, str], team_ids: set[str]
) -> list[str]:
    """The registered teams whose requests (by application owner, else team tag) make up most
    of the period's requests with `column` = `key`: the largest first, until they are more than
    half."""
    counts: dict[str, int] = {}
    for application, team, n in ledger.con.execute(
        f"SELECT application, team, sum(counted)::BIGINT FROM counted_requests "
        f"WHERE {column} = ? GROUP BY ALL",
        [key],
    ).fetchall():
        owner = app_team.get(application) or (team if team in team_ids else None)
        if owner:
            counts[owner] = counts.get(owner, 0) + n
    behind, covered, total = [], 0, sum(counts.values())
    for team, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if total and covered * 2 > total:
            break
        behind.append(team)
        covered += n
    return behind


def sign_off_proposal(
    ledger: PeriodLedger,
    flagged: list,
    chargeback: list[ChargebackRow],
    budgets: list,
    reconciliation: dict,
    reviewer_role: str,
    gaps: list[str] | None = None,
    schedule: Chargeback | None = None,
) -> dict:
    """The period's proposed sign-off: `fail` when the reconciliation or a team's chargeback
    fails, `needs_follow_up` when anything else is open (an inconclusive reconciliation,
    unallocated cost, unpriced calls, a chargeback row to follow up, a budget exceeded, an
    anomaly, a ledger that covers only part of the period: `gaps`), else `pass`; with every
    finding behind it, worst first, and who follows it up."""

    currency = ledger.workspace.kit.currency
    findings: list[tuple[str, str, str]] = []  # (result, finding, follow-up owner)
    if gaps:
        findings.append(
            (
                "needs_follow_up",
                f"Partial period: {'; '.join(gaps)}. Every figure covers only the rows logged "
                "so far",
                f"{reviewer_role} (re-run once the ledger is complete)",
            )
        )
    result = reconciliation.get("result")
    deciding: set[str] = set()
    if result in ("fail", "inconclusive"):
        # the reason that decided the verdict, as the reconciliation section words it
        decided = [r["message"] for r in reconciliation.get("reasons", []) if r["effect"] == result]
        deciding = {r["code"] for r in reconciliation.get("reasons", []) if r["effect"] == result}
        findings.append(
            (
                "fail" if result == "fail" else "needs_follow_up",
                f"Reconciliation {result}: "
                + (decided[0] if decided else "see the reconciliation section"),
                f"{reviewer_role} (reconciliation with the provider)",
            )
        )
    for row in chargeback:
        if row.review_result != "pass":
            findings.append(
                (
                    row.review_result,
                    f"Chargeback {row.review_result.replace('_', ' ')} for {row.team}: "
                    f"{row.reasons}",
                    row.follow_up_owner,
                )
            )
    for b in budgets:
        if b.status == "exceeded":
            findings.append(
                (
                    "needs_follow_up",
                    f"Budget exceeded: {b.exceeded_text(currency)}",
                    b.budget_owner,
                )
            )
    by_status = ledger.cost_by_status()
    unallocated = ledger.ledger_cost - by_status.get("allocated", 0) - by_status.get("shared", 0)
    if unallocated:
        # from a unit up, as the packet shows it: in the cents that add up to the ledger total
        own: dict[str, Decimal] = defaultdict(Decimal)
        for line in ledger.allocation:
            if line.allocation_status in ("allocated", "shared"):
                own[line.team] += line.cost
        shown = ledger_cents(schedule, dict(own), unallocated, currency)[1]
        amount = money(shown, currency) if unallocated >= 1 else unit_money(unallocated, currency)
        requests = sum(
            line.requests
            for line in ledger.allocation
            if line.allocation_status not in ("allocated", "shared")
        )
        findings.append(
            (
                "needs_follow_up",
                f"Unallocated: {amount} of "
                f"{counted(requests, 'request')} no team owns yet "
                "(untagged, unknown owner, conflict or quarantined)",
                f"{reviewer_role} (tags, with the callers in the exception queue)",
            )
        )
    if ledger.counts.unpriced and "unpriced_model" not in deciding:  # else said above
        findings.append(
            (
                "needs_follow_up",
                f"Unpriced: {counted(ledger.counts.unpriced, 'billable call')} of a model with no "
                "price in effect: cost unknown, not in the ledger total",
                f"{reviewer_role} (pricing snapshot)",
            )
        )
    anomalies = [a for a in flagged if a.metric != "history"]
    if anomalies:
        days = sum(a.metric == "daily_spend" for a in anomalies)
        against = [
            f"{len(anomalies) - days} against earlier periods" if len(anomalies) > days else "",
            f"{counted(days, 'day')} far above the period's median day" if days else "",
        ]
        history = any(a.metric == "history" for a in flagged)
        findings.append(
            (
                "needs_follow_up",
                f"Anomalies: {len(anomalies)} flagged ({'; '.join(filter(None, against))}"
                + ("; no earlier period to compare against yet" if history else "")
                + ")",
                _anomaly_owners(ledger, anomalies, reviewer_role),
            )
        )
    order = {"fail": 0, "needs_follow_up": 1}
    findings.sort(key=lambda f: order[f[0]])  # stable: worst first, then in the order above
    proposed = findings[0][0] if findings else "pass"
    return {
        "proposed_result": proposed,
        "findings": [
            {"result": r, "finding": text, "follow_up_owner": owner} for r, text, owner in findings
        ],
    }
