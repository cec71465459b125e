"""The cluster zone: Services, EndpointSlices and Namespaces held as small records, answered the way
CoreDNS's kubernetes plugin answers them (`pods insecure`, as kubeadm configures it).

Names, relative to the cluster domain:
- `<svc>.<ns>.svc`: A/AAAA = the ClusterIPs; for a headless Service the ready endpoint IPs
  (NXDOMAIN when it has none); an ExternalName Service is a CNAME to its externalName.
- `<hostname>.<svc>.<ns>.svc`: the endpoint's IPs; hostname is the endpoint's `hostname` or, as
  CoreDNS does, its IP with dashes (`10-1-0-5`).
- `_<port>._<proto>.<svc>.<ns>.svc` (and `<svc>.<ns>.svc` itself): SRV per matching port; for a
  headless Service one per ready endpoint, targeting its hostname name, with the targets' A records
  in the additional section.
- `<a>-<b>-<c>-<d>.<ns>.pod`: A `<a>.<b>.<c>.<d>` for any IP, if the namespace exists.
- `dns-version`: TXT with the schema version; `ns.dns`: the DNS Service's address; the apex has the
  SOA (`ns.dns.<zone> hostmaster.<zone> <serial> 7200 1800 86400 <ttl>`) and NS.
- Reverse names of ClusterIPs and ready endpoint IPs: PTR; other reverse names are not ours.
A name inside the zone that does not exist is NXDOMAIN, an existing name without the asked type is
NODATA, both with the SOA in the authority section. Every comparison is case-insensitive.

Each lookup also returns the facts it consulted as tags (`("svc", ns, name)`, `("ns", ns)`,
`("ip", ip)`), and each change returns the tags it touched, so a cache of answers can drop exactly
the answers a change can alter.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename
import dns.rrset
from dns.rrset import RRset

__all__ = [
    "DNS_SCHEMA_VERSION",
    "Answer",
    "EndpointAddress",
    "ServiceRecord",
    "SliceRecord",
    "Tag",
    "Zone",
    "ZoneConfig",
    "service_record",
    "slice_record",
]

DNS_SCHEMA_VERSION = "1.1.0"  # what CoreDNS serves at dns-version.<zone>
DNS_VERSION_TTL = 28800
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

IN = dns.rdataclass.IN
A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.CNAME,
    dns.rdatatype.NS,
    dns.rdatatype.PTR,
    dns.rdatatype.SOA,
    dns.rdatatype.SRV,
    dns.rdatatype.TXT,
)
IN_ADDR_ARPA = dns.name.from_text("in-addr.arpa.")
IP6_ARPA = dns.name.from_text("ip6.arpa.")
MAX_CNAME_CHAIN = 8
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

Tag = tuple[str, ...]
SOA_TAG: Tag = ("soa",)  # the apex SOA answer shows the serial, which every change moves


@dataclass(frozen=True)
class ZoneConfig:
    """The cluster domain, the TTL of every record, and the DNS Service's own addresses."""

    domain: str = "cluster.local"
    ttl: int = 5
    nameserver_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Port:
    """A Service or EndpointSlice port; `port` -1 stands for a slice without ports (CoreDNS's sentinel)."""

    name: str
    port: int
    protocol: str

    def matches(self, name: str, protocol: str) -> bool:
        """Whether an SRV-style query part (empty means any) selects this port."""
        return (not name or name == self.name.lower()) and (not protocol or protocol == self.protocol.lower())


@dataclass(frozen=True)
class ServiceRecord:
    """What DNS needs of a Service."""

    namespace: str
    name: str
    kind: str  # "ClusterIP" (any type with a cluster IP), "Headless" or "ExternalName"
    cluster_ips: tuple[str, ...] = ()
    external_name: str = ""
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class EndpointAddress:
    """One ready endpoint address and the hostname it answers to."""

    ip: str
    hostname: str  # the endpoint's hostname, or its IP with dashes


@dataclass(frozen=True)
class SliceRecord:
    """What DNS needs of an EndpointSlice: its Service, its ports, and its ready addresses."""

    namespace: str
    name: str
    service: str
    ports: tuple[Port, ...]
    addresses: tuple[EndpointAddress, ...]


@dataclass
class Answer:
    """The outcome of a lookup: sections and rcode, or `forward` when the name is not ours.

    `chase` is an out-of-zone CNAME target whose records the server resolves upstream and appends;
    such an answer is not cacheable. `tags` are the facts the answer depends on.
    """

    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    forward: bool = False
    chase: dns.name.Name | None = None
    tags: set[Tag] = field(default_factory=set)

    @property
    def cacheable(self) -> bool:
        """Whether the answer depends only on the zone (and so may be kept until a tag changes)."""
        return not self.forward and self.chase is None


