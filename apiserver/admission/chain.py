"""The admission chain: the configured plug-ins, run in order for every write (upstream's
admission.chainAdmissionHandler). Built by `apiserver.security.build_admission`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from apiserver.admission import AdmissionAttributes, MutatingPlugin, ValidatingPlugin

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["AdmissionChain"]


class AdmissionChain:
    """Mutating plug-ins, then (after the kind's validation) validating plug-ins."""

    def __init__(self, mutating: Sequence[MutatingPlugin] = (), validating: Sequence[ValidatingPlugin] = ()) -> None:
        self.mutating = tuple(mutating)
        self.validating = tuple(validating)

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Run every mutating plug-in that handles this write; the first refusal ends the write."""
        for plugin in self.mutating:
            if plugin.handles(attrs):
                await plugin.admit(attrs, reg)

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Run every validating plug-in that handles this write; the first refusal ends the write."""
        for plugin in self.validating:
            if plugin.handles(attrs):
                await plugin.validate(attrs, reg)
