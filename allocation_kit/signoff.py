"""A period's review log: each run of the period and each recorded sign-off, and the lock a
sign-off puts on the period.

OUT/PERIOD/sign_off.json is written by every `allocation-kit run` (a `run` record holding the
SHA-256 of the folder's SHA256SUMS, which names every file of the run) and by `allocation-kit
sign-off` (a `signed` record: result, who, role, when, note, the proposal it accepts or
overrides, and the same SHA-256, binding it to exactly the packet and evidence it approves).
Every record holds the SHA-256 of the one before it, so a record edited, dropped or reordered is
named, and the log is carried into each new run of the period, so its history stays with its
evidence. A `pass` or `needs_follow_up` sign-off of the latest run locks the period: a run
replaces it only with a reason to reopen it, recorded as a `reopened` record, and the approved
folder is kept under OUT/archive/, not deleted.

The log is tamper-evident, not tamper-proof: whoever can write the folder can rewrite the whole
chain. Keep the reports folder where changes are kept too (version control, write-once storage),
and name a review journal (review.journal of kit.yaml) on other storage: every record is
anchored there as it lands, and a log that disagrees with it stops the next run or sign-off.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from .errors import ConfigError, InputError, KitError
from .periods import Period

__all__ = [
    "LOCKING",
    "RESULTS",
    "SIGN_OFF_FILE",
    "SIGN_OFF_PAGE",
    "Carried",
    "Journal",
    "PeriodLocked",
    "SignOffState",
    "account",
    "append_record",
    "carried_log",
    "changed_inputs",
    "check_journal",
    "checksum_problem",
    "evidence_digest",
    "evidence_problem",
    "journal_entries",
    "journal_gone",
    "journal_lock",
    "journal_problem",
    "journal_records",
    "log_rows",
    "not_covered",
    "overlapping_locks",
    "overridden",
    "period_lock",
    "read_log",
    "record_digest",
    "record_run",
    "reopen_reason",
    "sign_off_state",
    "signed_text",
    "text_option",
    "unsignable",
    "workspace_journal",
    "write_log",
    "write_sign_off_page",
    "write_whole",
]

SIGN_OFF_FILE = "sign_off.json"  # the review log, in the period folder beside SHA256SUMS
SIGN_OFF_PAGE = "sign_off.html"  # the latest sign-off of the run, for print; not carried over
RESULTS = ("pass", "needs_follow_up", "fail")  # the packet's sign-off results, most lenient first
LOCKING = frozenset({"pass", "needs_follow_up"})  # a charge back was approved: the period locks
EVENTS = ("run", "signed", "reopened")
# a line of the review journal: which log, which record of it (its SHA-256), chained
JOURNAL_FIELDS = (
    "workspace", "reports", "period", "event", "at", "user", "record_sha256", "previous_sha256"
)  # fmt: skip
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PeriodLocked(KitError):
    """The period is signed off; re-running it needs a reason to reopen it: exit code 4."""

    exit_code = 4


@dataclass(frozen=True)
class SignOffState:
    """What a period folder's review log says: its latest run, the sign-off of that run, the
    latest sign-off of an earlier run, and whether the log is missing where a run wrote one."""

    log: tuple[dict, ...]
    run: dict | None  # the latest run record
    current: dict | None  # the latest sign-off after it: of the evidence that run wrote
    earlier: dict | None  # the latest sign-off before it: of an earlier run
    reopened: bool  # the latest run reopened a signed-off period
    missing: bool = False  # a run of this kit wrote the folder, and sign_off.json is gone

    @property
    def locked(self) -> bool:
        """Signed off pass or needs follow-up; a missing log may have been, so it locks too."""
        return self.missing or (self.current is not None and self.current["result"] in LOCKING)


@contextmanager
def period_lock(out: Path, name: str) -> Iterator[None]:
    """Hold out/.<name>.lock while a run replaces the period folder or a sign-off writes its
    log, so that neither undoes the other; PeriodLocked (exit 4) when another process holds it.
    Released however the process ends. (No lock where the system has no flock.)"""
    try:
        import fcntl
    except ImportError:  # Windows: runs and sign-offs are not guarded against each other
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / f".{name}.lock").open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise PeriodLocked(
                out / name, None, f"a run or sign-off of {name} is under way"
                + (f" (process {holder})" if holder.isdigit() else "")
                + "; try again once it has finished"
            ) from None  # fmt: skip
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def overridden(result: str, proposed: str | None) -> bool:
    """Whether signing `result` is kinder than the packet's `proposed` result (a pass where it
    proposes fail): an override, which needs a note and is shown as one."""
    return proposed in RESULTS and RESULTS.index(result) < RESULTS.index(proposed)


def reopen_reason(value: str | None, option: str) -> str | None:
    """A reason to reopen as given (`--reopen`, `-p reopen`): None when none was given, else
    one line of text, never blank (ConfigError naming the option)."""
    if value is None:
        return None
    reason = text_option(value, option, limit=2000)
    if not reason:
        raise ConfigError(None, option, "give the reason for reopening the period")
    return reason


def evidence_problem(folder: Path, evidence_sha256: str | None) -> str | None:
    """The first way the folder's evidence differs from the run recorded with `evidence_sha256`
    (None: it is what the run wrote): a file of the kit's changed, missing or added since, or a
    SHA256SUMS rewritten. Files of the reviewer's are not the kit's, and not checked."""
    from .report import kit_named, written_files

    kit = [f for f in written_files(folder) if kit_named(folder, f)]
    problem = checksum_problem(folder, kit)
    if problem is None and evidence_digest(folder) != evidence_sha256:
        problem = "SHA256SUMS changed since the run wrote it (the review log records another)"
    return problem


def evidence_digest(folder: Path) -> str | None:
    """The SHA-256 of folder/SHA256SUMS (None without one): it names every file of the run."""
    sums = folder / "SHA256SUMS"
    return hashlib.sha256(sums.read_bytes()).hexdigest() if sums.is_file() else None


def record_digest(record: dict) -> str:
    """A record's SHA-256, as the next record's previous_sha256 holds it: the receipt of a
    sign-off to keep elsewhere (a later edit of the record changes it)."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _record_problem(record: object, previous: dict | None) -> str | None:
    """What is wrong with one record of the log (None: nothing)."""
    if not isinstance(record, dict):
        return "expected an object"
    event = record.get("event")
    if event not in EVENTS:
        return f"event {event!r}: expected one of {', '.join(EVENTS)}"
    if record.get("previous_sha256") != (record_digest(previous) if previous else ""):
        return (
            "previous_sha256 is not the SHA-256 of the record before it: that record was "
            "edited, or one between them dropped or moved"
        )
    try:
        datetime.fromisoformat(str(record.get("at")))
    except ValueError:
        return f"at {record.get('at')!r}: expected an ISO 8601 time"
    digest = record.get("evidence_sha256")
    if (event == "signed" or digest is not None) and not _SHA256.match(str(digest)):
        return "evidence_sha256: expected 64 hex digits"  # null: a run without SHA256SUMS
    if event == "signed":
        if record.get("result") not in RESULTS:
            return f"result {record.get('result')!r}: expected one of {', '.join(RESULTS)}"
        if not isinstance(record.get("signed_by"), str) or not record["signed_by"].strip():
            return "signed_by: expected the name of the person signing"
    return None


