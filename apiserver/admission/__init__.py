"""Admission: plug-ins that see every write after authorization, in one ordered chain — first every
mutating plug-in (may change the object), then, after the kind's own validation, every
validating plug-in (may only refuse). As kube-apiserver's `--enable-admission-plugins`; each
plug-in lives in its own module and refuses with a `StatusError` (usually 403 Forbidden, as
upstream's `admission.NewForbidden`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from apimachinery.resources import ResourceInfo
from apiserver.admission.feedback import current_feedback
from apiserver.context import UserInfo

if TYPE_CHECKING:
    from apiserver.registry import Registry

__all__ = ["AdmissionAttributes", "MutatingPlugin", "ValidatingPlugin"]


@dataclass
class AdmissionAttributes:
    """One write as admission sees it (upstream's `admission.Attributes`).

    `operation` is CREATE, UPDATE, DELETE or CONNECT; `obj` is the object being written (None on
    DELETE), `old` the stored one (None on CREATE); `options` the CreateOptions / UpdateOptions /
    DeleteOptions as sent.
    """

    operation: str
    resource: ResourceInfo
    subresource: str
    namespace: str
    name: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    user: UserInfo | None
    dry_run: bool = False
    options: dict[str, Any] | None = None
    # what plug-ins hand back besides their verdict: warnings for the response's `Warning: 299 - "..."`
    # headers (upstream's warning.AddWarning) and annotations for the request's audit event
    # (Attributes.AddAnnotation); both also reach the request through `apiserver.admission.feedback`
    warnings: list[str] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)

    def add_warning(self, text: str) -> None:
        """Send `text` to the client as a Warning header (once)."""
        if text not in self.warnings:
            self.warnings.append(text)
        if (feedback := current_feedback()) is not None:
            feedback.add_warning(text)

    def add_annotation(self, key: str, value: str) -> None:
        """Record an audit annotation (the first value set for a key wins, as upstream)."""
        self.annotations.setdefault(key, value)
        if (feedback := current_feedback()) is not None:
            feedback.add_annotation(key, value)


class MutatingPlugin(Protocol):
    """A plug-in that may change the object (runs before validation)."""

    name: str

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Whether this plug-in cares about this write at all."""
        ...

    async def admit(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Change `attrs.obj` in place, or raise a StatusError to refuse."""
        ...


class ValidatingPlugin(Protocol):
    """A plug-in that may only refuse (runs after the kind's validation)."""

    name: str

    def handles(self, attrs: AdmissionAttributes) -> bool:
        """Whether this plug-in cares about this write at all."""
        ...

    async def validate(self, attrs: AdmissionAttributes, reg: Registry) -> None:
        """Raise a StatusError to refuse; never change the object."""
        ...
