"""CustomResourceDefinitions (apiextensions.k8s.io/v1): a CRD becomes a kind in the kind registry.

`strategy` validates and defaults CRDs themselves; `resource` turns one CRD into the `KindDefinition`
of its custom resources (strategy, printer columns, selectable fields, status and scale subresources,
version conversion); `controller` runs in every apiserver, follows CRDs through the watch cache, adds
and removes their kinds, writes their NamesAccepted/Established conditions and empties a deleted
CRD's resources before its `customresourcecleanup` finalizer goes; `schema` is the seam to the
structural-schema module (validation, pruning, defaulting).
"""

from __future__ import annotations
