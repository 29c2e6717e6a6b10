"""Load: read the period's request ledger into DuckDB under the canonical schema.

Only this module and `report` touch files. The ledger is never pulled into pandas: it stays
a DuckDB view over the user's Parquet files, or over the typed table a CSV or JSONL ledger is
parsed into once (`_parse_once`), and later stages are SQL over it.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from .adapters import adapted_requests
from .config import ADAPTER_FORMATS, MAX_TOKENS, RequestsSource
from .errors import ConfigError, InputError
from .malformed import (
    EMPTY_FILE,
    bad_json_line,
    csv_header,
    duplicate_header,
    header_delimiter,
    is_empty,
    malformed_json_error,
    not_utf8_error,
    ragged_row,
)
from .malformed import (
    sql_identifier as _quote,
)
from .present import counted
from .price import alias_sql

__all__ = [
    "CANONICAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "LoadedLedger",
    "connect",
    "file_sha256",
    "load_requests",
    "matching_files",
    "unordered",
]

# column -> DuckDB type of the canonical request ledger (DESIGN.md), in order.
CANONICAL_COLUMNS: dict[str, str] = {
    "request_id": "VARCHAR",
    "timestamp": "TIMESTAMP",  # UTC
    "team": "VARCHAR",
    "application": "VARCHAR",
    "environment": "VARCHAR",
    "workload_class": "VARCHAR",
    "feature": "VARCHAR",
    "job_id": "VARCHAR",
    "caller_id": "VARCHAR",
    "endpoint": "VARCHAR",
    "model": "VARCHAR",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cached_input_tokens": "BIGINT",
    "reasoning_tokens": "BIGINT",
    "cache_write_tokens": "BIGINT",
    "status_code": "INTEGER",
    "idempotency_key": "VARCHAR",
    "batch": "BOOLEAN",
    # extensions: served from the gateway's cache (counted, never billable: the provider did not
    # see it), the gateway's own cost of the call (a second opinion, never the kit's price), and
    # why an adapter could read the row only in part (such rows are quarantined)
    "cache_hit": "BOOLEAN",
    "recorded_cost": "DECIMAL(38, 12)",
    "source_problem": "VARCHAR",
}
REQUIRED_COLUMNS = ("request_id", "timestamp", "model", "input_tokens", "output_tokens")
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
)
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True)
class LoadedLedger:
    """The canonical ledger as the DuckDB view `requests`, and the files behind it."""

    files: tuple[Path, ...]
    formats: dict[str, str]  # file -> csv | parquet | jsonl
    columns: dict[str, str]  # canonical column -> the source column it came from ('' = absent)
    rows: int  # -1 until the values are checked (`load_requests(check=False)`)
    canonical: dict[str, str] = field(default_factory=dict)  # column -> SQL over raw_requests
    source_types: dict[str, str] = field(default_factory=dict)  # source column -> DuckDB type
    # the table a text ledger was parsed into (`_parse_once`), with the column `source_bad`
    # (`problem_sql`); '' when `requests` reads the files themselves
    table: str = ""

    def problem_sql(self) -> str:
        """SQL boolean over `raw_requests`: the row has a value `check_values` rejects."""
        checks = _problems(self.columns, self.source_types, trim="csv" in self.formats.values())
        return "COALESCE(" + " OR ".join(f"({c})" for _, c, _ in checks) + ", false)"

    def scan_sql(self, select: Callable[[Mapping[str, str]], str]) -> str:
        """SQL: one row per ledger row with the columns `select` lists, given the SQL of each
        canonical column, plus `bad` (the row has a value `check_values` rejects); from the
        table the text ledger was parsed into, or else from the files."""
        if self.table:
            columns = {c: c for c in CANONICAL_COLUMNS}
            return f"SELECT {select(columns)}, source_bad AS bad FROM {self.table}"
        columns = {c: f"({sql})" for c, sql in self.canonical.items()}
        return f"SELECT {select(columns)}, {self.problem_sql()} AS bad FROM raw_requests"

    def check_values(self, con: duckdb.DuckDBPyConnection) -> int:
        """The number of rows; raises InputError naming the file and row of the first bad
        value (see `load_requests`)."""
        return _check_values(con, self)

    def unreadable(self, exc: duckdb.Error) -> InputError:
        """The error for a scan of `raw_requests` that DuckDB failed (a CSV row past the part
        its sniffer read, say): the first malformed record, else DuckDB's first line."""
        return _malformed(list(self.files), self.formats, exc) or InputError(
            ", ".join(sorted(self.formats)), None, f"cannot read: {_first_line(exc)}"
        )


def connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection set to UTC, with spilling to a temp folder when needed."""
    con = duckdb.connect()
    # With the ICU extension loaded DuckDB would use the local zone for dates; without it,
    # timestamps with time zone are UTC already and the setting does not exist.
    with contextlib.suppress(duckdb.Error):
        con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


@contextlib.contextmanager
def unordered(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Let DuckDB return rows of queries without ORDER BY in any order (and so write and scan
    in parallel) for the statements inside; only for results whose order nothing reads."""
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = true")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matching_files(root: Path, pattern: str, what: str, config_name: str) -> list[Path]:
    """The files matching the glob `pattern` (relative to root), or an InputError naming it."""
    # the workspace folder is a path, not a pattern: a folder named `w[1]` must match itself
    full = pattern if Path(pattern).is_absolute() else str(Path(glob.escape(str(root))) / pattern)
    found = [Path(p) for p in glob.glob(full, recursive=True)]
    # a link whose target is gone (an unmounted share) or loops: named, never a file fewer
    broken = [p for p in found if p.is_symlink() and not p.exists()]
    if broken:
        raise InputError(
            broken[0],
            None,
            "a link to a file that cannot be reached (its target is missing or "
            "the link loops); restore its target or remove the link",
        )
    files = sorted(p for p in found if p.is_file())
    if not files:
        folder = " (a folder: add a pattern such as '/*.csv')" if Path(full).is_dir() else ""
        raise InputError(
            config_name, f"{what}.path", f"no files match {pattern!r}{folder} (looked in {root})"
        )
    return files


def _file_format(path: Path, declared: str, config_name: str) -> str:
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in _SUFFIX_FORMATS and not (suffix == ".gz" and ".csv" not in suffixes):
            return _SUFFIX_FORMATS[suffix]
    raise ConfigError(
        config_name,
        "requests.format",
        f"cannot tell the format of {path.name} from its suffix; "
        "expected .csv, .parquet or .jsonl, or set format",
    )


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _reader(fmt: str, files: list[Path]) -> str:
    paths = _sql_list(files)
    if fmt == "parquet":
        return f"read_parquet({paths}, union_by_name = true, filename = true)"
    if fmt == "csv":
        # the header is the first line: left to guess, DuckDB's sniffer skips lines down to a
        # ragged last row and takes that for the header (the rows above it vanish)
        return (
            f"read_csv({paths}, all_varchar = true, union_by_name = true, filename = true, "
            "header = true, skip = 0)"
        )
    return (
        f"read_json({paths}, format = 'newline_delimited', union_by_name = true, "
        "filename = true, sample_size = -1)"
    )


