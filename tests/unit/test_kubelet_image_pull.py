"""Image pulls per imagePullPolicy (upstream's reasons, events, back-off); the docker runtime's pure parts."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubelet.__main__ import docker_answers
from kubelet.docker_api import _split_image, demux_frames
from kubelet.docker_runtime import container_body, parse_docker_time
from kubelet.image_pull import BACKOFF_INITIAL, ImageManager, pull_policy
from kubelet.runtime import ContainerConfig, ImagePullError, Mount


class Images:
    """A node's image store: `present` images; pulls of `reachable` ones succeed."""

    pulls_images = True

    def __init__(self, present: set[str], reachable: set[str]) -> None:
        self.present = present
        self.reachable = reachable
        self.pulled: list[str] = []

    async def image_present(self, image: str) -> bool:
        return image in self.present

    async def pull_image(self, image: str) -> int:
        self.pulled.append(image)
        if image not in self.reachable:
            raise ImagePullError(f'Error response from daemon: Get "https://{image.split("/")[0]}/v2/": refused')
        self.present.add(image)
        return 1234


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ensure(mgr: ImageManager, container: dict[str, Any]) -> tuple[Any, list[tuple[str, str, str]]]:
    events: list[tuple[str, str, str]] = []
    result = asyncio.run(mgr.ensure("uid-1", container, lambda *e: events.append(e)))
    return result, events


@pytest.mark.parametrize(
    ("container", "policy"),
    [
        ({"image": "busybox"}, "Always"),
        ({"image": "busybox:latest"}, "Always"),
        ({"image": "registry:5000/busybox"}, "Always"),
        ({"image": "registry:5000/busybox:1.36"}, "IfNotPresent"),
        ({"image": "busybox@sha256:abc"}, "IfNotPresent"),
        ({"image": "busybox", "imagePullPolicy": "Never"}, "Never"),
    ],
)
def test_default_pull_policy(container: dict[str, Any], policy: str) -> None:
    assert pull_policy(container) == policy


def test_present_image_with_if_not_present_is_not_pulled() -> None:
    images = Images({"web:1"}, set())
    result, events = ensure(ImageManager(images), {"image": "web:1"})
    assert result.ok and images.pulled == []
    assert events == [("Normal", "Pulled", 'Container image "web:1" already present on machine')]


def test_always_pulls_even_a_present_image() -> None:
    images = Images({"web:latest"}, {"web:latest"})
    result, events = ensure(ImageManager(images), {"image": "web:latest"})
    assert result.ok and images.pulled == ["web:latest"]
    assert [e[1] for e in events] == ["Pulling", "Pulled"]
    assert events[1][2].startswith('Successfully pulled image "web:latest" in ')
    assert events[1][2].endswith("Image size: 1234 bytes.")


def test_never_with_a_missing_image() -> None:
    result, events = ensure(ImageManager(Images(set(), set())), {"image": "x:1", "imagePullPolicy": "Never"})
    msg = 'Container image "x:1" is not present with pull policy of Never'
    assert (result.ok, result.reason, result.message) == (False, "ErrImageNeverPull", msg)
    assert events == [("Warning", "ErrImageNeverPull", msg)]


