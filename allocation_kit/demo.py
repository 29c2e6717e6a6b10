"""Demo workspace: three months of a realistic company's AI API spend, with planted findings.

`write_demo_workspace(dest)` writes everything a review needs, deterministically (same seed and
size give byte-identical files; nothing depends on the wall clock):

    kit.yaml                          the workspace config, commented key by key
    registry.yaml                     8 teams in 4 business units, 25 applications, 3 shared
    pricing.yaml                      the aggregator's price list (gpt-4.1 changes on 2026-09-15)
    data/requests/2026-08.parquet     the request ledger, one row per attempt (one file a month)
    data/requests/2026-09.parquet
    data/requests/2026-10.parquet
    data/billing/focus_2026-08.csv    the provider's (CometAPI) monthly bill in FOCUS
    data/billing/focus_2026-09.csv
    data/billing/focus_2026-10.csv

Acme Corp calls models through an OpenAI-compatible aggregator. `rows_per_month` is the number of
*base calls* a month (one logical API call each); the planted extras below come on top. Each app
has a home team, an environment mix, typical models, features and caller ids; token counts are
log-normal per app, traffic follows business hours and weekdays (interactive apps), nights
(batch apps) or a flatter curve (automation). At the default size the files hold 102,310,
102,310 and 108,363 rows, and the billed usage is about 2,410, 2,420 and 3,040 USD.

Planted findings (`PLANTED` holds the numbers; volumes per 100k base calls use integer floor,
`rows_per_month * per_100k // 100_000`; counts for the default 100k rows in brackets):

 1. Untagged traffic: no team, no application tag [2,000 rows a month]. Unknown owner: team tag
    `marketing` and application `growth-experiments`, neither in the registry [1,000 a month].
 2. Tag conflict: caller `svc-recs-ranker` tags application `search-api` (registered to team
    `search`) with team `recommendations` [300 a month].
 3. Retries: 1.5% of calls [1,500] fail first with 429/500/503 and succeed on a later attempt
    (same idempotency_key, new request_id, a few seconds earlier); every third of them [500]
    fails twice, so 2,000 failed attempts a month. Failed attempts carry the request's input
    tokens and nothing else; the provider does not bill them.
 4. Logging duplicates: 300 rows a month are logged twice (300 request_ids with two copies),
    identical in every column. In
    2026-10, 3 request_ids appear twice with different content (output_tokens differ): a logging
    bug whose rows the kit quarantines (the provider billed the first, true, version).
 5. Unpriced model: in 2026-10 only, team `assistant` trials `gemini-2.5-flash` through
    `assistant-chat` [800 calls]; pricing.yaml has no price for it, the provider bills it.
 6. Price change: gpt-4.1 is 10% cheaper from 2026-09-15 (two dated entries in pricing.yaml).
 7. Out-of-period rows: every month file holds 5 calls from the last hour of the previous month
    and 5 from the first 10 minutes of the next month (late and early logging).
 8. Shared applications with steady traffic: `document-ai` (fixed split), `llm-gateway` (owned by
    platform, proportional to tokens) and `eval-harness` (even split).
 9. Runaway batch job: in 2026-10 the nightly `kb-summarizer` run (team `support`) of 2026-10-13
    gets stuck and re-summarises the same articles until 2026-10-17 10:00 UTC [5,250 extra calls
    under job_id `kb-summarizer-20261013`], about 4.5x the app's usual monthly spend. Other teams
    stay within 10% month to month.
10. Billing error: the 2026-09 bill prices claude-sonnet-4-5 output tokens at 16.50 per 1M
    instead of the 15.00 in pricing.yaml, so 2026-09 fails reconciliation on that model and
    direction [61.26 USD, 2.5% of the bill]. 2026-08 matches to the last digit (pass); 2026-10
    differs by the unpriced model's spend plus the 3 quarantined calls (inconclusive).

The bill is what the provider really charged: every distinct successful (2xx) attempt whose
timestamp falls in the month, whichever month file logged it, priced with pricing.yaml at its
timestamp (plus findings 5 and 10). Usage lines are one per day x model x token direction, their
BilledCost exact (up to 12 decimals, never rounded), so the sum of a clean month's usage lines
equals the ledger's exact cost. SkuPriceDetails carries ModelDeveloper, ModelId, TokenDirection
(Input or Output) and, on input lines, TokenCacheAction (Uncached, CacheRead or CacheWrite);
output lines have no TokenCacheAction, as in the FOCUS examples; the per-call model's lines count
Requests. Each bill also has one Tax line (7.25% of usage) and one Credit line (2% of usage,
negative), both rounded to cents; they are not usage and do not reconcile against the ledger.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DEMO_PERIODS", "PLANTED", "write_demo_workspace"]

DEMO_PERIODS: tuple[str, ...] = ("2026-08", "2026-09", "2026-10")

PLANTED: dict[str, dict] = {
    "untagged": {
        "finding": "requests with neither a team nor an application tag",
        "periods": DEMO_PERIODS,
        "calls_per_100k": 2000,
        "caller_ids": ("key-legacy-cron", "key-personal-7f3a", "svc-notebook-proxy"),
    },
    "unknown_owner": {
        "finding": "team and application tags that are not in the registry",
        "periods": DEMO_PERIODS,
        "calls_per_100k": 1000,
        "team": "marketing",
        "application": "growth-experiments",
    },
    "tag_conflict": {
        "finding": "a caller tags another team's application with its own team",
        "periods": DEMO_PERIODS,
        "calls_per_100k": 300,
        "caller_id": "svc-recs-ranker",
        "application": "search-api",
        "registered_team": "search",
        "tagged_team": "recommendations",
    },
    "retries": {
        "finding": "calls that fail (429/500/503) before a later attempt succeeds",
        "periods": DEMO_PERIODS,
        "retried_calls_per_100k": 1500,
        "failing_twice_every": 3,  # every third retried call fails twice before succeeding
        "status_codes": (429, 500, 503),
    },
    "logging_duplicates": {
        "finding": "rows logged twice: identical (counted once) or conflicting (quarantined)",
        "periods": DEMO_PERIODS,
        "identical_rows_per_100k": 300,
        "conflicting_request_ids": {"2026-08": 0, "2026-09": 0, "2026-10": 3},
    },
    "unpriced_model": {
        "finding": "a model the pricing snapshot does not price",
        "periods": ("2026-10",),
        "calls_per_100k": 800,
        "model": "gemini-2.5-flash",
        "team": "assistant",
        "application": "assistant-chat",
        "provider_per_1m_tokens": {"input": "0.30", "output": "2.50"},
    },
    "price_change": {
        "finding": "a model's price changes in the middle of a period",
        "periods": ("2026-09",),
        "model": "gpt-4.1",
        "effective": "2026-09-15",
        "per_1m_tokens_before": {"input": "2.00", "cached_input": "0.50", "output": "8.00"},
        "per_1m_tokens_after": {"input": "1.80", "cached_input": "0.45", "output": "7.20"},
    },
    "out_of_period_rows": {
        "finding": "rows logged in a month file but timestamped just outside that month",
        "periods": DEMO_PERIODS,
        "before_start": 5,  # in the last hour of the previous month
        "after_end": 5,  # in the first 10 minutes of the next month
    },
    "shared_apps": {
        "finding": "shared applications split by each allocation method",
        "periods": DEMO_PERIODS,
        "fixed": "document-ai",
        "proportional": "llm-gateway",
        "even": "eval-harness",
    },
    "runaway_batch_job": {
        "finding": "a stuck batch job re-processes the same documents for four days",
        "periods": ("2026-10",),
        "calls_per_100k": 5250,
        "team": "support",
        "application": "kb-summarizer",
        "job_id": "kb-summarizer-20261013",
        "window": ("2026-10-13T02:00:00Z", "2026-10-17T10:00:00Z"),
    },
    "billing_overcharge": {
        "finding": "the provider bills one model's output above the agreed price",
        "periods": ("2026-09",),
        "model": "claude-sonnet-4-5",
        "token_direction": "Output",
        "billed_per_1m": "16.50",
        "priced_per_1m": "15.00",
    },
    "expected_reconciliation": {
        "finding": "the verdict a correct pipeline reaches for each period",
        "periods": DEMO_PERIODS,
        "results": {"2026-08": "pass", "2026-09": "fail", "2026-10": "inconclusive"},
    },
}

_PER_100K = 100_000
_ROW_GROUP = 1 << 20  # rows per Parquet row group, built and written one at a time
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US

# --- the company ------------------------------------------------------------------------------

_TEAMS = (  # id, business unit, cost center, budget owner
    ("search", "product", "CC-100", "search-lead"),
    ("assistant", "product", "CC-110", "assistant-lead"),
    ("recommendations", "product", "CC-120", "recs-lead"),
    ("support", "operations", "CC-200", "support-ops-lead"),
    ("trust-safety", "operations", "CC-210", "trust-safety-lead"),
    ("platform", "platform", "CC-300", "platform-lead"),
    ("data-science", "platform", "CC-310", "data-science-lead"),
    ("finance-ops", "corporate", "CC-400", "controller"),
)

_SHARED_RULES = {
    "llm-gateway": "{method: proportional, basis: tokens, "
    "teams: [search, assistant, recommendations, support, trust-safety]}",
    "document-ai": "{method: fixed, split: {finance-ops: 50, support: 30, trust-safety: 20}}",
    "eval-harness": "{method: even, teams: [assistant, search, trust-safety]}",
}

_INACTIVE_APPS = (("legacy-faq-bot", "support"),)  # registered, retired, no traffic

_ENVIRONMENTS = ("production", "staging", "development")
_WORKLOADS = ("user_facing_chat", "batch", "eval", "support", "internal_automation")

# --- the aggregator's catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class _Price:
    """One dated price entry, money per 1M tokens (or per call) as decimal strings."""

    model: str
    effective_from: date
    effective_to: date | None = None
    input: str | None = None
    cached_input: str | None = None
    cache_write: str | None = None
    output: str | None = None
    reasoning: str | None = None
    per_call: str | None = None


_JAN_1 = date(2026, 1, 1)
_PRICE_CHANGE = date(2026, 9, 15)
_PRICES = (
    _Price("gpt-4o-mini", _JAN_1, input="0.15", cached_input="0.075", output="0.60"),
    _Price("gpt-4.1", _JAN_1, _PRICE_CHANGE, input="2.00", cached_input="0.50", output="8.00"),
    _Price("gpt-4.1", _PRICE_CHANGE, input="1.80", cached_input="0.45", output="7.20"),
    _Price(
        "claude-sonnet-4-5",
        _JAN_1,
        input="3.00",
        cached_input="0.30",
        cache_write="3.75",
        output="15.00",
    ),
    _Price("o3-mini", _JAN_1, input="1.10", cached_input="0.55", output="4.40", reasoning="4.40"),
    _Price("text-embedding-3-small", _JAN_1, input="0.02", output="0"),
    _Price("dall-e-3", _JAN_1, per_call="0.04"),
)
# What the provider charges for the model pricing.yaml lacks (finding 5).
_PROVIDER_ONLY = _Price("gemini-2.5-flash", _JAN_1, input="0.30", output="2.50")

_MODELS = (  # name, kind, developer (HostProviderName on the bill)
    ("gpt-4o-mini", "chat", "OpenAI"),
    ("gpt-4.1", "chat", "OpenAI"),
    ("claude-sonnet-4-5", "chat", "Anthropic"),
    ("o3-mini", "reasoning", "OpenAI"),
    ("text-embedding-3-small", "embedding", "OpenAI"),
    ("dall-e-3", "image", "OpenAI"),
    ("gemini-2.5-flash", "chat", "Google"),
)
_MODEL_NAMES = tuple(m[0] for m in _MODELS)
_DEVELOPER = {name: developer for name, _, developer in _MODELS}
_MODEL_CODE = {name: i for i, name in enumerate(_MODEL_NAMES)}
_KIND = np.array([("chat", "reasoning", "embedding", "image").index(m[1]) for m in _MODELS])
_CHAT, _REASONING, _EMBEDDING, _IMAGE = 0, 1, 2, 3
_CACHES = np.array(
    [n in ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "o3-mini") for n in _MODEL_NAMES]
)
_WRITES_CACHE = np.array([n == "claude-sonnet-4-5" for n in _MODEL_NAMES])
_OUTPUT_FACTOR = np.array([2.5 if m[1] == "reasoning" else 1.0 for m in _MODELS])

# --- traffic ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One stream of calls: the tags its caller sends and the shape of its requests."""

    key: str
    team: str | None  # team tag as sent
    application: str | None  # application tag as sent
    workload: str
    profile: str  # interactive | nightly | steady | flat
    models: tuple[tuple[str, float], ...]
    features: tuple[tuple[str, float], ...]
    callers: tuple[str, ...]
    input_tokens: tuple[float, float]  # median, log-sigma
    output_tokens: tuple[float, float]
    weight: int = 0  # share of regular traffic; 0 for planted sources
    environments: tuple[float, float, float] = (0.92, 0.05, 0.03)
    endpoint: str = "/v1/chat/completions"
    cache: tuple[float, float, float] = (0.0, 0.0, 0.0)  # hit probability, share of input
    cache_write: float = 0.0  # probability that a claude call writes the cache
    jobs: bool = False  # rows carry a nightly job_id
    window_hours: tuple[int, int] | None = None  # hours after month start the source runs
    job_day: date | None = None  # fixed job date (the stuck run)
    documents: int = 0  # if set, inputs repeat this many documents' sizes (the stuck run)


