"""`python -m allocation_kit ...` is the `allocation-kit` command."""

from .cli import main

main()
