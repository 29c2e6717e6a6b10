"""FOCUS export: the period's allocated cost as FOCUS 1.0 rows that sum exactly to the ledger,
split shared charges with exact ratios, and pass the FinOps Foundation's validator."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from allocation_kit.config import load_workspace
from allocation_kit.demo import write_demo_workspace
from allocation_kit.focus import FOCUS_10_COLUMNS, FOCUS_ALLOCATED_COLUMNS, focus_allocated_rows
from allocation_kit.periods import parse_period
from allocation_kit.pipeline import period_ledger
from allocation_kit.report import write_evidence

from .conftest import KIT, PRICING, request

REPO = Path(__file__).resolve().parent.parent
VALIDATOR_VENV = REPO / ".venv-focus-validator"
# focus-validator 1.0.0 imports `multimethod.overload`, which multimethod 2.0 removed.
VALIDATOR_REQUIREMENTS = ("focus-validator==1.0.0", "multimethod==1.12")
# focus-validator 1.0.0's "1.0" rules still use four pre-release column IDs, and one SQL check
# reads ChargeType (FOCUS 1.0 renamed it ChargeCategory). The copy the validator reads carries
# them as aliases of the FOCUS 1.0 columns, so those checks test our real values.
VALIDATOR_ALIASES = {
    "InvoiceIssuer": "InvoiceIssuerName",
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "ResourceID": "ResourceId",
    "ChargeType": "ChargeCategory",
}


# --- the validator's own virtual environment ----------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _healthy(venv: Path) -> bool:
    marker = venv / "requirements.txt"
    if not marker.is_file() or marker.read_text() != "\n".join(VALIDATOR_REQUIREMENTS):
        return False
    probe = subprocess.run(
        [str(_venv_python(venv)), "-c", "import focus_validator.main, pandera"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def focus_validator() -> tuple[Path, Path]:
    """(python, site-packages) of a virtual environment with focus-validator, created once under
    .venv-focus-validator (pins it needs: pandas 2, numpy 1.26) and reused while healthy."""
    if not _healthy(VALIDATOR_VENV):
        partial = VALIDATOR_VENV.with_name(f"{VALIDATOR_VENV.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(partial)],
            [str(_venv_python(partial)), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", *VALIDATOR_REQUIREMENTS],
        ]  # fmt: skip
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(partial, ignore_errors=True)
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                pytest.fail(
                    f"cannot create the focus-validator environment at {VALIDATOR_VENV} "
                    f"({' '.join(step[:4])} …): {tail[0]}. It needs network access to PyPI.",
                    pytrace=False,
                )
        (partial / "requirements.txt").write_text("\n".join(VALIDATOR_REQUIREMENTS))
        shutil.rmtree(VALIDATOR_VENV, ignore_errors=True)
        partial.rename(VALIDATOR_VENV)
    python = _venv_python(VALIDATOR_VENV)
    site = subprocess.run(
        [str(python), "-c", "import focus_validator, pathlib; "
         "print(pathlib.Path(focus_validator.__file__).parent.parent)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return python, Path(site)


def validator_failures(validator: tuple[Path, Path], export: Path, work: Path) -> list[str]:
    """Run focus-validator (FOCUS 1.0 rules) on export; return the failed or errored checks."""
    python, site = validator
    with export.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    view = work / "focus_validator_view.csv"
    with view.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], *VALIDATOR_ALIASES])
        writer.writeheader()
        writer.writerows(row | {a: row[c] for a, c in VALIDATOR_ALIASES.items()} for row in rows)
    report = work / "focus_validator.xml"
    # run from site-packages: the validator reads its currency list by a relative path
    done = subprocess.run(
        [str(python), "-m", "focus_validator.main", "--data-file", str(view),
         "--validate-version", "1.0", "--output-type", "unittest",
         "--output-destination", str(report)],
        cwd=site, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    suites = ET.parse(report).getroot()
    assert int(suites.get("tests")) > 100, "the validator ran (almost) no checks"
    return [
        f"{case.get('name')}: {(problem.get('message') or '').strip()}"
        for case in suites.iter("testcase")
        for problem in (*case.findall("failure"), *case.findall("error"))
    ]


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's 2026-10 evidence (unpriced, quarantined and every unallocated status)."""
    root = tmp_path_factory.mktemp("demo")
    config = write_demo_workspace(root / "workspace", rows_per_month=5_000)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    write_evidence(root / "2026-10", ledger, {"period": "2026-10"})
    return root / "2026-10" / "evidence" / "focus_allocated.csv"


