"""One CRD as the definition of its custom resources: the kind registry serves them like any kind.

`definition_from_crd` reads a (validated) CRD and builds its `KindDefinition`: the resource in its
storage version with the other served versions beside it (conversion `None`: the apiVersion is
rewritten; `Webhook`: a ConversionReview), a `CustomResourceStrategy` over the versions' schemas, a
printer and field selection that follow the version a request addressed (`versions.SERVED_VERSION`:
its additionalPrinterColumns and selectableFields), and the `status` and `scale` subresources the
storage version enables (for every served version).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from apimachinery import errors
from apimachinery.errors import Cause
from apimachinery.resources import ResourceInfo, version_priority
from apimachinery.selectors import FieldSelector, SelectableFields
from apiserver.crd.conversion import NoneConversion, WebhookConversion, WebhookConverter
from apiserver.crd.jsonpath import JSONPath, JSONPathError
from apiserver.crd.schema import SchemaCompiler, SchemaError, SchemaValidator, pass_through, to_causes
from apiserver.crd.strategy import storage_version
from apiserver.kindregistry import KindDefinition
from apiserver.printers import NAME_COLUMN, CellsFunc, Column, Printer, translate_timestamp_since
from apiserver.strategy import Finish, Strategy
from apiserver.subresources import ScalePaths, ScaleSubresource, ServesSubresource, StatusSubresource
from apiserver.versions import SERVED_VERSION, Converts

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["CustomResourceStrategy", "VersionPrinter", "definition_from_crd", "served_versions", "storage_schema"]

Obj = dict[str, Any]
_META_FIELDS = ("metadata.name", "metadata.namespace")
_STATUS = StatusSubresource()


class CustomResourceStrategy(Strategy):
    """Custom resources: pruned, defaulted and validated by the schema of the version the client wrote them
    in; status kept apart when the status subresource is on; generation follows every change but metadata
    (and status)."""

    tracks_generation: ClassVar[bool] = True

    def __init__(
        self,
        resource: ResourceInfo,
        schemas: Mapping[str, SchemaValidator],
        terminating: bool = False,
        same_shape: bool = True,
    ) -> None:
        super().__init__(resource)
        self.model = None  # a custom kind may share a built-in kind's name; it never has its model
        self.schemas = schemas  # served version → its schema (the storage version's always there)
        self.schema = schemas[resource.version]  # the storage version's
        self.terminating = terminating  # its CRD is being deleted: no new objects
        self.same_shape = same_shape  # conversion `None`: every version's object is the storage one's

    def written_in(self) -> SchemaValidator:
        """The schema of the version the current request addressed (conversion `None`), else the storage one's.

        With a conversion webhook the object is already converted here; its own version's schema is the one.
        """
        served = SERVED_VERSION.get()
        r = self.resource
        if served is None or not self.same_shape or served[:2] != (r.group, r.plural):
            return self.schema
        return self.schemas.get(served[2], self.schema)

    async def begin_create(self, obj: Obj, reg: Registry, dry_run: bool) -> Finish | None:
        """Refuse new objects while the CRD is being deleted (upstream's 405)."""
        if self.terminating:
            raise errors.StatusError(
                405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating"
            )
        return None

    def prepare_for_create(self, obj: Obj) -> None:
        """With the status subresource, status is written only through it."""
        if self.resource.has_status:
            obj.pop("status", None)

    def default(self, obj: Obj) -> None:
        """Drop the fields the request version's schema does not know, apply its defaults; then the same with
        the storage version's (upstream prunes what a conversion hands to the storage version)."""
        written = self.written_in()
        for schema in (written, self.schema) if written is not self.schema else (self.schema,):
            pruned = schema.prune(obj)
            if pruned is not obj:
                obj.clear()
                obj.update(pruned)
            schema.default(obj)

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Prune `obj` in place by the request version's schema; the paths of the fields dropped (what
        fieldValidation reports)."""
        dropped: list[str] = []
        self.written_in().prune(obj, dropped)
        return dropped

    def validate_semantics(self, obj: Obj) -> list[Cause]:
        """The errors by the request version's schema."""
        return to_causes(self.written_in().validate(obj))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """The schema's transition rules (errors only an update against `old` has)."""
        plain = {c.error() for c in self.validate_semantics(new)}
        return [c for c in to_causes(self.written_in().validate(new, old)) if c.error() not in plain]

    def spec_of(self, obj: Obj) -> Obj:
        """What generation tracks: everything but metadata (and status when it has its own subresource)."""
        skip = (
            ("apiVersion", "kind", "metadata", "status")
            if self.resource.has_status
            else ("apiVersion", "kind", "metadata")
        )
        return {k: v for k, v in obj.items() if k not in skip}


