"""Structural schemas of CustomResourceDefinitions: check, prune, default and validate custom resources.

`CompiledSchema.compile(openAPIV3Schema)` compiles a CRD version's schema once (regexes, CEL rules,
format checks); the registry then calls `default`, `prune` and `validate` per object, and the CRD's
own validation calls `check_structural`. Errors are `(path, reason, message)` field error tuples
as `apimachinery.validation` makes them, in upstream apiextensions-apiserver's words.
"""

from apiserver.crd_schema.compiled import CompiledSchema
from apiserver.crd_schema.node import SchemaError

__all__ = ["CompiledSchema", "SchemaError"]
