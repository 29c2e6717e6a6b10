"""A recorded sign-off: bound to the run's SHA256SUMS, refused on evidence or inputs changed
since the run, a lock on the period that only a reason reopens, and a chained review log that
survives every re-run and names a record edited or dropped."""

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from allocation_kit.errors import ConfigError, InputError
from allocation_kit.report import atomic_period_folder, write_checksums, written_files
from allocation_kit.signoff import (
    PeriodLocked,
    append_record,
    checksum_problem,
    overlapping_locks,
    read_log,
    sign_off_state,
    text_option,
    write_log,
)

from .conftest import KIT, cli, request, write_ledger
from .test_cli import last_line, review

AT = re.compile(r"^2\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
USER = pwd.getpwuid(os.getuid()).pw_name


def sign(config: Path, *args: str) -> int:
    return cli("sign-off", "--config", str(config), "--period", "2026-10", *args)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chained(record: dict) -> str:
    """The previous_sha256 of the record after `record`."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def when(record: dict) -> str:
    return record["at"].replace("T", " ")[:16] + " UTC"


def test_a_sign_off_locks_the_period_until_a_reason_reopens_it(workspace, tmp_path, capsys):
    # one untagged call: unallocated cost, so the packet proposes needs follow-up
    config = workspace([request("r1"), request("r2", team=None, application=None)])
    assert review(config) == 0
    reports = tmp_path / "reports"
    folder = reports / "2026-10"
    signed = digest(folder / "SHA256SUMS")
    (run,) = read_log(folder)
    assert AT.match(run.pop("at"))
    assert run == {
        "event": "run", "user": USER, "role": "finops-analyst", "evidence_sha256": signed,
        "kit_version": "0.1.0", "previous_sha256": "",
    }  # fmt: skip
    capsys.readouterr()

    assert sign(config, "--result", "pass", "--by", "Dana Reyes") == 2
    assert last_line(capsys) == (
        "error: --note: the packet proposes needs follow up; signing pass needs a note saying why"
    )
    assert len(read_log(folder)) == 1

    assert sign(config, "--result", "needs_follow_up", "--by", " Dana Reyes ") == 0
    out = capsys.readouterr()
    assert out.out == f"{folder / 'sign_off.html'}\n"
    run, record = read_log(folder)
    assert out.err.splitlines()[-2] == (
        f"  receipt    {chained(record)} (the record's SHA-256: keep it with the journal entry; "
        "an edit of the record changes it)"
    )
    assert AT.match(record["at"])
    assert {k: v for k, v in record.items() if k != "at"} == {
        "event": "signed",
        "user": USER,
        "result": "needs_follow_up",
        "signed_by": "Dana Reyes",
        "role": "finops-analyst",  # review.reviewer_role of kit.yaml
        "note": "",
        "proposed_result": "needs_follow_up",
        "evidence_sha256": signed,
        "outdated": None,
        "not_covered": [],
        "same_account_as_run": True,  # the test runs and signs as one account
        "previous_sha256": chained(run),
    }
    locked_line = f"needs follow up by Dana Reyes (finops-analyst) on {when(record)}"
    assert out.err.splitlines()[-1] == (
        f"signed off 2026-10: {locked_line}; 2026-10 is locked: `run` replaces it only with "
        "--reopen REASON"
    )
    index = (reports / "index.html").read_text()
    assert (
        f"signed by Dana Reyes (finops-analyst), {record['at'][:10]} · "
        '<a href="2026-10/sign_off.html">record</a></span>'
    ) in index
    assert ">locked</span>" in index
    page = (folder / "sign_off.html").read_text()
    assert "Signed off: needs follow up · the period is locked</div>" in page
    assert f"SHA-256 of SHA256SUMS: {signed}" in page
    lines = (folder / "evidence" / "chargeback.csv").read_text().splitlines()
    (search,) = [line.split(",") for line in lines if ",search," in line]
    charge = f"${Decimal(search[lines[0].split(',').index('charge')]):,.2f}"
    assert f'<tr><td>search</td><td>CC-100</td><td class="num">{charge}</td></tr>' in page
    assert "<tr><td><code>evidence/allocation.csv</code></td>" in page
    # the reviewer's line keeps nothing here: no cost center is asked for
    assert '<tr><td>kept by the reviewer</td><td>—</td><td class="num">$0.00</td></tr>' in page
    # what the sign-off decided on: the proposal's findings, worst first
    findings = page.split("<h2>What the packet proposed, and why</h2>")[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td><td>(.*?):", findings) == [
        ("needs follow up", "Partial period"),
        ("needs follow up", "Reconciliation inconclusive"),
        ("needs follow up", "Unallocated"),
    ]

    # an approval stands: rejecting it takes a reopening, and signing it again a reason
    assert sign(config, "--result", "fail", "--by", "Sam Ortiz", "--note", "wrong") == 4
    assert last_line(capsys) == (
        f"error: {folder}: this run is signed off {locked_line}, which stands: to reject it, "
        "reopen the period (`run --reopen REASON`), which archives what was signed, and sign "
        "the new run fail"
    )
    assert sign(config, "--result", "needs_follow_up", "--by", "Sam Ortiz") == 2
    assert last_line(capsys) == (
        f"error: --note: this run is signed off {locked_line} already; replacing it needs a note "
        "saying why"
    )
    assert len(read_log(folder)) == 2

    # a re-run, alone or in a backfill, stops before anything is written
    locked = (
        f"error: {folder}: signed off {locked_line}; to review it again, run it with --reopen "
        "REASON (papermill: -p reopen REASON), which the review log records"
    )
    assert review(config) == 4
    assert last_line(capsys) == locked
    assert review(config, "2026-09", "2026-10") == 4
    assert last_line(capsys) == locked
    assert sorted(p.name for p in reports.iterdir()) == [
        ".2026-10.lock", ".sign-off.lock", "2026-10", "index.html"  # the locks, and nothing new
    ]  # fmt: skip
    assert digest(folder / "SHA256SUMS") == signed

    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", " ") == 2
    assert last_line(capsys) == "error: --reopen: give the reason for reopening the period"

    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", "tag fix") == 0
    err = capsys.readouterr().err
    assert f"  reopened   2026-10, signed off {locked_line}: tag fix\n" in err
    log = read_log(folder)
    assert [r["event"] for r in log] == ["run", "signed", "reopened", "run"]
    reopened = log[2]
    assert {k: v for k, v in reopened.items() if k != "at"} == {
        "event": "reopened",
        "user": USER,
        "role": "finops-analyst",
        "reason": "tag fix",
        "reopens": locked_line,
        "replaces_evidence_sha256": signed,
        "previous_sha256": chained(record),
    }
    assert log[3]["evidence_sha256"] == digest(folder / "SHA256SUMS") != signed
    # what was approved is kept, as it was signed
    (archived,) = (reports / "archive").iterdir()
    assert re.fullmatch(r"2026-10\.reopened-\d{8}T\d{6}Z", archived.name)
    assert digest(archived / "SHA256SUMS") == signed
    assert (archived / "sign_off.html").is_file()  # the record of what was approved, with it
    assert not (folder / "sign_off.html").exists()  # the new run is not signed
    assert f"  archived   the signed-off folder it replaces in {archived}\n" in err
    state = sign_off_state(folder)
    assert (state.current, state.earlier, state.reopened, state.locked) == (
        None, record, True, False
    )  # fmt: skip
    packet = (folder / "packet.html").read_text()
    assert "Review log of the period's earlier runs" in packet
    assert '<td class="txt">reopened</td>' in packet and "tag fix" in packet
    index = (reports / "index.html").read_text()
    assert f"proposed; reopened after needs follow up of {record['at'][:10]}" in index


def test_evidence_or_inputs_changed_since_the_run_are_not_signed(workspace, tmp_path, capsys):
    from .test_billing import focus_row, write_csv
    from .test_reconcile import KIT_WITH_BILL

    kit = KIT_WITH_BILL.replace("{path: requests.csv}", '{path: "requests*.csv"}')
    kit = kit.replace("{path: bill.csv", '{path: "bill*.csv"')
    config = workspace([request("r1")], kit=kit)
    write_csv(tmp_path / "bill.csv", [focus_row()])
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    again = "re-run the period and sign the new packet"
    args = ("--result", "fail", "--by", "Sam Ortiz", "--role", "controller")
    allocation = folder / "evidence" / "allocation.csv"
    good = allocation.read_bytes()
    allocation.write_bytes(good.replace(b"search", b"support"))
    capsys.readouterr()
    assert sign(config, *args) == 3
    assert last_line(capsys) == (
        f"error: {folder}: evidence/allocation.csv: changed since the run wrote it (its SHA-256 "
        f"differs from SHA256SUMS); sign only what the kit wrote: {again}"
    )
    write_checksums(folder)  # the sums rewritten to match: the review log still knows
    assert sign(config, *args) == 3
    assert last_line(capsys) == (
        f"error: {folder}: SHA256SUMS changed since the run wrote it (the review log records "
        f"another); sign only what the kit wrote: {again}"
    )
    allocation.write_bytes(good)
    write_checksums(folder)
    (folder / "statements" / "extra.html").write_text("<p>added by hand</p>")
    assert sign(config, *args) == 3
    assert "statements/extra.html: not listed in SHA256SUMS (added after the run)" in last_line(
        capsys
    )
    (folder / "statements" / "extra.html").unlink()
    pricing = tmp_path / "pricing.yaml"
    reviewed = pricing.read_text()
    pricing.write_text(reviewed.replace("output: 4.00", "output: 4.50"))
    write_ledger(tmp_path / "requests-late.csv", [request("r9")])  # late rows, a file of its own
    write_csv(tmp_path / "bill-credit-memo.csv", [focus_row()])  # and a late bill
    assert sign(config, *args) == 3
    assert last_line(capsys) == (
        f"error: {folder}: inputs changed since the run: pricing.yaml (changed), "
        f"requests-late.csv (new), bill-credit-memo.csv (new); the packet no longer shows them: "
        f"{again}"
    )
    pricing.write_text(reviewed)
    (tmp_path / "requests-late.csv").unlink()
    (tmp_path / "bill-credit-memo.csv").unlink()
    (folder / "notes.txt").write_text("call with the provider on Monday")
    (folder / "evidence" / "invoice_scan.txt").write_text("the invoice, scanned")

    assert sign(config, *args) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        f"  note       the account that ran the period ({USER}) signs it too: the record says "
        "so; a reviewer apart from the preparer is the usual control",
        "  note       not covered by the sign-off (not written by the kit): "
        "evidence/invoice_scan.txt, notes.txt",
    ]
    assert err[-1].endswith("; the period stays open to re-run")
    # status and the index judge the evidence as the sign-off did: the reviewer's files apart
    assert cli("status", "--config", str(config)) == 0
    capsys.readouterr()
    failed = digest(folder / "SHA256SUMS")
    assert review(config) == 0  # a fail does not lock
    _, signed, rerun = read_log(folder)
    assert (signed["result"], signed["role"], signed["evidence_sha256"]) == (
        "fail", "controller", failed
    )  # fmt: skip
    assert signed["not_covered"] == ["evidence/invoice_scan.txt", "notes.txt"]
    assert (rerun["event"], rerun["previous_sha256"]) == ("run", chained(signed))
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f"proposed; earlier run signed fail of {signed['at'][:10]}" in index


def test_a_sign_off_waits_for_a_run_under_way_and_names_a_folder_never_run(
    workspace, tmp_path, capsys
):
    config = workspace([request("r1")])
    assert sign(config, "--result", "pass", "--by", "Dana Reyes") == 2
    assert last_line(capsys) == (
        f"error: {tmp_path / 'reports' / '2026-10'}: no review of 2026-10 to sign; run "
        f"`allocation-kit run --config {config} --period 2026-10` first (or give the --out it "
        "was run into)"
    )
    folder = _signed_folder(tmp_path / "reports", "fail")
    assert sign(config, "--out", str(folder), "--result", "pass", "--by", "Dana Reyes") == 2
    assert last_line(capsys) == (
        f"error: --out: {folder} is a period's folder; give the folder that holds the periods "
        f"({folder.parent})"
    )
    holder = (  # another process holding the period's lock, as a run does while it runs
        "import fcntl, os, sys, time\n"
        f"h = open({str(tmp_path / 'reports' / '.2026-10.lock')!r}, 'a+')\n"
        "fcntl.flock(h, fcntl.LOCK_EX); h.seek(0); h.truncate(); h.write(str(os.getpid()))\n"
        "h.flush(); print('held', flush=True); time.sleep(60)\n"
    )
    busy = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline() == "held\n"
        assert sign(config, "--result", "pass", "--by", "Dana Reyes", "--note", "ok") == 4
    finally:
        busy.kill()
        busy.wait()
        busy.stdout.close()
    assert last_line(capsys) == (
        f"error: {folder}: a run or sign-off of 2026-10 is under way (process {busy.pid}); try "
        "again once it has finished"
    )
    assert [r["event"] for r in read_log(folder)] == ["run", "signed"]  # nothing written


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Dana\nReyes", "expected one line of printable text (no line breaks, tabs or invisible "
                        "characters)"),
        ("\u200b", "expected one line of printable text (no line breaks, tabs or invisible "
                   "characters)"),
        ("x" * 201, "201 characters; expected at most 200"),
    ],
)  # fmt: skip
def test_a_name_is_one_line_of_printable_text(value, expected):
    with pytest.raises(ConfigError) as bad:
        text_option(value, "--by")
    assert bad.value.line() == f"--by: {expected}"
    assert text_option("  José Núñez-O'Brien ", "--by") == "José Núñez-O'Brien"
    assert text_option("Dana\u00a0Reyes", "--by") == "Dana Reyes"  # pasted from a mail
    assert text_option("Dana   Reyes", "--by") == "Dana Reyes"


def _signed_folder(out: Path, result: str) -> Path:
    """A period folder of a finished run (SHA256SUMS and its run record), signed `result`."""
    folder = out / "2026-10"
    (folder / "evidence").mkdir(parents=True)
    (folder / "packet.html").write_text("<p>packet</p>")
    (folder / "evidence" / "manifest.json").write_text('{"review_log": "sign_off.json"}')
    write_checksums(folder)
    records = append_record([], "run", role="", evidence_sha256=digest(folder / "SHA256SUMS"))
    records = append_record(
        records, "signed", result=result, signed_by="Dana Reyes", role="", note="",
        proposed_result=result, evidence_sha256=digest(folder / "SHA256SUMS"),
    )  # fmt: skip
    records[-1]["at"] = "2026-11-02T09:30:00+00:00"
    write_log(folder, "2026-10", records)
    return folder


def test_the_notebook_path_is_locked_too_and_its_reopen_is_logged_from_the_start(tmp_path):
    """`period_review` (papermill run by hand) replaces the folder through atomic_period_folder:
    the same lock, and the same log in the new folder before the packet reads it."""
    out = tmp_path / "reports"
    folder = _signed_folder(out, "pass")
    with pytest.raises(PeriodLocked) as locked, atomic_period_folder(out, "2026-10"):
        pytest.fail("a locked period must not start a run")
    assert locked.value.line() == (
        f"{folder}: signed off pass by Dana Reyes on 2026-11-02 09:30 UTC; to review it again, "
        "run it with --reopen REASON (papermill: -p reopen REASON), which the review log records"
    )
    assert locked.value.exit_code == 4
    said: list[str] = []
    reopening = atomic_period_folder(out, "2026-10", said.append, reopen="late rows", role="a")
    with reopening as new:
        assert [r["event"] for r in read_log(new)] == ["run", "signed", "reopened"]
        (new / "packet.html").write_text("<p>again</p>")
    assert said[0] == (
        "reopened   2026-10, signed off pass by Dana Reyes on 2026-11-02 09:30 UTC: late rows"
    )
    assert said[1].startswith(f"archived   the signed-off folder it replaces in {out}/archive/")
    assert [r["event"] for r in read_log(folder)] == ["run", "signed", "reopened"]
    assert sign_off_state(folder).locked is False  # reopened: no sign-off after it


def test_a_fail_sign_off_does_not_lock_and_its_folder_is_archived_when_replaced(tmp_path):
    out = tmp_path / "reports"
    folder = _signed_folder(out, "fail")
    signed = digest(folder / "SHA256SUMS")
    (folder / "notes.txt").write_text("the provider disputes the tax line")
    said: list[str] = []
    with atomic_period_folder(out, "2026-10", said.append) as new:
        assert [r["event"] for r in read_log(new)] == ["run", "signed"]
    (archived,) = (out / "archive").iterdir()
    assert re.fullmatch(r"2026-10\.replaced-\d{8}T\d{6}Z", archived.name)
    assert digest(archived / "SHA256SUMS") == signed
    # a file of the reviewer's goes on with the period, and stays with what was signed
    assert (archived / "notes.txt").read_text() == (folder / "notes.txt").read_text()
    assert said == [
        f"kept       notes.txt (not written by the kit) in {folder}",
        f"archived   the signed folder it replaces in {archived}",
    ]


@pytest.mark.parametrize(
    ("damage", "where", "problem"),
    [
        # the signer's name changed after the fact: the next record's chain breaks
        (lambda records: records[1].update(signed_by="CFO"), "record 3",
         "previous_sha256 is not the SHA-256 of the record before it: that record was edited, "
         "or one between them dropped or moved"),
        # the sign-off dropped
        (lambda records: records.pop(1), "record 2",
         "previous_sha256 is not the SHA-256 of the record before it: that record was edited, "
         "or one between them dropped or moved"),
        (lambda records: records[1].update(result="approved"), "record 2",
         "result 'approved': expected one of pass, needs_follow_up, fail"),
        (lambda records: records[1].update(at="yesterday"), "record 2",
         "at 'yesterday': expected an ISO 8601 time"),
        (lambda records: records[1].update(event="approved"), "record 2",
         "event 'approved': expected one of run, signed, reopened"),
    ],
)  # fmt: skip
def test_a_record_edited_or_dropped_is_named_and_stops_the_run(tmp_path, damage, where, problem):
    out = tmp_path / "reports"
    folder = _signed_folder(out, "fail")
    records = append_record(read_log(folder), "run", role="", evidence_sha256=None)
    damage(records)
    write_log(folder, "2026-10", records)
    with pytest.raises(InputError) as bad, atomic_period_folder(out, "2026-10", reopen="why"):
        pytest.fail("a broken log must stop the run")
    assert bad.value.line() == (
        f"{folder / 'sign_off.json'}: {where}: {problem}; restore it from your copy"
    )


def test_a_folder_whose_review_log_is_gone_is_locked_until_reopened(tmp_path):
    out = tmp_path / "reports"
    folder = _signed_folder(out, "fail")
    (folder / "sign_off.json").unlink()
    with pytest.raises(PeriodLocked) as locked, atomic_period_folder(out, "2026-10"):
        pytest.fail("a folder that may have been signed must not be replaced")
    assert locked.value.line() == (
        f"{folder}: its review log sign_off.json is missing, so whether it was signed off cannot "
        "be told; restore the log, or run it with --reopen REASON (papermill: -p reopen REASON)"
    )
    with atomic_period_folder(out, "2026-10", reopen="log lost", role="a") as new:
        (reopened,) = read_log(new)
    assert (reopened["event"], reopened["reopens"], reopened["previous_sha256"]) == (
        "reopened", "a period whose review log was missing", ""
    )  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: (f / "SHA256SUMS").unlink(),
         "has no SHA256SUMS: the run that wrote it did not finish, or was not `run`"),
        (lambda f: (f / "packet.html").unlink(), "packet.html: listed in SHA256SUMS but missing"),
        (lambda f: (f / "SHA256SUMS").write_text("abc  packet.html\n"),
         "SHA256SUMS line 1: expected '<sha256>  <path>', found 'abc  packet.html'"),
        (lambda f: None, None),
    ],
)  # fmt: skip
def test_checksum_problems_are_named(tmp_path, damage, problem):
    folder = _signed_folder(tmp_path, "pass")
    damage(folder)
    assert checksum_problem(folder, written_files(folder)) == problem


def test_the_days_of_a_signed_off_month_are_not_approved_again_by_a_week(
    workspace, tmp_path, capsys
):
    config = workspace([request("r1"), request("r2", timestamp="2026-10-06T09:00:00Z")])
    assert review(config) == 0
    assert sign(config, "--result", "needs_follow_up", "--by", "Dana Reyes") == 0
    (_, record) = read_log(tmp_path / "reports" / "2026-10")
    signed = f"needs follow up by Dana Reyes (finops-analyst) on {when(record)}"
    capsys.readouterr()
    assert review(config, "2026-W41") == 0  # a weekly view is fine, and says whose days they are
    assert (
        f"  note       2026-W41 overlaps 2026-10, signed off {signed}: its charges for those days "
        "are approved there; book them from 2026-10\n"
    ) in capsys.readouterr().err
    week = ("sign-off", "--config", str(config), "--period", "2026-W41", "--by", "Sam Ortiz")
    assert cli(*week, "--result", "needs_follow_up") == 4
    assert last_line(capsys) == (
        f"error: {tmp_path / 'reports' / '2026-W41'}: its days overlap 2026-10, signed off "
        f"{signed}: the charges of a day are approved once (reopen 2026-10 to approve them here)"
    )
    assert cli(*week, "--result", "fail", "--note", "booked with October") == 0
    capsys.readouterr()

    assert cli("status", "--config", str(config)) == 0
    day = record["at"][:10]
    assert capsys.readouterr().out.splitlines() == [
        f"{'2026-W41':<24} {'inconclusive':<13} proposed needs follow up  signed fail by Sam "
        f"Ortiz (finops-analyst), {day}",
        f"{'2026-10':<24} {'inconclusive':<13} proposed needs follow up  signed needs follow up by "
        f"Dana Reyes (finops-analyst), {day} · locked",
    ]
    teams = tmp_path / "reports" / "2026-10" / "evidence" / "teams.csv"
    teams.write_bytes(teams.read_bytes() + b"\n")
    from allocation_kit.report import write_index

    index = write_index(tmp_path / "reports").read_text()
    assert '<th class="num">2026-10<br><span class="alarm">changed since signed</span></th>' in (
        index
    )
    assert cli("status", "--config", str(config), "--format", "json") == 1
    october = json.loads(capsys.readouterr().out)[1]
    assert (october["period"], october["locked"], october["attention"]) == (
        "2026-10", True, "evidence changed since sign-off: evidence/teams.csv"
    )  # fmt: skip
    assert october["sign_off"] == {
        k: record[k] for k in ("result", "signed_by", "role", "at", "note", "proposed_result",
                               "evidence_sha256")
    } | {"receipt": chained(record)}  # fmt: skip


def test_overlapping_locks_are_the_other_locked_periods_sharing_a_day(tmp_path):
    from allocation_kit.periods import parse_period

    out = tmp_path / "reports"
    october = _signed_folder(out, "pass")
    (out / "2026-W44").mkdir()  # 2026-10-26 .. 2026-11-01, not signed
    (out / "archive").mkdir()
    (record,) = [r for r in read_log(october) if r["event"] == "signed"]
    assert overlapping_locks(out, parse_period("2026-10-20..2026-11-05")) == [("2026-10", record)]
    assert overlapping_locks(out, parse_period("2026-11")) == []
    assert overlapping_locks(out, parse_period("2026-10")) == []  # itself is not another


def test_the_notebooks_period_dir_is_only_runs_own_temporary_folder(workspace, tmp_path):
    """Given a period folder by hand, the notebook wrote over signed evidence in place."""
    from allocation_kit.packet import period_review

    config = workspace([request("r1")])
    folder = _signed_folder(tmp_path / "reports", "pass")
    with pytest.raises(ConfigError) as bad:
        period_review(config, "2026-10", period_dir=str(folder))
    assert bad.value.line() == (
        f"period_dir: {folder}: `allocation-kit run` sets it to its temporary folder; leave it "
        "empty to write OUT/PERIOD"
    )


def test_a_date_range_is_signed_and_reopened_like_a_month(workspace, tmp_path, capsys):
    """Its label holds dots: its own log was once taken for another period's."""
    config = workspace([request("r1")])
    label = "2026-10-01..2026-10-15"
    assert review(config, label) == 0
    args = ("sign-off", "--config", str(config), "--period", label, "--by", "Dana Reyes")
    assert cli(*args, "--result", "needs_follow_up") == 0
    assert review(config, label) == 4
    assert cli("run", "--config", str(config), "--period", label, "--reopen", "late rows") == 0
    folder = tmp_path / "reports" / label
    assert [r["event"] for r in read_log(folder)] == ["run", "signed", "reopened", "run"]
    (archived,) = (tmp_path / "reports" / "archive").iterdir()
    assert archived.name.startswith(f"{label}.reopened-")
    assert [r["event"] for r in read_log(archived)] == ["run", "signed"]


def test_segregation_of_duties_refuses_the_preparers_approval(workspace, tmp_path, capsys,
                                                              monkeypatch):  # fmt: skip
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, segregation_of_duties: true}",
    )
    config = workspace([request("r1")], kit=kit)
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    capsys.readouterr()

    monkeypatch.setenv("USER", "dana")  # not the account: anyone can set these
    monkeypatch.setenv("LOGNAME", "dana")
    assert sign(config, "--result", "pass", "--by", "Dana Reyes", "--note", "ok") == 4
    assert last_line(capsys) == (
        f"error: {folder}: the account that ran this review ({USER}) cannot approve it: "
        "review.segregation_of_duties of kit.yaml asks for a reviewer apart from the preparer "
        "(signing fail is allowed)"
    )
    assert [r["event"] for r in read_log(folder)] == ["run"]
    assert not (folder / "sign_off.html").exists()

    # the preparer may reject their own run; another account approves it
    assert sign(config, "--result", "fail", "--by", "Dana Reyes", "--note", "recheck") == 0
    # the index marks the refused charges: not to be booked
    refused = '<th class="num">2026-10<br><span class="alarm">signed fail</span></th>'
    assert refused in (folder.parent / "index.html").read_text()
    monkeypatch.setattr("allocation_kit.signoff.account", lambda: "controller")
    assert sign(config, "--result", "pass", "--by", "Sam Ortiz", "--note", "rechecked") == 0
    assert '<th class="num">2026-10</th>' in (folder.parent / "index.html").read_text()
    run, failed, passed = read_log(folder)
    assert run["user"] == USER  # the preparer
    assert (failed["result"], failed["user"], failed["same_account_as_run"]) == (
        "fail", USER, True
    )  # fmt: skip
    assert (passed["result"], passed["user"], passed["same_account_as_run"]) == (
        "pass", "controller", False
    )  # fmt: skip
    assert sign_off_state(folder).locked is True


