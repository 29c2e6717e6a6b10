"""Import LiteLLM's price table into a dated pricing snapshot, and write snapshots as YAML.

LiteLLM's `model_prices_and_context_window.json` gives prices per token; the snapshot gives them
per 1M tokens. Every imported price is the table's value × 1,000,000 in Decimal arithmetic (the
JSON is parsed with `parse_float=Decimal`), so it is exact. Nothing is guessed:

- an entry without both an input and an output price per token (and no per-image price), or
  with a price finer than the snapshot holds (float noise in the table), is not imported, with
  the reason; an embedding entry (`mode: embedding`) without an output price is imported with
  `output: 0`, as LiteLLM prices it (an embedding produces no output tokens), and says so;
- `tiered_pricing` ranges of input tokens become the base price (the first range) and tiers
  above each later range's start: LiteLLM prices a request wholly at the range its input falls
  in, as the snapshot prices tiers (`_ranged_price`); ranges over anything else (search results)
  are not imported;
- cost fields the kit does not map (priority and flex service tiers, audio and image tokens,
  1-hour cache writes, search, …) are listed above the entry they belong to;
- a long-context tier is read as LiteLLM reads it: it exists when the table has its input price,
  and a price the tier does not list is the base price (written out, and noted);
- batch prices need both an input and an output batch price, else the entry keeps no batch
  block (batch requests then pay the interactive prices) and says so.

The mapping: input_cost_per_token → input, cache_read_input_token_cost → cached_input,
cache_creation_input_token_cost → cache_write, output_cost_per_token → output,
output_cost_per_reasoning_token → reasoning; the suffix `_batches` → `batch`,
`_above_<N>k_tokens` → a tier above N × 1000 input tokens; `output_cost_per_image` of an entry
without token prices → `per_call` (one image a call).
"""

from __future__ import annotations

import difflib
import gzip
import itertools
import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import MAX_MONEY, ModelPrice, PricingSnapshot, TokenPrices, yaml_document
from .errors import ConfigError, InputError
from .price import TOKEN_PRICES

__all__ = [
    "LitellmImport",
    "SnapshotUpdate",
    "litellm_import",
    "litellm_snapshot_yaml",
    "read_litellm_table",
    "snapshot_yaml",
    "updated_snapshot",
]

_TOKEN_KEYS = {
    "input_cost_per_token": "input",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
    "output_cost_per_token": "output",
    "output_cost_per_reasoning_token": "reasoning",
}
_TOKEN_KEY = re.compile(
    rf"^(?P<key>{'|'.join(_TOKEN_KEYS)})"
    r"(?:_above_(?P<n>\d+)(?P<k>k?)_tokens)?(?P<batch>_batches)?$"
)
_PER_IMAGE = "output_cost_per_image"
_SAMPLE_SPEC = "sample_spec"  # LiteLLM's documented template entry, not a model
# LiteLLM bills these providers' tiers from the threshold itself (>=), not above it
_INCLUSIVE_THRESHOLD_PROVIDERS = frozenset({"xai"})
_ONE_MILLION_EXPONENT = 6


@dataclass(frozen=True)
class LitellmImport:
    """What an import produced: the snapshot (None when no entry could be imported); per
    imported model the cost fields left out and notes on how a block was read; the reason each
    selected entry was not imported."""

    snapshot: PricingSnapshot | None
    unmapped: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # dated names priced exactly as their model, written as its aliases (`_dated_aliases`)
    aliases: dict[str, str] = field(default_factory=dict)

    def unmapped_fields(self) -> dict[str, int]:
        """Cost fields left out, with how many imported models had each."""
        counts: dict[str, int] = {}
        for fields in self.unmapped.values():
            for name in fields:
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))

    def comments(self) -> dict[str, list[str]]:
        """The comment lines above each imported model's entry."""
        models = sorted(set(self.unmapped) | set(self.notes))
        return {
            m: ([f"not imported: {', '.join(self.unmapped[m])}"] if m in self.unmapped else [])
            + self.notes.get(m, [])
            for m in models
        }


