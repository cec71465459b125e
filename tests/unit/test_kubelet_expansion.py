"""`$(VAR)` expansion as Kubernetes does it."""

from __future__ import annotations

import pytest

from kubelet.expansion import expand

ENV = {"VAR_A": "A", "VAR_B": "B", "VAR_EMPTY": "", "POD_IP": "127.1.0.2"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_B)", "A-B"),
        ("$(VAR_EMPTY)", ""),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$(VAR_A)", "$A"),
        ("$$$$(VAR_A)", "$$(VAR_A)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$VAR_A", "$VAR_A"),
        ("$", "$"),
        ("foo$", "foo$"),
        ("$()", "$()"),
        ("--bind $(POD_IP)", "--bind 127.1.0.2"),
        ("$(VAR_A)$(VAR_B)$(UNKNOWN)", "AB$(UNKNOWN)"),
        ("no refs", "no refs"),
    ],
)
def test_expand(text: str, want: str) -> None:
    assert expand(text, ENV) == want
