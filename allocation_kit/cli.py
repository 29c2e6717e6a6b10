"""The `allocation-kit` command: demo, init, run, validate, sign-off, status, pricing import
and pricing diff.

Bad config or input ends with one line on stderr naming the file, the row or key, and what was
expected; exit code 2 for configuration, 3 for data, 4 for a signed-off period run without
--reopen. Never a traceback for the user's mistakes.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from . import __version__
from .config import Workspace, load_workspace
from .errors import ConfigError, InputError, KitError
from .periods import Period, parse_period

__all__ = ["main", "run_period"]


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def run_period(
    config: Path,
    period_label: str,
    out: Path | None = None,
    progress: Callable[[str], None] | None = _progress,
    reviewer_role: str = "",
    reopen: str | None = None,
) -> Path:
    """Review one period: execute the packet notebook (which writes the evidence), render it to
    HTML with a statement per team and rewrite the index. The period folder is replaced only
    when all of it succeeded, and a signed-off one only with a `reopen` reason."""
    from .history import rerun_changes, run_record
    from .report import (
        atomic_period_folder,
        execute_packet,
        render_packet,
        write_checksums,
        write_index,
    )
    from .signoff import (
        check_journal,
        journal_lock,
        journal_records,
        overlapping_locks,
        record_run,
        signed_text,
        workspace_journal,
    )
    from .statements import write_statements

    period = parse_period(period_label)
    workspace = load_workspace(config)  # config errors surface here, before any kernel starts
    out = _folder_to_write(out or workspace.root / "reports", "--out")
    started = time.perf_counter()
    before = run_record(out / period.label)  # read now: the rerun replaces it
    role = reviewer_role or workspace.kit.review.reviewer_role
    journal = workspace_journal(workspace)
    restart = check_journal(journal, out, period.label, reopen is not None)  # its log is whole
    for label, other in overlapping_locks(out, period) if progress else []:
        signed = signed_text(other) if other else "(its review log is missing)"
        progress(f"note       {period.label} overlaps {label}, signed off {signed}: its charges "
                 f"for those days are approved there; book them from {label}")  # fmt: skip
    # the journal's lock is taken before the folder lands and held until its records are
    # journaled: a run stopped while it waits leaves the previous folder, never an unjournaled one
    with contextlib.ExitStack() as journaling:
        with atomic_period_folder(out, period.label, progress, reopen=reopen, role=role) as folder:
            notebook = execute_packet(
                workspace.config_path, period.label, out, folder, reviewer_role
            )
            manifest = json.loads((folder / "evidence" / "manifest.json").read_text())
            if progress:
                progress(f"notebook   {time.perf_counter() - started:6.2f} s")
            render_packet(notebook, folder / "packet.html", manifest)
            statements = write_statements(folder)
            write_checksums(folder)  # it covers everything written above
            written = record_run(folder, period.label, role, reopen)  # last: it records SHA256SUMS
            journaling.enter_context(journal_lock(journal))
        journal_records(journal, out, period.label, written, restart)
    index = write_index(out)
    after = run_record(out / period.label)
    if progress:
        progress(f"packet     {time.perf_counter() - started:6.2f} s → {out / period.label}")
        for line in rerun_changes(before, after) if before and after else []:
            progress(f"rerun      {line}")
        if statements:
            progress(
                f"statements {len(statements)} team page(s) in {out / period.label / 'statements'}"
            )
        progress(f"index      {index}")
    return out / period.label


def _folder_to_write(path: Path, option: str) -> Path:
    """`path`, resolved, if it is a folder or can become one; ConfigError otherwise."""
    path = path.resolve()
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        what = "is a file" if blocker == path else f"is inside {blocker}, a file"
        raise ConfigError(path, option, f"{what}; expected a folder")
    return path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="allocation-kit")
def cli() -> None:
    """Allocate, reconcile and review AI API spend from your own request ledger."""


@cli.command()
@click.option("--config", "config", required=True, type=click.Path(path_type=Path),
              help="The workspace's kit.yaml.")  # fmt: skip
@click.option("--period", "periods", required=True, multiple=True,
              help="2026-10, 2026-W42 or 2026-10-01..2026-10-15; repeat it to review several "
              "periods, run oldest first.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: reports/ beside kit.yaml).")  # fmt: skip
@click.option("--reviewer-role", default="", help="Overrides review.reviewer_role of kit.yaml.")
@click.option("--reopen", metavar="REASON", default=None,
              help="Review a signed-off period again; the period's sign-off log records "
              "REASON.")  # fmt: skip
def run(
    config: Path, periods: tuple[str, ...], out: Path | None, reviewer_role: str, reopen: str | None
) -> None:
    """Review a period: packet.html, packet.ipynb and evidence files under OUT/PERIOD.

    Several periods (a backfill) run oldest first, so that each compares with the ones before
    it; the first that fails stops the run, and the periods before it stay written. A period
    signed off with `sign-off` (pass or needs follow-up) is locked: it runs again only with
    --reopen."""
    from .history import outdated_by
    from .signoff import (
        carried_log,
        check_journal,
        reopen_reason,
        text_option,
        workspace_journal,
    )

    reopen = reopen_reason(reopen, "--reopen")
    # the role goes into the review log and the evidence, as sign-off's --role does
    reviewer_role = text_option(reviewer_role, "--reviewer-role") if reviewer_role else ""
    queue = sorted({p.label: p for p in map(parse_period, periods)}.values(),
                   key=lambda p: (p.start, p.end))  # fmt: skip
    workspace = load_workspace(config)
    reports = out or workspace.root / "reports"
    for period in queue:  # a locked period stops the backfill before anything is run
        check_journal(workspace_journal(workspace), reports, period.label, reopen is not None)
        if (reports / period.label).is_dir():
            carried_log(reports / period.label, reopen, "")
    folders = []
    for n, period in enumerate(queue, start=1):
        of = f" ({n} of {len(queue)})" if len(queue) > 1 else ""
        click.echo(
            f"allocation-kit {__version__}: reviewing {period.label}{of} with {config}", err=True
        )
        folders.append(
            run_period(config, period.label, out, reviewer_role=reviewer_role, reopen=reopen)
        )
    # later reviews in the folder that compared with other evidence of these periods than now
    found: dict[str, tuple[str, str]] = {}
    for period, folder in zip(queue, folders, strict=True):
        for later, how in outdated_by(folder.parent, period):
            found.setdefault(later, (period.label, how))
    for later, (label, how) in sorted(found.items()):
        compared = "without" if how == "new" else "with an earlier run of"
        click.echo(
            f"  outdated   {later} was compared {compared} {label}: re-run {later} for its "
            "changes and anomalies against this run",
            err=True,
        )
    for folder in folders:
        click.echo(str(folder / "packet.html"))


@cli.command()
@click.option("--config", "config", required=True, type=click.Path(path_type=Path),
              help="The workspace's kit.yaml.")  # fmt: skip
@click.option("--period", "periods", required=True, multiple=True,
              help="2026-10, 2026-W42 or 2026-10-01..2026-10-15; repeat it for several periods "
              "(checked in turn, stopping at a blocking failure).")  # fmt: skip
def validate(config: Path, periods: tuple[str, ...]) -> None:
    """Run the data-quality suites on the period's inputs; exit 1 if a blocking suite fails."""
    for label in periods:
        if len(periods) > 1:
            click.echo(f"{label}:")
        _validate_period(config, label)


