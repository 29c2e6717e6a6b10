"""Report: write the evidence of one period. The only module besides `load` that touches files.

Output folders are written atomically: everything goes to a hidden sibling folder first and is
swapped in only when complete, so a failed run never leaves a half-written period or replaces
the previous good one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from . import __version__, errors
from .allocate import AllocationLine
from .attribute import UNALLOCATED_STATUSES
from .errors import ConfigError, EmptyPeriod, InputError, KitError
from .focus import write_focus_allocated
from .history import (
    baseline_digest,
    baseline_files,
    evidence_reader,
    outdated_baseline,
    outdated_text,
    spreadsheet_safe,
    spreadsheet_safe_sql,
)
from .load import file_sha256, unordered
from .periods import parse_period

if TYPE_CHECKING:
    from .chargeback import Chargeback
from .pipeline import PeriodLedger, _lit, period_filter_sql
from .price import cost_sql, price_band_sql, price_layout
from .signoff import SIGN_OFF_FILE, SIGN_OFF_PAGE, write_whole

__all__ = [
    "ALLOCATION_COLUMNS",
    "EXCEPTION_COLUMNS",
    "atomic_period_folder",
    "money_text",
    "write_evidence",
]

ALLOCATION_COLUMNS = (
    "period",
    "business_unit",
    "team",
    "application",
    "environment",
    "cost_center",
    "allocation_status",
    "allocation_rule",
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost",
    # extensions after the DESIGN.md columns
    "cache_write_tokens",
    "reasoning_tokens",
    "unpriced_requests",
)
EXCEPTION_COLUMNS = (
    "period",
    "request_id",
    "reason",
    "detail",
    "timestamp",
    "team",
    "application",
    "environment",
    "workload_class",
    "feature",
    "job_id",
    "caller_id",
    "endpoint",
    "model",
    "status_code",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "source_file",
    # extensions after the DESIGN.md columns: what a row's cost is recomputed from, and whether
    # that cost is in the ledger total (unallocated) or not (unpriced, duplicate, out_of_period)
    "cache_write_tokens",
    "price_band",
    "in_ledger_total",
)


def money_text(value: Decimal) -> str:
    """Exact decimal text without exponent: 12.5 -> '12.500000000000' at the ledger's scale."""
    return format(value, "f")


# What the kit writes into a period folder; anything else there is the user's and is kept.
PERIOD_FILES = frozenset({"packet.html", "packet.ipynb", "evidence", "statements", "SHA256SUMS"})
EVIDENCE_FILES = frozenset(
    {
        "allocation.csv",
        "anomalies.csv",
        "budgets.csv",
        "chargeback.csv",
        "chargeback_journal.csv",
        "chargeback_review.csv",
        "exceptions.csv",
        "focus_allocated.csv",
        "manifest.json",
        "reconciliation.json",
        "reconciliation_lines.csv",
        "recorded_spend.csv",
        "spend_profile.csv",
        "spend_review.json",
        "teams.csv",
        "unit_economics.csv",
        "validation.json",
    }
)


def _carry_over(previous: Path, new: Path, *, copy: bool = False) -> list[str]:
    """Move (or `copy`) what the kit did not write from the previous period folder into the new
    one (a reviewer's notes, a signed copy); return their paths relative to the folder."""
    kept = []
    ours: tuple[tuple[Path, Callable[[str], bool]], ...] = (
        # the review log is carried by atomic_period_folder; a sign-off page is of its run only
        (Path(), (PERIOD_FILES | {SIGN_OFF_FILE, SIGN_OFF_PAGE}).__contains__),
        (Path("evidence"), EVIDENCE_FILES.__contains__),
        (Path("statements"), lambda name: name.endswith(".html")),  # one page per team
    )
    for here, written in ours:
        if not (previous / here).is_dir():
            continue
        for entry in sorted((previous / here).iterdir()):
            if not written(entry.name) and not (new / here / entry.name).exists():
                (new / here).mkdir(exist_ok=True)
                if not copy:
                    entry.rename(new / here / entry.name)
                elif entry.is_dir():
                    shutil.copytree(entry, new / here / entry.name, symlinks=True)
                else:
                    shutil.copy2(entry, new / here / entry.name, follow_symlinks=False)
                kept.append(str(here / entry.name))
    return kept


@contextmanager
def atomic_period_folder(
    out: Path,
    name: str,
    say: Callable[[str], None] | None = None,
    *,
    reopen: str | None = None,
    role: str = "",
) -> Iterator[Path]:
    """Yield a temporary folder that replaces out/name only if the block completes. Files in
    the previous folder that the kit does not write are moved into the new one (`say` names
    them), never deleted. A signed-off period (`signoff.PeriodLocked`) is replaced only with a
    `reopen` reason; its review log, with the reopening recorded, is in the folder from the
    start; a replaced folder whose run was signed off goes to out/archive/, as it was signed.
    The period's lock is held throughout, so no sign-off is written meanwhile."""
    from .signoff import carried_log, period_lock, write_log

    out.mkdir(parents=True, exist_ok=True)
    final = out / name
    if final.is_symlink():  # replacing it would move the period away from where it points
        raise ConfigError(
            final, None, "is a symbolic link, not a period folder; point --out at its target"
        )
    if final.exists() and not final.is_dir():  # not ours to replace
        raise ConfigError(final, None, "is a file, not a period folder; move it away or use --out")
    with period_lock(out, name):
        _settle_interrupted(out, name, say)
        carried = carried_log(final, reopen, role) if final.is_dir() else None
        partial = out / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        reopened = carried.reopened if carried else None
        if carried is not None:
            write_log(partial, name, carried.records)
            if say and reopened:
                say(f"reopened   {name}, signed off {reopened['reopens']}: {reopened['reason']}")
        try:
            yield partial
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        signed = carried is not None and carried.replaces_signed
        previous = out / f".{name}.previous-{os.getpid()}"
        if final.exists():
            # a signed folder keeps its own files in the archive: they are copied, not moved
            kept = _carry_over(final, partial, copy=signed)
            if kept and say:
                say(f"kept       {', '.join(kept)} (not written by the kit) in {final}")
            final.rename(previous)
        partial.rename(final)
        if signed and previous.exists():  # what was signed stays, apart, as it was signed
            archive = _archive(out, name, previous, "reopened" if reopened else "replaced")
            if say:
                what = "signed-off" if reopened else "signed"
                say(f"archived   the {what} folder it replaces in {archive}")
        shutil.rmtree(previous, ignore_errors=True)


