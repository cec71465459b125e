"""Pod Security Standards checks and namespace policies, with cases from pod-security-admission's
policy tests and fixtures (minimal valid pods per level, one tweak per violation)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from apiserver.admission.podsecurity import pod_spec_of
from apiserver.admission.podsecurity.checks import MAX_VERSION, evaluate, forbidden_detail
from apiserver.admission.podsecurity.policy import LevelVersion, Policy, policy_to_evaluate

Pod = dict[str, Any]
BASELINE: Pod = {
    "metadata": {"name": "p"},
    "spec": {
        "initContainers": [{"name": "initcontainer1", "image": "registry.k8s.io/pause"}],
        "containers": [{"name": "container1", "image": "registry.k8s.io/pause"}],
    },
}
_RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
RESTRICTED: Pod = {
    "metadata": {"name": "p"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{**BASELINE["spec"]["initContainers"][0], "securityContext": copy.deepcopy(_RESTRICTED_SC)}],
        "containers": [{**BASELINE["spec"]["containers"][0], "securityContext": copy.deepcopy(_RESTRICTED_SC)}],
    },
}


def tweak(base: Pod, fn: Callable[[dict[str, Any]], None]) -> Pod:
    pod = copy.deepcopy(base)
    fn(pod["spec"])
    return pod


def c0(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0].setdefault("securityContext", {})


def details(level: str, pod: Pod, version: tuple[int, int] = MAX_VERSION) -> str:
    return forbidden_detail(evaluate(level, version, pod["metadata"], pod["spec"]))


def test_minimal_valid_pods_pass() -> None:
    assert details("baseline", BASELINE) == ""
    assert details("restricted", RESTRICTED) == ""
    assert details("privileged", tweak(BASELINE, lambda s: s.update(hostNetwork=True))) == ""


BASELINE_FAILURES = [
    pytest.param(
        lambda s: c0(s).update(privileged=True),
        'privileged (container "container1" must not set securityContext.privileged=true)',
        id="privileged",
    ),
    pytest.param(
        lambda s: s.update(hostNetwork=True, hostPID=True, hostIPC=True),
        "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
        id="hostNamespaces",
    ),
    pytest.param(
        lambda s: s.update(
            volumes=[{"name": "a", "hostPath": {"path": "/a"}}, {"name": "b", "hostPath": {"path": "/b"}}]
        ),
        'hostPath volumes (volumes "a", "b")',
        id="hostPathVolumes",
    ),
    pytest.param(
        lambda s: s["containers"][0].update(
            ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8081}]
        ),
        'hostPort (container "container1" uses hostPorts 8080, 8081)',
        id="hostPorts",
    ),
    pytest.param(
        lambda s: c0(s).update(capabilities={"add": ["NET_RAW", "SYS_ADMIN", "CHOWN"]}),
        'non-default capabilities (container "container1" must not include "NET_RAW", "SYS_ADMIN" in '
        "securityContext.capabilities.add)",
        id="capabilities_baseline",
    ),
    pytest.param(
        lambda s: c0(s).update(procMount="Unmasked"),
        'procMount (container "container1" must not set securityContext.procMount to "Unmasked")',
        id="procMount",
    ),
    pytest.param(
        lambda s: s.update(securityContext={"seLinuxOptions": {"type": "bad_t", "user": "u", "role": "r"}}),
        'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "bad_t"; user may not be set; '
        "role may not be set)",
        id="seLinuxOptions",
    ),
    pytest.param(
        lambda s: c0(s).update(seccompProfile={"type": "Unconfined"}),
        'seccompProfile (container "container1" must not set securityContext.seccompProfile.type to "Unconfined")',
        id="seccompProfile_baseline",
    ),
    pytest.param(
        lambda s: s.update(
            securityContext={
                "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]
            }
        ),
        "forbidden sysctls (kernel.msgmax)",
        id="sysctls",
    ),
    pytest.param(
        lambda s: c0(s).update(appArmorProfile={"type": "Unconfined"}),
        'forbidden AppArmor profile (container "container1" must not set AppArmor profile type to "Unconfined")',
        id="appArmorProfile",
    ),
    pytest.param(
        lambda s: c0(s).update(windowsOptions={"hostProcess": True}),
        'hostProcess (container "container1" must not set securityContext.windowsOptions.hostProcess=true)',
        id="windowsHostProcess",
    ),
    pytest.param(
        lambda s: s["containers"][0].update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        'probe or lifecycle host (container "container1" uses probe or lifecycle host "10.0.0.1")',
        id="hostProbesAndHostLifecycle",
    ),
]


@pytest.mark.parametrize(("change", "expected"), BASELINE_FAILURES)
def test_baseline_failures(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    assert details("baseline", tweak(BASELINE, change)) == expected
    assert details("restricted", tweak(RESTRICTED, change)) != ""  # what baseline refuses, restricted refuses


RESTRICTED_FAILURES = [
    pytest.param(
        lambda s: c0(s).update(allowPrivilegeEscalation=True),
        'allowPrivilegeEscalation != false (container "container1" must set '
        "securityContext.allowPrivilegeEscalation=false)",
        id="allowPrivilegeEscalation",
    ),
    pytest.param(
        lambda s: c0(s).update(capabilities={"add": ["CHOWN"]}),
        'unrestricted capabilities (container "container1" must set securityContext.capabilities.drop=["ALL"]; '
        'container "container1" must not include "CHOWN" in securityContext.capabilities.add)',
        id="capabilities_restricted",
    ),
    pytest.param(
        lambda s: s.update(
            volumes=[{"name": "v", "nfs": {"server": "x", "path": "/"}}, {"name": "ok", "emptyDir": {}}]
        ),
        'restricted volume types (volume "v" uses restricted volume type "nfs")',
        id="restrictedVolumes",
    ),
    pytest.param(
        lambda s: s["securityContext"].update(runAsNonRoot=False),
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
        id="runAsNonRoot-pod-false",
    ),
    pytest.param(
        lambda s: s["securityContext"].pop("runAsNonRoot"),
        'runAsNonRoot != true (pod or containers "initcontainer1", "container1" must set '
        "securityContext.runAsNonRoot=true)",
        id="runAsNonRoot-unset",
    ),
    pytest.param(
        lambda s: (s["securityContext"].update(runAsUser=0), c0(s).update(runAsUser=0)),
        'runAsUser=0 (pod and container "container1" must not set runAsUser=0)',
        id="runAsUser",
    ),
    pytest.param(
        lambda s: s["securityContext"].pop("seccompProfile"),
        'seccompProfile (pod or containers "initcontainer1", "container1" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")',
        id="seccompProfile_restricted",
    ),
    pytest.param(
        lambda s: s.update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        'restricted volume types (volume "h" uses restricted volume type "hostPath")',
        id="hostPath-overridden-by-restrictedVolumes",
    ),
]


@pytest.mark.parametrize(("change", "expected"), RESTRICTED_FAILURES)
def test_restricted_failures(change: Callable[[dict[str, Any]], None], expected: str) -> None:
    assert details("restricted", tweak(RESTRICTED, change)) == expected


def test_user_namespaces_relax_run_as_checks_from_1_35() -> None:
    pod = tweak(RESTRICTED, lambda s: (s["securityContext"].pop("runAsNonRoot"), s.update(hostUsers=False)))
    assert details("restricted", pod) == ""
    assert details("restricted", pod, (1, 34)).startswith("runAsNonRoot != true")


def test_windows_pods_skip_linux_only_restricted_checks() -> None:
    pod = {
        "metadata": {"name": "w"},
        "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [{"name": "c"}]},
    }
    assert details("restricted", pod) == ""
    assert "allowPrivilegeEscalation" in details("restricted", pod, (1, 24))


def test_the_privileged_pod_message_in_upstream_order() -> None:
    pod = {
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]},
    }
    assert details("restricted", pod) == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    )


def test_older_versions_use_older_check_revisions() -> None:
    pod = tweak(RESTRICTED, lambda s: s["securityContext"].pop("seccompProfile"))
    assert details("restricted", pod, (1, 18)) == ""  # seccomp became required for restricted in v1.19
    sysctl = tweak(
        BASELINE, lambda s: s.update(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]})
    )
    assert details("baseline", sysctl) == ""
    assert details("baseline", sysctl, (1, 31)) == "forbidden sysctls (net.ipv4.tcp_rmem)"


@pytest.mark.parametrize(
    ("labels", "policy", "errors"),
    [
        ({}, Policy(), []),
        (
            {"pod-security.kubernetes.io/enforce": "restricted"},
            Policy(LevelVersion("restricted"), LevelVersion(), LevelVersion("restricted")),
            [],
        ),
        (
            {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.29"},
            Policy(LevelVersion("baseline", (1, 29)), LevelVersion(), LevelVersion("baseline", (1, 29))),
            [],
        ),
        (
            {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"},
            Policy(LevelVersion("baseline"), LevelVersion(), LevelVersion("restricted")),
            [],
        ),
        (
            {"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/audit": "nope"},
            Policy(LevelVersion("restricted"), LevelVersion(), LevelVersion()),
            [
                (
                    "metadata.labels[pod-security.kubernetes.io/enforce]",
                    'Invalid value: "strict": must be one of privileged, baseline, restricted',
                ),
                (
                    "metadata.labels[pod-security.kubernetes.io/audit]",
                    'Invalid value: "nope": must be one of privileged, baseline, restricted',
                ),
            ],
        ),
        (
            {"pod-security.kubernetes.io/warn-version": "1.2"},
            Policy(),
            [
                (
                    "metadata.labels[pod-security.kubernetes.io/warn-version]",
                    'Invalid value: "1.2": must be "latest" or "v1.x"',
                )
            ],
        ),
    ],
)
def test_policy_from_labels(labels: dict[str, str], policy: Policy, errors: list[tuple[str, str]]) -> None:
    got, errs = policy_to_evaluate(labels)
    assert got == policy
    assert [(path, msg) for path, _reason, msg in errs] == errors


def test_level_version_strings() -> None:
    assert str(LevelVersion("restricted")) == "restricted:latest"
    assert str(LevelVersion("baseline", (1, 30))) == "baseline:v1.30"


def test_templates_of_workloads() -> None:
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}
    assert pod_spec_of("apps", "deployments", {"spec": {"template": template}}) == (
        template["metadata"],
        template["spec"],
    )
    cron = {"spec": {"jobTemplate": {"spec": {"template": template}}}}
    assert pod_spec_of("batch", "cronjobs", cron) == (template["metadata"], template["spec"])
    assert pod_spec_of("apps", "deployments", {"spec": {}}) is None
    assert pod_spec_of("", "configmaps", {"data": {}}) is None
