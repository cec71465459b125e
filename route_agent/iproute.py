"""The kernel's route table through the `ip` command, run asynchronously with a timeout."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Sequence

__all__ = ["PROTO", "IpRoute", "IpRouteError"]

# the routes' protocol number (rtnetlink's `proto`): marks them as this agent's (flannel-style)
PROTO = 77


class IpRouteError(RuntimeError):
    """An `ip` command failed."""


class IpRoute:
    """Lists, replaces and deletes this agent's routes (those with protocol `proto`)."""

    def __init__(self, argv: Sequence[str] = ("ip",), proto: int = PROTO, timeout: float = 5.0) -> None:
        self.argv = tuple(argv)  # e.g. ("ip", "-n", "<netns>") for another network namespace
        self.proto = proto
        self.timeout = timeout

    async def _run(self, *args: str) -> str:
        cmd = " ".join((*self.argv, *args))
        proc = await asyncio.create_subprocess_exec(
            *self.argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise IpRouteError(f"{cmd}: no answer within {self.timeout}s") from None
        if proc.returncode != 0:
            raise IpRouteError(f"{cmd}: {err.decode().strip() or f'exit {proc.returncode}'}")
        return out.decode()

    async def list(self) -> dict[str, str]:
        """destination → gateway of this agent's IPv4 routes."""
        text = await self._run("-j", "-4", "route", "show", "proto", str(self.proto))
        out = {}
        for route in json.loads(text or "[]"):
            dst, gw = route.get("dst", ""), route.get("gateway", "")
            if dst and gw:
                out[str(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32"))] = gw
        return out

    async def replace(self, dst: str, gateway: str) -> None:
        """Route `dst` via `gateway` (adding or changing the route)."""
        await self._run("route", "replace", dst, "via", gateway, "proto", str(self.proto))

    async def delete(self, dst: str) -> None:
        """Remove the agent's route to `dst`."""
        await self._run("route", "del", dst, "proto", str(self.proto))
