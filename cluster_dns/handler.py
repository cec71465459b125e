"""Turning a query into a response: the cached fast paths, the dnspython path, and forwarding.

`exact` maps the bytes of a UDP query after its ID to the bytes of the response after its ID
(clients repeat the same query bytes: same case, flags and EDNS), so the server answers those
with one dict lookup and one concatenation. `fast()` answers a plain query whose (qname, qtype)
has a cached `Entry` and records its exact form; it returns None for everything else, which then
goes through `answer()`:
parsed by dnspython, looked up in the zone (the result cached when it depends only on the zone),
forwarded upstream when the name is not ours, FORMERR/NOTIMP/BADVERS for malformed or unsupported
queries. `invalidate(tags)` drops the cached answers that depend on what a zone change touched.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from cluster_dns.forward import Forwarder
from cluster_dns.metrics import BUCKETS, DnsMetrics
from cluster_dns.wire import Entry, build_entry, cache_key, opt_record, parse_question, truncated
from cluster_dns.zone import Answer, Tag, Zone

__all__ = ["TCP", "UDP", "DnsHandler"]

log = logging.getLogger("cluster_dns")

UDP, TCP = 0, 1
KUBERNETES, FORWARD, NONE = 0, 1, 2  # the `plugin` label of responses
TCP_LIMIT = 65535
MIN_UDP = 512
CacheKey = bytes
EXACT_PER_ENTRY = 4  # byte-exact forms (case, flags, EDNS) remembered per answer


class DnsHandler:
    """Answers DNS queries from a zone, a cache of wire answers and a forwarder."""

    def __init__(
        self,
        zone: Zone,
        forwarder: Forwarder,
        metrics: DnsMetrics,
        *,
        udp_payload: int = 1232,
        cache_size: int = 50_000,
        exact_size: int = 50_000,
    ) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.metrics = metrics
        self.udp_payload = udp_payload
        self.cache_size = cache_size
        self.cache: dict[CacheKey, Entry] = {}
        self._tagged: dict[Tag, set[CacheKey]] = {}
        # UDP query bytes after the ID -> (response bytes after the ID, the metrics row it counts in)
        self.exact: dict[bytes, tuple[bytes, list[float]]] = {}
        self.exact_size = exact_size
        self._opts = (opt_record(udp_payload, False), opt_record(udp_payload, True))

    # --- the cache ----------------------------------------------------------------------

    def invalidate(self, tags: set[Tag]) -> None:
        """Drop every cached answer that depends on one of `tags`."""
        for tag in tags:
            for key in self._tagged.pop(tag, ()):
                self._evict(key)

    def _evict(self, key: CacheKey) -> None:
        entry = self.cache.pop(key, None)
        if entry is None:
            return
        for exact in entry.exact_keys:
            self.exact.pop(exact, None)
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]

    def _store(self, key: CacheKey, entry: Entry) -> None:
        self._evict(key)
        while len(self.cache) >= self.cache_size:
            self._evict(next(iter(self.cache)))
        self.cache[key] = entry
        for tag in entry.tags:
            self._tagged.setdefault(tag, set()).add(key)

    # --- the fast path ------------------------------------------------------------------

    def _opt(self, query: dns.message.Message) -> bytes | None:
        return self._opts[bool(query.ednsflags & dns.flags.DO)] if query.edns >= 0 else None

    def fast(self, data: bytes, proto: int) -> bytes | None:
        """The response from the cache for a plain query, or None when it needs the full path."""
        start = time.perf_counter()
        q = parse_question(data)
        if q is None:
            return None
        key, qend, payload, do, lowercase = q
        entry = self.cache.get(key)
        if entry is None:
            return None
        limit = TCP_LIMIT if proto else (MIN_UDP if payload < MIN_UDP else payload)
        out = entry.respond(data, qend, payload, do, lowercase, limit)
        row = self.metrics.row(proto, entry.qtype, entry.rcode, KUBERNETES)
        if proto == UDP and len(entry.bodies) == 1 and len(entry.exact_keys) < EXACT_PER_ENTRY:
            # the same query bytes (but the ID) will get the same response bytes (but the ID)
            if len(self.exact) < self.exact_size:
                exact = data[2:]
                self.exact[exact] = (out[2:], row)
                entry.exact_keys.append(exact)
        seconds = time.perf_counter() - start
        row[bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds
        return out

    # --- the full path ------------------------------------------------------------------

    async def answer(self, data: bytes, proto: int) -> bytes | None:
        """The response to any query (None: drop it, as for garbage or a response)."""
        start = time.perf_counter()
        out, qtype, rcode, plugin = await self._answer(data, proto)
        if out is not None:
            self.metrics.observe(proto, qtype, rcode, plugin, time.perf_counter() - start)
        return out

    async def _answer(self, data: bytes, proto: int) -> tuple[bytes | None, int, int, int]:
        try:
            query = dns.message.from_wire(data, ignore_trailing=True)
        except dns.message.ShortHeader:
            return None, 0, 0, NONE
        except Exception:
            return _formerr(data), 0, dns.rcode.FORMERR, NONE
        if query.flags & dns.flags.QR:
            return None, 0, 0, NONE
        if query.opcode() != dns.opcode.QUERY:
            return self._error(query, dns.rcode.NOTIMP), 0, dns.rcode.NOTIMP, NONE
        if len(query.question) != 1:
            return self._error(query, dns.rcode.FORMERR), 0, dns.rcode.FORMERR, NONE
        q = query.question[0]
        if query.edns > 0:
            return self._error(query, dns.rcode.BADVERS), q.rdtype, dns.rcode.BADVERS, NONE
        limit = TCP_LIMIT if proto == TCP else max(MIN_UDP, query.payload if query.edns >= 0 else MIN_UDP)
        ans = self.zone.lookup(q.name, q.rdtype) if q.rdclass == dns.rdataclass.IN else Answer(forward=True)
        if ans.forward:
            out, rcode = await self._forward(data, query, limit)
            return out, q.rdtype, rcode, FORWARD
        lower = dns.name.Name([label.lower() for label in q.name.labels])
        if ans.cacheable:
            entry = build_entry(lower, q.rdtype, ans, self._opts)
            self._store(cache_key(lower.to_wire(), q.rdtype), entry)
            qend = 12 + len(entry.question)
            payload = query.payload if query.edns >= 0 else -1
            do = bool(query.ednsflags & dns.flags.DO)
            out = entry.respond(data, qend, payload, do, False, limit)
            return out, q.rdtype, entry.rcode, KUBERNETES
        return await self._chase(query, ans, limit), q.rdtype, ans.rcode, KUBERNETES

    def _response(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query, our_payload=self.udp_payload)
        response.flags |= dns.flags.RA
        return response

    def _error(self, query: dns.message.Message, rcode: int) -> bytes:
        response = self._response(query)
        if rcode == dns.rcode.BADVERS:
            response.use_edns(0, 0, self.udp_payload)
        response.set_rcode(rcode)
        return response.to_wire()

    async def _forward(self, data: bytes, query: dns.message.Message, limit: int) -> tuple[bytes, int]:
        """The upstream answer (truncated to `limit`), or SERVFAIL when no upstream answered."""
        upstream = await self.forwarder.query(data)
        if upstream is None:
            response = self._response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire(), dns.rcode.SERVFAIL
        rcode = upstream[3] & 0x0F
        if len(upstream) <= limit:
            return upstream, rcode
        qend = 12 + len(query.question[0].name.to_wire()) + 4
        return truncated(data, qend, upstream[2], upstream[3], self._opt(query)), rcode

    async def _chase(self, query: dns.message.Message, ans: Answer, limit: int) -> bytes:
        """An ExternalName answer: the CNAME, then the target's records from upstream."""
        response = self._response(query)
        response.flags |= dns.flags.AA
        response.answer = list(ans.answer)
        q = query.question[0]
        if ans.chase is not None:
            sub = dns.message.make_query(ans.chase, q.rdtype)
            wire = await self.forwarder.query(sub.to_wire())
            if wire is not None:
                try:
                    got = dns.message.from_wire(wire)
                    if got.rcode() == dns.rcode.NOERROR:
                        response.answer.extend(got.answer)
                except dns.exception.DNSException:
                    log.debug("bad upstream answer for %s", ans.chase)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer = []
            response.flags |= dns.flags.TC
            return response.to_wire()


def _formerr(data: bytes) -> bytes:
    """FORMERR echoing only the ID (and opcode) of a query dnspython could not parse."""
    return data[:2] + bytes(((data[2] & 0x78) | 0x80, 0x80 | dns.rcode.FORMERR)) + b"\x00" * 8
