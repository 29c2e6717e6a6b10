"""Errors a user can fix from the message alone: the file, the row or key, and what was expected."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "EmptyPeriod", "InputError", "KitError"]


class KitError(Exception):
    """A problem with the user's files; printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, source: str | Path | None, where: str | None, expected: str) -> None:
        self.source = str(source) if source is not None else None
        self.where = where
        self.expected = expected
        super().__init__(self.line())

    def line(self) -> str:
        """The one-line message: `file: where: expected`."""
        parts = [p for p in (self.source, self.where) if p]
        return ": ".join([*parts, self.expected])


class ConfigError(KitError):
    """A workspace file (kit.yaml, registry.yaml, pricing.yaml, …) is malformed; exit code 2."""

    exit_code = 2


class InputError(KitError):
    """A data file (request ledger, billing export) cannot be used as it is; exit code 3."""

    exit_code = 3


class EmptyPeriod(InputError):
    """No row of the request ledger falls in the period; exit code 3."""
