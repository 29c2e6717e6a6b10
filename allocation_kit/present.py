"""Presentation helpers: money and numbers for people, HTML tables and tiles for the packet.

Rounding happens here, once, at the currency's minor unit. Columns shown with a total are
rounded with largest remainder so the shown rows add up to the shown total.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

__all__ = [
    "Html",
    "count_text",
    "html_table",
    "minor_unit",
    "money",
    "percent",
    "rounded_rows",
    "rounded_to_total",
    "tiles",
    "unit_money",
]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}
_ZERO_DECIMAL = {"JPY", "KRW"}


@dataclass(frozen=True)
class Html:
    """A fragment of HTML that Jupyter and nbconvert display as such."""

    text: str

    def _repr_html_(self) -> str:
        return self.text

    def __add__(self, other: Html) -> Html:
        return Html(self.text + other.text)


def minor_unit(currency: str) -> Decimal:
    return Decimal(1) if currency in _ZERO_DECIMAL else Decimal("0.01")


def money(value: Decimal | None, currency: str, *, exact_rounded: bool = True) -> str:
    """$1,234.57 — rounded half-up to the minor unit; '—' for unknown."""
    if value is None:
        return "—"
    if exact_rounded:
        value = Decimal(value).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    places = 0 if currency in _ZERO_DECIMAL else 2
    sign = "−" if value < 0 else ""
    body = f"{abs(value):,.{places}f}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"


def unit_money(value: Decimal | None, currency: str) -> str:
    """A unit cost or price: the minor unit from 1 upwards, four significant digits below it
    ($0.002277), where rounding to cents would show nothing."""
    if value is None:
        return "—"
    if abs(value) >= 1:
        return money(value, currency)
    body = format(Decimal(f"{value:.4g}").normalize(), "f")
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{body}" if symbol else f"{body} {currency}"


def percent(value: Decimal | float | None, places: int = 1) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.{places}f}%".replace("-", "−")


def count_text(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _to_total(values: Sequence[Decimal], total: Decimal, unit: Decimal) -> list[Decimal]:
    """Non-negative `values` in multiples of `unit` summing to `total` (itself a multiple, at
    least the sum of the floors and at most that plus one unit per value): each value floored,
    then the leftover units one each to the largest remainders (ties to the first). Every value
    is then its own rounding or one unit from it."""
    floors = [(v / unit).to_integral_value(rounding=ROUND_FLOOR) for v in values]
    leftover = int(total / unit - sum(floors, Decimal(0)))
    order = sorted(range(len(values)), key=lambda i: (-(values[i] / unit - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += 1
    return [(f * unit).quantize(unit) for f in floors]


def rounded_to_total(values: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Values rounded to the minor unit so that they sum to the rounded total (largest remainder:
    floored, the leftover cents to the largest remainders).

    Negative parts are rounded on their own (half-up); the largest-remainder pass applies to the
    non-negative parts, which is where a split's rows come from.
    """
    unit = minor_unit(currency)
    if any(v < 0 for v in values):
        return [Decimal(v).quantize(unit, rounding=ROUND_HALF_UP) for v in values]
    total = sum(values, Decimal(0)).quantize(unit, rounding=ROUND_HALF_UP)
    return _to_total([Decimal(v) for v in values], total, unit)


def rounded_rows(rows: Sequence[Sequence[Decimal]], currency: str) -> list[list[Decimal]]:
    """A table of amounts rounded to the minor unit so that it foots both ways: the row totals
    are `rounded_to_total` of the exact row totals (they sum to the rounded grand total), and
    each row's cells share its rounded total by largest remainder. A row's total then reads as
    that owner's amount does elsewhere in the packet (but for a leftover cent), which rounding
    each column on its own does not give."""
    unit = minor_unit(currency)
    if any(v < 0 for row in rows for v in row):
        return [[Decimal(v).quantize(unit, rounding=ROUND_HALF_UP) for v in row] for row in rows]
    totals = rounded_to_total([sum(row, Decimal(0)) for row in rows], currency)
    return [
        _to_total([Decimal(v) for v in row], t, unit) for row, t in zip(rows, totals, strict=True)
    ]


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    total: Sequence[object] | None = None,
    caption: str | None = None,
    empty: str = "Nothing to show.",
    css_class: str = "ak-table",
    row_classes: Sequence[str] | None = None,
) -> Html:
    """A tidy table: numeric columns right-aligned, an optional bold total row, optional classes
    per body row (e.g. `ak-subtotal`)."""
    numeric = set(numeric)
    rows = list(rows)
    row_classes = list(row_classes or [""] * len(rows))
    if not rows:
        return Html(f'<p class="ak-empty">{html.escape(empty)}</p>')

    def cells(values: Sequence[object], tag: str) -> str:
        return "".join(
            f'<{tag} class="{"num" if i in numeric else "txt"}">'
            f"{html.escape('' if v is None else str(v))}</{tag}>"
            for i, v in enumerate(values)
        )

    head = cells(columns, "th")
    body = "".join(
        f'<tr class="{c}">{cells(r, "td")}</tr>' if c else f"<tr>{cells(r, 'td')}</tr>"
        for r, c in zip(rows, row_classes, strict=True)
    )
    foot = f'<tfoot><tr class="ak-total">{cells(total, "td")}</tr></tfoot>' if total else ""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return Html(
        f'<table class="{css_class}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody>{foot}</table>"
    )


def tiles(items: Iterable[tuple[str, str, str] | tuple[str, str, str, str]]) -> Html:
    """KPI tiles: (label, value, tone[, note]) where tone is ok | warn | bad | neutral."""
    parts = []
    for label, value, tone, *note in items:
        sub = f'<div class="ak-tile-note">{html.escape(note[0])}</div>' if note else ""
        parts.append(
            f'<div class="ak-tile ak-{tone}"><div class="ak-tile-label">{html.escape(label)}'
            f'</div><div class="ak-tile-value">{html.escape(value)}</div>{sub}</div>'
        )
    return Html(f'<div class="ak-tiles">{"".join(parts)}</div>')
