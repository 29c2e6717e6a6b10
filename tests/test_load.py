"""Load: a ledger the kit cannot use is one line naming the file, the row or key and what was
expected, whether `load_requests` checks the values or the pipeline's own pass flags them."""

import json
from datetime import datetime

import pytest

from allocation_kit.config import load_workspace
from allocation_kit.errors import KitError
from allocation_kit.load import connect, load_requests
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger

from .conftest import KIT, request, write_ledger

HEADER = "request_id,timestamp,model,input_tokens,output_tokens"


def kit_reading(requests: str) -> str:
    """kit.yaml with `requests:` set to the given flow mapping."""
    return KIT.replace("requests: {path: requests.csv}", f"requests: {requests}")


def loaded_requests(config):
    """(connection, LoadedLedger) of the workspace's ledger, its values checked."""
    workspace = load_workspace(config)
    con = connect()
    loaded = load_requests(con, workspace.kit.requests, workspace.root, workspace.config_path.name)
    return con, loaded


def load_error(config) -> tuple[int, str]:
    """(exit code, line) of the error loading the ledger; the pipeline, which flags bad rows in
    its own pass, must end with the same line."""
    with pytest.raises(KitError) as checked:
        loaded_requests(config)
    with pytest.raises(KitError) as piped:
        period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    assert piped.value.line() == checked.value.line()
    return checked.value.exit_code, checked.value.line()


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


GOOD = "r{},2026-10-05T00:00:00Z,chat-small,10,1"


# --- column mapping -----------------------------------------------------------------------------


def test_a_mapping_to_a_column_the_file_lacks_is_named_even_for_an_optional_column(
    workspace, tmp_path
):
    config = workspace(
        [request("r1")], kit=kit_reading("{path: requests.csv, columns: {team: ownr_tag}}")
    )
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: no column 'ownr_tag' (kit.yaml requests.columns reads team "
        "from it); columns found: request_id, timestamp, team, application, environment, "
        "workload_class, model, input_tokens, output_tokens, cached_input_tokens, "
        "reasoning_tokens, status_code",
    )


def test_a_mapped_optional_column_is_read_and_an_absent_unmapped_one_takes_its_default(
    workspace, tmp_path
):
    config = workspace([], kit=kit_reading("{path: requests.csv, columns: {team: owner_tag}}"))
    row = request("r1", owner_tag="support")
    del row["team"]
    write_ledger(tmp_path / "requests.csv", [row])
    con, loaded = loaded_requests(config)
    assert (loaded.columns["team"], loaded.columns["feature"]) == ("owner_tag", "")
    assert con.execute("SELECT team, feature, batch FROM requests").fetchall() == [
        ("support", None, False)
    ]


# --- ragged and empty CSV files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD.format(1) + ",extra", GOOD.format(2), GOOD.format(3)],
         "row 1 (line 2): got 6 fields, expected 5 like the header"),
        ([GOOD.format(1), "r2,2026-10-05T00:00:00Z,chat-small", GOOD.format(3)],
         "row 2 (line 3): got 3 fields, expected 5 like the header"),
        ([GOOD.format(1), "", '"r,2",2026-10-05T00:00:00Z,chat-small,10,1', "r3,x"],
         "row 3 (line 5): got 2 fields, expected 5 like the header"),
        ([GOOD.format(1), GOOD.format(2) + ",,"],  # a ragged last row, not the header
         "row 2 (line 3): got 7 fields, expected 5 like the header"),
    ],
)  # fmt: skip
def test_a_row_whose_fields_do_not_match_the_header_is_named(workspace, tmp_path, rows, message):
    config = workspace([])
    (tmp_path / "requests.csv").write_text(csv_text(*rows))
    assert load_error(config) == (3, f"{tmp_path / 'requests.csv'}: {message}")


def test_a_ragged_row_past_the_rows_duckdb_samples_is_named(workspace, tmp_path):
    config = workspace([])
    rows = [GOOD.format(i) for i in range(30_000)]
    rows.insert(25_000, GOOD.format("x") + ",extra")
    (tmp_path / "requests.csv").write_text(csv_text(*rows))
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 25001 (line 25002): got 6 fields, expected 5 like "
        "the header",
    )


