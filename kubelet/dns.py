"""A pod's /etc/resolv.conf and /etc/hosts, as the kubelet (pkg/kubelet/network/dns, kubelet_pods.go) and
containerd write them.

Pure functions: the worker reads the host's files, calls these and bind-mounts the results.
resolv.conf is rendered as containerd renders the CRI DNSConfig (`search`, then one `nameserver` line
each, then `options`); when the config is empty the host's file is used verbatim, as containerd does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MAX_DNS_NAMESERVERS",
    "MAX_DNS_SEARCH_LIST_CHARS",
    "MAX_DNS_SEARCH_PATHS",
    "DNSConfig",
    "DNSConfigurer",
    "DNSEvent",
    "host_network_hosts",
    "kernel_nodename",
    "managed_hosts",
    "parse_resolv_conf",
    "pod_hostname_and_domain",
    "resolv_conf_text",
]

# pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPathsExpanded, MaxDNSSearchListCharsExpanded
# (ExpandedDNSConfig is GA), and the DNS-1123 subdomain length
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048
_MAX_SEARCH_LEN = 253
_MAX_HOSTNAME = 63
_MAX_NODENAME = 64
DEFAULT_OPTIONS = ("ndots:5",)
MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class DNSConfig:
    """The CRI DNSConfig of a sandbox: nameservers, search domains, options (`name` or `name:value`)."""

    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        """No line at all (containerd then copies the host's resolv.conf)."""
        return not (self.servers or self.searches or self.options)


@dataclass(frozen=True)
class DNSEvent:
    """A Warning event the kubelet records while forming a pod's DNS config (on the pod or on its node)."""

    target: Literal["pod", "node"]
    reason: str
    message: str


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf: nameservers accumulate, the last `search` and the
    last `options` line win, search domains lose a trailing dot (parseResolvConf)."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("#"):
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return servers, searches, options


def _dedup(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: Sequence[str], extra: Sequence[Mapping[str, Any]]) -> list[str]:
    """dnsConfig options override same-named existing ones (upstream iterates a Go map, so its order is
    random; here existing options keep their place and new ones follow in the pod's order)."""
    merged: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        merged[name] = value
    for op in extra:
        value = op.get("value")
        merged[str(op.get("name", ""))] = "" if value is None else str(value)
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def _pod_ref(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


@dataclass(frozen=True)
class DNSConfigurer:
    """The kubelet's DNS settings (--cluster-dns, --cluster-domain, --resolv-conf) and GetPodDNS."""

    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    resolver_config: str = "/etc/resolv.conf"
    """Path of the host resolv.conf that Default (and ClusterFirst's search list) start from; "" = none."""

    def _cluster_searches(self, host_search: Sequence[str], namespace: str) -> list[str]:
        if not self.cluster_domain:
            return list(host_search)
        d = self.cluster_domain
        return _dedup([f"{namespace}.svc.{d}", f"svc.{d}", d, *host_search])

    def _fit_searches(self, searches: list[str], events: list[DNSEvent]) -> list[str]:
        exceeded = False
        if len(searches) > MAX_DNS_SEARCH_PATHS:
            searches, exceeded = searches[:MAX_DNS_SEARCH_PATHS], True
        kept = [s for s in searches if len(s) <= _MAX_SEARCH_LEN]
        exceeded = exceeded or len(kept) != len(searches)
        searches = kept
        line_len = len(" ".join(searches))
        if line_len > MAX_DNS_SEARCH_LIST_CHARS:
            cut = 0
            cut_len = 0
            for s in reversed(searches):
                cut_len += len(s) + 1
                cut += 1
                if line_len - cut_len <= MAX_DNS_SEARCH_LIST_CHARS:
                    break
            searches, exceeded = searches[: len(searches) - cut], True
        if exceeded:
            msg = (
                "Search Line limits were exceeded, some search paths have been omitted, "
                f"the applied search line is: {' '.join(searches)}"
            )
            events.append(DNSEvent("pod", "DNSConfigForming", msg))
        return searches

    def _fit_servers(self, servers: list[str], events: list[DNSEvent]) -> list[str]:
        if len(servers) > MAX_DNS_NAMESERVERS:
            servers = servers[:MAX_DNS_NAMESERVERS]
            msg = (
                "Nameserver limits were exceeded, some nameservers have been omitted, "
                f"the applied nameserver line is: {' '.join(servers)}"
            )
            events.append(DNSEvent("pod", "DNSConfigForming", msg))
        return servers

    def pod_dns(self, pod: Mapping[str, Any], host_resolv_conf: str) -> tuple[DNSConfig, list[DNSEvent]]:
        """The pod's DNS config from its dnsPolicy and dnsConfig, given the text of the host's resolv.conf
        (ignored when `resolver_config` is ""), and the Warning events forming it raised."""
        spec = pod.get("spec") or {}
        events: list[DNSEvent] = []
        cfg = DNSConfig()
        if self.resolver_config:
            cfg = DNSConfig(*parse_resolv_conf(host_resolv_conf))
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        host_network = bool(spec.get("hostNetwork"))
        if policy == "None":
            kind = "none"
        elif policy == "Default" or (policy == "ClusterFirst" and host_network):
            kind = "host"
        else:  # ClusterFirst, ClusterFirstWithHostNet (and, as upstream, anything invalid)
            kind = "cluster"
        if kind == "none":
            cfg = DNSConfig()
        elif kind == "cluster" and self.cluster_dns:
            # the cluster DNS server is the only nameserver: it forwards what it does not know itself
            namespace = (pod.get("metadata") or {}).get("namespace", "")
            cfg = DNSConfig(
                list(self.cluster_dns), self._cluster_searches(cfg.searches, namespace), list(DEFAULT_OPTIONS)
            )
        else:
            if kind == "cluster":
                msg = (
                    'kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" '
                    'policy. Falling back to "Default" policy.'
                )
                events.append(DNSEvent("node", "MissingClusterDNS", msg))
                events.append(DNSEvent("pod", "MissingClusterDNS", f'pod: "{_pod_ref(pod)}". {msg}'))
            if not self.resolver_config:
                # no host resolv.conf: "the nameserver on the local machine", no search
                cfg.servers = cfg.servers or ["127.0.0.1"]
                cfg.searches = ["."]
        extra = spec.get("dnsConfig")
        if extra:
            cfg.servers = _dedup([*cfg.servers, *(extra.get("nameservers") or [])])
            cfg.searches = _dedup([*cfg.searches, *(extra.get("searches") or [])])
            cfg.options = _merge_options(cfg.options, extra.get("options") or [])
        cfg.servers = self._fit_servers(cfg.servers, events)
        cfg.searches = self._fit_searches(cfg.searches, events)
        return cfg, events


def resolv_conf_text(cfg: DNSConfig, host_resolv_conf: str = "") -> str:
    """The sandbox's resolv.conf as containerd writes it (the host's text when the config is empty)."""
    if cfg.empty():
        return host_resolv_conf
    out = ""
    if cfg.searches:
        out += f"search {' '.join(cfg.searches)}\n"
    for server in cfg.servers:
        out += f"nameserver {server}\n"
    if cfg.options:
        out += f"options {' '.join(cfg.options)}\n"
    return out


def _label_error(value: str) -> str:
    msgs = []
    if len(value) > _MAX_HOSTNAME:
        msgs.append(f"must be no more than {_MAX_HOSTNAME} characters")
    if not _DNS1123_LABEL.match(value):
        msgs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return ";".join(msgs)


def pod_hostname_and_domain(pod: Mapping[str, Any], cluster_domain: str) -> tuple[str, str]:
    """(hostname, domain) of a pod: spec.hostname or the pod name (cut to 63 characters), and
    `<subdomain>.<namespace>.svc.<cluster domain>` when spec.subdomain is set; ValueError if invalid."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(meta.get("name", ""))
    hostname = name
    if spec.get("hostname"):
        if err := _label_error(spec["hostname"]):
            raise ValueError(f'pod Hostname "{spec["hostname"]}" is not a valid DNS label: {err}')
        hostname = spec["hostname"]
    if len(hostname) > _MAX_HOSTNAME:
        hostname = hostname[:_MAX_HOSTNAME].rstrip("-.")
        if not hostname:
            raise ValueError(f'hostname for pod "{name}" was invalid: "{spec.get("hostname") or name}"')
    domain = ""
    if spec.get("subdomain"):
        if err := _label_error(spec["subdomain"]):
            raise ValueError(f'pod Subdomain "{spec["subdomain"]}" is not a valid DNS label: {err}')
        domain = f"{spec['subdomain']}.{meta.get('namespace', '')}.svc.{cluster_domain}"
    return hostname, domain


def kernel_nodename(hostname: str, domain: str, set_hostname_as_fqdn: bool) -> str:
    """The container's hostname: the FQDN with setHostnameAsFQDN and a domain (ValueError past 64
    characters), otherwise the short name (GetNodenameForKernel)."""
    if not (set_hostname_as_fqdn and domain):
        return hostname
    fqdn = f"{hostname}.{domain}"
    if len(fqdn) > _MAX_NODENAME:
        raise ValueError(
            f"failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long "
            f"({_MAX_NODENAME} characters is the max, {len(fqdn)} characters requested)"
        )
    return fqdn


def _aliases(host_aliases: Sequence[Mapping[str, Any]]) -> str:
    if not host_aliases:
        return ""
    lines = "".join(f"{a.get('ip', '')}\t{chr(9).join(a.get('hostnames') or [])}\n" for a in host_aliases)
    return "\n# Entries added by HostAliases.\n" + lines


def managed_hosts(
    pod_ips: Sequence[str], hostname: str, domain: str, host_aliases: Sequence[Mapping[str, Any]] = ()
) -> str:
    """The kubelet-managed /etc/hosts of a pod on the pod network (managedHostsFileContent)."""
    out = MANAGED_HOSTS_HEADER
    out += "127.0.0.1\tlocalhost\n"
    out += "::1\tlocalhost ip6-localhost ip6-loopback\n"
    out += "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
    for ip in pod_ips:
        out += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    return out + _aliases(host_aliases)


def host_network_hosts(host_hosts: str, host_aliases: Sequence[Mapping[str, Any]] = ()) -> str:
    """/etc/hosts of a hostNetwork pod: the node's file under a header, plus the aliases (nodeHostsFileContent)."""
    return MANAGED_HOSTS_HEADER_HOST_NETWORK + host_hosts + _aliases(host_aliases)
