"""TokenRequest (`POST …/serviceaccounts/NAME/token`, authentication.k8s.io/v1): a fresh ServiceAccount
token with the audiences and lifetime asked for, optionally bound to a Pod, Secret or Node, as upstream's
TokenREST.Create."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from apimachinery import errors, validation
from apimachinery.errors import Cause
from apimachinery.meta import format_time
from apiserver.authn.serviceaccount import (
    EXPIRATION_EXTENSION_SECONDS,
    WARN_ONLY_EXPIRATION_SECONDS,
    ObjectGetter,
    TokenSigner,
    claims,
    expiration_timestamp,
)

__all__ = ["DEFAULT_EXPIRATION_SECONDS", "TokenIssuer"]

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
GROUP = "authentication.k8s.io"


def _invalid(name: str, path: str, value: Any, why: str) -> errors.StatusError:
    field, reason, message = validation.invalid(path, value, why)
    return errors.invalid("TokenRequest", name, [Cause(field, message, reason)], GROUP)


@dataclass(frozen=True)
class TokenIssuer:
    """Makes tokens: the signer, the API's audiences and upstream's expiration rules."""

    signer: TokenSigner
    api_audiences: tuple[str, ...]
    extend_expiration: bool = True  # --service-account-extend-token-expiration
    max_expiration: int = 0  # --service-account-max-token-expiration in seconds (0: none)

    async def request(
        self, getter: ObjectGetter, namespace: str, name: str, body: Any
    ) -> tuple[dict[str, Any], list[str]]:
        """The TokenRequest answered (with status.token), and warnings for the response."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of a TokenRequest must be a JSON object")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise _invalid(name, "metadata.name", meta["name"], "must match the service account name if specified")
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise _invalid(
                name, "metadata.namespace", meta["namespace"], "must match the service account namespace if specified"
            )
        spec = dict(body.get("spec") or {})
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = DEFAULT_EXPIRATION_SECONDS
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise errors.bad_request(f"spec.expirationSeconds: must be an integer, not {seconds!r}")
        if seconds < MIN_EXPIRATION_SECONDS:
            raise _invalid(name, "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes")
        if seconds > MAX_EXPIRATION_SECONDS:
            why = "may not specify a duration larger than 2^32 seconds"
            raise _invalid(name, "spec.expirationSeconds", seconds, why)
        sa = await getter.get("serviceaccounts", namespace, name)
        if sa is None:
            raise errors.not_found("serviceaccounts", name)
        warnings: list[str] = []
        if self.max_expiration and seconds > self.max_expiration:
            warnings.append(f"requested expiration of {seconds} seconds shortened to {self.max_expiration} seconds")
            seconds = self.max_expiration
        audiences = [str(a) for a in spec.get("audiences") or []] or list(self.api_audiences)
        pod = node = secret = None
        ref = spec.get("boundObjectRef")
        if ref:
            pod, node, secret = await self._bound(getter, namespace, name, ref)
        exp, warn_after = seconds, 0
        if (
            self.extend_expiration
            and pod is not None
            and seconds == WARN_ONLY_EXPIRATION_SECONDS
            and set(audiences) <= set(self.api_audiences)
        ):
            warn_after, exp = seconds, max(EXPIRATION_EXTENSION_SECONDS, self.max_expiration)
        now = time.time()
        token_claims = claims(
            sa,
            issuer=self.signer.issuer,
            audiences=audiences,
            expiration_seconds=exp,
            pod=pod,
            node=node,
            secret=secret,
            warn_after=warn_after,
            now=now,
        )
        if node is not None and pod is None:
            token_claims["kubernetes.io"]["node"] = {
                "name": node["metadata"]["name"],
                "uid": node["metadata"].get("uid", ""),
            }
        spec.update(audiences=audiences, expirationSeconds=seconds)
        out = {
            "kind": "TokenRequest",
            "apiVersion": f"{GROUP}/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": format_time(dt.datetime.fromtimestamp(now, dt.UTC)),
            },
            "spec": spec,
            "status": {
                "token": self.signer.sign(token_claims),
                "expirationTimestamp": expiration_timestamp(seconds, now),
            },
        }
        return out, warnings

    async def _bound(
        self, getter: ObjectGetter, namespace: str, name: str, ref: Any
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
        if not isinstance(ref, dict):
            raise errors.bad_request("spec.boundObjectRef must be an object")
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        ref_name = str(ref.get("name") or "")
        pod = node = secret = None
        if group == "" and kind == "Pod":
            pod = await getter.get("pods", namespace, ref_name)
            if pod is None:
                raise errors.not_found("pods", ref_name)
            running_as = (pod.get("spec") or {}).get("serviceAccountName", "")
            if running_as != name:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{name}" to pod running with different serviceaccount name.'
                )
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                node = await getter.get("nodes", "", node_name)
            target = pod
        elif group == "" and kind == "Secret":
            secret = await getter.get("secrets", namespace, ref_name)
            if secret is None:
                raise errors.not_found("secrets", ref_name)
            target = secret
        elif group == "" and kind == "Node":
            node = await getter.get("nodes", "", ref_name)
            if node is None:
                raise errors.not_found("nodes", ref_name)
            target = node
        else:
            gvk = f"{group}/{api_version.rsplit('/', 1)[-1]}, Kind={kind}"
            raise errors.bad_request(f"cannot bind token to object of type {gvk}")
        uid = (target.get("metadata") or {}).get("uid", "")
        if ref.get("uid") and ref["uid"] != uid:
            why = (
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record ({uid}). "
                "The object might have been deleted and then recreated"
            )
            raise errors.conflict(kind, ref_name, group, why)
        return pod, node, secret
