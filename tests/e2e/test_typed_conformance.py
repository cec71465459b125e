"""Every served kind through the official clients' typed APIs, whose models validate every response.

The kinds come from the server's discovery, and each maps to its typed API class and methods by the
clients' naming rules (`AppsV1Api.create_namespaced_daemon_set`, `CoreV1Api.create_node`), so a kind
added to the server is exercised here as soon as it has a sample body below; a served kind without a
sample, or without a typed API (unless listed in NO_TYPED_API with the reason), fails the test.

For each kind: create, read, list (one namespace and all namespaces, or the cluster), replace, patch,
read and replace /status where served, delete, and a watch that replays all of it (create-only kinds
such as the access reviews: create, whose answer the typed model parses); through the
`kubernetes` client (pydantic models) and through `kubernetes_asyncio` (models that check required
fields on construction). Then every example manifest and every object left in the cluster is checked
against the required fields of the schemas the server publishes.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import kubernetes_asyncio
import pytest
import yaml

from tests.e2e.conftest import Kubectl
from tests.e2e.required_fields import RequiredFieldChecker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Kinds a server may serve that the official clients have no typed API for, with the reason.
NO_TYPED_API: dict[tuple[str, str], str] = {}


def _template(name: str, restart: str = "Always") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }


def _webhook(name: str) -> dict[str, Any]:
    return {
        "name": f"{name}.conformance.example.com",
        "clientConfig": {"url": "https://192.0.2.1/never"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "namespaceSelector": {"matchLabels": {"typed-conformance": "selects-no-namespace"}},
        "failurePolicy": "Ignore",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }


def _selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app": name}}


# A valid body per (group, kind): (suggested name, namespace) → the object's fields besides apiVersion/kind/metadata,
# and its `name` (the suggestion, unless the kind names its objects otherwise).
_BODIES: dict[tuple[str, str], Callable[[str, str], dict[str, Any]]] = {
    ("", "Namespace"): lambda n, ns: {},
    ("", "Pod"): lambda n, ns: {"spec": _template(n)["spec"]},
    ("", "Node"): lambda n, ns: {"spec": {"unschedulable": True}},
    ("", "Service"): lambda n, ns: {"spec": {"selector": {"app": n}, "ports": [{"port": 80}]}},
    ("", "Endpoints"): lambda n, ns: {
        "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}],
    },
    ("", "PersistentVolumeClaim"): lambda n, ns: {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    },
    ("", "ConfigMap"): lambda n, ns: {"data": {"k": "v"}},
    ("", "Secret"): lambda n, ns: {"stringData": {"k": "v"}},
    ("", "Event"): lambda n, ns: {
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns, "apiVersion": "v1"},
        "reason": "Tested",
        "message": "typed conformance",
        "type": "Normal",
    },
    ("events.k8s.io", "Event"): lambda n, ns: {
        "eventTime": "2026-12-02T10:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "p", "namespace": ns, "apiVersion": "v1"},
        "reportingController": "example.com/typed-conformance",
        "reportingInstance": "typed-conformance-1",
        "action": "Testing",
        "reason": "Tested",
        "note": "typed conformance",
        "type": "Normal",
    },
    ("", "ServiceAccount"): lambda n, ns: {},
    ("", "LimitRange"): lambda n, ns: {"spec": {"limits": [{"type": "Container", "max": {"cpu": "4"}}]}},
    ("", "ResourceQuota"): lambda n, ns: {"spec": {"hard": {"pods": "100"}}},
    ("", "ReplicationController"): lambda n, ns: {
        "spec": {"replicas": 0, "selector": {"app": n}, "template": _template(n)},
    },
    ("apps", "Deployment"): lambda n, ns: {
        "spec": {"replicas": 0, "selector": _selector(n), "template": _template(n)},
    },
    ("apps", "ReplicaSet"): lambda n, ns: {
        "spec": {"replicas": 0, "selector": _selector(n), "template": _template(n)},
    },
    ("apps", "DaemonSet"): lambda n, ns: {"spec": {"selector": _selector(n), "template": _template(n)}},
    ("apps", "StatefulSet"): lambda n, ns: {
        "spec": {"replicas": 0, "serviceName": n, "selector": _selector(n), "template": _template(n)},
    },
    ("apps", "ControllerRevision"): lambda n, ns: {"revision": 1, "data": {"spec": {}}},
    ("batch", "Job"): lambda n, ns: {"spec": {"suspend": True, "template": _template(n, "Never")}},
    ("batch", "CronJob"): lambda n, ns: {
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": True,
            "jobTemplate": {"spec": {"template": _template(n, "Never")}},
        },
    },
    ("coordination.k8s.io", "Lease"): lambda n, ns: {"spec": {"holderIdentity": n, "leaseDurationSeconds": 15}},
    ("policy", "PodDisruptionBudget"): lambda n, ns: {
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": n}}}
    },
    ("scheduling.k8s.io", "PriorityClass"): lambda n, ns: {"value": 1000, "description": n},
    ("discovery.k8s.io", "EndpointSlice"): lambda n, ns: {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.2.3"]}],
        "ports": [{"port": 80, "protocol": "TCP"}],
    },
    ("networking.k8s.io", "Ingress"): lambda n, ns: {
        "spec": {"defaultBackend": {"service": {"name": n, "port": {"number": 80}}}},
    },
    ("networking.k8s.io", "IngressClass"): lambda n, ns: {"spec": {"controller": "example.com/ingress"}},
    # an IPAddress is named by its address (a documentation-range one, so it never meets a real allocation)
    ("networking.k8s.io", "IPAddress"): lambda n, ns: {
        "name": f"192.0.2.{random.randint(1, 254)}",
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": n}},
    },
    # webhooks that can never be called: they select no namespace and fail open
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): lambda n, ns: {"webhooks": [_webhook(n)]},
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): lambda n, ns: {"webhooks": [_webhook(n)]},
    # an extra Service range far from the cluster's own (a documentation range: never routed)
    ("networking.k8s.io", "ServiceCIDR"): lambda n, ns: {"spec": {"cidrs": [f"198.51.{random.randint(0, 99)}.0/28"]}},
    ("rbac.authorization.k8s.io", "Role"): lambda n, ns: {
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    },
    ("rbac.authorization.k8s.io", "ClusterRole"): lambda n, ns: {
        "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
    },
    ("rbac.authorization.k8s.io", "RoleBinding"): lambda n, ns: {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    },
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): lambda n, ns: {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n}],
    },
    # create-only kinds: the answer comes back in status; nothing is stored
    ("authorization.k8s.io", "SubjectAccessReview"): lambda n, ns: {
        "spec": {
            "user": n,
            "groups": ["system:authenticated"],
            "resourceAttributes": {"verb": "list", "resource": "pods"},
        },
    },
    ("authorization.k8s.io", "LocalSubjectAccessReview"): lambda n, ns: {
        "spec": {"user": n, "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}},
    },
    ("authorization.k8s.io", "SelfSubjectAccessReview"): lambda n, ns: {
        "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}},
    },
    ("authorization.k8s.io", "SelfSubjectRulesReview"): lambda n, ns: {"spec": {"namespace": ns}},
    ("authentication.k8s.io", "TokenReview"): lambda n, ns: {"spec": {"token": f"not-a-token-{n}"}},
    ("authentication.k8s.io", "SelfSubjectReview"): lambda n, ns: {},
    # valid in autoscaling/v2 and v1 alike (v2 gets its default CPU metric, v1 its implicit one)
    ("autoscaling", "HorizontalPodAutoscaler"): lambda n, ns: {
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n}, "maxReplicas": 3},
    },
    # a local APIService (no Service: nothing is proxied), named <version>.<group>
    ("apiextensions.k8s.io", "CustomResourceDefinition"): lambda n, ns: {
        "name": f"{n}s.conformance.example.com",
        "spec": {
            "group": "conformance.example.com",
            "scope": "Namespaced",
            "names": {"plural": f"{n}s", "kind": "Conf" + n.rpartition("-")[2]},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
            ],
        },
    },
    ("apiregistration.k8s.io", "APIService"): lambda n, ns: {
        "name": f"v1.{n}.example.com",
        "spec": {"group": f"{n}.example.com", "version": "v1", "groupPriorityMinimum": 100, "versionPriority": 10},
    },
}


def _named(body: Callable[[str, str], dict[str, Any]]) -> Callable[[str, str], dict[str, Any]]:
    return lambda n, ns: {"name": n, **body(n, ns)}


SAMPLES = {key: _named(body) for key, body in _BODIES.items()}


@dataclass(frozen=True)
class Served:
    """A kind as discovery lists it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str]
    verbs: frozenset[str] = frozenset()

    @property
    def create_only(self) -> bool:
        """Kinds only created, answered in the response and never stored (access reviews, TokenReview)."""
        return self.verbs == {"create"}

    @property
    def api_version(self) -> str:
        """`group/version`, or the version alone for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.kind}.{self.group or 'core'}"


def served_kinds(http: httpx.Client) -> list[Served]:
    """Every kind the server serves, read from /api and /apis discovery."""
    group_versions = [("", v) for v in http.get("/api").json()["versions"]]
    for g in http.get("/apis").json()["groups"]:
        group_versions += [(g["name"], v["version"]) for v in g["versions"]]
    out = []
    for group, version in group_versions:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        resources = http.get(path).json()["resources"]
        subs: dict[str, set[str]] = {}
        for r in resources:
            if "/" in r["name"]:
                parent, _, sub = r["name"].partition("/")
                subs.setdefault(parent, set()).add(sub)
        for r in resources:
            if "/" not in r["name"]:
                sub = frozenset(subs.get(r["name"], ()))
                verbs = frozenset(r.get("verbs") or ())
                out.append(Served(group, version, r["kind"], r["name"], r["namespaced"], sub, verbs))
    return out


def api_class_name(group: str, version: str) -> str:
    """The typed API class of a group version, as the clients name it (`CoordinationV1Api`)."""
    base = "Core" if not group else "".join(p.capitalize() for p in group.removesuffix(".k8s.io").split("."))
    return f"{base}{version.capitalize()}Api"


def snake(kind: str) -> str:
    """`ReplicationController` → `replication_controller`; `IPAddress` → `ip_address`."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", kind)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", s).lower()


