"""The cyclic garbage collector tuned for processes that allocate many short-lived dicts (every
server and component: the apiserver calls it, `client.component.run_component` for the rest).

CPython's defaults (a young collection every 700 net container allocations) made the collector about
a sixth of the apiserver's CPU under creates and gets (bench/README.md, "Where a create's CPU goes"):
a create allocates thousands of dicts and lists, nearly all freed by reference counting, yet each
young collection walks whatever is alive at that moment, and every full collection walked the
hundred thousand objects built at startup (the OpenAPI schemas, the compiled fillers, modules).
`tune` raises the young threshold (garbage in cycles is still collected, a little later) and, once
startup's objects are built, moves them to the permanent generation (`gc.freeze`), where no
collection walks them again. Neither changes what is freed, only when the collector looks.

Until then a process's collector is off (`pause`, the first statement of every `python -m` entry point):
its imports and the app it builds allocate hundreds of thousands of objects that all stay, so every
collection then was wasted work, about a tenth of a component's start (bench/README.md, "Session 15").
`freeze_startup` freezes what is there and turns the collector back on, without collecting first: a
collection over the apiserver's ~190,000 start-up objects took ~85 ms of its start and found ~1,700 in
cycles (a component's ~75,000: ~15 ms, ~540), so that garbage, a few hundred KB, is frozen with the rest
(bench/README.md, "Session 16"). This is the recipe of `gc.freeze`'s documentation.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "freeze_startup", "pause", "tune"]

YOUNG_THRESHOLD = 20_000  # net container allocations between young collections (CPython default 700)


def tune() -> None:
    """Collect the young generation less often; the older generations keep their default ratios."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def pause() -> None:
    """Turn the collector off for a process's startup; `freeze_startup` turns it on again."""
    gc.disable()


def freeze_startup() -> None:
    """Keep every object there now out of all future collections, and turn the collector on."""
    gc.freeze()
    gc.enable()
