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
    """This controller's IngressClass: its name, whether it exists naming this controller, and
    whether it is marked as the cluster's default."""

    class_name: str
    ours: bool
    default: bool

    @classmethod
    def from_classes(cls, class_name: str, classes: Iterable[Obj], controller: str = CONTROLLER_NAME) -> ClassFilter:
        """Read the cluster's IngressClasses for the one named `class_name`."""
        for c in classes:
            if (c.get("metadata") or {}).get("name") == class_name:
                ours = (c.get("spec") or {}).get("controller") == controller
                return cls(class_name, ours, ours and _is_default(c))
        return cls(class_name, False, False)

    def serves(self, ingress: Obj) -> bool:
        """Whether an Ingress is ours: its `kubernetes.io/ingress.class` annotation names our class
        (the annotation wins over the field), else its `spec.ingressClassName` does (and that class
        names this controller); with neither, when our class is the default."""
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        by_annotation = annotations.get(CLASS_ANNOTATION)
        if by_annotation:
            return by_annotation == self.class_name
        by_field = (ingress.get("spec") or {}).get("ingressClassName")
        if by_field:
            return self.ours and by_field == self.class_name
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