class TypedKind:
    """The typed methods of one kind in one client module (`kubernetes` or `kubernetes_asyncio`)."""

    def __init__(self, module: Any, api_client: Any, served: Served) -> None:
        cls = getattr(module.client, api_class_name(served.group, served.version), None)
        if cls is None:
            raise LookupError(f"{module.__name__} has no {api_class_name(served.group, served.version)}")
        self.api = cls(api_client)
        self.served = served
        s, scoped = snake(served.kind), "namespaced_" if served.namespaced else ""
        self._names = {
            "create": f"create_{scoped}{s}",
            "read": f"read_{scoped}{s}",
            "list": f"list_{scoped}{s}",
            "list_all": f"list_{s}_for_all_namespaces" if served.namespaced else "",
            "replace": f"replace_{scoped}{s}",
            "patch": f"patch_{scoped}{s}",
            "delete": f"delete_{scoped}{s}",
            "read_status": f"read_{scoped}{s}_status",
            "replace_status": f"replace_{scoped}{s}_status",
        }
        if served.create_only:
            self._names = {"create": self._names["create"]}
        for verb, method in self._names.items():
            if method and not hasattr(self.api, method):
                if verb.endswith("_status") and "status" not in served.subresources:
                    continue
                raise LookupError(f"{type(self.api).__name__} has no {method}")

    def method(self, verb: str) -> Callable[..., Any]:
        """The bound method for a verb."""
        return getattr(self.api, self._names[verb])

    def args(self, ns: str, name: str | None = None) -> list[str]:
        """Positional name/namespace arguments in the clients' order."""
        args = [name] if name is not None else []
        return [*args, ns] if self.served.namespaced else args


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