def read_log(folder: Path) -> list[dict]:
    """The records of folder/sign_off.json, oldest first ([] without the file); InputError
    naming the file and record when it is not a whole, unbroken log."""
    path = folder / SIGN_OFF_FILE
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        records = doc["records"]
        if not isinstance(records, list):
            raise TypeError("records")
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            path,
            None,
            'is not a review log the kit wrote (expected {"period": ..., "records": [...]}); '
            "restore it from your copy",
        ) from None
    period = doc.get("period")  # a partial or archived folder is named after its period too
    name = folder.name.lstrip(".")
    if not (isinstance(period, str) and (name == period or name.startswith(f"{period}."))):
        raise InputError(
            path, "period", f"{period!r}: the log of another period, not of {folder.name}; "
            "restore the folder's own from your copy"
        )  # fmt: skip
    for number, record in enumerate(records, start=1):
        problem = _record_problem(record, records[number - 2] if number > 1 else None)
        if problem:
            raise InputError(path, f"record {number}", f"{problem}; restore it from your copy")
    return records


def write_whole(path: Path, text: str) -> Path:
    """Write the file whole or not at all: a reader never sees half of it."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def write_log(folder: Path, period: str, records: list[dict]) -> Path:
    """Write folder/sign_off.json whole or not at all."""
    doc = {"period": period, "records": records}
    return write_whole(folder / SIGN_OFF_FILE, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def append_record(records: list[dict], event: str, **fields: object) -> list[dict]:
    """The records with one more, chained to the last and stamped with the time and the
    account of whoever ran the command."""
    record = {
        "event": event,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "user": account(),
        **fields,
        "previous_sha256": record_digest(records[-1]) if records else "",
    }
    return [*records, record]


def account() -> str:
    """The account running this command, as records name it (`user`): the system's name of
    the process's user id, not the USER or LOGNAME variables, which anyone can set (and so
    pass for another reviewer). Where there are no user ids (Windows), the login name."""
    if not hasattr(os, "getuid"):
        return getpass.getuser()
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no name for the uid (a container)
        return str(os.getuid())


def record_run(folder: Path, period: str, role: str, reason: str | None = None) -> list[dict]:
    """Append the run that wrote the folder to its review log (after SHA256SUMS, whose SHA-256
    it records; null when the run writes none, as the notebook run by papermill), with the
    reason it was given to run (`--reopen` of a period that was not locked), if any; return
    the log's records as written."""
    from . import __version__

    log = read_log(folder)
    if log and log[-1]["event"] == "reopened":  # said there
        reason = None
    records = append_record(
        log,
        "run",
        role=role,
        evidence_sha256=evidence_digest(folder),
        kit_version=__version__,
        **({"reason": reason} if reason else {}),
    )
    write_log(folder, period, records)
    return records