def _archive(out: Path, name: str, folder: Path, how: str) -> Path:
    """Move a signed period folder to out/archive/<name>.<how>-<UTC time>Z."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    archive = out / "archive" / f"{name}.{how}-{stamp}"
    archive.parent.mkdir(exist_ok=True)
    n = 1
    while archive.exists():  # two in one second
        n += 1
        archive = out / "archive" / f"{name}.{how}-{stamp}-{n}"
    folder.rename(archive)
    return archive


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process, or no way to tell: leave it
        return True
    return True


def _settle_interrupted(out: Path, name: str, say: Callable[[str], None] | None) -> None:
    """Clear what a run of out/name killed before it finished left behind (a SIGKILL, a power
    cut): its half-written `.partial-<pid>` folder goes; the previous good folder it had moved
    aside (`.previous-<pid>`, killed between the two renames) comes back when out/name is
    missing, else goes. A running process's folders are left alone."""
    final = out / name
    for kind in ("previous", "partial"):  # a previous folder back first: it is the good one
        for left in sorted(out.glob(f".{name}.{kind}-*")):
            pid = left.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
                continue
            if kind == "previous" and not final.exists():
                left.rename(final)
                if say:
                    say(f"restored   {final} from {left.name}, left by a run that was stopped")
                continue
            if kind == "previous" and _was_signed(left):  # replaced, but signed: kept
                archive = _archive(out, name, left, "replaced")
                if say:
                    say(f"archived   {left.name}, signed and left by a run that was stopped, "
                        f"in {archive}")  # fmt: skip
                continue
            shutil.rmtree(left, ignore_errors=True)
            if say:
                say(f"removed    {left} (left by a run of process {pid} that was stopped)")


def _was_signed(folder: Path) -> bool:
    """Whether the folder's run was signed off (or its log is gone or broken: it may have been)."""
    from .signoff import sign_off_state

    try:
        state = sign_off_state(folder)
    except InputError:
        return True
    return state.current is not None or state.missing


def written_files(folder: Path) -> list[Path]:
    """Every file the kit wrote in the period folder that SHA256SUMS covers."""
    return [
        path
        for name in sorted(PERIOD_FILES - {"SHA256SUMS"})
        for path in ([folder / name] if (folder / name).is_file() else (folder / name).rglob("*"))
        if path.is_file()
    ]


def kit_named(folder: Path, path: Path) -> bool:
    """Whether a file of the period folder has the name of one the kit writes (a packet, an
    evidence file, a team statement), as opposed to a file of the reviewer's."""
    parts = path.relative_to(folder).parts
    if len(parts) == 1:
        return parts[0] in PERIOD_FILES
    if parts[0] == "evidence":
        return len(parts) == 2 and parts[1] in EVIDENCE_FILES
    return parts[0] == "statements" and len(parts) == 2 and parts[1].endswith(".html")


def write_checksums(folder: Path) -> Path:
    """folder/SHA256SUMS: the SHA-256 of every file the kit wrote in the period folder, in the
    format `sha256sum -c SHA256SUMS` checks (run inside the folder), so that whoever receives
    the packet and its evidence can tell the set is complete and unchanged."""
    from .load import file_sha256

    lines = [
        f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}\n"
        for path in sorted(written_files(folder), key=lambda p: p.relative_to(folder).as_posix())
    ]
    target = folder / "SHA256SUMS"
    target.write_text("".join(lines), encoding="utf-8")
    return target


def _allocation_row(period: str, line: AllocationLine) -> list[object]:
    values = {"period": period, **line.__dict__}
    values["cost"] = money_text(line.cost)
    return ["" if values[c] is None else values[c] for c in ALLOCATION_COLUMNS]


def write_allocation(path: Path, ledger: PeriodLedger) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ALLOCATION_COLUMNS)
        for line in ledger.allocation:
            writer.writerow(map(spreadsheet_safe, _allocation_row(ledger.period.label, line)))


