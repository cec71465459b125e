"""Hypothesis through the real HTTP server: every kind's create, update, patch, apply and delete with
objects built from the served OpenAPI schemas and then broken, raw bodies of every media type, and
random query strings. Fails on any 5xx, a hang (client timeout), a dropped connection, or a traceback
in the apiserver's log. Case counts are fixed and the run is derandomized, so CI is repeatable."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apimachinery.resources import RESOURCES, ResourceInfo
from tests.fuzz.conftest import Tally
from tests.fuzz.strategies import json_patches, json_values, objects
from tinykube.procs import Process

# Objects that change how the server answers everyone else (none yet: webhook configurations would be)
KINDS = [r for r in RESOURCES if "create" in r.verbs]
NAMES = ["a", "b", "c"]
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
MEDIA = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "",
]


def _path(res: ResourceInfo, name: str = "", sub: str = "") -> str:
    base = res.base_path("fuzz" if res.namespaced else None)
    return "/".join(p for p in (base, name, sub) if p)


def _send(client: httpx.Client, tally: Tally, method: str, url: str, body: bytes | None, ctype: str) -> httpx.Response:
    """One fuzz request: counted, and failed on a 5xx, a hang or a dropped connection."""
    tally.case(f"http {method}")
    headers = {"Content-Type": ctype} if ctype else {}
    try:
        r = client.request(method, url, content=body, headers=headers)
    except httpx.TimeoutException as e:
        raise AssertionError(f"{method} {url}: no answer within the client's timeout (a hang)") from e
    except httpx.TransportError as e:
        raise AssertionError(f"{method} {url}: the connection failed: {e!r}") from e
    tally.answer(r.status_code)
    assert r.status_code < 500, f"{method} {url} ({ctype}) {body!r:.600} -> {r.status_code} {r.text[:600]}"
    if r.status_code >= 400:
        assert r.json().get("kind") == "Status", r.text[:300]
    return r


def _encode(obj: object, ctype: str) -> bytes:
    if "yaml" in ctype:
        return yaml.safe_dump(obj).encode()
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


@settings(FUZZ, max_examples=260)
@given(data=st.data())
def test_writes_of_schema_objects(fuzz_client: httpx.Client, tally: Tally, data: st.DataObject) -> None:
    res = data.draw(st.sampled_from(KINDS), label="kind")
    name = data.draw(st.sampled_from(NAMES), label="name")
    verb = data.draw(st.sampled_from(["create", "update", "merge", "smp", "json", "apply", "status", "delete"]))
    if verb == "json":
        patch = data.draw(json_patches)
        _send(fuzz_client, tally, "PATCH", _path(res, name), orjson.dumps(patch), "application/json-patch+json")
        return
    if verb == "delete":
        options = data.draw(
            st.one_of(
                st.none(),
                json_values,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "propagationPolicy": st.sampled_from(["Orphan", "Background", "Foreground", "x"]),
                        "gracePeriodSeconds": st.one_of(st.integers(-5, 100), json_values),
                        "preconditions": json_values,
                    },
                ),
            )
        )
        body = None if options is None else orjson.dumps(options)
        _send(fuzz_client, tally, "DELETE", _path(res, name), body, "application/json")
        return
    obj = data.draw(objects(res, name), label="object")
    if verb == "create":
        _send(fuzz_client, tally, "POST", _path(res), _encode(obj, "application/json"), "application/json")
    elif verb == "update":
        _send(fuzz_client, tally, "PUT", _path(res, name), _encode(obj, "application/json"), "application/json")
    elif verb == "status" and "status" in res.subresources:
        _send(
            fuzz_client, tally, "PUT", _path(res, name, "status"), _encode(obj, "application/json"), "application/json"
        )
    elif verb == "merge":
        _send(fuzz_client, tally, "PATCH", _path(res, name), _encode(obj, "json"), "application/merge-patch+json")
    elif verb == "smp":
        ctype = "application/strategic-merge-patch+json"
        _send(fuzz_client, tally, "PATCH", _path(res, name), _encode(obj, "json"), ctype)
    else:
        url = _path(res, name) + "?fieldManager=fuzz&force=true"
        _send(fuzz_client, tally, "PATCH", url, _encode(obj, "yaml"), "application/apply-patch+yaml")


@settings(FUZZ, max_examples=120)
@given(
    res=st.sampled_from(KINDS),
    method=st.sampled_from(["POST", "PUT", "PATCH"]),
    ctype=st.sampled_from(MEDIA),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)),
        st.sampled_from(
            [
                b"a: &a [1,2]\nb: *a\n",
                b"a: &a [*a]\n",
                b"!!binary aGk=",
                b"{a: .nan}",
                b"k8s\x00\x0a\x02\x12\x00",
                b"k8s\x00" + bytes(range(40)),
                b"[" * 2000,
                b'{"a":' * 500,
            ]
        ),
    ),
)
def test_raw_bodies(
    fuzz_client: httpx.Client, tally: Tally, res: ResourceInfo, method: str, ctype: str, body: bytes
) -> None:
    url = _path(res) if method == "POST" else _path(res, "a")
    _send(fuzz_client, tally, method, url, body, ctype)


_query_values = st.one_of(
    st.text(max_size=16),
    st.sampled_from(["", "0", "1", "-1", "abc", "true", "false", "Exact", "NotOlderThan", "a=b", "a in (b)", "!a"]),
)


@settings(FUZZ, max_examples=160)
@given(
    res=st.sampled_from(KINDS),
    named=st.booleans(),
    params=st.dictionaries(
        st.sampled_from(
            [
                "labelSelector",
                "fieldSelector",
                "resourceVersion",
                "resourceVersionMatch",
                "limit",
                "continue",
                "timeoutSeconds",
                "sendInitialEvents",
                "allowWatchBookmarks",
                "includeObject",
                "dryRun",
                "fieldValidation",
                "pretty",
            ]
        ),
        _query_values,
        max_size=5,
    ),
    accept=st.sampled_from(["application/json", "application/json;as=Table;v=v1;g=meta.k8s.io", "*/*", ""]),
)
def test_queries(
    fuzz_client: httpx.Client, tally: Tally, res: ResourceInfo, named: bool, params: dict[str, str], accept: str
) -> None:
    rv = params.get("resourceVersion", "")
    if rv.isascii() and rv.isdigit() and int(rv) > 1:
        params["resourceVersion"] = "1"  # one the store has not reached is upstream's 504 after a wait
    url = _path(res, "a" if named else "") + ("?" + urlencode(params) if params else "")
    tally.case("http GET")
    try:
        r = fuzz_client.get(url, headers={"Accept": accept} if accept else {})
    except httpx.HTTPError as e:
        raise AssertionError(f"GET {url}: {e!r}") from e
    tally.answer(r.status_code)
    assert r.status_code < 500, f"GET {url} -> {r.status_code} {r.text[:500]}"


def test_the_fuzzed_server_logged_no_traceback(fuzz_server: tuple[Process, str], fuzz_client: httpx.Client) -> None:
    """Runs last in this module: the server is alive, answers, and never logged a traceback."""
    proc, _ = fuzz_server
    assert proc.alive()
    assert fuzz_client.get("/readyz").status_code == 200
    log = Path(proc.log_path).read_text(errors="replace")
    at = log.find("Traceback")
    assert at < 0, log[max(at - 300, 0) : at + 4000]
    assert "unhandled error" not in log