def test_a_ragged_row_in_one_of_several_files_is_named(workspace, tmp_path):
    config = workspace([], kit=kit_reading("{path: 'ledger/*.csv'}"))
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "a.csv").write_text(csv_text(GOOD.format(1), GOOD.format(2)))
    (tmp_path / "ledger" / "b.csv").write_text(csv_text(GOOD.format(3), GOOD.format(4) + ",,"))
    assert load_error(config) == (
        3,
        f"{tmp_path / 'ledger' / 'b.csv'}: row 2 (line 3): got 7 fields, expected 5 like the "
        "header",
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_of_several_that_lacks_a_required_column_is_named(workspace, tmp_path, fmt):
    # read with the others, its rows would get empty output_tokens: a failed call's blanks
    import duckdb

    config = workspace([], kit=kit_reading(f"{{path: 'ledger/*.{fmt}'}}"))
    (tmp_path / "ledger").mkdir()
    (tmp_path / "a.csv").write_text(csv_text(GOOD.format(1), GOOD.format(2)))
    (tmp_path / "b.csv").write_text(
        "request_id,timestamp,model,input_tokens,status_code\n"
        "r3,2026-10-05T00:00:00Z,chat-small,10,500\n"
    )
    options = "HEADER" if fmt == "csv" else "FORMAT parquet"
    for name in ("a", "b"):
        duckdb.execute(
            f"COPY (SELECT * FROM read_csv('{tmp_path / name}.csv')) "
            f"TO '{tmp_path / 'ledger' / name}.{fmt}' ({options})"
        )
    assert load_error(config) == (
        3,
        f"{tmp_path / 'ledger' / f'b.{fmt}'}: missing required column 'output_tokens', which the "
        "other files of the ledger have; columns found: request_id, timestamp, model, "
        "input_tokens, status_code",
    )


def test_a_bad_row_after_a_very_long_field_is_still_named(workspace, tmp_path):
    """A field over the csv module's default 131,072 characters stopped the re-read that names
    the row: a traceback."""
    config = workspace([request("r1", feature="x" * 140_000), request("r2", output_tokens="abc")])
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 2 (line 3), column 'output_tokens': got 'abc', "
        "expected a whole number of tokens",
    )


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_ledger_file_says_so(workspace, tmp_path, text):
    config = workspace([])
    (tmp_path / "requests.csv").write_text(text)
    assert load_error(config) == (3, f"{tmp_path / 'requests.csv'}: the file is empty")


def test_an_empty_parquet_ledger_says_so(workspace, tmp_path):
    config = workspace([], kit=kit_reading("{path: requests.parquet}"))
    (tmp_path / "requests.parquet").write_bytes(b"")
    assert load_error(config) == (3, f"{tmp_path / 'requests.parquet'}: the file is empty")


def test_an_empty_file_beside_others_adds_no_rows(workspace, tmp_path):
    config = workspace([], kit=kit_reading("{path: 'ledger/*.csv'}"))
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "a.csv").write_text(csv_text(GOOD.format(1)))
    (tmp_path / "ledger" / "b.csv").write_text("")
    assert loaded_requests(config)[1].rows == 1
    # but it is listed, with no rows, where the run is watched and in the manifest's counts
    said: list[str] = []
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), progress=said.append)
    assert ledger.rows_by_file == {"ledger/a.csv": (1, 0), "ledger/b.csv": (0, 0)}
    assert said[0].endswith("1 row from 2 files; no rows in ledger/b.csv")


# --- JSONL --------------------------------------------------------------------------------------


def jsonl_workspace(workspace, tmp_path, lines: list[str]):
    config = workspace([], kit=kit_reading("{path: requests.jsonl}"))
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    return config


