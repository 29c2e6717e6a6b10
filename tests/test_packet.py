"""The review packet: papermill executes the notebook, nbconvert renders one self-contained HTML
file without code, and a failed run keeps the previous good packet."""

import csv
import hashlib
import json
import re
import shutil
import subprocess
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import pytest

from allocation_kit.cli import main, run_period
from allocation_kit.present import Html

from .conftest import KIT, PRICING, REGISTRY, request, write_ledger

SECTIONS = [
    "Summary",
    "Allocation",
    "Chargeback to the bill",
    "Shared costs",
    "Exception queue",
    "Reconciliation",
    "Unit economics",
    "Budgets",
    "Anomalies",
    "Chargeback review",
    "Data quality",
    "Provenance",
    "Sign-off",
]


def table_cells(html: str, after: str = "") -> list[str]:
    """The header and body cells of the first table in `html` after the text `after`."""
    table = html.split(after)[1] if after else html
    return re.findall(r"<t[dh] class=\"\w+\">([^<]*)</t[dh]>", table.split("</table>")[0])


def make_workspace(root: Path, rows) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "registry.yaml").write_text(textwrap.dedent(REGISTRY))
    (root / "pricing.yaml").write_text(textwrap.dedent(PRICING))
    (root / "kit.yaml").write_text(textwrap.dedent(KIT))
    write_ledger(root / "requests.csv", rows)
    return root / "kit.yaml"


ROWS = [
    request("r1"),
    request("r2", team="support", application="ticket-bot", environment="staging"),
    request("r3", application="gateway-fixed", team=None, input_tokens=20_000),
    request("r4", team=None, application=None, caller_id="svc-legacy"),
    request("r5", team="search", application="ticket-bot"),
    request("r6", model="mystery-model"),
    request("r1"),
]


def with_generic_bill(
    root: Path, rows, bill: str, period: str = "2026-10", kit_extra: str = ""
) -> Path:
    """The packet folder of a workspace whose bill is the generic CSV `bill` (and whose kit.yaml
    ends with `kit_extra`)."""
    config = make_workspace(root, rows)
    kit = config.read_text().replace(
        "registry: registry.yaml",
        "billing: {path: bill.csv, format: generic}\nregistry: registry.yaml",
    )
    kit += kit_extra
    config.write_text(kit)
    (root / "bill.csv").write_text(bill)
    return run_period(config, period, root / "reports", progress=None)


@pytest.fixture(scope="module")
def packet(tmp_path_factory) -> Path:
    """One executed and rendered packet for the tests of this module."""
    root = tmp_path_factory.mktemp("packet")
    config = make_workspace(root, ROWS)
    return run_period(config, "2026-10", root / "reports", progress=None)


def test_the_packet_has_every_section_and_no_code(packet):
    page = (packet / "packet.html").read_text()
    for section in SECTIONS:
        assert f'id="{section.replace(" ", "-")}"' in page, section
        assert f'<a href="#{section.replace(" ", "-")}">{section}</a>' in page  # table of contents
    assert "review.kpis()" not in page and "hl-ipython3" not in page
    assert "period_review(" not in page
    assert "Test workspace" in page and "AI spend review — 2026-10" in page


def test_the_data_quality_table_says_what_its_percentage_is_of(packet):
    """GX's unexpected_percent leaves out blank values: 2 failing of 198 rows read 1.02%."""
    page = (packet / "packet.html").read_text()
    quality = page.split('id="Data-quality"')[1].split('id="Provenance"')[0]
    assert "Failing % of values</th>" in quality
    assert (
        "Failing % is Great Expectations' share of the rows with a value (blank values are not "
        "judged: 2 failing of 198 rows, 1 of them blank, is 1.02%); an expectation's "
        "<code>mostly</code> is judged on that share."
    ) in quality


def test_the_packet_is_self_contained(packet):
    page = (packet / "packet.html").read_text()
    assert not re.search(r"""(src|href)=["']https?://""", page)
    assert "<script src" not in page
    assert "mathjax" not in page.lower() and "require.js" not in page.lower()
    images = re.findall(r'<img[^>]+src="([^"]{0,30})', page)
    assert len(images) == 3  # no bill: no variance chart
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_the_packet_shows_exact_money_rounded_once(packet):
    page = (packet / "packet.html").read_text()
    # ledger: r1 0.0014 + r2 0.0014 + r3 0.0204 (shared) + r4 0.0014 + r5 0.0014 = $0.0260
    assert (
        '<div class="ak-tile-label">Ledger total</div><div class="ak-tile-value">$0.03</div>'
        in page
    )
    evidence = json.loads((packet / "evidence" / "manifest.json").read_text())
    assert evidence["conservation"]["ledger_total"] == "0.026000000000"


def test_the_queue_by_caller_names_who_sends_each_reason_with_the_tags_received(packet):
    page = (packet / "packet.html").read_text()
    cells = table_cells(page, 'id="By-caller-and-application"')
    assert cells == [
        "Caller", "Team tag", "Application tag", "Reason", "Rows", "Cost",
        # r6: no price, so its cost is unknown, not the least
        "(none)", "search", "search-api", "unpriced", "1", "unknown (no price)",
        "(none)", "search", "ticket-bot", "conflict", "1", "$0.00",  # r5
        "svc-legacy", "(none)", "(none)", "untagged", "1", "$0.00",  # r4
        "(none)", "search", "search-api", "duplicate", "1", "$0.00 (not in the total)",  # r1
    ]  # fmt: skip


def test_the_queue_by_caller_says_how_many_groups_it_leaves_to_the_evidence():
    from types import SimpleNamespace

    import duckdb

    from allocation_kit.packet import Review

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE exception_queue AS SELECT 'svc-' || i AS caller_id, NULL AS team, "
        "NULL AS application, 'untagged' AS reason, i::DECIMAL(38, 12) AS cost "
        "FROM range(1, 6) t(i)"
    )
    usd = SimpleNamespace(kit=SimpleNamespace(currency="USD"))
    ledger = SimpleNamespace(con=con, workspace=usd)
    review = Review(ledger, {}, Path("."), "finops-analyst", datetime(2026, 11, 2))
    page = review.exceptions_by_caller(limit=2).text
    assert re.findall(r'<td class="txt">(svc-\d)</td>', page) == ["svc-5", "svc-4"]
    assert page.endswith(
        '<p class="ak-note">The 2 largest of 5 groups; every row, with its caller, endpoint and '
        "source file, is in <code>evidence/exceptions.csv</code>.</p>"
    )


