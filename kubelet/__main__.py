"""`python -m kubelet`: the node agent (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import asyncio
import contextlib
import ipaddress
import logging
from pathlib import Path

import click

from apimachinery.durations import parse_duration
from apimachinery.flags import command, kubeconfig_option, log_level_option, option, server_option
from apimachinery.quantity import parse_quantity
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from kubelet.auth import AuthOptions
from kubelet.ipam import default_pod_cidr
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.node import host_capacity
from kubelet.process_runtime import ProcessRuntime
from kubelet.procstats import StatsCollector, runtime_targets
from kubelet.runtime import ContainerRuntime

log = logging.getLogger("kubelet")


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k2=v2` → a dict."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"invalid label {part!r} (want key=value)", param_hint="--node-labels")
        out[key] = value
    return out


def parse_taints(text: str) -> list[dict[str, str]]:
    """`key=value:Effect,key2:Effect` → taints."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kv, sep, effect = part.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise click.BadParameter(
                f"invalid taint {part!r} (want key[=value]:Effect)", param_hint="--register-with-taints"
            )
        key, _, value = kv.partition("=")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


def duration(text: str, flag: str) -> float:
    """A Go duration flag value (`2m0s`, `30s`) in seconds (BadParameter when it is not one)."""
    try:
        return parse_duration(text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=flag) from None