def sign_off_state(folder: Path, log: list[dict] | None = None) -> SignOffState:
    """What the folder's review log (or `log`, its records about to be written) says of the
    run there: its record, the sign-off of it, the latest of an earlier run, whether it was a
    reopening, and whether a log that should be there is missing."""
    log = read_log(folder) if log is None else log
    # the evidence changes at a run, and at a reopening (whose run may write no record yet)
    marks = [i for i, r in enumerate(log) if r["event"] in ("run", "reopened")]
    last = marks[-1] if marks else -1
    run = log[last] if marks and log[last]["event"] == "run" else None
    signed_after = [r for r in log[last + 1 :] if r["event"] == "signed"] if run else []
    signed_before = [r for r in log[: max(last, 0)] if r["event"] == "signed"]
    reopened = last >= 0 and (run is None or (last > 0 and log[last - 1]["event"] == "reopened"))
    return SignOffState(
        log=tuple(log),
        run=run,
        current=signed_after[-1] if signed_after else None,
        earlier=signed_before[-1] if signed_before else None,
        reopened=reopened,
        missing=not log and _written_by_a_run(folder),
    )


def _written_by_a_run(folder: Path) -> bool:
    """Whether a run of a kit that writes the review log wrote the folder: its manifest says
    so (every run of such a kit, `run` or the notebook, leaves a log)."""
    try:
        manifest = json.loads((folder / "evidence" / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("review_log") == SIGN_OFF_FILE


def _when(record: dict) -> str:
    moment = datetime.fromisoformat(record["at"])
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def signed_text(record: dict) -> str:
    """'pass by Dana Reyes (finance-controller) on 2026-11-25 04:50 UTC'."""
    role = f" ({record['role']})" if record.get("role") else ""
    return f"{record['result'].replace('_', ' ')} by {record['signed_by']}{role} on {_when(record)}"


def text_option(value: str, option: str, *, limit: int = 200) -> str:
    """A name, role or note as given on the command line, stripped: one line of printable
    text within `limit` characters, or a ConfigError naming the option."""
    # a no-break space pasted from a mail is a space; runs of spaces are one
    value = re.sub(" +", " ", value.replace("\u00a0", " ").replace("\u202f", " ")).strip()
    if not value.isprintable():
        raise ConfigError(
            None,
            option,
            "expected one line of printable text (no line breaks, tabs or invisible characters)",
        )
    if len(value) > limit:
        raise ConfigError(None, option, f"{len(value):,} characters; expected at most {limit:,}")
    return value


def checksum_problem(folder: Path, written: Iterable[Path]) -> str | None:
    """The first way the folder differs from its SHA256SUMS (None: it matches): a listed file
    missing or changed, or a file the kit wrote (`written`) that it does not list."""
    from .load import file_sha256

    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return "has no SHA256SUMS: the run that wrote it did not finish, or was not `run`"
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not _SHA256.match(digest) or not name:
            return f"SHA256SUMS line {number}: expected '<sha256>  <path>', found {line[:60]!r}"
        listed[name] = digest
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            return f"{name}: listed in SHA256SUMS but missing"
        if file_sha256(path) != digest:
            return f"{name}: changed since the run wrote it (its SHA-256 differs from SHA256SUMS)"
    for path in written:
        name = path.relative_to(folder).as_posix()
        if name not in listed:
            return f"{name}: not listed in SHA256SUMS (added after the run)"
    return None


def changed_inputs(manifest: dict, root: Path, ledger_files: Iterable[Path]) -> list[str]:
    """The run's inputs (its manifest's, the kit's own suites and earlier periods' evidence
    aside: `outdated_baseline` judges those) that differ now: 'pricing.yaml (changed)',
    '… (missing)', and ledger or bill files their globs match now that the run did not read
    ('… (new)': late rows, a credit memo)."""
    from .load import file_sha256

    found, read = [], set()
    for entry in manifest.get("inputs", []):
        if entry.get("role") == "baseline" or str(entry.get("path")).startswith("allocation-kit/"):
            continue
        path = root / str(entry["path"])
        read.add(path.resolve())
        if not path.is_file():
            found.append(f"{entry['path']} (missing)")
        elif file_sha256(path) != entry.get("sha256"):
            found.append(f"{entry['path']} (changed)")
    for path in ledger_files:
        if path.resolve() not in read:
            found.append(f"{os.path.relpath(path, root)} (new)")
    return found


def overlapping_locks(out: Path, period: Period) -> list[tuple[str, dict | None]]:
    """The other periods of the reports folder `out` whose days overlap `period` and that are
    locked: (label, the sign-off that locks it, None for a missing log). An unreadable log
    counts as not locked here: the run or sign-off of that period names it."""
    from .periods import parse_period

    found = []
    for folder in sorted(out.iterdir()) if out.is_dir() else []:
        if not folder.is_dir() or folder.name in (period.label, "archive"):
            continue
        try:
            other = parse_period(folder.name)
            state = sign_off_state(folder)
        except (ConfigError, InputError):
            continue
        if other.start < period.end and period.start < other.end and state.locked:
            found.append((other.label, state.current))
    return found


@dataclass(frozen=True)
class Carried:
    """What a new run of a period folder starts from: its review log so far (with this run's
    reopening), the reopening record (None: not a reopening), and the sign-off of the run it
    replaces (None: not signed), whose folder is then archived, not deleted."""

    records: list[dict]
    reopened: dict | None
    replaces_signed: bool


def carried_log(final: Path, reopen: str | None, role: str) -> Carried | None:
    """The review log a new run of the period folder `final` starts with (None: no log yet).
    A locked period raises PeriodLocked unless `reopen` gives the reason to review it again,
    which the log then records."""
    state = sign_off_state(final)
    again = "run it with --reopen REASON (papermill: -p reopen REASON)"
    if state.locked and reopen is None:
        if state.missing:
            raise PeriodLocked(
                final,
                None,
                f"its review log {SIGN_OFF_FILE} is missing, so whether it was signed off "
                f"cannot be told; restore the log, or {again}",
            )
        assert state.current is not None
        raise PeriodLocked(
            final,
            None,
            f"signed off {signed_text(state.current)}; to review it again, {again}, which the "
            "review log records",
        )
    if not state.log and not state.missing:
        return None
    if not state.locked:
        return Carried(list(state.log), None, state.current is not None)
    reopens = (
        "a period whose review log was missing" if state.missing else signed_text(state.current)  # type: ignore[arg-type]
    )
    records = append_record(
        list(state.log),
        "reopened",
        role=role,
        reason=reopen,
        reopens=reopens,
        replaces_evidence_sha256=evidence_digest(final),
    )
    return Carried(records, records[-1], True)


MEANINGS = {  # the packet's sign-off form, in its words
    "pass": "charge back as the chargeback to the bill shows",
    "needs_follow_up": "charge back, with each finding of the packet owned and dated",
    "fail": "do not charge back until the failing findings are resolved",
}


def log_rows(records: Iterable[dict]) -> list[tuple[str, str, str, str]]:
    """(recorded at, event, by, note or reason) of each record, for a table."""
    rows = []
    for r in records:
        at = r["at"][:16].replace("T", " ")
        account = f"account {r['user']}" if r.get("user") else ""
        if r["event"] == "signed":
            who = r["signed_by"] + (f" ({r['role']})" if r.get("role") else "")
            what = "signed " + r["result"].replace("_", " ")
            if r.get("proposed_result") and r["proposed_result"] != r["result"]:
                what += f" (proposed {r['proposed_result'].replace('_', ' ')})"
            rows.append((at, what, f"{who}; {account}" if account else who, r.get("note") or "—"))
            continue
        who = "; ".join(filter(None, [r.get("role"), account])) or "—"
        if r["event"] == "reopened":
            rows.append((at, "reopened", who, r.get("reason") or "—"))
            continue
        digest = r.get("evidence_sha256")
        rows.append((at, "run", who, f"SHA256SUMS {digest[:12]}…" if digest else "—"))
    return rows


def write_sign_off_page(folder: Path, records: list[dict] | None = None) -> Path:
    """folder/sign_off.html: the latest sign-off of the run as one page to print and file with
    the journal entry: who decided what and why, the charges it approves, the files it covers
    with their SHA-256 and the review log. Written whole or not at all."""
    import jinja2

    from .history import evidence_reader
    from .present import minor_word, money
    from .report import _dates_text, resource_dir

    state = sign_off_state(folder, records)
    record = state.current
    if record is None:
        raise ValueError("the run has no sign-off")
    evidence = folder / "evidence"
    manifest = json.loads((evidence / "manifest.json").read_text(encoding="utf-8"))
    currency = manifest["workspace"]["currency"]
    rec_path = evidence / "reconciliation.json"
    rec = json.loads(rec_path.read_text(encoding="utf-8")) if rec_path.is_file() else {}
    charges = []
    if (evidence / "chargeback.csv").is_file():
        with (evidence / "chargeback.csv").open(newline="", encoding="utf-8") as handle:
            charges = [
                (r["team"] or "kept by the reviewer", r["cost_center"], Decimal(r["charge"]))
                for r in evidence_reader(handle)
            ]
    spend_path = evidence / "spend_review.json"
    spend = json.loads(spend_path.read_text(encoding="utf-8")) if spend_path.is_file() else {}
    findings = [
        (f["result"].replace("_", " "), f["finding"], f["follow_up_owner"])
        for f in (spend.get("sign_off") or {}).get("findings", [])
    ]
    files = [
        tuple(reversed(line.split("  ", 1)))
        for line in (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    ]
    proposed = record.get("proposed_result")
    kinder = overridden(record["result"], proposed)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "signoff")),
        autoescape=True,
    )
    page = env.get_template("sign_off.html.j2").render(
        name=manifest["workspace"]["name"],
        period=manifest["period"]["label"],
        dates=_dates_text(manifest["period"]["start"], manifest["period"]["end"]),
        record=record,
        receipt=record_digest(record),
        signed_at=_when(record),
        locked=state.locked,
        override=proposed.replace("_", " ") if kinder else None,
        meaning=MEANINGS[record["result"]],
        ledger_total=money(Decimal(manifest["ledger_cost"]), currency),
        billed=money(Decimal(rec["billed_cost"]), currency)
        if rec.get("billed_cost")
        else "no bill comparable with the period",
        verdict=rec.get("result", "no bill"),
        invoice="; ".join(
            f"{key.replace('_', ' ')} {', '.join(values)}"
            for key, values in (rec.get("bill_references") or {}).items()
            if values
        ),
        charges=[(t, _cost_center_text(t, c, v), money(v, currency)) for t, c, v in charges],
        charges_total=money(sum((v for *_, v in charges), Decimal(0)), currency),
        findings=findings,
        minor=minor_word(currency),
        files=files,
        log=log_rows(state.log),
    )
    return write_whole(folder / SIGN_OFF_PAGE, page)


