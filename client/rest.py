"""`ApiClient`: async REST calls for every resource in the table, with timeouts, retries and typed errors.

Guarantees:
- every call has a timeout (the config's, or a per-call one); a watch's read timeout follows
  its `timeoutSeconds` (see `client.watch`);
- retries are bounded (`RetryPolicy.max_attempts`) with exponential backoff and jitter; they happen
  when the request surely did not reach the server (connect errors, any verb), on other transport
  errors for reads only, on 429, and on 5xx that carry `Retry-After` (never waiting less than asked);
- any non-2xx answer raises `apimachinery.errors.StatusError` built from the `Status` body
  (code, reason, message, details), so callers test `e.code == 404` as with client-go's helpers;
  an unreachable server raises `httpx.TransportError` once retries are spent.
Requests are built by the pure functions of `client.request`; this module only sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from apimachinery.errors import StatusError
from apimachinery.resources import ResourceInfo
from client.backoff import Backoff
from client.config import Config, TokenAuth
from client.request import (
    JSON,
    DeleteOptions,
    Obj,
    PatchType,
    Request,
    Selectors,
    create_request,
    delete_collection_request,
    delete_request,
    get_request,
    list_request,
    patch_request,
    resource,
    update_request,
)
from client.transport import HeaderTriple, KeepAliveTransport, headers_of, read_with_head

__all__ = ["ApiClient", "RetryPolicy", "status_error"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
Timeout = float | httpx.Timeout | None
"""Seconds for the whole call, an httpx.Timeout, or None for the config's default."""
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"
"""Characters a request path keeps as they are (what is already percent-encoded stays so)."""
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_EMPTY_BODY_LENGTH = ("POST", "PUT", "PATCH")  # methods httpx sends `Content-Length: 0` for without a body
_PLAIN_TARGET = re.compile(r"(?:[A-Za-z0-9/:@!$&'()*+,;=~._-]|%[0-9A-Fa-f]{2})*")
"""A path or query httpx keeps exactly as given (no character it would percent-encode)."""


def _plain_reference(base: httpx.URL) -> Any:
    """httpx's parsed form of `base` if a URL can be made from it by replacing path and query (checked
    against `copy_with` once), else None: then every URL is parsed by httpx."""
    try:
        ref = base._uri_reference
        target = "/api/v1/namespaces/a%20b/pods/x:y"
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = type(ref)(*ref[:4], target, "watch=1&labelSelector=a%3Db", ref[6])
        if url == base.copy_with(raw_path=(target + "?watch=1&labelSelector=a%3Db").encode()):
            return ref
    except Exception:  # another httpx: its own way
        pass
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: at most `max_attempts` tries in all."""

    max_attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.2, cap=5.0))
    max_retry_after: float = 30.0


def status_error(resp: httpx.Response) -> StatusError:
    """The StatusError for a non-2xx response: from its Status body, else from the HTTP code."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = orjson.loads(resp.content)
    code = resp.status_code
    if isinstance(body, dict) and body.get("kind") == "Status":
        return StatusError(
            int(body.get("code") or code),
            str(body.get("reason") or _REASONS.get(code, "Unknown")),
            str(body.get("message") or resp.reason_phrase),
            dict(body.get("details") or {}),
        )
    text = resp.text.strip()[:1024] if resp.content else ""
    return StatusError(code, _REASONS.get(code, "Unknown"), text or resp.reason_phrase)