def parse_ip(text: str, flag: str) -> str:
    """An IP address flag value, normalised (BadParameter when it is not one)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a valid IP address", param_hint=flag) from None


async def docker_answers(socket: str) -> bool:
    """Whether a Docker Engine answers on `socket`."""
    from kubelet.docker_api import DockerError, EngineClient

    engine = EngineClient(socket, timeout=2.0)
    try:
        await engine.ping()
        return True
    except DockerError:
        return False
    finally:
        await engine.close()


def make_runtime(kind: str, cfg: KubeletConfig, docker_socket: str, pause_image: str) -> ContainerRuntime:
    """The container runtime the flags ask for."""
    if kind == "docker":
        from kubelet.docker_runtime import PAUSE_IMAGE, DockerRuntime

        return DockerRuntime(cfg.root_dir, cfg.node_name, socket=docker_socket, pause_image=pause_image or PAUSE_IMAGE)
    return ProcessRuntime(cfg.root_dir, cfg.pod_cidr)


@command()
@option("--node-name", required=True, envvar="TINYKUBE_NODE_NAME", help="Name of the Node this kubelet registers.")
@server_option
@kubeconfig_option
@option(
    "--root-dir", default="", envvar="TINYKUBE_ROOT_DIR", help="State directory (default ~/.tinykube/kubelet/<node>)."
)
@option(
    "--node-ip",
    default="127.0.0.1",
    envvar="TINYKUBE_NODE_IP",
    help="The node's IP address: reported as its InternalIP, the hostIP of its pods; the kubelet server binds it.",
)
@option(
    "--address",
    default="",
    envvar="TINYKUBE_ADDRESS",
    help="Address the kubelet server listens on (default: --node-ip).",
)
@option(
    "--port",
    default=10250,
    envvar="TINYKUBE_PORT",
    help="Port of the kubelet server (logs, exec, stats, resource metrics).",
)
@option(
    "--tls-cert-file",
    default="",
    envvar="TINYKUBE_TLS_CERT_FILE",
    help="The kubelet server's certificate (PEM); without it: plain HTTP.",
)
@option(
    "--tls-private-key-file",
    default="",
    envvar="TINYKUBE_TLS_PRIVATE_KEY_FILE",
    help="The serving certificate's private key (PEM).",
)
@option(
    "--client-ca-file",
    default="",
    envvar="TINYKUBE_CLIENT_CA_FILE",
    help="CA bundle verifying client certificates of the kubelet server: CN is the user, each O a group.",
)
@option(
    "--anonymous-auth/--no-anonymous-auth",
    default=True,
    envvar="TINYKUBE_ANONYMOUS_AUTH",
    help="Serve requests without credentials as system:anonymous (else 401 Unauthorized).",
)
@option(
    "--authentication-token-webhook/--no-authentication-token-webhook",
    default=False,
    envvar="TINYKUBE_AUTHENTICATION_TOKEN_WEBHOOK",
    help="Authenticate bearer tokens with a TokenReview to the apiserver.",
)
@option(
    "--authentication-token-webhook-cache-ttl",
    default="2m0s",
    envvar="TINYKUBE_AUTHENTICATION_TOKEN_WEBHOOK_CACHE_TTL",
    help="How long TokenReview answers are kept.",
)
@option(
    "--authorization-mode",
    default="AlwaysAllow",
    envvar="TINYKUBE_AUTHORIZATION_MODE",
    help="AlwaysAllow, or Webhook: a SubjectAccessReview to the apiserver per request (answers cached).",
)
@option(
    "--authorization-webhook-cache-authorized-ttl",
    default="5m0s",
    envvar="TINYKUBE_AUTHORIZATION_WEBHOOK_CACHE_AUTHORIZED_TTL",
    help="How long allowed answers are kept.",
)
@option(
    "--authorization-webhook-cache-unauthorized-ttl",
    default="30s",
    envvar="TINYKUBE_AUTHORIZATION_WEBHOOK_CACHE_UNAUTHORIZED_TTL",
    help="How long denials are kept.",
)
@option("--health-port", default=10248, envvar="TINYKUBE_HEALTH_PORT", help="Port for /healthz (0 = off).")
@option(
    "--pod-cidr",
    default="",
    envvar="TINYKUBE_POD_CIDR",
    help="Pod IP range (default: a /24 in 127/8 from the node name).",
)
@option("--cpu", default="", envvar="TINYKUBE_CPU", help="CPU capacity to report (default: the host's).")
@option("--memory", default="", envvar="TINYKUBE_MEMORY", help="Memory capacity to report (default: the host's).")
@option("--max-pods", default=110, envvar="TINYKUBE_MAX_PODS", help="Pod capacity.")
@option("--node-labels", default="", envvar="TINYKUBE_NODE_LABELS", help="Extra node labels k=v,k2=v2.")
@option(
    "--register-with-taints",
    default="",
    envvar="TINYKUBE_REGISTER_WITH_TAINTS",
    help="Taints to register with: key=value:Effect,...",
)
@option(
    "--node-status-update-frequency",
    default=10.0,
    envvar="TINYKUBE_NODE_STATUS_UPDATE_FREQUENCY",
    help="Seconds between node status heartbeats.",
)
@option(
    "--node-lease-duration",
    default=40.0,
    envvar="TINYKUBE_NODE_LEASE_DURATION",
    help="Node Lease duration in seconds (renewed every 1/4).",
)
@option(
    "--cluster-dns",
    multiple=True,
    default=(),
    envvar="TINYKUBE_CLUSTER_DNS",
    help="DNS server IP for pods with dnsPolicy ClusterFirst (repeatable or comma-separated).",
)
@option(
    "--cluster-domain",
    default="cluster.local",
    envvar="TINYKUBE_CLUSTER_DOMAIN",
    help="Cluster domain added to pods' DNS search list.",
)
@option(
    "--resolv-conf",
    default="/etc/resolv.conf",
    envvar="TINYKUBE_RESOLV_CONF",
    help="Resolver configuration pods' DNS settings start from (dnsPolicy Default); '' = none.",
)
@option(
    "--simulated-nodes",
    default=0,
    envvar="TINYKUBE_SIMULATED_NODES",
    help="Instead of one real node, register this many simulated nodes <node-name>-<i> (kubelet.simulated).",
)
@option(
    "--housekeeping-interval",
    default=10.0,
    envvar="TINYKUBE_HOUSEKEEPING_INTERVAL",
    type=click.FloatRange(min=0.0),
    help="Seconds between resource stats collections (/stats/summary, /metrics/resource); 0 turns them off.",
)
@option(
    "--container-runtime",
    default="process",
    envvar="TINYKUBE_CONTAINER_RUNTIME",
    help="process (containers as local processes), docker (real images through a Docker Engine), "
    "or auto (docker when --container-runtime-endpoint answers, else process).",
)
@option(
    "--container-runtime-endpoint",
    default="unix:///var/run/docker.sock",
    envvar="TINYKUBE_CONTAINER_RUNTIME_ENDPOINT",
    help="The Docker Engine's socket (docker runtime).",
)
@option(
    "--pod-infra-container-image",
    default="",
    envvar="TINYKUBE_POD_INFRA_CONTAINER_IMAGE",
    help="The sandbox (pause) image of the docker runtime (default: a busybox image built locally).",
)
@log_level_option
def cli(
    node_name: str,
    server: str,
    kubeconfig: str,
    root_dir: str,
    node_ip: str,
    address: str,
    port: int,
    tls_cert_file: str,
    tls_private_key_file: str,
    client_ca_file: str,
    anonymous_auth: bool,
    authentication_token_webhook: bool,
    authentication_token_webhook_cache_ttl: str,
    authorization_mode: str,
    authorization_webhook_cache_authorized_ttl: str,
    authorization_webhook_cache_unauthorized_ttl: str,
    health_port: int,
    pod_cidr: str,
    cpu: str,
    memory: str,
    max_pods: int,
    node_labels: str,
    register_with_taints: str,
    node_status_update_frequency: float,
    node_lease_duration: float,
    cluster_dns: tuple[str, ...],
    cluster_domain: str,
    resolv_conf: str,
    simulated_nodes: int,
    housekeeping_interval: float,
    container_runtime: str,
    container_runtime_endpoint: str,
    pod_infra_container_image: str,
    log_level: str,
) -> None:
    """Run the kubelet: register the node and run the pods bound to it as local processes."""
    node_ip = parse_ip(node_ip, "--node-ip")
    if container_runtime not in ("process", "docker", "auto"):
        raise click.BadParameter(
            f"{container_runtime!r} is not a container runtime (process, docker, auto)",
            param_hint="--container-runtime",
        )
    docker_socket = container_runtime_endpoint.removeprefix("unix://")
    if address:
        address = parse_ip(address, "--address")
    dns_servers = tuple(parse_ip(ip, "--cluster-dns") for item in cluster_dns for ip in item.split(",") if ip.strip())
    auth = AuthOptions(
        tls_cert_file=tls_cert_file,
        tls_private_key_file=tls_private_key_file,
        client_ca_file=client_ca_file,
        anonymous_auth=anonymous_auth,
        authentication_token_webhook=authentication_token_webhook,
        token_webhook_cache_ttl=duration(
            authentication_token_webhook_cache_ttl, "--authentication-token-webhook-cache-ttl"
        ),
        authorization_mode=authorization_mode,
        authorized_ttl=duration(
            authorization_webhook_cache_authorized_ttl, "--authorization-webhook-cache-authorized-ttl"
        ),
        unauthorized_ttl=duration(
            authorization_webhook_cache_unauthorized_ttl, "--authorization-webhook-cache-unauthorized-ttl"
        ),
    )
    try:
        auth.check()
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    if simulated_nodes > 0:
        from kubelet.simulated import run_simulated

        sim_opts = ComponentOptions(
            name="kubelet-simulated",
            server=server or None,
            kubeconfig=kubeconfig or None,
            health_port=health_port,
            log_level=log_level,
        )
        run_simulated(
            sim_opts,
            node_name,
            simulated_nodes,
            cpu or "32",
            memory or "256Gi",
            max_pods,
            port,
            housekeeping_interval,
            auth=auth,
            lease_duration=max(1, round(node_lease_duration)),
        )
        return
    cfg = KubeletConfig(
        node_name=node_name,
        root_dir=Path(root_dir).expanduser() if root_dir else Path.home() / ".tinykube" / "kubelet" / node_name,
        pod_cidr=pod_cidr or default_pod_cidr(node_name),
        node_ip=node_ip,
        address=address,
        port=port,
        cpu=cpu,
        memory=memory,
        max_pods=max_pods,
        labels=parse_labels(node_labels),
        taints=parse_taints(register_with_taints),
        status_frequency=node_status_update_frequency,
        lease_duration=node_lease_duration,
        cluster_dns=dns_servers,
        cluster_domain=cluster_domain,
        resolv_conf=resolv_conf,
    )
    holder: dict[str, Kubelet] = {}
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main(api: ApiClient) -> None:
        runtime_kind = container_runtime
        if runtime_kind == "auto":
            runtime_kind = "docker" if await docker_answers(docker_socket) else "process"
        kubelet = holder["k"] = Kubelet(
            api, cfg, make_runtime(runtime_kind, cfg, docker_socket, pod_infra_container_image)
        )
        log.info("container runtime: %s", runtime_kind)
        runtime = kubelet.runtime
        collector = StatsCollector(
            cfg.node_name,
            lambda: runtime_targets(runtime.sandboxes(), runtime.list_containers),
            interval=housekeeping_interval,
            root_dir=cfg.root_dir,
            memory_capacity=int(parse_quantity(host_capacity(cfg.root_dir, cfg.cpu, cfg.memory)["memory"])),
        )
        server = None
        try:
            from kubelet.server import KubeletServer
        except ImportError:
            log.warning("kubelet/server.py is missing: no logs/exec server")
        else:
            server = KubeletServer(
                kubelet.runtime,
                host=cfg.bind_address,
                port=port,
                stats=collector.latest,
                tls=auth.tls(),
                auth=auth.build(api, lambda _address: cfg.node_name),
            )
            try:
                await server.start()
            except OSError as e:  # e.g. --node-ip is not an address of this machine
                raise OSError(
                    e.errno, f"kubelet server cannot listen on {cfg.bind_address}:{port}: {e.strerror}"
                ) from None
        collecting = asyncio.create_task(collector.run(), name="stats-collector")
        try:
            await kubelet.run()
        finally:
            collecting.cancel()
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.stop(), 5)

    opts = ComponentOptions(
        name="kubelet",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_bind="127.0.0.1",
        health_port=health_port,
        leader_elect=False,
        log_level=log_level,
        ready=lambda: "k" in holder and holder["k"].ready(),
        use_uvloop=False,
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
