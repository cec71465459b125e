"""admissionregistration.k8s.io/v1 strategies: MutatingWebhookConfiguration and
ValidatingWebhookConfiguration, defaulted as SetDefaults_*Webhook and validated as
pkg/apis/admissionregistration/validation and k8s.io/apiserver/pkg/util/webhook do."""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any, ClassVar
from urllib.parse import urlsplit

from apimachinery import validation
from apimachinery.errors import Cause
from apimachinery.selectors import SelectorError, selector_from_label_selector
from apimachinery.validation import FieldErrorTuple
from apiserver.admission.webhook.conditions import compile_error
from apiserver.strategy import Strategy

__all__ = ["MutatingWebhookConfigurationStrategy", "ValidatingWebhookConfigurationStrategy", "default_webhook"]

_FAILURE_POLICIES = ("Fail", "Ignore")
_MATCH_POLICIES = ("Equivalent", "Exact")
_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_REINVOCATION = ("IfNeeded", "Never")
_SCOPES = ("*", "Cluster", "Namespaced")
_REVIEW_VERSIONS = ("v1", "v1beta1")
_URL_FORM = "; desired format: https://host[/path]"
_NO_OTHER = "if '*' is present, must not specify other"


def default_webhook(hook: dict[str, Any], mutating: bool) -> None:
    """SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook with the rule and service defaults."""
    hook.setdefault("failurePolicy", "Fail")
    hook.setdefault("matchPolicy", "Equivalent")
    if hook.get("namespaceSelector") is None:
        hook["namespaceSelector"] = {}
    if hook.get("objectSelector") is None:
        hook["objectSelector"] = {}
    hook.setdefault("timeoutSeconds", 10)
    if mutating:
        hook.setdefault("reinvocationPolicy", "Never")
    for rule in hook.get("rules") or []:
        if isinstance(rule, dict):
            rule.setdefault("scope", "*")
    service = (hook.get("clientConfig") or {}).get("service") if isinstance(hook.get("clientConfig"), dict) else None
    if isinstance(service, dict):
        service.setdefault("port", 443)


def _causes(found: list[FieldErrorTuple]) -> list[Cause]:
    return [Cause(path, msg, reason) for path, reason, msg in found]


