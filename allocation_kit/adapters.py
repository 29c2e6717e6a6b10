"""Adapters: real gateway exports read into the canonical request ledger, in DuckDB SQL.

`requests.format` picks one:

- `litellm`: an export of LiteLLM proxy's `LiteLLM_SpendLogs` table (CSV, JSONL or JSON, or
  Parquet, by suffix). LiteLLM's own `spend` is kept as `recorded_cost`, a second opinion; a
  response LiteLLM served from its cache (`cache_hit`) is counted and never billable.
- `openai-usage`: JSONL of OpenAI-compatible responses (chat.completions or responses objects),
  bare or wrapped by a gateway log record (`{request_id, timestamp, tags, status_code, request,
  response}`). Streamed chunks of one response become one row with the last chunk's usage.

Each adapter parses the export once into the temp table `adapted_requests` (viewed as
`raw_requests`): one column per canonical column it fills (VARCHAR, named after where the value
came from so `load`'s messages name the source) plus `filename`; `load` then casts and checks it
like any other ledger. Only the values listed here are ever
extracted: prompt and response content (LiteLLM's `messages`, `response`,
`proxy_server_request`; request bodies, `choices` and `output` of usage records) and requester IP
addresses are never selected, so they cannot reach the ledger, the evidence or the packet.

Rows an adapter can read only in part are kept and quarantined (`source_problem` says why):
LiteLLM rows whose `metadata` or `request_tags` is not valid JSON, and successful responses
without a usage object (their tokens are unknown). A record that is not JSON at all is an
InputError naming the file and line: it has no id or tokens to keep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from .config import RequestFields, RequestsSource
from .errors import ConfigError, InputError
from .malformed import bad_json_line, malformed_json_error
from .malformed import sql_identifier as _quote

__all__ = ["LITELLM_FIELDS", "OPENAI_USAGE_FIELDS", "adapted_requests"]

# canonical column -> locators tried in order, when requests.fields does not say otherwise
LITELLM_FIELDS: dict[str, tuple[str, ...]] = {
    "team": ("metadata.user_api_key_team_alias", "team_id"),
    "application": ("metadata.spend_logs_metadata.application", "tag:app:"),
    "environment": ("metadata.spend_logs_metadata.environment", "tag:env:"),
    "workload_class": ("metadata.spend_logs_metadata.workload_class", "tag:workload:"),
    "feature": ("metadata.spend_logs_metadata.feature", "tag:feature:"),
    "job_id": ("metadata.spend_logs_metadata.job_id", "tag:job:"),
    "caller_id": ("metadata.user_api_key_alias", "api_key"),
    "idempotency_key": ("metadata.spend_logs_metadata.idempotency_key",),
    "endpoint": (),  # from call_type
    "model": ("model_group", "model"),
}
_LABELS = ("team", "application", "environment", "workload_class", "feature", "job_id")
# the `key:value` tags a gateway sends as a list ("tags": ["team:search", "app:search-api"])
_TAG_PREFIXES = {
    "team": ("team",),
    "application": ("app", "application"),
    "environment": ("env", "environment"),
    "workload_class": ("workload", "workload_class"),
    "feature": ("feature",),
    "job_id": ("job", "job_id"),
}
OPENAI_USAGE_FIELDS: dict[str, tuple[str, ...]] = {
    **{
        c: (f"tags.{c}", f"request.metadata.{c}", f"metadata.{c}",
            *(f"tag:{prefix}:" for prefix in _TAG_PREFIXES[c]))
        for c in _LABELS
    },
    "caller_id": ("tags.caller_id", "request.metadata.caller_id", "metadata.caller_id"),
    "idempotency_key": (
        "idempotency_key", "tags.idempotency_key", "request.metadata.idempotency_key",
    ),
    "endpoint": ("endpoint",),  # else from the response's object type
    "model": ("response.model", "model", "request.model"),
}  # fmt: skip

# LiteLLM call_type (sync or async) -> the OpenAI-compatible endpoint it serves
_CALL_TYPE_ENDPOINTS = {
    "completion": "/v1/chat/completions",
    "text_completion": "/v1/completions",
    "responses": "/v1/responses",
    "embedding": "/v1/embeddings",
    "image_generation": "/v1/images/generations",
    "transcription": "/v1/audio/transcriptions",
    "speech": "/v1/audio/speech",
    "moderation": "/v1/moderations",
    "rerank": "/v1/rerank",
}
_OBJECT_ENDPOINTS = {
    "chat.completion": "/v1/chat/completions",
    "chat.completion.chunk": "/v1/chat/completions",
    "text_completion": "/v1/completions",
    "response": "/v1/responses",
    "list": "/v1/embeddings",
}
# Top-level LiteLLM_SpendLogs columns the adapter reads; never messages, response,
# proxy_server_request or requester_ip_address.
_LITELLM_COLUMNS = (
    "request_id", "call_type", "api_key", "spend", "prompt_tokens", "completion_tokens",
    "startTime", "model", "model_group", "status", "team_id", "metadata", "request_tags",
    "cache_hit",
)  # fmt: skip
_LITELLM_REQUIRED = ("request_id", "startTime", "prompt_tokens", "completion_tokens")
_NO_USAGE = "no usage object in the response: token counts unknown"
_NO_INPUT = "usage has no prompt_tokens or input_tokens: input tokens unknown"
_NO_OUTPUT = "usage has no completion_tokens or output_tokens: output tokens unknown"


def adapted_requests(
    con: duckdb.DuckDBPyConnection,
    source: RequestsSource,
    files: list[Path],
    formats: dict[str, str],
    config_name: str,
    priced: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Create the view `raw_requests` from a gateway export; return canonical column -> the
    `raw_requests` column holding it. Of the model's locators, the first naming one of the
    `priced` models (or aliases) wins, else the first non-empty."""
    fields = _fields(source)
    if source.format == "litellm":
        columns = _litellm(con, files, formats, fields, source.fields, config_name, priced)
    else:
        not_json = [f for f in files if formats[str(f)] != "jsonl"]
        if not_json:
            raise ConfigError(
                config_name,
                "requests.format",
                f"openai-usage reads JSONL records; {not_json[0].name} is not .jsonl or .json",
            )
        columns = _openai_usage(con, files, fields, priced)
    _check_configured(con, source, config_name)
    return columns


