"""pricing import --update: a re-import onto the reviewed snapshot starts changed prices on the
effective day and ends the entries they replace there, so earlier periods price as before; the
reviewer's edits (publisher, provider, aliases, models not in the table) are kept."""

import json
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

from allocation_kit.config import PricingSnapshot, parse_document

from .conftest import cli

REVIEWED = """\
currency: USD
source_url: https://example.com/old.json
reviewed_on: 2026-09-28
reviewed_by: finops-analyst
failed_calls_billable: true
models:
  - model: chat
    effective_from: 2026-01-01
    provider: Acme Gateway
    per_1m_tokens: {input: 1.00, output: 4.00}
  - model: embed
    effective_from: 2026-01-01
    per_1m_tokens: {input: 0.02, output: 0}
  - model: painter
    effective_from: 2026-01-01
    per_call: 0.04
aliases:
  chat-latest: chat
"""

TABLE = {  # per token: chat is repriced, embed is priced the same, newbie is new
    "chat": {"input_cost_per_token": 8e-7, "output_cost_per_token": 4e-6,
             "litellm_provider": "openai"},
    "embed": {"input_cost_per_token": 2e-8, "output_cost_per_token": 0,
              "litellm_provider": "openai", "mode": "embedding"},
    "newbie": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7,
               "litellm_provider": "openai"},
}  # fmt: skip


def update(tmp_path, *more: str) -> int:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps(TABLE))
    return cli(
        "pricing", "import", "--from", "litellm", str(table), "--reviewed-by", "controller",
        "--source-url", "https://example.com/new.json", "--reviewed-on", "2026-11-02",
        "--out", str(tmp_path / "pricing.yaml"), "--update", *more,
    )  # fmt: skip


def summary(tmp_path, day: str, repriced: int, added: int, same: int, kept: int) -> str:
    """The last line `pricing import --update` prints."""
    return (
        f"updated {tmp_path / 'pricing.yaml'}: {repriced} model(s) repriced from {day}, {added} "
        f"added, {same} priced the same, {kept} kept as they were (not in the import, ended, or "
        "priced through an alias)"
    )


def entries(snapshot: PricingSnapshot) -> list[tuple]:
    return [
        (e.model, e.effective_from.date().isoformat(),
         e.effective_to.date().isoformat() if e.effective_to else None,
         e.per_1m_tokens and (e.per_1m_tokens.input, e.per_1m_tokens.output), e.per_call,
         e.publisher, e.provider)
        for e in snapshot.models
    ]  # fmt: skip


def test_a_reimport_starts_changed_prices_and_keeps_everything_else(tmp_path, capsys):
    (tmp_path / "pricing.yaml").write_text(REVIEWED)
    # no --models: the snapshot's own models are updated, not the whole table
    assert update(tmp_path, "--effective-from", "2026-11-01") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "not imported: painter: not in the table"
    assert out[-1] == summary(tmp_path, "2026-11-01", 1, 0, 1, 1)
    snapshot = parse_document(tmp_path / "pricing.yaml", PricingSnapshot)
    d = Decimal
    assert entries(snapshot) == [
        ("chat", "2026-01-01", "2026-11-01", (d("1.00"), d("4.00")), None, None, "Acme Gateway"),
        ("chat", "2026-11-01", None, (d("0.8"), d("4")), None, "OpenAI", "Acme Gateway"),
        ("embed", "2026-01-01", None, (d("0.02"), d("0")), None, None, None),
        ("painter", "2026-01-01", None, None, d("0.04"), None, None),
    ]
    assert (snapshot.reviewed_on.isoformat(), snapshot.reviewed_by, snapshot.source_url) == (
        "2026-11-02", "controller", "https://example.com/new.json"
    )  # fmt: skip
    assert (snapshot.failed_calls_billable, snapshot.aliases) == (True, {"chat-latest": "chat"})
    # what changed is shown as pricing diff shows it
    assert out[4:11] == [
        "change  model  effective_from  field                 old           new  change %",
        "added   chat   2026-01-01      effective_to                 2026-11-01",
        "added   chat   2026-11-01      per_1m_tokens.input                 0.8",
        "added   chat   2026-11-01      per_1m_tokens.output                  4",
        "added   chat   2026-11-01      publisher                        OpenAI",
        "added   chat   2026-11-01      provider                   Acme Gateway",
        "",
    ]

    # the same import again changes no price
    assert update(tmp_path, "--effective-from", "2026-11-01") == 0
    assert capsys.readouterr().out.splitlines()[-1] == summary(tmp_path, "2026-11-01", 0, 0, 2, 1)
    assert entries(parse_document(tmp_path / "pricing.yaml", PricingSnapshot)) == entries(snapshot)


