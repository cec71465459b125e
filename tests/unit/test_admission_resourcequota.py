"""ResourceQuota admission's pure check (CheckRequest) and the evaluators, as upstream's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from admission_kit import attrs, container, pod, quota

from apimachinery.errors import StatusError
from apimachinery.quota import evaluator_for, parse_list, pretty_print
from apimachinery.resources import by_plural
from apiserver.admission.resourcequota import ResourceQuotaAdmission, check_request
from controller_manager.controllers.resourcequota import calculate_usage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PODS = by_plural("", "pods")
SERVICES = by_plural("", "services")
assert PODS and SERVICES


def _check(quotas: list[dict[str, Any]], a: Any) -> list[dict[str, Any]]:
    res = a.resource
    return check_request(quotas, a, evaluator_for(res), NOW)


def _refusal(quotas: list[dict[str, Any]], a: Any) -> str:
    with pytest.raises(StatusError) as e:
        _check(quotas, a)
    assert e.value.code == 403
    return e.value.message


def test_exceeded_pods_message() -> None:
    q = quota("compute", {"pods": "2"}, {"pods": "2"})
    assert _refusal([q], attrs("pods", pod("p3"))) == (
        'pods "p3" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2'
    )


def test_charge_raises_used_and_leaves_the_input_alone() -> None:
    q = quota(
        "compute",
        {"pods": "3", "requests.cpu": "1", "limits.memory": "1Gi"},
        {"pods": "1", "requests.cpu": "200m", "limits.memory": "256Mi"},
    )
    obj = pod("p", container(requests={"cpu": "300m", "memory": "64Mi"}, limits={"cpu": "1", "memory": "256Mi"}))
    [after] = _check([q], attrs("pods", obj))
    assert after["status"]["used"] == {"limits.memory": "512Mi", "pods": "2", "requests.cpu": "500m"}
    assert q["status"]["used"]["pods"] == "1"


def test_exceeded_lists_only_the_exceeded_resources() -> None:
    q = quota("q", {"pods": "5", "requests.cpu": "1"}, {"pods": "0", "requests.cpu": "800m"})
    obj = pod("p", container(requests={"cpu": "500m"}, limits={"cpu": "500m"}))
    assert _refusal([q], attrs("pods", obj)).endswith(
        "exceeded quota: q, requested: requests.cpu=500m, used: requests.cpu=800m, limited: requests.cpu=1"
    )


def test_compute_quota_requires_every_container_to_say() -> None:
    q = quota("q", {"limits.cpu": "4", "requests.memory": "1Gi"})
    obj = pod("p", container("a"), container("b", requests={"memory": "1Mi"}))
    assert _refusal([q], attrs("pods", obj)) == (
        'pods "p" is forbidden: failed quota: q: must specify limits.cpu for: a,b; requests.memory for: a'
    )


def test_status_unknown_until_the_controller_computed_used() -> None:
    q = quota("q", {"pods": "1"})
    q["status"] = {"hard": {"pods": "1"}}
    assert _refusal([q], attrs("pods", pod())) == 'pods "p" is forbidden: status unknown for quota: q, resources: pods'


def test_unrelated_quota_and_unhandled_writes_pass_unchanged() -> None:
    quotas = [quota("q", {"services": "0"}, {"services": "0"})]
    assert _check(quotas, attrs("pods", pod())) is quotas
    assert _check(quotas, attrs("pods", pod(), "UPDATE", old=pod())) is quotas  # pods are charged on create only
    assert _check(quotas, attrs("pods", pod(), subresource="status")) is quotas


def test_object_count_quotas() -> None:
    q = quota("q", {"count/pods": "1", "configmaps": "1", "count/deployments.apps": "0"})
    assert _check([q], attrs("pods", pod()))[0]["status"]["used"]["count/pods"] == "1"
    assert _check([q], attrs("configmaps", {"metadata": {"name": "c"}}))[0]["status"]["used"]["configmaps"] == "1"
    deploy = {"metadata": {"name": "d"}, "spec": {}}
    assert "count/deployments.apps=0" in _refusal([q], attrs("deployments", deploy, group="apps"))


def test_services_node_ports_and_update_delta() -> None:
    q = quota("q", {"services": "5", "services.nodeports": "1"}, {"services": "1", "services.nodeports": "0"})
    two_ports = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}}
    assert "requested: services.nodeports=2" in _refusal([q], attrs("services", two_ports))
    old = {"metadata": {"name": "s", "resourceVersion": "5"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    new = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    [after] = _check([q], attrs("services", new, "UPDATE", old=old))
    assert after["status"]["used"] == {"services": "1", "services.nodeports": "1"}  # the type change, not a new service


def test_claims_storage() -> None:
    q = quota(
        "q",
        {"requests.storage": "10Gi", "persistentvolumeclaims": "4"},
        {"requests.storage": "8Gi", "persistentvolumeclaims": "1"},
    )
    claim = {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "4Gi"}}}}
    assert _refusal([q], attrs("persistentvolumeclaims", claim)).endswith(
        "requested: requests.storage=4Gi, used: requests.storage=8Gi, limited: requests.storage=10Gi"
    )


@pytest.mark.parametrize(
    ("scopes", "spec", "charged"),
    [
        (["BestEffort"], {}, True),
        (["BestEffort"], {"containers": [container(requests={"cpu": "1"})]}, False),
        (["NotBestEffort"], {"containers": [container(requests={"cpu": "1"})]}, True),
        (["Terminating"], {"activeDeadlineSeconds": 30}, True),
        (["Terminating"], {}, False),
        (["NotTerminating"], {}, True),
    ],
)
def test_scoped_quotas_charge_only_matching_pods(scopes: list[str], spec: dict[str, Any], charged: bool) -> None:
    q = quota("q", {"pods": "10"}, scopes=scopes)
    obj = pod("p")
    obj["spec"].update(spec)
    [after] = _check([q], attrs("pods", obj))
    assert (after["status"]["used"]["pods"] == "1") is charged


def test_priority_class_scope_selector() -> None:
    selector = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}
    q = quota("q", {"pods": "0"}, scopeSelector=selector)
    low, high = pod("low"), pod("high")
    high["spec"]["priorityClassName"] = "high"
    assert _check([q], attrs("pods", low))[0]["status"]["used"]["pods"] == "0"
    assert "exceeded quota: q" in _refusal([q], attrs("pods", high))


def test_dry_run_is_checked_and_the_plugin_handles() -> None:
    plugin = ResourceQuotaAdmission()
    assert plugin.handles(attrs("pods", pod()))
    assert not plugin.handles(attrs("pods", pod(), "DELETE"))
    assert not plugin.handles(attrs("events", {"metadata": {"name": "e"}}))
    assert plugin.handles(attrs("services", {"metadata": {"name": "s"}}, "UPDATE", old={"metadata": {"name": "s"}}))


def test_terminal_pods_count_objects_but_not_compute() -> None:
    ev = evaluator_for(PODS)
    done = pod("p", container(requests={"cpu": "1"}))
    done["status"] = {"phase": "Succeeded"}
    assert pretty_print(ev.usage(done, NOW)) == "count/pods=1"
    running = pod("p", container(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "2"}))
    assert pretty_print(ev.usage(running, NOW)) == (
        "count/pods=1,cpu=1,limits.cpu=2,memory=1Gi,pods=1,requests.cpu=1,requests.memory=1Gi"
    )


def test_pod_requests_take_init_containers_sidecars_and_overhead() -> None:
    ev = evaluator_for(PODS)
    sidecar = container("s", requests={"cpu": "100m"})
    sidecar["restartPolicy"] = "Always"
    obj = pod(
        "p",
        container("a", requests={"cpu": "200m"}),
        init=(container("i", requests={"cpu": "1"}), sidecar),
        overhead={"cpu": "50m"},
    )
    # max(containers + sidecar = 300m, init 1) + overhead 50m
    assert str(ev.usage(obj, NOW)["requests.cpu"]) == "1050m"


def test_controller_calculation_masks_and_zeroes() -> None:
    q = quota("q", {"pods": "10", "requests.memory": "1Gi", "services": "2"}, scopes=[])
    objects = {
        "pods": [pod("a", container(requests={"memory": "100Mi"})), pod("b", container(requests={"memory": "28Mi"}))],
        "services": [],
    }
    used = calculate_usage(q, objects, NOW)
    assert {k: str(v) for k, v in used.items()} == {"pods": "2", "requests.memory": "128Mi", "services": "0"}
    assert parse_list({"x": "1"}) == {"x": parse_list({"x": "1000m"})["x"]}
