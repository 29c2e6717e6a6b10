"""Adapters: LiteLLM spend logs and OpenAI-style usage records become the canonical ledger, and the
same calls allocate to the same cents whatever format they arrive in."""

import json
import shutil
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from allocation_kit.cli import main
from allocation_kit.config import load_workspace
from allocation_kit.errors import ConfigError, InputError
from allocation_kit.load import connect, load_requests
from allocation_kit.packet import Review
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.recorded import RecordedSpendLine, recorded_spend_by_model
from allocation_kit.report import write_analysis

from .conftest import PRICING, REGISTRY

DATA = Path(__file__).parent / "data" / "adapters"
D = Decimal


def workspace_for(root: Path, ledger: str, fmt: str, fields: dict | None = None) -> Path:
    """A workspace reading one fixture of tests/data/adapters with the given format."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(textwrap.dedent(REGISTRY))
    (root / "pricing.yaml").write_text(textwrap.dedent(PRICING))
    source = DATA / ledger
    if source.exists():
        shutil.copy(source, root / ledger)
    requests = {"path": ledger, "format": fmt, **({"fields": fields} if fields else {})}
    kit = {
        "name": "Adapter workspace",
        "currency": "USD",
        "requests": requests,
        "registry": "registry.yaml",
        "pricing": "pricing.yaml",
    }
    (root / "kit.yaml").write_text(json.dumps(kit))  # JSON is YAML
    return root / "kit.yaml"


def ledger_of(config: Path):
    return period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)


LEDGER_COLUMNS = (
    "request_id, strftime(timestamp, '%Y-%m-%d %H:%M:%S.%g'), team, application, environment, "
    "feature, job_id, caller_id, endpoint, model, input_tokens, output_tokens, "
    "cached_input_tokens, reasoning_tokens, cache_write_tokens, status_code, idempotency_key, "
    "recorded_cost, source_problem"
)


def canonical_rows(config: Path) -> list[tuple]:
    workspace = load_workspace(config)
    con = connect()
    load_requests(con, workspace.kit.requests, workspace.root, workspace.config_path.name)
    return con.execute(f"SELECT {LEDGER_COLUMNS} FROM requests ORDER BY request_id").fetchall()


KEY = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
BAD_METADATA = "metadata is not valid JSON: its labels and cached tokens are unreadable"
BAD_TAGS = "request_tags is not valid JSON: its tags are unreadable"
NO_USAGE = "no usage object in the response: token counts unknown"
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"

# --- LiteLLM_SpendLogs --------------------------------------------------------------------------

LITELLM_LEDGER = [
    ("ll-01", "2026-10-02 08:00:00.250", "search", "search-api", "production", "summaries", None,
     "search-backend", CHAT, "chat-small", 1000, 100, 400, 0, 0, 200, None, D("0.0012"), None),
    ("ll-02", "2026-10-03 14:30:00.000", "support", "ticket-bot", "staging", "triage", None,
     KEY, RESPONSES, "reasoner", 1000, 500, 0, 300, 0, 200, None, D("0.007"), None),
    ("ll-03", "2026-10-04 09:00:00.000", "search", "search-api", "production", None, None, KEY,
     CHAT, "chat-small", 0, 0, 0, 0, 0, 429, "k-9", D("0"), None),
    ("ll-04", "2026-10-04 09:00:03.000", "search", "search-api", "production", None, None, KEY,
     CHAT, "chat-small", 1000, 100, 0, 0, 0, 200, "k-9", D("0.0014"), None),
    ("ll-05", "2026-10-09 10:00:00.000", None, None, None, None, None, KEY, CHAT, "chat-small",
     500, 50, 0, 0, 0, 200, None, D("0.0007"), BAD_METADATA),
    ("ll-06", "2026-10-11 17:45:00.000", None, None, None, None, None, KEY, CHAT, "cacher",
     10000, 1000, 6000, 0, 2000, 200, None, D("0.0303"), None),
    ("ll-07", "2026-10-12 12:00:00.000", "search", None, None, None, None, KEY, CHAT, "chat-small",
     1000, 100, 0, 0, 0, 200, None, D("0.0014"), BAD_TAGS),
    ("ll-08", "2026-10-31 23:59:59.999", "platform", None, None, None, None, KEY,
     "/v1/embeddings", "chat-small", 800, 0, 0, 0, 0, None, None, D("0.0008"), None),
]  # fmt: skip


def test_a_litellm_csv_export_becomes_the_canonical_ledger(tmp_path):
    """Labels from the team alias, spend_logs_metadata and request tags; cached, cache-write and
    reasoning tokens from usage_object / additional_usage_values; status from status and the
    error code; LiteLLM's spend kept as recorded_cost."""
    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm")
    assert canonical_rows(config) == LITELLM_LEDGER


