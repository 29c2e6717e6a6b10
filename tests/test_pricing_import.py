"""pricing import --from litellm: every imported price is the table's per-token price × 1,000,000
exactly; what cannot be imported is reported, never guessed; the YAML reads back as the snapshot."""

import gzip
import hashlib
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from allocation_kit.config import PricingSnapshot, load_workspace, parse_document
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.pricing_import import (
    litellm_import,
    litellm_snapshot_yaml,
    read_litellm_table,
    snapshot_yaml,
)

from .conftest import cli, request

TABLE = Path(__file__).parent / "data" / "litellm" / "model_prices_and_context_window.json.gz"
MILLION = Decimal(1_000_000)
FIELDS = {
    "input": "input_cost_per_token",
    "cached_input": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "output": "output_cost_per_token",
    "reasoning": "output_cost_per_reasoning_token",
}
DAY = date(2026, 10, 1)


def imported(table, **selection):
    return litellm_import(
        table,
        reviewed_by="finops-analyst",
        source_url="https://example.com/model_prices_and_context_window.json",
        reviewed_on=DAY,
        effective_from=DAY,
        **selection,
    )


@pytest.fixture(scope="module")
def table():
    return read_litellm_table(TABLE)


def test_the_vendored_table_is_litellm_1_109_1_unchanged_and_small():
    raw = gzip.decompress(TABLE.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == (
        "8f8060d8ce7a40c91b995c74d6a27657543d49e3c1c53430dabd556f244392c6"
    )
    assert (len(raw), TABLE.stat().st_size < 200_000) == (3_176_369, True)


def expected_block(entry: dict, suffix: str) -> dict[str, Decimal]:
    """Per-1M prices of one block, computed independently: table value × 1,000,000."""
    return {
        name: Decimal(entry[key + suffix]) * MILLION
        for name, key in FIELDS.items()
        if entry.get(key + suffix) is not None
    }


def actual_block(block) -> dict[str, Decimal]:
    if block is None:
        return {}
    return {n: getattr(block, n) for n in FIELDS if getattr(block, n) is not None}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "xai", "bedrock_converse"])
def test_every_imported_price_is_the_tables_price_times_one_million(table, provider):
    result = imported(table, provider=provider, keep_dated=True)
    entries = result.snapshot.models
    names = sorted(m for m, e in table.items() if e.get("litellm_provider") == provider)
    assert sorted([e.model for e in entries] + list(result.skipped)) == names
    assert len(entries) > 10
    for price in entries:
        entry = table[price.model]
        if price.per_call is not None:  # an image model without token prices
            assert (price.per_call, price.per_1m_tokens) == (entry["output_cost_per_image"], None)
            continue
        base = expected_block(entry, "")
        assert actual_block(price.per_1m_tokens) == base, price.model
        batch = expected_block(entry, "_batches")
        if "input" in batch and "output" in batch:
            assert actual_block(price.batch) == batch, price.model
        else:
            assert price.batch is None, price.model
        for tier in price.tiers:
            above = tier.above_input_tokens + (provider == "xai")  # LiteLLM: xai's are inclusive
            suffix = f"_above_{above // 1000}k_tokens"
            listed = expected_block(entry, suffix)
            assert actual_block(tier.per_1m_tokens) == {**base, **listed}, price.model
            tier_batch = expected_block(entry, suffix + "_batches")
            if "input" in tier_batch and "output" in tier_batch:
                assert actual_block(tier.batch) == tier_batch, price.model
            else:
                assert tier.batch is None, price.model
    # by default a dated name priced exactly as its model is the model's alias, and only that
    folded = imported(table, provider=provider)
    by_name = {e.model: e for e in entries}
    assert folded.snapshot.aliases == folded.aliases
    assert sorted([e.model for e in folded.snapshot.models] + list(folded.aliases)) == sorted(
        by_name
    )
    for alias, model in folded.aliases.items():
        assert by_name[alias].model_copy(update={"model": model}) == by_name[model], alias


