"""Charts for the packet (matplotlib): labelled axes, currency on money axes, one colour per team
that stays the same across periods (taken from the registry's order of teams)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal
from itertools import pairwise

from matplotlib.dates import DateFormatter, DayLocator, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from .present import Html, amount_text, minor_places, money, share_text

__all__ = [
    "budget_bullet_chart",
    "coverage_chart",
    "daily_spend_chart",
    "figure_html",
    "spend_by_team_chart",
    "team_colours",
    "unit_cost_trend_chart",
    "variance_by_model_chart",
]

PALETTE = [
    "#4E79A7", "#F28E2B", "#59A14F", "#B07AA1", "#EDC948", "#76B7B2", "#FF9DA7", "#9C755F",
    "#E15759", "#86BCB6", "#D4A6C8", "#8CD17D", "#B6992D", "#499894", "#F1CE63", "#A0CBE8",
]  # fmt: skip
UNALLOCATED = "#B8B8B8"
MODEL_HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "++", "--"]


def team_colours(teams_in_registry_order: Sequence[str]) -> dict[str, str]:
    """A stable colour per team: its position in the registry picks the palette entry."""
    return {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(teams_in_registry_order)}


class _TickAmounts(Formatter):
    """Tick labels with as many decimals as the ticks' spacing needs, at least the currency's
    (`unit`: its minor unit, or 0 for plain numbers): a chart of small amounts gets $0.0002,
    $0.0004, … rather than $0.00 at every tick."""

    def __init__(self, currency: str | None, places: int) -> None:
        self.currency, self.places = currency, places

    def format_ticks(self, values) -> list[str]:
        steps = [abs(b - a) for a, b in pairwise(values) if b != a]
        places = self.places
        if steps:  # the decimals that write every tick as it is ($0.025, not $0.03), up to 10
            step = min(steps)
            while places < 10 and any(abs(round(v, places) - v) > step * 1e-6 for v in values):
                places += 1
        return [self._text(v, places) for v in values]

    def __call__(self, value, pos=None) -> str:
        return self._text(value, self.places)

    def _text(self, value: float, places: int) -> str:
        amount = Decimal(f"{value:.{places}f}")
        if self.currency is None:
            return f"{amount:,.{places}f}"
        return amount_text(amount, self.currency, places)


def _money_axis(ax, currency: str, axis: str = "y") -> None:
    fmt = _TickAmounts(currency, minor_places(currency))
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(fmt)
    if axis == "x":  # money labels are wide: fewer ticks keep them apart
        target.set_major_locator(MaxNLocator(nbins=6))


def figure_html(fig: Figure, alt: str) -> Html:
    """The figure as an embedded PNG (works offline, in an e-mail attachment, in JupyterLab)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=144)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Html(
        f'<figure class="ak-chart"><img alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}"/></figure>'
    )


def _figure(width: float = 9.0, height: float = 4.2) -> tuple[Figure, object]:
    # Figure without pyplot: no global state, no backend switch in the user's kernel.
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x" if width < height else "y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def spend_by_team_chart(
    cost: Mapping[tuple[str, str], Decimal],
    colours: Mapping[str, str],
    currency: str,
    title: str,
    shown: Mapping[str, Decimal] | None = None,
) -> Figure:
    """Horizontal bars of cost per owner (team or unallocated), stacked by model, each labelled
    with its cost as `shown` gives it (the packet's cents), else its exact sum rounded."""
    owners = sorted(
        {o for o, _ in cost}, key=lambda o: sum(v for (t, _), v in cost.items() if t == o)
    )
    models = sorted(
        {m for _, m in cost}, key=lambda m: -sum(v for (_, mm), v in cost.items() if mm == m)
    )
    height = max(3.0, 0.42 * len(owners) + 1.6)
    fig, ax = _figure(9.0, height)
    left = [0.0] * len(owners)
    for k, model in enumerate(models):
        widths = [float(cost.get((o, model), 0)) for o in owners]
        ax.barh(
            owners, widths, left=left, label=model,
            color=[colours.get(o, UNALLOCATED) for o in owners],
            hatch=MODEL_HATCHES[k % len(MODEL_HATCHES)], edgecolor="white", linewidth=0.6,
        )  # fmt: skip
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, owner in enumerate(owners):  # labels from the exact sums, not the float bar ends
        exact = sum((v for (o, _), v in cost.items() if o == owner), Decimal(0))
        amount = (shown or {}).get(owner, exact)
        ax.text(left[y], y, " " + money(amount, currency), va="center", fontsize=8)
    _money_axis(ax, currency, "x")
    ax.set_xlabel(f"Cost ({currency})")
    ax.set_ylabel("Owner")
    ax.set_title(title, loc="left", fontsize=11)
    ax.margins(x=0.12)
    # Proxy patches: the legend explains the hatching without recolouring the bars.
    handles = [
        Patch(facecolor="#e4e9f0", edgecolor="#7b8794", hatch=MODEL_HATCHES[k % len(MODEL_HATCHES)])
        for k in range(len(models))
    ]
    ax.legend(handles, models, title="Model (hatching)", fontsize=8, title_fontsize=8,
              loc="lower right", frameon=False)  # fmt: skip
    return fig