def test_litellm_rows_with_unreadable_json_are_quarantined_with_their_cost(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm"))
    queue = ledger.con.execute(
        "SELECT request_id, allocation_status, detail, cost FROM lines "
        "WHERE allocation_status = 'quarantined' ORDER BY request_id"
    ).fetchall()
    assert queue == [
        ("ll-05", "quarantined", BAD_METADATA, D("0.0007")),
        ("ll-07", "quarantined", BAD_TAGS, D("0.0014")),
    ]
    counts = ledger.counts
    assert (counts.attempted, counts.failed, counts.logical_calls, counts.quarantined) == (
        8, 1, 7, 2
    )  # fmt: skip
    assert ledger.ledger_cost == D("0.04224")


def test_litellm_json_and_parquet_exports_read_like_the_csv(tmp_path):
    """The same export as JSONL (metadata as JSON objects) and as typed Parquet."""
    csv_rows = canonical_rows(workspace_for(tmp_path / "csv", "parity_litellm.csv", "litellm"))
    jsonl_rows = canonical_rows(
        workspace_for(tmp_path / "jsonl", "parity_litellm.jsonl", "litellm")
    )
    parquet = tmp_path / "parquet" / "spend_logs.parquet"
    parquet.parent.mkdir()
    duckdb.execute(f"COPY (SELECT * FROM read_csv('{DATA / 'parity_litellm.csv'}')) TO '{parquet}'")
    parquet_rows = canonical_rows(workspace_for(tmp_path / "parquet", parquet.name, "litellm"))
    assert len(csv_rows) == 8
    assert jsonl_rows == csv_rows
    assert parquet_rows == csv_rows


def test_requests_fields_choose_where_labels_come_from(tmp_path):
    fields = {
        "team": "team_id",  # the team id only, not the alias
        "application": ["tag:app:", "metadata.spend_logs_metadata.application"],
        "feature": [],  # maps nothing
        "caller_id": "metadata.user_api_key_user_id",
        "model": "model",  # the deployment's model, not the public model group
    }
    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm", fields)
    rows = canonical_rows(config)
    picked = [(r[0], r[2], r[3], r[5], r[7], r[9]) for r in rows[:3]]
    assert picked == [
        ("ll-01", None, "search-api", None, "u-17", "openai/chat-small"),
        ("ll-02", "support", "ticket-bot", None, "u-17", "openai/reasoner-2026-05"),
        ("ll-03", None, "search-api", None, "u-17", "openai/chat-small"),
    ]


def test_a_field_naming_a_column_the_export_lacks_is_a_config_error(tmp_path):
    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm", {"team": "tenant"})
    with pytest.raises(ConfigError) as caught:
        canonical_rows(config)
    assert caught.value.line() == (
        "kit.yaml: requests.fields.team: no column 'tenant' in the LiteLLM export"
    )


@pytest.mark.parametrize(
    ("fmt", "ledger", "fields", "message"),
    [
        ("litellm", "litellm_spend_logs.csv", {"team": "metadata.user_api_key_team_alais"},
         "requests.fields.team: metadata.user_api_key_team_alais found no team in any of the 8 "
         "records"),
        ("litellm", "litellm_spend_logs.csv", {"application": ["tag:application:", "tag:svc:"]},
         "requests.fields.application: tag:application:, tag:svc: found no application in any "
         "of the 8 records"),
        ("openai-usage", "openai_usage.jsonl", {"environment": "metadata.env"},
         "requests.fields.environment: metadata.env found no environment in any of the 7 "
         "records"),
    ],
)  # fmt: skip
def test_a_locator_that_finds_nothing_is_a_typo_not_an_untagged_ledger(
    tmp_path, fmt, ledger, fields, message
):
    config = workspace_for(tmp_path, ledger, fmt, fields)
    with pytest.raises(ConfigError) as caught:
        canonical_rows(config)
    assert caught.value.line() == (
        f"kit.yaml: {message}; expected a locator that matches the export (check its spelling, "
        "or remove it to use the default)"
    )


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ({"format": "csv", "fields": {"team": "team_id"}},
         "requests.fields: only for format litellm or openai-usage; a canonical ledger maps its "
         "columns with requests.columns"),
        ({"format": "litellm", "columns": {"team": "team_id"}},
         "requests.columns: not used by format litellm; map labels with requests.fields"),
        ({"format": "litellm", "fields": {"colour": "x"}},
         "requests.fields.colour: unknown key; expected one of team, application, environment, "
         "workload_class, feature, job_id, caller_id, endpoint, idempotency_key, model"),
        ({"format": "openai-usage", "fields": {"feature": "request.messages"}},
         "requests.fields.feature[0]: got 'request.messages': points at prompt or response "
         "content (messages), which the kit never reads; expected a tag or a metadata key"),
        ({"format": "litellm", "fields": {"feature": "requester_ip_address"}},
         "requests.fields.feature[0]: got 'requester_ip_address': points at prompt or response "
         "content (requester_ip_address), which the kit never reads; expected a tag or a "
         "metadata key"),
        ({"format": "litellm", "fields": {"feature": ["team_id", "response.id"]}},
         "requests.fields.feature: 'response.id' points at LiteLLM's response column (prompt or "
         "response content), which the kit never reads"),
        ({"format": "litellm", "fields": {"feature": "tag app"}},
         "requests.fields.feature[0]: got 'tag app': not a field locator; expected tag:<prefix> "
         "(e.g. tag:app:) or a dotted key path (e.g. metadata.spend_logs_metadata.environment)"),
    ],
)  # fmt: skip
def test_field_mapping_mistakes_are_one_line_config_errors(tmp_path, requests, message):
    config = workspace_for(tmp_path, "litellm_spend_logs.csv", requests["format"])
    kit = json.loads(config.read_text())
    kit["requests"] = {"path": "litellm_spend_logs.csv", **requests}
    config.write_text(json.dumps(kit))
    with pytest.raises(ConfigError) as caught:
        load_workspace(config)
    assert caught.value.line() == f"{config}: {message}"
    assert caught.value.exit_code == 2


