"""The real kubectl v1.35 against tinykube: discovery, OpenAPI, get, apply, create, delete and the other verbs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from apimachinery.resources import by_kind

from .conftest import Kubectl, finish, get_json, manifest, rows_without_age, table
from .thirdparty_crd import wait_for

# CRD examples are tested in test_kubectl_crd.py: their objects can be applied once the CRD is established
EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")
    if "kind: CustomResourceDefinition" not in p.read_text()
)

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
"""

PODS = """
apiVersion: v1
kind: Pod
metadata:
  name: p-b
  labels: {app: web, tier: back}
spec:
  containers:
  - name: c
    image: a-image:1
---
apiVersion: v1
kind: Pod
metadata:
  name: p-a
  labels: {app: api}
spec:
  containers:
  - name: c
    image: z-image:1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""

BOGUS = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bogus
spec:
  bogus: 1
  replicas: 1
  selector:
    matchLabels: {app: bogus}
  template:
    metadata:
      labels: {app: bogus}
    spec:
      containers:
      - name: c
        image: nginx
"""


def _deployment(name: str, *, replicas: int = 2, containers: str = "nginx:nginx:1", labels: str = "app: {n}") -> str:
    """A Deployment manifest; `containers` is `name:image,...`."""
    conts = "\n".join(
        f"      - name: {c.split(':')[0]}\n        image: {c.split(':', 1)[1] if ':' in c else 'busybox'}"
        for c in containers.split(",")
    )
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{{labels.format(n=name)}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
{conts}
"""


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resent(doc: dict[str, Any]) -> bool:
    """Whether re-applying the unchanged manifest still sends a patch (see test_examples_apply_and_create)."""
    if "stringData" in doc:
        return True
    volumes = (doc.get("spec") or {}).get("volumes") or [] if doc["kind"] == "Pod" else []
    downward = [v.get("downwardAPI") or {} for v in volumes]
    downward += [s.get("downwardAPI") or {} for v in volumes for s in (v.get("projected") or {}).get("sources") or []]
    items = [i for d in downward for i in d.get("items") or []]
    return any("fieldRef" in i and "apiVersion" not in i["fieldRef"] for i in items)


def _ref(doc: dict[str, Any]) -> str:
    """How kubectl names an object in its messages: `deployment.apps/nginx`."""
    group = doc["apiVersion"].rpartition("/")[0]
    kind = doc["kind"].lower() + (f".{group}" if group else "")
    return f"{kind}/{doc['metadata']['name']}"


def _path(doc: dict[str, Any], ns: str) -> str:
    res = by_kind(doc["apiVersion"], doc["kind"])
    assert res is not None, doc["kind"]
    return f"{res.base_path(ns)}/{doc['metadata']['name']}"


def _write(tmp_path: Path, name: str, text: str) -> str:
    f = tmp_path / name
    f.write_text(text)
    return str(f)


def _managed(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


# --- discovery and OpenAPI ------------------------------------------------------------------


def test_version_api_versions_resources_and_healthz(kubectl: Kubectl, http: httpx.Client) -> None:
    out = kubectl.ok("version")
    assert "Client Version: v1.35" in out
    assert "Server Version: v1.35.0" in out

    def served() -> list[str]:
        groups = get_json(http, "/apis")["groups"]
        return sorted([v["groupVersion"] for g in groups for v in g["versions"]] + ["v1"])

    def kubectl_lists_what_is_served() -> bool:
        # read around kubectl's: a CRD another test is removing changes discovery while kubectl reads it
        before, listed = served(), kubectl.ok("api-versions").split()
        return before == listed == served()

    def what() -> str:
        return f"kubectl api-versions {kubectl.ok('api-versions').split()} to list the served {served()}"

    wait_for(kubectl_lists_what_is_served, 60, what)

    rows = table(kubectl.ok("api-resources"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows
    assert ["pods", "po", "v1", "true", "Pod"] in rows
    assert ["namespaces", "ns", "v1", "false", "Namespace"] in rows
    wide = table(kubectl.ok("api-resources", "--api-group=apps", "-o", "wide"))
    assert wide[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    assert [
        "deployments",
        "deploy",
        "apps/v1",
        "true",
        "Deployment",
        "create,delete,deletecollection,get,list,patch,update,watch",
        "all",
    ] in wide

    assert kubectl.ok("get", "--raw", "/healthz") == "ok"


def test_openapi_v3_index_and_documents(http: httpx.Client) -> None:
    index = get_json(http, "/openapi/v3")["paths"]
    groups = get_json(http, "/apis")["groups"]
    wanted = {"api/v1"} | {f"apis/{v['groupVersion']}" for g in groups for v in g["versions"]}
    assert wanted <= set(index)
    for key, entry in index.items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{key}?hash=")
        r = http.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["cache-control"] == "public, immutable"
        doc = r.json()
        assert doc["openapi"].startswith("3.0")
        patch_gvks = []
        post_gvks = [
            item["post"]["x-kubernetes-group-version-kind"] for item in doc["paths"].values() if "post" in item
        ]
        for item in doc["paths"].values():
            op = item.get("patch")
            if op is None:
                continue
            patch_gvks.append(op["x-kubernetes-group-version-kind"])
            assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])
            # No strategic-merge content type: kubectl must not build patches from these schemas.
            assert "application/strategic-merge-patch+json" not in op.get("requestBody", {}).get("content", {})
        served = [r for r in get_json(http, "/" + key)["resources"] if "/" not in r["name"]]
        kinds = {r["kind"] for r in served if "patch" in r["verbs"]}
        assert kinds <= {g["kind"] for g in patch_gvks}, f"{key}: kinds without a PATCH operation"
        # create-only kinds (the reviews) have one operation: POST on their collection
        create_only = {r["kind"] for r in served if r["verbs"] == ["create"]}
        assert create_only <= {g["kind"] for g in post_gvks}, f"{key}: create-only kinds without a POST operation"
        assert not create_only & {g["kind"] for g in patch_gvks}
        schemas = doc["components"]["schemas"]
        for gvk in patch_gvks:
            assert any(gvk in s.get("x-kubernetes-group-version-kind", []) for s in schemas.values()), (
                f"no schema for {gvk}"
            )

    apps = http.get(index["apis/apps/v1"]["serverRelativeURL"]).json()
    deployment = apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["description"].startswith("Deployment enables declarative updates")

    stale = http.get("/openapi/v3/apis/apps/v1?hash=0123", follow_redirects=False)
    assert stale.status_code == 301
    assert stale.headers["location"] == index["apis/apps/v1"]["serverRelativeURL"]
    assert http.get("/openapi/v3/apis/nope/v1").status_code == 404


def test_openapi_v2(http: httpx.Client) -> None:
    doc = http.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    assert doc["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in doc["definitions"]
    proto = http.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert proto.status_code == 200
    # kube-openapi answers with the dotted form: Go's mime parser rejects the `@` kubectl asks with
    assert proto.headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert proto.content.startswith(b"\x0a\x032.0")  # Document.swagger = "2.0"


def test_explain_from_the_protobuf_openapi_v2(kubectl: Kubectl) -> None:
    """kubectl's v2 explain parses gnostic's Document: definitions, $refs, GVK vendor extensions."""
    out = kubectl.ok("explain", "--output=plaintext-openapiv2", "deployment.spec")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[:2] == ["KIND:     Deployment", "VERSION:  apps/v1"]
    assert "RESOURCE: spec <Object>" in lines
    assert "replicas\t<integer>" in lines and "template\t<Object> -required-" in lines
    out = kubectl.ok("explain", "--output=plaintext-openapiv2", "pods.spec.containers.ports")
    assert "containerPort\t<integer> -required-" in [line.strip() for line in out.splitlines()]


def test_apply_of_an_unknown_kind_says_no_matches(kubectl: Kubectl) -> None:
    """Client-side validation reads /openapi/v2 in protobuf, then the mapping fails as on a real cluster."""
    doc = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    err = kubectl.fails("apply", "-f", "-", input=doc)
    assert 'no matches for kind "Widget" in version "example.com/v1"' in err, err
    assert "unable to respond with a content type" not in err


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "deployment.spec.strategy")
    lines = out.splitlines()
    assert lines[:3] == ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1"]
    assert "FIELD: strategy <DeploymentStrategy>" in lines
    assert "    The deployment strategy to use to replace existing pods with new ones." in lines
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in lines
    assert "  type\t<string>" in lines

    out = kubectl.ok("explain", "pod.spec.containers.livenessProbe")
    lines = out.splitlines()
    assert lines[:2] == ["KIND:       Pod", "VERSION:    v1"]
    assert "FIELD: livenessProbe <Probe>" in lines
    assert "    Periodic probe of container liveness. Container will be restarted if the" in lines
    for field in ("  exec\t<ExecAction>", "  failureThreshold\t<integer>", "  httpGet\t<HTTPGetAction>"):
        assert field in lines

    assert "FIELD: targetPort <IntOrString>" in kubectl.ok("explain", "svc.spec.ports.targetPort")


# --- apply and create of every example ----------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_apply_and_create(kubectl: Kubectl, http: httpx.Client, namespace: str, example: Path) -> None:
    docs = _docs(example)
    out = kubectl.ok("apply", "-n", namespace, "-f", str(example))
    assert out.splitlines() == [f"{_ref(d)} created" for d in docs]
    for d in docs:
        obj = get_json(http, _path(d, namespace))
        assert obj["kind"] == d["kind"]
        applied = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
        assert applied["metadata"]["name"] == d["metadata"]["name"]
        assert ("kubectl-client-side-apply", "Update") in _managed(obj)

    # What the server changed in a way kubectl's three-way patch cannot ignore makes kubectl (as against any
    # apiserver) send it again: stringData (folded into data), and downwardAPI items (in a volume or a projected
    # source), atomic lists whose fieldRefs the server defaults (apiVersion v1).
    out = kubectl.ok("apply", "-n", namespace, "-f", str(example))
    assert out.splitlines() == [f"{_ref(d)} {'configured' if _resent(d) else 'unchanged'}" for d in docs]

    out = kubectl.ok("delete", "-n", namespace, "-f", str(example))
    assert out.splitlines() == [
        f'{_ref(d).split("/")[0]} "{d["metadata"]["name"]}" deleted from {namespace} namespace' for d in docs
    ]
    for d in docs:
        get_json(http, _path(d, namespace), expect=404)

    out = kubectl.ok("create", "-n", namespace, "-f", str(example))
    assert out.splitlines() == [f"{_ref(d)} created" for d in docs]
    for d in docs:
        obj = get_json(http, _path(d, namespace))
        assert "kubectl.kubernetes.io/last-applied-configuration" not in obj["metadata"].get("annotations", {})
        assert ("kubectl-create", "Update") in _managed(obj)
    err = kubectl.fails("create", "-n", namespace, "-f", str(example))
    first = docs[0]
    res = by_kind(first["apiVersion"], first["kind"])
    assert res is not None
    assert (
        f'Error from server (AlreadyExists): error when creating "{example}": '
        f'{res.group_resource} "{first["metadata"]["name"]}" already exists'
    ) in err


# --- field validation -----------------------------------------------------------------------


def test_unknown_field_strict_warn_ignore(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    f = _write(tmp_path, "bogus.yaml", BOGUS)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/bogus"

    for verb in ("apply", "create"):
        r = kubectl(verb, "-n", namespace, "-f", f)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f'Error from server (BadRequest): error when creating "{f}": Deployment in version "v1" cannot be '
            'handled as a Deployment: strict decoding error: unknown field "spec.bogus"'
        )
        get_json(http, path, expect=404)

    r = kubectl("apply", "-n", namespace, "-f", f, "--validate=warn")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "deployment.apps/bogus created\n"
    assert r.stderr == 'Warning: unknown field "spec.bogus"\n'
    assert "bogus" not in get_json(http, path)["spec"]

    kubectl.ok("delete", "-n", namespace, "deployment", "bogus")
    r = kubectl("apply", "-n", namespace, "-f", f, "--validate=false")
    assert (r.returncode, r.stdout, r.stderr) == (0, "deployment.apps/bogus created\n", "")
    assert "bogus" not in get_json(http, path)["spec"]

    # The apply path (an existing object) is checked too: a strategic merge patch that adds the field.
    r = kubectl("apply", "-n", namespace, "-f", f)
    assert r.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in r.stderr
    err = kubectl.fails("apply", "--server-side", "-n", namespace, "-f", f)
    assert ".spec.bogus: field not declared in schema" in err


def test_field_validation_over_http(http: httpx.Client, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv"}, "data": {"a": "b"}, "bogus": 1}
    url = f"/api/v1/namespaces/{namespace}/configmaps"
    r = http.post(url, params={"fieldValidation": "Strict"}, json=body)
    assert r.status_code == 400
    status = r.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert status["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"'
    )

    r = http.post(url, params={"fieldValidation": "Warn"}, json=body)
    assert r.status_code == 201
    assert r.headers.get_list("warning") == ['299 - "unknown field \\"bogus\\""']
    assert "bogus" not in r.json()

    r = http.put(f"{url}/fv", params={"fieldValidation": "Ignore"}, json={**body, "data": {"a": "c"}})
    assert r.status_code == 200
    assert "warning" not in r.headers
    assert r.json()["data"] == {"a": "c"} and "bogus" not in r.json()

    merge = {"content-type": "application/merge-patch+json"}
    r = http.patch(f"{url}/fv", params={"fieldValidation": "Strict"}, headers=merge, content=b'{"spec":{"bogus":1}}')
    assert r.status_code == 400
    assert r.json()["message"] == 'strict decoding error: unknown field "spec"'
    r = http.patch(
        f"{url}/fv", params={"fieldValidation": "Strict"}, headers=merge, content=b'{"metadata":{"bogus":1}}'
    )
    assert r.json()["message"] == 'strict decoding error: unknown field "metadata.bogus"'
    r = http.patch(f"{url}/fv", headers=merge, content=b'{"data":{"x":"y"},"extra":true}')  # default: Warn
    assert r.status_code == 200
    assert r.headers.get_list("warning") == ['299 - "unknown field \\"extra\\""']
    assert r.json()["data"] == {"a": "c", "x": "y"}


# --- get ------------------------------------------------------------------------------------


@pytest.fixture
def get_setup(kubectl: Kubectl, namespace: str) -> str:
    """A Deployment, two Pods and a Service to list."""
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=manifest(WEB, PODS))
    return namespace


def test_get_tables(kubectl: Kubectl, http: httpx.Client, get_setup: str) -> None:
    ns = get_setup
    assert rows_without_age(kubectl.ok("get", "pods", "-n", ns)) == [
        ["NAME", "READY", "STATUS", "RESTARTS"],
        ["p-a", "0/1", "Pending", "0"],
        ["p-b", "0/1", "Pending", "0"],
    ]
    assert rows_without_age(kubectl.ok("get", "pods", "-n", ns, "-o", "wide")) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ["p-a", "0/1", "Pending", "0", "<none>", "<none>", "<none>", "<none>"],
        ["p-b", "0/1", "Pending", "0", "<none>", "<none>", "<none>", "<none>"],
    ]
    assert rows_without_age(kubectl.ok("get", "deploy", "-n", ns)) == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"],
        ["web", "0/2", "0", "0"],
    ]
    assert rows_without_age(kubectl.ok("get", "deployments.apps", "web", "-n", ns, "-o", "wide")) == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "CONTAINERS", "IMAGES", "SELECTOR"],
        ["web", "0/2", "0", "0", "nginx", "nginx:1.25", "app=web"],
    ]
    ip = get_json(http, f"/api/v1/namespaces/{ns}/services/web")["spec"]["clusterIP"]
    assert rows_without_age(kubectl.ok("get", "svc", "-n", ns)) == [
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"],
        ["web", "ClusterIP", ip, "<none>", "80/TCP"],
    ]
    assert rows_without_age(kubectl.ok("get", "svc", "-n", ns, "-o", "wide")) == [
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "SELECTOR"],
        ["web", "ClusterIP", ip, "<none>", "80/TCP", "app=web"],
    ]
    assert rows_without_age(kubectl.ok("get", "ns", ns)) == [["NAME", "STATUS"], [ns, "Active"]]

    r = kubectl("get", "configmaps", "-n", ns)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"No resources found in {ns} namespace.\n")
    err = kubectl.fails("get", "pod", "nope", "-n", ns)
    assert err == 'Error from server (NotFound): pods "nope" not found\n'
    err = kubectl.fails("get", "deploy", "nope", "-n", ns)
    assert err == 'Error from server (NotFound): deployments.apps "nope" not found\n'


def test_get_labels_selectors_and_all_namespaces(kubectl: Kubectl, get_setup: str) -> None:
    ns = get_setup
    assert rows_without_age(kubectl.ok("get", "pods", "-n", ns, "--show-labels")) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "LABELS"],
        ["p-a", "0/1", "Pending", "0", "app=api"],
        ["p-b", "0/1", "Pending", "0", "app=web,tier=back"],
    ]
    assert rows_without_age(kubectl.ok("get", "pods", "-n", ns, "-L", "app")) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "APP"],
        ["p-a", "0/1", "Pending", "0", "api"],
        ["p-b", "0/1", "Pending", "0", "web"],
    ]
    assert rows_without_age(kubectl.ok("get", "pods", "-n", ns, "-l", "app=web")) == [
        ["NAME", "READY", "STATUS", "RESTARTS"],
        ["p-b", "0/1", "Pending", "0"],
    ]
    assert kubectl.ok("get", "pods", "-n", ns, "-l", "app in (api,web),tier!=back", "-o", "name") == "pod/p-a\n"
    assert kubectl.ok("get", "pods", "-n", ns, "-l", "!tier", "-o", "name") == "pod/p-a\n"
    assert kubectl.ok("get", "pods", "-n", ns, "--field-selector", "metadata.name=p-b", "-o", "name") == "pod/p-b\n"
    assert kubectl.ok("get", "pods", "-n", ns, "--field-selector", "status.phase=Pending", "-o", "name") == (
        "pod/p-a\npod/p-b\n"
    )

    rows = rows_without_age(kubectl.ok("get", "pods", "-A", "--field-selector", f"metadata.namespace={ns}"))
    assert rows == [
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS"],
        [ns, "p-a", "0/1", "Pending", "0"],
        [ns, "p-b", "0/1", "Pending", "0"],
    ]

    out = kubectl.ok("get", "all", "-n", ns)
    sections = [table(s) for s in out.split("\n\n") if s.strip()]
    assert [s[0][0] for s in sections] == ["NAME", "NAME", "NAME"]
    assert [row[0] for row in sections[0][1:]] == ["pod/p-a", "pod/p-b"]
    assert [row[0] for row in sections[1][1:]] == ["service/web"]
    assert [row[0] for row in sections[2][1:]] == ["deployment.apps/web"]

    out = kubectl.ok("get", "all", "-A")
    sections = [table(s) for s in out.split("\n\n") if s.strip()]
    assert all(s[0][:2] == ["NAMESPACE", "NAME"] for s in sections)
    mine = [row[1] for s in sections for row in s[1:] if row[0] == ns]
    assert sorted(mine) == ["deployment.apps/web", "pod/p-a", "pod/p-b", "service/web"]


def test_get_output_formats(kubectl: Kubectl, get_setup: str) -> None:
    ns = get_setup
    assert kubectl.ok("get", "pods", "-n", ns, "-o", "name") == "pod/p-a\npod/p-b\n"
    assert kubectl.ok("get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}") == "p-a p-b"
    out = kubectl.ok(
        "get",
        "pods",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image}{'\\n'}{end}",
    )
    assert out == "p-a=z-image:1\np-b=a-image:1\n"
    out = kubectl.ok(
        "get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image"
    )
    assert table(out) == [["NAME", "IMAGE"], ["p-a", "z-image:1"], ["p-b", "a-image:1"]]

    pod = yaml.safe_load(kubectl.ok("get", "pod", "p-a", "-n", ns, "-o", "yaml"))
    assert (pod["apiVersion"], pod["kind"], pod["metadata"]["name"]) == ("v1", "Pod", "p-a")
    assert pod["status"]["phase"] == "Pending"
    assert "managedFields" not in pod["metadata"]
    shown = yaml.safe_load(kubectl.ok("get", "pod", "p-a", "-n", ns, "-o", "yaml", "--show-managed-fields"))
    assert shown["metadata"]["managedFields"][0]["manager"] == "kubectl-client-side-apply"

    listing = json.loads(kubectl.ok("get", "pods", "-n", ns, "-o", "json"))
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    assert [(p["kind"], p["metadata"]["name"]) for p in listing["items"]] == [("Pod", "p-a"), ("Pod", "p-b")]

    # --sort-by asks for includeObject=Object: a-image (p-b) sorts before z-image (p-a).
    rows = rows_without_age(kubectl.ok("get", "pods", "-n", ns, "--sort-by=.spec.containers[0].image"))
    assert [r[0] for r in rows] == ["NAME", "p-b", "p-a"]
    names = kubectl.ok("get", "pods", "-n", ns, "--sort-by={.metadata.name}", "-o", "name")
    assert names == "pod/p-a\npod/p-b\n"


# --- apply: client-side three-way merge, server-side with field managers, diff -----------------


def test_client_side_apply_three_way(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    v1 = _deployment("cs", replicas=2, containers="nginx:nginx:1,side:busybox", labels="app: {n}, tier: web")
    v2 = _deployment("cs", replicas=3, containers="nginx:nginx:2", labels="app: {n}").replace(
        "  replicas: 3\n", "  replicas: 3\n  strategy: {type: Recreate}\n"
    )
    f = _write(tmp_path, "cs.yaml", v1)
    assert kubectl.ok("apply", "-n", ns, "-f", f) == "deployment.apps/cs created\n"
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/cs"
    live = get_json(http, path)
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"

    # Someone else changes a field the manifest does not set: apply must keep it.
    kubectl.ok("annotate", "-n", ns, "deploy", "cs", "owner=ops")
    f = _write(tmp_path, "cs.yaml", v2)
    assert kubectl.ok("apply", "-n", ns, "-f", f) == "deployment.apps/cs configured\n"
    live = get_json(http, path)
    assert live["metadata"]["labels"] == {"app": "cs"}
    assert live["metadata"]["annotations"]["owner"] == "ops"
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["strategy"] == {"type": "Recreate"}
    assert [(c["name"], c["image"]) for c in live["spec"]["template"]["spec"]["containers"]] == [("nginx", "nginx:2")]
    assert live["metadata"]["generation"] == 2
    last = json.loads(live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3
    managed = _managed(live)
    assert "f:replicas" in managed[("kubectl-client-side-apply", "Update")]["f:spec"]
    assert managed[("kubectl-annotate", "Update")] == {"f:metadata": {"f:annotations": {"f:owner": {}}}}

    assert kubectl.ok("apply", "-n", ns, "-f", f) == "deployment.apps/cs unchanged\n"


def test_server_side_apply_managers_and_conflicts(
    kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path
) -> None:
    ns = namespace
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/ss"
    f1 = _write(tmp_path, "ss.yaml", _deployment("ss", replicas=2, containers="nginx:nginx:1,side:busybox"))
    assert kubectl.ok("apply", "--server-side", "-n", ns, "-f", f1) == "deployment.apps/ss serverside-applied\n"
    live = get_json(http, path)
    entry = live["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("kubectl", "Apply", "apps/v1")
    spec = entry["fieldsV1"]["f:spec"]
    assert spec["f:replicas"] == {} and spec["f:selector"] == {}
    containers = spec["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"nginx"}'] == {".": {}, "f:image": {}, "f:name": {}}
    assert 'k:{"name":"side"}' in containers

    # Another manager sets replicas to a different value: 409 Conflict naming the owner.
    f2 = _write(tmp_path, "ss2.yaml", _deployment("ss", replicas=5, containers="nginx:nginx:1"))
    r = kubectl("apply", "--server-side", "--field-manager=ci", "-n", ns, "-f", f2)
    assert r.returncode == 1
    assert r.stderr.startswith('error: Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas\n')
    assert "--force-conflicts" in r.stderr
    assert get_json(http, path)["spec"]["replicas"] == 2

    r = http.patch(
        path,
        params={"fieldManager": "ci"},
        headers={"content-type": "application/apply-patch+yaml"},
        content=_deployment("ss", replicas=5, containers="nginx:nginx:1").encode(),
    )
    assert r.status_code == 409
    status = r.json()
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"', "field": ".spec.replicas"}
    ]

    # --force-conflicts takes the field over; the same value elsewhere is shared, not contested.
    out = kubectl.ok("apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-n", ns, "-f", f2)
    assert out == "deployment.apps/ss serverside-applied\n"
    live = get_json(http, path)
    assert live["spec"]["replicas"] == 5
    managed = _managed(live)
    assert "f:replicas" not in managed[("kubectl", "Apply")]["f:spec"]
    assert "f:replicas" in managed[("ci", "Apply")]["f:spec"]
    assert 'k:{"name":"nginx"}' in managed[("ci", "Apply")]["f:spec"]["f:template"]["f:spec"]["f:containers"]

    # kubectl stops applying the side container and its replicas: side goes (only kubectl owned it).
    f3 = _write(tmp_path, "ss3.yaml", _deployment("ss", replicas=5, containers="nginx:nginx:1"))
    assert kubectl.ok("apply", "--server-side", "-n", ns, "-f", f3) == "deployment.apps/ss serverside-applied\n"
    live = get_json(http, path)
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert live["spec"]["replicas"] == 5

    # An Update manager (kubectl scale, through /scale) takes the field over; applying it again conflicts.
    kubectl.ok("scale", "-n", ns, "deploy/ss", "--replicas=1")
    entry = [e for e in get_json(http, path)["metadata"]["managedFields"] if e.get("subresource") == "scale"]
    assert [(e["manager"], e["operation"], e["fieldsV1"]) for e in entry] == [
        ("kubectl", "Update", {"f:spec": {"f:replicas": {}}})
    ]
    assert "f:replicas" not in _managed(get_json(http, path))[("ci", "Apply")]["f:spec"]
    r = kubectl("apply", "--server-side", "-n", ns, "-f", f3)
    assert r.returncode == 1
    assert r.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl" using apps/v1 with subresource "scale": '
        ".spec.replicas\n"
    )

    # A missing object is created by server-side apply (201).
    r = http.patch(
        f"/api/v1/namespaces/{ns}/configmaps/ssa-new",
        params={"fieldManager": "tool"},
        headers={"content-type": "application/apply-patch+yaml"},
        content=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-new\ndata:\n  a: b\n",
    )
    assert r.status_code == 201
    assert _managed(r.json()) == {("tool", "Apply"): {"f:data": {"f:a": {}}}}
    r = http.patch(
        f"/api/v1/namespaces/{ns}/configmaps/ssa-new",
        headers={"content-type": "application/apply-patch+yaml"},
        content=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-new\n",
    )
    assert r.status_code == 400


def test_client_side_to_server_side_apply(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/up"
    f = _write(tmp_path, "up.yaml", _deployment("up", replicas=2))
    kubectl.ok("apply", "-n", ns, "-f", f)
    f = _write(tmp_path, "up.yaml", _deployment("up", replicas=6))

    # Another manager contests what client-side apply set.
    r = kubectl("apply", "--server-side", "--field-manager=ci", "-n", ns, "-f", f)
    assert r.returncode == 1
    assert r.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas\n'
    )
    # kubectl itself takes over the fields it last applied client-side (the apiserver's upgrade path).
    assert kubectl.ok("apply", "--server-side", "-n", ns, "-f", f) == "deployment.apps/up serverside-applied\n"
    live = get_json(http, path)
    assert live["spec"]["replicas"] == 6
    managed = _managed(live)
    assert "f:replicas" in managed[("kubectl", "Apply")]["f:spec"]
    # kubectl then migrates the client-side apply entry into its own (csaupgrade: a JSON patch of managedFields).
    assert ("kubectl-client-side-apply", "Update") not in managed
    assert set(managed) == {("kubectl", "Apply"), ("kubectl-last-applied", "Apply")}


def test_diff(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    f = _write(tmp_path, "d.yaml", _deployment("df", replicas=2))
    kubectl.ok("apply", "-n", namespace, "-f", f)
    r = kubectl("diff", "-n", namespace, "-f", f)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    f = _write(tmp_path, "d.yaml", _deployment("df", replicas=4))
    r = kubectl("diff", "-n", namespace, "-f", f)
    assert r.returncode == 1, r.stderr
    changed = [line for line in r.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-  generation: 1", "+  generation: 2", "-  replicas: 2", "+  replicas: 4"]


# --- delete ---------------------------------------------------------------------------------


def _cm(http: httpx.Client, ns: str, name: str, labels: dict[str, str] | None = None) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}}
    assert http.post(f"/api/v1/namespaces/{ns}/configmaps", json=body).status_code == 201


def test_delete_variants(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    for name, labels in (("a", {"x": "1"}), ("b", {"x": "1"}), ("c", {}), ("d", {}), ("e", {})):
        _cm(http, ns, name, labels)

    assert kubectl.ok("delete", "-n", ns, "configmap", "e") == f'configmap "e" deleted from {ns} namespace\n'
    assert kubectl.ok("delete", "-n", ns, "cm", "-l", "x=1") == (
        f'configmap "a" deleted from {ns} namespace\nconfigmap "b" deleted from {ns} namespace\n'
    )
    f = _write(tmp_path, "c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    assert kubectl.ok("delete", "-n", ns, "-f", f) == f'configmap "c" deleted from {ns} namespace\n'
    assert kubectl.ok("delete", "-n", ns, "cm", "--all") == f'configmap "d" deleted from {ns} namespace\n'
    assert get_json(http, cms)["items"] == []
    err = kubectl.fails("delete", "-n", ns, "cm", "gone")
    assert err == 'Error from server (NotFound): configmaps "gone" not found\n'

    # Background (the default) removes the owner at once; --wait returns when it is gone.
    kubectl.ok("create", "deployment", "bg", "-n", ns, "--image=nginx")
    out = kubectl.ok("delete", "-n", ns, "deploy", "bg", "--cascade=background", "--wait", timeout=15)
    assert out == f'deployment.apps "bg" deleted from {ns} namespace\n'
    get_json(http, f"/apis/apps/v1/namespaces/{ns}/deployments/bg", expect=404)

    # Orphan and foreground leave a finalizer for the garbage collector (tinykube runs none here),
    # so the object stays, marked for deletion, until that finalizer is removed.
    for name, cascade, finalizer in (("or", "orphan", "orphan"), ("fg", "foreground", "foregroundDeletion")):
        kubectl.ok("create", "deployment", name, "-n", ns, "--image=nginx")
        out = kubectl.ok("delete", "-n", ns, "deploy", name, f"--cascade={cascade}", "--wait=false")
        assert out == f'deployment.apps "{name}" deleted from {ns} namespace\n'
        path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
        live = get_json(http, path)
        assert live["metadata"]["finalizers"] == [finalizer]
        assert live["metadata"]["deletionTimestamp"]
        waiter = kubectl.start("wait", "-n", ns, f"deploy/{name}", "--for=delete", "--timeout=20s")
        kubectl.ok(
            "patch", "-n", ns, "deploy", name, "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]'
        )
        code, out, err = finish(waiter)
        assert code == 0, err
        assert out in (f"deployment.apps/{name} condition met\n", "")
        get_json(http, path, expect=404)


# --- metadata and spec edits ------------------------------------------------------------------


def test_label_annotate_patch(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("apply", "-n", ns, "-f", "-", input=_deployment("lp", containers="nginx:nginx:1"))
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/lp"

    assert kubectl.ok("label", "-n", ns, "deploy", "lp", "env=prod") == "deployment.apps/lp labeled\n"
    err = kubectl.fails("label", "-n", ns, "deploy", "lp", "env=dev")
    assert err == "error: 'env' already has a value (prod), and --overwrite is false\n"
    kubectl.ok("label", "-n", ns, "deploy", "lp", "env=dev", "--overwrite")
    assert get_json(http, path)["metadata"]["labels"] == {"app": "lp", "env": "dev"}
    assert kubectl.ok("label", "-n", ns, "deploy", "lp", "env-") == "deployment.apps/lp unlabeled\n"
    assert get_json(http, path)["metadata"]["labels"] == {"app": "lp"}

    assert kubectl.ok("annotate", "-n", ns, "deploy", "lp", "note=hello world") == "deployment.apps/lp annotated\n"
    assert get_json(http, path)["metadata"]["annotations"]["note"] == "hello world"
    kubectl.ok("annotate", "-n", ns, "deploy", "lp", "note-")
    assert "note" not in get_json(http, path)["metadata"].get("annotations", {})

    sidecar = '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}'
    assert kubectl.ok("patch", "-n", ns, "deploy", "lp", "-p", sidecar) == "deployment.apps/lp patched\n"
    containers = get_json(http, path)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx", "side"]  # strategic: merged by name

    kubectl.ok("patch", "-n", ns, "deploy", "lp", "--type=merge", "-p", sidecar)
    containers = get_json(http, path)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["side"]  # merge patch: the list is replaced

    ops = '[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels/j","value":"p"}]'
    kubectl.ok("patch", "-n", ns, "deploy", "lp", "--type=json", "-p", ops)
    live = get_json(http, path)
    assert live["spec"]["replicas"] == 4 and live["metadata"]["labels"]["j"] == "p"

    out = kubectl.ok("patch", "-n", ns, "deploy", "lp", "--type=merge", "-p", '{"spec":{"replicas":4}}')
    assert out == "deployment.apps/lp patched (no change)\n"
    err = kubectl.fails(
        "patch", "-n", ns, "deploy", "lp", "--type=json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]'
    )
    assert err == "The request is invalid: the server rejected our request due to an error in our request\n"


def test_scale_set_image_expose(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("apply", "-n", ns, "-f", "-", input=_deployment("sc", containers="nginx:nginx:1,side:busybox"))
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/sc"

    assert kubectl.ok("scale", "-n", ns, "deploy/sc", "--replicas=3") == "deployment.apps/sc scaled\n"
    assert get_json(http, path)["spec"]["replicas"] == 3
    scale = get_json(http, f"{path}/scale")
    assert (scale["kind"], scale["apiVersion"], scale["spec"], scale["status"]["selector"]) == (
        "Scale",
        "autoscaling/v1",
        {"replicas": 3},
        "app=sc",
    )
    kubectl.ok("scale", "-n", ns, "deploy/sc", "--current-replicas=3", "--replicas=1")
    assert get_json(http, f"{path}/scale")["spec"]["replicas"] == 1
    err = kubectl.fails("scale", "-n", ns, "deploy/sc", "--current-replicas=7", "--replicas=2")
    assert "Expected replicas to be 7, was 1" in err

    assert kubectl.ok("set", "image", "-n", ns, "deploy/sc", "nginx=nginx:2") == "deployment.apps/sc image updated\n"
    containers = get_json(http, path)["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("nginx", "nginx:2"), ("side", "busybox")]

    out = kubectl.ok("expose", "-n", ns, "deploy/sc", "--port=80", "--target-port=8080", "--name=sc-svc")
    assert out == "service/sc-svc exposed\n"
    svc = get_json(http, f"/api/v1/namespaces/{ns}/services/sc-svc")
    assert svc["spec"]["selector"] == {"app": "sc"}
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]


def test_create_generators_and_run(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    f = tmp_path / "cfg.txt"
    f.write_text("line1\nline2\n")

    out = kubectl.ok("create", "secret", "generic", "sec", "-n", ns, "--from-literal=user=admin", f"--from-file={f}")
    assert out == "secret/sec created\n"
    sec = get_json(http, f"/api/v1/namespaces/{ns}/secrets/sec")
    assert sec["type"] == "Opaque"
    assert sec["data"] == {
        "user": base64.b64encode(b"admin").decode(),
        "cfg.txt": base64.b64encode(b"line1\nline2\n").decode(),
    }
    assert rows_without_age(kubectl.ok("get", "secret", "sec", "-n", ns)) == [
        ["NAME", "TYPE", "DATA"],
        ["sec", "Opaque", "2"],
    ]

    out = kubectl.ok("create", "configmap", "cfg", "-n", ns, "--from-literal=a=1", f"--from-file=conf={f}")
    assert out == "configmap/cfg created\n"
    assert get_json(http, f"/api/v1/namespaces/{ns}/configmaps/cfg")["data"] == {"a": "1", "conf": "line1\nline2\n"}

    out = kubectl.ok("create", "deployment", "gen", "-n", ns, "--image=nginx:1.25", "--replicas=2", "--port=80")
    assert out == "deployment.apps/gen created\n"
    dep = get_json(http, f"/apis/apps/v1/namespaces/{ns}/deployments/gen")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "gen"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"], container["ports"]) == (
        "nginx",
        "nginx:1.25",
        [{"containerPort": 80, "protocol": "TCP"}],
    )

    extra = f"{ns}-extra"
    assert kubectl.ok("create", "namespace", extra) == f"namespace/{extra} created\n"
    assert get_json(http, f"/api/v1/namespaces/{extra}")["status"]["phase"] == "Active"

    out = kubectl.ok(
        "run", "runner", "-n", ns, "--image=busybox", "--labels=a=b", "--restart=Never", "--env=K=V", "--", "sleep", "5"
    )
    assert out == "pod/runner created\n"
    pod = get_json(http, f"/api/v1/namespaces/{ns}/pods/runner")
    assert pod["metadata"]["labels"] == {"a": "b"}
    assert pod["spec"]["restartPolicy"] == "Never"
    c = pod["spec"]["containers"][0]
    assert (c["name"], c["image"], c["args"], c["env"]) == (
        "runner",
        "busybox",
        ["sleep", "5"],
        [{"name": "K", "value": "V"}],
    )

    out = kubectl.ok("create", "configmap", "dry", "-n", ns, "--from-literal=a=1", "--dry-run=server", "-o", "yaml")
    dry = yaml.safe_load(out)
    assert dry["metadata"]["uid"] and dry["metadata"]["creationTimestamp"]
    get_json(http, f"/api/v1/namespaces/{ns}/configmaps/dry", expect=404)


def test_dry_run_server(kubectl: Kubectl, http: httpx.Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/dr"
    f = _write(tmp_path, "dr.yaml", _deployment("dr", replicas=2))
    assert kubectl.ok("apply", "-n", ns, "-f", f, "--dry-run=server") == "deployment.apps/dr created (server dry run)\n"
    get_json(http, path, expect=404)
    kubectl.ok("apply", "-n", ns, "-f", f)
    rv = get_json(http, path)["metadata"]["resourceVersion"]

    f = _write(tmp_path, "dr.yaml", _deployment("dr", replicas=7))
    assert kubectl.ok("apply", "-n", ns, "-f", f, "--dry-run=server") == (
        "deployment.apps/dr configured (server dry run)\n"
    )
    out = kubectl.ok("apply", "--server-side", "-n", ns, "-f", f, "--dry-run=server", "-o", "jsonpath={.spec.replicas}")
    assert out == "7"
    assert kubectl.ok("scale", "-n", ns, "deploy/dr", "--replicas=9", "--dry-run=server") == (
        "deployment.apps/dr scaled (server dry run)\n"
    )
    assert kubectl.ok("delete", "-n", ns, "deploy/dr", "--dry-run=server") == (
        f'deployment.apps "dr" deleted from {ns} namespace (server dry run)\n'
    )
    live = get_json(http, path)
    assert (live["spec"]["replicas"], live["metadata"]["resourceVersion"]) == (2, rv)


# --- describe, wait, rollout, logs, exec ----------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(http: httpx.Client, ns: str, obj: dict[str, Any], reason: str, message: str) -> None:
    m = obj["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{m['name']}.{reason.lower()}"},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": m["name"],
            "namespace": ns,
            "uid": m["uid"],
        },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "e2e"},
        "firstTimestamp": _now(),
        "lastTimestamp": _now(),
        "count": 1,
    }
    r = http.post(f"/api/v1/namespaces/{ns}/events", json=body)
    assert r.status_code == 201, r.text


def _events_section(text: str) -> list[list[str]]:
    after = text.split("\nEvents:", 1)[1]
    return table("\n".join(line.strip() for line in after.splitlines()))


def test_describe_with_events(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("create", "deployment", "desc", "-n", ns, "--image=nginx:1.25")
    dep = get_json(http, f"/apis/apps/v1/namespaces/{ns}/deployments/desc")
    _event(http, ns, dep, "ScalingReplicaSet", "Scaled up replica set desc-1 to 1")
    out = kubectl.ok("describe", "-n", ns, "deployment", "desc")
    lines = out.splitlines()
    assert lines[0] == "Name:                   desc"
    assert f"Namespace:              {ns}" in lines
    assert "Selector:               app=desc" in lines
    assert "Replicas:               1 desired | 0 updated | 0 total | 0 available | 0 unavailable" in lines
    assert "    Image:         nginx:1.25" in lines
    events = _events_section(out)
    assert events[0] == ["Type", "Reason", "Age", "From", "Message"]
    assert events[1] == ["----", "------", "----", "----", "-------"]
    assert events[2][:2] == ["Normal", "ScalingReplicaSet"]
    assert events[2][3:] == ["e2e", "Scaled up replica set desc-1 to 1"]

    kubectl.ok("run", "dp", "-n", ns, "--image=busybox", "--restart=Never")
    pod = get_json(http, f"/api/v1/namespaces/{ns}/pods/dp")
    _event(http, ns, pod, "Scheduled", "Successfully assigned the pod")
    out = kubectl.ok("describe", "-n", ns, "pod", "dp")
    assert out.splitlines()[0] == "Name:             dp"
    assert "Status:           Pending" in out.splitlines()
    assert _events_section(out)[2][-1] == "Successfully assigned the pod"


def test_wait(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("create", "deployment", "wt", "-n", ns, "--image=nginx")
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/wt"
    waiter = kubectl.start("wait", "-n", ns, "deploy/wt", "--for=condition=Available", "--timeout=20s")
    status = {
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
        }
    }
    r = http.patch(f"{path}/status", headers={"content-type": "application/merge-patch+json"}, json=status)
    assert r.status_code == 200, r.text
    code, out, err = finish(waiter)
    assert (code, out) == (0, "deployment.apps/wt condition met\n"), err

    out = kubectl.ok("wait", "-n", ns, "deploy/wt", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=5s")
    assert out == "deployment.apps/wt condition met\n"

    kubectl.ok("run", "pend", "-n", ns, "--image=busybox", "--restart=Never")
    r = kubectl("wait", "-n", ns, "pod/pend", "--for=condition=Ready", "--timeout=1s")
    assert r.returncode == 1
    assert r.stderr == "error: timed out waiting for the condition on pods/pend\n"

    _cm(http, ns, "bye")
    waiter = kubectl.start("wait", "-n", ns, "cm/bye", "--for=delete", "--timeout=20s")
    assert http.delete(f"/api/v1/namespaces/{ns}/configmaps/bye").status_code == 200
    code, out, err = finish(waiter)
    assert code == 0, err
    assert out in ("configmap/bye condition met\n", "")


def _replicaset(http: httpx.Client, ns: str, dep: dict[str, Any], revision: int, image: str, cause: str = "") -> None:
    labels = {"app": dep["metadata"]["name"], "pod-template-hash": f"h{revision}"}
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    container = dep["spec"]["template"]["spec"]["containers"][0]
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dep['metadata']['name']}-h{revision}",
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": dep["metadata"]["name"],
                    "uid": dep["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": container["name"], "image": image}]},
            },
        },
    }
    r = http.post(f"/apis/apps/v1/namespaces/{ns}/replicasets", json=body)
    assert r.status_code == 201, r.text


def test_rollout_history_pause_resume_undo_restart(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    ns = namespace
    kubectl.ok("create", "deployment", "ro", "-n", ns, "--image=nginx:2")
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/ro"
    # What the deployment controller would have written: its revision, and one ReplicaSet per revision.
    kubectl.ok("annotate", "-n", ns, "deploy/ro", "deployment.kubernetes.io/revision=2")
    dep = get_json(http, path)
    _replicaset(http, ns, dep, 1, "nginx:1")
    _replicaset(http, ns, dep, 2, "nginx:2", cause="kubectl set image nginx=nginx:2")

    out = kubectl.ok("rollout", "history", "-n", ns, "deploy/ro")
    assert table(out) == [
        ["deployment.apps/ro"],
        ["REVISION", "CHANGE-CAUSE"],
        ["1", "<none>"],
        ["2", "kubectl set image nginx=nginx:2"],
    ]
    out = kubectl.ok("rollout", "history", "-n", ns, "deploy/ro", "--revision=1")
    assert out.startswith("deployment.apps/ro with revision #1\nPod Template:\n")
    assert "\tImage:\tnginx:1\n" in out.replace("    Image:", "\tImage:")

    assert kubectl.ok("rollout", "pause", "-n", ns, "deploy/ro") == "deployment.apps/ro paused\n"
    assert get_json(http, path)["spec"]["paused"] is True
    err = kubectl.fails("rollout", "undo", "-n", ns, "deploy/ro")
    assert "you cannot rollback a paused deployment" in err
    assert kubectl.ok("rollout", "resume", "-n", ns, "deploy/ro") == "deployment.apps/ro resumed\n"
    assert "paused" not in get_json(http, path)["spec"]

    assert kubectl.ok("rollout", "undo", "-n", ns, "deploy/ro") == "deployment.apps/ro rolled back\n"
    live = get_json(http, path)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert "pod-template-hash" not in live["spec"]["template"]["metadata"]["labels"]
    # The rollback copies the old ReplicaSet's annotations but keeps the deployment's own revision.
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    assert kubectl.ok("rollout", "restart", "-n", ns, "deploy/ro") == "deployment.apps/ro restarted\n"
    annotations = get_json(http, path)["spec"]["template"]["metadata"]["annotations"]
    assert datetime.fromisoformat(annotations["kubectl.kubernetes.io/restartedAt"].replace("Z", "+00:00"))


def test_logs_and_exec_of_an_unscheduled_pod(kubectl: Kubectl, namespace: str) -> None:
    ns = namespace
    kubectl.ok("run", "lx", "-n", ns, "--image=busybox", "--restart=Never")
    # as kube-apiserver: no node yet, so the log is an empty stream and exec is a BadRequest
    assert kubectl.ok("-n", ns, "logs", "lx", timeout=20) == ""
    r = kubectl("-n", ns, "exec", "lx", "--", "ls", timeout=20)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.strip().splitlines()[-1] == "Error from server (BadRequest): pod lx does not have a host assigned"


def test_debug_of_a_missing_pod_is_a_clean_not_found(kubectl: Kubectl, namespace: str) -> None:
    """kubectl reads the Status (in protobuf) and its details; without them it panics."""
    err = kubectl.fails("debug", "nope", "-n", namespace, "--image=busybox", "--target=c", "--profile=general")
    assert 'pods "nope" not found' in err
    assert "panic" not in err
