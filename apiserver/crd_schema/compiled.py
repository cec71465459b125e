"""CompiledSchema: one CRD version's openAPIV3Schema, compiled once, applied to every object.

Validation is one walk over the object that gathers, in upstream's order, kube-openapi's schema
errors, the embedded-resource checks, the list-type checks and the CEL rules. On an update
(`old` given) a value equal to its correlated old value is not judged again (upstream's validation
ratcheting), except for embedded-resource checks and transition rules. Transition rules (`oldSelf`)
run only where an old value correlates: object fields by name, list-type map entries by their keys.
"""

from __future__ import annotations

import copy
from typing import Any

from apimachinery.validation import FieldErrorTuple
from apiserver.crd_schema import cel, defaulting, openapi, pruning, structural
from apiserver.crd_schema.celvalues import to_cel
from apiserver.crd_schema.embedded import check_embedded
from apiserver.crd_schema.listtype import check_list, map_key
from apiserver.crd_schema.messages import child, index, invalid, key, with_reason
from apiserver.crd_schema.node import MISSING, Node, SchemaError, compile_node
from apiserver.crd_schema.values import json_equal

__all__ = ["CompiledSchema"]

# errors that stop CEL rules from running (they guard the cost of evaluating them), as upstream
_BLOCKING = frozenset(
    {"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany", "FieldValueTypeInvalid"}
)
_OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"
DEFAULT_CEL_BUDGET = 10_000
"""Values CEL rules may walk per validation: rules that iterate cost the size of what they walk, others one.

Upstream bounds rule cost (RuntimeCELCostBudget); cel-python is far slower than cel-go, so the budget
is counted in JSON values visited, sized so one object's rules stay within about a second of CPU."""
_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


class _Walk:
    __slots__ = ("budget", "cel", "lists", "meta", "schema")

    def __init__(self, budget: int) -> None:
        self.schema: list[FieldErrorTuple] = []
        self.meta: list[FieldErrorTuple] = []
        self.lists: list[FieldErrorTuple] = []
        self.cel: list[FieldErrorTuple] = []
        self.budget = budget  # below zero: spent, no further rules run


class CompiledSchema:
    """A compiled structural schema: check_structural, prune, default and validate objects against it."""

    def __init__(self, raw: dict[str, Any], root: Node, cel_budget: int = DEFAULT_CEL_BUDGET) -> None:
        self.raw = raw
        self.root = root
        self.cel_budget = cel_budget
        for n in _walk_nodes(root):
            if n.default is not MISSING:
                n.default = _pruned_default(n)

    @classmethod
    def compile(cls, schema: dict[str, Any], cel_budget: int = DEFAULT_CEL_BUDGET) -> CompiledSchema:
        """Compile an openAPIV3Schema dict; SchemaError when a CEL rule or a fieldPath does not compile."""
        if not isinstance(schema, dict):
            raise SchemaError("openAPIV3Schema must be an object")
        errors: list[FieldErrorTuple] = []
        root = compile_node(schema, "", errors)
        if errors:
            raise SchemaError("; ".join(f"{p}: {b}" if p else b for p, _, b in errors), errors)
        return cls(schema, root, cel_budget)

    @classmethod
    def problems(cls, schema: Any, path: str = "") -> list[FieldErrorTuple]:
        """Everything the CRD's validation says about `schema` at `path`: schema errors, else CEL ones.

        As upstream, rules are compiled (and their errors reported) only when the schema itself is sound.
        """
        if not isinstance(schema, dict):
            return [invalid(path or "<nil>", None, "must be an object")]
        try:
            return cls.compile(schema).check_structural(path)
        except SchemaError as e:
            found = structural.check(schema, None, path)
            return found or [(child(path, p) if path else p, reason, body) for p, reason, body in e.errors]

    def check_structural(self, path: str = "") -> list[FieldErrorTuple]:
        """Why the schema is not an acceptable structural schema (paths under `path`); [] when it is."""
        return structural.check(self.raw, self.root, path)

    def prune(self, obj: dict[str, Any], dropped: list[str] | None = None) -> dict[str, Any]:
        """Drop, in place, the fields the schema does not specify, and return `obj`.

        The dropped fields' paths (`spec.foo`, `spec.ports[0].bar`, what fieldValidation reports as
        `unknown field "spec.foo"`) are appended to `dropped` when it is given.
        """
        pruning.prune(obj, self.root, True, "", dropped if dropped is not None else [], root=True)
        return obj

    def default(self, obj: dict[str, Any]) -> None:
        """Apply the schema's defaults in place, then drop nulls neither nullable nor defaulted."""
        defaulting.apply_defaults(obj, self.root)
        defaulting.drop_nulls(obj, self.root)

    def validate(self, obj: Any, old: Any = None) -> list[FieldErrorTuple]:
        """Every error of `obj` against the schema; `old` is the stored object on an update."""
        w = _Walk(self.cel_budget)
        _validate(self.root, obj, MISSING if old is None else old, "", "", True, w)
        errs = w.schema + w.meta + w.lists
        if self.root.has_rules:
            if any(reason in _BLOCKING for _, reason, _ in errs):
                errs.append(invalid("<nil>", None, _NOT_CHECKED))
            else:
                errs.extend(w.cel)
        return errs


def _walk_nodes(n: Node) -> list[Node]:
    out = [n]
    for sub in (*n.properties.values(), n.additional, n.items):
        if sub is not None:
            out.extend(_walk_nodes(sub))
    return out


