"""The component processes' command lines, on click.

Every `python -m <component>` takes its flags from `command()` and `option()`: click's, with each option's
environment variable and default shown in `--help`. Components use click itself rather than typer (which
the `tinykube` CLI keeps): typer builds a pydantic TypeAdapter per flag, and importing typer and pydantic
for that was about 65 ms of each component's start, a fifth of it (bench/README.md, "Session 25").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["command", "kubeconfig_option", "log_level_option", "option", "server_option"]

_CONTEXT = {"show_default": True, "max_content_width": 100}


def command(**kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """`click.command` showing every option's default in `--help`."""
    return click.command(context_settings=_CONTEXT, **kwargs)


def option(*decls: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`click.option` showing the option's environment variable in `--help`, and its default unless that is
    empty or the help text names it already (`[default: …]`)."""
    attrs.setdefault("show_envvar", True)
    if attrs.get("default") in ("", None) or "[default:" in str(attrs.get("help", "")):
        attrs.setdefault("show_default", False)
    return click.option(*decls, **attrs)


# the flags most components share, spelled once
server_option = option(
    "--server", default="", envvar="TINYKUBE_SERVER", help="API server URL (overrides the kubeconfig)."
)
kubeconfig_option = option("--kubeconfig", default="", envvar="KUBECONFIG", help="kubeconfig file.")
log_level_option = option("--log-level", default="info", envvar="TINYKUBE_LOG_LEVEL", help="Log level.")
