"""Earlier periods' evidence in the same output folder: the baseline for trends and anomalies.

Each review writes its evidence to OUT/<period>/evidence; the next review of the same kind of
period (month after month, week after week) reads it back from there. Only evidence files the kit
wrote are read, and a missing period is simply absent from the baseline, never invented.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .errors import ConfigError, InputError
from .load import file_sha256
from .periods import Period, parse_period, prior_periods
from .present import amount_text, count_text, listed, minor_places, money, unit_money

__all__ = [
    "BASELINE_PERIODS",
    "RunRecord",
    "baseline_files",
    "cell_text",
    "evidence_reader",
    "outdated_baseline",
    "outdated_by",
    "outdated_text",
    "prior_evidence",
    "rerun_changes",
    "run_record",
    "spreadsheet_safe",
    "spreadsheet_safe_sql",
    "unsafe_text",
]

BASELINE_PERIODS = 6  # how many earlier periods a baseline looks back at


# The columns of earlier evidence a baseline reads, and which of them are numbers.
READ_COLUMNS = {
    "spend_profile.csv": (
        ("scope", "key", "requests", "cost", "input_tokens", "output_tokens"),
        ("requests", "cost", "input_tokens", "output_tokens", "unpriced_requests"),
    ),
    "unit_economics.csv": (("name", "unit_cost", "definition_sha256"), ("unit_cost",)),
    "teams.csv": (("team", "unpriced_requests"), ("unpriced_requests",)),
}


# Every column of earlier evidence a later review's figures use (READ_COLUMNS plus the optional
# ones it reads when present): what `baseline_digest` hashes. A re-run that changes only other
# columns (the reviewer role in teams.csv, say) changes no later review.
COMPARED_COLUMNS = {
    "spend_profile.csv": (*READ_COLUMNS["spend_profile.csv"][0], "unpriced_requests"),
    "unit_economics.csv": (
        *READ_COLUMNS["unit_economics.csv"][0],
        "definition_changed",
        "unpriced_requests",
    ),
    "teams.csv": READ_COLUMNS["teams.csv"][0],
}


def baseline_digest(path: Path) -> str:
    """SHA-256 of what later reviews use of an earlier evidence file: its COMPARED_COLUMNS,
    row by row (the manifest's `compared_sha256` of a baseline input)."""
    digest = hashlib.sha256()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        # an optional column a file of an earlier kit version lacks is not hashed: its digest
        # stays the one that version's manifests hold
        columns = [c for c in COMPARED_COLUMNS[path.name] if c in (reader.fieldnames or ())]
        for row in reader:
            cells = [row.get(c) for c in columns]
            digest.update(json.dumps(cells).encode() + b"\n")
    return digest.hexdigest()


def baseline_files(out: Path, period: Period) -> list[Path]:
    """Every earlier evidence file a review of `period` reads as its baseline (what
    `prior_evidence` finds), for the manifest to hash: the anomalies and unit cost trends of
    a review depend on them as much as on its own inputs."""
    return [
        path
        for earlier in prior_periods(period, BASELINE_PERIODS)[::-1]
        for filename in READ_COLUMNS
        if (path := out / earlier.label / "evidence" / filename).is_file()
    ]


def outdated_baseline(out: Path, period: Period, inputs: list[dict]) -> dict[str, str]:
    """{earlier period: how its evidence in `out` now differs from what a review of `period`
    read as its baseline (the manifest's `inputs` of role "baseline")}, oldest first:

    - "new": the review read none of it (the earlier period was run after it);
    - "changed": re-run since with other results (or evidence added or removed);
    - "removed": the review read evidence that is no longer there.

    Empty when the review compared with the evidence `out` holds now. A review's changes,
    anomalies and unit-cost trends are fixed when it runs; this says when re-running it would
    compare it with other figures."""
    # what the review used of each file (`compared_sha256`), or the whole file (`sha256`) in
    # manifests written before the kit recorded that
    read = {
        (Path(e["path"]).parts[-3], Path(e["path"]).name): (
            (e["compared_sha256"], baseline_digest) if "compared_sha256" in e
            else (e["sha256"], file_sha256)
        )
        for e in inputs
        if e.get("role") == "baseline" and len(Path(e["path"]).parts) >= 3
    }  # fmt: skip
    now = {(p.parts[-3], p.name): p for p in baseline_files(out, period)}
    found: dict[str, str] = {}
    for earlier in prior_periods(period, BASELINE_PERIODS)[::-1]:
        label = earlier.label
        then_files = {name: sha for (lbl, name), sha in read.items() if lbl == label}
        now_files = {name: path for (lbl, name), path in now.items() if lbl == label}
        if not then_files and now_files:
            found[label] = "new"
        elif then_files and not now_files:
            found[label] = "removed"
        elif then_files.keys() != now_files.keys() or any(
            _differs(path, *then_files[name]) for name, path in now_files.items()
        ):
            found[label] = "changed"
    return found


def _differs(path: Path, recorded: str, digest) -> bool:
    """Whether `path` now hashes (by `digest`) to other than what a manifest `recorded`; an
    unreadable file (edited, not UTF-8) is no longer what was read."""
    try:
        return digest(path) != recorded
    except (OSError, ValueError, csv.Error):
        return True


def outdated_by(out: Path, period: Period) -> list[tuple[str, str]]:
    """[(later period, how: "new" or "changed", see `outdated_baseline`)] of the reviews in
    `out` whose baseline holds `period` and read other evidence of it than `out` holds now
    (just after `period` was run: they ran before it, or read an earlier run of it)."""
    found = []
    for manifest in sorted(out.glob("*/evidence/manifest.json")):
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            later = parse_period(doc["period"]["label"])
        except (OSError, ValueError, KeyError, TypeError, ConfigError):
            continue  # not a review the kit wrote: the index names it
        if period.label in {p.label for p in prior_periods(later, BASELINE_PERIODS)}:
            how = outdated_baseline(out, later, doc.get("inputs", [])).get(period.label)
            if how:
                found.append((later.label, how))
    return found


def outdated_text(found: dict[str, str]) -> str:
    """`outdated_baseline`'s finding in words: "2026-08 and 2026-09 were run after it;
    2026-07 was re-run since with other results"."""
    said = {
        "new": ("was run after it", "were run after it"),
        "changed": ("was re-run since with other results", "were re-run since with other results"),
        "removed": ("was removed since", "were removed since"),
    }
    parts = []
    for how, (one, many) in said.items():
        labels = [label for label, status in found.items() if status == how]
        if labels:
            parts.append(f"{listed(labels)} {one if len(labels) == 1 else many}")
    return "; ".join(parts)


def prior_evidence(
    out: Path, period: Period, filename: str, count: int = BASELINE_PERIODS
) -> list[tuple[Period, list[dict[str, str]]]]:
    """The rows of evidence/<filename> of the `count` periods before `period` that have one,
    oldest first. Evidence that is not what the kit wrote (edited, truncated) is an InputError
    naming the file, the row and the column, never a traceback deep in a baseline."""
    found = []
    for earlier in prior_periods(period, count):
        path = out / earlier.label / "evidence" / filename
        if path.is_file():
            found.append((earlier, _evidence_rows(path, *READ_COLUMNS.get(filename, ((), ())))))
    return found[::-1]


def _evidence_rows(path: Path, columns: tuple[str, ...], numbers: tuple[str, ...]) -> list[dict]:
    expected = "the evidence an earlier run wrote (remove or re-run that period)"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            rows = list(map(_plain, reader))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, None, f"unreadable ({exc}); expected {expected}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(path, None, f"missing column {missing[0]!r}; expected {expected}")
    for i, row in enumerate(rows, start=1):
        for column in numbers:  # an optional one (unpriced_requests) may be absent: None
            value = row.get(column)
            try:
                if value not in ("", None) and not Decimal(value).is_finite():
                    raise InvalidOperation  # NaN, Infinity: no amount
            except InvalidOperation:
                raise InputError(
                    path,
                    f"row {i} (line {i + 1}), column {column!r}",
                    f"got {value!r}, expected a number: {expected}",
                ) from None
    return rows


def cell_text(value: object) -> str:
    """An evidence CSV cell: exact decimals without exponent, empty for unknown, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


# A text cell that a spreadsheet (Excel, LibreOffice, Google Sheets) would run as a formula
# starts with one of these (CSV injection: a tag value such as =HYPERLINK(…) in the ledger).
# A leading apostrophe makes the cell text; a cell that starts with an apostrophe already gets
# one more, so dropping one leading apostrophe (`unsafe_text`) always gives the value back.
# Numbers (-0.13, +1e-5) and a lone sign are no formula and are written as they are.
_FORMULA_START = re.compile(r"[=@\t\r']|[+-].", re.DOTALL)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits


def spreadsheet_safe(value: object) -> object:
    """An evidence CSV cell a spreadsheet shows as the text it is (see `_FORMULA_START`)."""
    if isinstance(value, str) and _FORMULA_START.match(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe_sql(expr: str) -> str:
    """SQL: `spreadsheet_safe` of the VARCHAR `expr` (NULL stays NULL). The first character
    is looked at first: most cells pass on it, without a regular expression."""
    first = f"left({expr}, 1)"
    formula = (
        f"({first} IN ('=', '@', chr(9), chr(13), '''') OR ({first} IN ('+', '-') "
        f"AND length({expr}) > 1 AND NOT regexp_full_match({expr}, "
        "'[+-]([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?')))"
    )
    return f"CASE WHEN {formula} THEN '''' || {expr} ELSE {expr} END"


def unsafe_text(value: str) -> str:
    """The value `spreadsheet_safe` wrote as `value`."""
    return value[1:] if value.startswith("'") else value


def evidence_reader(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """The rows of an evidence CSV the kit wrote (`csv.DictReader` of `lines`), each cell as
    the value it stands for (`unsafe_text`)."""
    return map(_plain, csv.DictReader(lines))


def _plain(row: dict) -> dict:
    return {k: unsafe_text(v) if isinstance(v, str) else v for k, v in row.items()}


@dataclass(frozen=True)
class RunRecord:
    """What a period folder's evidence says of the run that wrote it: enough to tell a rerun
    what it changed."""

    created_at: str
    inputs: dict[str, str]  # "role: path" -> SHA-256
    exceptions: dict[str, int]  # reason -> rows of exceptions.csv
    unallocated: Decimal
    verdict: str | None
    sign_off: str | None
    currency: str
    requests: int | None = None  # requests in the period, each counted once
    ledger_cost: Decimal | None = None
    billed_cost: Decimal | None = None  # None: no bill comparable with the period
    charges: dict[str, Decimal] = field(default_factory=dict)  # team -> its charge


def run_record(folder: Path) -> RunRecord | None:
    """The record of the run whose evidence is in folder/evidence (None: no readable evidence,
    such as a folder an earlier kit version wrote in part)."""
    evidence = folder / "evidence"
    try:
        manifest = json.loads((evidence / "manifest.json").read_text(encoding="utf-8"))
        spend = json.loads((evidence / "spend_review.json").read_text(encoding="utf-8"))
        exceptions: dict[str, int] = {}
        with (evidence / "exceptions.csv").open(newline="", encoding="utf-8") as handle:
            for row in evidence_reader(handle):
                exceptions[row["reason"]] = exceptions.get(row["reason"], 0) + 1
        charges: dict[str, Decimal] = {}
        with (evidence / "teams.csv").open(newline="", encoding="utf-8") as handle:
            for row in evidence_reader(handle):
                if row.get("charge"):
                    charges[row["team"]] = Decimal(row["charge"])
        totals = spend["totals"]
        return RunRecord(
            created_at=manifest["created_at"],
            inputs={f"{i['role']}: {i['path']}": i["sha256"] for i in manifest["inputs"]},
            exceptions=exceptions,
            unallocated=Decimal(totals["unallocated"]),
            verdict=totals.get("reconciliation_result"),
            sign_off=(spend.get("sign_off") or {}).get("proposed_result"),
            currency=manifest["workspace"]["currency"],
            requests=(spend.get("requests") or {}).get("total"),
            ledger_cost=Decimal(totals["ledger_cost"]),
            billed_cost=Decimal(totals["billed_cost"]) if totals.get("billed_cost") else None,
            charges=charges,
        )
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation):
        return None


def rerun_changes(before: RunRecord, after: RunRecord) -> list[str]:
    """What a rerun of a period changed against the run it replaced, one line each: the inputs
    that differ; then the requests, the ledger total, the billed cost, the exception rows by
    reason, the unallocated cost, the teams' charges, the verdict and the proposed sign-off
    (what changed of them; "the same results" when nothing did)."""
    when = before.created_at.replace("T", " ").replace("+00:00", " UTC")
    changed = sorted(
        k.split(": ", 1)[1]
        for k in before.inputs.keys() | after.inputs.keys()
        if before.inputs.get(k) != after.inputs.get(k)
    )
    lines = [f"replaces the run of {when}" + (f"; inputs changed: {', '.join(changed)}"
                                              if changed else "; same inputs")]  # fmt: skip
    total = (sum(before.exceptions.values()), sum(after.exceptions.values()))
    moved = {
        r: after.exceptions.get(r, 0) - before.exceptions.get(r, 0)
        for r in sorted(before.exceptions.keys() | after.exceptions.keys())
    }
    parts = ", ".join(
        f"{r.replace('_', ' ')} {'+' if n > 0 else '−'}{count_text(abs(n))}"
        for r, n in moved.items()
        if n
    )
    changes = []

    def amounts(old: Decimal | None, new: Decimal | None) -> str:
        shown = [money(v, after.currency) if v is not None else "none" for v in (old, new)]
        if shown[0] != shown[1] or old is None or new is None:
            return f"{shown[0]} → {shown[1]}"
        if max(abs(old), abs(new)) < 1:  # a change below the minor unit still shows
            return f"{unit_money(old, after.currency)} → {unit_money(new, after.currency)}"
        places = minor_places(after.currency)
        while places < 12 and round(old, places) == round(new, places):
            places += 1
        exact = [amount_text(round(v, places), after.currency, places) for v in (old, new)]
        return f"{shown[0]} → {shown[1]} ({exact[0]} → {exact[1]})"

    if None not in (before.requests, after.requests) and before.requests != after.requests:
        changes.append(f"requests {count_text(before.requests)} → {count_text(after.requests)}")
    if None not in (before.ledger_cost, after.ledger_cost) and (
        before.ledger_cost != after.ledger_cost
    ):
        changes.append(f"ledger total {amounts(before.ledger_cost, after.ledger_cost)}")
    if before.billed_cost != after.billed_cost and before.ledger_cost is not None:
        changes.append(f"billed {amounts(before.billed_cost, after.billed_cost)}")
    if parts:
        changes.append(f"exception rows {count_text(total[0])} → {count_text(total[1])} ({parts})")
    if before.unallocated != after.unallocated:
        changes.append(f"unallocated {amounts(before.unallocated, after.unallocated)}")
    teams = sorted(before.charges.keys() | after.charges.keys())
    moved_charges = [
        (t, before.charges.get(t), after.charges.get(t))
        for t in teams
        if before.charges.get(t) != after.charges.get(t)
    ]
    if moved_charges:
        moved_charges.sort(key=lambda c: -abs((c[2] or 0) - (c[1] or 0)))  # the largest first
        shown = [f"{t} {amounts(old, new)}" for t, old, new in moved_charges[:3]]
        more = len(moved_charges) - len(shown)
        changes.append(
            "charges " + ", ".join(shown) + (f" and {count_text(more)} more" if more else "")
        )
    for what, old, new in (
        ("verdict", before.verdict, after.verdict),
        ("proposed sign-off", before.sign_off, after.sign_off),
    ):
        if old != new:
            changes.append(f"{what} {(old or 'none').replace('_', ' ')} → "
                           f"{(new or 'none').replace('_', ' ')}")  # fmt: skip
    lines.append("; ".join(changes) if changes else "the same results")
    return lines
