"""Presentation helpers: money and numbers for people, HTML tables and tiles for the packet.

Rounding happens here, once, at the currency's minor unit: every amount shown, totals included,
is its exact value rounded half-up on its own, so any figure can be checked against the evidence
files; a table whose total then differs from the sum of its rounded rows says so
(`rounding_note`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

__all__ = [
    "Html",
    "amount_text",
    "count_text",
    "counted",
    "html_table",
    "listed",
    "minor_places",
    "minor_unit",
    "minor_word",
    "money",
    "pct_of",
    "percent",
    "rounded",
    "rounding_note",
    "share_text",
    "signed_percent",
    "tiles",
    "unit_money",
]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


@dataclass(frozen=True)
class Html:
    """A fragment of HTML that Jupyter and nbconvert display as such."""

    text: str

    def _repr_html_(self) -> str:
        return self.text

    def __add__(self, other: Html) -> Html:
        return Html(self.text + other.text)


def listed(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def minor_places(currency: str) -> int:
    """The decimal places of the currency's minor unit, from CLDR's currency data (2 for USD,
    0 for JPY and CLP, 3 for KWD; 2 for a code CLDR does not know)."""
    return get_currency_precision(currency)


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_places(currency))


def minor_word(currency: str) -> str:
    """What its minor unit is called in a sentence: cent, unit (no minor unit) or minor unit."""
    return {0: "unit", 2: "cent"}.get(minor_places(currency), "minor unit")


def money(value: Decimal | None, currency: str, *, exact_rounded: bool = True) -> str:
    """$1,234.57 — rounded half-up to the minor unit; '—' for unknown."""
    if value is None:
        return "—"
    if exact_rounded:
        value = Decimal(value).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    return amount_text(value, currency, minor_places(currency))


def amount_text(value: Decimal, currency: str, places: int) -> str:
    """−$1,234.5678: the amount at `places` decimals with its sign and currency symbol (or code
    after it)."""
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
    value = Decimal(value)
    # four significant digits, half up like every other figure (a format spec rounds half-even)
    shown = abs(value).quantize(Decimal(1).scaleb(value.adjusted() - 3), ROUND_HALF_UP)
    body = format(shown.normalize(), "f") if value else "0"
    sign = "−" if value < 0 else ""
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency}"


def percent(value: Decimal | float | None, places: int = 1) -> str:
    """71.3% — rounded half up to `places`, as money is; '—' for unknown."""
    if value is None:
        return "—"
    shown = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    shown = shown if shown else abs(shown)  # no "−0.0%"
    return f"{shown:,.{places}f}%".replace("-", "−")


def share_text(value: Decimal, places: int = 1) -> str:
    """A share of a whole in percent (`percent`); a share above zero too small to show at
    `places` is "<0.1%", never a "0.0%" that reads as none."""
    floor = Decimal(1).scaleb(-places)
    if 0 < value < floor / 2:
        return f"<{floor}%"
    return percent(value, places)


def signed_percent(value: Decimal | None, places: int = 1) -> str:
    """+78.6%, −1.7%, 0.0%: a change, its sign always shown; '—' for unknown."""
    if value is None:
        return "—"
    shown = percent(value, places)
    return shown if shown.startswith("−") or shown.strip("0.%") == "" else f"+{shown}"


def pct_of(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    """part ÷ whole × 100, exact to the context's 28 digits, for a percentage rounded once where
    it is shown (not from a rounded percentage, which would round twice); None without a
    whole."""
    if part is None or not whole:
        return None
    return Decimal(part) / Decimal(whole) * 100


def count_text(value: int | Decimal | str | None) -> str:
    """1,234; a fractional quantity (a bill may meter 200,000.5 tokens; evidence carries it as
    exact text) keeps its decimals: 200,000.5."""
    if value is None:
        return "—"
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize():,f}"


def counted(count: int, noun: str) -> str:
    """'1 request', '2,000 requests'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def rounded(value: Decimal, currency: str) -> Decimal:
    """The value rounded half-up to the currency's minor unit, as `money` shows it."""
    return Decimal(value).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def rounding_note(
    sums: Iterable[tuple[Sequence[Decimal], Decimal]], currency: str, evidence: str = ""
) -> Html:
    """A note under a table whose shown total differs from the sum of its shown parts (each
    `(parts, total)` of exact amounts); nothing when every shown total adds up."""
    gaps = [
        rounded(total, currency) - sum((rounded(p, currency) for p in parts), Decimal(0))
        for parts, total in sums
    ]
    if not any(gaps):
        return Html("")
    largest = max((abs(g) for g in gaps), key=abs)
    source = f" ({evidence})" if evidence else ""
    return Html(
        '<p class="ak-note">Each amount is its exact value'
        f"{html.escape(source)} rounded to the {minor_word(currency)} "
        "on its own, totals included, so a total can differ from the sum of the rounded amounts "
        f"it covers (here by up to {html.escape(money(largest, currency))}).</p>"
    )


def breakable(text: str) -> str:
    """`text` escaped for HTML, with a line-break opportunity (`<wbr>`, nothing when copied)
    after each underscore and slash: identifiers such as `cost_per_support_ticket` and paths
    wrap at their parts, never inside a word."""
    return re.sub(r"([_/])", r"\1<wbr>", html.escape(text))


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
            f'<{tag} class="num">{html.escape("" if v is None else str(v))}</{tag}>'
            if i in numeric
            else f'<{tag} class="txt">{breakable("" if v is None else str(v))}</{tag}>'
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
