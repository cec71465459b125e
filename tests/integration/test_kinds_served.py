"""Everything discovery advertises is served: each resource lists, prints as a Table and selects by
metadata fields; each subresource answers its advertised verbs (never 404 for the path, never 405).
A CRD's kind is among them (added at run time, the same checks apply)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.test_crd import CRDS, crontab_crd, established

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_METHODS = {"get": "GET", "create": "POST", "update": "PUT", "patch": "PATCH"}
_PATH_NOT_FOUND = "the server could not find the requested resource"


@pytest.fixture
async def custom_group(api: httpx.AsyncClient) -> AsyncIterator[str]:
    """A CRD with status and scale subresources, served while the test runs."""
    group = f"s{uuid.uuid4().hex[:8]}.example.com"
    assert (await api.post(CRDS, json=crontab_crd(group))).status_code == 201
    await established(api, f"crontabs.{group}")
    yield group
    await api.delete(f"{CRDS}/crontabs.{group}")


async def _other_tests_crd_groups(api: httpx.AsyncClient, own: str = "") -> set[str]:
    """Groups served by other tests' CRDs: such a CRD may be deleted (and its kind stop being served)
    at any moment while this module runs, so what it advertises is not this module's to check."""
    crds = (await api.get(CRDS)).json()["items"]
    return {c["spec"]["group"] for c in crds} - {own}


async def _advertised(api: httpx.AsyncClient, own: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(group/version root, resource entry) for every resource of legacy discovery (but other tests' CRDs')."""
    roots = ["/api/v1"]
    skip = await _other_tests_crd_groups(api, own)
    groups = [g for g in (await api.get("/apis")).json()["groups"] if g["name"] not in skip]
    roots += [f"/apis/{v['groupVersion']}" for g in groups for v in g["versions"]]
    out = []
    for root in roots:
        r = await api.get(root)
        if r.status_code == 503:  # an aggregated API whose server is not there (none in this fixture)
            continue
        assert r.status_code == 200, (root, r.text)
        out += [(root, e) for e in r.json()["resources"]]
    return out


def _path(root: str, entry: dict[str, Any], ns: str, name: str = "") -> str:
    plural = entry["name"].split("/")[0]
    base = f"{root}/namespaces/{ns}/{plural}" if entry["namespaced"] else f"{root}/{plural}"
    return f"{base}/{name}" if name else base


async def test_every_advertised_resource_lists_prints_and_selects(
    api: httpx.AsyncClient, ns: str, custom_group: str
) -> None:
    entries = [(root, e) for root, e in await _advertised(api, custom_group) if "/" not in e["name"]]
    assert len(entries) > 30 and f"/apis/{custom_group}/v1" in {root for root, _ in entries}
    for root, entry in entries:
        if "list" not in entry["verbs"]:
            continue
        path = _path(root, entry, ns)
        listed = await api.get(path)
        assert listed.status_code == 200, (path, listed.text)
        table = await api.get(path, headers={"accept": TABLE})
        assert table.status_code == 200, (path, table.text)
        columns = [c["name"] for c in table.json()["columnDefinitions"]]
        assert "Name" in columns, (path, columns)
        selectors = ["metadata.name=nothing-by-this-name"]
        if entry["namespaced"]:
            selectors.append(f"metadata.namespace={ns}")
        for selector in selectors:
            selected = await api.get(path, params={"fieldSelector": selector})
            assert selected.status_code == 200, (path, selector, selected.text)


async def test_every_advertised_subresource_is_served(api: httpx.AsyncClient, ns: str, custom_group: str) -> None:
    subs = [(root, e) for root, e in await _advertised(api, custom_group) if "/" in e["name"]]
    assert {"pods/status", "deployments/scale"} <= {e["name"] for _, e in subs}
    assert {"crontabs/status", "crontabs/scale"} <= {e["name"] for root, e in subs if custom_group in root}
    for root, entry in subs:
        sub = entry["name"].split("/")[1]
        for verb in entry["verbs"]:
            path = _path(root, entry, ns, "no-such-object") + f"/{sub}"
            body = {} if verb in ("create", "update", "patch") else None
            headers = {"content-type": "application/merge-patch+json"} if verb == "patch" else {}
            r = await api.request(_METHODS[verb], path, json=body, headers=headers)
            assert r.status_code != 405, (verb, path, r.text)
            if r.status_code == 404:  # the object is missing; the path itself is served
                assert r.json().get("message") != _PATH_NOT_FOUND, (verb, path)


@pytest.mark.parametrize("sub", ["nope"])
async def test_subresources_nothing_serves_are_not_advertised_and_404(api: httpx.AsyncClient, sub: str) -> None:
    names = {e["name"] for _, e in await _advertised(api)}
    assert f"pods/{sub}" not in names
    r = await api.post(f"/api/v1/namespaces/default/pods/x/{sub}", json={})
    assert r.status_code == 404
    assert r.json()["message"] == _PATH_NOT_FOUND


async def test_aggregated_discovery_matches_legacy(api: httpx.AsyncClient, custom_group: str) -> None:
    advertised = await _advertised(api, custom_group)
    legacy = {(root.removeprefix("/apis/").removeprefix("/api/"), e["name"]) for root, e in advertised}
    skip = await _other_tests_crd_groups(api, custom_group)
    aggregated: set[tuple[str, str]] = set()
    for path in ("/api", "/apis"):
        doc = (await api.get(path, headers={"accept": AGGREGATED})).json()
        for group in doc["items"]:
            g = group["metadata"]["name"]
            if g in skip:
                continue
            for version in group["versions"]:
                gv = f"{g}/{version['version']}" if g else version["version"]
                for res in version["resources"]:
                    aggregated.add((gv, res["resource"]))
                    aggregated |= {(gv, f"{res['resource']}/{s['subresource']}") for s in res.get("subresources", [])}
    assert aggregated == legacy