def _src(key, team, app, workload, profile, models, features, callers, inp, out, **kw):
    return _Source(key, team, app, workload, profile, models, features, callers, inp, out, **kw)


_MINI, _G41, _CLAUDE, _O3 = "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "o3-mini"
_EMB, _DALLE = "text-embedding-3-small", "dall-e-3"
_STAGING = (0.0, 0.8, 0.2)
_DEV = (0.05, 0.15, 0.8)

# fmt: off
_REGULAR = (
    _src("search-api", "search", "search-api", "user_facing_chat", "interactive",
         ((_MINI, 0.85), (_G41, 0.15)), (("answer-summary", 0.7), ("query-rewrite", 0.3)),
         ("svc-search-api", "svc-search-api-canary"), (4000, 0.5), (350, 0.6),
         weight=12000, cache=(0.4, 0.3, 0.7)),
    _src("search-indexer", "search", "search-indexer", "batch", "nightly",
         ((_EMB, 1.0),), (("doc-embedding", 1.0),), ("svc-search-indexer",),
         (700, 0.6), (1, 0.0), weight=5000, jobs=True),
    _src("assistant-chat", "assistant", "assistant-chat", "user_facing_chat", "interactive",
         ((_G41, 0.45), (_CLAUDE, 0.45), (_O3, 0.10)), (("chat-reply", 0.8), ("thread-title", 0.2)),
         ("svc-assistant-chat",), (18000, 0.7), (1300, 0.7), weight=14000,
         endpoint="/v1/responses", cache=(0.6, 0.4, 0.9), cache_write=0.2),
    _src("assistant-memory", "assistant", "assistant-memory", "user_facing_chat", "interactive",
         ((_EMB, 1.0),), (("memory-recall", 1.0),), ("svc-assistant-memory",),
         (400, 0.5), (1, 0.0), weight=4000),
    _src("assistant-images", "assistant", "assistant-images", "user_facing_chat", "interactive",
         ((_DALLE, 1.0),), (("image-create", 1.0),), ("svc-assistant-chat",),
         (0, 0.0), (0, 0.0), weight=800),
    _src("recs-explainer", "recommendations", "recs-explainer", "user_facing_chat", "interactive",
         ((_MINI, 1.0),), (("why-this-item", 1.0),), ("svc-recs-explainer",),
         (2500, 0.4), (150, 0.5), weight=8000, cache=(0.3, 0.5, 0.9)),
    _src("catalog-enrichment", "recommendations", "catalog-enrichment", "batch", "nightly",
         ((_MINI, 0.7), (_G41, 0.3)), (("product-attributes", 0.6), ("product-description", 0.4)),
         ("svc-catalog-enrichment",), (3000, 0.5), (500, 0.5), weight=3000, jobs=True,
         cache=(0.5, 0.4, 0.7)),
    _src("recs-banners", "recommendations", "recs-banners", "internal_automation", "steady",
         ((_DALLE, 1.0),), (("banner-image", 1.0),), ("svc-recs-banners",),
         (0, 0.0), (0, 0.0), weight=400),
    _src("support-copilot", "support", "support-copilot", "support", "interactive",
         ((_CLAUDE, 0.7), (_MINI, 0.3)), (("reply-draft", 0.7), ("ticket-summary", 0.3)),
         ("svc-support-copilot", "key-support-zendesk"), (20000, 0.6), (2200, 0.6), weight=12000,
         cache=(0.7, 0.5, 0.9), cache_write=0.15),
    _src("ticket-triage", "support", "ticket-triage", "internal_automation", "steady",
         ((_MINI, 1.0),), (("ticket-routing", 1.0),), ("svc-ticket-triage",),
         (2000, 0.5), (40, 0.4), weight=7000, cache=(0.5, 0.5, 0.8)),
    _src("kb-summarizer", "support", "kb-summarizer", "batch", "nightly",
         ((_CLAUDE, 1.0),), (("article-summary", 1.0),), ("svc-kb-summarizer",),
         (30000, 0.5), (3000, 0.4), weight=1500, jobs=True, cache=(0.5, 0.2, 0.5),
         cache_write=0.3),
    _src("content-moderation", "trust-safety", "content-moderation", "internal_automation",
         "steady", ((_MINI, 1.0),), (("post-screening", 0.8), ("image-caption-check", 0.2)),
         ("svc-moderation",), (800, 0.5), (30, 0.4), weight=7000),
    _src("fraud-review", "trust-safety", "fraud-review", "internal_automation", "interactive",
         ((_O3, 1.0),), (("case-assessment", 1.0),), ("svc-fraud-review",),
         (6000, 0.5), (900, 0.5), weight=2500, cache=(0.3, 0.3, 0.6)),
    _src("policy-evals", "trust-safety", "policy-evals", "eval", "nightly",
         ((_G41, 0.5), (_O3, 0.5)), (("policy-regression", 1.0),), ("svc-policy-evals",),
         (4000, 0.5), (500, 0.5), weight=800, environments=_STAGING, jobs=True),
    _src("llm-gateway", "platform", "llm-gateway", "internal_automation", "steady",
         ((_MINI, 0.6), (_G41, 0.3), (_CLAUDE, 0.1)), (("gateway-passthrough", 1.0),),
         ("svc-llm-gateway",), (5000, 0.8), (500, 0.8), weight=6000, cache=(0.3, 0.3, 0.8)),
    _src("dev-copilot", "platform", "dev-copilot", "internal_automation", "interactive",
         ((_G41, 0.5), (_CLAUDE, 0.3), (_O3, 0.2)), (("code-review", 0.6), ("pr-summary", 0.4)),
         ("key-dev-copilot",), (25000, 0.7), (1500, 0.6), weight=4000,
         environments=_DEV, cache=(0.5, 0.3, 0.8), cache_write=0.1),
    _src("incident-summarizer", "platform", "incident-summarizer", "internal_automation",
         "steady", ((_G41, 1.0),), (("incident-timeline", 1.0),), ("svc-incident-bot",),
         (12000, 0.6), (800, 0.5), weight=600),
    _src("eval-harness", "data-science", "eval-harness", "eval", "nightly",
         ((_G41, 0.4), (_CLAUDE, 0.3), (_O3, 0.3)), (("model-eval", 1.0),), ("svc-eval-harness",),
         (6000, 0.6), (800, 0.6), weight=2000, environments=_STAGING, jobs=True),
    _src("ds-notebooks", "data-science", "ds-notebooks", "internal_automation", "interactive",
         ((_G41, 0.6), (_MINI, 0.4)), (("notebook-assist", 1.0),), ("key-ds-jupyter",),
         (6000, 0.8), (600, 0.7), weight=1500, environments=_DEV),
    _src("churn-insights", "data-science", "churn-insights", "batch", "nightly",
         ((_MINI, 0.8), (_G41, 0.2)), (("churn-reason-extraction", 1.0),),
         ("svc-churn-insights",), (3000, 0.5), (200, 0.5), weight=700, jobs=True),
    _src("invoice-extraction", "finance-ops", "invoice-extraction", "batch", "nightly",
         ((_G41, 1.0),), (("invoice-fields", 1.0),), ("svc-invoice-extraction",),
         (6000, 0.4), (600, 0.4), weight=2000, jobs=True, cache=(0.6, 0.4, 0.6)),
    _src("contract-review", "finance-ops", "contract-review", "internal_automation",
         "interactive", ((_CLAUDE, 0.6), (_O3, 0.4)), (("clause-check", 1.0),),
         ("key-legal-contracts",), (40000, 0.5), (2500, 0.5), weight=600,
         cache=(0.4, 0.3, 0.7), cache_write=0.3),
    _src("document-ai", "finance-ops", "document-ai", "internal_automation", "steady",
         ((_G41, 0.5), (_MINI, 0.5)), (("document-parse", 1.0),), ("svc-document-ai",),
         (8000, 0.6), (800, 0.5), weight=2500, cache=(0.3, 0.3, 0.6)),
    _src("expense-assistant", "finance-ops", "expense-assistant", "user_facing_chat",
         "interactive", ((_MINI, 1.0),), (("receipt-check", 1.0),), ("svc-expense-assistant",),
         (3000, 0.5), (300, 0.5), weight=900),
)

