"""Subresources: status, scale, binding, finalize, ephemeralcontainers … — each a small object over the generic store.

A kind's definition (`apiserver.kindregistry`) names the subresources it serves; discovery reads each
one's verbs and response kind from the object that serves it, so nothing is advertised that is not served.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from starlette.responses import Response

from apimachinery import errors
from apimachinery.meta import meta, now
from apimachinery.resources import ResourceInfo
from apimachinery.selectors import selector_from_label_selector, selector_from_map
from apiserver import managedfields, openapi, portforward, proxy
from apiserver.admission import AdmissionAttributes
from apiserver.codec import PATCH_TYPES, decode_body, json_response, media_type
from apiserver.context import RequestContext
from apiserver.eviction import EvictionSubresource
from apiserver.kinds.ephemeral import ephemeral_update, take_ephemeral_containers
from apiserver.options import WriteOptions
from apiserver.registry import Registry
from apiserver.serviceaccount_token import TokenSubresource
from apiserver.writes import patch_function, patch_object, update_object

__all__ = [
    "SUBRESOURCES",
    "ScalePaths",
    "ScaleSubresource",
    "ServesSubresource",
    "StatusSubresource",
    "Subresource",
    "manager_of",
]

# (group, version, kind) a subresource answers with; None: the resource's own kind
ResponseKind = tuple[str, str, str] | None


class ServesSubresource(Protocol):
    """What serves one subresource: its verbs and response kind (for discovery) and the serving."""

    verbs: tuple[str, ...]
    response_kind: ResponseKind

    async def serve(self, ctx: RequestContext) -> Response:
        """Answer one request to the subresource."""
        ...


class Subresource:
    """Serves one subresource; verbs not listed answer 405."""

    verbs: ClassVar[tuple[str, ...]] = ()
    response_kind: ClassVar[ResponseKind] = None

    async def serve(self, ctx: RequestContext) -> Response:
        """Dispatch by the request's verb."""
        if ctx.verb not in self.verbs:
            raise errors.method_not_allowed()
        return await getattr(self, ctx.verb)(ctx)


class StatusSubresource(Subresource):
    """`/status`: writes change only status; reads return the whole object."""

    verbs = ("get", "update", "patch")

    async def get(self, ctx: RequestContext) -> Response:
        reg, res = _parts(ctx)
        return json_response(await reg.get(res, ctx.namespace, ctx.name))

    async def update(self, ctx: RequestContext) -> Response:
        return await update_object(ctx)

    async def patch(self, ctx: RequestContext) -> Response:
        return await patch_object(ctx)


class FinalizeSubresource(Subresource):
    """`namespaces/<name>/finalize`: the namespace controller clears spec.finalizers."""

    verbs = ("update",)

    async def update(self, ctx: RequestContext) -> Response:
        reg, res = _parts(ctx)
        body = decode_body(await ctx.body(), ctx.header("content-type"))
        finalizers = ((body or {}).get("spec") or {}).get("finalizers") or []

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            cur.setdefault("spec", {})["finalizers"] = finalizers
            return cur

        wo = WriteOptions.parse(ctx.query)
        result = await reg.update(res, None, ctx.name, mutate, wo, "finalize", user=ctx.user)
        return json_response(result.obj)


def _builtin_selector(res: ResourceInfo, obj: dict[str, Any]) -> str:
    selector = (obj.get("spec") or {}).get("selector")
    if res.kind == "ReplicationController":
        return str(selector_from_map(selector or {}))
    return str(selector_from_label_selector(selector or {}))