async def _events(module: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
    """Watch events from either client's Watch (a generator, or an async one)."""
    w = module.watch.Watch()
    stream = w.stream(fn, *args, **kwargs)
    try:
        if hasattr(stream, "__aiter__"):
            async for ev in stream:
                yield ev
        else:
            for ev in stream:
                yield ev
    finally:
        stop = w.stop()
        if inspect.isawaitable(stop):
            await stop
        close = getattr(w, "close", None)
        if close is not None and inspect.iscoroutinefunction(close):
            await close()


def _names(listing: Any) -> set[str]:
    return {item.metadata.name for item in listing.items}


async def _established(typed: TypedKind, ns: str, name: str) -> Any:
    """The CRD once its Established condition is written (its controller writes status once, then leaves it)."""
    async with asyncio.timeout(10):
        while True:
            got = await _call(typed.method("read"), *typed.args(ns, name))
            if any(c.type == "Established" for c in (got.status.conditions or [])):
                return got
            await asyncio.sleep(0.05)


async def exercise(module: Any, api_client: Any, served: Served, ns: str) -> None:
    """Every verb of one kind through a typed client; each response is parsed into (and checked by) its model."""
    typed = TypedKind(module, api_client, served)
    sample = SAMPLES[(served.group, served.kind)](f"conf-{uuid.uuid4().hex[:8]}", ns)
    name = sample.pop("name")
    if served.create_only:
        answer = await _call(
            typed.method("create"), *typed.args(ns), {"apiVersion": served.api_version, "kind": served.kind, **sample}
        )
        assert answer.kind == served.kind and answer.status is not None, answer
        return
    body = {
        "apiVersion": served.api_version,
        "kind": served.kind,
        "metadata": {"name": name, "labels": {"conformance": "created"}},
        **sample,
    }
    # lists are narrowed to this test's object: a cluster-wide list of events.k8s.io Events also holds core/v1
    # Events other parts wrote, whose `eventTime: null` (upstream's too) the official client refuses to parse
    mine = "conformance=created"
    before = await _call(typed.method("list"), *typed.args(ns), label_selector=mine)
    rv0 = before.metadata.resource_version

    created = await _call(typed.method("create"), *typed.args(ns), body)
    assert created.metadata.name == name and created.metadata.uid
    got = await _call(typed.method("read"), *typed.args(ns, name))
    if served.kind == "CustomResourceDefinition":  # its controller writes its status once: read it after that
        got = await _established(typed, ns, name)
    assert got.metadata.uid == created.metadata.uid
    assert name in _names(await _call(typed.method("list"), *typed.args(ns), label_selector=mine))
    if served.namespaced:
        assert name in _names(await _call(typed.method("list_all"), label_selector=mine))

    got.metadata.labels = {**(got.metadata.labels or {}), "conformance": "replaced"}
    replaced = await _call(typed.method("replace"), *typed.args(ns, name), got)
    assert replaced.metadata.labels["conformance"] == "replaced"
    patched = await _call(typed.method("patch"), *typed.args(ns, name), {"metadata": {"labels": {"patched": "yes"}}})
    assert (patched.metadata.labels["conformance"], patched.metadata.labels["patched"]) == ("replaced", "yes")
    if "status" in served.subresources:
        status = await _call(typed.method("read_status"), *typed.args(ns, name))
        rewritten = await _call(typed.method("replace_status"), *typed.args(ns, name), status)
        assert rewritten.metadata.uid == created.metadata.uid

    await _call(typed.method("delete"), *typed.args(ns, name), propagation_policy="Background")
    if served.kind == "Namespace":  # no namespace controller here: finish the namespace's deletion by hand
        await _call(
            typed.api.replace_namespace_finalize, name, {"metadata": {"name": name}, "spec": {"finalizers": []}}
        )

    seen = []
    selector = f"metadata.name={name}"
    async for ev in _events(
        module, typed.method("list"), *typed.args(ns), resource_version=rv0, field_selector=selector, timeout_seconds=10
    ):
        obj = ev["object"]
        assert obj.metadata.name == name, ev
        seen.append(ev["type"])
        if ev["type"] == "DELETED":
            break
    assert seen[0] == "ADDED" and seen[-1] == "DELETED" and "MODIFIED" in seen, seen


@pytest.fixture(scope="module")
def kinds(http: httpx.Client) -> list[Served]:
    """The kinds discovery lists."""
    return served_kinds(http)


def test_every_served_kind_has_a_typed_api_and_a_sample(kinds: list[Served], apiserver: str) -> None:
    assert {str(k) for k in kinds} >= {"Pod.core", "Deployment.apps", "Job.batch", "Lease.coordination.k8s.io"}
    problems = []
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=apiserver)) as api_client:
        for served in kinds:
            if (served.group, served.kind) in NO_TYPED_API:
                continue
            if (served.group, served.kind) not in SAMPLES:
                problems.append(f"{served}: no sample body in SAMPLES")
            try:
                TypedKind(kubernetes, api_client, served)
            except LookupError as e:
                problems.append(f"{served}: {e}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def sync_client(apiserver: str) -> Iterator[kubernetes.client.ApiClient]:
    """The `kubernetes` client on the session apiserver."""
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=apiserver)) as api_client:
        yield api_client