def _exceptions_sql(ledger: PeriodLedger) -> str:
    """SQL: the exception queue, one row per request and reason (unordered: `write_exceptions`
    orders the file, the packet orders what it shows)."""
    period = ledger.period
    unallocated = ", ".join(_lit(s) for s in UNALLOCATED_STATUSES)
    strays_from = ", ".join(_lit(f) for f in ledger.period_files) or "NULL"
    label = _lit(period.label)
    tags = (
        "request_id, timestamp, team, application, environment, workload_class, feature, job_id, "
        "caller_id, endpoint, model, status_code"
    )
    item = (
        f"{tags}, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, "
        "CASE WHEN billable AND NOT priced THEN NULL ELSE cost END, source_file, "
        "cache_write_tokens, NULLIF(price_band, '')"
    )
    no_price = "'no price for ' || model || ' in effect on ' || strftime(timestamp, '%Y-%m-%d')"
    copies = "'identical logging duplicate: counted once'"
    outside = f"'outside ' || {label} || ': excluded from the period'"
    layout = price_layout(ledger.workspace.pricing)
    stray_cost = f"CASE WHEN p.model IS NOT NULL THEN {cost_sql('r', 'p', layout)} END"
    strays = any(ledger.rows_by_file[f][1] for f in ledger.period_files)
    parts = [
        f"SELECT allocation_status, detail, {item} FROM lines "
        f"WHERE request_id IS NOT NULL AND allocation_status IN ({unallocated})",
        f"SELECT 'unpriced', {no_price}, {item} FROM lines "
        "WHERE request_id IS NOT NULL AND billable AND NOT priced",
        f"SELECT 'duplicate', {copies}, {item} FROM lines, range(duplicate_copies) "
        "WHERE duplicate_copies > 0",
        f"""SELECT 'out_of_period', {outside}, {", ".join("r." + c for c in tags.split(", "))},
            r.input_tokens, r.cached_input_tokens, r.output_tokens, r.reasoning_tokens,
            {stray_cost}, r.source_file, r.cache_write_tokens,
            NULLIF({price_band_sql("r", "p", layout)}, '')
        FROM requests r LEFT JOIN prices p ON p.model = r.model
            AND r.timestamp >= p.effective_from
            AND (p.effective_to IS NULL OR r.timestamp < p.effective_to)
        WHERE NOT ({period_filter_sql(period).replace("timestamp", "r.timestamp")})
            AND r.source_file IN ({strays_from})""",
    ][: 4 if strays else 3]  # the last part scans the whole ledger: only when there are strays
    names = ["reason", "detail", *tags.split(", ")]
    names += ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"]
    names += ["cost", "source_file", "cache_write_tokens", "price_band"]
    union = " UNION ALL ".join(f"({part})" for part in parts)
    computed = {"period", "in_ledger_total"}
    return f"""
        SELECT {label} AS period, {", ".join(c for c in EXCEPTION_COLUMNS if c not in computed)},
            reason IN ({unallocated}) AS in_ledger_total
        FROM ({union}) x({", ".join(names)})"""


def write_exceptions(path: Path, ledger: PeriodLedger) -> int:
    """Write exceptions.csv; return its number of rows."""
    con: duckdb.DuckDBPyConnection = ledger.con
    target = str(path).replace("'", "''")
    # Costliest first per reason. A hash of the whole row (`tie`) breaks the rare ties (copies
    # of one request_id), so the file's order is the same on every run while DuckDB builds and
    # writes it in parallel; sorting on every column instead costs more than the sort itself.
    with unordered(con):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE exception_queue AS SELECT *, "
            f"hash({', '.join(EXCEPTION_COLUMNS)}) AS tie FROM ({_exceptions_sql(ledger)})"
        )
        # the tags as received: a spreadsheet shows them as text, never runs one as a formula
        text = {
            name
            for name, kind, *_ in con.execute("DESCRIBE exception_queue").fetchall()
            if kind == "VARCHAR"
        }
        columns = ", ".join(
            "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp"
            if c == "timestamp"
            else f"{spreadsheet_safe_sql(c)} AS {c}"
            if c in text
            else c
            for c in EXCEPTION_COLUMNS
        )
        (written,) = con.execute(
            f"""COPY (SELECT {columns} FROM exception_queue
                ORDER BY reason, cost DESC NULLS FIRST, request_id, tie)
            TO '{target}' (HEADER, DELIMITER ',')"""
        ).fetchone()
    return written


def _relative(path: Path, root: Path) -> str:
    """The path relative to the workspace; the kit's own expectation suites as
    `allocation-kit/expectations/<file>`, not a path of this machine's installation."""
    from .validate import suite_file_label

    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root.resolve()))
    except ValueError:
        return suite_file_label(resolved)


def input_files(
    ledger: PeriodLedger, billing_files: tuple[Path, ...] = (), baseline: tuple[Path, ...] = ()
) -> list[dict[str, object]]:
    """Every input of the period with its role, size and SHA-256: the workspace's files, the
    expectation suites run, and the earlier periods' evidence read as a baseline (`baseline`)."""
    ws = ledger.workspace
    entries: list[tuple[str, Path]] = [
        ("config", ws.config_path),
        ("registry", ws.registry_path),
        ("pricing", ws.pricing_path),
    ]
    entries += [("requests", f) for f in ledger.loaded.files]
    entries += [("billing", Path(f)) for f in billing_files]
    if ws.cost_units is not None:
        entries.append(("cost_units", ws.cost_units.path))
        events = {ws.cost_units.events_path(u) for u in ws.cost_units.units if u.denominator.events}
        entries += [("events", path) for path in sorted(events)]
    if ws.budgets is not None:
        entries.append(("budgets", ws.resolve(ws.kit.budgets)))
    if ledger.validation:  # the suites behind validation.json
        entries += [("expectations", path) for path in sorted({s.path for s in ledger.validation})]
    entries += [("baseline", path) for path in baseline]
    hashed = ledger.input_sha256.result() if ledger.input_sha256 else {}
    return [
        {
            "role": role,
            # earlier evidence may sit outside the workspace (--out): relative to it all the same
            "path": os.path.relpath(path, ws.root)
            if role == "baseline"
            else _relative(path, ws.root),
            "bytes": path.stat().st_size,
            "sha256": hashed.get(path) or file_sha256(path),
            # what this review used of it: a later re-run that changes only other columns does
            # not make this review outdated (`outdated_baseline`)
            **({"compared_sha256": baseline_digest(path)} if role == "baseline" else {}),
        }
        for role, path in entries
    ]


