"""Billing: FOCUS 1.0–1.3 and generic bills load into one normalised table, or fail in one line."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from allocation_kit.billing import BILLING_COLUMNS, load_billing
from allocation_kit.config import BillingSource
from allocation_kit.errors import ConfigError, InputError
from allocation_kit.load import connect

# The FOCUS specification's AI examples (tests/data/focus when vendored, else the shared copy).
FOCUS_EXAMPLES = next(
    (
        p
        for p in (Path(__file__).parent / "data" / "focus", Path("/work/shared/reference/focus"))
        if p.is_dir()
    ),
    None,
)
EXAMPLE_FILES = sorted(FOCUS_EXAMPLES.rglob("*.csv")) if FOCUS_EXAMPLES else []
needs_examples = pytest.mark.skipif(not EXAMPLE_FILES, reason="FOCUS examples not found")

FOCUS_COLUMNS = [
    "BilledCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargePeriodStart", "ChargePeriodEnd", "ConsumedQuantity",
    "ConsumedUnit", "PricingQuantity", "PricingUnit", "SkuMeter", "SkuPriceDetails",
]  # fmt: skip


def focus_row(**values: object) -> dict[str, object]:
    """One October 2026 usage line: 1M uncached input tokens of chat-small for $1.00."""
    row: dict[str, object] = {
        "BilledCost": "1.00",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": "Input tokens",
        "ChargePeriodStart": "2026-10-01T00:00:00Z",
        "ChargePeriodEnd": "2026-11-01T00:00:00Z",
        "ConsumedQuantity": "1000000",
        "ConsumedUnit": "Tokens",
        "PricingQuantity": "1",
        "PricingUnit": "1000000 Tokens",
        "SkuMeter": "Input Tokens",
        "SkuPriceDetails": json.dumps(
            {"ModelId": "chat-small", "TokenCacheAction": "Uncached", "TokenDirection": "Input"}
        ),
    }
    row.update(values)
    return row


def write_csv(path: Path, rows: list[dict[str, object]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(root: Path, path: str, fmt: str = "focus", columns: dict | None = None, **source: object):
    con = connect()
    source = BillingSource(path=path, format=fmt, columns=columns or {}, **source)
    loaded = load_billing(con, source, root, "kit.yaml", "USD")
    return con, loaded


def rows(con, columns: str) -> duckdb.DuckDBPyConnection:
    return con.execute(f"SELECT {columns} FROM billing_lines ORDER BY source_file, row_number")


def error_line(root: Path, path: str, fmt: str = "focus", columns: dict | None = None) -> str:
    with pytest.raises(InputError) as caught:
        load(root, path, fmt, columns)
    return caught.value.line()


# --- the FOCUS specification's examples --------------------------------------------------------


def expected_totals(path: Path) -> dict[tuple[str | None, str], tuple[Decimal, Decimal]]:
    """(model, charge category) -> (BilledCost, token ConsumedQuantity), read with csv + Decimal."""
    totals: dict = defaultdict(lambda: (Decimal(0), Decimal(0)))
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            details = json.loads(row["SkuPriceDetails"]) if row["SkuPriceDetails"] else {}
            key = (details.get("ModelId"), row["ChargeCategory"])
            tokens = Decimal(row["ConsumedQuantity"]) if row["ConsumedUnit"] == "Tokens" else 0
            cost, quantity = totals[key]
            totals[key] = (cost + Decimal(row["BilledCost"]), quantity + tokens)
    return dict(totals)


@needs_examples
@pytest.mark.parametrize(
    "path", EXAMPLE_FILES, ids=[str(p.relative_to(FOCUS_EXAMPLES)) for p in EXAMPLE_FILES]
)
def test_every_focus_example_loads_with_the_files_own_totals_per_model(path):
    con, loaded = load(path.parent, path.name)
    got = {
        (model, category): (cost, quantity)
        for model, category, cost, quantity in con.execute(
            """SELECT model, charge_category, sum(billed_cost),
                COALESCE(sum(quantity) FILTER (WHERE quantity_unit = 'tokens'), 0)
            FROM billing_lines GROUP BY ALL"""
        ).fetchall()
    }
    assert got == expected_totals(path)
    assert loaded.rows == len(path.read_text(encoding="utf-8").splitlines()) - 1


DIRECTIONS_BY_EXAMPLE = {
    # TokenDirection + TokenCacheAction Read/Write (FOCUS 1.3)
    "ai_prompt_caching/ai_prompt_caching_a.csv": [
        ("solora-reasoning-pro", "uncached_input", Decimal(500_000)),
        ("solora-reasoning-pro", "cache_write", Decimal(2_000_000)),
        ("solora-reasoning-pro", "cached_input", Decimal(8_000_000)),
        ("solora-reasoning-pro", "output", Decimal(1_500_000)),
    ],
    # Input without TokenCacheAction is uncached input; cache storage (token-hours) has no
    # direction and no token quantity
    "ai_prompt_caching/ai_prompt_caching_b.csv": [
        ("latticescale.solora-reasoning-pro", "uncached_input", Decimal(2_500_000)),
        ("latticescale.solora-reasoning-pro", "cached_input", Decimal(8_000_000)),
        ("latticescale.solora-reasoning-pro", "output", Decimal(1_500_000)),
        ("latticescale.solora-reasoning-pro", None, None),
    ],
    # the older TokenType key
    "ai_billing/foundation_model_via_csp_marketplace.csv": [
        ("solora-neptune-5.0", "cached_input", Decimal(50_000_000)),
        ("solora-neptune-5.0", "cache_write", Decimal(15_000_000)),
    ],
    # no token keys at all: the SkuMeter text decides
    "ai_billing/multi_model_usage.csv": [
        ("solora-atlas-5.5", "uncached_input", Decimal(10_000_000)),
        ("solora-atlas-5.5", "output", Decimal(2_000_000)),
        ("solora-atlas-5.4-mini", "uncached_input", Decimal(3_000_000)),
        ("solora-atlas-5.4-mini", "output", Decimal(500_000)),
    ],
    # a commitment purchase has no model; the drawn-down usage is billed at zero
    "ai_model_billing/drawdown_via_prepayment_ai_model_api.csv": [
        (None, None, None),
        ("solora-saturn-5.0", "uncached_input", Decimal(5_000_000)),
        ("solora-saturn-5.0", "output", Decimal(1_500_000)),
    ],
}


@needs_examples
@pytest.mark.parametrize("name", sorted(DIRECTIONS_BY_EXAMPLE))
def test_token_directions_come_from_sku_price_details_or_the_meter(name):
    path = FOCUS_EXAMPLES / name
    con, _ = load(path.parent, path.name)
    assert rows(con, "model, direction, quantity").fetchall() == DIRECTIONS_BY_EXAMPLE[name]


@needs_examples
def test_a_focus_line_is_normalised_column_by_column():
    path = FOCUS_EXAMPLES / "ai_model_billing" / "drawdown_via_prepayment_ai_model_api.csv"
    con, _ = load(path.parent, path.name)
    names = list(BILLING_COLUMNS)
    purchase, usage, _ = (dict(zip(names, row, strict=True)) for row in rows(con, "*").fetchall())
    assert purchase | {"tags": None} == {
        "source_file": "drawdown_via_prepayment_ai_model_api.csv",
        "row_number": 1,
        "billing_period_start": datetime(2025, 5, 1),
        "billing_period_end": datetime(2025, 6, 1),
        "charge_period_start": datetime(2025, 5, 1),
        "charge_period_end": datetime(2026, 5, 1),
        "charge_category": "Purchase",
        "charge_class": None,
        "description": "1 year Commitment Purchase",
        "billed_cost": Decimal("500000"),
        "effective_cost": Decimal(0),
        "currency": "USD",
        "consumed_quantity": None,
        "consumed_unit": None,
        "pricing_quantity": Decimal("500000"),
        "pricing_unit": "USD",
        "list_unit_price": Decimal(1),
        "sku_id": "TOKEN-COMMITMENT-PURCHASE",
        "sku_meter": "Token Commitment",
        "model": None,
        "direction": None,
        "quantity": None,
        "quantity_unit": None,
        "provider_name": "Solora AI",
        "service_name": "Solora Generative AI API",
        "tags": None,
        "request_count": None,
        "billing_account_id": "acct-1001",  # for the books: the example has no InvoiceId
        "invoice_id": None,
        "invoice_issuer": "Solora AI",
    }
    assert (usage["billed_cost"], usage["effective_cost"], usage["quantity_unit"]) == (
        Decimal(0), Decimal(20), "tokens"
    )  # fmt: skip


def test_a_semicolon_bill_from_a_spreadsheet_loads_like_the_comma_one(tmp_path):
    bill = [focus_row(), focus_row(BilledCost="0.25", ChargeDescription="a; b")]
    write_csv(tmp_path / "comma.csv", bill, FOCUS_COLUMNS)
    text = (tmp_path / "comma.csv").read_text()
    with (tmp_path / "semi.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerows(csv.reader(text.splitlines()))
    assert ";" in (tmp_path / "semi.csv").read_text().splitlines()[0]
    columns = "* EXCLUDE (source_file)"
    expected = rows(load(tmp_path, "comma.csv")[0], columns).fetchall()
    assert len(expected) == 2
    assert rows(load(tmp_path, "semi.csv")[0], columns).fetchall() == expected
    assert [r[FOCUS_COLUMNS.index("BilledCost")] for r in csv.reader(text.splitlines()[1:])] == [
        focus_row()["BilledCost"],
        "0.25",
    ]


def test_parquet_with_typed_and_nested_columns_loads_like_csv(tmp_path):
    write_csv(tmp_path / "bill.csv", [focus_row(), focus_row(BilledCost="0.25", SkuMeter="x")])
    connect().execute(
        f"""COPY (SELECT CAST(BilledCost AS DECIMAL(18, 6)) AS BilledCost, BillingCurrency,
            CAST(ChargePeriodStart AS TIMESTAMPTZ) AS ChargePeriodStart,
            CAST(ChargePeriodEnd AS TIMESTAMPTZ) AS ChargePeriodEnd, ChargeCategory,
            CAST(ConsumedQuantity AS DOUBLE) AS ConsumedQuantity, ConsumedUnit,
            {{'ModelId': 'chat-small', 'TokenDirection': 'Input'}} AS SkuPriceDetails
        FROM read_csv('{tmp_path / "bill.csv"}', all_varchar = true))
        TO '{tmp_path / "bill.parquet"}' (FORMAT parquet)"""
    )
    con, loaded = load(tmp_path, "*.parquet")
    assert rows(con, "row_number, billed_cost, model, direction, quantity").fetchall() == [
        (1, Decimal("1"), "chat-small", "uncached_input", Decimal(1_000_000)),
        (2, Decimal("0.25"), "chat-small", "uncached_input", Decimal(1_000_000)),
    ]
    assert (loaded.format, loaded.rows) == ("focus", 2)


def test_per_call_lines_count_requests_and_quantities_scale_by_unit(tmp_path):
    write_csv(tmp_path / "bill.csv", [
        focus_row(SkuPriceDetails='{"ModelId": "painter"}', SkuMeter="Image Generations",
                  ConsumedQuantity="25", ConsumedUnit="Images", BilledCost="1.00"),
        focus_row(ConsumedQuantity="", ConsumedUnit="", PricingQuantity="2.5",
                  PricingUnit="1000000 Tokens"),
        focus_row(ConsumedQuantity="3", ConsumedUnit="1K Tokens"),
    ])  # fmt: skip
    con, _ = load(tmp_path, "bill.csv")
    assert rows(con, "model, direction, quantity, quantity_unit").fetchall() == [
        ("painter", "per_call", Decimal(25), "requests"),
        ("chat-small", "uncached_input", Decimal(2_500_000), "tokens"),
        ("chat-small", "uncached_input", Decimal(3_000), "tokens"),
    ]


def test_renamed_focus_columns_and_a_request_count_are_mapped(tmp_path):
    row = focus_row(Cost="2.50", Requests="40")
    write_csv(tmp_path / "bill.csv", [row], [c for c in row if c != "BilledCost"])
    columns = {"BilledCost": "Cost", "request_count": "Requests"}
    con, _ = load(tmp_path, "bill.csv", columns=columns)
    assert rows(con, "billed_cost, request_count").fetchall() == [(Decimal("2.5"), 40)]


def test_many_files_by_glob_keep_their_own_row_numbers(tmp_path):
    (tmp_path / "bills").mkdir()
    write_csv(tmp_path / "bills" / "a.csv", [focus_row(), focus_row(BilledCost="2")])
    write_csv(tmp_path / "bills" / "b.csv", [focus_row(BilledCost="3")])
    con, loaded = load(tmp_path, "bills/*.csv")
    assert rows(con, "source_file, row_number, billed_cost").fetchall() == [
        ("bills/a.csv", 1, Decimal(1)),
        ("bills/a.csv", 2, Decimal(2)),
        ("bills/b.csv", 1, Decimal(3)),
    ]
    assert [p.name for p in loaded.files] == ["a.csv", "b.csv"]


# --- generic bills ------------------------------------------------------------------------------


def test_a_generic_daily_bill_is_mapped_by_column(tmp_path):
    (tmp_path / "bill.csv").write_text(
        "Day,Model,Kind,Tokens,Amount\n"
        "2026-10-05,chat-small,input,1000000,1.00\n"
        "2026-10-05,chat-small,Output,250000,1.00\n"
        "2026-10-06,painter,requests,3,0.12\n"
        "2026-10-06,chat-small,,100,0.0001\n"
    )
    columns = {"date": "Day", "model": "Model", "direction": "Kind", "quantity": "Tokens",
               "cost": "Amount"}  # fmt: skip
    con, loaded = load(tmp_path, "bill.csv", "generic", columns)
    assert rows(
        con,
        "charge_period_start, charge_period_end, billing_period_start, billing_period_end, "
        "charge_category, model, direction, quantity, quantity_unit, billed_cost, currency",
    ).fetchall() == [
        (datetime(2026, 10, 5), datetime(2026, 10, 6), datetime(2026, 10, 1),
         datetime(2026, 11, 1), "Usage", "chat-small", "uncached_input", Decimal(1_000_000),
         "tokens", Decimal(1), "USD"),
        (datetime(2026, 10, 5), datetime(2026, 10, 6), datetime(2026, 10, 1),
         datetime(2026, 11, 1), "Usage", "chat-small", "output", Decimal(250_000), "tokens",
         Decimal(1), "USD"),
        (datetime(2026, 10, 6), datetime(2026, 10, 7), datetime(2026, 10, 1),
         datetime(2026, 11, 1), "Usage", "painter", "per_call", Decimal(3), "requests",
         Decimal("0.12"), "USD"),
        (datetime(2026, 10, 6), datetime(2026, 10, 7), datetime(2026, 10, 1),
         datetime(2026, 11, 1), "Usage", "chat-small", None, Decimal(100), "tokens",
         Decimal("0.0001"), "USD"),
    ]  # fmt: skip
    assert loaded.format == "generic"


def test_a_generic_bill_maps_its_own_direction_words(tmp_path):
    # OpenAI's words: `prompt` here is the uncached part (its cached part is a line of its own)
    (tmp_path / "bill.csv").write_text(
        "date,model,direction,quantity,cost\n"
        "2026-10-05,chat-small,prompt,600000,0.60\n"
        "2026-10-05,chat-small,Cached_Prompt,400000,0.20\n"
        "2026-10-05,chat-small,completion,250000,1.00\n"
    )
    words = {"prompt": "uncached_input", "cached_prompt": "cached_input", "completion": "output"}
    con, _ = load(tmp_path, "bill.csv", "generic", directions=words)
    assert rows(con, "direction, quantity").fetchall() == [
        ("uncached_input", Decimal(600_000)),
        ("cached_input", Decimal(400_000)),
        ("output", Decimal(250_000)),
    ]


def test_a_generic_monthly_bill_with_its_own_currency_and_categories(tmp_path):
    (tmp_path / "bill.csv").write_text(
        "date,model,cost,currency,charge_category\n"
        "2026-10,chat-small,12.34,eur,Usage\n"
        "2026-10,,1.20,EUR,tax\n"
    )
    con, _ = load(tmp_path, "bill.csv", "generic")
    assert rows(
        con, "charge_period_start, charge_period_end, charge_category, model, currency, quantity"
    ).fetchall() == [
        (datetime(2026, 10, 1), datetime(2026, 11, 1), "Usage", "chat-small", "EUR", None),
        (datetime(2026, 10, 1), datetime(2026, 11, 1), "Tax", None, "EUR", None),
    ]


# --- bad input: one line naming the file, the row and the column -------------------------------


def test_a_missing_required_focus_column_is_named(tmp_path):
    row = focus_row()
    path = write_csv(tmp_path / "bill.csv", [row], [c for c in row if c != "ChargePeriodEnd"])
    assert error_line(tmp_path, "bill.csv") == (
        f"{path}: missing required FOCUS column 'ChargePeriodEnd'; expected BilledCost, "
        "BillingCurrency, ChargeCategory, ChargePeriodStart, ChargePeriodEnd; columns found: "
        "BilledCost, BillingCurrency, BillingPeriodStart, BillingPeriodEnd, ChargeCategory, "
        "ChargeClass, ChargeDescription, ChargePeriodStart, ConsumedQuantity, ConsumedUnit, "
        "PricingQuantity, PricingUnit, SkuMeter, SkuPriceDetails"
    )


def test_an_empty_bill_or_one_with_only_a_header_says_so(tmp_path):
    (tmp_path / "bill.csv").write_text("")
    assert error_line(tmp_path, "bill.csv") == (
        f"{tmp_path / 'bill.csv'}: the file is empty; expected a billing export"
    )
    (tmp_path / "bill.csv").write_text(",".join(FOCUS_COLUMNS) + "\n")
    assert error_line(tmp_path, "bill.csv") == (
        f"{tmp_path / 'bill.csv'}: the bill has no rows (only a header); export it again, or "
        "remove `billing` from kit.yaml to review without one"
    )
    # beside a bill with lines, an empty export is simply nothing more
    write_csv(tmp_path / "bill-2.csv", [focus_row()], FOCUS_COLUMNS)
    assert load(tmp_path, "bill*.csv")[1].rows == 1


@pytest.mark.parametrize(
    ("values", "where", "expected"),
    [
        ({"BilledCost": "12,50"}, "column 'BilledCost'",
         "got '12,50', expected a decimal number such as 12.50"),
        ({"BilledCost": ""}, "column 'BilledCost'",
         "got empty, expected a value (the column is required)"),
        ({"ChargePeriodStart": "01/10/2026"}, "column 'ChargePeriodStart'",
         "got '01/10/2026', expected an ISO 8601 timestamp such as 2025-05-01T00:00:00Z"),
        # DuckDB reads 'infinity': the end was blamed for being before it
        ({"ChargePeriodStart": "infinity"}, "column 'ChargePeriodStart'",
         "got 'infinity', expected an ISO 8601 timestamp such as 2025-05-01T00:00:00Z"),
        ({"ChargePeriodEnd": "2026-09-30T00:00:00Z"}, "column 'ChargePeriodEnd'",
         "got '2026-09-30T00:00:00Z', expected a time at or after ChargePeriodStart"),
        ({"SkuPriceDetails": '{"ModelId": "chat-small",'}, "column 'SkuPriceDetails'",
         """got '{"ModelId": "chat-small",', expected a JSON object such as """
         """{"ModelId": "…", "TokenDirection": "Input"}"""),
        # a direction it cannot place: once read as uncached input without a word
        ({"SkuPriceDetails": '{"ModelId": "m", "TokenDirection": "Sideways"}'},
         "column 'SkuPriceDetails'", """got '{"ModelId": "m", "TokenDirection": "Sideways"}', """
         "expected a TokenDirection of Input or Output"),
        ({"SkuPriceDetails": '{"TokenDirection": "Input", "TokenCacheAction": "Hit"}'},
         "column 'SkuPriceDetails'", """got '{"TokenDirection": "Input", "TokenCacheAction": """
         """"Hit"}', expected a TokenCacheAction of Uncached, Read or Write"""),
        ({"SkuPriceDetails": '{"TokenType": "Reasoning"}'}, "column 'SkuPriceDetails'",
         """got '{"TokenType": "Reasoning"}', expected a TokenType of Input, Output, CacheRead """
         "or CacheWrite"),
        ({"ChargeCategory": "Refund"}, "column 'ChargeCategory'",
         "got 'Refund', expected one of Usage, Tax, Credit, Adjustment, Purchase"),
        ({"ChargeClass": "Rebill"}, "column 'ChargeClass'",
         "got 'Rebill', expected empty or Correction"),
        ({"BillingCurrency": "US Dollar"}, "column 'BillingCurrency'",
         "got 'US Dollar', expected a 3-letter currency code such as USD"),
        ({"ConsumedQuantity": "lots"}, "column 'ConsumedQuantity'",
         "got 'lots', expected a decimal number such as 12.50"),
        # past 28 exact digits at 12 places: once "error: [<class 'decimal.InvalidOperation'>]"
        ({"BilledCost": "100000000000000000"}, "column 'BilledCost'",
         "got '100000000000000000', expected a number of at most 1,000,000,000,000,000 either "
         "side of 0"),
        ({"ConsumedQuantity": "-2e16"}, "column 'ConsumedQuantity'",
         "got '-2e16', expected a number of at most 1,000,000,000,000,000 either side of 0"),
        # past DECIMAL(38) once scaled: once DuckDB's "Overflow in multiplication", no row
        ({"ConsumedQuantity": "99999999999999999999999"}, "column 'ConsumedQuantity'",
         "got '99999999999999999999999', expected a number of at most 1,000,000,000,000,000 "
         "either side of 0"),
        # once taken at its EffectiveCost as a draw-down from a commitment the bill never had
        ({"BilledCost": "-5", "EffectiveCost": "1.51"}, "column 'BilledCost'",
         "got '-5', expected 0 or more on a Usage line: a refund or rebate is a Credit, and a "
         "change to an earlier charge has ChargeClass Correction"),
    ],
)  # fmt: skip
def test_a_bad_focus_value_names_file_row_and_column(tmp_path, values, where, expected):
    path = write_csv(tmp_path / "bill.csv", [focus_row(), focus_row(**values), focus_row()])
    assert error_line(tmp_path, "bill.csv") == f"{path}: row 2 (line 3), {where}: {expected}"


