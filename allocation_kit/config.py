"""The workspace: kit.yaml, registry.yaml and pricing.yaml, read once into frozen objects.

Every problem is reported as one line naming the file, the key and what was expected
(`ConfigError`, exit code 2).
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "ADAPTER_FORMATS",
    "Application",
    "KitConfig",
    "ModelPrice",
    "PriceTier",
    "PricingSnapshot",
    "Registry",
    "RequestFields",
    "RequestsSource",
    "SharedRule",
    "Team",
    "TokenPrices",
    "Workspace",
    "load_workspace",
    "read_yaml",
    "yaml_document",
]


class YamlFloat(float):
    """A YAML float that remembers the digits it was written with: a float has 17 significant
    digits, so `0.15000000000000001` would otherwise arrive as 0.15 and pass the 6-place check."""

    text: str

    def __new__(cls, value: float, text: str) -> YamlFloat:
        number = super().__new__(cls, value)
        number.text = text
        return number


def _exact_decimal(value: Any) -> Any:
    # A price is the decimal its YAML text says; a float from elsewhere (a dict built in Python)
    # becomes its shortest exact text by repr(), so no binary noise enters.
    if isinstance(value, bool):
        return value
    if isinstance(value, YamlFloat) and math.isfinite(value):
        try:
            exact = Decimal(value.text.replace("_", ""))
        except ArithmeticError:  # a YAML 1.1 sexagesimal float (1:30.5): its value is exact
            return Decimal(repr(float(value)))
        # 1.5e+3 is 1500 (exact at any size: int() needs no precision, quantize() does)
        return Decimal(int(exact)) if exact.as_tuple().exponent > 0 else exact
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    return value


def exact_decimal(value: Any) -> Decimal:
    """A YAML number (or numeric text) as the exact decimal its text says (see
    `_exact_decimal`): what the registry and the snapshot read."""
    exact = _exact_decimal(value)
    return exact if isinstance(exact, Decimal) else Decimal(str(exact))


# Bounds far beyond any real amount keep every figure within exact decimal arithmetic (28 digits)
# and picodollars per token within 64 bits.
MAX_MONEY = Decimal(10) ** 12  # a trillion: a price, a budget or an amount
MAX_TOKENS = 1_000_000_000  # the most tokens one request may count in a direction
Money = Annotated[
    Decimal, BeforeValidator(_exact_decimal), Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)
]
Percent = Annotated[
    Decimal, BeforeValidator(_exact_decimal), Field(gt=0, le=10**6, allow_inf_nan=False)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- kit.yaml -----------------------------------------------------------------------------------


ADAPTER_FORMATS = ("litellm", "openai-usage")
# Keys that hold prompt or response content (or the caller's IP address) in the exports the
# adapters read: a field locator may never point into them, so content cannot become a label.
CONTENT_KEYS = frozenset({
    "messages", "input", "output", "choices", "content", "prompt", "instructions", "delta",
    "tool_calls", "text", "proxy_server_request", "requester_ip_address", "error_message",
    "traceback", "guardrail_information",
})  # fmt: skip
_LOCATOR = re.compile(r"^(tag:\S+|[A-Za-z_][\w-]*(\.[\w-]+)*)$")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _checked_locator(locator: str) -> str:
    if not _LOCATOR.match(locator):
        raise ValueError(
            "not a field locator; expected tag:<prefix> (e.g. tag:app:) or a dotted key path "
            "(e.g. metadata.spend_logs_metadata.environment)"
        )
    content = CONTENT_KEYS.intersection(locator.split(".")) if locator[:4] != "tag:" else set()
    if content:
        raise ValueError(
            f"points at prompt or response content ({min(content)}), which the kit never reads; "
            "expected a tag or a metadata key"
        )
    return locator


# One locator or a list tried in order (the first non-empty value wins); [] maps nothing.
Locators = Annotated[
    list[Annotated[str, AfterValidator(_checked_locator)]], BeforeValidator(_as_list)
]


class RequestFields(_Strict):
    """Where an adapter finds each canonical label in the export (requests.fields)."""

    team: Locators | None = None
    application: Locators | None = None
    environment: Locators | None = None
    workload_class: Locators | None = None
    feature: Locators | None = None
    job_id: Locators | None = None
    caller_id: Locators | None = None
    endpoint: Locators | None = None
    idempotency_key: Locators | None = None
    model: Locators | None = None


class RequestsSource(_Strict):
    path: str = Field(min_length=1)
    format: Literal["auto", "csv", "parquet", "jsonl", "litellm", "openai-usage"] = "auto"
    columns: dict[str, str] = Field(default_factory=dict)
    fields: RequestFields | None = None  # only with an adapter format

    @model_validator(mode="after")
    def _mapping_fits_the_format(self) -> RequestsSource:
        adapter = self.format in ADAPTER_FORMATS
        if self.fields is not None and not adapter:
            raise _KeyProblem(
                "fields",
                "only for format litellm or openai-usage; a canonical ledger maps its columns "
                "with requests.columns",
            )
        if self.columns and adapter:
            raise _KeyProblem(
                "columns", f"not used by format {self.format}; map labels with requests.fields"
            )
        if self.format == "litellm" and self.fields is not None:
            for name, locators in self.fields:
                for locator in locators or []:
                    if locator.split(".")[0] in {"messages", "response"}:
                        raise _KeyProblem(
                            f"fields.{name}",
                            f"{locator!r} points at LiteLLM's {locator.split('.')[0]} column "
                            "(prompt or response content), which the kit never reads",
                        )
        return self


BillDirection = Literal["uncached_input", "cached_input", "cache_write", "output", "per_call"]


class BillingSource(_Strict):
    path: str = Field(min_length=1)
    format: Literal["focus", "generic", "openai-usage"] = "focus"
    columns: dict[str, str] = Field(default_factory=dict)
    # a generic bill's own words for token directions: {prompt: uncached_input, completion: output}
    directions: dict[str, BillDirection] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _directions_for_generic(self) -> BillingSource:
        if self.directions and self.format != "generic":
            raise _KeyProblem("directions", f"only for format generic, not {self.format}")
        return self


class FocusExport(_Strict):
    """Who the FOCUS export (evidence/focus_allocated.csv) names as provider and account."""

    provider_name: str = Field(default="Unspecified AI API provider", min_length=1)
    publisher_name: str | None = None  # default: provider_name
    invoice_issuer_name: str | None = None  # default: provider_name
    service_name: str | None = None  # default: provider_name
    billing_account_id: str | None = None  # default: the workspace name
    billing_account_name: str | None = None  # default: the workspace name


class Reconciliation(_Strict):
    tolerance_pct: Annotated[Decimal, BeforeValidator(_exact_decimal), Field(ge=0, le=100)] = (
        Decimal(1)
    )


def _one_line(value: str) -> str:
    if not value.strip() or not value.isprintable():
        raise ValueError("expected one line of printable text (no line breaks, tabs or "
                         "invisible characters)")  # fmt: skip
    return value


class Review(_Strict):
    # one line of printable text: it goes into the review log and every record beside it
    reviewer_role: Annotated[str, AfterValidator(_one_line)] = "finops-analyst"
    # an approval (pass, needs_follow_up) by the account that ran the period is refused, not
    # only recorded (`same_account_as_run`): the preparer does not approve their own work
    segregation_of_duties: bool = False
    # a file outside the reports folder (other storage, version control) where every record of
    # every period's review log is anchored: a log edited or rewritten is then named
    journal: str | None = Field(default=None, min_length=1)
    # how a budget owner questions a charge: who to write to, and by when (on every statement)
    disputes: str | None = Field(default=None, min_length=1)
    # unpriced usage the bill charges at most this much for (all of the period's unpriced calls
    # together) puts a team's chargeback on follow-up instead of failing it; without it, or
    # without a bill figure for every unpriced model, unpriced usage fails the team's row
    unpriced_materiality: Money | None = None


Spreadable = Literal[
    "unallocated", "usage_difference", "tax", "credit", "adjustment", "purchase", "correction"
]


class ChargebackPolicy(_Strict):
    """What teams carry beyond their own cost, in proportion to it (see `chargeback`)."""

    spread: list[Spreadable] = Field(default_factory=list)
    # where finance books what the reviewer keeps (a suspense or clearing cost center)
    kept_cost_center: RegistryId | None = None


class Expectations(_Strict):
    path: str | None = None  # a folder with requests/billing/registry/pricing.json
    mostly_registered: Annotated[float, Field(gt=0, le=1)] = 0.95


def _one_or_many(value: Any) -> Any:
    """A mapping is a list of one: `billing: {path, format}` or a list of such."""
    return [value] if isinstance(value, dict) else value


class KitConfig(_Strict):
    name: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    engine: Literal["duckdb"] = "duckdb"
    requests: RequestsSource
    # the bill, or the bills of several providers (a gateway in front of each): their lines
    # together are what was billed
    billing: Annotated[
        Annotated[list[BillingSource], Field(min_length=1)] | None, BeforeValidator(_one_or_many)
    ] = None
    registry: str
    pricing: str
    cost_units: str | None = None
    budgets: str | None = None
    reconciliation: Reconciliation = Field(default_factory=Reconciliation)
    review: Review = Field(default_factory=Review)
    expectations: Expectations = Field(default_factory=Expectations)
    focus: FocusExport = Field(default_factory=FocusExport)
    chargeback: ChargebackPolicy = Field(default_factory=ChargebackPolicy)


# --- registry.yaml ------------------------------------------------------------------------------


def _registry_id(value: str) -> str:
    if not value.strip():
        raise ValueError("expected an id, not an empty text")
    if value != value.strip():
        # the ledger's CSV tags are trimmed, so ' search' could never match a request
        raise ValueError("expected an id without leading or trailing spaces")
    return value


RegistryId = Annotated[str, AfterValidator(_registry_id)]


class Team(_Strict):
    id: RegistryId
    business_unit: str
    cost_center: str
    budget_owner: str
    aliases: list[RegistryId] = Field(default_factory=list)  # other names the ledger uses


class FixedSplit(_Strict):
    method: Literal["fixed"]
    split: dict[str, Percent]

    @field_validator("split")
    @classmethod
    def _sums_to_100(cls, split: dict[str, Decimal]) -> dict[str, Decimal]:
        total = sum(split.values(), Decimal(0))
        if total != 100:
            raise ValueError(f"the split sums to {total}, expected 100")
        return split

    @property
    def teams(self) -> list[str]:
        return list(self.split)


def _each_once(teams: list[str]) -> list[str]:
    twice = sorted({t for t in teams if teams.count(t) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} listed more than once; expected each team once")
    return teams


class ProportionalSplit(_Strict):
    method: Literal["proportional"]
    basis: Literal["tokens", "cost", "requests"]
    teams: Annotated[list[str], AfterValidator(_each_once)] = Field(min_length=1)


class EvenSplit(_Strict):
    method: Literal["even"]
    teams: Annotated[list[str], AfterValidator(_each_once)] = Field(min_length=1)


SharedRule = Annotated[FixedSplit | ProportionalSplit | EvenSplit, Field(discriminator="method")]


class Application(_Strict):
    id: RegistryId
    team: RegistryId
    active: bool = True
    shared: SharedRule | None = None
    aliases: list[RegistryId] = Field(default_factory=list)  # other names the ledger uses
    # callers (caller_id: a service identity or API key) whose untagged requests are this
    # application's
    callers: list[RegistryId] = Field(default_factory=list)


class Environment(_Strict):
    """An environment written with the other names the ledger uses for it:
    `{id: production, aliases: [prod]}`."""

    id: RegistryId
    aliases: list[RegistryId] = Field(default_factory=list)


class Registry(_Strict):
    teams: list[Team] = Field(min_length=1)
    applications: list[Application] = Field(default_factory=list)
    environments: list[RegistryId] = Field(default_factory=list)
    workload_classes: list[RegistryId] = Field(default_factory=list)
    # {other name: environment id}, from the environments written as `Environment` entries
    environment_aliases: dict[RegistryId, RegistryId] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _environment_entries(cls, data: Any) -> Any:
        """`environments` entries written {id, aliases} become their id, and their aliases
        `environment_aliases`."""
        entries = data.get("environments") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not any(isinstance(e, dict) for e in entries):
            return data
        ids, aliases = [], dict(data.get("environment_aliases") or {})
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                ids.append(entry)
                continue
            try:
                environment = Environment.model_validate(entry)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
                expected = "an id and its aliases, such as {id: production, aliases: [prod]}"
                if first["type"] != "extra_forbidden":
                    expected = first["msg"]
                raise _KeyProblem(f"environments[{i}]{key}", expected) from None
            ids.append(environment.id)
            for alias in environment.aliases:
                if alias in aliases:
                    raise _KeyProblem(
                        f"environments[{i}] ({environment.id}).aliases",
                        f"{alias!r} is already an alias of {aliases[alias]}; an alias names one",
                    )
                aliases[alias] = environment.id
        return {**data, "environments": ids, "environment_aliases": aliases}

    @model_validator(mode="after")
    def _references_resolve(self) -> Registry:
        team_ids = _unique_ids("teams", [t.id for t in self.teams])
        _unique_ids("applications", [a.id for a in self.applications])
        _unique_aliases("teams", self.teams)
        _unique_aliases("applications", self.applications)
        _unique_callers(self.applications)
        for alias, environment in self.environment_aliases.items():
            where = f"environments ({environment}).aliases"
            if alias in self.environments:
                raise _KeyProblem(
                    where, f"{alias!r} is an environment itself; expected another name of one"
                )
            if environment not in self.environments:
                raise _KeyProblem(
                    where,
                    f"unknown environment {environment!r}; expected one of "
                    f"{', '.join(sorted(self.environments))}",
                )
        for i, app in enumerate(self.applications):
            if app.team not in team_ids:
                raise _KeyProblem(
                    f"applications[{i}] ({app.id}).team", _unknown(app.team, team_ids)
                )
            if app.shared is not None:
                for team in app.shared.teams:
                    if team not in team_ids:
                        raise _KeyProblem(
                            f"applications[{i}] ({app.id}).shared", _unknown(team, team_ids)
                        )
        return self

    def team(self, team_id: str) -> Team:
        return next(t for t in self.teams if t.id == team_id)

    def aliases(self) -> dict[str, dict[str, str]]:
        """{ledger column: {other name: registry id}}: what the loader reads the team and
        application tags through."""
        return {
            "team": {alias: t.id for t in self.teams for alias in t.aliases},
            "application": {alias: a.id for a in self.applications for alias in a.aliases},
            "environment": dict(self.environment_aliases),
        }

    def callers(self) -> dict[str, str]:
        """{caller_id: application id}: whose untagged requests the loader reads as the
        application's."""
        return {caller: a.id for a in self.applications for caller in a.callers}