def load_requests(
    con: duckdb.DuckDBPyConnection,
    source: RequestsSource,
    root: Path,
    config_name: str,
    *,
    check: bool = True,
    aliases: Mapping[str, Mapping[str, str]] | None = None,
    callers: Mapping[str, str] | None = None,
    priced: frozenset[str] = frozenset(),
) -> LoadedLedger:
    """Create the view `requests` (canonical columns + `source_file`) over the ledger files,
    read as they are or through the adapter `source.format` names (see `adapters`).

    Raises InputError for a missing or empty ledger, an empty file, a CSV row whose number of
    fields differs from the header's, a JSONL line that is not a JSON object, a missing
    required or mapped column, a missing required value, non-numeric, fractional or negative
    token counts, unparseable timestamps, status codes and batch flags, naming the file and
    row. `aliases` ({column: {other name: id}}; see `Workspace.ledger_aliases`) rename the
    ledger's models, teams and applications to the names the snapshot and registry use;
    `callers` ({caller_id: application id}) give an untagged request (no team, no application)
    the application of its caller. `priced` (the snapshot's model names and aliases) lets an
    adapter pick, of a gateway's model group and deployed model, the one with a price.
    `check=False` leaves the values (the scan that checks them) to the caller:
    `LoadedLedger.problem_sql` flags bad rows in a pass of its own, and
    `LoadedLedger.check_values` reports them.
    """
    files = matching_files(root, source.path, "requests", config_name)
    adapter = source.format in ADAPTER_FORMATS
    declared = "auto" if adapter else source.format
    formats = {str(f): _file_format(f, declared, config_name) for f in files}
    if adapter:
        columns = adapted_requests(con, source, files, formats, config_name, priced)
    else:
        columns = source.columns
        _read_as_they_are(con, files, formats)
    source_types = {row[0]: row[1] for row in con.execute("DESCRIBE raw_requests").fetchall()}

    mapped: dict[str, str] = {}
    unknown = set(columns) - set(CANONICAL_COLUMNS)
    if unknown:
        first = sorted(unknown)[0]
        reversed_hint = (
            f" (the map is {{canonical: yours}}: write {columns[first]}: {first})"
            if columns[first] in CANONICAL_COLUMNS
            else ""
        )
        raise ConfigError(
            config_name,
            f"requests.columns.{first}",
            f"not a canonical column{reversed_hint}; expected one of "
            f"{', '.join(CANONICAL_COLUMNS)}",
        )
    for column in CANONICAL_COLUMNS:
        wanted = columns.get(column, column)
        mapped[column] = wanted if wanted in source_types else ""
    # A required column must be there; so must any column kit.yaml maps (a typo in a mapping
    # would otherwise turn its values into the canonical default).
    missing = [
        c
        for c in CANONICAL_COLUMNS
        if not mapped[c] and (c in REQUIRED_COLUMNS or c in source.columns)
    ]
    if missing:
        column = missing[0]
        kind = "required column" if column in REQUIRED_COLUMNS else "column"
        what = (
            f"no column {columns[column]!r} (kit.yaml requests.columns reads {column} from it)"
            if column in columns
            else f"missing {kind} {column!r}"
        )
        found = ", ".join(c for c in source_types if c != "filename")
        if {"startTime", "call_type"} <= set(source_types):  # a LiteLLM_SpendLogs export
            found += "; this looks like a LiteLLM spend-log export: set requests.format: litellm"
        raise _misread(files, formats, source_types) or InputError(
            files[0] if len(files) == 1 else source.path,
            None,
            f"{what}; columns found: {found}",
        )
    if len(files) > 1 and not adapter:
        needed = {c: mapped[c] for c in CANONICAL_COLUMNS if c in REQUIRED_COLUMNS or c in columns}
        _every_file_has(con, files, formats, needed)

    trim = "csv" in formats.values()
    canonical = {
        column: _canonical(column, kind, mapped[column], source_types, trim)
        for column, kind in CANONICAL_COLUMNS.items()
    }
    for column, names in (aliases or {}).items():
        canonical[column] = alias_sql(canonical[column], names)
    if callers:  # only a request that names no owner at all: a tag as sent always wins
        app, team, caller = (canonical[c] for c in ("application", "team", "caller_id"))
        owned = alias_sql(caller, callers, otherwise="NULL")
        canonical["application"] = (
            f"(CASE WHEN {app} IS NULL AND {team} IS NULL THEN {owned} ELSE {app} END)"
        )
    selects = [f"{sql} AS {column}" for column, sql in canonical.items()]
    prefix = str(root.resolve()).rstrip("/") + "/"
    selects.append(f"replace(filename, {_literal(prefix)}, '') AS source_file")
    selects.append("filename AS source_path")
    loaded = LoadedLedger(tuple(files), formats, mapped, -1, canonical, source_types)
    if not adapter and {"csv", "jsonl"} & set(formats.values()):
        loaded = _parse_once(con, loaded, selects)
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW requests AS SELECT {', '.join(selects)} FROM raw_requests"
        )
    return replace(loaded, rows=loaded.check_values(con)) if check else loaded


