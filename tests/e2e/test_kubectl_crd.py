"""The real kubectl and the official Python client on a CustomResourceDefinition (examples/crontab-crd.yaml)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from kubernetes import client

from tests.e2e.conftest import Kubectl

EXAMPLE = Path(__file__).parents[2] / "examples" / "crontab-crd.yaml"
CRD = "crontabs.stable.example.com"


@pytest.fixture(scope="module")
def crontab_crd(kubectl: Kubectl) -> Iterator[None]:
    """The example's CRD applied and established; deleted (with its objects) after the module.

    Other modules' CRDs of kind CronTab (other groups, deleted without waiting) must be gone first:
    while one is still served, kubectl may resolve `crontabs` to it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(kubectl.ok("get", "crd", "-o", "json"))["items"]
        if not [c for c in listed if c["spec"]["names"]["plural"] == "crontabs" and c["metadata"]["name"] != CRD]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("other modules' crontabs CRDs were not deleted within 60 s")
    crd_doc = EXAMPLE.read_text().split("\n---\n")[0]
    out = kubectl.ok("apply", "-f", "-", input=crd_doc)
    assert f"customresourcedefinition.apiextensions.k8s.io/{CRD} created" in out
    kubectl.ok("wait", "--for", "condition=established", f"crd/{CRD}", "--timeout", "20s")
    yield
    kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout", "30s")


def test_kubectl_apply_get_scale_and_delete_crd(kubectl: Kubectl, crontab_crd: None, namespace: str) -> None:
    out = kubectl.ok("apply", "-n", namespace, "-f", str(EXAMPLE))
    assert "crontab.stable.example.com/my-new-cron-object created" in out
    header, row = kubectl.ok("get", "crontabs", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert row.startswith("my-new-cron-object") and "* * * * */5" in row and row.split()[-2] == "1"
    assert kubectl.ok("get", "ct", "-n", namespace, "-o", "name").split() == [
        "crontab.stable.example.com/my-new-cron-object"
    ]
    assert "crontab.stable.example.com/my-new-cron-object" in kubectl.ok("get", "all", "-n", namespace, "-o", "name")
    changed = EXAMPLE.read_text().replace("my-awesome-cron-image", "my-newer-cron-image")
    out = kubectl.ok("apply", "-n", namespace, "-f", "-", input=changed)  # client-side apply: a merge patch
    assert "crontab.stable.example.com/my-new-cron-object configured" in out
    image = kubectl.ok("get", "ct", "my-new-cron-object", "-n", namespace, "-o", "jsonpath={.spec.image}")
    assert image == "my-newer-cron-image"
    kubectl.ok("apply", "-n", namespace, "-f", str(EXAMPLE))
    resources = kubectl.ok("api-resources", "--api-group", "stable.example.com").splitlines()
    assert resources[1].split() == ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]
    assert kubectl.ok("get", "crd", CRD, "-o", "name").strip() == f"customresourcedefinition.apiextensions.k8s.io/{CRD}"
    out = kubectl.ok("scale", "ct", "my-new-cron-object", "--replicas", "3", "-n", namespace)
    assert out.strip() == "crontab.stable.example.com/my-new-cron-object scaled"
    assert kubectl.ok("get", "ct", "my-new-cron-object", "-n", namespace, "-o", "jsonpath={.spec.replicas}") == "3"
    picked = kubectl.ok(
        "get", "ct", "-n", namespace, "-o", "name", "--field-selector", "spec.image=my-awesome-cron-image"
    )
    assert picked.split() == ["crontab.stable.example.com/my-new-cron-object"]
    none = kubectl.ok("get", "ct", "-n", namespace, "-o", "name", "--field-selector", "spec.image=other")
    assert none.strip() == ""