def test_shared_costs_show_each_teams_weight_and_share_under_its_rule(tmp_path):
    from allocation_kit.config import load_workspace
    from allocation_kit.packet import Review
    from allocation_kit.periods import parse_period
    from allocation_kit.pipeline import period_ledger

    rows = [request("s1"), request("s2"), request("s-failed", status_code=500)]  # 2,200 tokens
    rows += [request("t1", team="support", application="ticket-bot")]  # 1,100 billable tokens
    rows += [request("p1", application="gateway-prop", team=None)]  # $0.0014, 2:1
    # $0.015, 70:30: $0.0105 and $0.0045, $0.01 and $0.00 rounded alone against a total of
    # $0.02; the larger remainder, support's, takes the cent so the split adds up on the page
    rows += [request("f1", application="gateway-fixed", team=None, input_tokens=15_000,
                     output_tokens=0)]  # fmt: skip
    config = make_workspace(tmp_path, rows)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    review = Review(ledger, {}, tmp_path, "finops-analyst", datetime(2026, 11, 2, tzinfo=UTC))
    cells = table_cells(review.shared_costs().text)
    fixed = "shared: fixed split (search 70%, support 30%)"
    prop = (
        "shared: proportional to the direct billable input + output tokens of search, support "
        "in the period (all environments)"
    )
    assert cells == [
        "Shared application", "Rule", "Receiving team", "Weight", "Share", "Cost",
        "gateway-fixed", fixed, "search", "70%", "70.00%", "$0.01",
        "gateway-fixed", fixed, "support", "30%", "30.00%", "$0.01",
        "gateway-fixed total", "", "", "", "", "$0.02",
        "gateway-prop", prop, "search", "2,200 billable tokens", "66.67%", "$0.00",
        "gateway-prop", prop, "support", "1,100 billable tokens", "33.33%", "$0.00",
        "gateway-prop total", "", "", "", "", "$0.00",
        "Total shared", "", "", "", "", "$0.02",
    ]  # fmt: skip
    assert "Each amount is its exact value" not in review.shared_costs().text


