"""The kind registry: one definition per served kind, the one table every part of the apiserver reads.

A `KindDefinition` keeps a kind's facts side by side (upstream's `genericregistry.Store` keeps its
strategies, predicate and table convertor together): the resource (names, scope, storage version), its
strategy, its printer, its selectable fields, the objects serving its subresources (whose verbs discovery
reads) and how its other served versions convert. The handlers, the generic store, discovery and the
watch encoder resolve kinds here, so a kind added while the server runs (a CustomResourceDefinition) is
served, printed, selectable and discoverable at once, and a kind removed is gone from all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from apimachinery.resources import EVENTS_V1, RESOURCES, ResourceInfo, version_priority
from apimachinery.selectors import SelectableFields, builtin_selectable_fields
from apiserver.kinds import KindOptions, builtin_strategy
from apiserver.kinds.events import EventsV1Conversion
from apiserver.printers import Printer, printer_for
from apiserver.strategy import Strategy
from apiserver.subresources import SUBRESOURCES, ServesSubresource
from apiserver.versions import CONVERSIONS, SERVED_VERSION, Converts

__all__ = ["COHABITING", "KindDefinition", "KindRegistry"]

COHABITING: tuple[tuple[ResourceInfo, tuple[str, str], Converts], ...] = (
    (EVENTS_V1, ("", "events"), EventsV1Conversion()),
)
"""Resources served in a group other than the one their objects are stored in: (the served resource, the
stored one's (group, plural), how they convert)."""


@dataclass(frozen=True)
class KindDefinition:
    """Everything the apiserver knows about one served kind."""

    resource: ResourceInfo  # in its storage version
    strategy: Strategy
    printer: Printer
    fields: SelectableFields
    subresources: Mapping[str, ServesSubresource] = field(default_factory=dict)
    conversions: Mapping[str, Converts] = field(default_factory=dict)
    """The other served versions (`resource.also_served`), each with how it converts to and from storage."""
    deprecated: Mapping[str, str] = field(default_factory=dict)
    """Served versions that are deprecated, each with the warning a request to it gets."""
    version_subresources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Served versions whose subresources are not the storage version's (a CRD's versions each name theirs);
    `subresources` serves every one any version names."""
    storage_served: bool = True
    """False for a CRD whose storage version is `served: false`: objects are stored in it, and requests to
    the other versions pass through it, but it is neither discovered nor addressable."""
    stored_as: ResourceInfo | None = None
    """The resource of another group whose objects these are (upstream's cohabiting resources: events.k8s.io
    Events are core Events): every version in `conversions` is served by conversion to and from it."""

    @property
    def storage_resource(self) -> ResourceInfo:
        """The resource requests to a converted version are served through."""
        return self.stored_as or self.resource

    def __post_init__(self) -> None:
        named = set(self.resource.subresources).union(*self.version_subresources.values())
        missing = named ^ set(self.subresources)
        if missing:
            raise ValueError(f"{self.resource.group_resource}: subresources named and served differ: {sorted(missing)}")
        unconverted = set(self.resource.also_served) - set(self.conversions)
        if unconverted:
            raise ValueError(f"{self.resource.group_resource}: no conversion for {sorted(unconverted)}")

    def views(self) -> list[ResourceInfo]:
        """The resource in its storage version, then in every other version it is served in."""
        r = self.resource
        return [r, *(replace(self.with_subresources_of(v), version=v, also_served=()) for v in r.also_served)]

    def with_subresources_of(self, version: str) -> ResourceInfo:
        """The resource with the subresources `version` declares (a CRD's versions each name theirs)."""
        subs = self.version_subresources.get(version)
        r = self.resource
        return r if subs is None else replace(r, subresources=subs, has_status="status" in subs)

    def addressable(self, version: str) -> bool:
        """Whether a request may name `version` (an unserved storage version only on behalf of a served one)."""
        r = self.resource
        if version != r.version or self.storage_served:
            return True
        served = SERVED_VERSION.get()
        return served is not None and served[:2] == (r.group, r.plural)


class KindRegistry:
    """The served kinds: the built-in ones, and any added at run time."""

    def __init__(self, options: KindOptions | None = None) -> None:
        self.options = options or KindOptions()
        self._defs: dict[tuple[str, str], KindDefinition] = {}
        for r in RESOURCES:
            self.add(self.builtin(r))
        for served, (group, plural), conversion in COHABITING:
            stored = self._defs[(group, plural)]
            conversions = {served.version: conversion}
            self.add(replace(stored, resource=served, conversions=conversions, stored_as=stored.resource))

    def builtin(self, r: ResourceInfo) -> KindDefinition:
        """The definition of a built-in resource, from the built-in tables."""
        return KindDefinition(
            resource=r,
            strategy=builtin_strategy(r, self.options),
            printer=printer_for(r.kind),
            fields=builtin_selectable_fields(r.kind),
            subresources={sub: SUBRESOURCES[sub] for sub in r.subresources},
            conversions={v: CONVERSIONS[(r.group, v, r.plural)] for v in r.also_served},
        )

    # --- changes ------------------------------------------------------------------------------
    def add(self, definition: KindDefinition) -> None:
        """Serve a kind (replacing the definition of the same group and plural)."""
        r = definition.resource
        self._defs[(r.group, r.plural)] = definition

    def remove(self, group: str, plural: str) -> KindDefinition | None:
        """Stop serving a kind; its definition, or None when it was not served."""
        return self._defs.pop((group, plural), None)

    def drop_subresource(self, group: str, plural: str, sub: str) -> None:
        """Stop serving (and advertising) one subresource of a kind, as when what serves it is not configured."""
        d = self._defs[(group, plural)]
        kept = tuple(s for s in d.resource.subresources if s != sub)
        subresources = {k: v for k, v in d.subresources.items() if k != sub}
        self.add(replace(d, resource=replace(d.resource, subresources=kept), subresources=subresources))

    # --- lookups ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[KindDefinition]:
        return iter(list(self._defs.values()))

    def get(self, group: str, plural: str) -> KindDefinition | None:
        """The definition of `plural` in `group`, or None."""
        return self._defs.get((group, plural))

    def of(self, res: ResourceInfo) -> KindDefinition:
        """The definition of a served resource (any of its versions); KeyError when it is not served."""
        return self._defs[(res.group, res.plural)]

    def resolve(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        """The resource a path names, in the version it names, or None when nothing serves it."""
        d = self._defs.get((group, plural))
        if d is None or not d.addressable(version):
            return None
        served = SERVED_VERSION.get()
        if version == d.resource.version and served is not None and served[:2] == (group, plural):
            return d.with_subresources_of(served[2])  # on behalf of a version with other subresources
        if version == d.resource.version:
            return d.resource  # views()' first: the others are built per call
        return next((v for v in d.views() if v.version == version), None)

    def by_kind(self, group: str, kind: str) -> KindDefinition | None:
        """The definition serving `kind` in `group`, or None."""
        return next((d for d in self._defs.values() if d.resource.group == group and d.resource.kind == kind), None)

    def deprecation(self, group: str, version: str, plural: str) -> str | None:
        """The warning for a request to a deprecated version, or None."""
        d = self._defs.get((group, plural))
        return d.deprecated.get(version) if d is not None else None

    def strategy(self, res: ResourceInfo) -> Strategy:
        """The strategy of a served resource."""
        return self.of(res).strategy

    def served(self) -> list[ResourceInfo]:
        """Every served resource in every served version: storage versions in order, then the others."""
        defs = list(self._defs.values())
        return [d.resource for d in defs if d.storage_served] + [v for d in defs for v in d.views()[1:]]

    def group_versions(self) -> dict[str, list[ResourceInfo]]:
        """Served resources grouped by `group/version` (core as `v1`)."""
        out: dict[str, list[ResourceInfo]] = {}
        for r in self.served():
            out.setdefault(r.api_version, []).append(r)
        return out

    def groups(self) -> dict[str, list[str]]:
        """Named groups and their served versions, the preferred (highest priority) version first."""
        out: dict[str, list[str]] = {}
        for r in self.served():
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return {g: sorted(vs, key=version_priority) for g, vs in out.items()}
