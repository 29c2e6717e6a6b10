"""Team statements: one page per team for its budget owner, rendered from the period's evidence.

`run` writes reports/<period>/statements/<team>.html beside the packet: what the team is charged
and what the charge is made of (its own cost line by line, its shares of what kit.yaml spreads),
its budget, the anomalies it stands behind, what it has to follow up and the unit costs its budget
owner signed off. Every figure is read from the evidence files (teams.csv, allocation.csv,
chargeback.csv, budgets.csv, anomalies.csv, unit_economics.csv), so a statement agrees with the
evidence to the digit and can be re-rendered from it alone. Each page is self-contained (inline
style, no script), to be sent to the budget owner on its own.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from .chargeback import ITEM_WORDS, SPREADABLE, foot, foot_both_ways
from .history import evidence_reader
from .present import (
    Html,
    count_text,
    counted,
    html_table,
    minor_unit,
    minor_word,
    money,
    pct_of,
    percent,
    rounded,
    rounding_note,
    signed_percent,
    tiles,
    unit_money,
)

__all__ = [
    "split_weights",
    "statement_file",
    "statement_html",
    "unallocated_parts",
    "write_statements",
]


def _rows(path: Path) -> list[dict[str, str]]:
    """The rows of an evidence CSV ([] without it), each cell the value it stands for."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(evidence_reader(handle))


def _dec(text: str | None) -> Decimal | None:
    return Decimal(text) if text not in (None, "") else None


def statement_file(team: str) -> str:
    """The file name of a team's statement: its id when that is a safe file name (letters,
    digits, '.', '_', '-', not starting with a dot), else the id with every other character
    as '_' and a short hash of the id, so two ids never share a page ('ml/infra' →
    'ml_infra-<hash>.html')."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", team).lstrip(".")
    if safe != team:
        safe = f"{safe or 'team'}-{hashlib.sha256(team.encode()).hexdigest()[:8]}"
    return f"{safe}.html"


def _verdict_words(verdict: str) -> str:
    """The reconciliation's result as a sentence's end: "failed", "passed", "is inconclusive"."""
    return {"pass": "passed", "fail": "failed"}.get(verdict, f"is {html.escape(verdict)}")


@dataclass(frozen=True)
class Context:
    """What a statement says about its period as a whole, beside the team's own figures."""

    sign_off: str | None  # the review's proposed result (spend_review.json)
    verdict: str | None  # the reconciliation's result
    against_bill: bool  # the chargeback schedule adds up to a bill, not the ledger
    looked_for: str | None  # the period before, whose evidence a change compares with
    history: str | None  # why no anomalies were looked for (no baseline yet)
    manifest_sha256: str  # which run wrote the evidence
    # the bill's charges left out of the schedule: for more than the period (a month's tax beside
    # a week) or in another currency (`chargeback.bill_charges`)
    charges_apart: int = 0


def write_statements(folder: Path) -> list[Path]:
    """Render folder/statements/<team>.html for every team of folder/evidence/teams.csv;
    the pages written."""
    from .report import resource_dir

    evidence = folder / "evidence"
    teams = _rows(evidence / "teams.csv")
    if not teams:
        return []
    manifest = json.loads((evidence / "manifest.json").read_text())
    style = (resource_dir("templates") / "review_packet" / "packet.css.j2").read_text()
    files = {
        name: _rows(evidence / f"{name}.csv")
        for name in (
            "allocation",
            "chargeback",
            "chargeback_journal",
            "budgets",
            "anomalies",
            "unit_economics",
        )
    }
    files["models"] = _model_costs(evidence / "focus_allocated.csv")
    files["weights"] = split_weights(evidence / "focus_allocated.csv")
    context = _context(evidence, manifest, files["anomalies"])
    target = folder / "statements"
    target.mkdir(exist_ok=True)
    written = []
    for team in teams:
        page = statement_html(team, manifest, style, context=context, **files)
        path = target / statement_file(team["team"])
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written