def test_a_litellm_export_without_token_columns_is_an_input_error(tmp_path):
    config = workspace_for(tmp_path, "spend.csv", "litellm")
    (tmp_path / "spend.csv").write_text("request_id,startTime,model,spend\nr1,2026-10-01,m,0.1\n")
    with pytest.raises(InputError) as caught:
        canonical_rows(config)
    assert caught.value.line() == (
        f"{tmp_path / 'spend.csv'}: missing LiteLLM_SpendLogs column 'prompt_tokens'; "
        "columns found: model, request_id, spend, startTime"
    )
    assert caught.value.exit_code == 3


def test_a_bad_token_count_in_a_litellm_export_names_its_row_and_column(tmp_path):
    config = workspace_for(tmp_path, "spend.csv", "litellm")
    (tmp_path / "spend.csv").write_text(
        "request_id,startTime,model,prompt_tokens,completion_tokens,spend\n"
        "r1,2026-10-01 00:00:00,chat-small,10,1,0.1\n"
        "r2,2026-10-01 00:00:01,chat-small,12x,1,0.1\n"
    )
    with pytest.raises(InputError) as caught:
        canonical_rows(config)
    assert caught.value.line() == (
        f"{tmp_path / 'spend.csv'}: row 2 (line 3), column 'prompt_tokens': got '12x', expected "
        "a whole number of tokens"
    )