def _validate_period(config: Path, period: str) -> None:
    """`validate` of one period."""
    from .billing import workspace_billing
    from .errors import ConfigError as BlockingFailure
    from .load import connect, load_requests
    from .pipeline import (
        nothing_in_period,
        period_filter_sql,
        period_validation,
        unpriced_in_period,
    )
    from .present import counted
    from .report import billing_validation
    from .validate import validation_table

    workspace, parsed = load_workspace(config), parse_period(period)
    con = connect()
    loaded = load_requests(
        con,
        workspace.kit.requests,
        workspace.root,
        str(workspace.config_path),
        aliases=workspace.ledger_aliases,
        callers=workspace.ledger_callers,
        priced=workspace.priced_models,
    )
    (inside,) = con.execute(
        f"SELECT count(*) FROM requests WHERE {period_filter_sql(parsed)}"
    ).fetchone()
    if not inside:  # as `run` says: a mistyped period must not look clean
        raise nothing_in_period(con, loaded, parsed)
    try:
        suites, parameters = period_validation(con, workspace, parsed)
        billing = workspace_billing(con, workspace)
        if billing is not None:  # the bill's suite too, as `run` runs it
            suites += billing_validation(con, workspace, parameters, billing)
    except BlockingFailure as exc:
        if "blocking expectation failed" not in exc.expected:
            raise
        raise ValidationFailed(exc.source, exc.where, exc.expected) from None
    click.echo(validation_table(suites))
    unpriced = unpriced_in_period(con, workspace, parsed)
    for model, calls, first_call, first, last in unpriced:  # run lists them as exceptions
        if first is None:
            priced = sorted({m.model for m in workspace.pricing.models})
            close = difflib.get_close_matches(model, priced, n=1)
            since = "pricing.yaml has no entry" + (f" (did you mean {close[0]}?)" if close else "")
            since += (
                "; another name of a priced model (a gateway's model group, a dated name) goes "
                "under its aliases"
            )
        elif first > first_call:
            since = f"its first price entry starts {first:%Y-%m-%d}"
        elif last is not None and last <= first_call:
            since = f"its last price entry ends {last:%Y-%m-%d}"
        else:
            since = "its entries leave these calls' dates uncovered"
        click.echo(
            f"unpriced: {counted(calls, 'billable call')} of {model} in {parsed.label} "
            f"{'has' if calls == 1 else 'have'} no price in effect ({since}); run lists "
            f"{'it' if calls == 1 else 'them'} as unpriced exceptions",
            err=True,
        )