def _parse_once(
    con: duckdb.DuckDBPyConnection, loaded: LoadedLedger, selects: list[str]
) -> LoadedLedger:
    """Parse a text ledger (CSV, JSONL) once, into a table of the canonical columns plus
    `source_bad` (`problem_sql`) in a DuckDB file of a temporary folder, and make `requests` a
    view of it: every later pass (the checks, the suites, attribution, the evidence) then scans
    typed columns instead of parsing the text again, each about as fast as over Parquet. The
    file keeps memory bounded at any size (DuckDB pages it). Once written, the folder is
    removed: DuckDB keeps the file open, and the system frees it when the connection closes
    or the process ends, however it ends (where an open file cannot be removed, it goes with
    the connection)."""
    folder = tempfile.mkdtemp(prefix="allocation-kit-ledger-")
    weakref.finalize(con, shutil.rmtree, folder, True)
    alias = _quote(f"parsed_{Path(folder).name.rsplit('-', 1)[-1]}")
    con.execute(f"ATTACH {_literal(str(Path(folder) / 'ledger.duckdb'))} AS {alias}")
    table = f"{alias}.ledger"
    try:
        con.execute(
            f"CREATE TABLE {table} AS SELECT {', '.join(selects)}, "
            f"{loaded.problem_sql()} AS source_bad FROM raw_requests"
        )
    except duckdb.Error as exc:  # a CSV row past the part DuckDB's sniffer read, say
        shutil.rmtree(folder, ignore_errors=True)
        raise loaded.unreadable(exc) from None
    con.execute(f"CHECKPOINT {alias}")  # all in the file: no log left to write to the folder
    shutil.rmtree(folder, ignore_errors=True)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW requests AS SELECT * EXCLUDE (source_bad) FROM {table}"
    )
    return replace(loaded, table=table)


def _every_file_has(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    formats: dict[str, str],
    needed: dict[str, str],
) -> None:
    """InputError naming the first file of a glob that lacks a column the ledger needs
    ({canonical: source column}: the required ones and those kit.yaml maps). Read with the
    others, its rows would hold empty cells there instead (a JSONL file is not checked: its
    records name their own keys)."""
    for path in files:
        fmt = formats[str(path)]
        if fmt == "jsonl" or is_empty(path):
            continue
        if fmt == "csv":
            names = [n.strip() for n in csv_header(path, _delimiter(path))]
        else:
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(str(path))})")
            names = [row[0] for row in described.fetchall()]
        present = {n.lower() for n in names}  # DuckDB's column names ignore case
        for column, source in needed.items():
            if source.lower() not in present:
                kind = "required column" if column in REQUIRED_COLUMNS else "column"
                raise InputError(
                    path,
                    None,
                    f"missing {kind} {source!r}, which the other files of the ledger have; "
                    f"columns found: {', '.join(names)}",
                )


def _read_as_they_are(
    con: duckdb.DuckDBPyConnection, files: list[Path], formats: dict[str, str]
) -> None:
    """Create the view `raw_requests` over the files, each read by its format."""
    readers = []
    for path in files:
        if formats[str(path)] == "csv" and (twice := duplicate_header(path, _delimiter(path))):
            raise InputError(path, *twice)
    for fmt in ("parquet", "csv", "jsonl"):
        group = [f for f in files if formats[str(f)] == fmt]
        if group:
            try:
                con.execute(
                    f"CREATE OR REPLACE TEMP VIEW raw_{fmt} AS SELECT * FROM {_reader(fmt, group)}"
                )
                con.execute(f"SELECT * FROM raw_{fmt} LIMIT 0")
            except duckdb.Error as exc:
                raise _malformed(group, formats, exc) or InputError(
                    group[0], None, f"cannot read as {fmt}: {_first_line(exc)}"
                ) from None
            readers.append(f"raw_{fmt}")
    _same_kinds(con, readers, files, formats)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {r}" for r in readers)
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_requests AS {union}")