async def _every_kind(module: Any, api_client: Any, kinds: list[Served], namespace: str) -> None:
    failures = []
    for served in kinds:
        if (served.group, served.kind) in NO_TYPED_API:
            continue
        try:
            await exercise(module, api_client, served, namespace)
        except Exception as e:  # collect every kind's failure, then report them together
            failures.append(f"{served}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


async def test_kubernetes_client_typed_round_trip_of_every_kind(
    sync_client: kubernetes.client.ApiClient, kinds: list[Served], namespace: str
) -> None:
    await _every_kind(kubernetes, sync_client, kinds, namespace)


async def test_kubernetes_asyncio_typed_round_trip_of_every_kind(
    apiserver: str, kinds: list[Served], namespace: str
) -> None:
    config = kubernetes_asyncio.client.Configuration(host=apiserver)
    async with kubernetes_asyncio.client.ApiClient(config) as api_client:
        await _every_kind(kubernetes_asyncio, api_client, kinds, namespace)


def test_typed_client_reads_a_daemonset_and_rc_status_as_created(
    sync_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    """The issue's cases: zeros are written, so the typed models accept the create responses."""
    apps = kubernetes.client.AppsV1Api(sync_client)
    core = kubernetes.client.CoreV1Api(sync_client)
    ds = apps.create_namespaced_daemon_set(
        namespace, {"metadata": {"name": "ds"}, **_BODIES[("apps", "DaemonSet")]("ds", namespace)}
    )
    assert (
        ds.status.current_number_scheduled,
        ds.status.desired_number_scheduled,
        ds.status.number_misscheduled,
        ds.status.number_ready,
    ) == (0, 0, 0, 0)
    rc = core.create_namespaced_replication_controller(
        namespace, {"metadata": {"name": "rc"}, **_BODIES[("", "ReplicationController")]("rc", namespace)}
    )
    assert rc.status.replicas == 0


def test_examples_and_every_object_in_the_cluster_have_their_required_fields(
    kubectl: Kubectl, http: httpx.Client, required_fields: RequiredFieldChecker, kinds: list[Served], namespace: str
) -> None:
    created, crds = [], []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for doc in docs:
            for port in (doc.get("spec") or {}).get("ports") or [] if doc["kind"] == "Service" else []:
                port.pop("nodePort", None)  # fixed node ports may be taken by the other e2e tests' copies
        definitions = [doc for doc in docs if doc["kind"] == "CustomResourceDefinition"]
        if definitions:  # a CRD is established before objects of its kind can be applied, as on any cluster
            kubectl.ok("apply", "-f", "-", input=yaml.safe_dump_all(definitions))
            crds += [f"crd/{doc['metadata']['name']}" for doc in definitions]
            kubectl.ok("wait", "--for", "condition=established", "--timeout", "20s", *crds)
        rest = [doc for doc in docs if doc["kind"] != "CustomResourceDefinition"]
        kubectl.ok("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rest))
        created += docs
    assert len(created) > 10
    checked = 0
    with_custom = served_kinds(http)  # the kinds of the examples' CRDs too
    for doc in created:
        served = next(k for k in with_custom if k.api_version == doc["apiVersion"] and k.kind == doc["kind"])
        root = f"/apis/{served.api_version}" if served.group else f"/api/{served.version}"
        scope = f"/namespaces/{namespace}" if served.namespaced else ""
        obj = httpx.get(f"{http.base_url}{root}{scope}/{served.plural}/{doc['metadata']['name']}").json()
        assert obj["metadata"]["uid"], obj
        assert required_fields.missing(obj) == [], (doc["kind"], doc["metadata"]["name"])
        checked += 1
    assert checked == len(created)

    # every object of every kind in the cluster, as lists (what the earlier e2e tests left, and the above)
    for served in kinds:
        if served.create_only:
            continue
        root = f"/apis/{served.api_version}" if served.group else f"/api/{served.version}"
        listing = httpx.get(f"{http.base_url}{root}/{served.plural}").json()
        assert listing["kind"] == f"{served.kind}List"
        assert required_fields.knows(served.api_version, f"{served.kind}List"), served
        assert required_fields.missing(listing) == [], served
    if crds:  # the session's later tests expect only the kinds they create
        kubectl.ok("delete", "--timeout", "30s", *crds)