def test_the_row_of_a_bad_value_counts_quoted_line_breaks_and_similar_rows(tmp_path):
    path = write_csv(tmp_path / "bill.csv", [
        focus_row(ChargeDescription="two\nlines"),
        focus_row(BilledCost="n/a"),
        focus_row(BilledCost="n/a"),
    ])  # fmt: skip
    assert error_line(tmp_path, "bill.csv") == (
        f"{path}: row 2 (line 4), column 'BilledCost': got 'n/a', expected a decimal number "
        "such as 12.50 (1 more rows like it)"
    )


def test_a_bad_parquet_value_names_its_row(tmp_path):
    write_csv(tmp_path / "bill.csv", [focus_row(), focus_row(BilledCost="abc")])
    connect().execute(
        f"COPY (SELECT * FROM read_csv('{tmp_path / 'bill.csv'}', all_varchar = true)) "
        f"TO '{tmp_path / 'bill.parquet'}' (FORMAT parquet)"
    )
    assert error_line(tmp_path, "bill.parquet") == (
        f"{tmp_path / 'bill.parquet'}: row 2, column 'BilledCost': got 'abc', expected a decimal "
        "number such as 12.50"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date,model,cost\n2026-10-05,chat-small,1\n2026-13-01,chat-small,1\n",
         "row 2 (line 3), column 'date': got '2026-13-01', expected a day such as 2026-10-05 "
         "or a month such as 2026-10"),
        ("date,model,cost,direction\n2026-10-05,chat-small,1,reasoning\n",
         "row 1 (line 2), column 'direction': got 'reasoning', expected empty or one of "
         "uncached_input, cached_input, cache_write, output, per_call, input, uncached, cached, "
         "cache_read, cacheread, cachewrite, requests, calls, images (map your own words with "
         "billing.directions)"),
        ("date,model,cost\n2026-10-05,chat-small,$1.00\n",
         "row 1 (line 2), column 'cost': got '$1.00', expected a decimal number such as 12.50"),
        ("date,model,cost,quantity\n2026-10-05,chat-small,1,1e16\n",
         "row 1 (line 2), column 'quantity': got '1e16', expected a number of at most "
         "1,000,000,000,000,000 either side of 0"),
        ("date,model,cost\n2026-10-05,chat-small,-1.00\n",
         "row 1 (line 2), column 'cost': got '-1.00', expected 0 or more on a Usage line: a "
         "refund or rebate is a Credit (charge_category Credit)"),
    ],
)  # fmt: skip
def test_a_bad_generic_value_names_file_row_and_column(tmp_path, text, expected):
    (tmp_path / "bill.csv").write_text(text)
    assert error_line(tmp_path, "bill.csv", "generic") == f"{tmp_path / 'bill.csv'}: {expected}"