def test_the_demo_export_passes_the_finops_foundation_validator(
    focus_validator, demo_export, tmp_path
):
    assert validator_failures(focus_validator, demo_export, tmp_path) == []


def test_the_demo_export_sums_to_the_ledger_and_names_the_configured_provider(demo_export):
    with demo_export.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    manifest = json.loads((demo_export.parent / "manifest.json").read_text())
    assert header == list(FOCUS_ALLOCATED_COLUMNS)
    assert sum(Decimal(r["BilledCost"]) for r in rows) == Decimal(manifest["ledger_cost"])
    # the aggregator sells every model; the pricing entries name who makes each
    publishers = {(json.loads(r["x_SkuPriceDetails"])["ModelId"], r["PublisherName"]) for r in rows}
    assert publishers == {
        ("gpt-4o-mini", "OpenAI"), ("gpt-4.1", "OpenAI"), ("o3-mini", "OpenAI"),
        ("text-embedding-3-small", "OpenAI"), ("dall-e-3", "OpenAI"),
        ("claude-sonnet-4-5", "Anthropic"),
    }  # fmt: skip
    assert {(r["ProviderName"], r["InvoiceIssuerName"], r["ServiceName"]) for r in rows} == {
        ("CometAPI", "CometAPI", "CometAPI")
    }
    statuses = {r["x_AllocationStatus"] for r in rows}
    assert statuses == {"allocated", "shared", "untagged", "unknown_owner", "conflict",
                        "quarantined"}  # fmt: skip
    assert "gemini-2.5-flash" not in {json.loads(r["x_SkuPriceDetails"])["ModelId"] for r in rows}


# --- exact rows of a crafted workspace ----------------------------------------------------------

ROWS = [
    # direct: search-api belongs to search; 200 of the 1000 input tokens are cached
    request("d1", cached_input_tokens=200),
    # shared, fixed split 70/30 between search and support
    request("s1", team=None, application="gateway-fixed", input_tokens=1001, output_tokens=33),
    # shared, even split between platform, search and support: thirds that do not divide
    request("e1", team=None, application="gateway-even", input_tokens=1001, output_tokens=0),
    # unallocated: no team, no application
    request("u1", team=None, application=None, input_tokens=500, output_tokens=50),
    # after the 2026-10-15 price change: a second price entry of chat-small
    request("d2", timestamp="2026-10-20T08:00:00Z", input_tokens=2000, output_tokens=0),
    # reasoning priced apart from output
    request("r1", model="reasoner", input_tokens=100, output_tokens=100, reasoning_tokens=40),
    # not exported: a failed call (no cost) and an unpriced model (no cost known)
    request("f1", status_code=500),
    request("p1", model="mystery"),
]
FIELDS = ("SkuPriceId", "x_AllocationStatus", "SubAccountId", "ConsumedQuantity",
          "PricingQuantity", "ListUnitPrice", "BilledCost", "x_AllocatedRatio")  # fmt: skip
BEFORE = "2026-01-01T00:00:00Z"
AFTER = "2026-10-15T00:00:00Z"


@pytest.fixture
def crafted(workspace):
    config = workspace(ROWS, kit=KIT + "focus: {provider_name: CometAPI, service_name: Chat}\n")
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    return ledger, focus_allocated_rows(ledger)


