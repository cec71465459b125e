"""Structural schemas of CustomResourceDefinitions: check, prune, default and validate custom resources.

    s = CompiledSchema.compile(openAPIV3Schema)  # SchemaError (with .errors) if a rule does not compile
                                                 # (cel_budget=: values CEL rules may walk per object)
    s.check_structural(path)                     # the CRD validation's errors about the schema, under path
    CompiledSchema.problems(openAPIV3Schema, path)  # the same without raising: schema, else rule errors
    s.default(obj)                               # defaults in place (defaults were pruned when compiled)
    s.prune(obj, dropped)                        # unknown fields dropped in place; their paths → dropped
    s.validate(obj, old)                         # field errors; `old` on an update (ratcheting, oldSelf)

Everything costly (RE2 regexes, CEL programs, format checks, pruned defaults) happens once in
`compile`. Errors are `(path, reason, message)` field error tuples as `apimachinery.validation`
makes them, in upstream apiextensions-apiserver's and kube-openapi's words.
"""

from apiserver.crd_schema.compiled import CompiledSchema
from apiserver.crd_schema.node import SchemaError

__all__ = ["CompiledSchema", "SchemaError"]