def _check_configured(
    con: duckdb.DuckDBPyConnection, source: RequestsSource, config_name: str
) -> None:
    """A locator the user wrote (requests.fields) that finds its label in no record is a typo,
    not a ledger without labels: one misspelt key would otherwise blank a tag on every row."""
    configured = {
        name: locators
        for name, locators in (source.fields or [])
        # [] maps nothing on purpose; the endpoint falls back to the call type
        if locators and name != "endpoint"
    }
    if not configured:
        return
    counts = con.execute(
        f"SELECT count(*), {', '.join(f'count({_quote(n)})' for n in configured)} "
        "FROM adapted_requests"
    ).fetchone()
    total = counts[0]
    for (name, locators), found in zip(configured.items(), counts[1:], strict=True):
        if total and not found:
            written = ", ".join(locators)
            raise ConfigError(
                config_name,
                f"requests.fields.{name}",
                f"{written} found no {name} in any of the {total:,} records; expected a "
                "locator that matches the export (check its spelling, or remove it to use "
                "the default)",
            )


def _fields(source: RequestsSource) -> dict[str, tuple[str, ...]]:
    defaults = LITELLM_FIELDS if source.format == "litellm" else OPENAI_USAGE_FIELDS
    chosen = dict(defaults)
    if source.fields is not None:
        for name, locators in source.fields:
            if locators is not None:
                chosen[name] = tuple(locators)
    return chosen


# --- SQL helpers --------------------------------------------------------------------------------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(_literal(str(p)) for p in paths) + "]"


def _json_path(segments: Sequence[str]) -> str:
    return "$" + "".join("." + json.dumps(s) for s in segments)


class _Paths:
    """JSON paths extracted with one parse per row into the list column `alias`; `get` returns
    the SQL of one path's value, `extract` the list (call it after every `get`)."""

    def __init__(self, alias: str) -> None:
        self.alias, self.paths = alias, []

    def get(self, segments: Sequence[str]) -> str:
        path = _json_path(segments)
        if path not in self.paths:
            self.paths.append(path)
        return f"{self.alias}[{self.paths.index(path) + 1}]"

    def extract(self, document: str) -> str:
        if not self.paths:
            return "CAST(NULL AS VARCHAR[])"
        listed = ", ".join(_literal(p) for p in self.paths)
        return f"json_extract_string({document}, [{listed}])"