def daily_spend_chart(
    ledger_daily: Mapping[date, Decimal],
    billed_daily: Mapping[date, Decimal] | None,
    currency: str,
    title: str,
) -> Figure:
    """Ledger cost per day as bars, the bill's daily usage cost as a line when it has one (with
    a gap on days the bill does not cover). Ticks fall on whole days, even for one day."""
    days = sorted(set(ledger_daily) | set(billed_daily or {}))
    fig, ax = _figure(9.0, 3.6)
    ax.bar(days, [float(ledger_daily.get(d, 0)) for d in days], color="#4E79A7",
           label="Ledger (priced by the kit)", width=0.8)  # fmt: skip
    if billed_daily:
        billed = [float(billed_daily[d]) if d in billed_daily else float("nan") for d in days]
        ax.plot(days, billed, color="#E15759", marker="o", markersize=3, linewidth=1.5,
                label="Billed usage")  # fmt: skip
    if days:
        ax.set_xlim(date2num(days[0]) - 0.6, date2num(days[-1]) + 0.6)
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, -(-len(days) // 16))))
        ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    _money_axis(ax, currency)
    ax.set_ylabel(f"Cost per day ({currency})")
    ax.set_xlabel("Day (UTC)")
    ax.set_title(title, loc="left", fontsize=11, pad=22)
    fig.autofmt_xdate()
    ax.legend(fontsize=8, frameon=False, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 1.0))
    return fig


def variance_by_model_chart(
    variance: Mapping[str, Decimal],
    currency: str,
    title: str,
    unpriced: Collection[str] = (),
) -> Figure:
    """Ledger − billed per model: positive bars mean the ledger computed more than was billed.
    Models in `unpriced` (their billed cost the ledger could not price) are grey and hatched."""
    models = sorted(variance, key=lambda m: variance[m])
    fig, ax = _figure(9.0, max(2.6, 0.4 * len(models) + 1.4))
    values = [float(variance[m]) for m in models]
    colors = [
        "#BAB0AC" if m in unpriced else "#E15759" if v < 0 else "#59A14F"
        for m, v in zip(models, values, strict=True)
    ]
    bars = ax.barh(models, values, color=colors)
    for bar, model in zip(bars, models, strict=True):
        if model in unpriced:
            bar.set_hatch("//")
            bar.set_edgecolor("#7b8794")
    ax.axvline(0, color="#333333", linewidth=0.8)
    _money_axis(ax, currency, "x")
    ax.set_xlabel(f"Variance, ledger − billed ({currency})")
    ax.set_ylabel("Model")
    ax.set_title(title, loc="left", fontsize=11)
    return fig


def coverage_chart(cost_by_status: Mapping[str, Decimal], currency: str, title: str) -> Figure:
    """One bar split into allocated, shared and each unallocated status."""
    order = ["allocated", "shared", "untagged", "unknown_owner", "conflict", "quarantined"]
    colours = {
        "allocated": "#4E79A7",
        "shared": "#A0CBE8",
        "untagged": "#F28E2B",
        "unknown_owner": "#E15759",
        "conflict": "#B07AA1",
        "quarantined": "#9C755F",
    }
    total = float(sum(cost_by_status.values())) or 1.0
    fig, ax = _figure(9.0, 2.4)
    left = 0.0
    for status in order:
        share = float(cost_by_status.get(status, 0)) / total * 100
        if share <= 0:
            continue
        ax.barh(
            [""],
            [share],
            left=left,
            color=colours[status],
            label=f"{status.replace('_', ' ')} {share_text(Decimal(share))}",
        )
        left += share
    ax.set_xlim(0, 100)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0f}%"))
    ax.set_xlabel("Share of the period's ledger cost")
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_yticks([])
    if left:
        fig.legend(ncols=6, fontsize=8, frameon=False, loc="outside lower center")
    else:  # nothing priced: no share to draw, and no legend to warn about
        ax.text(50, 0, "no priced cost in the period", ha="center", va="center", color="#616e7c")
    return fig