def _at(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        obj = obj.get(name) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


@dataclass(frozen=True)
class ScalePaths:
    """Where a kind keeps what its Scale shows (a CRD's subresources.scale); the built-ins' by default."""

    spec_replicas: tuple[str, ...] = ("spec", "replicas")
    status_replicas: tuple[str, ...] = ("status", "replicas")
    label_selector: tuple[str, ...] | None = None  # a serialized selector; None: built from spec.selector

    def to_scale(self, res: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """The autoscaling/v1 Scale of a scalable object."""
        m = obj.get("metadata", {})
        if self.label_selector is None:
            selector = _builtin_selector(res, obj)
        else:
            found = _at(obj, self.label_selector)
            selector = found if isinstance(found, str) else ""
        replicas = _at(obj, self.spec_replicas)
        current = _at(obj, self.status_replicas)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
            },
            "spec": {"replicas": replicas if isinstance(replicas, int) else 0},
            "status": {"replicas": current if isinstance(current, int) else 0, "selector": selector},
        }

    def set_replicas(self, obj: dict[str, Any], replicas: int) -> None:
        """Write the desired replicas into the object."""
        *parents, last = self.spec_replicas
        for name in parents:
            child = obj.get(name)
            if not isinstance(child, dict):
                child = obj[name] = {}
            obj = child
        obj[last] = replicas


def manager_of(ctx: RequestContext) -> str:
    """The field manager a write names (or its user agent's)."""
    return managedfields.manager_name(ctx.query.get("fieldManager", ""), ctx.header("user-agent"))


def _parts(ctx: RequestContext) -> tuple[Registry, ResourceInfo]:
    assert ctx.registry is not None and ctx.resource is not None
    return ctx.registry, ctx.resource