def test_dated_names_priced_as_their_model_are_its_aliases_and_others_keep_their_price(table):
    result = imported(
        table, models=["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-05-13", "gpt-4o-mini"]
    )
    # 2024-05-13 costs more than gpt-4o does today: its own entry
    assert [e.model for e in result.snapshot.models] == [
        "gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-mini"
    ]  # fmt: skip
    assert result.snapshot.aliases == {"gpt-4o-2024-08-06": "gpt-4o"}
    text = litellm_snapshot_yaml(result, TABLE.name)
    assert text.endswith("aliases:\n  gpt-4o-2024-08-06: gpt-4o\n")
    assert "Dated names priced exactly as their model (1) are its aliases" in text


def test_the_imported_snapshot_writes_deterministic_yaml_that_reads_back(table, tmp_path):
    result = imported(table, provider="openai")
    text = litellm_snapshot_yaml(result, TABLE.name)
    assert text == litellm_snapshot_yaml(imported(table, provider="openai"), TABLE.name)
    (tmp_path / "pricing.yaml").write_text(text)
    loaded = parse_document(tmp_path / "pricing.yaml", PricingSnapshot)
    assert loaded == result.snapshot
    models = [e["model"] for e in yaml.safe_load(text)["models"]]
    assert models == sorted(models)
    prices = [line for line in text.splitlines() if "{input: " in line or "per_call:" in line]
    assert not [line for line in prices if re.search(r"\d[eE][+-]?\d|'", line)]  # plain text


def test_known_openai_entries_import_as_listed(table):
    result = imported(table, models=["gpt-5.4", "gpt-4o", "gpt-image-1", "dall-e-3"])
    gpt54 = next(e for e in result.snapshot.models if e.model == "gpt-5.4")
    assert gpt54.per_1m_tokens.model_dump(exclude_none=True) == {
        "input": Decimal("2.5"), "cached_input": Decimal("0.25"), "output": Decimal("15")
    }  # fmt: skip
    assert gpt54.batch.cached_input == Decimal("0.13")
    assert [(t.above_input_tokens, t.per_1m_tokens.output) for t in gpt54.tiers] == [
        (272_000, Decimal("22.5"))
    ]
    assert result.skipped == {
        "dall-e-3": "not in the table",
        "gpt-image-1": "no output_cost_per_token (a token price needs both)",
    }
    assert "input_cost_per_token_priority" in result.unmapped["gpt-4o"]


def test_an_embedding_model_writes_its_free_output_as_an_explicit_zero(table):
    # pricing.yaml requires output: the table's 0.0 is written, never left out; an embedding
    # entry listing no output price gets 0 too (LiteLLM prices it so) and a comment says why
    result = imported(
        table, models=["text-embedding-3-small", "mistral/mistral-embed", "gpt-image-1"]
    )
    text = litellm_snapshot_yaml(result, TABLE.name)
    assert text.split("models:\n")[1] == (
        "  # output: 0: an embedding entry lists no output price and produces no output\n"
        "  - model: mistral/mistral-embed\n"
        "    effective_from: 2026-10-01\n"
        '    publisher: "Mistral AI"\n'  # its LiteLLM provider, mistral, is its maker
        "    per_1m_tokens: {input: 0.1, output: 0}\n"
        "  - model: text-embedding-3-small\n"
        "    effective_from: 2026-10-01\n"
        "    publisher: OpenAI\n"
        "    per_1m_tokens: {input: 0.02, output: 0}\n"
        "    batch: {input: 0.01, output: 0}\n"
    )
    # any other entry without an output price is not imported: a missing price is not a zero
    assert result.skipped == {"gpt-image-1": "no output_cost_per_token (a token price needs both)"}