def test_segregation_of_duties_is_a_yes_or_no(workspace, capsys):
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}", "review: {segregation_of_duties: maybe}"
    )
    config = workspace([request("r1")], kit=kit)
    assert review(config) == 2
    assert last_line(capsys) == (
        f"error: {config}: review.segregation_of_duties: expected true or false, got 'maybe'"
    )


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_review_journal_anchors_every_record_and_names_a_rewritten_log(
    workspace, tmp_path, capsys
):
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, journal: journal.jsonl}",
    )
    config = workspace([request("r1")], kit=kit)
    journal = tmp_path / "journal.jsonl"
    assert review(config) == 2
    assert last_line(capsys) == (
        f"error: {journal}: review.journal: does not exist; create an empty file to start the "
        "review journal (before the first review it is to cover), or restore it from your copy"
    )
    journal.touch()
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    assert sign(config, "--result", "needs_follow_up", "--by", "Dana Reyes", "--note", "ok") == 0
    run, signed = read_log(folder)
    lines = journal.read_text().splitlines()
    where = {"workspace": "Test workspace", "reports": "reports", "period": "2026-10"}
    assert journal_lines(journal) == [
        {**where, "log_record": 1, "event": "run", "at": run["at"], "user": USER,
         "record_sha256": chained(run), "previous_sha256": ""},
        {**where, "log_record": 2, "event": "signed", "at": signed["at"], "user": USER,
         "record_sha256": chained(signed),
         "previous_sha256": hashlib.sha256(lines[0].encode()).hexdigest()},
    ]  # fmt: skip
    capsys.readouterr()
    assert cli("status", "--config", str(config)) == 0
    # a reopening and its run are journaled as they land
    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", "late") == 0
    log = read_log(folder)
    assert [(e["log_record"], e["event"], e["record_sha256"]) for e in journal_lines(journal)] == [
        (n, r["event"], chained(r)) for n, r in enumerate(log, start=1)
    ]
    assert [r["event"] for r in log] == ["run", "signed", "reopened", "run"]
    capsys.readouterr()

    # a signed record rewritten: the log's own chain still holds, the journal does not agree
    write_log(folder, "2026-10", [run, {**signed, "note": "all fine", "result": "pass"}])
    rewritten = (
        f"error: {folder / 'sign_off.json'}: record 2 is not the one the review journal "
        f"{journal} holds (signed of {when(signed)} by {USER}): the log was edited or rewritten "
        "since; restore it from your copy"
    )
    assert review(config) == 3
    assert last_line(capsys) == rewritten
    assert sign(config, "--result", "fail", "--by", "Sam Ortiz", "--note", "x") == 3
    assert last_line(capsys) == rewritten
    assert cli("status", "--config", str(config)) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        f"{'':<24} attention: evidence changed since sign-off: SHA256SUMS changed since the "
        "run wrote it (the review log records another); record 2 is not the one the review "
        f"journal {journal} holds "
        f"(signed of {when(signed)} by {USER}): the log was edited or rewritten since"
    )

    # an approval added to the log, chained as the kit chains it
    forged = append_record(
        log, "signed", result="pass", signed_by="CFO", role="", note="", proposed_result="pass",
        evidence_sha256=log[-1]["evidence_sha256"],
    )  # fmt: skip
    write_log(folder, "2026-10", forged)
    assert sign_off_state(folder).locked  # the log alone would say so
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {folder / 'sign_off.json'}: record 5 (signed of {when(forged[-1])} by {USER}) "
        f"is not in the review journal {journal}: it was added outside the kit (or the kit "
        "stopped before journaling it); restore it from your copy"
    )

    # rolled back to before the sign-off
    write_log(folder, "2026-10", [run])
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {folder / 'sign_off.json'}: the review journal {journal} holds record 2 "
        f"(signed of {when(signed)} by {USER}) of 4, and the log no longer has it: it was "
        "rolled back, replaced or removed; restore it from your copy"
    )
    write_log(folder, "2026-10", log)  # restored: it runs, and its run is journaled
    assert len(journal_lines(journal)) == 4
    assert review(config) == 0
    assert [e["event"] for e in journal_lines(journal)] == [*(r["event"] for r in log), "run"]

    # the folder removed: named, until restored or reopened, which starts its log anew
    shutil.rmtree(folder)
    gone = (
        f"the review journal {journal} holds record 1 (run of {when(run)} by {USER}) of 5, and "
        "the log is gone: it was rolled back, replaced or removed"
    )
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {folder / 'sign_off.json'}: {gone}; restore it from your copy, or reopen the "
        "period (--reopen REASON)"
    )
    assert cli("status", "--config", str(config)) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"review journal: 2026-10: it holds the period's review log, and {folder} is gone; "
        "restore it from your copy, or reopen the period (run --reopen REASON)"
    )
    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", "lost") == 0
    (anew,) = read_log(folder)
    assert (anew["event"], anew["reason"]) == ("run", "lost")
    assert [(e["log_record"], e["record_sha256"]) for e in journal_lines(journal)][-2:] == [
        (5, journal_lines(journal)[4]["record_sha256"]), (1, chained(anew))
    ]  # fmt: skip
    capsys.readouterr()
    assert cli("status", "--config", str(config)) == 0
    lines = journal.read_text().splitlines()

    # the journal's own lines are chained too
    journal.write_text("\n".join([lines[0].replace(f'"{USER}"', '"someone"'), *lines[1:]]) + "\n")
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {journal}: line 2: previous_sha256 is not the SHA-256 of the line before it: a "
        "line was edited, dropped or moved; restore it from your copy"
    )
    journal.write_text(lines[0] + "\nnot json\n" + "\n".join(lines[2:]) + "\n")
    assert review(config) == 3
    assert last_line(capsys) == (
        f"error: {journal}: line 2: is not an entry the kit wrote (one JSON object a line with "
        "workspace, reports, period, event, at, user, record_sha256, previous_sha256 and "
        "log_record); restore it from your copy"
    )
    assert cli("status", "--config", str(config)) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"review journal: {journal}: line 2: is not an entry the kit wrote (one JSON object a "
        "line with workspace, reports, period, event, at, user, record_sha256, previous_sha256 "
        "and log_record); restore it from your copy"
    )


