"""ServiceAccount tokens: JWTs signed with the service-account key (RS256), made by TokenRequest and
checked on every request, as upstream's bound service account tokens (pkg/serviceaccount).

A token says who it is for in its claims:

    {"iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:NS:NAME",
     "aud": [...], "exp": …, "iat": …, "nbf": …, "jti": "…",
     "kubernetes.io": {"namespace": NS, "serviceaccount": {"name", "uid"},
                       "pod": {"name", "uid"}, "node": {"name", "uid"},   (when bound to a pod)
                       "secret": {"name", "uid"},                          (when bound to a secret)
                       "warnafter": …}}                                    (when its life was extended)

and is valid while it has not expired, names one of the API's audiences, and the ServiceAccount (and
the pod or secret it is bound to) still exists with the same uid (an object deleted more than a minute
ago no longer counts, as upstream's leeway).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apimachinery.errors import StatusError
from apimachinery.meta import parse_time
from apimachinery.resources import by_plural
from apiserver.authn.bearer import TokenError, TokenResult
from apiserver.context import UserInfo

__all__ = [
    "EXPIRATION_EXTENSION_SECONDS",
    "LEEWAY",
    "WARN_ONLY_EXPIRATION_SECONDS",
    "ObjectGetter",
    "RegistryGetter",
    "ServiceAccountAuthenticator",
    "TokenSigner",
    "claims",
    "key_id",
    "load_public_keys",
    "service_account_user",
]

log = logging.getLogger("apiserver.authn")

WARN_ONLY_EXPIRATION_SECONDS = 60 * 60 + 7  # what the ServiceAccount admission plug-in asks for
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60  # how long such a token really lives (upstream's safe rollout)
LEEWAY = 60  # seconds of clock skew allowed (go-jose's DefaultLeeway)
SA_PREFIX = "system:serviceaccount:"
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def key_id(key: PublicKey) -> str:
    """The `kid` of a key, as upstream computes it: unpadded base64url of SHA-256 over the PKIX DER."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def load_public_keys(paths: Sequence[str | Path]) -> list[PublicKey]:
    """The verification keys of `--service-account-key-file` (public or private keys, PEM, any number per file)."""
    keys: list[PublicKey] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ValueError(f"reading service account key file {path}: {e.strerror}") from e
        for block in _PEM_BLOCK.finditer(data):
            pem, kind = block.group(0), block.group(1)
            if b"PRIVATE" in kind:
                private = serialization.load_pem_private_key(pem, None)
                key: Any = private.public_key()
            elif kind == b"CERTIFICATE":
                continue
            else:
                key = serialization.load_pem_public_key(pem)
            if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                raise ValueError(f"{path}: only RSA and ECDSA keys sign ServiceAccount tokens")
            keys.append(key)
        if not keys:
            raise ValueError(f"no public key in service account key file {path}")
    return keys


def service_account_user(namespace: str, name: str, uid: str, extra: dict[str, tuple[str, ...]]) -> UserInfo:
    """The user a ServiceAccount authenticates as (upstream's serviceaccount.UserInfo)."""
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
    return UserInfo(name=f"{SA_PREFIX}{namespace}:{name}", uid=uid, groups=groups, extra=extra)


def _ref(obj: dict[str, Any]) -> dict[str, str]:
    m = obj.get("metadata") or {}
    return {"name": m.get("name", ""), "uid": m.get("uid", "")}


