"""Patch application for the PATCH verb: JSON Patch, JSON Merge Patch and strategic merge patch.

A patch describes a change relative to a stored object instead of a whole new object:

* RFC 6902 JSON Patch is a list of operations (add, remove, replace, move, copy, test)
  addressed by RFC 6901 JSON Pointers.
* RFC 7386 JSON Merge Patch is a partial document: objects merge recursively, `null`
  deletes a key and anything else (lists included) replaces the target value.
* Kubernetes strategic merge patch is a merge patch that knows, per field of the built-in
  kinds, which lists merge element-wise by a merge key (containers by `name`, ...) and that
  understands `$`-directives (`$patch`, `$retainKeys`, `$setElementOrder/<field>`,
  `$deleteFromPrimitiveList/<field>`), following apimachinery's pkg/util/strategicpatch.

Every function is pure: inputs are never mutated and results share no objects with them, unless the
caller passes `copy_doc=False` to say the document is a private copy the patch may change in place.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

from apimachinery.resources import RESOURCES

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "PatchError",
    "UnsupportedPatchType",
    "apply_patch",
    "json_copy",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"


class PatchError(ValueError):
    """A patch that is malformed or cannot be applied to the document."""


class UnsupportedPatchType(PatchError):
    """A PATCH request whose media type is not a supported patch format."""


def apply_patch(doc: dict, patch_body: Any, content_type: str, kind: str, *, copy_doc: bool = True) -> dict:
    """Apply `patch_body` to `doc` according to the patch media type `content_type`.

    With `copy_doc=False` `doc` is the caller's private copy: it is patched in place, saving a deep copy.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == JSON_PATCH:
        if not isinstance(patch_body, list):
            raise PatchError("a JSON patch must be a JSON array of operations")
        result = json_patch(doc, patch_body, copy_doc=copy_doc)
    elif media_type == MERGE_PATCH:
        result = merge_patch(doc, patch_body, copy_doc=copy_doc)
    elif media_type == STRATEGIC_MERGE_PATCH:
        result = strategic_merge_patch(doc, patch_body, kind, copy_doc=copy_doc)
    else:
        supported = ", ".join((JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH))
        raise UnsupportedPatchType(f"the media type {content_type!r} is not a supported patch type ({supported})")
    if not isinstance(result, dict):
        raise PatchError("the patched document must be a JSON object")
    return result


def json_copy(value: Any) -> Any:
    """A deep copy of decoded JSON (a stored object): an orjson round trip, several times cheaper than
    `copy.deepcopy`; deepcopy still for what orjson does not encode (an integer past 64 bits)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return copy.deepcopy(value)


def _json_equal(a: Any, b: Any) -> bool:
    """Compare two JSON values structurally (booleans are never equal to numbers)."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_json_equal(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    return type(a) is type(b) and a == b


def _type_name(value: Any) -> str:
    """Name a JSON value's type for error messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else f"a scalar ({value!r})"


# --- RFC 6902 JSON Patch -------------------------------------------------------------------

_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]*")


def json_patch(doc: Any, ops: list[dict[str, Any]], *, copy_doc: bool = True) -> Any:
    """Apply an RFC 6902 JSON Patch to `doc` and return the patched copy (`doc` itself with `copy_doc=False`)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a JSON array of operations")
    result = copy.deepcopy(doc) if copy_doc else doc
    for index, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"JSON patch operation {index} is not a JSON object")
        name = op.get("op")
        handler = _OPERATIONS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise PatchError(f"JSON patch operation {index} has an unsupported op {name!r}")
        try:
            result = handler(result, op)
        except PatchError as exc:
            raise PatchError(f"JSON patch operation {index} ({name}): {exc}") from None
    return result


def _member(op: dict[str, Any], name: str) -> Any:
    """Return a required member of a JSON patch operation."""
    if name not in op:
        raise PatchError(f"missing required member {name!r}")
    return op[name]