def test_a_journal_started_later_adopts_the_logs_there_are(workspace, tmp_path, capsys):
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, journal: journal.jsonl}",
    )
    config = workspace([request("r1"), request("r2", timestamp="2026-09-10T10:00:00Z")])
    assert review(config, "2026-09", "2026-10") == 0
    (tmp_path / "kit.yaml").write_text(textwrap.dedent(kit))
    (tmp_path / "journal.jsonl").touch()
    assert review(config) == 0  # kit.yaml changed: run again before signing
    assert sign(config, "--result", "needs_follow_up", "--by", "Dana Reyes", "--note", "ok") == 0
    journaled = [(e["period"], e["log_record"], e["event"]) for e in journal_lines(
        tmp_path / "journal.jsonl")]  # fmt: skip
    assert journaled == [
        ("2026-09", 1, "run"), ("2026-10", 1, "run"), ("2026-10", 2, "run"),
        ("2026-10", 3, "signed"),
    ]  # fmt: skip
    # a second workspace keeping its own reports beside it, journaled apart by its name
    other = tmp_path / "other"
    other.mkdir()
    for name in ("registry.yaml", "pricing.yaml", "requests.csv"):
        shutil.copy(tmp_path / name, other / name)
    (other / "kit.yaml").write_text(
        textwrap.dedent(kit)
        .replace("Test workspace", "Other")
        .replace("journal.jsonl", "../journal.jsonl")
    )
    capsys.readouterr()
    assert review(other / "kit.yaml") == 0
    assert [(e["workspace"], e["reports"], e["period"]) for e in journal_lines(
        tmp_path / "journal.jsonl")][-1] == ("Other", "reports", "2026-10")  # fmt: skip