_P = PLANTED
_UNTAGGED = _src(
    "untagged", None, None, "internal_automation", "steady",
    ((_MINI, 0.5), (_G41, 0.35), (_CLAUDE, 0.15)), (("unspecified", 1.0),),
    _P["untagged"]["caller_ids"], (4000, 0.8), (500, 0.7), environments=(0.7, 0.0, 0.3),
)
_UNKNOWN = _src(
    "unknown_owner", _P["unknown_owner"]["team"], _P["unknown_owner"]["application"],
    "internal_automation", "interactive", ((_G41, 0.5), (_MINI, 0.4), (_DALLE, 0.1)),
    (("email-subject-lines", 0.6), ("landing-copy", 0.4)), ("svc-growth-experiments",),
    (3000, 0.6), (400, 0.6),
)
_CONFLICT = _src(
    "tag_conflict", _P["tag_conflict"]["tagged_team"], _P["tag_conflict"]["application"],
    "user_facing_chat", "interactive", ((_MINI, 1.0),), (("related-queries", 1.0),),
    (_P["tag_conflict"]["caller_id"],), (4000, 0.5), (350, 0.6), cache=(0.4, 0.3, 0.7),
)
_GEMINI = _src(
    "unpriced_model", _P["unpriced_model"]["team"], _P["unpriced_model"]["application"],
    "user_facing_chat", "interactive", ((_P["unpriced_model"]["model"], 1.0),),
    (("chat-reply", 1.0),), ("svc-assistant-chat-trial",), (18000, 0.7), (1300, 0.7),
    environments=(0.5, 0.5, 0.0), window_hours=(7 * 24, 31 * 24),
)
_RUNAWAY = _src(
    "runaway_batch_job", _P["runaway_batch_job"]["team"], _P["runaway_batch_job"]["application"],
    "batch", "flat", ((_CLAUDE, 1.0),), (("article-summary", 1.0),), ("svc-kb-summarizer",),
    (30000, 0.5), (3000, 0.4), environments=(1.0, 0.0, 0.0), cache=(0.5, 0.2, 0.5),
    cache_write=0.3, jobs=True, window_hours=(12 * 24 + 2, 16 * 24 + 10),
    job_day=date(2026, 10, 13),
    documents=400,
)
_SOURCES = (*_REGULAR, _UNTAGGED, _UNKNOWN, _CONFLICT, _GEMINI, _RUNAWAY)
_BASE_PLANTED = ("untagged", "unknown_owner", "tag_conflict")  # part of the base calls
_N_REGULAR = len(_REGULAR)

