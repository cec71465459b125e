"""Pod resolv.conf and /etc/hosts, against upstream's GetPodDNS, containerd's rendering and the kubelet's hosts file."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.dns import (
    DNSConfig,
    DNSConfigurer,
    DNSEvent,
    host_network_hosts,
    kernel_nodename,
    managed_hosts,
    parse_resolv_conf,
    pod_hostname_and_domain,
    resolv_conf_text,
)

HOST = (
    "# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example. lab.example\n"
    "options attempts:2 rotate\n"
)
CLUSTER = DNSConfigurer(("127.96.0.10",), "cluster.local", "/etc/resolv.conf")
MISSING = (
    'kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. '
    'Falling back to "Default" policy.'
)


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u1"}, "spec": spec}


def test_parse_resolv_conf() -> None:
    text = (
        "nameserver 1.1.1.1\n  # c\nsearch a.\nsearch b c.\nnameserver\noptions x\noptions ndots:2 y\n"
        "nameserver 8.8.8.8"
    )
    assert parse_resolv_conf(text) == (["1.1.1.1", "8.8.8.8"], ["b", "c"], ["ndots:2", "y"])


CASES: list[tuple[str, DNSConfigurer, dict[str, Any], str, list[DNSEvent]]] = [
    (
        "ClusterFirst: cluster DNS only, cluster search then the host's, ndots:5",
        CLUSTER,
        pod(dnsPolicy="ClusterFirst"),
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.96.0.10\noptions ndots:5\n",
        [],
    ),
    (
        "ClusterFirst is the default policy",
        CLUSTER,
        pod(),
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.96.0.10\noptions ndots:5\n",
        [],
    ),
    (
        "ClusterFirst with hostNetwork falls back to Default",
        CLUSTER,
        pod(dnsPolicy="ClusterFirst", hostNetwork=True),
        "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions attempts:2 rotate\n",
        [],
    ),
    (
        "ClusterFirstWithHostNet keeps the cluster DNS",
        CLUSTER,
        pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True),
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.96.0.10\noptions ndots:5\n",
        [],
    ),
    (
        "Default: the host's settings",
        CLUSTER,
        pod(dnsPolicy="Default"),
        "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions attempts:2 rotate\n",
        [],
    ),
    (
        "ClusterFirst without --cluster-dns: Default, with MissingClusterDNS on node and pod",
        DNSConfigurer((), "cluster.local"),
        pod(dnsPolicy="ClusterFirst"),
        "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions attempts:2 rotate\n",
        [
            DNSEvent("node", "MissingClusterDNS", MISSING),
            DNSEvent("pod", "MissingClusterDNS", f'pod: "web_shop(u1)". {MISSING}'),
        ],
    ),
    (
        "None: only dnsConfig",
        CLUSTER,
        pod(
            dnsPolicy="None",
            dnsConfig={
                "nameservers": ["1.2.3.4"],
                "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            },
        ),
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\noptions ndots:2 edns0\n",
        [],
    ),
    (
        "ClusterFirst + dnsConfig: appended without duplicates, options overridden",
        CLUSTER,
        pod(
            dnsConfig={
                "nameservers": ["127.96.0.10", "9.9.9.9"],
                "searches": ["svc.cluster.local", "extra.example"],
                "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}],
            }
        ),
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example extra.example\n"
        "nameserver 127.96.0.10\nnameserver 9.9.9.9\noptions ndots:1 single-request-reopen\n",
        [],
    ),
    (
        "no --resolv-conf: Default is 127.0.0.1 and search '.'",
        DNSConfigurer((), "cluster.local", ""),
        pod(dnsPolicy="Default"),
        "search .\nnameserver 127.0.0.1\n",
        [],
    ),
    (
        "more than 3 nameservers are cut, with a warning",
        CLUSTER,
        pod(dnsPolicy="Default", dnsConfig={"nameservers": ["192.0.2.55", "192.0.2.56"]}),
        "search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nnameserver 192.0.2.55\n"
        "options attempts:2 rotate\n",
        [
            DNSEvent(
                "pod",
                "DNSConfigForming",
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line "
                "is: 192.0.2.53 192.0.2.54 192.0.2.55",
            )
        ],
    ),
]


@pytest.mark.parametrize(("what", "configurer", "the_pod", "want", "events"), CASES, ids=[c[0] for c in CASES])
def test_pod_resolv_conf(
    what: str, configurer: DNSConfigurer, the_pod: dict[str, Any], want: str, events: list[DNSEvent]
) -> None:
    cfg, got_events = configurer.pod_dns(the_pod, HOST)
    assert resolv_conf_text(cfg, HOST) == want
    assert got_events == events


def test_search_limits() -> None:
    many = [f"d{i}.example" for i in range(40)]
    cfg, events = CLUSTER.pod_dns(pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": many}), "")
    assert cfg.searches == many[:32]
    assert events[0].reason == "DNSConfigForming"
    assert events[0].message.startswith("Search Line limits were exceeded, some search paths have been omitted")
    long = ["x" * 254, *(f"{'y' * 200}{i}.example" for i in range(12))]
    cfg, events = CLUSTER.pod_dns(pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"], "searches": long}), "")
    assert "x" * 254 not in cfg.searches  # longer than 253: dropped
    assert len(" ".join(cfg.searches)) <= 2048 and cfg.searches == long[1:10]
    assert events[0].message.endswith(" ".join(long[1:10]))


def test_empty_config_copies_the_host_file() -> None:
    assert resolv_conf_text(DNSConfig(), "# nothing here\n") == "# nothing here\n"


def test_hostname_and_domain() -> None:
    assert pod_hostname_and_domain(pod(), "cluster.local") == ("web", "")
    p = pod(hostname="db-0", subdomain="db")
    assert pod_hostname_and_domain(p, "cluster.local") == ("db-0", "db.shop.svc.cluster.local")
    long = {"metadata": {"name": "a" * 62 + "-b-c", "namespace": "n"}, "spec": {}}
    assert pod_hostname_and_domain(long, "cluster.local") == ("a" * 62, "")  # cut at 63, no trailing '-'
    with pytest.raises(ValueError, match='pod Hostname "Bad_Name" is not a valid DNS label'):
        pod_hostname_and_domain(pod(hostname="Bad_Name"), "cluster.local")
    assert kernel_nodename("db-0", "db.shop.svc.cluster.local", True) == "db-0.db.shop.svc.cluster.local"
    assert kernel_nodename("db-0", "db.shop.svc.cluster.local", False) == "db-0"
    with pytest.raises(ValueError, match=r"FQDN .* is too long \(64 characters is the max, 70 characters requested\)"):
        kernel_nodename("h" * 20, "d" * 49, True)


LOCALHOST = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def test_managed_hosts() -> None:
    assert managed_hosts(["127.1.0.5"], "web", "") == LOCALHOST + "127.1.0.5\tweb\n"
    aliases = [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}, {"ip": "10.1.2.3", "hostnames": ["x"]}]
    assert managed_hosts(["127.1.0.5"], "db-0", "db.shop.svc.cluster.local", aliases) == (
        LOCALHOST + "127.1.0.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n"
        "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tx\n"
    )


def test_host_network_hosts() -> None:
    host = "127.0.0.1 localhost\n"
    assert host_network_hosts(host) == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
    assert host_network_hosts(host, [{"ip": "1.2.3.4", "hostnames": ["a"]}]) == (
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
        "\n# Entries added by HostAliases.\n1.2.3.4\ta\n"
    )
