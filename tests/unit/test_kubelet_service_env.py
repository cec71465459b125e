"""Service environment variables (upstream envvars.FromServices and getServiceEnvVarMap), and their place in a
container's environment."""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.envvars import container_env, expand_command
from kubelet.service_env import from_services, service_env


def svc(name: str, ns: str, ip: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports), **spec}}


KUBERNETES = svc("kubernetes", "default", "127.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
KUBERNETES_ENV = {
    "KUBERNETES_SERVICE_HOST": "127.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://127.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://127.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "127.96.0.1",
}
PHP = svc("php-svc", "shop", "127.96.0.20", {"port": 9000})
PHP_ENV = {
    "PHP_SVC_SERVICE_HOST": "127.96.0.20",
    "PHP_SVC_SERVICE_PORT": "9000",
    "PHP_SVC_PORT": "tcp://127.96.0.20:9000",
    "PHP_SVC_PORT_9000_TCP": "tcp://127.96.0.20:9000",
    "PHP_SVC_PORT_9000_TCP_PROTO": "tcp",
    "PHP_SVC_PORT_9000_TCP_PORT": "9000",
    "PHP_SVC_PORT_9000_TCP_ADDR": "127.96.0.20",
}
DNS = svc(
    "kube-dns",
    "kube-system",
    "127.96.0.10",
    {"name": "dns", "port": 53, "protocol": "UDP"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
)
HEADLESS = svc("db", "shop", "None", {"port": 3306})
EXTERNAL = {"metadata": {"name": "ext", "namespace": "shop"}, "spec": {"type": "ExternalName", "externalName": "x.io"}}
OTHER_NS = svc("cache", "other", "127.96.0.30", {"port": 6379})
ALL = [KUBERNETES, PHP, DNS, HEADLESS, EXTERNAL, OTHER_NS]


def test_from_services_all_variables_in_order() -> None:
    assert from_services([DNS]) == [
        ("KUBE_DNS_SERVICE_HOST", "127.96.0.10"),
        ("KUBE_DNS_SERVICE_PORT", "53"),
        ("KUBE_DNS_SERVICE_PORT_DNS", "53"),
        ("KUBE_DNS_SERVICE_PORT_DNS_TCP", "53"),
        ("KUBE_DNS_PORT", "udp://127.96.0.10:53"),
        ("KUBE_DNS_PORT_53_UDP", "udp://127.96.0.10:53"),
        ("KUBE_DNS_PORT_53_UDP_PROTO", "udp"),
        ("KUBE_DNS_PORT_53_UDP_PORT", "53"),
        ("KUBE_DNS_PORT_53_UDP_ADDR", "127.96.0.10"),
        ("KUBE_DNS_PORT_53_TCP", "tcp://127.96.0.10:53"),
        ("KUBE_DNS_PORT_53_TCP_PROTO", "tcp"),
        ("KUBE_DNS_PORT_53_TCP_PORT", "53"),
        ("KUBE_DNS_PORT_53_TCP_ADDR", "127.96.0.10"),
    ]
    v6 = svc("v6", "n", "fd00::1", {"port": 80})
    assert dict(from_services([v6]))["V6_PORT"] == "tcp://[fd00::1]:80"


CASES = [
    ("own namespace with service links, plus kubernetes", "shop", True, ALL, {**KUBERNETES_ENV, **PHP_ENV}),
    ("enableServiceLinks false: only kubernetes", "shop", False, ALL, KUBERNETES_ENV),
    (
        "another namespace sees only its own",
        "other",
        True,
        [KUBERNETES, OTHER_NS, PHP],
        {
            **KUBERNETES_ENV,
            "CACHE_SERVICE_HOST": "127.96.0.30",
            "CACHE_SERVICE_PORT": "6379",
            "CACHE_PORT": "tcp://127.96.0.30:6379",
            "CACHE_PORT_6379_TCP": "tcp://127.96.0.30:6379",
            "CACHE_PORT_6379_TCP_PROTO": "tcp",
            "CACHE_PORT_6379_TCP_PORT": "6379",
            "CACHE_PORT_6379_TCP_ADDR": "127.96.0.30",
        },
    ),
    ("headless and ExternalName give nothing", "shop", True, [HEADLESS, EXTERNAL], {}),
    ("no kubernetes Service yet", "shop", True, [PHP], PHP_ENV),
    (
        "a local Service named kubernetes wins over the default one",
        "shop",
        True,
        [KUBERNETES, svc("kubernetes", "shop", "127.96.0.99", {"port": 8443})],
        {
            "KUBERNETES_SERVICE_HOST": "127.96.0.99",
            "KUBERNETES_SERVICE_PORT": "8443",
            "KUBERNETES_PORT": "tcp://127.96.0.99:8443",
            "KUBERNETES_PORT_8443_TCP": "tcp://127.96.0.99:8443",
            "KUBERNETES_PORT_8443_TCP_PROTO": "tcp",
            "KUBERNETES_PORT_8443_TCP_PORT": "8443",
            "KUBERNETES_PORT_8443_TCP_ADDR": "127.96.0.99",
        },
    ),
]


@pytest.mark.parametrize(("what", "ns", "links", "services", "want"), CASES, ids=[c[0] for c in CASES])
def test_service_env(what: str, ns: str, links: bool, services: list[dict[str, Any]], want: dict[str, str]) -> None:
    assert service_env(services, ns, links) == want


def test_pod_env_wins_and_expands_service_variables() -> None:
    pod = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {}, "status": {}}
    container = {
        "name": "c",
        "command": ["echo", "$(PHP_SVC_SERVICE_HOST):$(PHP_SVC_SERVICE_PORT)", "$(BACKEND)"],
        "env": [
            {"name": "PHP_SVC_SERVICE_PORT", "value": "1234"},
            {"name": "BACKEND", "value": "http://$(PHP_SVC_SERVICE_HOST):$(PHP_SVC_SERVICE_PORT)"},
        ],
    }
    env = container_env(
        pod,
        container,
        configmaps=lambda _ns, _n: None,
        secrets=lambda _ns, _n: None,
        allocatable={},
        services=service_env(ALL, "shop", True),
    )
    assert env["PHP_SVC_SERVICE_PORT"] == "1234"  # the pod's own value wins
    assert env["BACKEND"] == "http://127.96.0.20:1234"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1"
    assert list(env)[:2] == ["PHP_SVC_SERVICE_PORT", "BACKEND"]  # the pod's variables first
    assert expand_command(container, env) == ["echo", "127.96.0.20:1234", "http://127.96.0.20:1234"]