@cli.command("sign-off")
@click.option("--config", "config", required=True, type=click.Path(path_type=Path),
              help="The workspace's kit.yaml.")  # fmt: skip
@click.option("--period", required=True, help="The reviewed period: 2026-10, 2026-W42, …")
@click.option("--result", required=True, type=click.Choice(["pass", "needs_follow_up", "fail"]),
              help="The decision: pass or needs_follow_up charge back (and lock the period); "
              "fail does not.")  # fmt: skip
@click.option("--by", "signed_by", required=True, help="Name of the person signing.")
@click.option("--role", default="", help="Their role (default: review.reviewer_role of kit.yaml).")
@click.option("--note", default="",
              help="Why; required for a result kinder than the proposal, or to replace a "
              "sign-off of the same run.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder the period was run into (default: reports/ beside "
              "kit.yaml).")  # fmt: skip
def sign_off(config: Path, period: str, result: str, signed_by: str, role: str, note: str,
             out: Path | None) -> None:  # fmt: skip
    """Record the reviewer's decision on a period's packet in its review log, OUT/PERIOD/
    sign_off.json.

    The record holds the SHA-256 of the folder's SHA256SUMS, so it approves exactly the packet
    and evidence that are there: they must still be what the run wrote, from inputs that have
    not changed since. pass and needs_follow_up lock the period: `run` replaces it only with
    --reopen REASON."""
    from .report import write_index
    from .signoff import (
        SIGN_OFF_FILE,
        check_journal,
        journal_lock,
        journal_records,
        period_lock,
        record_digest,
        signed_text,
        text_option,
        workspace_journal,
    )

    signed_by = text_option(signed_by, "--by")
    if not signed_by:
        raise ConfigError(None, "--by", "give the name of the person signing")
    role, note = text_option(role, "--role"), text_option(note, "--note", limit=2000)
    parsed = parse_period(period)
    workspace = load_workspace(config)
    reports = (out or workspace.root / "reports").resolve()
    if reports.exists() and not reports.is_dir():
        raise ConfigError(None, "--out", f"{reports} is a file; expected the reports folder")
    if (reports / "evidence" / "manifest.json").is_file():
        raise ConfigError(None, "--out", f"{reports} is a period's folder; give the folder that "
                          f"holds the periods ({reports.parent})")  # fmt: skip
    folder = reports / parsed.label
    manifest_path = folder / "evidence" / "manifest.json"
    if not manifest_path.is_file():
        to = f" --out {out}" if out else ""
        raise ConfigError(
            folder, None, f"no review of {parsed.label} to sign; run `allocation-kit run "
            f"--config {config} --period {parsed.label}{to}` first (or give the --out it was run "
            "into)"
        )  # fmt: skip
    # no run replaces the folder meanwhile, and no sign-off of an overlapping period
    journal = workspace_journal(workspace)
    with (
        period_lock(reports, "sign-off"),
        period_lock(reports, parsed.label),
        journal_lock(journal),  # what it checks is whole, and stays so until it journals
    ):
        check_journal(journal, reports, parsed.label)
        written, page, replaced = _sign(workspace, reports, parsed, result, signed_by, role, note)
        journal_records(journal, reports, parsed.label, written)
    record = written[-1]
    if replaced is not None:
        click.echo(f"  replaces   the sign-off {signed_text(replaced)}", err=True)
    if record.get("outdated"):
        click.echo(f"  note       this review is outdated: {record['outdated']}; its "
                   "comparisons with earlier periods are not current (the record says so)",
                   err=True)  # fmt: skip
    if record.get("same_account_as_run"):
        click.echo(f"  note       the account that ran the period ({record['user']}) signs it "
                   "too: the record says so; a reviewer apart from the preparer is the usual "
                   "control", err=True)  # fmt: skip
    if record["not_covered"]:
        click.echo(f"  note       not covered by the sign-off (not written by the kit): "
                   f"{', '.join(record['not_covered'])}", err=True)  # fmt: skip
    lock = (
        f"; {parsed.label} is locked: `run` replaces it only with --reopen REASON"
        if result != "fail"
        else "; the period stays open to re-run"
    )
    click.echo(f"  record     {page} (to print) and {folder / SIGN_OFF_FILE}", err=True)
    click.echo(f"  receipt    {record_digest(record)} (the record's SHA-256: keep it with the "
               "journal entry; an edit of the record changes it)", err=True)  # fmt: skip
    click.echo(f"signed off {parsed.label}: {signed_text(record)}{lock}", err=True)
    write_index(reports)
    click.echo(str(page))


