"""Strategies of the workload kinds: Deployment, ReplicaSet, ReplicationController,
DaemonSet, StatefulSet, Job, CronJob and ControllerRevision."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from apimachinery.errors import Cause
from apimachinery.selectors import selector_from_label_selector, selector_from_map
from apiserver.kinds.core import default_claim
from apiserver.kinds.podspec import default_pod_spec, validate_pod_spec
from apiserver.strategy import Strategy

__all__ = [
    "CronJobStrategy",
    "DaemonSetStrategy",
    "DeploymentStrategy",
    "JobStrategy",
    "ReplicaSetStrategy",
    "ReplicationControllerStrategy",
    "StatefulSetStrategy",
]


def _go_map(m: dict[str, str]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "}"


class _TemplatedStrategy(Strategy):
    """A kind with `spec.template` (a pod template) and a label selector."""

    tracks_generation = True
    spec_defaults: ClassVar[dict[str, Any]] = {}
    template_path: ClassVar[tuple[str, ...]] = ("spec", "template")

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        for k, v in self.spec_defaults.items():
            spec.setdefault(k, json.loads(json.dumps(v)))
        template = self._template(obj)
        if isinstance(template, dict):
            default_pod_spec(template.get("spec"))

    def _template(self, obj: dict[str, Any]) -> Any:
        cur: Any = obj
        for part in self.template_path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur

    def _template_labels(self, obj: dict[str, Any]) -> dict[str, str]:
        template = self._template(obj) or {}
        return (template.get("metadata") or {}).get("labels") or {}

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        template = self._template(obj)
        path = ".".join(self.template_path)
        causes = validate_pod_spec(template["spec"], f"{path}.spec") if template else []
        return causes + self._selector_causes(obj)

    def _selector_causes(self, obj: dict[str, Any]) -> list[Cause]:
        selector = obj["spec"].get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            return [
                Cause(
                    "spec.selector",
                    f'Invalid value: "null": empty selector is invalid for {self.resource.singular}',
                )
            ]
        labels = self._template_labels(obj)
        if not selector_from_label_selector(selector).matches(labels):
            return [
                Cause(
                    "spec.template.metadata.labels",
                    f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
                )
            ]
        return []

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a = (new.get("spec") or {}).get("selector")
        b = (old.get("spec") or {}).get("selector")
        if a != b:
            return [Cause("spec.selector", f"Invalid value: {json.dumps(a)}: field is immutable")]
        return []


class DeploymentStrategy(_TemplatedStrategy):
    """Deployments: apps/v1 defaults (25% surge and unavailability, 10 revisions kept)."""

    spec_defaults: ClassVar[dict[str, Any]] = {
        "replicas": 1,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }

    def default(self, obj: dict[str, Any]) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")


class ReplicaSetStrategy(_TemplatedStrategy):
    """ReplicaSets."""

    spec_defaults: ClassVar[dict[str, Any]] = {"replicas": 1}

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        return []  # ReplicaSet selectors are mutable in apps/v1


class ReplicationControllerStrategy(_TemplatedStrategy):
    """ReplicationControllers: selector and labels default from the template."""

    spec_defaults: ClassVar[dict[str, Any]] = {"replicas": 1}

    def default(self, obj: dict[str, Any]) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        labels = self._template_labels(obj)
        if labels:
            spec.setdefault("selector", dict(labels))
            meta = obj.setdefault("metadata", {})
            if not meta.get("labels"):
                meta["labels"] = dict(labels)

    def _selector_causes(self, obj: dict[str, Any]) -> list[Cause]:
        selector = obj["spec"].get("selector") or {}
        if not selector:
            return [Cause("spec.selector", "Required value", "FieldValueRequired")]
        labels = self._template_labels(obj)
        if self._template(obj) and not selector_from_map(selector).matches(labels):
            return [
                Cause(
                    "spec.template.metadata.labels",
                    f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
                )
            ]
        return []

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        return []


class DaemonSetStrategy(_TemplatedStrategy):
    """DaemonSets."""

    spec_defaults: ClassVar[dict[str, Any]] = {"revisionHistoryLimit": 10}

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_DaemonSet: a rolling update of one unavailable pod and no surge."""
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        strategy = _sub_dict(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _sub_dict(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)


def _sub_dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """parent[key] as a dict, created (or replacing a null) when absent."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


class StatefulSetStrategy(_TemplatedStrategy):
    """StatefulSets."""

    spec_defaults: ClassVar[dict[str, Any]] = {
        "replicas": 1,
        "podManagementPolicy": "OrderedReady",
        "revisionHistoryLimit": 10,
    }

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_StatefulSet, and the claim defaults on every volume claim template."""
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        strategy = _sub_dict(spec, "updateStrategy")
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _sub_dict(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
            strategy["rollingUpdate"].setdefault("partition", 0)
        retention = _sub_dict(spec, "persistentVolumeClaimRetentionPolicy")
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
        for claim in spec.get("volumeClaimTemplates") or []:
            default_claim(claim)

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        causes = super().validate_update(new, old)
        for key in ("serviceName", "podManagementPolicy"):
            if (new.get("spec") or {}).get(key) != (old.get("spec") or {}).get(key):
                causes.append(
                    Cause(
                        f"spec.{key}",
                        "Forbidden: updates to statefulset spec for "
                        "fields other than 'replicas', 'ordinals', 'template', "
                        "'updateStrategy', 'revisionHistoryLimit', "
                        "'persistentVolumeClaimRetentionPolicy' and "
                        "'minReadySeconds' are forbidden",
                        "FieldValueForbidden",
                    )
                )
        return causes


_JOB_RESTART = ("OnFailure", "Never")


_MAX_INT32 = 2**31 - 1


def _pod_failure_policy_defaults(spec: dict[str, Any]) -> None:
    """SetDefaults_PodFailurePolicyOnPodConditionsPattern: a pattern matches conditions with status True."""
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
            if isinstance(pattern, dict) and not pattern.get("status"):
                pattern["status"] = "True"


def _job_spec_defaults(spec: dict[str, Any]) -> None:
    """SetDefaults_Job's spec part."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    _pod_failure_policy_defaults(spec)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False


def _job_restart_causes(spec: dict[str, Any], path: str) -> list[Cause]:
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if policy not in _JOB_RESTART:
        return [
            Cause(
                f"{path}.template.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        ]
    return []


class JobStrategy(_TemplatedStrategy):
    """Jobs: generated selector on the controller uid, restartPolicy OnFailure or Never."""

    default_propagation = "Orphan"

    def default(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("spec"), dict):
            _job_spec_defaults(obj["spec"])
            # a Job without labels takes its pod template's (upstream shares the map, so after the selector is
            # generated these include the controller-uid and job-name labels)
            labels = ((obj["spec"].get("template") or {}).get("metadata") or {}).get("labels")
            meta = obj.setdefault("metadata", {})
            if isinstance(labels, dict) and not meta.get("labels"):
                meta["labels"] = dict(labels)
        super().default(obj)

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        meta = obj.get("metadata") or {}
        if not isinstance(spec, dict) or spec.get("manualSelector"):
            return
        uid, name = meta.get("uid"), meta.get("name")
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        template = spec.get("template")
        if isinstance(template, dict):
            tmeta = template.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}

    def _selector_causes(self, obj: dict[str, Any]) -> list[Cause]:
        causes = _job_restart_causes(obj["spec"], "spec")
        if obj["spec"].get("selector"):
            causes += super()._selector_causes(obj)
        return causes

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a = (new.get("spec") or {}).get("template")
        b = (old.get("spec") or {}).get("template")
        if a != b:
            return [Cause("spec.template", "Invalid value: field is immutable")]
        return super().validate_update(new, old)


class CronJobStrategy(_TemplatedStrategy):
    """CronJobs."""

    template_path = ("spec", "jobTemplate", "spec", "template")
    spec_defaults: ClassVar[dict[str, Any]] = {
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }

    def default(self, obj: dict[str, Any]) -> None:
        """SetDefaults_CronJob; the job template's JobSpec gets only its pod template's and patterns' defaults."""
        super().default(obj)
        job_spec = ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec")
        if isinstance(job_spec, dict):
            _pod_failure_policy_defaults(job_spec)

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        causes = super().validate_semantics(obj)
        from apiserver.kinds.cron import schedule_error

        err = schedule_error(obj["spec"]["schedule"])
        if err:
            causes.append(Cause("spec.schedule", f'Invalid value: "{obj["spec"]["schedule"]}": {err}'))
        return causes

    def _selector_causes(self, obj: dict[str, Any]) -> list[Cause]:
        return _job_restart_causes(obj["spec"]["jobTemplate"]["spec"], "spec.jobTemplate.spec")

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        return []
