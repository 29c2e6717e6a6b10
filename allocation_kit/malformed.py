"""Malformed data files, found on the error path: an empty file, the first CSV row whose number
of fields differs from the header's, the first JSONL line that is not a JSON object.

The loaders (`load`, `billing`, `adapters`) call these only once DuckDB has failed to read a
file or has read it in a way that cannot be right, so the success path never pays for a second
pass over the data. Messages name positions, never the record's text, which may hold prompt
content.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path
from typing import IO

import duckdb

from .errors import InputError

__all__ = [
    "EMPTY_FILE",
    "bad_json_line",
    "duplicate_header",
    "first_non_utf8",
    "header_delimiter",
    "is_empty",
    "malformed_json_error",
    "not_utf8_error",
    "ragged_row",
    "sql_identifier",
]

EMPTY_FILE = "the file is empty"
_NEVER_SKIPPED = "fix or remove the record (records are never skipped)"


def _text(path: Path) -> IO[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    return opener(path, "rt", newline="", encoding="utf-8", errors="replace")


def is_empty(path: Path) -> bool:
    """Whether the file holds nothing but white space (reads up to its first other character)."""
    try:
        with _text(path) as handle:
            for block in iter(lambda: handle.read(1 << 16), ""):
                if block.strip():
                    return False
    except (OSError, EOFError):  # not gzip after all: not empty either
        return False
    return True


def ragged_row(path: Path, delimiter: str = ",") -> tuple[str, str] | None:
    """('row N (line L)', 'got F fields, expected H like the header') of the first CSV row whose
    number of fields differs from the header's; None if every row has the header's. Lines count
    quoted line breaks; blank lines, which readers skip, are no rows."""
    with _text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, [])
        line = reader.line_num + 1
        number = 0
        for record in reader:
            if record:
                number += 1
                if len(record) != len(header):
                    return (
                        f"row {number} (line {line})",
                        f"got {len(record)} field{'' if len(record) == 1 else 's'}, "
                        f"expected {len(header)} like the header",
                    )
            line = reader.line_num + 1
    return None


def bad_json_line(path: Path) -> tuple[str, str] | None:
    """('line N', what is wrong) of the first record of a JSONL file (or a JSON array) that is
    not a JSON object; None if every record is one."""
    with _text(path) as handle:
        head = handle.read(1 << 16).lstrip()
    if head.startswith("["):  # one JSON array
        with _text(path) as handle:
            try:
                json.load(handle)
            except ValueError as exc:
                return f"line {exc.lineno}", _not_json(exc)
        return None
    with _text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))
            except ValueError as exc:
                return f"line {number}", _not_json(exc)
            if not isinstance(record, dict):
                return f"line {number}", f"not a JSON object; {_NEVER_SKIPPED}"
    return None


def _not_json(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON ({exc.msg} at column {exc.colno}); {_NEVER_SKIPPED}"


def malformed_json_error(exc: duckdb.Error, files: list[Path]) -> InputError | None:
    """The InputError naming the file and line of DuckDB's "Malformed JSON" error (DuckDB's own
    line number is off); None for any other error."""
    message = str(exc)
    if "Malformed JSON" not in message:
        return None
    named = re.search(r'in file "(.+?)"', message)
    path = Path(named.group(1)) if named else files[0]
    found = bad_json_line(path)
    if found is None:
        line = re.search(r"in line (\d+)", message)
        found = (f"line {line.group(1)}" if line else "", f"not valid JSON; {_NEVER_SKIPPED}")
    return InputError(path, *found)


def not_utf8_error(exc: Exception, files: list[Path]) -> InputError | None:
    """The InputError naming the first file and line that is not UTF-8 text, when DuckDB's error
    `exc` says a file is not UTF-8 encoded (its own line and record are off); None otherwise."""
    if "not utf-8 encoded" not in str(exc).lower():
        return None
    return next(filter(None, map(first_non_utf8, files)), None)


def first_non_utf8(path: Path) -> InputError | None:
    """The InputError naming the first line of the file that is not UTF-8 text; None if every
    line is (reads the whole file)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return InputError(
                    path,
                    f"line {number}",
                    f"byte {raw[bad.start]:#04x} at column {bad.start + 1} is not UTF-8 text; "
                    "expected a file saved as UTF-8",
                )
    return None


def header_delimiter(path: Path) -> str:
    """The delimiter of a CSV file, as a sniffer would take it from the header: the most
    frequent of comma, semicolon, tab and bar outside quotes (a comma on a tie)."""
    with _text(path) as handle:
        line = handle.readline()
    outside = "".join(line.split('"')[::2])  # the text between quoted names
    return max(",;\t|", key=outside.count)


def csv_header(path: Path, delimiter: str = ",") -> list[str]:
    """The column names of a CSV file's header line, as written (a BOM left out)."""
    with _text(path) as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    return [name.removeprefix("\ufeff") for name in header]


def duplicate_header(path: Path, delimiter: str = ",") -> tuple[str, str] | None:
    """('line 1', what is wrong) when the CSV header names a column twice (a reader would keep
    one and rename the other, so the values of the second would be read as another column)."""
    header = csv_header(path, delimiter)
    seen: dict[str, str] = {}  # DuckDB's column names ignore case: team and TEAM are one
    for name in (h.strip() for h in header):
        first = seen.get(name.lower())
        if name and first is not None:
            case = "" if first == name else f" ({name!r}: column names ignore case)"
            return "line 1", (
                f"the header names column {first!r} twice{case}; expected each column once"
            )
        seen[name.lower()] = name
    return None


def sql_identifier(name: str) -> str:
    """A column name as a quoted SQL identifier: '"' inside it doubled."""
    return '"' + name.replace('"', '""') + '"'