# --- pricing.yaml -------------------------------------------------------------------------------


def _price_scale_ok(value: Decimal, places: int) -> bool:
    return value == value.quantize(Decimal(1).scaleb(-places)) if value.is_finite() else False


class TokenPrices(_Strict):
    input: Money
    cached_input: Money | None = None
    cache_write: Money | None = None
    output: Money  # required: a model whose output is free says `output: 0`
    reasoning: Money | None = None

    @model_validator(mode="after")
    def _at_most_six_places(self) -> TokenPrices:
        for name in ("input", "cached_input", "cache_write", "output", "reasoning"):
            value = getattr(self, name)
            if value is not None and not _price_scale_ok(value, 6):
                raise _KeyProblem(name, f"{value} has more than 6 decimal places per 1M tokens")
        return self


def _no_number(value: Any) -> Any:
    """A date written as a number (20260101) is refused: pydantic would read it as Unix
    seconds (1970-08-23)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("expected a date such as 2026-10-01")
    return value


ConfigDate = Annotated[date, BeforeValidator(_no_number)]


def _utc_datetime(value: Any) -> Any:
    _no_number(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _utc_datetime(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


UtcDateTime = Annotated[datetime, BeforeValidator(_utc_datetime)]


class PriceTier(_Strict):
    """Long-context prices: a request whose input tokens exceed the threshold is priced wholly
    at the tier (every direction), which is how providers price it."""

    above_input_tokens: Annotated[int, Field(gt=0, strict=True)]
    per_1m_tokens: TokenPrices
    batch: TokenPrices | None = None  # batch requests in the tier; else the tier's prices apply


class ModelPrice(_Strict):
    model: RegistryId
    effective_from: UtcDateTime
    effective_to: UtcDateTime | None = (
        None  # exclusive: the first instant the price no longer applies
    )
    per_1m_tokens: TokenPrices | None = None
    per_call: Money | None = None
    batch: TokenPrices | None = None  # per-1M prices of batch requests (ledger column batch)
    tiers: list[PriceTier] = Field(default_factory=list)  # by increasing above_input_tokens
    # FOCUS names of the model's maker and of who sells it to you (focus_allocated.csv's
    # PublisherName, ProviderName); default: kit.yaml's focus.publisher_name, provider_name
    publisher: str | None = Field(default=None, min_length=1)
    provider: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _has_a_price(self) -> ModelPrice:
        if self.per_1m_tokens is None and self.per_call is None:
            raise ValueError("a model needs per_1m_tokens, per_call or both")
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise _KeyProblem("effective_to", "must be after effective_from")
        if self.per_call is not None and not _price_scale_ok(self.per_call, 12):
            raise _KeyProblem("per_call", "more than 12 decimal places")
        return self

    @model_validator(mode="after")
    def _batch_and_tiers_refine_token_prices(self) -> ModelPrice:
        for key in ("batch", "tiers"):
            if getattr(self, key) and self.per_1m_tokens is None:
                raise _KeyProblem(key, "needs per_1m_tokens (batch and tier prices are per token)")
        previous = 0
        for i, tier in enumerate(self.tiers):
            if tier.above_input_tokens <= previous:
                raise _KeyProblem(
                    f"tiers[{i}].above_input_tokens",
                    f"{tier.above_input_tokens} is not above the previous tier's {previous}; "
                    "expected tiers in increasing order of above_input_tokens, each once",
                )
            previous = tier.above_input_tokens
        return self


class PricingSnapshot(_Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    source_url: str
    reviewed_on: ConfigDate
    reviewed_by: str
    failed_calls_billable: bool = False
    models: list[ModelPrice] = Field(min_length=1)
    # other names of a priced model, in the ledger or the bill: {gpt-4o-mini-2024-07-18:
    # gpt-4o-mini, openai/gpt-4o: gpt-4o}; both sides are read through them
    aliases: dict[RegistryId, RegistryId] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _aliases_name_priced_models(self) -> PricingSnapshot:
        priced = {m.model for m in self.models}
        for alias, model in self.aliases.items():
            if alias in priced:
                raise _KeyProblem(
                    f"aliases.{alias}",
                    "is a priced model itself; expected another name of one (an alias never "
                    "replaces a model's own price)",
                )
            if model not in priced:
                raise _KeyProblem(
                    f"aliases.{alias}",
                    f"{model!r} has no entry in models; expected the name of a priced model",
                )
        return self

    @model_validator(mode="after")
    def _no_overlaps(self) -> PricingSnapshot:
        by_model: dict[str, list[tuple[int, ModelPrice]]] = {}
        for i, price in enumerate(self.models):
            by_model.setdefault(price.model, []).append((i, price))
        far = datetime.max.replace(tzinfo=UTC)
        for model, entries in by_model.items():
            entries.sort(key=lambda e: e[1].effective_from)
            for (_, a), (j, b) in itertools.pairwise(entries):
                if b.effective_from < (a.effective_to or far):
                    raise _KeyProblem(
                        f"models[{j}] ({model})",
                        f"effective {b.effective_from:%Y-%m-%d} overlaps the entry effective "
                        f"{a.effective_from:%Y-%m-%d}; expected non-overlapping date ranges "
                        "(effective_to is exclusive)",
                    )
        return self

    @property
    def snapshot_id(self) -> str:
        return f"{self.reviewed_on.isoformat()}/{self.reviewed_by}"


# --- loading ------------------------------------------------------------------------------------


class _KeyProblem(ValueError):
    """Raised inside validators to name a key more precisely than pydantic's location."""

    def __init__(self, key: str, expected: str) -> None:
        self.key, self.expected = key, expected
        super().__init__(f"{key}: {expected}")


