"""Privacy: prompts, responses and requester IP addresses in gateway exports never reach the
kit's outputs. A full `allocation-kit run` on records carrying a marker in every content field
leaves the marker in no evidence file, packet or executed notebook."""

import csv
import json
import textwrap
from pathlib import Path

import pytest

from allocation_kit.cli import main
from allocation_kit.config import load_workspace
from allocation_kit.load import CANONICAL_COLUMNS, connect, load_requests

from .conftest import PRICING, REGISTRY

MARKER = "ZQX-PRIVATE-7731"
PROMPT = f"My account is {MARKER}-acct, please summarise my last invoice"
ANSWER = f"Your invoice {MARKER}-inv totals 41 dollars"
IP = f"203.0.113.7 {MARKER}-ip"


def litellm_export(path: Path) -> None:
    """Three spend-log rows: a tagged success, a row whose malformed metadata holds the marker
    (quarantined), and a failure whose error message quotes the prompt."""
    messages = json.dumps([{"role": "user", "content": PROMPT}])
    response = json.dumps({"choices": [{"message": {"role": "assistant", "content": ANSWER}}]})
    proxy_request = json.dumps({"model": "chat-small", "messages": [{"content": PROMPT}]})
    tags = {"application": "search-api", "environment": "production"}
    good = {"user_api_key_team_alias": "search", "spend_logs_metadata": tags,
            "requester_ip_address": IP, "proxy_server_request": proxy_request}  # fmt: skip
    failed = {**good, "error_information": {"error_code": "429", "error_message": PROMPT}}
    rows = [
        ("lp-1", "success", 1000, 100, json.dumps(good)),
        ("lp-2", "success", 1000, 100, f'{{"user_api_key_team_alias": "search", "x": "{PROMPT}'),
        ("lp-3", "failure", 0, 0, json.dumps(failed)),
    ]
    columns = ["request_id", "call_type", "spend", "prompt_tokens", "completion_tokens",
               "startTime", "model", "model_group", "status", "metadata", "request_tags",
               "requester_ip_address", "messages", "response", "proxy_server_request"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for request_id, status, prompt_tokens, completion_tokens, metadata in rows:
            writer.writerow([
                request_id, "acompletion", "0.0014", prompt_tokens, completion_tokens,
                "2026-10-06 10:00:00.000", "openai/chat-small", "chat-small", status, metadata,
                json.dumps([f"note:{MARKER}"]), IP, messages, response, proxy_request,
            ])  # fmt: skip


def usage_records(path: Path) -> None:
    """A wrapped chat completion, a responses-API call, a stream and a response without usage,
    with the marker in messages, input, choices, output, deltas and the caller's IP."""
    tags = {"team": "search", "application": "search-api", "environment": "production"}
    request = {"model": "chat-small", "messages": [{"role": "user", "content": PROMPT}],
               "metadata": {"user_ip": IP}}  # fmt: skip
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    chat = {
        "id": "chatcmpl-o1",
        "object": "chat.completion",
        "model": "chat-small",
        "choices": [{"message": {"role": "assistant", "content": ANSWER}}],
        "usage": usage,
    }
    records = [
        {"request_id": "o1", "timestamp": "2026-10-06T10:00:00Z", "status_code": 200,
         "requester_ip_address": IP, "tags": tags, "request": request, "response": chat},
        {"request_id": "o2", "timestamp": "2026-10-06T11:00:00Z", "status_code": 200,
         "request": {"model": "chat-small", "input": PROMPT, "instructions": PROMPT,
                     "metadata": {"team": "support", "application": "ticket-bot",
                                  "environment": "staging"}},
         "response": {"id": "resp_o2", "object": "response", "model": "chat-small",
                      "output": [{"type": "message", "content": [{"type": "output_text",
                                                                  "text": ANSWER}]}],
                      "usage": {"input_tokens": 2000, "output_tokens": 200}}},
    ]  # fmt: skip
    for delta, last in [(ANSWER, False), ("", True)]:
        chunk = {
            "id": "chatcmpl-o3",
            "object": "chat.completion.chunk",
            "model": "chat-small",
            "choices": [] if last else [{"delta": {"content": delta}}],
            "usage": {"prompt_tokens": 500, "completion_tokens": 50} if last else None,
        }
        records.append({"request_id": "o3", "timestamp": "2026-10-06T12:00:00Z",
                        "status_code": 200, "tags": tags, "request": request,
                        "response": chunk})  # fmt: skip
    records.append({"request_id": "o4", "timestamp": "2026-10-06T13:00:00Z", "status_code": 200,
                    "tags": tags, "request": request,
                    "response": {**chat, "id": "chatcmpl-o4", "usage": None}})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


FORMATS = {
    "litellm": ("spend_logs.csv", litellm_export),
    "openai-usage": ("usage.jsonl", usage_records),
}


def make_workspace(root: Path, fmt: str) -> Path:
    name, write = FORMATS[fmt]
    (root / "registry.yaml").write_text(textwrap.dedent(REGISTRY))
    (root / "pricing.yaml").write_text(textwrap.dedent(PRICING))
    write(root / name)
    (root / "kit.yaml").write_text(
        f"name: Privacy\ncurrency: USD\nrequests: {{path: {name}, format: {fmt}}}\n"
        "registry: registry.yaml\npricing: pricing.yaml\n"
    )
    return root / "kit.yaml"


@pytest.fixture(scope="module", params=sorted(FORMATS))
def run(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """(format, workspace folder, period folder) of one full `allocation-kit run` per format."""
    root = tmp_path_factory.mktemp(request.param)
    config = make_workspace(root, request.param)
    try:
        main(["run", "--config", str(config), "--period", "2026-10"])
    except SystemExit as exc:
        assert exc.code == 0
    return request.param, root, root / "reports" / "2026-10"


def test_the_inputs_carry_the_marker_in_every_content_field(run):
    fmt, root, _ = run
    text = (root / FORMATS[fmt][0]).read_text()
    expected = {"litellm": 21, "openai-usage": 15}[fmt]
    assert text.count(MARKER) == expected


def test_no_output_carries_prompt_response_or_ip_text(run):
    _, root, folder = run
    outputs = sorted(p for p in (root / "reports").rglob("*") if p.is_file())
    names = {p.relative_to(folder).as_posix() for p in outputs if folder in p.parents}
    assert {"packet.html", "packet.ipynb", "evidence/allocation.csv", "evidence/exceptions.csv",
            "evidence/manifest.json", "evidence/validation.json"} <= names  # fmt: skip
    leaking = [p.name for p in outputs if MARKER.encode() in p.read_bytes()]
    assert leaking == []


ALLOCATION = {
    "litellm": [
        "2026-10,product,search,search-api,production,CC-100,allocated,direct: application owner,"
        "2,1000,0,100,0.001400000000,0,0,0",
        "2026-10,,,,,,quarantined,unallocated: quarantined,1,1000,0,100,0.001400000000,0,0,0",
    ],
    "openai-usage": [
        "2026-10,operations,support,ticket-bot,staging,CC-200,allocated,direct: application "
        "owner,1,2000,0,200,0.002800000000,0,0,0",
        "2026-10,product,search,search-api,production,CC-100,allocated,direct: application owner,"
        "2,1500,0,150,0.002100000000,0,0,0",
        "2026-10,,,search-api,production,,quarantined,unallocated: quarantined,1,0,0,0,"
        "0.000000000000,0,0,0",
    ],
}


def test_the_run_allocates_by_ownership_labels(run):
    fmt, _, folder = run
    lines = (folder / "evidence" / "allocation.csv").read_text().splitlines()
    assert lines[1:] == ALLOCATION[fmt]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_the_ledger_view_holds_only_canonical_columns(tmp_path, fmt):
    config = make_workspace(tmp_path, fmt)
    workspace = load_workspace(config)
    con = connect()
    load_requests(con, workspace.kit.requests, workspace.root, workspace.config_path.name)
    columns = [row[0] for row in con.execute("DESCRIBE requests").fetchall()]
    assert columns == [*CANONICAL_COLUMNS, "source_file", "source_path"]
    values = con.execute("SELECT * FROM requests").fetchall()
    assert not any(MARKER in str(v) for row in values for v in row)
