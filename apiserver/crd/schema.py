"""The seam to structural schemas: what the custom-resource code asks of a CRD version's schema.

The CRD and custom-resource code compile each version's `openAPIV3Schema` through a `SchemaCompiler`
and use only the `SchemaValidator` methods below, the interface of `apiserver.crd_schema.CompiledSchema`,
which `KindOptions.compile_schema` uses by default (`compile_structural`). `PassThroughSchema` accepts
every object as it is (a stored CRD whose schema no longer compiles is served with it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from apimachinery.errors import Cause
from apimachinery.validation import FieldErrorTuple
from apiserver.crd_schema import CompiledSchema, SchemaError

__all__ = [
    "PassThroughSchema",
    "SchemaCompiler",
    "SchemaError",
    "SchemaValidator",
    "compile_structural",
    "pass_through",
    "to_causes",
]

Obj = dict[str, Any]


class SchemaValidator(Protocol):
    """One compiled version schema."""

    def check_structural(self, path: str = "") -> list[FieldErrorTuple]:
        """Why the schema is not structural (field errors under `path`, for the CRD's validation)."""
        ...

    def prune(self, obj: Obj, dropped: list[str] | None = None) -> Obj:
        """The object without the fields the schema does not know (their paths appended to `dropped`)."""
        ...

    def default(self, obj: Obj) -> None:
        """Apply the schema's `default`s in place."""
        ...

    def validate(self, obj: Obj, old: Obj | None = None) -> list[Any]:
        """Field errors of the object (against `old` for transition rules)."""
        ...


SchemaCompiler = Callable[[Obj], SchemaValidator]


class PassThroughSchema:
    """A schema that accepts everything and changes nothing."""

    def check_structural(self, path: str = "") -> list[FieldErrorTuple]:
        """No complaint."""
        return []

    def prune(self, obj: Obj, dropped: list[str] | None = None) -> Obj:
        """The object as it is."""
        return obj

    def default(self, obj: Obj) -> None:
        """Nothing to default."""

    def validate(self, obj: Obj, old: Obj | None = None) -> list[Any]:
        """No errors."""
        return []


def pass_through(schema: Obj) -> SchemaValidator:
    """The default compiler: every schema compiles to `PassThroughSchema`."""
    return PassThroughSchema()


def compile_structural(schema: Obj) -> SchemaValidator:
    """The structural-schema compiler (`apiserver.crd_schema`); SchemaError carries its field errors."""
    return CompiledSchema.compile(schema)


def to_causes(errors: list[Any]) -> list[Cause]:
    """Field errors as Causes: `Cause`s as they are, `(path, reason, message)` tuples converted."""
    out = []
    for e in errors:
        if isinstance(e, Cause):
            out.append(e)
        else:
            path, reason, message = e
            out.append(Cause(path, message, reason))
    return out
