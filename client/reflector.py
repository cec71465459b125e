"""The reflector: list, then watch from the list's resourceVersion, forever (client-go `Reflector`).

`reflect()` is an async generator in kopf's shape: the objects of a list (plain dicts), then the
`LISTED` marker, then `WatchEvent`s (BOOKMARKs included, so consumers can see progress).
Guarantees:
- the watch starts at the list's resourceVersion, so no change between the two is lost;
- when a stream ends (the server's `timeoutSeconds`) or breaks (a transport error), the next
  watch resumes from the last resourceVersion seen, so nothing is missed or repeated;
- when that resourceVersion has expired (410), it lists again: a new batch of objects and
  another `LISTED` follow, and the consumer replaces its state with that batch;
- failures are retried with exponential backoff, reset by every watch event; a first 410 relists
  at once, repeated ones without progress back off too;
  the generator runs until the consumer stops iterating or it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator
from enum import Enum

import httpx

from apimachinery.errors import StatusError
from apimachinery.resources import ResourceInfo
from client.backoff import Backoff
from client.request import Obj, Selectors
from client.rest import ApiClient
from client.watch import WatchEvent, WatchExpired, WatchProtocolError, watch

__all__ = ["DEFAULT_BACKOFF", "LISTED", "Marker", "reflect"]

log = logging.getLogger("client.reflector")

DEFAULT_BACKOFF = Backoff(initial=0.8, cap=30.0, jitter=0.5)
_RETRYABLE = (StatusError, httpx.TransportError, WatchProtocolError)


class Marker(Enum):
    """Stream markers between the objects of a list and the watch events."""

    LISTED = "LISTED"


LISTED = Marker.LISTED


async def reflect(
    api: ApiClient,
    res: ResourceInfo,
    namespace: str | None = None,
    selectors: Selectors | None = None,
    *,
    page_size: int = 500,
    watch_timeout: int = 300,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> AsyncGenerator[Obj | Marker | WatchEvent, None]:
    """Objects, `LISTED`, then events; relists after a 410; each watch lasts `watch_timeout`..2x seconds."""
    what = f"{res.group_resource} in {namespace or 'all namespaces'}"
    rv = ""
    failures = 0
    while True:
        try:
            if not rv:
                listing = await api.list_all(res, namespace, selectors=selectors, page_size=page_size)
                for item in listing.get("items") or []:
                    yield item
                rv = str(listing["metadata"]["resourceVersion"])
                yield LISTED
            timeout = random.randint(watch_timeout, 2 * watch_timeout)
            stream = watch(api, res, namespace, rv, selectors, timeout, bookmarks=True)
            async with contextlib.aclosing(stream) as events:
                async for ev in events:
                    rv = ev.resource_version or rv
                    failures = 0
                    yield ev
        except WatchExpired as e:
            log.info("watch of %s expired (%s); relisting", what, e.message)
            rv = ""
            if failures:  # expired again without progress: do not spin
                await asyncio.sleep(backoff.delay(failures))
            failures += 1
        except _RETRYABLE as e:
            delay = backoff.delay(failures)
            failures += 1
            log.warning("%s %s failed: %s; retrying in %.1fs", "watch" if rv else "list", what, e, delay)
            await asyncio.sleep(delay)