def _cost_center_text(team: str, center: str, charge: Decimal) -> str:
    """A charge's cost center on the sign-off page; the reviewer's line that keeps an amount
    without one says where to name it."""
    if center:
        return center
    if team == "kept by the reviewer" and charge:
        return "none: name one as kit.yaml chargeback.kept_cost_center"
    return "—"


def unsignable(
    folder: Path, state: SignOffState, root: Path, input_files: Iterable[Path]
) -> KitError | None:
    """Why the folder's run cannot be signed (None: it can): its review log missing or without
    a run of `run`, its evidence not what that run wrote, or its inputs changed since (`root`:
    the workspace's folder; `input_files`: the ledger and bill files their globs match now)."""
    again = (
        "run it with `--reopen REASON`, then sign the new packet"
        if state.locked
        else "re-run the period and sign the new packet"
    )
    if state.missing:
        return InputError(folder, None, f"its review log {SIGN_OFF_FILE} is missing; restore it")
    if state.run is None:
        return InputError(folder, None, f"no run of this kit version is in its review log; {again}")
    if state.run["evidence_sha256"] is None:
        return InputError(folder, None, "written by the notebook run by papermill, without "
                          "SHA256SUMS; review it with `allocation-kit run` to sign it")  # fmt: skip
    problem = evidence_problem(folder, state.run["evidence_sha256"])
    if problem:
        return InputError(folder, None, f"{problem}; sign only what the kit wrote: {again}")
    manifest = json.loads((folder / "evidence" / "manifest.json").read_text(encoding="utf-8"))
    changed = changed_inputs(manifest, root, input_files)
    if changed:
        return InputError(folder, None, f"inputs changed since the run: {', '.join(changed)}; "
                          f"the packet no longer shows them: {again}")  # fmt: skip
    return None


