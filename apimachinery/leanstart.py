"""Modules a component process never runs, kept from loading at its start.

httpx's package imports its command-line client (`httpx._main`) whenever click, rich and pygments are
installed, as they are here (rich for the `tinykube` CLI, click under uvicorn), and that loads rich's console
and pygments: about 30 ms of each process's start, a tenth of a component's. A None entry in `sys.modules`
makes that import raise ImportError, as when they are missing, which httpx handles by defining a `main` that
tells how to install them. Nothing in a component calls it.
"""

from __future__ import annotations

import sys

__all__ = ["skip_cli_modules"]


def skip_cli_modules() -> None:
    """Keep httpx's command-line client from loading in this process (call before importing httpx)."""
    sys.modules.setdefault("httpx._main", None)
