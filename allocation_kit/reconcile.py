"""Reconcile: compare the period's ledger with the provider's bill, in money and in tokens.

Inputs are the ledger's `lines` table and the bill's `billing_lines` table (see `billing`), both
on the period ledger's DuckDB connection; SQL only sums them, all ratios are Python Decimal.

What is compared: the bill's usage charges (ChargeCategory Usage, not corrections) whose charge
period overlaps the review period, against the ledger's billable calls. Totals, per model, per
model × token direction where the bill has directions, and per day where the bill charges by
day (or finer). Tax, credits, adjustments and purchases are listed beside as `other_charges`;
corrections (ChargeClass Correction) as `corrections`; neither enters the variance.

Variance = ledger − billed; variance_pct = variance / billed × 100, rounded half-up to 4 places
(None when billed is zero and the ledger is not). Tolerances are compared exactly, without the
rounding: |variance| × 100 > tolerance × |billed|.

The verdict, in this order:

1. `inconclusive` when nothing can be compared: no bill, no usage lines in the period, a bill in
   another currency, billing periods that do not cover the review period, or usage charged for
   periods reaching outside it (a monthly bill against a weekly review);
2. `fail` when the models both sides have (and the ledger fully prices) differ by more than the
   tolerance, or are billed zero against a non-zero ledger;
3. `inconclusive` when part of the spend cannot be matched: billed models missing from the
   ledger, ledger models missing from the bill, unpriced ledger models, billed usage without a
   model, or billed usage the ledger cannot compute (no token direction, e.g. cache storage);
4. `pass` otherwise.

Judging step 2 on the matched models keeps a real overcharge a `fail` even when an unmatched
model is present, and keeps an unmatched model from posing as an overcharge. Every reason has a
machine-readable code, subject, effect and numbers, and a sentence for a finance reviewer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

import duckdb

from .billing import BILLING_COLUMNS, CHARGE_CATEGORIES, BillingLoaded
from .periods import Period
from .pipeline import PeriodLedger, timestamp_sql
from .present import listed
from .price import DIRECTIONS

__all__ = [
    "RECONCILIATION_LINE_COLUMNS",
    "RESULTS",
    "BilledUsage",
    "DailyLine",
    "LedgerUsage",
    "OtherCharge",
    "Reason",
    "Reconciliation",
    "ReconciliationLine",
    "beyond_tolerance",
    "billed_usage",
    "ledger_usage",
    "reconciliation",
    "reconciliation_lines",
    "reconciliation_lines_rows",
    "reconciliation_record",
    "variance_pct",
]

RESULTS = ("pass", "fail", "inconclusive")
TOKEN_DIRECTIONS = ("uncached_input", "cached_input", "cache_write", "output")
OTHER = "other"  # billed usage of a model with no token direction (e.g. context cache storage)
RECONCILIATION_LINE_COLUMNS = (
    "period",
    "level",
    "model",
    "direction",
    "unit",
    "ledger_tokens",
    "billed_tokens",
    "ledger_cost",
    "billed_cost",
    "variance",
    "variance_pct",
    "finding",
)
PCT_PLACES = Decimal("0.0001")
MONEY_PLACES = Decimal("1e-12")  # the ledger's DECIMAL(38, 12)
_EXACT = Context(prec=80, rounding=ROUND_HALF_UP)
_ZERO = Decimal(0)
_LABELS = {
    None: "tokens",
    "uncached_input": "uncached input tokens",
    "cached_input": "cached input tokens",
    "cache_write": "cache write tokens",
    "output": "output tokens",
    "per_call": "calls",
    OTHER: "other usage",
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
_UNMATCHED = {"not_in_bill", "not_in_ledger", "unpriced", "no_model"}  # model-level findings


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why the verdict is what it is: a code, what it is about, its numbers and a sentence."""

    code: str
    effect: str  # fail | inconclusive | info: what this reason alone implies
    subject: str  # total, a model, "model direction", a currency, a period
    numbers: dict[str, object]  # exact decimal text, integers, ISO dates, None
    message: str


@dataclass(frozen=True)
class ReconciliationLine:
    """One model (level `model`, direction None) or one model × direction (level `direction`)."""

    level: str
    model: str | None
    direction: str | None
    unit: str | None  # tokens | requests (per_call lines, per-call-only models) | None
    ledger_tokens: int | None
    billed_tokens: Decimal | None  # None: the bill gives no quantity in this unit
    ledger_cost: Decimal
    billed_cost: Decimal
    variance: Decimal
    variance_pct: Decimal | None
    # match, within_tolerance, price_mismatch, token_mismatch, cost_mismatch, not_in_bill,
    # not_in_ledger, unpriced, no_model, not_computable. A model line is judged without its
    # billed usage of no token direction (the `other` line, not_computable).
    finding: str
    # billable calls of the model without a price in effect: its ledger cost leaves them out, so
    # the line's ledger cost is only its priced calls' and its variance is unknown
    unpriced_requests: int = 0


@dataclass(frozen=True)
class DailyLine:
    day: date
    ledger_cost: Decimal
    billed_cost: Decimal
    variance: Decimal
    variance_pct: Decimal | None


@dataclass(frozen=True)
class OtherCharge:
    """Bill lines beside usage, summed by category, class, description and currency."""

    charge_category: str
    charge_class: str | None
    description: str | None
    currency: str
    amount: Decimal
    bill_lines: int
    charge_period_start: datetime
    charge_period_end: datetime
    # the invoice's billing period, when the bill has one: what the chargeback books it to
    billing_period_start: datetime | None = None
    billing_period_end: datetime | None = None


@dataclass(frozen=True)
class LedgerUsage:
    """The ledger's billable usage of one model: quantity and cost per direction."""

    model: str
    requests: int
    unpriced_requests: int
    quarantined_requests: int
    quantity: dict[str, int]  # direction -> tokens (requests for per_call)
    cost: dict[str, Decimal]  # direction -> cost
    # request_ids logged more than once with different content (quarantined: every copy counts)
    # and, per direction, the fewest and most tokens their copies add beyond the one a provider
    # bills (which copy it billed is unknown)
    conflicting_ids: int = 0
    beyond_one_copy: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def total_cost(self) -> Decimal:
        return sum(self.cost.values(), _ZERO)


@dataclass(frozen=True)
class BilledUsage:
    """The bill's usage of one model (None: lines without a model id) per direction."""

    model: str | None
    quantity: dict[str | None, Decimal | None]  # direction (None: none given) -> quantity
    units: dict[str | None, str | None]  # direction -> tokens | requests | None
    cost: dict[str | None, Decimal]
    bill_lines: int
    meters: tuple[str, ...]  # SkuMeter / description of lines without a direction

    @property
    def total_cost(self) -> Decimal:
        return sum(self.cost.values(), _ZERO)

    @property
    def has_directions(self) -> bool:
        return any(d is not None for d in self.cost)


@dataclass(frozen=True)
class Reconciliation:
    """The comparison of one period's ledger with the bill, and its verdict."""

    period: Period
    currency: str
    ledger_cost: Decimal
    billed_cost: Decimal  # usage only
    variance: Decimal
    variance_pct: Decimal | None
    tolerance_pct: Decimal
    result: str
    reasons: list[Reason]
    lines: list[ReconciliationLine]
    daily: list[DailyLine] | None  # None when the bill does not charge by day
    other_charges: list[OtherCharge]
    corrections: list[OtherCharge]
    counts: dict[str, int]
    total_calls_logged: int
    billing_reported_count: int | None
    billing_currencies: list[str] = field(default_factory=list)
    # which bill the period's lines are on, for the books: invoice_issuer, billing_account_id,
    # invoice_id -> their distinct values (FOCUS InvoiceIssuerName, BillingAccountId, InvoiceId)
    bill_references: dict[str, list[str]] = field(default_factory=dict)
    has_bill: bool = True  # False: kit.yaml names no bill
    # False: no bill, or one that cannot be cut to the period: billed cost and variance unknown
    comparable: bool = True
    # the models `daily` leaves out on both sides: those the verdict cannot match (unpriced,
    # on one side only), so a day's variance is what both sides price
    daily_leaves_out: list[str] = field(default_factory=list)


# --- arithmetic ---------------------------------------------------------------------------------


def variance_pct(variance: Decimal, billed: Decimal) -> Decimal | None:
    """variance / billed × 100, half-up to 4 places; 0 when both are 0, None when billed is 0."""
    if billed == 0:
        return Decimal("0.0000") if variance == 0 else None
    with localcontext(_EXACT):
        return (variance * 100 / billed).quantize(PCT_PLACES)


