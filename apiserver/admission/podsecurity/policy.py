"""A namespace's Pod Security policy from its `pod-security.kubernetes.io/*` labels
(k8s.io/pod-security-admission/api: levels, versions, PolicyToEvaluate)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from apimachinery.validation import FieldErrorTuple, invalid

__all__ = [
    "AUDIT_LABEL",
    "ENFORCE_LABEL",
    "LABEL_PREFIX",
    "LEVELS",
    "WARN_LABEL",
    "LevelVersion",
    "Policy",
    "compare_levels",
    "policy_to_evaluate",
]

LABEL_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LABEL = LABEL_PREFIX + "enforce"
AUDIT_LABEL = LABEL_PREFIX + "audit"
WARN_LABEL = LABEL_PREFIX + "warn"
LEVELS = ("privileged", "baseline", "restricted")
_VERSION_RE = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")
_LATEST: tuple[int, int] | None = None  # None stands for "latest"


@dataclass(frozen=True)
class LevelVersion:
    """A level at a policy version (None: latest)."""

    level: str = "privileged"
    version: tuple[int, int] | None = _LATEST

    def __str__(self) -> str:
        v = "latest" if self.version is None else f"v{self.version[0]}.{self.version[1]}"
        return f"{self.level}:{v}"

    def equivalent(self, other: LevelVersion) -> bool:
        """Both privileged, or the same level and version."""
        return (self.level == other.level == "privileged") or self == other


@dataclass(frozen=True)
class Policy:
    """What a namespace enforces, audits and warns about."""

    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    def fully_privileged(self) -> bool:
        """Nothing to check in any mode."""
        return self.enforce.level == self.audit.level == self.warn.level == "privileged"


def compare_levels(a: str, b: str) -> int:
    """-1, 0 or 1 as level a is less, as or more strict than b."""
    return (LEVELS.index(a) > LEVELS.index(b)) - (LEVELS.index(a) < LEVELS.index(b))


def _level(value: str) -> tuple[str, str]:
    if value in LEVELS:
        return value, ""
    return "restricted", "must be one of privileged, baseline, restricted"


def _version(value: str) -> tuple[tuple[int, int] | None, str]:
    if value == "latest":
        return None, ""
    m = _VERSION_RE.match(value)
    if not m:
        return None, 'must be "latest" or "v1.x"'
    return (1, int(m.group(1))), ""


def policy_to_evaluate(
    labels: Mapping[str, str] | None, defaults: Policy | None = None
) -> tuple[Policy, list[FieldErrorTuple]]:
    """PolicyToEvaluate: the labels over the defaults; a bad enforce label means restricted, a bad
    audit or warn label privileged (fail open), each bad label one field error."""
    p = defaults or Policy()
    labels = labels or {}
    errs: list[FieldErrorTuple] = []

    def note(label: str, value: str, why: str) -> None:
        if why:
            errs.append(invalid(f"metadata.labels[{label}]", value, why))

    modes = {"enforce": p.enforce, "audit": p.audit, "warn": p.warn}
    has_enforce_level = False
    for mode in ("enforce", "audit", "warn"):
        label = LABEL_PREFIX + mode
        if label in labels:
            level, why = _level(labels[label])
            note(label, labels[label], why)
            if why and mode != "enforce":
                level = "privileged"
            has_enforce_level |= mode == "enforce" and not why
            modes[mode] = replace(modes[mode], level=level)
        if label + "-version" in labels:
            version, why = _version(labels[label + "-version"])
            note(label + "-version", labels[label + "-version"], why)
            modes[mode] = replace(modes[mode], version=version)
    stricter = compare_levels(modes["enforce"].level, modes["warn"].level) > 0
    if WARN_LABEL not in labels and has_enforce_level and stricter:
        version = modes["warn"].version if WARN_LABEL + "-version" in labels else modes["enforce"].version
        modes["warn"] = LevelVersion(modes["enforce"].level, version)
    return Policy(modes["enforce"], modes["audit"], modes["warn"]), errs
