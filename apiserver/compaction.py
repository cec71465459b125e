"""etcd compaction shared by every apiserver of a cluster, as kube-apiserver's compactor (storage/etcd3/compact.go).

Each apiserver, every interval, tries to move the key `compact_rev_key` on from the version it last saw
(a logical clock shared by all of them) to the revision it saw one interval ago; only the one whose
compare-and-swap succeeds compacts to that revision, so N apiservers compact once per interval, not N
times (and none to a revision another has already compacted past). The one that loses learns the key's
version and tries again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging

from apiserver.storage import EtcdStorage, StorageError

__all__ = ["COMPACT_REV_KEY", "Compactor"]

log = logging.getLogger("apiserver")

COMPACT_REV_KEY = "compact_rev_key"


class Compactor:
    """One apiserver's part of the cluster's compaction."""

    def __init__(self, storage: EtcdStorage, interval: float, timeout: float = 5.0) -> None:
        self.storage = storage
        self.interval = interval
        self.timeout = timeout
        self._clock = 0  # compact_rev_key's version as last seen

    async def compact(self, revision: int) -> bool:
        """Claim this interval's compaction (CAS on the key's version) and, if won, compact to `revision`
        (0: only claim, as on the first pass); whether this process compacted."""
        try:
            async with asyncio.timeout(self.timeout):
                held = await self.storage.put_if_version(COMPACT_REV_KEY, self._clock, str(revision).encode())
        except TimeoutError as e:
            raise StorageError("etcd did not answer the compaction claim") from e
        except StorageError as e:
            raise StorageError(f"compaction claim: {e}") from e
        if held is not None:
            self._clock = held
            return False
        self._clock += 1
        if revision == 0:
            return False
        await self.storage.compact(revision)
        return True

    async def run(self) -> None:
        """Every interval: claim, and compact to the revision of the interval before."""
        previous = 0
        while True:
            await asyncio.sleep(self.interval)
            try:
                current = await self.storage.ping()
                if await self.compact(previous):
                    log.info("compacted etcd to revision %d", previous)
                previous = current
            except StorageError as e:
                log.warning("compaction skipped: %s", e)
