"""`python -m apiserver`: run the apiserver (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

import ipaddress
import logging

import typer

from apimachinery.logs import setup_logging
from apiserver.app import Config, create_app
from apiserver.authn.identity import AuthnOptions, parse_duration
from apiserver.portallocator import PortRange
from apiserver.security import SecurityConfig
from apiserver.serving import Listener, TLSFiles, serve

cli = typer.Typer(add_completion=False)


def _bool(value: str, flag: str) -> bool:
    """A Go-style boolean flag value (`--anonymous-auth=false`)."""
    low = value.strip().lower()
    if low in ("true", "1", "t", "yes"):
        return True
    if low in ("false", "0", "f", "no"):
        return False
    raise typer.BadParameter(f'invalid boolean "{value}"', param_hint=flag)


def _list(values: list[str]) -> tuple[str, ...]:
    """A repeatable flag that may also hold comma-separated values."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


@cli.command()
def run(
    etcd_servers: str = typer.Option(
        "http://127.0.0.1:2379",
        envvar="TINYKUBE_ETCD_SERVERS",
        help="etcd endpoint(s), comma separated.",
    ),
    insecure_bind_address: str = typer.Option(
        "127.0.0.1",
        "--insecure-bind-address",
        envvar="TINYKUBE_INSECURE_BIND_ADDRESS",
        help="Address of the insecure port. It has full access (no authentication, no authorization): keep it "
        "on 127.0.0.1.",
    ),
    port: int = typer.Option(
        8080,
        "--insecure-port",
        "--port",
        envvar="TINYKUBE_PORT",
        help="The insecure port (plain HTTP, full access as system:unsecured); 0 turns it off.",
    ),
    secure_port: int = typer.Option(
        6443,
        envvar="TINYKUBE_SECURE_PORT",
        help="The secure port (HTTPS with authentication and authorization); 0 turns it off. Served only with "
        "--tls-cert-file.",
    ),
    bind_address: str = typer.Option("0.0.0.0", envvar="TINYKUBE_BIND_ADDRESS", help="Address of the secure port."),
    advertise_address: str = typer.Option(
        "",
        envvar="TINYKUBE_ADVERTISE_ADDRESS",
        help="Address the `kubernetes` Service's endpoints name [default: --bind-address, 127.0.0.1 for 0.0.0.0].",
    ),
    tls_cert_file: str = typer.Option(
        "", envvar="TINYKUBE_TLS_CERT_FILE", help="The secure port's serving certificate (PEM)."
    ),
    tls_private_key_file: str = typer.Option(
        "", envvar="TINYKUBE_TLS_PRIVATE_KEY_FILE", help="The serving certificate's private key (PEM)."
    ),
    client_ca_file: str = typer.Option(
        "",
        envvar="TINYKUBE_CLIENT_CA_FILE",
        help="CA bundle verifying client certificates: CN is the user, each O a group.",
    ),
    token_auth_file: str = typer.Option(
        "",
        envvar="TINYKUBE_TOKEN_AUTH_FILE",
        help='Static bearer tokens, CSV: token,user,uid,"group1,group2".',
    ),
    service_account_key_file: list[str] = typer.Option(
        [],
        envvar="TINYKUBE_SERVICE_ACCOUNT_KEY_FILE",
        help="PEM key(s) verifying ServiceAccount tokens (repeatable) [default: the signing key].",
    ),
    service_account_signing_key_file: str = typer.Option(
        "",
        envvar="TINYKUBE_SERVICE_ACCOUNT_SIGNING_KEY_FILE",
        help="Private key signing ServiceAccount tokens (TokenRequest).",
    ),
    service_account_issuer: list[str] = typer.Option(
        [],
        envvar="TINYKUBE_SERVICE_ACCOUNT_ISSUER",
        help="Issuer of ServiceAccount tokens (repeatable; the first signs) [default: "
        "https://kubernetes.default.svc.cluster.local].",
    ),
    api_audiences: list[str] = typer.Option(
        [],
        envvar="TINYKUBE_API_AUDIENCES",
        help="Audiences of the API, comma separated [default: the issuers].",
    ),
    service_account_extend_token_expiration: str = typer.Option(
        "true",
        envvar="TINYKUBE_SERVICE_ACCOUNT_EXTEND_TOKEN_EXPIRATION",
        help="Give projected tokens asked for 3607 s a year, warning after 3607 s (upstream's safe rollout).",
    ),
    service_account_max_token_expiration: str = typer.Option(
        "",
        envvar="TINYKUBE_SERVICE_ACCOUNT_MAX_TOKEN_EXPIRATION",
        help="Longest lifetime a TokenRequest gets (a duration such as 48h) [default: no cap].",
    ),
    anonymous_auth: str = typer.Option(
        "true",
        envvar="TINYKUBE_ANONYMOUS_AUTH",
        help="Requests without credentials run as system:anonymous (false: they are 401).",
    ),
    watch_cache_size: int = typer.Option(
        1000,
        envvar="TINYKUBE_WATCH_CACHE_SIZE",
        help="Recent events kept per resource for watch resumes.",
    ),
    service_cluster_ip_range: str = typer.Option(
        "127.96.0.0/16",
        envvar="TINYKUBE_SERVICE_CLUSTER_IP_RANGE",
        help="CIDR that Service cluster IPs are allocated from.",
    ),
    service_node_port_range: str = typer.Option(
        "30000-32767",
        envvar="TINYKUBE_SERVICE_NODE_PORT_RANGE",
        help="Port range (low-high, inclusive) that Service node ports are allocated from.",
    ),
    service_repair_interval: float = typer.Option(
        180.0,
        envvar="TINYKUBE_SERVICE_REPAIR_INTERVAL",
        help="Seconds between passes recording unrecorded Service IPs/node ports and freeing leaked ones (0: once).",
    ),
    etcd_compaction_interval: float = typer.Option(
        300.0,
        envvar="TINYKUBE_ETCD_COMPACTION_INTERVAL",
        help="Seconds between etcd compactions (0 disables).",
    ),
    default_not_ready_toleration_seconds: int = typer.Option(
        300,
        envvar="TINYKUBE_DEFAULT_NOT_READY_TOLERATION_SECONDS",
        help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod.",
    ),
    default_unreachable_toleration_seconds: int = typer.Option(
        300,
        envvar="TINYKUBE_DEFAULT_UNREACHABLE_TOLERATION_SECONDS",
        help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod.",
    ),
    authorization_mode: str = typer.Option(
        "",
        envvar="TINYKUBE_AUTHORIZATION_MODE",
        help="Comma-separated authorization modes, asked in order (empty: AlwaysAllow).",
    ),
    disable_admission_plugins: list[str] = typer.Option(
        [],
        envvar="TINYKUBE_DISABLE_ADMISSION_PLUGINS",
        help="Admission plug-ins to turn off, comma separated (e.g. ServiceAccount where no controller-manager "
        "makes the default ServiceAccounts).",
    ),
    log_level: str = typer.Option("info", envvar="TINYKUBE_LOG_LEVEL", help="Log level."),
) -> None:
    """Serve the Kubernetes API on top of etcd: HTTPS on the secure port, plain HTTP on the insecure one."""
    setup_logging(log_level)
    if secure_port and not (tls_cert_file and tls_private_key_file):
        if tls_cert_file or tls_private_key_file:
            raise typer.BadParameter("--tls-cert-file and --tls-private-key-file go together")
        logging.getLogger("apiserver").warning("no --tls-cert-file: the secure port %d is not served", secure_port)
        secure_port = 0
    if not port and not secure_port:
        raise typer.BadParameter("both the insecure and the secure port are off: nothing to serve")
    max_expiration = 0
    if service_account_max_token_expiration:
        try:
            max_expiration = parse_duration(service_account_max_token_expiration)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--service-account-max-token-expiration") from e
        if not 3600 <= max_expiration <= 1 << 32:
            raise typer.BadParameter("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")
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
        anonymous_auth=_bool(anonymous_auth, "--anonymous-auth"),
    )
    try:
        PortRange.parse(service_node_port_range)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--service-node-port-range") from e
    try:
        ipaddress.ip_network(service_cluster_ip_range, strict=False)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--service-cluster-ip-range") from e
    config = Config(
        etcd_servers=etcd_servers,
        bind_address=insecure_bind_address,
        port=port,
        secure_port=secure_port,
        advertise_address=advertise_address or (bind_address if bind_address not in ("0.0.0.0", "::") else "127.0.0.1"),
        watch_cache_size=watch_cache_size,
        service_cluster_ip_range=service_cluster_ip_range,
        service_node_port_range=service_node_port_range,
        service_repair_interval=service_repair_interval,
        etcd_compaction_interval=etcd_compaction_interval,
        security=SecurityConfig(
            authorization_modes=tuple(m.strip() for m in authorization_mode.split(",") if m.strip()),
            default_not_ready_toleration_seconds=default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds=default_unreachable_toleration_seconds,
            authentication=authentication,
            disable_admission_plugins=_list(disable_admission_plugins),
        ),
    )
    try:
        app = create_app(config)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    listeners = []
    if port:
        listeners.append(Listener(insecure_bind_address, port))
    if secure_port:
        tls = TLSFiles(tls_cert_file, tls_private_key_file, client_ca_file)
        listeners.append(Listener(bind_address, secure_port, tls))
    # open watch streams end cleanly as soon as SIGTERM or SIGINT arrives
    serve(app, listeners, on_signal=app.state.registry.cache.close_watches)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