CRAFTED = {
    "sample_spec": {"input_cost_per_token": "0.0", "litellm_provider": "one of …"},
    "complete": {
        "input_cost_per_token": Decimal("2.5E-7"),
        "output_cost_per_token": Decimal("0.000002"),
        "cache_read_input_token_cost": Decimal("2.5E-8"),
        "input_cost_per_token_batches": Decimal("1.25E-7"),
        "output_cost_per_token_batches": Decimal("0.000001"),
        "input_cost_per_token_above_200k_tokens": Decimal("5E-7"),
        "output_cost_per_token_above_200k_tokens": Decimal("0.000003"),
        "input_cost_per_token_priority": Decimal("5E-7"),
        "input_cost_per_audio_token": Decimal("0.00001"),
        "supports_vision": True,
    },
    "no-output": {"input_cost_per_token": Decimal("1E-7")},
    "float-noise": {
        "input_cost_per_token": Decimal("0.0000029999900000000002"),
        "output_cost_per_token": Decimal("0.000015"),
    },
    "ranges": {
        "tiered_pricing": [  # out of order, as a table may list them
            {
                "input_cost_per_token": Decimal("2.5E-7"),
                "output_cost_per_token": Decimal("0.000002"),
                "input_cost_per_query": Decimal("0.01"),
                "range": [Decimal("256000.0"), Decimal("1000000.0")],
            },
            {
                "input_cost_per_token": Decimal("5E-8"),
                "cache_read_input_token_cost": Decimal("1E-8"),
                "output_cost_per_token": Decimal("4E-7"),
                "range": [0, Decimal("256000.0")],
            },
        ],
        "input_cost_per_token": Decimal("6E-8"),
        "output_cost_per_token": Decimal("4E-7"),
    },
    "gappy-ranges": {
        "tiered_pricing": [
            {"input_cost_per_token": 0, "output_cost_per_token": 0, "range": [0, 32000]},
            {"input_cost_per_token": 0, "output_cost_per_token": 0, "range": [64000, 128000]},
        ]
    },
    "ranges-without-output": {
        "tiered_pricing": [{"input_cost_per_token": Decimal("5E-8"), "range": [0, 256000]}]
    },
    "search-ranges": {
        "tiered_pricing": [
            {"input_cost_per_query": Decimal("0.005"), "max_results_range": [0, 25]},
            {"input_cost_per_query": Decimal("0.025"), "max_results_range": [26, 100]},
        ]
    },
    "half-batch": {
        "input_cost_per_token": Decimal("0.000001"),
        "output_cost_per_token": Decimal("0.000004"),
        "input_cost_per_token_batches": Decimal("5E-7"),
    },
    "per-second": {"input_cost_per_second": Decimal("0.0001")},
    "painter": {"output_cost_per_image": Decimal("0.04"), "input_cost_per_image": 0},
    "wrong-type": {"input_cost_per_token": "cheap", "output_cost_per_token": 0},
    # beyond any price, and beyond exact decimal arithmetic (once a crash of the whole import)
    "huge": {"input_cost_per_token": Decimal("1E+308"), "output_cost_per_token": 0},
}


def test_partial_and_unknown_entries_are_reported_never_guessed():
    result = imported(CRAFTED, models=[*CRAFTED, "absent-model", "paintr"])
    assert result.skipped == {
        "absent-model": "not in the table",
        "paintr": "not in the table (did you mean painter?)",  # a hint, never a guess
        "float-noise": "input_cost_per_token 0.0000029999900000000002 is "
        "2.9999900000000002 per 1M tokens, finer than the snapshot's 6 decimal places "
        "(float noise in the table?)",
        "no-output": "no output_cost_per_token (a token price needs both)",
        "per-second": "no input and output price per token; priced by input_cost_per_second, "
        "which the importer does not map",
        "gappy-ranges": "tiered_pricing ranges 0-32,000, 64,000-128,000 do not run on from 0 "
        "without gaps",
        "ranges-without-output": "tiered_pricing[0] needs an input and an output price per "
        "token, and no batch or _above_ prices",
        "sample_spec": "LiteLLM's template entry, not a model",
        "search-ranges": "priced by tiered_pricing over max_results_range (not input tokens), "
        "which the kit does not price",
        "wrong-type": "input_cost_per_token is 'cheap', expected a number",
        "huge": "input_cost_per_token 1E+308 is 1E+314 per 1M tokens, expected at most "
        "1,000,000,000,000",
    }
    assert [e.model for e in result.snapshot.models] == [
        "complete",
        "half-batch",
        "painter",
        "ranges",
    ]
    assert result.unmapped == {
        "complete": ["input_cost_per_audio_token", "input_cost_per_token_priority"],
        "painter": ["input_cost_per_image"],
        "ranges": ["tiered_pricing[0].input_cost_per_query"],
    }
    assert result.notes == {
        "complete": [
            "tier above 200,000 input tokens: cached_input from the base prices (the table "
            "lists none for the tier; LiteLLM prices the tier so)",
            "tier above 200,000 input tokens has no batch prices: batch requests above it pay "
            "the tier's prices",
        ],
        "half-batch": [
            "batch prices not imported: the table lists no output batch price; batch requests "
            "pay the interactive prices"
        ],
        "painter": ["per_call is output_cost_per_image: one image a call"],
        "ranges": [
            "tiered_pricing: a request pays every token at the range its input tokens fall in "
            "(start < input <= end; above the last range, the last), as LiteLLM prices it",
            "the entry's own per-token prices differ from its first range: not used",
        ],
    }


