"""`pods/<name>/eviction` (upstream pkg/registry/core/pod/storage/eviction.go): delete a pod only
when its PodDisruptionBudget allows one more disruption.

A pod that is already terminal, still Pending or being deleted goes at once; one no budget selects
goes at once. Otherwise its one budget must have been seen by the disruption controller since its
last change and allow a disruption: the eviction takes that disruption (disruptionsAllowed - 1, the
pod noted in status.disruptedPods) in the same read-modify-write as any status update, then deletes
the pod with the eviction's DeleteOptions. A budget with nothing left answers 429 with upstream's
message and a DisruptionBudget cause; kubectl drain retries on it.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from apimachinery import errors
from apimachinery.meta import now
from apimachinery.resources import ResourceInfo
from apimachinery.selectors import (
    SelectorError,
    selector_from_label_selector,
)
from apiserver.admission.lookups import list_in_namespace
from apiserver.codec import decode_body, json_response
from apiserver.context import RequestContext
from apiserver.options import WriteOptions
from apiserver.registry import Registry

__all__ = ["EvictionSubresource"]

_TERMINAL_OR_PENDING = ("Succeeded", "Failed", "Pending")
_MAX_DISRUPTED_PODS = 2000  # upstream MaxDisruptedPodSize
_BUDGET_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
_CAUSE = "DisruptionBudget"


def _budget_error(message: str, retry_after: int) -> errors.StatusError:
    err = errors.too_many_requests(_BUDGET_MESSAGE, retry_after)
    if not retry_after:
        err.details.pop("retryAfterSeconds", None)
    err.details["causes"] = [{"reason": _CAUSE, "message": message}]
    return err


def _success() -> Response:
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


def _is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _take_disruption(pod_name: str, dry_run: bool) -> Any:
    """The status mutation of the budget: check it allows a disruption, then take one."""

    def mutate(pdb: dict[str, Any]) -> dict[str, Any]:
        meta, status = pdb.get("metadata") or {}, pdb.setdefault("status", {})
        name = meta.get("name", "")
        if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
            raise _budget_error(f"The disruption budget {name} is still being processed by the server.", 10)
        allowed = int(status.get("disruptionsAllowed") or 0)
        if allowed < 0:
            raise errors.forbidden("poddisruptionbudget", name, "pdb disruptions allowed is negative", "policy")
        if len(status.get("disruptedPods") or {}) > _MAX_DISRUPTED_PODS:
            why = "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
            raise errors.forbidden("poddisruptionbudget", name, why, "policy")
        if allowed == 0:
            desired, current = status.get("desiredHealthy", 0), status.get("currentHealthy", 0)
            raise _budget_error(
                f"The disruption budget {name} needs {desired} healthy pods and has {current} currently", 0
            )
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            for cond in status.get("conditions") or []:
                if cond.get("type") == "DisruptionAllowed":
                    cond.update(status="False", reason="InsufficientPods", lastTransitionTime=now())
        if not dry_run:
            status.setdefault("disruptedPods", {})[pod_name] = now()
        return pdb

    return mutate


class EvictionSubresource:
    """`POST pods/<name>/eviction` with a policy/v1 Eviction."""

    verbs = ("create",)
    response_kind = ("policy", "v1", "Eviction")

    async def serve(self, ctx: RequestContext) -> Response:
        """Evict the pod if its disruption budget allows it; other verbs 405."""
        if ctx.verb != "create":
            raise errors.method_not_allowed()
        assert ctx.registry is not None and ctx.resource is not None
        reg, pods, name, ns = ctx.registry, ctx.resource, ctx.name, ctx.namespace
        body = decode_body(await ctx.body(), ctx.header("content-type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not an Eviction object")
        body_name = (body.get("metadata") or {}).get("name")
        if body_name != name:
            raise errors.bad_request("name in URL does not match name in Eviction object")
        options = body.get("deleteOptions") or {}
        if not isinstance(options, dict):
            raise errors.bad_request("deleteOptions: must be a DeleteOptions object")
        wo = WriteOptions.parse(ctx.query)
        dry_run = wo.dry_run or bool(options.get("dryRun"))
        pod = await reg.get(pods, ns, name)
        meta, phase = pod.get("metadata") or {}, (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp") or phase in _TERMINAL_OR_PENDING:
            return await self._delete(reg, pods, ctx, options, dry_run)
        budgets_kind = reg.kinds.get("policy", "poddisruptionbudgets")
        pdb_res = budgets_kind.resource if budgets_kind is not None else None
        budgets = await self._budgets_of(reg, pod) if pdb_res is not None else []
        if len(budgets) > 1:
            raise errors.StatusError(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        if budgets and pdb_res is not None:
            pdb = budgets[0]
            status = pdb.get("status") or {}
            desired = int(status.get("desiredHealthy") or 0)
            # An unready pod does not count as healthy: evicting it takes nothing from the budget.
            if not (not _is_ready(pod) and int(status.get("currentHealthy") or 0) >= desired and desired > 0):
                pdb_name = (pdb.get("metadata") or {}).get("name", "")
                await reg.update(
                    pdb_res,
                    ns,
                    pdb_name,
                    _take_disruption(name, dry_run),
                    WriteOptions(dry_run=dry_run),
                    "status",
                    user=ctx.user,
                )
        return await self._delete(reg, pods, ctx, options, dry_run)

    @staticmethod
    async def _budgets_of(reg: Registry, pod: dict[str, Any]) -> list[dict[str, Any]]:
        """The budgets whose selector selects the pod, as the watch cache holds them."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        out = []
        for pdb in await list_in_namespace(reg, "poddisruptionbudgets", meta.get("namespace", "")):
            selector = (pdb.get("spec") or {}).get("selector")
            if selector is None:
                continue  # a nil selector selects nothing (an empty one selects every pod)
            try:
                if selector_from_label_selector(selector).matches(labels):
                    out.append(pdb)
            except SelectorError:
                continue
        return out

    @staticmethod
    async def _delete(
        reg: Registry, pods: ResourceInfo, ctx: RequestContext, options: dict[str, Any], dry_run: bool
    ) -> Response:
        await reg.delete(pods, ctx.namespace, ctx.name, options, dry_run, user=ctx.user)
        return _success()