def _sign(workspace: Workspace, reports: Path, period: Period, result: str, signed_by: str,
          role: str, note: str) -> tuple[list[dict], Path, dict | None]:  # fmt: skip
    """`sign-off`'s checks and its record, under the locks: (the review log as written, its
    last record the sign-off; the page; the sign-off of the same run it replaces)."""
    from .history import outdated_baseline, outdated_text
    from .signoff import (
        LOCKING,
        PeriodLocked,
        account,
        append_record,
        not_covered,
        sign_off_state,
        unsignable,
        workspace_journal,
        write_log,
        write_sign_off_page,
    )

    folder = reports / period.label
    state = sign_off_state(folder)
    refused = unsignable(folder, state, workspace.root, _input_files(workspace))
    if refused:
        raise refused
    manifest = json.loads((folder / "evidence" / "manifest.json").read_text(encoding="utf-8"))
    spend_path = folder / "evidence" / "spend_review.json"
    spend = json.loads(spend_path.read_text(encoding="utf-8")) if spend_path.is_file() else {}
    proposed = (spend.get("sign_off") or {}).get("proposed_result")
    journal = workspace_journal(workspace)
    _sign_off_conflict(reports, period, state, result, note, proposed, journal)
    preparer = state.run.get("user")  # type: ignore[union-attr]
    if result in LOCKING and workspace.kit.review.segregation_of_duties and preparer == account():
        raise PeriodLocked(
            folder, None, f"the account that ran this review ({preparer}) cannot approve it: "
            "review.segregation_of_duties of kit.yaml asks for a reviewer apart from the "
            "preparer (signing fail is allowed)"
        )  # fmt: skip
    late = outdated_text(outdated_baseline(reports, period, manifest.get("inputs", [])))
    records = append_record(
        list(state.log),
        "signed",
        result=result,
        signed_by=signed_by,
        role=role or workspace.kit.review.reviewer_role,
        note=note,
        proposed_result=proposed,
        evidence_sha256=state.run["evidence_sha256"],  # type: ignore[index]
        outdated=late or None,
        not_covered=not_covered(folder),
        # segregation of duties: the account that ran the period approving it is said
        same_account_as_run=preparer == account(),
    )
    page = write_sign_off_page(folder, records)  # first: a log without its page is no record
    write_log(folder, period.label, records)
    return records, page, state.current