def not_covered(folder: Path) -> list[str]:
    """The files in the period folder that the kit did not write: a sign-off does not cover
    them (a reviewer's notes, an invoice scan in evidence/)."""
    from .report import PERIOD_FILES, kit_named, written_files

    ours = PERIOD_FILES | {SIGN_OFF_FILE, SIGN_OFF_PAGE}
    top = [e.name for e in folder.iterdir() if e.name not in ours and not e.name.startswith(".")]
    inside = [f.relative_to(folder).as_posix() for f in written_files(folder)
              if not kit_named(folder, f)]  # fmt: skip
    return sorted(top + inside)


# --- the review journal: the logs' records anchored outside the reports folder ------------------


@dataclass(frozen=True)
class Journal:
    """A workspace's review journal (review.journal of kit.yaml): `path`, and what its lines
    name the workspace by (kit.yaml's `name`) and resolve reports folders against (`root`)."""

    path: Path
    workspace: str
    root: Path

    def key(self, reports: Path) -> tuple[str, str]:
        """How its lines name a reports folder: the workspace's name and the folder relative to
        kit.yaml's folder, so the journal stays valid when the workspace moves whole."""
        relative = os.path.relpath(reports.resolve(), self.root.resolve())
        return self.workspace, Path(relative).as_posix()


