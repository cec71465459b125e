"""The cluster DNS zone, built from Service / EndpointSlice / Namespace dicts, answered per the
Kubernetes DNS specification and CoreDNS's kubernetes plugin (`pods insecure`)."""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rcode
import dns.rdatatype as T
import pytest

from cluster_dns.zone import DNS_SCHEMA_VERSION, Answer, Zone, ZoneConfig, service_record, slice_record

NS = "shop"


def svc(name: str, cluster_ip: str = "127.96.0.20", ports: list[dict[str, Any]] | None = None, **spec: Any) -> Any:
    """A Service dict (ClusterIP unless spec says otherwise)."""
    body = {"clusterIP": cluster_ip, "ports": ports if ports is not None else [{"name": "http", "port": 80}], **spec}
    return {"metadata": {"namespace": NS, "name": name}, "spec": body}


def eps(service: str, endpoints: list[dict[str, Any]], ports: list[dict[str, Any]] | None = None) -> Any:
    """An EndpointSlice dict of `service`."""
    return {
        "metadata": {
            "namespace": NS,
            "name": f"{service}-abc",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }


def ep(ip: str, hostname: str = "", ready: bool | None = True) -> dict[str, Any]:
    """One endpoint."""
    out: dict[str, Any] = {"addresses": [ip]}
    if ready is not None:
        out["conditions"] = {"ready": ready}
    if hostname:
        out["hostname"] = hostname
    return out


@pytest.fixture
def zone() -> Zone:
    """A zone with namespace `shop`: a ClusterIP, a headless (StatefulSet-style) and an ExternalName Service."""
    z = Zone(ZoneConfig(domain="cluster.local", ttl=5, nameserver_ips=("127.96.0.10",)))
    z.add_namespace(NS)
    z.set_service(
        service_record(svc("web", ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]))
    )
    z.set_service(service_record(svc("db", cluster_ip="None", ports=[{"name": "mysql", "port": 3306}])))
    z.set_slice(
        slice_record(
            eps(
                "db",
                [ep("127.1.0.5", "db-0"), ep("127.1.0.6", "db-1"), ep("127.1.0.7", ready=False), ep("127.1.0.8")],
                ports=[{"name": "mysql", "port": 3306, "protocol": "TCP"}],
            )
        )
    )
    z.set_service(service_record(svc("ext", type="ExternalName", externalName="www.example.com", ports=[])))
    z.set_service(service_record(svc("alias", type="ExternalName", externalName="web.shop.svc.cluster.local.")))
    return z


def texts(rrsets: list[Any]) -> list[str]:
    """Every record of the sections as `name ttl IN TYPE data` lines."""
    return [line for rrset in rrsets for line in rrset.to_text().splitlines()]


def rdatas(answer: Answer, rdtype: int) -> set[str]:
    """The data of every answer record of one type."""
    return {rd.to_text() for rrset in answer.answer if rrset.rdtype == rdtype for rd in rrset}


def assert_negative(answer: Answer, rcode: int, serial: int) -> None:
    """NXDOMAIN or NODATA with the zone's SOA (CoreDNS's form) as the only authority record."""
    assert answer.rcode == rcode
    assert answer.answer == []
    assert texts(answer.authority) == [
        f"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {serial} 7200 1800 86400 5"
    ]


def test_clusterip_service_a_record(zone: Zone) -> None:
    ans = zone.lookup("web.shop.svc.cluster.local.", T.A)
    assert texts(ans.answer) == ["web.shop.svc.cluster.local. 5 IN A 127.96.0.20"]
    assert ans.rcode == dns.rcode.NOERROR and ans.cacheable


def test_existing_name_other_type_is_nodata_with_soa(zone: Zone) -> None:
    assert_negative(zone.lookup("web.shop.svc.cluster.local.", T.AAAA), dns.rcode.NOERROR, zone.serial)
    assert_negative(zone.lookup("web.shop.svc.cluster.local.", T.TXT), dns.rcode.NOERROR, zone.serial)