class ScaleSubresource(Subresource):
    """`/scale`: read and write spec.replicas through an autoscaling/v1 Scale."""

    verbs = ("get", "update", "patch")
    response_kind = ("autoscaling", "v1", "Scale")

    def __init__(self, paths: ScalePaths | None = None) -> None:
        self.paths = paths or ScalePaths()

    async def get(self, ctx: RequestContext) -> Response:
        reg, res = _parts(ctx)
        return json_response(self.paths.to_scale(res, await reg.get(res, ctx.namespace, ctx.name)))

    def scaled(self, res: ResourceInfo, cur: dict[str, Any], new_scale: Any, manager: str) -> dict[str, Any]:
        """`cur` with the replicas of the Scale `new_scale` makes of its Scale (422 for a negative count); a
        resourceVersion the Scale names is kept as the write's precondition."""
        old = copy.deepcopy(cur)
        scale = new_scale(self.paths.to_scale(res, cur))
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(
                "Scale",
                meta(cur).get("name", ""),
                [errors.Cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
                "autoscaling",
            )
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv:
            meta(cur)["resourceVersion"] = rv
        self.paths.set_replicas(cur, replicas)
        return managedfields.track_update(res, old, cur, manager or "unknown", "scale")

    async def _write(self, ctx: RequestContext, new_scale: Any) -> Response:
        reg, res = _parts(ctx)
        manager = manager_of(ctx)
        await openapi.ensure_loaded()
        wo = WriteOptions.parse(ctx.query)

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            return self.scaled(res, cur, new_scale, manager)

        result = await reg.update(res, ctx.namespace, ctx.name, mutate, wo, "scale", user=ctx.user)
        return json_response(self.paths.to_scale(res, result.obj))

    @staticmethod
    def new_scale(body: bytes, content_type: str | None, verb: str) -> Any:
        """What an update (the Scale sent) or a patch (the Scale patched) makes of the current Scale."""
        if verb == "update":
            scale = decode_body(body, content_type)
            if not isinstance(scale, dict):
                raise errors.bad_request("the body of the request was not a Scale object")
            return lambda _s: copy.deepcopy(scale)
        return patch_function(decode_body(body, content_type, PATCH_TYPES), media_type(content_type), "Scale")

    async def update(self, ctx: RequestContext) -> Response:
        return await self._write(ctx, self.new_scale(await ctx.body(), ctx.header("content-type"), "update"))

    async def patch(self, ctx: RequestContext) -> Response:
        return await self._write(ctx, self.new_scale(await ctx.body(), ctx.header("content-type"), "patch"))


class BindingSubresource(Subresource):
    """`pods/<name>/binding`: sets spec.nodeName once (409 when already bound).

    As upstream's BindingREST: admission sees a create of the Binding, then the pod is written straight
    through storage (`Registry.update_stored`), without the pod's strategy, validation or admission.
    """

    verbs = ("create",)
    response_kind = ("", "v1", "Binding")

    async def create(self, ctx: RequestContext) -> Response:
        reg, res = _parts(ctx)
        name = ctx.name
        body = decode_body(await ctx.body(), ctx.header("content-type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a Binding object")
        meta_ = body.get("metadata")
        if meta_ is None:
            meta_ = body["metadata"] = {}
        if not isinstance(meta_, dict):
            raise errors.bad_request("the body of the request was not a Binding object")
        meta_.setdefault("name", name)
        wo = WriteOptions.parse(ctx.query)
        attrs = _binding_attributes(ctx, body, wo)
        await reg.admission.admit(attrs, reg)
        # BindingREST.Create's checks, after mutating admission (whose webhooks may replace the Binding's contents)
        meta_ = body.get("metadata") or {}
        if meta_.get("name") != name:
            raise errors.bad_request("name in URL does not match name in Binding object")
        _validate_binding(name, body)
        await reg.admission.validate(attrs, reg)

        node = body["target"]["name"]
        annotations = meta_.get("annotations") if isinstance(meta_.get("annotations"), dict) else {}
        # upstream's assignPod: the Binding's uid and resourceVersion, when set, are preconditions on the
        # pod, so a binding decided for a pod since deleted and re-created under its name is refused
        preconditions = {k: v for k, v in meta_.items() if k in ("uid", "resourceVersion") and v}

        def bind(cur: dict[str, Any]) -> dict[str, Any]:
            m, spec = cur.setdefault("metadata", {}), cur.setdefault("spec", {})
            if m.get("deletionTimestamp"):
                raise _binding_conflict(name, f"pod {name} is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise _binding_conflict(name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            if spec.get("schedulingGates"):
                raise _binding_conflict(name, f"pod {name} has non-empty .spec.schedulingGates")
            spec["nodeName"] = node
            if annotations:
                m["annotations"] = {**(m.get("annotations") or {}), **annotations}
            (cur.get("status") or {}).pop("nominatedNodeName", None)  # ClearingNominatedNodeNameAfterBinding
            _set_scheduled(cur)
            return cur

        await reg.update_stored(res, ctx.namespace, name, bind, preconditions=preconditions, dry_run=wo.dry_run)
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            201,
        )


def _validate_binding(name: str, binding: dict[str, Any]) -> None:
    """ValidatePodBinding: a target name, of kind Node (or no kind)."""
    target = binding.get("target")
    if not isinstance(target, dict):
        target = binding["target"] = {}
    if not target.get("name"):
        raise errors.invalid("Binding", name, [errors.Cause("target.name", "Required value", "FieldValueRequired")])
    if target.get("kind", "Node") not in ("Node", ""):
        raise errors.invalid(
            "Binding",
            name,
            [
                errors.Cause(
                    "target.kind",
                    f'Unsupported value: "{target.get("kind")}": supported values: "Node"',
                    "FieldValueNotSupported",
                )
            ],
        )


def _binding_attributes(ctx: RequestContext, binding: dict[str, Any], wo: WriteOptions) -> AdmissionAttributes:
    """What admission sees of a binding: a create of the Binding under pods/binding."""
    assert ctx.resource is not None
    options: dict[str, Any] = {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    if wo.field_manager:
        options["fieldManager"] = wo.field_manager
    if wo.dry_run:
        options["dryRun"] = ["All"]
    return AdmissionAttributes(
        "CREATE",
        ctx.resource,
        "binding",
        ctx.namespace or "",
        ctx.name,
        binding,
        None,
        ctx.user,
        dry_run=wo.dry_run,
        options=options,
    )


def _binding_conflict(name: str, why: str) -> errors.StatusError:
    """assignPod's answer to a pod that cannot be bound: 409 on pods/binding."""
    return errors.conflict("pods/binding", name, why=why)


def _set_scheduled(pod: dict[str, Any]) -> None:
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": now(),
        }
    )
    status["conditions"] = conditions


class PortForwardSubresource(Subresource):
    """`pods/<name>/portforward` without a WebSocket upgrade: kubectl's SPDY fallback (`apiserver/portforward.py`)."""

    verbs = ("get", "create")
    response_kind = ("", "v1", "PodPortForwardOptions")

    async def get(self, ctx: RequestContext) -> Response:
        return await portforward.portforward_upgrade(ctx)

    create = get


class LogSubresource(Subresource):
    """`pods/<name>/log`: the container's log, streamed from the pod's kubelet."""

    verbs = ("get",)
    response_kind = ("", "v1", "Pod")

    async def get(self, ctx: RequestContext) -> Response:
        return await proxy.pod_logs(ctx)


class ExecSubresource(Subresource):
    """`pods/<name>/exec` without a WebSocket upgrade: kubectl's SPDY fallback (`proxy.container_upgrade`).

    The WebSocket upgrade itself is routed to `proxy.exec_websocket` by the app.
    """

    verbs = ("get", "create")
    response_kind = ("", "v1", "PodExecOptions")

    async def get(self, ctx: RequestContext) -> Response:
        return await proxy.container_upgrade(ctx, "exec")

    create = get


class AttachSubresource(Subresource):
    """`pods/<name>/attach` without a WebSocket upgrade: kubectl's SPDY fallback (`proxy.container_upgrade`;
    the WebSocket upgrade is routed to `proxy.attach_websocket` by the app)."""

    verbs = ("get", "create")
    response_kind = ("", "v1", "PodAttachOptions")

    async def get(self, ctx: RequestContext) -> Response:
        return await proxy.container_upgrade(ctx, "attach")

    create = get


class EphemeralContainersSubresource(Subresource):
    """`pods/<name>/ephemeralcontainers` (`kubectl debug`): reads return the pod; writes (a Pod, or a patch
    of one) change only `spec.ephemeralContainers`, where entries may be added but never changed or removed."""

    verbs = ("get", "update", "patch")

    async def get(self, ctx: RequestContext) -> Response:
        reg, res = _parts(ctx)
        return json_response(await reg.get(res, ctx.namespace, ctx.name))

    async def _write(self, ctx: RequestContext, edit: Any) -> Response:
        reg, res = _parts(ctx)
        manager = manager_of(ctx) or "unknown"
        await openapi.ensure_loaded()

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            new = take_ephemeral_containers(edit(copy.deepcopy(cur)), cur)
            return managedfields.track_update(res, cur, new, manager, "ephemeralcontainers")

        wo = WriteOptions.parse(ctx.query)
        with ephemeral_update():
            result = await reg.update(res, ctx.namespace, ctx.name, mutate, wo, "ephemeralcontainers", user=ctx.user)
        return json_response(result.obj)

    async def update(self, ctx: RequestContext) -> Response:
        body = decode_body(await ctx.body(), ctx.header("content-type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a Pod object")
        return await self._write(ctx, lambda _cur: body)

    async def patch(self, ctx: RequestContext) -> Response:
        ct = ctx.header("content-type")
        patch = decode_body(await ctx.body(), ct, PATCH_TYPES)
        return await self._write(ctx, patch_function(patch, media_type(ct), "Pod"))


SUBRESOURCES: dict[str, ServesSubresource] = {
    "status": StatusSubresource(),
    "scale": ScaleSubresource(),
    "binding": BindingSubresource(),
    "finalize": FinalizeSubresource(),
    "log": LogSubresource(),
    "exec": ExecSubresource(),
    "attach": AttachSubresource(),
    "eviction": EvictionSubresource(),
    "portforward": PortForwardSubresource(),
    "ephemeralcontainers": EphemeralContainersSubresource(),
    "token": TokenSubresource(),
}
