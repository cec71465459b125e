"""The dashboard's way to the API: a streaming reverse proxy that forwards the page's own
`Authorization` header, so the page reads and acts with exactly the rights of its user.

Two routes use it:
- `/k8s/{path}` → `{server}/{path}` for any method: the body streams up, the answer streams down
  (a watch or `pods/log?follow=true` flows through as it is produced).
- `/k8s-watch?w=PATH&w=PATH…` carries several apiserver watches on one response. A browser gives
  an HTTP/1.1 origin six connections; one watch per resource kind would use them all and leave
  none for the page's requests. Each `w` is opened as its own apiserver watch with the caller's
  `Authorization`; every line comes back tagged with its index: `{"i":0,"event":{…}}`. When one
  watch ends (`{"i":0,"end":true}`) or fails (`{"i":0,"code":410,"status":{…}}`), the whole
  response ends, and the page resumes every watch from the resourceVersion it last saw.

The proxy has no credentials of its own: a request without `Authorization` reaches the apiserver
anonymously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
from prometheus_client import Counter, Gauge
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

__all__ = ["ApiProxy", "ProxyOptions"]

log = logging.getLogger("dashboard.proxy")

# Request headers passed up to the apiserver; everything else (cookies included) stays behind.
FORWARD_REQUEST = ("authorization", "accept", "content-type", "content-length")
# Response headers passed back to the page.
FORWARD_RESPONSE = ("content-type", "warning", "retry-after", "audit-id")
# Only the API's own paths go through; /k8s/ is not a way to reach anything else on the server.
API_PREFIXES = ("api", "apis", "version")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

PROXIED = Counter(
    "dashboard_proxy_requests_total", "Requests the dashboard passed to the apiserver.", ["method", "code"]
)
STREAMS = Gauge("dashboard_proxy_streams", "Proxied responses being streamed now (watches, followed logs).")
WATCHES = Gauge("dashboard_watches", "Apiserver watches open for pages through /k8s-watch.")


@dataclass(frozen=True)
class ProxyOptions:
    """Limits of the proxy."""

    connect_timeout: float = 5.0
    # reads of an ordinary request; a watch or a followed log waits for the server as long as it takes
    read_timeout: float = 60.0
    max_connections: int = 200
    max_body: int = 3 * 1024 * 1024
    max_watches: int = 32
    watch_queue: int = 256


def _status(code: int, reason: str, message: str) -> Response:
    """A `Status` error answer in the API's own shape."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    body |= {"reason": reason, "code": code}
    return Response(orjson.dumps(body), status_code=code, media_type="application/json")


def _is_stream(query: str) -> bool:
    params = dict(parse_qsl(query))
    return params.get("watch") in ("1", "true") or params.get("follow") == "true"


def _api_path(path: str) -> bool:
    segments = path.split("/")
    return segments[0] in API_PREFIXES and ".." not in segments and "" not in segments[:-1]


