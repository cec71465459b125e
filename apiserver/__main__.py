"""`python -m apiserver`: run the apiserver (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until the app's startup freezes startup's objects (apiserver/app.py)
leanstart.skip_cli_modules()

import asyncio
import ipaddress
import logging
import socket
from typing import TypeVar

import click
import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from apimachinery.eventloop import uvloop_factory
from apimachinery.flags import command, log_level_option, option
from apimachinery.httpserver import ServingLimits, bind_socket, raise_open_files_limit, uvicorn_options
from apimachinery.logs import setup_logging
from apimachinery.tlsserving import tls_options
from apiserver import memory
from apiserver.app import Config, create_app
from apiserver.authn.identity import AuthnOptions, parse_duration
from apiserver.chain.listener import INSECURE, SECURE, Listener
from apiserver.encryption import EncryptionConfigError, load_encryption_config
from apiserver.endpoint_reconciler import ReconcilerOptions
from apiserver.etcdclient import EtcdTLS, parse_endpoints
from apiserver.identity_lease import IdentityOptions
from apiserver.kubelet_client import KubeletClientConfig
from apiserver.portallocator import PortRange
from apiserver.security import SecurityConfig
from apiserver.storage import DEFAULT_MAX_OBJECT_BYTES


def _bool(value: str, flag: str) -> bool:
    """A Go-style boolean flag value (`--service-account-extend-token-expiration=false`)."""
    low = value.strip().lower()
    if low in ("true", "1", "t", "yes"):
        return True
    if low in ("false", "0", "f", "no"):
        return False
    raise click.BadParameter(f'invalid boolean "{value}"', param_hint=flag)


def _list(values: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable flag that may also hold comma-separated values."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


@command()
@option(
    "--etcd-servers",
    default="http://127.0.0.1:2379",
    envvar="TINYKUBE_ETCD_SERVERS",
    help="etcd endpoint(s), comma separated.",
)
@option(
    "--insecure-bind-address",
    default=None,
    envvar="TINYKUBE_INSECURE_BIND_ADDRESS",
    type=str,
    show_default=False,
    help="Address of the insecure port [default: 127.0.0.1].",
)
@option(
    "--insecure-port",
    default=None,
    envvar="TINYKUBE_INSECURE_PORT",
    type=int,
    show_default=False,
    help="Plain-HTTP port with full access, no authentication or authorization (0: none) [default: 8080].",
)
@option(
    "--secure-port",
    default=6443,
    envvar="TINYKUBE_SECURE_PORT",
    help="The secure port (HTTPS with authentication and authorization); 0 turns it off. Served only with "
    "--tls-cert-file.",
)
@option("--bind-address", default="0.0.0.0", envvar="TINYKUBE_BIND_ADDRESS", help="Address of the secure port.")
@option(
    "--advertise-address",
    default="",
    envvar="TINYKUBE_ADVERTISE_ADDRESS",
    help="Address the `kubernetes` Service's endpoints name [default: --bind-address, 127.0.0.1 for 0.0.0.0].",
)
@option(
    "--tls-cert-file", default="", envvar="TINYKUBE_TLS_CERT_FILE", help="The secure port's serving certificate (PEM)."
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
    help="CA bundle verifying client certificates: CN is the user, each O a group.",
)
@option(
    "--token-auth-file",
    default="",
    envvar="TINYKUBE_TOKEN_AUTH_FILE",
    help='Static bearer tokens, CSV: token,user,uid,"group1,group2".',
)
@option(
    "--service-account-key-file",
    default=(),
    multiple=True,
    envvar="TINYKUBE_SERVICE_ACCOUNT_KEY_FILE",
    help="PEM key(s) verifying ServiceAccount tokens (repeatable) [default: the signing key].",
)
@option(
    "--service-account-signing-key-file",
    default="",
    envvar="TINYKUBE_SERVICE_ACCOUNT_SIGNING_KEY_FILE",
    help="Private key signing ServiceAccount tokens (TokenRequest).",
)
@option(
    "--service-account-issuer",
    default=(),
    multiple=True,
    envvar="TINYKUBE_SERVICE_ACCOUNT_ISSUER",
    help="Issuer of ServiceAccount tokens (repeatable; the first signs) [default: "
    "https://kubernetes.default.svc.cluster.local].",
)
@option(
    "--api-audiences",
    default=(),
    multiple=True,
    envvar="TINYKUBE_API_AUDIENCES",
    help="Audiences of the API, comma separated [default: the issuers].",
)
@option(
    "--service-account-extend-token-expiration",
    default="true",
    envvar="TINYKUBE_SERVICE_ACCOUNT_EXTEND_TOKEN_EXPIRATION",
    help="Give projected tokens asked for 3607 s a year, warning after 3607 s (upstream's safe rollout).",
)
@option(
    "--service-account-max-token-expiration",
    default="",
    envvar="TINYKUBE_SERVICE_ACCOUNT_MAX_TOKEN_EXPIRATION",
    help="Longest lifetime a TokenRequest gets (a duration such as 48h) [default: no cap].",
)
@option("--port", default=None, envvar="TINYKUBE_PORT", type=int, hidden=True, help="Old name of --insecure-port.")
@option(
    "--watch-cache-size",
    default=1000,
    envvar="TINYKUBE_WATCH_CACHE_SIZE",
    help="Recent events kept per resource for watch resumes.",
)
@option(
    "--service-cluster-ip-range",
    default="127.96.0.0/16",
    envvar="TINYKUBE_SERVICE_CLUSTER_IP_RANGE",
    help="CIDR that Service cluster IPs are allocated from.",
)
@option(
    "--service-node-port-range",
    default="30000-32767",
    envvar="TINYKUBE_SERVICE_NODE_PORT_RANGE",
    help="Port range (low-high, inclusive) that Service node ports are allocated from.",
)
@option(
    "--service-repair-interval",
    default=180.0,
    envvar="TINYKUBE_SERVICE_REPAIR_INTERVAL",
    help="Seconds between passes recording unrecorded Service IPs/node ports and freeing leaked ones (0: once).",
)
@option(
    "--etcd-compaction-interval",
    default=300.0,
    envvar="TINYKUBE_ETCD_COMPACTION_INTERVAL",
    help="Seconds between etcd compactions (0 disables).",
)
@option(
    "--default-not-ready-toleration-seconds",
    default=300,
    envvar="TINYKUBE_DEFAULT_NOT_READY_TOLERATION_SECONDS",
    help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod.",
)
@option(
    "--default-unreachable-toleration-seconds",
    default=300,
    envvar="TINYKUBE_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
    help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod.",
)
@option(
    "--max-requests-inflight",
    default=400,
    envvar="TINYKUBE_MAX_REQUESTS_INFLIGHT",
    help="Most non-mutating requests in flight at once; more get 429 (0: no limit).",
)
@option(
    "--max-mutating-requests-inflight",
    default=200,
    envvar="TINYKUBE_MAX_MUTATING_REQUESTS_INFLIGHT",
    help="Most mutating requests in flight at once; more get 429 (0: no limit).",
)
@option(
    "--request-timeout",
    default=60.0,
    envvar="TINYKUBE_REQUEST_TIMEOUT",
    help="Seconds a non-long-running request may take.",
)
@option(
    "--audit-policy-file",
    default="",
    envvar="TINYKUBE_AUDIT_POLICY_FILE",
    help="audit.k8s.io/v1 Policy saying what to audit.",
)
@option(
    "--audit-log-path",
    default="",
    envvar="TINYKUBE_AUDIT_LOG_PATH",
    help="File the audit events are written to, one JSON per line (-: stdout).",
)
@option(
    "--anonymous-auth/--no-anonymous-auth",
    default=True,
    envvar="TINYKUBE_ANONYMOUS_AUTH",
    help="Serve requests without credentials as system:anonymous (else 401).",
)
@option(
    "--authorization-mode",
    default="",
    envvar="TINYKUBE_AUTHORIZATION_MODE",
    help="Comma-separated authorization modes, asked in order (empty: AlwaysAllow).",
)
@option(
    "--disable-admission-plugins",
    default=(),
    multiple=True,
    envvar="TINYKUBE_DISABLE_ADMISSION_PLUGINS",
    help="Admission plug-ins to turn off, comma separated (e.g. ServiceAccount where no controller-manager "
    "makes the default ServiceAccounts).",
)
@option(
    "--kubelet-client-certificate",
    default="",
    envvar="TINYKUBE_KUBELET_CLIENT_CERTIFICATE",
    help="Client certificate the apiserver presents to kubelets (pods/log, exec); kubelets are then dialled "
    "over HTTPS.",
)
@option(
    "--kubelet-client-key",
    default="",
    envvar="TINYKUBE_KUBELET_CLIENT_KEY",
    help="Key of --kubelet-client-certificate.",
)
@option(
    "--kubelet-certificate-authority",
    default="",
    envvar="TINYKUBE_KUBELET_CERTIFICATE_AUTHORITY",
    help="CA bundle verifying kubelets' serving certificates (without it they are not verified).",
)
@option(
    "--etcd-cafile",
    default="",
    envvar="TINYKUBE_ETCD_CAFILE",
    help="CA bundle that verifies the etcd servers (https endpoints).",
)
@option("--etcd-certfile", default="", envvar="TINYKUBE_ETCD_CERTFILE", help="Client certificate for etcd.")
@option("--etcd-keyfile", default="", envvar="TINYKUBE_ETCD_KEYFILE", help="Client key for etcd.")
@option(
    "--encryption-provider-config",
    default="",
    envvar="TINYKUBE_ENCRYPTION_PROVIDER_CONFIG",
    help="EncryptionConfiguration file: resources encrypted at rest (aescbc, aesgcm, secretbox, identity).",
)
@option(
    "--max-object-size-bytes",
    default=DEFAULT_MAX_OBJECT_BYTES,
    envvar="TINYKUBE_MAX_OBJECT_SIZE_BYTES",
    type=int,
    help="Largest object as stored in etcd (413 past it; match etcd's --max-request-bytes; 0: etcd decides).",
)
@option(
    "--max-request-body-bytes",
    default=ServingLimits.max_request_body_bytes,
    envvar="TINYKUBE_MAX_REQUEST_BODY_BYTES",
    type=int,
    help="Largest request body accepted (413 past it, before it is read whole; 0: no bound).",
)
@option(
    "--request-body-timeout",
    default=ServingLimits.request_body_timeout,
    envvar="TINYKUBE_REQUEST_BODY_TIMEOUT",
    type=float,
    help="Seconds a client has to send a whole request body (408 after).",
)
@option(
    "--max-header-bytes",
    default=ServingLimits.max_header_bytes,
    envvar="TINYKUBE_MAX_HEADER_BYTES",
    type=int,
    help="Largest request line plus headers accepted (431 past it).",
)
@option(
    "--header-timeout",
    default=ServingLimits.header_timeout,
    envvar="TINYKUBE_HEADER_TIMEOUT",
    type=float,
    help="Seconds a client has to send a request's headers before the connection is closed.",
)
@option(
    "--max-open-connections",
    default=ServingLimits.max_open_connections,
    envvar="TINYKUBE_MAX_OPEN_CONNECTIONS",
    type=int,
    help="Open connections served at once (more are answered 503 and closed; 0: no bound).",
)
@option(
    "--max-connections-per-client",
    default=ServingLimits.max_connections_per_client,
    envvar="TINYKUBE_MAX_CONNECTIONS_PER_CLIENT",
    type=int,
    help="Open connections from one client address (more are answered 429 and closed; 0: no bound).",
)
@option(
    "--permit-port-sharing/--no-permit-port-sharing",
    default=False,
    envvar="TINYKUBE_PERMIT_PORT_SHARING",
    help="Bind the ports with SO_REUSEPORT, so that several apiserver processes serve the same address and port.",
)
@option(
    "--apiserver-identity",
    default="",
    envvar="TINYKUBE_APISERVER_IDENTITY",
    help="What the identity Lease's name (apiserver-<hash>) is hashed from [default: the hostname]; processes "
    "sharing a host need one each.",
)
@option(
    "--identity-lease-duration-seconds",
    default=3600,
    envvar="TINYKUBE_IDENTITY_LEASE_DURATION_SECONDS",
    help="leaseDurationSeconds of this apiserver's identity Lease in kube-system.",
)
@option(
    "--identity-lease-renew-interval-seconds",
    default=10.0,
    envvar="TINYKUBE_IDENTITY_LEASE_RENEW_INTERVAL_SECONDS",
    help="Seconds between renewals of the identity Lease.",
)
@option(
    "--identity-lease-gc-period-seconds",
    default=3600.0,
    envvar="TINYKUBE_IDENTITY_LEASE_GC_PERIOD_SECONDS",
    hidden=True,
    help="Seconds between collections.",
)
@option(
    "--endpoint-reconciler-type",
    default="lease",
    envvar="TINYKUBE_ENDPOINT_RECONCILER_TYPE",
    help="How the `kubernetes` Endpoints are kept: lease (every live apiserver's address, by TTL keys in etcd) "
    "or none.",
)
@option(
    "--master-lease-ttl-seconds",
    default=15,
    envvar="TINYKUBE_MASTER_LEASE_TTL_SECONDS",
    hidden=True,
    help="TTL of the endpoint reconciler's key.",
)
@option(
    "--endpoint-reconciler-interval-seconds",
    default=10.0,
    envvar="TINYKUBE_ENDPOINT_RECONCILER_INTERVAL_SECONDS",
    hidden=True,
    help="Seconds between reconciles.",
)
@log_level_option
def cli(
    etcd_servers: str,
    insecure_bind_address: str | None,
    insecure_port: int | None,
    secure_port: int,
    bind_address: str,
    advertise_address: str,
    tls_cert_file: str,
    tls_private_key_file: str,
    client_ca_file: str,
    token_auth_file: str,
    service_account_key_file: tuple[str, ...],
    service_account_signing_key_file: str,
    service_account_issuer: tuple[str, ...],
    api_audiences: tuple[str, ...],
    service_account_extend_token_expiration: str,
    service_account_max_token_expiration: str,
    port: int | None,
    watch_cache_size: int,
    service_cluster_ip_range: str,
    service_node_port_range: str,
    service_repair_interval: float,
    etcd_compaction_interval: float,
    default_not_ready_toleration_seconds: int,
    default_unreachable_toleration_seconds: int,
    max_requests_inflight: int,
    max_mutating_requests_inflight: int,
    request_timeout: float,
    audit_policy_file: str,
    audit_log_path: str,
    anonymous_auth: bool,
    authorization_mode: str,
    disable_admission_plugins: tuple[str, ...],
    kubelet_client_certificate: str,
    kubelet_client_key: str,
    kubelet_certificate_authority: str,
    etcd_cafile: str,
    etcd_certfile: str,
    etcd_keyfile: str,
    encryption_provider_config: str,
    max_object_size_bytes: int,
    max_request_body_bytes: int,
    request_body_timeout: float,
    max_header_bytes: int,
    header_timeout: float,
    max_open_connections: int,
    max_connections_per_client: int,
    permit_port_sharing: bool,
    apiserver_identity: str,
    identity_lease_duration_seconds: int,
    identity_lease_renew_interval_seconds: float,
    identity_lease_gc_period_seconds: float,
    endpoint_reconciler_type: str,
    master_lease_ttl_seconds: int,
    endpoint_reconciler_interval_seconds: float,
    log_level: str,
) -> None:
    """Serve the Kubernetes API on top of etcd: HTTPS on the secure port, plain HTTP on the insecure one."""
    setup_logging(log_level)
    if secure_port and not (tls_cert_file and tls_private_key_file):
        if tls_cert_file or tls_private_key_file:
            raise click.BadParameter("--tls-cert-file and --tls-private-key-file go together")
        logging.getLogger("apiserver").warning("no --tls-cert-file: the secure port %d is not served", secure_port)
        secure_port = 0
    max_expiration = 0
    if service_account_max_token_expiration:
        try:
            max_expiration = parse_duration(service_account_max_token_expiration)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--service-account-max-token-expiration") from e
        if not 3600 <= max_expiration <= 1 << 32:
            raise click.BadParameter("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")
    authentication = AuthnOptions(
        client_ca_file=client_ca_file,
        token_auth_file=token_auth_file,
        service_account_key_files=_list(service_account_key_file),
        service_account_signing_key_file=service_account_signing_key_file,
        service_account_issuers=_list(service_account_issuer),
        api_audiences=_list(api_audiences),
        service_account_extend_token_expiration=_bool(
            service_account_extend_token_expiration, "--service-account-extend-token-expiration"
        ),
        service_account_max_token_expiration=max_expiration,
    )
    try:
        PortRange.parse(service_node_port_range)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--service-node-port-range") from e
    try:
        ipaddress.ip_network(service_cluster_ip_range, strict=False)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--service-cluster-ip-range") from e
    try:
        parse_endpoints(etcd_servers)
        if encryption_provider_config:
            load_encryption_config(encryption_provider_config)
    except ValueError as e:
        hint = "--encryption-provider-config" if isinstance(e, EncryptionConfigError) else "--etcd-servers"
        raise click.BadParameter(str(e), param_hint=hint) from e
    if bool(kubelet_client_certificate) != bool(kubelet_client_key):
        raise click.BadParameter(
            "--kubelet-client-certificate and --kubelet-client-key go together", param_hint="--kubelet-client-key"
        )
    if endpoint_reconciler_type not in ("lease", "none"):
        raise click.BadParameter(
            f'unknown endpoint reconciler type "{endpoint_reconciler_type}" (lease, none)',
            param_hint="--endpoint-reconciler-type",
        )
    if bool(etcd_certfile) != bool(etcd_keyfile):
        raise click.BadParameter("--etcd-certfile and --etcd-keyfile go together", param_hint="--etcd-certfile")
    config = Config(
        etcd_servers=etcd_servers,
        insecure_bind_address=insecure_bind_address or "127.0.0.1",
        insecure_port=_first(insecure_port, port, 8080),
        secure_port=secure_port,
        advertise_address=advertise_address or (bind_address if bind_address not in ("0.0.0.0", "::") else "127.0.0.1"),
        max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight,
        request_timeout=request_timeout,
        audit_policy_file=audit_policy_file,
        audit_log_path=audit_log_path,
        etcd_tls=EtcdTLS(etcd_cafile, etcd_certfile, etcd_keyfile),
        encryption_provider_config=encryption_provider_config,
        max_object_size_bytes=max_object_size_bytes,
        kubelet=KubeletClientConfig(kubelet_client_certificate, kubelet_client_key, kubelet_certificate_authority),
        watch_cache_size=watch_cache_size,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        service_repair_interval=service_repair_interval,
        etcd_compaction_interval=etcd_compaction_interval,
        identity=IdentityOptions(
            identity=apiserver_identity or socket.gethostname(),
            lease_duration_seconds=identity_lease_duration_seconds,
            renew_interval=identity_lease_renew_interval_seconds,
            gc_period=identity_lease_gc_period_seconds,
        ),
        endpoint_reconciler=ReconcilerOptions(
            kind=endpoint_reconciler_type,
            lease_ttl_seconds=master_lease_ttl_seconds,
            interval=endpoint_reconciler_interval_seconds,
        ),
        security=SecurityConfig(
            authorization_modes=tuple(m.strip() for m in authorization_mode.split(",") if m.strip()),
            anonymous_auth=anonymous_auth,
            default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
            authentication=authentication,
            disable_admission_plugins=_list(disable_admission_plugins),
        ),
        serving=ServingLimits(
            max_request_body_bytes=max_request_body_bytes,
            request_body_timeout=request_body_timeout,
            max_header_bytes=max_header_bytes,
            header_timeout=header_timeout,
            max_open_connections=max_open_connections,
            max_connections_per_client=max_connections_per_client,
        ),
    )
    raise_open_files_limit()
    memory.configure()
    gctuning.tune()
    try:
        app = create_app(config)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    servers = []
    try:
        if config.insecure_port:
            sock = bind_socket(config.insecure_bind_address, config.insecure_port, reuse_port=permit_port_sharing)
            servers.append(_listener(app, INSECURE, sock, config.serving))
        if secure_port:
            tls = tls_options(tls_cert_file, tls_private_key_file, client_ca_file)
            sock = bind_socket(bind_address, secure_port, reuse_port=permit_port_sharing)
            servers.append(_listener(app, SECURE, sock, config.serving, **tls))
    except OSError as e:
        raise click.BadParameter(f"cannot bind: {e}") from e
    if not servers:
        raise click.BadParameter("no port to serve on: both --insecure-port and --secure-port are off")
    # uvloop, as uvicorn's own run() would pick: its TLS and transports are far cheaper than asyncio's
    with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
        runner.run(_serve(servers))
    if any(server.failed for server in servers):
        raise SystemExit(STARTUP_FAILURE)


T = TypeVar("T")


def _first(value: T | None, old_name: T | None, default: T) -> T:
    """A flag's value, else its old name's, else the default."""
    if value is not None:
        return value
    return old_name if old_name is not None else default


def _listener(app: FastAPI, name: str, sock: socket.socket, serving: ServingLimits, **tls: object) -> _Server:
    """One uvicorn server of the app on a bound socket, its requests marked with the listener's name."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        Listener(app, name),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=3,
        access_log=False,
        **(uvicorn_options(serving, tls=bool(tls)) | tls),  # type: ignore[arg-type]
    )
    return _Server(config, app, sock)