def _input_files(workspace: Workspace) -> list[Path]:
    """The ledger and bill files their globs match now (none where none match)."""
    from .load import matching_files

    globs = [("requests", workspace.kit.requests.path)]
    globs += [("billing", source.path) for source in workspace.kit.billing or []]
    matched: list[Path] = []
    for key, pattern in globs:
        with contextlib.suppress(InputError):  # none match now: the run's are named missing
            matched += matching_files(workspace.root, pattern, key, str(workspace.config_path))
    return matched


def _sign_off_conflict(reports: Path, period: Period, state, result: str, note: str,
                       proposed: str | None, journal=None) -> None:  # fmt: skip
    """Raise when signing `result` would conflict with the proposal (a kinder result needs a
    note), with a sign-off of the same run (an approval stands; replacing one needs a note) or
    with another locked period sharing a day (a day's charges are approved once)."""
    from .signoff import (
        LOCKING,
        PeriodLocked,
        journal_entries,
        journal_gone,
        overlapping_locks,
        overridden,
        signed_text,
    )

    folder = reports / period.label
    if overridden(result, proposed) and not note:
        raise ConfigError(
            None,
            "--note",
            f"the packet proposes {proposed.replace('_', ' ')}; signing "  # type: ignore[union-attr]
            f"{result.replace('_', ' ')} needs a note saying why",
        )
    current = state.current
    if current is not None and current["result"] in LOCKING and result == "fail":
        raise PeriodLocked(
            folder, None, f"this run is signed off {signed_text(current)}, which stands: to "
            "reject it, reopen the period (`run --reopen REASON`), which archives what was "
            "signed, and sign the new run fail"
        )  # fmt: skip
    if current is not None and not note:
        raise ConfigError(
            None, "--note", f"this run is signed off {signed_text(current)} already; replacing "
            "it needs a note saying why"
        )  # fmt: skip
    if result in LOCKING and journal is not None:  # an overlapping period away from its folder
        entries, _ = journal_entries(journal)
        for label in journal_gone(journal, entries, reports):
            other = parse_period(label)
            if other.start < period.end and period.start < other.end:
                raise PeriodLocked(
                    folder, None, f"its days overlap {label}, whose review log the review "
                    f"journal holds and whose folder is gone: restore {reports / label} first "
                    "(the charges of a day are approved once)"
                )  # fmt: skip
    if result in LOCKING and (found := overlapping_locks(reports, period)):
        label, other = found[0]
        raise PeriodLocked(
            folder, None, f"its days overlap {label}, signed off "
            f"{signed_text(other) if other else '(its review log is missing)'}: the charges of "
            f"a day are approved once (reopen {label} to approve them here)"
        )  # fmt: skip


@cli.command()
@click.option("--config", "config", required=True, type=click.Path(path_type=Path),
              help="The workspace's kit.yaml.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder the periods were run into (default: reports/ beside "
              "kit.yaml).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")  # fmt: skip