RECORD = {"timestamp": "2026-10-05T00:00:00Z", "model": "chat-small", "input_tokens": 10,
          "output_tokens": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("count", "broken", "message"),
    [
        (6, (3, '{"request_id": "r4", "timestamp": }'),
         "line 4: not valid JSON (Expecting value at column 35); fix or remove the record "
         "(records are never skipped)"),
        (3, (2, '["r3", 10, 1]'),
         "line 3: not a JSON object; fix or remove the record (records are never skipped)"),
        # DuckDB reads `null` as a row of nothing: it was named "request_id None"
        (5, (4, "null"),
         "line 5: not a JSON object; fix or remove the record (records are never skipped)"),
    ],
)  # fmt: skip
def test_a_bad_jsonl_line_is_named_by_its_line(workspace, tmp_path, count, broken, message):
    lines = [json.dumps({"request_id": f"r{i}", **RECORD}) for i in range(1, count + 1)]
    lines[broken[0]] = broken[1]
    config = jsonl_workspace(workspace, tmp_path, lines)
    assert load_error(config) == (3, f"{tmp_path / 'requests.jsonl'}: {message}")


@pytest.mark.parametrize("huge", [2**70, 12345678901234567890123])
def test_a_jsonl_token_count_past_64_bits_is_named_as_written(workspace, tmp_path, huge):
    """DuckDB reads it as a double: it was shown as '1.1805916207174113e+21', by request_id."""
    lines = [json.dumps({"request_id": f"r{i}", **RECORD}) for i in range(1, 4)]
    lines[1] = json.dumps({"request_id": "r2", **RECORD, "input_tokens": huge})
    config = jsonl_workspace(workspace, tmp_path, lines)
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.jsonl'}: line 2, column 'input_tokens': got '{huge}', expected "
        "a token count of at most 1,000,000,000 for one request",
    )


def test_jsonl_text_columns_whose_records_disagree_on_the_type_are_read_as_text(
    workspace, tmp_path
):
    """DuckDB types such a column JSON: its strings once kept their quotes ('"search"'), and
    every row of the column went unknown_owner or unpriced."""
    lines = [
        json.dumps({"request_id": "r1", "team": "search", **RECORD}),
        json.dumps({"request_id": "r2", "team": 42, **RECORD, "model": 7}),
        json.dumps({"request_id": 3, "team": {"id": "x"}, **RECORD}),
    ]
    con, _ = loaded_requests(jsonl_workspace(workspace, tmp_path, lines))
    found = con.execute("SELECT request_id, team, model FROM requests ORDER BY 1").fetchall()
    assert found == [("3", '{"id":"x"}', "chat-small"), ("r1", "search", "chat-small"),
                     ("r2", "42", "7")]  # fmt: skip


# --- batch --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["maybe", "on", "2"])
def test_a_batch_value_that_is_not_a_boolean_is_named(workspace, tmp_path, value):
    config = workspace([request("r1", batch="true"), request("r2", batch=value)])
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 2 (line 3), column 'batch': got {value!r}, expected "
        "true or false",
    )


def test_batch_takes_the_spellings_it_always_took(workspace):
    spellings = ["true", "FALSE", "Yes", "no", "y", "N", "t", "F", "1", "0", " true ", ""]
    config = workspace([request(f"r{i:02d}", batch=v) for i, v in enumerate(spellings)])
    con, _ = loaded_requests(config)
    batch = con.execute("SELECT batch FROM requests ORDER BY request_id").fetchall()
    assert [b for (b,) in batch] == [
        True, False, True, False, True, False, True, False, True, False, True, None
    ]  # fmt: skip


