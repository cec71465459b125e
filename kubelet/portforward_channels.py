"""Port-forward over the channel WebSocket protocol: how the official clients other than kubectl (the
Python `kubernetes.stream.portforward`, for one) forward, as upstream's
pkg/kubelet/cri/streaming/portforward/websocket.go serves it.

The ports come in the query (`port=80&port=8080` or `port=80,8080`); port i gets channel 2i for its
data and 2i+1 for its errors. Every message starts with its channel byte (`v4.channel.k8s.io`, or no
subprotocol), or is text with the channel as a digit and the data in base64
(`v4.base64.channel.k8s.io`). The server first writes each port, two bytes little-endian, on both of
its channels, dials each port once, and copies bytes until the pod closes; a failed dial is written on
the error channel. The WebSocket closes when every port is done.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

from kubelet.portforward import DIAL_TIMEOUT, PodTarget, forward_to_pod

__all__ = ["BASE64_PROTOCOL", "BINARY_PROTOCOL", "ChannelPortForward", "decode_frame", "encode_frame", "parse_ports"]

log = logging.getLogger("kubelet.portforward")

BINARY_PROTOCOL = "v4.channel.k8s.io"
BASE64_PROTOCOL = "v4.base64.channel.k8s.io"
INBOX = 16  # messages buffered per port before reading the socket waits


def parse_ports(values: list[str]) -> list[int]:
    """The `port` query values (each may list several, comma-separated); ValueError in the kubelet's words."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for item in value.split(","):
            if not item.isdigit() or int(item) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port')
            if int(item) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(item))
    return ports


def encode_frame(channel: int, data: bytes, base64_text: bool) -> bytes | str:
    """One message: the channel byte and the data, or for the base64 protocol the channel digit and base64."""
    if base64_text:
        return str(channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def decode_frame(message: bytes | str) -> tuple[int, bytes] | None:
    """A message's channel and data (None for an empty or undecodable one)."""
    if isinstance(message, str):
        if not message or not message[0].isdigit():
            return None
        try:
            return int(message[0]), base64.b64decode(message[1:], validate=True)
        except ValueError:
            return None
    return (message[0], message[1:]) if message else None


Send = Callable[[bytes | str], Awaitable[None]]  # one WebSocket message (str: a text one)
Receive = Callable[[], Awaitable[bytes | str | None]]  # the next message; None: the client went away


class ChannelPortForward:
    """One WebSocket's forwarding: one connection to the pod per requested port."""

    def __init__(
        self,
        pod: str,
        target: PodTarget,
        ports: list[int],
        *,
        base64_text: bool = False,
        dial_timeout: float = DIAL_TIMEOUT,
    ) -> None:
        self.pod = pod
        self.target = target
        self.ports = ports
        self.base64_text = base64_text
        self.dial_timeout = dial_timeout

    async def serve(self, send_message: Send, receive_message: Receive) -> None:
        """Say each port on its channels, forward them all, and return when every one is done."""

        async def send(channel: int, data: bytes) -> None:
            await send_message(encode_frame(channel, data, self.base64_text))

        async def receive() -> tuple[int, bytes] | None:
            while (message := await receive_message()) is not None:
                if (frame := decode_frame(message)) is not None:
                    return frame
            return None

        for i, port in enumerate(self.ports):
            hello = port.to_bytes(2, "little")
            await send(2 * i, hello)
            await send(2 * i + 1, hello)
        inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(INBOX) for _ in self.ports]
        gone = False

        async def read_socket() -> None:
            nonlocal gone
            while (frame := await receive()) is not None:
                channel, data = frame
                if channel % 2 == 0 and channel // 2 < len(inboxes) and data:
                    await inboxes[channel // 2].put(data)
            gone = True
            for inbox in inboxes:  # nobody will take what is queued: make room for the end
                while not inbox.empty():
                    inbox.get_nowait()
                inbox.put_nowait(b"")

        async def forward(i: int, port: int) -> None:
            async def write(data: bytes) -> None:
                await send(2 * i, data)

            problem = await forward_to_pod(self.target.ip, port, inboxes[i].get, write, lambda: gone, self.dial_timeout)
            if problem and not gone:
                message = f"error forwarding port {port} to pod {self.pod}, uid {self.target.uid}: {problem}"
                log.info("%s", message)
                await send(2 * i + 1, message.encode())

        reading = asyncio.create_task(read_socket())
        try:
            await asyncio.gather(*(forward(i, port) for i, port in enumerate(self.ports)))
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
