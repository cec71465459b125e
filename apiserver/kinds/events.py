"""Events: core/v1 Events, and events.k8s.io/v1 Events served as the same stored objects.

Upstream stores both as core Events under `/registry/events` (events.k8s.io's `events` cohabits with
core's) and converts between the two shapes (pkg/apis/events/v1/conversion.go). Every Event passes the
legacy checks; one written through events.k8s.io/v1 is also validated strictly
(pkg/apis/core/validation/events.go: `ValidateEventCreate`, `ValidateEventUpdate`), its field paths
named as upstream names them (the internal, core names: `message`, `count`, `source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.resources import EVENTS_V1
from apiserver.kinds.core import CreateOnUpdateStrategy
from apiserver.printers import parse_time
from apiserver.strategy import Finish, raise_if
from apiserver.versions import SERVED_VERSION

__all__ = [
    "EVENTS_V1_FIELD_LABELS",
    "EventStrategy",
    "EventsV1Conversion",
    "event_from_v1",
    "event_to_v1",
]

if TYPE_CHECKING:
    from apiserver.registry import Registry

Obj = dict[str, Any]

# events.k8s.io/v1 field → core/v1 field, where the names differ (the rest are the same)
_RENAMED = {
    "note": "message",
    "regarding": "involvedObject",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")

_V1_NAMES = frozenset({"apiVersion", "kind", *_SAME, *_RENAMED})
_CORE_ONLY = frozenset(_RENAMED.values())
_REFERENCE_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
EVENTS_V1_FIELD_LABELS = {
    "metadata.name": "metadata.name",
    "metadata.namespace": "metadata.namespace",
    "reason": "reason",
    "reportingController": "reportingComponent",
    "source": "source",  # upstream keeps it, though events.k8s.io/v1 has no source field
    "type": "type",
    **{f"regarding.{f}": f"involvedObject.{f}" for f in _REFERENCE_FIELDS},
}
"""The field labels events.k8s.io/v1 selects by, as core/v1 names them (upstream's AddFieldLabelConversionsForEvent)."""

_NS_MISMATCH = "does not match event.namespace"
# what an update through events.k8s.io/v1 may not change (upstream's ValidateEventUpdate; core names)
_IMMUTABLE = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)
_REASON_MAX = _ACTION_MAX = _INSTANCE_MAX = 128
_NOTE_MAX = 1024