@functools.lru_cache(maxsize=64)
def _seconds_timeout(total: float) -> httpx.Timeout:
    """The httpx.Timeout for a whole call of `total` seconds (connecting takes at most 10 s of it)."""
    return httpx.Timeout(total, connect=min(total, 10.0))


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class ApiClient:
    """An async client of one API server; use as `async with ApiClient(config) as api:`."""

    def __init__(
        self,
        config: Config | str,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "tinykube-client",
    ) -> None:
        self.config = Config.from_flags(config) if isinstance(config, str) else config
        self.retry = retry or RetryPolicy()
        self._default_timeout = _seconds_timeout(self.config.timeout)
        self._default_extensions = {"timeout": self._default_timeout.as_dict()}
        if transport is None:
            tls = self.config.ssl_context() if self.config.uses_tls else None
            transport = KeepAliveTransport(tls)
        # requests are built here and handed to the transport: one server, fixed headers, no cookies or
        # redirects, so httpx.AsyncClient's per-request merging of URLs, headers and cookies is not needed
        self._transport = transport
        self._base = httpx.URL(self.config.server)
        self._host = self._base.netloc
        self._prefix = self._base.raw_path.rstrip(b"/").decode("ascii")
        self._base_ref = _plain_reference(self._base)
        self._auth = self.config.auth()
        self._host_header: HeaderTriple = (b"Host", b"host", self._host)
        self._headers: list[HeaderTriple] = [
            (b"User-Agent", b"user-agent", user_agent.encode()),
            (b"Accept", b"accept", JSON.encode()),
            (b"Accept-Encoding", b"accept-encoding", b"gzip, deflate"),
        ]
        self._content_types: dict[str, HeaderTriple] = {}

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    def _timeout(self, timeout: Timeout) -> httpx.Timeout:
        if isinstance(timeout, httpx.Timeout):
            return timeout
        return self._default_timeout if timeout is None else _seconds_timeout(timeout)

    # --- sending -----------------------------------------------------------------------

    def _build(self, req: Request, timeout: Timeout) -> httpx.Request:
        path, _, query = req.path.partition("?")
        plain = _PLAIN_TARGET.fullmatch(path) is not None  # then quoting would keep it as it is
        if not plain:
            path = quote(path, safe=_PATH_SAFE)
            plain = _PLAIN_TARGET.fullmatch(path) is not None
        if req.params:
            query = "&".join(q for q in (query, str(httpx.QueryParams(req.params))) if q)
        # the headers in the order httpx.Request(content=...) sends them, as httpx.Headers keeps them
        headers = [self._host_header]
        content = b""
        if req.body is None and req.method in _EMPTY_BODY_LENGTH:
            headers.append((b"Content-Length", b"content-length", b"0"))
        headers += self._headers
        if req.body is not None:
            content = orjson.dumps(req.body)
            headers.append(self._content_type(req.content_type))
            headers.append((b"Content-Length", b"content-length", b"%d" % len(content)))
        if isinstance(self._auth, TokenAuth):
            if (bearer := self._auth.header()) is not None:
                headers.append((b"Authorization", b"authorization", bearer))
        extensions = self._default_extensions if timeout is None else {"timeout": self._timeout(timeout).as_dict()}
        # given a stream, httpx.Request takes the headers as they are (with content= it derives Host and
        # Content-Length itself); the URL is made without parsing it again (`_url`)
        request = httpx.Request(
            req.method,
            self._url(path, query, plain),
            headers=headers_of(headers),
            stream=httpx.ByteStream(content),
            extensions=extensions,
        )
        request._content = content  # what request.read() sets from the ByteStream
        if self._auth is not None and not isinstance(self._auth, TokenAuth):
            request = next(iter(self._auth.auth_flow(request)))
        return request

    def _content_type(self, content_type: str) -> HeaderTriple:
        header = self._content_types.get(content_type)
        if header is None:
            header = self._content_types[content_type] = (b"Content-Type", b"content-type", content_type.encode())
        return header

    def _url(self, path: str, query: str, plain: bool) -> httpx.URL:
        """The server's URL with this (percent-encoded) path and query, as `URL.copy_with(raw_path=...)`
        makes it; without parsing it again when httpx would keep the target as it is (`plain`: no character
        of `path` that it would percent-encode)."""
        base = self._base_ref
        plain = plain and "/." not in path  # httpx drops `.` and `..` segments
        if base is not None and plain and (not query or _PLAIN_TARGET.fullmatch(query)):
            url = httpx.URL.__new__(httpx.URL)
            url._uri_reference = type(base)(*base[:4], self._prefix + path, query or None, base[6])
            return url
        target = self._prefix + path + ("?" + query if query else "")
        return self._base.copy_with(raw_path=target.encode())

    def _delay(self, req: Request, attempt: int, resp: httpx.Response | None, err: Exception | None) -> float | None:
        """Seconds to wait before retrying, or None when this outcome must not be retried."""
        if attempt + 1 >= self.retry.max_attempts:
            return None
        backoff = self.retry.backoff.delay(attempt)
        if err is not None:
            retryable = isinstance(err, _NOT_SENT) or req.retry_on_transport_error
            return backoff if retryable else None
        assert resp is not None
        after = _retry_after(resp)
        if resp.status_code == 429 or (resp.status_code >= 500 and after is not None):
            return min(max(after or 0.0, backoff), self.retry.max_retry_after)
        return None

    async def _exchange(self, request: httpx.Request, stream: bool) -> httpx.Response:
        """One round trip on the transport; unless `stream`, the body is read (and the connection freed)."""
        resp = await self._transport.handle_async_request(request)
        resp.request = request
        if not stream:
            if not read_with_head(resp):
                try:
                    await resp.aread()
                finally:
                    await resp.aclose()
        return resp

    async def _send(self, req: Request, timeout: Timeout, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                resp = await self._exchange(self._build(req, timeout), stream)
            except httpx.TransportError as e:
                delay = self._delay(req, attempt, None, e)
                if delay is None:
                    raise
            else:
                if resp.is_success:
                    return resp
                if stream:
                    await resp.aread()
                    await resp.aclose()
                delay = self._delay(req, attempt, resp, None)
                if delay is None:
                    raise status_error(resp)
            await asyncio.sleep(delay)
            attempt += 1

    async def send(self, req: Request, *, timeout: Timeout = None) -> httpx.Response:
        """Send a prepared request with retries; raise StatusError on a non-2xx answer."""
        return await self._send(req, timeout, stream=False)

    @contextlib.asynccontextmanager
    async def stream(self, req: Request, *, timeout: Timeout = None) -> AsyncIterator[httpx.Response]:
        """Open a streaming response (a watch); the body is read by the caller and closed on exit."""
        resp = await self._send(req, timeout, stream=True)
        try:
            yield resp
        finally:
            await resp.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = JSON,
        timeout: Timeout = None,
    ) -> httpx.Response:
        """A raw call on any path (same retries and errors as the typed helpers)."""
        return await self.send(Request(method, path, dict(params or {}), body, content_type), timeout=timeout)

    async def _json(self, req: Request, timeout: Timeout = None) -> Obj:
        resp = await self._send(req, timeout, stream=False)
        data = orjson.loads(resp.content)
        if not isinstance(data, dict):
            raise StatusError(500, "InternalError", f"expected a JSON object from {req.method} {req.path}")
        return data

    # --- typed helpers -----------------------------------------------------------------

    @staticmethod
    def resource(name: str | ResourceInfo) -> ResourceInfo:
        """Resolve `pods`, `deploy`, `Lease`, `leases.coordination.k8s.io` (or pass a ResourceInfo through)."""
        return name if isinstance(name, ResourceInfo) else resource(name)

    async def get(
        self, res: ResourceInfo | str, name: str, namespace: str | None = None, *, resource_version: str = ""
    ) -> Obj:
        """Read one object."""
        return await self._json(get_request(self.resource(res), name, namespace, resource_version))

    async def list(
        self,
        res: ResourceInfo | str,
        namespace: str | None = None,
        *,
        selectors: Selectors | None = None,
        limit: int | None = None,
        continue_token: str = "",
        resource_version: str = "",
    ) -> Obj:
        """One `<Kind>List` page; `metadata.continue` is set when more pages remain."""
        req = list_request(self.resource(res), namespace, selectors, limit, continue_token, resource_version)
        return await self._json(req)

    async def pages(
        self,
        res: ResourceInfo | str,
        namespace: str | None = None,
        *,
        selectors: Selectors | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[Obj]:
        """Every page of a list, following continue tokens (all pages are one consistent snapshot)."""
        token = ""
        while True:
            page = await self.list(res, namespace, selectors=selectors, limit=page_size, continue_token=token)
            yield page
            token = (page.get("metadata") or {}).get("continue", "")
            if not token:
                return

    async def list_all(
        self,
        res: ResourceInfo | str,
        namespace: str | None = None,
        *,
        selectors: Selectors | None = None,
        page_size: int = 500,
    ) -> Obj:
        """The whole list, fetched in pages; if a continue token expires (410), one unpaged list instead."""
        items: list[Obj] = []
        first: Obj | None = None
        try:
            async for page in self.pages(res, namespace, selectors=selectors, page_size=page_size):
                first = first or page
                items.extend(page.get("items") or [])
        except StatusError as e:
            if e.code != 410 or first is None:
                raise
            return await self.list(res, namespace, selectors=selectors)
        assert first is not None
        meta = {k: v for k, v in (first.get("metadata") or {}).items() if k not in ("continue", "remainingItemCount")}
        return {**first, "metadata": meta, "items": items}

    async def create(
        self,
        res: ResourceInfo | str,
        obj: Obj,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """Create an object; 409 AlreadyExists if the name is taken."""
        return await self._json(create_request(self.resource(res), obj, namespace, dry_run, field_manager))

    async def update(
        self,
        res: ResourceInfo | str,
        obj: Obj,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """Replace an object (PUT); 409 Conflict if its resourceVersion is stale."""
        req = update_request(self.resource(res), obj, namespace, "", dry_run, field_manager)
        return await self._json(req)

    async def update_status(
        self,
        res: ResourceInfo | str,
        obj: Obj,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """Replace an object's status through the /status subresource."""
        req = update_request(self.resource(res), obj, namespace, "status", dry_run, field_manager)
        return await self._json(req)

    async def patch(
        self,
        res: ResourceInfo | str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Obj:
        """Patch an object: merge (default), strategic, JSON patch, or server-side apply."""
        req = patch_request(
            self.resource(res), name, patch, namespace, patch_type, subresource, dry_run, field_manager, force
        )
        return await self._json(req)

    async def delete(
        self,
        res: ResourceInfo | str,
        name: str,
        namespace: str | None = None,
        *,
        options: DeleteOptions | None = None,
    ) -> Obj:
        """Delete an object; the answer is the object (possibly marked for deletion) or a Status."""
        return await self._json(delete_request(self.resource(res), name, namespace, options))

    async def delete_collection(
        self,
        res: ResourceInfo | str,
        namespace: str | None = None,
        *,
        selectors: Selectors | None = None,
        options: DeleteOptions | None = None,
    ) -> Obj:
        """Delete every selected object of a collection; the answer lists what was deleted."""
        return await self._json(delete_collection_request(self.resource(res), namespace, selectors, options))