def claims(
    sa: dict[str, Any],
    *,
    issuer: str,
    audiences: Sequence[str],
    expiration_seconds: int,
    pod: dict[str, Any] | None = None,
    node: dict[str, Any] | None = None,
    secret: dict[str, Any] | None = None,
    warn_after: int = 0,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a token for `sa` (bound to a pod, with its node, or to a secret), as upstream's Claims()."""
    iat = int(time.time() if now is None else now)
    m = sa.get("metadata") or {}
    private: dict[str, Any] = {"namespace": m.get("namespace", ""), "serviceaccount": _ref(sa)}
    if pod is not None:
        private["pod"] = _ref(pod)
        if node is not None:
            private["node"] = _ref(node)
    elif secret is not None:
        private["secret"] = _ref(secret)
    if warn_after:
        private["warnafter"] = iat + warn_after
    return {
        "aud": list(audiences),
        "exp": iat + expiration_seconds,
        "iat": iat,
        "iss": issuer,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
        "nbf": iat,
        "sub": f"{SA_PREFIX}{m.get('namespace', '')}:{m.get('name', '')}",
    }


class TokenSigner:
    """Signs tokens with `--service-account-signing-key-file` as `--service-account-issuer`."""

    def __init__(self, private_key_pem: bytes, issuer: str) -> None:
        key = serialization.load_pem_private_key(private_key_pem, None)
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "RS256"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
            self.algorithm = "ES256"
        else:
            raise ValueError("the service account signing key must be RSA or ECDSA P-256")
        self.key = key
        self.kid = key_id(key.public_key())
        self.issuer = issuer

    @classmethod
    def load(cls, path: str | Path, issuer: str) -> TokenSigner:
        """The signer of a PEM private key file."""
        try:
            return cls(Path(path).read_bytes(), issuer)
        except OSError as e:
            raise ValueError(f"reading service account signing key file {path}: {e.strerror}") from e

    def sign(self, token_claims: dict[str, Any]) -> str:
        """The signed JWT."""
        return jwt.encode(token_claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})