@dataclass(frozen=True)
class _Target:
    """A record source: an address (with port and SRV target name) or an ExternalName."""

    ip: str = ""
    port: int = -1
    target: str = ""
    cname: str = ""


def dashed(ip: str) -> str:
    """An IP as a DNS label: dots (or colons) turned into dashes, as CoreDNS names endpoints."""
    return ip.replace(".", "-").replace(":", "-")


def _canonical_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _ports(items: Any, default_protocol: str = "TCP") -> tuple[Port, ...]:
    out: list[Port] = []
    for p in items if isinstance(items, list) else []:
        if not isinstance(p, Mapping) or not isinstance(p.get("port"), int):
            continue
        out.append(Port(str(p.get("name") or ""), p["port"], str(p.get("protocol") or default_protocol)))
    return tuple(out)


def service_record(obj: Mapping[str, Any]) -> ServiceRecord | None:
    """A Service object as a record; None when it lacks a namespace or name."""
    ns, name = _get(obj, "metadata", "namespace"), _get(obj, "metadata", "name")
    if not isinstance(ns, str) or not isinstance(name, str) or not ns or not name:
        return None
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    ports = _ports(spec.get("ports"))
    if spec.get("type") == "ExternalName":
        ext = str(spec.get("externalName") or "").rstrip(".").lower()
        if not _dns_name(ext):
            ext = ""  # nothing to point a CNAME at: the name does not exist
        return ServiceRecord(ns.lower(), name.lower(), "ExternalName", external_name=ext, ports=ports)
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if ips and ips[0] == "None":
        return ServiceRecord(ns.lower(), name.lower(), "Headless", ports=ports)
    canonical = tuple(ip for ip in (_canonical_ip(str(i)) for i in ips) if ip)
    return ServiceRecord(ns.lower(), name.lower(), "ClusterIP", cluster_ips=canonical, ports=ports)


def slice_record(obj: Mapping[str, Any]) -> SliceRecord | None:
    """An EndpointSlice as a record of its ready addresses; None if it names no Service or holds FQDNs."""
    ns, name = _get(obj, "metadata", "namespace"), _get(obj, "metadata", "name")
    service = _get(obj, "metadata", "labels", SERVICE_NAME_LABEL)
    if not all(isinstance(v, str) and v for v in (ns, name, service)):
        return None
    if obj.get("addressType") not in ("IPv4", "IPv6"):
        return None
    ports = _ports(obj.get("ports")) or (Port("", -1, ""),)
    addresses: list[EndpointAddress] = []
    for ep in obj.get("endpoints") or []:
        if not isinstance(ep, Mapping) or _get(ep, "conditions", "ready") is False:
            continue
        hostname = str(ep.get("hostname") or "").lower()
        if not _dns_label(hostname):
            hostname = ""
        for raw in ep.get("addresses") or []:
            ip = _canonical_ip(str(raw))
            if ip:
                addresses.append(EndpointAddress(ip, hostname or dashed(ip)))
    return SliceRecord(ns.lower(), name.lower(), service.lower(), ports, tuple(addresses))


def _dns_label(text: str) -> bool:
    """Whether text is a DNS-1123 label (what an endpoint hostname must be)."""
    return len(text) <= 63 and DNS1123_LABEL.fullmatch(text) is not None


def _dns_name(text: str) -> bool:
    """Whether text is a DNS-1123 subdomain (what an ExternalName must be)."""
    return len(text) <= 253 and all(_dns_label(label) for label in text.split("."))


def _pod_ip(label: str) -> str | None:
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _labels(name: dns.name.Name) -> list[str]:
    return [label.decode("latin-1").lower() for label in name.labels]


def _strip_underscore(label: str) -> str:
    return label[1:] if label.startswith("_") else label


