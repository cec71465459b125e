"""StatefulSet pod identity and revision hashing."""

from __future__ import annotations

from controller_manager.controllers.controller_history import compute_hash, revision_data, template_from_revision
from controller_manager.controllers.statefulset import pod_ordinal, stateful_pod

STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "db", "namespace": "ns", "uid": "u1"},
    "spec": {
        "serviceName": "db-svc",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
    },
}


def test_stateful_pod_identity() -> None:
    template = template_from_revision({"data": revision_data(STS)})
    assert template == STS["spec"]["template"]
    pod = stateful_pod(STS, template, 2, "db-abc")
    assert pod["metadata"]["name"] == "db-2"
    assert pod["spec"]["hostname"] == "db-2" and pod["spec"]["subdomain"] == "db-svc"
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-2"
    assert labels["apps.kubernetes.io/pod-index"] == "2"
    assert labels["controller-revision-hash"] == "db-abc"
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-2"}}]
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "StatefulSet" and ref["controller"] is True
    assert pod_ordinal("db", pod) == 2
    assert pod_ordinal("db", {"metadata": {"name": "dbx-1"}}) is None


def test_hash_stable_and_collision_sensitive() -> None:
    data = revision_data(STS)
    h = compute_hash(data)
    assert h == compute_hash(revision_data(STS))
    assert h != compute_hash(data, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
