"""pricing diff: what changed between two snapshots, price by price, in text, CSV or JSON."""

import json

import pytest
import yaml

from allocation_kit.cli import main
from allocation_kit.config import PricingSnapshot
from allocation_kit.pricing_diff import PriceChange, snapshot_changes

OLD = """
currency: USD
source_url: https://example.com/pricing
reviewed_on: 2026-09-01
reviewed_by: finops-analyst
failed_calls_billable: false
models:
  - model: chat-small
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.00, cached_input: 0.50, output: 4.00}
  - model: long-ctx
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.25, output: 10}
    batch: {input: 0.625, output: 5}
    tiers:
      - above_input_tokens: 200000
        per_1m_tokens: {input: 2.5, output: 15}
  - model: retired
    effective_from: 2026-01-01
    per_1m_tokens: {input: 3, output: 15}
  - model: painter
    effective_from: 2026-01-01
    per_call: 0.04
"""

NEW = """
currency: USD
source_url: https://example.com/pricing
reviewed_on: 2026-10-01
reviewed_by: finops-lead
failed_calls_billable: true
models:
  - model: chat-small
    effective_from: 2026-01-01
    effective_to: 2026-10-15
    per_1m_tokens: {input: 1.00, cached_input: 0.50, output: 4.00}
  - model: chat-small
    effective_from: 2026-10-15
    per_1m_tokens: {input: 0.80, cached_input: 0.40, output: 3.20}
  - model: long-ctx
    effective_from: 2026-01-01
    per_1m_tokens: {input: 1.25, output: 10}
    batch: {input: 0.5, output: 5}
    tiers:
      - above_input_tokens: 200000
        per_1m_tokens: {input: 2.5, output: 20}
  - model: painter
    effective_from: 2026-02-01
    per_call: 0.05
  - model: newcomer
    effective_from: 2026-10-01
    per_1m_tokens: {input: 0.1, output: 0.4}
"""


def snapshot(text: str) -> PricingSnapshot:
    return PricingSnapshot.model_validate(yaml.safe_load(text))


def diff(tmp_path, capsys, old: str, new: str, *options: str) -> tuple[int, str]:
    (tmp_path / "old.yaml").write_text(old)
    (tmp_path / "new.yaml").write_text(new)
    try:
        main(["pricing", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), *options])
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err
    return 0, capsys.readouterr().out


def test_each_added_removed_and_changed_value_is_one_row():
    changes = snapshot_changes(snapshot(OLD), snapshot(NEW))
    assert [tuple(vars(c).values()) for c in changes] == [
        ("changed", "", "", "failed_calls_billable", "false", "true", ""),
        ("added", "chat-small", "2026-01-01", "effective_to", "", "2026-10-15", ""),
        ("added", "chat-small", "2026-10-15", "per_1m_tokens.input", "", "0.8", ""),
        ("added", "chat-small", "2026-10-15", "per_1m_tokens.cached_input", "", "0.4", ""),
        ("added", "chat-small", "2026-10-15", "per_1m_tokens.output", "", "3.2", ""),
        ("changed", "long-ctx", "2026-01-01", "batch.input", "0.625", "0.5", "-20.00"),
        ("changed", "long-ctx", "2026-01-01", "tiers[above 200000].per_1m_tokens.output", "15",
         "20", "+33.33"),
        ("added", "newcomer", "2026-10-01", "per_1m_tokens.input", "", "0.1", ""),
        ("added", "newcomer", "2026-10-01", "per_1m_tokens.output", "", "0.4", ""),
        ("changed", "painter", "2026-02-01", "effective_from", "2026-01-01", "2026-02-01", ""),
        ("changed", "painter", "2026-02-01", "per_call", "0.04", "0.05", "+25.00"),
        ("removed", "retired", "2026-01-01", "per_1m_tokens.input", "3", "", ""),
        ("removed", "retired", "2026-01-01", "per_1m_tokens.output", "15", "", ""),
    ]  # fmt: skip


