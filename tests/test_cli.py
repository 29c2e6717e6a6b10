"""The command line: bad input is one line on stderr and a non-zero exit, never a traceback;
a failed run leaves the previous good output in place."""

import csv
import json
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import get_args

import pytest

from allocation_kit.cli import main
from allocation_kit.config import BillingSource, RequestsSource
from allocation_kit.history import baseline_digest
from allocation_kit.load import file_sha256
from allocation_kit.report import EVIDENCE_FILES, kit_source_sha256

from .conftest import KIT, cli, request, write_ledger


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as caught:
        main(list(args))
    return caught.value.code


def review(config: Path, period: str = "2026-10", *more: str) -> int:
    """`allocation-kit run` of `period` (and `more` periods), its exit code."""
    try:
        main(
            ["run", "--config", str(config), *(a for p in (period, *more) for a in ("--period", p))]
        )
    except SystemExit as exc:
        return exc.code
    return 0


def last_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert not any(line.startswith("Traceback") for line in err)
    return err[-1]


def test_run_writes_the_evidence_files(workspace, tmp_path, capsys):
    config = workspace([request("r1"), request("r2", team=None, application=None)])
    assert review(config) == 0
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    assert sorted(p.name for p in evidence.iterdir()) == [
        "allocation.csv", "anomalies.csv", "budgets.csv", "chargeback.csv",
        "chargeback_journal.csv", "chargeback_review.csv", "exceptions.csv",
        "focus_allocated.csv", "manifest.json", "reconciliation.json", "reconciliation_lines.csv",
        "spend_profile.csv", "spend_review.json", "teams.csv", "unit_economics.csv",
        "validation.json",
    ]  # fmt: skip
    allocation = (evidence / "allocation.csv").read_text().splitlines()
    assert allocation == [
        "period,business_unit,team,application,environment,cost_center,allocation_status,"
        "allocation_rule,requests,input_tokens,cached_input_tokens,output_tokens,cost,"
        "cache_write_tokens,reasoning_tokens,unpriced_requests",
        "2026-10,product,search,search-api,production,CC-100,allocated,direct: application owner,"
        "1,1000,0,100,0.001400000000,0,0,0",
        "2026-10,,,,production,,untagged,unallocated: untagged,1,1000,0,100,0.001400000000,0,0,0",
    ]
    exceptions = (evidence / "exceptions.csv").read_text().splitlines()
    assert exceptions[1] == (
        "2026-10,r2,untagged,no team and no application tag,2026-10-10T12:00:00.000000Z,,,"
        "production,user_facing_chat,,,,,chat-small,200,1000,0,100,0,0.001400000000,requests.csv,"
        "0,,true"
    )
    manifest = json.loads((evidence / "manifest.json").read_text())
    assert manifest["conservation"] == {
        "allocated": "0.001400000000",
        "shared": "0",
        "unallocated": "0.001400000000",
        "ledger_total": "0.002800000000",
    }
    roles = [i["role"] for i in manifest["inputs"]]
    assert roles == ["config", "registry", "pricing", "requests", *["expectations"] * 3]
    assert manifest["inputs"][3]["path"] == "requests.csv"
    suites = sorted(i["path"] for i in manifest["inputs"][4:])
    # the kit's own suites are named in the kit, not by this machine's installation path
    assert suites == [
        "allocation-kit/expectations/pricing.json",
        "allocation-kit/expectations/registry.json",
        "allocation-kit/expectations/requests.json",
    ]
    assert len(manifest["inputs"][3]["sha256"]) == 64
    assert manifest["pricing_snapshot"]["id"] == "2026-09-28/finops-analyst"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([request("r1", input_tokens="12x")],
         "requests.csv: row 1 (line 2), column 'input_tokens': got '12x', expected a whole number "
         "of tokens"),
        ([request("r1"), request("r2", output_tokens=-5)],
         "requests.csv: row 2 (line 3), column 'output_tokens': got '-5', expected a token count "
         "of 0 or more"),
        ([request("r1", input_tokens="1.5")],
         "requests.csv: row 1 (line 2), column 'input_tokens': got '1.5', expected a whole number "
         "of tokens"),
        # beyond 64 bits: once read as no value, the row vanished from every output
        ([request("r1"), request("r2", input_tokens="99999999999999999999")],
         "requests.csv: row 2 (line 3), column 'input_tokens': got '99999999999999999999', "
         "expected a token count of at most 1,000,000,000 for one request"),
        ([request("r1", cached_input_tokens="99999999999999999999")],
         "requests.csv: row 1 (line 2), column 'cached_input_tokens': got '99999999999999999999', "
         "expected a token count of at most 1,000,000,000 for one request"),
        ([request("r1", output_tokens=1_000_000_001)],
         "requests.csv: row 1 (line 2), column 'output_tokens': got '1000000001', expected a "
         "token count of at most 1,000,000,000 for one request"),
        # a quoted line break in an earlier row moves the bad value's line, not its row
        ([request("r1", feature="ans\nwe\nrs"), request("r2", input_tokens="lots")],
         "requests.csv: row 2 (line 5), column 'input_tokens': got 'lots', expected a whole "
         "number of tokens"),
        ([request("r1", timestamp="yesterday")],
         "requests.csv: row 1 (line 2), column 'timestamp': got 'yesterday', expected an ISO 8601 "
         "timestamp such as 2026-10-01T12:00:00Z"),
        # DuckDB's own words and a five-digit year: once read as 9999-12-31, 1970-01-01, …
        *(([request("r1"), request("r2", timestamp=text)],
           f"requests.csv: row 2 (line 3), column 'timestamp': got {text!r}, expected an ISO "
           "8601 timestamp such as 2026-10-01T12:00:00Z")
          for text in ("infinity", "-infinity", "epoch", "12026-10-01T09:00:00Z")),
        ([request("r1", model="")],
         "requests.csv: row 1 (line 2), column 'model': got empty, expected a value (the column "
         "is required)"),
        ([request("r1", input_tokens="", output_tokens="")],
         "requests.csv: row 1 (line 2), column 'input_tokens': got empty, expected a token count "
         "(required for a successful call; blank only on a failed one)"),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_naming_file_row_and_column(
    workspace, capsys, tmp_path, rows, message
):
    config = workspace(rows)
    assert review(config) == 3
    assert last_line(capsys) == f"error: {tmp_path / message}"