def test_crafted_entries_write_the_expected_yaml():
    result = imported(CRAFTED, models=["complete", "painter", "ranges"])
    text = litellm_snapshot_yaml(result, "prices.json")
    assert (
        text.split("currency:")[1]
        == """ USD
source_url: https://example.com/model_prices_and_context_window.json
reviewed_on: 2026-10-01
reviewed_by: finops-analyst
failed_calls_billable: false
models:
  # not imported: input_cost_per_audio_token, input_cost_per_token_priority
  # tier above 200,000 input tokens: cached_input from the base prices (the table lists none for the
  #   tier; LiteLLM prices the tier so)
  # tier above 200,000 input tokens has no batch prices: batch requests above it pay the tier's
  #   prices
  - model: complete
    effective_from: 2026-10-01
    per_1m_tokens: {input: 0.25, cached_input: 0.025, output: 2}
    batch: {input: 0.125, output: 1}
    tiers:
      - above_input_tokens: 200000
        per_1m_tokens: {input: 0.5, cached_input: 0.025, output: 3}
  # not imported: input_cost_per_image
  # per_call is output_cost_per_image: one image a call
  - model: painter
    effective_from: 2026-10-01
    per_call: 0.04
  # not imported: tiered_pricing[0].input_cost_per_query
  # tiered_pricing: a request pays every token at the range its input tokens fall in (start < input
  #   <= end; above the last range, the last), as LiteLLM prices it
  # the entry's own per-token prices differ from its first range: not used
  - model: ranges
    effective_from: 2026-10-01
    per_1m_tokens: {input: 0.05, cached_input: 0.01, output: 0.4}
    tiers:
      - above_input_tokens: 256000
        per_1m_tokens: {input: 0.25, output: 2}
"""
    )


def test_names_and_texts_yaml_would_misread_are_quoted():
    snapshot = PricingSnapshot.model_validate(
        {
            "currency": "USD",
            "source_url": "https://example.com/p?a=1#top",
            "reviewed_on": DAY,
            "reviewed_by": "yes",
            "models": [
                {"model": "1:20", "effective_from": DAY, "per_call": "0.04"},
                {"model": "2026-13-01", "effective_from": DAY, "per_call": 1},
                {"model": "a: b", "effective_from": DAY, "per_call": 1},
                {"model": "null", "effective_from": DAY, "per_call": "0.000000000001"},
            ],
        }
    )
    text = snapshot_yaml(snapshot)
    assert 'reviewed_by: "yes"' in text and '- model: "1:20"' in text
    assert '- model: "2026-13-01"' in text  # plain, it would be an impossible date
    assert "per_call: 0.000000000001" in text
    assert PricingSnapshot.model_validate(yaml.safe_load(text)) == snapshot