def workspace_journal(workspace: object) -> Journal | None:
    """The Journal of a loaded workspace (`config.Workspace`), None when it keeps none."""
    path = workspace.journal_path  # type: ignore[attr-defined]
    if path is None:
        return None
    return Journal(path, workspace.kit.name, workspace.root)  # type: ignore[attr-defined]


def journal_entries(journal: Journal) -> tuple[list[dict], str]:
    """The lines of the review journal, oldest first, and its last line as written;
    ConfigError when the file is missing, InputError naming the line when one is not what the
    kit wrote or the chain of lines is broken."""
    path = journal.path
    if not path.is_file():
        raise ConfigError(
            path, "review.journal", "does not exist; create an empty file to start the review "
            "journal (before the first review it is to cover), or restore it from your copy"
        )  # fmt: skip
    entries, previous = [], ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("log_record"), int):
                raise ValueError(line)
            if not all(isinstance(entry.get(k), str) for k in JOURNAL_FIELDS):
                raise ValueError(line)
        except ValueError:
            raise InputError(
                path, f"line {number}", "is not an entry the kit wrote (one JSON object a "
                f"line with {', '.join(JOURNAL_FIELDS)} and log_record); restore it from your "
                "copy"
            ) from None  # fmt: skip
        chained = hashlib.sha256(previous.encode("utf-8")).hexdigest() if previous else ""
        if entry["previous_sha256"] != chained:
            raise InputError(
                path, f"line {number}", "previous_sha256 is not the SHA-256 of the line before "
                "it: a line was edited, dropped or moved; restore it from your copy"
            )  # fmt: skip
        entries.append(entry)
        previous = line
    return entries, previous


