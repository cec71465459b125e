"""Field ownership (`metadata.managedFields`) and server-side apply, driven by the OpenAPI schemas.

A field set is a set of paths. A path is a tuple of FieldsV1 elements: `f:<field>` for a struct field or
map key, `k:{"name":"nginx"}` for an element of a list-map (`x-kubernetes-list-type: map`),
`v:"x"` for a member of a set, and a trailing `.` for a list-map element itself. Atomic lists and
maps (and everything under them) are owned as one leaf. This is a compact version of
structured-merge-diff: Update operations take ownership of the fields they change, Apply operations
own exactly what they applied, conflict with other managers that own a field set to a different
value (unless forced), and remove fields they stopped applying that nobody else owns.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from apimachinery import errors
from apimachinery.meta import now
from apimachinery.resources import ResourceInfo
from apiserver.openapi import definition_for, resolve_schema
from apiserver.versions import written_api_version

__all__ = [
    "FieldPath",
    "apply_config",
    "fields_of",
    "from_fields_v1",
    "manager_name",
    "set_on_create",
    "to_fields_v1",
    "track_update",
]

FieldPath = tuple[str, ...]
_MISSING = object()
# Paths the apiserver itself owns: never recorded in managedFields.
_STRIPPED = (
    ("f:apiVersion",),
    ("f:kind",),
    *(
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        )
    ),
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Defaults of list-map key fields that clients usually leave out.
_KEY_DEFAULTS = {"protocol": "TCP"}


def manager_name(field_manager: str, user_agent: str | None) -> str:
    """The fieldManager, else the User-Agent up to its first `/` (as the apiserver derives it)."""
    if field_manager:
        return field_manager
    return (user_agent or "unknown").split("/", 1)[0][:128] or "unknown"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# (group, version, kind) → a custom resource's openAPIV3Schema, set while its CRD is served
_CUSTOM_SCHEMAS: dict[tuple[str, str, str], dict[str, Any]] = {}


def use_custom_schema(res: ResourceInfo, schema: dict[str, Any] | None) -> None:
    """Track a custom resource's fields by its CRD's schema (list-type map, atomic maps); None forgets it.
    Without one, a custom resource's maps are granular and its lists atomic."""
    key = (res.group, res.version, res.kind)
    _SHAPES.clear()  # compiled shapes of the schema it replaces must go
    _ROOT_SHAPES.clear()
    if schema is None:
        _CUSTOM_SCHEMAS.pop(key, None)
    else:
        _CUSTOM_SCHEMAS[key] = schema


def _schema_of(res: ResourceInfo) -> dict[str, Any]:
    if res.custom:
        return _CUSTOM_SCHEMAS.get((res.group, res.version, res.kind), {})
    name = definition_for(res.group, res.version, res.kind)
    return {"$ref": f"#/components/schemas/{name}"} if name else {}


def _prop(schema: dict[str, Any], key: str) -> dict[str, Any]:
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _atomic_map(schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-map-type") == "atomic":
        return True
    # A typed object with no declared fields (RawExtension, FieldsV1) is opaque; one that keeps unknown fields is not.
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return False
    return schema.get("type") == "object" and not schema.get("properties") and "additionalProperties" not in schema


def _key_element(keys: list[str], item: dict[str, Any]) -> str:
    key = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys if k in item or k in _KEY_DEFAULTS}
    return "k:" + _dumps(key)


