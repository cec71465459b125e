"""A small HTTPS admission webhook server for tests: a throwaway CA and a serving certificate made
with `cryptography`, an asyncio TLS listener speaking just enough HTTP/1.1 (keep-alive, one JSON
POST at a time), and a handler that turns each AdmissionReview into an answer. Every review it
receives is kept, so tests can look at what the apiserver sent."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Review = dict[str, Any]
Handler = Callable[[Review], Awaitable[dict[str, Any]] | dict[str, Any]]


@dataclass(frozen=True)
class Pki:
    """A CA (PEM) and a serving certificate and key signed by it (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """The CA as a webhook's clientConfig.caBundle (base64 PEM)."""
        return base64.b64encode(self.ca_pem).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(dns_names: list[str], ips: list[str]) -> Pki:
    """A fresh CA and a certificate for these DNS names and IP addresses."""
    now = dt.datetime.now(dt.UTC)
    ca_name = f"webhook-test-ca-{uuid.uuid4().hex[:8]}"  # distinct CAs never share a subject
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0] if dns_names else ips[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Pki(ca.public_bytes(pem), cert.public_bytes(pem), key_pem)


def allow(review: Review, **response: Any) -> dict[str, Any]:
    """An AdmissionReview v1 answer to `review` (allowed unless the caller says otherwise)."""
    body = {"uid": review["request"]["uid"], "allowed": True, **response}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": body}


def deny(review: Review, message: str, code: int = 403) -> dict[str, Any]:
    """A refusal carrying a Status."""
    return allow(review, allowed=False, status={"code": code, "message": message})


def json_patch(review: Review, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """An allowing answer with a base64 JSONPatch."""
    return allow(review, patchType="JSONPatch", patch=base64.b64encode(orjson.dumps(ops)).decode())


@dataclass
class WebhookServer:
    """One TLS listener on 127.0.0.1; `handler` answers each review (by path: `/mutate`, `/validate`...)."""

    pki: Pki
    handler: Callable[[str, Review], Awaitable[dict[str, Any]] | dict[str, Any]]
    host: str = "127.0.0.1"
    port: int = 0
    reviews: list[tuple[str, Review]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as d:
            cert, key = Path(d, "tls.crt"), Path(d, "tls.key")
            cert.write_bytes(self.pki.cert_pem)
            key.write_bytes(self.pki.key_pem)
            ctx.load_cert_chain(cert, key)
        return ctx

    async def start(self) -> WebhookServer:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self._context())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                # abort, not close: a TLS close waits (30 s) for the client's close_notify, and the
                # apiserver keeps its pooled connection open without reading
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def url(self, path: str) -> str:
        """https://127.0.0.1:<port><path>."""
        return f"https://{self.host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = request_line.split(" ")[1].split("?")[0]
                review = orjson.loads(body)
                self.reviews.append((path, review))
                answer = self.handler(path, review)
                if asyncio.iscoroutine(answer):
                    answer = await answer
                payload = orjson.dumps(answer)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def webhook_server(
    handler: Callable[[str, Review], Awaitable[dict[str, Any]] | dict[str, Any]],
    dns_names: list[str] | None = None,
) -> AsyncIterator[WebhookServer]:
    """A running webhook server whose certificate names 127.0.0.1 and `dns_names`."""
    server = await WebhookServer(make_pki(dns_names or [], ["127.0.0.1"]), handler).start()
    try:
        yield server
    finally:
        await server.stop()