def _journaled(entries: list[dict], key: tuple[str, str], label: str) -> list[dict]:
    """The lines of the period's current log: those since the last that starts a log (record 1;
    a period whose folder was gone starts a new log when it is reopened)."""
    mine = [e for e in entries if (e["workspace"], e["reports"]) == key and e["period"] == label]
    starts = [n for n, e in enumerate(mine) if e["log_record"] == 1]
    return mine[starts[-1] :] if starts else mine


def _held(entry: dict) -> str:
    return f"{entry['event']} of {entry['at'].replace('T', ' ')[:16]} UTC by {entry['user']}"


def journal_problem(journal: Journal, entries: list[dict], reports: Path, label: str,
                    log: list[dict]) -> str | None:  # fmt: skip
    """How the period's review log `log` ([] when it or its folder is gone) disagrees with
    the journal's lines `entries` (None: it holds exactly the log's records). An empty journal
    holds nothing to compare yet: the first record it takes adopts the logs there are."""
    if not entries:
        return None
    held = _journaled(entries, journal.key(reports), label)
    where = f"the review journal {journal.path}"
    for number, record in enumerate(log, start=1):
        if number > len(held):
            return (
                f"record {number} ({_held(record)}) is not in {where}: it was added outside "
                "the kit (or the kit stopped before journaling it)"
            )
        if record_digest(record) != held[number - 1]["record_sha256"]:
            return (
                f"record {number} is not the one {where} holds ({_held(held[number - 1])}): the "
                "log was edited or rewritten since"
            )
    if len(held) > len(log):
        gone = "the log is gone" if not log else "the log no longer has it"
        return (
            f"{where} holds record {len(log) + 1} ({_held(held[len(log)])}) of "
            f"{len(held)}, and {gone}: it was rolled back, replaced or removed"
        )
    return None


