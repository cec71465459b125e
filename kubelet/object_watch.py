"""The Secrets and ConfigMaps this node's pods use, each watched on its own (the kubelet's Watch strategy).

A kubelet may read only what its own pods use (the Node authorizer refuses it a cluster-wide list), so
as upstream's `watch-based manager` it keeps one informer per referenced object: a list+watch in the
object's namespace narrowed by `fieldSelector=metadata.name=<name>`. References are counted by pod; an
object no pod uses any more stops being watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from apimachinery.podrefs import pod_references
from client.informer import Informer
from client.request import Obj, Selectors
from client.rest import ApiClient

__all__ = ["ObjectWatch", "PodObjects"]

log = logging.getLogger("kubelet.objects")

Key = tuple[str, str]  # (namespace, name)


class ObjectWatch:
    """One informer per (namespace, name) of one resource, kept while some pod refers to it."""

    def __init__(self, api: ApiClient, resource: str, on_change: Callable[[], None]) -> None:
        self.api = api
        self.resource = resource
        self.on_change = on_change
        self._informers: dict[Key, Informer] = {}
        self._users: dict[Key, set[str]] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    def use(self, uid: str, keys: set[Key]) -> None:
        """Pod `uid` uses exactly `keys` now: watch the new ones, drop what nobody uses any more."""
        for key in keys:
            users = self._users.setdefault(key, set())
            users.add(uid)
            if key not in self._informers:
                self._start(key)
        for key in [k for k, users in self._users.items() if uid in users and k not in keys]:
            self._release(key, uid)

    def forget(self, uid: str) -> None:
        """Pod `uid` is gone."""
        self.use(uid, set())

    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The object as last seen, or None (absent, or not listed yet)."""
        inf = self._informers.get((namespace, name))
        return inf.store.get_by_name(name, namespace) if inf is not None else None

    async def wait_for(self, keys: set[Key], timeout: float) -> bool:
        """Wait until each of `keys` has been listed once; False if `timeout` passes first."""
        informers = [self._informers[k] for k in keys if k in self._informers]
        if not informers:  # most pods use none: no timer to arm
            return True
        try:
            async with asyncio.timeout(timeout):
                for inf in informers:
                    await inf.wait_for_sync()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop every informer."""
        informers = list(self._informers.values())
        self._informers.clear()
        self._users.clear()
        for inf in informers:
            await inf.stop()
        for task in list(self._stopping):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self, key: Key) -> None:
        namespace, name = key
        inf = Informer(self.api, self.resource, namespace, Selectors.of(fields={"metadata.name": name}))
        changed = self.on_change
        inf.add_handler(lambda _o: changed(), lambda _o, _n: changed(), lambda _o: changed())
        self._informers[key] = inf
        inf.start()

    def _release(self, key: Key, uid: str) -> None:
        users = self._users.get(key)
        if users is None:
            return
        users.discard(uid)
        if users:
            return
        del self._users[key]
        inf = self._informers.pop(key, None)
        if inf is not None:
            task = asyncio.get_running_loop().create_task(inf.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)


class PodObjects:
    """The ConfigMaps and Secrets of the node's pods, watched one by one."""

    def __init__(self, api: ApiClient, on_change: Callable[[], None]) -> None:
        self.configmaps = ObjectWatch(api, "configmaps", on_change)
        self.secrets = ObjectWatch(api, "secrets", on_change)

    @staticmethod
    def _keys(pod: Obj) -> tuple[set[Key], set[Key]]:
        configmaps: set[Key] = set()
        secrets: set[Key] = set()
        for kind, namespace, name in pod_references(pod):
            if kind == "configmap":
                configmaps.add((namespace, name))
            elif kind == "secret":
                secrets.add((namespace, name))
        return configmaps, secrets

    def track(self, pod: Obj) -> None:
        """Watch what `pod` uses (again, after a change of the pod)."""
        uid = pod["metadata"]["uid"]
        configmaps, secrets = self._keys(pod)
        self.configmaps.use(uid, configmaps)
        self.secrets.use(uid, secrets)

    def forget(self, uid: str) -> None:
        """The pod's worker is done."""
        self.configmaps.forget(uid)
        self.secrets.forget(uid)

    async def wait_for(self, pod: Obj, timeout: float) -> bool:
        """Wait until every object `pod` uses has been listed (found or known to be absent)."""
        configmaps, secrets = self._keys(pod)
        return await self.configmaps.wait_for(configmaps, timeout) and await self.secrets.wait_for(secrets, timeout)

    async def stop(self) -> None:
        """Stop watching."""
        await self.configmaps.stop()
        await self.secrets.stop()