def test_a_generic_bill_without_its_mapped_column_says_so(tmp_path):
    (tmp_path / "bill.csv").write_text("day,model,cost\n2026-10-05,chat-small,1\n")
    assert error_line(tmp_path, "bill.csv", "generic", {"date": "Date"}) == (
        f"{tmp_path / 'bill.csv'}: missing required billing column 'date' (mapped to 'Date'); "
        "expected date, model, cost; columns found: day, model, cost"
    )


def test_a_typo_in_an_optional_mapping_is_an_error_not_a_silent_drop(tmp_path):
    # without the check the direction column was silently unmapped: no per-direction lines
    (tmp_path / "bill.csv").write_text(
        "Day,Model,Usage type,Tokens,Amount\n2026-10-05,chat-small,input,100,1\n"
    )
    columns = {"date": "Day", "model": "Model", "direction": "UsageType", "cost": "Amount"}
    assert error_line(tmp_path, "bill.csv", "generic", columns) == (
        f"{tmp_path / 'bill.csv'}: missing billing column 'direction' (mapped to 'UsageType'); "
        "columns found: Day, Model, Usage type, Tokens, Amount"
    )


@needs_examples
def test_a_typo_in_a_focus_mapping_is_an_error(tmp_path):
    focus = FOCUS_EXAMPLES / "ai_prompt_caching" / "ai_prompt_caching_a.csv"
    (tmp_path / "focus.csv").write_bytes(focus.read_bytes())
    line = error_line(tmp_path, "focus.csv", "focus", {"SkuPriceDetails": "SkuPriceDetail"})
    assert line.startswith(
        f"{tmp_path / 'focus.csv'}: missing FOCUS column 'SkuPriceDetails' (mapped to "
        "'SkuPriceDetail'); columns found: "
    )


