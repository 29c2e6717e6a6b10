"""Workspace config: every problem is one line naming the file, the key and what was expected."""

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from allocation_kit.config import load_workspace, read_yaml
from allocation_kit.errors import ConfigError

from .conftest import KIT, PRICING, REGISTRY, request


def error_line(workspace, **files) -> str:
    with pytest.raises(ConfigError) as caught:
        load_workspace(workspace([request("r1")], **files))
    assert caught.value.exit_code == 2
    return caught.value.line()


def edited_error(workspace, file: str, old: str, new: str) -> str:
    """The error line of the test workspace with `old` replaced by `new` in one of its files."""
    text = {"registry": REGISTRY, "pricing": PRICING, "kit": KIT}[file]
    return error_line(workspace, **{file: text.replace(old, new)})


def test_a_valid_workspace_loads_with_exact_prices(workspace):
    ws = load_workspace(workspace([request("r1")]))
    assert ws.kit.currency == "USD"
    assert ws.kit.reconciliation.tolerance_pct == Decimal(1)
    assert ws.pricing.models[0].per_1m_tokens.cached_input == Decimal("0.50")
    assert ws.pricing.models[4].per_call == Decimal("0.04")
    assert [a.id for a in ws.registry.applications][:2] == ["search-api", "ticket-bot"]
    assert ws.registry.applications[2].shared.split == {
        "search": Decimal(70),
        "support": Decimal(30),
    }


def test_unknown_key_lists_the_allowed_keys(workspace):
    line = error_line(workspace, kit=KIT + "reconcilation: {tolerance_pct: 2}\n")
    assert line.endswith(
        "kit.yaml: reconcilation: unknown key (did you mean reconciliation?); expected one of "
        "name, currency, engine, requests, billing, registry, pricing, cost_units, budgets, "
        "reconciliation, review, expectations, focus, chargeback"
    )


def test_missing_key_is_named(workspace):
    line = error_line(workspace, kit=KIT.replace("currency: USD\n", ""))
    assert line.endswith("kit.yaml: currency: required key is missing")


def test_malformed_yaml_names_the_line(workspace):
    line = error_line(workspace, registry=REGISTRY + "teams: [unclosed\n")
    assert "registry.yaml: line " in line
    assert line.endswith(", column 1: malformed YAML (expected ',' or ']', but got '<stream end>')")


def test_a_control_character_in_yaml_names_its_line_and_column(workspace, tmp_path):
    # a form feed pasted from a wiki page: PyYAML refuses it before parsing (once a traceback)
    line = error_line(workspace, registry=REGISTRY + "# exported from the wiki \x0c page 2\n")
    assert line == (
        f"{tmp_path / 'registry.yaml'}: line 20, column 26: malformed YAML (unacceptable "
        "character #x000c)"
    )


def test_a_key_named_twice_is_an_error_not_the_last_one_silently(workspace, tmp_path):
    # a second applications: list once replaced the first: every application became unknown
    line = error_line(workspace, registry=REGISTRY + "applications:\n  - {id: x, team: search}\n")
    assert line == (
        f"{tmp_path / 'registry.yaml'}: line 20, column 1: malformed YAML (duplicate key "
        "'applications', first on line 6)"
    )
    registry = REGISTRY.replace("{id: ticket-bot, team: support}",
                                "{id: ticket-bot, team: support, team: search}")  # fmt: skip
    assert error_line(workspace, registry=registry).endswith(
        "registry.yaml: line 8, column 37: malformed YAML (duplicate key 'team', first on line 8)"
    )
    registry = REGISTRY.replace(
        "split: {search: 70, support: 30}", "split: {search: 70, search: 30}"
    )
    assert error_line(workspace, registry=registry).endswith(
        "malformed YAML (duplicate key 'search', first on line 11)"
    )


