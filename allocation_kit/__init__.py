"""allocation-kit: allocate, reconcile and review AI API spend from your own request ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("allocation-kit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

from .config import Workspace, load_workspace
from .errors import ConfigError, InputError, KitError
from .periods import Period, parse_period
from .pipeline import PeriodLedger, period_ledger

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