def test_an_integer_batch_column_takes_only_0_and_1(workspace, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = workspace([], kit=kit_reading("{path: requests.parquet}"))
    table = pa.table({
        "request_id": ["a", "b", "c"],
        "timestamp": pa.array([datetime(2026, 10, 2)] * 3, pa.timestamp("us")),
        "model": ["chat-small"] * 3,
        "input_tokens": pa.array([10, 20, 30], pa.int64()),
        "output_tokens": pa.array([1, 2, 3], pa.int64()),
        "batch": pa.array([0, 1, 2], pa.int64()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "requests.parquet")
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.parquet'}: row 3, column 'batch': got '2', expected true or false",
    )


def parquet_ledger(workspace, tmp_path, input_tokens) -> object:
    """A workspace whose ledger is a two-row Parquet file with the given input_tokens array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = workspace([], kit=kit_reading("{path: requests.parquet}"))
    table = pa.table({
        "request_id": ["a", "b"],
        "timestamp": pa.array([datetime(2026, 10, 2)] * 2, pa.timestamp("us")),
        "model": ["chat-small"] * 2,
        "input_tokens": input_tokens,
        "output_tokens": pa.array([1, 2], pa.int64()),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "requests.parquet")
    return config


@pytest.mark.parametrize("kind", ["int64", "uint64"])
def test_a_typed_token_count_beyond_what_one_request_can_use_is_named(workspace, tmp_path, kind):
    """2^64 - 1 in a UBIGINT column once reached Great Expectations as a DuckDB cast error
    blamed on the kit's own suite; two 2^63 - 1 counts overflowed the period's sums."""
    import pyarrow as pa

    huge = 2**64 - 1 if kind == "uint64" else 2**63 - 1
    config = parquet_ledger(workspace, tmp_path, pa.array([10, huge], getattr(pa, kind)()))
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.parquet'}: row 2, column 'input_tokens': got '{huge}', expected "
        "a token count of at most 1,000,000,000 for one request",
    )


@pytest.mark.parametrize(("value", "shown"), [(float("inf"), "inf"), (1e40, "1e+40")])
def test_a_recorded_cost_that_is_no_amount_is_named_in_parquet_too(
    workspace, tmp_path, value, shown
):
    """It once became 'not recorded' without a word, while the same text in CSV is refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = parquet_ledger(workspace, tmp_path, pa.array([10, 20], pa.int64()))
    table = pq.read_table(tmp_path / "requests.parquet")
    table = table.append_column("recorded_cost", pa.array([0.1, value], pa.float64()))
    pq.write_table(table, tmp_path / "requests.parquet")
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.parquet'}: row 2, column 'recorded_cost': got '{shown}', "
        "expected an amount such as 0.0014",
    )


def test_a_workspace_folder_whose_name_looks_like_a_glob_finds_its_files(tmp_path):
    from .conftest import PRICING, REGISTRY

    root = tmp_path / "team[1]"
    root.mkdir()
    (root / "kit.yaml").write_text(KIT)
    (root / "registry.yaml").write_text(REGISTRY)
    (root / "pricing.yaml").write_text(PRICING)
    write_ledger(root / "requests.csv", [request("r1"), request("r2")])
    _con, loaded = loaded_requests(root / "kit.yaml")
    assert (loaded.files, loaded.rows) == ((root / "requests.csv",), 2)


def test_a_column_of_another_kind_in_another_format_names_the_files_and_the_column(
    workspace, tmp_path
):
    # a Parquet export whose team is a struct beside the CSV ledger: once DuckDB's "CSV Error on
    # Line: 2" naming every file and no column
    kit = KIT.replace("{path: requests.csv}", '{path: "requests*"}')
    config = workspace([request("r1"), request("r2")], kit=kit)
    connect().execute(
        "COPY (SELECT * REPLACE ({'x': team} AS team) FROM read_csv(?)) TO ? (FORMAT parquet)",
        [str(tmp_path / "requests.csv"), str(tmp_path / "requests-2.parquet")],
    )
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: column 'team': holds VARCHAR values in the csv files but "
        "STRUCT(x VARCHAR) in the parquet ones; expected the same kind of values in every file "
        "of the ledger",
    )


def test_a_ledger_file_behind_a_broken_link_is_named_not_skipped(workspace, tmp_path):
    # a month split over files, one of them on a share that is not mounted: the ledger would
    # be a file short without a word
    kit = KIT.replace("{path: requests.csv}", '{path: "requests*.csv"}')
    config = workspace([request("r1")], kit=kit)
    late = tmp_path / "requests-late.csv"
    late.symlink_to(tmp_path / "unmounted" / "late.csv")
    expected = (
        3,
        f"{late}: a link to a file that cannot be reached (its target is missing or the link "
        "loops); restore its target or remove the link",
    )
    assert load_error(config) == expected
    late.unlink()
    late.symlink_to(late)  # a link to itself
    assert load_error(config) == expected