def beyond_tolerance(variance: Decimal, billed: Decimal, tolerance_pct: Decimal) -> bool:
    """Is |variance| more than tolerance_pct of |billed|? Exact: no division, no rounding."""
    if billed == 0:
        return variance != 0
    with localcontext(_EXACT):
        return abs(variance) * 100 > tolerance_pct * abs(billed)


def _money_exact(value: Decimal) -> Decimal:
    with localcontext(_EXACT):
        return value.quantize(MONEY_PLACES)


# --- reading the two sides ----------------------------------------------------------------------


def ledger_usage(
    con: duckdb.DuckDBPyConnection,
    per_call_models: set[str],
    days: tuple[date, date] | None = None,
) -> dict[str, LedgerUsage]:
    """Billable usage per model from `lines`: tokens and cost per direction (priced or not),
    on the days from `days[0]` to `days[1]` when given (those a daily bill covers).

    Per-call directions count billable requests; they are kept for models priced per call (and
    added later for models the bill charges per call).
    """
    within = f"day BETWEEN DATE '{days[0]}' AND DATE '{days[1]}'" if days else "true"
    rows = con.execute(
        f"""SELECT model, sum(requests)::HUGEINT,
            COALESCE(sum(requests) FILTER (WHERE NOT priced), 0)::HUGEINT,
            COALESCE(sum(requests) FILTER (WHERE allocation_status = 'quarantined'), 0)::HUGEINT,
            sum(input_tokens - cached_input_tokens - cache_write_tokens)::HUGEINT,
            sum(cached_input_tokens)::HUGEINT, sum(cache_write_tokens)::HUGEINT,
            sum(output_tokens)::HUGEINT,
            sum(cost_uncached_input), sum(cost_cached_input), sum(cost_cache_write),
            sum(cost_output), sum(cost_per_call)
        FROM lines WHERE billable AND {within} GROUP BY model ORDER BY model"""
    ).fetchall()
    copies = _beyond_one_copy(con, within)
    usage = {}
    for model, requests, unpriced, quarantined, *values in rows:
        quantities = dict(zip(TOKEN_DIRECTIONS, (int(v) for v in values[:4]), strict=True))
        quantities["per_call"] = int(requests)
        costs = dict(zip(DIRECTIONS, values[4:], strict=True))
        keep = {
            d
            for d in DIRECTIONS
            if costs[d] != 0
            or (d != "per_call" and quantities[d] != 0)
            or (d == "per_call" and model in per_call_models)
        }
        usage[model] = LedgerUsage(
            model=model,
            requests=int(requests),
            unpriced_requests=int(unpriced),
            quarantined_requests=int(quarantined),
            quantity={d: quantities[d] for d in DIRECTIONS if d in keep},
            cost={d: costs[d] for d in DIRECTIONS if d in keep},
            conflicting_ids=copies.get(model, (0, {}))[0],
            beyond_one_copy=copies.get(model, (0, {}))[1],
        )
    return usage


def _beyond_one_copy(
    con: duckdb.DuckDBPyConnection, within: str = "true"
) -> dict[str, tuple[int, dict[str, tuple[int, int]]]]:
    """model -> (request_ids logged with different content, {direction: (fewest, most) tokens
    their billable copies of the model add beyond the single copy a provider bills}). The
    billed copy may be any copy: the fewest assumes the largest of this model, the most the
    smallest (or, when the id also has copies of another model, none of this model)."""
    directions = {
        "uncached_input": "input_tokens - cached_input_tokens - cache_write_tokens",
        "cached_input": "cached_input_tokens",
        "cache_write": "cache_write_tokens",
        "output": "output_tokens",
    }
    per_id = ", ".join(
        f"sum({e}) - max({e}) AS lo_{d}, "
        f"CASE WHEN count(*) < any_value(copies) THEN sum({e}) ELSE sum({e}) - min({e}) END "
        f"AS hi_{d}"
        for d, e in directions.items()
    )
    totals = ", ".join(f"sum(lo_{d})::HUGEINT, sum(hi_{d})::HUGEINT" for d in directions)
    rows = con.execute(
        f"""WITH copies AS (
            SELECT *, count(*) OVER (PARTITION BY request_id) AS copies FROM lines
            WHERE request_id IS NOT NULL AND allocation_status = 'quarantined'
                AND detail LIKE 'request_id logged % times with different content'
                AND {within}
        ), per_id AS (
            SELECT model, request_id, {per_id} FROM copies WHERE billable GROUP BY ALL
        )
        SELECT model, count(*)::BIGINT, {totals} FROM per_id GROUP BY model"""
    ).fetchall()
    return {
        model: (
            int(ids),
            {
                d: (int(values[2 * i]), int(values[2 * i + 1]))
                for i, d in enumerate(directions)
                if values[2 * i + 1]
            },
        )
        for model, ids, *values in rows
    }


def _overlaps(start: str, end: str, period: Period) -> str:
    """SQL: [start, end) overlaps the period (a zero-length range counts at its instant)."""
    lo, hi = timestamp_sql(period.start), timestamp_sql(period.end)
    return f"({start} < {hi} AND ({end} > {lo} OR {start} >= {lo}))"


def _scopes(period: Period) -> dict[str, str]:
    """SQL conditions on billing_lines selecting each part of the bill for the period."""
    charge = _overlaps("charge_period_start", "charge_period_end", period)
    billing = _overlaps("billing_period_start", "billing_period_end", period)
    return {
        "usage": f"charge_category = 'Usage' AND charge_class IS NULL AND {charge}",
        "other": f"charge_category <> 'Usage' AND charge_class IS NULL "
        f"AND ({charge} OR COALESCE({billing}, false))",
        "correction": f"charge_class = 'Correction' AND ({charge} OR COALESCE({billing}, false))",
    }


# What a usage line costs in the comparison: its BilledCost, or its EffectiveCost when part of it
# was paid in advance (usage drawn down from a prepaid commitment bills $0; its EffectiveCost is
# the share of the prepayment it consumed, which is what the ledger's price should match).
USAGE_COST_SQL = "CASE WHEN effective_cost > billed_cost THEN effective_cost ELSE billed_cost END"


def billed_usage(
    con: duckdb.DuckDBPyConnection, period: Period, table: str = "billing_lines"
) -> dict[str | None, BilledUsage]:
    """The bill's usage charged in the period, per model (None: no model id) and direction, at
    `USAGE_COST_SQL`."""
    rows = con.execute(
        f"""SELECT model, direction, any_value(quantity_unit),
            CASE WHEN count(quantity) = count(*) THEN sum(quantity) END,
            sum({USAGE_COST_SQL}), count(*),
            list(DISTINCT COALESCE(sku_meter, description)) FILTER (WHERE direction IS NULL)
        FROM {table} WHERE {_scopes(period)["usage"]}
        GROUP BY ALL ORDER BY model NULLS LAST, direction NULLS LAST"""
    ).fetchall()
    by_model: dict[str | None, list[tuple]] = {}
    for row in rows:
        by_model.setdefault(row[0], []).append(row[1:])
    return {
        model: BilledUsage(
            model=model,
            quantity={d: q for d, _, q, *_ in parts},
            units={d: u for d, u, *_ in parts},
            cost={d: c for d, _, _, c, *_ in parts},
            bill_lines=sum(n for *_, n, _ in parts),
            meters=tuple(sorted({m for *_, meters in parts for m in meters or () if m})),
        )
        for model, parts in by_model.items()
    }


# --- the comparison -----------------------------------------------------------------------------


def _quantity_sum(values: list[Decimal | int | None]) -> Decimal | None:
    if not values or any(v is None for v in values):
        return None
    return sum((Decimal(v) for v in values), _ZERO)


def _finding(
    ledger_tokens: int | None,
    billed_tokens: Decimal | None,
    variance: Decimal,
    billed: Decimal,
    tolerance_pct: Decimal,
) -> str:
    known = billed_tokens is not None and ledger_tokens is not None
    same_tokens = known and Decimal(ledger_tokens) == billed_tokens
    if beyond_tolerance(variance, billed, tolerance_pct):
        if not known:
            return "cost_mismatch"
        return "price_mismatch" if same_tokens else "token_mismatch"
    if known and not same_tokens:
        return "token_mismatch"
    return "match" if variance == 0 else "within_tolerance"