def test_missing_names_are_nxdomain_with_soa(zone: Zone) -> None:
    for name in (
        "nope.shop.svc.cluster.local.",  # no such Service
        "web.nowhere.svc.cluster.local.",  # no such namespace
        "x.web.shop.svc.cluster.local.",  # a ClusterIP Service has no endpoint x
        "a.b.c.web.shop.svc.cluster.local.",  # too many labels
        "web.shop.bogus.cluster.local.",  # neither svc nor pod
        "_https._tcp.web.shop.svc.cluster.local.",  # no port named https
        "_http._udp.web.shop.svc.cluster.local.",  # http is TCP
    ):
        assert_negative(zone.lookup(name, T.A), dns.rcode.NXDOMAIN, zone.serial)


def test_zone_structure_names_exist(zone: Zone) -> None:
    for name in ("cluster.local.", "svc.cluster.local.", "pod.cluster.local.", "shop.svc.cluster.local."):
        assert_negative(zone.lookup(name, T.A), dns.rcode.NOERROR, zone.serial)
    assert_negative(zone.lookup("nowhere.svc.cluster.local.", T.A), dns.rcode.NXDOMAIN, zone.serial)


def test_srv_for_named_port_with_target_address(zone: Zone) -> None:
    ans = zone.lookup("_http._tcp.web.shop.svc.cluster.local.", T.SRV)
    assert texts(ans.answer) == ["_http._tcp.web.shop.svc.cluster.local. 5 IN SRV 0 100 80 web.shop.svc.cluster.local."]
    assert texts(ans.additional) == ["web.shop.svc.cluster.local. 5 IN A 127.96.0.20"]
    udp = zone.lookup("_dns._udp.web.shop.svc.cluster.local.", T.SRV)
    assert rdatas(udp, T.SRV) == {"0 100 53 web.shop.svc.cluster.local."}


def test_srv_on_the_service_name_lists_every_port(zone: Zone) -> None:
    ans = zone.lookup("web.shop.svc.cluster.local.", T.SRV)
    assert rdatas(ans, T.SRV) == {"0 50 80 web.shop.svc.cluster.local.", "0 50 53 web.shop.svc.cluster.local."}


