"""networking.k8s.io/v1 strategies: Ingress, IngressClass, IPAddress and ServiceCIDR.

Validation follows pkg/apis/networking/validation; an Ingress created without a class gets the
default IngressClass, as the DefaultIngressClass admission plugin does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.validation import FieldErrorTuple
from apiserver.strategy import Strategy

if TYPE_CHECKING:
    pass

__all__ = [
    "ANNOTATION_INGRESS_CLASS",
    "ANNOTATION_IS_DEFAULT_CLASS",
    "IPAddressStrategy",
    "IngressClassStrategy",
    "IngressStrategy",
    "ServiceCIDRStrategy",
    "default_ingress_class",
]

ANNOTATION_INGRESS_CLASS = "kubernetes.io/ingress.class"
ANNOTATION_IS_DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_MAX_CONTROLLER_LEN = 250


def _json(value: Any) -> str:
    """A bad value as field errors render non-scalar values (JSON)."""
    return orjson.dumps(value).decode()


def _causes(found: Iterable[FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def _invalid_json(path: str, value: Any, detail: str) -> FieldErrorTuple:
    return (path, "FieldValueInvalid", f"Invalid value: {_json(value)}: {detail}")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- Ingress ---------------------------------------------------------------------------------


def _validate_backend(backend: dict[str, Any], path: str) -> list[FieldErrorTuple]:
    """validateIngressBackend: exactly one of service or resource; a service needs a name and a port."""
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [validation.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        return _typed_reference(_dict(resource), f"{path}.resource")
    if service is None:
        return [validation.invalid(path, "", "resource or service backend is required")]
    service = _dict(service)
    errs: list[FieldErrorTuple] = []
    name = service.get("name") or ""
    if not name:
        errs.append(validation.required(f"{path}.service.name"))
    else:
        errs += [validation.invalid(f"{path}.service.name", name, m) for m in validation.is_dns1035_label(name)]
    port = _dict(service.get("port"))
    port_name, number = port.get("name") or "", port.get("number") or 0
    if port_name and number:
        errs.append(validation.invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [
            validation.invalid(f"{path}.service.port.name", port_name, m)
            for m in validation.is_valid_port_name(port_name)
        ]
    elif number:
        errs += [
            validation.invalid(f"{path}.service.port.number", number, m)
            for m in validation.is_valid_port_num(int(number))
        ]
    else:
        errs.append(validation.required(path, "port name or number is required"))
    return errs


def _typed_reference(ref: dict[str, Any], path: str) -> list[FieldErrorTuple]:
    errs: list[FieldErrorTuple] = []
    group = ref.get("apiGroup")
    if group is not None:
        errs += [validation.invalid(f"{path}.apiGroup", group, m) for m in validation.is_dns1123_subdomain(group)]
    for key in ("kind", "name"):
        value = ref.get(key) or ""
        if not value:
            errs.append(validation.required(f"{path}.{key}"))
        else:
            errs += [validation.invalid(f"{path}.{key}", value, m) for m in validation.is_path_segment_name(value)]
    return errs


def _validate_http_path(item: dict[str, Any], path: str) -> list[FieldErrorTuple]:
    """validateHTTPIngressPath: pathType required and known; Exact and Prefix paths absolute and clean."""
    path_type = item.get("pathType")
    if path_type is None:
        return [validation.required(f"{path}.pathType", "pathType must be specified")]
    value = item.get("path") or ""
    errs: list[FieldErrorTuple] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(validation.invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    errs.append(validation.invalid(f"{path}.path", value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errs.append(validation.invalid(f"{path}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(validation.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(validation.not_supported(f"{path}.pathType", path_type, _PATH_TYPES))
    return errs + _validate_backend(_dict(item.get("backend")), f"{path}.backend")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _validate_rules(rules: list[Any], path: str) -> list[FieldErrorTuple]:
    errs: list[FieldErrorTuple] = []
    for i, rule in enumerate(rules):
        rule = _dict(rule)
        host = rule.get("host") or ""
        if host:
            if _is_ip(host):
                errs.append(validation.invalid(f"{path}[{i}].host", host, "must be a DNS name, not an IP address"))
            check = validation.is_wildcard_dns1123_subdomain if "*" in host else validation.is_dns1123_subdomain
            errs += [validation.invalid(f"{path}[{i}].host", host, m) for m in check(host)]
        http = rule.get("http")
        if http is not None:
            paths = _dict(http).get("paths") or []
            if not paths:
                errs.append(validation.required(f"{path}[{i}].http.paths"))
            for j, item in enumerate(paths):
                errs += _validate_http_path(_dict(item), f"{path}[{i}].http.paths[{j}]")
    return errs


def _validate_ingress_spec(spec: dict[str, Any]) -> list[FieldErrorTuple]:
    """ValidateIngressSpec."""
    errs: list[FieldErrorTuple] = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        errs.append(_invalid_json("spec", spec.get("rules"), "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _validate_backend(_dict(spec["defaultBackend"]), "spec.defaultBackend")
    if rules:
        errs += _validate_rules(rules, "spec.rules")
    for i, tls in enumerate(spec.get("tls") or []):
        tls = _dict(tls)
        for j, host in enumerate(tls.get("hosts") or []):
            check = validation.is_wildcard_dns1123_subdomain if "*" in host else validation.is_dns1123_subdomain
            errs += [validation.invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in check(host)]
        secret = tls.get("secretName") or ""
        if secret:
            errs += [
                validation.invalid(f"spec.tls[{i}].secretName", secret, m)
                for m in validation.is_dns1123_subdomain(secret)
            ]
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errs += [
            validation.invalid("spec.ingressClassName", class_name, m)
            for m in validation.is_dns1123_subdomain(class_name)
        ]
    return errs


def _validate_lb_status(status: Any) -> list[FieldErrorTuple]:
    """ValidateIngressLoadBalancerStatus: IPs are IPs, hostnames are DNS names."""
    errs: list[FieldErrorTuple] = []
    ingress = _dict(_dict(status).get("loadBalancer")).get("ingress") or []
    for i, item in enumerate(ingress if isinstance(ingress, list) else []):
        item, path = _dict(item), f"status.loadBalancer.ingress[{i}]"
        if item.get("ip"):
            errs += [validation.invalid(f"{path}.ip", item["ip"], m) for m in validation.is_valid_ip(item["ip"])]
        if item.get("hostname"):
            host = item["hostname"]
            errs += [validation.invalid(f"{path}.hostname", host, m) for m in validation.is_dns1123_subdomain(host)]
            if _is_ip(host):
                errs.append(validation.invalid(f"{path}.hostname", host, "must be a DNS name, not an IP address"))
    return errs


def default_ingress_class(classes: Iterable[dict[str, Any]]) -> str | None:
    """The default IngressClass: annotated is-default-class "true"; the newest wins, then the first by name."""
    defaults = [
        c
        for c in classes
        if ((c.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_IS_DEFAULT_CLASS) == "true"
    ]
    if not defaults:
        return None
    defaults.sort(key=lambda c: c["metadata"].get("name", ""))
    defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp", ""), reverse=True)
    return str(defaults[0]["metadata"].get("name", ""))


class IngressStrategy(Strategy):
    """Ingresses: generation tracks spec, status through /status, the default class on create."""

    tracks_generation = True

    def initial_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"loadBalancer": {}}

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        return _causes(_validate_ingress_spec(_dict(obj.get("spec"))) + _validate_lb_status(obj.get("status")))


# --- IngressClass ----------------------------------------------------------------------------


def _validate_parameters(params: Any) -> list[FieldErrorTuple]:
    """validateIngressClassParametersReference."""
    if params is None:
        return []
    params, path = _dict(params), "spec.parameters"
    errs: list[FieldErrorTuple] = []
    group = params.get("apiGroup")
    if group is not None:
        errs += [validation.invalid(f"{path}.apiGroup", group, m) for m in validation.is_dns1123_subdomain(group)]
    for key in ("kind", "name"):
        value = params.get(key) or ""
        if not value:
            errs.append(validation.required(f"{path}.{key}"))
        else:
            errs += [validation.invalid(f"{path}.{key}", value, m) for m in validation.is_path_segment_name(value)]
    scope = params.get("scope")
    if scope is None:
        errs.append(validation.required(f"{path}.scope"))
        return errs
    if scope not in ("Cluster", "Namespace"):
        errs.append(validation.not_supported(f"{path}.scope", scope, ("Cluster", "Namespace")))
    elif scope == "Namespace":
        namespace = params.get("namespace")
        if namespace is None:
            errs.append(validation.required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        else:
            errs += [
                validation.invalid(f"{path}.namespace", namespace, m) for m in validation.is_dns1123_label(namespace)
            ]
    elif params.get("namespace") is not None:
        errs.append(validation.forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errs


class IngressClassStrategy(Strategy):
    """IngressClasses: cluster-scoped; spec.controller required and immutable."""

    tracks_generation = True

    def default(self, obj: dict[str, Any]) -> None:
        params = _dict(obj.get("spec")).get("parameters")
        if isinstance(params, dict):
            params.setdefault("scope", "Cluster")

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        spec = _dict(obj.get("spec"))
        controller = spec.get("controller") or ""
        errs: list[FieldErrorTuple] = []
        if not controller:
            errs.append(validation.required("spec.controller"))
        else:
            if len(controller) > _MAX_CONTROLLER_LEN:
                errs.append(validation.too_long("spec.controller", _MAX_CONTROLLER_LEN))
            errs += validation.is_domain_prefixed_path("spec.controller", controller)
        return _causes(errs + _validate_parameters(spec.get("parameters")))

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a, b = _dict(new.get("spec")).get("controller"), _dict(old.get("spec")).get("controller")
        if a != b:
            return _causes([validation.invalid("spec.controller", a, "field is immutable")])
        return []


# --- IPAddress and ServiceCIDR -----------------------------------------------------------------


def _ip_address_name(name: str) -> list[str]:
    """ValidateIPAddressName: the decimal form of an IP, canonical."""
    errs = validation.is_valid_ip(name)
    if not errs and str(ipaddress.ip_address(name)) != name:
        errs.append(f"must be in canonical form ({validation.go_quote(str(ipaddress.ip_address(name)))})")
    return errs


class IPAddressStrategy(Strategy):
    """IPAddresses: named by the IP they hold, with an immutable parentRef (the Service that holds it)."""

    name_validator = staticmethod(_ip_address_name)

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        ref = _dict(obj.get("spec")).get("parentRef")
        if ref is None:
            return _causes([validation.required("spec.parentRef")])
        ref, path = _dict(ref), "spec.parentRef"
        errs: list[FieldErrorTuple] = []
        if ref.get("group"):
            group = ref["group"]
            errs += [validation.invalid(f"{path}.group", group, m) for m in validation.is_dns1123_subdomain(group)]
        for key in ("resource", "name"):
            value = ref.get(key) or ""
            if not value:
                errs.append(validation.required(f"{path}.{key}"))
            else:
                errs += [validation.invalid(f"{path}.{key}", value, m) for m in validation.is_path_segment_name(value)]
        if ref.get("namespace"):
            errs += [
                validation.invalid(f"{path}.namespace", ref["namespace"], m)
                for m in validation.is_path_segment_name(ref["namespace"])
            ]
        return _causes(errs)

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        a, b = _dict(new.get("spec")).get("parentRef"), _dict(old.get("spec")).get("parentRef")
        if a != b:
            return _causes([_invalid_json("spec.parentRef", a, "field is immutable")])
        return []


def _validate_cidrs(cidrs: Any) -> list[FieldErrorTuple]:
    """validateServiceCIDRSpec: one or two valid CIDRs, one per IP family."""
    path = "spec.cidrs"
    if not cidrs:
        return [validation.required(path, "at least one CIDR required")]
    if not isinstance(cidrs, list):
        return [_invalid_json(path, cidrs, "must be a list")]
    if len(cidrs) > 2:
        return [_invalid_json(path, {"cidrs": cidrs}, "may only hold up to 2 values")]
    errs = [
        validation.invalid(f"{path}[{i}]", c, m) for i, c in enumerate(cidrs) for m in validation.is_valid_cidr(str(c))
    ]
    if len(cidrs) == 2 and not errs:
        families = {ipaddress.ip_network(c, strict=False).version for c in cidrs}
        if len(families) == 1:
            errs.append(
                _invalid_json(
                    path,
                    cidrs,
                    "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
                )
            )
    return errs


class ServiceCIDRStrategy(Strategy):
    """ServiceCIDRs: the ranges cluster IPs come from; cidrs may only grow from one family to two."""

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        return _causes(_validate_cidrs(_dict(obj.get("spec")).get("cidrs")))

    def validate_update(self, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
        now = _dict(new.get("spec")).get("cidrs") or []
        before = _dict(old.get("spec")).get("cidrs") or []
        errs: list[FieldErrorTuple] = []
        if len(now) == len(before):
            errs += [
                validation.invalid(f"spec.cidrs[{i}]", now[i], "field is immutable")
                for i in range(len(before))
                if now[i] != before[i]
            ]
        elif len(before) == 1 and len(now) == 2:
            if now[0] != before[0]:
                errs.append(validation.invalid("spec.cidrs[0]", now[0], "field is immutable"))
        else:
            errs.append(_invalid_json("spec.cidrs", now, "field is immutable"))
        return _causes(errs)
