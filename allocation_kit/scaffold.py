"""`allocation-kit init`: a starter workspace to edit, with comments on every key."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_starter_workspace"]

KIT_YAML = """\
# allocation-kit workspace. Paths are globs relative to this file.
name: My company AI spend
currency: USD                 # ISO 4217; the pricing snapshot must use the same
engine: duckdb                # row-level work runs in-process on DuckDB
requests:                     # the request ledger: one row per API call attempt
  path: data/requests/*.csv   # CSV, Parquet or JSONL (by suffix), many files allowed
  format: auto                # auto | csv | parquet | jsonl | litellm | openai-usage
  columns: {}                 # canonical name: your column, e.g. {team: owner_tag}
# billing:                    # the provider's bill, for reconciliation
#   path: data/billing/*.csv
#   format: focus             # focus | generic | openai-usage
# (several providers' bills: a list of {path, format})
registry: registry.yaml       # who owns what
pricing: pricing.yaml         # the dated, reviewed price snapshot
cost_units: cost_units.yaml   # signed-off unit cost definitions (unit economics)
budgets: budgets.yaml         # monthly budgets per team, with alert thresholds
reconciliation: {tolerance_pct: 1.0}
review:
  reviewer_role: finops-analyst
  # segregation_of_duties: true  # refuse an approval signed by the account that ran the period
  # journal: ../review-journal.jsonl  # every review-log record anchored outside reports/
  # unpriced_materiality: 25.00  # unpriced calls billed at most this: follow-up, not fail
# chargeback:                 # what teams carry beyond their own cost, pro rata to it
#   spread: [unallocated, tax]  # also usage_difference, credit, adjustment, purchase, correction
"""

REGISTRY_YAML = """\
# The owner registry: the controlled vocabulary every request is attributed against.
teams:
  - {id: search, business_unit: product, cost_center: CC-100, budget_owner: search-lead}
  - {id: support, business_unit: operations, cost_center: CC-200, budget_owner: support-lead}
  - {id: platform, business_unit: corporate, cost_center: CC-900, budget_owner: platform-lead}
    # aliases: [other names the ledger logs for this team, e.g. a LiteLLM team_id UUID]
applications:                 # an application maps to exactly one team
  - {id: search-api, team: search}
  - {id: ticket-summarizer, team: support}
    # callers: [caller_ids whose requests carry no tags at all but are this application's]
  - id: llm-gateway           # a shared application: its cost is split by the rule
    team: platform
    shared: {method: fixed, split: {search: 70, support: 30}}
    # or {method: proportional, basis: tokens|cost|requests, teams: [search, support]}
    # or {method: even, teams: [search, support]}
environments: [production, staging, development]
# an environment the ledger spells otherwise: {id: production, aliases: [prod]}
workload_classes: [user_facing_chat, batch, eval, support, internal_automation]
"""

PRICING_YAML = """\
# A dated price snapshot: where the prices were read, when, and by whom.
currency: USD
source_url: https://example.com/your-provider/pricing   # placeholder: where you read them
reviewed_on: 2026-10-01
reviewed_by: finops-analyst
failed_calls_billable: false   # non-2xx attempts cost nothing unless true
models:
  - model: gpt-4o-mini
    effective_from: 2026-01-01   # inclusive; effective_to (optional) is exclusive
    per_1m_tokens: {input: 0.15, cached_input: 0.075, output: 0.60}
  - model: dall-e-3
    effective_from: 2026-01-01
    per_call: 0.04
"""

COST_UNITS_YAML = """\
# What one unit of work costs. Numerator: the priced cost of the ledger rows matching the filter
# (team, application, feature, model, environment, workload_class, endpoint). Denominator: one of
# {distinct: job_id} | {count: requests} | {sum: output_tokens, per: 1000}
# | {events: data/events/orders.csv, column: orders}   (a CSV with a date column)
cost_units:
  - name: cost_per_search_answer
    description: one production search-api call
    numerator: {application: search-api, environment: production}
    denominator: {count: requests}
    owner: search-lead
    signed_off_by: finance-partner
    signed_off_on: 2026-10-01
"""

BUDGETS_YAML = """\
# Monthly budgets per team (prorated day by day for weekly periods). Actual is the team's allocated
# and shared cost in the listed environments (default: production only).
thresholds_pct: [50, 80, 100]
budgets:
  - {team: search, monthly: 500.00}
  - {team: support, monthly: 300.00}
  - {team: platform, monthly: 200.00, environments: [production, staging, development]}
"""

SAMPLE_LEDGER = """\
request_id,timestamp,team,application,environment,workload_class,feature,caller_id,endpoint,model,input_tokens,output_tokens,cached_input_tokens,reasoning_tokens,status_code,idempotency_key
req-0001,2026-10-01T09:00:00Z,search,search-api,production,user_facing_chat,answers,svc-search,/v1/chat/completions,gpt-4o-mini,1200,300,400,0,200,k-0001
req-0002,2026-10-01T09:05:00Z,support,ticket-summarizer,production,batch,summaries,svc-support,/v1/chat/completions,gpt-4o-mini,5000,800,0,0,200,k-0002
req-0003,2026-10-02T10:00:00Z,,llm-gateway,production,internal_automation,,svc-gateway,/v1/chat/completions,gpt-4o-mini,900,150,0,0,200,k-0003
req-0004,2026-10-02T11:00:00Z,,,staging,eval,,svc-unknown,/v1/images/generations,dall-e-3,0,0,0,0,200,k-0004
req-0005,2026-10-03T12:00:00Z,search,search-api,production,user_facing_chat,answers,svc-search,/v1/chat/completions,gpt-4o-mini,1000,200,0,0,429,k-0005
req-0006,2026-10-03T12:00:02Z,search,search-api,production,user_facing_chat,answers,svc-search,/v1/chat/completions,gpt-4o-mini,1000,200,0,0,200,k-0005
"""


def write_starter_workspace(directory: Path) -> Path:
    """Write kit.yaml, registry.yaml, pricing.yaml, cost_units.yaml, budgets.yaml and a sample
    ledger; return kit.yaml's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data" / "requests").mkdir(parents=True, exist_ok=True)
    (directory / "registry.yaml").write_text(REGISTRY_YAML)
    (directory / "pricing.yaml").write_text(PRICING_YAML)
    (directory / "cost_units.yaml").write_text(COST_UNITS_YAML)
    (directory / "budgets.yaml").write_text(BUDGETS_YAML)
    (directory / "data" / "requests" / "sample.csv").write_text(SAMPLE_LEDGER)
    (directory / "kit.yaml").write_text(KIT_YAML)
    return directory / "kit.yaml"
