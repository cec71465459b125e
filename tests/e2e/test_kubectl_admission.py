"""The real kubectl v1.35 against admission: PodSecurity refusals and warnings as kubectl prints them,
LimitRanges and ResourceQuotas made and listed with kubectl's own verbs."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import Kubectl, manifest, table

PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: x
spec:
  containers:
  - name: c
    image: busybox:1.36
    securityContext:
      privileged: true
"""

PLAIN_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: plain
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


def _labelled(kubectl: Kubectl, namespace: str, **labels: str) -> None:
    pairs = [f"pod-security.kubernetes.io/{k}={v}" for k, v in labels.items()]
    kubectl.ok("label", "namespace", namespace, *pairs)


def test_kubectl_apply_refused_by_pod_security(kubectl: Kubectl, namespace: str) -> None:
    _labelled(kubectl, namespace, enforce="restricted")
    err = kubectl.fails("apply", "-n", namespace, "-f", "-", input=PRIVILEGED_POD)
    assert err.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "x" is forbidden: '
        'violates PodSecurity "restricted:latest": '
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    )


def test_kubectl_prints_pod_security_warnings(kubectl: Kubectl, namespace: str) -> None:
    _labelled(kubectl, namespace, warn="restricted", **{"warn-version": "v1.30"})
    r = kubectl("apply", "-n", namespace, "-f", "-", input=PLAIN_POD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "pod/plain created"
    assert r.stderr.strip() == (
        'Warning: would violate PodSecurity "restricted:v1.30": '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    )


def test_kubectl_limit_ranges_and_quotas(kubectl: Kubectl, namespace: str, http: httpx.Client) -> None:
    limits = """
apiVersion: v1
kind: LimitRange
metadata:
  name: cpu-limits
spec:
  limits:
  - type: Container
    max:
      cpu: "1"
    defaultRequest:
      cpu: 100m
"""
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=manifest(limits))
    rows = table(kubectl.ok("get", "limits", "-n", namespace))
    assert rows[0] == ["NAME", "CREATED AT"] and rows[1][0] == "cpu-limits"

    kubectl.ok("create", "quota", "compute", "-n", namespace, "--hard=pods=1,requests.cpu=1")
    quota = http.get(f"/api/v1/namespaces/{namespace}/resourcequotas/compute").json()
    assert quota["spec"]["hard"] == {"pods": "1", "requests.cpu": "1"}
    # no controller runs beside this apiserver: give the quota its status as the controller would
    quota["status"] = {"hard": quota["spec"]["hard"], "used": {"pods": "0", "requests.cpu": "0"}}
    assert http.put(f"/api/v1/namespaces/{namespace}/resourcequotas/compute/status", json=quota).status_code == 200
    header, row = kubectl.ok("get", "quota", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "REQUEST", "LIMIT", "AGE"]
    assert re.fullmatch(r"compute +pods: 0/1, requests\.cpu: 0/1 +\d+s", row), row  # LIMIT is empty

    kubectl.ok("run", "one", "-n", namespace, "--image=busybox:1.36", "--restart=Never")
    err = kubectl.fails("run", "two", "-n", namespace, "--image=busybox:1.36", "--restart=Never")
    assert err.strip() == (
        'Error from server (Forbidden): pods "two" is forbidden: exceeded quota: compute, '
        "requested: pods=1, used: pods=1, limited: pods=1"
    )
    row = kubectl.ok("get", "quota", "-n", namespace).splitlines()[1]
    assert re.fullmatch(r"compute +pods: 1/1, requests\.cpu: 100m/1 +\d+s", row), row