def status(config: Path, out: Path | None, fmt: str) -> None:
    """List the reviewed periods, newest first: verdict, proposal and sign-off, whether the
    period is locked, and what needs attention (evidence changed since it was signed, a missing
    or broken review log, an outdated comparison). Exit 1 if anything does."""
    from .report import period_rows
    from .signoff import overlapping_locks, record_digest

    fields = ("result", "signed_by", "role", "at", "note", "proposed_result", "evidence_sha256")

    workspace = load_workspace(config)
    reports = (out or workspace.root / "reports").resolve()
    unreadable: list[str] = []
    rows = [
        {
            "period": r["period"],
            "dates": r["dates"],
            "reconciliation": r["verdict"],
            "proposed": r["sign_off"],
            "signed": r["signed"],
            "signed_by": r["signed_note"] if r["signed"] else None,
            "sign_off": {k: r["record"].get(k) for k in fields}
            | {"receipt": record_digest(r["record"])}
            if r["record"]
            else None,
            "locked": r["locked"],
            "attention": "; ".join(
                filter(None, [r["alarm"], f"outdated: {r['outdated']}" if r["outdated"] else ""])
            ) or None,
        }
        for r in period_rows(reports, unreadable)
    ]  # fmt: skip
    for row in rows:  # a day's charges approved twice (a period signed while another was away)
        if row["locked"] and row["dates"]:
            twice = [label for label, _ in overlapping_locks(reports, parse_period(row["period"]))]
            if twice:
                problem = (
                    f"its days overlap {', '.join(twice)}, also approved: a day is charged twice"
                )
                row["attention"] = "; ".join(filter(None, [row["attention"], problem]))
    journal_trouble = _journal_attention(workspace, reports, rows)
    if fmt == "json":
        for r in rows:
            del r["signed_by"]  # the text's; `sign_off` has its fields
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        click.echo(f"no reviewed period in {reports}")
    else:
        for r in rows:
            signed = (
                f"signed {r['signed']} by {r['signed_by'].removeprefix('signed by ')}"
                if r["signed"]
                else "not signed"
            ) + (" · locked" if r["locked"] else "")
            del r["signed_by"]
            click.echo(
                f"{r['period']:<24} {r['reconciliation']:<13} proposed {r['proposed']:<16} "
                f"{signed}" + (f"\n{'':<24} attention: {r['attention']}" if r["attention"] else "")
            )
    if unreadable and fmt == "text":
        click.echo(f"unreadable evidence (see above): {', '.join(unreadable)}")
    for line in journal_trouble:
        click.echo(f"review journal: {line}", err=fmt == "json")
    if unreadable or journal_trouble or any(r["attention"] for r in rows):
        raise SystemExit(1)


def _journal_attention(workspace: Workspace, reports: Path, rows: list[dict]) -> list[str]:
    """`status`: add to each row's attention how its review log disagrees with the review
    journal; return what is wrong beyond the rows (the journal itself missing or broken, a
    period it holds whose folder is gone)."""
    from .signoff import (
        journal_entries,
        journal_gone,
        journal_problem,
        read_log,
        workspace_journal,
    )

    journal = workspace_journal(workspace)
    if journal is None:
        return []
    try:
        entries, _ = journal_entries(journal)
    except KitError as exc:
        return [exc.line()]
    for row in rows:
        try:
            log = read_log(reports / row["period"])
        except InputError:  # named in its attention already
            continue
        problem = journal_problem(journal, entries, reports, row["period"], log)
        if problem:
            row["attention"] = "; ".join(filter(None, [row["attention"], problem]))
    return [
        f"{label}: it holds the period's review log, and {reports / label} is gone; restore it "
        "from your copy, or reopen the period (run --reopen REASON)"
        for label in journal_gone(journal, entries, reports)
    ]


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("allocation-kit-demo"),
              show_default=True, help="Folder for the demo workspace and its reports.")  # fmt: skip
@click.option("--rows", type=click.IntRange(min=1000), default=100_000, show_default=True,
              help="Requests per demo month.")  # fmt: skip
def demo(out: Path, rows: int) -> None:
    """Write the demo workspace and review every demo period."""
    from .demo import DEMO_PERIODS, write_demo_workspace

    workspace = out / "workspace"
    click.echo(f"Writing the demo workspace ({rows:,} requests a month) to {workspace}", err=True)
    config = write_demo_workspace(workspace, rows_per_month=rows)
    reports = out / "reports"
    for label in DEMO_PERIODS:
        click.echo(f"Reviewing {label}", err=True)
        run_period(config, label, reports)
    click.echo("\nDone. Open the index of review packets in a browser:", err=True)
    click.echo(str((reports / "index.html").resolve()))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--demo", "with_demo", is_flag=True, help="Fill it with the demo company instead.")
@click.option("--force", is_flag=True, help="Overwrite an existing kit.yaml.")
def init(directory: Path, with_demo: bool, force: bool) -> None:
    """Scaffold a workspace: kit.yaml, registry.yaml, pricing.yaml and a sample ledger."""
    directory = _folder_to_write(directory, "DIRECTORY")
    if (directory / "kit.yaml").exists() and not force:
        raise ConfigError(directory / "kit.yaml", None, "already exists; use --force to replace")
    if with_demo:
        from .demo import write_demo_workspace

        config = write_demo_workspace(directory)
    else:
        from .scaffold import write_starter_workspace

        config = write_starter_workspace(directory)
    click.echo(f"Workspace ready: {config}", err=True)
    click.echo(f"Next: allocation-kit run --config {config} --period 2026-10", err=True)


