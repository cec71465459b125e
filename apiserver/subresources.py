"""Subresources: status, scale, binding, finalize — each a small object over the generic store."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from apimachinery import errors
from apimachinery.meta import meta, now
from apimachinery.resources import ResourceInfo
from apimachinery.selectors import selector_from_label_selector, selector_from_map
from apiserver import managedfields, openapi, proxy
from apiserver.codec import PATCH_TYPES, decode_body, json_response, media_type
from apiserver.options import WriteOptions
from apiserver.registry import Registry
from apiserver.serviceaccount_token import TokenSubresource
from apiserver.writes import patch_function, patch_object, update_object

__all__ = ["SUBRESOURCES", "Subresource"]


class Subresource:
    """Serves one subresource; verbs not listed answer 405."""

    verbs: ClassVar[tuple[str, ...]] = ()

    async def serve(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        verb: str,
        params: dict[str, str],
    ) -> Response:
        """Dispatch by verb."""
        if verb not in self.verbs:
            raise errors.method_not_allowed()
        return await getattr(self, verb)(reg, request, res, ns, name, params)


class StatusSubresource(Subresource):
    """`/status`: writes change only status; reads return the whole object."""

    verbs = ("get", "update", "patch")

    async def get(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return json_response(await reg.get(res, ns, name))

    async def update(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return await update_object(reg, request, res, ns, name, params, "status")

    async def patch(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return await patch_object(reg, request, res, ns, name, params, "status")


class FinalizeSubresource(Subresource):
    """`namespaces/<name>/finalize`: the namespace controller clears spec.finalizers."""

    verbs = ("update",)

    async def update(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        body = decode_body(await request.body(), request.headers.get("content-type"))
        finalizers = ((body or {}).get("spec") or {}).get("finalizers") or []

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            cur.setdefault("spec", {})["finalizers"] = finalizers
            return cur

        result = await reg.update(res, None, name, mutate, WriteOptions.parse(params), "finalize")
        return json_response(result.obj)


def _selector_string(res: ResourceInfo, obj: dict[str, Any]) -> str:
    selector = (obj.get("spec") or {}).get("selector")
    if res.kind == "ReplicationController":
        return str(selector_from_map(selector or {}))
    return str(selector_from_label_selector(selector or {}))


def to_scale(res: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale of a scalable object."""
    m = obj.get("metadata", {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m},
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": _selector_string(res, obj),
        },
    }


def _manager(request: Request, params: dict[str, str]) -> str:
    return managedfields.manager_name(params.get("fieldManager", ""), request.headers.get("user-agent"))


class ScaleSubresource(Subresource):
    """`/scale`: read and write spec.replicas through an autoscaling/v1 Scale."""

    verbs = ("get", "update", "patch")

    async def get(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return json_response(to_scale(res, await reg.get(res, ns, name)))

    async def _write(
        self,
        reg: Registry,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
        new_scale: Any,
        manager: str = "",
    ) -> Response:
        await openapi.ensure_loaded()

        def mutate(cur: dict[str, Any]) -> dict[str, Any]:
            old = copy.deepcopy(cur)
            scale = new_scale(to_scale(res, cur))
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.invalid(
                    "Scale",
                    name,
                    [
                        errors.Cause(
                            "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                    "autoscaling",
                )
            rv = (scale.get("metadata") or {}).get("resourceVersion")
            if rv:
                meta(cur)["resourceVersion"] = rv
            cur.setdefault("spec", {})["replicas"] = replicas
            return managedfields.track_update(res, old, cur, manager or "unknown", "scale")

        result = await reg.update(res, ns, name, mutate, WriteOptions.parse(params), "scale")
        return json_response(to_scale(res, result.obj))

    async def update(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        body = decode_body(await request.body(), request.headers.get("content-type"))
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was not a Scale object")
        return await self._write(reg, res, ns, name, params, lambda _s: body, _manager(request, params))

    async def patch(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        ct = request.headers.get("content-type")
        patch = decode_body(await request.body(), ct, PATCH_TYPES)
        fn = patch_function(patch, media_type(ct), "Scale")
        return await self._write(reg, res, ns, name, params, fn, _manager(request, params))


class BindingSubresource(Subresource):
    """`pods/<name>/binding`: sets spec.nodeName once (409 when already bound)."""

    verbs = ("create",)

    async def create(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        body = decode_body(await request.body(), request.headers.get("content-type"))
        target = ((body or {}).get("target") or {}) if isinstance(body, dict) else {}
        node = target.get("name")
        if not node:
            raise errors.invalid(
                "Binding",
                name,
                [errors.Cause("target.name", "Required value", "FieldValueRequired")],
            )
        if target.get("kind", "Node") != "Node":
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

        def bind(cur: dict[str, Any]) -> dict[str, Any]:
            m, spec = cur.get("metadata", {}), cur.setdefault("spec", {})
            if m.get("deletionTimestamp"):
                raise errors.conflict(
                    "pods/binding",
                    name,
                    why=f"pod {name} is being deleted, cannot be assigned to a host",
                )
            if spec.get("nodeName"):
                raise errors.conflict(
                    "pods/binding",
                    name,
                    why=f'pod {name} is already assigned to node "{spec["nodeName"]}"',
                )
            spec["nodeName"] = node
            _set_scheduled(cur)
            return cur

        await reg.update(res, ns, name, bind, WriteOptions.parse(params), "binding")
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


class NotWiredSubresource(Subresource):
    """Subresources served by the kubelet that tinykube does not proxy yet (portforward)."""

    verbs = ("get", "create", "list")

    async def _answer(self, res: ResourceInfo, name: str, what: str) -> Response:
        raise errors.StatusError(
            503,
            "ServiceUnavailable",
            f'{what} for pod "{name}" is not available: no kubelet serves this pod yet',
            {"name": name, "kind": res.plural},
        )

    async def get(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return await self._answer(res, name, request.url.path.rsplit("/", 1)[-1])

    create = get
    list = get


class LogSubresource(Subresource):
    """`pods/<name>/log`: the container's log, streamed from the pod's kubelet."""

    verbs = ("get",)

    async def get(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        return await proxy.pod_logs(reg, request, ns or "", name, params)


class ExecSubresource(Subresource):
    """`pods/<name>/exec` without a WebSocket upgrade (kubectl's SPDY fallback): the checks, then 400.

    The WebSocket upgrade itself is routed to `proxy.exec_websocket` by the app.
    """

    verbs = ("get", "create")

    async def get(
        self,
        reg: Registry,
        request: Request,
        res: ResourceInfo,
        ns: str | None,
        name: str,
        params: dict[str, str],
    ) -> Response:
        await proxy.exec_target(reg, ns or "", name, params.get("container", ""))
        raise errors.bad_request(
            "Upgrade request required: tinykube serves pods/exec over WebSocket only "
            "(subprotocol v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not supported"
        )

    create = get


SUBRESOURCES: dict[str, Subresource] = {
    "status": StatusSubresource(),
    "scale": ScaleSubresource(),
    "binding": BindingSubresource(),
    "finalize": FinalizeSubresource(),
    "log": LogSubresource(),
    "exec": ExecSubresource(),
    "portforward": NotWiredSubresource(),
    "token": TokenSubresource(),
}
