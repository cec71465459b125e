"""CEL rules compiled to closures (celfast) answer as cel-python's interpreter does, or hand over to it."""

from __future__ import annotations

import functools
from typing import Any

import celpy
import pytest

from apiserver.crd_schema import cel, celfast

SELF: dict[str, Any] = {
    "replicas": 3,
    "max": 5,
    "neg": -7,
    "big": 2**63 - 1,
    "ratio": 0.5,
    "zero": 0,
    "flag": True,
    "name": "web-42",
    "empty": "",
    "items": [1, 2, 3],
    "unsorted": [3, 1, 2],
    "words": ["a", "b", "c"],
    "floats": [1.5, 2.5],
    "mixed": [1, "a"],
    "nested": [[1, 2], [3]],
    "labels": {"app": "web", "tier": "front"},
    "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
    "nothing": None,
}
OLD: dict[str, Any] = {**SELF, "replicas": 2, "name": "web-41"}

# rules the compiler translates; each must give the interpreter's outcome on SELF/OLD (true or false)
COMPILED_RULES = [
    "self.replicas <= self.max",
    "self.replicas < self.max && self.max > 0",
    "self.replicas >= self.max || self.name == 'web-42'",
    "self.replicas != 3",
    "!has(self.missing) || self.missing <= 10",
    "has(self.labels) && has(self.labels.app)",
    "self.replicas + 2 == 5 && self.max - 7 == -2 && self.max * 3 == 15",
    "self.max / 2 == 2 && self.max % 2 == 1",
    "self.ratio * 2.0 == 1.0 && self.ratio / 2.0 < 0.3 && -self.ratio < 0.0",
    "-self.neg == 7",
    "self.replicas > 1 ? self.name.startsWith('web') : false",
    "size(self.name) == 6 && self.name.size() == 6 && size(self.items) == 3 && size(self.labels) == 2",
    "self.name.endsWith('42') && self.name.contains('b-') && self.name.matches('^[a-z]+-[0-9]+$')",
    "'app' in self.labels && !('x' in self.labels) && 2 in self.items && !(9 in self.items)",
    "'b' in self.words && self.words == ['a', 'b', 'c'] && self.words != ['a']",
    "self.items.all(i, i > 0) && self.items.exists(i, i == 2) && self.items.exists_one(i, i > 2)",
    "self.items.filter(i, i > 1) == [2, 3] && self.items.map(i, i * 10) == [10, 20, 30]",
    "self.labels.all(k, k.size() > 2) && self.labels.exists(k, self.labels[k] == 'web')",
    "self.ports.all(p, p.port > 0 && p.name.size() > 0)",
    "self.ports[1].port == 443 && self.labels['tier'] == 'front' && self.nested[0][1] == 2",
    "self.items.isSorted() && !self.unsorted.isSorted() && self.items.sum() == 6 && self.floats.sum() == 4.0",
    "self.items.min() == 1 && self.items.max() == 3 && self.words.max() == 'c'",
    "self.items.indexOf(2) == 1 && self.items.lastIndexOf(9) == -1 && self.name.indexOf('-') == 3",
    "self.name.split('-').size() == 2 && self.name.split('-', 1) == ['web-42'] && self.words.join('+') == 'a+b+c'",
    "self.name.lowerAscii() == self.name && self.name.upperAscii() == 'WEB-42' && ' x '.trim() == 'x'",
    "self.name.find('[0-9]+') == '42' && self.name.replace('-', '_') == 'web_42'",
    "self.name + '!' == 'web-42!' && self.items + [4] == [1, 2, 3, 4]",
    "self.nothing == null && self.flag && !(self.flag == false)",
    "self.labels == {'app': 'web', 'tier': 'front'}",
    "self.replicas >= oldSelf.replicas && self.name != oldSelf.name",
    "self == oldSelf",
    "self.empty == '' && \"double\" == 'double' && 0x10 == 16",
    "self.labels != {} && {}.size() == 0 && 'a' < 'b' && 'é'.size() == 1 && 0.0 == -0.0",
    "self.replicas > 5 && self.missing == 1",  # false && error is false
    "self.replicas < 5 || self.missing == 1",  # true || error is true
    "(self.replicas > 1 ? self.replicas : self.missing) == 3",  # the branch not taken is not evaluated
    "self.labels.exists_one(k, k.startsWith('t')) && self.ports.map(p, p.port).max() == 443",
    "self.name.matches('^[0-9]+$')",
    "self.words.exists(w, w == 'z')",
    "true || [].min() == 1",  # errors that || and && absorb, on the side not needed
    "false && self.items.sum() == 'x'",
    "self.replicas > 0 || self.name.split('') == []",
    "has(self.nothing)",
]

# every one of these makes the interpreter report an error (or a case the closures leave to it)
FALLBACK_RULES = [
    "self.missing == 1",  # no such key
    "self.big + 1 > 0",  # int overflow
    "self.big * 2 > 0",
    "-self.big - 2 < 0",
    "self.replicas / self.zero == 1",  # division by zero
    "self.replicas % self.zero == 1",
    "self.neg / 2 == -3",  # truncation toward zero
    "self.replicas < self.ratio",  # no implicit int/double mixing
    "self.replicas + self.ratio > 0",
    "self.replicas == self.ratio",
    "self.flag == 1",
    "self.name < 3",
    "self.name.startsWith(1)",
    "self.items[5] == 1",  # index out of bounds
    "self.replicas && true",  # not a bool
    "!self.replicas",
    "self.mixed.max() == 1",
    "[].min() == 1",
    "self.mixed.isSorted()",
    "self.missing > 0 || self.replicas > 0",  # an error `||` may absorb
    "size(self.replicas) == 1",
    "self.labels.missing == 'x'",
]