def test_rows_are_one_per_owner_line_model_direction_and_price_entry_with_exact_costs(crafted):
    _, rows = crafted
    got = [tuple(r[f] for f in FIELDS) for r in rows]
    assert got == [
        # direct
        (f"chat-small/uncached_input/{BEFORE}", "allocated", "search", "800.0", "0.000800",
         "1.000000", "0.000800000000", ""),
        (f"chat-small/cached_input/{BEFORE}", "allocated", "search", "200.0", "0.000200",
         "0.500000", "0.000100000000", ""),
        (f"chat-small/output/{BEFORE}", "allocated", "search", "100.0", "0.000100",
         "4.000000", "0.000400000000", ""),
        (f"chat-small/uncached_input/{AFTER}", "allocated", "search", "2000.0", "0.002000",
         "0.800000", "0.001600000000", ""),
        (f"reasoner/uncached_input/{BEFORE}", "allocated", "search", "100.0", "0.000100",
         "2.000000", "0.000200000000", ""),
        (f"reasoner/output/{BEFORE}", "allocated", "search", "60.0", "0.000060",
         "8.000000", "0.000480000000", ""),
        (f"reasoner/reasoning/{BEFORE}", "allocated", "search", "40.0", "0.000040",
         "10.000000", "0.000400000000", ""),
        # even split of 0.001001: 1001000000 picodollars in thirds, the odd two to the first;
        # the 1001 tokens are split the same way, at 10⁻¹² tokens
        (f"chat-small/uncached_input/{BEFORE}", "shared", "platform", "333.666666666667",
         "0.000333666666666667", "1.000000", "0.000333666667", "0.333333333334"),
        (f"chat-small/uncached_input/{BEFORE}", "shared", "search", "333.666666666667",
         "0.000333666666666667", "1.000000", "0.000333666667", "0.333333333333"),
        (f"chat-small/uncached_input/{BEFORE}", "shared", "support", "333.666666666666",
         "0.000333666666666666", "1.000000", "0.000333666666", "0.333333333333"),
        # fixed split 70/30
        (f"chat-small/uncached_input/{BEFORE}", "shared", "search", "700.7", "0.0007007",
         "1.000000", "0.000700700000", "0.700000000000"),
        (f"chat-small/uncached_input/{BEFORE}", "shared", "support", "300.3", "0.0003003",
         "1.000000", "0.000300300000", "0.300000000000"),
        (f"chat-small/output/{BEFORE}", "shared", "search", "23.1", "0.0000231",
         "4.000000", "0.000092400000", "0.700000000000"),
        (f"chat-small/output/{BEFORE}", "shared", "support", "9.9", "0.0000099",
         "4.000000", "0.000039600000", "0.300000000000"),
        # unallocated: its own row, no sub account
        (f"chat-small/uncached_input/{BEFORE}", "untagged", "", "500.0", "0.000500",
         "1.000000", "0.000500000000", ""),
        (f"chat-small/output/{BEFORE}", "untagged", "", "50.0", "0.000050",
         "4.000000", "0.000200000000", ""),
    ]  # fmt: skip


def test_export_total_equals_the_ledger_total_without_unpriced_or_failed_calls(crafted):
    ledger, rows = crafted
    assert sum(Decimal(r["BilledCost"]) for r in rows) == ledger.ledger_cost
    assert ledger.ledger_cost == Decimal("0.006814000000")
    assert ledger.counts.unpriced == 1
    for r in rows:
        assert r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"]