def _line(
    level: str,
    model: str | None,
    direction: str | None,
    unit: str | None,
    ledger_tokens: int | None,
    billed_tokens: Decimal | None,
    ledger_cost: Decimal,
    billed_cost: Decimal,
    finding: str | None,
    tolerance_pct: Decimal,
    uncomputable: Decimal = _ZERO,
    unpriced_requests: int = 0,
) -> ReconciliationLine:
    """A line; its finding (unless given) judges the money without `uncomputable` billed cost."""
    ledger_cost, billed_cost = _money_exact(ledger_cost), _money_exact(billed_cost)
    variance = ledger_cost - billed_cost
    if finding is None:
        judged = billed_cost - uncomputable
        finding = _finding(
            ledger_tokens, billed_tokens, ledger_cost - judged, judged, tolerance_pct
        )
    return ReconciliationLine(
        level,
        model,
        direction,
        unit,
        ledger_tokens,
        billed_tokens,
        ledger_cost,
        billed_cost,
        variance,
        variance_pct(variance, billed_cost),
        finding,
        unpriced_requests,
    )


def _folded(ledger: LedgerUsage, bill: BilledUsage) -> tuple[LedgerUsage, bool]:
    """The ledger usage with cache writes moved to uncached input when the bill meters them
    on its input line (FOCUS prompt-caching scenario B: no cache-write line of its own)."""
    if (
        ledger.quantity.get("cache_write", 0) == 0
        or "cache_write" in bill.cost
        or "uncached_input" not in bill.cost
    ):
        return ledger, False
    quantity, cost = dict(ledger.quantity), dict(ledger.cost)
    quantity["uncached_input"] = quantity.get("uncached_input", 0) + quantity.pop("cache_write")
    cost["uncached_input"] = cost.get("uncached_input", _ZERO) + cost.pop("cache_write")
    beyond = dict(ledger.beyond_one_copy)
    if "cache_write" in beyond:
        (lo, hi), (w_lo, w_hi) = beyond.get("uncached_input", (0, 0)), beyond.pop("cache_write")
        beyond["uncached_input"] = (lo + w_lo, hi + w_hi)
    return replace(ledger, quantity=quantity, cost=cost, beyond_one_copy=beyond), True


def reconciliation_lines(
    ledger: dict[str, LedgerUsage],
    bill: dict[str | None, BilledUsage],
    tolerance_pct: Decimal,
) -> list[ReconciliationLine]:
    """One line per model, followed by one per direction when the bill has directions for it."""
    lines: list[ReconciliationLine] = []
    models = sorted(set(ledger) | {m for m in bill if m is not None})
    for model in [*models, *([None] if None in bill else [])]:
        used, billed = ledger.get(model), bill.get(model)
        if used is not None and billed is not None:
            used, _ = _folded(used, billed)
        used_q = used.quantity if used else {}
        used_c = used.cost if used else {}
        billed_q = billed.quantity if billed else {}
        billed_c = billed.cost if billed else {}
        billed_units = billed.units if billed else {}
        if any(d in TOKEN_DIRECTIONS for d in used_q) or "tokens" in billed_units.values():
            unit = "tokens"
        elif "per_call" in used_q or "requests" in billed_units.values():
            unit = "requests"
        else:
            unit = None
        ledger_tokens = sum(
            v for d, v in used_q.items() if (d in TOKEN_DIRECTIONS) == (unit == "tokens")
        )
        billed_tokens = (
            _quantity_sum([q for d, q in billed_q.items() if billed_units.get(d) == unit])
            if billed
            else None
        )
        if model is None:
            finding = "no_model"
        elif billed is None:
            finding = "not_in_bill"
        elif used is None:
            finding = "not_in_ledger"
        elif used.unpriced_requests:
            finding = "unpriced"
        else:
            finding = None
        inherited = finding if finding in _UNMATCHED else None
        lines.append(
            _line(
                "model",
                model,
                None,
                unit,
                ledger_tokens if model is not None and unit is not None else None,
                billed_tokens,
                sum(used_c.values(), _ZERO),
                sum(billed_c.values(), _ZERO),
                finding,
                tolerance_pct,
                billed_c.get(None, _ZERO) if billed and billed.has_directions else _ZERO,
                used.unpriced_requests if used else 0,
            )
        )
        if billed is None or not billed.has_directions or model is None:
            continue
        directions = [d for d in DIRECTIONS if d in used_q or d in billed_c]
        if None in billed_c:
            directions.append(OTHER)
        for direction in directions:
            key = None if direction == OTHER else direction
            lines.append(
                _line(
                    "direction",
                    model,
                    direction,
                    None
                    if direction == OTHER
                    else ("requests" if direction == "per_call" else "tokens"),
                    None if direction == OTHER else used_q.get(direction, 0),
                    billed_q.get(key) if key in billed_c else Decimal(0),
                    used_c.get(direction, _ZERO),
                    billed_c.get(key, _ZERO),
                    inherited or ("not_computable" if direction == OTHER else None),
                    tolerance_pct,
                )
            )
    return lines


def _ledger_with_billed_per_call(
    ledger: dict[str, LedgerUsage], bill: dict[str | None, BilledUsage]
) -> dict[str, LedgerUsage]:
    """Add a per_call direction (billable requests) where the bill charges a model per call."""
    result = dict(ledger)
    for model, used in ledger.items():
        billed = bill.get(model)
        if billed is not None and "per_call" in billed.cost and "per_call" not in used.quantity:
            quantity = {**used.quantity, "per_call": used.requests}
            cost = {**used.cost, "per_call": _ZERO}
            result[model] = replace(used, quantity=quantity, cost=cost)
    return result


def reconciliation(ledger: PeriodLedger, billing: BillingLoaded | None) -> Reconciliation:
    """Compare the period ledger with the bill loaded by `billing.load_billing` (or none)."""
    with localcontext(_EXACT):
        return _reconciliation(ledger, billing)


def _reconciliation(ledger: PeriodLedger, billing: BillingLoaded | None) -> Reconciliation:
    con, period, workspace = ledger.con, ledger.period, ledger.workspace
    currency = workspace.kit.currency
    tolerance = workspace.kit.reconciliation.tolerance_pct
    per_call_models = {m.model for m in workspace.pricing.models if m.per_call is not None}
    bill = billed_usage(con, period, billing.table) if billing else {}
    facts = _bill_facts(con, period, billing) if billing else None
    # a daily bill that lacks some of the ledger's days: compare only the days it covers
    # (blocking() names the others)
    covered = facts.bill_days if facts and facts.unbilled_days[0] else None
    used = _ledger_with_billed_per_call(ledger_usage(con, per_call_models, covered), bill)
    # Without a bill, or with usage charged for periods reaching outside the review period (a
    # monthly bill against a week), there is nothing to compare: no lines, no billed total, no
    # variance (blocking() says why), rather than a month's bill set against a week's ledger.
    # nor a bill in another currency: its amounts are not the ledger's money
    foreign = facts is not None and any(c != currency for c in facts.currencies)
    # nor a bill that charges nothing at all in the period (a month before the first export
    # the bill path finds): what was billed is unknown, not zero
    billed_here = facts is not None and bool(facts.usage_lines or facts.other or facts.corrections)
    comparable = billed_here and not facts.straddling[0] and not foreign
    lines = reconciliation_lines(used, bill, tolerance) if comparable else []

    ledger_cost = _money_exact(ledger.ledger_cost)
    billed_cost = _money_exact(sum((b.total_cost for b in bill.values()), _ZERO))
    variance = ledger_cost - billed_cost
    unmatched = _unmatched_models(lines)
    daily = _daily(con, period, billing, covered, unmatched) if comparable and facts.daily else None
    counts = asdict(ledger.counts)

    say = _Sentences(currency, tolerance, period)
    blocking = say.blocking(billing, facts)
    trust = say.trust(lines, used, bill) if comparable else []
    verdict, fails = (
        say.verdict(lines, ledger_cost, billed_cost, blocked=bool(blocking))
        if comparable
        else ([], False)
    )
    details = say.details(lines, used, bill, facts, daily, counts, comparable)

    if blocking:
        result = "inconclusive"
    elif fails:
        result = "fail"
    elif trust:
        result = "inconclusive"
    else:
        result = "pass"
    return Reconciliation(
        period=period,
        currency=currency,
        ledger_cost=ledger_cost,
        billed_cost=billed_cost,
        variance=variance,
        variance_pct=variance_pct(variance, billed_cost),
        tolerance_pct=tolerance,
        result=result,
        reasons=[*blocking, *verdict, *trust, *details],
        lines=lines,
        daily=daily,
        daily_leaves_out=unmatched if daily is not None else [],
        other_charges=facts.other if facts else [],
        corrections=facts.corrections if facts else [],
        counts=counts,
        total_calls_logged=ledger.counts.in_period,
        billing_reported_count=facts.request_count if facts else None,
        billing_currencies=facts.currencies if facts else [],
        bill_references=facts.references if facts else {},
        has_bill=billing is not None,
        comparable=comparable,
    )