# not in the compiled subset: the interpreter always runs
NOT_COMPILED = [
    "int(self.ratio) == 0",
    "string(self.replicas) == '3'",
    "self.replicas == 3u",
    "b'x' == b'x'",
    "duration('1m') > duration('1s')",
    "self.items.map(i, i > 1, i * 2) == [4, 6]",
    "type(self.replicas) == int",
    "self.labels.all(k, v, true)",
    "9223372036854775808 > 0",
]


def _interpreted(rule: cel.CelRule, values: dict[str, Any]) -> cel.Outcome:
    return cel.evaluate(rule, {k: celpy.json_to_cel(v) for k, v in values.items()})


def _activation(values: dict[str, Any]) -> Any:
    return lambda: {k: celpy.json_to_cel(v) for k, v in values.items()}


@functools.cache
def _compile(text: str, message: str = "") -> cel.CelRule:
    return cel.compile_rule({"rule": text, "message": message}, "")


@pytest.mark.parametrize("text", COMPILED_RULES)
def test_compiled_rule_answers_as_the_interpreter(text: str) -> None:
    rule = _compile(text)
    assert rule.fast is not None
    values = {"self": SELF, "oldSelf": OLD if "oldSelf" in text else SELF}
    answer = rule.fast(values)  # no Fallback: the closures answer this one themselves
    expected = _interpreted(rule, values)
    assert not expected.eval_error, expected.detail
    assert answer is expected.ok
    assert cel.evaluate_plain(rule, values, _activation(values)) == expected


@pytest.mark.parametrize("text", COMPILED_RULES)
def test_compiled_rule_negated_answers_as_the_interpreter(text: str) -> None:
    rule = _compile(f"!({text})", "nope")
    values = {"self": SELF, "oldSelf": OLD if "oldSelf" in text else SELF}
    assert rule.fast is not None
    expected = _interpreted(rule, values)
    assert rule.fast(values) is expected.ok
    assert cel.evaluate_plain(rule, values, _activation(values)) == expected
    assert expected in (cel.Outcome(True), cel.Outcome(False, "nope"))


@pytest.mark.parametrize("text", FALLBACK_RULES)
def test_closures_hand_errors_to_the_interpreter(text: str) -> None:
    rule = _compile(text)
    values = {"self": SELF}
    assert rule.fast is not None
    with pytest.raises(celfast.Fallback):
        rule.fast(values)
    expected = _interpreted(rule, values)
    assert cel.evaluate_plain(rule, values, _activation(values)) == expected


# values of another type (or absent, or at int64's edge) in place of each field, one at a time
_SWAPS: list[Any] = [None, 0, -1, 2**63 - 1, 1.5, "", "x", True, [], [1], ["a", 1], {}, {"a": 1}]


@pytest.mark.parametrize("field", [f for f in SELF if f not in ("neg", "zero", "empty", "nested")])
def test_compiled_rules_on_values_of_every_type(field: str) -> None:
    """Whatever a field holds, the outcome (result, error, message) is the interpreter's."""
    rules = [_compile(text, "msg") for text in COMPILED_RULES + FALLBACK_RULES if f"self.{field}" in text]
    assert rules
    for swap in [*_SWAPS, MISSING_FIELD]:
        value = {k: v for k, v in SELF.items() if k != field}
        if swap is not MISSING_FIELD:
            value[field] = swap
        values = {"self": value, "oldSelf": OLD}
        converted = {k: celpy.json_to_cel(v) for k, v in values.items()}
        for rule in rules:
            assert cel.evaluate_plain(rule, values, lambda c=converted: c) == cel.evaluate(rule, converted), (
                rule.rule,
                field,
                swap,
            )


MISSING_FIELD = object()


def test_fallback_keeps_the_interpreters_error_texts() -> None:
    values = {"self": SELF}
    cases = {
        "self.missing == 1": "no such key: missing evaluating rule: self.missing == 1",
        "self.replicas / self.zero == 1": "division by zero evaluating rule: self.replicas / self.zero == 1",
    }
    for text, detail in cases.items():
        outcome = cel.evaluate_plain(_compile(text), values, _activation(values))
        assert outcome == cel.Outcome(False, detail, True)
    # an error that `||` absorbs is the interpreter's true, not the closures' error
    assert cel.evaluate_plain(_compile("self.missing > 0 || self.replicas > 0"), values, _activation(values)).ok


@pytest.mark.parametrize("text", NOT_COMPILED)
def test_rules_outside_the_subset_are_interpreted(text: str) -> None:
    rule = _compile(text)
    assert rule.fast is None
    values = {"self": SELF}
    assert cel.evaluate_plain(rule, values, _activation(values)) == _interpreted(rule, values)


def test_activation_is_converted_only_when_the_interpreter_runs() -> None:
    calls: list[int] = []

    def activation() -> dict[str, Any]:
        calls.append(1)
        return {"self": celpy.json_to_cel(SELF)}

    assert cel.evaluate_plain(_compile("self.replicas < 5"), {"self": SELF}, activation).ok
    assert calls == []
    assert not cel.evaluate_plain(_compile("self.replicas > 5", "too few"), {"self": SELF}, activation).ok
    assert calls == [1]  # the message may need it (messageExpression)