def _same_kinds(
    con: duckdb.DuckDBPyConnection, readers: list[str], files: list[Path], formats: dict[str, str]
) -> None:
    """An InputError naming a column that holds nested values (a struct, a list, a map) in the
    files of one format and other values in those of another: no union of them can be read
    (DuckDB's error would name neither the file nor the column)."""
    seen: dict[str, tuple[str, str]] = {}  # column -> (its type, the reader it was first in)
    for reader in readers:
        for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall():
            if name == "filename":
                continue
            first = seen.setdefault(name, (kind, reader))
            nested = [_nested(k) for k in (kind, first[0])]
            if kind != first[0] and any(nested):
                fmt, other = reader.removeprefix("raw_"), first[1].removeprefix("raw_")
                group = [f for f in files if formats[str(f)] == fmt]
                raise InputError(
                    group[0],
                    f"column {name!r}",
                    f"holds {kind} values in the {fmt} files but {first[0]} in the {other} "
                    "ones; expected the same kind of values in every file of the ledger",
                )


def _nested(kind: str) -> bool:
    return kind.startswith(("STRUCT", "MAP", "UNION")) or kind.endswith("]")


_REQUIRED = "a value (the column is required)"
_REQUIRED_TOKENS = "a token count (required for a successful call; blank only on a failed one)"
# The most tokens one request can count (a thousand times today's largest context windows):
# per-request costs in picodollars stay within 64 bits, and a period's sums within 128.
_TOO_MANY = f"a token count of at most {MAX_TOKENS:,} for one request"
_INTEGER_TYPES = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT"}


def _canonical(column: str, kind: str, src: str, source_types: dict[str, str], trim: bool) -> str:
    """The SQL for one canonical column; plain column references where the type already fits,
    so DuckDB can push the period filter down into Parquet."""
    if not src:
        default = "0" if column in TOKEN_COLUMNS else ("false" if kind == "BOOLEAN" else "NULL")
        return f"CAST({default} AS {kind})"
    ref, src_type = _quote(src), source_types[src]
    if kind == "VARCHAR":
        if src_type == "JSON":  # JSONL records that disagree on the type: '"search"' is search
            text = f"json_extract_string({ref}, '$')"
            return f"NULLIF(TRIM({text}), '')" if trim else f"NULLIF({text}, '')"
        if src_type != "VARCHAR":
            return f"CAST({ref} AS VARCHAR)"
        return f"NULLIF(TRIM({ref}), '')" if trim else f"NULLIF({ref}, '')"
    if kind == "TIMESTAMP":
        if src_type == "TIMESTAMP":
            return ref
        if src_type.startswith("TIMESTAMP"):
            return f"CAST({ref} AS TIMESTAMP)"
        return f"CAST(TRY_CAST({ref} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if kind == "BOOLEAN" and src_type == "VARCHAR" and trim:
        return f"TRY_CAST(TRIM({ref}) AS BOOLEAN)"
    if kind == "BIGINT" and src_type in _INTEGER_TYPES:
        value = ref if src_type == "BIGINT" else f"CAST({ref} AS BIGINT)"
    else:
        value = f"TRY_CAST({ref} AS {kind})"
    if column in TOKEN_COLUMNS:  # blank only where allowed: optional, or a failed attempt's
        return f"COALESCE({value}, 0)"
    return value


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _delimiter(path: Path) -> str:
    """The ledger CSV's delimiter, as DuckDB's sniffer finds it (a semicolon, say)."""
    return "\t" if ".tsv" in [s.lower() for s in path.suffixes] else header_delimiter(path)