def test_a_ledger_that_is_not_utf8_names_the_line_and_says_what_was_expected(workspace, tmp_path):
    config = workspace([request("r1"), request("r2", caller_id="svc-supp-rt")])
    path = tmp_path / "requests.csv"
    path.write_bytes(path.read_bytes().replace(b"svc-supp-rt", b"svc-supp\xe9rt"))
    column = path.read_bytes().splitlines()[2].index(b"\xe9") + 1
    assert load_error(config) == (
        3,
        f"{path}: line 3: byte 0xe9 at column {column} is not UTF-8 text; expected a file saved "
        "as UTF-8",
    )


def test_a_csv_header_that_names_a_column_twice_is_named(workspace, tmp_path):
    config = workspace([request("r1")])
    path = tmp_path / "requests.csv"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].rsplit(",", 1)[0] + ",model"  # the last column renamed to model
    path.write_text("\n".join(lines) + "\n")
    assert load_error(config) == (
        3,
        f"{path}: line 1: the header names column 'model' twice; expected each column once",
    )
    lines[0] = lines[0].replace(",model", ",MODEL", 1)  # column names ignore case in DuckDB
    path.write_text("\n".join(lines) + "\n")
    assert load_error(config) == (
        3,
        f"{path}: line 1: the header names column 'MODEL' twice ('model': column names ignore "
        "case); expected each column once",
    )


def test_a_semicolon_csv_header_that_names_a_column_twice_is_named(workspace, tmp_path):
    """DuckDB sniffs the semicolon; the check read the header by commas and let it pass, and
    the second model column was dropped without a word."""
    config = workspace([])
    path = tmp_path / "requests.csv"
    path.write_text(
        "request_id;timestamp;model;input_tokens;output_tokens;model\n"
        "r1;2026-10-01T09:00:00Z;chat-small;100;10;painter\n"
    )
    assert load_error(config) == (
        3,
        f"{path}: line 1: the header names column 'model' twice; expected each column once",
    )


def test_a_token_count_that_is_not_a_number_is_named(workspace, tmp_path):
    """NaN in a Parquet DOUBLE column: DuckDB counts the row but the filter it pushes into the
    scan does not find it again; found above the scan, the row and value are named."""
    import pyarrow as pa

    config = parquet_ledger(workspace, tmp_path, pa.array([10.0, float("nan")], pa.float64()))
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.parquet'}: row 2, column 'input_tokens': got 'nan', expected a "
        "whole number of tokens",
    )
    config = workspace([request("r1"), request("r2", input_tokens="NaN")])
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 2 (line 3), column 'input_tokens': got 'NaN', expected "
        "a whole number of tokens",
    )


# --- text ledgers are parsed once --------------------------------------------------------------