_HOUR_OF_DAY = {  # relative traffic by UTC hour; Acme's users are in Europe and the Americas
    "interactive": (2, 1.5, 1.2, 1, 1, 1.2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 9.5, 9, 8, 7,
                    5.5, 4, 3),
    "nightly": (6, 10, 10, 10, 8, 6, 3, 1, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
                0.3, 0.3, 0.4, 0.6, 1, 3),
    "steady": (4, 3.5, 3.3, 3, 3, 3.3, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8, 8, 7.8, 7.5, 7,
               6.5, 5.5, 5, 4.5),
    "flat": (1,) * 24,
}
# fmt: on
_WEEKEND = {"interactive": 0.35, "nightly": 1.0, "steady": 0.8, "flat": 1.0}
_PROFILES = tuple(_HOUR_OF_DAY)

_COLUMNS = pa.schema(
    [
        ("request_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("team", pa.string()),
        ("application", pa.string()),
        ("environment", pa.string()),
        ("workload_class", pa.string()),
        ("feature", pa.string()),
        ("job_id", pa.string()),
        ("caller_id", pa.string()),
        ("endpoint", pa.string()),
        ("model", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("status_code", pa.int32()),
        ("idempotency_key", pa.string()),
        ("batch", pa.bool_()),
    ]
)


# Low-cardinality columns; dictionary-encoding ids and token counts only costs time.
_DICTIONARY_COLUMNS = [
    "team",
    "application",
    "environment",
    "workload_class",
    "feature",
    "job_id",
    "caller_id",
    "endpoint",
    "model",
    "status_code",
    "batch",
]


def _vocab(values) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v is not None}))


_TEAM_TAGS = _vocab(s.team for s in _SOURCES)
_APP_TAGS = _vocab(s.application for s in _SOURCES)
_SOURCE_TEAM = np.array([_TEAM_TAGS.index(s.team) if s.team else -1 for s in _SOURCES])
_SOURCE_APP = np.array([_APP_TAGS.index(s.application) if s.application else -1 for s in _SOURCES])
_SOURCE_WORKLOAD = np.array([_WORKLOADS.index(s.workload) for s in _SOURCES])
_SOURCE_JOBS = np.array([s.jobs for s in _SOURCES])
_FEATURES = _vocab(f for s in _SOURCES for f, _ in s.features)
_CALLERS = _vocab(c for s in _SOURCES for c in s.callers)
_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/images/generations")


# --- public entry point ---------------------------------------------------------------------


def write_demo_workspace(dest: Path, rows_per_month: int = 100_000, seed: int = 20261001) -> Path:
    """Write a complete demo workspace into dest (created if needed) and return its kit.yaml."""
    if rows_per_month < 1_000:
        raise ValueError(f"rows_per_month must be at least 1000, got {rows_per_month}")
    dest = Path(dest)
    (dest / "data" / "requests").mkdir(parents=True, exist_ok=True)
    (dest / "data" / "billing").mkdir(parents=True, exist_ok=True)
    (dest / "registry.yaml").write_text(_registry_yaml(), encoding="utf-8")
    (dest / "pricing.yaml").write_text(_pricing_yaml(), encoding="utf-8")

    usage: dict[tuple[int, int], np.ndarray] = {}  # (day, model) -> summed token components
    month_rngs = np.random.default_rng(seed).spawn(len(DEMO_PERIODS))
    for index, period in enumerate(DEMO_PERIODS):
        batches, month_usage = _month_ledger(period, index, rows_per_month, month_rngs[index])
        with pq.ParquetWriter(
            dest / "data" / "requests" / f"{period}.parquet",
            _COLUMNS,
            compression="zstd",
            use_dictionary=_DICTIONARY_COLUMNS,
        ) as writer:
            for batch in batches:
                writer.write_batch(batch, row_group_size=_ROW_GROUP)
        for key, sums in month_usage.items():
            usage[key] = usage[key] + sums if key in usage else sums

    for period in DEMO_PERIODS:
        _write_bill(dest / "data" / "billing" / f"focus_{period}.csv", period, usage)

    (dest / "data" / "events").mkdir(parents=True, exist_ok=True)
    _write_ticket_events(dest / "data" / "events" / "support_tickets.csv", seed)
    (dest / "cost_units.yaml").write_text(_COST_UNITS_YAML, encoding="utf-8")
    (dest / "budgets.yaml").write_text(_BUDGETS_YAML, encoding="utf-8")
    config = dest / "kit.yaml"
    config.write_text(_KIT_YAML, encoding="utf-8")
    return config


