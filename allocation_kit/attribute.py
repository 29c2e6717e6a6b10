"""Attribute: give every in-period attempt exactly one allocation status from the registry.

Statuses, in the order the rules apply:

- `quarantined`: the same request_id logged twice with different content, or token subsets
  larger than their totals (cached + cache writes > input, reasoning > output);
- `unknown_owner`: an application id, or (without one) a team tag, that the registry lacks;
- `conflict`: a team tag that disagrees with the application's registered team (for a shared
  application, a team among those sharing it is no conflict);
- `shared`: a registered shared application, split later by its rule;
- `allocated`: a registered application (to its team), or a registered team tag alone;
- `untagged`: neither team nor application.

Identical logging duplicates (same request_id, same content) count once; the extra copies are
reported, not priced.
"""

from __future__ import annotations

import duckdb

from .config import Registry
from .load import CANONICAL_COLUMNS

__all__ = [
    "STATUSES",
    "UNALLOCATED_STATUSES",
    "attributed_view_sql",
    "duplicate_ids_sql",
    "register_registry",
]

STATUSES = ("allocated", "shared", "untagged", "unknown_owner", "conflict", "quarantined")
UNALLOCATED_STATUSES = ("untagged", "unknown_owner", "conflict", "quarantined")


def register_registry(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Create the temp tables `reg_teams` and `reg_apps` from the owner registry."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE reg_teams "
        "(id VARCHAR, business_unit VARCHAR, cost_center VARCHAR, budget_owner VARCHAR)"
    )
    con.executemany(
        "INSERT INTO reg_teams VALUES (?, ?, ?, ?)",
        [(t.id, t.business_unit, t.cost_center, t.budget_owner) for t in registry.teams],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE reg_apps "
        "(id VARCHAR, team VARCHAR, active BOOLEAN, shared BOOLEAN, share_teams VARCHAR[])"
    )
    rows = [
        (a.id, a.team, a.active, a.shared is not None, a.shared.teams if a.shared else [])
        for a in registry.applications
    ]
    if rows:
        con.executemany("INSERT INTO reg_apps VALUES (?, ?, ?, ?, ?)", rows)


def _content_hash() -> str:
    columns = ", ".join(c for c in CANONICAL_COLUMNS if c != "request_id")
    return f"hash({columns})"


def duplicate_ids_sql(source: str) -> str:
    """SQL: request_ids logged more than once in `source`, with copies and whether identical."""
    return f"""
        SELECT request_id, count(*) AS copies, min(h) = max(h) AS identical
        FROM (SELECT request_id, {_content_hash()} AS h FROM {source})
        GROUP BY request_id HAVING count(*) > 1"""


def attributed_view_sql(source: str, duplicates: str) -> str:
    """SQL: one row per unique attempt of `source` with `allocation_status`, `owner_team`, `detail`.

    `duplicates` is a relation from `duplicate_ids_sql`. Identical copies are collapsed to one.
    """
    columns = ", ".join(f"r.{c}" for c in [*CANONICAL_COLUMNS, "source_file"])
    bad_tokens = (
        "(r.cached_input_tokens + r.cache_write_tokens > r.input_tokens "
        "OR r.reasoning_tokens > r.output_tokens)"
    )
    return f"""
        WITH unique_rows AS (
            SELECT {columns}, d.request_id IS NOT NULL AS id_conflict
            FROM {source} r ANTI JOIN (SELECT request_id FROM {duplicates} WHERE identical) x
                USING (request_id)
            LEFT JOIN {duplicates} d ON d.request_id = r.request_id
            UNION ALL
            SELECT DISTINCT ON (r.request_id) {columns}, false AS id_conflict
            FROM {source} r SEMI JOIN (SELECT request_id FROM {duplicates} WHERE identical) x
                USING (request_id)
        )
        SELECT r.*,
            CASE
                WHEN r.id_conflict OR {bad_tokens} THEN 'quarantined'
                WHEN r.application IS NOT NULL AND a.id IS NULL THEN 'unknown_owner'
                WHEN r.application IS NOT NULL AND r.team IS NOT NULL AND r.team <> a.team
                    AND NOT (a.shared AND list_contains(a.share_teams, r.team)) THEN 'conflict'
                WHEN r.application IS NOT NULL AND a.shared THEN 'shared'
                WHEN r.application IS NOT NULL THEN 'allocated'
                WHEN r.team IS NOT NULL AND t.id IS NULL THEN 'unknown_owner'
                WHEN r.team IS NOT NULL THEN 'allocated'
                ELSE 'untagged'
            END AS allocation_status,
            CASE
                WHEN r.id_conflict OR {bad_tokens} OR r.application IS NULL AND t.id IS NULL
                    THEN NULL
                WHEN r.application IS NULL THEN r.team
                WHEN a.id IS NULL THEN NULL
                WHEN r.team IS NOT NULL AND r.team <> a.team
                    AND NOT (a.shared AND list_contains(a.share_teams, r.team)) THEN NULL
                ELSE a.team
            END AS owner_team,
            CASE
                WHEN r.id_conflict THEN 'request_id logged more than once with different content'
                WHEN r.cached_input_tokens + r.cache_write_tokens > r.input_tokens
                    THEN 'cached_input_tokens + cache_write_tokens exceed input_tokens'
                WHEN r.reasoning_tokens > r.output_tokens
                    THEN 'reasoning_tokens exceed output_tokens'
                WHEN r.application IS NOT NULL AND a.id IS NULL
                    THEN 'application ' || r.application || ' is not in the registry'
                WHEN r.application IS NOT NULL AND r.team IS NOT NULL AND r.team <> a.team
                    AND NOT (a.shared AND list_contains(a.share_teams, r.team))
                    THEN 'team tag ' || r.team || ' disagrees with application ' || r.application
                        || ' owned by ' || a.team
                WHEN r.application IS NULL AND r.team IS NOT NULL AND t.id IS NULL
                    THEN 'team ' || r.team || ' is not in the registry'
                WHEN r.application IS NULL AND r.team IS NULL
                    THEN 'no team and no application tag'
            END AS detail
        FROM unique_rows r
        LEFT JOIN reg_apps a ON a.id = r.application
        LEFT JOIN reg_teams t ON t.id = r.team"""