class _Shape:
    """What field tracking reads of one (resolved) schema, worked out once: whether it is an atomic map,
    its list type and keys, and the shapes of its fields and items (compiled on first use)."""

    __slots__ = ("_extra", "_fields", "_items", "_schema", "atomic", "keys", "list_type")

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema  # also keeps its id, the cache's key, from being reused
        self.atomic = _atomic_map(schema)
        self.list_type = schema.get("x-kubernetes-list-type")
        self.keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        self._fields: dict[str, _Shape] = {}
        self._extra: _Shape | None = None
        self._items: _Shape | None = None

    def field(self, key: str) -> _Shape:
        """The shape of a field (a declared property, else additionalProperties, else free-form)."""
        shape = self._fields.get(key)
        if shape is not None:
            return shape
        props = self._schema.get("properties")
        if isinstance(props, dict) and key in props:
            shape = self._fields[key] = _shape_of(props[key])
            return shape
        if self._extra is None:
            self._extra = _shape_of(_prop(self._schema, key))
        return self._extra

    def item(self) -> _Shape:
        """The shape of a list's items."""
        if self._items is None:
            items = self._schema.get("items")
            self._items = _shape_of(items if isinstance(items, dict) else {})
        return self._items


_SHAPES: dict[int, _Shape] = {}
_FREE = _Shape({})


def _shape_of(schema: dict[str, Any]) -> _Shape:
    resolved = resolve_schema(schema)
    if not resolved:
        return _FREE  # (a fresh `{}` each time: keyed by id it would add an entry per call)
    shape = _SHAPES.get(id(resolved))
    if shape is None:
        shape = _SHAPES[id(resolved)] = _Shape(resolved)
    return shape


# (group, version, kind) -> the shape of the kind's object; emptied with _SHAPES
_ROOT_SHAPES: dict[tuple[str, str, str], _Shape] = {}


def _root_shape(res: ResourceInfo) -> _Shape:
    """`_shape_of(_schema_of(res))`, kept per kind once its schema is known (finding it took ~10k instructions)."""
    key = (res.group, res.version, res.kind)
    shape = _ROOT_SHAPES.get(key)
    if shape is None:
        shape = _shape_of(_schema_of(res))
        if shape is not _FREE:  # not before the schemas are loaded
            _ROOT_SHAPES[key] = shape
    return shape


def _collect(shape: _Shape, value: Any, prefix: FieldPath, out: set[FieldPath]) -> None:
    if value is None:
        return
    if isinstance(value, dict) and value and not shape.atomic:
        for key, sub in value.items():
            _collect(shape.field(key), sub, (*prefix, f"f:{key}"), out)
        return
    if isinstance(value, list) and value:
        if shape.list_type == "map" and all(isinstance(i, dict) for i in value):
            items = shape.item()
            for item in value:
                element = (*prefix, _key_element(shape.keys, item))
                out.add((*element, "."))
                _collect(items, item, element, out)
            return
        if shape.list_type == "set":
            out.update((*prefix, "v:" + _dumps(item)) for item in value)
            return
    if prefix:
        out.add(prefix)


def fields_of(res: ResourceInfo, obj: dict[str, Any], subresource: str = "") -> set[FieldPath]:
    """The field paths an object sets, minus server-owned metadata and the reset part (status or spec)."""
    out: set[FieldPath] = set()
    _collect(_root_shape(res), obj, (), out)
    drop = list(_STRIPPED)
    if res.has_status:
        drop.append(("f:status",) if subresource != "status" else ())
    keep = {p for p in out if not any(p[: len(d)] == d for d in drop if d)}
    if subresource == "status":
        keep = {p for p in keep if p[:1] == ("f:status",)}
    return keep