def _first_malformed_record(files: list[Path], formats: dict[str, str]) -> InputError | None:
    """The first ragged CSV row or JSONL line that is not a JSON object (reads the files)."""
    for path in files:
        fmt = formats[str(path)]
        if fmt == "csv":
            found = ragged_row(path, _delimiter(path))
        else:
            found = bad_json_line(path) if fmt == "jsonl" else None
        if found:
            return InputError(path, *found)
    return None


def _malformed(files: list[Path], formats: dict[str, str], exc: duckdb.Error) -> InputError | None:
    """Why DuckDB could not read the files, when a file is to blame (error path only): an empty
    Parquet file, the first line of JSONL that is not JSON, the first ragged CSV row."""
    for path in files:
        if formats[str(path)] == "parquet" and is_empty(path):
            return InputError(path, None, EMPTY_FILE)
    if found := not_utf8_error(exc, [f for f in files if formats[str(f)] != "parquet"]):
        return found
    jsonl = [f for f in files if formats[str(f)] == "jsonl"]
    return (jsonl and malformed_json_error(exc, jsonl)) or _first_malformed_record(
        [f for f in files if formats[str(f)] == "csv"], formats
    )


def _misread(
    files: list[Path], formats: dict[str, str], source_types: dict[str, str]
) -> InputError | None:
    """Why DuckDB read the files into columns that cannot be right, when a file is to blame
    (error path only): every file empty, or a file read as one column: a CSV whose header its
    sniffer took as one name (a row with too many or too few fields), JSONL whose records it
    took whole (a line that is not a JSON object)."""
    empty = [f for f in files if is_empty(f)]
    if len(empty) == len(files):
        return InputError(files[0], None, EMPTY_FILE)
    one_column = source_types.get("json") == "JSON" or any(
        "," in name or "\t" in name for name in source_types
    )
    if not one_column:
        return None
    return _first_malformed_record([f for f in files if f not in empty], formats)