def test_an_alias_pointed_at_another_model_is_a_change():
    """`fast-chat: chat-small` → `fast-chat: long-ctx` reprices every call the ledger logs as
    fast-chat: it once said "no changes"."""
    old = OLD + "aliases: {fast-chat: chat-small, legacy: chat-small}\n"
    new = OLD + "aliases: {fast-chat: long-ctx, pix: painter}\n"
    changes = snapshot_changes(snapshot(old), snapshot(new))
    assert [tuple(vars(c).values()) for c in changes] == [
        ("changed", "", "", "aliases.fast-chat", "chat-small", "long-ctx", ""),
        ("removed", "", "", "aliases.legacy", "chat-small", "", ""),
        ("added", "", "", "aliases.pix", "", "painter", ""),
    ]


def test_a_publisher_or_provider_named_is_a_change():
    """They name the model's rows in the FOCUS export: a re-import that fills them is seen."""
    named = "  - model: painter\n    publisher: OpenAI\n    provider: CometAPI\n"
    new = OLD.replace("  - model: painter\n", named)
    changes = snapshot_changes(snapshot(OLD), snapshot(new))
    assert [tuple(vars(c).values()) for c in changes] == [
        ("added", "painter", "2026-01-01", "publisher", "", "OpenAI", ""),
        ("added", "painter", "2026-01-01", "provider", "", "CometAPI", ""),
    ]


def test_the_text_table_names_both_snapshots_and_sums_up(tmp_path, capsys):
    code, out = diff(tmp_path, capsys, OLD, NEW)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"old: {tmp_path / 'old.yaml'} (reviewed 2026-09-01 by finops-analyst, " \
        "https://example.com/pricing)"  # fmt: skip
    assert lines[3].split() == ["change", "model", "effective_from", "field", "old", "new",
                                "change", "%"]  # fmt: skip
    assert lines[9] == (
        "changed  long-ctx    2026-01-01      batch.input                                    "
        "0.625         0.5    -20.00"
    )
    assert lines[-1] == (
        "1 model(s) added (newcomer); 1 model(s) removed (retired); 5 value(s) changed, "
        "6 added, 2 removed"
    )


def test_identical_snapshots_say_no_changes_and_exit_0(tmp_path, capsys):
    code, out = diff(tmp_path, capsys, OLD, OLD)
    assert (code, out.splitlines()[-1]) == (0, "no changes")
    code, out = diff(tmp_path, capsys, OLD, OLD, "--format", "csv")
    assert (code, out) == (0, "change,model,effective_from,field,old,new,change_pct\n")


def test_csv_and_json_carry_the_same_rows(tmp_path, capsys):
    _, csv_text = diff(tmp_path, capsys, OLD, NEW, "--format", "csv")
    assert csv_text.splitlines()[6] == "changed,long-ctx,2026-01-01,batch.input,0.625,0.5,-20.00"
    _, json_text = diff(tmp_path, capsys, OLD, NEW, "--format", "json")
    document = json.loads(json_text)
    assert document["old"]["id"] == "2026-09-01/finops-analyst"
    assert len(document["changes"]) == len(csv_text.splitlines()) - 1 == 13
    assert PriceChange(**document["changes"][5]).change_pct == "-20.00"


def test_one_unmatched_entry_on_each_side_is_the_same_entry_re_dated():
    later = NEW.replace("2026-10-15", "2026-10-20")
    changes = snapshot_changes(snapshot(NEW), snapshot(later))
    assert [(c.change, c.effective_from, c.field, c.old, c.new) for c in changes] == [
        ("changed", "2026-01-01", "effective_to", "2026-10-15", "2026-10-20"),
        ("changed", "2026-10-20", "effective_from", "2026-10-15", "2026-10-20"),
    ]


@pytest.mark.parametrize(
    ("wrong", "expected"),
    [
        (("currency: USD", "currency: usd"), "currency: got 'usd': String should match pattern"),
        (("per_call: 0.04", "per_call: -1"), "models[3] (painter).per_call: got -1, expected "
         "at least 0"),
    ],
)  # fmt: skip
def test_an_invalid_snapshot_is_a_one_line_config_error(tmp_path, capsys, wrong, expected):
    code, err = diff(tmp_path, capsys, OLD, OLD.replace(*wrong))
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'new.yaml'}: {expected}")
    assert len(err.strip().splitlines()) == 1