STATUS_COLOURS = {"ok": "#59A14F", "warning": "#EDC948", "exceeded": "#E15759"}


def budget_bullet_chart(
    rows: Sequence[tuple[str, Decimal, Decimal, Decimal | None, str, str]],
    thresholds_pct: Sequence[Decimal],
    currency: str,
    title: str,
) -> Figure:
    """A bullet chart per team: (team, budget, actual, forecast, status, label). The grey band
    is the budget with its thresholds as ticks, the bar the actual (coloured by status), the
    black diamond the forecast to period end; the label (the share used, and why a warning is
    one when no threshold says so) stands right of it all."""
    rows = list(reversed(rows))
    fig, ax = _figure(9.0, max(2.4, 0.5 * len(rows) + 1.4))
    ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.22)  # room for the labels
    for i, (_team, budget, actual, forecast, status, label) in enumerate(rows):
        end = max(budget, actual, forecast if forecast is not None else actual)
        ax.text(float(end), i, f"  {label}", va="center", fontsize=8, color="#3b4754")
        ax.barh(i, float(budget), height=0.7, color="#e4e9f0", zorder=1)
        for pct in thresholds_pct:
            x = float(budget * pct / 100)
            ax.plot([x, x], [i - 0.35, i + 0.35], color="#7b8794", linewidth=1, zorder=2)
        ax.barh(i, float(actual), height=0.3, color=STATUS_COLOURS.get(status, "#4E79A7"),
                zorder=3)  # fmt: skip
        if forecast is not None and forecast != actual:
            ax.plot(float(forecast), i, marker="D", color="#222222", markersize=5, zorder=4)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    _money_axis(ax, currency, "x")
    ax.set_xlabel(f"Cost in the budget's environments ({currency})")
    ax.set_title(title, loc="left", fontsize=11)
    handles = [Patch(facecolor="#e4e9f0", label="Budget (ticks: thresholds)")]
    handles += [Patch(facecolor=c, label=f"Actual, {s}") for s, c in STATUS_COLOURS.items()]
    if any(f is not None and f != actual for _, _, actual, f, _, _ in rows):
        handles.append(
            Line2D([], [], marker="D", color="#222222", linestyle="none", markersize=5,
                   label="Forecast to period end")
        )  # fmt: skip
    fig.legend(handles=handles, ncols=5, fontsize=8, frameon=False, loc="outside lower center")
    return fig


def _short_period(label: str) -> str:
    """A date range's label short enough for an axis: 2026-09-28..2026-10-04 → 09-28–10-04,
    one day → 09-28 (months and weeks are short already)."""
    if ".." not in label:
        return label
    first, last = label.split("..")
    return first[5:] if first == last else f"{first[5:]}–{last[5:]}"


def unit_cost_trend_chart(
    trends: Mapping[str, Sequence[tuple[str, Decimal | None, bool, bool]]],
    currency: str,
    title: str,
) -> Figure:
    """One small panel per cost unit: its unit cost period by period, (period, unit cost,
    definition changed, understated). A red ring marks a period whose definition differs from
    the one before; an understated unit cost (unpriced requests left out of its cost) is an
    orange ring off the line: neither is comparable with its neighbours."""
    names = list(trends)
    columns = 2 if len(names) > 1 else 1
    rows = (len(names) + columns - 1) // columns
    fig = Figure(figsize=(9.0, 2.3 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_visible(False)
            continue
        points = trends[names[k]]
        labels = [_short_period(p[0]) for p in points]
        values = [float(p[1]) if p[1] is not None else float("nan") for p in points]
        line = [float("nan") if p[3] else v for p, v in zip(points, values, strict=True)]
        ax.plot(labels, line, color="#4E79A7", marker="o", markersize=4, linewidth=1.5)
        for label, value, changed, understated in points:
            if understated and value is not None:
                ax.plot(_short_period(label), float(value), marker="o", markersize=6,
                        markerfacecolor="none", markeredgecolor="#F28E2B",
                        markeredgewidth=1.5)  # fmt: skip
            if changed and value is not None:
                ax.plot(_short_period(label), float(value), marker="o", markersize=9,
                        markerfacecolor="none", markeredgecolor="#E15759")  # fmt: skip
        if len(labels) > 4:
            ax.tick_params(axis="x", labelrotation=30)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
        ax.set_title(names[k], loc="left", fontsize=9)
        ax.yaxis.set_major_formatter(_TickAmounts(None, 2))
        ax.set_ylabel(currency, fontsize=8)
        ax.tick_params(labelsize=8)
        known = [v for v in values if v == v]
        ax.set_ylim(0, max(known) * 1.15 if known and max(known) > 0 else 1)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return fig