def _unique_ids(section: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise _KeyProblem(f"{section}[{i}].id", f"duplicate id {ident!r}; ids must be unique")
        seen.add(ident)
    return seen


def _unique_aliases(section: str, entries: list[Team] | list[Application]) -> None:
    """An alias names one entry: never an id of its section, nor another entry's alias."""
    ids = {e.id for e in entries}
    named: dict[str, str] = {}
    for i, entry in enumerate(entries):
        for alias in entry.aliases:
            where = f"{section}[{i}] ({entry.id}).aliases"
            if alias in ids:
                raise _KeyProblem(
                    where, f"{alias!r} is an id in {section}; expected another name of {entry.id}"
                )
            if alias in named:
                raise _KeyProblem(
                    where, f"{alias!r} is already an alias of {named[alias]}; an alias names one"
                )
            named[alias] = entry.id


def _unique_callers(applications: list[Application]) -> None:
    """A caller's untagged requests belong to one application."""
    named: dict[str, str] = {}
    for i, app in enumerate(applications):
        for caller in app.callers:
            if caller in named:
                raise _KeyProblem(
                    f"applications[{i}] ({app.id}).callers",
                    f"{caller!r} is already a caller of {named[caller]}; a caller's untagged "
                    "requests belong to one application",
                )
            named[caller] = app.id


def _unknown(value: str, known: set[str]) -> str:
    return f"unknown team {value!r}; expected one of {', '.join(sorted(known))}"


class _KitLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that an impossible date (2026-13-01) is kept as its text and
    remembered: PyYAML raises a bare ValueError for it, with neither the key nor the line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.impossible_dates: list[yaml.ScalarNode] = []

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            self.impossible_dates.append(node)
            return self.construct_scalar(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        """A mapping that names a key twice is an error: PyYAML keeps the last silently (a
        second `applications:` would drop the first list)."""
        first: dict[Any, yaml.Node] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            if key.value in first:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key.value!r}, first on line "
                    f"{first[key.value].start_mark.line + 1}",
                    key.start_mark,
                )
            first[key.value] = key
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        """Whole numbers in decimal digits: YAML 1.1 reads 010 as octal 8 and 0x10 as 16, so a
        price of 010 would be priced at 8; 010 is 10 here, and other bases are refused."""
        text = str(node.value).replace("_", "")
        if re.fullmatch(r"[-+]?[0-9]+", text):
            return int(text, 10)
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not written in decimal digits", node.start_mark
        )

    def construct_yaml_float(self, node: yaml.ScalarNode) -> Any:
        return YamlFloat(super().construct_yaml_float(node), str(node.value))