def _blank_to_null(expression: str) -> str:
    return f"NULLIF(TRIM({expression}), '')"


def _first(expressions: list[str]) -> str:
    """SQL: the first non-blank of the expressions (NULL when there are none)."""
    cleaned = [_blank_to_null(e) for e in expressions]
    if not cleaned:
        return "CAST(NULL AS VARCHAR)"
    return cleaned[0] if len(cleaned) == 1 else f"COALESCE({', '.join(cleaned)})"


def _first_priced(expressions: list[str], priced: frozenset[str]) -> str:
    """SQL: the first of the expressions that names a priced model (or its alias), else the
    first non-blank: a gateway logs the model group asked for and the deployment it routed to,
    and whichever of them the snapshot prices is the one to price."""
    if len(expressions) < 2 or not priced:
        return _first(expressions)
    listed = ", ".join(_literal(name) for name in sorted(priced))
    cases = " ".join(f"WHEN {e} IN ({listed}) THEN {e}" for e in map(_blank_to_null, expressions))
    return f"CASE {cases} ELSE {_first(expressions)} END"


def _tag_value(tags: str, prefix: str) -> str:
    """SQL: the rest of the first tag starting with prefix (tag:app: on 'app:search' -> search)."""
    match = f"list_filter({tags}, lambda t: starts_with(t, {_literal(prefix)}))[1]"
    return f"substr({match}, {len(prefix) + 1})"


def _case(column: str, mapping: dict[str, str], otherwise: str) -> str:
    whens = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {otherwise} END"


def _json_records(files: list[Path]) -> str:
    return f"read_json_objects({_sql_list(files)}, format = 'auto', filename = true)"


def _materialised(con: duckdb.DuckDBPyConnection, query: str, files: list[Path]) -> None:
    """Create the table `adapted_requests` from query and the view `raw_requests` over it.

    The exports are parsed once: later stages scan the small canonical table (DuckDB spills it
    to disk when it outgrows memory), not the JSON again. A record that is not JSON is an
    InputError naming its file and line.
    """
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE adapted_requests AS {query}")
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise malformed_json_error(exc, files) or InputError(
            files[0], None, f"cannot read: {first}"
        ) from None
    con.execute("CREATE OR REPLACE TEMP VIEW raw_requests AS SELECT * FROM adapted_requests")


# --- LiteLLM_SpendLogs --------------------------------------------------------------------------


def _litellm_top_columns(fields: dict[str, tuple[str, ...]]) -> list[str]:
    wanted = list(_LITELLM_COLUMNS)
    for locators in fields.values():
        for locator in locators:
            top = locator.split(".")[0]
            if not locator.startswith("tag:") and top not in wanted:
                wanted.append(top)
    return wanted


def _litellm_export(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    formats: dict[str, str],
    wanted: list[str],
) -> set[str] | None:
    """Create the view `litellm_export`: filename + the wanted columns as text (JSON columns as
    JSON text). Returns the columns the CSV/Parquet files have (None when JSON files are read,
    whose keys are only known per record)."""
    parts, present = [], set()
    json_files = [f for f in files if formats[str(f)] == "jsonl"]
    for fmt in ("csv", "parquet"):
        group = [f for f in files if formats[str(f)] == fmt]
        if not group:
            continue
        paths = _sql_list(group)
        reader = (
            f"read_csv({paths}, all_varchar = true, union_by_name = true, filename = true, "
            "header = true)"
            if fmt == "csv"
            else f"read_parquet({paths}, union_by_name = true, filename = true)"
        )
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            types = {row[0]: row[1] for row in described}
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(group[0], None, f"cannot read as {fmt}: {first}") from None
        present |= set(types)
        selects = []
        for name in wanted:
            kind = types.get(name)
            if kind is None:
                value = "CAST(NULL AS VARCHAR)"
            elif kind == "VARCHAR":
                value = _quote(name)
            elif kind.startswith(("STRUCT", "MAP")) or kind.endswith("]"):
                value = f"CAST(to_json({_quote(name)}) AS VARCHAR)"
            else:
                value = f"CAST({_quote(name)} AS VARCHAR)"
            selects.append(f"{value} AS {_quote(name)}")
        parts.append(f"SELECT filename, {', '.join(selects)} FROM {reader}")
    if json_files:
        paths = _Paths("v")
        selects = [f"{paths.get([name])} AS {_quote(name)}" for name in wanted]
        parts.append(
            f"SELECT filename, {', '.join(selects)} "
            f"FROM (SELECT filename, {paths.extract('json')} AS v "
            f"FROM {_json_records(json_files)})"
        )
    union = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
    con.execute(f"CREATE OR REPLACE TEMP VIEW litellm_export AS {union}")
    return None if json_files else present