def test_an_exception_row_carries_what_its_cost_is_recomputed_from(workspace, tmp_path):
    # a quarantined cache write (cached + writes > input) and an identical logging duplicate:
    # cacher 3.00 input, 0.30 cached, 3.75 cache write, 15.00 output per 1M tokens
    cacher = {"model": "cacher", "input_tokens": 1000, "cached_input_tokens": 600,
              "cache_write_tokens": 500, "output_tokens": 100}  # fmt: skip
    config = workspace([request("q1", **cacher), request("d1"), request("d1")])
    assert review(config) == 0
    with (tmp_path / "reports" / "2026-10" / "evidence" / "exceptions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [
        (r["request_id"], r["reason"], r["input_tokens"], r["cached_input_tokens"],
         r["cache_write_tokens"], r["output_tokens"], r["cost"], r["price_band"],
         r["in_ledger_total"])
        for r in rows
    ] == [
        ("d1", "duplicate", "1000", "0", "0", "100", "0.001400000000", "", "false"),
        # subsets are capped at their totals: 0 uncached, 600 × 0.30 + the 400 writes input
        # leaves × 3.75 + 100 × 15.00
        ("q1", "quarantined", "1000", "600", "500", "100", "0.003180000000", "", "true"),
    ]  # fmt: skip


def test_missing_required_column_is_named(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    write_ledger(tmp_path / "requests.csv", [request("r1")], columns=["request_id", "timestamp"])
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'requests.csv'}: missing required column 'model'; "
        "columns found: request_id, timestamp"
    )


def test_a_litellm_export_read_as_a_plain_csv_gets_the_format_named(tmp_path, capsys):
    from .test_adapters import DATA, workspace_for

    config = workspace_for(tmp_path, "litellm_spend_logs.csv", "csv")
    assert review(config) == 3
    line = last_line(capsys)
    assert line.startswith(
        f"error: {tmp_path / 'litellm_spend_logs.csv'}: missing required column 'timestamp'; "
        "columns found: request_id, call_type,"
    )
    assert line.endswith(
        "; this looks like a LiteLLM spend-log export: set requests.format: litellm"
    )
    assert (DATA / "litellm_spend_logs.csv").exists()


