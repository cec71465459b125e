"""Hypothesis on the decoders, in process: JSON, YAML, protobuf, patches, selectors, continue tokens, the
type check. Each may refuse its input only in its own documented way (a 4xx StatusError, or the
parser's own error type); anything else — a TypeError, a RecursionError, a hang — fails the suite."""

from __future__ import annotations

import base64

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apimachinery.errors import StatusError
from apimachinery.patch import PatchError, apply_patch
from apimachinery.resources import RESOURCES
from apimachinery.selectors import SelectorError, parse_field_selector, parse_label_selector
from apiserver import codec, openapi, protobuf, typecheck, yamlcodec
from apiserver.continuetoken import ContinueTokens, ListScope
from tests.fuzz.conftest import Tally
from tests.fuzz.strategies import build_object, json_patches, json_values

FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
MEDIA = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]


def _refused_as_client_error(exc: StatusError) -> None:
    assert 400 <= exc.code < 500, (exc.code, exc.message)


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    openapi.definitions()  # load once, outside the timed cases


_yaml_docs = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(
            [
                "a: &a [1, 2]",
                "b: *a",
                "c: [*a, *a, *a]",
                "d: &d {x: *a, y: *a}",
                "e: [*d, *d, *d, *d]",
                "f: !!binary aGk=",
                "g: 2024-01-01",
                "h: {1: x, true: y}",
                "i: .inf",
                "j: 0x1F",
                "- x",
                "k: [[[[[]]]]]",
                "l: &l [*l]",
                "m: ~",
                "n: 99999999999999999999999",
                "<<: *d",
                "o: !!set {a, b}",
                "p: !!omap [a: 1]",
            ]
        ),
        max_size=10,
    ).map("\n".join),
)


@settings(FUZZ, max_examples=200)
@given(
    raw=st.one_of(st.binary(max_size=300), json_values.map(orjson.dumps), _yaml_docs.map(str.encode)),
    media=st.sampled_from(MEDIA),
)
def test_decode_body(tally: Tally, raw: bytes, media: str) -> None:
    tally.case("decode_body")
    try:
        value = codec.decode_body(raw, media)
    except StatusError as e:
        _refused_as_client_error(e)
        return
    orjson.dumps(value)  # whatever decodes can be written back out (etcd, responses)


@settings(FUZZ, max_examples=200)
@given(doc=_yaml_docs)
def test_yaml_loader(tally: Tally, doc: str) -> None:
    tally.case("yaml")
    try:
        value = yamlcodec.load(doc)
    except (yaml.YAMLError, yamlcodec.YAMLBodyError):
        return
    orjson.dumps(value)


def test_yaml_bombs_of_every_shape_are_refused_quickly() -> None:
    for width in (3, 9, 20):
        for levels in (6, 9, 12):
            lines = ["a0: &a0 [" + ",".join(['"x"'] * width) + "]"]
            lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
            expanded = width**levels
            try:
                value = yamlcodec.load("\n".join(lines))
            except yamlcodec.YAMLBodyError as e:
                assert "excessive aliasing" in str(e) or "max depth" in str(e)
                continue
            assert expanded < 500_000, (width, levels)  # only a modest expansion may pass
            orjson.dumps(value)


@settings(FUZZ, max_examples=300)
@given(raw=st.binary(max_size=400), prefix=st.booleans())
def test_protobuf(tally: Tally, raw: bytes, prefix: bool) -> None:
    tally.case("protobuf")
    body = (b"k8s\x00" + raw) if prefix else raw
    try:
        value = codec.decode_body(body, "application/vnd.kubernetes.protobuf")
    except StatusError as e:
        _refused_as_client_error(e)
        return
    orjson.dumps(value)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_patches(tally: Tally, data: st.DataObject) -> None:
    tally.case("patches")
    res = data.draw(st.sampled_from(RESOURCES))
    doc = data.draw(st.randoms(use_true_random=False).map(lambda rnd: build_object(res, "a", rnd)))
    media = data.draw(
        st.sampled_from(
            ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]
        )
    )
    patch = data.draw(json_patches if media == "application/json-patch+json" else json_values)
    if not isinstance(doc, dict):
        doc = {"junk": doc}
    try:
        out = apply_patch(doc, patch, media, res.kind)
    except PatchError:
        return
    orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS)
    typecheck.first_type_error(res, out)  # the check the server runs next must not raise either


@settings(FUZZ, max_examples=300)
@given(text=st.one_of(st.text(max_size=60), st.from_regex(r"[a-z!=,()\s.-]{0,40}", fullmatch=True)))
def test_selectors(tally: Tally, text: str) -> None:
    tally.case("selectors")
    for parse in (parse_label_selector, parse_field_selector):
        try:
            sel = parse(text)
        except SelectorError:
            continue
        str(sel)
        sel.matches({"a": "b"})


@settings(FUZZ, max_examples=300)
@given(
    token=st.one_of(
        st.text(max_size=80),
        json_values.map(lambda v: base64.urlsafe_b64encode(orjson.dumps(v)).decode()),
        st.fixed_dictionaries(
            {"v": st.sampled_from(["meta.k8s.io/v1", "x"]), "rv": json_values, "start": json_values},
            optional={"sig": json_values},
        ).map(lambda d: base64.urlsafe_b64encode(orjson.dumps(d)).decode().rstrip("=")),
    )
)
def test_continue_tokens(tally: Tally, token: str) -> None:
    tally.case("continue tokens")
    tokens = ContinueTokens(b"k" * 32)
    try:
        tokens.decode(token, ListScope("", "/registry/secrets/ns/"))
    except StatusError as e:
        assert e.code == 400 and e.message.startswith("invalid continue token: continue key is not valid")
        return
    raise AssertionError(f"an unsigned token was accepted: {token!r}")


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_type_check(tally: Tally, data: st.DataObject) -> None:
    tally.case("type check")
    res = data.draw(st.sampled_from(RESOURCES))
    obj = data.draw(st.one_of(json_values, st.randoms(use_true_random=False).map(lambda r: build_object(res, "a", r))))
    message = typecheck.first_type_error(res, obj)
    assert message is None or isinstance(message, str)


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_protobuf_encoder(tally: Tally, data: st.DataObject) -> None:
    """Schema-built (and broken) objects of every kind: encoded or refused with ProtobufError, and what
    encodes decodes to a form that encodes to itself (the converters agree both ways)."""
    tally.case("protobuf encoder")
    res = data.draw(st.sampled_from(RESOURCES))
    obj = data.draw(st.randoms(use_true_random=False).map(lambda r: build_object(res, "a", r)))
    try:
        body = protobuf.encode_protobuf(obj)
    except protobuf.ProtobufError:
        return
    once = protobuf.decode_protobuf(body)
    assert protobuf.decode_protobuf(protobuf.encode_protobuf(once)) == once
