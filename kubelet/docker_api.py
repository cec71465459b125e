"""A small async client of the Docker Engine API over its unix socket (httpx's UDS transport), with
the hijacked stream `docker exec -i` uses; only what the docker runtime needs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import struct
import tarfile
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["API_VERSION", "DockerError", "EngineClient", "ExecStream", "demux_frames", "tar_context"]

API_VERSION = "v1.41"  # Docker 20.10, Debian's docker.io
DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT = 30.0
STDOUT, STDERR = 1, 2


class DockerError(Exception):
    """The engine answered with an error (or did not answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def tar_context(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A build context: {path: (content, mode)} as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def demux_frames(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Split the engine's multiplexed stream (8-byte header: stream, 0, 0, 0, big-endian size) into frames."""
    buf = b""
    async for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            stream, size = buf[0], struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + size:
                break
            yield stream, buf[8 : 8 + size]
            buf = buf[8 + size :]


def _error_message(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("message") or resp.text)
    except ValueError:
        return resp.text.strip() or resp.reason_phrase


class EngineClient:
    """The Engine API at `socket`; every call has a timeout."""

    def __init__(self, socket: str = DEFAULT_SOCKET, timeout: float = TIMEOUT) -> None:
        self.socket = socket
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            # every running container holds two long requests (its wait and its log stream): no cap, or a
            # node's worth of containers would starve the short calls (the transport's limits are the ones used)
            transport=httpx.AsyncHTTPTransport(
                uds=socket, limits=httpx.Limits(max_connections=None, max_keepalive_connections=32)
            ),
            base_url=f"http://docker/{API_VERSION}",
            timeout=timeout,
            trust_env=False,
        )

    def _unreachable(self, e: httpx.HTTPError) -> DockerError:
        return DockerError(0, f"cannot reach the Docker engine at {self.socket}: {type(e).__name__} {e}".strip())

    async def close(self) -> None:
        """Close the connections."""
        await self.http.aclose()

    async def request(self, method: str, path: str, *, timeout: float | None = None, **kw: Any) -> httpx.Response:
        """One call; DockerError for an error answer or no answer."""
        try:
            resp = await self.http.request(method, path, timeout=timeout or self.timeout, **kw)
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e
        if resp.status_code >= 400:
            raise DockerError(resp.status_code, _error_message(resp))
        return resp

    async def ping(self) -> None:
        """DockerError unless the engine answers."""
        await self.request("GET", "/_ping", timeout=5)

    async def image_inspect(self, image: str) -> dict[str, Any] | None:
        """The image, or None if it is not present."""
        try:
            return (await self.request("GET", f"/images/{quote(image, safe='')}/json")).json()
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def pull(self, image: str, timeout: float) -> None:
        """Pull `image` (the whole pull within `timeout`); DockerError with the engine's reason."""
        name, tag = _split_image(image)
        try:
            async with asyncio.timeout(timeout):
                async with self.http.stream(
                    "POST", "/images/create", params={"fromImage": name, "tag": tag}, timeout=timeout
                ) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        raise DockerError(resp.status_code, _error_message(resp))
                    async for line in resp.aiter_lines():
                        if not line.strip():
                            continue
                        with contextlib.suppress(ValueError):
                            msg = json.loads(line)
                            if msg.get("error"):
                                raise DockerError(500, str(msg["error"]))
        except TimeoutError:
            raise DockerError(0, f"pulling {image} did not finish within {int(timeout)}s") from None
        except httpx.HTTPError as e:
            raise self._unreachable(e) from e

    async def build(self, context: bytes, tag: str, timeout: float = 120.0) -> None:
        """Build an image from a tar context (no registry: FROM scratch)."""
        resp = await self.request(
            "POST",
            "/build",
            params={"t": tag, "rm": "1", "forcerm": "1"},
            content=context,
            headers={"Content-Type": "application/x-tar"},
            timeout=timeout,
        )
        for line in resp.text.splitlines():
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if msg.get("error"):
                    raise DockerError(500, str(msg["error"]))

    async def create(self, name: str, body: Mapping[str, Any]) -> str:
        """Create a container; its id."""
        return str((await self.request("POST", "/containers/create", params={"name": name}, json=body)).json()["Id"])

    async def start(self, cid: str) -> None:
        """Start a container."""
        await self.request("POST", f"/containers/{cid}/start")

    async def stop(self, cid: str, grace: float) -> None:
        """SIGTERM, SIGKILL after `grace` seconds."""
        with contextlib.suppress(DockerError):
            await self.request("POST", f"/containers/{cid}/stop", params={"t": int(grace)}, timeout=grace + 30)

    async def remove(self, cid: str) -> None:
        """Remove a container (killing it if it runs); a missing one is fine."""
        try:
            await self.request("DELETE", f"/containers/{cid}", params={"force": "1", "v": "1"})
        except DockerError as e:
            if e.status not in (404, 409):
                raise

    async def inspect(self, cid: str) -> dict[str, Any]:
        """The container's full description."""
        return (await self.request("GET", f"/containers/{cid}/json")).json()

    async def wait(self, cid: str, poll: float = 300.0) -> None:
        """Return once the container is not running (long polls of `poll` seconds; gone counts as not running)."""
        while True:
            try:
                resp = await self.http.post(
                    f"/containers/{cid}/wait",
                    params={"condition": "not-running"},
                    timeout=httpx.Timeout(self.timeout, read=poll),
                )
            except httpx.ReadTimeout:
                continue
            except httpx.HTTPError as e:
                raise self._unreachable(e) from e
            if resp.status_code >= 400 and resp.status_code != 404:
                raise DockerError(resp.status_code, _error_message(resp))
            return

    async def list(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying `labels`."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        resp = await self.request("GET", "/containers/json", params={"all": "1", "filters": json.dumps(filters)})
        return list(resp.json())

    async def logs(self, cid: str) -> AsyncIterator[tuple[int, bytes]]:
        """The container's output from its start, followed until it ends: (stream, data) frames."""
        async with self.http.stream(
            "GET",
            f"/containers/{cid}/logs",
            params={"follow": "1", "stdout": "1", "stderr": "1"},
            timeout=httpx.Timeout(self.timeout, read=None),
        ) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise DockerError(resp.status_code, _error_message(resp))
            async for frame in demux_frames(resp.aiter_bytes()):
                yield frame

    async def exec_create(
        self, cid: str, command: list[str], *, stdin: bool = False, tty: bool = False, env: list[str] | None = None
    ) -> str:
        """Create an exec instance in a running container; its id."""
        body = {
            "Cmd": command,
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "Env": env or [],
        }
        return str((await self.request("POST", f"/containers/{cid}/exec", json=body)).json()["Id"])

    async def exec_run(self, exec_id: str) -> bytes:
        """Start an exec without stdin and collect its output (stdout and stderr in order)."""
        out = bytearray()
        async with self.http.stream(
            "POST", f"/exec/{exec_id}/start", json={"Detach": False, "Tty": False}, timeout=None
        ) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise DockerError(resp.status_code, _error_message(resp))
            async for _stream, data in demux_frames(resp.aiter_bytes()):
                out += data
        return bytes(out)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """The exec's exit code (None while it runs)."""
        info = (await self.request("GET", f"/exec/{exec_id}/json")).json()
        return None if info.get("Running") else int(info.get("ExitCode") or 0)

    async def exec_resize(self, exec_id: str, width: int, height: int) -> None:
        """Set an exec's terminal size."""
        with contextlib.suppress(DockerError):
            await self.request("POST", f"/exec/{exec_id}/resize", params={"w": width, "h": height}, timeout=5)

    async def exec_attach(self, exec_id: str, tty: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Start an exec on a hijacked connection: what is written is its stdin, what is read its output."""
        return await self._hijack(f"/exec/{exec_id}/start", json.dumps({"Detach": False, "Tty": tty}).encode())

    async def attach_stdin(self, cid: str) -> asyncio.StreamWriter:
        """Attach to a running container's stdin (`OpenStdin`) on a hijacked connection: what is written is its
        stdin; closing the connection closes the container's stdin only when it was created `StdinOnce`."""
        _reader, writer = await self._hijack(f"/containers/{cid}/attach?stream=1&stdin=1&stdout=0&stderr=0", b"")
        return writer

    async def _hijack(self, path: str, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """POST `path` asking for the connection itself (the engine's stream protocol after `101 UPGRADED`)."""
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket), self.timeout)
        writer.write(
            f"POST /{API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\n"
            f"Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
        status = int(head.split(b" ", 2)[1])
        if status not in (101, 200):
            writer.close()
            raise DockerError(status, head.decode(errors="replace"))
        return reader, writer


def _split_image(image: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` → (repo, tag or digest); no tag means latest."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    name, sep, tag = image.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return image, "latest"


class ExecStream:
    """An exec on a hijacked connection, shaped like asyncio's Process (stdin, stdout, stderr, wait, kill),
    which is what the kubelet server's exec relay drives."""

    def __init__(
        self, client: EngineClient, exec_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tty: bool
    ) -> None:
        self._client = client
        self._exec_id = exec_id
        self._writer = writer
        self.stdin = _HalfCloser(writer)
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self.returncode: int | None = None
        self._pump = asyncio.create_task(self._demux(reader, tty))

    async def _demux(self, reader: asyncio.StreamReader, tty: bool) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            while data := await reader.read(64 * 1024):
                yield data

        try:
            if tty:
                async for data in chunks():
                    self.stdout.feed_data(data)
            else:
                async for stream, data in demux_frames(chunks()):
                    target = self.stderr if stream == STDERR else self.stdout
                    assert target is not None
                    target.feed_data(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self.stdout.feed_eof()
            if self.stderr is not None:
                self.stderr.feed_eof()

    async def wait(self) -> int:
        """Wait for the command to end; its exit code."""
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        for _ in range(50):  # the engine records the exit code just after the stream closes
            code = await self._client.exec_exit_code(self._exec_id)
            if code is not None:
                self.returncode = code
                return code
            await asyncio.sleep(0.1)
        self.returncode = 137
        return self.returncode

    def kill(self) -> None:
        """Drop the connection (the engine has no way to signal an exec)."""
        self._pump.cancel()
        self._writer.close()
        self.returncode = self.returncode if self.returncode is not None else 137

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size."""
        asyncio.get_running_loop().create_task(self._client.exec_resize(self._exec_id, width, height))


class _HalfCloser:
    """The exec's stdin: closing it half-closes the connection (the command sees EOF, output keeps coming)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._closed = False

    def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin."""
        self._writer.write(data)

    async def drain(self) -> None:
        """Wait until the bytes are sent."""
        await self._writer.drain()

    def is_closing(self) -> bool:
        """Whether stdin was closed."""
        return self._closed or self._writer.is_closing()

    def close(self) -> None:
        """EOF on the command's stdin."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError, RuntimeError):
                if self._writer.can_write_eof():
                    self._writer.write_eof()
