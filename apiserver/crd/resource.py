"""One CRD as the definition of its custom resources: the kind registry serves them like any kind.

`definition_from_crd` reads a (validated) CRD and builds its `KindDefinition`: the resource in its
storage version with the other served versions beside it (conversion `None`: the apiVersion is
rewritten; `Webhook`: a ConversionReview), a `CustomResourceStrategy` over the versions' schemas, a
printer and field selection that follow the version a request addressed (`versions.SERVED_VERSION`:
its additionalPrinterColumns and selectableFields), and the `status` and `scale` subresources each version
declares for itself (a scale's paths are the addressed version's).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from apimachinery import errors
from apimachinery.errors import Cause
from apimachinery.resources import ResourceInfo, version_priority
from apimachinery.selectors import FieldSelector, SelectableFields
from apiserver.codec import json_response
from apiserver.crd.conversion import NoneConversion, WebhookConversion, WebhookConverter
from apiserver.crd.jsonpath import JSONPath, JSONPathError
from apiserver.crd.schema import SchemaCompiler, SchemaError, SchemaValidator, pass_through, to_causes
from apiserver.crd.strategy import storage_version
from apiserver.kindregistry import KindDefinition
from apiserver.options import WriteOptions
from apiserver.printers import NAME_COLUMN, CellsFunc, Column, Printer, translate_timestamp_since
from apiserver.strategy import Finish, Strategy, raise_if
from apiserver.subresources import ScalePaths, ScaleSubresource, ServesSubresource, StatusSubresource, manager_of
from apiserver.versions import SERVED_VERSION, WRITTEN_VERSION, Converts, written_version

if TYPE_CHECKING:
    from starlette.responses import Response

    from apiserver.context import RequestContext
    from apiserver.registry import Registry

__all__ = ["CustomResourceStrategy", "VersionPrinter", "definition_from_crd", "served_versions", "storage_schema"]

Obj = dict[str, Any]
_META_FIELDS = ("metadata.name", "metadata.namespace")
_STATUS = StatusSubresource()
_SCALE_RETRIES = 5
_STATUS_WRITE: ContextVar[bool] = ContextVar("crd_status_write", default=False)
"""Whether the update being prepared writes the status subresource: the strategy's prepare hooks tell its
`begin_update`, where a webhook-converted object gets the rest from the stored object converted to its version."""


class CustomResourceStrategy(Strategy):
    """Custom resources, as the apiextensions-apiserver writes them: an object written in a version is pruned,
    defaulted and validated by that version's schema, then converted to the storage version (conversion `None`
    or the webhook) and pruned and defaulted by the storage schema. Status is kept apart in the versions that
    have the status subresource; generation follows every change but metadata (and status there)."""

    tracks_generation: ClassVar[bool] = True

    def __init__(
        self,
        resource: ResourceInfo,
        schemas: Mapping[str, SchemaValidator],
        terminating: bool = False,
        same_shape: bool = True,
        conversions: Mapping[str, Converts] | None = None,
        status_versions: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(resource)
        self.model = None  # a custom kind may share a built-in kind's name; it never has its model
        self.schemas = schemas  # served version → its schema (the storage version's always there)
        self.schema = schemas[resource.version]  # the storage version's
        self.terminating = terminating  # its CRD is being deleted: no new objects
        self.same_shape = same_shape  # conversion `None`: every version's object is the storage one's
        self.conversions = conversions or {}  # each other served version → its conversion to storage
        self.status_versions = status_versions  # the versions with the status subresource

    def _written(self) -> str:
        """The version the object being written is in (the storage version once converted)."""
        return written_version(self.resource)

    def _converting(self) -> str | None:
        """The version the object being written is in, when it still has to be converted to storage."""
        version = self._written()
        return version if version != self.resource.version and version in self.conversions else None

    def written_in(self) -> SchemaValidator:
        """The schema of the version the object being written is in."""
        return self.schemas.get(self._written(), self.schema)

    def _has_status(self) -> bool:
        return self._written() in self.status_versions

    def prepare_for_create(self, obj: Obj) -> None:
        """Where the written version has the status subresource, status is written only through it."""
        if self._has_status():
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Where the written version has the status subresource, the stored status is kept."""
        _STATUS_WRITE.set(False)
        if not self._has_status():
            return
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """Only status changes (from the stored object as the written version has it, with a webhook)."""
        _STATUS_WRITE.set(True)
        super().prepare_for_status_update(new, old)

    def default(self, obj: Obj) -> None:
        """Drop the fields the written version's schema does not know and apply its defaults."""
        _prune_and_default(self.written_in(), obj)

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Prune `obj` in place by the written version's schema; the paths of the fields dropped (what
        fieldValidation reports)."""
        dropped: list[str] = []
        self.written_in().prune(obj, dropped)
        return dropped

    async def begin_create(self, obj: Obj, reg: Registry, dry_run: bool) -> Finish | None:
        """Refuse new objects while the CRD is being deleted (upstream's 405); an object written in another
        version than the storage one is validated in it, then converted."""
        if self.terminating:
            raise errors.StatusError(
                405, "MethodNotAllowed", "create not allowed while custom resource definition is terminating"
            )
        version = self._converting()
        if version is not None:
            await self._validate_and_convert(version, obj, None)
        return None

    async def begin_update(self, new: Obj, old: Obj, reg: Registry, dry_run: bool) -> Finish | None:
        """An object written in another version than the storage one: validated in it against the stored
        object converted to it (transition rules), then converted."""
        version = self._converting()
        if version is not None:
            served_old = (await self.conversions[version].out_of_storage([copy.deepcopy(old)]))[0]
            if not self.same_shape:  # what the prepare hooks took from the stored object, as this version has it
                if _STATUS_WRITE.get():  # everything but status from the stored object
                    _keep(served_old, new, "status")
                elif self._has_status():  # status from the stored object
                    new.pop("status", None)
                    if "status" in served_old:
                        new["status"] = copy.deepcopy(served_old["status"])
            await self._validate_and_convert(version, new, served_old)
        return None

    async def _validate_and_convert(self, version: str, obj: Obj, old: Obj | None) -> None:
        """Validate `obj` by `version`'s schema (422 naming every error), then turn it in place into the storage
        version: converted, pruned and defaulted by the storage schema."""
        r = self.resource
        causes = self._meta_causes(obj) or to_causes(self.schemas[version].validate(obj, old))
        raise_if(r.kind, (obj.get("metadata") or {}).get("name", ""), r.group, causes)
        obj["apiVersion"] = f"{r.group}/{version}"
        stored = (await self.conversions[version].into_storage([obj]))[0]
        stored = {**stored, "apiVersion": r.api_version}
        _prune_and_default(self.schema, stored)
        obj.clear()
        obj.update(stored)

    def validate_semantics(self, obj: Obj) -> list[Cause]:
        """The errors by the written version's schema (none left for an object converted after validation)."""
        if self._converting() is not None:
            return []
        return to_causes(self.written_in().validate(obj))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """The schema's transition rules (errors only an update against `old` has)."""
        if self._converting() is not None:
            return []
        plain = {c.error() for c in self.validate_semantics(new)}
        return [c for c in to_causes(self.written_in().validate(new, old)) if c.error() not in plain]

    def spec_of(self, obj: Obj) -> Obj:
        """What generation tracks: everything but metadata (and status where it has its own subresource)."""
        skip = ("apiVersion", "kind", "metadata", *(("status",) if self._has_status() else ()))
        return {k: v for k, v in obj.items() if k not in skip}


def _keep(source: Obj, target: Obj, field: str) -> None:
    """`target` becomes `source` but for `field`, which stays `target`'s own (or absent)."""
    own = target.get(field)
    target.clear()
    target.update(copy.deepcopy(source))
    target.pop(field, None)
    if own is not None:
        target[field] = own


def _prune_and_default(schema: SchemaValidator, obj: Obj) -> None:
    """Prune `obj` in place by `schema`, then apply its defaults."""
    pruned = schema.prune(obj)
    if pruned is not obj:
        obj.clear()
        obj.update(pruned)
    schema.default(obj)


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


@dataclass(frozen=True)
class VersionScale:
    """A CRD's `scale` subresource: served with the scale paths of the version the request addressed."""

    group: str
    plural: str
    storage: str
    by_version: Mapping[str, ScaleSubresource]
    converted: Mapping[str, Converts] = field(default_factory=dict)
    """The versions whose objects a webhook converts: their scale is read off the object converted to them."""
    verbs: tuple[str, ...] = ScaleSubresource.verbs
    response_kind: tuple[str, str, str] | None = ScaleSubresource.response_kind

    def _version(self) -> str:
        served = SERVED_VERSION.get()
        return served[2] if served is not None and served[:2] == (self.group, self.plural) else self.storage

    def _current(self) -> ScaleSubresource | None:
        return self.by_version.get(self._version())

    @property
    def paths(self) -> ScalePaths:
        """The addressed version's scale paths (the storage version's, or the first declared, otherwise)."""
        current = self._current()
        return (current or next(iter(self.by_version.values()))).paths

    async def serve(self, ctx: RequestContext) -> Response:
        """Answer through the addressed version's scale paths."""
        version = self._version()
        scale, conv = self.by_version.get(version), self.converted.get(version)
        if scale is None:  # resolution already refuses a version without scale
            raise errors.not_found(self.plural, ctx.name, self.group)
        if conv is None:
            return await scale.serve(ctx)
        if ctx.verb not in scale.verbs:
            raise errors.method_not_allowed()
        return await self._serve_converted(ctx, scale, conv, version)

    async def _serve_converted(
        self, ctx: RequestContext, scale: ScaleSubresource, conv: Converts, version: str
    ) -> Response:
        """The scale of the object as `version` has it; a write sets its replicas there and writes the object
        in that version (validated in it, then converted), re-read on a conflict."""
        reg, res = ctx.registry, ctx.resource
        assert reg is not None and res is not None
        if ctx.verb == "get":
            stored = await reg.get(res, ctx.namespace, ctx.name)
            return json_response(scale.paths.to_scale(res, (await conv.out_of_storage([stored]))[0]))
        new_scale = ScaleSubresource.new_scale(await ctx.body(), ctx.header("content-type"), ctx.verb)
        manager, wo = manager_of(ctx), WriteOptions.parse(ctx.query)
        for attempt in range(_SCALE_RETRIES):
            stored = await reg.get(res, ctx.namespace, ctx.name)
            new = scale.scaled(res, (await conv.out_of_storage([stored]))[0], new_scale, manager)
            token = WRITTEN_VERSION.set((self.group, self.plural, version))
            try:
                result = await reg.update(
                    res, ctx.namespace, ctx.name, lambda _cur, obj=new: copy.deepcopy(obj), wo, "scale", user=ctx.user
                )
            except errors.StatusError as e:
                if e.code != 409 or attempt == _SCALE_RETRIES - 1:
                    raise
                continue
            finally:
                WRITTEN_VERSION.reset(token)
            return json_response(scale.paths.to_scale(res, (await conv.out_of_storage([result.obj]))[0]))
        raise errors.conflict(self.plural, ctx.name, self.group)


def _every_subresource(
    group: str,
    plural: str,
    stored: str,
    per_version: Mapping[str, Mapping[str, ServesSubresource]],
    conversions: Mapping[str, Converts],
) -> dict[str, ServesSubresource]:
    """What serves each subresource any served version (or the storage one) declares."""
    out: dict[str, ServesSubresource] = {}
    if any("status" in subs for subs in per_version.values()):
        out["status"] = _STATUS
    scales = {v: subs["scale"] for v, subs in per_version.items() if isinstance(subs.get("scale"), ScaleSubresource)}
    if scales:
        webhook = {v: c for v, c in conversions.items() if isinstance(c, WebhookConversion)}
        out["scale"] = VersionScale(group, plural, stored, scales, converted=webhook)
    return out


def _version_subresources(
    per_version: Mapping[str, Mapping[str, ServesSubresource]], stored: str, others: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """The served versions whose subresources are not the storage version's, with their own."""
    storage = tuple(per_version[stored])
    return {v: tuple(per_version[v]) for v in others if tuple(per_version[v]) != storage}


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
    others = tuple(v for v in served_versions(crd) if v != stored)
    per_version = {v: _subresources(_version(crd, v)) for v in (stored, *others)}
    subresources = per_version[stored]
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
    conversions = _conversions(crd, kind, schemas, others, converter)
    strategy = CustomResourceStrategy(
        resource,
        schemas,
        terminating,
        same_shape=not _webhook(crd),
        conversions=conversions,
        status_versions=frozenset(v for v, subs in per_version.items() if "status" in subs),
    )
    return KindDefinition(
        resource=resource,
        strategy=strategy,
        printer=printer,
        fields=_version_fields(crd, kind, group, resource.plural, others),
        subresources=_every_subresource(group, resource.plural, stored, per_version, conversions),
        conversions=conversions,
        deprecated=_deprecations(crd, kind),
        version_subresources=_version_subresources(per_version, stored, others),
        storage_served=stored in served_versions(crd),
    )