def _litellm(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    formats: dict[str, str],
    fields: dict[str, tuple[str, ...]],
    configured: RequestFields | None,
    config_name: str,
    priced: frozenset[str],
) -> dict[str, str]:
    wanted = _litellm_top_columns(fields)
    present = _litellm_export(con, files, formats, wanted)
    if present is not None:
        missing = [c for c in _LITELLM_REQUIRED if c not in present]
        if not ({"model", "model_group"} & present):
            missing.append("model")
        if missing:
            found = ", ".join(sorted(present - {"filename"}))
            raise InputError(
                files[0] if len(files) == 1 else files[0].parent,
                None,
                f"missing LiteLLM_SpendLogs column {missing[0]!r}; columns found: {found}",
            )
        for name, locators in configured or []:
            for locator in locators or []:
                top = locator.split(".")[0]
                if not locator.startswith("tag:") and top not in present:
                    raise ConfigError(
                        config_name,
                        f"requests.fields.{name}",
                        f"no column {top!r} in the LiteLLM export",
                    )

    meta = _Paths("m")
    blank = "(TRIM({0}) IN ('', 'null', '{{}}', '[]') OR {0} IS NULL)"
    meta_ok = f"(NOT {blank.format('metadata')} AND json_valid(metadata))"
    tags_ok = f"(NOT {blank.format('request_tags')} AND json_valid(request_tags))"

    def locate(locator: str) -> str:
        if locator.startswith("tag:"):
            return _tag_value("tags", locator[4:])
        top, *rest = locator.split(".")
        if not rest:
            return _quote(top)
        if top == "metadata":
            return meta.get(rest)
        return f"CASE WHEN json_valid({_quote(top)}) THEN json_extract_string({_quote(top)}, " \
            f"{_literal(_json_path(rest))}) END"  # fmt: skip

    labels = {
        name: _first([locate(loc) for loc in fields[name]])
        for name in (*_LABELS, "caller_id", "idempotency_key")
    }
    model = _first_priced([locate(loc) for loc in fields["model"]], priced)
    call_types = {k: v for base, v in _CALL_TYPE_ENDPOINTS.items() for k in (base, "a" + base)}
    endpoint = _first([
        *(locate(loc) for loc in fields["endpoint"]),
        _case("call_type", call_types, "call_type"),
    ])  # fmt: skip

    def usage(*paths: str) -> str:
        return _first([meta.get(p.split(".")) for p in paths])

    cached = usage(
        "usage_object.prompt_tokens_details.cached_tokens",
        "additional_usage_values.prompt_tokens_details.cached_tokens",
        "usage_object.cache_read_input_tokens",
        "additional_usage_values.cache_read_input_tokens",
    )
    cache_write = usage(
        "usage_object.cache_creation_input_tokens",
        "additional_usage_values.cache_creation_input_tokens",
    )
    reasoning = usage(
        "usage_object.completion_tokens_details.reasoning_tokens",
        "additional_usage_values.completion_tokens_details.reasoning_tokens",
    )
    error_code = f"TRY_CAST({meta.get(['error_information', 'error_code'])} AS INTEGER)"
    status = f"""CASE lower(TRIM(status))
        WHEN 'success' THEN '200'
        WHEN 'failure' THEN CAST(CASE WHEN {error_code} BETWEEN 400 AND 599 THEN {error_code}
                                      ELSE 500 END AS VARCHAR)
        ELSE NULLIF(TRIM(status), '') END"""
    problem = f"""CASE
        WHEN NOT {blank.format("metadata")} AND NOT json_valid(metadata)
            THEN 'metadata is not valid JSON: its labels and cached tokens are unreadable'
        WHEN NOT {blank.format("request_tags")} AND NOT json_valid(request_tags)
            THEN 'request_tags is not valid JSON: its tags are unreadable'
        END"""
    tags = (
        f"list_concat(COALESCE(CASE WHEN {tags_ok} THEN json_extract_string(request_tags, "
        "'$[*]') END, []), COALESCE(CASE WHEN "
        f"{meta_ok} THEN json_extract_string(metadata, '$.tags[*]') END, []))"
    )
    outputs = {
        "request_id": "request_id",
        "timestamp": "startTime",
        **{name: name for name in labels},
        "endpoint": "endpoint",
        "model": "model",
        "input_tokens": "prompt_tokens",
        "output_tokens": "completion_tokens",
        "cached_input_tokens": "cached_input_tokens",
        "reasoning_tokens": "reasoning_tokens",
        "cache_write_tokens": "cache_write_tokens",
        "status_code": "status",
        "cache_hit": "cache_hit",
        "recorded_cost": "spend",
        "source_problem": "source_problem",
    }
    selects = [
        "filename",
        "request_id",
        '"startTime"',
        *(f"{expr} AS {name}" for name, expr in labels.items()),
        f"{endpoint} AS endpoint",
        f"{model} AS model",
        "prompt_tokens",
        "completion_tokens",
        f"{cached} AS cached_input_tokens",
        f"{reasoning} AS reasoning_tokens",
        f"{cache_write} AS cache_write_tokens",
        f"{status} AS status",
        # LiteLLM writes str() of a Python value: 'True', 'False', 'None' (not set) or ''
        "CASE WHEN lower(TRIM(cache_hit)) IN ('', 'none', 'null') THEN NULL "
        "ELSE TRIM(cache_hit) END AS cache_hit",
        "spend",
        f"{problem} AS source_problem",
    ]
    query = f"""
        SELECT {", ".join(selects)}
        FROM (
            SELECT *, CASE WHEN {meta_ok} THEN {meta.extract("metadata")} END AS m,
                {tags} AS tags
            FROM litellm_export
        )"""
    _materialised(con, query, files)
    return outputs