def test_unnamed_port_has_no_port_srv_name(zone: Zone) -> None:
    zone.set_service(service_record(svc("plain", cluster_ip="127.96.0.30", ports=[{"port": 8000}])))
    assert zone.lookup("_http._tcp.plain.shop.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN


def test_headless_service_answers_ready_endpoints(zone: Zone) -> None:
    ans = zone.lookup("db.shop.svc.cluster.local.", T.A)
    assert rdatas(ans, T.A) == {"127.1.0.5", "127.1.0.6", "127.1.0.8"}  # 127.1.0.7 is not ready


def test_headless_service_without_ready_endpoints_is_nxdomain(zone: Zone) -> None:
    zone.set_service(service_record(svc("empty", cluster_ip="None")))
    assert zone.lookup("empty.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    zone.set_slice(slice_record(eps("empty", [ep("127.1.0.9", ready=False)])))
    assert zone.lookup("empty.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_endpoint_ready_unset_counts_as_ready(zone: Zone) -> None:
    zone.set_service(service_record(svc("nil", cluster_ip="None")))
    zone.set_slice(slice_record(eps("nil", [ep("127.1.0.11", ready=None)])))
    assert rdatas(zone.lookup("nil.shop.svc.cluster.local.", T.A), T.A) == {"127.1.0.11"}


def test_statefulset_hostname_records(zone: Zone) -> None:
    assert texts(zone.lookup("db-0.db.shop.svc.cluster.local.", T.A).answer) == [
        "db-0.db.shop.svc.cluster.local. 5 IN A 127.1.0.5"
    ]
    # an endpoint without a hostname answers to its dashed IP, as in CoreDNS
    assert rdatas(zone.lookup("127-1-0-8.db.shop.svc.cluster.local.", T.A), T.A) == {"127.1.0.8"}
    assert zone.lookup("db-2.db.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert zone.lookup("127-1-0-7.db.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN  # not ready


def test_headless_srv_one_per_endpoint_targeting_its_hostname(zone: Zone) -> None:
    ans = zone.lookup("_mysql._tcp.db.shop.svc.cluster.local.", T.SRV)
    assert rdatas(ans, T.SRV) == {
        "0 33 3306 db-0.db.shop.svc.cluster.local.",
        "0 33 3306 db-1.db.shop.svc.cluster.local.",
        "0 33 3306 127-1-0-8.db.shop.svc.cluster.local.",
    }
    assert sorted(texts(ans.additional)) == [
        "127-1-0-8.db.shop.svc.cluster.local. 5 IN A 127.1.0.8",
        "db-0.db.shop.svc.cluster.local. 5 IN A 127.1.0.5",
        "db-1.db.shop.svc.cluster.local. 5 IN A 127.1.0.6",
    ]


def test_ptr_for_cluster_ip_and_endpoints(zone: Zone) -> None:
    ans = zone.lookup("20.0.96.127.in-addr.arpa.", T.PTR)
    assert texts(ans.answer) == ["20.0.96.127.in-addr.arpa. 5 IN PTR web.shop.svc.cluster.local."]
    ans = zone.lookup("5.0.1.127.in-addr.arpa.", T.PTR)
    assert texts(ans.answer) == ["5.0.1.127.in-addr.arpa. 5 IN PTR db-0.db.shop.svc.cluster.local."]
    # not a cluster address: the host's resolvers answer it
    assert zone.lookup("1.2.0.192.in-addr.arpa.", T.PTR).forward
    assert zone.lookup("7.0.1.127.in-addr.arpa.", T.PTR).forward  # the not-ready endpoint
    assert zone.lookup("0.96.127.in-addr.arpa.", T.PTR).forward  # a partial reverse name


def test_pod_records_insecure(zone: Zone) -> None:
    assert texts(zone.lookup("1-2-3-4.shop.pod.cluster.local.", T.A).answer) == [
        "1-2-3-4.shop.pod.cluster.local. 5 IN A 1.2.3.4"
    ]
    assert zone.lookup("1-2-3-4.shop.pod.cluster.local.", T.AAAA).rcode == dns.rcode.NOERROR  # NODATA
    assert zone.lookup("1-2-3-4.nowhere.pod.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert zone.lookup("1-2-3-400.shop.pod.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert zone.lookup("web.shop.pod.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_external_name_is_a_cname_chased_upstream(zone: Zone) -> None:
    ans = zone.lookup("ext.shop.svc.cluster.local.", T.A)
    assert texts(ans.answer) == ["ext.shop.svc.cluster.local. 5 IN CNAME www.example.com."]
    assert ans.chase == dns.name.from_text("www.example.com.") and not ans.cacheable
    cname = zone.lookup("ext.shop.svc.cluster.local.", T.CNAME)
    assert texts(cname.answer) == ["ext.shop.svc.cluster.local. 5 IN CNAME www.example.com."] and cname.cacheable
    assert zone.lookup("ext.shop.svc.cluster.local.", T.SRV).answer == []  # NODATA, as in CoreDNS


def test_external_name_inside_the_zone_is_followed(zone: Zone) -> None:
    ans = zone.lookup("alias.shop.svc.cluster.local.", T.A)
    assert texts(ans.answer) == [
        "alias.shop.svc.cluster.local. 5 IN CNAME web.shop.svc.cluster.local.",
        "web.shop.svc.cluster.local. 5 IN A 127.96.0.20",
    ]
    assert ("svc", NS, "web") in ans.tags  # the answer changes when web does


def test_dns_version_txt(zone: Zone) -> None:
    ans = zone.lookup("dns-version.cluster.local.", T.TXT)
    assert texts(ans.answer) == [f'dns-version.cluster.local. 28800 IN TXT "{DNS_SCHEMA_VERSION}"']


def test_apex_soa_and_ns(zone: Zone) -> None:
    soa = zone.lookup("cluster.local.", T.SOA)
    assert texts(soa.answer) == [
        f"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {zone.serial} 7200 1800 86400 5"
    ]
    ns = zone.lookup("cluster.local.", T.NS)
    assert texts(ns.answer) == ["cluster.local. 5 IN NS ns.dns.cluster.local."]
    assert texts(ns.additional) == ["ns.dns.cluster.local. 5 IN A 127.96.0.10"]


def test_case_insensitive_and_trailing_dot(zone: Zone) -> None:
    want = ["web.shop.svc.cluster.local. 5 IN A 127.96.0.20"]
    assert texts(zone.lookup("WEB.Shop.SVC.Cluster.Local.", T.A).answer) == want
    assert texts(zone.lookup("web.shop.svc.cluster.local", T.A).answer) == want
    assert rdatas(zone.lookup("DB-0.db.SHOP.svc.cluster.local", T.A), T.A) == {"127.1.0.5"}
    # objects' names are matched case-insensitively too
    zone.set_service(
        service_record(
            {
                "metadata": {"namespace": "Shop", "name": "Mixed"},
                "spec": {"clusterIP": "127.96.0.40", "ports": [{"port": 1}]},
            }
        )
    )
    assert rdatas(zone.lookup("mixed.shop.svc.cluster.local", T.A), T.A) == {"127.96.0.40"}


def test_names_outside_the_zone_are_forwarded(zone: Zone) -> None:
    assert zone.lookup("www.example.com.", T.A).forward
    assert zone.lookup("cluster.local.example.com.", T.A).forward


def test_other_cluster_domain() -> None:
    z = Zone(ZoneConfig(domain="corp.internal", ttl=30))
    z.add_namespace("a")
    z.set_service(
        service_record(
            {"metadata": {"namespace": "a", "name": "s"}, "spec": {"clusterIP": "10.0.0.9", "ports": [{"port": 1}]}}
        )
    )
    assert texts(z.lookup("s.a.svc.corp.internal.", T.A).answer) == ["s.a.svc.corp.internal. 30 IN A 10.0.0.9"]
    assert z.lookup("s.a.svc.cluster.local.", T.A).forward


def test_changes_report_the_tags_answers_depend_on(zone: Zone) -> None:
    before = zone.lookup("web.shop.svc.cluster.local.", T.A)
    serial = zone.serial
    touched = zone.set_service(service_record(svc("web", cluster_ip="127.96.0.21")))
    assert before.tags & touched
    assert zone.serial > serial
    assert rdatas(zone.lookup("web.shop.svc.cluster.local.", T.A), T.A) == {"127.96.0.21"}
    assert zone.lookup("20.0.96.127.in-addr.arpa.", T.PTR).forward  # the old ClusterIP is gone
    # an unchanged object touches nothing
    assert zone.set_service(service_record(svc("web", cluster_ip="127.96.0.21"))) == set()
    gone = zone.delete_service(NS, "web")
    assert ("svc", NS, "web") in gone and ("ip", "127.96.0.21") in gone
    assert zone.lookup("web.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_slice_moves_and_deletes(zone: Zone) -> None:
    touched = zone.delete_slice(NS, "db-abc")
    assert ("svc", NS, "db") in touched and ("ip", "127.1.0.5") in touched
    assert zone.lookup("db.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN
    assert zone.lookup("5.0.1.127.in-addr.arpa.", T.PTR).forward


def test_invalid_hostnames_and_external_names(zone: Zone) -> None:
    zone.set_service(service_record(svc("odd", cluster_ip="None")))
    zone.set_slice(slice_record(eps("odd", [ep("127.1.0.20", hostname="bad name"), ep("127.1.0.21", "-x")])))
    ans = zone.lookup("_http._tcp.odd.shop.svc.cluster.local.", T.SRV)
    assert {rd.target.to_text() for rd in ans.answer[0]} == {
        "127-1-0-20.odd.shop.svc.cluster.local.",
        "127-1-0-21.odd.shop.svc.cluster.local.",
    }
    zone.set_service(service_record(svc("badext", type="ExternalName", externalName="not a name")))
    assert zone.lookup("badext.shop.svc.cluster.local.", T.A).rcode == dns.rcode.NXDOMAIN


def test_bad_objects_are_ignored() -> None:
    assert service_record({"metadata": {"name": "x"}}) is None
    assert slice_record({"metadata": {"namespace": "a", "name": "s"}, "addressType": "IPv4"}) is None  # no service
    fqdn = eps("x", [ep("127.0.0.1")])
    fqdn["addressType"] = "FQDN"
    assert slice_record(fqdn) is None
    junk = eps("x", [{"addresses": ["not-an-ip"]}, "junk"])  # type: ignore[list-item]
    assert slice_record(junk) is not None and slice_record(junk).addresses == ()  # type: ignore[union-attr]