def test_kubectl_server_side_apply_on_a_custom_resource(kubectl: Kubectl, crontab_crd: None, namespace: str) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text().split("\n---\n")[1])
    doc["metadata"]["name"] = "ssa"
    kubectl.ok("apply", "--server-side", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    doc["spec"]["image"] = "changed"
    kubectl.ok(
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(doc),
    )
    got = kubectl.ok("get", "ct", "ssa", "-n", namespace, "-o", "jsonpath={.spec.image}")
    assert got == "changed"


def test_python_client_custom_objects_api(apiserver: str, crontab_crd: None, namespace: str) -> None:
    with client.ApiClient(client.Configuration(host=apiserver)) as api_client:
        objects = client.CustomObjectsApi(api_client)
        body = {
            "apiVersion": "stable.example.com/v1",
            "kind": "CronTab",
            "metadata": {"name": "py"},
            "spec": {"cronSpec": "*/1 * * * *", "image": "py", "replicas": 2},
        }
        created = objects.create_namespaced_custom_object("stable.example.com", "v1", namespace, "crontabs", body)
        assert created["metadata"]["uid"]
        listed = objects.list_namespaced_custom_object("stable.example.com", "v1", namespace, "crontabs")
        assert "py" in [i["metadata"]["name"] for i in listed["items"]]
        patched = objects.patch_namespaced_custom_object_status(
            "stable.example.com", "v1", namespace, "crontabs", "py", {"status": {"replicas": 2}}
        )
        assert patched["status"] == {"replicas": 2}
        scale = objects.get_namespaced_custom_object_scale("stable.example.com", "v1", namespace, "crontabs", "py")
        assert scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 2
        objects.delete_namespaced_custom_object("stable.example.com", "v1", namespace, "crontabs", "py")
        with pytest.raises(client.ApiException) as e:
            objects.get_namespaced_custom_object("stable.example.com", "v1", namespace, "crontabs", "py")
        assert e.value.status == 404


def test_kubectl_delete_crd_removes_its_objects(kubectl: Kubectl, namespace: str) -> None:
    crd_doc = EXAMPLE.read_text().split("\n---\n")[0].replace("crontabs", "crondels").replace("CronTab", "CronDel")
    crd_doc = crd_doc.replace("shortNames: [ct]", "shortNames: [cd]").replace("singular: crontab", "singular: crondel")
    kubectl.ok("apply", "-f", "-", input=crd_doc)
    kubectl.ok("wait", "--for", "condition=established", "crd/crondels.stable.example.com", "--timeout", "20s")
    obj = EXAMPLE.read_text().split("\n---\n")[1].replace("CronTab", "CronDel")
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=obj)
    out = kubectl.ok("delete", "crd", "crondels.stable.example.com", "--timeout", "30s")
    assert 'customresourcedefinition.apiextensions.k8s.io "crondels.stable.example.com" deleted' in out
    # kubectl waited for the CRD to go, which it does only after its objects; then its kind is no longer served
    deadline = time.monotonic() + 10
    while (r := kubectl("get", "crondels", "-n", namespace)).returncode == 0 and time.monotonic() < deadline:
        assert r.stdout.strip() == ""
    assert "NotFound" in r.stderr or "doesn't have a resource type" in r.stderr, r.stderr


def test_kubectl_explain_reads_the_crd_schema(kubectl: Kubectl, crontab_crd: None) -> None:
    out = kubectl.ok("explain", "crontab.spec")
    assert "KIND:       CronTab" in out and "VERSION:    v1" in out
    assert "cronSpec\t<string>" in out and "replicas\t<integer>" in out
    top = kubectl.ok("explain", "crontabs")
    assert "metadata\t<ObjectMeta>" in top and "spec\t<Object>" in top


def test_openapi_v2_carries_the_crd_schema(http: httpx.Client, kubectl: Kubectl, crontab_crd: None) -> None:
    doc = http.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    crontab = doc["definitions"]["com.example.stable.v1.CronTab"]
    gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    assert crontab["x-kubernetes-group-version-kind"] == [gvk]
    meta = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert crontab["properties"]["metadata"] == {"$ref": meta}
    assert crontab["properties"]["spec"]["properties"]["replicas"] == {"type": "integer"}
    listing = doc["definitions"]["com.example.stable.v1.CronTabList"]
    assert listing["properties"]["items"]["items"] == {"$ref": "#/definitions/com.example.stable.v1.CronTab"}
    create = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["post"]
    body = next(p for p in create["parameters"] if p["in"] == "body")
    assert body["schema"] == {"$ref": "#/definitions/com.example.stable.v1.CronTab"}
    # kubectl reads the protobuf form
    out = kubectl.ok("explain", "--output=plaintext-openapiv2", "crontab.spec")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[:2] == ["KIND:     CronTab", "VERSION:  stable.example.com/v1"]
    assert "cronSpec\t<string>" in lines and "replicas\t<integer>" in lines


def test_kubectl_strict_validation_of_an_unknown_field(kubectl: Kubectl, crontab_crd: None, namespace: str) -> None:
    doc = EXAMPLE.read_text().split("\n---\n")[1].replace("replicas: 1", "replicas: 1\n  bogus: 1")
    assert "bogus" in doc
    err = kubectl.fails("create", "--validate=strict", "-n", namespace, "-f", "-", input=doc)
    assert err.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": CronTab in version "v1" cannot be handled '
        'as a CronTab: strict decoding error: unknown field "spec.bogus"'
    )
    out = kubectl.ok("create", "--validate=false", "-n", namespace, "-f", "-", "-o", "jsonpath={.spec}", input=doc)
    assert "bogus" not in out and "cronSpec" in out