@pytest.mark.parametrize(
    ("written", "where", "expected"),
    [
        ('""', "applications[0].id: got ''", "expected an id, not an empty text"),
        ('"  "', "applications[0].id: got '  '", "expected an id, not an empty text"),
        (
            '" search-api"',
            "applications[0] ( search-api).id: got ' search-api'",
            "expected an id without leading or trailing spaces",
        ),
    ],
)
def test_a_registry_id_is_a_trimmed_text(workspace, written, where, expected):
    # an empty id is not labelled by its team; CSV tags are trimmed, so ' x' could never match
    registry = REGISTRY.replace(
        "{id: search-api, team: search}", f"{{id: {written}, team: search}}"
    )
    line = error_line(workspace, registry=registry)
    assert line.endswith(f"registry.yaml: {where}: {expected}")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        # an entry without its id is named by its team, as a team
        ("registry", "{id: search-api, team: search}", "{team: search}",
         "registry.yaml: applications[0] (team search).id: required key is missing"),
        # ' reasoner' could never match a trimmed ledger model: every call went unpriced
        ("pricing", "- model: reasoner", "- model: ' reasoner'",
         "pricing.yaml: models[2] ( reasoner).model: got ' reasoner': expected an id without "
         "leading or trailing spaces"),
        ("registry", "[production, staging]", "[production, 'staging ']",
         "registry.yaml: environments[1]: got 'staging ': expected an id without leading or "
         "trailing spaces"),
    ],
)  # fmt: skip
def test_ids_are_present_and_trimmed_everywhere(workspace, file, old, new, expected):
    assert edited_error(workspace, file, old, new).endswith(expected)


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        # `ouput` is both an unknown key and a missing `output`: the misspelling says what to fix
        ("pricing", "{input: 2.00, output: 8.00,", "{input: 2.00, ouput: 8.00,",
         "pricing.yaml: models[2] (reasoner).per_1m_tokens.ouput: unknown key (did you mean "
         "output?); expected one of input, cached_input, cache_write, output, reasoning "
         "(and 1 more problem in this file)"),
        ("kit", "requests:", "reqeusts:",
         "kit.yaml: reqeusts: unknown key (did you mean requests?); expected one of name, "
         "currency, engine, requests, billing, registry, pricing, cost_units, budgets, "
         "reconciliation, review, expectations, focus, chargeback (and 1 more problem in this "
         "file)"),
        *(("registry", "method: even", f"{typo}: even",
           "registry.yaml: applications[4] (gateway-even).shared: missing method (fixed, "
           f"proportional or even); '{typo}' is not a key (did you mean method?)")
          for typo in ("methd", "Method")),
    ],
)  # fmt: skip
def test_a_misspelt_key_is_named_rather_than_the_key_it_leaves_missing(
    workspace, file, old, new, expected
):
    assert edited_error(workspace, file, old, new).endswith(expected)


def test_a_config_that_is_no_regular_file_is_named_as_such():
    with pytest.raises(ConfigError) as caught:
        read_yaml(Path("/dev/null"))  # once "file not found"
    assert caught.value.line() == "/dev/null: not a regular file; expected a YAML file"


def test_a_reviewer_role_is_one_line_of_text(workspace):
    # the role goes into the review log and every record: a line break could forge a second line
    line = edited_error(workspace, "kit", "review: {reviewer_role: finops-analyst}",
                        'review: {reviewer_role: "analyst\\nApproved: CFO"}')  # fmt: skip
    assert line.endswith(
        "kit.yaml: review.reviewer_role: got 'analyst\\nApproved: CFO': expected one line of "
        "printable text (no line breaks, tabs or invisible characters)"
    )


def test_a_team_listed_twice_in_a_split_is_refused(workspace):
    # an even split once halved the cost while its rule said "even across search, search, …"
    registry = REGISTRY.replace("teams: [search, support, platform]",
                                "teams: [search, support, search]")  # fmt: skip
    assert error_line(workspace, registry=registry).endswith(
        "registry.yaml: applications[4] (gateway-even).shared.teams: search listed more "
        "than once; expected each team once"
    )


def test_shared_split_must_sum_to_100(workspace):
    registry = REGISTRY.replace(
        "split: {search: 70, support: 30}", "split: {search: 70, support: 20}"
    )
    line = error_line(workspace, registry=registry)
    assert line.endswith(
        "registry.yaml: applications[2] (gateway-fixed).shared.split: the split sums to 90, "
        "expected 100"
    )


def test_application_team_must_exist(workspace):
    registry = REGISTRY.replace(
        "{id: ticket-bot, team: support}", "{id: ticket-bot, team: helpdesk}"
    )
    line = error_line(workspace, registry=registry)
    assert line.endswith(
        "registry.yaml: applications[1] (ticket-bot).team: unknown team 'helpdesk'; "
        "expected one of platform, search, support"
    )


