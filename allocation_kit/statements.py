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

import csv
import hashlib
import html
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from .chargeback import ITEM_WORDS, SPREADABLE
from .present import (
    Html,
    count_text,
    counted,
    html_table,
    minor_word,
    money,
    pct_of,
    percent,
    rounding_note,
    signed_percent,
    tiles,
    unit_money,
)

__all__ = ["statement_file", "statement_html", "write_statements"]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


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
        for name in ("allocation", "chargeback", "budgets", "anomalies", "unit_economics")
    }
    files["models"] = _model_costs(evidence / "focus_allocated.csv")
    target = folder / "statements"
    target.mkdir(exist_ok=True)
    written = []
    for team in teams:
        page = statement_html(team, manifest, style, **files)
        path = target / statement_file(team["team"])
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written


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
) -> str:
    """One team's statement (its teams.csv row) as a whole HTML page. `models`: {team: {model:
    cost}} from focus_allocated.csv."""
    currency = team["currency"]
    period = manifest["period"]
    start = datetime.fromisoformat(period["start"]).date()
    last = (datetime.fromisoformat(period["end"]) - timedelta(days=1)).date()
    name = team["team"]
    charge_line = next((r for r in chargeback if r["team"] == name), None)
    budget = next((b for b in budgets if b["team"] == name), None)
    parts = [
        _tiles(team, budget, currency),
        Html("<h2>What the charge is made of</h2>"),
        _composition(name, allocation, charge_line, currency),
        Html("<h2>By model</h2>"),
        _models((models or {}).get(name, {}), int(team["unpriced_requests"]), currency),
        Html("<h2>Budget</h2>"),
        _budget(budget, currency),
        Html("<h2>Anomalies</h2>"),
        _anomalies(team, anomalies),
        Html("<h2>To follow up</h2>"),
        _follow_up(team),
    ]
    owned = [u for u in unit_economics if u["owner"] == team["budget_owner"]]
    if owned:
        parts += [Html("<h2>Unit costs you own</h2>"), _units(owned, currency)]
    body = "".join(p.text for p in parts)
    e = html.escape
    meta = (
        f"{start:%d %b %Y} – {last:%d %b %Y} (UTC) · business unit {e(team['business_unit'])} · "
        f"cost center {e(team['cost_center'])} · budget owner {e(team['budget_owner'])}"
    )
    source = (
        "Read from this period's evidence (teams.csv, allocation.csv, chargeback.csv, "
        "budgets.csv, anomalies.csv, unit_economics.csv), written "
        f"{e(manifest['created_at'][:16].replace('T', ' '))} UTC by allocation-kit "
        f"{e(manifest['kit_version'])}; the whole review is in "
        '<a href="../packet.html">the period\'s packet</a>.'
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


def _tiles(team: dict[str, str], budget: dict[str, str] | None, currency: str) -> Html:
    cost = Decimal(team["cost"])
    unpriced = int(team["unpriced_requests"])
    before = _dec(team["previous_cost"])
    if team["previous_period"] and team["change_pct"] and before:
        versus = (
            f"{signed_percent(pct_of(cost - before, before))} against {team['previous_period']}"
        )
    elif unpriced:
        versus = f"leaves out {count_text(unpriced)} unpriced calls: no change given"
    elif team["previous_period"]:
        versus = f"nothing in {team['previous_period']}"
    else:
        versus = "no earlier period to compare with"
    review = team["review_result"]
    items = [
        ("Charge", money(Decimal(team["charge"]), currency), "neutral", "what you are charged"),
        ("Own cost", money(cost, currency), "neutral", versus),
    ]
    if budget:
        tone = {"ok": "ok", "warning": "warn", "exceeded": "bad"}[budget["status"]]
        items.append(
            ("Budget used", percent(_used(budget)), tone,
             f"{budget['status']} · of {money(Decimal(budget['budget']), currency)}")
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
) -> Html:
    lines = [r for r in allocation if r["team"] == name]
    if not lines:
        return Html('<p class="ak-empty">No cost this period: nothing is charged.</p>')
    rows = [
        (r["application"] or "—", r["environment"] or "—",
         "own application" if r["allocation_status"] == "allocated"
         else r["allocation_rule"].removeprefix("shared: "),
         count_text(int(r["requests"])), money(Decimal(r["cost"]), currency))
        for r in lines
    ]  # fmt: skip
    own = [Decimal(r["cost"]) for r in lines]
    total_own = sum(own, Decimal(0))
    classes = [""] * len(rows)
    rows.append(("Own cost", "", "", "", money(total_own, currency)))
    classes.append("ak-subtotal")
    sums = [(own, total_own)]
    if charge_line:
        shares = [
            (item, Decimal(charge_line[f"{item}_share"]))
            for item in SPREADABLE
            if Decimal(charge_line[f"{item}_share"])
        ]
        for item, share in shares:
            rows.append((f"Share of {ITEM_WORDS[item]}", "", "in proportion to own cost", "",
                         money(share, currency)))  # fmt: skip
            classes.append("")
        if shares:
            total = Decimal(charge_line["total_cost"])
            sums.append(([total_own, *(s for _, s in shares)], total))
            rows.append(("Total", "", "", "", money(total, currency)))
            classes.append("ak-subtotal")
        charge = Decimal(charge_line["charge"])
    else:
        charge = Decimal(0)
    table = html_table(
        ["Application", "Environment", "How", "Requests", "Cost"],
        rows,
        numeric=(3, 4),
        total=("Charge", "", f"to the {minor_word(currency)}", "", money(charge, currency)),
        row_classes=classes,
    )
    note = Html(
        f'<p class="ak-note">The charge is the total in {minor_word(currency)}s as the '
        "chargeback schedule foots it: the teams' charges add up to the bill exactly, so a "
        f"charge can differ from its total by up to one {minor_word(currency)}.</p>"
    )
    return table + rounding_note(sums, currency) + note


def _model_costs(path: Path) -> dict[str, dict[str, Decimal]]:
    """{team: {model: cost}} of the FOCUS export (billable, priced usage, shares included)."""
    costs: dict[str, dict[str, Decimal]] = {}
    for row in _rows(path):
        if row["SubAccountId"]:
            model = json.loads(row["x_SkuPriceDetails"])["ModelId"]
            mine = costs.setdefault(row["SubAccountId"], {})
            mine[model] = mine.get(model, Decimal(0)) + Decimal(row["EffectiveCost"])
    return costs


def _models(costs: dict[str, Decimal], unpriced: int, currency: str) -> Html:
    left_out = (
        f" The team's {counted(unpriced, 'billable call')} of a model without a price in the "
        "snapshot are not here: their cost is unknown."
        if unpriced
        else ""
    )
    if not costs:
        return Html(f'<p class="ak-empty">No priced usage this period.{left_out}</p>')
    total = sum(costs.values(), Decimal(0))
    ranked = sorted(costs.items(), key=lambda item: (-item[1], item[0]))
    rows = [
        (model, money(cost, currency), percent(cost / total * 100) if total else "—")
        for model, cost in ranked
    ]
    table = html_table(
        ["Model", "Cost", "Share"],
        rows,
        numeric=(1, 2),
        total=("All models", money(total, currency), ""),
    )
    note = Html(
        '<p class="ak-note">From the FOCUS export (focus_allocated.csv), which splits shared '
        "applications model by model: its sums can differ from the own cost above by a few "
        f"10⁻¹² of the currency unit.{html.escape(left_out)}</p>"
    )
    return table + rounding_note([(list(costs.values()), total)], currency) + note


def _budget(budget: dict[str, str] | None, currency: str) -> Html:
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
    return html_table(
        ["Environments", "Budget", "Actual", "Used", "Forecast", "Status", "Why"],
        [row],
        numeric=(1, 2, 3, 4),
        row_classes=[f"ak-status-{budget['status']}"],
    )


def _anomalies(team: dict[str, str], anomalies: Sequence[dict[str, str]]) -> Html:
    named = [a for a in team["anomalies"].split("; ") if a]
    if not named:
        return Html('<p class="ak-empty">None behind which this team stands.</p>')
    text = {f"{a['scope']} {a['key']}: {a['metric']}": a["explanation"] for a in anomalies}
    items = "".join(f"<li>{html.escape(text.get(a, a))}</li>" for a in named)
    return Html(f'<ul class="ak-findings">{items}</ul>')


def _follow_up(team: dict[str, str]) -> Html:
    if team["review_result"] == "pass":
        return Html(
            '<p class="ak-empty">Nothing: the chargeback review passed, the cost can be charged '
            "as it stands.</p>"
        )
    return html_table(
        ["Review", "Reasons", "Follow-up owner"],
        [(team["review_result"].replace("_", " "), team["reasons"], team["follow_up_owner"])],
        row_classes=[f"ak-status-{team['review_result']}"],
    )


def _unit_change(unit: dict[str, str]) -> str:
    """The change of a unit cost, rounded once from the exact unit costs; — when the evidence
    gives none (a changed definition, an understated unit cost)."""
    if not unit["change_pct"]:
        return "—"
    now, before = Decimal(unit["unit_cost"]), Decimal(unit["previous_unit_cost"])
    return signed_percent(pct_of(now - before, before))


def _units(units: Sequence[dict[str, str]], currency: str) -> Html:
    rows = [
        (u["name"], u["numerator_filter"], unit_money(_dec(u["unit_cost"]), currency),
         unit_money(_dec(u["previous_unit_cost"]), currency),
         _unit_change(u), u["note"])
        for u in units
    ]  # fmt: skip
    return html_table(
        ["Unit", "Numerator", "Unit cost", "Previous period", "Change", "Note"],
        rows,
        numeric=(2, 3, 4),
    )
