"""The CustomResourceDefinition kind itself: defaults, validation and deletion (upstream's
apiextensions-apiserver `pkg/registry/customresourcedefinition/strategy.go` and
`pkg/apis/apiextensions/validation`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import validation as v
from apimachinery.errors import Cause
from apimachinery.meta import now
from apimachinery.resources import ResourceInfo
from apiserver.crd.jsonpath import JSONPath, JSONPathError
from apiserver.crd.schema import SchemaCompiler, SchemaError, pass_through
from apiserver.strategy import Strategy

__all__ = ["CLEANUP_FINALIZER", "CustomResourceDefinitionStrategy", "storage_version"]

Obj = dict[str, Any]
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_SCOPES = ("Cluster", "Namespaced")
_CONVERSIONS = ("None", "Webhook")
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def storage_version(crd: Mapping[str, Any]) -> str:
    """The name of the version marked `storage: true` ("" when none is)."""
    for version in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(version, Mapping) and version.get("storage"):
            return str(version.get("name") or "")
    return ""


def _causes(found: list[v.FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def _dns_label(path: str, value: Any) -> list[v.FieldErrorTuple]:
    if not value:
        return [v.required(path)]
    return [v.invalid(path, value, msg) for msg in v.is_dns1035_label(str(value))]


def _names_errors(names: Any) -> list[v.FieldErrorTuple]:
    """spec.names: plural, singular, kind, listKind, shortNames, categories (ValidateCustomResourceDefinitionNames)."""
    path = "spec.names"
    if not isinstance(names, Mapping):
        return [v.required(path)]
    errs: list[v.FieldErrorTuple] = []
    errs += _dns_label(f"{path}.plural", names.get("plural"))
    if names.get("singular"):
        errs += _dns_label(f"{path}.singular", names.get("singular"))
    for field in ("kind", "listKind"):
        value = names.get(field)
        if not value:
            errs.append(v.required(f"{path}.{field}"))
        elif not _KIND.match(str(value)):
            errs.append(
                v.invalid(
                    f"{path}.{field}",
                    value,
                    "may have mixed case, but should otherwise match: "
                    "k8s.io/apimachinery/pkg/util/validation.IsDNS1035Label",
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(v.invalid(f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same"))
    for i, short in enumerate(names.get("shortNames") or []):
        errs += _dns_label(f"{path}.shortNames[{i}]", short)
    for i, category in enumerate(names.get("categories") or []):
        errs += _dns_label(f"{path}.categories[{i}]", category)
    return errs


def _json_path_errors(path: str, value: Any, simple: bool) -> list[v.FieldErrorTuple]:
    """A printer column's JSONPath (the supported subset), or a simple `.a.b` path (selectable fields, scale)."""
    if not value:
        return [v.required(path)]
    text = str(value)
    try:
        compiled = JSONPath(text)
    except JSONPathError:
        return [v.invalid(path, text, "must be a valid JSONPath")]
    if simple and (not text.startswith(".") or not compiled.simple):
        return [v.invalid(path, text, "must be a simple json path starting with .")]
    return []