class ObjectGetter(Protocol):
    """Reads objects for the validator (the apiserver's own store)."""

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, None when it does not exist."""
        ...


class RegistryGetter:
    """Reads from the watch cache, then from etcd when the cache does not have it yet (a fresh object),
    as upstream's getter falls back from its informers to the API."""

    def __init__(self, reg: Any) -> None:
        self.reg = reg

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, None when it does not exist."""
        res = by_plural("", plural)
        assert res is not None
        for rv in ("0", ""):
            try:
                return await self.reg.get(res, namespace or None, name, rv)
            except StatusError as e:
                if e.code != 404:
                    raise
        return None


@dataclass(frozen=True)
class _Claims:
    namespace: str
    sa: dict[str, str]
    pod: dict[str, str] | None
    secret: dict[str, str] | None
    node: dict[str, str] | None
    jti: str


def _deleted_long_ago(obj: dict[str, Any], now: float) -> bool:
    ts = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not ts:
        return False
    try:
        return parse_time(ts).timestamp() < now - LEEWAY
    except ValueError:
        return True


class ServiceAccountAuthenticator:
    """Validates ServiceAccount JWTs of our issuers."""

    def __init__(
        self,
        keys: Sequence[PublicKey],
        issuers: Sequence[str],
        api_audiences: Sequence[str],
        getter: ObjectGetter,
    ) -> None:
        self.keys = {key_id(k): k for k in keys}
        self.issuers = tuple(issuers)
        self.api_audiences = tuple(api_audiences)
        self.getter = getter

    async def authenticate_token(self, token: str, audiences: Sequence[str]) -> TokenResult | None:
        """The ServiceAccount's user; None for a token that is not a JWT of ours; TokenError when invalid."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None  # not a JWT: some other authenticator's token
        if unverified.get("iss") not in self.issuers:
            return None
        wanted = tuple(audiences) or self.api_audiences
        payload = self._verify(token, header, wanted)
        found = payload.get("aud")
        token_auds = [found] if isinstance(found, str) else list(found or [])
        valid = tuple(a for a in wanted if a in token_auds)
        c = self._private(payload)
        extra = await self._check_objects(c)
        return TokenResult(service_account_user(c.namespace, c.sa["name"], c.sa["uid"], extra), valid)

    def _verify(self, token: str, header: dict[str, Any], audiences: Sequence[str]) -> dict[str, Any]:
        kid = header.get("kid")
        candidates = [self.keys[kid]] if kid in self.keys else list(self.keys.values())
        last: Exception | None = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=["RS256", "ES256"],
                    audience=list(audiences),
                    issuer=list(self.issuers),
                    leeway=LEEWAY,
                    options={"require": ["exp", "iat", "nbf", "sub"]},
                )
            except jwt.InvalidSignatureError as e:
                last = e
                continue
            except jwt.ExpiredSignatureError:
                raise TokenError("Token has expired.") from None
            except jwt.InvalidAudienceError:
                raise TokenError(
                    f"token audiences {_quote(jwt.decode(token, options={'verify_signature': False}).get('aud'))}"
                    f" is invalid for the target audiences {_quote(list(audiences))}"
                ) from None
            except jwt.PyJWTError as e:
                raise TokenError(f"Token could not be validated: {e}") from None
        log.debug("no service account key verifies the token: %s", last)
        raise TokenError("square/go-jose: error in cryptographic primitive")

    @staticmethod
    def _private(payload: dict[str, Any]) -> _Claims:
        k8s = payload.get("kubernetes.io")
        if not isinstance(k8s, dict) or not isinstance(k8s.get("serviceaccount"), dict):
            raise TokenError("Token could not be validated.")

        def ref(name: str) -> dict[str, str] | None:
            value = k8s.get(name)
            if value is None:
                return None
            if not isinstance(value, dict):
                raise TokenError("Token could not be validated.")
            return {"name": str(value.get("name") or ""), "uid": str(value.get("uid") or "")}

        sa = ref("serviceaccount")
        assert sa is not None
        namespace = str(k8s.get("namespace") or "")
        if not namespace or not sa["name"] or payload.get("sub") != f"{SA_PREFIX}{namespace}:{sa['name']}":
            raise TokenError("Token could not be validated.")
        return _Claims(namespace, sa, ref("pod"), ref("secret"), ref("node"), str(payload.get("jti") or ""))

    async def _check_objects(self, c: _Claims) -> dict[str, tuple[str, ...]]:
        now = time.time()
        ns = c.namespace
        sa = await self.getter.get("serviceaccounts", ns, c.sa["name"])
        if sa is None:
            raise TokenError(f'serviceaccounts "{c.sa["name"]}" not found')
        if _deleted_long_ago(sa, now):
            raise TokenError(f"ServiceAccount {ns}/{c.sa['name']} has been deleted")
        uid = (sa.get("metadata") or {}).get("uid", "")
        if uid != c.sa["uid"]:
            raise TokenError(f"ServiceAccount UID ({uid}) does not match claim ({c.sa['uid']})")
        extra: dict[str, tuple[str, ...]] = {}
        for what, ref, kind in (("secrets", c.secret, "Secret"), ("pods", c.pod, "Pod")):
            if ref is None:
                continue
            obj = await self.getter.get(what, ns, ref["name"])
            if obj is None or _deleted_long_ago(obj, now):
                raise TokenError("Token has been invalidated")
            uid = (obj.get("metadata") or {}).get("uid", "")
            if uid != ref["uid"]:
                raise TokenError(f"{kind} UID ({uid}) does not match claim ({ref['uid']})")
        if c.node is not None and c.pod is None and c.secret is None:  # a token bound to a node itself
            node = await self.getter.get("nodes", "", c.node["name"])
            if node is None or _deleted_long_ago(node, now):
                raise TokenError("Token has been invalidated")
            uid = (node.get("metadata") or {}).get("uid", "")
            if uid != c.node["uid"]:
                raise TokenError(f"Node UID ({uid}) does not match claim ({c.node['uid']})")
        if c.pod is not None:
            extra["authentication.kubernetes.io/pod-name"] = (c.pod["name"],)
            extra["authentication.kubernetes.io/pod-uid"] = (c.pod["uid"],)
        if c.node is not None:
            extra["authentication.kubernetes.io/node-name"] = (c.node["name"],)
            extra["authentication.kubernetes.io/node-uid"] = (c.node["uid"],)
        if c.jti:
            extra["authentication.kubernetes.io/credential-id"] = (f"JTI={c.jti}",)
        return extra


def _quote(values: Any) -> str:
    items = [values] if isinstance(values, str) else list(values or [])
    return "[" + " ".join(f'"{v}"' for v in items) + "]"


def expiration_timestamp(seconds_from_now: int, now: float | None = None) -> str:
    """RFC 3339 time `seconds_from_now` after now (TokenRequest's status.expirationTimestamp)."""
    base = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).replace(microsecond=0)
    return (base + dt.timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")