def test_models_named_are_added_and_a_price_of_the_same_day_is_replaced(tmp_path, capsys):
    (tmp_path / "pricing.yaml").write_text(REVIEWED)
    assert update(tmp_path, "--models", "newbie,chat", "--effective-from", "2026-01-01") == 0
    assert capsys.readouterr().out.splitlines()[-1] == summary(tmp_path, "2026-01-01", 1, 1, 0, 2)
    models = parse_document(tmp_path / "pricing.yaml", PricingSnapshot).models
    assert [(e.model, e.effective_from, e.effective_to, e.provider) for e in models] == [
        ("chat", datetime(2026, 1, 1, tzinfo=UTC), None, "Acme Gateway"),  # replaced, same day
        ("embed", datetime(2026, 1, 1, tzinfo=UTC), None, None),
        ("newbie", datetime(2026, 1, 1, tzinfo=UTC), None, None),
        ("painter", datetime(2026, 1, 1, tzinfo=UTC), None, None),
    ]


def test_an_entry_after_the_effective_day_is_named_and_nothing_written(tmp_path, capsys):
    later = REVIEWED.replace("aliases:", textwrap.dedent("""\
          - model: chat
            effective_from: 2026-12-01
            per_1m_tokens: {input: 0.5, output: 2}
        aliases:"""))  # fmt: skip
    later = later.replace("    provider: Acme Gateway\n", "    effective_to: 2026-12-01\n")
    (tmp_path / "pricing.yaml").write_text(later)
    assert update(tmp_path, "--effective-from", "2026-11-01") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'pricing.yaml'}: models: chat: has an entry from 2026-12-01, after "
        "the import's 2026-11-01; import with a later --effective-from, or remove that entry"
    )
    assert (tmp_path / "pricing.yaml").read_text() == later


def test_update_needs_the_snapshot_and_excludes_force(tmp_path, capsys):
    assert update(tmp_path) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'pricing.yaml'}: does not exist; --update updates a reviewed "
        "snapshot (import without --update to write a new one)"
    )
    (tmp_path / "pricing.yaml").write_text(REVIEWED)
    assert update(tmp_path, "--force") == 2
    assert "give --update or --force, not both" in capsys.readouterr().err


def test_aliases_ended_models_dated_entries_and_equal_prices_stay_as_reviewed(tmp_path, capsys):
    reviewed = (
        REVIEWED.replace(
            "    per_1m_tokens: {input: 0.02, output: 0}\n",
            "    effective_to: 2026-06-01\n    per_1m_tokens: {input: 0.02, output: 0}\n",
        ).replace(  # written with its reasoning price, equal to the output price it falls back to
            "    per_1m_tokens: {input: 1.00, output: 4.00}\n",
            "    per_1m_tokens: {input: 0.80, output: 4.00, reasoning: 4.00}\n",
        )
        + "  newbie-2026-01-01: chat\n"
    )
    reviewed = reviewed.replace(  # the reviewer's own dated entry, priced apart
        "  - model: painter\n",
        "  - model: chat-2025-12-01\n    effective_from: 2026-01-01\n"
        "    per_1m_tokens: {input: 9, output: 9}\n  - model: painter\n",
    )
    (tmp_path / "pricing.yaml").write_text(reviewed)
    table = {
        **TABLE,
        "chat-2025-12-01": TABLE["chat"],  # priced as chat in the table: still its own entry
        "newbie-2026-01-01": TABLE["newbie"],  # the reviewer prices it through an alias
    }
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(table))
    assert cli(
        "pricing", "import", "--from", "litellm", str(source), "--reviewed-by", "controller",
        "--source-url", "u", "--out", str(tmp_path / "pricing.yaml"), "--update",
        "--models", "chat,chat-2025-12-01,embed,newbie-2026-01-01", "--effective-from",
        "2026-11-01",
    ) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1] == summary(tmp_path, "2026-11-01", 1, 0, 1, 3)
    snapshot = parse_document(tmp_path / "pricing.yaml", PricingSnapshot)
    d = Decimal
    assert entries(snapshot) == [
        ("chat", "2026-01-01", None, (d("0.80"), d("4.00")), None, None, "Acme Gateway"),
        ("chat-2025-12-01", "2026-01-01", "2026-11-01", (d(9), d(9)), None, None, None),
        ("chat-2025-12-01", "2026-11-01", None, (d("0.8"), d(4)), None, "OpenAI", None),
        ("embed", "2026-01-01", "2026-06-01", (d("0.02"), d(0)), None, None, None),  # ended
        ("painter", "2026-01-01", None, None, d("0.04"), None, None),
    ]
    assert snapshot.aliases == {"chat-latest": "chat", "newbie-2026-01-01": "chat"}