def _problems(
    mapped: dict[str, str], source_types: dict[str, str], trim: bool
) -> list[tuple[str, str, str]]:
    """(column, SQL condition on raw_requests that marks a bad row, what was expected).

    Typed sources (Parquet) only get the checks their types leave open, so the scan stays cheap.
    """
    checks = []

    def blank(src: str, kind: str) -> str:
        if kind != "VARCHAR":
            return f"{src} IS NULL"
        return f"NULLIF(TRIM({src}), '') IS NULL" if trim else f"({src} IS NULL OR {src} = '')"

    status = mapped.get("status_code")
    # a failed attempt's log often leaves its usage blank: no tokens, not a broken row
    failed = (
        f"COALESCE(TRY_CAST({_quote(status)} AS INTEGER) NOT BETWEEN 200 AND 299, false)"
        if status
        else "false"
    )
    for column in REQUIRED_COLUMNS:
        src = _quote(mapped[column])
        missing = blank(src, source_types[mapped[column]])
        if column in TOKEN_COLUMNS:
            missing = f"{missing} AND NOT {failed}"
        checks.append((column, missing, _REQUIRED_TOKENS if column in TOKEN_COLUMNS else _REQUIRED))
    for column in TOKEN_COLUMNS:
        if not mapped[column]:
            continue
        src, kind = _quote(mapped[column]), source_types[mapped[column]]
        if kind in _INTEGER_TYPES:
            checks.append((column, f"{src} < 0", "a token count of 0 or more"))
            checks.append((column, f"{src} > {MAX_TOKENS}", _TOO_MANY))
            continue
        # a value that is no number, or no whole one, or beyond BIGINT (TRY_CAST gives NULL)
        number = f"TRY_CAST({src} AS DOUBLE)"
        not_whole = f"COALESCE({number} <> TRY_CAST({src} AS BIGINT), true)"
        present = f"NOT ({blank(src, kind)})"
        checks.append((column, f"COALESCE(isnan({number}), false)", "a whole number of tokens"))
        checks.append((column, f"{present} AND {number} > {MAX_TOKENS}", _TOO_MANY))
        checks.append((column, f"{present} AND {not_whole}", "a whole number of tokens"))
        checks.append((column, f"TRY_CAST({src} AS BIGINT) < 0", "a token count of 0 or more"))
    ts, ts_type = _quote(mapped["timestamp"]), source_types[mapped["timestamp"]]
    if not ts_type.startswith("TIMESTAMP"):
        # DuckDB also reads 'infinity', 'epoch' and five-digit years: no ISO 8601 text
        moment = f"TRY_CAST({ts} AS TIMESTAMPTZ)"
        words = ""
        if ts_type == "VARCHAR":
            words = f" OR NOT (left(ltrim({ts}), 1) BETWEEN '0' AND '9')"
            # a zone abbreviation right after the time: DuckDB reads PST as Los Angeles time
            # (summer time in October) and refuses CEST; CST and IST each name several zones
            checks.append((
                "timestamp",
                f"regexp_matches({ts}, '[0-9]\\s*[A-Za-z]{{2,}}\\s*$') "
                f"AND NOT regexp_matches({ts}, '[0-9]\\s*(UTC|GMT|utc|gmt)\\s*$')",
                "a UTC offset (such as -08:00 or Z) or a zone name (such as "
                "America/Los_Angeles), not an abbreviation, which can name several zones",
            ))  # fmt: skip
        checks.append((
            "timestamp",
            f"{ts} IS NOT NULL AND ({moment} IS NULL OR NOT isfinite({moment}) "
            f"OR year({moment}) > 9999{words})",
            "an ISO 8601 timestamp such as 2026-10-01T12:00:00Z",
        ))  # fmt: skip
    if mapped["status_code"] and source_types[mapped["status_code"]] not in _INTEGER_TYPES:
        sc = _quote(mapped["status_code"])
        # a cast to INTEGER rounds: 299.5 would be read as 300, a failed call
        checks.append((
            "status_code",
            f"{sc} IS NOT NULL AND (TRY_CAST({sc} AS INTEGER) IS NULL "
            f"OR COALESCE(TRY_CAST({sc} AS DOUBLE) <> TRY_CAST({sc} AS INTEGER), true))",
            "an HTTP status code such as 200",
        ))  # fmt: skip
    for flag in ("batch", "cache_hit"):
        flag_type = source_types.get(mapped[flag])
        b = _quote(mapped[flag])
        if flag_type == "VARCHAR":  # DuckDB's spellings: true/false, t/f, yes/no, y/n, 1/0
            value = f"TRIM({b})" if trim else b
            checks.append((
                flag,
                f"NOT ({blank(b, 'VARCHAR')}) AND TRY_CAST({value} AS BOOLEAN) IS NULL",
                "true or false",
            ))  # fmt: skip
        elif flag_type in _INTEGER_TYPES:
            checks.append((flag, f"{b} NOT IN (0, 1)", "true or false"))
    if mapped["recorded_cost"]:  # in Parquet or JSONL too: NaN, inf or 1e40 is no amount
        rc, rc_type = _quote(mapped["recorded_cost"]), source_types[mapped["recorded_cost"]]
        checks.append((
            "recorded_cost",
            f"NOT ({blank(rc, rc_type)}) AND TRY_CAST({rc} AS DECIMAL(38, 12)) IS NULL",
            "an amount such as 0.0014",
        ))  # fmt: skip
    return checks