def conservation(ledger: PeriodLedger) -> dict[str, str]:
    """Allocated + shared + unallocated against the ledger total; raises if they differ."""
    by_status = ledger.cost_by_status()
    allocated = by_status.get("allocated", Decimal(0))
    shared = by_status.get("shared", Decimal(0))
    unallocated = sum((by_status.get(s, Decimal(0)) for s in UNALLOCATED_STATUSES), Decimal(0))
    if allocated + shared + unallocated != ledger.ledger_cost:
        raise AssertionError(
            f"conservation broken: {allocated} + {shared} + {unallocated} != {ledger.ledger_cost}"
        )
    return {
        "allocated": money_text(allocated),
        "shared": money_text(shared),
        "unallocated": money_text(unallocated),
        "ledger_total": money_text(ledger.ledger_cost),
    }


@cache
def kit_source_sha256() -> str:
    """One SHA-256 over the kit's own code and resources (the package's modules, the packet
    notebook and template, the expectation suites), each file named by its place in the kit:
    which code wrote the evidence, also when a version number was not bumped."""
    from .validate import default_suites_dir

    roots = {
        "allocation_kit": Path(__file__).parent,
        "notebooks": resource_dir("notebooks"),
        "templates": resource_dir("templates"),
        "expectations": default_suites_dir(),
    }
    digest = hashlib.sha256()
    for label, root in roots.items():
        files = sorted(
            p for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and "_resources" not in p.parts
            and p.suffix != ".pyc" and ".ipynb_checkpoints" not in p.parts
        )  # fmt: skip
        for path in files:
            name = f"{label}/{path.relative_to(root).as_posix()}"
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# what else shapes the evidence and the packet, beside DuckDB and Python (`engine`)
LIBRARIES = (
    "great-expectations", "matplotlib", "nbconvert", "numpy", "pandas", "papermill", "pyarrow",
    "pydantic",
)  # fmt: skip


def library_versions() -> dict[str, str]:
    """{distribution: installed version} of LIBRARIES, for the manifest."""
    from importlib.metadata import version

    return {name: version(name) for name in LIBRARIES}


def manifest(
    ledger: PeriodLedger,
    parameters: dict[str, object],
    exceptions: int,
    billing_files: tuple[Path, ...] = (),
    baseline: tuple[Path, ...] = (),
) -> dict:
    ws, period, pricing = ledger.workspace, ledger.period, ledger.workspace.pricing
    return {
        "kit_version": __version__,
        "kit_source_sha256": kit_source_sha256(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # the period folder's review log (runs, sign-offs, reopenings): `allocation-kit run`
        # writes it beside SHA256SUMS, so a folder without it had it removed
        "review_log": SIGN_OFF_FILE,
        "period": {
            "label": period.label,
            "kind": period.kind,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "end_is_exclusive": True,
        },
        "parameters": parameters,
        "workspace": {"name": ws.kit.name, "currency": ws.kit.currency, "root": str(ws.root)},
        "config": ws.kit.model_dump(mode="json"),
        "pricing_snapshot": {
            "id": pricing.snapshot_id,
            "source_url": pricing.source_url,
            "reviewed_on": pricing.reviewed_on.isoformat(),
            "reviewed_by": pricing.reviewed_by,
            "failed_calls_billable": pricing.failed_calls_billable,
            "models": len(pricing.models),
        },
        "inputs": input_files(ledger, billing_files, baseline),
        "engine": {
            "name": "duckdb",
            "version": duckdb.__version__,
            "python": sys.version.split()[0],
        },
        "libraries": library_versions(),
        "ledger_cost": money_text(ledger.ledger_cost),
        "conservation": conservation(ledger),
        "counts": ledger.counts.__dict__ | {"exception_rows": exceptions},
        "rows_by_file": {
            f: {"inside": inside, "outside": outside, "strays_listed": f in ledger.period_files}
            for f, (inside, outside) in ledger.rows_by_file.items()
        },
        "timings_s": {k: round(v, 3) for k, v in ledger.timings.items()},
    }


def billing_validation(con, workspace, parameters: dict, billing) -> list:
    """The billing suite's results on the FOCUS files as they are (view `billing`); none for
    other billing formats, whose adapters check their files while reading them. A failed
    blocking suite stops the review, as in `period_validation`."""
    from .pipeline import stop_if_blocking_failed
    from .validate import validation_results

    files = billing.focus_files() if billing is not None else []
    if not files:
        return []
    paths = _sql_paths(files)
    reader = "read_parquet" if str(files[0]).endswith(".parquet") else "read_csv"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW billing AS SELECT * FROM {reader}({paths}, "
        "union_by_name = true)"
    )
    suites = validation_results(
        con, workspace.suites_dir, parameters, relations={"billing": "billing"}
    )
    stop_if_blocking_failed(suites)
    return suites


def _sql_paths(paths) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def write_validation(path: Path, ledger: PeriodLedger) -> dict:
    from .validate import validation_document

    document = validation_document(ledger.validation, ledger.validation_parameters)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return document


@dataclass(frozen=True)
class Analysis:
    """The analysis sections of the period: unit economics, budgets, anomalies, review records."""

    unit_costs: list
    budgets: list
    anomalies: list
    chargeback: list
    spend_review: dict
    profile: list[dict]
    # unit name -> [(period, unit cost, definition changed, understated: unpriced requests left
    # out)], oldest first
    trends: dict
    thresholds_pct: list
    charges: Chargeback | None = None  # the schedule that foots to the bill
    teams: list = field(default_factory=list)  # TeamSummary per registered team
    # a week or date range: each budget's month to date (BudgetLine of the month it ends in)
    month_budgets: list = field(default_factory=list)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)


