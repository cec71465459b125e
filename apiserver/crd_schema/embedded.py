"""x-kubernetes-embedded-resource objects: apiVersion, kind and metadata as upstream's `schema/objectmeta`."""

from __future__ import annotations

from typing import Any

from apimachinery.validation import (
    FieldErrorTuple,
    invalid,
    is_dns1035_label,
    is_path_segment_name,
    required,
    validate_object_meta,
)
from apiserver.crd_schema.messages import child

__all__ = ["check_embedded"]


def check_embedded(value: dict[str, Any], path: str, out: list[FieldErrorTuple]) -> None:
    """Check an embedded object's apiVersion, kind and metadata (at field path `path`)."""
    if "apiVersion" not in value:
        out.append(required(child(path, "apiVersion"), "must not be empty"))
    if "kind" not in value:
        out.append(required(child(path, "kind"), "must not be empty"))
    for k, v in value.items():
        if k == "apiVersion":
            p = child(path, "apiVersion")
            if not isinstance(v, str):
                out.append(invalid(p, v, "must be a string"))
            elif not v:
                out.append(invalid(p, v, "must not be empty"))
            elif v.count("/") > 1:
                out.append(invalid(p, v, f"unexpected GroupVersion string: {v}"))
        elif k == "kind":
            p = child(path, "kind")
            if not isinstance(v, str):
                out.append(invalid(p, v, "must be a string"))
            elif not v:
                out.append(invalid(p, v, "must not be empty"))
            else:
                errs = is_dns1035_label(v.lower())
                if errs:
                    out.append(invalid(p, v, "may have mixed case, but should otherwise match: " + ",".join(errs)))
        elif k == "metadata":
            p = child(path, "metadata")
            if not isinstance(v, dict):
                out.append(invalid(p, v, "must be an object"))
                continue
            meta = dict(v)
            if not meta.get("name"):
                meta["name"] = "fakename"  # upstream sets a name so only the other fields are judged
            for field, reason, body in validate_object_meta(
                meta, namespaced=bool(meta.get("namespace")), name_validator=is_path_segment_name
            ):
                out.append((p + field[len("metadata") :], reason, body))
