"""Object uids and audit IDs are random version-4 UUIDs; `now` renders the current second."""

from __future__ import annotations

import collections
import os
import re
import time
import uuid
from datetime import UTC, datetime

from apimachinery.meta import generate_name, new_uid, now, parse_time


def test_uids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for u in uids:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every variant nibble occurs (the two low bits are random)
    assert {u[19] for u in uids} == set("89ab")


def test_a_forked_child_makes_uids_of_its_own() -> None:
    new_uid()  # the parent holds random digits read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next uids, to the parent
        os.write(write, " ".join(new_uid() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        child = set(f.read().split())
    parent = {new_uid() for _ in range(300)}
    assert len(child) == 300 and not child & parent


def test_now_is_the_current_second() -> None:
    before = int(time.time())
    stamp = now()
    after = int(time.time())
    assert stamp.endswith("Z") and len(stamp) == 20
    assert before <= parse_time(stamp).timestamp() <= after
    assert stamp == datetime.fromtimestamp(parse_time(stamp).timestamp(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_generated_names_are_five_characters_of_the_alphabet_each_equally_likely() -> None:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphanums: no vowels, no 0, 1, 3
    names = [generate_name("web-") for _ in range(200_000)]
    assert all(re.fullmatch(f"web-[{alphabet}]{{5}}", n) for n in names[:2000])
    assert len(set(names[:2000])) > 1990
    counts = collections.Counter(c for n in names for c in n[4:])
    assert set(counts) == set(alphabet)
    # 37,037 each (standard deviation 189); a plain `byte % 27` would put 13 characters 5.5 % higher
    expected = 5 * len(names) / len(alphabet)
    assert all(abs(n - expected) < 0.025 * expected for n in counts.values()), counts
    long = generate_name("y" * 70)  # the prefix is cut at 58 characters
    assert re.fullmatch(f"y{{58}}[{alphabet}]{{5}}", long)
