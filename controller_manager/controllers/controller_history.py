"""ControllerRevisions for DaemonSets and StatefulSets (upstream pkg/controller/history): the pod
template history as `{"spec":{"template":{..., "$patch":"replace"}}}` patches, named
`<owner>-<hash>` and labelled `controller-revision-hash`."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from apimachinery.errors import StatusError
from client.request import Obj
from client.rest import ApiClient
from controller_manager.podtemplate import controller_ref

__all__ = [
    "REVISION_HASH_LABEL",
    "cleanup_history",
    "compute_hash",
    "ensure_revision",
    "owner_uid_indexer",
    "revision_data",
    "template_from_revision",
]

REVISION_HASH_LABEL = "controller-revision-hash"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def owner_uid_indexer(kind: str):
    """An indexer of objects by the uid of their controller of `kind`."""

    def index(obj: Obj) -> list[str]:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == kind:
                return [ref.get("uid", "")]
        return []

    return index


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _safe_encode(s: str) -> str:
    """apimachinery rand.SafeEncodeString: map bytes onto an alphabet without vowels or look-alikes."""
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in s.encode())


def compute_hash(data: Any, collision_count: int | None = None) -> str:
    """Hash of revision data (fnv-32a, plus the collision count when set), safe-encoded as upstream."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += int(collision_count).to_bytes(4, "little")
    return _safe_encode(str(_fnv32a(raw)))


def revision_data(owner: Obj) -> dict[str, Any]:
    """The revision patch of an owner's pod template (upstream getPatch)."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_from_revision(revision: Obj) -> dict[str, Any]:
    """The pod template a revision recorded."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def _number(rev: Obj) -> int:
    return int(rev.get("revision") or 0)


async def ensure_revision(
    api: ApiClient, owner: Obj, api_version: str, kind: str, revisions: list[Obj], collision_count: int
) -> tuple[Obj, int]:
    """The revision matching the owner's template, created (or renumbered to newest) as needed;
    and the possibly increased collision count."""
    data = revision_data(owner)
    meta = owner["metadata"]
    latest = max((_number(r) for r in revisions), default=0)
    for rev in revisions:
        if rev.get("data") == data:
            if _number(rev) < latest:
                rev = await api.update("controllerrevisions", {**rev, "revision": latest + 1}, meta["namespace"])
            return rev, collision_count
    while True:
        h = compute_hash(data, collision_count)
        labels = dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
        labels[REVISION_HASH_LABEL] = h
        body = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": f"{meta['name'][:223]}-{h}",
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [{**controller_ref(owner), "apiVersion": api_version, "kind": kind}],
            },
            "data": data,
            "revision": latest + 1,
        }
        try:
            return await api.create("controllerrevisions", body, meta["namespace"]), collision_count
        except StatusError as e:
            if e.code != 409:
                raise
            existing = await api.get("controllerrevisions", body["metadata"]["name"], meta["namespace"])
            same_owner = any(r.get("uid") == meta["uid"] for r in existing["metadata"].get("ownerReferences") or [])
            if existing.get("data") == data and same_owner:
                return existing, collision_count
            collision_count += 1


async def cleanup_history(api: ApiClient, owner: Obj, revisions: list[Obj], live_hashes: set[str]) -> None:
    """Delete the oldest revisions beyond revisionHistoryLimit that no pod still uses."""
    limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10))
    old = [r for r in revisions if (r["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) not in live_hashes]
    old.sort(key=_number)
    for rev in old[: max(0, len(old) - limit)]:
        try:
            await api.delete("controllerrevisions", rev["metadata"]["name"], rev["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise
