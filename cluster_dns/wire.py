"""Answers kept as ready wire messages, and the small question parser of the UDP hot path.

An `Entry` is a response built once with dnspython for a lowercased (qname, qtype): its flag bytes,
its section counts and the bytes after the question. Serving it to a query only takes the query's
ID, its RD/CD bits and its question bytes (so the client's letter case comes back, and compression
pointers into the question stay valid because the name has the same length in any case), plus an
EDNS OPT record when the query had one. For a lowercase question, the bytes after the ID are kept
per flag combination, so a hit is one dict lookup and one concatenation. Address answers keep up
to `MAX_ROTATIONS` rotations of their records and hand them out in turn (CoreDNS's `loadbalance`).

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
    "cache_key",
    "opt_record",
    "parse_question",
    "truncated",
]

MAX_ROTATIONS = 16
TC = 0x02
RD = 0x01
CD = 0x10
OPT_DO = b"\x80\x00"
NO_FLAGS = b"\x00\x00"

PLAIN_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QD 1, AN 0, NS 0, AR 0
EDNS_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x01"  # ... AR 1 (the OPT record)

# (cache key, end of the question, EDNS payload size or -1, DO bit, whether the name was lowercase)
Question = tuple[bytes, int, int, bool, bool]


def cache_key(name_wire: bytes, qtype: int, qclass: int = 1) -> bytes:
    """The cache key of a question: the lowercase wire name, then type and class."""
    return name_wire.lower() + struct.pack("!HH", qtype, qclass)


def parse_question(data: bytes) -> Question | None:
    """The question of a plain standard query (no compression, optional OPT record); else None.

    The name is taken up to the first zero byte without walking its labels: the key only ever
    matches a cached key, and cached keys are well-formed names, so a key that matches one is one.
    """
    n = len(data)
    if n < 17 or data[2] & 0xF8:  # QR=0, opcode QUERY
        return None
    i = data.find(b"\x00", 12)
    qend = i + 5
    if i < 0 or qend > n:
        return None
    name = data[12 : i + 1]
    low = name.lower()
    key = low + data[i + 1 : qend]
    counts = data[4:12]
    if counts == PLAIN_COUNTS:
        return (key, qend, -1, False, low == name) if qend == n else None
    # exactly one OPT record: root owner, type 41, version 0, rdata filling the rest
    if counts != EDNS_COUNTS or n < qend + 11 or data[qend : qend + 3] != b"\x00\x00\x29" or data[qend + 6]:
        return None
    if qend + 11 + ((data[qend + 9] << 8) | data[qend + 10]) != n:
        return None
    return key, qend, (data[qend + 3] << 8) | data[qend + 4], bool(data[qend + 7] & 0x80), low == name


def opt_record(payload: int, do: bool) -> bytes:
    """An EDNS0 OPT record advertising `payload` bytes, echoing the DO bit."""
    return b"\x00\x00\x29" + struct.pack("!H", payload) + b"\x00\x00" + (OPT_DO if do else NO_FLAGS) + b"\x00\x00"


@dataclass(slots=True, eq=False)
class Entry:
    """A response for one (qname, qtype), ready to be stamped with a query's ID, flags and question.

    `question` is the lowercase question; `tails` caches, per RD/CD/EDNS/DO combination, everything
    after the ID for a query whose question is exactly that (the common case), when the answer has
    a single record order.
    """

    f2: int
    f3: int
    counts: bytes
    counts_edns: bytes
    bodies: tuple[bytes, ...]
    rcode: int
    qtype: int
    question: bytes
    opts: tuple[bytes, bytes]  # the OPT record we send, without and with DO
    tags: frozenset[Tag] = frozenset()
    turn: int = 0
    tails: dict[int, bytes] = field(default_factory=dict)
    exact_keys: list[bytes] = field(default_factory=list)  # the handler's byte-exact keys for it

    def _body(self) -> bytes:
        bodies = self.bodies
        if len(bodies) == 1:
            return bodies[0]
        self.turn = turn = (self.turn + 1) % len(bodies)
        return bodies[turn]

    def _tail(self, variant: int, question: bytes, body: bytes) -> bytes:
        flags = bytes((self.f2 | (variant & RD), self.f3 | (variant & CD)))
        if variant & 0x100:
            return flags + self.counts_edns + question + body + self.opts[(variant >> 9) & 1]
        return flags + self.counts + question + body

    def respond(self, query: bytes, qend: int, payload: int, do: bool, lowercase: bool, limit: int) -> bytes:
        """The response to `query`; TC and no records when it exceeds `limit` bytes."""
        variant = (query[2] & RD) | (query[3] & CD)
        if payload >= 0:
            variant |= 0x300 if do else 0x100
        if lowercase and len(self.bodies) == 1:
            tail = self.tails.get(variant)
            if tail is None:
                tail = self.tails[variant] = self._tail(variant, self.question, self.bodies[0])
        else:
            tail = self._tail(variant, query[12:qend], self._body())
        if len(tail) + 2 > limit:
            opt = self.opts[do] if payload >= 0 else None
            return truncated(query, qend, self.f2 | (variant & RD), self.f3 | (variant & CD), opt)
        return query[:2] + tail


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


def build_entry(qname: dns.name.Name, qtype: int, answer: Answer, opts: tuple[bytes, bytes]) -> Entry:
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
        wire = msg.to_wire(want_shuffle=False)
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
        qtype=qtype,
        question=wire[12 : 12 + qlen],
        opts=opts,
        tags=frozenset(answer.tags),
    )
