"""A recorded sign-off: bound to the run's SHA256SUMS, refused on changed evidence, and a lock
on the period that only a reason reopens; the log survives every re-run."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from allocation_kit.cli import main
from allocation_kit.errors import InputError
from allocation_kit.report import atomic_period_folder, write_checksums, written_files
from allocation_kit.signoff import (
    PeriodLocked,
    checksum_problem,
    read_log,
    sign_off_state,
    write_log,
)

from .conftest import request
from .test_cli import last_line, review

AT = re.compile(r"^2\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def cli(*args: str) -> int:
    """The exit code of `allocation-kit ARGS` (0 when it returns)."""
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code
    return 0


def sign(config: Path, *args: str) -> int:
    return cli("sign-off", "--config", str(config), "--period", "2026-10", *args)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sign_off_locks_the_period_until_a_reason_reopens_it(workspace, tmp_path, capsys):
    # one untagged call: unallocated cost, so the packet proposes needs follow-up
    config = workspace([request("r1"), request("r2", team=None, application=None)])
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    signed = digest(folder / "SHA256SUMS")
    capsys.readouterr()

    assert sign(config, "--result", "pass", "--by", "Dana Reyes") == 2
    assert last_line(capsys) == (
        "error: --note: the packet proposes needs follow up; signing pass needs a note saying why"
    )
    assert not (folder / "sign_off.json").exists()

    assert sign(config, "--result", "needs_follow_up", "--by", " Dana Reyes ") == 0
    out = capsys.readouterr()
    assert out.out == f"{folder / 'sign_off.json'}\n"
    (record,) = read_log(folder)
    assert AT.match(record.pop("at"))
    assert record == {
        "event": "signed",
        "result": "needs_follow_up",
        "signed_by": "Dana Reyes",
        "role": "finops-analyst",  # review.reviewer_role of kit.yaml
        "note": "",
        "proposed_result": "needs_follow_up",
        "evidence_sha256": signed,
    }
    day = read_log(folder)[0]["at"][:10]
    assert out.err.splitlines()[-1].startswith(
        "signed off 2026-10: needs follow up by Dana Reyes (finops-analyst) on "
    )
    assert out.err.splitlines()[-1].endswith(
        "; 2026-10 is locked: `run` replaces it only with --reopen REASON"
    )
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f"signed by Dana Reyes (finops-analyst), {day}" in index
    assert ">locked</span>" in index

    # a re-run, alone or in a backfill, stops before anything is written
    when = read_log(folder)[0]["at"].replace("T", " ")[:16]
    locked = (
        f"error: {folder}: signed off needs follow up by Dana Reyes (finops-analyst) on {when} "
        "UTC; to review it again, run it with --reopen REASON (the sign-off log records the reason)"
    )
    assert review(config) == 4
    assert last_line(capsys) == locked
    assert review(config, "2026-09", "2026-10") == 4
    assert last_line(capsys) == locked
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["2026-10", "index.html"]
    assert digest(folder / "SHA256SUMS") == signed

    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", " ") == 2
    assert last_line(capsys) == "error: --reopen: give the reason for reopening the period"

    assert cli("run", "--config", str(config), "--period", "2026-10", "--reopen", "tag fix") == 0
    err = capsys.readouterr().err
    assert (
        f"  reopened   2026-10, signed off needs follow up by Dana Reyes (finops-analyst) on "
        f"{when} UTC: tag fix\n" in err
    )
    _, reopened = read_log(folder)
    assert AT.match(reopened.pop("at"))
    assert reopened == {
        "event": "reopened",
        "role": "finops-analyst",
        "reason": "tag fix",
        "replaces_evidence_sha256": signed,
        "reopens": f"needs follow up by Dana Reyes (finops-analyst) on {when} UTC",
    }
    state = sign_off_state(folder)
    assert (state.current, state.earlier["evidence_sha256"], state.locked) == (None, signed, False)
    packet = (folder / "packet.html").read_text()
    assert "Sign-off log of earlier runs" in packet
    assert '<td class="txt">reopened</td>' in packet and "tag fix" in packet
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f"proposed; reopened after needs follow up of {day}" in index


def test_changed_evidence_is_not_signed_and_a_fail_leaves_the_period_open(
    workspace, tmp_path, capsys
):
    config = workspace([request("r1")])
    assert review(config) == 0
    folder = tmp_path / "reports" / "2026-10"
    allocation = folder / "evidence" / "allocation.csv"
    good = allocation.read_bytes()
    allocation.write_bytes(good.replace(b"search", b"support"))
    capsys.readouterr()
    assert sign(config, "--result", "fail", "--by", "Sam Ortiz", "--role", "controller") == 3
    assert last_line(capsys) == (
        f"error: {folder}: evidence/allocation.csv: changed since the run wrote it (its SHA-256 "
        "differs from SHA256SUMS); sign only what the kit wrote, so re-run the period and sign "
        "the new packet"
    )
    allocation.write_bytes(good)
    (folder / "statements" / "extra.html").write_text("<p>added by hand</p>")
    assert sign(config, "--result", "fail", "--by", "Sam Ortiz", "--role", "controller") == 3
    assert "statements/extra.html: not listed in SHA256SUMS (added after the run)" in last_line(
        capsys
    )
    (folder / "statements" / "extra.html").unlink()

    assert sign(config, "--result", "fail", "--by", "Sam Ortiz", "--role", "controller") == 0
    assert last_line(capsys).endswith("; the period stays open to re-run")
    failed = digest(folder / "SHA256SUMS")
    assert review(config) == 0  # a fail does not lock
    signed, rerun = read_log(folder)
    assert (signed["result"], signed["role"], signed["evidence_sha256"]) == (
        "fail", "controller", failed
    )  # fmt: skip
    del rerun["at"]
    assert rerun == {
        "event": "re-run",
        "role": "finops-analyst",
        "reason": "",
        "replaces_evidence_sha256": failed,
    }
    index = (tmp_path / "reports" / "index.html").read_text()
    assert f"proposed; earlier run signed fail of {signed['at'][:10]}" in index


def test_signing_a_period_never_run_is_one_line(workspace, tmp_path, capsys):
    config = workspace([request("r1")])
    assert sign(config, "--result", "pass", "--by", "Dana Reyes") == 2
    assert last_line(capsys) == (
        f"error: {tmp_path / 'reports' / '2026-10'}: no review of 2026-10 to sign; run "
        f"`allocation-kit run --config {config} --period 2026-10` first"
    )


def _signed_folder(out: Path, result: str) -> Path:
    """A period folder of a finished run (its SHA256SUMS written), signed off with `result`."""
    folder = out / "2026-10"
    (folder / "evidence").mkdir(parents=True)
    (folder / "packet.html").write_text("<p>packet</p>")
    (folder / "evidence" / "manifest.json").write_text("{}")
    write_checksums(folder)
    write_log(folder, "2026-10", [{
        "event": "signed", "result": result, "signed_by": "Dana Reyes", "role": "",
        "at": "2026-11-02T09:30:00+00:00", "note": "", "proposed_result": result,
        "evidence_sha256": digest(folder / "SHA256SUMS"),
    }])  # fmt: skip
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
        "run it with --reopen REASON (the sign-off log records the reason)"
    )
    assert locked.value.exit_code == 4
    said: list[str] = []
    with atomic_period_folder(
        out, "2026-10", said.append, reopen="late rows", role="analyst"
    ) as new:
        assert [r["event"] for r in read_log(new)] == ["signed", "reopened"]
        (new / "packet.html").write_text("<p>again</p>")
    assert said == ["reopened   2026-10, signed off pass by Dana Reyes on 2026-11-02 09:30 UTC: "
                    "late rows"]  # fmt: skip
    assert [r["event"] for r in read_log(folder)] == ["signed", "reopened"]
    assert sign_off_state(folder).locked is False  # no SHA256SUMS of the new run: not signed


def test_a_fail_sign_off_does_not_lock(tmp_path):
    out = tmp_path / "reports"
    _signed_folder(out, "fail")
    with atomic_period_folder(out, "2026-10") as new:
        assert [r["event"] for r in read_log(new)] == ["signed", "re-run"]


def test_an_edited_sign_off_log_is_one_line_and_stops_the_run(tmp_path):
    out = tmp_path / "reports"
    folder = _signed_folder(out, "pass")
    (folder / "sign_off.json").write_text('{"records": [{"result": "pass"}]}')
    with pytest.raises(InputError) as bad, atomic_period_folder(out, "2026-10", reopen="why"):
        pytest.fail("an unreadable log must stop the run")
    assert bad.value.line() == (
        f"{folder / 'sign_off.json'}: is not a sign-off log the kit wrote (expected "
        '{"period": ..., "records": [{"event": ...}, ...]}); restore it from your copy, or move '
        "it away to start a new log"
    )
    assert json.loads((folder / "sign_off.json").read_text()) == {"records": [{"result": "pass"}]}


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: (f / "SHA256SUMS").unlink(),
         "has no SHA256SUMS: the run that wrote it did not finish; run the period again"),
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