def write_analysis(
    evidence: Path, ledger: PeriodLedger, record: dict, reviewer_role: str
) -> Analysis:
    """Write chargeback.csv, chargeback_journal.csv, unit_economics.csv, budgets.csv,
    spend_profile.csv, anomalies.csv, chargeback_review.csv, spend_review.json and teams.csv
    (each team's row of them all); earlier periods are read from the folder that holds this
    period's folder."""
    from .anomalies import (
        ANOMALY_COLUMNS,
        PROFILE_COLUMNS,
        anomalies,
        anomaly_rows,
        profile_rows,
        spend_profile,
    )
    from .budgets import BUDGET_COLUMNS, budget_lines, budget_rows, data_gaps
    from .chargeback import (
        CHARGE_COLUMNS,
        JOURNAL_COLUMNS,
        charge_rows,
        chargeback,
        journal_rows,
    )
    from .economics import UNIT_ECONOMICS_COLUMNS, unit_economics, unit_economics_rows
    from .history import prior_evidence
    from .recorded import RECORDED_SPEND_COLUMNS, recorded_spend_by_model, recorded_spend_rows
    from .review import (
        CHARGEBACK_COLUMNS,
        anomaly_teams,
        chargeback_review,
        chargeback_rows,
        spend_review,
    )
    from .teams import TEAM_COLUMNS, models_without_price, team_rows, team_summaries

    ws = ledger.workspace
    out = evidence.parent.parent
    now = datetime.now(UTC)
    charges = chargeback(
        ledger.allocation,
        ledger.ledger_cost,
        ws.registry,
        record,
        ws.kit.chargeback.spread,
        ws.kit.currency,
        ws.kit.chargeback.kept_cost_center,
    )
    rows = charge_rows(ledger.period.label, charges)
    _write_csv(evidence / "chargeback.csv", CHARGE_COLUMNS, rows)
    journal = journal_rows(ledger.period.label, charges)
    _write_csv(evidence / "chargeback_journal.csv", JOURNAL_COLUMNS, journal)
    units = unit_economics(ledger, ws.cost_units, out) if ws.cost_units else []
    _write_csv(evidence / "unit_economics.csv", UNIT_ECONOMICS_COLUMNS, unit_economics_rows(units))
    # the whole ledger's span (every file read): rows after the period mean its data is complete
    # (timestamps Python cannot hold, years past 9999, are strays outside any period anyway)
    first, last = ledger.con.execute(
        "SELECT min(timestamp), max(timestamp) FROM requests "
        "WHERE timestamp BETWEEN TIMESTAMP '0001-01-01' AND TIMESTAMP '9999-12-31 23:59:59'"
    ).fetchone()
    # and the period's mean gap between rows: sparse traffic ends a period hours early
    rows = ledger.counts.in_period
    gap = (ledger.period.end - ledger.period.start) / rows if rows else None
    span = (first, last, gap) if first else None
    budgets = (
        budget_lines(
            ws.budgets, ledger.allocation, ws.registry, ledger.period, span, ws.kit.currency
        )
        if ws.budgets
        else []
    )
    month_budgets = month_to_date_budgets(ledger, span) if ws.budgets else []
    _write_csv(evidence / "budgets.csv", BUDGET_COLUMNS, budget_rows(budgets, month_budgets))
    profile = spend_profile(ledger)
    _write_csv(evidence / "spend_profile.csv", PROFILE_COLUMNS, profile_rows(profile))
    flagged = anomalies(ledger, profile, out)
    _write_csv(evidence / "anomalies.csv", ANOMALY_COLUMNS, anomaly_rows(flagged))
    reviewed = chargeback_review(ledger, reviewer_role, now, record)
    _write_csv(evidence / "chargeback_review.csv", CHARGEBACK_COLUMNS, chargeback_rows(reviewed))
    gaps = data_gaps(ledger.period, span)
    spend = spend_review(
        ledger,
        profile,
        flagged,
        reviewed,
        budgets,
        record,
        reviewer_role,
        now,
        gaps,
        month_budgets,
        charges,
    )
    (evidence / "spend_review.json").write_text(json.dumps(spend, indent=2) + "\n")
    trends: dict[str, list] = {u.name: [] for u in units}
    for earlier, rows in prior_evidence(out, ledger.period, "unit_economics.csv"):
        for row in rows:
            if row["name"] in trends:
                cost = Decimal(row["unit_cost"]) if row["unit_cost"] else None
                changed = row.get("definition_changed") == "true"
                understated = (row.get("unpriced_requests") or "0") != "0"
                trends[row["name"]].append((earlier.label, cost, changed, understated))
    for u in units:
        understated = u.unpriced_requests > 0
        trends[u.name].append((u.period, u.unit_cost, u.definition_changed, understated))
    recorded = recorded_spend_by_model(ledger.con, ws.kit.reconciliation.tolerance_pct)
    if recorded:  # only ledgers that carry the gateway's own cost (LiteLLM spend logs)
        _write_csv(
            evidence / "recorded_spend.csv", RECORDED_SPEND_COLUMNS, recorded_spend_rows(recorded)
        )
    thresholds = list(ws.budgets.thresholds_pct) if ws.budgets else []
    real = [a for a in flagged if a.metric != "history"]
    earlier = prior_evidence(out, ledger.period, "spend_profile.csv", count=1)
    previous = (
        (
            earlier[0][0].label,
            {r["key"]: Decimal(r["cost"]) for r in earlier[0][1] if r["scope"] == "team"},
        )
        if earlier
        else None
    )
    before = prior_evidence(out, ledger.period, "teams.csv", count=1)
    teams = team_summaries(
        ws.registry,
        ledger.allocation,
        charges,
        budgets,
        list(zip(real, anomaly_teams(ledger, real), strict=True)),
        reviewed,
        previous,
        {r["team"]: int(r["unpriced_requests"]) for r in before[0][1]} if before else None,
        models_without_price(
            ledger.con.execute(
                "SELECT DISTINCT allocation_status, owner_team, application, model FROM lines "
                "WHERE billable AND NOT priced"
            ).fetchall(),
            ledger.allocation,
        ),
    )
    _write_csv(
        evidence / "teams.csv", TEAM_COLUMNS, team_rows(ledger.period.label, ws.kit.currency, teams)
    )
    return Analysis(
        units,
        budgets,
        flagged,
        reviewed,
        spend,
        profile,
        trends,
        thresholds,
        charges,
        teams,
        month_budgets,
    )


