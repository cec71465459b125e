"""Answers kept as ready wire messages, and the small question parser of the UDP hot path.

An `Entry` is a response built once with dnspython for a lowercased (qname, qtype): its flag bytes,
its section counts and the bytes after the question. Serving it to a query only takes the query's
ID, its RD/CD bits and its question bytes (so the client's letter case comes back, and compression
pointers into the question stay valid because the name has the same length in any case), plus an
EDNS OPT record when the query had one. Address answers keep up to `MAX_ROTATIONS` rotations of
their records and hand them out in turn (CoreDNS's `loadbalance`).

`parse_question` accepts only the plain shape (a standard query, one IN question, no compression,
at most an EDNS0 OPT record); anything else goes to the dnspython path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from cluster_dns.zone import Answer, Tag

__all__ = [
    "MAX_ROTATIONS",
    "Entry",
    "Question",
    "build_entry",
    "opt_record",
    "parse_question",
    "render",
    "truncated",
]

MAX_ROTATIONS = 16
TC = 0x02
RD = 0x01
CD = 0x10
OPT_DO = b"\x80\x00"
NO_FLAGS = b"\x00\x00"

# (qname in lowercase wire form, qtype, end of the question, EDNS payload size or -1, DO bit)
Question = tuple[bytes, int, int, int, bool]


def parse_question(data: bytes) -> Question | None:
    """The question of a plain standard query (IN class, no compression, optional OPT); else None."""
    n = len(data)
    # QR=0 and opcode QUERY; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1
    if n < 17 or data[2] & 0xF8 or data[4:10] != b"\x00\x01\x00\x00\x00\x00" or data[10]:
        return None
    arcount = data[11]
    i = 12
    while True:
        length = data[i]
        if length == 0:
            break
        if length > 63:
            return None
        i += length + 1
        if i >= n:
            return None
    qend = i + 5
    if qend > n or data[i + 3] != 0 or data[i + 4] != 1:
        return None
    qtype = (data[i + 1] << 8) | data[i + 2]
    name = data[12 : i + 1].lower()
    if arcount == 0:
        return (name, qtype, qend, -1, False) if qend == n else None
    # exactly one OPT record: root owner, type 41, version 0, rdata filling the rest
    if arcount != 1 or n < qend + 11 or data[qend] != 0 or data[qend + 1] != 0 or data[qend + 2] != 41:
        return None
    if data[qend + 6] != 0 or qend + 11 + ((data[qend + 9] << 8) | data[qend + 10]) != n:
        return None
    payload = (data[qend + 3] << 8) | data[qend + 4]
    return name, qtype, qend, payload, bool(data[qend + 7] & 0x80)


def opt_record(payload: int, do: bool) -> bytes:
    """An EDNS0 OPT record advertising `payload` bytes, echoing the DO bit."""
    return b"\x00\x00\x29" + struct.pack("!H", payload) + b"\x00\x00" + (OPT_DO if do else NO_FLAGS) + b"\x00\x00"


@dataclass(slots=True)
class Entry:
    """A response for one (qname, qtype), ready to be stamped with a query's ID, flags and question."""

    f2: int
    f3: int
    counts: bytes
    counts_edns: bytes
    bodies: tuple[bytes, ...]
    rcode: int
    tags: frozenset[Tag] = frozenset()
    turn: int = field(default=0)

    def body(self) -> bytes:
        """The sections after the question, rotating through the address orders."""
        bodies = self.bodies
        if len(bodies) == 1:
            return bodies[0]
        self.turn = turn = (self.turn + 1) % len(bodies)
        return bodies[turn]


def render(entry: Entry, query: bytes, qend: int, opt: bytes | None, limit: int) -> bytes:
    """The response to `query` from `entry`; with TC and no records when it exceeds `limit` bytes."""
    f2 = entry.f2 | (query[2] & RD)
    f3 = entry.f3 | (query[3] & CD)
    if opt is None:
        out = query[:2] + bytes((f2, f3)) + entry.counts + query[12:qend] + entry.body()
    else:
        out = query[:2] + bytes((f2, f3)) + entry.counts_edns + query[12:qend] + entry.body() + opt
    if len(out) > limit:
        return truncated(query, qend, f2, f3, opt)
    return out


def truncated(query: bytes, qend: int, f2: int, f3: int, opt: bytes | None) -> bytes:
    """A truncated response: TC set, the question, no records (the client retries over TCP)."""
    counts = b"\x00\x01\x00\x00\x00\x00" + (b"\x00\x01" if opt else b"\x00\x00")
    return query[:2] + bytes((f2 | TC, f3)) + counts + query[12:qend] + (opt or b"")


def _rotations(answer: list[dns.rrset.RRset]) -> list[list[dns.rrset.RRset]]:
    last = answer[-1] if answer else None
    if last is None or last.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA) or len(last) < 2:
        return [answer]
    items = list(last)
    out = []
    for turn in range(min(len(items), MAX_ROTATIONS)):
        rrset = dns.rrset.RRset(last.name, last.rdclass, last.rdtype)
        rrset.update_ttl(last.ttl)
        for rd in items[turn:] + items[:turn]:
            rrset.add(rd)
        out.append([*answer[:-1], rrset])
    return out


def build_entry(qname: dns.name.Name, qtype: int, answer: Answer) -> Entry:
    """Render a zone answer for (qname, qtype) once, as an authoritative response."""
    bodies = []
    wire = b""
    qlen = len(qname.to_wire()) + 4
    for section in _rotations(answer.answer):
        msg = dns.message.Message(id=0)
        msg.flags = dns.flags.QR | dns.flags.AA | dns.flags.RA
        msg.set_rcode(answer.rcode)
        msg.find_rrset(msg.question, qname, dns.rdataclass.IN, qtype, create=True, force_unique=True)
        msg.answer = section
        msg.authority = list(answer.authority)
        msg.additional = list(answer.additional)
        wire = msg.to_wire()
        bodies.append(wire[12 + qlen :])
    counts = wire[4:12]
    arcount = struct.unpack("!H", counts[6:8])[0]
    return Entry(
        f2=wire[2] & ~RD & 0xFF,
        f3=wire[3] & ~CD & 0xFF,
        counts=counts,
        counts_edns=counts[:6] + struct.pack("!H", arcount + 1),
        bodies=tuple(bodies),
        rcode=answer.rcode,
        tags=frozenset(answer.tags),
    )