def test_a_reversed_column_map_is_named_as_reversed(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    kit = config.read_text().replace(
        "requests: {path: requests.csv}",
        "requests: {path: requests.csv, columns: {app: application}}",
    )
    config.write_text(kit)
    assert review(config) == 2
    assert last_line(capsys).startswith(
        f"error: {tmp_path / 'kit.yaml'}: requests.columns.app: not a canonical column (the map is "
        "{canonical: yours}: write application: app); expected one of request_id, timestamp,"
    )


def test_missing_ledger_is_named(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    (tmp_path / "requests.csv").unlink()
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'kit.yaml'}: requests.path: no files match 'requests.csv' (looked in "
        f"{tmp_path})"
    )


def test_empty_ledger_is_refused(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    (tmp_path / "requests.csv").write_text(
        "request_id,timestamp,model,input_tokens,output_tokens\n"
    )
    assert review(config) == 3
    assert last_line(capsys) == f"error: {tmp_path / 'requests.csv'}: the ledger has no rows"


_HEADER = "request_id,timestamp,model,input_tokens,output_tokens\n"
_ROW = "r{},2026-10-05T00:00:00Z,chat-small,10,1\n"
_RECORD = (
    '{{"request_id": "r{}", "timestamp": "2026-10-05T00:00:00Z", "model": "chat-small", '
    '"input_tokens": 10, "output_tokens": 1}}\n'
)


@pytest.mark.parametrize(
    ("requests", "ledger", "text", "message"),
    [
        ("{path: requests.csv, columns: {team: ownr_tag}}", "requests.csv",
         _HEADER.replace("model", "team,model") + _ROW.format(1).replace(",chat", ",search,chat"),
         "no column 'ownr_tag' (kit.yaml requests.columns reads team from it); columns found: "
         "request_id, timestamp, team, model, input_tokens, output_tokens"),
        ("{path: requests.csv}", "requests.csv",
         _HEADER + _ROW.format(1).replace(",10,", ",1,0,") + _ROW.format(2),
         "row 1 (line 2): got 6 fields, expected 5 like the header"),
        ("{path: requests.jsonl}", "requests.jsonl",
         "".join(_RECORD.format(i) for i in (1, 2, 3)) + '{"request_id": "r4", "timestamp": }\n',
         "line 4: not valid JSON (Expecting value at column 35); fix or remove the record "
         "(records are never skipped)"),
        ("{path: requests.csv}", "requests.csv", "", "the file is empty"),
        ("{path: requests.csv}", "requests.csv",
         _HEADER.replace("\n", ",batch\n") + _ROW.format(1).replace("\n", ",yes\n")
         + _ROW.format(2).replace("\n", ",maybe\n"),
         "row 2 (line 3), column 'batch': got 'maybe', expected true or false"),
    ],
    ids=["mapped-optional-column", "ragged-row", "broken-jsonl-line", "empty-file", "batch"],
)  # fmt: skip
def test_a_malformed_ledger_is_one_line_naming_file_and_row(
    workspace, tmp_path, capsys, requests, ledger, text, message
):
    config = workspace([request("r1")])
    kit = config.read_text().replace("requests: {path: requests.csv}", f"requests: {requests}")
    config.write_text(kit)
    (tmp_path / ledger).write_text(text)
    assert review(config) == 3
    assert last_line(capsys) == f"error: {tmp_path / ledger}: {message}"


def test_config_errors_exit_2(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    (tmp_path / "pricing.yaml").write_text("currency: USD\nmodels: [\n")
    assert review(config) == 2
    assert last_line(capsys).startswith(f"error: {tmp_path / 'pricing.yaml'}: line 3, column 1:")


@pytest.mark.parametrize(
    ("name", "old", "new", "where"),
    [
        ("pricing.yaml", "effective_from: 2026-01-01   #", "effective_from: 2026-13-01   #",
         "models[0] (gpt-4o-mini).effective_from (line 9): got '2026-13-01'"),
        ("pricing.yaml", "reviewed_on: 2026-10-01", "reviewed_on: 2026-10-32",
         "reviewed_on (line 4): got '2026-10-32'"),
        ("cost_units.yaml", "signed_off_on: 2026-10-01", "signed_off_on: 2026-02-30",
         "cost_units[0] (cost_per_search_answer).signed_off_on (line 12): got '2026-02-30'"),
    ],
)  # fmt: skip
def test_an_impossible_date_exits_2_with_one_line(tmp_path, capsys, name, old, new, where):
    main(["init", str(tmp_path)])
    path = tmp_path / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    assert review(tmp_path / "kit.yaml") == 2
    assert last_line(capsys) == f"error: {path}: {where}, expected a valid date such as 2026-10-01"


def test_bad_period_exits_2(workspace, tmp_path, capsys):
    assert review(workspace([request("r1")]), period="Q4") == 2
    assert last_line(capsys).startswith("error: period 'Q4': expected a period like 2026-10")
    # one bad period of several: nothing runs
    assert review(workspace([request("r1")]), "2026-10", "2026-13") == 2
    assert last_line(capsys).startswith("error: period '2026-13': ")
    assert not (tmp_path / "reports").exists()


def test_a_failed_run_keeps_the_previous_good_output(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    assert review(config) == 0
    allocation = tmp_path / "reports" / "2026-10" / "evidence" / "allocation.csv"
    good = allocation.read_text()
    write_ledger(tmp_path / "requests.csv", [request("r1", input_tokens="oops")])
    assert review(config) == 3
    assert allocation.read_text() == good
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        ".2026-10.lock", "2026-10", "index.html"  # the lock a run holds while it replaces 2026-10
    ]  # fmt: skip


def test_the_manifest_hashes_the_earlier_evidence_its_baseline_read(workspace, tmp_path):
    config = workspace([request("r1"), request("r2", timestamp="2026-09-10T12:00:00Z")])
    assert review(config, "2026-09") == 0
    assert review(config, "2026-10") == 0
    reports = tmp_path / "reports"
    manifest = json.loads((reports / "2026-10" / "evidence" / "manifest.json").read_text())
    baseline = [(i["path"], i["sha256"]) for i in manifest["inputs"] if i["role"] == "baseline"]
    assert baseline == [
        (f"reports/2026-09/evidence/{name}", file_sha256(reports / "2026-09" / "evidence" / name))
        for name in ("spend_profile.csv", "unit_economics.csv", "teams.csv")
    ]
    # and what 2026-10 used of each: the columns its figures read, row by row
    assert [i["compared_sha256"] for i in manifest["inputs"] if i["role"] == "baseline"] == [
        baseline_digest(reports / "2026-09" / "evidence" / name)
        for name in ("spend_profile.csv", "unit_economics.csv", "teams.csv")
    ]
    assert manifest["kit_source_sha256"] == kit_source_sha256()
    assert re.fullmatch("[0-9a-f]{64}", manifest["kit_source_sha256"])


def test_a_review_run_before_the_periods_it_compares_with_is_flagged_until_rerun(
    workspace, tmp_path, capsys
):
    rows = [request("r1"), request("r2", timestamp="2026-09-10T12:00:00Z")]
    config = workspace(rows)
    reports = tmp_path / "reports"

    def flagged() -> list[str]:
        index = (reports / "index.html").read_text()
        return re.findall(r"<strong>(\S+)</strong> was compared with .*?: (.*?)\. Its", index)

    assert review(config, "2026-10") == 0
    assert flagged() == []
    capsys.readouterr()
    assert review(config, "2026-09") == 0  # run after the review that compares with it
    assert (
        "outdated   2026-10 was compared without 2026-09: re-run 2026-10 for its changes and "
        "anomalies against this run\n"
    ) in capsys.readouterr().err
    assert flagged() == [("2026-10", "2026-09 was run after it")]
    # both again in one run, named newest first: they run oldest first
    assert review(config, "2026-10", "2026-09") == 0
    err = capsys.readouterr().err
    assert err.index("reviewing 2026-09 (1 of 2)") < err.index("reviewing 2026-10 (2 of 2)")
    assert "outdated" not in err
    assert flagged() == []
    assert review(config, "2026-09") == 0  # the same evidence again: nothing to re-run
    assert "outdated" not in capsys.readouterr().err
    assert flagged() == []
    # another reviewer role changes 2026-09's teams.csv, but nothing 2026-10 compares with
    try:
        main(["run", "--config", str(config), "--period", "2026-09", "--reviewer-role", "cfo"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "outdated" not in capsys.readouterr().err
    assert flagged() == []

    write_ledger(tmp_path / "requests.csv", [*rows, request("r3", timestamp="2026-09-11")])
    assert review(config, "2026-09") == 0
    assert (
        "outdated   2026-10 was compared with an earlier run of 2026-09: re-run 2026-10 for "
        "its changes and anomalies against this run\n"
    ) in capsys.readouterr().err
    assert flagged() == [("2026-10", "2026-09 was re-run since with other results")]

    from allocation_kit.report import write_index

    shutil.rmtree(reports / "2026-09")
    write_index(reports)
    assert flagged() == [("2026-10", "2026-09 was removed since")]


def test_a_rerun_keeps_the_files_the_kit_did_not_write(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    (folder / "notes.txt").write_text("signed off by J. Doe\n")
    (folder / "evidence" / "invoice-123.pdf").write_bytes(b"%PDF")
    (folder / "evidence" / "recorded_spend.csv").write_text("stale\n")  # the kit's: replaced
    (folder / "statements" / "search-signed.pdf").write_bytes(b"%PDF")
    (folder / "statements" / "retired-team.html").write_text("stale")  # the kit's: replaced
    assert review(config) == 0
    assert (folder / "notes.txt").read_text() == "signed off by J. Doe\n"
    assert (folder / "evidence" / "invoice-123.pdf").read_bytes() == b"%PDF"
    assert sorted(p.name for p in (folder / "statements").iterdir()) == [
        "platform.html", "search-signed.pdf", "search.html", "support.html"
    ]  # fmt: skip
    assert not (folder / "evidence" / "recorded_spend.csv").exists()  # this ledger has no spend
    err = capsys.readouterr().err
    assert (
        f"kept       notes.txt, evidence/invoice-123.pdf, statements/search-signed.pdf (not "
        f"written by the kit) in {folder}" in err
    )
    written = {p.name for p in (folder / "evidence").iterdir()} - {"invoice-123.pdf"}
    assert written <= EVIDENCE_FILES


def init_starter(target: Path) -> Path:
    """`allocation-kit init TARGET` (the starter workspace); its folder."""
    try:
        main(["init", str(target)])
    except SystemExit as exc:
        assert exc.code == 0
    return target


def test_init_scaffolds_a_workspace_that_runs(tmp_path, capsys):
    target = init_starter(tmp_path / "ws")
    assert review(target / "kit.yaml") == 0
    lines = (target / "reports" / "2026-10" / "evidence" / "allocation.csv").read_text()
    assert lines.count("\n") == 6
    evidence = target / "reports" / "2026-10" / "evidence"
    with (evidence / "unit_economics.csv").open() as handle:
        [unit] = list(csv.DictReader(handle))
    # req-0001 (0.00033) and req-0006 (0.00027); the 429 attempt req-0005 is not billable
    assert [unit[c] for c in ("name", "numerator_cost", "denominator_value", "unit_cost")] == [
        "cost_per_search_answer", "0.000600000000", "2", "0.000300000000"
    ]  # fmt: skip
    with (evidence / "budgets.csv").open() as handle:
        budgets = [
            (r["team"], r["budget"], r["actual"], r["status"]) for r in csv.DictReader(handle)
        ]
    # search: its 0.0006 plus 70% of llm-gateway's 0.000225; support: ticket-summarizer's
    # 0.00123 plus 30% of it; platform's gateway cost is all split away
    assert budgets == [
        ("search", "500.00", "0.000757500000", "ok"),
        ("support", "300.00", "0.001297500000", "ok"),
        ("platform", "200.00", "0.000000000000", "ok"),  # at the evidence's scale
    ]
    manifest = json.loads((evidence / "manifest.json").read_text())
    assert [(i["role"], i["path"]) for i in manifest["inputs"][:-3]] == [
        ("config", "kit.yaml"),
        ("registry", "registry.yaml"),
        ("pricing", "pricing.yaml"),
        ("requests", "data/requests/sample.csv"),
        ("cost_units", "cost_units.yaml"),
        ("budgets", "budgets.yaml"),
    ]
    assert run_cli("init", str(target)) == 2
    assert (
        last_line(capsys) == f"error: {target / 'kit.yaml'}: already exists; use --force to replace"
    )


def test_the_starter_kit_yaml_lists_every_format_the_config_accepts(tmp_path):
    main(["init", str(tmp_path)])
    lines = (tmp_path / "kit.yaml").read_text().splitlines()
    requests = next(line for line in lines if line.startswith("  format: "))
    billing = next(line for line in lines if line.startswith("#   format: "))
    assert (requests, billing) == (
        "  format: auto                # auto | csv | parquet | jsonl | litellm | openai-usage",
        "#   format: focus             # focus | generic | openai-usage",
    )
    for line, source in ((requests, RequestsSource), (billing, BillingSource)):
        assert line.split("# ")[-1].split(" | ") == list(
            get_args(source.model_fields["format"].annotation)
        )


def test_strays_in_the_periods_files_are_listed_other_files_only_counted(workspace, tmp_path):
    kit = workspace([request("r1")])
    (tmp_path / "kit.yaml").write_text(
        (tmp_path / "kit.yaml").read_text().replace("path: requests.csv", "path: 'data/*.csv'")
    )
    (tmp_path / "data").mkdir()
    october = [request(f"o{i}") for i in range(3)]
    october += [request("late", timestamp="2026-11-01T00:00:05Z")]
    september = [request(f"s{i}", timestamp="2026-09-20T10:00:00Z") for i in range(2)]
    write_ledger(tmp_path / "data" / "2026-10.csv", october)
    write_ledger(tmp_path / "data" / "2026-09.csv", september)
    assert review(kit) == 0
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    reasons = [
        line.split(",")[1:3] for line in (evidence / "exceptions.csv").read_text().splitlines()
    ]
    assert reasons[1:] == [["late", "out_of_period"]]
    manifest = json.loads((evidence / "manifest.json").read_text())
    assert manifest["rows_by_file"] == {
        "data/2026-09.csv": {"inside": 0, "outside": 2, "strays_listed": False},
        "data/2026-10.csv": {"inside": 3, "outside": 1, "strays_listed": True},
    }
    assert manifest["counts"]["out_of_period"] == 3


def test_validate_prints_every_expectation_and_exits_0(workspace, capsys):
    config = workspace([request("r1"), request("r1"), request("r2", team="marketing")])
    try:
        main(["validate", "--config", str(config), "--period", "2026-10"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "request_id_unique" in out
    assert out.rstrip().splitlines()[-1] == (
        "33 expectations in 3 suites: 31 passed, 2 failed, 0 not run"
    )


def test_validate_checks_each_period_it_is_given(workspace, capsys):
    rows = [request("r1"), request("s1", timestamp="2026-09-10T12:00:00Z")]
    config = workspace(rows)
    periods = ["--period", "2026-09", "--period", "2026-10"]
    main(["validate", "--config", str(config), *periods])  # exit 0: no raise
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("2026-")] == ["2026-09:", "2026-10:"]
    assert sum(line.startswith("33 expectations in 3 suites") for line in out) == 2
    with pytest.raises(SystemExit) as stopped:  # stops at the first period without rows
        main(["validate", "--config", str(config), "--period", "2026-08", *periods])
    assert stopped.value.code == 3
    captured = capsys.readouterr()
    assert captured.out == "2026-08:\n"
    assert captured.err.startswith("error: ") and "none of its 2 rows falls in 2026-08" in (
        captured.err
    )


def validate_with_pricing(config: Path, old: str, new: str) -> None:
    """`validate` the 2026-10 period after replacing the first `old` of pricing.yaml by `new`."""
    path = config.parent / "pricing.yaml"
    path.write_text(path.read_text().replace(old, new, 1))
    main(["validate", "--config", str(config), "--period", "2026-10"])


def test_validate_names_models_without_a_price_in_effect(workspace, capsys):
    # chat-small is priced from 2026-01-01 (until 2026-10-15, then again); mystery-model never;
    # a failed call is not billable, so it is not counted
    rows = [
        request("r1"),
        request("r2", model="mystery-model"),
        request("r3", model="mystery-model", timestamp="2026-10-11T00:00:00Z"),
        request("r4", model="mystery-model", status_code=500),
    ]
    config = workspace(rows)
    main(["validate", "--config", str(config), "--period", "2026-10"])  # exit 0: no raise
    assert capsys.readouterr().err.splitlines() == [
        "unpriced: 2 billable calls of mystery-model in 2026-10 have no price in effect "
        "(pricing.yaml has no entry; another name of a priced model (a gateway's model group, "
        "a dated name) goes under its aliases); run lists them as unpriced exceptions"
    ]
    validate_with_pricing(config, "effective_from: 2026-01-01", "effective_from: 2026-10-11")
    assert capsys.readouterr().err.splitlines() == [
        "unpriced: 2 billable calls of mystery-model in 2026-10 have no price in effect "
        "(pricing.yaml has no entry; another name of a priced model (a gateway's model group, "
        "a dated name) goes under its aliases); run lists them as unpriced exceptions",
        "unpriced: 1 billable call of chat-small in 2026-10 has no price in effect (its first "
        "price entry starts 2026-10-11); run lists it as unpriced exceptions",
    ]
    # a near miss is named
    config = workspace([request("r1", model="chat-smal")])
    main(["validate", "--config", str(config), "--period", "2026-10"])
    assert capsys.readouterr().err.splitlines() == [
        "unpriced: 1 billable call of chat-smal in 2026-10 has no price in effect (pricing.yaml "
        "has no entry (did you mean chat-small?); another name of a priced model (a gateway's "
        "model group, a dated name) goes under its aliases); run lists it as unpriced exceptions"
    ]
    # a logging duplicate is one call, as run counts it; a price that ended is named as ended
    config = workspace(
        [*rows, request("r2", model="mystery-model"), request("r5", model="reasoner")]
    )
    validate_with_pricing(
        config, "- model: reasoner\n", "- model: reasoner\n    effective_to: 2026-09-01\n"
    )
    assert capsys.readouterr().err.splitlines() == [
        "unpriced: 2 billable calls of mystery-model in 2026-10 have no price in effect "
        "(pricing.yaml has no entry; another name of a priced model (a gateway's model group, "
        "a dated name) goes under its aliases); run lists them as unpriced exceptions",
        "unpriced: 1 billable call of reasoner in 2026-10 has no price in effect (its last "
        "price entry ends 2026-09-01); run lists it as unpriced exceptions",
    ]


def test_a_bad_parquet_row_is_named_by_its_row_number(workspace, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = workspace([request("r1")])
    (tmp_path / "kit.yaml").write_text(
        (tmp_path / "kit.yaml").read_text().replace("requests.csv", "requests.parquet")
    )
    table = pa.table({
        "request_id": ["a", "b", "c"],
        "timestamp": pa.array([datetime(2026, 10, 2)] * 3, pa.timestamp("us")),
        "model": ["chat-small"] * 3,
        "input_tokens": pa.array([10, 20, -4], pa.int64()),
        "output_tokens": pa.array([1, 2, 3], pa.int64()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "requests.parquet")
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'requests.parquet'}: row 3, column 'input_tokens': got '-4', "
        "expected a token count of 0 or more"
    )


def test_an_output_folder_that_is_a_file_is_one_line(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    assert run_cli("init", str(blocker)) == 2
    assert last_line(capsys) == f"error: {blocker}: DIRECTORY: is a file; expected a folder"
    assert run_cli("init", str(blocker / "ws")) == 2
    assert last_line(capsys) == (
        f"error: {blocker / 'ws'}: DIRECTORY: is inside {blocker}, a file; expected a folder"
    )
    assert (
        run_cli("run", "--config", str(config), "--period", "2026-10", "--out", str(blocker)) == 2
    )
    assert last_line(capsys) == f"error: {blocker}: --out: is a file; expected a folder"
    assert blocker.read_text() == "not a folder\n"
    # a file where the period's folder would go is not replaced (it once was, leaving a stray)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "2026-10").write_text("notes\n")
    assert review(config) == 2
    assert last_line(capsys) == (
        f"error: {tmp_path / 'reports' / '2026-10'}: is a file, not a period folder; move it "
        "away or use --out"
    )
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["2026-10"]
    (tmp_path / "reports" / "2026-10").unlink()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "reports" / "2026-10").symlink_to(tmp_path / "elsewhere")
    assert review(config) == 2
    assert last_line(capsys) == (
        f"error: {tmp_path / 'reports' / '2026-10'}: is a symbolic link, not a period folder; "
        "point --out at its target"
    )
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["2026-10"]


def test_validate_runs_the_billing_suite_as_run_does(workspace, capsys):
    from .test_billing import focus_row, write_csv
    from .test_reconcile import KIT_WITH_BILL

    config = workspace([request("r1")], kit=KIT_WITH_BILL)
    bill = [focus_row(), focus_row(BillingCurrency="EUR")]
    write_csv(config.parent / "bill.csv", bill)
    main(["validate", "--config", str(config), "--period", "2026-10"])  # exit 0: returns
    out = capsys.readouterr().out
    failed = [line.split()[:3] for line in out.splitlines() if " FAIL " in line]
    assert failed == [
        ["billing", "currency_is_workspace_currency", "FAIL"],
        ["billing", "currency_single_valued", "FAIL"],
    ]
    assert out.rstrip().splitlines()[-1] == (
        "40 expectations in 4 suites: 38 passed, 2 failed, 0 not run"
    )


def test_a_period_none_of_the_rows_fall_in_is_one_line(workspace, tmp_path, capsys):
    config = workspace([request("r1"), request("r2", timestamp="2026-10-20T08:30:00Z")])
    assert review(config, "2025-10") == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'requests.csv'}: none of its 2 rows falls in 2025-10 (2025-10-01 "
        "to 2025-10-31 UTC); they run from 2026-10-10 12:00 to 2026-10-20 08:30 UTC: check the "
        "period or the ledger path"
    )
    assert not (tmp_path / "reports" / "2025-10").exists()
    # validate says the same: a mistyped period does not look clean
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--config", str(config), "--period", "2025-10"])
    assert exited.value.code == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'requests.csv'}: none of its 2 rows falls in 2025-10 (2025-10-01 "
        "to 2025-10-31 UTC); they run from 2026-10-10 12:00 to 2026-10-20 08:30 UTC: check the "
        "period or the ledger path"
    )


def test_a_timestamp_past_year_9999_in_text_is_named_with_its_row(workspace, tmp_path, capsys):
    # DuckDB reads the five-digit year; ISO 8601 does not write one (it was taken for a stray)
    config = workspace([request("r1", timestamp="20261-10-10T12:00:00Z")])
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {tmp_path / 'requests.csv'}: row 1 (line 2), column 'timestamp': got "
        "'20261-10-10T12:00:00Z', expected an ISO 8601 timestamp such as 2026-10-01T12:00:00Z"
    )


def test_a_stray_row_past_year_9999_does_not_break_the_budgets(tmp_path, capsys):
    import duckdb

    from allocation_kit.config import load_workspace
    from allocation_kit.periods import parse_period
    from allocation_kit.pipeline import period_ledger
    from allocation_kit.report import write_analysis

    target = init_starter(tmp_path / "ws")
    sample = target / "data" / "requests" / "sample.csv"
    rows = sample.read_text().splitlines()
    rows.append(rows[-1].replace("req-0006", "req-0007").replace("2026-10-", "10000-10-"))
    sample.write_text("\n".join(rows) + "\n")
    # a typed Parquet timestamp can hold the year 10000 (text in ISO 8601 cannot)
    duckdb.execute(
        f"COPY (SELECT * REPLACE (CAST(timestamp AS TIMESTAMP) AS timestamp) FROM '{sample}') "
        f"TO '{sample.with_suffix('.parquet')}'"
    )
    sample.unlink()
    kit = target / "kit.yaml"
    kit.write_text(kit.read_text().replace("data/requests/*.csv", "data/requests/*.parquet"))
    ledger = period_ledger(load_workspace(target / "kit.yaml"), parse_period("2026-10"))
    assert ledger.counts.out_of_period == 1  # listed, never lost
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    budgets = write_analysis(evidence, ledger, {}, "finops-analyst").budgets
    assert budgets[0].reason == (
        "data through 2026-10-03 12:00 UTC: forecast at the run rate of 2.5 of 31 days "
        "(3,600 of 44,640 minutes)"
    )


def test_a_week_into_a_month_without_rows_yet_has_nothing_so_far_in_that_month(workspace, tmp_path):
    """29 October to 4 November: most days fall in November, whose rows have not come yet;
    the review still runs, November's month to date is nothing so far."""
    from decimal import Decimal

    from allocation_kit.config import load_workspace
    from allocation_kit.periods import parse_period
    from allocation_kit.pipeline import period_ledger
    from allocation_kit.report import write_analysis

    (tmp_path / "budgets.yaml").write_text("budgets:\n  - {team: search, monthly: 3000}\n")
    config = workspace(
        [request("r1", timestamp="2026-10-30T12:00:00Z")], kit=KIT + "budgets: budgets.yaml\n"
    )
    ledger = period_ledger(load_workspace(config), parse_period("2026-10-29..2026-11-04"))
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (month,) = write_analysis(evidence, ledger, {}, "finops-analyst").month_budgets
    assert (month.period, month.actual, month.forecast, month.status, month.reason) == (
        "2026-11",
        Decimal(0),
        None,
        "ok",
        "no ledger rows in 2026-11 yet (data through 2026-10-30 12:00 UTC): nothing to forecast "
        "from",
    )


def test_a_week_within_its_share_but_a_month_so_far_over_budget_counts_in_the_index(
    workspace, tmp_path
):
    """W42 (12 to 18 October) spends $0.0014 of its 7/31 share ($0.23) of a $1.00 budget;
    October so far, $1.0018, is over it. The index says so beside the week's 0."""
    from allocation_kit.config import load_workspace
    from allocation_kit.periods import parse_period
    from allocation_kit.pipeline import period_ledger
    from allocation_kit.report import write_evidence, write_index

    (tmp_path / "budgets.yaml").write_text("budgets:\n  - {team: search, monthly: 1.00}\n")
    rows = [request("early", timestamp="2026-10-05T12:00:00Z", input_tokens=1_000_000)]
    rows += [request("w1", timestamp="2026-10-13T12:00:00Z")]  # W42: $0.0014
    config = workspace(rows, kit=KIT + "budgets: budgets.yaml\n")
    ledger = period_ledger(load_workspace(config), parse_period("2026-W42"))
    folder = tmp_path / "reports" / "2026-W42"
    (folder / "evidence").mkdir(parents=True)
    analysis = write_evidence(folder, ledger, {}).analysis
    week, month = analysis.budgets, analysis.month_budgets
    assert [(b.status, m.status) for b, m in zip(week, month, strict=True)] == [("ok", "exceeded")]
    spend = json.loads((folder / "evidence" / "spend_review.json").read_text())
    assert spend["budgets"] == {"ok": 1, "warning": 0, "exceeded": 0, "month_to_date_exceeded": 1}
    index = write_index(tmp_path / "reports").read_text()
    assert '<td class="num">0<br><span class="sub">1 for the month so far</span></td>' in index


def test_a_rerun_says_what_it_changed_against_the_run_it_replaced(workspace, tmp_path, capsys):
    from .conftest import REGISTRY

    rows = [request("r1"), request("r2", application="ghost-app", team=None)]
    rows += [request(f"u{i}", team=None, application=None) for i in range(2)]
    config = workspace(rows)
    assert review(config) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("  rerun ")] == []  # nothing before it
    manifest = tmp_path / "reports" / "2026-10" / "evidence" / "manifest.json"
    first = json.loads(manifest.read_text())["created_at"].replace("T", " ")
    # the platform engineer registers ghost-app, and reviews October again
    registry = REGISTRY.replace(
        "  - {id: ticket-bot, team: support}",
        "  - {id: ticket-bot, team: support}\n  - {id: ghost-app, team: support}",
    )
    assert review(workspace(rows, registry=registry)) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("  rerun ")] == [
        f"  rerun      replaces the run of {first.replace('+00:00', ' UTC')}; inputs changed: "
        "registry.yaml",
        "  rerun      exception rows 3 → 2 (unknown owner −1); unallocated $0.0042 → $0.0028",
    ]


# --- a run that is stopped ----------------------------------------------------------------------


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_what_a_killed_run_left_is_cleared_and_the_good_folder_it_moved_aside_comes_back(
    tmp_path,
):
    from allocation_kit.report import atomic_period_folder

    out, pid = tmp_path / "reports", _dead_pid()
    # killed between its two renames: October's good folder moved aside, the new one complete
    (out / f".2026-10.previous-{pid}").mkdir(parents=True)
    (out / f".2026-10.previous-{pid}" / "packet.html").write_text("good")
    (out / f".2026-10.partial-{pid}").mkdir()
    (out / f".2026-10.partial-{pid}" / "packet.ipynb").write_text("half")
    (out / f".2026-09.partial-{pid}").mkdir()  # another period's: not this run's to touch
    said: list[str] = []
    with atomic_period_folder(out, "2026-10", said.append) as folder:
        assert (out / "2026-10" / "packet.html").read_text() == "good"
        (folder / "packet.html").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [
        f".2026-09.partial-{pid}", ".2026-10.lock", "2026-10"
    ]  # fmt: skip
    assert (out / "2026-10" / "packet.html").read_text() == "new"
    assert said == [
        f"restored   {out / '2026-10'} from .2026-10.previous-{pid}, left by a run that was "
        "stopped",
        f"removed    {out / f'.2026-10.partial-{pid}'} (left by a run of process {pid} that was "
        "stopped)",
    ]


def test_sigterm_ends_a_run_like_ctrl_c_leaving_the_last_good_folder(tmp_path):
    out = tmp_path / "reports"
    (out / "2026-10").mkdir(parents=True)
    (out / "2026-10" / "packet.html").write_text("good")
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from pathlib import Path
        from allocation_kit.cli import _terminated
        from allocation_kit.report import atomic_period_folder
        signal.signal(signal.SIGTERM, _terminated)
        with atomic_period_folder(Path(sys.argv[1]), "2026-10") as folder:
            (folder / "packet.html").write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (143, "terminated\n")
    assert sorted(p.name for p in out.iterdir()) == [".2026-10.lock", "2026-10"]
    assert (out / "2026-10" / "packet.html").read_text() == "good"


def test_a_reviewer_role_with_a_line_break_is_refused_before_anything_runs(
    workspace, tmp_path, capsys
):
    config = workspace([request("r1")])
    role = "analyst\nApproved: CFO"  # a second line in the review log's record
    assert cli("run", "--config", str(config), "--period", "2026-10", "--reviewer-role", role) == 2
    assert last_line(capsys) == (
        "error: --reviewer-role: expected one line of printable text (no line breaks, tabs or "
        "invisible characters)"
    )
    assert not (tmp_path / "reports").exists()