def _parse_pointer(pointer: Any) -> list[str]:
    """Split an RFC 6901 JSON Pointer into its unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise PatchError(f"a JSON pointer must be a string, got {_type_name(pointer)}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    if re.search(r"~(?![01])", pointer):
        raise PatchError(f"JSON pointer {pointer!r} contains an invalid '~' escape")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _array_index(token: str, size: int, pointer: str, *, allow_end: bool) -> int:
    """Resolve an array reference token; `-` (and `size`) are only valid when adding."""
    if token == "-" and allow_end:
        return size
    if not _INDEX_RE.fullmatch(token):
        raise PatchError(f"invalid array index {token!r} in path {pointer!r}")
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchError(f"array index {index} is out of bounds in path {pointer!r}")
    return index


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    """Return the value that `tokens` reference, raising PatchError when it does not exist."""
    node = doc
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist")
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    """Add `value` at `pointer` (inserting into arrays) and return the new root."""
    tokens = _parse_pointer(pointer)
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(tokens[-1], len(parent), pointer, allow_end=True), value)
    else:
        raise PatchError(f"cannot add {pointer!r}: its parent is {_type_name(parent)}")
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    """Remove the value at `pointer` from `doc` in place and return the removed value."""
    tokens = _parse_pointer(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_array_index(tokens[-1], len(parent), pointer, allow_end=False))
    raise PatchError(f"path {pointer!r} does not exist")


def _op_add(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `add`."""
    return _add(doc, _member(op, "path"), copy.deepcopy(_member(op, "value")))


