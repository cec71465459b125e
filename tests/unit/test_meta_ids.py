"""Object uids and audit IDs are random version-4 UUIDs; `now` renders the current second."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from apimachinery.meta import new_uid, now, parse_time


def test_uids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for u in uids:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every variant nibble occurs (the two low bits are random)
    assert {u[19] for u in uids} == set("89ab")


def test_now_is_the_current_second() -> None:
    before = int(time.time())
    stamp = now()
    after = int(time.time())
    assert stamp.endswith("Z") and len(stamp) == 20
    assert before <= parse_time(stamp).timestamp() <= after
    assert stamp == datetime.fromtimestamp(parse_time(stamp).timestamp(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
