"""Earlier periods' evidence: which later reviews compared with other figures than it holds now."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from allocation_kit.history import baseline_digest, outdated_baseline
from allocation_kit.load import file_sha256
from allocation_kit.periods import parse_period

OCTOBER = parse_period("2026-10")


def teams_csv(out: Path, period: str, role: str) -> Path:
    path = out / period / "evidence" / "teams.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"team,unpriced_requests,follow_up_owner\nsearch,0,{role}\n")
    return path


def test_only_the_columns_a_review_used_make_it_outdated(tmp_path):
    path = teams_csv(tmp_path, "2026-09", "finops-analyst")
    read = [{"role": "baseline", "path": "reports/2026-09/evidence/teams.csv",
             "sha256": file_sha256(path), "compared_sha256": baseline_digest(path)}]  # fmt: skip
    whole_file_only = [{k: v for k, v in read[0].items() if k != "compared_sha256"}]
    assert outdated_baseline(tmp_path, OCTOBER, read) == {}
    teams_csv(tmp_path, "2026-09", "controller")  # a column no later review reads
    assert outdated_baseline(tmp_path, OCTOBER, read) == {}
    # a manifest of an earlier kit hashed the whole file: any change counts
    assert outdated_baseline(tmp_path, OCTOBER, whole_file_only) == {"2026-09": "changed"}
    path.write_text("team,unpriced_requests,follow_up_owner\nsearch,3,controller\n")
    assert outdated_baseline(tmp_path, OCTOBER, read) == {"2026-09": "changed"}
    teams_csv(tmp_path, "2026-08", "finops-analyst")  # evidence the review never read
    assert outdated_baseline(tmp_path, OCTOBER, read) == {"2026-08": "new", "2026-09": "changed"}
    path.unlink()
    assert outdated_baseline(tmp_path, OCTOBER, read) == {"2026-08": "new", "2026-09": "removed"}
    # an earlier period's evidence edited past reading is no longer what was read
    path.write_bytes(b"team,unpriced_requests\n\xff\n")
    assert outdated_baseline(tmp_path, OCTOBER, read) == {"2026-08": "new", "2026-09": "changed"}


def test_rerun_changes_name_the_verdict_and_sign_off_or_say_nothing_changed():
    from allocation_kit.history import RunRecord, rerun_changes

    before = RunRecord(
        created_at="2026-11-02T09:00:00+00:00",
        inputs={"pricing: pricing.yaml": "a", "billing: bill.csv": "b"},
        exceptions={"unpriced": 800, "untagged": 20},
        unallocated=Decimal("28.36"),
        verdict="inconclusive",
        sign_off="fail",
        currency="USD",
    )
    assert rerun_changes(before, before) == [
        "replaces the run of 2026-11-02 09:00:00 UTC; same inputs",
        "the same results",
    ]
    after = replace(
        before,
        inputs={"pricing: pricing.yaml": "c", "billing: bill.csv": "b", "events: e.csv": "d"},
        exceptions={"untagged": 20},
        verdict="pass",
        sign_off="needs_follow_up",
    )
    assert rerun_changes(before, after) == [
        "replaces the run of 2026-11-02 09:00:00 UTC; inputs changed: e.csv, pricing.yaml",
        "exception rows 820 → 20 (unpriced −800); verdict inconclusive → pass; proposed sign-off "
        "fail → needs follow up",
    ]
    # late rows of another month's file land in this one: the totals and a charge move
    counted = replace(
        before, requests=416, ledger_cost=Decimal("1.877164"), billed_cost=None,
        charges={"search": Decimal("1.06"), "support": Decimal("0.50"), "legal": Decimal("0")},
    )  # fmt: skip
    grown = replace(
        counted, requests=420, ledger_cost=Decimal("1.879483"), billed_cost=Decimal("1.90"),
        charges={"search": Decimal("1.09"), "support": Decimal("0.48"), "sales": Decimal("0.01")},
    )  # fmt: skip
    assert rerun_changes(counted, grown)[1] == (
        "requests 416 → 420; ledger total $1.88 → $1.88 ($1.877 → $1.879); billed none → $1.90; "
        "charges search $1.06 → $1.09, support $0.50 → $0.48, sales none → $0.01 and 1 more"
    )
    assert rerun_changes(counted, replace(counted, created_at="x"))[1] == "the same results"
