"""Encryption at rest: upstream's EncryptionConfiguration (`--encryption-provider-config`).

A file as kube-apiserver takes it:

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets]
        providers:
          - aescbc: {keys: [{name: key1, secret: <base64 of 16, 24 or 32 bytes>}]}
          - identity: {}

For each listed resource the first provider's first key encrypts every write; reads pick the provider
and key by the value's prefix, so keys and providers can be rotated. Values are stored as upstream
stores them, so etcd data moves between tinykube and kube-apiserver:
- `aescbc`: `k8s:enc:aescbc:v1:<key name>:` + 16-byte IV + AES-CBC(PKCS#7-padded JSON);
- `aesgcm`: `k8s:enc:aesgcm:v1:<key name>:` + 12-byte nonce + AES-GCM(JSON) with the etcd key as
  authenticated data;
- `secretbox`: `k8s:enc:secretbox:v1:<key name>:` + 24-byte nonce + XSalsa20-Poly1305(JSON);
- `identity`: the plain JSON; listed after a cipher, it reads values written before encryption was on.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from apimachinery.resources import RESOURCES

__all__ = ["EncryptionConfigError", "Provider", "ResourceTransformers", "load_encryption_config"]

_ENCRYPTED = b"k8s:enc:"


class EncryptionConfigError(ValueError):
    """The --encryption-provider-config file is not a usable EncryptionConfiguration."""


class DecryptError(ValueError):
    """A stored value that no configured provider can read."""


class Provider(Protocol):
    """One provider of a resource's list: how values are written and read."""

    name: str

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """The value to store for `data` under etcd key `key`."""

    def decrypt(self, key: bytes, value: bytes) -> bytes | None:
        """The data of a stored value, or None when the value is not this provider's."""


class Identity:
    """Values stored as they are."""

    name = "identity"

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """The data itself."""
        return data

    def decrypt(self, key: bytes, value: bytes) -> bytes | None:
        """The value itself, unless it is encrypted (then another provider must read it)."""
        return None if value.startswith(_ENCRYPTED) else value


@dataclass(frozen=True)
class _Key:
    name: str
    secret: bytes


class _Cipher:
    """A provider with named keys: `k8s:enc:<name>:v1:<key>:` + the cipher's output."""

    name = ""

    def __init__(self, keys: Sequence[_Key]) -> None:
        self.keys = list(keys)
        self._by_prefix = {self._prefix(k): k for k in self.keys}

    def _prefix(self, key: _Key) -> bytes:
        return f"k8s:enc:{self.name}:v1:{key.name}:".encode()

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        """Seal `data` with the first key, behind its prefix."""
        first = self.keys[0]
        return self._prefix(first) + self.seal(first.secret, key, data)

    def decrypt(self, key: bytes, value: bytes) -> bytes | None:
        """Open a value sealed with one of this provider's keys; None when it is not this provider's."""
        if not value.startswith(f"k8s:enc:{self.name}:v1:".encode()):
            return None
        for prefix, k in self._by_prefix.items():
            if value.startswith(prefix):
                try:
                    return self.open(k.secret, key, value[len(prefix) :])
                except Exception as e:  # every library's own error: the value is not readable
                    raise DecryptError(f"{self.name} key {k.name} cannot decrypt the value of {key.decode()}") from e
        return None

    def seal(self, secret: bytes, key: bytes, data: bytes) -> bytes:
        """The cipher's output for data."""
        raise NotImplementedError

    def open(self, secret: bytes, key: bytes, sealed: bytes) -> bytes:
        """The data of the cipher's output."""
        raise NotImplementedError


class AESCBC(_Cipher):
    """Upstream's aescbc: a random IV, then AES-CBC over the PKCS#7-padded data."""

    name = "aescbc"

    def seal(self, secret: bytes, key: bytes, data: bytes) -> bytes:
        """IV + ciphertext."""
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def open(self, secret: bytes, key: bytes, sealed: bytes) -> bytes:
        """The unpadded plaintext."""
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(sealed) < 32 or len(sealed) % 16:
            raise ValueError("the stored data is not a whole number of AES blocks")
        dec = Cipher(algorithms.AES(secret), modes.CBC(sealed[:16])).decryptor()
        padded = dec.update(sealed[16:]) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()


class AESGCM(_Cipher):
    """Upstream's aesgcm: a random 12-byte nonce, AES-GCM with the etcd key as authenticated data."""

    name = "aesgcm"

    def seal(self, secret: bytes, key: bytes, data: bytes) -> bytes:
        """Nonce + ciphertext + tag."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _GCM

        nonce = os.urandom(12)
        return nonce + _GCM(secret).encrypt(nonce, data, key)

    def open(self, secret: bytes, key: bytes, sealed: bytes) -> bytes:
        """The plaintext, if the tag (over the etcd key too) checks."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _GCM

        return _GCM(secret).decrypt(sealed[:12], sealed[12:], key)


