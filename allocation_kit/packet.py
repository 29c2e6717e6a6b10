"""The review packet's sections, as library calls the notebook makes (it holds no logic).

`period_review` runs the period (pipeline, evidence files) and returns a `Review`; each method
returns one piece of a section: HTML tiles and tables, or a matplotlib figure.
"""

from __future__ import annotations

import contextlib
import html
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from . import charts
from .allocate import direct_usage, shared_weights, split_exact
from .anomalies import MATERIALITY, SCORE_CUTOFF
from .attribute import UNALLOCATED_STATUSES
from .budgets import month_to_date_period
from .chargeback import (
    INCOMPLETE_BILL,
    ITEM_WORDS,
    NO_WEIGHTS,
    SPREADABLE,
    bill_charges,
    booked_parts,
    foot,
    foot_both_ways,
    ledger_cents,
    prepaid_drawdown,
)
from .config import FixedSplit, load_workspace
from .errors import ConfigError
from .periods import parse_period
from .pipeline import PeriodLedger, period_ledger
from .present import (
    Html,
    count_text,
    counted,
    html_table,
    listed,
    minor_unit,
    minor_word,
    money,
    pct_of,
    percent,
    rounded,
    rounding_note,
    share_text,
    signed_percent,
    tiles,
    unit_money,
)
from .report import Analysis, atomic_period_folder, write_evidence, write_index
from .signoff import (
    check_journal,
    journal_lock,
    journal_records,
    record_run,
    reopen_reason,
    workspace_journal,
)

__all__ = ["ACTIONS", "Review", "period_review"]

# Whether an exception's cost is inside the ledger total (and how).
IN_LEDGER = {
    **dict.fromkeys(UNALLOCATED_STATUSES, "yes, unallocated"),
    "unpriced": "no: cost unknown",
    "duplicate": "no: counted once",
    "out_of_period": "no: another period",
}

# What a reviewer should do about each kind of exception.
ACTIONS = {
    "untagged": "Ask the callers below to send team and application tags (gateway default tags "
    "help), or list a caller you know the owner of under its application's callers in "
    "registry.yaml; until then the cost stays unallocated.",
    "unknown_owner": "Add the application or team to registry.yaml, or fix the caller's tag.",
    "conflict": "The team tag and the application's registered team disagree: fix the tag or "
    "move the application in registry.yaml.",
    "quarantined": "Inspect the rows: the log carries contradictory copies or impossible token "
    "counts. Correct the source; quarantined cost is kept, unallocated.",
    "unpriced": "Add the model to pricing.yaml with its effective date; its cost is unknown and "
    "left out of the total until then.",
    "duplicate": "Identical log lines counted once; fix double logging at the source.",
    "out_of_period": "Rows logged just outside the period: check clocks and time zones of the "
    "emitting service.",
}


