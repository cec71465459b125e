"""Go durations as Kubernetes flags take them (`30s`, `250ms`, `1m30s`, `2m0s`), or plain seconds."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")


def parse_duration(text: str) -> float:
    """Seconds from a plain number (`30`, `0.1`) or a Go duration (`30s`, `250ms`, `1m30s`)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            hint = "use seconds, or a Go duration such as 30s or 250ms"
            raise ValueError(f'invalid duration "{text}" ({hint})') from None
    if value < 0:
        raise ValueError(f'invalid duration "{text}": must not be negative')
    return value
