"""A period's recorded sign-off: who approved which run's evidence, and the lock it puts on the
period.

`allocation-kit sign-off` appends a record to OUT/PERIOD/sign_off.json: the result (`pass`,
`needs_follow_up`, `fail`), the person, their role, the time, the note and the SHA-256 of the
folder's SHA256SUMS, which binds the record to exactly the packet and evidence it approves. A
`pass` or `needs_follow_up` sign-off locks the period: a run replaces its folder only when given
a reason to reopen it, and the log records the reopening. The log is carried into every new run
of the period, so its approvals and reopenings stay with its evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import InputError, KitError

__all__ = [
    "LOCKING",
    "RESULTS",
    "SIGN_OFF_FILE",
    "PeriodLocked",
    "SignOffState",
    "carried_log",
    "checksum_problem",
    "evidence_digest",
    "read_log",
    "record_sign_off",
    "sign_off_state",
    "signed_text",
    "write_log",
]

SIGN_OFF_FILE = "sign_off.json"
RESULTS = ("pass", "needs_follow_up", "fail")  # the packet's sign-off results, most lenient first
LOCKING = frozenset({"pass", "needs_follow_up"})  # a charge back was approved: the period locks


class PeriodLocked(KitError):
    """The period is signed off; re-running it needs a reason to reopen it: exit code 4."""

    exit_code = 4


@dataclass(frozen=True)
class SignOffState:
    """What a period folder's sign-off log says of the evidence in it now."""

    current: dict | None  # the latest sign-off of this run's evidence
    earlier: dict | None  # the latest sign-off of an earlier run of the period
    log: tuple[dict, ...]

    @property
    def locked(self) -> bool:
        return self.current is not None and self.current["result"] in LOCKING


def evidence_digest(folder: Path) -> str | None:
    """The SHA-256 of folder/SHA256SUMS (None without one): it names every file of the run."""
    sums = folder / "SHA256SUMS"
    return hashlib.sha256(sums.read_bytes()).hexdigest() if sums.is_file() else None


def read_log(folder: Path) -> list[dict]:
    """The records of folder/sign_off.json, oldest first ([] without the file)."""
    path = folder / SIGN_OFF_FILE
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        records = doc["records"]
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("event"), str) for r in records
        ):
            raise TypeError("records")
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            path,
            None,
            'is not a sign-off log the kit wrote (expected {"period": ..., "records": [{"event": '
            "...}, ...]}); restore it from your copy, or move it away to start a new log",
        ) from None
    return records


def write_log(folder: Path, period: str, records: list[dict]) -> Path:
    """Write folder/sign_off.json whole or not at all."""
    path = folder / SIGN_OFF_FILE
    partial = folder / f".{SIGN_OFF_FILE}.partial-{os.getpid()}"
    doc = {"period": period, "records": records}
    partial.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def sign_off_state(folder: Path) -> SignOffState:
    log = read_log(folder)
    digest = evidence_digest(folder)
    signed = [r for r in log if r["event"] == "signed"]
    current = next((r for r in reversed(signed) if r.get("evidence_sha256") == digest), None)
    earlier = next((r for r in reversed(signed) if r.get("evidence_sha256") != digest), None)
    return SignOffState(current=current, earlier=earlier, log=tuple(log))


def signed_text(record: dict) -> str:
    """'pass by Dana Reyes (finance-controller) on 2026-11-25 04:50 UTC'."""
    at = datetime.fromisoformat(record["at"]).strftime("%Y-%m-%d %H:%M UTC")
    role = f" ({record['role']})" if record.get("role") else ""
    return f"{record['result'].replace('_', ' ')} by {record['signed_by']}{role} on {at}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def checksum_problem(folder: Path, written: list[Path]) -> str | None:
    """The first way the folder differs from its SHA256SUMS (None: it matches): a listed file
    missing or changed, or a file the kit wrote (`written`) that it does not list."""
    from .load import file_sha256

    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return "has no SHA256SUMS: the run that wrote it did not finish; run the period again"
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
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


def record_sign_off(
    folder: Path,
    period: str,
    *,
    result: str,
    signed_by: str,
    role: str,
    note: str,
    proposed: str | None,
) -> tuple[dict, SignOffState]:
    """Append a sign-off of the folder's evidence to its log; the record and the state before."""
    state = sign_off_state(folder)
    record = {
        "event": "signed",
        "result": result,
        "signed_by": signed_by,
        "role": role,
        "at": _now(),
        "note": note,
        "proposed_result": proposed,
        "evidence_sha256": evidence_digest(folder),
    }
    write_log(folder, period, [*state.log, record])
    return record, state


def carried_log(final: Path, reopen: str | None, role: str) -> list[dict] | None:
    """The sign-off log a new run of the period folder `final` starts with: its log so far plus
    what this run does to it (None: no log yet). A locked period raises PeriodLocked unless
    `reopen` gives the reason to review it again, which the log then records."""
    state = sign_off_state(final)
    if state.locked and reopen is None:
        assert state.current is not None
        raise PeriodLocked(
            final,
            None,
            f"signed off {signed_text(state.current)}; to review it again, run it with "
            "--reopen REASON (the sign-off log records the reason)",
        )
    if not state.log:
        return None
    event = {
        "event": "reopened" if state.locked else "re-run",
        "at": _now(),
        "role": role,
        "reason": reopen or "",
        "replaces_evidence_sha256": evidence_digest(final),
    }
    if state.locked:
        assert state.current is not None
        event["reopens"] = signed_text(state.current)
    return [*state.log, event]