def _write_ticket_events(path: Path, seed: int) -> None:
    """Support tickets closed per day (the business events behind cost per ticket): about 600 on
    a weekday and 150 on a weekend day, steady month to month."""
    rng = np.random.default_rng([seed, 7])
    first, last = _month_start(DEMO_PERIODS[0]), _next_month(_month_start(DEMO_PERIODS[-1]))
    lines = ["date,tickets_closed"]
    day = first.date()
    while day < last.date():
        typical = 150 if day.weekday() >= 5 else 600
        lines.append(f"{day.isoformat()},{int(rng.normal(typical, typical * 0.08))}")
        day += timedelta(days=1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the ledger -------------------------------------------------------------------------------


def _month_start(period: str) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def _epoch_us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def _count(rows_per_month: int, per_100k: int) -> int:
    return rows_per_month * per_100k // _PER_100K


def _month_ledger(period: str, index: int, rows_per_month: int, rng: np.random.Generator):
    """Return the month's ledger as record batches, and its billable usage per (day, model)."""
    start = _month_start(period)
    start_us = _epoch_us(start)
    end_us = _epoch_us(_next_month(start))
    n_days = (end_us - start_us) // _DAY_US

    counts = _source_counts(period, rows_per_month, rng)
    cols = _base_calls(counts, n_days, start, rng)
    n_base = len(cols["src"])
    cols["idem"] = _scrambled(np.arange(n_base, dtype=np.uint64), index, rng)

    regular = cols["src"] < _N_REGULAR
    boundary = _plant_out_of_period(cols, regular, start_us, end_us, rng)
    cols["job_day"] = np.where(cols["job_day"] < 0, cols["ts"] // _DAY_US, cols["job_day"])
    cols = _add_failed_attempts(cols, regular & ~boundary, start_us, rows_per_month, rng)

    usage = _billable_usage(cols)
    order = np.argsort(cols["ts"], kind="stable")  # request_ids number the rows in time order
    return _ledger_batches(cols, order, period, rows_per_month, rng), usage


def _source_counts(period: str, rows_per_month: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.zeros(len(_SOURCES), dtype=np.int64)
    for i, source in enumerate(_SOURCES[_N_REGULAR:], start=_N_REGULAR):
        planted = PLANTED[source.key]
        if period in planted["periods"]:
            counts[i] = _count(rows_per_month, planted["calls_per_100k"])
    base_planted = sum(_count(rows_per_month, PLANTED[k]["calls_per_100k"]) for k in _BASE_PLANTED)
    out = PLANTED["out_of_period_rows"]
    n_regular = rows_per_month - base_planted + out["before_start"] + out["after_end"]
    weights = np.array([s.weight for s in _REGULAR], dtype=np.float64)
    counts[:_N_REGULAR] = rng.multinomial(n_regular, weights / weights.sum())
    return counts


def _hour_probabilities(start: datetime, n_days: int, rng: np.random.Generator):
    daily = rng.lognormal(0.0, 0.05, n_days)
    weekend = np.array([(start + timedelta(days=d)).weekday() >= 5 for d in range(n_days)])
    weights = {}
    for profile in _PROFILES:
        day = daily * np.where(weekend, _WEEKEND[profile], 1.0)
        weights[profile] = np.outer(day, np.array(_HOUR_OF_DAY[profile])).ravel()
    return weights


def _pick(rng: np.random.Generator, options, n: int, codes: dict[str, int]) -> np.ndarray:
    """Return n codes drawn from weighted (name, weight) options."""
    names = [name for name, _ in options]
    p = np.array([w for _, w in options], dtype=np.float64)
    chosen = rng.choice(len(names), size=n, p=p / p.sum())
    return np.array([codes[name] for name in names])[chosen]


def _base_calls(counts: np.ndarray, n_days: int, start: datetime, rng: np.random.Generator):
    """Return one row per logical call, grouped by source, as column arrays."""
    n = int(counts.sum())
    start_us = _epoch_us(start)
    hour_weights = _hour_probabilities(start, n_days, rng)
    cols = {
        "src": np.repeat(np.arange(len(_SOURCES), dtype=np.int16), counts),
        "ts": np.empty(n, np.int64),
        "env": np.empty(n, np.int8),
        "model": np.empty(n, np.int8),
        "feature": np.empty(n, np.int16),
        "caller": np.empty(n, np.int16),
        "endpoint": np.empty(n, np.int8),
        "input": np.empty(n, np.int64),
        "output": np.empty(n, np.int64),
        "cached": np.empty(n, np.int64),
        "reasoning": np.empty(n, np.int64),
        "cache_write": np.empty(n, np.int64),
        "job_day": np.full(n, -1, np.int64),
    }
    feature_codes = {f: i for i, f in enumerate(_FEATURES)}
    caller_codes = {c: i for i, c in enumerate(_CALLERS)}
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for i, source in enumerate(_SOURCES):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        k = hi - lo
        if k == 0:
            continue
        weights = hour_weights[source.profile].copy()
        if source.window_hours is not None:
            mask = np.zeros_like(weights)
            mask[source.window_hours[0] : source.window_hours[1]] = 1.0
            weights *= mask
        hours = rng.choice(len(weights), size=k, p=weights / weights.sum())
        cols["ts"][lo:hi] = start_us + hours * _HOUR_US + rng.integers(0, _HOUR_US, k)
        cols["env"][lo:hi] = rng.choice(3, size=k, p=np.array(source.environments))
        model = _pick(rng, source.models, k, _MODEL_CODE)
        cols["model"][lo:hi] = model
        cols["feature"][lo:hi] = _pick(rng, source.features, k, feature_codes)
        cols["caller"][lo:hi] = _pick(rng, [(c, 1.0) for c in source.callers], k, caller_codes)
        kind = _KIND[model]
        endpoint = np.full(k, _ENDPOINTS.index(source.endpoint), np.int8)
        endpoint[kind == _REASONING] = 1
        endpoint[kind == _EMBEDDING] = 2
        endpoint[kind == _IMAGE] = 3
        cols["endpoint"][lo:hi] = endpoint
        for name, values in _tokens(source, model, kind, rng).items():
            cols[name][lo:hi] = values
        if source.job_day is not None:
            cols["job_day"][lo:hi] = (source.job_day - date(1970, 1, 1)).days
    return cols


def _tokens(source: _Source, model: np.ndarray, kind: np.ndarray, rng: np.random.Generator):
    """Return token counts: input includes cached and cache writes, output includes reasoning."""
    k = len(model)
    (in_median, in_sigma), (out_median, out_sigma) = source.input_tokens, source.output_tokens
    inp = np.rint(np.exp(np.log(max(in_median, 1)) + in_sigma * rng.standard_normal(k)))
    if source.documents:
        inp = inp[rng.integers(0, min(source.documents, k), k)]
    out = np.rint(
        np.exp(np.log(max(out_median, 1)) + out_sigma * rng.standard_normal(k))
        * _OUTPUT_FACTOR[model]
    )
    inp = np.clip(inp, 1, 200_000).astype(np.int64)
    out = np.clip(out, 1, 32_000).astype(np.int64)
    out[kind == _EMBEDDING] = 0
    inp[kind == _IMAGE] = 0
    out[kind == _IMAGE] = 0

    hit_p, share_lo, share_hi = source.cache
    hits = (rng.random(k) < hit_p) & _CACHES[model] & (inp >= 1024)
    share = rng.uniform(share_lo, share_hi, k)
    cached = np.where(hits, (inp * share).astype(np.int64) // 128 * 128, 0)
    writes = (rng.random(k) < source.cache_write) & _WRITES_CACHE[model]
    write_share = rng.uniform(0.3, 0.9, k)
    cache_write = np.where(writes, ((inp - cached) * write_share).astype(np.int64), 0)
    reasoning_share = rng.uniform(0.4, 0.85, k)
    reasoning = np.where(kind == _REASONING, (out * reasoning_share).astype(np.int64), 0)
    return {
        "input": inp,
        "output": out,
        "cached": cached,
        "cache_write": cache_write,
        "reasoning": reasoning,
    }


def _scrambled(values: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
    """Return distinct 64-bit keys: a bijection of values below 2**56, the month on top."""
    multiplier = np.uint64(int(rng.integers(1, 2**55)) * 2 + 1)
    offset = np.uint64(int(rng.integers(0, 2**56)))
    mask = np.uint64(2**56 - 1)
    with np.errstate(over="ignore"):
        mixed = (values * multiplier + offset) & mask
    return mixed | np.uint64((0xA0 + index) << 56)


def _plant_out_of_period(cols, regular, start_us, end_us, rng) -> np.ndarray:
    """Move a few regular calls just outside the month (finding 7); return the moved rows."""
    out = PLANTED["out_of_period_rows"]
    before, after = out["before_start"], out["after_end"]
    moved = rng.choice(np.flatnonzero(regular), size=before + after, replace=False)
    offsets = np.concatenate(
        [
            start_us - rng.integers(1, _HOUR_US, before),
            end_us + rng.integers(0, 10 * 60 * 1_000_000, after),
        ]
    )
    cols["ts"][moved] = offsets
    boundary = np.zeros(len(regular), dtype=bool)
    boundary[moved] = True
    cols["boundary"] = boundary
    return boundary


def _add_failed_attempts(cols, eligible, start_us, rows_per_month, rng):
    """Append failed attempts before some successful calls (finding 3)."""
    retries = PLANTED["retries"]
    n_retried = _count(rows_per_month, retries["retried_calls_per_100k"])
    n_twice = n_retried // retries["failing_twice_every"]
    pool = np.flatnonzero(eligible & (cols["ts"] >= start_us + 60_000_000))
    retried = rng.choice(pool, size=n_retried, replace=False)
    first_gap = rng.integers(500_000, 20_000_000, n_retried)
    second_gap = rng.integers(500_000, 20_000_000, n_twice)
    source_rows = np.concatenate([retried, retried[:n_twice]])
    failed = {name: values[source_rows] for name, values in cols.items()}
    failed["ts"] = np.concatenate(
        [
            cols["ts"][retried] - first_gap,
            cols["ts"][retried[:n_twice]] - first_gap[:n_twice] - second_gap,
        ]
    )
    for name in ("output", "cached", "reasoning", "cache_write"):
        failed[name] = np.zeros(len(source_rows), np.int64)
    status = np.full(len(cols["ts"]), 200, np.int32)
    failed_status = rng.choice(
        np.array(retries["status_codes"], np.int32), size=len(source_rows), p=[0.6, 0.25, 0.15]
    )
    cols["status"] = status
    failed["status"] = failed_status
    return {name: np.concatenate([cols[name], failed[name]]) for name in cols}


def _billable_usage(cols) -> dict[tuple[int, int], np.ndarray]:
    """Return what the provider bills, summed per (day, model): distinct 2xx attempts."""
    ok = (cols["status"] >= 200) & (cols["status"] < 300)
    day = cols["ts"][ok] // _DAY_US
    key = day * len(_MODELS) + cols["model"][ok]
    order = np.argsort(key)  # grouping only: integer sums do not depend on the order
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    uncached = cols["input"] - cols["cached"] - cols["cache_write"]
    parts = (uncached, cols["cached"], cols["cache_write"], cols["output"])
    sums = np.stack(
        [np.add.reduceat(part[ok][order], starts) for part in parts]
        + [np.diff(np.append(starts, len(key)))]  # calls
    )
    return {
        (int(k) // len(_MODELS), int(k) % len(_MODELS)): sums[:, j].copy()
        for j, k in enumerate(key[starts])
    }


def _ledger_batches(cols, order, period, rows_per_month, rng) -> Iterator[pa.RecordBatch]:
    """Yield the month's rows in time order, with logging duplicates planted (finding 4).

    `order` sorts the attempts by time. Rows are built one Parquet row group at a time, which
    keeps memory flat for large months.
    """
    n = len(order)
    dup = PLANTED["logging_duplicates"]
    n_identical = _count(rows_per_month, dup["identical_rows_per_100k"])
    n_conflicting = dup["conflicting_request_ids"][period]
    regular = ((cols["src"] < _N_REGULAR) & ~cols["boundary"])[order]
    identical = rng.choice(np.flatnonzero(regular), size=n_identical, replace=False)
    talkative = regular & (cols["status"][order] == 200) & (cols["output"][order] > 0)
    talkative[identical] = False
    conflicting = rng.choice(np.flatnonzero(talkative), size=n_conflicting, replace=False)
    copies = np.ones(n, np.int64)
    copies[identical] = 2
    copies[conflicting] = 2
    position = np.repeat(np.arange(n), copies)  # each written row's position in time order
    bumped = (np.cumsum(copies) - copies)[conflicting] + 1  # the conflicting second copies
    bump = rng.integers(7, 300, n_conflicting)
    width = max(7, len(str(n)))
    for lo in range(0, len(position), _ROW_GROUP):
        chunk = position[lo : lo + _ROW_GROUP]
        rows = order[chunk]
        output = cols["output"][rows]
        inside = (bumped >= lo) & (bumped < lo + len(chunk))
        output[bumped[inside] - lo] += bump[inside]
        src = cols["src"][rows]
        arrays = {
            "request_id": _numbered(f"req-{period}-", chunk + 1, width),
            "timestamp": pa.array(cols["ts"][rows], pa.timestamp("us", tz="UTC")),
            "team": _strings(_TEAM_TAGS, _SOURCE_TEAM[src]),
            "application": _strings(_APP_TAGS, _SOURCE_APP[src]),
            "environment": _strings(_ENVIRONMENTS, cols["env"][rows]),
            "workload_class": _strings(_WORKLOADS, _SOURCE_WORKLOAD[src]),
            "feature": _strings(_FEATURES, cols["feature"][rows]),
            "job_id": _job_ids(src, cols["job_day"][rows]),
            "caller_id": _strings(_CALLERS, cols["caller"][rows]),
            "endpoint": _strings(_ENDPOINTS, cols["endpoint"][rows]),
            "model": _strings(_MODEL_NAMES, cols["model"][rows]),
            "input_tokens": pa.array(cols["input"][rows]),
            "output_tokens": pa.array(output),
            "cached_input_tokens": pa.array(cols["cached"][rows]),
            "reasoning_tokens": pa.array(cols["reasoning"][rows]),
            "cache_write_tokens": pa.array(cols["cache_write"][rows]),
            "status_code": pa.array(cols["status"][rows]),
            "idempotency_key": _hex_keys(cols["idem"][rows]),
            "batch": pa.array(_SOURCE_WORKLOAD[src] == _WORKLOADS.index("batch")),
        }
        yield pa.RecordBatch.from_arrays([arrays[f.name] for f in _COLUMNS], schema=_COLUMNS)


def _strings(vocabulary, codes: np.ndarray) -> pa.Array:
    """Return the strings for codes into vocabulary (code -1 is null)."""
    codes = np.asarray(codes, dtype=np.int32)
    indices = pa.array(codes, mask=codes < 0)
    dictionary = pa.array(vocabulary, pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


def _job_ids(src: np.ndarray, job_day: np.ndarray) -> pa.Array:
    """Return `<application>-<YYYYMMDD>` for rows of job-running sources, else null."""
    first_day = int(job_day.min())
    span = int(job_day.max()) - first_day + 1
    combined = src.astype(np.int64) * span + (job_day - first_day)
    present = np.zeros(len(_SOURCES) * span, dtype=bool)
    present[combined] = True
    dense = np.cumsum(present) - 1  # code of each present (source, day) in sorted order
    epoch = date(1970, 1, 1)
    names = [
        f"{_SOURCES[int(c) // span].application}-"
        f"{(epoch + timedelta(days=first_day + int(c) % span)).strftime('%Y%m%d')}"
        for c in np.flatnonzero(present)
    ]
    return _strings(names, np.where(_SOURCE_JOBS[src], dense[combined], -1))


def _hex_keys(values: np.ndarray) -> pa.Array:
    """Return `idk-` + 16 lowercase hex digits per 64-bit value."""
    chars = np.empty((len(values), 20), np.uint8)
    chars[:, :4] = np.frombuffer(b"idk-", np.uint8)
    big_endian = values.astype(">u8").view(np.uint8).reshape(len(values), 8)
    nibbles = chars[:, 4:].reshape(len(values), 8, 2)
    nibbles[:, :, 0] = big_endian >> 4
    nibbles[:, :, 1] = big_endian & 15
    digits = chars[:, 4:]
    digits += (digits > 9).view(np.uint8) * np.uint8(ord("a") - 10 - ord("0")) + ord("0")
    return _fixed_width_strings(chars)


_FOUR_DIGITS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint32)


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Return prefix + the number zero-padded to width digits, per number."""
    head = np.frombuffer(prefix.encode(), np.uint8)
    groups = -(-width // 4)
    blocks = np.empty((len(numbers), groups), np.uint32)  # four ASCII digits per block
    rest = numbers.astype(np.int64)
    for group in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10_000)
        blocks[:, group] = _FOUR_DIGITS[low]
    chars = np.empty((len(numbers), len(head) + width), np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :] = blocks.view(np.uint8).reshape(len(numbers), -1)[:, 4 * groups - width :]
    return _fixed_width_strings(chars)


def _fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """Return one ASCII string per row of a (rows, width) uint8 matrix, without per-row work."""
    rows, width = chars.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)  # < 2 GiB per row group
    data = np.ascontiguousarray(chars)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data))


# --- the bill ---------------------------------------------------------------------------------

_BILL_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "HostProviderName",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ServiceCategory",
    "ServiceName",
    "ServiceProviderName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "Tags",
)
_TAX_RATE = Decimal("0.0725")
_CREDIT_RATE = Decimal("0.02")
_CENT = Decimal("0.01")
# meter: (index into usage sums, price field, SkuId suffix, SkuMeter, direction, cache action)
_METERS = (
    (0, "input", "input", "Input Tokens", "Input", "Uncached"),
    (1, "cached_input", "cache-read", "Cache Read Input Tokens", "Input", "CacheRead"),
    (2, "cache_write", "cache-write", "Cache Write Input Tokens", "Input", "CacheWrite"),
    (3, "output", "output", "Output Tokens", "Output", None),
)


def _price_on(model: str, day: date) -> _Price:
    for price in (*_PRICES, _PROVIDER_ONLY):
        if (
            price.model == model
            and price.effective_from <= day
            and (price.effective_to is None or day < price.effective_to)
        ):
            return price
    raise LookupError(f"no demo price for {model} on {day}")


def _billed_unit_price(price: _Price, field: str, period: str) -> Decimal:
    over = PLANTED["billing_overcharge"]
    if period in over["periods"] and price.model == over["model"] and field == "output":
        return Decimal(over["billed_per_1m"])
    return Decimal(getattr(price, field) or "0")


def _money(value: Decimal) -> str:
    """Return value exactly, with at least two decimals (FOCUS examples style)."""
    value = value.normalize()
    if value.as_tuple().exponent > -2:
        value = value.quantize(_CENT)
    return format(value, "f")


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _write_bill(path: Path, period: str, usage: dict[tuple[int, int], np.ndarray]) -> None:
    start = _month_start(period)
    end = _next_month(start)
    first_day = (start.date() - date(1970, 1, 1)).days
    last_day = (end.date() - date(1970, 1, 1)).days
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    common = {
        "BillingAccountId": "cometapi-acct-000000",
        "BillingAccountName": "Acme Corp",
        "BillingCurrency": "USD",
        "BillingPeriodStart": start.strftime(stamp),
        "BillingPeriodEnd": end.strftime(stamp),
        "ChargeClass": "",
        "InvoiceId": f"CMT-{start:%Y%m}-000000",  # placeholder: one invoice a month
        "InvoiceIssuerName": "CometAPI",
        "ServiceCategory": "AI and Machine Learning",
        "ServiceName": "CometAPI",
        "ServiceProviderName": "CometAPI",
        "ServiceSubcategory": "Generative AI",
        "Tags": "{}",
    }
    lines = []
    total = Decimal(0)
    for day_number, model_code in sorted(k for k in usage if first_day <= k[0] < last_day):
        sums = usage[(day_number, model_code)]
        model, _, developer = _MODELS[model_code]
        day = date(1970, 1, 1) + timedelta(days=day_number)
        price = _price_on(model, day)
        day_common = {
            **common,
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodStart": f"{day.isoformat()}T00:00:00Z",
            "ChargePeriodEnd": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
            "HostProviderName": developer,
            "PricingCategory": "Standard",
        }
        if price.per_call is not None:
            meters = [(int(sums[4]), price.per_call, "image", "Image Generations", None, None)]
        else:
            meters = [
                (int(sums[i]), field, sku, meter, direction, action)
                for i, field, sku, meter, direction, action in _METERS
            ]
        for quantity, field, sku, meter, direction, action in meters:
            if quantity == 0:
                continue
            if direction is None:
                unit_price = Decimal(field)
                cost = quantity * unit_price
                pricing_quantity, unit, pricing_unit = Decimal(quantity), "Requests", "Requests"
                details = {"ModelDeveloper": developer, "ModelId": model}
            else:
                unit_price = _billed_unit_price(price, field, period)
                pricing_quantity = Decimal(quantity).scaleb(-6)
                cost = pricing_quantity * unit_price
                unit, pricing_unit = "Tokens", "1000000 Tokens"
                details = {"ModelDeveloper": developer, "ModelId": model}
                if action is not None:
                    details["TokenCacheAction"] = action
                details["TokenDirection"] = direction
            total += cost
            lines.append(
                {
                    **day_common,
                    "BilledCost": _money(cost),
                    "ChargeDescription": f"{meter} for {model} on {day.isoformat()}",
                    "ConsumedQuantity": str(quantity),
                    "ConsumedUnit": unit,
                    "ContractedCost": _money(cost),
                    "ContractedUnitPrice": _money(unit_price),
                    "EffectiveCost": _money(cost),
                    "ListCost": _money(cost),
                    "ListUnitPrice": _money(unit_price),
                    "PricingQuantity": _quantity(pricing_quantity),
                    "PricingUnit": pricing_unit,
                    "SkuId": f"{model}-{sku}",
                    "SkuMeter": meter,
                    "SkuPriceDetails": json.dumps(details, separators=(",", ":")),
                    "SkuPriceId": f"{model}-{sku}-{price.effective_from.strftime('%Y%m%d')}",
                }
            )
    month_common = {
        **common,
        "ChargePeriodStart": start.strftime(stamp),
        "ChargePeriodEnd": end.strftime(stamp),
        "HostProviderName": "CometAPI",
    }
    tax = (total * _TAX_RATE).quantize(_CENT, ROUND_HALF_UP)
    credit = -(total * _CREDIT_RATE).quantize(_CENT, ROUND_HALF_UP)
    for category, frequency, description, amount in (
        ("Tax", "Recurring", "Sales tax (7.25% of usage)", tax),
        ("Credit", "One-Time", "Promotional credit (2% of usage)", credit),
    ):
        lines.append(
            {
                **month_common,
                "BilledCost": _money(amount),
                "ChargeCategory": category,
                "ChargeDescription": description,
                "ChargeFrequency": frequency,
                "ContractedCost": _money(amount),
                "EffectiveCost": _money(amount),
                "ListCost": _money(amount),
            }
        )
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_BILL_COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)


# --- YAML files -------------------------------------------------------------------------------

_KIT_YAML = """\
# allocation-kit workspace config. Relative paths resolve against this file.
# This is the demo workspace of a made-up company; copy it and edit the paths to start your own.

# Shown on every packet and index page.
name: Acme Corp AI spend (demo)

# Currency of the pricing snapshot and the bill; money is rounded to its minor unit only when shown.
currency: USD

# Engine for the row-level work (load, validate, attribute, price, aggregate). DuckDB runs
# in-process and out of core, so a 100M-request month fits on a laptop.
engine: duckdb

# The request ledger: one row per API call attempt (a glob may match many files). The review of a
# period uses the rows timestamped in that period; rows outside it are counted and reported.
requests: {path: data/requests/*.parquet, format: parquet}

# The provider's billing export that the ledger is reconciled against (FOCUS CSV here).
billing: {path: data/billing/*.csv, format: focus}

# Owner registry: teams, applications (each owned by exactly one team), shared-cost rules, and
# the allowed environments and workload classes. Tags outside it are reported as unknown owners.
registry: registry.yaml

# Pricing snapshot: dated prices per model, reviewed by a person. A model without a price in
# effect is an exception, never a zero.
pricing: pricing.yaml

# Cost units: signed-off definitions of what one unit of work costs (unit economics).
cost_units: cost_units.yaml

# Monthly budgets per team, with alert thresholds (prorated for weekly periods).
budgets: budgets.yaml

# Reconciliation passes when the ledger's cost is within this percent of the billed usage.
reconciliation: {tolerance_pct: 1.0}

# Role recorded on the review records and sign-off fields; how a budget owner questions a charge
# (printed on every team statement).
review:
  reviewer_role: finops-analyst
  disputes: Reply to finops@acme.example (a placeholder) within 10 working days, naming the line.

# The chargeback to the bill: what teams carry beyond their own cost, in proportion to it (any of
# unallocated, usage_difference, tax, credit, adjustment, purchase, correction). The rest stays
# with the reviewer. The usage difference is spread only when the reconciliation passes.
chargeback: {spread: [unallocated, usage_difference, tax, credit]}

# Who evidence/focus_allocated.csv (the allocated cost in FOCUS) names as provider, and the
# billing account as the provider's bill names it, so its rows join the bill's.
focus:
  provider_name: CometAPI
  billing_account_id: cometapi-acct-000000
  billing_account_name: Acme Corp
"""


_COST_UNITS_YAML = """\
# Cost units: what one unit of work costs. Each is a signed-off decision: the numerator is the
# priced cost of the ledger rows matching the filter (successful, billable calls in any allocation
# status); the denominator is exactly one of {distinct: column}, {count: requests},
# {sum: <token column>, per: N} or {events: <csv>, column: <name>} (a CSV with a date column).
# Changing a numerator or denominator later is flagged: the old and new numbers don't compare.
cost_units:
  - name: cost_per_kb_summarizer_run
    description: one nightly knowledge-base summarisation job, end to end
    numerator: {application: kb-summarizer}
    denominator: {distinct: job_id}
    owner: support-ops-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-07-30
  - name: cost_per_support_ticket
    description: AI spend of the support team per ticket closed (tickets from the helpdesk export)
    numerator: {team: support}
    denominator: {events: data/events/support_tickets.csv, column: tickets_closed}
    owner: support-ops-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-07-30
  - name: cost_per_1k_assistant_output_tokens
    description: assistant chat replies, per thousand output tokens
    numerator: {application: assistant-chat}
    denominator: {sum: output_tokens, per: 1000}
    owner: assistant-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-07-30
  - name: cost_per_search_answer
    description: one production search-api call
    numerator: {application: search-api, environment: production}
    denominator: {count: requests}
    owner: search-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-07-30
"""

_BUDGETS_YAML = """\
# Monthly budgets per team. A team's actual is its allocated and shared cost in the listed
# environments (production when none are listed); its other environments are shown beside it.
# Status: exceeded over 100%; warning once a threshold is crossed, the forecast is over budget,
# or the actual leaves out unpriced calls (their cost is unknown, so the actual may be short).
thresholds_pct: [80, 100]
budgets:
  - {team: search, monthly: 60.00}
  - {team: assistant, monthly: 1000.00}
  - {team: recommendations, monthly: 40.00}
  - {team: support, monthly: 1000.00}
  - {team: trust-safety, monthly: 60.00}
  - {team: platform, monthly: 400.00, environments: [production, staging, development]}
  - {team: data-science, monthly: 30.00, environments: [production, staging, development]}
  - {team: finance-ops, monthly: 150.00}
"""


def _registry_yaml() -> str:
    lines = [
        "# Owner registry of Acme Corp (demo). Every request's team and application tags are",
        "# checked against it: unknown values are `unknown_owner`, a team tag that disagrees",
        "# with the application's team is a `conflict`, no tags at all is `untagged`.",
        "",
        "teams:",
    ]
    for team, unit, center, owner in _TEAMS:
        lines.append(
            f"  - {{id: {team}, business_unit: {unit}, cost_center: {center}, "
            f"budget_owner: {owner}}}"
        )
    lines += [
        "",
        "# Each application maps to exactly one team. A shared application's cost is",
        "# split between teams by its rule: fixed percentages, proportional to a basis",
        "# (tokens, cost or requests) or evenly. `callers: [key-…]` on an application claims",
        "# the requests of those caller_ids that carry no tags at all.",
        "applications:",
    ]
    for source in _REGULAR:
        if source.application in _SHARED_RULES:
            lines += [
                f"  - id: {source.application}",
                f"    team: {source.team}",
                f"    shared: {_SHARED_RULES[source.application]}",
            ]
        else:
            lines.append(f"  - {{id: {source.application}, team: {source.team}}}")
    for app, team in _INACTIVE_APPS:
        lines.append(f"  - {{id: {app}, team: {team}, active: false}}   # retired; no traffic")
    lines += [
        "",
        f"environments: [{', '.join(_ENVIRONMENTS)}]",
        f"workload_classes: [{', '.join(_WORKLOADS)}]",
        "",
    ]
    return "\n".join(lines)


def _pricing_yaml() -> str:
    lines = [
        "# Pricing snapshot: the aggregator's list prices as reviewed by a person, per 1M tokens",
        "# (per call for image models). input includes cached and cache-write tokens, which have",
        "# their own prices where listed; output includes reasoning tokens.",
        "# effective_from is inclusive and effective_to exclusive (UTC midnight).",
        "currency: USD",
        "source_url: https://example.com/aggregator/pricing   # placeholder",
        "reviewed_on: 2026-07-28",
        "reviewed_by: finops-analyst",
        "failed_calls_billable: false",
        "models:",
    ]
    fields = ("input", "cached_input", "cache_write", "output", "reasoning")
    for price in _PRICES:
        lines += [
            f"  - model: {price.model}",
            f"    effective_from: {price.effective_from.isoformat()}",
        ]
        if price.effective_to is not None:
            lines.append(f"    effective_to: {price.effective_to.isoformat()}")
        # who makes the model: the FOCUS export's PublisherName of its rows (CometAPI sells it)
        lines.append(f"    publisher: {_DEVELOPER[price.model]}")
        if price.per_call is not None:
            lines.append(f"    per_call: {price.per_call}")
        else:
            listed = ", ".join(
                f"{f}: {getattr(price, f)}" for f in fields if getattr(price, f) is not None
            )
            lines.append(f"    per_1m_tokens: {{{listed}}}")
    lines.append("")
    return "\n".join(lines)
