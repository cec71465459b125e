"""Defaults per kind, pinned to upstream's defaulting functions (a real apiserver on a real etcd).

Each row names the upstream function it follows — `SetDefaults_*` in k8s.io/kubernetes
pkg/apis/{core,apps,batch}/v1/defaults.go and the declarative `+default` markers that
zz_generated.defaults.go applies — then creates the object and checks the fields that
function sets (`expect`) and the ones it leaves out (`absent`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

_MISSING = object()


def _container(**extra: Any) -> dict[str, Any]:
    return {"name": "c", "image": "busybox:1.36", **extra}


def _pod_spec(**extra: Any) -> dict[str, Any]:
    return {"containers": [_container()], **extra}


def _template(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "d"}}, "spec": _pod_spec(**spec)}


_SELECTOR = {"matchLabels": {"app": "d"}}


@dataclass(frozen=True)
class Row:
    """One defaulting rule: create `body` as `kind` and compare fields by dotted path."""

    id: str
    source: str  # the upstream function or marker
    kind: str
    body: dict[str, Any]
    expect: dict[str, Any] = field(default_factory=dict)
    absent: tuple[str, ...] = ()


_PATHS = {
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Endpoints": "/api/v1/namespaces/{ns}/endpoints",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Namespace": "/api/v1/namespaces",
    "Node": "/api/v1/nodes",
    "ReplicationController": "/api/v1/namespaces/{ns}/replicationcontrollers",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
}

ROWS = [
    # --- core/v1 -----------------------------------------------------------------------------------
    Row(
        "podspec",
        "SetDefaults_PodSpec",
        "Pod",
        {"spec": _pod_spec()},
        {
            "spec.dnsPolicy": "ClusterFirst",
            "spec.restartPolicy": "Always",
            "spec.securityContext": {},
            "spec.terminationGracePeriodSeconds": 30,
            "spec.schedulerName": "default-scheduler",
        },
    ),
    Row("pod-service-links", "SetDefaults_Pod", "Pod", {"spec": _pod_spec()}, {"spec.enableServiceLinks": True}),
    Row(
        "pod-requests-from-limits",
        "SetDefaults_Pod",
        "Pod",
        {"spec": {"containers": [_container(resources={"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}})]}},
        {"spec.containers[0].resources.requests": {"cpu": "1", "memory": "1Mi"}},
    ),
    Row(
        "pod-init-requests-from-limits",
        "SetDefaults_Pod",
        "Pod",
        {"spec": _pod_spec(initContainers=[_container(name="i", resources={"limits": {"memory": "8Mi"}})])},
        {"spec.initContainers[0].resources.requests": {"memory": "8Mi"}},
    ),
    Row(
        "template-requests-not-from-limits",
        "SetDefaults_Pod (a Pod only, not a PodTemplateSpec)",
        "Deployment",
        {
            "spec": {
                "selector": _SELECTOR,
                "template": {**_template(), "spec": {"containers": [_container(resources={"limits": {"cpu": "1"}})]}},
            }
        },
        absent=("spec.template.spec.containers[0].resources.requests",),
    ),
    Row(
        "pod-host-network-ports",
        "SetDefaults_Pod (defaultHostNetworkPorts)",
        "Pod",
        {"spec": _pod_spec(hostNetwork=True, containers=[_container(ports=[{"containerPort": 8080}])])},
        {"spec.containers[0].ports[0].hostPort": 8080},
    ),
    Row(
        "container",
        "SetDefaults_Container",
        "Pod",
        {"spec": {"containers": [_container(image="busybox"), _container(name="d", image="busybox:1.36")]}},
        {
            "spec.containers[0].imagePullPolicy": "Always",
            "spec.containers[1].imagePullPolicy": "IfNotPresent",
            "spec.containers[0].terminationMessagePath": "/dev/termination-log",
            "spec.containers[0].terminationMessagePolicy": "File",
        },
    ),
    Row(
        "container-port",
        '+default="TCP" (ContainerPort.Protocol)',
        "Pod",
        {"spec": {"containers": [_container(ports=[{"containerPort": 80}])]}},
        {"spec.containers[0].ports[0].protocol": "TCP"},
        absent=("spec.containers[0].ports[0].hostPort",),
    ),
    Row(
        "probe-and-http-get",
        "SetDefaults_Probe, SetDefaults_HTTPGetAction",
        "Pod",
        {"spec": {"containers": [_container(livenessProbe={"httpGet": {"port": 80}})]}},
        {
            "spec.containers[0].livenessProbe": {
                "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                "timeoutSeconds": 1,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 3,
            }
        },
    ),
    Row(
        "lifecycle-http-get",
        "SetDefaults_HTTPGetAction (lifecycle handlers)",
        "Pod",
        {"spec": {"containers": [_container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]}},
        {"spec.containers[0].lifecycle.preStop.httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}},
    ),
    Row(
        "field-ref",
        "SetDefaults_ObjectFieldSelector",
        "Pod",
        {
            "spec": _pod_spec(
                containers=[_container(env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])],
                volumes=[
                    {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}
                ],
            )
        },
        {
            "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion": "v1",
            "spec.volumes[0].downwardAPI.items[0].fieldRef.apiVersion": "v1",
        },
    ),
    Row(
        "volumes",
        "SetDefaults_Volume, *VolumeSource defaultMode, SetDefaults_HostPathVolumeSource",
        "Pod",
        {
            "spec": _pod_spec(
                volumes=[
                    {"name": "empty"},
                    {"name": "s", "secret": {"secretName": "s"}},
                    {"name": "c", "configMap": {"name": "c"}},
                    {"name": "h", "hostPath": {"path": "/tmp"}},
                    {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                ]
            )
        },
        {
            "spec.volumes[0].emptyDir": {},
            "spec.volumes[1].secret.defaultMode": 420,
            "spec.volumes[2].configMap.defaultMode": 420,
            "spec.volumes[3].hostPath.type": "",
            "spec.volumes[4].projected.defaultMode": 420,
            "spec.volumes[4].projected.sources[0].serviceAccountToken.expirationSeconds": 3600,
        },
    ),
    Row(
        "ephemeral-volume-claim",
        "SetDefaults_PersistentVolumeClaimSpec (ephemeral volumeClaimTemplate)",
        "Pod",
        {
            "spec": _pod_spec(
                volumes=[
                    {
                        "name": "e",
                        "ephemeral": {
                            "volumeClaimTemplate": {
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "1Gi"}},
                                }
                            }
                        },
                    }
                ]
            )
        },
        {"spec.volumes[0].ephemeral.volumeClaimTemplate.spec.volumeMode": "Filesystem"},
    ),
    Row(
        "service",
        "SetDefaults_Service",
        "Service",
        {"spec": {"ports": [{"port": 80}]}},
        {
            "spec.type": "ClusterIP",
            "spec.sessionAffinity": "None",
            "spec.internalTrafficPolicy": "Cluster",
            "spec.ports[0].protocol": "TCP",
            "spec.ports[0].targetPort": 80,
        },
        absent=("spec.externalTrafficPolicy", "spec.allocateLoadBalancerNodePorts", "spec.sessionAffinityConfig"),
    ),
    Row(
        "service-client-ip",
        "SetDefaults_Service (ClientIP affinity)",
        "Service",
        {"spec": {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}},
        {"spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
    ),
    Row(
        "service-node-port",
        "SetDefaults_Service (externally accessible)",
        "Service",
        {"spec": {"type": "NodePort", "ports": [{"port": 80}]}},
        {"spec.externalTrafficPolicy": "Cluster", "spec.internalTrafficPolicy": "Cluster"},
        absent=("spec.allocateLoadBalancerNodePorts",),
    ),
    Row(
        "service-external-ips",
        "SetDefaults_Service (ClusterIP with externalIPs is externally accessible)",
        "Service",
        {"spec": {"ports": [{"port": 80}], "externalIPs": ["192.0.2.10"]}},
        {"spec.externalTrafficPolicy": "Cluster"},
    ),
    Row(
        "service-load-balancer",
        "SetDefaults_Service (LoadBalancer)",
        "Service",
        {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
        {"spec.allocateLoadBalancerNodePorts": True, "spec.externalTrafficPolicy": "Cluster"},
    ),
    Row(
        "service-external-name",
        "SetDefaults_Service (ExternalName)",
        "Service",
        {"spec": {"type": "ExternalName", "externalName": "example.com"}},
        {"spec.sessionAffinity": "None"},
        absent=("spec.internalTrafficPolicy", "spec.externalTrafficPolicy"),
    ),
    Row(
        "endpoints",
        "SetDefaults_Endpoints",
        "Endpoints",
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
        {"subsets[0].ports[0].protocol": "TCP"},
    ),
    Row(
        "pvc",
        "SetDefaults_PersistentVolumeClaim, SetDefaults_PersistentVolumeClaimSpec",
        "PersistentVolumeClaim",
        {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        {"spec.volumeMode": "Filesystem", "status.phase": "Pending"},
    ),
    Row("secret", "SetDefaults_Secret", "Secret", {}, {"type": "Opaque"}),
    Row(
        "namespace",
        "SetDefaults_Namespace, SetDefaults_NamespaceStatus",
        "Namespace",
        {},
        {"metadata.labels": {"kubernetes.io/metadata.name": "{name}"}, "status.phase": "Active"},
    ),
    Row(
        "node-allocatable",
        "SetDefaults_NodeStatus",
        "Node",
        {"status": {"capacity": {"cpu": "2", "pods": "110"}}},
        {"status.allocatable": {"cpu": "2", "pods": "110"}},
    ),
    Row(
        "replication-controller",
        "SetDefaults_ReplicationController, +default=1 (replicas)",
        "ReplicationController",
        {"spec": {"template": _template()}},
        {"spec.replicas": 1, "spec.selector": {"app": "d"}, "metadata.labels": {"app": "d"}},
    ),
    # --- apps/v1 -----------------------------------------------------------------------------------
    Row(
        "deployment",
        "SetDefaults_Deployment",
        "Deployment",
        {"spec": {"selector": _SELECTOR, "template": _template()}},
        {
            "spec.replicas": 1,
            "spec.strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "spec.revisionHistoryLimit": 10,
            "spec.progressDeadlineSeconds": 600,
            "spec.template.spec.dnsPolicy": "ClusterFirst",
        },
    ),
    Row(
        "deployment-recreate",
        "SetDefaults_Deployment (Recreate)",
        "Deployment",
        {"spec": {"selector": _SELECTOR, "template": _template(), "strategy": {"type": "Recreate"}}},
        {"spec.strategy": {"type": "Recreate"}},
    ),
    Row(
        "replica-set",
        "SetDefaults_ReplicaSet",
        "ReplicaSet",
        {"spec": {"selector": _SELECTOR, "template": _template()}},
        {"spec.replicas": 1},
        absent=("spec.revisionHistoryLimit",),
    ),
    Row(
        "daemon-set",
        "SetDefaults_DaemonSet",
        "DaemonSet",
        {"spec": {"selector": _SELECTOR, "template": _template()}},
        {
            "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "spec.revisionHistoryLimit": 10,
        },
    ),
    Row(
        "daemon-set-partial-strategy",
        "SetDefaults_DaemonSet (type given, rollingUpdate not)",
        "DaemonSet",
        {"spec": {"selector": _SELECTOR, "template": _template(), "updateStrategy": {"type": "RollingUpdate"}}},
        {"spec.updateStrategy.rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
    ),
    Row(
        "daemon-set-on-delete",
        "SetDefaults_DaemonSet (OnDelete)",
        "DaemonSet",
        {"spec": {"selector": _SELECTOR, "template": _template(), "updateStrategy": {"type": "OnDelete"}}},
        {"spec.updateStrategy": {"type": "OnDelete"}},
    ),
    Row(
        "stateful-set",
        "SetDefaults_StatefulSet",
        "StatefulSet",
        {"spec": {"selector": _SELECTOR, "template": _template(), "serviceName": "s"}},
        {
            "spec.replicas": 1,
            "spec.podManagementPolicy": "OrderedReady",
            "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "spec.revisionHistoryLimit": 10,
            "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        },
    ),
    Row(
        "stateful-set-partial",
        "SetDefaults_StatefulSet (partly given strategy and retention policy)",
        "StatefulSet",
        {
            "spec": {
                "selector": _SELECTOR,
                "template": _template(),
                "serviceName": "s",
                "updateStrategy": {},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
            }
        },
        {
            "spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "spec.persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        },
    ),
    Row(
        "stateful-set-rolling-update-given",
        "SetDefaults_StatefulSet (RollingUpdate without rollingUpdate stays so)",
        "StatefulSet",
        {
            "spec": {
                "selector": _SELECTOR,
                "template": _template(),
                "serviceName": "s",
                "updateStrategy": {"type": "RollingUpdate"},
            }
        },
        {"spec.updateStrategy": {"type": "RollingUpdate"}},
    ),
    Row(
        "stateful-set-claim-templates",
        "SetDefaults_PersistentVolumeClaim(Spec) on volumeClaimTemplates",
        "StatefulSet",
        {
            "spec": {
                "selector": _SELECTOR,
                "template": _template(),
                "serviceName": "s",
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            }
        },
        {
            "spec.volumeClaimTemplates[0].spec.volumeMode": "Filesystem",
            "spec.volumeClaimTemplates[0].status.phase": "Pending",
        },
    ),
    # --- batch/v1 ----------------------------------------------------------------------------------
    Row(
        "job",
        "SetDefaults_Job",
        "Job",
        {"spec": {"template": _template(restartPolicy="Never")}},
        {
            "spec.completions": 1,
            "spec.parallelism": 1,
            "spec.backoffLimit": 6,
            "spec.completionMode": "NonIndexed",
            "spec.suspend": False,
            "spec.podReplacementPolicy": "TerminatingOrFailed",
            "spec.manualSelector": False,
            # the template's labels, which by then include the generated selector's
            "metadata.labels.app": "d",
            "metadata.labels.job-name": "{name}",
        },
    ),
    Row(
        "job-parallelism-only",
        "SetDefaults_Job (completions set)",
        "Job",
        {"spec": {"completions": 5, "template": _template(restartPolicy="Never")}},
        {"spec.completions": 5, "spec.parallelism": 1},
    ),
    Row(
        "job-backoff-per-index",
        "SetDefaults_Job (backoffLimitPerIndex)",
        "Job",
        {
            "spec": {
                "completions": 2,
                "completionMode": "Indexed",
                "backoffLimitPerIndex": 1,
                "template": _template(restartPolicy="Never"),
            }
        },
        {"spec.backoffLimit": 2147483647},
    ),
    Row(
        "job-pod-failure-policy",
        "SetDefaults_Job (podFailurePolicy), SetDefaults_PodFailurePolicyOnPodConditionsPattern",
        "Job",
        {
            "spec": {
                "template": _template(restartPolicy="Never"),
                "podFailurePolicy": {
                    "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
                },
            }
        },
        {
            "spec.podReplacementPolicy": "Failed",
            "spec.podFailurePolicy.rules[0].onPodConditions[0].status": "True",
        },
    ),
    Row(
        "job-own-labels",
        "SetDefaults_Job (labels only when the Job has none)",
        "Job",
        {"metadata": {"labels": {"mine": "yes"}}, "spec": {"template": _template(restartPolicy="Never")}},
        {"metadata.labels": {"mine": "yes"}},
    ),
    Row(
        "cron-job",
        "SetDefaults_CronJob (the job template's JobSpec is not defaulted)",
        "CronJob",
        {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": _template(restartPolicy="Never")}}}},
        {
            "spec.concurrencyPolicy": "Allow",
            "spec.suspend": False,
            "spec.successfulJobsHistoryLimit": 3,
            "spec.failedJobsHistoryLimit": 1,
            "spec.jobTemplate.spec.template.spec.dnsPolicy": "ClusterFirst",
        },
        absent=(
            "spec.jobTemplate.spec.backoffLimit",
            "spec.jobTemplate.spec.completions",
            "spec.jobTemplate.spec.parallelism",
            "spec.jobTemplate.spec.suspend",
            "spec.jobTemplate.spec.completionMode",
            "spec.jobTemplate.spec.podReplacementPolicy",
            "spec.jobTemplate.spec.manualSelector",
        ),
    ),
]


def _get(obj: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(obj, list) or index >= len(obj):
                return _MISSING
            obj = obj[index]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return _MISSING
    return obj


def _fill_name(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return value.replace("{name}", name)
    if isinstance(value, dict):
        return {k: _fill_name(v, name) for k, v in value.items()}
    return value


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_defaults_match_upstream(api: httpx.AsyncClient, ns: str, row: Row) -> None:
    name = f"d-{uuid.uuid4().hex[:8]}"
    metadata = {"name": name, **row.body.get("metadata", {})}
    body = {**row.body, "metadata": metadata}
    r = await api.post(_PATHS[row.kind].format(ns=ns), json=body)
    assert r.status_code == 201, f"{row.source}: {r.text}"
    obj = r.json()
    got = {path: _get(obj, path) for path in row.expect}
    assert got == _fill_name(row.expect, name), row.source
    present = [path for path in row.absent if _get(obj, path) is not _MISSING]
    assert present == [], f"{row.source}: upstream leaves these out"
    if row.kind in ("Node", "Namespace"):
        await api.delete(f"{_PATHS[row.kind]}/{name}")
