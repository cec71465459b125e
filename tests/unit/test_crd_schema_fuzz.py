"""Any schema a client sends, and any object, is answered with errors, never an exception."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiserver.crd_schema import CompiledSchema, SchemaError, cel_check

# CEL's environment raises the recursion limit when it is made, which the schemas below do on their first rule;
# hypothesis refuses a test that changes the limit, so it is made here, before any test runs
cel_check.environment()

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(-3, 3), st.sampled_from(["", "a", "1h", "x y"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(list("abc")), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYWORD_VALUES: dict[str, Any] = {
    "type": st.sampled_from(["object", "array", "string", "integer", "number", "boolean", "null", "", 3]),
    "format": st.sampled_from(["date-time", "int32", "byte", "uri", "nope", ""]),
    "nullable": st.booleans(),
    "enum": st.lists(_SCALARS, max_size=3),
    "pattern": st.sampled_from(["^a", "(", "[", "(?<=a)", ".*"]),
    "maximum": _SCALARS,
    "minimum": _SCALARS,
    "multipleOf": st.sampled_from([0, -1, 2, 0.5]),
    "maxLength": st.integers(-1, 3),
    "minItems": st.integers(-1, 3),
    "uniqueItems": st.booleans(),
    "required": st.one_of(st.lists(st.sampled_from(list("abc")), max_size=2), _SCALARS),
    "default": _JSON,
    "x-kubernetes-int-or-string": st.booleans(),
    "x-kubernetes-preserve-unknown-fields": st.booleans(),
    "x-kubernetes-embedded-resource": st.booleans(),
    "x-kubernetes-list-type": st.sampled_from(["set", "map", "atomic", "bag"]),
    "x-kubernetes-list-map-keys": st.one_of(st.lists(st.sampled_from(list("abc")), max_size=2), _SCALARS),
    "x-kubernetes-validations": st.one_of(
        st.lists(
            st.fixed_dictionaries(
                {
                    "rule": st.sampled_from(
                        ["self == oldSelf", "has(self.a)", "size(self) > 1", "self.a.b ==", "1/0 == 1"]
                    )
                },
                optional={
                    "fieldPath": st.sampled_from([".a", "x", "['b']"]),
                    "reason": st.sampled_from(["Nope", "FieldValueRequired"]),
                },
            ),
            max_size=2,
        ),
        _SCALARS,
    ),
}


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.fixed_dictionaries({}, optional=_KEYWORD_VALUES)
    return st.recursive(
        leaf,
        lambda inner: st.fixed_dictionaries(
            {},
            optional={
                **_KEYWORD_VALUES,
                "properties": st.one_of(
                    st.dictionaries(st.sampled_from(["a", "b", "c", "metadata"]), inner, max_size=3), _SCALARS
                ),
                "items": st.one_of(inner, st.lists(inner, max_size=1)),
                "additionalProperties": st.one_of(st.booleans(), inner),
                "anyOf": st.one_of(st.lists(inner, max_size=2), _SCALARS),
                "allOf": st.lists(inner, max_size=2),
                "not": inner,
            },
        ),
        max_leaves=6,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_schemas(), obj=_JSON, old=_JSON)
def test_never_raises(schema: dict[str, Any], obj: Any, old: Any) -> None:
    try:
        compiled = CompiledSchema.compile(schema)
    except SchemaError as e:
        assert e.errors
        return
    assert isinstance(compiled.check_structural("root"), list)
    value = copy.deepcopy(obj)
    compiled.default(value)
    dropped: list[str] = []
    compiled.prune(value, dropped)
    assert all(isinstance(p, str) for p in dropped)
    for path, reason, body in compiled.validate(value, old):
        assert isinstance(path, str) and reason and body