def _pruned_default(n: Node) -> Any:
    value = copy.deepcopy(n.default)
    pruning.prune(value, n, n.embedded, "", [])
    return value


def _validate(n: Node, value: Any, old: Any, opath: str, fpath: str, root: bool, w: _Walk) -> None:
    if old is not MISSING and json_equal(value, old):
        # ratcheting: an unchanged value keeps whatever it was accepted with, except that embedded
        # resources are checked and transition rules run on every write, as upstream does
        if n.has_embedded or n.has_transition:
            _check_unchanged(n, value, old, fpath, root, w)
        return
    openapi.local(n, value, opath, w.schema)
    if value is None:
        return
    if n.has_checks:
        if n.embedded and not root and isinstance(value, dict):
            check_embedded(value, fpath, w.meta)
        if n.list_type and isinstance(value, list):
            check_list(n, value, fpath, w.lists)
    if n.rules:
        if root:
            value, old = _root_for_cel(value), _root_for_cel(old)
        _run_rules(n, value, old, fpath, w)
    if isinstance(value, dict):
        if n.properties or n.additional:
            old_map = old if isinstance(old, dict) else None
            for k, v in value.items():
                sub = n.properties.get(k)
                o = old_map.get(k, MISSING) if old_map is not None else MISSING
                if sub is not None:
                    _validate(sub, v, o, openapi.child_opath(opath, k), child(fpath, k), False, w)
                elif n.additional is not None:
                    _validate(n.additional, v, o, f"{opath}.{k}", key(fpath, k), False, w)
        openapi.check_required(n, value, opath, w.schema)
    elif isinstance(value, list) and n.items is not None:
        olds = _correlated_items(n, old)
        for i, v in enumerate(value):
            o = MISSING
            if olds:
                o = olds.get(map_key(n, v), MISSING)
            _validate(n.items, v, o, f"{opath}[{i}]", index(fpath, i), False, w)


def _check_unchanged(n: Node, value: Any, old: Any, fpath: str, root: bool, w: _Walk) -> None:
    """What still applies to a value equal to its old one: embedded-resource checks, transition rules."""
    if n.embedded and not root and isinstance(value, dict):
        check_embedded(value, fpath, w.meta)
    if value is not None and any(r.transition for r in n.rules):
        if root:
            value, old = _root_for_cel(value), _root_for_cel(old)
        _run_rules(n, value, old, fpath, w, transition_only=True)
    if isinstance(value, dict):
        for k, v in value.items():
            sub = n.properties.get(k)
            if sub is None:
                sub, p = n.additional, key(fpath, k)
            else:
                p = child(fpath, k)
            if sub is not None and (sub.has_embedded or sub.has_transition):
                _check_unchanged(sub, v, v, p, False, w)
    elif isinstance(value, list) and n.items is not None and (n.items.has_embedded or n.items.has_transition):
        for i, v in enumerate(value):
            # only list-type map entries correlate; an equal list's entries are their own old values
            _check_unchanged(n.items, v, v if n.list_type == "map" else MISSING, index(fpath, i), False, w)


def _correlated_items(n: Node, old: Any) -> dict[str | None, Any] | None:
    if n.list_type != "map" or not isinstance(old, list):
        return None
    out: dict[str | None, Any] = {}
    for item in old:
        k = map_key(n, item)
        if k is not None:
            out.setdefault(k, item)
    return out


def _root_for_cel(obj: Any) -> Any:
    """At the root, rules see only metadata.name and metadata.generateName, as upstream."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        return obj
    meta = {k: v for k, v in obj["metadata"].items() if k in ("name", "generateName")}
    return {**obj, "metadata": meta}


def _size(value: Any) -> int:
    """How many JSON values `value` holds, itself included."""
    if isinstance(value, dict):
        return 1 + sum(_size(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v) for v in value)
    return 1


def _run_rules(n: Node, value: Any, old: Any, fpath: str, w: _Walk, transition_only: bool = False) -> None:
    if w.budget < 0:
        return
    size: int | None = None
    has_old = old is not MISSING
    plain: dict[str, Any] = {"self": value}
    if has_old and any(r.transition for r in n.rules):
        plain["oldSelf"] = old
    converted: dict[str, Any] = {}

    def activation() -> dict[str, Any]:
        # the values as the interpreter sees them, converted once, only when a rule needs it
        if not converted:
            converted.update((name, to_cel(n, v)) for name, v in plain.items())
        return converted

    # compiled rules read plain JSON; a format CEL types (timestamps, durations, bytes) needs the interpreter
    fast = not n.cel_typed
    for rule in n.rules:
        if (rule.transition and not has_old) or (transition_only and not rule.transition):
            continue
        if rule.iterates and size is None:
            size = _size(value) + (_size(old) if has_old else 0)
        w.budget -= size if rule.iterates and size is not None else 1
        if w.budget < 0:
            w.cel.append(invalid(fpath, n.type, _OUT_OF_BUDGET))
            return
        outcome = cel.evaluate_plain(rule, plain, activation) if fast else cel.evaluate(rule, activation())
        if outcome.ok:
            continue
        if outcome.eval_error:
            w.cel.append(invalid(fpath, n.type, outcome.detail))
            continue
        path = fpath
        if rule.field_path:
            path = fpath + rule.field_path if fpath else rule.field_path.lstrip(".")
        w.cel.append(with_reason(rule.reason or "FieldValueInvalid", path, n.type, outcome.detail))
