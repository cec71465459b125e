"""Which Ingresses are this controller's: IngressClass selection as upstream defines it (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLASS_ANNOTATION",
    "CONTROLLER_NAME",
    "DEFAULT_CLASS_ANNOTATION",
    "ClassFilter",
    "ingress_class_manifest",
]

CONTROLLER_NAME = "tinykube.io/ingress-controller"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # deprecated, still honoured (and it wins over the field)
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

Obj = Mapping[str, Any]


def _is_default(cls: Obj) -> bool:
    annotations = (cls.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"


@dataclass(frozen=True)
class ClassFilter:
    """The IngressClasses that name this controller, and whether one of them is the default."""

    class_name: str
    names: frozenset[str]
    default: bool

    @classmethod
    def from_classes(cls, class_name: str, classes: Iterable[Obj], controller: str = CONTROLLER_NAME) -> ClassFilter:
        """Read the cluster's IngressClasses: ours are those whose spec.controller is `controller`."""
        ours = [c for c in classes if (c.get("spec") or {}).get("controller") == controller]
        return cls(
            class_name,
            frozenset(str((c.get("metadata") or {}).get("name", "")) for c in ours),
            any(_is_default(c) for c in ours),
        )

    def serves(self, ingress: Obj) -> bool:
        """Whether an Ingress is ours: its `kubernetes.io/ingress.class` annotation, else its
        `spec.ingressClassName`, names one of our classes; with neither, when ours is the default."""
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        by_annotation = annotations.get(CLASS_ANNOTATION)
        if by_annotation:
            return by_annotation == self.class_name or by_annotation in self.names
        by_field = (ingress.get("spec") or {}).get("ingressClassName")
        if by_field:
            return by_field in self.names
        return self.default


def ingress_class_manifest(name: str, default: bool, controller: str = CONTROLLER_NAME) -> dict[str, Any]:
    """The IngressClass this controller applies at start (marked default when `default`)."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
    }
    if default:
        meta["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta,
        "spec": {"controller": controller},
    }
