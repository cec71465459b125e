"""The seam to structural schemas: what the custom-resource code asks of a CRD version's schema.

The CRD and custom-resource code compile each version's `openAPIV3Schema` through a `SchemaCompiler`
and use only the `SchemaValidator` methods below, the interface of `apiserver.crd_schema.CompiledSchema`.
Until that module is wired in (`KindOptions(compile_schema=adapt(CompiledSchema.compile, SchemaError))`,
the one place), `PassThroughSchema` accepts every object as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from apimachinery.errors import Cause

__all__ = [
    "PassThroughSchema",
    "SchemaCompiler",
    "SchemaError",
    "SchemaValidator",
    "adapt",
    "pass_through",
    "to_causes",
]

Obj = dict[str, Any]


class SchemaError(ValueError):
    """A schema that cannot be compiled; the message says why."""


class SchemaValidator(Protocol):
    """One compiled version schema."""

    def check_structural(self) -> list[str]:
        """Why the schema is not structural (messages for the CRD's validation); empty when it is."""
        ...

    def prune(self, obj: Obj) -> Obj:
        """The object without the fields the schema does not know."""
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

    def check_structural(self) -> list[str]:
        """No complaint."""
        return []

    def prune(self, obj: Obj) -> Obj:
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


def adapt(compile_schema: Callable[[Obj], SchemaValidator], error: type[Exception]) -> SchemaCompiler:
    """A compiler raising this module's `SchemaError` where `compile_schema` raises `error`, e.g.
    `adapt(crd_schema.CompiledSchema.compile, crd_schema.SchemaError)` for `KindOptions.compile_schema`."""

    def compile_(schema: Obj) -> SchemaValidator:
        try:
            return compile_schema(schema)
        except error as e:
            raise SchemaError(str(e)) from e

    return compile_


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