class ApiProxy:
    """A pooled httpx client on the apiserver that forwards requests with the caller's credentials."""

    def __init__(self, server: str, verify: object = True, options: ProxyOptions | None = None) -> None:
        self.options = options or ProxyOptions()
        o = self.options
        self.server = server.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.server,
            verify=verify,  # type: ignore[arg-type]
            timeout=httpx.Timeout(o.read_timeout, connect=o.connect_timeout),
            limits=httpx.Limits(max_connections=o.max_connections, max_keepalive_connections=20),
            headers={"User-Agent": "tinykube-dashboard"},
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _timeout(self, streaming: bool) -> httpx.Timeout:
        o = self.options
        return httpx.Timeout(None if streaming else o.read_timeout, connect=o.connect_timeout)

    async def forward(self, request: Request) -> Response:
        """`/k8s/{path}`: pass the request to the apiserver and stream its answer back."""
        path = request.path_params["path"]
        if not _api_path(path):
            return _status(404, "NotFound", f"the dashboard proxies only the API (/api, /apis), not /{path}")
        if request.method not in SAFE_METHODS and not _same_origin(request):
            return _status(403, "Forbidden", "cross-site request refused by the dashboard")
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.options.max_body:
            return _status(413, "RequestEntityTooLarge", "request body too large")
        body = await request.body()
        if len(body) > self.options.max_body:
            return _status(413, "RequestEntityTooLarge", "request body too large")
        headers = {k: v for k in FORWARD_REQUEST if (v := request.headers.get(k)) is not None}
        query = request.url.query
        streaming = request.method == "GET" and _is_stream(query)
        upstream = self._http.build_request(
            request.method,
            "/" + path + (f"?{query}" if query else ""),
            headers=headers,
            content=body or None,
            timeout=self._timeout(streaming),
        )
        try:
            answer = await self._http.send(upstream, stream=True)
        except httpx.TimeoutException:
            PROXIED.labels(request.method, "504").inc()
            return _status(504, "Timeout", f"the apiserver at {self.server} did not answer in time")
        except httpx.HTTPError as e:
            PROXIED.labels(request.method, "502").inc()
            log.warning("apiserver unreachable: %s", e)
            return _status(502, "ServiceUnavailable", f"the apiserver at {self.server} is unreachable: {e}")
        PROXIED.labels(request.method, str(answer.status_code)).inc()
        out_headers = {k: v for k in FORWARD_RESPONSE if (v := answer.headers.get(k)) is not None}
        out_headers["cache-control"] = "no-store"
        return StreamingResponse(
            self._relay(answer),
            status_code=answer.status_code,
            headers=out_headers,
            background=BackgroundTask(answer.aclose),
        )

    async def _relay(self, answer: httpx.Response) -> AsyncIterator[bytes]:
        STREAMS.inc()
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.HTTPError as e:  # the apiserver went away mid-stream: end the page's stream too
            log.info("stream from the apiserver ended: %s", e)
        finally:
            STREAMS.dec()
            await answer.aclose()

    async def watch_many(self, request: Request) -> Response:
        """`/k8s-watch?w=…`: several apiserver watches, merged into one stream of tagged lines."""
        paths = request.query_params.getlist("w")
        if not paths:
            return _status(400, "BadRequest", "name at least one watch with ?w=/api/v1/pods?resourceVersion=…")
        if len(paths) > self.options.max_watches:
            return _status(400, "BadRequest", f"at most {self.options.max_watches} watches on one stream")
        urls = []
        for p in paths:
            parts = urlsplit(p)
            if parts.scheme or parts.netloc or not _api_path(parts.path.lstrip("/")):
                return _status(400, "BadRequest", f"not an API list path: {p}")
            query = dict(parse_qsl(parts.query)) | {"watch": "1"}
            urls.append(f"{parts.path}?{urlencode(query)}")
        auth = request.headers.get("authorization")
        headers = {"Accept": "application/json"} | ({"Authorization": auth} if auth else {})
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.options.watch_queue)
        tasks = [asyncio.create_task(self._watch_one(i, url, headers, queue)) for i, url in enumerate(urls)]
        return StreamingResponse(
            self._merge(queue, tasks),
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    async def _watch_one(self, i: int, url: str, headers: dict[str, str], queue: asyncio.Queue[bytes | None]) -> None:
        """Copy one apiserver watch into `queue`, each line tagged with `i`; `None` after its last line."""
        tag = b'{"i":%d,' % i
        WATCHES.inc()
        try:
            async with self._http.stream("GET", url, headers=headers, timeout=self._timeout(True)) as answer:
                PROXIED.labels("WATCH", str(answer.status_code)).inc()
                if answer.status_code != 200:
                    status = (await answer.aread()).strip() or b"{}"
                    last = tag + b'"code":%d,"status":' % answer.status_code + status + b"}\n"
                else:
                    async for line in answer.aiter_lines():
                        if line.strip():
                            await queue.put(tag + b'"event":' + line.encode() + b"}\n")
                    last = tag + b'"end":true}\n'
        except httpx.HTTPError as e:
            message = orjson.dumps(f"watch {url} failed: {e}")
            last = tag + b'"code":502,"status":{"kind":"Status","code":502,"message":' + message + b"}}\n"
        finally:
            WATCHES.dec()
        await queue.put(last)
        await queue.put(None)

    async def _merge(self, queue: asyncio.Queue[bytes | None], tasks: list[asyncio.Task[None]]) -> AsyncIterator[bytes]:
        STREAMS.inc()
        try:
            yield b'{"open":true}\n'  # the page knows every watch is registered once it reads this
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), 30)
                except TimeoutError:
                    yield b"\n"  # keeps idle connections (and their proxies) from timing out
                    continue
                if item is None:
                    # the first watch to end ends the response; drain lines already queued (its terminal line)
                    while not queue.empty():
                        rest = queue.get_nowait()
                        if rest is not None:
                            yield rest
                    return
                yield item
        finally:
            STREAMS.dec()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from the dashboard's own page (not another site)."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")