def check_journal(journal: Journal | None, reports: Path, label: str, reopen: bool = False) -> bool:
    """Raise (InputError, exit 3) when the period's review log disagrees with the review
    journal (`journal_problem`); a journal missing or broken is named first. A log that is gone
    where the journal holds records is such a disagreement unless the period is being
    reopened: True then, and the new log starts anew in the journal (`journal_records`)."""
    if journal is None:
        return False
    entries, _ = journal_entries(journal)
    folder = reports / label
    log = read_log(folder) if folder.is_dir() else []
    problem = journal_problem(journal, entries, reports, label, log)
    if problem is None:
        return False
    if not log and reopen:
        return True
    how = "restore it from your copy" + (
        ", or reopen the period (--reopen REASON)" if not log else ""
    )
    raise InputError(folder / SIGN_OFF_FILE, None, f"{problem}; {how}")


@contextmanager
def journal_lock(journal: Journal | None) -> Iterator[None]:
    """Hold the review journal's lock (waiting for it; where the system has flock), so that
    two commands never interleave lines and a check reads what the other wrote in whole. A
    journal that is missing is named, never created."""
    if journal is None:
        yield
        return
    journal_entries(journal)
    with _exclusive(journal.path):
        yield


def journal_records(journal: Journal | None, reports: Path, label: str, written: list[dict],
                    restart: bool = False) -> int:  # fmt: skip
    """Append to the review journal, under `journal_lock`, the records of `written` (the
    period's review log as this command wrote it) that it does not hold yet, one JSON line
    each, chained to the line before it and naming the account that journals it; return how
    many. The log on disk must still be `written`: a record anyone else added meanwhile is
    named, never journaled. `restart`: the log starts anew (its folder was gone, and it was
    reopened). The first record an empty journal takes adopts every other log of the reports
    folder as it is."""
    if journal is None:
        return 0
    path = reports / label / SIGN_OFF_FILE
    if [record_digest(r) for r in read_log(reports / label)] != [record_digest(r) for r in written]:
        raise InputError(
            path, None, "changed while this command wrote it: it holds a record the command "
            "did not write; restore it from your copy"
        )  # fmt: skip
    entries, previous = journal_entries(journal)
    key = journal.key(reports)
    logs = [(label, written)]
    if not entries:  # adopted: the logs there are, as they are now
        logs += [
            (folder.name, read_log(folder))
            for folder in sorted(reports.iterdir())
            if folder.is_dir()
            and folder.name != label
            and not folder.name.startswith(".")  # a run under way
            and (folder / SIGN_OFF_FILE).is_file()
        ]
    lines, user = [], account()
    for name, log in sorted(logs, key=lambda item: item[0]):
        held = [] if restart or not entries else _journaled(entries, key, name)
        if journal_problem(journal, held, reports, name, log[: len(held)]):
            raise InputError(path, None, "is not what the review journal holds; restore it "
                             "from your copy")  # fmt: skip
        for number, record in enumerate(log[len(held) :], start=len(held) + 1):
            entry = {
                "workspace": key[0],
                "reports": key[1],
                "period": name,
                "log_record": number,
                "event": record["event"],
                "at": record["at"],
                "user": user,
                "record_sha256": record_digest(record),
                "previous_sha256": hashlib.sha256(previous.encode("utf-8")).hexdigest()
                if previous
                else "",
            }
            previous = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
            lines.append(previous + "\n")
    with journal.path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


def journal_gone(journal: Journal, entries: list[dict], reports: Path) -> list[str]:
    """The periods of the reports folder whose current log the journal holds and whose folder
    is gone."""
    key = journal.key(reports)
    labels = sorted({e["period"] for e in entries if (e["workspace"], e["reports"]) == key})
    return [label for label in labels if not (reports / label).is_dir()]


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (waiting for it); nothing where there is no flock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