def test_an_imported_tier_prices_a_long_request_through_the_pipeline(table, workspace, tmp_path):
    text = litellm_snapshot_yaml(imported(table, models=["gpt-5.4"]), TABLE.name)
    rows = [
        request("at", model="gpt-5.4", input_tokens=272_000, output_tokens=1000),
        request("above", model="gpt-5.4", input_tokens=272_001, output_tokens=1000, batch="true"),
    ]
    ledger = period_ledger(
        load_workspace(workspace(rows, pricing=text)), parse_period("2026-10"), validate=False
    )
    # 272,000 × 2.50 + 1,000 × 15.00, then batch above the tier: 272,001 × 2.50 + 1,000 × 11.25
    assert ledger.ledger_cost == Decimal("0.695") + Decimal("0.6912525")


def test_imported_ranges_price_a_request_wholly_at_the_range_its_input_falls_in(table, workspace):
    # dashscope/qwen-plus-latest: 0-256,000 input tokens at 0.4 / 1.2 (reasoning 4) per 1M,
    # 256,000-1,000,000 at 1.2 / 3.6 (reasoning 12); LiteLLM's range is start < input <= end
    result = imported(table, models=["dashscope/qwen-plus-latest"])
    assert result.skipped == {}
    rows = [
        request("at", model="dashscope/qwen-plus-latest", input_tokens=256_000,
                output_tokens=1000, reasoning_tokens=400),
        request("above", model="dashscope/qwen-plus-latest", input_tokens=256_001,
                output_tokens=1000, reasoning_tokens=400),
    ]  # fmt: skip
    text = litellm_snapshot_yaml(result, TABLE.name)
    ledger = period_ledger(
        load_workspace(workspace(rows, pricing=text)), parse_period("2026-10"), validate=False
    )
    # at:    256,000 × 0.4 + 600 × 1.2 + 400 × 4   = 104,720 per 1M
    # above: 256,001 × 1.2 + 600 × 3.6 + 400 × 12  = 314,161.2 per 1M
    assert ledger.ledger_cost == Decimal("0.10472") + Decimal("0.3141612")


def test_every_token_ranged_entry_of_the_table_imports_or_says_why(table):
    ranged = [m for m, e in table.items() if isinstance(e, dict) and e.get("tiered_pricing")]
    result = imported(table, models=ranged, keep_dated=True)
    reasons = sorted(set(result.skipped.values()))
    assert (len(ranged), len(result.snapshot.models), len(result.skipped)) == (56, 50, 6)
    assert [r.split(" is ")[0] if "finer" in r else r for r in reasons] == [
        "input_cost_per_token 1.0000000000000001E-7",
        "input_cost_per_token 2.0000000000000002E-7",
        "input_cost_per_token 4.0000000000000003E-7",
        "priced by tiered_pricing over max_results_range (not input tokens), which the kit "
        "does not price",
    ]


def test_the_command_writes_the_snapshot_and_reports_what_it_left_out(tmp_path, capsys):
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(CRAFTED, default=float))  # these decimals survive a float
    out = tmp_path / "pricing.yaml"
    code = cli(
        "pricing", "import", "--from", "litellm", str(source), "--models", "complete,no-output",
        "--reviewed-by", "finops-analyst", "--source-url", "https://example.com/p.json",
        "--effective-from", "2026-09-01", "--out", str(out),
    )  # fmt: skip
    captured = capsys.readouterr()
    printed = captured.out.splitlines()
    assert (code, captured.err) == (0, "")  # no note: the effective day was given
    assert printed == [
        "not imported: no-output: no output_cost_per_token (a token price needs both)",
        "left out: input_cost_per_audio_token (1 model)",
        "left out: input_cost_per_token_priority (1 model)",
        f"imported 1 model(s) (1 with batch prices, 1 with long-context tiers), 1 not imported: "
        f"{out}",
    ]
    snapshot = parse_document(out, PricingSnapshot)
    assert (snapshot.reviewed_on, snapshot.models[0].effective_from.date()) == (
        date.today(),
        date(2026, 9, 1),
    )
    # run again onto the reviewed snapshot: refused, the file left as it was, unless --force
    written = out.read_bytes()
    again = ("pricing", "import", "--from", "litellm", str(source), "--models", "complete",
             "--reviewed-by", "b", "--source-url", "u", "--out", str(out))  # fmt: skip
    assert cli(*again) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out}: already exists; write the import elsewhere and compare with "
        "`allocation-kit pricing diff`, or pass --force to replace it"
    )
    assert out.read_bytes() == written
    assert cli(*again, "--force") == 0
    assert parse_document(out, PricingSnapshot).reviewed_by == "b"