def read_litellm_table(path: Path) -> dict[str, Any]:
    """LiteLLM's price table at path (JSON, or gzip-compressed JSON when it ends in .gz),
    numbers as Decimal (InputError when unreadable)."""
    if not path.is_file():
        raise InputError(path, None, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            table = json.load(handle, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"line {exc.lineno}, column {exc.colno}", "malformed JSON") from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        raise InputError(path, None, "expected UTF-8 JSON text (gzip-compressed if .gz)") from None
    if not isinstance(table, dict):
        raise InputError(path, None, "expected an object of model entries at the top level")
    return table


class _NotImported(Exception):
    """An entry the importer leaves out; the message is the reason."""


def _number(key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _NotImported(f"{key} is {value!r}, expected a number")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise _NotImported(f"{key} is {value}, expected a number ≥ 0")
    return value


def _scaled(key: str, per_unit: Decimal, exponent: int, places: int, unit: str) -> Decimal:
    value = per_unit.scaleb(exponent)
    if value > MAX_MONEY:  # beyond any price, and beyond exact arithmetic at the snapshot's places
        raise _NotImported(f"{key} {per_unit} is {value} {unit}, expected at most {MAX_MONEY:,}")
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise _NotImported(
            f"{key} {per_unit} is {value} {unit}, finer than the snapshot's {places} decimal "
            "places (float noise in the table?)"
        )
    return value.normalize() if value else Decimal(0)


def _is_cost_field(key: str) -> bool:
    return "cost" in key or "uplift" in key or key in {"tiered_pricing", "off_peak_pricing"}


def _blocks(entry: dict[str, Any]) -> tuple[dict[tuple[int, bool], dict[str, Decimal]], list[str]]:
    """Per-1M prices by (threshold, batch), and the cost fields left out."""
    blocks: dict[tuple[int, bool], dict[str, Decimal]] = {}
    unmapped: list[str] = []
    for key, value in entry.items():
        if value is None:
            continue
        match = _TOKEN_KEY.match(key)
        if match is None:
            if _is_cost_field(key) and key != _PER_IMAGE:
                unmapped.append(key)
            continue
        number = _number(key, value)
        threshold = int(match["n"]) * (1000 if match["k"] else 1) if match["n"] else 0
        block = blocks.setdefault((threshold, bool(match["batch"])), {})
        per_1m = _scaled(key, number, _ONE_MILLION_EXPONENT, 6, "per 1M tokens")
        block[_TOKEN_KEYS[match["key"]]] = per_1m
    return blocks, unmapped


def _batch_block(
    prices: dict[str, Decimal] | None, notes: list[str], tier: str = ""
) -> dict[str, Decimal] | None:
    if not prices:
        return None
    if "input" in prices and "output" in prices:
        return prices
    missing = " or ".join(n for n in ("input", "output") if n not in prices)
    where = f"{tier}: batch" if tier else "batch"
    pay = "the tier's prices" if tier else "the interactive prices"
    notes.append(
        f"{where} prices not imported: the table lists no {missing} batch price; batch requests "
        f"pay {pay}"
    )
    return None


def _tier(
    threshold: int,
    prices: dict[str, Decimal],
    base: dict[str, Decimal],
    batch: dict[str, Decimal] | None,
    provider: str,
    notes: list[str],
) -> dict[str, Any] | None:
    label = f"tier above {threshold:,} input tokens"
    if "input" not in prices:
        # LiteLLM only applies a tier whose input price it lists
        notes.append(f"{label} not imported: the table lists no input price for it")
        return None
    filled = [name for name in TOKEN_PRICES if name not in prices and name in base]
    if filled:
        notes.append(
            f"{label}: {', '.join(filled)} from the base prices (the table lists none for the "
            "tier; LiteLLM prices the tier so)"
        )
    tier: dict[str, Any] = {
        "above_input_tokens": threshold,
        "per_1m_tokens": {**{n: base[n] for n in filled}, **prices},
    }
    if provider in _INCLUSIVE_THRESHOLD_PROVIDERS:
        tier["above_input_tokens"] = threshold - 1
        notes.append(
            f"{label}: written as above {threshold - 1:,} because LiteLLM bills {provider}'s "
            f"tier from {threshold:,} input tokens on"
        )
    batch = _batch_block(batch, notes, label)
    if batch:
        tier["batch"] = batch
    return tier


def _model_price(
    name: str, entry: Any, effective_from: datetime
) -> tuple[ModelPrice, list[str], list[str]]:
    """The entry's ModelPrice, the cost fields left out and notes (or _NotImported)."""
    if name == _SAMPLE_SPEC:
        raise _NotImported("LiteLLM's template entry, not a model")
    if not isinstance(entry, dict):
        raise _NotImported("expected an object of prices")
    if entry.get("tiered_pricing"):
        return _ranged_price(name, entry, effective_from)
    blocks, unmapped = _blocks(entry)
    notes: list[str] = []
    base = blocks.pop((0, False), {})
    document: dict[str, Any] = {"model": name, "effective_from": effective_from}
    if base and "output" not in base and entry.get("mode") == "embedding":
        base["output"] = Decimal(0)  # LiteLLM prices the missing output so; none is produced
        notes.append("output: 0: an embedding entry lists no output price and produces no output")
    if base:
        missing = [k for k, n in _TOKEN_KEYS.items() if n in ("input", "output") and n not in base]
        if missing:
            raise _NotImported(f"no {' or '.join(missing)} (a token price needs both)")
        document["per_1m_tokens"] = base
        if entry.get(_PER_IMAGE) is not None:
            unmapped.append(_PER_IMAGE)  # priced per token: a per-image price would add to it
    elif entry.get(_PER_IMAGE) is not None:
        per_image = _number(_PER_IMAGE, entry[_PER_IMAGE])
        document["per_call"] = _scaled(_PER_IMAGE, per_image, 0, 12, "per image")
        notes.append(f"per_call is {_PER_IMAGE}: one image a call")
    elif unmapped:
        raise _NotImported(
            f"no input and output price per token; priced by {', '.join(sorted(unmapped))}, "
            "which the importer does not map"
        )
    else:
        raise _NotImported("no price")
    if blocks and not base:
        raise _NotImported("batch or tier prices without base per-token prices")
    batch = _batch_block(blocks.pop((0, True), None), notes)
    if batch:
        document["batch"] = batch
    provider = str(entry.get("litellm_provider", ""))
    tiers = []
    for threshold in sorted({t for t, _ in blocks}):
        tier = _tier(
            threshold,
            blocks.get((threshold, False), {}),
            base,
            blocks.get((threshold, True)),
            provider,
            notes,
        )
        if tier:
            if batch and "batch" not in tier:
                notes.append(
                    f"tier above {threshold:,} input tokens has no batch prices: batch requests "
                    "above it pay the tier's prices"
                )
            tiers.append(tier)
    if tiers:
        document["tiers"] = tiers
    try:
        return ModelPrice.model_validate(document), sorted(unmapped), notes
    except ValidationError as exc:
        raise _NotImported(exc.errors()[0]["msg"]) from None


def _range_bounds(key: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _NotImported(f"{key} is {value!r}, expected [start, end] in input tokens")
    start, end = (_number(key, v) for v in value)
    if start != start.to_integral_value() or end != end.to_integral_value() or end <= start:
        raise _NotImported(f"{key} is {value!r}, expected whole token counts, start < end")
    return int(start), int(end)


def _ranged_price(
    name: str, entry: dict[str, Any], effective_from: datetime
) -> tuple[ModelPrice, list[str], list[str]]:
    """The ModelPrice of an entry priced by `tiered_pricing` ranges of input tokens.

    LiteLLM (`select_tier_for_input`, the Dashscope and Volcengine calculators) picks the one
    range a request's input tokens fall in (start < input <= end; above the last, the last)
    and prices every token of the request at it. That is the snapshot's tier rule: the first
    range is the base price, each later range a tier above its start. Inside a range a missing
    cache or reasoning price falls back to the range's input or output price, in both."""
    ranges = entry["tiered_pricing"]
    if not isinstance(ranges, list) or not all(isinstance(r, dict) for r in ranges):
        raise _NotImported("tiered_pricing is not a list of ranges")
    if not all("range" in r for r in ranges):
        keys = sorted({k for r in ranges for k in r if k.endswith("range")})
        raise _NotImported(
            f"priced by tiered_pricing over {', '.join(keys) or 'no range'} (not input tokens), "
            "which the kit does not price"
        )
    blocks, unmapped = _blocks({k: v for k, v in entry.items() if k != "tiered_pricing"})
    if set(blocks) - {(0, False)}:
        raise _NotImported("both tiered_pricing ranges and batch or _above_ prices")
    bounded = sorted(
        (_range_bounds(f"tiered_pricing[{i}].range", r["range"]), i) for i, r in enumerate(ranges)
    )
    if bounded[0][0][0] != 0 or any(a[0][1] != b[0][0] for a, b in itertools.pairwise(bounded)):
        spans = ", ".join(f"{s:,}-{e:,}" for (s, e), _ in bounded)
        raise _NotImported(f"tiered_pricing ranges {spans} do not run on from 0 without gaps")
    prices: list[tuple[int, dict[str, Decimal]]] = []
    for (start, _), i in bounded:
        found, left_out = _blocks({k: v for k, v in ranges[i].items() if k != "range"})
        unmapped += [f"tiered_pricing[{i}].{key}" for key in left_out]
        plain = found.pop((0, False), {})
        if found or "input" not in plain or "output" not in plain:
            raise _NotImported(
                f"tiered_pricing[{i}] needs an input and an output price per token, and no "
                "batch or _above_ prices"
            )
        prices.append((start, plain))
    notes = [
        "tiered_pricing: a request pays every token at the range its input tokens fall in "
        "(start < input <= end; above the last range, the last), as LiteLLM prices it"
    ]
    if blocks.get((0, False)) and blocks[(0, False)] != prices[0][1]:
        notes.append("the entry's own per-token prices differ from its first range: not used")
    document = {
        "model": name,
        "effective_from": effective_from,
        "per_1m_tokens": prices[0][1],
        "tiers": [{"above_input_tokens": s, "per_1m_tokens": p} for s, p in prices[1:]],
    }
    try:
        return ModelPrice.model_validate(document), sorted(unmapped), notes
    except ValidationError as exc:
        raise _NotImported(exc.errors()[0]["msg"]) from None


def _selected(
    table: dict[str, Any], models: Iterable[str] | None, provider: str | None
) -> tuple[list[str], dict[str, str]]:
    if models is not None:
        wanted = sorted(set(models))
        missing = {}
        for m in wanted:
            if m not in table:  # a typo, or a key with its provider's prefix
                close = difflib.get_close_matches(m, table, n=1, cutoff=0.8)
                missing[m] = "not in the table" + (f" (did you mean {close[0]}?)" if close else "")
        return [m for m in wanted if m in table], missing
    if provider is not None:
        names = [
            m
            for m, e in table.items()
            if isinstance(e, dict) and e.get("litellm_provider") == provider
        ]
        return sorted(names), {}
    return sorted(table), {}


# a model's dated snapshot: gpt-4o-2024-08-06, claude-3-5-sonnet-20241022, gpt-4-0613
_DATED = re.compile(r"^(?P<base>.+)-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


# LiteLLM's `litellm_provider` of a model's own maker, and the maker's name (FOCUS
# PublisherName). Hosts of other makers' models (azure, bedrock, groq, together_ai, …) name no
# publisher: the entry's model does, and the snapshot leaves it to the reviewer.
_PUBLISHERS = {
    "openai": "OpenAI",
    "text-completion-openai": "OpenAI",
    "anthropic": "Anthropic",
    "gemini": "Google",
    "vertex_ai-language-models": "Google",
    "vertex_ai-embedding-models": "Google",
    "vertex_ai-image-models": "Google",
    "mistral": "Mistral AI",
    "codestral": "Mistral AI",
    "deepseek": "DeepSeek",
    "xai": "xAI",
    "cohere": "Cohere",
    "cohere_chat": "Cohere",
    "perplexity": "Perplexity",
    "moonshot": "Moonshot AI",
    "dashscope": "Alibaba Cloud",
}


def _dated_aliases(prices: list[ModelPrice]) -> dict[str, str]:
    """{dated name: model} for the entries named as a dated snapshot of another entry and priced
    exactly as it (every price, tier and batch block, from the same day). A provider bills, and
    a gateway logs, either name for the same model: as an alias both read as one, so the
    reconciliation matches them. A dated snapshot priced otherwise keeps its own entry."""
    by_name = {p.model: p for p in prices}
    aliases = {}
    for price in prices:
        found = _DATED.match(price.model)
        base = by_name.get(found["base"]) if found else None
        if base is not None and price.model_copy(update={"model": base.model}) == base:
            aliases[price.model] = base.model
    return aliases


def litellm_import(
    table: dict[str, Any],
    *,
    reviewed_by: str,
    source_url: str,
    reviewed_on: date,
    effective_from: date,
    models: Iterable[str] | None = None,
    provider: str | None = None,
    keep_dated: bool = False,
) -> LitellmImport:
    """The pricing snapshot of the selected entries of LiteLLM's table (`models`, or every
    entry of `provider`, or all), with what was left out and why. A dated name priced as its
    model becomes the model's alias (`_dated_aliases`) unless `keep_dated`."""
    names, skipped = _selected(table, models, provider)
    start = datetime(effective_from.year, effective_from.month, effective_from.day, tzinfo=UTC)
    prices: list[ModelPrice] = []
    unmapped: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for name in names:
        try:
            price, entry_unmapped, entry_notes = _model_price(name, table[name], start)
        except _NotImported as reason:
            skipped[name] = str(reason)
            continue
        publisher = _PUBLISHERS.get(str(table[name].get("litellm_provider", "")))
        if publisher:
            price = price.model_copy(update={"publisher": publisher})
        prices.append(price)
        if entry_unmapped:
            unmapped[name] = entry_unmapped
        if entry_notes:
            notes[name] = entry_notes
    aliases = {} if keep_dated else _dated_aliases(prices)
    prices = [p for p in prices if p.model not in aliases]
    snapshot = None
    if prices:
        snapshot = PricingSnapshot(
            currency="USD",  # LiteLLM's table is in US dollars
            source_url=source_url,
            reviewed_on=reviewed_on,
            reviewed_by=reviewed_by,
            failed_calls_billable=False,
            models=prices,
            aliases=dict(sorted(aliases.items())),
        )
    for alias in aliases:  # its notes are its model's
        unmapped.pop(alias, None)
        notes.pop(alias, None)
    return LitellmImport(snapshot, unmapped, notes, dict(sorted(skipped.items())), aliases)


# --- writing ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@+:-]*")


def _text(value: str) -> str:
    """A YAML scalar for value: plain when the kit's YAML reader reads it back as the same
    string (an impossible date such as 2026-13-01 it rejects, so that is quoted)."""
    if _PLAIN.fullmatch(value) and not value.endswith(":"):
        try:
            if yaml_document(value, "") == value:
                return value
        except ConfigError:
            pass
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _decimal(value: Decimal) -> str:
    text = format(value.normalize() if value else Decimal(0), "f")
    # config reads an unquoted 0.15 as a float and takes its shortest repr: quote what that loses
    return text if Decimal(repr(float(text))) == Decimal(text) else f"'{text}'"


def _moment(value: datetime) -> str:
    value = value.astimezone(UTC)
    if value.time() == datetime.min.time():
        return value.date().isoformat()
    return value.isoformat().replace("+00:00", "Z")


def _token_prices(block: TokenPrices) -> str:
    values = ((n, getattr(block, n)) for n in TOKEN_PRICES)
    fields = [f"{n}: {_decimal(v)}" for n, v in values if v is not None]
    return "{" + ", ".join(fields) + "}"


def _entry_lines(entry: ModelPrice) -> list[str]:
    lines = [
        f"  - model: {_text(entry.model)}",
        f"    effective_from: {_moment(entry.effective_from)}",
    ]
    if entry.effective_to is not None:
        lines.append(f"    effective_to: {_moment(entry.effective_to)}")
    for key in ("publisher", "provider"):
        if getattr(entry, key) is not None:
            lines.append(f"    {key}: {_text(getattr(entry, key))}")
    if entry.per_1m_tokens is not None:
        lines.append(f"    per_1m_tokens: {_token_prices(entry.per_1m_tokens)}")
    if entry.batch is not None:
        lines.append(f"    batch: {_token_prices(entry.batch)}")
    if entry.tiers:
        lines.append("    tiers:")
        for tier in entry.tiers:
            lines.append(f"      - above_input_tokens: {tier.above_input_tokens}")
            lines.append(f"        per_1m_tokens: {_token_prices(tier.per_1m_tokens)}")
            if tier.batch is not None:
                lines.append(f"        batch: {_token_prices(tier.batch)}")
    if entry.per_call is not None:
        lines.append(f"    per_call: {_decimal(entry.per_call)}")
    return lines


def _comment(text: str, indent: str = "") -> list[str]:
    if not text:
        return [f"{indent}#"]
    wrapped = textwrap.wrap(text, 98 - len(indent), break_on_hyphens=False) or [""]
    return [f"{indent}# {wrapped[0]}", *(f"{indent}#   {line}" for line in wrapped[1:])]


def snapshot_yaml(
    snapshot: PricingSnapshot,
    *,
    header: Iterable[str] = (),
    notes: dict[str, list[str]] | None = None,
) -> str:
    """The snapshot as pricing.yaml text: models sorted, keys in a fixed order, decimals as
    plain text; `header` lines and per-model `notes` become comments. It reads back as the same
    snapshot."""
    lines = [line for text in header for line in _comment(text)]
    lines += [
        f"currency: {snapshot.currency}",
        f"source_url: {_text(snapshot.source_url)}",
        f"reviewed_on: {snapshot.reviewed_on.isoformat()}",
        f"reviewed_by: {_text(snapshot.reviewed_by)}",
        f"failed_calls_billable: {str(snapshot.failed_calls_billable).lower()}",
        "models:",
    ]
    notes = notes or {}
    for entry in sorted(snapshot.models, key=lambda e: (e.model, e.effective_from)):
        lines += [line for note in notes.get(entry.model, []) for line in _comment(note, "  ")]
        lines += _entry_lines(entry)
    if snapshot.aliases:
        lines.append("aliases:")
        lines += [f"  {_text(a)}: {_text(m)}" for a, m in sorted(snapshot.aliases.items())]
    text = "\n".join(lines) + "\n"
    if PricingSnapshot.model_validate(yaml_document(text, "pricing.yaml")) != snapshot.model_copy(
        update={"models": sorted(snapshot.models, key=lambda e: (e.model, e.effective_from))}
    ):
        raise AssertionError("the written pricing.yaml does not read back as the snapshot")
    return text


def litellm_snapshot_yaml(result: LitellmImport, table_name: str) -> str:
    """pricing.yaml text of an import: a header on where the prices come from and what was not
    imported, and above each entry what was left out or filled in."""
    if result.snapshot is None:
        raise ValueError("nothing was imported")
    header = [
        f"Pricing snapshot imported by `allocation-kit pricing import --from litellm` from "
        f"{table_name}. Per-1M prices are the table's per-token prices x 1,000,000, exactly. "
        "Review every entry before use: comments above an entry say what was left out or filled "
        "in."
    ]
    if result.aliases:
        header += [
            "",
            f"Dated names priced exactly as their model ({len(result.aliases)}) are its "
            "aliases (at the end), so a bill and a ledger that name the model either way "
            "match; `--keep-dated` keeps them as entries of their own.",
        ]
    if result.skipped:
        header += ["", f"Not imported ({len(result.skipped)}):"]
        header += [f"  {model}: {reason}" for model, reason in result.skipped.items()]
    header.append("")
    return snapshot_yaml(result.snapshot, header=header, notes=result.comments())


# --- updating a reviewed snapshot ---------------------------------------------------------------


@dataclass
class SnapshotUpdate:
    """What `updated_snapshot` did: the models whose price changed (their entry in effect ends
    where the new one starts), the models added, those priced the same, and those it left as
    they were (not in the import, ended by the reviewer, or priced through an alias)."""

    snapshot: PricingSnapshot
    repriced: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _effective(block: TokenPrices | None) -> tuple | None:
    """A block's prices as they apply: a missing cached_input or cache_write is its input,
    a missing reasoning its output (so an explicit equal price is no change)."""
    if block is None:
        return None
    fallback = {"cached_input": "input", "cache_write": "input", "reasoning": "output"}
    return tuple(
        getattr(block, name) if getattr(block, name) is not None else getattr(block, fallback[name])
        for name in TOKEN_PRICES
    )


def _prices_of(entry: ModelPrice) -> tuple:
    """What an entry charges, as the pipeline applies it: a missing batch block is the
    interactive prices, a tier's likewise."""
    plain = _effective(entry.per_1m_tokens)
    tiers = tuple(
        (t.above_input_tokens, _effective(t.per_1m_tokens), _effective(t.batch or t.per_1m_tokens))
        for t in entry.tiers
    )
    return plain, _effective(entry.batch) if entry.batch else plain, tiers, entry.per_call


def updated_snapshot(
    old: PricingSnapshot, new: PricingSnapshot, source: str, keep_dated: bool = False
) -> SnapshotUpdate:
    """`old` (a reviewed pricing.yaml) with the prices of `new` (an import of every entry, dated
    names included, all starting on one day) in effect from that day.

    A model whose price changed keeps its earlier entry, ending that day, so earlier periods
    are priced as they were; the new entry keeps the earlier one's `publisher` and `provider`
    (edits of the reviewer). An entry that starts that very day is replaced. Left as they are:
    a model priced the same, a model the import does not have, one whose entries the reviewer
    ended before that day, and a name the snapshot prices through an alias. A dated name the
    snapshot does not have, priced exactly as its model, becomes the model's alias unless
    `keep_dated`. The review fields are the import's. `source` names the old file in errors."""
    if new.currency != old.currency:
        raise ConfigError(source, "currency", f"is {old.currency}; the import is in {new.currency}")
    result = SnapshotUpdate(snapshot=old)
    entries = list(old.models)
    names = {e.model for e in old.models}
    dated = {} if keep_dated else _dated_aliases(list(new.models))
    dated = {a: m for a, m in dated.items() if a not in names and a not in old.aliases}
    for entry in new.models:
        start = entry.effective_from
        if entry.model in old.aliases and entry.model not in names:
            result.kept.append(entry.model)  # priced through the alias, as reviewed
            continue
        if entry.model in dated:
            continue
        mine = [e for e in entries if e.model == entry.model]
        later = [e for e in mine if e.effective_from > start]
        if later:
            raise ConfigError(
                source, f"models: {entry.model}", f"has an entry from "
                f"{_moment(later[0].effective_from)}, after the import's {_moment(start)}; import "
                "with a later --effective-from, or remove that entry"
            )  # fmt: skip
        current = next((e for e in mine if e.effective_to is None or e.effective_to > start), None)
        if mine and current is None:
            result.kept.append(entry.model)  # ended by the reviewer: not brought back
            continue
        if current is not None and _prices_of(current) == _prices_of(entry):
            result.unchanged.append(entry.model)
            continue
        hand = {k: getattr(current, k) for k in ("publisher", "provider")} if current else {}
        entry = entry.model_copy(
            update={k: v for k, v in hand.items() if v is not None}
            | {"effective_to": current.effective_to if current else None}
        )
        if current is None:
            result.added.append(entry.model)
        else:
            result.repriced.append(entry.model)
            entries.remove(current)
            if current.effective_from < start:  # the same day: the new price replaces it
                entries.append(current.model_copy(update={"effective_to": start}))
        entries.append(entry)
    imported = {e.model for e in new.models}
    result.kept = sorted({*result.kept, *(names - imported)})
    kept = {e.model for e in entries}  # an alias naming an entry: the entry prices it
    aliases = {a: m for a, m in (old.aliases | new.aliases | dated).items() if a not in kept}
    update = {
        "source_url": new.source_url,
        "reviewed_on": new.reviewed_on,
        "reviewed_by": new.reviewed_by,
        "models": sorted(entries, key=lambda e: (e.model, e.effective_from)),
        "aliases": dict(sorted(aliases.items())),
    }
    try:  # the snapshot's own rules (no overlapping entries, aliases of priced models)
        result.snapshot = PricingSnapshot.model_validate(old.model_dump() | update)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        expected = f"the update would break it: {problem['msg']}"
        raise ConfigError(source, where or None, expected) from None
    return result