def test_shared_method_must_be_known(workspace):
    registry = REGISTRY.replace("method: even", "method: random")
    line = error_line(workspace, registry=registry)
    assert line.endswith(
        "registry.yaml: applications[4] (gateway-even).shared: method must be one of fixed, "
        "proportional, even"
    )


def test_duplicate_team_ids_are_rejected(workspace):
    registry = REGISTRY.replace(
        "applications:",
        "  - {id: search, business_unit: x, cost_center: y, budget_owner: z}\napplications:",
    )
    line = error_line(workspace, registry=registry)
    assert line.endswith("registry.yaml: teams[3].id: duplicate id 'search'; ids must be unique")


def test_negative_price_is_rejected(workspace):
    pricing = PRICING.replace("per_call: 0.04", "per_call: -0.04")
    line = error_line(workspace, pricing=pricing)
    assert line.endswith(
        "pricing.yaml: models[4] (painter).per_call: got -0.04, expected at least 0"
    )


def test_overlapping_price_ranges_are_rejected(workspace):
    pricing = PRICING.replace("effective_to: 2026-10-15", "effective_to: 2026-10-20")
    line = error_line(workspace, pricing=pricing)
    assert line.endswith(
        "pricing.yaml: models[1] (chat-small): effective 2026-10-15 overlaps the entry effective "
        "2026-01-01; expected non-overlapping date ranges (effective_to is exclusive)"
    )


def test_a_model_needs_a_price(workspace):
    pricing = PRICING.replace("    per_call: 0.04\n", "")
    line = error_line(workspace, pricing=pricing)
    assert line.endswith(
        "pricing.yaml: models[4] (painter): a model needs per_1m_tokens, per_call or both"
    )


@pytest.mark.parametrize("direction", ["input", "output"])
def test_a_token_price_needs_input_and_output(workspace, direction):
    # a model without an output price is not free output: one whose output is free says 0
    old = "{input: 2.00, output: 8.00, reasoning: 10.00}"
    prices = {
        "input": "{output: 8.00, reasoning: 10.00}",
        "output": "{input: 2.00, reasoning: 10.00}",
    }
    line = error_line(workspace, pricing=PRICING.replace(old, prices[direction]))
    assert line.endswith(
        f"pricing.yaml: models[2] (reasoner).per_1m_tokens.{direction}: required key is missing"
    )


def test_a_free_output_direction_is_written_as_zero(workspace):
    pricing = PRICING.replace(
        "    per_call: 0.04\n",
        "    per_call: 0.04\n  - model: embedder\n    effective_from: 2026-01-01\n"
        "    per_1m_tokens: {input: 0.02, output: 0}\n",
    )
    embedder = load_workspace(workspace([request("r1")], pricing=pricing)).pricing.models[5]
    assert (embedder.per_1m_tokens.input, embedder.per_1m_tokens.output) == (
        Decimal("0.02"),
        Decimal(0),
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("10.0000001", "10.0000001 has more than 6 decimal places per 1M tokens"),
        # 10.0 as a float: the snapshot's own digits are checked instead
        ("10.00000000000000001",
         "10.00000000000000001 has more than 6 decimal places per 1M tokens"),
        # beyond exact decimal arithmetic's 28 digits once its places are checked: a traceback
        ("1.0e+30", "got 1.0e+30, expected at most 1,000,000,000,000"),
        ("12345678901234567890123.5",
         "got 12345678901234567890123.5, expected at most 1,000,000,000,000"),
    ],
)  # fmt: skip
def test_a_price_is_checked_as_written(workspace, written, expected):
    pricing = PRICING.replace("reasoning: 10.00", f"reasoning: {written}")
    assert error_line(workspace, pricing=pricing).endswith(
        f"pricing.yaml: models[2] (reasoner).per_1m_tokens.reasoning: {expected}"
    )


def test_prices_keep_the_digits_written(workspace):
    pricing = PRICING.replace("reasoning: 10.00", "reasoning: 1_000.5").replace(
        "{input: 2.00,", "{input: 2.5e+1,"
    )
    reasoner = load_workspace(workspace([request("r1")], pricing=pricing)).pricing.models[2]
    prices = reasoner.per_1m_tokens
    assert (str(prices.input), str(prices.reasoning)) == ("25", "1000.5")