def test_the_executed_notebook_and_evidence_sit_beside_the_packet(packet):
    assert sorted(p.name for p in packet.iterdir()) == [
        "SHA256SUMS", "evidence", "packet.html", "packet.ipynb", "sign_off.json", "statements"
    ]  # fmt: skip
    assert sorted(p.name for p in (packet / "statements").iterdir()) == [
        "platform.html", "search.html", "support.html"
    ]  # fmt: skip
    assert sorted(p.name for p in (packet / "evidence").iterdir()) == [
        "allocation.csv", "anomalies.csv", "budgets.csv", "chargeback.csv",
        "chargeback_journal.csv", "chargeback_review.csv", "exceptions.csv",
        "focus_allocated.csv", "manifest.json", "reconciliation.json", "reconciliation_lines.csv",
        "spend_profile.csv", "spend_review.json", "teams.csv", "unit_economics.csv",
        "validation.json",
    ]  # fmt: skip

    # papermill's injected cell has a steady id, so packets of the same inputs do not differ in it
    executed = json.loads((packet / "packet.ipynb").read_text())
    injected = [
        c["id"] for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert injected == ["injected-parameters"]
    assert "cell-id=injected-parameters" in (packet / "packet.html").read_text()


def test_the_index_lists_the_period(packet):
    index = (packet.parent / "index.html").read_text()
    assert '<a href="2026-10/packet.html">open packet</a>' in index
    assert '<td class="num">$0.03</td>' in index
    # the proposed sign-off (search's chargeback fails), none recorded, then the reconciliation
    assert (
        '<td class="signoff"><span class="verdict v-fail">fail</span><br>'
        '<span class="sub">proposed</span></td>\n'
        '  <td><span class="verdict v-inconclusive">inconclusive</span></td>'
    ) in index
    # anomalies (no earlier period yet), budgets exceeded, chargeback rows
    assert (
        '<td class="num">no baseline yet<br><span class="sub">two earlier periods needed</span>'
        "</td>\n"
        '  <td class="num">—</td>\n'
        "  <td>1 fail, 1 follow&#8209;up</td>"
    ) in index
    assert '<a href="2026-10/evidence/manifest.json">manifest</a>' in index
    assert '<td>2026-10</td>\n  <td class="dates">2026-10-01 to 2026-10-31</td>' in index
    assert "<h2>" not in index  # one kind of period: one table, no headings


def evidence_only(out: Path, label: str) -> Path:
    """out/<label>/evidence with nothing but a manifest of a $10 period ($1 unallocated): what
    the index reads of a period; the evidence folder."""
    from allocation_kit.periods import parse_period

    period = parse_period(label)
    evidence = out / label / "evidence"
    evidence.mkdir(parents=True)
    manifest = {
        "period": {"label": label, "kind": period.kind, "start": period.start.isoformat(),
                   "end": period.end.isoformat()},
        "workspace": {"name": "acme", "currency": "USD"},
        "conservation": {"ledger_total": "10", "unallocated": "1"},
        "counts": {"exception_rows": 3},
        "created_at": "2026-11-02T09:30:00+00:00",
    }  # fmt: skip
    (evidence / "manifest.json").write_text(json.dumps(manifest))
    return evidence


def test_the_index_keeps_months_weeks_and_ranges_apart_newest_first(tmp_path, capsys):
    from allocation_kit.report import write_index

    for label in ("2026-09", "2026-W41", "2026-10", "2026-10-05..2026-10-05", "2026-W40"):
        evidence_only(tmp_path, label)
    broken = tmp_path / "2026-08" / "evidence"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{broken")  # another period's evidence, edited
    index = write_index(tmp_path).read_text()
    assert capsys.readouterr().err == (
        f"warning: {broken}: unreadable evidence (JSONDecodeError: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1)); left out of the index\n"
    )
    headings = re.findall(r"<h2>(.*?)</h2>", index)
    periods = re.findall(r'<tr>\n  <td>(.*?)</td>\n  <td class="dates">(.*?)</td>', index)
    assert headings == ["Months", "Weeks", "Date ranges"]
    assert periods == [
        ("2026-10", "2026-10-01 to 2026-10-31"),
        ("2026-09", "2026-09-01 to 2026-09-30"),
        ("2026-W41", "2026-10-05 to 2026-10-11"),
        ("2026-W40", "2026-09-28 to 2026-10-04"),
        ("2026-10-05..2026-10-05", "2026-10-05"),
    ]


def test_the_sign_off_proposes_a_result_with_every_finding_and_its_owner(packet):
    spend = json.loads((packet / "evidence" / "spend_review.json").read_text())
    assert spend["sign_off"] == {
        "proposed_result": "fail",
        "findings": [
            {
                "result": "fail",
                "finding": "Chargeback fail for search: unpriced usage: 1 request has no price "
                "in the snapshot (cost understated); tag conflict: 1 request ($0.0014) tags "
                "application ticket-bot (registered to support) with team search",
                "follow_up_owner": "finops-analyst, search-lead",
            },
            {
                # every row is logged on 2026-10-10 at noon
                "result": "needs_follow_up",
                "finding": "Partial period: data through 2026-10-10 12:00 UTC; the ledger starts "
                "2026-10-10 12:00 UTC: the first 9 days have no rows. Every figure covers only "
                "the rows logged so far",
                "follow_up_owner": "finops-analyst (re-run once the ledger is complete)",
            },
            {
                "result": "needs_follow_up",
                "finding": "Reconciliation inconclusive: kit.yaml has no billing section: there "
                "is no bill to reconcile against.",
                "follow_up_owner": "finops-analyst (reconciliation with the provider)",
            },
            {
                "result": "needs_follow_up",
                "finding": "Chargeback needs follow up for support: tag conflict: 1 request "
                "($0.0014) tags application ticket-bot (registered to support) with team search",
                "follow_up_owner": "support-lead",
            },
            {
                "result": "needs_follow_up",
                # r4 conflict 0.0014 + r5 untagged 0.0014
                "finding": "Unallocated: $0.0028 of 2 requests no team owns yet (untagged, "
                "unknown owner, conflict or quarantined)",
                "follow_up_owner": "finops-analyst (tags, with the callers in the exception queue)",
            },
            {
                "result": "needs_follow_up",
                "finding": "Unpriced: 1 billable call of a model with no price in effect: cost "
                "unknown, not in the ledger total",
                "follow_up_owner": "finops-analyst (pricing snapshot)",
            },
        ],
    }
    page = (packet / "packet.html").read_text()
    assert '<div class="ak-banner ak-bad"><strong>Proposed sign-off: fail</strong></div>' in page
    assert (
        '<tr class="ak-status-needs_follow_up"><td class="txt">needs follow up</td>'
        '<td class="txt">Unpriced: 1 billable call of a model with no price in effect: cost '
        'unknown, not in the ledger total</td><td class="txt">finops-analyst (pricing '
        "snapshot)</td></tr>"
    ) in page


def test_a_failed_run_exits_with_the_notebooks_error_and_keeps_the_packet(tmp_path, capsys):
    config = make_workspace(tmp_path, [request("r1")])
    run_period(config, "2026-10", tmp_path / "reports", progress=None)
    good = (tmp_path / "reports" / "2026-10" / "packet.html").read_text()
    write_ledger(tmp_path / "requests.csv", [request("r1", output_tokens=-3)])
    with pytest.raises(SystemExit) as caught:
        main(["run", "--config", str(config), "--period", "2026-10"])
    assert caught.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: {tmp_path / 'requests.csv'}: row 1 (line 2), column 'output_tokens': got '-3', "
        "expected a token count of 0 or more"
    )
    assert (tmp_path / "reports" / "2026-10" / "packet.html").read_text() == good
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        ".2026-10.lock", "2026-10", "index.html"  # the lock a run holds while it replaces 2026-10
    ]  # fmt: skip


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_sha256sums_lists_every_file_the_run_wrote_and_checks_with_sha256sum(packet):
    listed = [line.split("  ") for line in (packet / "SHA256SUMS").read_text().splitlines()]
    written = sorted(
        p.relative_to(packet).as_posix()
        for p in packet.rglob("*")
        if p.is_file() and p.name not in ("SHA256SUMS", "sign_off.json")
    )
    assert [name for _, name in listed] == written  # the review log records SHA256SUMS
    assert len(written) == 21  # packet.html, packet.ipynb, 3 statements, 16 evidence files
    # coreutils' own check, as an auditor runs it inside the folder
    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=packet, capture_output=True, text=True
    )
    assert (checked.returncode, checked.stdout.count(": OK\n")) == (0, 21)
    digests = {name: digest for digest, name in listed}
    manifest = (packet / "evidence" / "manifest.json").read_bytes()
    assert digests["evidence/manifest.json"] == hashlib.sha256(manifest).hexdigest()
    libraries = json.loads(manifest)["libraries"]
    assert sorted(libraries) == [
        "great-expectations", "matplotlib", "nbconvert", "numpy", "pandas", "papermill",
        "pyarrow", "pydantic",
    ]  # fmt: skip
    assert libraries["pandas"] == version("pandas")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_packet_reads_well_in_a_real_browser(packet, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((packet / "packet.html").as_uri())
        for section in SECTIONS:
            assert page.get_by_role("heading", name=section, exact=True).is_visible(), section
        assert page.locator("table.ak-table tbody tr").count() >= 20
        loaded = page.eval_on_selector_all(
            "figure.ak-chart img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded == [True, True, True]
        page.screenshot(path=str(tmp_path / "packet.png"), full_page=True)
        browser.close()
    assert errors == []


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_packet_prints_with_every_column_and_the_summary_on_page_one(packet):
    """A reviewer signs the printed packet: on A4 and on Letter paper (less 12 mm margins each
    side: 703 and 725 CSS px) no table runs past the page's edge, where print cuts it off, and
    each section but the first starts a page."""
    from playwright.sync_api import sync_playwright

    past_edge = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for paper, width in (("A4", 703), ("Letter", 725)):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto((packet / "packet.html").as_uri())
            page.emulate_media(media="print")
            past_edge[paper] = page.eval_on_selector_all(
                "table.ak-table",
                """tables => tables
                    .filter(t => t.getBoundingClientRect().right > document.body.clientWidth + 0.5)
                    .map(t => t.querySelector('th').textContent)""",
            )
        breaks = page.eval_on_selector_all(
            ".jp-Cell h2", "hs => hs.map(h => [h.textContent, getComputedStyle(h).breakBefore])"
        )
        shaded = page.eval_on_selector_all(  # a failing row stays red on paper
            "tr.ak-status-fail td, tr.ak-status-exceeded td",
            "tds => [...new Set(tds.map(td => getComputedStyle(td).backgroundColor))]",
        )
        pdf = page.pdf(format="Letter")
        browser.close()
    assert past_edge == {"A4": [], "Letter": []}
    assert breaks == [[f"{s}¶", "avoid" if s == "Summary" else "page"] for s in SECTIONS]
    assert shaded == ["rgb(255, 245, 245)"]
    assert pdf.startswith(b"%PDF-")


def test_the_explore_notebook_runs_on_a_workspace(tmp_path):
    import papermill

    from allocation_kit.report import resource_dir

    config = make_workspace(tmp_path / "ws", ROWS)
    executed = papermill.execute_notebook(
        str(resource_dir("notebooks") / "explore.ipynb"),
        str(tmp_path / "explore.ipynb"),
        parameters={"config": str(config), "period": "2026-10", "team": "search"},
        progress_bar=False,
        kernel_name="python3",
    )
    printed = "".join(
        o.get("text", "")
        for c in executed.cells
        for o in c.get("outputs", [])
        if c.cell_type == "code"
    )
    assert "6 requests, ledger total 0.03" in printed
    # search's own call and its share of the shared gateway's, as allocation.csv has them
    assert "search: 0.02 over 3 requests" in printed
    assert f"No earlier evidence: {tmp_path / 'ws' / 'reports'} is not a folder" in printed
    # no earlier periods in its reports folder: the anomalies say there is no baseline yet
    html = "".join(
        o.get("data", {}).get("text/html", "")
        for c in executed.cells
        for o in c.get("outputs", [])
        if c.cell_type == "code"
    )
    assert "spikes, shifts and new callers need a baseline of at least 2 earlier periods" in html
    plain = [
        "".join(o.get("data", {}).get("text/plain", ""))
        for c in executed.cells
        for o in c.get("outputs", [])
        if c.cell_type == "code"
    ]
    # by owner, after the shared gateway's split (search 0.0014 + 0.01428; support 0.0014 +
    # 0.00612), as allocation.csv; by model, the unpriced model's cost is unknown, not 0
    by_owner = next(t for t in plain if t.lstrip().startswith("requests") and "owner" in t)
    assert re.search(r"search\s+3\s+0\.015680000000", by_owner)  # the one gateway call too
    assert re.search(r"support\s+1\s+0\.007520000000", by_owner)
    by_model = next(t for t in plain if "unpriced_requests" in t)
    assert re.search(r"1\s+mystery-model\s+1\s+1\s+1000", by_model)  # printed in two blocks:
    assert re.search(r"\n1\s+0\s+100\s+NaN", by_model)  # its cached, output tokens, cost
    # by feature, from the ledger rows: the identical copy of r1 counts once (6, not 7)
    by_feature = next(t for t in plain if t.lstrip().startswith("feature"))
    assert re.search(r"^0\s+None\s+6\s+25600$", by_feature, re.M)


def test_every_amount_is_its_own_rounding_and_a_table_that_does_not_add_up_says_so():
    """Nudging cells so a table foots shows an owner's amount a cent away from its rounding
    elsewhere in the packet and in the evidence; rounding each on its own never does."""
    from decimal import Decimal as D

    from allocation_kit.present import rounded, rounding_note

    assert [rounded(v, "USD") for v in (D("1.004"), D("1.005"), D("-0.125"))] == [
        D("1.00"),
        D("1.01"),
        D("-0.13"),
    ]
    # 1.004 + 1.004 = 2.008: the rows show 1.00 and 1.00, the total 2.01
    assert rounding_note([([D("1.004"), D("1.004")], D("2.008"))], "USD", "evidence/x.csv") == (
        Html(
            '<p class="ak-note">Each amount is its exact value (evidence/x.csv) rounded to the '
            "cent on its own, totals included, so a total can differ from the sum of the rounded "
            "amounts it covers (here by up to $0.01).</p>"
        )
    )
    assert rounding_note([([D("1.006"), D("1.001")], D("2.007"))], "USD") == Html("")
    # JPY has no minor unit
    assert "rounded to the unit" in rounding_note([([D("10.4"), D("10.4")], D("20.8"))], "JPY").text


def test_the_allocation_table_foots_to_the_teams_and_the_ledger_total(packet):
    page = (packet / "packet.html").read_text()
    table = page[page.index('<th class="txt">Business unit</th>') :]
    table = table[: table.index("</table>")]
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in re.findall(r"<tr.*?</tr>", table)]
    # search: search-api 0.0014 + its gateway share 0.01428 = 0.01568 → $0.02 over rows of
    # $0.00 and $0.01; the ledger: production 0.0246, non-production 0.0014, total 0.026
    assert rows[5] == ["", "search total †", "", "$0.02", "$0.00", "$0.02"]
    # search-api's unpriced request is marked: its cost is unknown, not zero
    assert rows[4] == ["product", "search", "search-api †", "$0.00", "$0.00", "$0.00"]
    assert (
        '<p class="ak-note">† leaves out 1 billable call of a model with no price in the '
        "snapshot: their cost is unknown, not zero (see the exception queue).</p>"
    ) in page
    assert (
        '<td class="txt">unpriced</td><td class="num">1</td><td class="num">unknown (no price)</td>'
    ) in page
    # no earlier periods: the anomaly table does not claim the spend is in line with a baseline
    assert '<p class="ak-empty">No day-level spikes inside the period.</p>' in page
    assert "in line with the baseline" not in page
    # production 0.0246 and non-production 0.0014 make $0.03 together (0.026): the production
    # column carries the cent the total needs, and every total is the sum of the cells it
    # covers (each within a cent of its exact amount)
    assert rows[-1] == ["Ledger total", "", "", "$0.03", "$0.00", "$0.03"]
    leaves = [r for r in rows[:-1] if r[0] and not r[0].endswith(" total")]
    cells = [[Decimal(c.strip("$")) for c in r[3:]] for r in leaves]
    assert [sum(c) for c in zip(*cells, strict=True)] == [Decimal("0.03"), 0, Decimal("0.03")]
    assert all(p + n == t for p, n, t in cells)
    after = page[page.index('<th class="txt">Business unit</th>') :].split("</table>")[1]
    assert not after.lstrip().startswith('<p class="ak-note">Each amount is its exact value')
    # the exception queue counts every row, as the summary does, beside the unallocated ones
    rows_written = json.loads((packet / "evidence" / "manifest.json").read_text())["counts"]
    queue = page[page.index('id="Exception-queue"') :].split("</table>")[0]
    assert (
        '<tr class="ak-subtotal"><td class="txt">All exception rows</td>'
        f'<td class="num">{rows_written["exception_rows"]:,}</td>'
    ) in queue


def test_a_bill_line_without_a_model_or_with_a_fractional_quantity_renders(tmp_path):
    """A fee line without a model id and a metered half token once crashed the packet."""
    bill = (
        "date,model,direction,quantity,cost\n"
        "2026-10-10,chat-small,input,1000.5,0.001\n"
        "2026-10-10,chat-small,output,100,0.0004\n"
        "2026-10-31,,,,0.35\n"
    )
    folder = with_generic_bill(tmp_path, [request("r1")], bill)  # chat-small: 1,000 in, 100 out
    page = (folder / "packet.html").read_text()
    assert '<td class="txt">(no model id)</td><td class="txt">all directions</td>' in page
    assert '<td class="num">1,000</td><td class="num">1,000.5</td>' in page
    reasons = json.loads((folder / "evidence" / "reconciliation.json").read_text())["reasons"]
    assert any(
        "billed 1,000.5 vs 1,000 logged" in r["message"] and "0.5 tokens more" in r["message"]
        for r in reasons
    ), [r["message"] for r in reasons]


BILL_HEADER = "date,model,direction,quantity,cost,charge_category,description,currency\n"


def search_and_untagged() -> list[dict]:
    """r1 by search and r2 untagged, $1.40 each (1M input and 100k output chat-small tokens)."""
    big = {"input_tokens": 1_000_000, "output_tokens": 100_000}
    return [request("r1", **big), request("r2", team=None, application=None, **big)]


def test_the_packet_bridges_the_ledger_total_to_the_bill(tmp_path):
    # r1 search $1.40, r2 untagged $1.40; billed usage $2.85, tax $0.20, credit -$0.10
    rows = search_and_untagged()
    bill = (
        BILL_HEADER + "2026-10-10,chat-small,input,2000000,2.00,Usage,,USD\n"
        "2026-10-10,chat-small,output,200000,0.85,Usage,,USD\n"
        "2026-10-31,,,,0.20,Tax,Sales tax,USD\n"
        "2026-10-31,,,,-0.10,Credit,Promotional credit,USD\n"
        "2026-10-31,,,,0.30,Tax,VAT,EUR\n"
    )
    folder = with_generic_bill(tmp_path, rows, bill)
    page = (folder / "packet.html").read_text()
    rows = re.findall(
        r'<tr(?: class="([^"]*)")?><td class="txt">([^<]*)</td><td class="num">([^<]*)</td></tr>',
        page.split("From the ledger to the bill")[1].split("</table>")[0],
    )
    assert rows == [
        ("", "Allocated to teams (their own cost)", "$1.40"),
        ("", "Unallocated (no owner yet)", "$1.40"),
        ("ak-subtotal", "= Ledger total, computed", "$2.80"),
        ("", "Billed usage − ledger total", "$0.05"),
        ("ak-subtotal", "= Billed usage", "$2.85"),
        ("", "Tax: Sales tax", "$0.20"),
        ("", "Credit: Promotional credit", "−$0.10"),
        ("ak-total", "= The bill for 2026-10", "$2.95"),
        ("", "Tax: VAT (in EUR: not added)", "€0.30"),  # euros are never added to dollars
    ]
    # the chargeback to the bill: teams carry their own cost (nothing spread); the rest is kept
    cells = table_cells(page, 'id="Chargeback-to-the-bill"')
    assert cells == [  # what the reviewer keeps has columns: every row and column adds up
        "Team", "Cost center", "Own cost", "+ unallocated spend (kept)",
        "+ usage difference (kept)", "+ tax (kept)", "+ credits (kept)", "Charge",
        "search", "CC-100", "$1.40", "", "", "", "", "$1.40",
        "Kept by the reviewer", "", "", "$1.40", "$0.05", "$0.20", "−$0.10", "$1.55",
        "Total (= the bill for 2026-10)", "", "$1.40", "$1.40", "$0.05", "$0.20", "−$0.10",
        "$2.95",
    ]  # fmt: skip
    # it keeps $1.55 with no cost center to book it to: the note says where to name one
    nowhere = (
        "The reviewer's line has no cost center to be booked to: name one (a suspense or "
        "clearing cost center) as kit.yaml <code>chargeback.kept_cost_center</code>."
    )
    assert nowhere in page


def test_the_tax_on_spend_the_reviewer_keeps_stays_with_it_and_the_sign_off_says_so(tmp_path):
    # r1 search $1.40, r2 untagged $1.40 (kept: unallocated is not spread); tax $0.28 on the
    # $2.80 billed falls half on each: search is charged $1.54, the reviewer keeps $1.54
    rows = search_and_untagged()
    bill = (
        BILL_HEADER + "2026-10-10,chat-small,input,2000000,2.00,Usage,,USD\n"
        "2026-10-10,chat-small,output,200000,0.80,Usage,,USD\n"
        "2026-10-31,,,,0.28,Tax,Sales tax,USD\n"
    )
    # what the reviewer keeps is booked to a suspense cost center
    kit = "chargeback: {spread: [tax], kept_cost_center: CC-999}\n"
    folder = with_generic_bill(tmp_path, rows, bill, kit_extra=kit)
    page = (folder / "packet.html").read_text()
    cells = table_cells(page, 'id="Chargeback-to-the-bill"')
    assert cells == [
        "Team", "Cost center", "Own cost", "+ tax", "+ unallocated spend (kept)", "Charge",
        "search", "CC-100", "$1.40", "$0.14", "", "$1.54",
        "Kept by the reviewer", "CC-999", "", "$0.14", "$1.40", "$1.54",
        "Total (= the bill for 2026-10)", "", "$1.40", "$0.28", "$1.40", "$3.08",
    ]  # fmt: skip
    with (folder / "evidence" / "chargeback.csv").open() as handle:
        booked = [(r["line"], r["cost_center"], r["charge"]) for r in csv.DictReader(handle)]
    assert booked == [("team", "CC-100", "1.54"), ("kept_by_reviewer", "CC-999", "1.54")]
    assert "The reviewer's line has no cost center" not in page
    assert (
        "The reviewer's line keeps the part of the tax that falls on the spend it keeps "
        "(unallocated spend), in proportion to it: no team carries them on spend that is not "
        "charged to it."
    ) in page
    assert (
        "The chargeback to the bill (the section of that name) spreads tax across the teams in "
        "proportion to their own cost; the rest stays with the reviewer, with the part of the tax "
        "on the spend it keeps."
    ) in page
    statement = (folder / "statements" / "search.html").read_text()
    assert re.findall(
        r'<td class="txt">Share of tax</td><td class="txt">([^<]*)</td>', statement
    ) == [
        "in proportion to own cost among all the spend charged: the reviewer keeps the part on "
        "the spend it keeps"
    ]  # $0.14 of $0.28, not all of it: the reviewer keeps the half on the untagged $1.40
    sign_off = page.split('id="Sign-off"')[1]
    facts = re.findall(r'<td class="txt">([^<]*)</td><td class="txt">(\$[^<]*)</td>', sign_off)
    assert facts == [
        ("Allocated to teams (their own cost)", "$1.40"),
        ("Unallocated (no owner yet)", "$1.40"),
        ("Ledger total", "$2.80"),
        ("Charged to teams (the chargeback to the bill)", "$1.54"),
        ("Kept by the reviewer", "$1.54"),
        ("Chargeback total (= the bill)", "$3.08"),
    ]


def test_a_charge_for_more_than_the_week_is_shown_beside_its_bill_never_added(tmp_path):
    big = {"input_tokens": 1_000_000, "output_tokens": 100_000}  # $1.40 on 2026-10-10, in W41
    bill = (
        "date,model,direction,quantity,cost,charge_category,description,currency\n"
        "2026-10-10,chat-small,input,1000000,1.00,Usage,,USD\n"
        "2026-10-10,chat-small,output,100000,0.40,Usage,,USD\n"
        "2026-10-10,,,,0.10,Tax,Sales tax,USD\n"
        "2026-10-31,,,,0.20,Tax,Sales tax,USD\n"
    )
    folder = with_generic_bill(tmp_path, [request("r1", **big)], bill, period="2026-W41")
    page = (folder / "packet.html").read_text()
    bridge = page.split("From the ledger to the bill")[1].split("</table>")[0]
    assert re.findall(r'<td class="txt">([^<]*)</td><td class="num">([^<]*)</td>', bridge) == [
        ("Allocated to teams (their own cost)", "$1.40"),
        ("Unallocated (no owner yet)", "$0.00"),
        ("= Ledger total, computed", "$1.40"),
        ("Billed usage − ledger total", "$0.00"),
        ("= Billed usage", "$1.40"),
        ("Tax: Sales tax", "$0.10"),
        ("= Billed for 2026-W41", "$1.50"),
        ("Tax: Sales tax (whole charge, beyond 2026-W41: not added)", "$0.20"),
    ]
    schedule = page.split('id="Chargeback-to-the-bill"')[1].split("</table>")[0]
    # search's own cost, the week's tax kept by the reviewer, and the week's bill
    charges = re.findall(r'<td class="num">([^<]*)</td></tr>', schedule)
    assert charges == ["$1.40", "$0.10", "$1.50"]
    index = (folder.parent / "index.html").read_text()
    assert (
        "The bill's charges for a longer period than 2026-W41 (a month's tax or credits beside "
        "a week) are not in its column: they are charged with that period."
    ) in index
    # and search's statement, sent to its budget owner, says so too
    statement = (folder / "statements" / "search.html").read_text()
    assert (
        "<strong>Interim:</strong> 1 charge of the bill in another currency or for more than "
        "2026-W41 (a month's tax or credits beside a week) is not in this charge: charged "
        "with its own period."
    ) in statement
    assert "adds up to the bill's charges for the period exactly" in statement


def test_the_allocation_table_foots_where_rounding_each_cell_alone_would_not():
    """Found by search: each column and each row rounded on its own is off by at most a cent,
    yet the rows' Total column would add to $0.04 against a ledger total of 0.0249 → $0.02."""
    from datetime import UTC, datetime
    from decimal import Decimal as D
    from types import SimpleNamespace

    from allocation_kit.allocate import AllocationLine
    from allocation_kit.packet import Review

    def line(app, environment, cost):
        return AllocationLine(
            business_unit="product", team="search", application=app, environment=environment,
            cost_center="CC-100", allocation_status="allocated",
            allocation_rule="direct: application owner", requests=1, input_tokens=0,
            cached_input_tokens=0, cache_write_tokens=0, output_tokens=0, reasoning_tokens=0,
            unpriced_requests=0, cost=D(cost),
        )  # fmt: skip

    allocation = [
        line("a", "production", "0.006"),
        line("b", "production", "0.005"),
        line("c", "production", "0.005"),
        line("d", "production", "0.004"),
        line("d", "staging", "0.0049"),
    ]
    ledger = SimpleNamespace(
        allocation=allocation,
        workspace=SimpleNamespace(kit=SimpleNamespace(currency="USD")),
        cost_by_status=lambda: {"allocated": D("0.0249")},
    )
    review = Review(ledger, {}, Path("."), "finops-analyst", datetime.now(UTC))
    text = review.allocation_table().text
    rows = re.findall(
        r'<td class="txt">([a-d])</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td>'
        r'<td class="num">([^<]*)</td>',
        text.replace("<wbr>", ""),
    )
    # a (0.006) and d (0.0089) carry the two cents of $0.02, in production (0.020 of it, the
    # column the cents go to), each cell within a cent of its exact amount; the search total
    # and the ledger total are their sums
    assert rows == [
        ("a", "$0.01", "$0.00", "$0.01"),
        ("b", "$0.00", "$0.00", "$0.00"),
        ("c", "$0.00", "$0.00", "$0.00"),
        ("d", "$0.01", "$0.00", "$0.01"),
    ]
    assert '<td class="num">$0.02</td><td class="num">$0.00</td><td class="num">$0.02' in text
    assert "Each amount is its exact value" not in text


def test_a_business_unit_and_a_team_of_one_name_have_totals_that_say_which():
    from datetime import UTC, datetime
    from decimal import Decimal as D
    from types import SimpleNamespace

    from allocation_kit.allocate import AllocationLine
    from allocation_kit.packet import Review

    def line(team, app, cost):
        return AllocationLine(
            business_unit="platform", team=team, application=app, environment="production",
            cost_center="CC-300", allocation_status="allocated",
            allocation_rule="direct: application owner", requests=1, input_tokens=0,
            cached_input_tokens=0, cache_write_tokens=0, output_tokens=0, reasoning_tokens=0,
            unpriced_requests=0, cost=D(cost),
        )  # fmt: skip

    allocation = [line("platform", "a", "1"), line("platform", "b", "2"), line("data", "c", "4")]
    usd = SimpleNamespace(kit=SimpleNamespace(currency="USD"))
    ledger = SimpleNamespace(allocation=allocation, workspace=usd,
                             cost_by_status=lambda: {"allocated": D(7)})  # fmt: skip
    review = Review(ledger, {}, Path("."), "finops-analyst", datetime.now(UTC))
    text = review.allocation_table().text.replace("<wbr>", "")
    labels = re.findall(r'<tr class="ak-subtotal[^"]*"><td class="txt">([^<]*)</td>'
                        r'<td class="txt">([^<]*)</td>', text)  # fmt: skip
    assert labels == [("", "platform (team) total"), ("platform (business unit) total", "")]


def test_the_daily_chart_ticks_whole_days_and_leaves_days_the_bill_lacks_blank():
    import math
    from datetime import date
    from decimal import Decimal as D

    from allocation_kit.charts import daily_spend_chart

    one_day = daily_spend_chart({date(2026, 10, 5): D("91.31")}, None, "USD", "one day")
    assert [t.get_text() for t in one_day.axes[0].get_xticklabels()] == ["2026-10-05"]
    ledger = {date(2026, 10, 30): D(3), date(2026, 10, 31): D(4), date(2026, 11, 1): D(1)}
    billed = {date(2026, 10, 30): D(3), date(2026, 10, 31): D(4)}  # the bill ends on the 31st
    week = daily_spend_chart(ledger, billed, "USD", "three days")
    [line] = week.axes[0].get_lines()
    values = list(line.get_ydata())
    assert values[:2] == [3.0, 4.0] and math.isnan(values[2])  # no billed $0 on 1 November
    assert [t.get_text() for t in week.axes[0].get_xticklabels()] == [
        "2026-10-30",
        "2026-10-31",
        "2026-11-01",
    ]


def test_the_variance_chart_draws_a_model_without_a_price_apart(monkeypatch):
    """Its billed cost is part of the headline variance: the chart must not leave it out."""
    from decimal import Decimal as D
    from types import SimpleNamespace

    from allocation_kit import charts
    from allocation_kit.packet import Review

    drawn, draw = {}, charts.variance_by_model_chart

    def capture(variance, currency, title, unpriced=()):
        drawn.update(variance=dict(variance), unpriced=set(unpriced), title=title)
        return draw(variance, currency, title, unpriced)

    monkeypatch.setattr(charts, "variance_by_model_chart", capture)
    ledger = SimpleNamespace(
        period=SimpleNamespace(label="2026-10-01..2026-10-15"),
        workspace=SimpleNamespace(kit=SimpleNamespace(currency="USD")),
    )
    line = {"direction": None, "ledger_cost": None, "variance": None}
    rec = {
        "lines": [
            line | {"model": "chat", "billed_cost": "1.00", "variance": "0.05", "finding": "x"},
            line | {"model": "gemini", "billed_cost": "3.11", "finding": "unpriced"},
        ]
    }
    review = Review(ledger, {}, Path("."), "finops-analyst", datetime.now(UTC), reconciliation=rec)
    assert review.variance_chart().text.startswith('<figure class="ak-chart">')
    assert drawn == {
        "variance": {"chat": D("0.05"), "gemini (no price)": D("-3.11")},
        "unpriced": {"gemini (no price)"},
        "title": "Variance by model (ledger − billed) — 2026-10-01..2026-10-15",
    }


def test_a_budget_bar_says_why_it_warns_when_no_threshold_does():
    """The demo's assistant warned at 71.8% of its budget (threshold 80%) for its unpriced
    calls: the chart drew a yellow bar and gave no reason."""
    from types import SimpleNamespace

    from allocation_kit.packet import _bar_label

    def bar(status, crossed, reason, actual="717.79"):
        line = SimpleNamespace(status=status, threshold_crossed=crossed, reason=reason,
                               actual=Decimal(actual), budget=Decimal(1000))  # fmt: skip
        return _bar_label(line)

    short = "actual leaves out 423 unpriced calls in production (no price in the snapshot: …)"
    assert bar("warning", None, short) == "71.8% · unpriced calls: actual short"
    assert bar("warning", None, "the forecast is over budget") == "71.8% · forecast over budget"
    assert bar("warning", Decimal(80), "80.5% of budget used (threshold 80%)", "805") == "80.5%"
    assert bar("exceeded", Decimal(100), "over budget by $559.32", "1559.32") == "155.9%"
    assert bar("ok", None, "") == "71.8%"


def test_axis_ticks_carry_the_decimals_their_spacing_needs():
    """Small amounts once read $0.00 at every tick, and a unit cost's 0.0001 four times."""
    from allocation_kit.charts import _TickAmounts

    dollars = _TickAmounts("USD", 2)
    assert dollars.format_ticks([0, 0.0002, 0.0004]) == ["$0.0000", "$0.0002", "$0.0004"]
    assert dollars.format_ticks([-4.0, -2.0, 0.0]) == ["−$4.00", "−$2.00", "$0.00"]
    assert dollars.format_ticks([0, 0.025, 0.05]) == ["$0.000", "$0.025", "$0.050"]
    assert dollars.format_ticks([0, 600, 1200]) == ["$0.00", "$600.00", "$1,200.00"]
    assert _TickAmounts("JPY", 0).format_ticks([0, 500, 1000]) == ["¥0", "¥500", "¥1,000"]
    assert _TickAmounts(None, 2).format_ticks([0, 0.00005, 0.0001]) == [
        "0.00000", "0.00005", "0.00010"
    ]  # fmt: skip


def test_date_range_labels_are_short_on_the_unit_cost_axis():
    from allocation_kit.charts import _short_period

    assert [_short_period(p) for p in ("2026-10", "2026-W40", "2026-09-28..2026-09-28",
                                       "2026-09-28..2026-10-04")] == [
        "2026-10", "2026-W40", "09-28", "09-28–10-04"
    ]  # fmt: skip


def test_an_understated_unit_cost_is_drawn_off_the_trend_line():
    """A unit cost that leaves out unpriced requests has no change in the table: the chart must
    not draw a drop to it either (the demo's October once showed a -5.3% that was -0.4%)."""
    import math
    from decimal import Decimal as D

    from allocation_kit.charts import unit_cost_trend_chart

    points = [("2026-08", D("0.0281"), False, False), ("2026-09", D("0.02874"), False, False),
              ("2026-10", D("0.02721"), False, True)]  # fmt: skip
    figure = unit_cost_trend_chart({"per_1k": points}, "USD", "Unit cost")
    trend, ring = figure.axes[0].get_lines()
    values = list(trend.get_ydata())
    assert values[:2] == [0.0281, 0.02874] and math.isnan(values[2])
    assert (list(ring.get_ydata()), ring.get_markeredgecolor(), ring.get_markerfacecolor()) == (
        [0.02721], "#F28E2B", "none"
    )  # fmt: skip


def test_a_coverage_chart_with_nothing_priced_says_so_without_a_warning():
    import warnings

    from allocation_kit import charts

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of an empty legend on stderr
        figure = charts.coverage_chart({"allocated": Decimal(0)}, "USD", "Coverage")
    assert [t.get_text() for t in figure.axes[0].texts] == ["no priced cost in the period"]
    assert figure.legends == []


def test_the_counts_say_why_successful_attempts_can_outnumber_logical_calls(workspace):
    from allocation_kit.config import load_workspace
    from allocation_kit.packet import Review
    from allocation_kit.periods import parse_period
    from allocation_kit.pipeline import period_ledger

    # r1 logged twice with different content: two attempts (both quarantined), one call
    rows = [request("r1"), request("r1", output_tokens=200), request("r2")]
    ledger = period_ledger(load_workspace(workspace(rows)), parse_period("2026-10"), validate=False)
    counts = ledger.counts
    assert (counts.attempted, counts.logical_calls, counts.successful) == (3, 2, 3)
    text = Review(ledger, {}, Path("."), "finops-analyst", datetime.now(UTC)).counts().text
    assert text.endswith("so successful attempts can outnumber calls.</p>")


def test_each_team_has_its_row_at_a_glance_under_the_summary(packet):
    page = (packet / "packet.html").read_text()
    section = page[page.index('id="Teams-at-a-glance"') : page.index('id="Allocation"')]
    rows = [
        re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", row)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ]
    # search: r1 $0.0014 + 70% of gateway-fixed's $0.0204 = $0.01568, and r6's unpriced call;
    # support: r2 $0.0014 + 30% = $0.00752; the r5 conflict involves both. No earlier period.
    assert rows == [
        ["Team", "Budget owner", "Cost", "vs earlier", "Charge", "Budget used", "Anomalies",
         "Review"],
        ["search", "search-lead", "$0.02 †", "—", "$0.02", "—", "—", "fail"],
        ["support", "support-lead", "$0.01", "—", "$0.01", "—", "—", "needs follow up"],
        ["platform", "cto", "$0.00", "—", "$0.00", "—", "—", "pass"],
        ["All teams", "", "$0.03", "", "$0.03", "", "", ""],
    ]  # fmt: skip
    assert "No evidence of an earlier period in the reports folder to compare with." in section
    # $0.0232 exact, but the teams' costs are shown as their charges book them: the column adds
    # up to its total, and the total with the unallocated $0.00 to the ledger total of $0.03
    assert "(here by up to" not in section
    assert "† leaves out 1 billable call of a model with no price in the snapshot" in section


def test_the_index_tabulates_each_teams_charge_for_the_latest_six_periods(tmp_path):
    from allocation_kit.report import write_index

    def period_folder(label: str, charges: list[tuple[str, str]] | None) -> None:
        evidence = evidence_only(tmp_path, label)
        if charges is not None:
            lines = ["period,line,team,charge"]
            lines += [f"{label},{'team' if t else 'kept_by_reviewer'},{t},{c}" for t, c in charges]
            (evidence / "chargeback.csv").write_text("\n".join(lines) + "\n")

    # seven months: 2026-04 falls outside the latest six; 2026-06's evidence predates the schedule
    period_folder("2026-04", [("search", "1.00"), ("", "0.00")])
    period_folder("2026-05", [("search", "2.00"), ("", "0.00")])
    period_folder("2026-06", None)
    period_folder("2026-07", [("search", "3.00"), ("support", "1.50"), ("", "0.25")])
    period_folder("2026-08", [("search", "3.10"), ("", "0.00")])
    period_folder("2026-09", [("support", "0.40"), ("search", "0.30"), ("", "0.05")])
    period_folder("2026-10", [("support", "9.99"), ("search", "1.01"), ("", "0.00")])
    period_folder("2026-W40", None)  # weeks without schedules: no charges table of theirs
    (tmp_path / "2026-10" / "evidence" / "teams.csv").write_text(
        "period,team,unpriced_requests\n2026-10,support,3\n2026-10,search,0\n"
    )  # support's October cost leaves out 3 calls without a price
    (tmp_path / "2026-10" / "statements").mkdir()
    (tmp_path / "2026-10" / "statements" / "search.html").write_text("<html></html>")
    index = write_index(tmp_path).read_text()
    assert index.count("<h3>Charged to each team</h3>") == 1
    table = index[index.index('<table class="charges">') :]
    table = table[: table.index("</table>")]
    assert '<td><a href="2026-10/statements/search.html">search</a></td>' in table
    assert '<td class="num"><a href="2026-10/statements/search.html">$1.01</a></td>' in table
    # no reconciliation.json, so no bill: the columns add up to the ledgers
    assert (
        "2026-05, 2026-07, 2026-08, 2026-09, 2026-10 have no complete bill of their own (a week "
        "or a date range beside a monthly bill, or no bill named in kit.yaml): their columns "
        "add up to the ledger total, without tax, credits and the bill's other charges."
    ) in index
    rows = [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]
    # none is signed off: every column is provisional
    assert '<th class="num">2026-10<br><span class="sub">provisional</span></th>' in table
    assert (
        "A column marked provisional is not signed off yet: its charges stand once the period is "
        "signed pass or needs follow-up."
    ) in index
    months = ("2026-05", "2026-07", "2026-08", "2026-09", "2026-10")
    assert rows == [
        ["Team", *(f"{p}provisional" for p in months)],
        ["support", "—", "$1.50", "—", "$0.40", "$9.99 †"],  # largest in the newest first
        ["search", "$2.00", "$3.00", "$3.10", "$0.30", "$1.01"],
        ["Kept by the reviewer", "$0.00", "$0.25", "$0.00", "$0.05", "$0.00"],
        ["Total", "$2.00", "$4.75", "$3.10", "$0.75", "$11.00"],
    ]
    assert "† the team's cost leaves out billable calls of a model with no price" in index
    assert (
        "Earlier periods are in their own packets. Not shown: 2026-06, whose evidence has no "
        "chargeback.csv (an earlier version of the kit wrote it)."
    ) in index


def test_percentages_and_unit_prices_round_half_up_once_from_the_exact_amounts():
    from allocation_kit.present import pct_of, percent, signed_percent, unit_money

    assert percent(Decimal("71.25")) == "71.3%"  # half up, like money (a format spec: 71.2%)
    assert percent(Decimal("-0.04")) == "0.0%"  # no "−0.0%"
    assert percent(0.125, 2) == "0.13%"
    assert [signed_percent(Decimal(v)) for v in ("78.55", "-1.7456", "0.01", "0")] == [
        "+78.6%", "−1.7%", "0.0%", "0.0%"
    ]  # fmt: skip
    # a change from the exact costs: 286.67371855 against 291.7667974 is −1.7456%; rounded to
    # 2 places first (−1.75) and then to 1 it would show −1.8%
    change = pct_of(Decimal("286.673718550000") - Decimal("291.766797400000"),
                    Decimal("291.766797400000"))  # fmt: skip
    assert signed_percent(change) == "−1.7%"
    assert pct_of(Decimal(1), Decimal(0)) is None and pct_of(None, Decimal(1)) is None
    assert unit_money(Decimal("0.0021225"), "USD") == "$0.002123"  # four digits, half up
    assert unit_money(Decimal("-0.0021225"), "USD") == "−$0.002123"
    assert unit_money(Decimal("0.06079124"), "EUR") == "€0.06079"
    assert unit_money(Decimal("0"), "USD") == "$0"


def test_text_cells_wrap_identifiers_at_their_parts_never_inside_a_word():
    from allocation_kit.present import html_table

    table = html_table(
        ["Unit", "Cost"],
        [("cost_per_kb_summarizer_run", "$1.00"), ("data/requests <a&b>", "")],
        numeric=(1,),
    )
    assert table.text == (
        '<table class="ak-table"><thead><tr><th class="txt">Unit</th><th class="num">Cost</th>'
        "</tr></thead><tbody>"
        '<tr><td class="txt">cost_<wbr>per_<wbr>kb_<wbr>summarizer_<wbr>run</td>'
        '<td class="num">$1.00</td></tr>'
        '<tr><td class="txt">data/<wbr>requests &lt;a&amp;b&gt;</td><td class="num"></td></tr>'
        "</tbody></table>"
    )
    # a word breaks only when it cannot fit on a line of its own ("exceede/d" was the old look)
    css = (Path(__file__).parents[1] / "templates/review_packet/packet.css.j2").read_text()
    assert "td.txt { min-width: 4em; overflow-wrap: break-word; }" in css
