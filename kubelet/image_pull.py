"""Pulling a container's image per its imagePullPolicy, with upstream's reasons, events and back-off
(kuberuntime's image manager: Pulling, Pulled, Failed/ErrImagePull, BackOff/ImagePullBackOff, ErrImageNeverPull)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubelet.runtime import ContainerRuntime, ImagePullError

__all__ = ["ImageManager", "PullResult", "pull_policy"]

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0

Event = Callable[[str, str, str], None]
"""record(type, reason, message) for the container."""


@dataclass(frozen=True)
class PullResult:
    """The image is there (ok), or why the container waits: (reason, message) and when to try again."""

    ok: bool
    reason: str = ""
    message: str = ""
    retry_in: float = 0.0


def pull_policy(container: Mapping[str, Any]) -> str:
    """imagePullPolicy, defaulted as the apiserver does: Always for :latest or no tag, else IfNotPresent."""
    if policy := container.get("imagePullPolicy"):
        return str(policy)
    image = str(container.get("image") or "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _seconds(t: float) -> str:
    return f"{t:.3f}s".replace(".000s", "s")


class ImageManager:
    """Ensures images for containers; back-off per (pod, image) after failed pulls."""

    def __init__(self, runtime: ContainerRuntime, clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.clock = clock
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (pod uid, image) → (delay, retry at)

    def forget(self, pod_uid: str) -> None:
        """Drop a pod's back-off entries."""
        for key in [k for k in self._backoff if k[0] == pod_uid]:
            del self._backoff[key]

    async def ensure(self, pod_uid: str, container: Mapping[str, Any], event: Event) -> PullResult:
        """Make sure the container's image is present, pulling it if the policy says so."""
        image = str(container.get("image") or "")
        if not self.runtime.pulls_images:
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return PullResult(True)
        policy = pull_policy(container)
        present = await self.runtime.image_present(image)
        if policy == "Never" or (present and policy != "Always"):
            if present:
                event("Normal", "Pulled", f'Container image "{image}" already present on machine')
                return PullResult(True)
            msg = f'Container image "{image}" is not present with pull policy of Never'
            event("Warning", "ErrImageNeverPull", msg)
            return PullResult(False, "ErrImageNeverPull", msg)
        key = (pod_uid, image)
        now = self.clock()
        delay, retry_at = self._backoff.get(key, (0.0, 0.0))
        if now < retry_at:
            msg = f'Back-off pulling image "{image}"'
            event("Normal", "BackOff", msg)
            return PullResult(False, "ImagePullBackOff", msg, retry_in=retry_at - now)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        started = self.clock()
        try:
            size = await self.runtime.pull_image(image)
        except ImagePullError as e:
            delay = BACKOFF_INITIAL if not delay else min(delay * 2, BACKOFF_MAX)
            self._backoff[key] = (delay, self.clock() + delay)
            event("Warning", "Failed", f'Failed to pull image "{image}": {e}')
            event("Warning", "Failed", "Error: ErrImagePull")
            # the next sync shows ImagePullBackOff until the back-off ends
            return PullResult(False, "ErrImagePull", str(e), retry_in=1.0)
        self._backoff.pop(key, None)
        took = _seconds(self.clock() - started)
        event(
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {took} ({took} including waiting). Image size: {size} bytes.',
        )
        return PullResult(True)