# --- OpenAI-compatible usage records ------------------------------------------------------------

USAGE_LEDGER = [
    ("chatcmpl-u04", "2026-10-09 22:15:00.000", None, None, None, None, None, None, CHAT,
     "reasoner", 300, 90, 0, 40, 0, None, None, None, None),
    ("chatcmpl-u07", "2026-10-15 06:00:00.000", None, None, None, None, None, None, CHAT,
     "chat-small", 0, 0, 0, 0, 0, None, None, None, NO_USAGE),
    ("u-01", "2026-10-02 08:00:00.000", "search", "search-api", "production", "answers", None,
     None, CHAT, "chat-small", 1000, 100, 200, 0, 0, 200, None, None, None),
    ("u-02", "2026-10-07 12:00:00.000", "support", "ticket-bot", "staging", None, "nightly-42",
     None, RESPONSES, "chat-small", 1500, 200, 500, 0, 0, 200, None, None, None),
    ("u-03", "2026-10-08 09:30:00.000", "support", "ticket-bot", "production", None, None, None,
     CHAT, "chat-small", 700, 60, 0, 0, 0, 200, None, None, None),
    ("u-05", "2026-10-10 10:00:00.000", "search", "search-api", "production", None, None, None,
     CHAT, "chat-small", 0, 0, 0, 0, 0, 200, None, None, NO_USAGE),
    ("u-06", "2026-10-10 10:00:05.000", "search", "search-api", "production", None, None, None,
     None, "chat-small", 0, 0, 0, 0, 0, 500, None, None, None),
]  # fmt: skip


def test_openai_usage_records_become_the_canonical_ledger(tmp_path):
    """Wrapped chat.completions and responses objects, tags from the wrapper or the request
    metadata, epoch (milliseconds) or ISO timestamps; bare chunks keyed by their response id."""
    config = workspace_for(tmp_path, "openai_usage.jsonl", "openai-usage")
    assert canonical_rows(config) == USAGE_LEDGER


def test_streamed_chunks_are_one_row_with_the_last_chunks_usage(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "openai_usage.jsonl", "openai-usage"))
    streamed = ledger.con.execute(
        "SELECT request_id, input_tokens, output_tokens, reasoning_tokens FROM requests "
        "WHERE request_id IN ('u-03', 'chatcmpl-u04') ORDER BY 1"
    ).fetchall()
    assert streamed == [("chatcmpl-u04", 300, 90, 40), ("u-03", 700, 60, 0)]
    assert (ledger.counts.rows_read, ledger.counts.attempted) == (7, 7)  # 13 records, 7 calls


def test_a_successful_response_without_usage_is_quarantined_never_dropped(tmp_path):
    """Tokens unknown: the call stays in the queue with a reason. A failed call without usage is
    an ordinary failed attempt (free by default)."""
    ledger = ledger_of(workspace_for(tmp_path, "openai_usage.jsonl", "openai-usage"))
    rows = ledger.con.execute(
        "SELECT request_id, allocation_status, detail, successful_requests, cost FROM lines "
        "WHERE request_id IN ('u-05', 'u-06', 'chatcmpl-u07') ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("chatcmpl-u07", "quarantined", NO_USAGE, 1, D(0)),
        ("u-05", "quarantined", NO_USAGE, 1, D(0)),
    ]
    assert (ledger.counts.failed, ledger.counts.quarantined) == (1, 2)
    assert ledger.ledger_cost == D("0.00569")


def test_a_usage_value_that_is_no_object_counts_as_no_usage(tmp_path):
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    record = {"request_id": "r1", "timestamp": "2026-10-02T10:00:00Z", "status_code": 200,
              "response": {"object": "chat.completion", "model": "gpt-4o-mini"}}  # fmt: skip
    lines = [record | {"response": record["response"] | {"usage": usage}} for usage in ([1], "x")]
    lines[1]["request_id"] = "r2"
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = (
        ledger_of(config)
        .con.execute("SELECT request_id, allocation_status, detail FROM lines ORDER BY 1")
        .fetchall()
    )
    assert rows == [("r1", "quarantined", NO_USAGE), ("r2", "quarantined", NO_USAGE)]