@pytest.mark.parametrize(
    ("file", "added", "expected"),
    [
        # an alias is another name of a priced model, never a priced model itself
        ("pricing", "aliases: {gpt-x-2026: gpt-x}",
         "pricing.yaml: aliases.gpt-x-2026: 'gpt-x' has no entry in models; expected the name of "
         "a priced model"),
        ("pricing", "aliases: {reasoner: chat-small}",
         "pricing.yaml: aliases.reasoner: is a priced model itself; expected another name of "
         "one (an alias never replaces a model's own price)"),
        # a registry alias is another name of one team or application, never an id
        ("registry", "  - {id: chatbot, team: search, aliases: [ticket-bot]}",
         "registry.yaml: applications[5] (chatbot).aliases: 'ticket-bot' is an id in "
         "applications; expected another name of chatbot"),
        ("registry", "  - {id: chatbot, team: search, aliases: [bot, bot]}",
         "registry.yaml: applications[5] (chatbot).aliases: 'bot' is already an alias of "
         "chatbot; an alias names one"),
        # an environment's aliases: other names of one environment, never an environment
        ("registry", "environments: [{id: production, aliases: [staging]}, staging]",
         "registry.yaml: environments (production).aliases: 'staging' is an environment "
         "itself; expected another name of one"),
        ("registry", "environments: [{id: production, aliases: [prod]}, "
         "{id: staging, aliases: [prod]}]",
         "registry.yaml: environments[1] (staging).aliases: 'prod' is already an alias of "
         "production; an alias names one"),
        ("registry", "environments: [production, {id: staging, alias: [stg]}]",
         "registry.yaml: environments[1].alias: an id and its aliases, such as "
         "{id: production, aliases: [prod]}"),
        # a bill's direction words map to the kit's directions, for a generic bill only
        ("kit", "billing: {path: bill.csv, format: generic, directions: {prompt: input_tokens}}",
         "kit.yaml: billing.directions.prompt: got 'input_tokens': Input should be "
         "'uncached_input', 'cached_input', 'cache_write', 'output' or 'per_call'"),
        ("kit", "billing: {path: bill.csv, directions: {prompt: uncached_input}}",
         "kit.yaml: billing.directions: only for format generic, not focus"),
        # what the chargeback spreads is named in the kit's words
        ("kit", "chargeback: {spread: [unallocated, vat]}",
         "kit.yaml: chargeback.spread[1]: got 'vat': Input should be 'unallocated', "
         "'usage_difference', 'tax', 'credit', 'adjustment', 'purchase' or 'correction'"),
    ],
)  # fmt: skip
def test_other_names_map_to_the_kits_own(workspace, file, added, expected):
    if file == "registry" and added.startswith("environments:"):
        text = REGISTRY.replace("environments: [production, staging]", added)
    elif file == "registry":  # one more application
        text = REGISTRY.replace("environments:", f"{added}\nenvironments:")
    else:
        text = {"pricing": PRICING, "kit": KIT}[file] + f"{added}\n"
    assert error_line(workspace, **{file: text}).endswith(expected)


def test_whole_numbers_are_decimal_digits_never_octal_or_hex(workspace):
    # YAML 1.1 reads 010 as octal 8: a price written 010 was priced at 8
    pricing = PRICING.replace("reasoning: 10.00", "reasoning: 010")
    reasoner = load_workspace(workspace([request("r1")], pricing=pricing)).pricing.models[2]
    assert reasoner.per_1m_tokens.reasoning == Decimal(10)
    line = error_line(workspace, pricing=PRICING.replace("reasoning: 10.00", "reasoning: 0x10"))
    assert line.endswith("malformed YAML ('0x10' is not written in decimal digits)")


def test_currency_must_match_the_snapshot(workspace):
    line = error_line(workspace, pricing=PRICING.replace("currency: USD", "currency: EUR"))
    assert line.endswith(
        "pricing.yaml: currency: the snapshot is in EUR but kit.yaml says USD; "
        "expected the same currency"
    )