@dataclass
class Review:
    """Everything the packet shows about one period."""

    ledger: PeriodLedger
    manifest: dict
    folder: Path
    reviewer_role: str
    generated_at: datetime
    reconciliation: dict | None = None
    validation: dict | None = None
    analysis: Analysis | None = None
    _cache: dict = field(default_factory=dict)

    # --- basics ---------------------------------------------------------------------------

    @property
    def currency(self) -> str:
        return self.ledger.workspace.kit.currency

    @property
    def title(self) -> str:
        return f"{self.ledger.workspace.kit.name} — review packet {self.ledger.period.label}"

    def _money(self, value: Decimal | None) -> str:
        return money(value, self.currency)

    def _sql(self, query: str) -> list[tuple]:
        return self.ledger.con.execute(query).fetchall()

    @property
    def cost_by_status(self) -> dict[str, Decimal]:
        return self.ledger.cost_by_status()

    @property
    def unallocated_cost(self) -> Decimal:
        by_status = self.cost_by_status
        return sum((by_status.get(s, Decimal(0)) for s in UNALLOCATED_STATUSES), Decimal(0))

    @property
    def cents(self) -> tuple[dict[str, Decimal], Decimal]:
        """({team: own cost}, unallocated spend) as the packet shows them, in the minor unit:
        adding up to the ledger total shown, and each team's as its chargeback line books it
        (`ledger_cents`). Every table of teams, owners and statuses foots to these."""
        if "cents" not in self._cache:
            own: dict[str, Decimal] = defaultdict(Decimal)
            for line in self.ledger.allocation:
                if line.allocation_status not in UNALLOCATED_STATUSES:
                    own[line.team] += line.cost
            schedule = self.analysis.charges if self.analysis else None
            self._cache["cents"] = ledger_cents(
                schedule, dict(own), self.unallocated_cost, self.currency
            )
        return self._cache["cents"]

    @property
    def shown_unallocated(self) -> Decimal:
        return self.cents[1]

    @property
    def shown_allocated(self) -> Decimal:
        return sum(self.cents[0].values(), Decimal(0))

    def _footed(self, amounts: list[Decimal], total: Decimal) -> list[Decimal]:
        """`amounts` in the minor unit adding up to `total` (within a unit of their exact sum,
        as the packet shows it): by largest remainder; rounded each on its own when `total` is
        not theirs to add up to."""
        unit = minor_unit(self.currency)
        try:
            return foot(amounts, total, unit)
        except ValueError:
            return [rounded(a, self.currency) for a in amounts]

    @property
    def coverage_pct(self) -> Decimal | None:
        """FinOps allocation coverage: the share of spend attributed to an owner."""
        total = self.ledger.ledger_cost
        if total == 0:
            return None
        return (total - self.unallocated_cost) / total * 100

    def exceptions_by_reason(self) -> list[tuple[str, int, Decimal]]:
        return self._sql(
            "SELECT reason, count(*), COALESCE(sum(cost), 0) FROM exception_queue "
            "GROUP BY reason ORDER BY 3 DESC, 2 DESC"
        )

    def shown_exception_costs(self) -> dict[str, Decimal]:
        """{reason: its cost as the packet shows it}: the unallocated reasons adding up to the
        unallocated spend shown (`cents`), the others rounded each on its own."""
        rows = self.exceptions_by_reason()
        unallocated = [(r, c) for r, _, c in rows if r in UNALLOCATED_STATUSES]
        shown = {r: rounded(c, self.currency) for r, _, c in rows}
        if sum((c for _, c in unallocated), Decimal(0)) == self.unallocated_cost:
            parts = self._footed([c for _, c in unallocated], self.shown_unallocated)
            shown |= dict(zip((r for r, _ in unallocated), parts, strict=True))
        return shown

    @property
    def verdict(self) -> str | None:
        return self.reconciliation.get("result") if self.reconciliation else None

    # --- summary ----------------------------------------------------------------------------

    def kpis(self) -> Html:
        counts = self.ledger.counts
        rec = self.reconciliation
        billed = Decimal(rec["billed_cost"]) if rec and rec.get("billed_cost") is not None else None
        variance = Decimal(rec["variance"]) if rec and rec.get("variance") is not None else None
        verdict = self.verdict or "no bill"
        tone = {"pass": "ok", "fail": "bad", "inconclusive": "warn"}.get(verdict, "neutral")
        coverage = self.coverage_pct
        exceptions = sum(n for _, n, _ in self.exceptions_by_reason())
        items = [
            ("Ledger total", self._money(self.ledger.ledger_cost), "neutral"),
            ("Billed (usage)", self._money(billed), "neutral"),
            (
                "Variance · verdict",
                f"{self._money(variance)} ({percent(_pct(rec))}) · {verdict}"
                if variance is not None
                else f"{self._no_comparison()} · {verdict}",
                tone,
            ),
            (
                "Allocation coverage",
                percent(coverage),
                "ok" if coverage is not None and coverage >= 95 else "warn",
            ),
            (
                "Unallocated",
                self._money(self.shown_unallocated),
                "warn" if self.unallocated_cost > 0 else "ok",
            ),
            ("Exceptions", count_text(exceptions), "warn" if exceptions else "ok"),
            (
                "Proposed sign-off",
                self.proposal["proposed_result"].replace("_", " "),
                {"fail": "bad", "needs_follow_up": "warn"}.get(
                    self.proposal["proposed_result"], "ok"
                ),
                f"{counted(len(self.proposal['findings']), 'finding')} (section Sign-off)",
            ),
            (
                "Requests",
                f"{counts.attempted:,}",
                "neutral",
                f"{counts.logical_calls:,} logical calls",
            ),
        ]
        return tiles(items)

    def findings(self, limit: int = 4) -> Html:
        """The findings that most need attention, in plain sentences, costliest first."""
        candidates: list[tuple[Decimal, str]] = []
        total = self.ledger.ledger_cost or Decimal(1)
        rec = self.reconciliation
        deciding: set[str] = set()
        if rec and rec.get("result") in {"fail", "inconclusive"}:
            # the reason that decided the verdict
            decided = [r["message"] for r in rec.get("reasons", []) if r["effect"] == rec["result"]]
            deciding = {r["code"] for r in rec.get("reasons", []) if r["effect"] == rec["result"]}
            weight = abs(Decimal(rec.get("variance") or 0)) + total  # the bill outranks all
            text = f"Reconciliation {rec['result']}: {decided[0] if decided else ''}".rstrip(": ")
            candidates.append((weight, text))
        for reason, n, cost in self.exceptions_by_reason():
            if reason in {"duplicate", "out_of_period"}:
                text = (
                    f"{n:,} {reason.replace('_', ' ')} rows were excluded from the total "
                    f"({self._money(cost)} if they had counted)."
                )
                candidates.append((cost / 10, text))
                continue
            if reason == "unpriced":
                if "unpriced_model" in deciding:
                    continue  # the reconciliation's finding names the models and their bill
                models = self._sql(
                    "SELECT model, count(*) FROM exception_queue WHERE reason = 'unpriced' "
                    "GROUP BY 1 ORDER BY 2 DESC"
                )
                names = ", ".join(f"{m} ({c:,})" for m, c in models)
                candidates.append(
                    (
                        total / 2,
                        f"{n:,} billable requests use models with no price "
                        f"in the snapshot: {names}. Their cost is unknown.",
                    )
                )
                continue
            share = percent(cost / total * 100)
            label = reason.replace("_", " ")
            across = counted(n, "request")
            amount = self._money(self.shown_exception_costs()[reason])
            text = f"{amount} ({share} of the ledger) is {label} across {across}."
            candidates.append((cost, f"{text} {ACTIONS[reason]}"))
        for row in self.analysis.chargeback if self.analysis else []:
            if row.review_result == "fail":  # what makes the proposed sign-off a fail
                candidates.append((total, f"Chargeback fail for {row.team}: {row.reasons}."))
        for a in self.analysis.anomalies if self.analysis else []:
            if a.metric == "spend" and a.scope == "application" and a.baseline is not None:
                candidates.append((a.actual - a.baseline, f"Spend spike in {a.explanation}."))
        for b in self.analysis.budgets if self.analysis else []:
            if b.status == "exceeded":
                text = f"Over budget: {b.exceeded_text(self.currency)}."
                candidates.append((b.actual - b.budget, text))
        for m in self.analysis.month_budgets if self.analysis else []:
            if m.status == "exceeded":  # a week's month to date
                mtd = month_to_date_period(self.ledger.period)
                whole = (mtd.last_day + timedelta(days=1)).day == 1  # the month has closed
                text = (
                    f"Over budget for {m.period}{'' if whole else ' so far'}: {m.team}'s "
                    f"{m.environments} spend from "
                    f"{mtd.first_day.day} {mtd.first_day:%b} through {mtd.last_day.day} "
                    f"{mtd.last_day:%b} is {self._money(m.actual)} against its monthly budget of "
                    f"{self._money(m.budget)} ({percent(pct_of(m.actual, m.budget))} used)."
                )
                candidates.append((m.actual - m.budget, text))
        if not candidates:
            candidates.append((Decimal(0), "No exceptions: every request is owned and priced."))
        top = sorted(candidates, key=lambda c: -c[0])[:limit]
        items = "".join(f"<li>{html.escape(text)}</li>" for _, text in top)
        return Html(f'<ol class="ak-findings">{items}</ol>')

    def teams(self) -> Html:
        """One row per registered team (evidence/teams.csv): its own cost against the period
        before, its charge, its budget, the anomalies it stands behind and its review."""
        rows_ = self.analysis.teams if self.analysis else []
        if not rows_:
            return Html('<p class="ak-empty">No teams in the registry.</p>')
        before = rows_[0].previous_period

        def change(r) -> str:
            if r.unpriced_requests or r.previous_unpriced_requests or r.previous_cost is None:
                return "—"
            if r.previous_cost == 0:
                return "new" if r.cost else "—"
            return signed_percent(pct_of(r.cost - r.previous_cost, r.previous_cost))

        def used(r) -> str:
            if r.budget is None:
                return "—"
            status = "" if r.budget_status == "ok" else f" {r.budget_status}"
            return percent(pct_of(r.budget_actual, r.budget)) + status

        own = self.cents[0]
        body = [
            (
                r.team,
                r.budget_owner,
                self._money(own.get(r.team, Decimal(0))) + (" †" if r.unpriced_requests else ""),
                change(r),
                self._money(r.charge),
                used(r),
                count_text(len(r.anomalies)) if r.anomalies else "—",
                r.review_result.replace("_", " "),
            )
            for r in rows_
        ]
        cost = sum((own.get(r.team, Decimal(0)) for r in rows_), Decimal(0))
        charged = sum((r.charge for r in rows_), Decimal(0))
        table = html_table(
            ["Team", "Budget owner", "Cost", f"vs {before}" if before else "vs earlier",
             "Charge", "Budget used", "Anomalies", "Review"],
            body,
            numeric=(2, 3, 4, 5, 6),
            total=("All teams", "", self._money(cost), "", self._money(charged), "", "", ""),
            row_classes=[_team_tone(r) for r in rows_],
        )  # fmt: skip
        notes = [
            "Cost is the team's own (allocated and shared) cost; charge its line of the "
            "chargeback to the bill; budget used covers its budget's environments; anomalies "
            "count those the team is behind; review is its chargeback review. Each team's row is "
            "in evidence/teams.csv, and its statement, a page to send its budget owner, in "
            "statements/<team>.html beside this packet."
        ]
        if before is None:
            notes.append("No evidence of an earlier period in the reports folder to compare with.")
        if any(r.previous_unpriced_requests for r in rows_):
            notes.append(
                f"No change is given against {before} where its cost left out billable calls "
                "without a price: it was understated."
            )
        unpriced = sum(r.unpriced_requests for r in rows_)
        if unpriced:
            notes.append(
                f"† leaves out {counted(unpriced, 'billable call')} of a model with no price in "
                "the snapshot: the cost is understated, so no change is given."
            )
        text = "".join(f'<p class="ak-note">{html.escape(n)}</p>' for n in notes)
        return table + Html(text)

    # --- allocation -------------------------------------------------------------------------

    def allocation_table(self) -> Html:
        """Business unit → team → application, production vs non-production, with subtotals.
        Each team's cells add up across and down to its own cost as the packet shows it
        (`cents`), the unallocated lines to the unallocated spend shown, and every subtotal and
        total is the sum of the cells it covers: the table foots, each cell within a minor unit
        of its exact amount in evidence/allocation.csv."""
        rows: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        unpriced: dict[tuple, int] = defaultdict(int)
        for line in self.ledger.allocation:
            if line.allocation_status in UNALLOCATED_STATUSES:
                key = ("(unallocated)", line.allocation_status.replace("_", " "), "")
            else:
                app = line.application or "(team tag)"
                if line.allocation_status == "shared":
                    app += " (shared)"
                key = (line.business_unit, line.team, app)
            env = "production" if line.environment == "production" else "non-production"
            rows[key][env] += line.cost
            unpriced[key] += line.unpriced_requests
        ordered = sorted(rows, key=lambda k: (k[0] == "(unallocated)", k[0], k[1], k[2]))
        own, unallocated = self.cents
        shown: dict[tuple, dict[str, Decimal]] = {}
        for owner in dict.fromkeys(k[1] if k[0] != "(unallocated)" else None for k in ordered):
            keys = [k for k in ordered if (k[1] if k[0] != "(unallocated)" else None) == owner]
            cells = [[rows[k]["production"], rows[k]["non-production"]] for k in keys]
            footed = unallocated if owner is None else own.get(owner, Decimal(0))
            try:
                cents, _, _ = foot_both_ways(cells, footed, minor_unit(self.currency))
            except ValueError:  # not within a unit of their exact total: rounded each alone
                cents = [[rounded(c, self.currency) for c in row] for row in cells]
            for key, (p, n) in zip(keys, cents, strict=True):
                shown[key] = {"production": p, "non-production": n}
        body: list[tuple] = []
        classes: list[str] = []

        def line(label: tuple, keys: list[tuple]) -> tuple:
            p = sum((shown[k]["production"] for k in keys), Decimal(0))
            n = sum((shown[k]["non-production"] for k in keys), Decimal(0))
            return (*label, self._money(p), self._money(n), self._money(p + n))

        # a business unit and a team of the same name: their totals say which is which
        both = {k[0] for k in ordered} & {k[1] for k in ordered}
        for unit in dict.fromkeys(k[0] for k in ordered):
            unit_keys = [k for k in ordered if k[0] == unit]
            for team in dict.fromkeys(k[1] for k in unit_keys):
                team_keys = [k for k in unit_keys if k[1] == team]
                for key in team_keys:
                    mark = (*key[:2], key[2] + " †") if unpriced[key] else key
                    body.append(line(mark if key[2] else key, [key]))
                    classes.append("")
                if len(team_keys) > 1:
                    mark = " †" if any(unpriced[k] for k in team_keys if k[2]) else ""
                    named = f"{team} (team)" if team in both else team
                    body.append(line(("", f"{named} total{mark}", ""), team_keys))
                    classes.append("ak-subtotal")
            if unit != "(unallocated)" and len({k[1] for k in unit_keys}) > 1:
                named = f"{unit} (business unit)" if unit in both else unit
                body.append(line((f"{named} total", "", ""), unit_keys))
                classes.append("ak-subtotal ak-unit")
        total = line(("Ledger total", "", ""), ordered)
        table = html_table(
            ["Business unit", "Team", "Application", "Production", "Non-production", "Total"],
            body,
            numeric=(3, 4, 5),
            total=total,
            row_classes=classes,
        )
        note = Html("")
        marked = sum(n for k, n in unpriced.items() if k[2])  # owned lines, marked †
        if marked:
            calls = counted(marked, "billable call")
            note += Html(
                f'<p class="ak-note">† leaves out {calls} of a model with no price in the '
                "snapshot: their cost is unknown, not zero (see the exception queue).</p>"
            )
        return table + note

    def showback(self) -> Html:
        """Showback per cost center: what each cost center's teams consumed."""
        ws = self.ledger.workspace
        by_center: dict[str, Decimal] = defaultdict(Decimal)  # as shown: the teams' own cost
        centers_of = {t.id: t.cost_center for t in ws.registry.teams}
        for team, cost in self.cents[0].items():
            by_center[centers_of[team]] += cost
        centers = sorted(by_center, key=lambda c: -by_center[c])
        owners = defaultdict(list)
        for team in ws.registry.teams:
            owners[team.cost_center].append(team)
        body = [
            (
                c,
                ", ".join(sorted({t.business_unit for t in owners[c]})),
                ", ".join(t.id for t in owners[c]),
                ", ".join(t.budget_owner for t in owners[c]),
                self._money(by_center[c]),
                percent(by_center[c] / self.ledger.ledger_cost * 100)
                if self.ledger.ledger_cost
                else "—",
            )
            for c in centers
        ]
        allocated = sum(by_center.values(), Decimal(0))
        total = ("Allocated and shared", "", "", "", self._money(allocated), "")
        table = html_table(
            ["Cost center", "Business unit", "Teams", "Budget owners", "Cost", "Share of ledger"],
            body,
            numeric=(4, 5),
            total=total,
        )
        return table

    def chargeback_schedule(self) -> Html:
        """What each team is charged, in the minor unit, footing to the bill's total (see
        `chargeback`): its own cost plus its share of what kit.yaml spreads; the reviewer keeps
        the rest."""
        schedule = self.analysis.charges if self.analysis else None
        if schedule is None:
            return Html("")
        spread = list(schedule.spread)
        words = [ITEM_WORDS[i] for i in spread]
        teams, reviewer = schedule.lines[:-1], schedule.reviewer
        # what the reviewer keeps whole (not spread) has a column of its own, so that its row and
        # the total add up across like every team's
        held = [i for i in spread if reviewer.shares.get(i)]  # its part of what is spread
        whole = [i for i, a in reviewer.shares.items() if a and i not in held]
        kept = ", ".join(ITEM_WORDS[i] for i in whole)
        # the parts as booked: in cents that add up across to each charge and down to each total
        booked, booked_totals = booked_parts(schedule)
        column = {"own_cost": 0} | {item: 1 + k for k, item in enumerate(SPREADABLE)}

        def part(index: int, item: str) -> str:
            return self._money(booked[index][column[item]])

        columns = [
            "Team",
            "Cost center",
            "Own cost",
            *(f"+ {w}" for w in words),
            *(f"+ {ITEM_WORDS[i]} (kept)" for i in whole),
            "Charge",
        ]
        body = [
            (
                line.team,
                line.cost_center or "",
                part(n, "own_cost"),
                *(part(n, i) for i in spread),
                *("" for _ in whole),
                self._money(line.charge),
            )
            for n, line in enumerate(teams)
        ]
        if reviewer.charge or whole:
            last = len(schedule.lines) - 1
            parts = (part(last, i) if i in held else "" for i in spread)
            whole_parts = (part(last, i) for i in whole)
            row = ("Kept by the reviewer", reviewer.cost_center or "", "", *parts, *whole_parts)
            body.append((*row, self._money(reviewer.charge)))
        what = (
            f"the bill for {self.ledger.period.label}"
            if schedule.against_bill
            else "the ledger total (no bill that covers the period in its currency)"
        )
        total = (
            f"Total (= {what})",
            "",
            *(self._money(booked_totals[column[i]]) for i in ("own_cost", *spread, *whole)),
            self._money(schedule.footed),
        )
        numeric = range(2, len(columns))
        table = html_table(columns, body, numeric=numeric, total=total)
        configured = self.ledger.workspace.kit.chargeback.spread
        if spread:
            rule = (
                f"Each team carries its share of {listed(words)} in proportion to its own cost "
                "(kit.yaml <code>chargeback.spread</code>)."
            )
        elif configured:
            rule = "Teams carry their own cost only: nothing kit.yaml spreads could be spread."
        else:
            rule = (
                "Teams carry their own cost only; kit.yaml <code>chargeback.spread</code> can "
                "spread unallocated spend, the usage difference, tax, credits and the like across "
                "them in proportion to their own cost."
            )
        reasons = "".join(
            f" The {html.escape(ITEM_WORDS[i])} stays with the reviewer: {html.escape(why)}."
            for i, why in schedule.kept.items()
            if why != NO_WEIGHTS
        )
        if any(why == NO_WEIGHTS for why in schedule.kept.values()):
            reasons += f" Nothing is spread: {NO_WEIGHTS}."
        if held:
            items = listed([ITEM_WORDS[i] for i in held])
            reasons += (
                f" The reviewer's line keeps the part of the {items} "
                f"that falls on the spend it keeps ({html.escape(kept)}), in proportion to it: no "
                "team carries them on spend that is not charged to it."
            )
        rec = self.reconciliation or {}
        aside = bill_charges(rec, self.currency)[1] if rec.get("billed_cost") is not None else []
        if aside:
            reasons += (
                f" {counted(len(aside), 'bill charge')} in another currency or for more than "
                f"{self.ledger.period.label} {'is' if len(aside) == 1 else 'are'} not in it (see "
                "the bridge in the Reconciliation section)."
            )
        if reviewer.charge and not reviewer.cost_center:
            reasons += (
                " The reviewer's line has no cost center to be booked to: name one (a suspense or "
                "clearing cost center) as kit.yaml <code>chargeback.kept_cost_center</code>."
            )
        negative = [line.team for line in teams if line.charge < 0]
        if negative:
            reasons += (
                f" A credit larger than their cost leaves {listed(negative)} with a negative "
                "charge: a refund to book, or a credit to keep with the reviewer instead."
            )
        unit = minor_word(self.currency)
        note = Html(
            f'<p class="ak-note">{rule}{reasons} Charges and their parts are rounded to the {unit} '
            f"so that each row adds up to its charge, each column to its total and the charges to "
            f"{html.escape(what)} exactly (by largest remainder where that allows it); each is "
            f"within a {unit} of its exact amount in <code>evidence/chargeback.csv</code>, and "
            "<code>evidence/chargeback_journal.csv</code> lists them for the books, one row per "
            "cost center and component.</p>"
        )
        bill = schedule.bill
        if bill.get("invoice_id") or bill.get("billing_account_id"):
            words = [
                f"{'invoice' if len(bill['invoice_id']) == 1 else 'invoices'} "
                f"{', '.join(bill['invoice_id'])}" if bill.get("invoice_id") else "",
                f"account {', '.join(bill['billing_account_id'])}"
                if bill.get("billing_account_id") else "",
            ]  # fmt: skip
            issuer = ", ".join(bill.get("invoice_issuer") or []) or "the provider"
            against = ", ".join(w for w in words if w)
            note += Html(
                f'<p class="ak-note">Booked against {html.escape(issuer)} {html.escape(against)} '
                "(every row of <code>chargeback.csv</code> carries it).</p>"
            )
        return table + note

    def _rounded(self, value: Decimal) -> Decimal:
        return rounded(value, self.currency)

    def shared_costs(self) -> Html:
        """Each shared application: its rule, each receiving team's weight under it and what the
        team got."""
        rows = [
            (line.application, line.allocation_rule, line.team, line.cost)
            for line in self.ledger.allocation
            if line.allocation_status == "shared"
        ]
        merged: dict[tuple, Decimal] = defaultdict(Decimal)
        for app, rule, team, cost in rows:
            merged[(app, rule, team)] += cost
        keys = sorted(merged)
        shared = sum(merged.values(), Decimal(0))
        apps = {a.id: a for a in self.ledger.workspace.registry.applications}
        direct = direct_usage(self.ledger.usage)
        weights = {app: shared_weights(apps[app].shared, direct)[0] for app in {k[0] for k in keys}}
        body: list[tuple] = []
        classes: list[str] = []
        # each split adds up on the page: the applications' totals to the shared total shown,
        # each receiving team's part to its application's (largest remainder)
        names = list(dict.fromkeys(k[0] for k in keys))
        exact = {app: sum((v for k, v in merged.items() if k[0] == app), Decimal(0))
                 for app in names}  # fmt: skip
        totals = self._footed(list(exact.values()), rounded(shared, self.currency))
        for app, total in zip(names, totals, strict=True):  # each application, then its total
            mine = [k for k in keys if k[0] == app]
            parts = self._footed([merged[k] for k in mine], total)
            body += [(*k, *self._weight(apps[app].shared, weights[app], k[1], k[2]),
                      self._money(part)) for k, part in zip(mine, parts, strict=True)]  # fmt: skip
            classes += [""] * len(mine)
            if len(mine) > 1:  # what the split divides, beside its parts
                body.append((f"{app} total", "", "", "", "", self._money(total)))
                classes.append("ak-subtotal")
        table = html_table(
            ["Shared application", "Rule", "Receiving team", "Weight", "Share", "Cost"],
            body,
            numeric=(3, 4, 5),
            total=("Total shared", "", "", "", "", self._money(shared)),
            empty="No shared applications had traffic in this period.",
            row_classes=classes,
        )
        note = Html(
            '<p class="ak-note">A team\'s share is its weight over the weights of every team the '
            "rule names; a proportional rule weighs each team's own direct, billable usage in the "
            "period (tokens and requests of failed calls the snapshot does not bill count for "
            "none).</p>"
        )
        return table + note

    def _weight(self, rule, weights: dict[str, Decimal], words: str, team: str) -> tuple[str, str]:
        """(the team's weight under a shared rule, in the rule's unit; its share in percent).
        `words`: the rule as allocation.csv states it (a proportional rule without usage to
        weigh by falls back to even)."""
        share = percent(weights[team] / sum(weights.values()) * 100, places=2)
        if isinstance(rule, FixedSplit):
            return f"{count_text(weights[team])}%", share
        if not words.startswith("shared: proportional"):
            return f"1 of {len(weights)}", share
        if rule.basis == "cost":
            return self._money(weights[team]) + " own cost", share
        unit = {"tokens": "billable tokens", "requests": "billable requests"}[rule.basis]
        return f"{count_text(weights[team])} {unit}", share

    def coverage(self) -> Html:
        by_status = self.cost_by_status
        order = ["allocated", "shared", *UNALLOCATED_STATUSES]
        statuses = [s for s in order if s in by_status]
        requests: dict[str, int] = defaultdict(int)
        for line in self.ledger.allocation:
            requests[line.allocation_status] += line.requests
        total = self.ledger.ledger_cost
        owned = [s for s in statuses if s not in UNALLOCATED_STATUSES]
        rest = [s for s in statuses if s in UNALLOCATED_STATUSES]
        shown = dict(zip(owned, self._footed([by_status[s] for s in owned], self.shown_allocated),
                         strict=True))  # fmt: skip
        shown |= dict(
            zip(
                rest,
                self._footed([by_status[s] for s in rest], self.shown_unallocated),
                strict=True,
            )
        )
        body = [
            (
                s.replace("_", " "),
                count_text(requests[s]),
                self._money(shown[s]),
                share_text(by_status[s] / total * 100) if total else "—",
            )
            for s in statuses
        ]
        table = html_table(
            ["Allocation status", "Requests", "Cost", "Share"],
            body,
            numeric=(1, 2, 3),
            total=(
                "Ledger total",
                count_text(sum(requests.values())),
                self._money(total),
                "100.0%",
            ),
        )
        return table

    def team_model_costs(self) -> dict[tuple[str, str], Decimal]:
        """Cost per (owner, model): direct by owner, shared split by the same rule per model."""
        ws = self.ledger.workspace
        apps = {a.id: a for a in ws.registry.applications}
        direct = direct_usage(self.ledger.usage)  # the weights allocation.csv's split used
        result: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for status, team, application, model, cost in self._sql(
            "SELECT allocation_status, owner_team, application, model, sum(cost) FROM lines "
            "GROUP BY ALL"
        ):
            if status == "shared":
                weights, _ = shared_weights(apps[application].shared, direct)
                for receiver, part in split_exact(cost, weights).items():
                    result[(receiver, model)] += part
            elif status in UNALLOCATED_STATUSES:
                result[("(unallocated)", model)] += cost
            else:
                result[(team, model)] += cost
        return {k: v for k, v in result.items() if v > 0}

    def spend_by_team_chart(self) -> Html:
        teams = [t.id for t in self.ledger.workspace.registry.teams]
        title = f"Spend by owner, stacked by model — {self.ledger.period.label}"
        own, unallocated = self.cents
        fig = charts.spend_by_team_chart(
            self.team_model_costs(),
            charts.team_colours(teams),
            self.currency,
            title,
            {**own, "(unallocated)": unallocated},
        )
        return charts.figure_html(fig, title)

    def coverage_chart(self) -> Html:
        title = "Allocation coverage by status"
        return charts.figure_html(
            charts.coverage_chart(self.cost_by_status, self.currency, title), title
        )

    # --- unit economics, budgets, anomalies, chargeback review ---------------------------------

    def _none_configured(self, what: str, key: str, example: str) -> Html:
        return Html(
            f'<p class="ak-empty">No {html.escape(what)} configured: name a file as '
            f"<code>{html.escape(key)}</code> in kit.yaml ({html.escape(example)}).</p>"
        )

    def unit_economics(self) -> Html:
        units = self.analysis.unit_costs if self.analysis else []
        if not units:
            return self._none_configured("cost units", "cost_units", "see the README")
        rows = []
        for u in units:
            if u.definition_changed:
                change = "definition changed"
            elif u.change_pct is None:
                change = "—"
            else:
                change = signed_percent(
                    pct_of(u.unit_cost - u.previous_unit_cost, u.previous_unit_cost)
                )
            signed_on = str(u.signed_off_on).replace("-", "\u2011")  # the date never wraps
            rows.append(
                (
                    u.name,
                    f"{u.numerator_filter} ÷ {u.denominator_kind}",
                    self._money(u.numerator_cost),
                    _denominator_text(u.denominator_value, u.denominator_kind),
                    unit_money(u.unit_cost, self.currency),
                    unit_money(u.previous_unit_cost, self.currency),
                    change,
                    f"{u.owner} / {u.signed_off_by}, {signed_on}",
                    u.note or "",
                )
            )
        table = html_table(
            ["Unit", "Definition (numerator ÷ denominator)", "Numerator", "Denominator",
             "Unit cost", "Previous period", "Change", "Owner / signed off", "Note"],
            rows,
            numeric=(2, 3, 4, 5, 6),
        )  # fmt: skip
        return table + Html(
            '<p class="ak-note">A numerator is the priced cost of the ledger requests whose tags '
            "match its filter, as logged: billable calls in any allocation status, without "
            "shares of shared applications. It can therefore differ from the same team's or "
            "application's allocated cost above.</p>"
        )

    def unit_cost_trend_chart(self) -> Html:
        trends = self.analysis.trends if self.analysis else {}
        if not trends:
            return Html("")
        title = "Unit cost by period (hollow red ring: definition changed"
        understated = any(p[3] for points in trends.values() for p in points)
        title += "; orange ring: understated, unpriced requests left out)" if understated else ")"
        return charts.figure_html(charts.unit_cost_trend_chart(trends, self.currency, title), title)

    def budgets(self) -> Html:
        lines = self.analysis.budgets if self.analysis else []
        if not lines:
            return self._none_configured("budgets", "budgets", "see the README")
        prorated = lines[0].budget_basis != "month"
        common, whys = _said_once(lines)
        rows = [
            (
                b.team,
                b.environments,
                *([self._money(b.monthly_budget)] if prorated else []),
                *self._budget_cells(b),
                self._money(b.other_environments_actual),
                why,
            )
            for b, why in zip(lines, whys, strict=True)
        ]
        table = html_table(
            ["Team", "Environments", *(["Monthly budget"] if prorated else []),
             "Budget" + (" (prorated)" if prorated else ""), "Actual", "Used", "Forecast",
             "Status", "Other environments", "Why"],
            rows,
            numeric=(2, 3, 4, 5, 6, 8) if prorated else (2, 3, 4, 5, 7),
            row_classes=[f"ak-status-{b.status}" for b in lines],
        )  # fmt: skip
        if common:
            table += Html(f'<p class="ak-note">For every budget: {html.escape(common)}.</p>')
        if not prorated:
            return table
        basis = lines[0].budget_basis.removeprefix("prorated: ")
        note = (
            f'<p class="ak-note">Budgets are monthly amounts; {self.ledger.period.label} takes '
            f"each day's share of its own month: {html.escape(basis)} of the monthly budget.</p>"
        )
        return Html(table.text + note + self._month_to_date().text)

    def _budget_cells(self, b) -> tuple[str, ...]:
        """Budget, actual, used, forecast and status of a BudgetLine, as the tables show them."""
        used = percent(pct_of(b.actual, b.budget))
        return (self._money(b.budget), self._money(b.actual), used, self._money(b.forecast),
                b.status)  # fmt: skip

    def _month_to_date(self) -> Html:
        """A week or date range's month to date: each budget's whole month against its spend
        from the 1st through the period's last day."""
        month = self.analysis.month_budgets if self.analysis else []
        if not month:
            return Html("")
        last = month_to_date_period(self.ledger.period).last_day
        common, whys = _said_once(month)  # "month to date through …": said once, above
        rows = [
            (b.team, b.environments, *self._budget_cells(b), why)
            for b, why in zip(month, whys, strict=True)
        ]
        table = html_table(
            ["Team", "Environments", f"Budget {month[0].period}", "Month to date", "Used",
             "Forecast for the month", "Status", "Why"],
            rows,
            numeric=(2, 3, 4, 5),
            row_classes=[f"ak-status-{b.status}" for b in month],
        )  # fmt: skip
        first = last.replace(day=1)
        intro = (
            f"<p><strong>Month to date: {month[0].period} through {last.day} {last:%b}.</strong> "
            f"Each budget for the whole month against the spend from {first.day} {first:%b} "
            f"through {last.day} {last:%b}, and the forecast for the month at that rate "
            "(<code>budgets.csv</code>, columns <code>month_*</code>)"
            + (f"; for every budget: {html.escape(common)}" if common else "")
            + ".</p>"
        )
        return Html(intro + table.text)

    def budget_chart(self) -> Html:
        lines = self.analysis.budgets if self.analysis else []
        if not lines:
            return Html("")
        title = f"Actual vs budget — {self.ledger.period.label}"
        rows = [(b.team, b.budget, b.actual, b.forecast, b.status, _bar_label(b)) for b in lines]
        fig = charts.budget_bullet_chart(rows, self.analysis.thresholds_pct, self.currency, title)
        return charts.figure_html(fig, title)

    def anomalies(self) -> Html:
        found = self.analysis.anomalies if self.analysis else []
        notes = [a for a in found if a.metric == "history"]
        flagged = [a for a in found if a.metric != "history"]
        parts = [
            Html(f'<div class="ak-banner ak-neutral">{html.escape(a.explanation)}</div>')
            for a in notes
        ]
        labels = {
            "spend": "spend spike",
            "requests": "volume spike",
            "input_output_ratio": "input/output ratio shift",
            "new": "new",
            "daily_spend": "day-level spike",
        }
        rows = [
            (labels.get(a.metric, a.metric), f"{a.scope} {a.key}",
             "" if a.score is None else f"{a.score}", a.explanation)
            for a in flagged
        ]  # fmt: skip
        parts.append(
            html_table(
                ["Kind", "Where", "Score", "Explanation"],
                rows,
                numeric=(2,),
                empty="No day-level spikes inside the period."
                if notes
                else "No anomalies: spend, volume and token mix are in line with the baseline.",
            )
        )
        if rows:
            parts.append(
                Html(
                    '<p class="ak-note">Score: a modified z-score, (actual − median of the earlier '
                    "periods) ÷ max(1.4826 × their median absolute deviation, 10% of the median); "
                    f"flagged from {SCORE_CUTOFF} up when the change is also at least "
                    f"{MATERIALITY * 100:.0f}% of the period's total.</p>"
                )
            )
        return sum(parts[1:], parts[0])

    def chargeback_review(self) -> Html:
        rows_ = self.analysis.chargeback if self.analysis else []
        own = self.cents[0]
        rows = [
            (r.team, r.cost_center, self._money(own.get(r.team, Decimal(0))), r.allocation_rule,
             r.review_result.replace("_", " "), r.reasons or "—", r.follow_up_owner or "—")
            for r in rows_
        ]  # fmt: skip
        counts = {
            k: sum(r.review_result == k for r in rows_) for k in ("pass", "needs_follow_up", "fail")
        }
        summary = tiles(
            [
                ("Pass", count_text(counts["pass"]), "ok"),
                ("Needs follow-up", count_text(counts["needs_follow_up"]),
                 "warn" if counts["needs_follow_up"] else "neutral"),
                ("Fail", count_text(counts["fail"]), "bad" if counts["fail"] else "neutral"),
            ]
        )  # fmt: skip
        table = html_table(
            ["Team", "Cost center", "Cost", "Allocation rule", "Result", "Reasons",
             "Follow-up owner"],
            rows,
            numeric=(2,),
            total=("All teams", "", self._money(self.shown_allocated), "", "", "", ""),
            row_classes=[f"ak-status-{r.review_result}" for r in rows_],
            empty="No teams in the registry.",
        )  # fmt: skip
        return summary + table

    # --- exception queue --------------------------------------------------------------------

    def exception_reasons(self) -> Html:
        rows = self.exceptions_by_reason()
        shown = self.shown_exception_costs()
        body = [
            (reason.replace("_", " "), count_text(n), self._exception_cost(reason, shown[reason]),
             IN_LEDGER[reason], ACTIONS[reason])
            for reason, n, _ in rows
        ]  # fmt: skip
        unallocated = [(n, shown[r]) for r, n, _ in rows if r in UNALLOCATED_STATUSES]
        if len(body) > 1:  # every row of the queue, as the summary counts them
            all_rows = ("All exception rows", count_text(sum(n for _, n, _ in rows)), "", "", "")
            body.append(all_rows)
        total = (
            (
                "Unallocated, in the ledger total",
                count_text(sum(n for n, _ in unallocated)),
                self._money(sum((cost for _, cost in unallocated), Decimal(0))),
                "",
                "",
            )
            if unallocated
            else None
        )
        return html_table(
            ["Reason", "Rows", "Cost", "In the ledger total?", "What to do"],
            body,
            numeric=(1, 2),
            total=total,
            empty="The exception queue is empty.",
            row_classes=[""] * len(rows) + ["ak-subtotal"] * (len(body) - len(rows)),
        )

    def _exception_cost(self, reason: str, cost: Decimal | None) -> str:
        """An unpriced request has no cost, which is not a zero."""
        return "unknown (no price)" if reason == "unpriced" else self._money(cost)

    def exceptions_by_caller(self, limit: int = 15) -> Html:
        """Who sends the queue's rows: caller, tags as received and reason, costliest first (a
        cost unknown for want of a price before any), the `limit` largest groups."""
        rows = self._sql(
            "SELECT *, count(*) OVER () FROM ("
            "SELECT COALESCE(caller_id, '(none)') AS caller, COALESCE(team, '(none)') AS team, "
            "COALESCE(application, '(none)') AS app, reason, count(*) AS n, sum(cost) AS cost "
            "FROM exception_queue GROUP BY ALL) "
            "ORDER BY reason IN ('duplicate', 'out_of_period'), cost DESC NULLS FIRST, n DESC, "
            f"caller, team, app, reason LIMIT {int(limit)}"
        )
        outside = {"duplicate": "not in the total", "out_of_period": "another period"}
        body = [
            (caller, team, app, reason.replace("_", " "), count_text(n),
             f"{self._money(cost)} ({outside[reason]})" if reason in outside
             else self._exception_cost(reason, cost))
            for caller, team, app, reason, n, cost, _ in rows
        ]  # fmt: skip
        table = html_table(
            ["Caller", "Team tag", "Application tag", "Reason", "Rows", "Cost"],
            body,
            numeric=(4, 5),
            empty="No caller has exceptions.",
        )
        groups = rows[0][6] if rows else 0
        if groups <= limit:
            return table
        return table + Html(
            f'<p class="ak-note">The {limit} largest of {count_text(groups)} groups; every row, '
            "with its caller, endpoint and source file, is in "
            "<code>evidence/exceptions.csv</code>.</p>"
        )

    def top_exceptions(self, limit: int = 10) -> Html:
        rows = self._sql(
            "SELECT request_id, reason, strftime(timestamp, '%Y-%m-%d %H:%M'), "
            "COALESCE(team, ''), COALESCE(application, ''), model, cost FROM exception_queue "
            f"WHERE list_contains({list(UNALLOCATED_STATUSES)}, reason) "
            f"ORDER BY cost DESC NULLS LAST, request_id LIMIT {int(limit)}"
        )
        body = [
            (r[0], r[1].replace("_", " "), *r[2:6], self._exception_cost(r[1], r[6])) for r in rows
        ]
        return html_table(
            ["Request", "Reason", "Time (UTC)", "Team tag", "Application tag", "Model", "Cost"],
            body,
            numeric=(6,),
            empty="No unallocated rows: every request in the ledger total has an owner.",
        )

    # --- reconciliation ---------------------------------------------------------------------

    def _no_comparison(self) -> str:
        """Why there is no billed total or variance: no bill, or one that cannot be cut to the
        period (a monthly bill against a week)."""
        codes = {r.get("code") for r in (self.reconciliation or {}).get("reasons", [])}
        unlike = {"charge_period_exceeds_period", "currency_mismatch"}
        return "not comparable" if codes & unlike else "no bill"

    def reconciliation_banner(self) -> Html:
        rec = self.reconciliation
        if rec is None:
            return Html(
                '<div class="ak-banner ak-neutral"><strong>No bill to reconcile.</strong> '
                "Add a <code>billing</code> section to kit.yaml to compare the ledger with the "
                "provider's bill.</div>"
            )
        result = rec["result"]
        tone = {"pass": "ok", "fail": "bad"}.get(result, "warn")
        reasons = rec.get("reasons", [])
        small = [r for r in reasons if r.get("code") == "token_mismatch"]
        folded = small if len(small) > 2 else []

        def item(r: dict) -> str:
            text = r.get("sentence") or r.get("message") or r.get("code", "")
            return f"<li>{html.escape(text)}</li>"

        sentences = ""
        for r in reasons:
            if r is (folded[0] if folded else None):
                amount = sum(abs(Decimal(f["numbers"]["variance"])) for f in folded)
                sentences += (
                    f"<li><details><summary>{len(folded)} token counts differ by model and "
                    f"direction ({self._money(amount)} in all): each explained</summary><ul>"
                    + "".join(item(f) for f in folded)
                    + "</ul></details></li>"
                )
            elif r not in folded:
                sentences += item(r)
        head = f"<strong>Reconciliation: {html.escape(result.upper())}</strong> — ledger " + (
            f"{self._money(Decimal(rec['ledger_cost']))} vs billed usage "
            f"{self._money(_dec(rec.get('billed_cost')))}, variance "
            f"{self._money(_dec(rec.get('variance')))} ({percent(_pct(rec))}); tolerance "
            f"{percent(Decimal(str(rec.get('tolerance_pct', 1))), 2)}."
            if rec.get("billed_cost") is not None
            else f"{self._money(Decimal(rec['ledger_cost']))}; no billed total or variance "
            f"({self._no_comparison()})."
        )
        return Html(f'<div class="ak-banner ak-{tone}">{head}<ul>{sentences}</ul></div>')

    def reconciliation_lines(self) -> Html:
        rec = self.reconciliation or {}
        body = [
            (
                line.get("model") or "(no model id)",
                (line.get("direction") or "all directions").replace("_", " "),
                _quantity(line.get("ledger_tokens"), line.get("unit")),
                _quantity(line.get("billed_tokens"), line.get("unit")),
                self._exception_cost("unpriced", None)
                if line.get("ledger_cost") is None and line.get("billed_cost") is not None
                else self._money(_dec(line.get("ledger_cost"))),
                self._money(_dec(line.get("billed_cost"))),
                self._unpriced_variance(line)
                if line.get("ledger_cost") is None and line.get("billed_cost") is not None
                else self._money(_dec(line.get("variance"))),
                percent(_variance_pct(line), 2),
                (line.get("finding") or "").replace("_", " "),
            )
            for line in rec.get("lines", [])
        ]
        return html_table(
            [
                "Model",
                "Direction",
                "Ledger tokens",
                "Billed tokens",
                "Ledger cost",
                "Billed cost",
                "Variance",
                "Variance %",
                "Finding",
            ],
            body,
            numeric=(2, 3, 4, 5, 6, 7),
            empty="No reconciliation lines.",
            row_classes=[
                "" if line.get("direction") else "ak-subtotal" for line in rec.get("lines", [])
            ],
            total=(
                "All usage",
                "",
                "",
                "",
                self._money(_dec(rec.get("ledger_cost"))),
                self._money(_dec(rec.get("billed_cost"))),
                self._money(_dec(rec.get("variance"))),
                percent(_variance_pct(rec), 2),
                "",
            )
            if rec.get("lines")
            else None,
        )

    def invoice_bridge(self) -> Html:
        """From the chargeback to the bill: allocated + unallocated = the ledger total; plus
        what the bill charges beyond it for usage; = billed usage; plus tax, credits and
        corrections = what the bill charges for the period. Shown when the bill is comparable."""
        rec = self.reconciliation
        if not rec or rec.get("billed_cost") is None:
            return Html("")
        ledger_total = self.ledger.ledger_cost
        billed = Decimal(rec["billed_cost"])
        # a charge in another currency, or for more than the period, is shown, never added
        added, aside = bill_charges(rec, self.currency)

        def label(r: dict) -> str:
            return ": ".join(filter(None, [r.get("charge_category"), r.get("description")]))

        charges = [(label(r), Decimal(r["amount"])) for r in added]
        prepaid = prepaid_drawdown(rec)
        if prepaid:  # billed with the commitment's purchase: not billed again as usage
            charges.insert(0, ("Usage paid from a prepaid commitment (in its purchase)", -prepaid))
        apart = [
            (f"{label(r)} ({why})", money(Decimal(r["amount"]), r.get("currency") or self.currency))
            for r, why in aside
        ]
        total = billed + sum((amount for _, amount in charges), Decimal(0))
        incomplete = any(r.get("code") in INCOMPLETE_BILL for r in rec.get("reasons") or [])
        what = (
            f"= What the bill charges (it does not cover all of {self.ledger.period.label})"
            if incomplete
            else f"= The bill for {self.ledger.period.label}"
            if self.ledger.period.kind == "month"
            else f"= Billed for {self.ledger.period.label}"  # lines of the month's bill(s)
        )
        # the ledger's side as every table shows it (`cents`); the difference is what takes the
        # ledger total shown to the billed usage shown
        shown_total = rounded(ledger_total, self.currency)
        rows = [
            ("Allocated to teams (their own cost)", self._money(self.shown_allocated)),
            ("Unallocated (no owner yet)", self._money(self.shown_unallocated)),
            ("= Ledger total, computed", self._money(ledger_total)),
            (
                "Billed usage − ledger total",
                self._money(rounded(billed, self.currency) - shown_total),
            ),
            ("= Billed usage", self._money(billed)),
            *[(label, self._money(amount)) for label, amount in charges],
            (what, self._money(total)),
            *apart,
        ]
        classes = ["", "", "ak-subtotal", "", "ak-subtotal", *[""] * len(charges), "ak-total"]
        classes += [""] * len(apart)
        table = html_table(
            ["From the ledger to the bill", "Amount"],
            rows,
            numeric=(1,),
            row_classes=classes,
        )
        schedule = self.analysis.charges if self.analysis else None
        if schedule is not None and schedule.spread:
            spread = listed([ITEM_WORDS[i] for i in schedule.spread])
            text = (
                f"The chargeback to the bill (the section of that name) spreads {spread} across "
                "the teams in proportion to their own cost; the rest stays with the reviewer"
            )
            held = [i for i in schedule.spread if schedule.reviewer.shares.get(i)]
            text += (
                f", with the part of the {listed([ITEM_WORDS[i] for i in held])} on the spend it "
                "keeps."
                if held
                else "."
            )
        else:
            text = (
                "Teams are charged their own cost. The difference to billed usage, tax, credits "
                "and corrections stay with the reviewer, to settle with the provider or to spread "
                "by finance policy (kit.yaml <code>chargeback.spread</code>)."
            )
        note = Html(f'<p class="ak-note">{text}</p>')
        sums = [([billed, *(amount for _, amount in charges)], total)]
        return table + note + rounding_note(sums, self.currency)

    def _unpriced_variance(self, line: dict) -> str:
        """An unpriced model's variance as the headline counts it: its billed cost against
        nothing computed (the variance chart draws the same bar); unknown when nothing of it
        is billed either."""
        billed = Decimal(line["billed_cost"])
        if not billed:
            return "unknown (no price)"
        return f"{self._money(-billed)} (no price)"

    def other_charges(self) -> Html:
        rec = self.reconciliation or {}
        rows = [*rec.get("other_charges", []), *rec.get("corrections", [])]
        body = [
            (
                r.get("charge_category") or r.get("category"),
                r.get("charge_class") or "",
                r.get("description") or "",
                self._charged_for(r),
                money(
                    _dec(r.get("billed_cost") or r.get("amount")),
                    r.get("currency") or self.currency,
                ),
            )
            for r in rows
        ]
        columns = ["Category", "Class", "Description", "Charged for", "Amount"]
        if not any(r.get("charge_class") for r in rows):  # FOCUS ChargeClass: corrections only
            columns.pop(1)
            body = [(b[0], *b[2:]) for b in body]
        return html_table(
            columns,
            body,
            numeric=(len(columns) - 1,),
            empty="No tax, credit, adjustment or correction lines on the bill.",
        )

    def _charged_for(self, charge: dict) -> str:
        """The charge period of a bill line, last day inclusive, marked when it reaches outside
        the review period (the whole charge is listed, not a prorated part)."""
        start = datetime.fromisoformat(charge["charge_period_start"])
        end = datetime.fromisoformat(charge["charge_period_end"])
        last = (end - timedelta(microseconds=1)).date()
        span = start.date().isoformat() + ("" if last == start.date() else f" to {last}")
        if self._reaches_beyond(charge):
            return f"{span} (whole charge, beyond {self.ledger.period.label})"
        return span

    def _reaches_beyond(self, charge: dict) -> bool:
        """Is the bill line not this period's: its charge period reaches outside the review
        period, and it is not on the period's own invoice (see `chargeback.bill_charges`)?"""
        period = self.ledger.period
        start = datetime.fromisoformat(charge["charge_period_start"])
        end = datetime.fromisoformat(charge["charge_period_end"])
        beyond = start < period.start.replace(tzinfo=None) or end > period.end.replace(tzinfo=None)
        record = {**(self.reconciliation or {}), "other_charges": [charge], "corrections": []}
        return beyond and not bill_charges(record, self.currency)[0]

    def recorded_spend(self) -> Html:
        """Where the kit's price and the gateway's recorded spend (LiteLLM's `spend`) disagree,
        per model, or that they agree."""
        from .recorded import recorded_spend_by_model

        tolerance = self.ledger.workspace.kit.reconciliation.tolerance_pct
        lines = recorded_spend_by_model(self.ledger.con, tolerance)
        if not lines:
            return Html(
                '<p class="ak-note">The ledger carries no cost recorded by the gateway '
                "(LiteLLM spend logs do), so there is no second opinion on the prices.</p>"
            )
        off = [line for line in lines if not line.agrees]

        def named(finding: str) -> tuple[int, str]:
            models = [html.escape(line.model) for line in off if line.finding == finding]
            return len(models), ", ".join(models)

        said = []
        for finding, words in (
            ("differs", "priced {} differently: {}"),
            ("unpriced", "priced {} the snapshot has no price for: {}"),
            ("partly recorded", "recorded a cost for only some calls of {}: {}"),
        ):
            n, names = named(finding)
            if n:
                said.append(words.format(counted(n, "model"), names))
        if off:
            head = (
                f'<div class="ak-banner ak-warn"><strong>The gateway {"; ".join(said)}.</strong> '
                "Check the pricing snapshot against the gateway's price table; the packet uses "
                "the snapshot.</div>"
            )
        else:
            head = (
                "<div class=\"ak-banner ak-ok\"><strong>The kit's prices and the gateway's "
                f"recorded spend agree</strong> for every model (within "
                f"{percent(Decimal(tolerance), 2)}).</div>"
            )
        body = [
            (
                line.model,
                f"{count_text(line.recorded_requests)} of {count_text(line.requests)}",
                self._money(line.kit_cost),
                self._money(line.recorded_cost),
                self._money(line.difference),
                percent(line.difference_pct, 2),
                line.finding,
            )
            for line in lines
        ]
        table = html_table(
            ["Model", "Requests recorded", "Kit price", "Recorded by the gateway",
             "Difference", "Difference %", "Finding"],
            body,
            numeric=(1, 2, 3, 4, 5),
            row_classes=["" if line.agrees else "ak-bad-row" for line in lines],
        )  # fmt: skip
        return Html(head) + table

    def counts(self) -> Html:
        c = self.ledger.counts
        rows = [
            ("Rows read", c.rows_read),
            ("Outside the period (excluded)", c.out_of_period),
            ("Identical duplicate copies (counted once)", c.duplicate_copies),
            ("Attempted requests", c.attempted),
            ("Logical calls (retries grouped)", c.logical_calls),
            ("Successful (2xx)", c.successful),
            ("Failed (not billable by default)", c.failed),
            *(
                [("Served from the gateway's cache (not billable)", c.served_from_cache)]
                if c.served_from_cache
                else []
            ),
            ("Billable", c.billable),
            ("Billable but unpriced", c.unpriced),
            ("Quarantined", c.quarantined),
        ]
        rec = self.reconciliation or {}
        if rec.get("billing_reported_count") is not None:
            rows.append(("Requests reported by the bill", rec["billing_reported_count"]))
        table = html_table(
            ["Count", "Requests"], [(k, count_text(v)) for k, v in rows], numeric=(1,)
        )
        if c.successful <= c.logical_calls:
            return table
        return table + Html(
            '<p class="ak-note">Logical calls count each idempotency_key (or, without one, each '
            "request_id) once, while attempts count every copy of a request_id logged with "
            "different content (each quarantined): so successful attempts can outnumber "
            "calls.</p>"
        )

    def daily_spend_chart(self) -> Html:
        rec = self.reconciliation or {}
        # with a daily bill, both sides as the reconciliation compares them: without the models
        # it cannot match (unpriced, on one side only)
        left_out = (rec.get("daily_leaves_out") or []) if rec.get("daily") else []
        ledger_daily = dict(
            self.ledger.con.execute(
                "SELECT day, sum(cost) FROM lines "
                "WHERE NOT COALESCE(list_contains(?, model), false) GROUP BY day",
                [left_out],
            ).fetchall()
        )
        billed = None
        title = f"Daily spend — {self.ledger.period.label}"
        if rec.get("daily"):
            billed = {
                datetime.fromisoformat(d["day"]).date(): Decimal(d["billed_cost"])
                for d in rec["daily"]
            }
            if left_out:
                title += f" (without {', '.join(left_out)})"
        fig = charts.daily_spend_chart(ledger_daily, billed, self.currency, title)
        return charts.figure_html(fig, title)

    def variance_chart(self) -> Html:
        rec = self.reconciliation or {}
        per_model = {
            line["model"] or "(no model id)": Decimal(line["variance"])
            for line in rec.get("lines", [])
            if not line.get("direction") and line.get("variance") is not None
        }
        # a model without a price has no variance, but its billed cost is part of the headline
        # one (the ledger cannot cost it): drawn apart, as what the ledger could not cost
        unpriced = {
            f"{line['model']} (no price)": (_dec(line.get("ledger_cost")) or Decimal(0))
            - Decimal(line["billed_cost"])
            for line in rec.get("lines", [])
            if not line.get("direction") and line.get("finding") == "unpriced"
        }
        if not per_model and not unpriced:
            return Html('<p class="ak-empty">No per-model variance to chart.</p>')
        title = f"Variance by model (ledger − billed) — {self.ledger.period.label}"
        fig = charts.variance_by_model_chart(per_model | unpriced, self.currency, title, unpriced)
        return charts.figure_html(fig, title)

    # --- data quality, provenance, sign-off --------------------------------------------------

    def data_quality(self) -> Html:
        """Every expectation suite with its results, in words a non-engineer can read."""
        c = self.ledger.counts
        rules = html_table(
            ["Pipeline rule", "Rows", "What happened"],
            [
                ("Identical logging duplicates", count_text(c.duplicate_copies),
                 "counted once; extra copies listed as duplicate"),
                ("Rows outside the period", count_text(c.out_of_period),
                 "excluded; counted per file below"),
                ("Quarantined rows", count_text(c.quarantined),
                 "kept in the total, unallocated, listed in the queue"),
                ("Billable but unpriced", count_text(c.unpriced),
                 "cost unknown, listed in the queue"),
            ],
            numeric=(1,),
        )  # fmt: skip
        own = set(self.ledger.period_files)
        files = html_table(
            ["Ledger file", "Rows in the period", "Rows outside", "Rows outside are"],
            [
                (f, count_text(inside), count_text(outside),
                 "—" if not outside else
                 "strays of this period's file: validated, listed in the queue" if f in own else
                 "another period's rows: only counted")
                for f, (inside, outside) in sorted(self.ledger.rows_by_file.items())
            ],
            numeric=(1, 2),
        )  # fmt: skip
        rules += files
        doc = self.validation
        if not doc:
            return rules + Html('<p class="ak-note">Expectation suites: not run.</p>')
        stats = doc["statistics"]
        summary = Html(
            f"<p>Great Expectations ran {stats['evaluated']} expectations in "
            f"{len(doc['suites'])} suites: {stats['successful']} met, {stats['failed']} not met"
            f"{', ' + str(stats['not_run']) + ' not run' if stats['not_run'] else ''}. The "
            "ledger suite checks the rows this review covers: every row in the period and the "
            "strays of its own files.</p>"
        )
        rows, classes = [], []
        for suite in doc["suites"]:
            for e in suite["expectations"]:
                result = {True: "met", False: "not met", None: "not run"}[e["success"]]
                mostly = (e.get("kwargs") or {}).get("mostly")
                if mostly is not None and e["success"] is not None:
                    share = (Decimal(str(mostly)) * 100).normalize()
                    result += f" (at least {share:f}% must pass)"
                unexpected = e["unexpected_count"]
                rows.append((
                    suite["name"] + (" (blocking)" if suite["blocking"] else ""),
                    e["name"].replace("_", " "),
                    result,
                    count_text(e["element_count"]),
                    count_text(unexpected) if unexpected is not None else "—",
                    percent(e["unexpected_percent"], 2)
                    if e["unexpected_percent"] is not None else "—",
                    e["handling"] or "—",
                    ", ".join(list(dict.fromkeys(map(str, e["sample_unexpected"])))[:3]),
                ))  # fmt: skip
                classes.append("ak-bad-row" if e["success"] is False else "")
        table = html_table(
            ["Suite", "Expectation", "Result", "Rows checked", "Failing rows",
             "Failing % of values", "Handling", "Examples"],
            rows,
            numeric=(3, 4, 5),
            row_classes=classes,
        )  # fmt: skip
        note = Html(
            '<p class="ak-note">Failing % is Great Expectations\' share of the rows with a value '
            "(blank values are not judged: 2 failing of 198 rows, 1 of them blank, is 1.02%); "
            "an expectation's <code>mostly</code> is judged on that share.</p>"
        )
        return rules + summary + table + note

    def provenance(self) -> Html:
        m = self.manifest
        snap = m["pricing_snapshot"]
        facts = [
            ("Pricing snapshot", snap["id"]),
            ("Prices read from", snap["source_url"]),
            ("Reviewed on / by", f"{snap['reviewed_on']} / {snap['reviewed_by']}"),
            ("Failed calls billable", "yes" if snap["failed_calls_billable"] else "no"),
            (
                "Period",
                f"{_utc(m['period']['start'])} to {_utc(m['period']['end'])} (end exclusive)",
            ),
            ("allocation-kit", m["kit_version"]),
            ("Engine", f"DuckDB {m['engine']['version']}, Python {m['engine']['python']}"),
            ("Parameters", json.dumps(m["parameters"])),
        ]
        inputs = html_table(
            ["Role", "File", "Bytes", "SHA-256"],
            [(i["role"], i["path"], count_text(i["bytes"]), i["sha256"]) for i in m["inputs"]],
            numeric=(2,),
            css_class="ak-table ak-hashes",
        )
        return html_table(["", ""], facts, css_class="ak-table ak-facts") + inputs

    @property
    def proposal(self) -> dict:
        """spend_review.json's `sign_off`: the proposed result and the findings behind it."""
        return (self.analysis.spend_review if self.analysis else {}).get("sign_off") or {
            "proposed_result": "needs_follow_up" if self.unallocated_cost else "pass",
            "findings": [],
        }

    def _charged(self) -> list[tuple[str, str]]:
        """The sign-off's lines of the chargeback to the bill: what teams are charged, what the
        reviewer keeps and what the schedule adds up to."""
        schedule = self.analysis.charges if self.analysis else None
        if schedule is None:
            return []
        charged = sum((line.charge for line in schedule.lines[:-1]), Decimal(0))
        what = "the bill" if schedule.against_bill else "the ledger total"
        lines = [("Charged to teams (the chargeback to the bill)", self._money(charged))]
        if schedule.reviewer.charge:
            lines.append(("Kept by the reviewer", self._money(schedule.reviewer.charge)))
        return [*lines, (f"Chargeback total (= {what})", self._money(schedule.footed))]

    def sign_off(self) -> Html:
        """The proposed result with every finding behind it, the amounts at stake and a form
        whose choices are the proposal's own words."""
        proposal = self.proposal
        status = proposal["proposed_result"]
        tone = {"fail": "bad", "needs_follow_up": "warn"}.get(status, "ok")
        facts = [
            (
                "Period",
                f"{self.ledger.period.label} ({self.ledger.period.first_day} to "
                f"{self.ledger.period.last_day}, UTC)",
            ),
            ("Proposed result", status.replace("_", " ")),
            ("Allocated to teams (their own cost)", self._money(self.shown_allocated)),
            ("Unallocated (no owner yet)", self._money(self.shown_unallocated)),
            ("Ledger total", self._money(self.ledger.ledger_cost)),
            *self._charged(),
            ("Reviewer role", self.reviewer_role),
            ("Prepared at (UTC)", self.generated_at.strftime("%Y-%m-%d %H:%M")),
        ]
        form = [
            (
                "Reviewer decision",
                "☐ pass: charge back as the chargeback to the bill shows",
            ),
            ("", "☐ needs follow-up: charge back, with each finding above owned and dated"),
            ("", "☐ fail: do not charge back until the failing findings are resolved"),
            ("Reviewer name", ""),
            ("Signature", ""),
            ("Date", ""),
        ]
        banner = Html(
            f'<div class="ak-banner ak-{tone}"><strong>Proposed sign-off: '
            f"{html.escape(status.replace('_', ' '))}</strong></div>"
        )
        findings = html_table(
            ["Result", "Finding", "Follow-up owner"],
            [
                (f["result"].replace("_", " "), f["finding"], f["follow_up_owner"] or "—")
                for f in proposal["findings"]
            ],
            row_classes=[f"ak-status-{f['result']}" for f in proposal["findings"]],
            empty="Nothing open: the bill reconciles, every request is owned and priced, no "
            "budget is exceeded and no anomaly is flagged.",
        )
        return (
            banner
            + findings
            + html_table(["", ""], facts, css_class="ak-table ak-facts")
            + html_table(
                ["", ""],
                form,
                css_class="ak-table ak-facts ak-form",
                row_classes=[""] * 3 + ["ak-sign"] * 3,
            )
            + self._recorded()
        )

    def _recorded(self) -> Html:
        """How the decision is recorded, and the period's sign-off log so far (its sign-offs
        and reopenings of earlier runs: this run's own are recorded after the packet)."""
        from .errors import InputError
        from .signoff import log_rows, read_log

        try:
            log = read_log(self.folder)
        except InputError as exc:
            log, unreadable = [], f" The period's review log is unreadable: {exc.line()}."
        else:
            unreadable = ""
        how = Html(
            '<p class="ak-note">Record the decision with <code>allocation-kit sign-off --config '
            f"kit.yaml --period {html.escape(self.ledger.period.label)} --result "
            "pass|needs_follow_up|fail --by NAME</code>. The record holds the SHA-256 of this "
            "folder's SHA256SUMS, so it approves exactly this packet and its evidence. A pass or "
            "needs follow-up locks the period: it is run again only with <code>--reopen "
            f"REASON</code>, which the review log (<code>sign_off.json</code>) records."
            f"{html.escape(unreadable)}</p>"
        )
        if not log:
            return how

        return (
            how
            + Html("<h4>Review log of the period's earlier runs</h4>")
            + html_table(["Recorded (UTC)", "Event", "By", "Note or reason"], log_rows(log))
        )