def _fully_qualified_errors(path: str, name: Any) -> list[FieldErrorTuple]:
    if not name:
        return [validation.required(path)]
    msgs = validation.is_dns1123_subdomain(str(name))
    if msgs:
        return [validation.invalid(path, name, ",".join(msgs))]
    if len(str(name).split(".")) < 3:
        return [validation.invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _list_of_strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _rule_errors(rule: dict[str, Any], path: str) -> list[FieldErrorTuple]:
    """validateRuleWithOperations."""
    errs: list[FieldErrorTuple] = []
    ops = _list_of_strings(rule.get("operations"))
    if not ops:
        errs.append(validation.required(f"{path}.operations"))
    if len(ops) > 1 and "*" in ops:
        errs.append(validation.invalid(f"{path}.operations", ops, f"{_NO_OTHER} operations"))
    for i, op in enumerate(ops):
        if op not in _OPERATIONS:
            errs.append(validation.not_supported(f"{path}.operations[{i}]", op, _OPERATIONS))
    groups = rule.get("apiGroups")
    if not isinstance(groups, list) or not groups:
        errs.append(validation.required(f"{path}.apiGroups"))
    elif len(groups) > 1 and "*" in groups:
        errs.append(validation.invalid(f"{path}.apiGroups", groups, f"{_NO_OTHER} API groups"))
    versions = _list_of_strings(rule.get("apiVersions"))
    if not versions:
        errs.append(validation.required(f"{path}.apiVersions"))
    if len(versions) > 1 and "*" in versions:
        errs.append(validation.invalid(f"{path}.apiVersions", versions, f"{_NO_OTHER} API versions"))
    errs += [validation.required(f"{path}.apiVersions[{i}]") for i, v in enumerate(versions) if not v]
    errs += _resources_errors(_list_of_strings(rule.get("resources")), f"{path}.resources")
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errs.append(validation.not_supported(f"{path}.scope", scope, _SCOPES))
    return errs


def _resources_errors(resources: list[str], path: str) -> list[FieldErrorTuple]:
    """validateResources (subresources allowed)."""
    errs: list[FieldErrorTuple] = []
    if not resources:
        errs.append(validation.required(path))
    with_wild_sub: set[str] = set()
    sub_with_wild_res: set[str] = set()
    double = single = plain = False
    for i, item in enumerate(resources):
        if not item:
            errs.append(validation.required(f"{path}[{i}]"))
            continue
        double |= item == "*/*"
        single |= item == "*"
        res, slash, sub = item.partition("/")
        if not slash:
            plain = item != "*"
            continue
        if res in with_wild_sub:
            errs.append(validation.invalid(f"{path}[{i}]", item, f"if '{res}/*' is present, must not specify {item}"))
        if sub in sub_with_wild_res:
            errs.append(validation.invalid(f"{path}[{i}]", item, f"if '*/{sub}' is present, must not specify {item}"))
        if sub == "*":
            with_wild_sub.add(res)
        if res == "*":
            sub_with_wild_res.add(sub)
    if len(resources) > 1 and double:
        errs.append(validation.invalid(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        errs.append(validation.invalid(path, resources, f"{_NO_OTHER} resources without subresources"))
    return errs


def _url_errors(path: str, url: str) -> list[FieldErrorTuple]:
    """ValidateWebhookURL (https forced)."""
    try:
        u = urlsplit(url)
    except ValueError as e:
        return [validation.required(path, f"url must be a valid URL: {e}{_URL_FORM}")]
    errs: list[FieldErrorTuple] = []
    if u.scheme != "https":
        errs.append(validation.invalid(path, u.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    if not u.netloc:
        errs.append(validation.invalid(path, u.netloc, "host must be specified" + _URL_FORM))
    if "@" in u.netloc:
        user = u.netloc.rpartition("@")[0]
        errs.append(validation.invalid(path, user, "user information is not permitted in the URL"))
    if u.fragment:
        errs.append(validation.invalid(path, u.fragment, "fragments are not permitted in the URL"))
    if u.query:
        errs.append(validation.invalid(path, u.query, "query parameters are not permitted in the URL"))
    return errs


def _service_errors(path: str, svc: dict[str, Any]) -> list[FieldErrorTuple]:
    """ValidateWebhookService."""
    errs: list[FieldErrorTuple] = []
    if not svc.get("name"):
        errs.append(validation.required(f"{path}.name"))
    if not svc.get("namespace"):
        errs.append(validation.required(f"{path}.namespace"))
    port = svc.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errs.append(
            validation.invalid(f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive")
        )
    url_path = svc.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return errs
    if url_path == "//":
        return [*errs, validation.invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        errs.append(validation.invalid(f"{path}.path", url_path, "must start with a '/'"))
    for i, step in enumerate(url_path[1:].removesuffix("/").split("/")):
        if not step:
            errs.append(validation.invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        for failure in validation.is_dns1123_subdomain(step):
            errs.append(validation.invalid(f"{path}.path", url_path, f"segment[{i}]: {failure}"))
    return errs


def _selector_errors(path: str, selector: Any) -> list[FieldErrorTuple]:
    if selector is None:
        return []
    try:
        selector_from_label_selector(selector)
    except SelectorError as e:
        return [validation.invalid(path, selector, str(e))]
    return []


def _review_version_errors(path: str, versions: Any) -> list[FieldErrorTuple]:
    """validateAdmissionReviewVersions."""
    versions = _list_of_strings(versions)
    if not versions:
        return [validation.required(path, f"must specify one of {', '.join(_REVIEW_VERSIONS)}")]
    errs: list[FieldErrorTuple] = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        if v in seen:
            errs.append(validation.invalid(f"{path}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
        errs += [validation.invalid(f"{path}[{i}]", v, m) for m in validation.is_dns1035_label(v)]
    if not seen & set(_REVIEW_VERSIONS):
        errs.append(validation.invalid(path, versions, f"must include at least one of {', '.join(_REVIEW_VERSIONS)}"))
    return errs


def _match_condition_errors(path: str, conditions: Any) -> list[FieldErrorTuple]:
    """Names present, unique and qualified; expressions present and compiling."""
    errs: list[FieldErrorTuple] = []
    seen: set[str] = set()
    for i, cond in enumerate(conditions if isinstance(conditions, list) else []):
        if not isinstance(cond, dict):
            continue
        name = cond.get("name") or ""
        if not name:
            errs.append(validation.required(f"{path}[{i}].name"))
        elif name in seen:
            errs.append((f"{path}[{i}].name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        else:
            errs += [validation.invalid(f"{path}[{i}].name", name, m) for m in validation.is_qualified_name(name)]
        seen.add(name)
        expression = cond.get("expression")
        if not expression:
            errs.append(validation.required(f"{path}[{i}].expression"))
        elif why := compile_error(str(expression)):
            errs.append(validation.invalid(f"{path}[{i}].expression", expression, f"compilation failed: {why}"))
    if isinstance(conditions, list) and len(conditions) > 64:
        errs.append((path, "FieldValueTooMany", f"Too many: {len(conditions)}: must have at most 64 items"))
    return errs


def _webhook_errors(hook: dict[str, Any], path: str, mutating: bool) -> list[FieldErrorTuple]:
    errs = _fully_qualified_errors(f"{path}.name", hook.get("name"))
    for i, rule in enumerate(hook.get("rules") or []):
        if isinstance(rule, dict):
            errs += _rule_errors(rule, f"{path}.rules[{i}]")
    for field_name, allowed in (("failurePolicy", _FAILURE_POLICIES), ("matchPolicy", _MATCH_POLICIES)):
        value = hook.get(field_name)
        if value is not None and value not in allowed:
            errs.append(validation.not_supported(f"{path}.{field_name}", value, allowed))
    side = hook.get("sideEffects")
    if side is None:
        errs.append(validation.required(f"{path}.sideEffects", f"must specify one of {', '.join(_SIDE_EFFECTS)}"))
    elif side not in _SIDE_EFFECTS:
        errs.append(validation.not_supported(f"{path}.sideEffects", side, _SIDE_EFFECTS))
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        errs.append(
            validation.invalid(f"{path}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 seconds")
        )
    errs += _selector_errors(f"{path}.namespaceSelector", hook.get("namespaceSelector"))
    errs += _selector_errors(f"{path}.objectSelector", hook.get("objectSelector"))
    reinvocation = hook.get("reinvocationPolicy")
    if mutating and reinvocation is not None and reinvocation not in _REINVOCATION:
        errs.append(validation.not_supported(f"{path}.reinvocationPolicy", reinvocation, _REINVOCATION))
    errs += _client_config_errors(hook.get("clientConfig"), f"{path}.clientConfig")
    errs += _match_condition_errors(f"{path}.matchConditions", hook.get("matchConditions"))
    return errs


def _client_config_errors(cc: Any, path: str) -> list[FieldErrorTuple]:
    cc = cc if isinstance(cc, dict) else {}
    url, svc = cc.get("url"), cc.get("service")
    if (url is None) == (svc is None):
        return [validation.required(path, "exactly one of url or service is required")]
    errs = _url_errors(f"{path}.url", str(url)) if url is not None else _service_errors(f"{path}.service", svc or {})
    bundle = cc.get("caBundle")
    if bundle:
        try:
            base64.b64decode(bundle, validate=True)
        except (binascii.Error, ValueError, TypeError):
            errs.append(validation.invalid(f"{path}.caBundle", "<bytes>", "illegal base64 data"))
    return errs


class _WebhookConfigurationStrategy(Strategy):
    """Shared by both kinds: defaults per webhook, generation bumped when `webhooks` change."""

    tracks_generation = True
    mutating: ClassVar[bool] = False

    def default(self, obj: dict[str, Any]) -> None:
        for hook in obj.get("webhooks") or []:
            if isinstance(hook, dict):
                default_webhook(hook, self.mutating)

    def validate_semantics(self, obj: dict[str, Any]) -> list[Cause]:
        errs: list[FieldErrorTuple] = []
        names: set[str] = set()
        hooks = obj.get("webhooks")
        for i, hook in enumerate(hooks if isinstance(hooks, list) else []):
            if not isinstance(hook, dict):
                continue
            path = f"webhooks[{i}]"
            errs += _webhook_errors(hook, path, self.mutating)
            errs += _review_version_errors(f"{path}.admissionReviewVersions", hook.get("admissionReviewVersions"))
            name = hook.get("name")
            if name and name in names:
                errs.append((f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
            names.add(name)
        return _causes(errs)

    def spec_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"webhooks": copy.deepcopy(obj.get("webhooks"))}


class MutatingWebhookConfigurationStrategy(_WebhookConfigurationStrategy):
    """MutatingWebhookConfigurations (reinvocationPolicy defaults to Never)."""

    mutating = True


class ValidatingWebhookConfigurationStrategy(_WebhookConfigurationStrategy):
    """ValidatingWebhookConfigurations."""