class CustomResourceDefinitionStrategy(Strategy):
    """apiextensions.k8s.io/v1 CustomResourceDefinitions: cluster-scoped, named `<plural>.<group>`."""

    tracks_generation: ClassVar[bool] = True

    def __init__(self, resource: ResourceInfo, compile_schema: SchemaCompiler = pass_through) -> None:
        super().__init__(resource)
        self.compile_schema = compile_schema

    # --- defaults ---------------------------------------------------------------------------
    def default(self, obj: Obj) -> None:
        """SetDefaults_CustomResourceDefinition: singular, listKind, conversion strategy."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        names = spec.get("names")
        if isinstance(names, dict) and isinstance(names.get("kind"), str):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        conversion = spec.setdefault("conversion", {"strategy": "None"})
        if isinstance(conversion, dict):
            conversion.setdefault("strategy", "None")

    def initial_status(self, obj: Obj) -> Obj:
        """A new CRD: nothing accepted yet; its storage version stored."""
        stored = storage_version(obj)
        return {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": [stored] if stored else []}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Status is kept; a new storage version joins status.storedVersions."""
        super().prepare_for_update(new, old)
        stored = storage_version(new)
        status = new.setdefault("status", {})
        versions = list(status.get("storedVersions") or [])
        if stored and stored not in versions:
            status["storedVersions"] = [*versions, stored]

    # --- deletion: the customresourcecleanup finalizer ------------------------------------------
    def deletion_pending(self, obj: Obj) -> bool:
        """A CRD stays until its custom resources are gone: its first delete adds the cleanup finalizer."""
        m = obj.get("metadata") or {}
        return not m.get("deletionTimestamp") or CLEANUP_FINALIZER in (m.get("finalizers") or [])

    def mark_deleting(self, obj: Obj) -> None:
        """Add the cleanup finalizer and the Terminating condition (upstream's CRD REST Delete)."""
        m = obj.setdefault("metadata", {})
        finalizers = list(m.get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            m["finalizers"] = [*finalizers, CLEANUP_FINALIZER]
        status = obj.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Terminating"]
        conditions.append(
            {
                "type": "Terminating",
                "status": "True",
                "lastTransitionTime": now(),
                "reason": "InstanceDeletionPending",
                "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            }
        )
        status["conditions"] = conditions

    # --- validation ---------------------------------------------------------------------------
    def validate_semantics(self, obj: Obj) -> list[Cause]:
        """ValidateCustomResourceDefinition: name, group, scope, names, versions, schemas, conversion."""
        spec = obj.get("spec") or {}
        errs: list[v.FieldErrorTuple] = []
        group, names = spec.get("group"), spec.get("names") or {}
        name = (obj.get("metadata") or {}).get("name")
        if isinstance(names, Mapping) and name != f"{names.get('plural')}.{group}":
            errs.append(v.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
        if not group:
            errs.append(v.required("spec.group"))
        else:
            errs += [v.invalid("spec.group", group, msg) for msg in v.is_dns1123_subdomain(str(group))]
            if "." not in str(group):
                errs.append(v.invalid("spec.group", group, "should be a domain with at least one dot"))
        if spec.get("scope") not in _SCOPES:
            errs.append(v.not_supported("spec.scope", spec.get("scope"), _SCOPES))
        errs += _names_errors(names)
        errs += self._versions_errors(spec.get("versions"))
        conversion = spec.get("conversion") or {}
        if conversion.get("strategy", "None") not in _CONVERSIONS:
            errs.append(v.not_supported("spec.conversion.strategy", conversion.get("strategy"), _CONVERSIONS))
        elif conversion.get("strategy") == "Webhook" and not (conversion.get("webhook") or {}).get("clientConfig"):
            errs.append(v.required("spec.conversion.webhook.clientConfig", "required when strategy is set to Webhook"))
        return _causes(errs)

    def _versions_errors(self, versions: Any) -> list[v.FieldErrorTuple]:
        if not versions:
            return [
                v.invalid("spec.versions", versions or [], "must have exactly one version marked as storage version")
            ]
        errs: list[v.FieldErrorTuple] = []
        seen: set[str] = set()
        storage = 0
        for i, version in enumerate(versions):
            path = f"spec.versions[{i}]"
            vname = version.get("name")
            errs += _dns_label(f"{path}.name", vname)
            if vname in seen:
                errs.append((f"{path}.name", "FieldValueDuplicate", f"Duplicate value: {v.format_value(vname)}"))
            seen.add(vname)
            storage += 1 if version.get("storage") else 0
            errs += self._schema_errors(f"{path}.schema.openAPIV3Schema", version.get("schema"))
            for j, column in enumerate(version.get("additionalPrinterColumns") or []):
                cpath = f"{path}.additionalPrinterColumns[{j}]"
                if not column.get("name"):
                    errs.append(v.required(f"{cpath}.name"))
                if column.get("type") not in _COLUMN_TYPES:
                    errs.append(v.not_supported(f"{cpath}.type", column.get("type"), _COLUMN_TYPES))
                errs += _json_path_errors(f"{cpath}.jsonPath", column.get("jsonPath"), simple=False)
            for j, selectable in enumerate(version.get("selectableFields") or []):
                errs += _json_path_errors(
                    f"{path}.selectableFields[{j}].jsonPath", selectable.get("jsonPath"), simple=True
                )
            scale = (version.get("subresources") or {}).get("scale")
            if isinstance(scale, Mapping):
                spath = f"{path}.subresources.scale"
                for field in ("specReplicasPath", "statusReplicasPath"):
                    errs += _json_path_errors(f"{spath}.{field}", scale.get(field), simple=True)
                if scale.get("labelSelectorPath"):
                    errs += _json_path_errors(f"{spath}.labelSelectorPath", scale.get("labelSelectorPath"), simple=True)
        if storage != 1:
            errs.append(v.invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
        if not any(version.get("served") for version in versions):
            errs.append(v.invalid("spec.versions", versions, "must have at least one version marked as served"))
        return errs

    def _schema_errors(self, path: str, schema: Any) -> list[v.FieldErrorTuple]:
        openapi = (schema or {}).get("openAPIV3Schema") if isinstance(schema, Mapping) else None
        if not isinstance(openapi, dict):
            return [v.required(path, "schemas are required")]
        try:
            return self.compile_schema(openapi).check_structural(path)
        except SchemaError as e:  # a rule or fieldPath that does not compile: errors relative to the schema
            return [(f"{path}.{p}" if p else path, r, m) for p, r, m in e.errors] or [v.invalid(path, "", str(e))]

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """spec.scope may not change (upstream forbids changing it once resources may exist)."""
        before, after = (old.get("spec") or {}).get("scope"), (new.get("spec") or {}).get("scope")
        if before != after:
            return _causes([v.invalid("spec.scope", after, "field is immutable")])
        return []