def test_a_rerun_of_a_period_never_signed_is_not_archived(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    assert review(config) == 0
    assert review(config) == 0
    reports = tmp_path / "reports"
    assert not (reports / "archive").exists()
    assert "archived" not in capsys.readouterr().err
    assert [r["event"] for r in read_log(reports / "2026-10")] == ["run", "run"]


def test_a_day_approved_twice_is_named_and_with_a_journal_refused(workspace, tmp_path, capsys):
    # a week signed while its month's folder was away: status names both
    config = workspace([request("r1"), request("r2", timestamp="2026-10-06T09:00:00Z")])
    reports = tmp_path / "reports"
    assert review(config, "2026-10", "2026-W41") == 0
    assert sign(config, "--result", "needs_follow_up", "--by", "Dana Reyes") == 0
    (reports / "2026-10").rename(tmp_path / "away")
    week = ("sign-off", "--config", str(config), "--period", "2026-W41", "--by", "Sam Ortiz")
    assert cli(*week, "--result", "needs_follow_up") == 0
    (tmp_path / "away").rename(reports / "2026-10")
    capsys.readouterr()
    assert cli("status", "--config", str(config), "--format", "json") == 1
    found = {r["period"]: r["attention"] for r in json.loads(capsys.readouterr().out)}
    assert found == {
        "2026-W41": "its days overlap 2026-10, also approved: a day is charged twice",
        "2026-10": "its days overlap 2026-W41, also approved: a day is charged twice",
    }

    # with a review journal the month's approval is known while its folder is away
    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, journal: journal.jsonl}",
    )
    (tmp_path / "kit.yaml").write_text(textwrap.dedent(kit))
    (tmp_path / "journal.jsonl").touch()
    shutil.rmtree(reports)
    assert review(config, "2026-10", "2026-W41") == 0
    assert sign(config, "--result", "needs_follow_up", "--by", "Dana Reyes") == 0
    (reports / "2026-10").rename(tmp_path / "away2")
    capsys.readouterr()
    assert cli(*week, "--result", "needs_follow_up") == 4
    assert last_line(capsys) == (
        f"error: {reports / '2026-W41'}: its days overlap 2026-10, whose review log the review "
        f"journal holds and whose folder is gone: restore {reports / '2026-10'} first (the "
        "charges of a day are approved once)"
    )
    # a backfill naming it stops before anything is run
    lines = (tmp_path / "journal.jsonl").read_text()
    assert review(config, "2026-09", "2026-10") == 3
    assert "the log is gone" in last_line(capsys)
    assert not (reports / "2026-09").exists()
    assert (tmp_path / "journal.jsonl").read_text() == lines


