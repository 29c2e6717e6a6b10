"""Evidence CSVs are opened in spreadsheets: a cell that one would run as a formula (a tag value
such as =HYPERLINK(…) in the ledger) is written with a leading apostrophe, and read back as it
was received."""

import csv

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation_kit.history import (
    evidence_reader,
    run_record,
    spreadsheet_safe,
    spreadsheet_safe_sql,
    unsafe_text,
)

from .conftest import request
from .test_cli import review


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd", "'+cmd"),
        ("-app", "'-app"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'quoted", "''quoted"),  # one more apostrophe: reading drops exactly one
        ("-0.13", "-0.13"),  # numbers are no formula
        ("+1e-5", "+1e-5"),
        ("-.5", "-.5"),
        ("-", "-"),  # a lone sign neither
        ("-\u0661\u0662", "'-\u0661\u0662"),  # Arabic-Indic digits: text to a spreadsheet
        ("search", "search"),
        ("1-2", "1-2"),
        ("", ""),
    ],
)
def test_a_formula_like_cell_is_written_as_text(value, written):
    assert spreadsheet_safe(value) == written
    assert unsafe_text(written) == value


def test_numbers_and_unknowns_are_written_as_they_are():
    assert [spreadsheet_safe(v) for v in (-5, None, True)] == [-5, None, True]


TRICKY = st.text(alphabet=st.sampled_from("=+-@'\t\r\n.eE09ax "), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(TRICKY | st.text(max_size=6), min_size=1, max_size=20))
def test_sql_and_python_agree_and_reading_gives_the_value_back(values):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    found = con.execute(f"SELECT {spreadsheet_safe_sql('v')} FROM t ORDER BY i").fetchall()
    written = [v for (v,) in found]
    assert written == [spreadsheet_safe(v) for v in values]
    assert [unsafe_text(w) for w in written] == values


def test_the_evidence_of_a_run_with_formula_tags_opens_as_text(workspace, tmp_path):
    formula = '=HYPERLINK("http://example.invalid","open")'
    config = workspace([
        request("r1"),
        request("@r2", team=formula, application=None),  # an unknown team
        request("r3", team=None, application="-rm"),  # an unknown application
    ])  # fmt: skip
    assert review(config) == 0
    evidence = tmp_path / "reports" / "2026-10" / "evidence"
    with (evidence / "exceptions.csv").open(newline="") as handle:
        raw = {r["request_id"]: (r["team"], r["application"]) for r in csv.DictReader(handle)}
    assert raw == {"'@r2": ("'" + formula, ""), "r3": ("", "'-rm")}
    with (evidence / "exceptions.csv").open(newline="") as handle:
        read = {r["request_id"]: (r["team"], r["application"]) for r in evidence_reader(handle)}
    assert read == {"@r2": (formula, ""), "r3": ("", "-rm")}
    with (evidence / "allocation.csv").open(newline="") as handle:
        unknown = [
            (r["allocation_status"], r["application"])
            for r in csv.DictReader(handle)
            if r["allocation_status"] == "unknown_owner"
        ]
    assert sorted(unknown) == [("unknown_owner", ""), ("unknown_owner", "'-rm")]
    record = run_record(evidence.parent)
    assert record is not None and record.exceptions == {"unknown_owner": 2}
