"""allocation-kit: allocate, reconcile and review AI API spend from your own request ledger."""

import csv
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("allocation-kit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

from .config import Workspace, load_workspace
from .errors import ConfigError, InputError, KitError
from .periods import Period, parse_period
from .pipeline import PeriodLedger, period_ledger

# A ledger's free-text column (a feature name, a bill's ChargeDescription) may be longer than the
# csv module's default 131,072 characters: its limit stopped the kit's own re-reads of a file to
# name a bad row. DuckDB, which reads the data, has its own limits and names them.
csv.field_size_limit(2**31 - 1)

__all__ = [
    "ConfigError",
    "InputError",
    "KitError",
    "Period",
    "PeriodLedger",
    "Workspace",
    "__version__",
    "load_workspace",
    "parse_period",
    "period_ledger",
]