def test_the_journal_takes_only_the_records_the_command_wrote(workspace, tmp_path):
    from allocation_kit.config import load_workspace
    from allocation_kit.signoff import journal_records, workspace_journal

    kit = KIT.replace(
        "review: {reviewer_role: finops-analyst}",
        "review: {reviewer_role: finops-analyst, journal: journal.jsonl}",
    )
    config = workspace([request("r1")], kit=kit)
    (tmp_path / "journal.jsonl").touch()
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    written = read_log(folder)
    forged = append_record(
        written, "signed", result="pass", signed_by="CFO", role="", note="",
        proposed_result="pass", evidence_sha256=written[-1]["evidence_sha256"],
    )  # fmt: skip
    write_log(folder, "2026-10", forged)  # added between the command's write and its journaling
    journal = workspace_journal(load_workspace(config))
    with pytest.raises(InputError) as changed:
        journal_records(journal, tmp_path / "reports", "2026-10", forged[:-1])
    assert changed.value.line() == (
        f"{folder / 'sign_off.json'}: changed while this command wrote it: it holds a record "
        "the command did not write; restore it from your copy"
    )
    assert len((tmp_path / "journal.jsonl").read_text().splitlines()) == 1


def test_the_reviewers_line_without_a_cost_center_says_where_to_name_one():
    from allocation_kit.signoff import _cost_center_text

    assert _cost_center_text("kept by the reviewer", "", Decimal("9.65")) == (
        "none: name one as kit.yaml chargeback.kept_cost_center"
    )
    assert _cost_center_text("kept by the reviewer", "CC-999", Decimal("9.65")) == "CC-999"
    assert _cost_center_text("kept by the reviewer", "", Decimal(0)) == "—"  # keeps nothing
    assert _cost_center_text("search", "", Decimal("1.00")) == "—"
