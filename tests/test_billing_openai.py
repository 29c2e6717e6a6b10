"""Billing format openai-usage: saved OpenAI Usage and Costs API pages reconcile the ledger by
model and token direction, with the Costs API's amounts as the money."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from allocation_kit.billing import load_billing, workspace_billing
from allocation_kit.config import load_workspace
from allocation_kit.errors import ConfigError, InputError
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.reconcile import (
    reconciliation,
    reconciliation_record,
)

from .conftest import KIT, PRICING, request

KIT_OPENAI = KIT + "billing: {path: openai/*.json, format: openai-usage}\n"
ROWS = [
    request("a1", cached_input_tokens=200),  # chat-small 2026-10-10: 1000 in (200 cached), 100 out
    request("a2", input_tokens=3000, output_tokens=500),
    request("a3", timestamp="2026-10-20T09:00:00Z", input_tokens=1000, output_tokens=1000),
]


def unix(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def bucket(day: str, results: list[dict]) -> dict:
    return {"object": "bucket", "start_time": unix(day), "end_time": unix(day) + 86_400,
            "results": results}  # fmt: skip


def usage(model: str, inp: int, cached: int, out: int, requests: int) -> dict:
    return {"object": "organization.usage.completions.result", "input_tokens": inp,
            "input_cached_tokens": cached, "output_tokens": out, "num_model_requests": requests,
            "project_id": "proj_search", "model": model, "user_id": None, "api_key_id": None,
            "batch": None}  # fmt: skip


def cost(value: str | float, line_item: str | None = "Text tokens") -> dict:
    return {"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"},
            "line_item": line_item, "project_id": None}  # fmt: skip


def page(*buckets: dict) -> dict:
    return {"object": "page", "data": list(buckets), "has_more": False, "next_page": None}


def october(**results: list[dict]) -> dict:
    """One page of daily buckets for every day of 2026-10 (as the API returns them, empty ones
    included); results by day, `d10=[...]` for 2026-10-10."""
    return page(*(bucket(f"2026-10-{d:02d}", results.get(f"d{d}", [])) for d in range(1, 32)))


USAGE_PAGE = october(
    d10=[usage("chat-small", 4000, 200, 600, 2)], d20=[usage("chat-small", 1000, 0, 1000, 1)]
)


def run(workspace, pages: dict[str, object], rows=ROWS, pricing=None):
    config = workspace(rows, kit=KIT_OPENAI, **({"pricing": pricing} if pricing else {}))
    folder = config.parent / "openai"
    folder.mkdir()
    for name, content in pages.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    recon = reconciliation(ledger, workspace_billing(ledger.con, ws))
    doc = reconciliation_record(recon, "finops-analyst", datetime(2026, 11, 2, tzinfo=UTC))
    return ledger, doc


def summary(doc: dict) -> tuple:
    return tuple(doc[k] for k in ("ledger_cost", "billed_cost", "variance", "variance_pct",
                                  "result"))  # fmt: skip


def table(doc: dict) -> list[tuple]:
    return [
        (r["model"], r["direction"], r["ledger_tokens"], r["billed_tokens"], r["ledger_cost"],
         r["billed_cost"], r["finding"])
        for r in doc["lines"]
    ]  # fmt: skip


def test_usage_and_costs_that_match_the_ledger_pass_line_by_line(workspace):
    costs = october(d10=[cost("0.0063")], d20=[cost(0.004)])
    _, doc = run(workspace, {"usage.json": USAGE_PAGE, "costs.json": costs})
    assert summary(doc) == ("0.010300000000", "0.010300000000", "0.000000000000", "0.0000",
                            "pass")  # fmt: skip
    assert table(doc) == [
        ("chat-small", None, 6600, 6600, "0.010300000000", "0.010300000000", "match"),
        ("chat-small", "uncached_input", 4800, 4800, "0.004600000000", "0.004600000000",
         "match"),
        ("chat-small", "cached_input", 200, 200, "0.000100000000", "0.000100000000", "match"),
        ("chat-small", "output", 1600, 1600, "0.005600000000", "0.005600000000", "match"),
    ]  # fmt: skip
    assert doc["billing_reported_count"] == 3


def test_openai_dated_model_names_meet_their_price_through_aliases(workspace):
    # the Usage API groups by the dated snapshot the API served; the snapshot prices the family
    dated = october(
        d10=[usage("chat-small-2026-05-01", 4000, 200, 600, 2)],
        d20=[usage("chat-small-2026-05-01", 1000, 0, 1000, 1)],
    )
    pricing = PRICING + "aliases: {chat-small-2026-05-01: chat-small}\n"
    _, doc = run(workspace, {"usage.json": dated}, pricing=pricing)
    assert summary(doc) == ("0.010300000000", "0.010300000000", "0.000000000000", "0.0000",
                            "pass")  # fmt: skip
    assert {r["model"] for r in doc["lines"]} == {"chat-small"}


def test_usage_pages_alone_reconcile_metered_tokens_at_the_snapshot_prices(workspace):
    metered = october(
        d10=[usage("chat-small", 4000, 200, 700, 2)], d20=[usage("chat-small", 1000, 0, 1000, 1)]
    )
    _, doc = run(workspace, {"usage.json": metered})
    # 100 output tokens more than the ledger at 4.00 per 1M: 0.0004 over a bill of 0.0107
    assert summary(doc) == ("0.010300000000", "0.010700000000", "-0.000400000000", "-3.7383",
                            "fail")  # fmt: skip
    assert table(doc)[3] == (
        "chat-small", "output", 1600, 1700, "0.005600000000", "0.006000000000",
        "token_mismatch",
    )  # fmt: skip


def test_costs_beyond_the_agreed_prices_stay_visible_as_a_line_without_model(workspace):
    costs = october(d10=[cost("0.0063")], d20=[cost("0.005", "Web search tool calls")])
    _, doc = run(workspace, {"usage.json": USAGE_PAGE, "costs.json": costs})
    assert summary(doc) == ("0.010300000000", "0.011300000000", "-0.001000000000", "-8.8496",
                            "inconclusive")  # fmt: skip
    assert table(doc)[-1] == (None, None, None, None, "0.000000000000", "0.001000000000",
                              "no_model")  # fmt: skip


def test_jsonl_and_lists_of_pages_are_read_and_cached_tokens_default_to_zero(workspace):
    days = october(d20=[usage("chat-small", 1000, 0, 1000, 1)])["data"]
    del days[19]["results"][0]["input_cached_tokens"]
    first, second = page(*days[:15], USAGE_PAGE["data"][9]), page(*days[15:])
    lines = json.dumps(first) + "\n\n" + json.dumps(second) + "\n"
    costs = [october(d10=[cost("0.0063")]), october(d20=[cost("0.004")])]
    _, doc = run(workspace, {"usage.json": lines, "costs.json": costs})
    assert summary(doc)[-1] == "pass"


def test_embeddings_usage_is_read_as_input_tokens_beside_completions(workspace):
    pricing = PRICING + (
        "  - model: embedder\n    effective_from: 2026-01-01\n"
        "    per_1m_tokens: {input: 0.02, output: 0}\n"
    )
    rows = [*ROWS, request("e1", model="embedder", input_tokens=50_000, output_tokens=0)]
    embedded = {
        "object": "organization.usage.embeddings.result",
        "input_tokens": 50_000,
        "num_model_requests": 1,
        "project_id": "proj_search",
        "model": "embedder",
    }
    pages = {"usage.json": USAGE_PAGE, "embeddings.json": october(d10=[embedded])}
    _, doc = run(workspace, pages, rows=rows, pricing=pricing)
    assert summary(doc) == ("0.011300000000", "0.011300000000", "0.000000000000", "0.0000",
                            "pass")  # fmt: skip
    assert [line for line in table(doc) if line[0] == "embedder"] == [
        ("embedder", None, 50000, 50000, "0.001000000000", "0.001000000000", "match"),
        ("embedder", "uncached_input", 50000, 50000, "0.001000000000", "0.001000000000",
         "match"),
    ]  # fmt: skip
    assert doc["billing_reported_count"] == 4


@pytest.mark.parametrize(
    ("content", "where", "expected"),
    [
        ({"object": "list"}, "page 1", "expected a page object"),
        (page({"start_time": "yesterday", "end_time": 1, "results": []}),
         "page 1, data[0].start_time", "expected Unix seconds"),
        (page(bucket("2026-10-10", [usage("chat-small", 10, 20, 0, 1)])),
         "page 1, data[0].results[0].input_cached_tokens", "expected at most input_tokens"),
        (page(bucket("2026-10-10", [{"object": "organization.usage.images.result"}])),
         "page 1, data[0].results[0].object", "expected organization.usage.completions.result"),
        (page(bucket("2026-10-10", [cost("ten")])),
         "page 1, data[0].results[0].amount.value", "expected a decimal number"),
        ("{not json\n", "line 1", "expected a JSON page object"),
    ],
)  # fmt: skip
def test_a_malformed_page_is_one_line_naming_file_and_place(workspace, content, where, expected):
    with pytest.raises(InputError) as caught:
        run(workspace, {"usage.json": content})
    assert caught.value.source.endswith("usage.json")
    assert caught.value.where == where
    assert expected in caught.value.expected


def test_column_maps_do_not_apply_to_openai_usage(workspace):
    config = workspace(ROWS, kit=KIT + "billing: {path: u.json, format: openai-usage, "
                       "columns: {date: Day}}\n")  # fmt: skip
    (config.parent / "u.json").write_text(json.dumps(USAGE_PAGE))
    ws = load_workspace(config)
    ledger = period_ledger(ws, parse_period("2026-10"), validate=False)
    with pytest.raises(ConfigError, match=r"billing\.columns"):
        load_billing(ledger.con, ws.kit.billing[0], ws.root, "kit.yaml", "USD")
    assert ledger.ledger_cost == Decimal("0.010300000000")
