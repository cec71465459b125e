"""Cron schedule syntax check (five fields or an @macro), as CronJob validation needs."""

from __future__ import annotations

import re

__all__ = ["MACROS", "schedule_error"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?$")


def schedule_error(schedule: str) -> str | None:
    """None when the schedule parses, else a message like the apiserver's."""
    s = schedule.strip()
    if s.startswith("TZ=") or s.startswith("CRON_TZ="):
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if s in MACROS:
        return None
    if s.startswith("@every "):
        return None
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{s}]"
    for f in fields:
        for part in f.split(","):
            if not _FIELD.match(part):
                return f"failed to parse int from {part}: strconv.Atoi: parsing {part!r}: invalid syntax"
    return None
