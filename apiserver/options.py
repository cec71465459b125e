"""Query parameters of list, watch, get and write requests, parsed and checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery.errors import Cause, bad_request, invalid
from apimachinery.selectors import (
    FieldSelector,
    LabelSelector,
    SelectableFields,
    SelectorError,
    builtin_selectable_fields,
    parse_field_selector,
    parse_label_selector,
)

__all__ = ["ListOptions", "WriteOptions", "parse_bool", "parse_resource_version"]


def parse_bool(value: str | None) -> bool:
    """Kubernetes' query booleans: only `0` and `false` (and absence) are false."""
    return value is not None and value.lower() not in ("0", "false")


_MAX_UINT64 = (1 << 64) - 1


def parse_resource_version(rv: str) -> int:
    """A resourceVersion query parameter as upstream's versioner parses it (strconv.ParseUint); 400 if not one.

    "" and "0" are 0 (any version); a value past etcd's int64 revisions stays a number (the read then
    waits for a revision that never comes, as upstream's does).
    """
    if rv in ("", "0"):
        return 0
    if not rv.isascii() or not rv.isdigit():
        why = "invalid syntax"
    elif int(rv) > _MAX_UINT64:
        why = "value out of range"
    else:
        return int(rv)
    raise bad_request(
        f'invalid resource version: resourceVersion: Invalid value: "{rv}": strconv.ParseUint: parsing "{rv}": {why}'
    )


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError as e:
        raise bad_request(f'invalid value for {name}: "{raw}": must be an integer') from e


@dataclass
class ListOptions:
    """Options of list and watch requests."""

    label_selector: LabelSelector
    field_selector: FieldSelector
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None
    timeout_seconds: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], selectable: str | SelectableFields) -> ListOptions:
        """Parse and validate list/watch query parameters for a kind (its name, or its field selection)."""
        if isinstance(selectable, str):
            selectable = builtin_selectable_fields(selectable)
        try:
            labels = parse_label_selector(params.get("labelSelector", ""))
            fields = selectable.convert(parse_field_selector(params.get("fieldSelector", "")))
        except SelectorError as e:
            raise bad_request(str(e)) from e
        sie = params.get("sendInitialEvents")
        opts = cls(
            label_selector=labels,
            field_selector=fields,
            limit=max(_int(params, "limit") or 0, 0),
            continue_token=params.get("continue", ""),
            resource_version=params.get("resourceVersion", ""),
            resource_version_match=params.get("resourceVersionMatch", ""),
            watch=parse_bool(params.get("watch")),
            allow_bookmarks=parse_bool(params.get("allowWatchBookmarks")),
            send_initial_events=None if sie is None else parse_bool(sie),
            timeout_seconds=_int(params, "timeoutSeconds"),
        )
        opts._check()
        return opts

    def _check(self) -> None:
        rv, match = self.resource_version, self.resource_version_match
        parse_resource_version(rv)
        if match and match not in ("NotOlderThan", "Exact"):
            raise _invalid_opt("resourceVersionMatch", match, 'supported values: "Exact", "NotOlderThan"')
        if match and not rv and not (self.watch and self.send_initial_events):
            raise _invalid_opt(
                "resourceVersionMatch",
                match,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        if match == "Exact" and rv == "0":
            raise _invalid_opt(
                "resourceVersionMatch",
                match,
                'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            )
        if self.continue_token and rv and rv != "0":
            raise _invalid_opt(
                "resourceVersion",
                rv,
                "specifying resource version is not allowed when using continue",
            )
        if self.send_initial_events is not None and not self.watch:
            raise _invalid_opt(
                "sendInitialEvents",
                str(self.send_initial_events).lower(),
                "sendInitialEvents is forbidden for list",
            )
        if self.watch and self.send_initial_events and match != "NotOlderThan":
            raise _invalid_opt(
                "resourceVersionMatch",
                match,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )
        if self.watch and self.send_initial_events and not self.allow_bookmarks:
            raise _invalid_opt(
                "allowWatchBookmarks",
                "false",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            )


def _invalid_opt(name: str, value: str, why: str) -> Any:
    return invalid("ListOptions", "", [Cause(name, f'Invalid value: "{value}": {why}')], group="meta.k8s.io")


@dataclass
class WriteOptions:
    """Options of create, update, patch and delete requests."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> WriteOptions:
        """Parse dryRun, fieldManager, fieldValidation and force."""
        dry = params.get("dryRun", "")
        if dry and dry != "All":
            raise bad_request(f'Invalid dryRun value: "{dry}": supported values: "All"')
        manager = params.get("fieldManager", "")
        if len(manager) > 128:
            raise bad_request("fieldManager: Too long: may not be more than 128 bytes")
        validation = params.get("fieldValidation", "") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Strict", "Warn"'
            )
        return cls(
            dry_run=bool(dry),
            field_manager=manager,
            field_validation=validation,
            force=parse_bool(params.get("force")),
        )
