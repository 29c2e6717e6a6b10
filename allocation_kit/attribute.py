"""Attribute: give every in-period attempt exactly one allocation status from the registry.

Statuses, in the order the rules apply:

- `quarantined`: the same request_id logged twice with different content (see
  `resolve_duplicates`), or token subsets larger than their totals (cached + cache writes >
  input, reasoning > output);
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

from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa

from .config import Registry

__all__ = [
    "STATUSES",
    "UNALLOCATED_STATUSES",
    "bad_tokens_sql",
    "duplicate_candidates",
    "hash_arrays",
    "hash_table",
    "register_registry",
    "repeated_sorted",
    "tag_status_sql",
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


def hash_arrays(con: duckdb.DuckDBPyConnection, query: str) -> list[np.ndarray]:
    """The UBIGINT columns of `query` (64-bit hashes, never NULL) as writable numpy arrays.

    `fetchnumpy` fills the arrays in parallel; streaming Arrow batches is two to three times
    slower for 10M rows.
    """
    columns = con.execute(query).fetchnumpy()
    return [np.asarray(values, dtype=np.uint64) for values in columns.values()]


def hash_table(values: np.ndarray) -> pa.Table:
    """The 64-bit hashes `values` as a one-column Arrow table `h` (UBIGINT) for DuckDB, without
    a copy. Built from the array's buffer: `pa.array` on numpy would import pandas, half a
    second the pipeline has no other use for."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    column = pa.Array.from_buffers(pa.uint64(), len(values), [None, pa.py_buffer(values)])
    return pa.table({"h": column})


def repeated_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values that occur more than once in the sorted array `values`."""
    return np.unique(values[1:][values[1:] == values[:-1]])


def duplicate_candidates(ids: np.ndarray, calls: np.ndarray | None) -> tuple[pa.Table, int]:
    """The 64-bit hashes of request_ids that occur more than once, and the number of logical
    calls (attempts grouped by idempotency_key; an attempt without one is its own call), from
    the hashes of every attempt's request_id (`ids`) and of its idempotency_key or, without
    one, its request_id (`calls`; None when the ledger has no idempotency_key column: every
    distinct request_id is then a call). Sorts both arrays in place.

    The hashes are a candidate set: equal hashes are necessary for equal ids, and the pipeline
    decides exactly on the few candidate rows. Sorting hashes in numpy is several times faster
    than a 10M-group hash aggregate on two cores, at 16 bytes a row.
    """
    # numpy sorts without the GIL: the two sorts run side by side on two cores
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(np.ndarray.sort, (ids,) if calls is None else (ids, calls)))
    calls = ids if calls is None else calls
    logical_calls = int(np.count_nonzero(calls[1:] != calls[:-1]) + 1) if len(calls) else 0
    return hash_table(repeated_sorted(ids)), logical_calls


def bad_tokens_sql(row: str) -> tuple[str, str]:
    """SQL (condition, detail) for token subsets larger than their totals, or rows an adapter
    could read only in part (`source_problem`): such rows are quarantined whatever their tags
    say."""
    r = row
    condition = (
        f"({r}.cached_input_tokens + {r}.cache_write_tokens > {r}.input_tokens "
        f"OR {r}.reasoning_tokens > {r}.output_tokens OR {r}.source_problem IS NOT NULL)"
    )
    detail = f"""CASE
        WHEN {r}.source_problem IS NOT NULL THEN {r}.source_problem
        WHEN {r}.cached_input_tokens + {r}.cache_write_tokens > {r}.input_tokens
            THEN 'cached_input_tokens + cache_write_tokens exceed input_tokens'
        WHEN {r}.reasoning_tokens > {r}.output_tokens THEN 'reasoning_tokens exceed output_tokens'
        END"""
    return condition, detail


def tag_status_sql(source: str) -> str:
    """SQL: one row per distinct (application, team) tag pair of `source`, numbered `tag_id`,
    with its allocation_status, owner_team and detail from the registry.

    The status depends only on the tags, and a ledger has a few hundred distinct pairs at most:
    deciding each pair once and joining by pair keeps the per-row work to a hash lookup.
    """
    disagrees = (
        "r.team IS NOT NULL AND r.team <> a.team "
        "AND NOT (a.shared AND list_contains(a.share_teams, r.team))"
    )
    return f"""
        SELECT row_number() OVER (ORDER BY r.application, r.team)::INTEGER AS tag_id,
            r.application, r.team,
            CASE
                WHEN r.application IS NOT NULL AND a.id IS NULL THEN 'unknown_owner'
                WHEN r.team IS NOT NULL AND t.id IS NULL THEN 'unknown_owner'
                WHEN r.application IS NOT NULL AND {disagrees} THEN 'conflict'
                WHEN r.application IS NOT NULL AND a.shared THEN 'shared'
                WHEN r.application IS NOT NULL OR r.team IS NOT NULL THEN 'allocated'
                ELSE 'untagged' END AS allocation_status,
            CASE
                WHEN r.application IS NULL THEN t.id
                WHEN a.id IS NULL OR (r.team IS NOT NULL AND t.id IS NULL) OR {disagrees}
                    THEN NULL
                ELSE a.team END AS owner_team,
            CASE
                WHEN r.application IS NOT NULL AND a.id IS NULL
                    THEN 'application ' || r.application || ' is not in the registry'
                        || COALESCE(' (did you mean ' || (SELECT min(id) FROM reg_apps
                            WHERE lower(id) = lower(r.application)) || '?)', '')
                        || CASE WHEN r.team IS NOT NULL AND t.id IS NULL  -- one fix, not two
                            THEN ', nor is team ' || r.team ELSE '' END
                WHEN r.team IS NOT NULL AND t.id IS NULL
                    THEN 'team ' || r.team || ' is not in the registry'
                        || COALESCE(' (did you mean ' || (SELECT min(id) FROM reg_teams
                            WHERE lower(id) = lower(r.team)) || '?)', '') || CASE
                        WHEN r.application IS NOT NULL THEN ' (application ' || r.application
                            || ' is owned by ' || a.team || ')' ELSE '' END
                WHEN r.application IS NOT NULL AND {disagrees}
                    THEN 'team tag ' || r.team || ' disagrees with application '
                        || r.application || ' owned by ' || a.team
                WHEN r.application IS NULL AND r.team IS NULL
                    THEN 'no team and no application tag'
                END AS detail
        FROM (SELECT DISTINCT application, team FROM {source}) r
        LEFT JOIN reg_apps a ON a.id = r.application
        LEFT JOIN reg_teams t ON t.id = r.team"""
