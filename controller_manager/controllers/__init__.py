"""The controllers, one module each, found by `load()`; `--controllers` chooses among them by name."""

from __future__ import annotations

import importlib
import pkgutil

from controller_manager.base import Controller

REGISTRY: dict[str, type[Controller]] = {}


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator adding a controller to the registry under its `name`."""
    REGISTRY[cls.name] = cls
    return cls


def load() -> dict[str, type[Controller]]:
    """Import every controller module in this package; the registry by name."""
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items()))


def select(spec: str) -> list[type[Controller]]:
    """Controllers named by a kube-controller-manager style list: `*`, `foo`, `-foo`, comma separated."""
    known = load()
    chosen: set[str] = set()
    for raw in [p.strip() for p in spec.split(",") if p.strip()]:
        if raw == "*":
            chosen |= set(known)
        elif raw.startswith("-"):
            chosen.discard(raw[1:])
        elif raw in known:
            chosen.add(raw)
        else:
            raise ValueError(f"unknown controller {raw!r}; known: {', '.join(known)}")
    return [known[n] for n in known if n in chosen]
