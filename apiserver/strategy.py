"""Per-kind strategies: what differs between kinds in the generic registry.

A `Strategy` says how a kind is defaulted, validated and prepared for create and
update, which part is status, and whether `metadata.generation` tracks its spec.
The generic store (`apiserver.registry`) calls these hooks in a fixed order and
never branches on the kind itself.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from apimachinery import validation
from apimachinery.errors import Cause, StatusError, bad_request
from apimachinery.models import KIND_MODELS, validator_of
from apimachinery.patch import json_copy
from apimachinery.resources import ResourceInfo
from apiserver.required import Filler, filler_for

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["Finish", "Strategy", "path_str", "pydantic_causes"]

# Called once a write that began with begin_create/begin_update has ended: True when it was stored
# (commit what the write released), False when it was not (undo what it allocated). Upstream's FinishFunc.
Finish = Callable[[bool], Awaitable[None]]

_TYPE_ERRORS = (
    "_type",
    "_parsing",
    "dict_type",
    "list_type",
    "model_type",
    "model_attributes_type",
)


def path_str(loc: tuple[Any, ...]) -> str:
    """`('spec','containers',0,'name')` → `spec.containers[0].name`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _cause_for(err: Any) -> Cause:
    field = path_str(err["loc"])
    etype = err["type"]
    value = err.get("input")
    if etype == "missing":
        return Cause(field, "Required value", "FieldValueRequired")
    if etype == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        allowed = allowed.replace("'", '"').replace(" or ", ", ")
        msg = f'Unsupported value: "{value}": supported values: {allowed}'
        return Cause(field, msg, "FieldValueNotSupported")
    if etype == "too_short" and isinstance(value, list) and not value:
        return Cause(field, "Required value", "FieldValueRequired")
    if etype == "string_too_short":
        return Cause(field, "Required value", "FieldValueRequired")
    if etype in ("greater_than_equal", "less_than_equal"):
        bound = err.get("ctx", {})
        lim = bound.get("ge", bound.get("le"))
        word = "greater than or equal to" if etype == "greater_than_equal" else "less than or equal to"
        return Cause(field, f"Invalid value: {value}: must be {word} {lim}")
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
        if msg.startswith("["):  # a map key, e.g. resources.limits[cpu]
            key, _, rest = msg.partition(": ")
            return Cause(field + key, rest)
    return Cause(field, f"Invalid value: {value!r}: {msg}")


def pydantic_causes(kind: str, exc: ValidationError) -> list[Cause]:
    """Turn a pydantic ValidationError into causes; raise 400 on a wrong JSON type."""
    errors = exc.errors()
    for err in errors:
        if err["type"].endswith(_TYPE_ERRORS) and err["type"] not in ("literal_error",):
            field = path_str(err["loc"])
            raise bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {field}: {err["msg"]}')
    return [_cause_for(e) for e in errors]


@functools.cache
def _model_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The JSON names of the fields a kind's model declares."""
    return tuple(f.alias or name for name, f in model.model_fields.items())