def test_ratios_and_shares_sum_exactly_to_each_origin_charge(crafted):
    _, rows = crafted
    ratios: dict[str, Decimal] = defaultdict(Decimal)
    shares: dict[str, Decimal] = defaultdict(Decimal)
    quantities: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r["x_AllocationStatus"] == "shared":
            ratios[r["x_OriginChargeId"]] += Decimal(r["x_AllocatedRatio"])
            shares[r["x_OriginChargeId"]] += Decimal(r["BilledCost"])
            quantities[r["x_OriginChargeId"]] += Decimal(r["ConsumedQuantity"])
            # ListCost = ListUnitPrice × PricingQuantity, to the ledger's 10⁻¹²
            listed = Decimal(r["ListUnitPrice"]) * Decimal(r["PricingQuantity"])
            assert abs(Decimal(r["ListCost"]) - listed) < Decimal("1e-12")
    assert set(ratios.values()) == {Decimal(1)}
    # the split quantities sum to the origin's, as FOCUS asks of summable columns
    assert sorted(quantities.values()) == [Decimal(33), Decimal(1001), Decimal(1001)]
    assert shares == {
        f"shared|platform|gateway-even|production|chat-small/uncached_input/{BEFORE}":
            Decimal("0.001001"),
        f"shared|platform|gateway-fixed|production|chat-small/uncached_input/{BEFORE}":
            Decimal("0.001001"),
        f"shared|platform|gateway-fixed|production|chat-small/output/{BEFORE}":
            Decimal("0.000132"),
    }  # fmt: skip


def test_a_split_row_carries_the_focus_13_allocation_and_the_receiving_team(crafted):
    _, rows = crafted
    row = next(r for r in rows if r["x_AllocationStatus"] == "shared"
               and r["SubAccountId"] == "support" and "output" in r["SkuId"])  # fmt: skip
    assert {c: row[c] for c in (
        "ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "ChargeDescription",
        "ResourceId", "ResourceType", "ServiceName", "ProviderName", "PricingUnit",
        "ConsumedUnit", "x_AllocationRule", "x_AllocatedMethodId", "x_AllocatedResourceId",
        "x_AllocatedResourceName")} == {
        "ChargePeriodStart": "2026-10-01T00:00:00Z",
        "ChargePeriodEnd": "2026-10-15T00:00:00Z",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "ChargeDescription": "chat-small output tokens of gateway-fixed (production)",
        "ResourceId": "gateway-fixed",
        "ResourceType": "Application",
        "ServiceName": "Chat",
        "ProviderName": "CometAPI",
        "PricingUnit": "1000000 Tokens",
        "ConsumedUnit": "Tokens",
        "x_AllocationRule": "shared: fixed split (search 70%, support 30%)",
        "x_AllocatedMethodId": "shared-fixed",
        "x_AllocatedResourceId": "support",
        "x_AllocatedResourceName": "support",
    }  # fmt: skip
    assert json.loads(row["Tags"]) == {
        "allocation_status": "shared", "application": "gateway-fixed",
        "business_unit": "corporate", "cost_center": "CC-900", "environment": "production",
        "team": "platform",
    }  # fmt: skip
    assert json.loads(row["x_AllocatedTags"]) == {
        "team": "support", "business_unit": "operations", "cost_center": "CC-200"
    }  # fmt: skip
    details = json.loads(row["x_AllocatedMethodDetails"], parse_float=Decimal)
    assert details == {
        "Elements": [{"AllocatedRatio": Decimal("0.3"), "UsageUnit": "Percent",
                      "UsageQuantity": 30}]
    }  # fmt: skip
    assert json.loads(row["x_SkuPriceDetails"]) == {
        "ModelId": "chat-small", "TokenDirection": "Output"
    }  # fmt: skip


def test_direct_and_unallocated_rows_have_no_allocation_columns(crafted):
    _, rows = crafted
    untagged = next(r for r in rows if r["x_AllocationStatus"] == "untagged")
    assert json.loads(untagged["Tags"]) == {
        "allocation_status": "untagged", "environment": "production"
    }  # fmt: skip
    assert untagged["x_AllocationRule"] == "unallocated: untagged"
    for r in rows:
        if r["x_AllocationStatus"] != "shared":
            assert [r[c] for c in FOCUS_ALLOCATED_COLUMNS if c.startswith("x_Allocated")] == (
                [""] * 6
            )


