"""Load: a ledger the kit cannot use is one line naming the file, the row or key and what was
expected, whether `load_requests` checks the values or the pipeline's own pass flags them."""

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
        f"{tmp_path / 'requests.csv'}: missing column 'team' (mapped from 'ownr_tag'); columns "
        "found: request_id, timestamp, team, application, environment, workload_class, model, "
        "input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, status_code",
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