def month_to_date_budgets(ledger: PeriodLedger, span: tuple | None) -> list:
    """Each budget's month to date when the period is a week or date range (empty for a
    month): the allocation of `month_to_date_period` (from the 1st of the month most of its days
    fall in), run on a connection of its own, against the whole monthly budget
    (`month_to_date_lines`). `span`: the whole ledger's first and last timestamp."""
    from .budgets import month_to_date_lines, month_to_date_period
    from .pipeline import period_ledger

    ws, period = ledger.workspace, ledger.period
    mtd = month_to_date_period(period)
    if mtd is None or ws.budgets is None:
        return []
    if (mtd.start, mtd.end) == (period.start, period.end):  # the period starts on the 1st
        allocation = ledger.allocation
    else:
        try:
            allocation = period_ledger(ws, mtd, validate=False).allocation
        except EmptyPeriod:  # a week into a month whose rows have not come yet: nothing so far
            allocation = []
    return month_to_date_lines(ws.budgets, allocation, ws.registry, mtd, span, ws.kit.currency)


@dataclass(frozen=True)
class Evidence:
    """What write_evidence wrote: the manifest, the reconciliation record and the analysis."""

    manifest: dict
    reconciliation: dict
    validation: dict
    analysis: Analysis | None = None


def write_evidence(
    folder: Path,
    ledger: PeriodLedger,
    parameters: dict[str, object],
    progress: Callable[[str], None] | None = None,
    reviewer_role: str = "",
) -> Evidence:
    """Write allocation.csv, exceptions.csv, validation.json, reconciliation.json,
    reconciliation_lines.csv and manifest.json into folder/evidence."""
    from .billing import workspace_billing
    from .reconcile import (
        RECONCILIATION_LINE_COLUMNS,
        reconciliation,
        reconciliation_lines_rows,
        reconciliation_record,
    )

    ws = ledger.workspace
    evidence = folder / "evidence"
    evidence.mkdir(parents=True, exist_ok=True)
    write_allocation(evidence / "allocation.csv", ledger)
    write_focus_allocated(evidence / "focus_allocated.csv", ledger)
    exceptions = write_exceptions(evidence / "exceptions.csv", ledger)
    if progress:
        progress(f"evidence   {exceptions:,} exception rows")

    started = time.perf_counter()
    billing = workspace_billing(ledger.con, ws)
    if ledger.validation_parameters:
        ledger.validation += billing_validation(
            ledger.con, ws, ledger.validation_parameters, billing
        )
    write_validation(evidence / "validation.json", ledger)
    recon = reconciliation(ledger, billing)
    record = reconciliation_record(
        recon, reviewer_role or ws.kit.review.reviewer_role, datetime.now(UTC)
    )
    (evidence / "reconciliation.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = reconciliation_lines_rows(recon)
    _write_csv(evidence / "reconciliation_lines.csv", RECONCILIATION_LINE_COLUMNS, lines)
    ledger.timings["reconcile"] = time.perf_counter() - started
    if progress:
        progress(f"reconcile  {ledger.timings['reconcile']:6.2f} s  {record['result']}")

    started = time.perf_counter()
    role = reviewer_role or ws.kit.review.reviewer_role
    analysis = write_analysis(evidence, ledger, record, role)
    ledger.timings["analysis"] = time.perf_counter() - started
    if progress:
        progress(f"analysis   {ledger.timings['analysis']:6.2f} s")

    billing_files = tuple(billing.files) if billing else ()
    baseline = tuple(baseline_files(folder.parent, ledger.period))
    document = manifest(ledger, parameters, exceptions, billing_files, baseline)
    (evidence / "manifest.json").write_text(json.dumps(document, indent=2) + "\n")
    validation = json.loads((evidence / "validation.json").read_text())
    return Evidence(document, record, validation, analysis)


# --- the packet: execute the notebook, render it, index the periods ---------------------------


def resource_dir(name: str) -> Path:
    """notebooks/ or templates/: inside the installed package, or at the checkout's top level."""
    packaged = Path(__file__).parent / "_resources" / name
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / name


class NotebookError(KitError):
    """The packet notebook failed; carries the notebook's own one-line error."""


def execute_packet(
    config: Path, period: str, out: Path, folder: Path, reviewer_role: str = ""
) -> Path:
    """Execute notebooks/review_packet.ipynb with papermill into folder/packet.ipynb."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    target = folder / "packet.ipynb"
    parameters = {
        "config": str(config),
        "period": period,
        "out": str(out),
        "reviewer_role": reviewer_role,
        "period_dir": str(folder),
    }
    try:
        papermill.execute_notebook(
            str(resource_dir("notebooks") / "review_packet.ipynb"),
            str(target),
            parameters=parameters,
            cwd=str(config.parent),
            progress_bar=False,
            stderr_file=sys.stderr,
            kernel_name="python3",
            # The kernel's own log (start-up transport warnings; "KeyboardInterrupt caught in
            # kernel" when papermill stops it after a failed cell) is not the reviewer's
            # business: a failed cell reaches the user as one line through NotebookError.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as exc:
        error = NotebookError(None, None, f"{exc.evalue}")
        kind = getattr(errors, exc.ename, None)  # the kernel's KitError, by its class's name
        error.exit_code = (
            kind.exit_code if isinstance(kind, type) and issubclass(kind, KitError) else 1
        )
        raise error from None
    _steady_injected_cell(target)
    return target


def _steady_injected_cell(notebook: Path) -> None:
    """Papermill gives the cell of injected parameters a random id, so two packets of the same
    inputs would differ in it: name it for what it is."""
    import nbformat

    executed = nbformat.read(notebook, as_version=4)
    for cell in executed.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"
    nbformat.write(executed, notebook)


def render_packet(notebook: Path, target: Path, manifest_doc: dict) -> Path:
    """Render the executed notebook to one self-contained HTML file with the kit's template."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    period = manifest_doc["period"]
    start = datetime.fromisoformat(period["start"]).date()
    last = (datetime.fromisoformat(period["end"]) - timedelta(days=1)).date()
    nb.metadata["title"] = f"{manifest_doc['workspace']['name']} — {period['label']}"
    nb.metadata["allocation_kit"] = {
        "name": manifest_doc["workspace"]["name"],
        "period": period["label"],
        "period_span": f"{start:%d %b %Y} – {last:%d %b %Y} (UTC)",
        "generated_at": manifest_doc["created_at"].replace("T", " ").replace("+00:00", " UTC"),
        "kit_version": manifest_doc["kit_version"],
    }
    exporter = HTMLExporter(
        template_name="review_packet",
        extra_template_basedirs=[str(resource_dir("templates"))],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")
    return target


def period_summary(folder: Path) -> dict | None:
    """What the index shows for one period folder, from its evidence (None if it has none)."""
    from .chargeback import bill_charges, bill_items

    manifest_path = folder / "evidence" / "manifest.json"
    if not manifest_path.is_file():
        return None
    doc = json.loads(manifest_path.read_text())
    rec_path = folder / "evidence" / "reconciliation.json"
    rec = json.loads(rec_path.read_text()) if rec_path.is_file() else {}
    spend_path = folder / "evidence" / "spend_review.json"
    spend = json.loads(spend_path.read_text()) if spend_path.is_file() else {}
    total = Decimal(doc["conservation"]["ledger_total"])
    unallocated = Decimal(doc["conservation"]["unallocated"])
    charges: dict[str | None, Decimal] | None = None  # team (None: kept by the reviewer) -> charge
    charge_path = folder / "evidence" / "chargeback.csv"
    if charge_path.is_file():  # evidence of kit versions before the chargeback has none
        with charge_path.open(newline="", encoding="utf-8") as handle:
            charges = {
                row["team"] or None: Decimal(row["charge"]) for row in evidence_reader(handle)
            }
    return {
        "period": doc["period"]["label"],
        "kind": doc["period"].get("kind", "month"),
        "start": doc["period"]["start"],
        "dates": _dates_text(doc["period"]["start"], doc["period"]["end"]),
        "currency": doc["workspace"]["currency"],
        "name": doc["workspace"]["name"],
        "ledger_cost": total,
        "billed_cost": Decimal(rec["billed_cost"]) if rec.get("billed_cost") else None,
        "verdict": rec.get("result", "no bill"),
        "coverage_pct": (total - unallocated) / total * 100 if total else None,
        "exceptions": doc["counts"]["exception_rows"],
        "anomalies": (
            None
            if not spend
            else spend["anomalies"]["count"]
            if spend["anomalies"]["baseline"] == "ok"
            else "no baseline yet"
        ),
        "budgets_exceeded": spend["budgets"]["exceeded"] if spend.get("budgets") else None,
        "month_to_date_exceeded": (spend.get("budgets") or {}).get("month_to_date_exceeded"),
        "chargeback_fails": spend["chargeback"]["fail"] if spend else None,
        "chargeback_follow_ups": spend["chargeback"]["needs_follow_up"] if spend else None,
        "sign_off": spend.get("sign_off", {})
        .get("proposed_result", "not recorded")
        .replace("_", " "),
        **_recorded_sign_off(folder),
        "created_at": doc["created_at"],
        "packet": f"{folder.name}/packet.html" if (folder / "packet.html").is_file() else None,
        "charges": charges,
        "statements": sorted(p.name for p in (folder / "statements").glob("*.html")),
        **_team_rows(folder / "evidence" / "teams.csv"),
        "against_bill": bill_items(rec, doc["workspace"]["currency"]) is not None,
        # the bill's charges for a longer period (a month's tax beside a week): not in it
        "charges_apart": bool(rec and bill_charges(rec, doc["workspace"]["currency"])[1]),
        # earlier periods' evidence re-run or first run after this review compared with it
        "outdated": outdated_text(
            outdated_baseline(
                folder.parent, parse_period(doc["period"]["label"]), doc.get("inputs", [])
            )
        ),
    }


def _recorded_sign_off(folder: Path) -> dict[str, str | bool | None]:
    """The index's view of the period's review log: {"signed": the result of the sign-off of
    the latest run (None: not signed), "locked", "signed_note": who signed and when, or what
    became of an earlier run's sign-off, "alarm": what a reader must know first (the evidence
    changed since it was signed, the log is missing or broken), "override": the proposal a
    kinder sign-off overrode}."""
    from .signoff import evidence_problem, overridden, sign_off_state

    none = {"signed": None, "locked": False, "signed_note": None, "alarm": None, "override": None,
            "signed_page": None, "record": None}  # fmt: skip
    try:
        state = sign_off_state(folder)
    except InputError as exc:  # an edited log: said, and the period still listed
        print(f"warning: {exc.line()}", file=sys.stderr)
        return none | {"alarm": f"review log broken: {exc.where or ''} {exc.expected}".strip()}
    if state.missing:
        return none | {"locked": True, "alarm": f"review log {SIGN_OFF_FILE} missing"}
    current, earlier = state.current, state.earlier
    if current is None:
        note = None
        if earlier:
            how = "reopened after" if state.reopened else "earlier run signed"
            note = f"{how} {earlier['result'].replace('_', ' ')} of {earlier['at'][:10]}"
        return none | {"signed_note": note}
    role = f" ({current['role']})" if current.get("role") else ""
    problem = evidence_problem(folder, current["evidence_sha256"])
    proposed = current.get("proposed_result")
    kinder = overridden(current["result"], proposed)
    return {
        "signed": current["result"].replace("_", " "),
        "locked": state.locked,
        "signed_note": f"signed by {current['signed_by']}{role}, {current['at'][:10]}",
        "signed_page": f"{folder.name}/{SIGN_OFF_PAGE}"
        if (folder / SIGN_OFF_PAGE).is_file()
        else None,
        # the file it names (the whole problem: `allocation-kit sign-off` says it in one line)
        "alarm": f"evidence changed since sign-off: {problem.split(':')[0]}" if problem else None,
        "override": proposed.replace("_", " ") if kinder else None,
        "record": current,
    }


def _team_rows(path: Path) -> dict[str, set[str]]:
    """{"teams": every team of teams.csv, "unpriced_teams": those whose cost leaves out
    billable calls without a price}; empty without the file."""
    rows = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(evidence_reader(handle))
    return {
        "teams": {r["team"] for r in rows},
        "unpriced_teams": {r["team"] for r in rows if int(r["unpriced_requests"])},
    }


def _dates_text(start: str, end: str) -> str:
    """'2026-09-28 to 2026-10-04' for [start, end) (the last day inclusive), or one day."""
    first = datetime.fromisoformat(start).date()
    last = (datetime.fromisoformat(end) - timedelta(days=1)).date()
    return first.isoformat() if first == last else f"{first} to {last}"


INDEX_KINDS = {"month": "Months", "week": "Weeks", "range": "Date ranges"}
CHARGE_PERIODS = 6  # how many of a kind's latest periods the index's charges table shows


def charges_table(group: list[dict]) -> dict | None:
    """The index's charges by team for one kind of period (`period_summary` rows, newest
    first): those of its latest CHARGE_PERIODS periods that have a chargeback.csv, oldest
    first, with each team's charge in each (None: no line, the team had no cost) and whether its
    cost leaves out calls without a price, the line the
    reviewer keeps and the total, each with the link to the team's statement of that period;
    every team of the periods' teams.csv, by their charge in the newest period, largest first.
    None when no period has charges."""
    periods = [r for r in group[:CHARGE_PERIODS] if r["charges"] is not None][::-1]
    if not periods:
        return None
    newest = periods[-1]["charges"]
    teams = sorted(  # teams without a cost have no line: teams.csv lists every registered one
        {t for r in periods for t in [*r["charges"], *r["teams"]] if t is not None},
        key=lambda t: (-newest.get(t, Decimal(0)), t),
    )
    from .statements import statement_file

    def page(r: dict, team: str) -> str | None:
        name = statement_file(team)
        return f"{r['period']}/statements/{name}" if name in r["statements"] else None

    return {
        "periods": [r["period"] for r in periods],
        # a signed period whose evidence changed since: its column is not what was approved
        "changed": [r["period"] for r in periods if (r.get("alarm") or "").startswith("evidence")],
        # charges nobody approved yet (not signed), or that a reviewer refused (signed fail)
        "provisional": [r["period"] for r in periods if not r.get("signed")],
        "refused": [r["period"] for r in periods if r.get("signed") == "fail"],
        "currency": periods[-1]["currency"],
        "teams": [
            (
                t,
                page(periods[-1], t),
                [(r["charges"].get(t), t in r["unpriced_teams"], page(r, t)) for r in periods],
            )
            for t in teams
        ],
        "unpriced": any(r["unpriced_teams"] for r in periods),
        "kept": [r["charges"].get(None, Decimal(0)) for r in periods],
        "totals": [sum(r["charges"].values(), Decimal(0)) for r in periods],
        "earlier": len(group) > CHARGE_PERIODS,  # older periods of the kind are not shown
        "no_bill": [r["period"] for r in periods if not r["against_bill"]],
        "apart": [r["period"] for r in periods if r["against_bill"] and r["charges_apart"]],
        "without": [r["period"] for r in group[:CHARGE_PERIODS] if r["charges"] is None][::-1],
    }


def write_index(out: Path) -> Path:
    """Rewrite out/index.html: every period with its verdict, totals and coverage, months,
    weeks and date ranges each in a table of their own (their totals overlap), newest first."""
    import jinja2

    from .present import minor_word, money, percent

    rows = period_rows(out)
    groups = [
        (title, group, charges_table(group))
        for kind, title in INDEX_KINDS.items()
        if (group := [r for r in rows if r["kind"] == kind])
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates") / "index")),
        autoescape=True,
    )
    page = env.get_template("index.html.j2").render(
        rows=rows,
        groups=groups,
        name=rows[0]["name"] if rows else "allocation-kit",
        money=money,
        minor_word=minor_word,
        percent=percent,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    return write_whole(out / "index.html", page)


def period_rows(out: Path, unreadable: list[str] | None = None) -> list[dict]:
    """`period_summary` of every period folder in out, newest first; a folder whose evidence
    cannot be read is named on stderr (and in `unreadable`) and left out."""
    rows = []
    for folder in sorted(out.iterdir()) if out.is_dir() else []:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            summary = period_summary(folder)
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError, ConfigError) as exc:
            # another period's evidence, edited or broken: this run's period is fine
            print(
                f"warning: {folder / 'evidence'}: unreadable evidence ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); left out of the index",
                file=sys.stderr,
            )
            if unreadable is not None:
                unreadable.append(folder.name)
            continue
        if summary:
            rows.append(summary)
    rows.sort(key=lambda r: r["start"], reverse=True)
    return rows