class Strategy:
    """Default behaviour for a kind; subclasses override the hooks they need."""

    tracks_generation: ClassVar[bool] = False
    # PUT of a missing object creates it (Kubernetes' AllowCreateOnUpdate: Endpoints, Leases, Events).
    allow_create_on_update: ClassVar[bool] = False
    # What a DELETE without propagationPolicy does to dependents (batch/v1 Jobs orphan their pods).
    default_propagation: ClassVar[str] = "Background"
    name_validator: ClassVar[Callable[[str], list[str]]] = staticmethod(validation.is_dns1123_subdomain)

    def __init__(self, resource: ResourceInfo) -> None:
        self.resource = resource
        self.model = KIND_MODELS.get(resource.kind)
        self._required: Filler | None = None

    # --- required fields -------------------------------------------------------------
    def fill_required(self, obj: dict[str, Any]) -> None:
        """Give the object every field its schema requires, with Go's zero value when unset."""
        if self._required is None:
            self._required = filler_for(self.resource)
        self._required.fill(obj)

    def complete(self, obj: dict[str, Any]) -> None:
        """Give an object the defaults and required fields a write gives it (as upstream's decoding does)."""
        self.default(obj)
        self.fill_required(obj)

    # --- defaults and preparation -------------------------------------------------
    def default(self, obj: dict[str, Any]) -> None:
        """Fill in defaulted fields (runs on create and on every update)."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Reset what clients may not set on create (status, by default)."""
        if self.resource.has_status:
            obj["status"] = self.initial_status(obj)

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Status a newly created object starts with."""
        return {}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """On the main resource, status cannot change: keep the stored one."""
        if self.resource.has_status:
            if "status" in old:
                new["status"] = json_copy(old["status"])
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """On /status only status can change: everything else comes from the stored object."""
        status = new.get("status")
        new.clear()
        new.update(json_copy(old))
        if status is None:
            new.pop("status", None)
        else:
            new["status"] = status

    async def begin_create(self, obj: dict[str, Any], reg: Registry, dry_run: bool) -> Finish | None:
        """Allocate what a new object needs outside itself, before validation (upstream's BeginCreate).

        Returns how to finish: the registry calls it with whether the object was stored.
        """
        return None

    async def begin_update(
        self, new: dict[str, Any], old: dict[str, Any], reg: Registry, dry_run: bool
    ) -> Finish | None:
        """Allocate what an update needs and note what it frees (upstream's BeginUpdate)."""
        return None

    async def after_delete(self, obj: dict[str, Any], reg: Registry) -> None:
        """Release what a deleted object held, once it is gone from etcd (upstream's AfterDelete)."""

    # --- deletion --------------------------------------------------------------------
    async def grace_period(self, obj: dict[str, Any], options: dict[str, Any], reg: Registry) -> int:
        """Seconds the object stays after a delete before it goes (0: at once)."""
        return 0

    def deletion_pending(self, obj: dict[str, Any]) -> bool:
        """Whether something other than metadata.finalizers still holds a deleted object."""
        return False

    def mark_deleting(self, obj: dict[str, Any]) -> None:
        """Adjust an object that has just been marked for deletion."""

    # --- validation ----------------------------------------------------------------
    def validate(self, obj: dict[str, Any], *, model_known: bool = False) -> list[Cause]:
        """Validate a whole object (create and update); `model_known`: every field the kind's model declares is the
        stored object's, which passed the model when it was written (see `model_unchanged`), so it is not run."""
        causes = self._meta_causes(obj)
        if self.model is not None and not model_known:
            try:
                validator_of(self.model).validate_python(obj)
            except ValidationError as e:
                causes += pydantic_causes(self.resource.kind, e)
        if not causes:
            causes += self.validate_semantics(obj)
        return causes

    def model_unchanged(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        """Whether the kind's model would see the same fields in `new` as in `old` (a status write: the models
        declare no status, and extra fields are not validated), so its answer cannot differ."""
        if self.model is None or type(self).validate is not Strategy.validate:
            return False
        return all(new.get(f) == old.get(f) for f in _model_fields(self.model))

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        """Kind-specific checks that need more than types (after the model passed)."""
        return []

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        """Checks comparing new and old (immutable fields)."""
        return []

    def _meta_causes(self, obj: dict[str, Any]) -> list[Cause]:
        found = validation.validate_object_meta(
            obj.get("metadata") or {},
            namespaced=self.resource.namespaced,
            name_validator=self.name_validator,
        )
        return [Cause(field, msg, reason) for field, reason, msg in found]

    # --- spec / generation ---------------------------------------------------------
    def spec_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Everything but metadata and status: what `generation` tracks."""
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def raise_if(kind: str, name: str, group: str, causes: list[Cause]) -> None:
    """Raise 422 Invalid when there are causes."""
    if causes:
        from apimachinery.errors import invalid

        raise invalid(kind, name, causes, group)


def forbid(message: str) -> StatusError:
    """A 403 for writes into a terminating namespace and similar."""
    return StatusError(403, "Forbidden", message)