def test_missing_registry_file_is_named(workspace, tmp_path):
    kit = workspace([request("r1")])
    (tmp_path / "registry.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_workspace(kit)
    assert caught.value.line() == (
        f"{kit}: registry: {tmp_path / 'registry.yaml'}: file not found; expected a path "
        "relative to kit.yaml"
    )
    (tmp_path / "registry.yaml").mkdir()  # a folder where the file should be
    with pytest.raises(ConfigError) as caught:
        load_workspace(kit)
    assert caught.value.line() == f"{tmp_path / 'registry.yaml'}: is a folder; expected a YAML file"


def test_top_level_must_be_a_mapping(workspace):
    line = error_line(workspace, pricing=textwrap.dedent("- just\n- a list\n"))
    assert line.endswith("pricing.yaml: expected a mapping of keys at the top level")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("reviewed_on: 2026-09-28", "reviewed_on: 2026-09-31",
         "pricing.yaml: reviewed_on (line 4): got '2026-09-31', expected a valid date such as "
         "2026-10-01"),
        ("effective_to: 2026-10-15", "effective_to: 2026-13-15",
         "pricing.yaml: models[0] (chat-small).effective_to (line 10): got '2026-13-15', "
         "expected a valid date such as 2026-10-01"),
        ("effective_from: 2026-10-15", "effective_from: 2026-10-15 24:00:00",
         "pricing.yaml: models[1] (chat-small).effective_from (line 13): got "
         "'2026-10-15 24:00:00', expected a valid date and time such as 2026-10-01T09:00:00Z"),
        ("effective_from: 2026-01-01", "effective_from: 2026-02-29",
         "pricing.yaml: models[0] (chat-small).effective_from (line 9): got '2026-02-29', "
         "expected a valid date such as 2026-10-01 (and 3 more problems in this file)"),
    ],
)  # fmt: skip
def test_an_impossible_date_names_the_key_and_the_line(workspace, old, new, expected):
    line = error_line(workspace, pricing=PRICING.replace(old, new))
    assert line.endswith(expected)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # read as Unix seconds, the price once applied from 1970-08-23
        ("effective_from: 2026-01-01", "effective_from: 20260101",
         "pricing.yaml: models[0] (chat-small).effective_from: got 20260101: expected a date "
         "such as 2026-10-01 (and 3 more problems in this file)"),
        ("reviewed_on: 2026-09-28", "reviewed_on: 20260928",
         "pricing.yaml: reviewed_on: got 20260928: expected a date such as 2026-10-01"),
    ],
)  # fmt: skip
def test_a_date_written_as_a_number_is_refused(workspace, old, new, expected):
    line = error_line(workspace, pricing=PRICING.replace(old, new))
    assert line.endswith(expected)


def test_an_impossible_date_in_cost_units_is_one_line_too(workspace, tmp_path):
    kit = workspace([request("r1")], kit=KIT + "cost_units: cost_units.yaml\n")
    (tmp_path / "cost_units.yaml").write_text(
        textwrap.dedent("""\
            cost_units:
              - name: per_request
                numerator: {}
                denominator: {count: requests}
                owner: search-lead
                signed_off_by: finance-partner
                signed_off_on: 2026-02-30
        """)
    )
    with pytest.raises(ConfigError) as caught:
        load_workspace(kit)
    assert (caught.value.exit_code, caught.value.line()) == (
        2,
        f"{tmp_path / 'cost_units.yaml'}: cost_units[0] (per_request).signed_off_on (line 7): "
        "got '2026-02-30', expected a valid date such as 2026-10-01",
    )


def test_an_impossible_date_as_a_whole_document_names_the_line(tmp_path):
    (tmp_path / "registry.yaml").write_text("# a date, not a registry\n2026-13-01\n")
    with pytest.raises(ConfigError) as caught:
        read_yaml(tmp_path / "registry.yaml")
    assert caught.value.line() == (
        f"{tmp_path / 'registry.yaml'}: line 2: got '2026-13-01', expected a valid date such as "
        "2026-10-01"
    )


def test_a_bill_of_several_is_named_by_its_place_in_the_list(workspace):
    kit = KIT + "billing:\n  - {path: a.csv}\n  - {path: b.csv, format: csv}\n"
    assert error_line(workspace, kit=kit).endswith(
        "kit.yaml: billing[1].format: got 'csv': Input should be 'focus', 'generic' or "
        "'openai-usage'"
    )
    one = KIT + "billing: {path: a.csv, format: csv}\n"  # one bill is no list: no [0]
    assert error_line(workspace, kit=one).endswith(
        "kit.yaml: billing.format: got 'csv': Input should be 'focus', 'generic' or 'openai-usage'"
    )


def test_a_decimal_comma_is_named_as_one(workspace):
    line = error_line(workspace, pricing=PRICING.replace("input: 1.00,", "input: 1,00,", 1))
    assert line.endswith(
        "pricing.yaml: models[0] (chat-small).per_1m_tokens[0]: got 0 as a key; a decimal "
        "comma? write decimals with a point, such as 0.15"
    )
