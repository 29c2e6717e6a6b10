"""What changed between two pricing snapshots: models and dated entries added or removed, each
price changed (old → new, change in percent), effective dates, the failed-calls rule and the
aliases (which model's prices a ledger's name pays).

Entries of a model are matched by `effective_from`; when a model has one unmatched entry on
each side, they are the same entry re-dated (an `effective_from` change) rather than a removal
and an addition. Tiers are matched by their threshold (`tiers[above 200000]`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from .config import ModelPrice, PricingSnapshot, TokenPrices
from .history import spreadsheet_safe
from .price import TOKEN_PRICES

__all__ = [
    "CHANGE_COLUMNS",
    "PriceChange",
    "changes_csv",
    "changes_json",
    "changes_table",
    "snapshot_changes",
]

CHANGE_COLUMNS = ("change", "model", "effective_from", "field", "old", "new", "change_pct")


@dataclass(frozen=True)
class PriceChange:
    """One changed value; `old` or `new` is empty when the value was added or removed."""

    change: str  # added, removed or changed
    model: str  # empty for a snapshot-wide setting
    effective_from: str
    field: str  # per_1m_tokens.input, batch.output, tiers[above 200000].per_1m_tokens.input, …
    old: str
    new: str
    change_pct: str  # (new − old) / old in percent, 2 places; empty unless both are prices


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return format(value.normalize() if value else Decimal(0), "f")
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        if value.time() == datetime.min.time():
            return value.date().isoformat()
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _pct(old: object, new: object) -> str:
    if not isinstance(old, Decimal) or not isinstance(new, Decimal) or not old:
        return ""
    pct = ((new - old) / old * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{pct:+f}"


def _block(prefix: str, block: TokenPrices | None) -> dict[str, object]:
    if block is None:
        return {}
    values = ((name, getattr(block, name)) for name in TOKEN_PRICES)
    return {f"{prefix}.{name}": value for name, value in values if value is not None}


def _entry_values(entry: ModelPrice) -> dict[str, object]:
    """Every setting of an entry but its model and start, by field name."""
    values: dict[str, object] = {}
    if entry.effective_to is not None:
        values["effective_to"] = entry.effective_to
    values |= _block("per_1m_tokens", entry.per_1m_tokens)
    values |= _block("batch", entry.batch)
    for tier in entry.tiers:
        name = f"tiers[above {tier.above_input_tokens}]"
        values |= _block(f"{name}.per_1m_tokens", tier.per_1m_tokens)
        values |= _block(f"{name}.batch", tier.batch)
    if entry.per_call is not None:
        values["per_call"] = entry.per_call
    for key in ("publisher", "provider"):  # the FOCUS export's names of the model's rows
        if getattr(entry, key) is not None:
            values[key] = getattr(entry, key)
    return values


def _entry_changes(model: str, old: ModelPrice | None, new: ModelPrice | None) -> list[PriceChange]:
    start = _text((new or old).effective_from)  # type: ignore[union-attr]
    before = _entry_values(old) if old else {}
    after = _entry_values(new) if new else {}
    rows = []
    if old and new and old.effective_from != new.effective_from:
        rows.append(
            PriceChange(
                "changed",
                model,
                start,
                "effective_from",
                _text(old.effective_from),
                _text(new.effective_from),
                "",
            )
        )
    for field in [*before, *(f for f in after if f not in before)]:
        a, b = before.get(field), after.get(field)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        rows.append(PriceChange(kind, model, start, field, _text(a), _text(b), _pct(a, b)))
    return rows


def _paired(
    old: list[ModelPrice], new: list[ModelPrice]
) -> list[tuple[ModelPrice | None, ModelPrice | None]]:
    by_start = {e.effective_from: e for e in new}
    pairs: list[tuple[ModelPrice | None, ModelPrice | None]] = []
    unmatched_old = []
    for entry in old:
        match = by_start.pop(entry.effective_from, None)
        if match is None:
            unmatched_old.append(entry)
        else:
            pairs.append((entry, match))
    unmatched_new = list(by_start.values())
    if len(unmatched_old) == 1 and len(unmatched_new) == 1:  # the same entry, re-dated
        return [*pairs, (unmatched_old[0], unmatched_new[0])]
    pairs += [(entry, None) for entry in unmatched_old]
    pairs += [(None, entry) for entry in unmatched_new]
    return pairs


def snapshot_changes(old: PricingSnapshot, new: PricingSnapshot) -> list[PriceChange]:
    """Every difference in prices and pricing rules between two snapshots, model by model."""
    rows = [
        PriceChange("changed", "", "", name, _text(a), _text(b), "")
        for name in ("currency", "failed_calls_billable")
        if (a := getattr(old, name)) != (b := getattr(new, name))
    ]
    by_model: dict[str, tuple[list[ModelPrice], list[ModelPrice]]] = {}
    for side, snapshot in enumerate((old, new)):
        for entry in snapshot.models:
            by_model.setdefault(entry.model, ([], []))[side].append(entry)
    for model in sorted(by_model):
        before, after = by_model[model]
        pairs = _paired(before, after)
        pairs.sort(key=lambda p: (p[1] or p[0]).effective_from)  # type: ignore[union-attr]
        for a, b in pairs:
            rows += _entry_changes(model, a, b)
    # an alias decides which prices a ledger's model name pays: its change is a price change
    for alias in sorted(old.aliases.keys() | new.aliases.keys()):
        a, b = old.aliases.get(alias), new.aliases.get(alias)
        if a != b:
            kind = "added" if a is None else "removed" if b is None else "changed"
            rows.append(PriceChange(kind, "", "", f"aliases.{alias}", a or "", b or "", ""))
    return rows


def _summary(changes: list[PriceChange], old: PricingSnapshot, new: PricingSnapshot) -> str:
    if not changes:
        return "no changes"
    before, after = {e.model for e in old.models}, {e.model for e in new.models}
    parts = [
        f"{len(names)} model(s) {kind} ({', '.join(sorted(names))})"
        for kind, names in (("added", after - before), ("removed", before - after))
        if names
    ]
    counts = {kind: sum(c.change == kind for c in changes) for kind in ("changed", "added")}
    removed = len(changes) - counts["changed"] - counts["added"]
    parts.append(
        f"{counts['changed']} value(s) changed, {counts['added']} added, {removed} removed"
    )
    return "; ".join(parts)


def _label(snapshot: PricingSnapshot) -> str:
    return f"reviewed {snapshot.reviewed_on.isoformat()} by {snapshot.reviewed_by}"


def changes_table(
    changes: list[PriceChange], old: PricingSnapshot, new: PricingSnapshot, names: tuple[str, str]
) -> str:
    """The changes as a plain-text table under a line naming both snapshots."""
    lines = [
        f"old: {names[0]} ({_label(old)}, {old.source_url})",
        f"new: {names[1]} ({_label(new)}, {new.source_url})",
        "",
    ]
    if changes:
        header = ("change", "model", "effective_from", "field", "old", "new", "change %")
        rows = [header, *(tuple(asdict(c).values()) for c in changes)]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = [
                str(v).rjust(w) if i >= 4 else str(v).ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
    lines.append(_summary(changes, old, new))
    return "\n".join(lines) + "\n"


def changes_csv(changes: list[PriceChange]) -> str:
    """The changes as CSV with a header row (CHANGE_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CHANGE_COLUMNS)
    writer.writerows(tuple(map(spreadsheet_safe, asdict(c).values())) for c in changes)
    return out.getvalue()


def changes_json(
    changes: list[PriceChange], old: PricingSnapshot, new: PricingSnapshot, names: tuple[str, str]
) -> str:
    """The changes as JSON: both snapshots' ids and sources, and one object per change."""

    def about(name: str, snapshot: PricingSnapshot) -> dict[str, str]:
        return {"file": name, "id": snapshot.snapshot_id, "source_url": snapshot.source_url}

    document = {
        "old": about(names[0], old),
        "new": about(names[1], new),
        "summary": _summary(changes, old, new),
        "changes": [asdict(c) for c in changes],
    }
    return json.dumps(document, indent=2) + "\n"