# --- OpenAI-compatible usage records ------------------------------------------------------------


def _openai_usage(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    fields: dict[str, tuple[str, ...]],
    priced: frozenset[str],
) -> dict[str, str]:
    v = _Paths("v")

    def either(*paths: str) -> str:
        """The value at the path in the wrapper's response object, else at the record's root."""
        found = []
        for path in paths:
            found += [v.get(["response", *path.split(".")]), v.get(path.split("."))]
        return _first(found)

    uses_tags = any(loc.startswith("tag:") for locs in fields.values() for loc in locs)

    def locate(locator: str) -> str:
        if locator.startswith("tag:"):
            return _tag_value("tags", locator[4:])
        return v.get(locator.split("."))

    labels = {
        name: _first([locate(loc) for loc in fields[name]])
        for name in (*_LABELS, "caller_id", "idempotency_key")
    }
    usage = either("usage")
    in_tok = either("usage.prompt_tokens", "usage.input_tokens")
    out_tok = either("usage.completion_tokens", "usage.output_tokens")
    cached = either(
        "usage.prompt_tokens_details.cached_tokens", "usage.input_tokens_details.cached_tokens"
    )
    reasoning = either(
        "usage.completion_tokens_details.reasoning_tokens",
        "usage.output_tokens_details.reasoning_tokens",
    )
    obj = either("object")
    number = f"TRY_CAST({_first([v.get(['timestamp'])])} AS DOUBLE)"
    created = f"TRY_CAST({either('created', 'created_at')} AS DOUBLE)"
    epoch = f"COALESCE({number}, {created})"
    seconds = f"CASE WHEN {epoch} > 100000000000 THEN {epoch} / 1000 ELSE {epoch} END"
    timestamp = f"""CASE WHEN {number} IS NULL AND {_first([v.get(["timestamp"])])} IS NOT NULL
            THEN {_first([v.get(["timestamp"])])}
        ELSE strftime(make_timestamp(TRY_CAST({seconds} * 1000000 AS BIGINT)),
                      '%Y-%m-%dT%H:%M:%S.%fZ') END"""
    endpoint = _first([
        *(locate(loc) for loc in fields["endpoint"]),
        _case(obj, _OBJECT_ENDPOINTS, "NULL"),
    ])  # fmt: skip
    record = {
        "request_id": _first([v.get(["request_id"]), either("id")]),
        "timestamp": timestamp,
        **labels,
        "endpoint": endpoint,
        "model": _first_priced([locate(loc) for loc in fields["model"]], priced),
        "status_code": _first([v.get(["status_code"])]),
        "chunk": f"COALESCE({obj} = 'chat.completion.chunk', false)",
        # a completion's usage counts output tokens (an embedding's does not)
        "completes": f"COALESCE({obj} IN ('chat.completion', 'chat.completion.chunk', "
        "'response', 'text_completion'), false)",
        # a usage object; `"usage": "lots"` or a list counts no tokens: as if it were absent
        "has_usage": f"COALESCE(starts_with(ltrim({usage}), '{{'), false)",
        "in_tok": in_tok,
        "out_tok": out_tok,
        "cached": cached,
        "reasoning": reasoning,
        "not_object": "not_object",
    }
    tags = (
        "list_concat(COALESCE(json_extract_string(json, '$.tags[*]'), []), "
        "COALESCE(json_extract_string(json, '$.request.metadata.tags[*]'), [])) AS tags"
        if uses_tags
        else "CAST(NULL AS VARCHAR[]) AS tags"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW usage_records AS
        SELECT filename, {", ".join(f"{expr} AS {name}" for name, expr in record.items())}
        FROM (SELECT filename, {v.extract("json")} AS v, {tags},
                json_type(json) <> 'OBJECT' AS not_object FROM {_json_records(files)})"""
    )
    keep = ["request_id", "timestamp", *labels, "endpoint", "model", "status_code", "not_object"]
    total = "COALESCE(TRY_CAST(in_tok AS BIGINT), 0) + COALESCE(TRY_CAST(out_tok AS BIGINT), 0)"
    streamed = ", ".join(
        [
            "min(filename) AS filename",
            "request_id",
            "min(timestamp) AS timestamp",
            *(f"any_value({c}) AS {c}" for c in keep[2:]),
            "bool_or(has_usage) AS has_usage",
            "bool_or(completes) AS completes",
            f"arg_max({{'i': in_tok, 'o': out_tok, 'c': cached, 'r': reasoning}}, {total}) "
            "FILTER (WHERE has_usage) AS u",
        ]
    )
    successful = "(status_code IS NULL OR TRY_CAST(status_code AS INTEGER) BETWEEN 200 AND 299)"
    query = f"""
        SELECT filename, {", ".join(keep)},
            CASE WHEN has_usage THEN COALESCE(in_tok, '0') ELSE '0' END AS input_tokens,
            CASE WHEN has_usage THEN COALESCE(out_tok, '0') ELSE '0' END AS output_tokens,
            CASE WHEN has_usage THEN cached END AS cached_input_tokens,
            CASE WHEN has_usage THEN reasoning END AS reasoning_tokens,
            CASE WHEN NOT {successful} THEN NULL
                WHEN NOT has_usage THEN {_literal(_NO_USAGE)}
                WHEN in_tok IS NULL THEN {_literal(_NO_INPUT)}
                WHEN out_tok IS NULL AND completes THEN {_literal(_NO_OUTPUT)} END
                AS source_problem
        FROM (
            SELECT filename, {", ".join(keep)}, has_usage, completes, in_tok, out_tok, cached,
                reasoning
            FROM usage_records WHERE NOT chunk
            UNION ALL
            SELECT filename, {", ".join(keep)}, has_usage, completes, u.i, u.o, u.c, u.r
            FROM (SELECT {streamed} FROM usage_records WHERE chunk GROUP BY request_id)
        )"""
    _materialised(con, query, files)
    (wrong,) = con.execute(
        "SELECT any_value(filename) FROM adapted_requests WHERE not_object"
    ).fetchone()
    if wrong:  # a JSON value that is no record: name its line (error path only)
        path = Path(wrong)
        raise InputError(path, *(bad_json_line(path) or (None, "a record is not a JSON object")))
    con.execute(
        "CREATE OR REPLACE TEMP VIEW raw_requests AS SELECT * EXCLUDE (not_object) "
        "FROM adapted_requests"
    )
    keep.remove("not_object")
    columns = [*keep, "input_tokens", "output_tokens", "cached_input_tokens"]
    return {c: c for c in [*columns, "reasoning_tokens", "source_problem"]}