_KitLoader.add_constructor("tag:yaml.org,2002:timestamp", _KitLoader.construct_yaml_timestamp)
_KitLoader.add_constructor("tag:yaml.org,2002:float", _KitLoader.construct_yaml_float)
_KitLoader.add_constructor("tag:yaml.org,2002:int", _KitLoader.construct_yaml_int)


def read_yaml(path: Path) -> Any:
    """The parsed YAML document at path, or a ConfigError naming the line of a syntax error or
    the key and line of an impossible date."""
    if path.is_dir():
        raise ConfigError(path, None, "is a folder; expected a YAML file")
    if not path.exists():
        raise ConfigError(path, None, "file not found")
    if not path.is_file():  # /dev/null, a pipe, a socket
        raise ConfigError(path, None, "not a regular file; expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, None, "expected UTF-8 text") from None
    return yaml_document(text, path)


def yaml_document(text: str, source: str | Path) -> Any:
    """The YAML document in text (the contents of source), or a one-line ConfigError: every
    YAML the kit reads goes through here."""
    try:
        loader = _KitLoader(text)  # reads the text: a control character stops it here
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problem = f"unacceptable character #x{exc.character:04x}"
        where = f"line {line}, column {column}"
        raise ConfigError(source, where, f"malformed YAML ({problem})") from None
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(source, where, f"malformed YAML ({problem})") from None
    finally:
        loader.dispose()
    if loader.impossible_dates:
        node = loader.impossible_dates[0]
        key = _location(_node_path(root, node), document)
        line = f"line {node.start_mark.line + 1}"
        timed = loader.timestamp_regexp.match(node.value)["hour"]
        example = (
            "date and time such as 2026-10-01T09:00:00Z" if timed else "date such as 2026-10-01"
        )
        raise ConfigError(
            source,
            f"{key} ({line})" if key else line,
            f"got {node.value!r}, expected a valid {example}"
            + _more_problems(len(loader.impossible_dates) - 1),
        )
    return document


def _node_path(root: yaml.Node, target: yaml.Node) -> tuple[Any, ...]:
    """The keys and list indexes that lead from root to target (a scalar in the document)."""
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:  # an alias: YAML documents may refer to themselves
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                if key is target:
                    return (*path, key.value)
                stack.append((value, (*path, key.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(node.value))))
    return ()


def _more_problems(count: int) -> str:
    return f" (and {count} more problem{'s' if count > 1 else ''} in this file)" if count else ""


def _location(loc: tuple[Any, ...], document: Any) -> str:
    parts: list[str] = []
    node = document
    for at, item in enumerate(loc):
        if item == 0 and isinstance(node, dict) and loc[at - 1 : at] == ("billing",):
            continue  # `billing: {…}`, one bill, is read as a list of one
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                # the first naming key written: an empty `id` is not labelled by its team
                named_by = next(
                    (k for k in ("id", "model", "name", "team") if k in node), None
                ) if isinstance(node, dict) else None  # fmt: skip
                ident = node[named_by] if named_by else None
                if ident is not None and str(ident).strip():
                    # an entry without its id, named by its team, says which key names it
                    key = "team " if named_by == "team" and loc[at + 1 : at + 2] == ("id",) else ""
                    label += f" ({key}{ident})"
            parts.append(label)
        elif item in {"fixed", "proportional", "even"} or str(item).startswith("function-"):
            continue  # pydantic's union tags, not keys the user wrote
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _expected(error: dict[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _fields_at(model, loc[:-1])
        allowed = f"; expected one of {', '.join(parent)}" if parent else ""
        close = difflib.get_close_matches(str(loc[-1]), parent, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown key{hint}{allowed}"
    if kind == "missing":
        return "required key is missing"
    if kind == "invalid_key" and isinstance(error.get("input"), (int, float)):
        # `{input: 0,15}`: YAML reads a decimal comma as two entries, the second a number key
        return (
            f"got {error['input']!r} as a key; a decimal comma? write decimals with a point, "
            "such as 0.15"
        )
    if kind == "union_tag_invalid":
        return "method must be one of fixed, proportional, even"
    if kind == "union_tag_not_found":
        written = (
            [str(k) for k in error.get("input") or {}]
            if isinstance(error.get("input"), dict)
            else []
        )
        close = difflib.get_close_matches("method", [k.lower() for k in written], n=1, cutoff=0.6)
        typo = next((k for k in written if close and k.lower() == close[0]), None)
        hint = f"; {typo!r} is not a key (did you mean method?)" if typo else ""
        return f"missing method (fixed, proportional or even){hint}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"expected true or false, got {error.get('input')!r}"
    bounds = {"less_than_equal": "at most", "greater_than_equal": "at least",
              "greater_than": "more than"}  # fmt: skip
    if kind in bounds:
        limit = str(next(iter((error.get("ctx") or {}).values()), ""))
        digits = re.fullmatch(r"(?:Decimal\(')?(-?[0-9.]+)(?:'\))?", limit)  # pydantic's repr
        if digits:
            value = error.get("input")
            shown = value.text if isinstance(value, YamlFloat) else value
            return f"got {shown}, expected {bounds[kind]} {Decimal(digits[1]):,f}"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    value = error.get("input")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"got {value!r}: {message}"
    return message


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for item in loc:
        if isinstance(item, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        field = current.model_fields.get(item)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def parse_document(path: Path, model: type[BaseModel], document: Any | None = None) -> Any:
    """The `model` parsed from the YAML file at path, or a one-line ConfigError."""
    document = read_yaml(path) if document is None else document
    if not isinstance(document, dict):
        raise ConfigError(path, None, "expected a mapping of keys at the top level")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key is also a missing one: name the misspelling, which says what to fix
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(first["loc"])
        ctx_error = (first.get("ctx") or {}).get("error")
        where = _location(loc, document)
        if isinstance(ctx_error, _KeyProblem):
            where = f"{where}.{ctx_error.key}" if where else ctx_error.key
            expected = ctx_error.expected
        else:
            expected = _expected(first, model, loc)
        expected += _more_problems(len(errors) - 1)
        raise ConfigError(path, where or None, expected) from None


@dataclass(frozen=True)
class Workspace:
    """Everything the review needs from the user's files, resolved against the config's folder."""

    config_path: Path
    kit: KitConfig
    registry: Registry
    pricing: PricingSnapshot
    cost_units: Any = None  # economics.LoadedCostUnits, when kit.yaml names cost_units
    budgets: Any = None  # budgets.Budgets, when kit.yaml names budgets

    @property
    def root(self) -> Path:
        return self.config_path.parent

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path

    @property
    def journal_path(self) -> Path | None:
        """The review journal (review.journal of kit.yaml), if the workspace keeps one."""
        journal = self.kit.review.journal
        return self.resolve(journal) if journal else None

    @property
    def registry_path(self) -> Path:
        return self.resolve(self.kit.registry)

    @property
    def pricing_path(self) -> Path:
        return self.resolve(self.kit.pricing)

    @property
    def ledger_aliases(self) -> dict[str, dict[str, str]]:
        """{ledger column: {other name: id}}: pricing.yaml's model aliases and registry.yaml's
        team and application aliases, read by the loader."""
        return {"model": dict(self.pricing.aliases), **self.registry.aliases()}

    @property
    def priced_models(self) -> frozenset[str]:
        """Every model name pricing.yaml prices: its entries' models and their aliases."""
        return frozenset({m.model for m in self.pricing.models} | set(self.pricing.aliases))

    @property
    def ledger_callers(self) -> dict[str, str]:
        """{caller_id: application id} of registry.yaml's `callers`, read by the loader."""
        return self.registry.callers()

    @property
    def suites_dir(self) -> Path:
        """The folder of Great Expectations suites: the workspace's own, or the kit's."""
        from .validate import default_suites_dir

        path = self.kit.expectations.path
        return self.resolve(path) if path else default_suites_dir()


def load_workspace(config_path: str | Path) -> Workspace:
    """The Workspace described by kit.yaml at config_path (ConfigError on any problem)."""
    config_path = Path(config_path).resolve()
    kit: KitConfig = parse_document(config_path, KitConfig)
    root = config_path.parent
    for key in ("registry", "pricing", "cost_units", "budgets"):  # a mistyped name: say where
        named = getattr(kit, key)
        if named and not (root / named).exists():
            raise ConfigError(
                config_path, key, f"{root / named}: file not found; expected a path relative "
                "to kit.yaml"
            )  # fmt: skip
    registry_path = root / kit.registry
    pricing_path = root / kit.pricing
    registry: Registry = parse_document(registry_path, Registry)
    pricing: PricingSnapshot = parse_document(pricing_path, PricingSnapshot)
    if pricing.currency != kit.currency:
        raise ConfigError(
            pricing_path,
            "currency",
            f"the snapshot is in {pricing.currency} but kit.yaml says {kit.currency}; "
            "expected the same currency",
        )
    from .budgets import load_budgets
    from .economics import load_cost_units

    cost_units = load_cost_units(root / kit.cost_units, registry) if kit.cost_units else None
    budgets = load_budgets(root / kit.budgets, registry) if kit.budgets else None
    return Workspace(config_path, kit, registry, pricing, cost_units, budgets)
