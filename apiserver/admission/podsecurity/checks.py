"""The Pod Security Standards checks, ported from k8s.io/pod-security-admission/policy: each check
has an ID, a level (baseline or restricted) and versions (the policy version each revision starts
at); a restricted check may override baseline ones. Results carry upstream's reason and detail texts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHECKS",
    "MAX_VERSION",
    "Check",
    "CheckResult",
    "Version",
    "checks_for",
    "evaluate",
    "forbidden_detail",
    "forbidden_reasons",
]

Version = tuple[int, int]
# the newest policy version this apiserver knows ("latest" and anything newer evaluate as it)
MAX_VERSION: Version = (1, 35)


@dataclass(frozen=True)
class CheckResult:
    """A failed check: the short reason and the detail naming what broke it."""

    reason: str
    detail: str = ""


Obj = dict[str, Any]
CheckFn = Callable[[Obj, Obj], CheckResult | None]


@dataclass(frozen=True)
class Check:
    """One policy check and its revisions: (minimum version, function, IDs it overrides)."""

    id: str
    level: str
    versions: tuple[tuple[Version, CheckFn, tuple[str, ...]], ...] = field(default=())


# --- helpers ------------------------------------------------------------------------------------


def _join_quote(items: Iterable[str]) -> str:
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _containers(spec: Obj) -> list[Obj]:
    """visitContainers: init containers, containers, then ephemeral containers."""
    out: list[Obj] = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [c for c in spec.get(key) or [] if isinstance(c, dict)]
    return out


def _sc(container: Obj) -> Obj:
    return _d(container.get("securityContext"))


def _pod_sc(spec: Obj) -> Obj:
    return _d(spec.get("securityContext"))


def _windows(spec: Obj) -> bool:
    return _d(spec.get("os")).get("name") == "windows"


def _user_namespace(spec: Obj) -> bool:
    """relaxPolicyForUserNamespacePod: hostUsers: false."""
    return spec.get("hostUsers") is False


def _setters(pod_bad: bool, containers: list[str]) -> list[str]:
    out = ["pod"] if pod_bad else []
    if containers:
        out.append(f"{_plural('container', 'containers', len(containers))} {_join_quote(containers)}")
    return out


# --- baseline ----------------------------------------------------------------------------------


def _privileged(meta: Obj, spec: Obj) -> CheckResult | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    if not bad:
        return None
    who = f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)}"
    return CheckResult("privileged", f"{who} must not set securityContext.privileged=true")


def _host_namespaces(meta: Obj, spec: Obj) -> CheckResult | None:
    found = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return CheckResult("host namespaces", ", ".join(found)) if found else None


def _host_path_volumes(meta: Obj, spec: Obj) -> CheckResult | None:
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    bad = [v.get("name", "") for v in volumes if v.get("hostPath") is not None]
    if not bad:
        return None
    return CheckResult("hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)}")


def _host_ports(meta: Obj, spec: Obj) -> CheckResult | None:
    bad: list[str] = []
    ports: set[str] = set()
    for c in _containers(spec):
        used = [p.get("hostPort") for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports |= {str(p) for p in used}
    if not bad:
        return None
    return CheckResult(
        "hostPort",
        f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} {_plural('uses', 'use', len(bad))} "
        f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}",
    )


def _hosts_of(handler: Any) -> list[str]:
    handler = _d(handler)
    return [h for key in ("httpGet", "tcpSocket") if (h := _d(handler.get(key)).get("host"))]


def _host_probes(meta: Obj, spec: Obj) -> CheckResult | None:
    bad: set[str] = set()
    hosts: set[str] = set()
    for c in _containers(spec):
        handlers = [c.get(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [_d(c.get("lifecycle")).get(k) for k in ("postStart", "preStop")]
        for handler in handlers:
            if found := _hosts_of(handler):
                bad.add(c.get("name", ""))
                hosts |= set(found)
    if not bad:
        return None
    return CheckResult(
        "probe or lifecycle host",
        f"{_plural('container', 'containers', len(bad))} {_join_quote(sorted(bad))} {_plural('uses', 'use', len(bad))} "
        f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {_join_quote(sorted(hosts))}",
    )


_DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _capabilities_baseline(meta: Obj, spec: Obj) -> CheckResult | None:
    bad: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        added = [str(x) for x in _d(_sc(c).get("capabilities")).get("add") or []]
        extra = [x for x in added if x not in _DEFAULT_CAPABILITIES]
        if extra:
            bad.append(c.get("name", ""))
            caps |= set(extra)
    if not bad:
        return None
    return CheckResult(
        "non-default capabilities",
        f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must not include "
        f"{_join_quote(sorted(caps))} in securityContext.capabilities.add",
    )


def _proc_mount(meta: Obj, spec: Obj) -> CheckResult | None:
    bad: list[str] = []
    kinds: set[str] = set()
    for c in _containers(spec):
        mount = _sc(c).get("procMount")
        if mount is not None and mount != "Default":
            bad.append(c.get("name", ""))
            kinds.add(str(mount))
    if not bad:
        return None
    return CheckResult(
        "procMount",
        f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must not set securityContext.procMount to "
        f"{_join_quote(sorted(kinds))}",
    )


def _proc_mount_1_35(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _user_namespace(spec) else _proc_mount(meta, spec)


def _selinux(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> CheckResult | None:
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}

        def valid(opts: Obj) -> bool:
            ok = True
            if str(opts.get("type") or "") not in allowed:
                ok = False
                bad_types.add(str(opts.get("type") or ""))
            for key in ("user", "role"):
                if opts.get(key):
                    ok = False
                    flags[key] = True
            return ok

        pod_opts = _pod_sc(spec).get("seLinuxOptions")
        pod_bad = isinstance(pod_opts, dict) and not valid(pod_opts)
        bad = [
            c.get("name", "")
            for c in _containers(spec)
            if isinstance(_sc(c).get("seLinuxOptions"), dict) and not valid(_sc(c)["seLinuxOptions"])
        ]
        setters = _setters(pod_bad, bad)
        if not setters:
            return None
        data = []
        if bad_types:
            data.append(f"{_plural('type', 'types', len(bad_types))} {_join_quote(sorted(bad_types))}")
        data += [f"{key} may not be set" for key in ("user", "role") if flags[key]]
        return CheckResult(
            "seLinuxOptions",
            f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}",
        )

    return check


_SELINUX_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_1_31 = _SELINUX_1_0 | {"container_engine_t"}

_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_baseline_1_0(meta: Obj, spec: Obj) -> CheckResult | None:
    annotations = _d(meta.get("annotations"))

    def valid(v: str) -> bool:
        return v in ("runtime/default", "docker/default") or v.startswith("localhost/")

    bad: set[str] = set()
    if _SECCOMP_POD_ANNOTATION in annotations and not valid(annotations[_SECCOMP_POD_ANNOTATION]):
        bad.add(f'{_SECCOMP_POD_ANNOTATION}="{annotations[_SECCOMP_POD_ANNOTATION]}"')
    for c in _containers(spec):
        key = _SECCOMP_CONTAINER_ANNOTATION + str(c.get("name", ""))
        if key in annotations and not valid(annotations[key]):
            bad.add(f'{key}="{annotations[key]}"')
    if not bad:
        return None
    return CheckResult(
        "seccompProfile", f"forbidden {_plural('annotation', 'annotations', len(bad))} {', '.join(sorted(bad))}"
    )


def _valid_seccomp(profile: Obj) -> bool:
    return profile.get("type") in ("Localhost", "RuntimeDefault")


def _seccomp(restricted: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> CheckResult | None:
        bad_values: set[str] = set()
        pod_profile = _pod_sc(spec).get("seccompProfile")
        pod_bad = isinstance(pod_profile, dict) and not _valid_seccomp(pod_profile)
        pod_set = isinstance(pod_profile, dict) and not pod_bad
        if pod_bad:
            bad_values.add(str(pod_profile.get("type") or ""))  # type: ignore[union-attr]
        explicit: list[str] = []
        implicit: list[str] = []
        for c in _containers(spec):
            profile = _sc(c).get("seccompProfile")
            if isinstance(profile, dict):
                if not _valid_seccomp(profile):
                    explicit.append(c.get("name", ""))
                    bad_values.add(str(profile.get("type") or ""))
            elif not pod_set:
                implicit.append(c.get("name", ""))
        if setters := _setters(pod_bad, explicit):
            return CheckResult(
                "seccompProfile",
                f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                f"{_join_quote(sorted(bad_values))}",
            )
        if restricted and implicit:
            return CheckResult(
                "seccompProfile",
                f"pod or {_plural('container', 'containers', len(implicit))} {_join_quote(implicit)} must set "
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
            )
        return None

    return check


def _seccomp_restricted_1_25(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _windows(spec) else _seccomp(True)(meta, spec)


_SYSCTLS_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> CheckResult | None:
        names = [str(_d(s).get("name", "")) for s in _pod_sc(spec).get("sysctls") or []]
        bad = [n for n in names if n not in allowed]
        return CheckResult("forbidden sysctls", ", ".join(bad)) if bad else None

    return check


def _app_armor(meta: Obj, spec: Obj) -> CheckResult | None:
    def allowed(profile: Obj) -> bool:
        return profile.get("type") in ("RuntimeDefault", "Localhost")

    bad_values: set[str] = set()
    pod_profile = _pod_sc(spec).get("appArmorProfile")
    pod_bad = isinstance(pod_profile, dict) and not allowed(pod_profile)
    if pod_bad:
        bad_values.add(str(pod_profile.get("type") or ""))  # type: ignore[union-attr]
    bad: list[str] = []
    for c in _containers(spec):
        profile = _sc(c).get("appArmorProfile")
        if isinstance(profile, dict) and not allowed(profile):
            bad.append(c.get("name", ""))
            bad_values.add(str(profile.get("type") or ""))
    setters = _setters(pod_bad, bad)
    values = sorted(bad_values)
    forbidden = sorted(
        f'{k}="{v}"'
        for k, v in _d(meta.get("annotations")).items()
        if k.startswith("container.apparmor.security.beta.kubernetes.io/")
        and not (not v or v == "runtime/default" or str(v).startswith("localhost/"))
    )
    if forbidden:
        values += forbidden
        setters.append(_plural("annotation", "annotations", len(forbidden)))
    if not setters:
        return None
    return CheckResult(
        _plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(values)}",
    )


def _windows_host_process(meta: Obj, spec: Obj) -> CheckResult | None:
    def host_process(sc: Obj) -> bool:
        return _d(sc.get("windowsOptions")).get("hostProcess") is True

    bad = [c.get("name", "") for c in _containers(spec) if host_process(_sc(c))]
    setters = _setters(host_process(_pod_sc(spec)), bad)
    if not setters:
        return None
    return CheckResult(
        "hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true"
    )


# --- restricted --------------------------------------------------------------------------------


def _allow_privilege_escalation(meta: Obj, spec: Obj) -> CheckResult | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return CheckResult(
        "allowPrivilegeEscalation != false",
        f"{_plural('container', 'containers', len(bad))} {_join_quote(bad)} must set "
        "securityContext.allowPrivilegeEscalation=false",
    )


def _allow_privilege_escalation_1_25(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _windows(spec) else _allow_privilege_escalation(meta, spec)


def _capabilities_restricted(meta: Obj, spec: Obj) -> CheckResult | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not isinstance(capabilities, dict):
            missing_drop.append(c.get("name", ""))
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(c.get("name", ""))
        extra = [str(x) for x in capabilities.get("add") or [] if x != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c.get("name", ""))
            caps |= set(extra)
    details = []
    if missing_drop:
        details.append(
            f"{_plural('container', 'containers', len(missing_drop))} {_join_quote(missing_drop)} must set "
            'securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_plural('container', 'containers', len(adding))} {_join_quote(adding)} must not include "
            f"{_join_quote(sorted(caps))} in securityContext.capabilities.add"
        )
    return CheckResult("unrestricted capabilities", "; ".join(details)) if details else None


def _capabilities_restricted_1_25(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _windows(spec) else _capabilities_restricted(meta, spec)


_ALLOWED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_RESTRICTED_VOLUMES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def _restricted_volumes(meta: Obj, spec: Obj) -> CheckResult | None:
    bad: list[str] = []
    kinds: set[str] = set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict) or any(v.get(k) is not None for k in _ALLOWED_VOLUMES):
            continue
        bad.append(v.get("name", ""))
        kinds.add(next((k for k in _RESTRICTED_VOLUMES if v.get(k) is not None), "unknown"))
    if not bad:
        return None
    return CheckResult(
        "restricted volume types",
        f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)} {_plural('uses', 'use', len(bad))} "
        f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} {_join_quote(sorted(kinds))}",
    )


def _run_as_non_root(meta: Obj, spec: Obj) -> CheckResult | None:
    pod_value = _pod_sc(spec).get("runAsNonRoot")
    pod_bad = pod_value is False
    pod_ok = pod_value is True
    explicit = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsNonRoot") is None and not pod_ok]
    if setters := _setters(pod_bad, explicit):
        return CheckResult(
            "runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
        )
    if implicit:
        return CheckResult(
            "runAsNonRoot != true",
            f"pod or {_plural('container', 'containers', len(implicit))} {_join_quote(implicit)} must set "
            "securityContext.runAsNonRoot=true",
        )
    return None


def _run_as_non_root_1_35(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _user_namespace(spec) else _run_as_non_root(meta, spec)


def _run_as_user(meta: Obj, spec: Obj) -> CheckResult | None:
    explicit = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    setters = _setters(_pod_sc(spec).get("runAsUser") == 0, explicit)
    return CheckResult("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def _run_as_user_1_35(meta: Obj, spec: Obj) -> CheckResult | None:
    return None if _user_namespace(spec) else _run_as_user(meta, spec)


# --- the registry ------------------------------------------------------------------------------

_NONE: tuple[str, ...] = ()

CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", "baseline", (((1, 0), _app_armor, _NONE),)),
    Check("capabilities_baseline", "baseline", (((1, 0), _capabilities_baseline, _NONE),)),
    Check("hostNamespaces", "baseline", (((1, 0), _host_namespaces, _NONE),)),
    Check("hostPathVolumes", "baseline", (((1, 0), _host_path_volumes, _NONE),)),
    Check("hostPorts", "baseline", (((1, 0), _host_ports, _NONE),)),
    Check("hostProbesAndHostLifecycle", "baseline", (((1, 34), _host_probes, _NONE),)),
    Check("privileged", "baseline", (((1, 0), _privileged, _NONE),)),
    Check("procMount", "baseline", (((1, 0), _proc_mount, _NONE), ((1, 35), _proc_mount_1_35, _NONE))),
    Check(
        "seLinuxOptions",
        "baseline",
        (((1, 0), _selinux(_SELINUX_1_0), _NONE), ((1, 31), _selinux(_SELINUX_1_31), _NONE)),
    ),
    Check(
        "seccompProfile_baseline",
        "baseline",
        (((1, 0), _seccomp_baseline_1_0, _NONE), ((1, 19), _seccomp(False), _NONE)),
    ),
    Check(
        "sysctls",
        "baseline",
        (
            ((1, 0), _sysctls(_SYSCTLS_1_0), _NONE),
            ((1, 27), _sysctls(_SYSCTLS_1_27), _NONE),
            ((1, 29), _sysctls(_SYSCTLS_1_29), _NONE),
            ((1, 32), _sysctls(_SYSCTLS_1_32), _NONE),
        ),
    ),
    Check("windowsHostProcess", "baseline", (((1, 0), _windows_host_process, _NONE),)),
    Check(
        "allowPrivilegeEscalation",
        "restricted",
        (((1, 8), _allow_privilege_escalation, _NONE), ((1, 25), _allow_privilege_escalation_1_25, _NONE)),
    ),
    Check(
        "capabilities_restricted",
        "restricted",
        (
            ((1, 22), _capabilities_restricted, ("capabilities_baseline",)),
            ((1, 25), _capabilities_restricted_1_25, ("capabilities_baseline",)),
        ),
    ),
    Check("procMount_restricted", "restricted", (((1, 35), _proc_mount, ("procMount",)),)),
    Check("restrictedVolumes", "restricted", (((1, 0), _restricted_volumes, ("hostPathVolumes",)),)),
    Check("runAsNonRoot", "restricted", (((1, 0), _run_as_non_root, _NONE), ((1, 35), _run_as_non_root_1_35, _NONE))),
    Check("runAsUser", "restricted", (((1, 23), _run_as_user, _NONE), ((1, 35), _run_as_user_1_35, _NONE))),
    Check(
        "seccompProfile_restricted",
        "restricted",
        (
            ((1, 19), _seccomp(True), ("seccompProfile_baseline",)),
            ((1, 25), _seccomp_restricted_1_25, ("seccompProfile_baseline",)),
        ),
    ),
)


def _revision(check: Check, version: Version) -> tuple[CheckFn, tuple[str, ...]] | None:
    chosen = None
    for minimum, fn, overrides in check.versions:
        if minimum <= version:
            chosen = (fn, overrides)
    return chosen


def checks_for(level: str, version: Version) -> list[CheckFn]:
    """The checks of a level at a policy version, in upstream's order: baseline IDs sorted, then
    restricted IDs sorted, overridden baseline checks left out."""
    if level == "privileged":
        return []
    version = min(version, MAX_VERSION)
    chosen: dict[str, tuple[CheckFn, tuple[str, ...]]] = {}
    for check in CHECKS:
        if check.level == "baseline" or level == "restricted":
            if (rev := _revision(check, version)) is not None:
                chosen[check.id] = rev
    overridden = {o for cid, (_fn, overrides) in chosen.items() for o in overrides}
    baseline = sorted(c.id for c in CHECKS if c.level == "baseline")
    restricted = sorted(c.id for c in CHECKS if c.level == "restricted")
    return [chosen[cid][0] for cid in baseline + restricted if cid in chosen and cid not in overridden]


def _results(level: str, version: Version, meta: Obj, spec: Obj) -> list[CheckResult]:
    return [r for fn in checks_for(level, version) if (r := fn(meta, spec)) is not None]


def forbidden_detail(results: list[CheckResult]) -> str:
    """`reason (detail), reason, ...` (AggregateCheckResult.ForbiddenDetail)."""
    return ", ".join(f"{r.reason} ({r.detail})" if r.detail else r.reason for r in results)


def forbidden_reasons(results: list[CheckResult]) -> str:
    """`reason, reason` (AggregateCheckResult.ForbiddenReason)."""
    return ", ".join(r.reason for r in results)


def evaluate(level: str, version: Version, meta: Obj, spec: Obj) -> list[CheckResult]:
    """The failed checks of a pod's metadata and spec under a level at a version."""
    return _results(level, version, meta, spec)
