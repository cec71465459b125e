"""ResourceQuota admission (k8s.io/apiserver/pkg/admission/plugin/resourcequota): a write that would
take a namespace's usage past a quota's `status.hard` is refused with 403 `exceeded quota`; one that
fits is charged at once — the quota's `status.used` is raised in etcd with a compare-and-swap on the
quota's revision, re-read and re-checked on conflict — so two concurrent creates can never both take
the last slot. The ResourceQuota controller later recomputes `status.used` from the objects (and so
gives back what deleted objects and writes that failed after admission held).

Writes to one namespace are checked one at a time in this apiserver (upstream queues them per
namespace the same way); the revision compare keeps it correct against other writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apimachinery import errors
from apimachinery.quota import (
    Evaluator,
    add,
    charged_operations,
    evaluator_for,
    less_than_or_equal,
    mask,
    parse_list,
    pretty_print,
    quota_matches,
    remove_zeros,
    render_list,
    subtract_non_negative,
)
from apiserver.admission import AdmissionAttributes
from apiserver.admission.lookups import forbidden
from apiserver.storage import KeyNotFound, RevisionConflict, StorageUnavailable

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["ResourceQuotaAdmission", "check_request"]

log = logging.getLogger("apiserver.admission.resourcequota")

_IGNORED = {("", "events"), ("events.k8s.io", "events")}
_MAX_ATTEMPTS = 10
_EVALUATION_TIMEOUT = 10.0


def check_request(
    quotas: list[dict[str, Any]], attrs: AdmissionAttributes, evaluator: Evaluator, now: datetime | None = None
) -> list[dict[str, Any]]:
    """CheckRequest: the quotas as they would be with this write charged, or a 403 when it does not fit."""
    obj = attrs.obj
    if obj is None or not evaluator.handles(attrs.operation, attrs.subresource):
        return quotas
    interesting: list[int] = []
    for i, quota in enumerate(quotas):
        hard = parse_list(_status(quota).get("hard"))
        if not quota_matches(quota, evaluator, obj, hard):
            continue
        restricted = evaluator.matching_resources(hard)
        if why := evaluator.constraints(restricted, obj):
            raise forbidden(attrs, f"failed quota: {_name(quota)}: {why}")
        used = _status(quota).get("used") or {}
        if any(name not in used for name in restricted):
            names = ",".join(sorted(restricted))
            raise forbidden(attrs, f"status unknown for quota: {_name(quota)}, resources: {names}")
        interesting.append(i)
    if not interesting:
        return quotas
    usage = evaluator.usage(obj, now)
    if negative := sorted(k for k, v in usage.items() if v.sign() < 0):
        raise forbidden(attrs, f"quota usage is negative for resource(s): {','.join(negative)}")
    deltas = dict.fromkeys(interesting, usage)
    old = attrs.old
    if attrs.operation == "UPDATE" and old is not None and (old.get("metadata") or {}).get("resourceVersion"):
        delta = subtract_non_negative(usage, evaluator.usage(old, now))
        for i in interesting:
            if quota_matches(quotas[i], evaluator, old, parse_list(_status(quotas[i]).get("hard"))):
                deltas[i] = delta
    deltas = {i: d for i, d in ((i, remove_zeros(d)) for i, d in deltas.items()) if d}
    if not deltas:
        return quotas
    out = copy.deepcopy(quotas)
    for i, delta in deltas.items():
        status = _status(out[i])
        hard, used = parse_list(status.get("hard")), parse_list(status.get("used"))
        requested = mask(delta, hard)
        new_used = add(used, requested)
        fits, exceeded = less_than_or_equal(mask(new_used, requested), hard)
        if not fits:
            raise forbidden(
                attrs,
                f"exceeded quota: {_name(out[i])}, requested: {pretty_print(mask(requested, exceeded))}, "
                f"used: {pretty_print(mask(used, exceeded))}, limited: {pretty_print(mask(hard, exceeded))}",
            )
        status["used"] = render_list(new_used)
        out[i]["status"] = status
    return out


def _status(quota: dict[str, Any]) -> dict[str, Any]:
    status = quota.get("status")
    return status if isinstance(status, dict) else {}


def _name(quota: dict[str, Any]) -> str:
    return str((quota.get("metadata") or {}).get("name", ""))


class ResourceQuotaAdmission:
    """The validating ResourceQuota plug-in (last in the chain, as upstream orders it)."""

    name = "ResourceQuota"

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Writes to namespaced objects whose usage a quota can track."""
        if not attrs.namespace or (attrs.resource.group, attrs.resource.plural) in _IGNORED:
            return False
        # Evaluator.handles, without building the evaluator
        return not attrs.subresource and attrs.operation in charged_operations(attrs.resource)

    @contextlib.asynccontextmanager
    async def _namespace_lock(self, namespace: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(namespace, (asyncio.Lock(), 0))
        self._locks[namespace] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[namespace]
            if users == 1:
                del self._locks[namespace]
            else:
                self._locks[namespace] = (lock, users - 1)

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Check the write against every quota of its namespace and charge it (unless a dry run)."""
        if not reg.cache.cache("resourcequotas").under(f"/registry/resourcequotas/{attrs.namespace}/"):
            return  # no quota in the namespace, as the watch cache knows: nothing to read from etcd
        evaluator = evaluator_for(attrs.resource)
        try:
            async with asyncio.timeout(_EVALUATION_TIMEOUT), self._namespace_lock(attrs.namespace):
                await self._check_and_charge(attrs, reg, evaluator)
        except TimeoutError as e:
            raise errors.internal_error("resource quota evaluation timed out") from e

    async def _check_and_charge(self, attrs: AdmissionAttributes, reg: Registry, evaluator: Evaluator) -> None:
        prefix = f"/registry/resourcequotas/{attrs.namespace}/"
        charged_names: set[str] = set()  # quotas this write has already been charged to
        conflicted = ""
        for attempt in range(_MAX_ATTEMPTS):
            try:
                stored, _rev, _more = await reg.storage.list(prefix)
            except StorageUnavailable as e:
                raise errors.service_unavailable(str(e)) from e
            stored = [s for s in stored if _name(s.obj) not in charged_names]
            if not stored:
                return
            quotas = [s.obj for s in stored]
            charged = check_request(quotas, attrs, evaluator, datetime.now(UTC))
            if attrs.dry_run or charged is quotas:
                return
            conflicted = ""
            for before, after, item in zip(quotas, charged, stored, strict=True):
                if _status(before).get("used") == _status(after).get("used"):
                    continue
                try:
                    await reg.storage.update(item.key, after, item.revision)
                    charged_names.add(_name(after))
                except (RevisionConflict, KeyNotFound):
                    conflicted = _name(after)  # moved on (the controller): re-read and re-check it
                except StorageUnavailable as e:
                    raise errors.service_unavailable(str(e)) from e
            if not conflicted:
                return
            log.debug("quota %s/%s changed under us (attempt %d)", attrs.namespace, conflicted, attempt + 1)
            await asyncio.sleep(0.01 * (attempt + 1))
        raise errors.conflict("resourcequotas", conflicted)
