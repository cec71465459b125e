"""Continue tokens: upstream's shape, relative start keys, signatures bound to the list's scope."""

from __future__ import annotations

import base64
import json

import pytest

from apimachinery.errors import StatusError
from apiserver.continuetoken import ContinueTokens, ListScope

SCOPE = ListScope("", "/registry/secrets/ns1/", "app=a", "")


def _fields(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def test_round_trip_with_a_relative_start_key() -> None:
    tokens = ContinueTokens(b"k" * 32)
    token = tokens.encode(42, "/registry/secrets/ns1/s2", SCOPE)
    assert "=" not in token  # base64url without padding, as upstream's RawURLEncoding
    fields = _fields(token)
    assert fields["v"] == "meta.k8s.io/v1" and fields["rv"] == 42 and fields["start"] == "s2"
    assert tokens.decode(token, SCOPE) == (42, "/registry/secrets/ns1/s2")


@pytest.mark.parametrize(
    "other",
    [
        ListScope("", "/registry/services/ns1/", "app=a", ""),
        ListScope("", "/registry/secrets/ns2/", "app=a", ""),
        ListScope("", "/registry/secrets/", "app=a", ""),
        ListScope("", "/registry/secrets/ns1/", "", ""),
        ListScope("", "/registry/secrets/ns1/", "app=a", "type=Opaque"),
        ListScope("apps", "/registry/secrets/ns1/", "app=a", ""),
    ],
)
def test_a_token_is_refused_outside_its_scope(other: ListScope) -> None:
    tokens = ContinueTokens(b"k" * 32)
    token = tokens.encode(42, "/registry/secrets/ns1/s2", SCOPE)
    with pytest.raises(StatusError) as e:
        tokens.decode(token, other)
    assert e.value.code == 400
    assert e.value.message.startswith("invalid continue token: continue key is not valid:")


def test_another_key_does_not_verify() -> None:
    token = ContinueTokens(b"a" * 32).encode(7, "/registry/secrets/ns1/x", SCOPE)
    with pytest.raises(StatusError):
        ContinueTokens(b"b" * 32).decode(token, SCOPE)


@pytest.mark.parametrize("start", ["../services/ns1/x", "a/../../x", "a//b", "a/", "/./a"])
def test_unclean_start_keys_are_refused(start: str) -> None:
    tokens = ContinueTokens(b"k" * 32)
    token = tokens.encode(9, "/registry/secrets/ns1/x", SCOPE)
    fields = {**_fields(token), "start": start}
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()
    with pytest.raises(StatusError) as e:
        tokens.decode(forged, SCOPE)
    assert e.value.message == f"invalid continue token: continue key is not valid: {start}"


def test_a_key_outside_the_prefix_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        ContinueTokens().encode(1, "/registry/services/ns1/x", SCOPE)