async def _serve(servers: list[_Server]) -> None:
    """Run every listener of the one app in this process. The first runs the app's lifespan (startup
    and shutdown); the others start listening once it has started. A signal stops them all. `/readyz` says
    ready only once every listener listens (`app.state.all_listening`)."""
    app = servers[0].app
    app.state.all_listening = False
    first = asyncio.create_task(servers[0].serve(sockets=[servers[0].sock]))
    listening = asyncio.create_task(servers[0].listening.wait())
    await asyncio.wait({first, listening}, return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if servers[0].failed:  # it could not listen: the others do not start
        await first
        return
    rest = []
    for server in servers[1:]:
        server.config.lifespan = "off"
        server.peers = servers
        rest.append(asyncio.create_task(server.serve(sockets=[server.sock])))
    servers[0].peers = servers
    all_up = asyncio.create_task(_every_one_listening(servers))
    await asyncio.wait({first, *rest, all_up}, return_when=asyncio.FIRST_COMPLETED)
    app.state.all_listening = all(server.listening.is_set() for server in servers)
    all_up.cancel()
    await asyncio.gather(first, *rest)


async def _every_one_listening(servers: list[_Server]) -> None:
    for server in servers:
        await server.listening.wait()


class _Server(uvicorn.Server):
    """uvicorn, ending open watch streams cleanly as soon as SIGTERM or SIGINT arrives."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, sock: socket.socket) -> None:
        super().__init__(config)
        self.app = app
        self.sock = sock  # bound by bind_socket; uvicorn listens on it once the app has started
        self.peers: list[_Server] = []  # the other listeners of the same app, stopped together
        self.listening = asyncio.Event()
        self.failed = False  # its socket could not listen

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start (the lifespan, if on, then the socket) and say so. A socket that could not listen stops every
        listener and then the process (`failed`), as a bind error does: uvloop closes such a socket and serves
        nothing without a word (another process bound the same port with SO_REUSEADDR before either listened,
        and listened first)."""
        await super().startup(sockets)
        if sockets and any(None in (server.sockets or [None]) for server in self.servers):
            where = f"{self.config.host}:{self.config.port}"
            logging.getLogger("apiserver").error("cannot listen on %s: address already in use", where)
            self.failed = True
            if self.config.lifespan != "off":  # the app started here: it stops here (uvicorn skips it now)
                await self.lifespan.shutdown()
            for server in (self, *self.peers):
                server.should_exit = True
            return
        self.listening.set()

    def handle_exit(self, sig: int, frame: object) -> None:
        cache = self.app.state.registry.cache
        try:
            asyncio.get_running_loop().call_soon_threadsafe(cache.close_watches)
        except RuntimeError:
            logging.getLogger("apiserver").warning("no running loop at shutdown signal")
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        for peer in self.peers:
            peer.should_exit = True
            peer.force_exit = peer.force_exit or self.force_exit
        self._captured_signals.clear()  # handled: exit 0 after a graceful shutdown


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