@dataclass(frozen=True)
class VersionPrinter(Printer):
    """A CRD's printer: the additionalPrinterColumns of the version the request addressed (the storage
    version's, `columns`/`cells` of this printer, otherwise)."""

    group: str = ""
    plural: str = ""
    by_version: Mapping[str, Printer] = field(default_factory=dict)

    def _current(self) -> Printer | None:
        served = SERVED_VERSION.get()
        if served is None or served[:2] != (self.group, self.plural):
            return None
        return self.by_version.get(served[2])

    def column_definitions(self) -> list[dict[str, Any]]:
        """The addressed version's column definitions."""
        current = self._current()
        return current.column_definitions() if current is not None else super().column_definitions()

    def row(self, obj: Obj, now: datetime) -> dict[str, Any]:
        """The addressed version's cells of one object."""
        current = self._current()
        return current.row(obj, now) if current is not None else super().row(obj, now)


def served_versions(crd: Mapping[str, Any]) -> list[str]:
    """The names of the versions marked served."""
    return [str(v.get("name")) for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]


def _version(crd: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return next(v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("name") == name)


def _column_cells(columns: list[tuple[Column, JSONPath | None]]) -> CellsFunc:
    """Name, then each column's value: dates as ages, one number or boolean as itself, text joined by commas."""

    def cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
        row: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
        for column, path in columns:
            found = path.find(obj) if path is not None else []
            if not found:
                row.append(None)
            elif column.type == "date":
                row.append(translate_timestamp_since(found[0], now))
            elif len(found) == 1 and column.type != "string":
                row.append(found[0])
            else:
                row.append(",".join(v if isinstance(v, str) else _json_text(v) for v in found))
        return row

    return cells


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def printer_for_columns(specs: list[Mapping[str, Any]]) -> Printer:
    """The Table printer of additionalPrinterColumns (Name and Age when there are none)."""
    if not specs:
        specs = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    columns: list[tuple[Column, JSONPath | None]] = []
    for spec in specs:
        try:
            path: JSONPath | None = JSONPath(str(spec.get("jsonPath", "")))
        except JSONPathError:
            path = None  # a path outside the subset prints <none>
        column = Column(
            str(spec.get("name", "")),
            type=str(spec.get("type", "string")),
            format=str(spec.get("format", "")),
            description=str(spec.get("description", "")),
            priority=int(spec.get("priority", 0) or 0),
        )
        columns.append((column, path))
    return Printer((NAME_COLUMN, *(c for c, _ in columns)), _column_cells(columns))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def selectable_fields(kind: str, specs: list[Mapping[str, Any]]) -> SelectableFields:
    """metadata.name, metadata.namespace and the CRD's selectableFields (as `spec.color`)."""
    paths = {str(s.get("jsonPath", "")).lstrip("."): JSONPath(str(s.get("jsonPath", ""))) for s in specs}

    def values(obj: Mapping[str, Any]) -> dict[str, str]:
        m = obj.get("metadata") or {}
        out = {"metadata.name": _text(m.get("name")), "metadata.namespace": _text(m.get("namespace"))}
        for label, path in paths.items():
            found = path.find(obj)
            out[label] = _text(found[0]) if found else ""
        return out

    return SelectableFields(
        supported=frozenset((*_META_FIELDS, *paths)),
        values=values,
        unsupported=lambda label: (
            f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            if not paths
            else f"field label not supported: {label}"
        ),
    )


@dataclass(frozen=True)
class VersionFields(SelectableFields):
    """A CRD's field selection: the selectableFields of the version the request addressed (the storage
    version's, otherwise); an object's values cover every version's fields, so a watch filters alike."""

    group: str = ""
    plural: str = ""
    by_version: Mapping[str, SelectableFields] = field(default_factory=dict)

    def convert(self, sel: FieldSelector) -> FieldSelector:
        """The selector, checked against the addressed version's selectable fields."""
        served = SERVED_VERSION.get()
        current = self.by_version.get(served[2]) if served and served[:2] == (self.group, self.plural) else None
        return current.convert(sel) if current is not None else super().convert(sel)


def _version_fields(
    crd: Mapping[str, Any], kind: str, group: str, plural: str, others: tuple[str, ...]
) -> VersionFields:
    stored = storage_version(crd)
    specs = {v: list(_version(crd, v).get("selectableFields") or []) for v in (stored, *others)}
    own = selectable_fields(kind, specs[stored])
    every = selectable_fields(kind, [s for v in specs.values() for s in v])
    return VersionFields(
        own.supported,
        every.values,
        own.unsupported,
        group=group,
        plural=plural,
        by_version={v: selectable_fields(kind, specs[v]) for v in others},
    )


def _path(json_path: Any) -> tuple[str, ...]:
    return tuple(str(json_path or "").lstrip(".").split("."))


def _subresources(version: Mapping[str, Any]) -> dict[str, ServesSubresource]:
    subs = version.get("subresources") or {}
    out: dict[str, ServesSubresource] = {}
    if "status" in subs:
        out["status"] = _STATUS
    scale = subs.get("scale")
    if isinstance(scale, Mapping):
        selector = scale.get("labelSelectorPath")
        paths = ScalePaths(
            _path(scale.get("specReplicasPath")),
            _path(scale.get("statusReplicasPath")),
            _path(selector) if selector else (),
        )
        out["scale"] = ScaleSubresource(paths)
    return out


def storage_schema(crd: Mapping[str, Any]) -> dict[str, Any] | None:
    """The openAPIV3Schema of the storage version, if it has one."""
    version = _version(crd, storage_version(crd))
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    return copy.deepcopy(schema) if isinstance(schema, dict) else None


def _conversions(
    crd: Mapping[str, Any],
    kind: str,
    schemas: Mapping[str, SchemaValidator],
    others: tuple[str, ...],
    converter: WebhookConverter | None,
) -> dict[str, Converts]:
    """How each served version other than the storage one converts: `None`, or the CRD's webhook; either
    reads objects through the served version's schema."""
    spec = crd.get("spec") or {}
    group, storage_api = str(spec.get("group")), f"{spec.get('group')}/{storage_version(crd)}"
    conversion = spec.get("conversion") or {}
    if _webhook(crd) and converter is not None:
        config = (conversion.get("webhook") or {}).get("clientConfig") or {}
        return {v: WebhookConversion(converter, config, kind, storage_api, f"{group}/{v}", schemas[v]) for v in others}
    return {v: NoneConversion(storage_api, f"{group}/{v}", schemas[v]) for v in others}


def _printer(version: Mapping[str, Any]) -> Printer:
    return printer_for_columns(list(version.get("additionalPrinterColumns") or []))


def _version_subresources(
    crd: Mapping[str, Any], storage: Mapping[str, ServesSubresource], others: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """The served versions that lack some of the storage version's subresources, with those they have."""
    out = {}
    for v in others:
        own = tuple(s for s in _subresources(_version(crd, v)) if s in storage)
        if own != tuple(storage):
            out[v] = own
    return out


def _webhook(crd: Mapping[str, Any]) -> bool:
    return ((crd.get("spec") or {}).get("conversion") or {}).get("strategy") == "Webhook"


def _compiled(version: Mapping[str, Any], compile_schema: SchemaCompiler) -> SchemaValidator:
    """A version's compiled openAPIV3Schema."""
    try:
        return compile_schema(copy.deepcopy(((version.get("schema") or {}).get("openAPIV3Schema")) or {}))
    except SchemaError:
        return pass_through({})  # validation refused such a CRD; one stored before is served unchecked


def _deprecations(crd: Mapping[str, Any], kind: str) -> dict[str, str]:
    """Each deprecated served version's warning: its own, or upstream's default naming the best version to use."""
    spec = crd.get("spec") or {}
    group, versions = spec.get("group"), [v for v in spec.get("versions") or [] if v.get("served")]
    out = {}
    for v in versions:
        if not v.get("deprecated"):
            continue
        name = str(v.get("name"))
        if v.get("deprecationWarning"):
            out[name] = str(v["deprecationWarning"])
            continue
        better = sorted(
            (str(o.get("name")) for o in versions if not o.get("deprecated")),
            key=version_priority,
        )
        better = [b for b in better if version_priority(b) < version_priority(name)]
        out[name] = f"{group}/{name} {kind} is deprecated" + (f"; use {group}/{better[0]} {kind}" if better else "")
    return out


def definition_from_crd(
    crd: Mapping[str, Any], compile_schema: SchemaCompiler = pass_through, converter: WebhookConverter | None = None
) -> KindDefinition:
    """The definition serving a CRD's custom resources (the CRD validated already); `converter` calls
    conversion webhooks."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, stored = str(spec.get("group")), storage_version(crd)
    version = _version(crd, stored)
    subresources = _subresources(version)
    others = tuple(v for v in served_versions(crd) if v != stored)
    kind = str(names.get("kind"))
    resource = ResourceInfo(
        group=group,
        version=stored,
        kind=kind,
        plural=str(names.get("plural")),
        namespaced=spec.get("scope") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=tuple(subresources),
        has_status="status" in subresources,
        also_served=others,
        custom=True,
        singular_name=str(names.get("singular") or kind.lower()),
        list_kind_name=str(names.get("listKind") or f"{kind}List"),
    )
    schemas = {v: _compiled(_version(crd, v), compile_schema) for v in (stored, *others)}
    storage_printer = _printer(version)
    printer = VersionPrinter(
        storage_printer.columns,
        storage_printer.cells,
        group=group,
        plural=resource.plural,
        by_version={
            v: printer_for_columns(list(_version(crd, v).get("additionalPrinterColumns") or [])) for v in others
        },
    )
    terminating = bool((crd.get("metadata") or {}).get("deletionTimestamp"))
    return KindDefinition(
        resource=resource,
        strategy=CustomResourceStrategy(resource, schemas, terminating, same_shape=not _webhook(crd)),
        printer=printer,
        fields=_version_fields(crd, kind, group, resource.plural, others),
        subresources=subresources,
        conversions=_conversions(crd, kind, schemas, others, converter),
        deprecated=_deprecations(crd, kind),
        version_subresources=_version_subresources(crd, subresources, others),
        storage_served=stored in served_versions(crd),
    )