def test_every_focus_10_column_is_present_and_mandatory_ones_filled(crafted):
    _, rows = crafted
    nullable = {"AvailabilityZone", "ChargeClass", "RegionId", "RegionName", "SubAccountId",
                "SubAccountName", "ResourceId", "ResourceName", "ResourceType"}  # fmt: skip
    nullable |= {c for c in FOCUS_10_COLUMNS if c.startswith("CommitmentDiscount")}
    for r in rows:
        assert set(FOCUS_10_COLUMNS) <= set(r)
        assert [c for c in FOCUS_10_COLUMNS if c not in nullable and not r[c]] == []
        assert (r["ChargeCategory"], r["ChargeFrequency"], r["PricingCategory"]) == (
            "Usage",
            "Usage-Based",
            "Standard",
        )
        assert r["ServiceCategory"] == "AI and Machine Learning"


def test_batch_and_long_context_usage_get_rows_at_their_own_unit_prices(workspace):
    from .test_pricing_tiers import TIERED

    rows = [
        request("plain", model="long-ctx", input_tokens=1000, output_tokens=100),
        request("tier", model="long-ctx", input_tokens=200_001, output_tokens=1000),
        request("batch", model="long-ctx", input_tokens=1000, output_tokens=100, batch="true"),
    ]
    config = workspace(rows, pricing=TIERED)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    exported = [
        (r["SkuPriceId"], r["ConsumedQuantity"], r["ListUnitPrice"], r["BilledCost"])
        for r in focus_allocated_rows(ledger)
    ]
    stamp = "2026-01-01T00:00:00Z"
    assert sorted(exported) == [
        (f"long-ctx/output/{stamp}", "100.0", "10.000000", "0.001000000000"),
        (f"long-ctx/output/{stamp}/batch", "100.0", "5.000000", "0.000500000000"),
        (f"long-ctx/output/{stamp}/tier1", "1000.0", "15.000000", "0.015000000000"),
        (f"long-ctx/uncached_input/{stamp}", "1000.0", "1.250000", "0.001250000000"),
        (f"long-ctx/uncached_input/{stamp}/batch", "1000.0", "0.625000", "0.000625000000"),
        (f"long-ctx/uncached_input/{stamp}/tier1", "200001.0", "2.500000", "0.500002500000"),
    ]
    # every row's cost is its unit price times its pricing quantity, and the rows sum to the ledger
    for _, quantity, price, cost in exported:
        assert Decimal(quantity) * Decimal(price) / 1_000_000 == Decimal(cost)
    assert sum(Decimal(r[3]) for r in exported) == ledger.ledger_cost


def test_a_pricing_entry_names_its_models_provider_and_publisher(workspace):
    """Behind one gateway, OpenAI's models and Anthropic's: the entry's names win over kit.yaml's
    for that model's rows; a model whose entry names none keeps kit.yaml's."""
    pricing = PRICING.replace(
        "  - model: reasoner\n",
        "  - model: reasoner\n    publisher: OpenAI\n",
    ).replace(
        "  - model: cacher\n",
        "  - model: cacher\n    provider: Anthropic\n    publisher: Anthropic\n",
    )
    rows = [request("d1"), request("r1", model="reasoner"), request("c1", model="cacher")]
    kit = KIT + "focus: {provider_name: CometAPI, invoice_issuer_name: CometAPI Inc.}\n"
    config = workspace(rows, kit=kit, pricing=pricing)
    ledger = period_ledger(load_workspace(config), parse_period("2026-10"), validate=False)
    names = ("ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName")
    got = {(r["SkuId"].split("/")[0], *(r[n] for n in names)) for r in focus_allocated_rows(ledger)}
    assert got == {
        ("chat-small", "CometAPI", "CometAPI", "CometAPI Inc.", "CometAPI"),
        ("reasoner", "CometAPI", "OpenAI", "CometAPI Inc.", "CometAPI"),
        ("cacher", "Anthropic", "Anthropic", "CometAPI Inc.", "Anthropic"),
    }