class SecretBox(_Cipher):
    """Upstream's secretbox: a random 24-byte nonce, then NaCl's XSalsa20-Poly1305 box."""

    name = "secretbox"

    def seal(self, secret: bytes, key: bytes, data: bytes) -> bytes:
        """Nonce + MAC + ciphertext."""
        import nacl.secret
        import nacl.utils

        nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
        return bytes(nacl.secret.SecretBox(secret).encrypt(data, nonce))

    def open(self, secret: bytes, key: bytes, sealed: bytes) -> bytes:
        """The plaintext, if the MAC checks."""
        import nacl.secret

        return bytes(nacl.secret.SecretBox(secret).decrypt(sealed))


_CIPHERS: dict[str, tuple[type[_Cipher], tuple[int, ...]]] = {
    "aescbc": (AESCBC, (16, 24, 32)),
    "aesgcm": (AESGCM, (16, 24, 32)),
    "secretbox": (SecretBox, (32,)),
}


class ResourceTransformers:
    """The providers of each resource: what storage calls on every value it writes or reads."""

    def __init__(self, by_plural: Mapping[str, Sequence[Provider]], everything: Sequence[Provider] = ()) -> None:
        self._by_plural = {p: list(v) for p, v in by_plural.items()}
        self._everything = list(everything)

    def _providers(self, key: bytes) -> list[Provider]:
        parts = key.split(b"/", 3)
        if len(parts) < 3 or parts[1] != b"registry":
            return []
        return self._by_plural.get(parts[2].decode(errors="replace"), self._everything)

    def to_storage(self, key: bytes, data: bytes) -> bytes:
        """The bytes to write for `data` at etcd key `key`."""
        providers = self._providers(key)
        return providers[0].encrypt(key, data) if providers else data

    def from_storage(self, key: bytes, value: bytes) -> bytes:
        """The data of a value read at etcd key `key`; DecryptError when no provider reads it."""
        providers = self._providers(key)
        if not providers:
            if value.startswith(_ENCRYPTED):
                raise DecryptError(f"the value of {key.decode(errors='replace')} is encrypted and no provider is set")
            return value
        for p in providers:
            data = p.decrypt(key, value)
            if data is not None:
                return data
        raise DecryptError(f"no provider of {key.decode(errors='replace')} can read its stored value")


def _keys(provider: str, spec: Any) -> list[_Key]:
    sizes = _CIPHERS[provider][1]
    keys = (spec or {}).get("keys") if isinstance(spec, dict) else None
    if not isinstance(keys, list) or not keys:
        raise EncryptionConfigError(f"{provider}: keys: Required value")
    out = []
    for i, k in enumerate(keys):
        if not isinstance(k, dict) or not k.get("name") or not k.get("secret"):
            raise EncryptionConfigError(f"{provider}.keys[{i}]: name and secret are required")
        try:
            secret = base64.b64decode(str(k["secret"]), validate=True)
        except (binascii.Error, ValueError) as e:
            raise EncryptionConfigError(f"{provider}.keys[{i}].secret: must be base64") from e
        if len(secret) not in sizes:
            want = " or ".join(str(s) for s in sizes)
            raise EncryptionConfigError(f"{provider}.keys[{i}].secret: must be {want} bytes, got {len(secret)}")
        if ":" in str(k["name"]):
            raise EncryptionConfigError(f"{provider}.keys[{i}].name: may not contain ':'")
        out.append(_Key(str(k["name"]), secret))
    return out


def _provider(spec: Any) -> Provider:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise EncryptionConfigError("each provider must name exactly one of aescbc, aesgcm, secretbox, identity")
    ((name, body),) = spec.items()
    if name == "identity":
        return Identity()
    if name not in _CIPHERS:
        raise EncryptionConfigError(f"provider {name!r} is not supported (aescbc, aesgcm, secretbox, identity)")
    return _CIPHERS[name][0](_keys(name, body))


def _plurals(resource: str) -> list[str] | None:
    """The etcd plurals a resource entry names (None: every resource)."""
    if resource == "*.*":
        return None
    name, _, group = resource.partition(".")
    if name == "*":
        return sorted({r.plural for r in RESOURCES if r.group == group})
    return [name]


def load_encryption_config(path: str | Path) -> ResourceTransformers:
    """Parse an EncryptionConfiguration file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise EncryptionConfigError(f"cannot read {path}: {e}") from e
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise EncryptionConfigError(f"{path}: not an EncryptionConfiguration")
    if doc.get("apiVersion") not in ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1"):
        raise EncryptionConfigError(f"{path}: apiVersion must be apiserver.config.k8s.io/v1")
    by_plural: dict[str, list[Provider]] = {}
    everything: list[Provider] = []
    for i, entry in enumerate(doc.get("resources") or []):
        if not isinstance(entry, dict) or not entry.get("resources") or not entry.get("providers"):
            raise EncryptionConfigError(f"resources[{i}]: resources and providers are required")
        providers = [_provider(p) for p in entry["providers"]]
        for resource in entry["resources"]:
            plurals = _plurals(str(resource))
            if plurals is None:
                everything = everything or providers
                continue
            for plural in plurals:
                by_plural.setdefault(plural, providers)  # the first entry naming a resource wins
    return ResourceTransformers(by_plural, everything)