def _check_values(con: duckdb.DuckDBPyConnection, loaded: LoadedLedger) -> int:
    mapped, formats, source_types = loaded.columns, loaded.formats, loaded.source_types
    if loaded.table:  # flagged as it was parsed: the text is read again only to name a row
        total, bad = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE source_bad) FROM {loaded.table}"
        ).fetchone()
        if total and not bad:
            return total
    checks = _problems(mapped, source_types, trim="csv" in formats.values())
    counts = ", ".join(f"count(*) FILTER (WHERE {cond})" for _, cond, _ in checks)
    try:
        total, *bad = con.execute(f"SELECT count(*), {counts} FROM raw_requests").fetchall()[0]
    except duckdb.Error as exc:
        raise loaded.unreadable(exc) from None
    if total == 0:
        raise InputError(", ".join(sorted(formats)), None, "the ledger has no rows")
    for (column, condition, expected), n in zip(checks, bad, strict=True):
        if n:
            misread = _misread(list(loaded.files), formats, source_types)
            if misread:  # a file DuckDB read as one column: its values are all wrong
                raise misread
            src = _quote(mapped[column])
            rid = _quote(mapped["request_id"])
            found = f"SELECT filename, CAST({src} AS VARCHAR), CAST({rid} AS VARCHAR) "
            first = con.execute(f"{found} FROM raw_requests WHERE {condition} LIMIT 1").fetchall()
            if not first:  # NaN in Parquet: the filter pushed into the scan misses it; a window
                first = con.execute(  # function keeps the filter above the scan
                    f"{found} FROM (SELECT *, {condition} AS flagged, row_number() OVER () "
                    "FROM raw_requests) WHERE flagged LIMIT 1"
                ).fetchall()
            if not first:  # counted but not found again: no row
                raise InputError(
                    ", ".join(str(f) for f in loaded.files),
                    f"column {mapped[column]!r}",
                    f"{counted(n, 'row')} with a value other than {expected}",
                )
            file, value, request_id = first[0]
            if formats[file] == "jsonl" and (line := bad_json_line(Path(file))):
                raise InputError(file, *line)  # a `null` line: DuckDB reads a row of nothing
            row, written = _row_number(
                Path(file), formats[file], mapped[column], value, mapped["request_id"], request_id
            )
            value = value if written is None else written  # 2**70 as written, not 1.18e+21
            shown = "empty" if value is None or not str(value).strip() else repr(value)
            others = f" ({n - 1} more rows like it)" if n > 1 else ""
            raise InputError(
                file,
                f"{row}, column {mapped[column]!r}",
                f"got {shown}, expected {expected}{others}",
            )
    return total


def _row_number(
    path: Path, fmt: str, column: str, value: str | None, id_column: str, request_id: str | None
) -> tuple[str, str | None]:
    """A human row reference for the first row whose `column` holds `value` (error path only),
    and the value as the JSON line writes it (None: as DuckDB read it): a whole number past
    64 bits reads as a double, 1.1805916207174113e+21 for 2**70."""

    def matches(record: dict) -> bool:
        got = record.get(column)
        got = None if got is None or str(got).strip() == "" else str(got)
        want = None if value is None or str(value).strip() == "" else str(value)
        same_id = request_id is None or str(record.get(id_column)) == request_id
        if type(record.get(column)) is int and want is not None:  # a JSON whole number
            with contextlib.suppress(ValueError, OverflowError):
                return same_id and float(record[column]) == float(want)
        return same_id and (
            got == want or (got is not None and want is not None and got.strip() == want.strip())
        )

    if fmt == "csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            start = 2  # the physical line a record starts on: quoted line breaks count
            for number, record in enumerate(reader, start=1):
                if matches(record):
                    return f"row {number} (line {start})", None
                start = reader.line_num + 1
    elif fmt == "jsonl":
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and matches(record):
                    written = record.get(column)
                    return f"line {number}", str(written) if type(written) is int else None
    else:
        con = duckdb.connect()
        found = []
        with contextlib.suppress(duckdb.Error):  # an adapter's column may be derived
            found = con.execute(
                f"SELECT file_row_number FROM read_parquet(?, file_row_number = true) "
                f"WHERE CAST({_quote(id_column)} AS VARCHAR) IS NOT DISTINCT FROM ? "
                f"AND CAST({_quote(column)} AS VARCHAR) IS NOT DISTINCT FROM ? LIMIT 1",
                [str(path), request_id, value],
            ).fetchall()
        if found:
            return f"row {found[0][0] + 1}", None
    return f"request_id {request_id!r}", None
