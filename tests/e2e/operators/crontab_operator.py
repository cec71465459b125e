"""A small kopf operator for CronTabs: run with `python -m kopf run --standalone --namespace <ns> <this file>`.

The group comes from the environment (CRONTAB_GROUP) so that each test module can own its CRD."""

from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes

GROUP = os.environ["CRONTAB_GROUP"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep the operator quick to react and quiet about posting events."""
    settings.posting.enabled = False
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 70


@kopf.on.create(GROUP, "v1", "crontabs")
def created(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
    """Record in the status that the operator saw the CronTab."""
    patch.status["phase"] = "Scheduled"
    patch.status["image"] = spec.get("image")


@kopf.on.delete(GROUP, "v1", "crontabs")
def deleted(name: str, namespace: str, **_: Any) -> None:
    """Leave a ConfigMap behind as proof the delete handler ran (this makes kopf add its finalizer)."""
    kubernetes.config.load_kube_config()
    body = {"metadata": {"name": f"{name}-deleted"}, "data": {"crontab": name}}
    kubernetes.client.CoreV1Api().create_namespaced_config_map(namespace, body, _request_timeout=10)