def _bar_label(line) -> str:
    """A budget bar's label: its share used, and why it is a warning when no threshold is
    crossed (the table's Why says it in full)."""
    used = percent(pct_of(line.actual, line.budget))  # as the table's Used column shows it
    if line.status != "warning" or line.threshold_crossed is not None:
        return used
    if "actual leaves out" in line.reason:
        return f"{used} · unpriced calls: actual short"
    return f"{used} · forecast over budget"


def _team_tone(row) -> str:
    """A team row's colour: the worse of its chargeback review and its budget."""
    if row.review_result == "fail" or row.budget_status == "exceeded":
        return "ak-status-fail"
    if row.review_result == "needs_follow_up" or row.budget_status == "warning":
        return "ak-status-warning"
    return ""


def _quantity(value: object, unit: str | None) -> str:
    """A bill line's quantity: tokens as a number, calls named ('1,233 calls')."""
    if value is None:
        return "—"
    return f"{count_text(value)} calls" if unit == "requests" else count_text(value)


def _said_once(lines: list) -> tuple[str, list[str]]:
    """(the reasons every one of several BudgetLines gives, joined; each line's other
    reasons): what a table's every row would repeat ("data through …: forecast at …") is said
    once beside it."""
    reasons = [b.reason.split("; ") if b.reason else [] for b in lines]
    common = (
        [r for r in reasons[0] if all(r in other for other in reasons)] if len(lines) > 1 else []
    )
    return "; ".join(common), ["; ".join(r for r in why if r not in common) for why in reasons]