def test_no_matching_file_unknown_suffix_and_unknown_mapping_are_one_line(tmp_path):
    assert error_line(tmp_path, "bills/*.csv") == (
        f"kit.yaml: billing.path: no files match 'bills/*.csv' (looked in {tmp_path})"
    )
    (tmp_path / "bills").mkdir()
    assert error_line(tmp_path, "bills") == (
        f"kit.yaml: billing.path: no files match 'bills' (a folder: add a pattern such as "
        f"'/*.csv') (looked in {tmp_path})"
    )
    (tmp_path / "bill.xlsx").write_text("x")
    assert error_line(tmp_path, "bill.xlsx") == (
        f"{tmp_path / 'bill.xlsx'}: cannot tell the format from the suffix; expected .csv or "
        ".parquet"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "bill.xlsx", "generic", {"tokens": "Tokens"})
    assert caught.value.line() == (
        "kit.yaml: billing.columns.tokens: not a generic billing field; expected one of date, "
        "model, cost, direction, quantity, currency, charge_category, description, request_count"
    )


def test_a_row_with_more_fields_than_the_header_is_named(tmp_path):
    path = write_csv(tmp_path / "bill.csv", [focus_row() for _ in range(3)])
    with path.open("a") as handle:
        handle.write("1,USD,extra\n")
    assert error_line(tmp_path, "bill.csv") == (
        f"{path}: row 4 (line 5): got 3 fields, expected 15 like the header"
    )


def test_an_unreadable_file_is_one_line(tmp_path):
    (tmp_path / "bill.parquet").write_text("not parquet")
    line = error_line(tmp_path, "bill.parquet")
    assert line.startswith(f"{tmp_path / 'bill.parquet'}: cannot read as Parquet: ")
    assert "\n" not in line


def test_a_bill_that_is_not_utf8_names_the_line(tmp_path):
    path = write_csv(tmp_path / "bill.csv", [focus_row(), focus_row(ChargeDescription="Caf-")])
    path.write_bytes(path.read_bytes().replace(b"Caf-", b"Caf\xe9"))
    column = path.read_bytes().splitlines()[2].index(b"\xe9") + 1
    assert error_line(tmp_path, "bill.csv") == (
        f"{path}: line 3: byte 0xe9 at column {column} is not UTF-8 text; expected a file saved "
        "as UTF-8"
    )


def test_a_bill_header_that_names_a_column_twice_is_named(tmp_path):
    path = write_csv(tmp_path / "bill.csv", [focus_row()], [*FOCUS_COLUMNS, "BilledCost"])
    assert error_line(tmp_path, "bill.csv") == (
        f"{path}: line 1: the header names column 'BilledCost' twice; expected each column once"
    )