@cli.group()
def pricing() -> None:
    """Import a pricing snapshot from a public price table, or compare two snapshots."""


@pricing.command("import")
@click.option("--from", "source", type=click.Choice(["litellm"]), required=True,
              help="Table format: LiteLLM's model_prices_and_context_window.json.")  # fmt: skip
@click.argument("table", type=click.Path(path_type=Path))
@click.option("--models", default=None, help="Comma-separated table keys to import.")
@click.option("--provider", default=None, help="Import every entry of this litellm_provider.")
@click.option("--reviewed-by", required=True, help="Role of the person reviewing the prices.")
@click.option("--source-url", required=True, help="Where the table was read.")
@click.option("--effective-from", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day the prices apply (default: the review day).")  # fmt: skip
@click.option("--reviewed-on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Day of the review (default: today).")  # fmt: skip
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="pricing.yaml to write."
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--update", is_flag=True,
              help="Update the reviewed snapshot --out: prices that changed start on "
              "--effective-from and the earlier entries end there; everything else, hand edits "
              "included, is kept.")  # fmt: skip
@click.option("--keep-dated", is_flag=True,
              help="Keep a dated name priced as its model (gpt-4o-2024-08-06) as an entry of its "
              "own, not the model's alias.")  # fmt: skip
def pricing_import(source: str, table: Path, models: str | None, provider: str | None,
                   reviewed_by: str, source_url: str, effective_from: datetime | None,
                   reviewed_on: datetime | None, out: Path, force: bool, update: bool,
                   keep_dated: bool) -> None:  # fmt: skip
    """Convert a price table into a dated pricing snapshot; report what was not imported."""
    from .config import PricingSnapshot, parse_document
    from .pricing_import import litellm_import, litellm_snapshot_yaml, read_litellm_table

    if models is not None and provider is not None:
        raise click.UsageError("give --models or --provider, not both")
    if update and force:
        raise click.UsageError("give --update or --force, not both")
    if update and not out.is_file():
        raise ConfigError(out, None, "does not exist; --update updates a reviewed snapshot "
                          "(import without --update to write a new one)")  # fmt: skip
    if out.exists() and not (force or update):  # a reviewed snapshot is replaced on purpose
        raise ConfigError(
            out,
            None,
            "already exists; write the import elsewhere and compare with `allocation-kit "
            "pricing diff`, or pass --force to replace it",
        )
    day = reviewed_on.date() if reviewed_on else date.today()
    wanted = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    before = parse_document(out, PricingSnapshot) if update else None
    if before is not None and wanted is None and provider is None:  # the snapshot's own models
        wanted = sorted({e.model for e in before.models})
    result = litellm_import(
        read_litellm_table(table),
        reviewed_by=reviewed_by,
        source_url=source_url,
        reviewed_on=day,
        effective_from=effective_from.date() if effective_from else day,
        models=wanted,
        provider=provider,
        keep_dated=keep_dated or before is not None,  # an update decides on dated names itself
    )
    for model, reason in result.skipped.items():
        click.echo(f"not imported: {model}: {reason}")
    for name, count in result.unmapped_fields().items():
        click.echo(f"left out: {name} ({count} model{'s' if count > 1 else ''})")
    if result.snapshot is None:
        which = f"provider {provider!r}" if provider else "the selection"
        raise InputError(table, None, f"no entry of {which} could be imported")
    if before is not None:
        _update_snapshot(out, before, result, table.name, effective_from is None, keep_dated)
        return
    out.write_text(litellm_snapshot_yaml(result, table.name), encoding="utf-8")
    entries = result.snapshot.models
    click.echo(
        f"imported {len(entries)} model(s) ({sum(bool(e.batch) for e in entries)} with batch "
        f"prices, {sum(bool(e.tiers) for e in entries)} with long-context tiers), "
        f"{len(result.skipped)} not imported"
        + (f", {len(result.aliases)} dated name(s) as aliases" if result.aliases else "")
        + f": {out}"
    )
    if effective_from is None:  # a snapshot dated today leaves last month's requests unpriced
        earlier = (day.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month's first
        which = "the review day" if reviewed_on else "today"
        click.echo(
            f"note: entries take effect from {day} ({which}); pass --effective-from {earlier} "
            "to price earlier periods",
            err=True,
        )


def _update_snapshot(out: Path, before, result, table_name: str, default_day: bool,
                     keep_dated: bool) -> None:  # fmt: skip
    """`pricing import --update`: write the reviewed snapshot `out` (read as `before`) updated
    with the import (`updated_snapshot`), whole or not at all, and show what changed as
    `pricing diff` does."""
    from .pricing_diff import changes_table, snapshot_changes
    from .pricing_import import snapshot_yaml, updated_snapshot
    from .signoff import write_whole

    done = updated_snapshot(before, result.snapshot, str(out), keep_dated)
    start = result.snapshot.models[0].effective_from.date()
    header = [
        f"Pricing snapshot updated by `allocation-kit pricing import --from litellm --update` "
        f"from {table_name}: prices that changed start on {start}, and the entries they "
        "replace end there, so earlier periods are priced as before. Review every entry "
        "before use.",
        "",
    ]
    notes = {m: n for m, n in result.comments().items() if m in {*done.repriced, *done.added}}
    write_whole(out, snapshot_yaml(done.snapshot, header=header, notes=notes))
    click.echo(changes_table(snapshot_changes(before, done.snapshot), before, done.snapshot,
                             (f"{out} before", str(out))), nl=False)  # fmt: skip
    click.echo(
        f"updated {out}: {len(done.repriced)} model(s) repriced from {start}, "
        f"{len(done.added)} added, {len(done.unchanged)} priced the same, {len(done.kept)} kept "
        "as they were (not in the import, ended, or priced through an alias)"
    )
    if default_day:
        click.echo(f"note: the new prices take effect from {start} (the review day); pass "
                   "--effective-from for the day they changed", err=True)  # fmt: skip


@pricing.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text",
              show_default=True, help="Output format.")  # fmt: skip
