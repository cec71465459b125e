"""Unit tests for client.config: kubeconfig contexts, paths, merging, flags and credentials."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from client.config import Config, ConfigError, TokenAuth, load_config, load_kubeconfig

OPENSSL_SELF_SIGNED = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=t", "-days", "1"]


def kubeconfig(path: Path, **overrides: Any) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "clusters": [
            {
                "name": "dev-cluster",
                "cluster": {"server": "https://dev.example:6443/", "certificate-authority": "ca.pem"},
            },
            {"name": "prod-cluster", "cluster": {"server": "https://prod.example", "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "dev-user", "user": {"token": "s3cret"}},
            {
                "name": "prod-user",
                "user": {"tokenFile": "token.txt", "client-certificate": "certs/c.pem", "client-key": "/abs/k.pem"},
            },
        ],
        "contexts": [
            {"name": "dev", "context": {"cluster": "dev-cluster", "user": "dev-user", "namespace": "team"}},
            {"name": "prod", "context": {"cluster": "prod-cluster", "user": "prod-user"}},
        ],
    }
    doc.update(overrides)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_current_context(tmp_path: Path) -> None:
    cfg = load_kubeconfig(kubeconfig(tmp_path / "config"))
    assert cfg.server == "https://dev.example:6443"
    assert cfg.token == "s3cret" and cfg.namespace == "team"
    assert cfg.ca_file == str(tmp_path / "ca.pem")  # relative to the kubeconfig's directory
    assert "s3cret" not in repr(cfg)


def test_named_context_token_file_and_insecure(tmp_path: Path) -> None:
    cfg = load_kubeconfig(kubeconfig(tmp_path / "config"), context="prod")
    assert cfg.server == "https://prod.example" and cfg.insecure_skip_tls_verify
    assert cfg.token is None and cfg.token_file == str(tmp_path / "token.txt")
    assert cfg.cert_file == str(tmp_path / "certs/c.pem") and cfg.key_file == "/abs/k.pem"
    assert cfg.namespace == "default"
    ctx = replace(cfg, cert_file=None, key_file=None).verify()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_NONE


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_kubeconfig(kubeconfig(tmp_path / "config"), context="nope")
    with pytest.raises(ConfigError, match="no kubeconfig"):
        load_kubeconfig(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no current-context"):
        load_kubeconfig(kubeconfig(tmp_path / "c2", **{"current-context": ""}))


def test_kubeconfig_env_merges_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "a"
    first.write_text(
        yaml.safe_dump(
            {
                "current-context": "prod",
                "clusters": [{"name": "prod-cluster", "cluster": {"server": "http://override:8080"}}],
            }
        )
    )
    second = kubeconfig(tmp_path / "b")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'absent'}:{second}")
    cfg = load_kubeconfig()
    assert cfg.server == "http://override:8080"  # first definition of prod-cluster wins
    assert cfg.token_file == str(tmp_path / "token.txt")


def test_flags_override_and_flags_alone(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    cfg = load_config(path, server="http://127.0.0.1:9", token="flag-token", namespace="x")
    assert (cfg.server, cfg.token, cfg.namespace) == ("http://127.0.0.1:9", "flag-token", "x")
    assert cfg.ca_file == str(tmp_path / "ca.pem")
    bare = Config.from_flags("http://h:1/", "t")
    assert (bare.server, bare.token, bare.verify()) == ("http://h:1", "t", True)
    with pytest.raises(ConfigError):
        Config.from_flags("")


def test_flags_alone_without_any_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    assert load_config(server="http://h:2").server == "http://h:2"
    with pytest.raises(ConfigError):
        load_config()


def test_token_auth_sets_header_and_rereads_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("one\n")
    auth = TokenAuth(None, str(token_file))
    request = httpx.Request("GET", "http://x/")
    next(auth.auth_flow(request))
    assert request.headers["Authorization"] == "Bearer one"
    token_file.write_text("two")
    monkeypatch.setattr("client.config.TOKEN_FILE_REFRESH", 0.0)
    next(auth.auth_flow(request))
    assert request.headers["Authorization"] == "Bearer two"
    assert Config.from_flags("http://x").auth() is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_client_certificate_and_ca_from_inline_data(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    path = kubeconfig(
        tmp_path / "config",
        clusters=[
            {
                "name": "dev-cluster",
                "cluster": {
                    "server": "https://dev.example",
                    "certificate-authority-data": base64.b64encode(cert.read_bytes()).decode(),
                },
            }
        ],
        users=[
            {
                "name": "dev-user",
                "user": {
                    "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
                    "client-key-data": base64.b64encode(key.read_bytes()).decode(),
                },
            }
        ],
    )
    cfg = load_kubeconfig(path)
    assert cfg.ca_data and cfg.cert_data and cfg.key_data and "PRIVATE" not in repr(cfg)
    ctx = cfg.verify()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1
    no_key = Config("https://x", cert_file=str(cert))
    with pytest.raises(ConfigError, match="client key"):
        no_key.verify()