@pytest.mark.parametrize(
    ("reviewed_on", "effective", "which", "earlier"),
    [
        ([], date.today(), "today",
         (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)),
        (["--reviewed-on", "2026-10-15"], date(2026, 10, 15), "the review day", date(2026, 9, 1)),
        (["--reviewed-on", "2027-01-04"], date(2027, 1, 4), "the review day", date(2026, 12, 1)),
    ],
)  # fmt: skip
def test_without_effective_from_a_note_says_when_the_prices_start(
    tmp_path, capsys, reviewed_on, effective, which, earlier
):
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(CRAFTED, default=float))
    out = tmp_path / "pricing.yaml"
    code = cli(
        "pricing", "import", "--from", "litellm", str(source), "--models", "complete",
        "--reviewed-by", "finops-analyst", "--source-url", "https://example.com/p.json",
        *reviewed_on, "--out", str(out),
    )  # fmt: skip
    assert (code, capsys.readouterr().err.splitlines()) == (
        0,
        [
            f"note: entries take effect from {effective.isoformat()} ({which}); pass "
            f"--effective-from {earlier.isoformat()} to price earlier periods"
        ],
    )
    assert parse_document(out, PricingSnapshot).models[0].effective_from.date() == effective


def test_nothing_importable_exits_3_with_one_line(tmp_path, capsys):
    code = cli(
        "pricing", "import", "--from", "litellm", str(TABLE), "--provider", "no-such-provider",
        "--reviewed-by", "a", "--source-url", "u", "--out", str(tmp_path / "p.yaml"),
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, err) == (3, [f"error: {TABLE}: no entry of provider 'no-such-provider' could "
                               "be imported"])  # fmt: skip
    assert not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "line 1, column 2: malformed JSON"),
        ("[1, 2]", "expected an object of model entries at the top level"),
    ],
)
def test_an_unreadable_table_is_one_line(tmp_path, capsys, content, expected):
    source = tmp_path / "prices.json"
    source.write_text(content)
    code = cli(
        "pricing", "import", "--from", "litellm", str(source), "--reviewed-by", "a",
        "--source-url", "u", "--out", str(tmp_path / "p.yaml"),
    )  # fmt: skip
    assert (code, capsys.readouterr().err.strip()) == (3, f"error: {source}: {expected}")


def test_models_and_provider_together_are_a_usage_error(tmp_path, capsys):
    code = cli(
        "pricing", "import", "--from", "litellm", str(TABLE), "--models", "gpt-4o",
        "--provider", "openai", "--reviewed-by", "a", "--source-url", "u",
        "--out", str(tmp_path / "p.yaml"),
    )  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("give --models or --provider, not both")


def test_a_makers_own_provider_names_the_publisher_a_host_does_not(table):
    """FOCUS PublisherName per model: LiteLLM's provider is the maker for openai, anthropic,
    gemini; azure hosts OpenAI's models for Microsoft, so its entries name no publisher and the
    export falls back to kit.yaml's."""
    result = imported(
        table, models=["gpt-4o", "claude-sonnet-4-5", "gemini/gemini-2.5-flash", "azure/gpt-4o"]
    )
    assert {e.model: e.publisher for e in result.snapshot.models} == {
        "azure/gpt-4o": None,
        "claude-sonnet-4-5": "Anthropic",
        "gemini/gemini-2.5-flash": "Google",
        "gpt-4o": "OpenAI",
    }