def pricing_diff(old: Path, new: Path, fmt: str) -> None:
    """Show what changed from the OLD pricing snapshot to the NEW one (exit 0 either way)."""
    from .config import PricingSnapshot, parse_document
    from .pricing_diff import changes_csv, changes_json, changes_table, snapshot_changes

    before = parse_document(old, PricingSnapshot)
    after = parse_document(new, PricingSnapshot)
    changes = snapshot_changes(before, after)
    if fmt == "csv":
        click.echo(changes_csv(changes), nl=False)
    elif fmt == "json":
        click.echo(changes_json(changes, before, after, (str(old), str(new))), nl=False)
    else:
        click.echo(changes_table(changes, before, after, (str(old), str(new))), nl=False)


class ValidationFailed(KitError):
    """A blocking expectation suite failed: `validate` exits 1."""

    exit_code = 1


def _quiet_exit(code: int) -> None:
    """Exit now when Great Expectations was imported: duckdb's nanobind bindings would print a
    leak report at interpreter exit after our output (an upstream issue with duckdb-engine)."""
    if "great_expectations" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (a scheduler's stop, `timeout`, `kill`): end like Ctrl-C, through every cleanup
    (the half-written period folder, the notebook's kernel), with one line and 128 + 15."""
    click.echo("terminated", err=True)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning the user's mistakes into one line and an exit code."""
    if argv is None:  # the console script: a stop request ends the run cleanly
        signal.signal(signal.SIGTERM, _terminated)
    try:
        cli.main(args=argv, prog_name="allocation-kit", standalone_mode=False)
    except KitError as exc:
        click.echo(f"error: {exc.line()}", err=True)
        _quiet_exit(exc.exit_code) if argv is None else sys.exit(exc.exit_code)
    except OSError as exc:  # a folder or file the kit could not write or read
        where = exc.filename or exc.filename2
        click.echo(f"error: {where}: {exc.strerror or exc}" if where else f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if argv is None:  # the console script, not a caller in this process (tests)
        _quiet_exit(0)