def _context(evidence: Path, manifest: dict, anomalies: Sequence[dict[str, str]]) -> Context:
    from .chargeback import bill_charges, bill_items
    from .periods import parse_period, prior_periods

    def read(name: str) -> dict:
        path = evidence / name
        return json.loads(path.read_text()) if path.is_file() else {}

    record, spend = read("reconciliation.json"), read("spend_review.json")
    before = prior_periods(parse_period(manifest["period"]["label"]), 1)
    history = next((a["explanation"] for a in anomalies if a["metric"] == "history"), None)
    return Context(
        sign_off=(spend.get("sign_off") or {}).get("proposed_result"),
        verdict=record.get("result"),
        against_bill=bill_items(record, manifest["workspace"]["currency"]) is not None,
        charges_apart=len(bill_charges(record, manifest["workspace"]["currency"])[1])
        if record.get("billed_cost") is not None
        else 0,
        looked_for=before[0].label if before else None,
        history=history,
        manifest_sha256=hashlib.sha256((evidence / "manifest.json").read_bytes()).hexdigest(),
    )


def statement_html(
    team: dict[str, str],
    manifest: dict,
    style: str,
    allocation: Sequence[dict[str, str]],
    chargeback: Sequence[dict[str, str]],
    budgets: Sequence[dict[str, str]],
    anomalies: Sequence[dict[str, str]],
    unit_economics: Sequence[dict[str, str]],
    models: dict[str, dict[str, Decimal]] | None = None,
    context: Context | None = None,
    chargeback_journal: Sequence[dict[str, str]] = (),
    weights: dict[str, dict[str, tuple[Decimal, str]]] | None = None,
) -> str:
    """One team's statement (its teams.csv row) as a whole HTML page. `models`: {team: {model:
    cost}} and `weights` (`split_weights`) from focus_allocated.csv; `chargeback_journal`: the
    rows of chargeback_journal.csv, whose amounts the shares show."""
    context = context or Context(None, None, False, None, None, "")
    currency = team["currency"]
    period = manifest["period"]
    start = datetime.fromisoformat(period["start"]).date()
    last = (datetime.fromisoformat(period["end"]) - timedelta(days=1)).date()
    name = team["team"]
    charge_line = next((r for r in chargeback if r["team"] == name), None)
    kept = next((r for r in chargeback if r["line"] == "kept_by_reviewer"), None)
    # the items the reviewer's line also carries a part of, on the spend it keeps
    held = {i for i in SPREADABLE if kept and charge_line and Decimal(kept[f"{i}_share"] or 0)
            and Decimal(charge_line[f"{i}_share"] or 0)}  # fmt: skip
    budget = next((b for b in budgets if b["team"] == name), None)
    booked = {r["component"]: Decimal(r["amount"]) for r in chargeback_journal if r["team"] == name}
    # the own cost as the schedule books it, which every table of the page foots to
    own = booked.get("own_cost", Decimal(0)) if chargeback_journal and charge_line else None
    parts = [
        _standing(period["label"], context),
        _tiles(team, budget, currency, context, own),
        Html("<h2>What the charge is made of</h2>"),
        _composition(
            name,
            allocation,
            charge_line,
            currency,
            context,
            held,
            weights or {},
            booked,
        ),
        Html("<h2>By model</h2>"),
        _models((models or {}).get(name, {}), team, currency, own),
        Html("<h2>Budget</h2>"),
        _budget(budget, charge_line, currency),
        Html("<h2>Anomalies</h2>"),
        _anomalies(team, anomalies, context),
        Html("<h2>To follow up</h2>"),
        _follow_up(team, budget, currency),
    ]
    disputes = ((manifest.get("config") or {}).get("review") or {}).get("disputes")
    if disputes:  # kit.yaml review.disputes
        parts.insert(
            2,
            Html(
                f'<p class="ak-disputes"><strong>To question a line:</strong> '
                f"{html.escape(disputes)}</p>"
            ),
        )
    owned = [u for u in unit_economics if u["owner"] == team["budget_owner"]]
    if owned:
        parts += [Html("<h2>Unit costs you own</h2>"), _units(owned, currency)]
    body = "".join(p.text for p in parts)
    e = html.escape
    meta = (
        f"{start:%d %b %Y} – {last:%d %b %Y} (UTC) · business unit {e(team['business_unit'])} · "
        f"cost center {e(team['cost_center'])} · budget owner {e(team['budget_owner'])}"
    )
    run = (
        f" (manifest.json SHA-256 {context.manifest_sha256[:12]})"
        if context.manifest_sha256
        else ""
    )
    source = (
        f"Rendered from the evidence of {e(period['label'])} written "
        f"{e(manifest['created_at'][:16].replace('T', ' '))} UTC by allocation-kit "
        f"{e(manifest['kit_version'])}{run}: teams.csv, allocation.csv, chargeback.csv, "
        "budgets.csv, anomalies.csv, unit_economics.csv and focus_allocated.csv. A later run of "
        "the period replaces this page. The whole review is the period's packet, packet.html "
        'beside the statements folder (<a href="../packet.html">open it</a> from the reports '
        "folder)."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{e(name)} — AI spend statement {e(period["label"])}</title>
{style}
</head>
<body class="jp-Notebook">
<main class="jp-RenderedHTMLCommon">
<header class="ak-title">
  <div class="ak-title-kit">{e(manifest["workspace"]["name"])}</div>
  <h1 class="ak-title-main">{e(name)} — AI spend statement {e(period["label"])}</h1>
  <div class="ak-title-meta">{meta}</div>
</header>
{body}
<p class="ak-note">{source}</p>
</main>
</body>
</html>
"""


def _standing(label: str, context: Context) -> Html:
    """A banner on what the charge is yet: interim without a bill to add up to, provisional
    until the period's review passes."""
    e = html.escape
    notes = []
    if not context.against_bill:
        notes.append(
            f"<strong>Interim:</strong> {e(label)} has no complete bill of its own to add up to "
            "(a week or a date range beside a monthly bill, or no bill named in kit.yaml), so the "
            "charges add up to the ledger total: tax, credits and the bill's other charges are "
            "not in them, and come with the bill's own period."
        )
    elif context.charges_apart:
        notes.append(
            f"<strong>Interim:</strong> {counted(context.charges_apart, 'charge')} of the bill "
            f"in another currency or for more than {e(label)} (a month's tax or credits beside a "
            f"week) {'is' if context.charges_apart == 1 else 'are'} not in this charge: "
            "charged with its own period."
        )
    if context.sign_off and context.sign_off != "pass":
        verdict = (
            f"; the reconciliation with the bill {_verdict_words(context.verdict)}"
            if context.verdict
            else ""
        )
        notes.append(
            f"<strong>Provisional:</strong> the review of {e(label)} proposes "
            f"{e(context.sign_off.replace('_', ' '))}{verdict}. The charge stands once the "
            "period is signed off."
        )
    if not notes:
        return Html("")
    items = "".join(f"<p>{n}</p>" for n in notes)
    return Html(f'<div class="ak-banner ak-warn">{items}</div>')


def _tiles(
    team: dict[str, str],
    budget: dict[str, str] | None,
    currency: str,
    context: Context,
    own: Decimal | None = None,
) -> Html:
    """The statement's figures at a glance; `own`: the own cost as booked (else its exact
    amount rounded)."""
    cost = Decimal(team["cost"])
    unpriced = int(team["unpriced_requests"])
    before = _dec(team["previous_cost"])
    if team["previous_period"] and team["change_pct"] and before:
        versus = (
            f"{signed_percent(pct_of(cost - before, before))} against {team['previous_period']}"
        )
    elif unpriced:
        versus = f"leaves out {count_text(unpriced)} unpriced calls: no change given"
    elif team["previous_unpriced_requests"] not in ("", "0"):
        versus = f"{team['previous_period']}'s cost left out unpriced calls: no change given"
    elif team["previous_period"]:
        versus = f"nothing in {team['previous_period']}"
    elif context.looked_for:
        versus = f"no evidence of {context.looked_for} in these reports to compare with"
    else:
        versus = "no earlier period to compare with"
    review = team["review_result"]
    items = [
        ("Charge", money(Decimal(team["charge"]), currency), "neutral", "what you are charged"),
        ("Own cost", money(cost if own is None else own, currency), "neutral", versus),
    ]
    if budget:
        tone = {"ok": "ok", "warning": "warn", "exceeded": "bad"}[budget["status"]]
        items.append(
            ("Budget used", percent(_used(budget)), tone,
             f"{budget['status']} · of {money(Decimal(budget['budget']), currency)} "
             f"({budget['environments']})")
        )  # fmt: skip
    tone = {"pass": "ok", "needs_follow_up": "warn", "fail": "bad"}[review]
    items.append(("Chargeback review", review.replace("_", " "), tone))
    return tiles(items)


def _used(budget: dict[str, str]) -> Decimal | None:
    """The share of a budget used, from the exact amounts (budgets.csv's pct_used is rounded to
    2 places: shown from it, it would round twice)."""
    return pct_of(Decimal(budget["actual"]), Decimal(budget["budget"]))


def _composition(
    name: str,
    allocation: Sequence[dict[str, str]],
    charge_line: dict[str, str] | None,
    currency: str,
    context: Context,
    held: set[str] = frozenset(),
    weights: dict[str, dict[str, tuple[Decimal, str]]] | None = None,
    booked: dict[str, Decimal] | None = None,
) -> Html:
    """The team's own cost application by application (production and the rest apart, as the
    packet's allocation shows it), its shares of what is spread, the total and the charge. A
    share shows its amount as `booked` (chargeback_journal.csv: the schedule's cents, which add
    up to the charge), when given."""
    lines = [r for r in allocation if r["team"] == name]
    if not lines:
        return Html('<p class="ak-empty">No cost this period: nothing is charged.</p>')
    apps: dict[tuple[str, str], dict[str, Decimal | int]] = {}
    for r in lines:
        how = (
            "own application"
            if r["allocation_status"] == "allocated"
            else r["allocation_rule"].removeprefix("shared: ")
        )
        split = (weights or {}).get(r["application"] or "", {})
        if how.startswith("proportional") and name in split:  # the team's weight, to check it
            mine, unit = split[name]
            total = sum((q for q, _ in split.values()), Decimal(0))
            shown = (
                (money(mine, currency), f"{money(total, currency)} of cost")
                if unit == "cost"
                else (count_text(mine), f"{count_text(total)} {unit}")
            )
            how += f": {percent(mine / total * 100, places=2)}, {shown[0]} of {shown[1]}"
        acc = apps.setdefault(
            (r["application"] or "—", how),
            {"requests": 0, "production": Decimal(0), "other": Decimal(0)},
        )
        acc["requests"] += int(r["requests"])
        acc["production" if r["environment"] == "production" else "other"] += Decimal(r["cost"])
    m = lambda value: money(value, currency)  # noqa: E731
    cells = [[a["production"], a["other"]] for a in apps.values()]
    sums: list[tuple[list[Decimal], Decimal]] = []
    footed = None
    if booked and charge_line:  # the own cost as the schedule books it, which adds up to the charge
        with_cents = booked.get("own_cost", Decimal(0))
        try:  # the applications' cells add up across and down to it
            footed, _, _ = foot_both_ways(cells, with_cents, minor_unit(currency))
        except ValueError:  # not within a unit of their exact total: each rounded alone
            footed = None
    if footed is not None:  # the subtotals are the sums of the cells shown
        amounts, own = footed, with_cents
        own_prod = sum((p for p, _ in amounts), Decimal(0))
        own_other = sum((o for _, o in amounts), Decimal(0))
    else:  # each rounded on its own: the note says by how much they may not add up
        amounts = cells
        own_prod = sum((p for p, _ in cells), Decimal(0))
        own_other = sum((o for _, o in cells), Decimal(0))
        own = with_cents if booked and charge_line else own_prod + own_other
        sums += [([p for p, _ in cells], own_prod), ([o for _, o in cells], own_other)]
        sums += [([p + o for p, o in cells], own), ([own_prod, own_other], own)]
        sums += [((p, o), p + o) for p, o in cells]
    rows = [
        (app, how, count_text(a["requests"]), m(p), m(o), m(p + o))
        for ((app, how), a), (p, o) in zip(apps.items(), amounts, strict=True)
    ]
    classes = [""] * len(rows)
    rows.append(("Own cost", "", "", m(own_prod), m(own_other), m(own)))
    classes.append("ak-subtotal")
    charge = Decimal(0)
    if charge_line:
        exact = {i: Decimal(charge_line[f"{i}_share"]) for i in SPREADABLE}
        shares = [  # as booked (the journal leaves out what rounds to 0), else exact
            (item, booked.get(item, Decimal(0)) if booked else exact[item])
            for item in SPREADABLE
            if exact[item]
        ]
        for item, share in shares:
            how = "in proportion to own cost"
            if item in held:
                how += (" among all the spend charged: the reviewer keeps the part on the spend "
                        "it keeps")  # fmt: skip
            rows.append((f"Share of {ITEM_WORDS[item]}", how, "", "", "", m(share)))
            classes.append("")
            if item == "unallocated":  # what the unallocated spend is, in the same proportions
                parts = unallocated_parts(allocation, share)
                cents = list(parts.values())
                if booked and parts:  # the share is in cents: its parts add up to it
                    cents = foot(cents, share, minor_unit(currency))
                rows += [(f"  of which {status.replace('_', ' ')}", "", "", "", "", m(part))
                         for status, part in zip(parts, cents, strict=True)]  # fmt: skip
                classes += ["ak-unit"] * len(parts)
                if parts and not booked:
                    sums.append((list(parts.values()), share))
        charge = Decimal(charge_line["charge"])
        if shares and booked:  # the booked parts add up to the charge: no total of their own
            sums.append(([own, *(s for _, s in shares)], charge))
        elif shares:
            total = Decimal(charge_line["total_cost"])
            sums.append(([own, *(s for _, s in shares)], total))
            rows.append(("Total", "", "", "", "", m(total)))
            classes.append("ak-subtotal")
    unit = minor_word(currency)
    table = html_table(
        ["Application", "How", "Requests", "Production", "Other environments", "Cost"],
        rows,
        numeric=(2, 3, 4, 5),
        total=("Charge", f"to the {unit}", "", "", "", m(charge)),
        row_classes=classes,
    )
    adds_up = "the ledger total"
    if context.against_bill:
        adds_up = "the bill's charges for the period" if context.charges_apart else "the bill"
    rounding = (
        f"The charge and its parts are rounded to the {unit} as the packet's schedule books them "
        f"(evidence/chargeback_journal.csv): they add up, and every team's charge, with what the "
        f"reviewer keeps, adds up to {adds_up} exactly; each is within one {unit} of its exact "
        "amount in evidence/chargeback.csv."
        if booked and charge_line
        else f"The charge is the total rounded to the {unit} so that every team's charge, with "
        f"what the reviewer keeps, adds up to {adds_up} exactly: it can differ from the total "
        f"by up to one {unit}."
    )
    note = Html(
        f'<p class="ak-note">{html.escape(rounding, quote=False)} Requests count every '
        "attempt, failed ones included; on a shared application, the team's share of them, "
        "split like its cost "
        "(the application's own count is in the packet).</p>"
    )
    return table + rounding_note(sums, currency) + note


def unallocated_parts(allocation: Sequence[dict[str, str]], share: Decimal) -> dict:
    """{status: part} of a team's share of the unallocated spend, split exactly (largest
    remainder at 10⁻¹²) in proportion to each unallocated status's cost in allocation.csv;
    empty when one status holds it all (the share is then all of it)."""
    from .allocate import split_exact

    costs: dict[str, Decimal] = {}
    for r in allocation:
        if not r["team"] and Decimal(r["cost"]):
            costs[r["allocation_status"]] = costs.get(r["allocation_status"], Decimal(0)) + (
                Decimal(r["cost"])
            )
    if len(costs) < 2 or sum(costs.values()) <= 0:
        return {}
    parts = split_exact(share, costs)
    return {status: parts[status] for status in sorted(costs, key=lambda k: (-costs[k], k))}


def _model_costs(path: Path) -> dict[str, dict[str, Decimal]]:
    """{team: {model: cost}} of the FOCUS export (billable, priced usage, shares included)."""
    costs: dict[str, dict[str, Decimal]] = {}
    for row in _rows(path):
        if row["SubAccountId"]:
            model = json.loads(row["x_SkuPriceDetails"])["ModelId"]
            mine = costs.setdefault(row["SubAccountId"], {})
            mine[model] = mine.get(model, Decimal(0)) + Decimal(row["EffectiveCost"])
    return costs


def split_weights(path: Path) -> dict[str, dict[str, tuple[Decimal, str]]]:
    """{shared application: {team: (its weight, the weight's unit)}} of the proportional splits
    in the FOCUS export (x_AllocatedMethodDetails' UsageQuantity and UsageUnit)."""
    weights: dict[str, dict[str, tuple[Decimal, str]]] = {}
    for row in _rows(path):
        if row.get("x_AllocatedMethodId", "").startswith("shared-proportional-"):
            (element,) = json.loads(row["x_AllocatedMethodDetails"], parse_float=Decimal)[
                "Elements"
            ]
            unit = {"Tokens": "billable tokens", "Requests": "billable requests"}.get(
                element["UsageUnit"], element["UsageUnit"].lower()
            )
            quantity = Decimal(str(element["UsageQuantity"]))
            weights.setdefault(row["ResourceId"], {})[row["SubAccountId"]] = (quantity, unit)
    return weights


def _models(
    costs: dict[str, Decimal], team: dict[str, str], currency: str, own: Decimal | None = None
) -> Html:
    """The team's cost by model; with `own` (its own cost as booked), the models' amounts add
    up to it (largest remainder), each within a minor unit of its exact amount."""
    unpriced = int(team["unpriced_requests"])
    named = team.get("unpriced_models", "").replace("; ", ", ")
    left_out = (
        f" The team's {counted(unpriced, 'billable call')} of "
        f"{named or 'a model'} without a price in the snapshot are not here: their cost is "
        "unknown."
        if unpriced
        else ""
    )
    if not costs:
        return Html(f'<p class="ak-empty">No priced usage this period.{left_out}</p>')
    total = sum(costs.values(), Decimal(0))
    ranked = sorted(costs.items(), key=lambda item: (-item[1], item[0]))
    shown = [rounded(cost, currency) for _, cost in ranked]
    if own is not None:
        try:
            shown = foot([cost for _, cost in ranked], own, minor_unit(currency))
        except ValueError:  # not within a unit of the models' total: each rounded alone
            own = None
    rows = [
        (model, money(amount, currency), percent(cost / total * 100) if total else "—")
        for (model, cost), amount in zip(ranked, shown, strict=True)
    ]
    table = html_table(
        ["Model", "Cost", "Share"],
        rows,
        numeric=(1, 2),
        total=("All models", money(total if own is None else own, currency), ""),
    )
    note = Html(
        '<p class="ak-note">From the FOCUS export (focus_allocated.csv), which splits shared '
        f"applications model by model.{html.escape(left_out)}</p>"
    )
    footing = rounding_note([(list(costs.values()), total)], currency) if own is None else Html("")
    return table + footing + note


def _budget(budget: dict[str, str] | None, charge_line: dict[str, str] | None, currency: str):
    if not budget:
        return Html('<p class="ak-empty">No budget for this team in budgets.yaml.</p>')
    row = (
        budget["environments"],
        money(Decimal(budget["budget"]), currency),
        money(Decimal(budget["actual"]), currency),
        percent(_used(budget)),
        money(_dec(budget["forecast"]), currency),
        budget["status"],
        budget["reason"] or "",
    )
    columns = ["Environments", "Budget", "Actual", "Used", "Forecast", "Status", "Why"]
    if not budget.get("month"):  # a month (or evidence written before the month to date)
        table = html_table(
            columns, [row], numeric=(1, 2, 3, 4), row_classes=[f"ak-status-{budget['status']}"]
        )
    else:  # a week or date range: its share of the month, then the month to date
        month = (
            f"{budget['month']} to date",
            budget["environments"],
            money(Decimal(budget["monthly_budget"]), currency),
            money(Decimal(budget["month_to_date"]), currency),
            percent(pct_of(Decimal(budget["month_to_date"]), Decimal(budget["monthly_budget"]))),
            money(_dec(budget["month_forecast"]), currency),
            budget["month_status"],
            budget["month_reason"] or "",
        )
        table = html_table(
            ["Period", *columns],
            [(budget["period"] + " (its share of the month)", *row), month],
            numeric=(2, 3, 4, 5),
            row_classes=[f"ak-status-{budget['status']}", f"ak-status-{budget['month_status']}"],
        )
    # what the charge holds that the budget does not count
    other = Decimal(budget["other_environments_actual"])
    apart = [f"its cost in other environments ({money(other, currency)})"]
    if charge_line:
        shares = Decimal(charge_line["total_cost"]) - Decimal(charge_line["own_cost"])
        if shares:
            apart.append(f"its shares of what is spread ({money(shares, currency)})")
    note = Html(
        f'<p class="ak-note">The budget counts the team\'s own cost in '
        f"{html.escape(budget['environments'])}. Not counted, though in the charge for "
        f"{html.escape(budget['period'])}: "
        f"{html.escape(' and '.join(apart))}.</p>"
    )
    return table + note


def _anomalies(team: dict[str, str], anomalies: Sequence[dict[str, str]], context: Context):
    named = [a for a in team["anomalies"].split("; ") if a]
    if not named:
        if context.history:
            return Html(
                f'<p class="ak-empty">Not looked for yet: {html.escape(context.history)}.</p>'
            )
        return Html('<p class="ak-empty">No anomalies traced to this team.</p>')
    text = {f"{a['scope']} {a['key']}: {a['metric']}": a["explanation"] for a in anomalies}
    items = "".join(f"<li>{html.escape(text.get(a, a))}</li>" for a in named)
    return Html(f'<ul class="ak-findings">{items}</ul>')


def _follow_up(team: dict[str, str], budget: dict[str, str] | None, currency: str) -> Html:
    """What the team has to follow up, each with who does: its chargeback review's reasons, a
    budget over or near its limit, the anomalies behind which it stands."""
    rows = []
    if team["review_result"] != "pass":
        rows.append(
            (f"Chargeback review {team['review_result'].replace('_', ' ')}: {team['reasons']}",
             team["follow_up_owner"])
        )  # fmt: skip
    if budget and budget["status"] != "ok":
        why = budget["reason"] or f"{percent(_used(budget))} of the budget used"
        rows.append((f"Budget {budget['status']}: {why}", team["budget_owner"]))
    if budget and budget.get("month_status") not in (None, "", "ok"):
        rows.append(
            (f"Budget {budget['month_status']} for {budget['month']} to date: "
             f"{budget['month_reason']}", team["budget_owner"])
        )  # fmt: skip
    named = [a for a in team["anomalies"].split("; ") if a]
    if named:
        rows.append(
            (f"Explain the {len(named)} anomal{'y' if len(named) == 1 else 'ies'} above, or "
             "confirm the change was planned", team["budget_owner"])
        )  # fmt: skip
    if not rows:
        return Html(
            '<p class="ak-empty">Nothing for this team: its chargeback review passed, its budget '
            "is within its thresholds and no anomaly is traced to it.</p>"
        )
    return html_table(["What", "Who"], rows)


def _unit_change(unit: dict[str, str]) -> str:
    """The change of a unit cost, rounded once from the exact unit costs; — when the evidence
    gives none (a changed definition, an understated unit cost)."""
    if not unit["change_pct"]:
        return "—"
    now, before = Decimal(unit["unit_cost"]), Decimal(unit["previous_unit_cost"])
    return signed_percent(pct_of(now - before, before))


def _units(units: Sequence[dict[str, str]], currency: str) -> Html:
    rows = [
        (u["name"], f"{u['numerator_filter']} ÷ {u['denominator_kind']}",
         f"{unit_money(Decimal(u['numerator_cost']), currency)} ÷ "
         f"{count_text(Decimal(u['denominator_value']))}",
         unit_money(_dec(u["unit_cost"]), currency),
         unit_money(_dec(u["previous_unit_cost"]), currency), _unit_change(u), u["note"])
        for u in units
    ]  # fmt: skip
    return html_table(
        ["Unit", "Definition", "This period", "Unit cost", "Previous period", "Change", "Note"],
        rows,
        numeric=(2, 3, 4, 5),
    )