def test_a_usage_object_without_a_token_count_is_quarantined_not_read_as_zero(tmp_path):
    """A successful completion whose usage lacks prompt_tokens (or, for a completion, its
    completion_tokens) was priced as 0 of them; an embedding's usage has no output tokens."""
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    record = {"timestamp": "2026-10-02T10:00:00Z", "status_code": 200}
    chat = {"object": "chat.completion", "model": "gpt-4o-mini"}
    embedding = {"object": "list", "model": "gpt-4o-mini"}
    lines = [
        record | {"request_id": "r1", "response": chat | {"usage": {"completion_tokens": 100}}},
        record | {"request_id": "r2",
                  "response": chat | {"usage": {"prompt_tokens": None, "completion_tokens": 1}}},
        record | {"request_id": "r3", "response": chat | {"usage": {"prompt_tokens": 100}}},
        record | {"request_id": "r4", "response": embedding | {"usage": {"prompt_tokens": 100}}},
        record | {"request_id": "r5", "status_code": 500,
                  "response": chat | {"usage": {"completion_tokens": 1}}},
    ]  # fmt: skip
    (tmp_path / "u.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = (
        ledger_of(config)
        .con.execute("SELECT request_id, allocation_status, detail FROM lines ORDER BY 1")
        .fetchall()
    )
    no_input = "usage has no prompt_tokens or input_tokens: input tokens unknown"
    no_output = "usage has no completion_tokens or output_tokens: output tokens unknown"
    # r4 (an embedding: input tokens only) and r5 (failed: free) are only untagged
    untagged = "no team and no application tag"
    assert rows == [
        ("r1", "quarantined", no_input), ("r2", "quarantined", no_input),
        ("r3", "quarantined", no_output), ("r4", "untagged", untagged),
        ("r5", "untagged", untagged),
    ]  # fmt: skip