def to_fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    """A FieldsV1 trie (`{"f:spec":{"f:replicas":{}}}`) of a field set."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
    return root


def from_fields_v1(trie: Any, prefix: FieldPath = ()) -> set[FieldPath]:
    """The field set a FieldsV1 trie describes."""
    out: set[FieldPath] = set()
    if not isinstance(trie, dict):
        return out
    for key, sub in trie.items():
        if key == ".":
            out.add((*prefix, "."))
        elif isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


# --- reading and changing values at paths ---------------------------------------------------


def _find(items: list[Any], element: str) -> int:
    kind, _, raw = element.partition(":")
    wanted = orjson.loads(raw)
    for i, item in enumerate(items):
        if kind == "k" and isinstance(item, dict):
            if all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in wanted.items()):
                return i
        elif kind == "v" and item == wanted:
            return i
    return -1


def _get(obj: Any, path: FieldPath) -> Any:
    cur = obj
    for part in path:
        if part == ".":
            return cur
        if part.startswith("f:"):
            if not isinstance(cur, dict) or part[2:] not in cur:
                return _MISSING
            cur = cur[part[2:]]
        elif isinstance(cur, list):
            i = _find(cur, part)
            if i < 0:
                return _MISSING
            cur = cur[i]
        else:
            return _MISSING
    return cur


def _remove(obj: Any, path: FieldPath) -> None:
    if path and path[-1] == ".":
        path = path[:-1]
    parent = _get(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        i = _find(parent, last)
        if i >= 0:
            parent.pop(i)


def _merge(schema: dict[str, Any], live: Any, applied: Any) -> Any:
    """Merge an applied configuration into a live value (list-maps by key, sets as unions)."""
    schema = resolve_schema(schema)
    if isinstance(applied, dict) and isinstance(live, dict) and not _atomic_map(schema):
        out = dict(live)
        for key, value in applied.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _merge(_prop(schema, key), out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        list_type = schema.get("x-kubernetes-list-type")
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if list_type == "map" and all(isinstance(i, dict) for i in [*live, *applied]):
            keys = list(schema.get("x-kubernetes-list-map-keys") or [])
            out = list(live)
            for item in applied:
                i = _find(out, _key_element(keys, item))
                if i < 0:
                    out.append(copy.deepcopy(item))
                else:
                    out[i] = _merge(items, out[i], item)
            return out
        if list_type == "set":
            return list(live) + [copy.deepcopy(v) for v in applied if v not in live]
    return copy.deepcopy(applied)


# --- managedFields entries ----------------------------------------------------------------


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)]


def _entry(manager: str, operation: str, api_version: str, paths: set[FieldPath], sub: str = "") -> dict[str, Any]:
    e: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if sub:
        e["subresource"] = sub
    return e


def _store(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    m = obj.setdefault("metadata", {})
    kept = [e for e in entries if e.get("fieldsV1")]
    if kept:
        m["managedFields"] = kept
    else:
        m.pop("managedFields", None)


def _fill(shape: _Shape, value: Any, node: dict[str, Any]) -> None:
    """`_collect` building the FieldsV1 trie itself, on compiled shapes: `node` is the trie node of `value`'s
    path (a leaf when nothing is added under it). Keys go in sorted, as FieldsV1 is written, so the trie needs
    no sorting after (which cost as much as building it)."""
    if isinstance(value, dict):
        if not value or shape.atomic:
            return
        for key in sorted(value):
            sub = value[key]
            if sub is None:
                continue
            child = node[f"f:{key}"] = {}
            if isinstance(sub, dict):
                field = shape.field(key)
                _fill(field, sub, child)
                if not child and sub and not field.atomic:
                    del node[f"f:{key}"]  # an object of nulls sets nothing
            elif isinstance(sub, list):
                _fill(shape.field(key), sub, child)
            # a scalar is a leaf: nothing under it
        return
    if isinstance(value, list) and value:
        if shape.list_type == "map" and all(isinstance(i, dict) for i in value):
            items = shape.item()
            for item in value:
                key = _key_element(shape.keys, item)
                element = node.get(key)
                if element is None:
                    element = node[key] = {".": {}}
                    _fill(items, item, element)
                else:  # an element given twice: its fields merge, out of order
                    _fill(items, item, element)
                    node[key] = _sorted_trie(element)
            if len(node) > 1:
                _sort_keys(node)
        elif shape.list_type == "set":
            for item in value:
                node["v:" + _dumps(item)] = {}
            if len(node) > 1:
                _sort_keys(node)


def _sort_keys(node: dict[str, Any]) -> None:
    """Put a trie node's keys in order, in place (their subtrees are in order already)."""
    ordered = sorted(node.items())
    node.clear()
    node.update(ordered)