@dataclass(frozen=True)
class _BillFacts:
    """What the verdict needs to know about the bill besides its usage per model."""

    usage_lines: int  # usage lines charged in the period
    straddling: tuple[int, Decimal, datetime | None, datetime | None]  # n, cost, start, end
    daily: bool  # every usage line's charge period lies within one UTC day
    request_count: int | None
    drawdown: tuple[Decimal, Decimal]  # billed and effective cost of drawn-down usage
    currencies: list[str]
    covered: list[tuple[datetime, datetime]]  # billing periods overlapping the period
    gaps: list[tuple[datetime, datetime]]  # parts of the period no billing period covers
    billing_periods: bool  # False: coverage judged from charge periods (no BillingPeriod*)
    whole: tuple[int, datetime | None, datetime | None]  # every bill line: n, first, last
    # per billing period and currency: start, end, lines, cost, currency
    outside: list[tuple[datetime, datetime, int, Decimal, str]]
    other: list[OtherCharge]
    corrections: list[OtherCharge]
    # a daily bill: its first and last usage day, and the ledger's days with usage outside them
    # (n, cost, first, last): a bill exported before the period ended
    bill_days: tuple[date, date] | None = None
    unbilled_days: tuple[int, Decimal, date | None, date | None] = (0, _ZERO, None, None)
    references: dict[str, list[str]] = field(default_factory=dict)  # see bill_references
    # lines of the period found the same in every column in more than one bill file: the extra
    # copies, their billed cost and currency, and the files (one export picked up twice)
    repeated: tuple[int, Decimal, str, list[str]] = (0, _ZERO, "", [])


BILL_REFERENCES = ("invoice_issuer", "billing_account_id", "invoice_id")


def _bill_facts(
    con: duckdb.DuckDBPyConnection, period: Period, billing: BillingLoaded
) -> _BillFacts:
    """Everything about the bill besides usage per model: scope, coverage, other charges."""
    table, scopes = billing.table, _scopes(period)
    lo, hi = timestamp_sql(period.start), timestamp_sql(period.end)
    in_scope = " OR ".join(f"({s})" for s in scopes.values())
    (
        usage_lines,
        straddling,
        straddling_cost,
        straddle_start,
        straddle_end,
        daily,
        request_count,
        requests_known,
        drawdown_billed,
        drawdown_effective,
    ) = con.execute(
        f"""SELECT count(*),
            count(*) FILTER (WHERE charge_period_start < {lo} OR charge_period_end > {hi}),
            COALESCE(sum(billed_cost) FILTER (WHERE charge_period_start < {lo}
                OR charge_period_end > {hi}), 0),
            min(charge_period_start) FILTER (WHERE charge_period_start < {lo}
                OR charge_period_end > {hi}),
            max(charge_period_end) FILTER (WHERE charge_period_start < {lo}
                OR charge_period_end > {hi}),
            count(*) > 0 AND bool_and(CAST(charge_period_start AS DATE)
                = CAST(charge_period_end - INTERVAL 1 MICROSECOND AS DATE)),
            sum(request_count)::HUGEINT, count(request_count),
            COALESCE(sum(billed_cost) FILTER (WHERE effective_cost > billed_cost), 0),
            COALESCE(sum(effective_cost) FILTER (WHERE effective_cost > billed_cost), 0)
        FROM {table} WHERE {scopes["usage"]}"""
    ).fetchall()[0]
    # the currencies of the usage lines: a tax line in another currency is listed in its own,
    # it does not make the usage incomparable
    currencies = [
        c
        for (c,) in con.execute(
            f"SELECT DISTINCT currency FROM {table} WHERE {scopes['usage']} ORDER BY 1"
        ).fetchall()
    ]
    has_billing_periods = con.execute(
        f"SELECT count(billing_period_start) > 0 FROM {table}"
    ).fetchall()[0][0]
    if has_billing_periods:
        spans = con.execute(
            f"""SELECT DISTINCT billing_period_start, billing_period_end FROM {table}
            WHERE {_overlaps("billing_period_start", "billing_period_end", period)}
            ORDER BY 1, 2"""
        ).fetchall()
    else:
        spans = con.execute(
            f"""SELECT DISTINCT charge_period_start, charge_period_end FROM {table}
            WHERE {scopes["usage"]} ORDER BY 1, 2"""
        ).fetchall()
    whole = con.execute(
        f"""SELECT count(*), min(COALESCE(billing_period_start, charge_period_start)),
            max(COALESCE(billing_period_end, charge_period_end)) FROM {table}"""
    ).fetchall()[0]
    # the lines outside, per billing period (per charge month without one): a billing glob that
    # also picks up other months' invoices says so by name
    outside = con.execute(
        f"""SELECT COALESCE(billing_period_start, date_trunc('month', charge_period_start)),
            COALESCE(billing_period_end,
                     date_trunc('month', charge_period_start) + INTERVAL 1 MONTH),
            count(*), COALESCE(sum(billed_cost), 0), currency
        FROM {table} WHERE NOT COALESCE({in_scope}, false) GROUP BY ALL ORDER BY 1, 2, 5"""
    ).fetchall()
    content = ", ".join(c for c in BILLING_COLUMNS if c not in {"source_file", "row_number"})
    copies, copies_cost, copies_currency, copies_files = con.execute(
        f"""WITH lines AS (
                SELECT source_file, billed_cost, currency, hash({content}) AS h FROM {table}
                WHERE COALESCE({in_scope}, false)
            ), repeated AS (
                SELECT h FROM lines GROUP BY h HAVING count(DISTINCT source_file) > 1
            ), extra AS (
                SELECT *, row_number() OVER (PARTITION BY h ORDER BY source_file) > 1 AS copy
                FROM lines SEMI JOIN repeated USING (h)
            )
            SELECT count(*) FILTER (WHERE copy), COALESCE(sum(billed_cost) FILTER (WHERE copy), 0),
                string_agg(DISTINCT currency, ', ' ORDER BY currency),
                list(DISTINCT source_file ORDER BY source_file)
            FROM extra"""
    ).fetchall()[0]
    bill_days, unbilled = None, (0, _ZERO, None, None)
    if daily:
        bill_days = con.execute(
            f"""SELECT CAST(min(charge_period_start) AS DATE),
                CAST(max(charge_period_start) AS DATE)
            FROM {table} WHERE {scopes["usage"]}"""
        ).fetchall()[0]
        n, cost, first, last = con.execute(
            """SELECT count(DISTINCT day), COALESCE(sum(cost), 0), min(day), max(day) FROM lines
            WHERE billable AND requests > 0 AND (day < ? OR day > ?)""",
            list(bill_days),
        ).fetchall()[0]
        unbilled = (int(n), cost, first, last)
    return _BillFacts(
        usage_lines=usage_lines,
        straddling=(straddling, straddling_cost, straddle_start, straddle_end),
        daily=bool(daily),
        request_count=int(request_count) if requests_known else None,
        drawdown=(drawdown_billed, drawdown_effective),
        currencies=currencies,
        covered=spans,
        gaps=_gaps(spans, period),
        billing_periods=bool(has_billing_periods),
        whole=whole,
        outside=outside,
        other=_charges(con, table, scopes["other"], period),
        corrections=_charges(con, table, scopes["correction"], period),
        bill_days=bill_days,
        unbilled_days=unbilled,
        repeated=(copies, copies_cost, copies_currency or "", list(copies_files or [])),
        references={
            key: [
                value
                for (value,) in con.execute(
                    f"SELECT DISTINCT {key} FROM {table} "
                    f"WHERE COALESCE({in_scope}, false) AND {key} IS NOT NULL ORDER BY 1"
                ).fetchall()
            ]
            for key in BILL_REFERENCES
        },
    )


def _within(first: date, last: date, spans: list[tuple[datetime, datetime]]) -> bool:
    """Does some day from first to last fall inside one of the [start, end) spans?"""
    return any(
        start.date() <= last and first < (end - timedelta(microseconds=1)).date() + timedelta(1)
        for start, end in spans
    )


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _gaps(
    spans: list[tuple[datetime, datetime]], period: Period
) -> list[tuple[datetime, datetime]]:
    """The parts of the period (naive UTC) that no span covers."""
    cursor, end = _naive(period.start), _naive(period.end)
    gaps = []
    for start, stop in sorted(spans):
        if start > cursor:
            gaps.append((cursor, min(start, end)))
        cursor = max(cursor, stop)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if a < b]


def _charges(
    con: duckdb.DuckDBPyConnection, table: str, scope: str, period: Period
) -> list[OtherCharge]:
    """The lines of `scope` summed by category, class, description and currency; a line whose
    charge period reaches outside the review period (a month's tax beside a week) stays apart
    with its own charge period, so the packet can say it is a whole charge, not prorated."""
    order = " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(("Usage", *CHARGE_CATEGORIES)))
    lo, hi = timestamp_sql(period.start), timestamp_sql(period.end)
    beyond = f"(charge_period_start < {lo} OR charge_period_end > {hi})"
    rows = con.execute(
        f"""SELECT charge_category, charge_class, description, currency, sum(billed_cost),
            count(*), min(charge_period_start), max(charge_period_end),
            billing_period_start, billing_period_end
        FROM {table} WHERE {scope}
        GROUP BY charge_category, charge_class, description, currency,
            CASE WHEN {beyond} THEN charge_period_start END,
            CASE WHEN {beyond} THEN charge_period_end END,
            billing_period_start, billing_period_end
        ORDER BY CASE charge_category {order} END, description NULLS LAST, currency,
            min(charge_period_start)"""
    ).fetchall()
    return [OtherCharge(*row[:4], _money_exact(row[4]), *row[5:]) for row in rows]


def _unmatched_models(lines: list[ReconciliationLine]) -> list[str]:
    """The models the verdict cannot match: unpriced, or on one side only."""
    return sorted(
        {line.model for line in lines if line.level == "model" and line.finding in _UNMATCHED}
        - {None}
    )


def _daily(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    billing: BillingLoaded,
    covered: tuple[date, date] | None = None,
    leave_out: list[str] = (),
) -> list[DailyLine]:
    """Ledger and billed usage per UTC day of the period (every day, zeros included), or of
    the days from `covered[0]` to `covered[1]` when given (those a daily bill covers), without
    the models `leave_out` names on either side."""
    ledger = dict(
        con.execute(
            "SELECT day, sum(cost) FROM lines WHERE NOT COALESCE(list_contains(?, model), false) "
            "GROUP BY day",
            [list(leave_out)],
        ).fetchall()
    )
    billed = dict(
        con.execute(
            f"""SELECT CAST(charge_period_start AS DATE), sum({USAGE_COST_SQL})
            FROM {billing.table} WHERE {_scopes(period)["usage"]}
                AND NOT COALESCE(list_contains(?, model), false)
            GROUP BY 1""",
            [list(leave_out)],
        ).fetchall()
    )
    days = []
    for offset in range(period.days):
        day = period.first_day + timedelta(days=offset)
        if covered and not covered[0] <= day <= covered[1]:
            continue
        ledger_cost = _money_exact(ledger.get(day) or _ZERO)
        billed_cost = _money_exact(billed.get(day) or _ZERO)
        variance = ledger_cost - billed_cost
        days.append(
            DailyLine(day, ledger_cost, billed_cost, variance, variance_pct(variance, billed_cost))
        )
    return days


# --- sentences ----------------------------------------------------------------------------------


def _quantity_text(value: Decimal | int) -> str:
    """220,000 (exact; a fractional quantity keeps its decimals)."""
    value = Decimal(value)
    if value != value.to_integral_value():
        return f"{value.normalize():,f}"
    return f"{int(value):,}"


def _span_text(start: datetime, end: datetime) -> str:
    """[start, end) as people say it: 2026-10-01 to 2026-10-31 (last day inclusive)."""
    if start.time() == end.time() == datetime.min.time():
        last = (end - timedelta(days=1)).date()
        first = start.date()
        return first.isoformat() if last <= first else f"{first.isoformat()} to {last.isoformat()}"
    return f"{start.isoformat(sep=' ')} to {end.isoformat(sep=' ')}"


def _places_apart(a: Decimal, b: Decimal) -> int:
    """The decimal places (2 to 6) that tell two amounts of a dollar or more apart."""
    places = 2
    while places < 6 and a != b and all(abs(v) >= 1 for v in (a, b)):
        step = Decimal(1).scaleb(-places)
        if a.quantize(step, ROUND_HALF_UP) != b.quantize(step, ROUND_HALF_UP):
            break
        places += 1
    return places


OUTSIDE_SHOWN = 6  # billing periods named in the sentence on bill lines outside the period


def _billing_period_text(start: datetime, end: datetime) -> str:
    """2026-08 for a calendar month, else its dates."""
    if start.day == 1 and start.time() == datetime.min.time():
        month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        if end == month_end:
            return f"{start:%Y-%m}"
    return _span_text(start, end)


def _noun(unit: str | None) -> str:
    return "call" if unit == "requests" else "token"


def _plural(count: Decimal | int, noun: str) -> str:
    """'1 call', '2,500 tokens'."""
    return f"{_quantity_text(count)} {noun}{'' if count == 1 else 's'}"


def _strings(**numbers: object) -> dict[str, object]:
    """Reason numbers as JSON values: Decimals as exact text, dates as ISO text."""
    out: dict[str, object] = {}
    for key, value in numbers.items():
        if isinstance(value, Decimal):
            out[key] = format(value, "f")
        elif isinstance(value, (datetime, date)):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