@pytest.mark.parametrize("stamp", [1e20, "infinity"])
def test_an_epoch_timestamp_no_time_can_hold_names_its_record(tmp_path, stamp):
    """It was "cannot read: Conversion Error: Type DOUBLE with value 1e+20 …", no record."""
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    usage = {"prompt_tokens": 1, "completion_tokens": 1}
    record = {
        "request_id": "r1",
        "timestamp": stamp,
        "status_code": 200,
        "response": {"object": "chat.completion", "model": "gpt-4o-mini", "usage": usage},
    }
    (tmp_path / "u.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError) as caught:
        ledger_of(config)
    assert caught.value.line() == (
        f"{tmp_path / 'u.jsonl'}: request_id 'r1', column 'timestamp': got empty, expected a "
        "value (the column is required)"
    )


def test_openai_usage_reads_key_value_tags_sent_as_a_list_by_default(tmp_path):
    """A gateway sending "tags": ["team:search", "app:search-api"] was 100% untagged unless
    the user wrote the tag locators."""
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    usage = {"prompt_tokens": 10, "completion_tokens": 1}
    record = {
        "request_id": "r1",
        "timestamp": "2026-10-02T10:00:00Z",
        "status_code": 200,
        "tags": ["team:search", "app:search-api", "env:production", "job:nightly-7"],
        "response": {"object": "chat.completion", "model": "gpt-4o-mini", "usage": usage},
    }
    (tmp_path / "u.jsonl").write_text(json.dumps(record) + "\n")
    found = (
        ledger_of(config)
        .con.execute("SELECT team, application, environment, job_id FROM requests")
        .fetchall()
    )
    assert found == [("search", "search-api", "production", "nightly-7")]


def test_of_a_model_group_and_its_deployment_the_priced_name_is_the_model(tmp_path):
    """LiteLLM logs the group asked for (`model_group`) and the deployment it routed to
    (`model`); the default took the group, so a group named for a team was unpriced."""
    import csv

    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm")
    path = tmp_path / "litellm_spend_logs.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = {  # request_id: (model_group, model)
        "ll-01": ("team-chat", "chat-small"),  # the group unpriced, its deployment priced
        "ll-02": ("reasoner", "openai/reasoner-2026-05"),  # the group priced: it wins
        "ll-03": ("mystery-group", "mystery"),  # neither: the group, as before (unpriced)
    }
    for row in rows:
        if row["request_id"] in names:
            row["model_group"], row["model"] = names[row["request_id"]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    picked = (
        "SELECT request_id, model FROM requests WHERE request_id IN ('ll-01', 'll-02', 'll-03')"
    )
    found = ledger_of(config).con.execute(f"{picked} ORDER BY 1").fetchall()
    assert found == [("ll-01", "chat-small"), ("ll-02", "reasoner"), ("ll-03", "mystery-group")]


def test_a_dated_response_model_without_a_price_gives_way_to_the_model_asked_for(tmp_path):
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    usage = {"prompt_tokens": 10, "completion_tokens": 1}
    record = {
        "request_id": "r1",
        "timestamp": "2026-10-02T10:00:00Z",
        "request": {"model": "chat-small"},
        "response": {"object": "chat.completion", "model": "chat-small-2026-09-01", "usage": usage},
    }
    (tmp_path / "u.jsonl").write_text(json.dumps(record) + "\n")
    ledger = ledger_of(config)
    assert ledger.con.execute("SELECT model FROM requests").fetchall() == [("chat-small",)]
    assert ledger.counts.unpriced == 0


def test_a_record_that_is_not_json_is_one_error_line_naming_file_and_line(tmp_path, capsys):
    config = workspace_for(tmp_path, "openai_usage_malformed.jsonl", "openai-usage")
    with pytest.raises(SystemExit) as caught:
        main(["validate", "--config", str(config), "--period", "2026-10"])
    assert caught.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: {tmp_path / 'openai_usage_malformed.jsonl'}: line 3: not valid JSON (Expecting "
        "value at column 128); fix or remove the record (records are never skipped)"
    )
    assert "4111" not in err[-1]  # the record's own text (a prompt) is never echoed


def test_a_json_value_that_is_no_record_is_named_by_its_line(tmp_path, capsys):
    config = workspace_for(tmp_path, "u.jsonl", "openai-usage")
    records = (DATA / "openai_usage.jsonl").read_text().splitlines()[:2]
    (tmp_path / "u.jsonl").write_text("\n".join([*records, '"just a string"']) + "\n")
    with pytest.raises(SystemExit) as caught:
        main(["validate", "--config", str(config), "--period", "2026-10"])
    assert caught.value.code == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'u.jsonl'}: line 3: not a JSON object; fix or remove the record "
        "(records are never skipped)"
    )


def test_tag_lists_are_read_with_tag_prefixes(tmp_path):
    record = {
        "request_id": "t-1", "timestamp": "2026-10-05T00:00:00Z", "status_code": 200,
        "tags": ["team=search", "app=search-api", "env=production"],
        "response": {"id": "chatcmpl-t1", "object": "chat.completion", "model": "chat-small",
                     "usage": {"prompt_tokens": 10, "completion_tokens": 1}},
    }  # fmt: skip
    fields = {"team": "tag:team=", "application": "tag:app=", "environment": "tag:env="}
    config = workspace_for(tmp_path, "tagged.jsonl", "openai-usage", fields)
    (tmp_path / "tagged.jsonl").write_text(json.dumps(record) + "\n")
    assert [r[:5] for r in canonical_rows(config)] == [
        ("t-1", "2026-10-05 00:00:00.000", "search", "search-api", "production")
    ]


def test_openai_usage_reads_only_json_files(tmp_path):
    config = workspace_for(tmp_path, "parity_canonical.csv", "openai-usage")
    with pytest.raises(ConfigError) as caught:
        canonical_rows(config)
    assert caught.value.line() == (
        "kit.yaml: requests.format: openai-usage reads JSONL records; parity_canonical.csv is "
        "not .jsonl or .json"
    )


# --- the same calls in every format -------------------------------------------------------------

PARITY_ALLOCATION = [
    ("allocated", "platform", None, "production", 1, 3000, 0, 300, D("0.00336")),
    ("allocated", "support", "ticket-bot", "staging", 2, 1200, 0, 80, D("0.00152")),
    ("shared", "support", "gateway-fixed", "production", 0, 300, 0, 30, D("0.00042")),
    ("allocated", "search", "search-api", "production", 1, 1000, 400, 100, D("0.0012")),
    ("shared", "search", "gateway-fixed", "production", 1, 700, 0, 70, D("0.00098")),
    ("unknown_owner", None, "ghost-app", "production", 1, 500, 0, 50, D("0.00056")),
    ("untagged", None, None, None, 2, 3000, 1500, 600, D("0.00825")),
]


def allocation(ledger) -> list[tuple]:
    return [
        (line.allocation_status, line.team, line.application, line.environment, line.requests,
         line.input_tokens, line.cached_input_tokens, line.output_tokens, line.cost)
        for line in ledger.allocation
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ledger", "fmt"),
    [
        ("parity_litellm.csv", "litellm"),
        ("parity_litellm.jsonl", "litellm"),
        ("parity_openai_usage.jsonl", "openai-usage"),
    ],
)
def test_every_format_allocates_like_the_canonical_csv(tmp_path, ledger, fmt):
    """A retry after a 429 (one idempotency key), cached and reasoning tokens, untagged calls (a
    bare responses object and a bare stream), a shared application and an unknown one."""
    canonical = ledger_of(workspace_for(tmp_path / "canonical", "parity_canonical.csv", "auto"))
    adapted = ledger_of(workspace_for(tmp_path / "adapted", ledger, fmt))
    assert allocation(canonical) == PARITY_ALLOCATION
    assert allocation(adapted) == allocation(canonical)
    assert adapted.ledger_cost == canonical.ledger_cost == D("0.01629")
    assert adapted.counts.__dict__ == canonical.counts.__dict__
    assert (adapted.counts.attempted, adapted.counts.logical_calls, adapted.counts.failed) == (
        8, 7, 1
    )  # fmt: skip


# --- LiteLLM's spend as a second opinion --------------------------------------------------------