def _sorted_trie(node: dict[str, Any]) -> dict[str, Any]:
    # most nodes are leaves: a new empty dict for them without a call
    return {k: _sorted_trie(child) if (child := node[k]) else {} for k in sorted(node)}


def _created_fields(res: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """`to_fields_v1(fields_of(res, obj))` in one walk: the trie of what a new object sets."""
    root: dict[str, Any] = {}
    _fill(_root_shape(res), obj, root)
    root.pop("f:apiVersion", None)
    root.pop("f:kind", None)
    if res.has_status:
        root.pop("f:status", None)
    m = root.get("f:metadata")
    if m:
        for path in _STRIPPED:
            if len(path) == 2:
                m.pop(path[1], None)
        if not m:
            del root["f:metadata"]
    return root


def set_on_create(res: ResourceInfo, obj: dict[str, Any], manager: str, operation: str = "Update") -> None:
    """Record the creating manager as owner of every field the request set."""
    trie = _created_fields(res, obj)
    if not trie:
        _store(obj, [])
        return
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": written_api_version(res),
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": trie,
    }
    _store(obj, [entry])


def track_update(
    res: ResourceInfo,
    old: dict[str, Any],
    new: dict[str, Any],
    manager: str,
    subresource: str = "",
    complete: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Give `manager` (operation Update) the fields an update changed; take them from everyone else.

    `complete` gives an object the defaults and required fields the write will give it. Upstream
    compares objects decoded with both, so a field the client left out and the server puts back is
    no change; it is run, on a copy, only when the update seems to remove fields or to change an object
    or a list as a whole (an atomic one, where a default left out inside shows as a changed value).
    """
    sent = (new.get("metadata") or {}).get("managedFields")
    if sent is not None and sent != (old.get("metadata") or {}).get("managedFields"):
        return new  # the client rewrote managedFields itself
    entries = copy.deepcopy(_entries(old))
    before = fields_of(res, old, subresource)
    changed, removed = _changes(res, old, new, before, subresource)
    if complete is not None and (removed or any(isinstance(_get(new, p), dict | list) for p in changed)):
        completed = copy.deepcopy(new)
        complete(completed)
        changed, removed = _changes(res, old, completed, before, subresource)
    if not changed and not removed:
        _store(new, entries)
        return new
    mine = None
    for e in entries:
        owned = from_fields_v1(e.get("fieldsV1")) - removed
        if e.get("manager") == manager and e.get("operation") == "Update" and e.get("subresource", "") == subresource:
            mine = e
            if changed:
                e["time"] = now()
            owned |= changed
        else:
            owned -= changed
        e["fieldsV1"] = to_fields_v1(owned)
    if mine is None and changed:
        entries.append(_entry(manager, "Update", written_api_version(res), changed, subresource))
    _store(new, entries)
    return new


def _changes(
    res: ResourceInfo, old: dict[str, Any], new: dict[str, Any], before: set[FieldPath], subresource: str
) -> tuple[set[FieldPath], set[FieldPath]]:
    """The field paths an update sets anew or to another value, and those it drops."""
    after = fields_of(res, new, subresource)
    changed = {p for p in after if p not in before or (p[-1] != "." and _get(new, p) != _get(old, p))}
    return changed, before - after


def _conflict_error(res: ResourceInfo, name: str, conflicts: list[tuple[dict[str, Any], FieldPath]]) -> Exception:
    def where(path: FieldPath) -> str:
        out = ""
        for part in path:
            if part == ".":
                continue
            kind, _, raw = part.partition(":")
            if kind == "f":
                out += f".{raw}"
            elif kind == "k":
                out += "[" + ",".join(f"{k}={_dumps(v)}" for k, v in orjson.loads(raw).items()) + "]"
            else:
                out += f"[={raw}]"
        return out

    def who(e: dict[str, Any]) -> str:
        text = f'"{e.get("manager")}"'
        if e.get("operation") == "Update":
            text += f" using {e.get('apiVersion')}"
        if e.get("subresource"):
            text += f' with subresource "{e["subresource"]}"'
        return text

    causes = [errors.Cause(where(p), f"conflict with {who(e)}", "FieldManagerConflict") for e, p in conflicts]
    count = f"{len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}"
    if len(conflicts) == 1:
        detail = f"conflict with {who(conflicts[0][0])}: {where(conflicts[0][1])}"
    else:
        by_manager: dict[str, list[str]] = {}
        for e, p in conflicts:
            by_manager.setdefault(who(e), []).append(where(p))
        detail = "".join(
            f"conflicts with {m}:\n" + "".join(f"- {w}\n" for w in ws) for m, ws in by_manager.items()
        ).rstrip("\n")
    return errors.StatusError(
        409,
        "Conflict",
        f"Apply failed with {count}: {detail}",
        {"causes": [c.to_dict() for c in causes]},  # errors.NewApplyConflict: causes only
    )


def _is_applier(entry: dict[str, Any], manager: str) -> bool:
    """Whether an entry is the applying manager's own Apply entry (every other entry can conflict)."""
    return entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource")


def _upgrades_client_side_apply(
    res: ResourceInfo, live: dict[str, Any], manager: str, conflicts: list[tuple[dict[str, Any], FieldPath]]
) -> bool:
    """kubectl moving from client-side to server-side apply takes over the fields it last applied itself.

    As the apiserver's last-applied manager does: only for the manager `kubectl`, and only when every
    contested field is in the `kubectl.kubernetes.io/last-applied-configuration` annotation.
    """
    if manager != "kubectl":
        return False
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return False
    if not isinstance(last, dict):
        return False
    allowed = fields_of(res, last)
    return all(path in allowed for _, path in conflicts)


def apply_config(
    res: ResourceInfo, live: dict[str, Any], applied: dict[str, Any], manager: str, force: bool
) -> dict[str, Any]:
    """Server-side apply of `applied` by `manager` onto `live`; 409 Conflict on contested fields unless forced."""
    name = (live.get("metadata") or {}).get("name", "")
    entries = copy.deepcopy(_entries(live))
    wanted = fields_of(res, applied)
    conflicts: list[tuple[dict[str, Any], FieldPath]] = []
    for e in entries:
        if _is_applier(e, manager):
            continue
        for path in sorted(from_fields_v1(e.get("fieldsV1")) & wanted):
            if path[-1] != "." and _get(applied, path) != _get(live, path):
                conflicts.append((e, path))
    if conflicts and not force and not _upgrades_client_side_apply(res, live, manager, conflicts):
        raise _conflict_error(res, name, conflicts)
    lost = {id(e): {p for c, p in conflicts if c is e} for e in entries}
    previous: set[FieldPath] = set()
    others: set[FieldPath] = set()
    kept_entries = []
    for e in entries:
        owned = from_fields_v1(e.get("fieldsV1"))
        if _is_applier(e, manager):
            previous = owned
            continue
        owned -= lost[id(e)]
        others |= owned
        e["fieldsV1"] = to_fields_v1(owned)
        kept_entries.append(e)
    result = copy.deepcopy(live)
    # Fields this manager applied before, no longer applies, and nobody else owns go away.
    # Whole list elements first (their keys are still there to find them), then single fields.
    for path in sorted(previous - wanted - others, key=lambda p: (p[-1] != ".", len(p))):
        if path[-1] == "." and any(p[: len(path) - 1] == path[:-1] for p in others):
            continue
        _remove(result, path)
    body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind", "status")}
    body["metadata"] = {
        k: v for k, v in (applied.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")
    }
    result = _merge(_schema_of(res), result, body)
    kept_entries.append(_entry(manager, "Apply", written_api_version(res), wanted))
    _store(result, kept_entries)
    return result