def test_failed_pull_is_err_image_pull_then_back_off_until_it_expires() -> None:
    clock = Clock()
    images = Images(set(), set())
    mgr = ImageManager(images, clock=clock)
    result, events = ensure(mgr, {"image": "127.0.0.1:9/nope:1"})
    assert (result.ok, result.reason) == (False, "ErrImagePull")
    assert "refused" in result.message and result.retry_in > 0
    assert events[0] == ("Normal", "Pulling", 'Pulling image "127.0.0.1:9/nope:1"')
    assert events[1][:2] == ("Warning", "Failed") and events[1][2].startswith(
        'Failed to pull image "127.0.0.1:9/nope:1"'
    )
    assert events[2] == ("Warning", "Failed", "Error: ErrImagePull")

    clock.now += 1
    result, events = ensure(mgr, {"image": "127.0.0.1:9/nope:1"})
    assert (result.reason, result.message) == ("ImagePullBackOff", 'Back-off pulling image "127.0.0.1:9/nope:1"')
    assert result.retry_in == pytest.approx(BACKOFF_INITIAL - 1)
    assert events == [("Normal", "BackOff", 'Back-off pulling image "127.0.0.1:9/nope:1"')]
    assert images.pulled == ["127.0.0.1:9/nope:1"]

    clock.now += BACKOFF_INITIAL  # the back-off is over: pulled again, and the next back-off is twice as long
    result, _ = ensure(mgr, {"image": "127.0.0.1:9/nope:1"})
    assert result.reason == "ErrImagePull" and len(images.pulled) == 2
    clock.now += 1
    result, _ = ensure(mgr, {"image": "127.0.0.1:9/nope:1"})
    assert result.retry_in == pytest.approx(2 * BACKOFF_INITIAL - 1)


@pytest.mark.parametrize(
    ("image", "split"),
    [
        ("busybox", ("busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36")),
        ("127.0.0.1:9/nope:1", ("127.0.0.1:9/nope", "1")),
        ("registry:5000/team/app", ("registry:5000/team/app", "latest")),
        ("app@sha256:abcd", ("app", "sha256:abcd")),
    ],
)
def test_split_image(image: str, split: tuple[str, str]) -> None:
    assert _split_image(image) == split


def test_demux_frames_across_chunk_boundaries() -> None:
    raw = b"".join(bytes([s, 0, 0, 0]) + struct.pack(">I", len(d)) + d for s, d in [(1, b"out\n"), (2, b"err")])

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 3):
            yield raw[i : i + 3]

    async def collect() -> list[tuple[int, bytes]]:
        return [f async for f in demux_frames(chunks())]

    assert asyncio.run(collect()) == [(1, b"out\n"), (2, b"err")]


def test_parse_docker_time() -> None:
    assert parse_docker_time("0001-01-01T00:00:00Z") == 0.0
    assert parse_docker_time("2026-01-01T00:00:01.500000000Z") == pytest.approx(1767225601.5)


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd"),
    [
        (None, None, "absent", "absent"),  # the image's ENTRYPOINT and CMD
        (["sh", "-c"], ["echo hi"], ["sh", "-c"], ["echo hi"]),
        (["sleep"], None, ["sleep"], []),  # command alone drops the image's CMD too
        (None, ["60"], "absent", ["60"]),  # args alone keep the image's ENTRYPOINT
    ],
)
def test_command_and_args_map_to_entrypoint_and_cmd(
    command: list[str] | None, args: list[str] | None, entrypoint: Any, cmd: Any
) -> None:
    config = ContainerConfig("c", "img:1", [], {"A": "1"}, command=command, args=args)
    body = container_body(config, "sb", {})
    assert body.get("Entrypoint", "absent") == entrypoint
    assert body.get("Cmd", "absent") == cmd
    assert body["Env"] == ["A=1"]


def test_limits_mounts_and_the_sandbox_namespaces() -> None:
    config = ContainerConfig(
        "c",
        "img:1",
        [],
        {},
        mounts=[Mount(Path("/v/data"), "/data"), Mount(Path("/v/conf"), "/etc/conf", read_only=True)],
        memory_limit=32 * 1024 * 1024,
        nano_cpus=500_000_000,
    )
    hc = container_body(config, "sandbox-id", {"io.kubernetes.pod.uid": "u"})["HostConfig"]
    assert hc["NetworkMode"] == hc["IpcMode"] == "container:sandbox-id"
    assert hc["Binds"] == ["/v/data:/data", "/v/conf:/etc/conf:ro"]
    assert hc["Memory"] == hc["MemorySwap"] == 32 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert "Memory" not in container_body(ContainerConfig("c", "i", [], {}), "s", {})["HostConfig"]


def test_auto_runtime_falls_back_when_no_engine_answers(tmp_path: Path) -> None:
    assert asyncio.run(docker_answers(str(tmp_path / "no-docker.sock"))) is False