def test_recorded_spend_is_compared_with_the_kits_price_per_model(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm"))
    lines = recorded_spend_by_model(ledger.con, tolerance_pct=D(1))
    assert lines == [
        RecordedSpendLine("cacher", 1, 1, D("0.0303"), D("0.0303"), D(0), D(0), "agrees"),
        # the gateway missed the price cut of 15 October (ll-08): 0.00064 vs 0.0008
        RecordedSpendLine("chat-small", 6, 6, D("0.00534"), D("0.0055"), D("-0.00016"),
                          D("-0.00016") / D("0.0055") * 100, "differs"),
        RecordedSpendLine("reasoner", 1, 1, D("0.0066"), D("0.007"), D("-0.0004"),
                          D("-0.0004") / D("0.007") * 100, "differs"),
    ]  # fmt: skip


def test_recorded_spend_is_written_as_evidence(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm"))
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    evidence.mkdir(parents=True)
    write_analysis(evidence, ledger, {}, "finops-analyst")
    assert (evidence / "recorded_spend.csv").read_text().splitlines() == [
        "model,requests,recorded_requests,kit_cost,recorded_cost,difference,difference_pct,finding",
        "cacher,1,1,0.030300000000,0.030300000000,0.000000000000,0.0000,agrees",
        "chat-small,6,6,0.005340000000,0.005500000000,-0.000160000000,-2.9091,differs",
        "reasoner,1,1,0.006600000000,0.007000000000,-0.000400000000,-5.7143,differs",
    ]


def test_a_ledger_without_recorded_spend_has_no_comparison(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "parity_canonical.csv", "auto"))
    assert recorded_spend_by_model(ledger.con, tolerance_pct=D(1)) == []


def review_of(ledger) -> Review:
    return Review(ledger, {}, Path("."), "finops-analyst", datetime(2026, 11, 2, tzinfo=UTC))


def test_the_packet_says_where_the_gateways_price_disagrees(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm"))
    page = review_of(ledger).recorded_spend().text
    assert "The gateway priced 2 models differently: chat-small, reasoner." in page
    assert '<td class="txt">reasoner</td>' in page
    assert '<td class="num">−5.71%</td><td class="txt">differs</td>' in page  # −0.0004 / 0.007
    assert '<td class="num">−2.91%</td><td class="txt">differs</td>' in page  # −0.00016 / 0.0055
    assert '<td class="num">0.00%</td><td class="txt">agrees</td>' in page  # cacher


def test_a_model_without_a_price_is_not_said_to_be_priced_differently(tmp_path):
    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "litellm")
    pricing = tmp_path / "pricing.yaml"
    document = yaml.safe_load(pricing.read_text())
    document["models"] = [m for m in document["models"] if m["model"] != "reasoner"]
    pricing.write_text(yaml.safe_dump(document))
    page = review_of(ledger_of(config)).recorded_spend().text
    assert (
        "The gateway priced 1 model differently: chat-small; priced 1 model the snapshot has no "
        "price for: reasoner.</strong>"
    ) in page


def test_the_packet_says_when_the_gateways_price_agrees(tmp_path):
    ledger = ledger_of(workspace_for(tmp_path, "parity_litellm.csv", "litellm"))
    page = review_of(ledger).recorded_spend().text
    assert "recorded spend agree</strong> for every model (within 1.00%)" in page


def test_a_response_litellm_served_from_its_cache_is_counted_and_never_billable(tmp_path):
    """LiteLLM logs a cache hit with the original's tokens, spend 0 and cache_hit True; the
    provider never saw it. chat-small before 15 October: 1,200 in × 1.00 + 300 out × 4.00."""
    (tmp_path / "spend_logs.csv").write_text(
        "request_id,call_type,startTime,model,status,prompt_tokens,completion_tokens,spend,"
        "cache_hit,team_id\n"
        "chatcmpl-a1,acompletion,2026-10-02 08:00:00,chat-small,success,1200,300,0.0024,False,"
        "search\n"
        "chatcmpl-a1_cache_hit1759309500.12,acompletion,2026-10-02 08:05:00,chat-small,success,"
        "1200,300,0.0,True,search\n"
        # LiteLLM writes str(None) when the flag was never set: not a cache hit
        "chatcmpl-b2,acompletion,2026-10-03 08:00:00,chat-small,success,1200,300,0.0024,None,"
        "search\n"
    )
    ledger = ledger_of(workspace_for(tmp_path, "spend_logs.csv", "litellm"))
    counts = ledger.counts
    assert (counts.attempted, counts.successful, counts.billable, counts.served_from_cache) == (
        3, 3, 2, 1
    )  # fmt: skip
    assert ledger.ledger_cost == D("0.0048")
    assert recorded_spend_by_model(ledger.con, tolerance_pct=D(1)) == [
        RecordedSpendLine("chat-small", 3, 3, D("0.0048"), D("0.0048"), D(0), D(0), "agrees")
    ]


def test_a_cache_hit_flag_that_is_not_a_boolean_is_a_bad_value(tmp_path, capsys):
    (tmp_path / "requests.csv").write_text(
        "request_id,timestamp,model,input_tokens,output_tokens,cache_hit\n"
        "r1,2026-10-02T08:00:00Z,chat-small,10,1,maybe\n"
    )
    config = workspace_for(tmp_path, "requests.csv", "auto")
    with pytest.raises(SystemExit) as caught:
        main(["run", "--config", str(config), "--period", "2026-10", "--out", str(tmp_path / "o")])
    assert caught.value.code == 3
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'requests.csv'}: row 1 (line 2), column 'cache_hit': got 'maybe', "
        "expected true or false"
    )
