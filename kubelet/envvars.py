"""A container's environment from its `env` and `envFrom`, as the kubelet's makeEnvironmentVariables builds it."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from kubelet.downward import DownwardError, field_value, resource_value
from kubelet.expansion import expand, mapping_for

__all__ = ["ConfigError", "Lookup", "container_env", "expand_command", "expand_list", "secret_text"]

Lookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) → the ConfigMap or Secret object, or None when it does not exist."""

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ConfigError(Exception):
    """The container cannot be configured yet (CreateContainerConfigError); str() is the status message."""


def secret_text(value: str) -> str:
    """A Secret `data` value decoded to text."""
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _cm_data(cm: Mapping[str, Any]) -> dict[str, str]:
    data = dict(cm.get("data") or {})
    for k, v in (cm.get("binaryData") or {}).items():
        data.setdefault(k, secret_text(v))
    return data


def _secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    data = {k: secret_text(v) for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    configmaps: Lookup,
    secrets: Lookup,
    allocatable: Mapping[str, str],
    services: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's variables in definition order, then the Service variables (`services`) the pod's own
    do not set; `$(VAR)` in values sees the pod's variables first, then the Service ones. ConfigError for a
    missing object or key."""
    services = services or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        ref = source.get("configMapRef") or source.get("secretRef")
        if not ref:
            continue
        is_cm = "configMapRef" in source
        name, optional = ref.get("name", ""), bool(ref.get("optional"))
        obj = (configmaps if is_cm else secrets)(namespace, name)
        if obj is None:
            if optional:
                continue
            raise ConfigError(f'{"configmap" if is_cm else "secret"} "{name}" not found')
        for key, value in (_cm_data(obj) if is_cm else _secret_data(obj)).items():
            var = prefix + key
            if _ENV_NAME.match(var):
                env[var] = value
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), mapping_for(env, services))
            continue
        value = _value_from(pod, container, var["valueFrom"], namespace, configmaps, secrets, allocatable)
        if value is not None:
            env[name] = value
    for name, value in services.items():
        env.setdefault(name, value)
    return env


def _value_from(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    src: Mapping[str, Any],
    namespace: str,
    configmaps: Lookup,
    secrets: Lookup,
    allocatable: Mapping[str, str],
) -> str | None:
    if ref := src.get("fieldRef"):
        try:
            return field_value(pod, ref.get("fieldPath", ""))
        except DownwardError as e:
            raise ConfigError(str(e)) from e
    if ref := src.get("resourceFieldRef"):
        target = container
        if ref.get("containerName") and ref["containerName"] != container.get("name"):
            spec = pod.get("spec") or {}
            every = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            target = next((c for c in every if c.get("name") == ref["containerName"]), {})
        try:
            return resource_value(target, ref.get("resource", ""), ref.get("divisor"), allocatable)
        except (DownwardError, ValueError) as e:
            raise ConfigError(str(e)) from e
    for kind, lookup, label, data in (
        ("configMapKeyRef", configmaps, "ConfigMap", _cm_data),
        ("secretKeyRef", secrets, "Secret", _secret_data),
    ):
        if ref := src.get(kind):
            name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
            obj = lookup(namespace, name)
            if obj is None:
                if optional:
                    return None
                raise ConfigError(f'{label.lower()} "{name}" not found')
            values = data(obj)
            if key not in values:
                if optional:
                    return None
                raise ConfigError(f"couldn't find key {key} in {label} {namespace}/{name}")
            return values[key]
    return None


def expand_command(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """`command` + `args` with `$(VAR)` expanded from the container's environment."""
    lookup = mapping_for(env)
    return [expand(str(s), lookup) for s in [*(container.get("command") or []), *(container.get("args") or [])]]


def expand_list(items: list[Any] | None, env: Mapping[str, str]) -> list[str] | None:
    """`command` or `args` with `$(VAR)` expanded (None stays None: the image's default is used)."""
    if not items:
        return None
    lookup = mapping_for(env)
    return [expand(str(s), lookup) for s in items]
