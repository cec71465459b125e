"""Kubernetes' `$(VAR)` expansion for env values, command and args (third_party/forked/golang/expansion)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["expand", "mapping_for"]


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """A lookup over `contexts` in order; an unknown name maps back to `$(name)` (left as is)."""

    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


def _read_name(rest: str) -> tuple[str, bool, int]:
    """(text, is_variable, characters consumed after the `$`)."""
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        end = rest.find(")", 1)
        if end < 0:
            return "$(", False, 1
        return rest[1:end], True, end + 1
    return "$" + rest[0], False, 1


def expand(text: str, mapping: Callable[[str], str] | Mapping[str, str]) -> str:
    """Replace `$(VAR)` through `mapping`; `$$` is a literal `$`; unknown or unclosed references stay."""
    lookup = mapping_for(mapping) if isinstance(mapping, Mapping) else mapping
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_name(text[cursor + 1 :])
            out.append(lookup(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)