class _Sentences:
    """The reasons of a verdict, each with its sentence for a finance reviewer."""

    def __init__(self, currency: str, tolerance: Decimal, period: Period) -> None:
        self.currency, self.tolerance, self.period = currency, tolerance, period

    def compared(self, billed: Decimal, computed: Decimal) -> str:
        """'billed $1.0004 vs $1.0016 computed': as `money`, with the places (up to 6) that
        tell two different amounts apart."""
        places = _places_apart(billed, computed)
        return f"billed {self.money(billed, places)} vs {self.money(computed, places)} computed"

    def money(self, value: Decimal, places: int = 2, currency: str | None = None) -> str:
        """$1,234.57 from a dollar up (half-up to cents, or `places`); smaller amounts keep up
        to 6 places, so a sub-cent ledger is not shown as $0.00 vs $0.00."""
        if abs(value) >= 1:
            shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        else:
            shown = value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize()
            if -shown.as_tuple().exponent < 2:
                shown = shown.quantize(Decimal("0.01"))
        sign = "−" if shown < 0 else ""  # a minus sign, as the packet's tables print it
        whole, _, fraction = f"{abs(shown):f}".partition(".")
        body = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
        currency = currency or self.currency  # a bill line in another currency keeps its own
        symbol = _SYMBOLS.get(currency)
        return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"

    def pct(self, value: Decimal | None) -> str:
        return "no percentage of a zero bill" if value is None else f"{value}%".replace("-", "−")

    @property
    def tolerance_text(self) -> str:
        return f"{self.tolerance.normalize():f}%"

    # 1. blocking ------------------------------------------------------------------------------

    def blocking(self, billing: BillingLoaded | None, facts: _BillFacts | None) -> list[Reason]:
        """Reasons that make any comparison meaningless: the verdict is inconclusive."""
        currency = self.currency
        label = self.period.label
        if billing is None or facts is None:
            return [
                Reason(
                    "no_billing_export",
                    "inconclusive",
                    "bill",
                    {},
                    "kit.yaml has no billing section: there is no bill to reconcile against.",
                )
            ]
        reasons = []
        lines, first, last = facts.whole
        if not facts.usage_lines:
            covers = (
                f"its {lines:,} lines cover {_span_text(first, last)}"
                if lines
                else ("the export has no lines")
            )
            reasons.append(
                Reason(
                    "no_bill_lines",
                    "inconclusive",
                    label,
                    _strings(bill_lines=lines, bill_start=first, bill_end=last),
                    f"The bill has no usage charged in {label} ({covers}): nothing to compare.",
                )
            )
        others = [c for c in facts.currencies if c != currency]
        if others:
            reasons.append(
                Reason(
                    "currency_mismatch",
                    "inconclusive",
                    ", ".join(facts.currencies),
                    _strings(ledger_currency=currency, bill_currencies=", ".join(facts.currencies)),
                    f"The bill is in {', '.join(facts.currencies)} but the ledger is priced "
                    f"in {currency}: the amounts cannot be compared.",
                )
            )
        if facts.usage_lines and facts.gaps:
            gaps = "; ".join(_span_text(a, b) for a, b in facts.gaps)
            covered = "; ".join(_span_text(a, b) for a, b in facts.covered) or "nothing"
            kind = "billing periods" if facts.billing_periods else "charge periods"
            reasons.append(
                Reason(
                    "billing_period_gap",
                    "inconclusive",
                    label,
                    _strings(not_covered=gaps, covered=covered),
                    f"The bill's {kind} cover {covered} but not {gaps} of {label}: part of the "
                    "period is missing from this export.",
                )
            )
        days, cost, first, last = facts.unbilled_days
        if days and facts.bill_days:
            start, end = facts.bill_days
            reasons.append(
                Reason(
                    "bill_days_missing",
                    "inconclusive",
                    label,
                    _strings(
                        bill_first_day=start,
                        bill_last_day=end,
                        ledger_days=days,
                        ledger_cost=cost,
                        first_day=first,
                        last_day=last,
                    ),
                    f"The bill's daily usage runs from {start} to {end}, but the ledger has "
                    f"{self.money(cost)} of billable usage on {_plural(days, 'day')} outside "
                    f"it ({first if days == 1 else f'{first} to {last}'}), left out of the "
                    "comparison by model and day: "
                    + (
                        "they lie outside the bill's billing periods (above)."
                        if facts.gaps and not _within(first, last, facts.covered)
                        else "the export looks cut short (exported before the period ended?); "
                        "reconcile a complete bill."
                        if first > end
                        else "reconcile with a bill that covers them."
                    ),
                )
            )
        copies, cost, in_currency, files = facts.repeated
        if copies:
            one_currency = in_currency and "," not in in_currency  # never a sum of two
            amount = f" ({self.money(cost, currency=in_currency)})" if one_currency else ""
            reasons.append(
                Reason(
                    "bill_lines_repeated",
                    "inconclusive",
                    label,
                    _strings(
                        bill_lines=copies,
                        billed_cost=cost if one_currency else None,
                        files=", ".join(files),
                    ),
                    f"{_plural(copies, 'bill line')}{amount} of {label} appear again, the same "
                    f"in every column, in another file ({listed(files)}): the same export "
                    "picked up twice? Remove the copy from the billing path; the billed total "
                    "counts it.",
                )
            )
        n, cost, start, end = facts.straddling
        if n:
            reasons.append(
                Reason(
                    "charge_period_exceeds_period",
                    "inconclusive",
                    label,
                    _strings(
                        bill_lines=n,
                        billed_cost=cost,
                        charge_period_start=start,
                        charge_period_end=end,
                    ),
                    f"{n:,} usage lines ({self.money(cost)}) are charged for periods reaching "
                    f"outside {label} ({_span_text(start, end)}): the bill cannot be cut to "
                    "this period, so no billed total or variance is given; review a period "
                    "the bill's charge periods fit.",
                )
            )
        return reasons

    # 2. the verdict on money ------------------------------------------------------------------

    def verdict(
        self, lines: list[ReconciliationLine], ledger: Decimal, billed: Decimal, blocked: bool
    ) -> tuple[list[Reason], bool]:
        matched = [
            line for line in lines if line.level == "model" and line.finding not in _UNMATCHED
        ]
        # billed usage with no token direction cannot be computed from the ledger (trust())
        uncomputable = {line.model: line.billed_cost for line in lines if line.direction == OTHER}
        m_ledger = sum((line.ledger_cost for line in matched), _ZERO)
        m_billed = sum(
            (line.billed_cost - uncomputable.get(line.model, _ZERO) for line in matched), _ZERO
        )
        m_variance = m_ledger - m_billed
        variance = ledger - billed
        beyond = bool(matched) and beyond_tolerance(m_variance, m_billed, self.tolerance)
        partial = bool(uncomputable) or len(matched) != sum(
            1 for line in lines if line.level == "model"
        )
        numbers = _strings(
            ledger_cost=ledger,
            billed_cost=billed,
            variance=variance,
            variance_pct=variance_pct(variance, billed),
            tolerance_pct=self.tolerance,
        )
        if partial:
            numbers |= _strings(
                matched_models=len(matched),
                matched_ledger_cost=m_ledger,
                matched_billed_cost=m_billed,
                matched_variance=m_variance,
                matched_variance_pct=variance_pct(m_variance, m_billed),
            )
        head = (
            f"Usage billed {self.money(billed)} vs {self.money(ledger)} computed from the "
            f"ledger: variance {self.money(variance)} ({self.pct(variance_pct(variance, billed))})"
        )
        judged = (
            f"; judged on the {_plural(len(matched), 'model')} both sides have and the ledger "
            "fully prices"
            + (", leaving out usage the ledger cannot compute" if uncomputable else "")
            + f": {self.money(m_billed)} billed vs {self.money(m_ledger)} computed "
            f"({self.pct(variance_pct(m_variance, m_billed))})"
            if partial
            else ""
        )
        if blocked:
            return [
                Reason(
                    "variance",
                    "info",
                    "total",
                    numbers,
                    f"{head}; not judged, the comparison cannot be trusted (above).",
                )
            ], False
        if not matched:
            return [
                Reason(
                    "not_judged",
                    "info",
                    "total",
                    numbers,
                    f"{head}; no model is on both sides and fully priced by the ledger, so "
                    "nothing could be judged (the reasons below say why).",
                )
            ], False
        if not beyond:
            return [
                Reason(
                    "within_tolerance",
                    "info",
                    "total",
                    numbers,
                    f"{head}{judged}, within the {self.tolerance_text} tolerance.",
                )
            ], False
        detailed = [
            line
            for line in lines
            if line.model in {m.model for m in matched}
            and (
                line.level == "direction"
                or not any(d.level == "direction" and d.model == line.model for d in lines)
            )
        ]
        worst = max(detailed, key=lambda line: abs(line.variance))
        if m_billed == 0:
            code = "billed_zero"
            tail = ", beyond any tolerance"
        else:
            code = "variance_over_tolerance"
            tail = f", beyond the {self.tolerance_text} tolerance"
        numbers |= _strings(
            largest_model=worst.model,
            largest_direction=worst.direction,
            largest_variance=worst.variance,
        )
        return [
            Reason(
                code,
                "fail",
                "total",
                numbers,
                f"{head}{judged}{tail}; largest difference: {worst.model} "
                f"{_LABELS[worst.direction]} ({self.money(worst.variance)}).",
            )
        ], True

    # 3. trust ---------------------------------------------------------------------------------

    def trust(
        self, lines: list[ReconciliationLine], used: dict[str, LedgerUsage], bill: dict
    ) -> list[Reason]:
        """Reasons that make a comparison within tolerance inconclusive."""
        reasons = []
        for line in lines:
            if line.level != "model":
                continue
            model = line.model
            if line.finding == "not_in_ledger":
                reasons.append(
                    Reason(
                        "model_not_in_ledger",
                        "inconclusive",
                        model,
                        _strings(
                            billed_cost=line.billed_cost,
                            billed_tokens=_quantity_value(line.billed_tokens),
                        ),
                        f"{model}: billed {self.money(line.billed_cost)}"
                        + (
                            f" ({_plural(line.billed_tokens, _noun(line.unit))})"
                            if line.billed_tokens is not None and line.unit
                            else ""
                        )
                        + " but absent from the ledger: traffic the ledger does not log "
                        "(another key or gateway), or the model id is spelt differently.",
                    )
                )
            elif line.finding == "not_in_bill":
                calls, unpriced = used[model].requests, line.unpriced_requests
                if not unpriced:
                    computed = f"{self.money(line.ledger_cost)} computed"
                elif unpriced == calls:
                    computed = "no price: cost unknown"
                else:
                    computed = (
                        f"{self.money(line.ledger_cost)} computed for the priced ones; "
                        f"{unpriced:,} without a price"
                    )
                reasons.append(
                    Reason(
                        "model_not_in_bill",
                        "inconclusive",
                        model,
                        _strings(
                            ledger_cost=None if unpriced == calls else line.ledger_cost,
                            ledger_tokens=line.ledger_tokens,
                            billable_calls=calls,
                            unpriced_calls=unpriced,
                        ),
                        f"{model}: {_plural(calls, 'billable call')} ({computed}) in the "
                        "ledger but absent from the bill: the model id is spelt "
                        "differently, the traffic is billed elsewhere, or a bill line is missing.",
                    )
                )
            elif line.finding == "unpriced":
                usage = used[model]
                tokens = sum(v for d, v in usage.quantity.items() if d in TOKEN_DIRECTIONS)
                reasons.append(
                    Reason(
                        "unpriced_model",
                        "inconclusive",
                        model,
                        _strings(
                            unpriced_calls=usage.unpriced_requests,
                            ledger_tokens=tokens,
                            billed_cost=line.billed_cost,
                        ),
                        f"{model}: {_plural(usage.unpriced_requests, 'billable call')} "
                        f"({_plural(tokens, 'token')}) "
                        f"{'has' if usage.unpriced_requests == 1 else 'have'} no price in the "
                        "snapshot, so the ledger cannot cost "
                        f"{'it' if usage.unpriced_requests == 1 else 'them'} (billed "
                        f"{self.money(line.billed_cost)}); add the model to pricing.yaml.",
                    )
                )
            elif line.finding == "no_model":
                lines_n = bill[None].bill_lines
                reasons.append(
                    Reason(
                        "billed_without_model",
                        "inconclusive",
                        "bill",
                        _strings(bill_lines=lines_n, billed_cost=line.billed_cost),
                        f"The bill has {_plural(lines_n, 'usage line')} "
                        f"({self.money(line.billed_cost)}) without a model id, which cannot be "
                        "matched to the ledger.",
                    )
                )
        for model, billed in bill.items():
            if model is not None and billed.has_directions and None in billed.cost:
                meters = ", ".join(billed.meters) or "no meter named"
                reasons.append(
                    Reason(
                        "usage_without_direction",
                        "inconclusive",
                        model,
                        _strings(billed_cost=billed.cost[None]),
                        f"{model}: {self.money(billed.cost[None])} of usage has no token "
                        f"direction ({meters}): the ledger cannot compute it, so the model is "
                        "judged without it.",
                    )
                )
        return reasons

    # 4. details -------------------------------------------------------------------------------

    def details(
        self,
        lines: list[ReconciliationLine],
        used: dict[str, LedgerUsage],
        bill: dict,
        facts: _BillFacts | None,
        daily: list[DailyLine] | None,
        counts: dict[str, int],
        comparable: bool = True,
    ) -> list[Reason]:
        """Reasons that inform beside the verdict. A bill that is not `comparable` gives only
        what it charges beside usage and which of its lines fall outside the period."""
        reasons = [
            self.line_reason(line, _folded(used[line.model], bill[line.model])[0])
            if line.model in used and line.model in bill
            else self.line_reason(line, used.get(line.model))
            for line in self._detail_lines(lines)
        ]
        reasons = [r for r in reasons if r is not None]
        for model, usage in used.items():
            billed = bill.get(model)
            if comparable and billed is not None and _folded(usage, billed)[1]:
                reasons.append(
                    Reason(
                        "cache_writes_billed_as_input",
                        "info",
                        model,
                        _strings(cache_write_tokens=usage.quantity["cache_write"]),
                        f"{model}: the bill has no cache-write line, so the ledger's "
                        f"{usage.quantity['cache_write']:,} cache write tokens are compared "
                        "with its input line (the provider meters them as input).",
                    )
                )
        if facts is None:
            return reasons
        if facts.other:
            parts = "; ".join(
                f"{c.charge_category} {self.money(c.amount, currency=c.currency)}"
                + (f" ({c.description})" if c.description else "")
                + self._whole_charge(c)
                for c in facts.other
            )
            _, amount = self._amounts(facts.other)
            reasons.append(
                Reason(
                    "other_charges",
                    "info",
                    "bill",
                    _strings(amount=amount, bill_lines=sum(c.bill_lines for c in facts.other)),
                    f"Other charges beside usage, not in the variance: {parts}.",
                )
            )
        if facts.corrections:
            text, amount = self._amounts(facts.corrections)
            n = sum(c.bill_lines for c in facts.corrections)
            reasons.append(
                Reason(
                    "corrections",
                    "info",
                    "bill",
                    _strings(amount=amount, bill_lines=n),
                    f"{n:,} correction line{'s' if n != 1 else ''} ({text}) "
                    "listed beside usage, not in the variance: they correct earlier "
                    "periods' bills.",
                )
            )
        billed_zero, effective = facts.drawdown
        if comparable and effective:
            reasons.append(
                Reason(
                    "commitment_drawdown",
                    "info",
                    "bill",
                    _strings(billed_cost=billed_zero, effective_cost=effective),
                    f"Usage billed {self.money(billed_zero)} has an effective cost of "
                    f"{self.money(effective)}: it is drawn down from a prepaid commitment, "
                    "whose purchase is listed under other charges; it is compared with the "
                    "ledger at its effective cost.",
                )
            )
        reported = facts.request_count
        if comparable and reported is not None and reported != counts["billable"]:
            reasons.append(
                Reason(
                    "request_count_differs",
                    "info",
                    "bill",
                    _strings(
                        billing_reported_count=reported,
                        billable=counts["billable"],
                        logged=counts["in_period"],
                    ),
                    f"The bill reports {reported:,} requests; the ledger has "
                    f"{counts['billable']:,} billable calls ({counts['in_period']:,} logged).",
                )
            )
        if daily:
            left = _unmatched_models(lines)
            off = [d for d in daily if beyond_tolerance(d.variance, d.billed_cost, self.tolerance)]
            if off:
                worst = max(off, key=lambda d: abs(d.variance))
                offsetting = any(d.variance > 0 for d in off) and any(d.variance < 0 for d in off)
                hint = (
                    "; over- and under-billed days offset each other, which usually means the "
                    "bill cuts days in another time zone than UTC"
                    if offsetting
                    else ""
                )
                reasons.append(
                    Reason(
                        "daily_variance",
                        "info",
                        "days",
                        _strings(days=len(off), worst_day=worst.day, worst_variance=worst.variance),
                        f"{len(off)} of {len(daily)} days "
                        f"{'differ' if len(off) > 1 else 'differs'} by more than the "
                        f"{self.tolerance_text} tolerance (largest: {worst.day.isoformat()}, "
                        f"billed {self.money(worst.billed_cost)} vs "
                        f"{self.money(worst.ledger_cost)} computed){hint}"
                        + (
                            f", on the models both sides price (without {', '.join(left)})"
                            if left
                            else ""
                        )
                        + ".",
                    )
                )
        n = sum(lines for _, _, lines, _, _ in facts.outside)
        if n:
            totals: dict[str, Decimal] = {}  # per currency: amounts in two are never added
            for *_, cost, unit in facts.outside:
                totals[unit] = totals.get(unit, _ZERO) + cost
            shown = [
                f"{_billing_period_text(start, end)} {self.money(cost, currency=unit)} "
                f"({_plural(lines, 'line')})"
                for start, end, lines, cost, unit in facts.outside[:OUTSIDE_SHOWN]
            ]
            more = len(facts.outside) - OUTSIDE_SHOWN
            if more > 0:
                shown.append(f"and {more} more")
            amounts = " + ".join(self.money(v, currency=k) for k, v in totals.items())
            numbers = _strings(bill_lines=n, billing_periods=len({o[:2] for o in facts.outside}))
            if len(totals) == 1:
                numbers |= _strings(billed_cost=next(iter(totals.values())))
            verb = "is" if n == 1 else "are"
            reasons.append(
                Reason(
                    "bill_lines_outside_period",
                    "info",
                    "bill",
                    numbers,
                    f"{_plural(n, 'bill line')} ({amounts}) {verb} charged outside "
                    f"{self.period.label} and {verb} not compared; by billing period: "
                    f"{', '.join(shown)}.",
                )
            )
        return reasons

    def _amounts(self, charges: list[OtherCharge]) -> tuple[str, Decimal | None]:
        """('$1.00 + €0.25', None): the charges' sum per currency, and the one total when
        they share a currency (amounts in two are never added)."""
        totals: dict[str, Decimal] = {}
        for c in charges:
            totals[c.currency] = totals.get(c.currency, _ZERO) + c.amount
        text = " + ".join(self.money(v, currency=k) for k, v in totals.items())
        return text, next(iter(totals.values())) if len(totals) == 1 else None

    def _whole_charge(self, charge: OtherCharge) -> str:
        """', charged for 2026-09-01 to 2026-09-30, …' when the charge reaches outside the
        period; '' otherwise."""
        start, end = _naive(self.period.start), _naive(self.period.end)
        if charge.charge_period_start >= start and charge.charge_period_end <= end:
            return ""
        span = _span_text(charge.charge_period_start, charge.charge_period_end)
        return f", charged for {span}, beyond {self.period.label}: the whole charge, not prorated"

    def _rates(self, line: ReconciliationLine) -> str:
        """'; $1.05 per 1M tokens billed vs $1.00 priced': the unit rates that differ."""
        if not line.ledger_tokens or not line.billed_tokens or line.ledger_cost is None:
            return ""
        per = Decimal(1) if line.unit == "requests" else Decimal(1_000_000)
        unit = "per call" if line.unit == "requests" else "per 1M tokens"
        billed = line.billed_cost / Decimal(line.billed_tokens) * per
        priced = line.ledger_cost / Decimal(line.ledger_tokens) * per
        places = _places_apart(billed, priced)
        return (
            f" ({self.money(billed, places)} {unit} billed vs {self.money(priced, places)} "
            "priced, on average)"
        )

    @staticmethod
    def _detail_lines(lines: list[ReconciliationLine]) -> list[ReconciliationLine]:
        """The most specific lines: directions where the bill has them, else the model's."""
        with_directions = {line.model for line in lines if line.level == "direction"}
        return [
            line for line in lines if line.level == "direction" or line.model not in with_directions
        ]

    def line_reason(self, line: ReconciliationLine, usage: LedgerUsage | None) -> Reason | None:
        """The sentence for one line that differs: a stale price, or traffic on one side only."""
        if line.finding not in {"price_mismatch", "token_mismatch", "cost_mismatch"}:
            return None
        what = f"{line.model} {_LABELS[line.direction]}"
        subject = f"{line.model} {line.direction}" if line.direction else line.model
        noun = _noun(line.unit)
        money = self.compared(line.billed_cost, line.ledger_cost)
        numbers = _strings(
            model=line.model,
            direction=line.direction,
            ledger_tokens=line.ledger_tokens,
            billed_tokens=_quantity_value(line.billed_tokens),
            ledger_cost=line.ledger_cost,
            billed_cost=line.billed_cost,
            variance=line.variance,
            variance_pct=line.variance_pct,
        )
        if line.finding == "cost_mismatch":  # the bill gives no quantity
            message = (
                f"{what}: {money} ({self.pct(line.variance_pct)}); the bill gives no quantity "
                "to tell a stale price from missing traffic."
            )
            return Reason(line.finding, "info", subject, numbers, message)
        counted = (
            f"billed {_quantity_text(line.billed_tokens)} vs "
            f"{_quantity_text(line.ledger_tokens)} logged"
        )
        if line.finding == "price_mismatch":
            message = f"{what} {counted}, but {money}{self._rates(line)}: either the price "
            message += (
                "snapshot is stale (check the provider's price for the period) or the provider "
                "billed above its price (dispute the difference)."
            )
        else:  # token_mismatch
            extra = line.billed_tokens - line.ledger_tokens
            if extra > 0:
                tail = (
                    f"the bill has {_plural(extra, noun)} more: traffic missing from the "
                    "ledger (unlogged callers or lost log rows)"
                )
            else:
                lo, hi = usage.beyond_one_copy.get(line.direction, (0, 0)) if usage else (0, 0)
                ids = usage.conflicting_ids if usage else 0
                if ids and lo <= -extra <= hi:
                    within = (
                        f"exactly the {_plural(lo, noun)}"
                        if lo == hi
                        else (f"within the {lo:,}–{_plural(hi, noun)}")
                    )
                    tail = (
                        f"the ledger has {_plural(-extra, noun)} more, {within} that "
                        f"{_plural(ids, 'request_id')} logged more than once with different "
                        "content add beyond one copy each: the provider bills such a call "
                        "once, the ledger keeps every copy (quarantined, in the exception "
                        "queue) until the log is corrected"
                    )
                else:
                    tail = (
                        f"the ledger has {_plural(-extra, noun)} more: logged traffic the "
                        "provider did not bill (failed calls logged as successful, or calls "
                        "routed elsewhere)"
                    )
                    quarantined = usage.quarantined_requests if usage else 0
                    if quarantined:
                        tail += (
                            f"; {quarantined:,} quarantined calls of {line.model} count in "
                            "the ledger, e.g. one request logged twice with different content"
                        )
            message = f"{what} {counted} ({money}): {tail}."
        return Reason(line.finding, "info", subject, numbers, message)


