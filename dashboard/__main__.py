"""`python -m dashboard`: serve the cluster dashboard (flags or TINYKUBE_* environment variables)."""

from __future__ import annotations

from apimachinery import gctuning, leanstart

gctuning.pause()  # until run_component freezes startup's objects
leanstart.skip_cli_modules()

import asyncio
import contextlib
import dataclasses
import logging
import socket

import uvicorn

from apimachinery.flags import command, log_level_option, option, server_option
from client.component import ComponentOptions, run_component
from client.rest import ApiClient
from dashboard.app import dashboard_app
from dashboard.proxy import ApiProxy, ProxyOptions

log = logging.getLogger("dashboard")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the component scaffold owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield

    def install_signal_handlers(self) -> None:
        return


@command()
@server_option
@option(
    "--kubeconfig",
    default="",
    envvar="KUBECONFIG",
    help="kubeconfig naming the server (and the CA to trust); its credentials are unused.",
)
@option("--bind-address", default="127.0.0.1", envvar="TINYKUBE_BIND_ADDRESS", help="Address the page is on.")
@option("--port", default=9090, envvar="TINYKUBE_PORT", help="Port the page is on.")
@option(
    "--health-port",
    default=9091,
    envvar="TINYKUBE_HEALTH_PORT",
    help="Port for /healthz, /readyz and /metrics on the bind address.",
)
@log_level_option
def cli(
    server: str,
    kubeconfig: str,
    bind_address: str,
    port: int,
    health_port: int,
    log_level: str,
) -> None:
    """Serve the dashboard page and pass its API requests, with the user's own credentials, to the apiserver."""
    started = asyncio.Event()

    async def main(api: ApiClient) -> None:
        if log_level.lower() != "debug":
            logging.getLogger("httpx").setLevel(logging.WARNING)
        try:
            sock = socket.create_server((bind_address, port))
        except OSError as e:
            raise RuntimeError(f"cannot serve the dashboard on {bind_address}:{port}: {e.strerror}") from None
        # trust the server as the kubeconfig says, but present none of its credentials: the page's own go up
        anonymous = dataclasses.replace(
            api.config, token=None, token_file=None, cert_file=None, cert_data=None, key_file=None, key_data=None
        )
        proxy = ApiProxy(anonymous.server, verify=anonymous.verify(), options=ProxyOptions())
        config = uvicorn.Config(
            dashboard_app(proxy),
            host=bind_address,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        web = _Server(config)
        task = asyncio.create_task(web.serve(sockets=[sock]))
        try:
            while not web.started:
                if task.done():
                    await task
                    raise RuntimeError(f"could not serve on {bind_address}:{port}")
                await asyncio.sleep(0.02)
            started.set()
            log.info("dashboard on http://%s:%d/ for the apiserver %s", bind_address, port, proxy.server)
            await task
        finally:
            web.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), 5)
            await proxy.aclose()

    opts = ComponentOptions(
        name="dashboard",
        server=server or None,
        kubeconfig=kubeconfig or None,
        health_bind=bind_address,
        health_port=health_port,
        log_level=log_level,
        ready=started.is_set,
    )
    run_component(opts, main)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
