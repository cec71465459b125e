"""DefaultIngressClass: a new Ingress that names no class gets the default IngressClass
(plugin/pkg/admission/network/defaultingressclass); one naming its class both ways must agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apimachinery import errors, validation
from apiserver.admission import AdmissionAttributes
from apiserver.kinds.networking import ANNOTATION_INGRESS_CLASS, default_ingress_class

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["DefaultIngressClass"]


class DefaultIngressClass:
    """Sets spec.ingressClassName of new Ingresses from the class annotated as the default."""

    name = "DefaultIngressClass"

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Creates of networking.k8s.io Ingresses."""
        res = attrs.resource
        return attrs.operation == "CREATE" and res.group == "networking.k8s.io" and res.plural == "ingresses"

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Refuse a class annotation that contradicts ingressClassName; fill in the default class."""
        obj = attrs.obj or {}
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        annotated = annotations.get(ANNOTATION_INGRESS_CLASS)
        if annotated is not None and spec.get("ingressClassName") is not None and annotated != spec["ingressClassName"]:
            name = (obj.get("metadata") or {}).get("name", "")
            field, reason, msg = validation.invalid(
                f"annotations.{ANNOTATION_INGRESS_CLASS}",
                annotated,
                "must match `ingressClassName` when both are specified",
            )
            raise errors.invalid("Ingress", name, [errors.Cause(field, msg, reason)], "networking.k8s.io")
        if spec.get("ingressClassName") is not None or annotated is not None:
            return
        # consistent: a class created or deleted just before this Ingress counts (Ingress creates are rare)
        classes = await reg.snapshot("ingressclasses", consistent=True)
        default = default_ingress_class(s.obj for s in classes)
        if default:
            spec["ingressClassName"] = default