# --- evidence -----------------------------------------------------------------------------------


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else format(_money_exact(value), "f")


def _quantity_value(value: Decimal | int | None) -> int | str | None:
    """Quantities as JSON integers when whole, else exact decimal text."""
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else format(value.normalize(), "f")


def _pct_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _line_record(line: ReconciliationLine) -> dict[str, object]:
    """A line as evidence. A line of a model with unpriced calls (finding `unpriced`, or
    `not_in_bill` for a model neither side prices) has no variance (the ledger cannot cost the
    model's calls: unknown, not zero) and its ledger_cost is what its priced calls cost, null
    when none is priced."""
    unpriced = line.finding == "unpriced" or line.unpriced_requests > 0
    return {
        "level": line.level,
        "model": line.model,
        "direction": line.direction,
        "unit": line.unit,
        "ledger_tokens": _quantity_value(line.ledger_tokens),
        "billed_tokens": _quantity_value(line.billed_tokens),
        "ledger_cost": None if unpriced and not line.ledger_cost else _money_text(line.ledger_cost),
        "billed_cost": _money_text(line.billed_cost),
        "variance": None if unpriced else _money_text(line.variance),
        "variance_pct": None if unpriced else _pct_text(line.variance_pct),
        "finding": line.finding,
    }


def _charge_record(charge: OtherCharge) -> dict[str, object]:
    return {
        "charge_category": charge.charge_category,
        "charge_class": charge.charge_class,
        "description": charge.description,
        "currency": charge.currency,
        "amount": _money_text(charge.amount),
        "bill_lines": charge.bill_lines,
        "charge_period_start": charge.charge_period_start.isoformat(),
        "charge_period_end": charge.charge_period_end.isoformat(),
        "billing_period_start": _iso(charge.billing_period_start),
        "billing_period_end": _iso(charge.billing_period_end),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def reconciliation_record(
    recon: Reconciliation, reviewed_by: str, reviewed_at: datetime
) -> dict[str, object]:
    """The evidence file reconciliation.json: money as exact decimal strings (12 places)."""
    return {
        "period": recon.period.label,
        "period_start": recon.period.start.isoformat(),
        "period_end": recon.period.end.isoformat(),
        "currency": recon.currency,
        "billing_currencies": recon.billing_currencies,
        "bill_references": {k: recon.bill_references.get(k, []) for k in BILL_REFERENCES},
        "ledger_cost": _money_text(recon.ledger_cost),
        "billed_cost": _money_text(recon.billed_cost) if recon.comparable else None,
        "variance": _money_text(recon.variance) if recon.comparable else None,
        "variance_pct": _pct_text(recon.variance_pct) if recon.comparable else None,
        "tolerance_pct": format(recon.tolerance_pct, "f"),
        "result": recon.result,
        "reasons": [asdict(reason) for reason in recon.reasons],
        "lines": [_line_record(line) for line in recon.lines],
        "daily": None
        if recon.daily is None
        else [
            {
                "day": d.day.isoformat(),
                "ledger_cost": _money_text(d.ledger_cost),
                "billed_cost": _money_text(d.billed_cost),
                "variance": _money_text(d.variance),
                "variance_pct": _pct_text(d.variance_pct),
            }
            for d in recon.daily
        ],
        "daily_leaves_out": recon.daily_leaves_out,
        "other_charges": [_charge_record(c) for c in recon.other_charges],
        "corrections": [_charge_record(c) for c in recon.corrections],
        "counts": recon.counts,
        "total_calls_logged": recon.total_calls_logged,
        "billing_reported_count": recon.billing_reported_count,
        "reviewed_by": reviewed_by,
        "reviewed_at": reviewed_at.isoformat(timespec="seconds"),
    }


def reconciliation_lines_rows(recon: Reconciliation) -> list[dict[str, object]]:
    """The rows of reconciliation_lines.csv, keys in RECONCILIATION_LINE_COLUMNS order; empty
    strings for unknown values."""
    rows = []
    for line in recon.lines:
        record = {"period": recon.period.label, **_line_record(line)}
        rows.append(
            {c: "" if record[c] is None else record[c] for c in RECONCILIATION_LINE_COLUMNS}
        )
    return rows