def event_from_v1(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event as core/v1 writes it."""
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    for name in _SAME:
        if name in obj:
            out[name] = obj[name]
    for v1_name, core_name in _RENAMED.items():
        if v1_name in obj:
            out[core_name] = obj[v1_name]
    # a field neither version knows goes on, for the strict field validation to name; a core-only one
    # (`message`) is not events.k8s.io/v1's and is dropped rather than taken as the core field
    for name, value in obj.items():
        if name not in out and name not in _V1_NAMES and name not in _CORE_ONLY:
            out[name] = value
    return out


def event_to_v1(obj: Obj) -> Obj:
    """A core/v1 Event as events.k8s.io/v1 writes it."""
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for name in _SAME:
        if name in obj:
            out[name] = obj[name]
    for v1_name, core_name in _RENAMED.items():
        if obj.get(core_name) not in (None, "", 0, {}):
            out[v1_name] = obj[core_name]
    return out


@dataclass(frozen=True)
class EventsV1Conversion:
    """events.k8s.io/v1 Events to and from the core/v1 Events they are stored as."""

    async def into_storage(self, objs: list[Obj]) -> list[Obj]:
        """Each events.k8s.io/v1 Event as a core/v1 Event."""
        return [event_from_v1(o) for o in objs]

    async def out_of_storage(self, objs: list[Obj]) -> list[Obj]:
        """Each core/v1 Event as an events.k8s.io/v1 Event."""
        return [event_to_v1(o) for o in objs]

    def converted_by_strategy(self, subresource: str, apply: bool) -> bool:
        """Never: bodies are converted before the handler."""
        return False

    def field_label(self, label: str) -> str | None:
        """The core/v1 field label for an events.k8s.io/v1 one, or None when it cannot be selected by."""
        return EVENTS_V1_FIELD_LABELS.get(label)


def _value(obj: Obj, field: str) -> Any:
    """`obj[field]` as upstream compares it: unset and zero are one, and a time is its instant, not its spelling
    (typed clients send `2026-12-02T10:00:00+00:00` for a stored `2026-12-02T10:00:00.000000Z`)."""
    value = obj.get(field) or None
    if field == "eventTime" and isinstance(value, str):
        return parse_time(value) or value
    return value


def _written_through_v1() -> bool:
    served = SERVED_VERSION.get()
    return served is not None and served[:2] == (EVENTS_V1.group, EVENTS_V1.plural)


def _cause(err: tuple[str, str, str]) -> Cause:
    field, reason, message = err
    return Cause(field, message, reason)


def _legacy_errors(obj: Obj) -> list[tuple[str, str, str]]:
    """upstream's legacyValidateEvent, which every Event passes whichever version writes it."""
    errs: list[tuple[str, str, str]] = []
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    involved = obj.get("involvedObject") or {}
    if not obj.get("eventTime"):  # an Event of the old API: only the namespaces must agree
        if (involved.get("namespace") or "") not in ("", namespace) or (
            not involved.get("namespace") and namespace not in ("", "default")
        ):
            errs.append(validation.invalid("involvedObject.namespace", involved.get("namespace") or "", _NS_MISMATCH))
        return errs
    if not involved.get("namespace") and namespace not in ("default", "kube-system"):
        errs.append(validation.invalid("involvedObject.namespace", "", _NS_MISMATCH))
    controller = obj.get("reportingComponent") or ""
    if not controller:
        errs.append(validation.required("reportingController"))
    errs += [validation.invalid("reportingController", controller, m) for m in validation.is_qualified_name(controller)]
    instance = obj.get("reportingInstance") or ""
    if not instance:
        errs.append(validation.required("reportingInstance"))
    if len(instance) > _INSTANCE_MAX:
        errs.append(validation.invalid("reportingInstance", "", f"can have at most {_INSTANCE_MAX} characters"))
    for field, limit in (("action", _ACTION_MAX), ("reason", _REASON_MAX)):
        value = obj.get(field) or ""
        if not value:
            errs.append(validation.required(field))
        if len(value) > limit:
            errs.append(validation.invalid(field, "", f"can have at most {limit} characters"))
    if len(obj.get("message") or "") > _NOTE_MAX:
        errs.append(validation.invalid("message", "", f"can have at most {_NOTE_MAX} characters"))
    return errs


def _series_errors(obj: Obj) -> list[tuple[str, str, str]]:
    """upstream's validateV1EventSeries."""
    errs: list[tuple[str, str, str]] = []
    series = obj.get("series")
    if isinstance(series, dict):
        if not isinstance(series.get("count"), int) or series["count"] < 2:
            errs.append(validation.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(validation.required("series.lastObservedTime"))
    return errs


def _create_causes(obj: Obj) -> list[Cause]:
    """upstream's ValidateEventCreate for events.k8s.io/v1: the legacy checks, then the strict ones."""
    errs = _legacy_errors(obj) + _series_errors(obj)
    if not obj.get("eventTime"):
        errs.append(validation.required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errs.append(validation.invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
    for field in ("firstTimestamp", "lastTimestamp", "count"):  # upstream names the internal (core) fields
        if obj.get(field):
            errs.append(validation.invalid(field, "", "needs to be unset"))
    source = obj.get("source") or {}
    if source.get("component") or source.get("host"):
        errs.append(validation.invalid("source", "", "needs to be unset"))
    return [_cause(e) for e in errs]


class EventStrategy(CreateOnUpdateStrategy):
    """Events: a PUT of a missing Event creates it; the legacy checks for all, the strict ones through v1."""

    async def begin_create(self, obj: Obj, reg: Registry, dry_run: bool) -> Finish | None:
        # the strict checks are for creation only (the strategy's validate() runs on updates too)
        if _written_through_v1():
            raise_if(EVENTS_V1.kind, (obj.get("metadata") or {}).get("name", ""), EVENTS_V1.group, _create_causes(obj))
        return None

    def validate_semantics(self, obj: Obj) -> list[Cause]:
        return [_cause(e) for e in _legacy_errors(obj)]  # every version, as upstream

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream's ValidateEventUpdate for events.k8s.io/v1: a changed series is valid, the rest is immutable."""
        if not _written_through_v1():
            return []
        errs = _series_errors(new) if new.get("series") != old.get("series") else []
        for field in _IMMUTABLE:
            if _value(new, field) != _value(old, field):
                errs.append(validation.invalid(field, new.get(field), "field is immutable"))
        return [_cause(e) for e in errs]