class Zone:
    """The cluster zone, updated object by object and answered per the Kubernetes DNS schema."""

    def __init__(self, config: ZoneConfig | None = None) -> None:
        self.config = config or ZoneConfig()
        self.origin = dns.name.from_text(self.config.domain.strip(".").lower() + ".")
        self.serial = int(time.time())
        self.namespaces: set[str] = set()
        self.services: dict[tuple[str, str], ServiceRecord] = {}
        self.slices: dict[tuple[str, str], SliceRecord] = {}
        self._slices_by_service: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._by_cluster_ip: dict[str, set[tuple[str, str]]] = {}
        self._by_endpoint_ip: dict[str, set[tuple[str, str]]] = {}

    # --- changes ----------------------------------------------------------------------

    def _touched(self) -> None:
        self.serial = max(int(time.time()), self.serial + 1)

    def _changed(self, tags: set[Tag]) -> set[Tag]:
        """Bump the serial; the touched tags plus the apex SOA answer's."""
        self._touched()
        return tags | {SOA_TAG}

    def add_namespace(self, name: str) -> set[Tag]:
        """Record that a namespace exists; the tags it touched."""
        name = name.lower()
        if name in self.namespaces:
            return set()
        self.namespaces.add(name)
        return self._changed({("ns", name)})

    def delete_namespace(self, name: str) -> set[Tag]:
        """Forget a namespace; the tags it touched."""
        name = name.lower()
        if name not in self.namespaces:
            return set()
        self.namespaces.discard(name)
        return self._changed({("ns", name)})

    def set_service(self, record: ServiceRecord) -> set[Tag]:
        """Add or replace a Service; the tags it touched."""
        key = (record.namespace, record.name)
        old = self.services.get(key)
        if old == record:
            return set()
        tags = self._drop_service(key)
        self.services[key] = record
        for ip in record.cluster_ips:
            self._by_cluster_ip.setdefault(ip, set()).add(key)
            tags.add(("ip", ip))
        return self._changed(tags | {("svc", *key)})

    def delete_service(self, namespace: str, name: str) -> set[Tag]:
        """Remove a Service; the tags it touched."""
        key = (namespace.lower(), name.lower())
        if key not in self.services:
            return set()
        return self._changed(self._drop_service(key))

    def _drop_service(self, key: tuple[str, str]) -> set[Tag]:
        old = self.services.pop(key, None)
        if old is None:
            return set()
        for ip in old.cluster_ips:
            keys = self._by_cluster_ip.get(ip)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_cluster_ip[ip]
        return {("svc", *key)} | {("ip", ip) for ip in old.cluster_ips}

    def set_slice(self, record: SliceRecord) -> set[Tag]:
        """Add or replace an EndpointSlice; the tags it touched."""
        key = (record.namespace, record.name)
        if self.slices.get(key) == record:
            return set()
        tags = self._drop_slice(key)
        self.slices[key] = record
        self._slices_by_service.setdefault((record.namespace, record.service), set()).add(key)
        for addr in record.addresses:
            self._by_endpoint_ip.setdefault(addr.ip, set()).add(key)
            tags.add(("ip", addr.ip))
        return self._changed(tags | {("svc", record.namespace, record.service)})

    def delete_slice(self, namespace: str, name: str) -> set[Tag]:
        """Remove an EndpointSlice; the tags it touched."""
        key = (namespace.lower(), name.lower())
        if key not in self.slices:
            return set()
        return self._changed(self._drop_slice(key))

    def _drop_slice(self, key: tuple[str, str]) -> set[Tag]:
        old = self.slices.pop(key, None)
        if old is None:
            return set()
        skey = (old.namespace, old.service)
        group = self._slices_by_service.get(skey)
        if group is not None:
            group.discard(key)
            if not group:
                del self._slices_by_service[skey]
        for addr in old.addresses:
            keys = self._by_endpoint_ip.get(addr.ip)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_endpoint_ip[addr.ip]
        return {("svc", *skey)} | {("ip", a.ip) for a in old.addresses}

    # --- answers ----------------------------------------------------------------------

    def lookup(self, qname: dns.name.Name | str, qtype: int) -> Answer:
        """Answer `qname`/`qtype` (class IN) from the zone, or mark it to be forwarded."""
        if isinstance(qname, str):
            qname = dns.name.from_text(qname)
        name = dns.name.Name([label.lower() for label in qname.labels])
        return self._lookup(name, qtype, 0)

    def _lookup(self, name: dns.name.Name, qtype: int, depth: int) -> Answer:
        if name.is_subdomain(self.origin):
            return self._in_zone(name, qtype, depth)
        if qtype == PTR and (name.is_subdomain(IN_ADDR_ARPA) or name.is_subdomain(IP6_ARPA)):
            return self._reverse(name)
        return Answer(forward=True)

    def _rrset(self, name: dns.name.Name, rdtype: int, rdatas: Iterable[Any], ttl: int | None = None) -> RRset:
        rrset = dns.rrset.RRset(name, IN, rdtype)
        rrset.update_ttl(self.config.ttl if ttl is None else ttl)
        for rd in rdatas:
            rrset.add(rd)
        return rrset

    def soa(self) -> dns.rrset.RRset:
        """The zone's SOA, in CoreDNS's form."""
        ttl = self.config.ttl
        rd = dns.rdtypes.ANY.SOA.SOA(
            IN,
            SOA,
            dns.name.Name((b"ns", b"dns", *self.origin.labels)),
            dns.name.Name((b"hostmaster", *self.origin.labels)),
            self.serial & 0xFFFFFFFF,
            7200,
            1800,
            86400,
            ttl,
        )
        return self._rrset(self.origin, SOA, [rd], ttl=min(ttl, 300))

    def _negative(self, rcode: int, tags: set[Tag]) -> Answer:
        return Answer(rcode=rcode, authority=[self.soa()], tags=tags)

    def _nodata(self, tags: set[Tag]) -> Answer:
        return self._negative(dns.rcode.NOERROR, tags)

    def _nxdomain(self, tags: set[Tag]) -> Answer:
        return self._negative(dns.rcode.NXDOMAIN, tags)

    def _address_answer(self, name: dns.name.Name, qtype: int, ips: Iterable[str], tags: set[Tag]) -> Answer:
        """A or AAAA records of the IPs of the asked family; NODATA when none (or another type)."""
        if qtype not in (A, AAAA):
            return self._nodata(tags)
        cls = dns.rdtypes.IN.A.A if qtype == A else dns.rdtypes.IN.AAAA.AAAA
        want = 4 if qtype == A else 6
        seen: dict[str, None] = {}
        for ip in ips:
            if ipaddress.ip_address(ip).version == want:
                seen.setdefault(ip, None)
        if not seen:
            return self._nodata(tags)
        return Answer(answer=[self._rrset(name, qtype, [cls(IN, qtype, ip) for ip in seen])], tags=tags)

    def _in_zone(self, name: dns.name.Name, qtype: int, depth: int) -> Answer:
        segs = _labels(name.relativize(self.origin))
        tags: set[Tag] = set()
        if not segs:
            if qtype == SOA:
                return Answer(answer=[self.soa()], tags={SOA_TAG})
            if qtype == NS:
                return self._ns_answer()
            return self._nodata(tags)
        if segs == ["dns-version"]:
            if qtype != TXT:
                return self._nodata(tags)
            rd = dns.rdtypes.ANY.TXT.TXT(IN, TXT, [DNS_SCHEMA_VERSION.encode()])
            return Answer(answer=[self._rrset(name, TXT, [rd], ttl=DNS_VERSION_TTL)])
        if segs == ["ns", "dns"]:
            return self._address_answer(name, qtype, self.config.nameserver_ips, tags)
        kind = segs[-1]
        if kind not in ("svc", "pod"):
            return self._nxdomain(tags)
        if len(segs) == 1:
            return self._nodata(tags)
        namespace = segs[-2]
        tags.add(("ns", namespace))
        if namespace not in self.namespaces:
            return self._nxdomain(tags)
        if len(segs) == 2:
            return self._nodata(tags)
        if kind == "pod":
            ip = _pod_ip(segs[0]) if len(segs) == 3 else None
            if ip is None:
                return self._nxdomain(tags)
            return self._address_answer(name, qtype, [ip], tags)
        service, rest = segs[-3], segs[:-3]
        tags.add(("svc", namespace, service))
        if len(rest) > 2:
            return self._nxdomain(tags)
        endpoint = rest[0] if len(rest) == 1 else ""
        port, protocol = (_strip_underscore(rest[0]), _strip_underscore(rest[1])) if len(rest) == 2 else ("", "")
        targets = self._targets(namespace, service, endpoint, port, protocol)
        if targets is None:
            return self._nxdomain(tags)
        return self._project(name, qtype, targets, tags, depth)

    def _ns_answer(self) -> Answer:
        ns_name = dns.name.Name((b"ns", b"dns", *self.origin.labels))
        answer = Answer(answer=[self._rrset(self.origin, NS, [dns.rdtypes.ANY.NS.NS(IN, NS, ns_name)])])
        for qtype in (A, AAAA):
            glue = self._address_answer(ns_name, qtype, self.config.nameserver_ips, set())
            answer.additional.extend(glue.answer)
        return answer

    def _targets(self, namespace: str, service: str, endpoint: str, port: str, protocol: str) -> list[_Target] | None:
        """What a service name (with an endpoint or port part) stands for; None means no such name."""
        svc = self.services.get((namespace, service))
        if svc is None:
            return None
        base = f"{service}.{namespace}.svc.{self.origin.to_text(omit_final_dot=True)}."
        if svc.kind == "ExternalName":
            if endpoint or not svc.external_name or _canonical_ip(svc.external_name):
                return None
            return [_Target(cname=svc.external_name)]
        found = False
        out: list[_Target] = []
        if svc.kind == "Headless" or endpoint:
            for skey in sorted(self._slices_by_service.get((namespace, service), ())):
                sl = self.slices[skey]
                for addr in sl.addresses:
                    if endpoint and endpoint != addr.hostname:
                        continue
                    for p in sl.ports:
                        if p.matches(port, protocol):
                            found = True
                            out.append(_Target(ip=addr.ip, port=p.port, target=f"{addr.hostname}.{base}"))
            return out if found else None
        for p in svc.ports:
            if p.matches(port, protocol):
                found = True
                out.extend(_Target(ip=ip, port=p.port, target=base) for ip in svc.cluster_ips)
        return out if found else None

    def _project(self, name: dns.name.Name, qtype: int, targets: list[_Target], tags: set[Tag], depth: int) -> Answer:
        """The records of the asked type that the targets give."""
        cnames = [t.cname for t in targets if t.cname]
        if cnames:
            if qtype == SRV:
                return self._nodata(tags)
            target = dns.name.from_text(cnames[0] + ".")
            cname = self._rrset(name, CNAME, [dns.rdtypes.ANY.CNAME.CNAME(IN, CNAME, target)])
            if qtype == CNAME:
                return Answer(answer=[cname], tags=tags)
            if target.is_subdomain(self.origin):
                if depth >= MAX_CNAME_CHAIN or target == name:
                    return Answer(answer=[cname], tags=tags)
                sub = self._in_zone(target, qtype, depth + 1)
                tags |= sub.tags
                records = sub.answer if sub.rcode == dns.rcode.NOERROR else []
                return Answer(answer=[cname, *records], tags=tags)
            return Answer(answer=[cname], chase=target, tags=tags)
        if qtype in (A, AAAA):
            return self._address_answer(name, qtype, [t.ip for t in targets], tags)
        if qtype != SRV:
            return self._nodata(tags)
        weight = max(1, 100 // len(targets))
        srvs: dict[tuple[str, int], Any] = {}
        extra: dict[tuple[str, int], list[str]] = {}
        for t in targets:
            if t.port < 0:
                continue
            target = dns.name.from_text(t.target)
            srvs.setdefault((t.target, t.port), dns.rdtypes.IN.SRV.SRV(IN, SRV, 0, weight, t.port, target))
            family = A if ipaddress.ip_address(t.ip).version == 4 else AAAA
            ips = extra.setdefault((t.target, family), [])
            if t.ip not in ips:
                ips.append(t.ip)
        if not srvs:
            return self._nodata(tags)
        answer = Answer(answer=[self._rrset(name, SRV, srvs.values())], tags=tags)
        for (target, family), ips in extra.items():
            cls = dns.rdtypes.IN.A.A if family == A else dns.rdtypes.IN.AAAA.AAAA
            answer.additional.append(
                self._rrset(dns.name.from_text(target), family, [cls(IN, family, ip) for ip in ips])
            )
        return answer

    def _reverse(self, name: dns.name.Name) -> Answer:
        try:
            ip = _canonical_ip(dns.reversename.to_address(name))
        except Exception:  # a partial or malformed reverse name: not one of ours
            ip = None
        if ip is None:
            return Answer(forward=True)
        targets = self.ptr_targets(ip)
        if not targets:
            return Answer(forward=True, tags={("ip", ip)})
        rdatas = [dns.rdtypes.ANY.PTR.PTR(IN, PTR, dns.name.from_text(t)) for t in targets]
        return Answer(answer=[self._rrset(name, PTR, rdatas)], tags={("ip", ip)})

    def ptr_targets(self, ip: str) -> list[str]:
        """Names an IP maps back to: its Service if it is a ClusterIP, else every endpoint name it has."""
        zone = self.origin.to_text(omit_final_dot=True)
        services = self._by_cluster_ip.get(ip)
        if services:
            ns, svc = min(services)
            return [f"{svc}.{ns}.svc.{zone}."]
        out: dict[str, None] = {}
        for skey in sorted(self._by_endpoint_ip.get(ip, ())):
            sl = self.slices[skey]
            for addr in sl.addresses:
                if addr.ip == ip:
                    out.setdefault(f"{addr.hostname}.{sl.service}.{sl.namespace}.svc.{zone}.", None)
        return list(out)
