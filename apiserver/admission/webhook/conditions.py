"""matchConditions: CEL expressions a write must satisfy for a webhook to be called
(k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions), evaluated with cel-python over
`object`, `oldObject` and `request`. Any condition false: not called. An error (and none false):
refused under failurePolicy Fail, not called under Ignore. `authorizer` is not available here."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

from apiserver.crd_schema.cel_check import environment

__all__ = ["ConditionError", "compile_error", "evaluate_conditions"]


class ConditionError(Exception):
    """A condition that could not be evaluated."""


@dataclass(frozen=True)
class _Compiled:
    program: Any | None
    error: str


@functools.lru_cache(maxsize=1024)
def _compile(expression: str) -> _Compiled:
    try:
        env = environment()
        return _Compiled(env.program(env.compile(expression)), "")
    except (celpy.CELParseError, celpy.CELEvalError, ValueError, TypeError) as e:
        return _Compiled(None, str(e).splitlines()[0] if str(e) else type(e).__name__)


def compile_error(expression: str) -> str:
    """Why an expression does not compile ("" when it does)."""
    return _compile(expression).error


def evaluate_conditions(
    conditions: list[Mapping[str, Any]], obj: Any, old: Any, request: Mapping[str, Any]
) -> tuple[bool, str]:
    """(whether every condition holds, the errors met when none was false)."""
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel(dict(request)),
    }
    errors: list[str] = []
    for cond in conditions:
        expression = str(cond.get("expression", ""))
        compiled = _compile(expression)
        if compiled.program is None:
            errors.append(f"compilation failed for expression '{expression}': {compiled.error}")
            continue
        try:
            result = compiled.program.evaluate(activation)
        except (celpy.CELEvalError, TypeError, ValueError) as e:
            errors.append(f"expression '{expression}' resulted in error: {e.args[0] if e.args else e}")
            continue
        if isinstance(result, celpy.CELEvalError):
            errors.append(f"expression '{expression}' resulted in error: {result.args[0] if result.args else result}")
        elif not isinstance(result, celtypes.BoolType):
            errors.append(f"expression '{expression}' resulted in non-boolean value")
        elif not result:
            return False, ""
    if errors:
        return False, "[" + ", ".join(errors) + "]" if len(errors) > 1 else errors[0]
    return True, ""