def test_a_text_ledger_is_parsed_once_and_reviews_like_the_same_ledger_in_parquet(
    workspace, tmp_path
):
    """A CSV or JSONL ledger becomes a typed table in a temporary DuckDB file that every pass
    reads; the review is the one the same rows give in Parquet, and the folder goes with the
    file is removed once written."""
    from pathlib import Path

    import duckdb

    rows = [
        request("a1"),
        request("a2", team="", application="", input_tokens=500),  # untagged
        request("a3", application="ghost-app", team=""),  # unknown owner
        request("a4", input_tokens=10, cached_input_tokens=20),  # quarantined: cached > input
        request("a5", model="mystery"),  # unpriced
        request("a6", status_code=429, input_tokens="", output_tokens=""),  # failed, no usage
        request("a1"),  # an identical logging duplicate
        request("a7", timestamp="2026-09-30T23:00:00Z"),  # a stray of the month before
        request("a8", application="gateway-prop", team="", timestamp="2026-10-20T08:00:00Z"),
    ]
    config = workspace(rows)
    csv_path = tmp_path / "requests.csv"
    reader = f"read_csv('{csv_path}', all_varchar = true)"
    copies = {
        "jsonl": f"COPY (SELECT * FROM {reader}) TO '{tmp_path / 'requests.jsonl'}' (FORMAT json)",
        "parquet": f"""COPY (SELECT * REPLACE (
                CAST(timestamp AS TIMESTAMPTZ) AS timestamp,
                TRY_CAST(input_tokens AS BIGINT) AS input_tokens,
                TRY_CAST(output_tokens AS BIGINT) AS output_tokens,
                CAST(cached_input_tokens AS BIGINT) AS cached_input_tokens,
                CAST(reasoning_tokens AS BIGINT) AS reasoning_tokens,
                CAST(status_code AS INTEGER) AS status_code)
            FROM {reader}) TO '{tmp_path / "requests.parquet"}' (FORMAT parquet)""",
    }
    for statement in copies.values():
        duckdb.execute(statement)

    def review(suffix: str):
        text = config.read_text().replace("requests.csv", f"requests.{suffix}")
        (tmp_path / f"kit_{suffix}.yaml").write_text(text)
        ledger = period_ledger(
            load_workspace(tmp_path / f"kit_{suffix}.yaml"), parse_period("2026-10")
        )
        items = ledger.con.execute(
            "SELECT request_id, allocation_status, detail, cost, duplicate_copies FROM lines "
            "WHERE request_id IS NOT NULL ORDER BY ALL"
        ).fetchall()
        strays = ledger.con.execute(
            "SELECT request_id, timestamp FROM requests WHERE timestamp < '2026-10-01'"
        ).fetchall()
        return ledger, (ledger.allocation, ledger.counts, ledger.ledger_cost, items, strays)

    parquet, expected = review("parquet")
    assert parquet.loaded.table == ""
    assert expected[1].quarantined == 1 and expected[1].unpriced == 1
    assert expected[1].duplicate_copies == 1 and expected[1].out_of_period == 1
    for suffix in ("csv", "jsonl"):
        ledger, found = review(suffix)
        assert found == expected, suffix
        schema, table = ledger.loaded.table.split(".")
        (path,) = ledger.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = ?", [schema.strip('"')]
        ).fetchone()
        assert table == "ledger" and Path(path).parent.name.startswith("allocation-kit-ledger-")
        assert not Path(path).parent.exists()  # removed once written; DuckDB holds the file


@pytest.mark.parametrize("value", ["299.5", "199.6", "OK"])
def test_a_status_code_that_is_no_whole_number_is_named_not_rounded(workspace, tmp_path, value):
    # read as 300 or 200, 299.5 and 199.6 would turn a call failed or billable unseen
    config = workspace([request("r1"), request("r2", status_code=value)])
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 2 (line 3), column 'status_code': got {value!r}, "
        "expected an HTTP status code such as 200",
    )


@pytest.mark.parametrize("zone", ["PST", "CEST", "IST"])
def test_a_time_zone_abbreviation_is_named_not_guessed(workspace, tmp_path, zone):
    # DuckDB reads PST as Los Angeles time, an hour off in October; CEST it cannot read
    config = workspace([request("r1"), request("r2", timestamp=f"2026-10-05 10:00:00 {zone}")])
    assert load_error(config) == (
        3,
        f"{tmp_path / 'requests.csv'}: row 2 (line 3), column 'timestamp': got "
        f"'2026-10-05 10:00:00 {zone}', expected a UTC offset (such as -08:00 or Z) or a zone "
        "name (such as America/Los_Angeles), not an abbreviation, which can name several zones",
    )


def test_offsets_zone_names_and_utc_are_read_as_the_moment_they_name(workspace):
    spellings = {
        "a": "2026-10-05T10:00:00Z",
        "b": "2026-10-05 12:00:00+02:00",
        "c": "2026-10-05 12:00:00 Europe/Berlin",
        "d": "2026-10-05 03:00:00 America/Los_Angeles",
        "e": "2026-10-05 10:00:00 UTC",
        "f": "2026-10-05 10:00:00",
    }
    config = workspace([request(k, timestamp=v) for k, v in spellings.items()])
    con, _ = loaded_requests(config)
    found = con.execute("SELECT DISTINCT timestamp FROM requests").fetchall()
    assert found == [(datetime(2026, 10, 5, 10, 0),)]