def _denominator_text(value: Decimal, kind: str) -> str:
    """The denominator with its unit: '14,840 tickets_closed', '31 distinct job_id',
    '27,023.704 × 1,000 output_tokens', '11,424 requests'."""
    number = _number_text(value)
    if kind.startswith("events: "):
        return f"{number} {kind.removeprefix('events: ')}"
    tokens, per, n = kind.partition(" per ")
    if per:
        return f"{number} × {n} {tokens}"
    return f"{number} {kind}"


def _number_text(value: Decimal) -> str:
    """A denominator for people: whole numbers with separators, fractions as they are."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,f}"


def _utc(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%d %b %Y %H:%M UTC")


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _pct(rec: dict | None) -> Decimal | None:
    return _variance_pct(rec) if rec else None


def _variance_pct(record: dict) -> Decimal | None:
    """The variance in percent of billed cost, from the exact amounts (the record's
    variance_pct is rounded to 4 places already: shown from it, it would round twice)."""
    variance, billed = _dec(record.get("variance")), _dec(record.get("billed_cost"))
    if variance is not None and billed:
        return pct_of(variance, billed)
    return _dec(record.get("variance_pct"))


def period_review(
    config: str | Path,
    period: str,
    out: str | Path = "reports",
    reviewer_role: str = "",
    period_dir: str | Path = "",
    reopen: str = "",
) -> Review:
    """Run the period and write its evidence; the Review the packet notebook shows.

    With `period_dir` (as `allocation-kit run` passes) the evidence goes there; otherwise it is
    written atomically to OUT/PERIOD, replacing the previous output only when complete (and a
    signed-off period only with a `reopen` reason).
    """
    workspace = load_workspace(config)
    parsed = parse_period(period)
    out = Path(out) if Path(out).is_absolute() else workspace.root / out
    reviewer_role = reviewer_role or workspace.kit.review.reviewer_role
    parameters = {
        "config": str(config),
        "period": parsed.label,
        "out": str(out),
        "reviewer_role": reviewer_role,
    }

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    def run(folder: Path) -> Review:
        ledger = period_ledger(workspace, parsed, progress=progress)
        written = write_evidence(folder, ledger, parameters, progress, reviewer_role)
        return Review(
            ledger=ledger,
            manifest=written.manifest,
            folder=folder,
            reviewer_role=reviewer_role,
            generated_at=datetime.now(UTC),
            reconciliation=written.reconciliation,
            validation=written.validation,
            analysis=written.analysis,
        )

    if period_dir:  # `run`'s own folder, under its lock: never a period folder itself
        if not Path(period_dir).name.startswith(f".{parsed.label}.partial-"):
            raise ConfigError(
                None, "period_dir", f"{period_dir}: `allocation-kit run` sets it to its "
                "temporary folder; leave it empty to write OUT/PERIOD"
            )  # fmt: skip
        return run(Path(period_dir))
    reason = reopen_reason(reopen, "reopen") if reopen else None
    journal = workspace_journal(workspace)
    restart = check_journal(journal, out, parsed.label, reason is not None)
    with contextlib.ExitStack() as journaling:  # locked before the folder lands (see `run`)
        with atomic_period_folder(out, parsed.label, reopen=reason, role=reviewer_role) as folder:
            review = run(folder)
            written = record_run(folder, parsed.label, reviewer_role, reason)  # no SHA256SUMS
            journaling.enter_context(journal_lock(journal))
        journal_records(journal, out, parsed.label, written, restart)
    review.folder = out / parsed.label
    write_index(out)  # its sign-off and lock as they are now
    return review