def _op_remove(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `remove`."""
    _remove(doc, _member(op, "path"))
    return doc


def _op_replace(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `replace`: the target must exist."""
    pointer, value = _member(op, "path"), copy.deepcopy(_member(op, "value"))
    tokens = _parse_pointer(pointer)
    if not tokens:
        return value
    _resolve(doc, tokens, pointer)
    parent = _resolve(doc, tokens[:-1], pointer)
    if isinstance(parent, list):
        parent[_array_index(tokens[-1], len(parent), pointer, allow_end=False)] = value
    else:
        parent[tokens[-1]] = value
    return doc


def _op_move(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `move`: a location cannot be moved into one of its own children."""
    source, target = _member(op, "from"), _member(op, "path")
    source_tokens, target_tokens = _parse_pointer(source), _parse_pointer(target)
    if source_tokens == target_tokens:
        _resolve(doc, source_tokens, source)
        return doc
    if target_tokens[: len(source_tokens)] == source_tokens:
        raise PatchError(f"cannot move {source!r} into its own child {target!r}")
    return _add(doc, target, _remove(doc, source))


def _op_copy(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `copy`."""
    source = _member(op, "from")
    value = copy.deepcopy(_resolve(doc, _parse_pointer(source), source))
    return _add(doc, _member(op, "path"), value)


def _op_test(doc: Any, op: dict[str, Any]) -> Any:
    """RFC 6902 `test`: the value at `path` must equal `value`."""
    pointer, expected = _member(op, "path"), _member(op, "value")
    actual = _resolve(doc, _parse_pointer(pointer), pointer)
    if not _json_equal(actual, expected):
        raise PatchError(f"test failed: the value at {pointer!r} is {actual!r}, not {expected!r}")
    return doc


_OPERATIONS: Final[dict[str, Callable[[Any, dict[str, Any]], Any]]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


# --- RFC 7386 JSON Merge Patch -------------------------------------------------------------


def merge_patch(doc: Any, patch: Any, *, copy_doc: bool = True) -> Any:
    """Apply an RFC 7386 JSON Merge Patch to `doc` and return the patched copy (`doc` itself with `copy_doc=False`)."""
    # one copy of the whole patch, so the result shares nothing with it (a retried write applies it again)
    return _merge(copy.deepcopy(doc) if copy_doc else doc, json_copy(patch))


def _merge(target: Any, patch: Any) -> Any:
    """Merge `patch` into `target`; both are private copies that may be modified (and shared by the result)."""
    if not isinstance(patch, dict):
        return patch
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --- Strategic merge patch: which lists merge, and by what key ------------------------------

_PRIMITIVE: Final = ""  # merge strategy of a set-like list of scalars (no merge key)
_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_ORDER_PREFIX: Final = "$setElementOrder/"
_DELETE_PREFIX: Final = "$deleteFromPrimitiveList/"
_DELETE: Final = object()  # result of merging a map that carries `$patch: delete`

# Where each kind keeps its PodSpec (the resource table's `pod_spec`, and PodTemplate, which is not served);
# `{pod}` in a rule below expands to these paths.
_POD_SPEC_ROOTS: Final[dict[str, str]] = {
    **{r.kind: r.pod_spec for r in RESOURCES if r.pod_spec},
    "PodTemplate": "template/spec",
}
_CONTAINERS: Final = "(?:containers|initContainers|ephemeralContainers)"

# (kind, field path regex, merge key): paths join object keys with "/" (list positions are
# not part of a path). Kind "*" matches every kind and "pod" every kind in _POD_SPEC_ROOTS.
# Lists matched by no rule are atomic: the patch replaces them whole.
_LIST_RULES: Final[tuple[tuple[str, str, str], ...]] = (
    ("*", r"(?:.*/)?metadata/finalizers", _PRIMITIVE),
    ("*", r"(?:.*/)?metadata/ownerReferences", "uid"),
    ("*", r"(?:.*/)?status/conditions", "type"),
    ("pod", r"{pod}/{ctr}", "name"),
    ("pod", r"{pod}/{ctr}/ports", "containerPort"),
    ("pod", r"{pod}/{ctr}/env", "name"),
    ("pod", r"{pod}/{ctr}/volumeMounts", "mountPath"),
    ("pod", r"{pod}/{ctr}/volumeDevices", "devicePath"),
    ("pod", r"{pod}/volumes", "name"),
    ("pod", r"{pod}/imagePullSecrets", "name"),
    ("pod", r"{pod}/schedulingGates", "name"),
    ("pod", r"{pod}/resourceClaims", "name"),
    ("pod", r"{pod}/hostAliases", "ip"),
    ("pod", r"{pod}/topologySpreadConstraints", "topologyKey"),
    ("Pod", r"status/podIPs", "ip"),
    ("Pod", r"status/hostIPs", "ip"),
    ("Service", r"spec/ports", "port"),
    ("ServiceAccount", r"secrets", "name"),
    ("Node", r"spec/podCIDRs", _PRIMITIVE),
    ("Node", r"status/addresses", "type"),
)


def _compile_rules() -> dict[str, list[tuple[re.Pattern[str], str]]]:
    """Expand `_LIST_RULES` into compiled per-kind (path regex, merge key) lists."""
    table: dict[str, list[tuple[re.Pattern[str], str]]] = {"*": []}
    for kinds, pattern, key in _LIST_RULES:
        roots = _POD_SPEC_ROOTS if kinds == "pod" else {kinds: ""}
        for kind, root in roots.items():
            regex = pattern.replace("{pod}", re.escape(root)).replace("{ctr}", _CONTAINERS)
            table.setdefault(kind, []).append((re.compile(regex), key))
    return table


_LIST_TABLE: Final = _compile_rules()


@functools.lru_cache(maxsize=4096)  # paths are the patch's keys: a status patch asks the same few on every write
def _list_strategy(kind: str, path: str) -> str | None:
    """Return the merge key of the list at `path` (`""` for scalar sets, None if atomic)."""
    for regex, key in (*_LIST_TABLE.get(kind, ()), *_LIST_TABLE["*"]):
        if regex.fullmatch(path):
            return key
    return None


def _join(path: str, key: str) -> str:
    """Extend a field path by one object key."""
    return f"{path}/{key}" if path else key


def _where(path: str) -> str:
    """Render a field path for error messages."""
    return path.replace("/", ".") if path else "the object root"


def _expect(current: Any, expected: type, value: Any, path: str) -> Any:
    """Return `current` (or a new empty container) if its type can take the patch `value`."""
    if current is None:
        return expected()
    if not isinstance(current, expected):
        raise PatchError(f"cannot merge {_type_name(value)} into {_type_name(current)} at {_where(path)}")
    return current


def _directive_field(directive: str, prefix: str, path: str) -> str:
    """Return the field a `<prefix><field>` directive key applies to."""
    field = directive[len(prefix) :]
    if not field:
        raise PatchError(f"directive {directive!r} at {_where(path)} does not name a field")
    return field


# --- Strategic merge patch: maps ------------------------------------------------------------


def strategic_merge_patch(doc: dict, patch: dict, kind: str, *, copy_doc: bool = True) -> dict:
    """Apply a Kubernetes strategic merge patch to `doc`, an object of `kind` (in place with `copy_doc=False`)."""
    if not isinstance(doc, dict):
        raise PatchError("strategic merge patch can only patch a JSON object")
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, got {_type_name(patch)}")
    result = _merge_map(copy.deepcopy(doc) if copy_doc else doc, json_copy(patch), kind, "")
    return {} if result is _DELETE else result


def _merge_map(original: dict, patch: dict, kind: str, path: str) -> Any:
    """Merge `patch` into `original`; both are private copies. May return `_DELETE`."""
    directive = patch.pop(_DIRECTIVE, "merge")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        original = {}
    elif directive != "merge":
        raise PatchError(f"unknown $patch directive {directive!r} at {_where(path)}")
    if not any(key.startswith("$") for key in patch):  # no directive left: the fields alone (most maps)
        for key, value in patch.items():
            _merge_field(original, key, value, kind, f"{path}/{key}" if path else key)
        return original
    _apply_retain_keys(original, patch, path)
    _apply_element_orders(original, patch, kind, path)
    for key, value in patch.items():
        if not key.startswith("$"):
            _merge_field(original, key, value, kind, _join(path, key))
    _apply_primitive_deletions(original, patch, path)
    return original


def _merge_field(original: dict, key: str, value: Any, kind: str, path: str) -> None:
    """Merge the patch `value` of one field into `original[key]`."""
    current = original.get(key)
    if value is None:
        original.pop(key, None)
    elif isinstance(value, dict):
        merged = _merge_map(_expect(current, dict, value, path), value, kind, path)
        if merged is _DELETE:
            original.pop(key, None)
        else:
            original[key] = merged
    elif isinstance(value, list):
        original[key] = _merge_list(_expect(current, list, value, path), value, kind, path)
    elif isinstance(current, dict | list):
        raise PatchError(f"cannot replace {_type_name(current)} with {_type_name(value)} at {_where(path)}")
    else:
        original[key] = value


def _apply_retain_keys(original: dict, patch: dict, path: str) -> None:
    """Honour `$retainKeys`: drop keys of `original` that the directive does not list."""
    if _RETAIN_KEYS not in patch:
        return
    keep = patch.pop(_RETAIN_KEYS)
    if not isinstance(keep, list) or not all(isinstance(key, str) for key in keep):
        raise PatchError(f"$retainKeys at {_where(path)} must be a list of field names")
    unlisted = sorted(
        key for key, value in patch.items() if value is not None and not key.startswith("$") and key not in keep
    )
    if unlisted:
        raise PatchError(f"fields {unlisted} at {_where(path)} are not listed in $retainKeys")
    for key in [key for key in original if key not in keep]:
        del original[key]


def _apply_primitive_deletions(original: dict, patch: dict, path: str) -> None:
    """Honour `$deleteFromPrimitiveList/<field>`: remove those values from the list."""
    for directive, values in patch.items():
        if not directive.startswith(_DELETE_PREFIX):
            continue
        field = _directive_field(directive, _DELETE_PREFIX, path)
        if not isinstance(values, list):
            raise PatchError(f"{directive} at {_where(path)} must be a list")
        current = _expect(original.get(field), list, values, _join(path, field))
        if field in original:
            original[field] = [v for v in current if not any(_json_equal(v, d) for d in values)]


# --- Strategic merge patch: lists -----------------------------------------------------------


def _merge_list(original: list, patch: list, kind: str, path: str) -> list:
    """Merge a patch list into `original` according to the field's list strategy."""
    key = _list_strategy(kind, path)
    if key is None:
        return patch
    if key == _PRIMITIVE:
        if any(isinstance(item, dict | list) for item in patch):
            raise PatchError(f"the merge list {_where(path)} may only contain scalars")
        merged: list = []
        for item in (*original, *patch):
            if not any(_json_equal(item, seen) for seen in merged):
                merged.append(item)
        return merged
    base, items = _split_list_patch(original, patch, key, path)
    for item in items:
        _merge_element(base, item, key, kind, path)
    return base


def _split_list_patch(original: list, patch: list, key: str, path: str) -> tuple[list, list]:
    """Apply `$patch` list-element directives; return (base list, plain patch elements)."""
    plain: list[dict] = []
    replace = False
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"elements of the merge list {_where(path)} must be objects")
        directive = item.get(_DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            _merge_value(item, key, path)
            original = [e for e in original if not _same_element(e, item, key)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError(f"$patch: merge is not allowed in the list {_where(path)}")
        else:
            raise PatchError(f"unknown $patch directive {directive!r} in {_where(path)}")
    return ([] if replace else original), plain


def _merge_element(base: list, item: dict, key: str, kind: str, path: str) -> None:
    """Merge one patch element into the element of `base` with the same merge key value."""
    _merge_value(item, key, path)
    for index, existing in enumerate(base):
        if _same_element(existing, item, key):
            base[index] = _merge_map(existing, item, kind, path)
            return
    base.append(_merge_map({}, item, kind, path))


def _same_element(existing: Any, item: dict, key: str) -> bool:
    """Whether a list element has the same merge key value as the patch `item`."""
    return isinstance(existing, dict) and key in existing and _json_equal(existing[key], item[key])


def _merge_value(item: Any, key: str, path: str) -> Any:
    """Return the identity of a list element: its merge key value, or itself for scalars."""
    if key == _PRIMITIVE:
        return item
    if not isinstance(item, dict) or key not in item:
        raise PatchError(f"element {item!r} of {_where(path)} does not contain the merge key {key!r}")
    return item[key]


# --- Strategic merge patch: $setElementOrder ------------------------------------------------


def _apply_element_orders(original: dict, patch: dict, kind: str, path: str) -> None:
    """Merge every list that has a `$setElementOrder/<field>` and put it in that order."""
    for directive in [key for key in patch if key.startswith(_ORDER_PREFIX)]:
        order = patch.pop(directive)
        field = _directive_field(directive, _ORDER_PREFIX, path)
        field_path = _join(path, field)
        if not isinstance(order, list):
            raise PatchError(f"{directive} at {_where(path)} must be a list")
        server_order = list(_expect(original.get(field), list, order, field_path))
        key = _list_strategy(kind, field_path)
        if field in patch:
            value = patch.pop(field)
            if not isinstance(value, list):
                raise PatchError(f"{_where(field_path)} must be a list to use {directive}")
            if key is not None:
                _check_order(value, order, key, field_path)
            _merge_field(original, field, value, kind, field_path)
        if key is not None and field in original:
            original[field] = _normalize_order(original[field], order, server_order, key, field_path)


def _check_order(patch_list: list, order: list, key: str, path: str) -> None:
    """Require the patch list elements to appear in the `$setElementOrder` list, in order."""
    items = [item for item in patch_list if not (isinstance(item, dict) and _DIRECTIVE in item)]
    if not items or not order:
        return
    position = 0
    for entry in order:
        if _json_equal(_merge_value(items[position], key, path), _merge_value(entry, key, path)):
            position += 1
            if position == len(items):
                return
    raise PatchError(f"the order of {_where(path)} in the patch doesn't match $setElementOrder")


def _normalize_order(merged: list, order: list, server: list, key: str, path: str) -> list:
    """Order `merged` like upstream normalizeElementOrder (patch order, then live order)."""

    def index(items: list, item: Any) -> int:
        """Position of the element with `item`'s identity in `items`, or -1."""
        wanted = _merge_value(item, key, path)
        found = (i for i, e in enumerate(items) if _json_equal(_merge_value(e, key, path), wanted))
        return next(found, -1)

    in_patch = sorted((e for e in merged if index(order, e) >= 0), key=lambda e: index(order, e))
    server_only = sorted((e for e in merged if index(order, e) < 0), key=lambda e: index(server, e))
    result: list = []
    while in_patch and server_only:
        left, right = index(server, server_only[0]), index(server, in_patch[0])
        result.append((server_only if 0 <= left < right else in_patch).pop(0))
    return result + server_only + in_patch
