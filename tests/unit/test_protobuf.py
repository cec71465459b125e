"""Tests for apiserver.protobuf against bodies that the real kubectl 1.35 sends."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from apiserver.protobuf import (
    MAGIC,
    SUPPORTED_KINDS,
    ProtobufError,
    decode_protobuf,
    is_protobuf,
)
from tinykube.kubectl_binary import ensure_kubectl

_Run = Callable[[str, list[str]], subprocess.CompletedProcess[str]]

# --------------------------------------------------------------------------- stub apiserver

_RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "/api/v1": [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("pods", "Pod", True),
    ],
    "/apis/apps/v1": [("deployments", "Deployment", True)],
    "/apis/batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "/apis/networking.k8s.io/v1": [("ingresses", "Ingress", True)],
    "/apis/rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("clusterroles", "ClusterRole", False),
        ("rolebindings", "RoleBinding", True),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "/apis/authorization.k8s.io/v1": [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
    ],
    "/apis/policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "/apis/scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False)],
}


class _Recorder:
    """Requests seen by the stub server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[tuple[str, str, bytes]] = []


def _handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class bound to recorder."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, obj: Any) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/api":
                self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            elif path == "/apis":
                groups = [
                    {
                        "name": group,
                        "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"},
                    }
                    for group in (
                        "apps",
                        "batch",
                        "networking.k8s.io",
                        "rbac.authorization.k8s.io",
                        "authorization.k8s.io",
                        "policy",
                        "scheduling.k8s.io",
                    )
                ]
                self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
            elif path in _RESOURCES:
                group_version = path.removeprefix("/apis/").removeprefix("/api/")
                resources = [
                    {"name": name, "namespaced": namespaced, "kind": kind, "verbs": ["create"]}
                    for name, kind, namespaced in _RESOURCES[path]
                ]
                self._send(
                    200,
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": group_version,
                        "resources": resources,
                    },
                )
            else:
                self._send(404, {"kind": "Status", "apiVersion": "v1", "code": 404})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type = self.headers.get("Content-Type", "")
            with recorder.lock:
                recorder.posts.append((self.path, content_type, body))
            try:
                echo = decode_protobuf(body) if is_protobuf(content_type) else json.loads(body)
            except (ProtobufError, ValueError) as exc:
                self._send(400, {"kind": "Status", "apiVersion": "v1", "message": str(exc)})
                return
            self._send(201, echo)

    return Handler


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, _Recorder]]:
    recorder = _Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Run]:
    binary = ensure_kubectl()
    home = tmp_path_factory.mktemp("kubectl-home")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": os.devnull,
    }

    def run(server: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        cmd = [str(binary), "--server", server, "--cache-dir", str(home / "cache"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    yield run


def _prune(value: Any) -> Any:
    """Drop null values and empty objects/lists (Go JSON emits those for empty structs)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


# --------------------------------------------------------------------------- real kubectl cases

_CASES: list[tuple[str, list[str]]] = [
    ("configmap", ["create", "configmap", "x", "--from-literal=a=b", "--from-literal=empty="]),
    (
        "configmap-ns-annotated",
        ["create", "configmap", "y", "-n", "team", "--from-literal=k=v", "--save-config"],
    ),
    ("configmap-binary", ["create", "configmap", "bin", "--from-file=blob={blob}"]),
    ("secret", ["create", "secret", "generic", "s", "--from-literal=k=v"]),
    (
        "secret-typed",
        ["create", "secret", "generic", "t", "--type=example.com/x", "--from-literal=a=1"],
    ),
    (
        "secret-docker",
        [
            "create",
            "secret",
            "docker-registry",
            "r",
            "--docker-server=reg.example",
            "--docker-username=u",
            "--docker-password=p",
        ],
    ),
    ("namespace", ["create", "namespace", "n"]),
    ("deployment", ["create", "deployment", "d", "--image=nginx", "--replicas=2", "--port=80"]),
    ("deployment-zero", ["create", "deployment", "z", "--image=nginx", "--replicas=0"]),
    ("deployment-multi", ["create", "deployment", "m", "--image=nginx", "--image=redis"]),
    ("deployment-command", ["create", "deployment", "c", "--image=busybox", "--", "sleep", "1"]),
    ("service-clusterip", ["create", "service", "clusterip", "s", "--tcp=80:8080"]),
    ("service-headless", ["create", "service", "clusterip", "h", "--clusterip=None"]),
    (
        "service-nodeport",
        ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    ),
    ("service-loadbalancer", ["create", "service", "loadbalancer", "lb", "--tcp=443:https"]),
    (
        "service-externalname",
        ["create", "service", "externalname", "e", "--external-name=example.com"],
    ),
    ("job", ["create", "job", "j", "--image=busybox", "--", "echo", "hi"]),
    (
        "cronjob",
        ["create", "cronjob", "c", "--image=busybox", "--schedule=*/1 * * * *", "--", "date"],
    ),
    (
        "cronjob-never",
        [
            "create",
            "cronjob",
            "cn",
            "--image=busybox",
            "--schedule=0 0 * * *",
            "--restart=Never",
        ],
    ),
    ("serviceaccount", ["create", "serviceaccount", "sa"]),
    ("quota", ["create", "quota", "q", "--hard=pods=2,requests.cpu=500m,limits.memory=1Gi"]),
    (
        "quota-scopes",
        ["create", "quota", "qs", "--hard=pods=2", "--scopes=BestEffort,NotTerminating"],
    ),
    ("ingress", ["create", "ingress", "simple", "--rule=foo.com/bar=svc1:8080,tls=my-cert"]),
    ("role", ["create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps"]),
    ("role-names", ["create", "role", "rn", "--verb=get", "--resource=pods", "--resource-name=a,b"]),
    ("clusterrole-urls", ["create", "clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*,/healthz"]),
    (
        "clusterrole-aggregated",
        ["create", "clusterrole", "agg", "--aggregation-rule=rbac.example.com/aggregate-to-monitoring=true"],
    ),
    (
        "rolebinding",
        ["create", "rolebinding", "rb", "--role=r", "--user=alice", "--group=devs", "--serviceaccount=ns:sa"],
    ),
    ("clusterrolebinding", ["create", "clusterrolebinding", "crb", "--clusterrole=view", "--user=bob"]),
    ("pdb", ["create", "poddisruptionbudget", "pdb", "--selector=app=x", "--min-available=50%"]),
    ("pdb-max", ["create", "poddisruptionbudget", "pdbm", "--selector=app=x", "--max-unavailable=1"]),
    ("priorityclass", ["create", "priorityclass", "pc", "--value=1000", "--description=high"]),
    (
        "ingress-class-default-backend",
        [
            "create",
            "ingress",
            "ing",
            "--class=tinykube",
            "--default-backend=defaultsvc:http",
            "--rule=/path*=svc:port",
            "--rule=*.example.com/=web:80",
            "--annotation=a=b",
        ],
    ),
]


@pytest.mark.parametrize("args", [c[1] for c in _CASES], ids=[c[0] for c in _CASES])
def test_decode_matches_kubectl_dry_run(
    args: list[str], stub: tuple[str, _Recorder], kubectl: _Run, tmp_path: Path
) -> None:
    server, recorder = stub
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)))
    args = [a.replace("{blob}", str(blob)) for a in args]

    with recorder.lock:
        recorder.posts.clear()
    created = kubectl(server, args)
    with recorder.lock:
        posts = list(recorder.posts)
    assert len(posts) == 1, (created.stdout, created.stderr, posts)
    _path, content_type, body = posts[0]
    assert is_protobuf(content_type), content_type
    assert body.startswith(MAGIC)
    # The stub echoes the decoded object; kubectl must accept it as the created object.
    assert created.returncode == 0, created.stderr
    assert "created" in created.stdout

    decoded = decode_protobuf(body)
    # Flags go right after "create": anything after "--" is the container command.
    dry = kubectl(server, [args[0], "--dry-run=client", "-o", "json", *args[1:]])
    assert dry.returncode == 0, dry.stderr
    expected = json.loads(dry.stdout)
    assert _prune(decoded) == _prune(expected)
    # Decoded objects carry no nulls or empty structs themselves.
    assert _prune(decoded) == decoded


def test_kubectl_bodies_decode_specific_values(stub: tuple[str, _Recorder], kubectl: _Run) -> None:
    server, recorder = stub

    def post(args: list[str]) -> dict[str, Any]:
        with recorder.lock:
            recorder.posts.clear()
        kubectl(server, args)
        with recorder.lock:
            assert len(recorder.posts) == 1
            return decode_protobuf(recorder.posts[0][2])

    secret = post(["create", "secret", "generic", "sv", "--from-literal=k=v"])
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sv"},
        "data": {"k": "dg=="},
    }
    dep = post(["create", "deployment", "dz", "--image=nginx", "--replicas=0"])
    assert dep["spec"]["replicas"] == 0
    svc = post(["create", "service", "loadbalancer", "lbs", "--tcp=443:https"])
    assert svc["spec"]["ports"][0]["targetPort"] == "https"
    assert svc["spec"]["type"] == "LoadBalancer"
    cron = post(["create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *"])
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert job_spec["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_kubectl_auth_can_i_bodies(stub: tuple[str, _Recorder], kubectl: _Run) -> None:
    """`kubectl auth can-i` sends SelfSubjectAccessReview / SelfSubjectRulesReview bodies in protobuf."""
    server, recorder = stub

    def post(args: list[str]) -> tuple[str, dict[str, Any]]:
        with recorder.lock:
            recorder.posts.clear()
        kubectl(server, args)
        with recorder.lock:
            assert len(recorder.posts) == 1, recorder.posts
            path, content_type, body = recorder.posts[0]
        assert is_protobuf(content_type), content_type
        return path, decode_protobuf(body)

    path, review = post(["auth", "can-i", "list", "pods", "-n", "demo"])
    assert path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    assert review == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "demo", "verb": "list", "resource": "pods"}},
        "status": {"allowed": False},  # SubjectAccessReviewStatus.Allowed has no omitempty: Go writes it
    }
    _, review = post(["auth", "can-i", "get", "/healthz"])
    assert review["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    _, review = post(["auth", "can-i", "update", "deployments.apps/web", "--subresource=scale", "-n", "x"])
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "x",
        "verb": "update",
        "group": "apps",
        "resource": "deployments",
        "subresource": "scale",
        "name": "web",
    }
    path, rules = post(["auth", "can-i", "--list", "-n", "demo"])
    assert path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    assert rules["spec"] == {"namespace": "demo"}


# --------------------------------------------------------------------------- hand-built vectors


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _vi(num: int, n: int) -> bytes:
    return _varint(num << 3) + _varint(n)


def _ld(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _st(num: int, text: str) -> bytes:
    return _ld(num, text.encode())


def _entry(num: int, key: str, value: bytes) -> bytes:
    return _ld(num, _st(1, key) + _ld(2, value))


def _envelope(api_version: str, kind: str, raw: bytes, extra: bytes = b"") -> bytes:
    return MAGIC + _ld(1, _st(1, api_version) + _st(2, kind)) + _ld(2, raw) + extra


def test_deployment_full_pod_template() -> None:
    owner = _st(5, "apps/v1") + _st(1, "ReplicaSet") + _st(3, "rs") + _st(4, "u1") + _vi(6, 1)
    meta = (
        _st(1, "web")
        + _st(2, "")
        + _st(3, "prod")
        + _vi(7, 0)
        + _ld(8, _vi(1, 1_700_000_000))
        + _vi(10, 0)
        + _entry(11, "app", b"web")
        + _entry(12, "note", b"")
        + _ld(13, owner)
        + _st(14, "example.com/guard")
    )
    env_value = _st(1, "A") + _st(2, "1")
    env_ref = _st(1, "B") + _ld(3, _ld(3, _ld(1, _st(1, "cfg")) + _st(2, "key")))
    env_field = _st(1, "C") + _ld(3, _ld(1, _st(2, "metadata.name")))
    resources = _entry(1, "cpu", _st(1, "500m")) + _entry(2, "memory", _st(1, "64Mi"))
    probe = _ld(1, _ld(2, _st(1, "/healthz") + _ld(2, _vi(1, 1) + _st(3, "http")))) + _vi(4, 5)
    security = _vi(4, 1000) + _vi(5, 1) + _ld(1, _st(2, "ALL")) + _vi(99, 7)
    container = (
        _st(1, "app")
        + _st(2, "nginx:1.27")
        + _st(3, "nginx")
        + _st(4, "-g")
        + _st(4, "daemon off;")
        + _ld(6, _st(1, "http") + _vi(3, 80) + _st(4, "TCP"))
        + _ld(7, env_value)
        + _ld(7, env_ref)
        + _ld(7, env_field)
        + _ld(8, resources)
        + _ld(9, _st(1, "scratch") + _st(3, "/tmp"))
        + _ld(11, probe)
        + _ld(15, security)
        + _st(14, "IfNotPresent")
        + _vi(16, 0)
        + _ld(999, b"ignored")
    )
    pod_spec = (
        _ld(1, _st(1, "scratch") + _ld(2, _ld(2, b"")))
        + _ld(1, _st(1, "conf") + _ld(2, _ld(19, _ld(1, _st(1, "cfg")) + _vi(3, 420))))
        + _ld(2, container)
        + _st(3, "Always")
        + _vi(4, 30)
        + _entry(7, "disk", b"ssd")
        + _ld(14, _ld(4, _varint(1) + _varint(2)))
        + _ld(22, _st(1, "k") + _st(2, "Exists") + _st(4, "NoSchedule"))
    )
    strategy = _st(1, "RollingUpdate") + _ld(2, _ld(1, _vi(1, 0) + _vi(2, 0)) + _ld(2, _vi(1, 1) + _st(3, "25%")))
    spec = (
        _vi(1, 0)
        + _ld(2, _entry(1, "app", b"web") + _ld(2, _st(1, "tier") + _st(2, "In") + _st(3, "fe")))
        + _ld(3, _ld(1, _entry(11, "app", b"web")) + _ld(2, pod_spec))
        + _ld(4, strategy)
        + _vi(6, 3)
    )
    status = _vi(1, 0) + _vi(2, 0)
    body = _envelope("apps/v1", "Deployment", _ld(1, meta) + _ld(2, spec) + _ld(3, status))

    assert decode_protobuf(body) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"app": "web"},
            "annotations": {"note": ""},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "u1",
                    "controller": True,
                }
            ],
            "finalizers": ["example.com/guard"],
        },
        "spec": {
            "replicas": 0,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}],
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "volumes": [
                        {"name": "scratch", "emptyDir": {}},
                        {"name": "conf", "configMap": {"name": "cfg", "defaultMode": 420}},
                    ],
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "command": ["nginx"],
                            "args": ["-g", "daemon off;"],
                            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                            "env": [
                                {"name": "A", "value": "1"},
                                {
                                    "name": "B",
                                    "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "key"}},
                                },
                                {
                                    "name": "C",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                            ],
                            "resources": {
                                "limits": {"cpu": "500m"},
                                "requests": {"memory": "64Mi"},
                            },
                            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 5,
                            },
                            "securityContext": {
                                "runAsUser": 1000,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "nodeSelector": {"disk": "ssd"},
                    "securityContext": {"supplementalGroups": [1, 2]},
                    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 3,
        },
    }


def test_configmap_binary_data_and_immutable() -> None:
    raw = _ld(1, _st(1, "cm")) + _entry(2, "text", b"hello") + _entry(3, "blob", b"\x00\xff") + _vi(4, 0)
    assert decode_protobuf(_envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"text": "hello"},
        "binaryData": {"blob": "AP8="},
        "immutable": False,
    }


def test_secret_string_data_type_negative_ints_and_managed_fields() -> None:
    managed = (
        _st(1, "kubectl")
        + _st(2, "Update")
        + _st(3, "v1")
        + _ld(4, _vi(1, 86400) + _vi(2, 5))
        + _st(6, "FieldsV1")
        + _ld(7, _ld(1, b'{"f:type":{}}'))
    )
    meta = _st(1, "s") + _vi(10, -1) + _ld(17, managed)
    raw = _ld(1, meta) + _entry(4, "user", b"admin") + _st(3, "Opaque")
    assert decode_protobuf(_envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "deletionGracePeriodSeconds": -1,
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "1970-01-02T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:type": {}},
                }
            ],
        },
        "stringData": {"user": "admin"},
        "type": "Opaque",
    }


def test_repeated_singular_message_merges() -> None:
    raw = _ld(1, _st(1, "sa")) + _ld(1, _entry(11, "a", b"b")) + _vi(4, 1)
    raw += _ld(2, _st(3, "token") + _st(1, "Secret"))
    assert decode_protobuf(_envelope("v1", "ServiceAccount", raw)) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sa", "labels": {"a": "b"}},
        "secrets": [{"name": "token", "kind": "Secret"}],
        "automountServiceAccountToken": True,
    }


def test_job_and_cronjob_pointer_fields() -> None:
    template = _ld(2, _ld(2, _st(1, "c") + _st(2, "busybox")) + _st(3, "Never"))
    job_spec = _vi(1, 1) + _vi(2, 3) + _vi(7, 0) + _ld(6, template) + _vi(10, 0)
    job = decode_protobuf(_envelope("batch/v1", "Job", _ld(1, _st(1, "j")) + _ld(2, job_spec)))
    assert job["spec"] == {
        "parallelism": 1,
        "completions": 3,
        "backoffLimit": 0,
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}},
        "suspend": False,
    }
    cron_spec = _st(1, "@hourly") + _st(8, "Etc/UTC") + _vi(4, 1) + _ld(5, _ld(2, job_spec))
    status = _ld(4, _vi(1, 0))
    cron = decode_protobuf(_envelope("batch/v1", "CronJob", _ld(1, _st(1, "cj")) + _ld(2, cron_spec) + _ld(3, status)))
    assert cron["spec"]["schedule"] == "@hourly"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["suspend"] is True
    assert cron["spec"]["jobTemplate"]["spec"]["completions"] == 3
    assert cron["status"] == {"lastScheduleTime": "1970-01-01T00:00:00Z"}


def test_namespace_and_service_details() -> None:
    ns = decode_protobuf(_envelope("v1", "Namespace", _ld(1, _st(1, "n")) + _ld(2, _st(1, "kubernetes"))))
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    port = _st(1, "dns") + _st(2, "UDP") + _vi(3, 53) + _ld(4, _vi(1, 0) + _vi(2, 0))
    spec = _ld(1, port) + _st(3, "10.0.0.10") + _st(18, "10.0.0.10") + _st(4, "ClusterIP")
    spec += _st(17, "SingleStack") + _st(19, "IPv4")
    svc = decode_protobuf(_envelope("v1", "Service", _ld(1, _st(1, "dns")) + _ld(2, spec)))
    assert svc["spec"] == {
        "ports": [{"name": "dns", "protocol": "UDP", "port": 53}],
        "clusterIP": "10.0.0.10",
        "clusterIPs": ["10.0.0.10"],
        "type": "ClusterIP",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }


def test_token_request_as_kubectl_create_token_sends_it() -> None:
    # the body of `kubectl create token default --audience aud1 --duration 20m --bound-object-kind Pod
    # --bound-object-name web --bound-object-uid uid-1` (kubectl v1.35), byte for byte
    body = (
        b'k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12:\n\x10\n\x00\x12\x00\x1a\x00"\x00*'
        b'\x002\x008\x00B\x00\x12 \n\x04aud1\x1a\x15\n\x03Pod\x12\x02v1\x1a\x03web"\x05uid-1 \xb0\t\x1a\x04\n\x00'
        b'\x12\x00\x1a\x00"\x00'
    )
    assert decode_protobuf(body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": ["aud1"],
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "uid-1"},
            "expirationSeconds": 1200,
        },
        "status": {"token": ""},  # TokenRequestStatus.Token has no omitempty: Go writes it
    }


def test_self_subject_review_as_kubectl_auth_whoami_sends_it() -> None:
    body = (
        b'k8s\x00\n-\n\x18authentication.k8s.io/v1\x12\x11SelfSubjectReview\x12\x1a\n\x10\n\x00\x12\x00\x1a\x00"\x00*'
        b'\x002\x008\x00B\x00\x12\x06\n\x04\n\x00\x12\x00\x1a\x00"\x00'
    )
    assert decode_protobuf(body) == {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def test_supported_kinds_and_content_type() -> None:
    assert ("apps/v1", "Deployment") in SUPPORTED_KINDS
    assert is_protobuf("application/vnd.kubernetes.protobuf")
    assert is_protobuf("application/vnd.kubernetes.protobuf; charset=binary")
    assert not is_protobuf("application/json")
    assert not is_protobuf(None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "prefix"),
        (MAGIC + b"\x0a", "truncated varint"),
        (MAGIC + b"\x0a\x05ab", "exceeds"),
        (MAGIC + _ld(2, b""), "typeMeta"),
        (_envelope("v1", "Bogus", b""), "no protobuf message for v1/Bogus"),
        (_envelope("v1", "ConfigMap", b"", _st(3, "gzip")), "contentEncoding"),
        (_envelope("v1", "ConfigMap", b"", _st(4, "application/json")), "contentType"),
        (_envelope("v1", "ConfigMap", _ld(1, _vi(1, 5))), "ConfigMap.metadata.name: wire type 0"),
        (_envelope("v1", "ConfigMap", _ld(1, b"\x0a\x01\xff")), "UTF-8"),
        (_envelope("v1", "ConfigMap", _vi(2, 1)), "map entry"),
        (_envelope("v1", "ConfigMap", b"\x0b"), "wire type 3"),
        (_envelope("v1", "ConfigMap", b"\x00\x00"), "field number 0"),
        (MAGIC + b"\x0a" + b"\xff" * 11, "longer than 10 bytes"),
    ],
)
def test_errors(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message) as info:
        decode_protobuf(body)
    assert isinstance(info.value, ValueError)
