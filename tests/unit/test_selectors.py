"""Unit tests for apimachinery.selectors: label/field selector parsing, matching and strings."""

from __future__ import annotations

import pytest

from apimachinery.selectors import (
    EVERYTHING,
    NOTHING,
    SUPPORTED_FIELDS,
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    check_field_selector,
    convert_field_selector,
    escape_field_value,
    field_set_for,
    new_requirement,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    selector_from_map,
    unescape_field_value,
)

KEY_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
BINARY_OPS = "in, notin, =, ==, !=, gt, lt"


# --- label selector parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=", "x="),
        ("x= ", "x="),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        ("x==a", "x==a"),
        ("z=c,a=b", "a=b,z=c"),
        ("\rx", "x"),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x in (def,abc)", "x in (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ()", "x in ()"),
        ("x in (,)", "x in ()"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("notin=in", "notin=in"),
        ("in in (in, notin)", "in in (in,notin)"),
        ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("a=b,a!=c", "a=b,a!=c"),
    ],
    ids=lambda v: repr(v),
)
def test_parse_label_selector_canonical_string(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    assert parse_label_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=a||y=b", None),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "x<a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("a b", f"unable to parse requirement: found 'b', expected: {BINARY_OPS}"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a=!b", "unable to parse requirement: found '!', expected: identifier"),
        ("a (b)", f"unable to parse requirement: found '(', expected: {BINARY_OPS}"),
        (
            "-a=b",
            f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_NAME_MSG}',
        ),
        (
            "a=-b",
            f'unable to parse requirement: values[0][a]: Invalid value: "-b": {LABEL_VALUE_MSG}',
        ),
        (
            "a in (ok,-b)",
            f'unable to parse requirement: values[0][a]: Invalid value: "-b": {LABEL_VALUE_MSG}',
        ),
        (
            "a in (x_,-b)",
            "unable to parse requirement: "
            f'[values[0][a]: Invalid value: "-b": {LABEL_VALUE_MSG}, '
            f'values[1][a]: Invalid value: "x_": {LABEL_VALUE_MSG}]',
        ),
        (
            "a/b/c",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "/a",
            'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty',
        ),
        (
            "a" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": name part must '
            "be no more than 63 characters",
        ),
        (
            "a=" + "b" * 64,
            f'unable to parse requirement: values[0][a]: Invalid value: "{"b" * 64}": '
            "must be no more than 63 characters",
        ),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_parse_label_selector_errors(text: str, message: str | None) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(text)
    assert isinstance(exc.value, ValueError)
    if message is not None:
        assert str(exc.value) == message


def test_parse_is_deterministic() -> None:
    assert parse_label_selector("x=a,a=x") == parse_label_selector("a=x,x=a")


def test_parsed_requirements_structure() -> None:
    sel = parse_label_selector("x notin (b,a),!y,z,w==1,v>3")
    assert sel.requirements == (
        Requirement("v", "gt", ("3",)),
        Requirement("w", "==", ("1",)),
        Requirement("x", "notin", ("a", "b")),
        Requirement("y", "!", ()),
        Requirement("z", "exists", ()),
    )


# --- label selector matching ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x==y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("x", {"x": ""}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x<1", {"x": "-5"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x!=y", {}, True),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("x>1", {"x": "v2"}, False),
        ("x>1", {}, False),
        ("x in (a,b)", {"x": "b"}, True),
        ("x in (a,b)", {"x": "c"}, False),
        ("x in (a,b)", {}, False),
        ("x in ()", {"x": ""}, True),
        ("x notin (a,b)", {"x": "c"}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x notin (a,b)", {}, True),
        ("x notin ()", {"y": ""}, True),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ],
    ids=lambda v: repr(v),
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_matches_none_labels_as_empty() -> None:
    assert parse_label_selector("!x").matches(None)
    assert not parse_label_selector("x").matches(None)
    assert EVERYTHING.matches(None)


@pytest.mark.parametrize(
    ("req", "labels", "expected"),
    [
        (Requirement("x", "in", ("",)), {"y": "baz"}, False),
        (Requirement("z", "gt", ("1",)), {"z": "2"}, True),
        (Requirement("z", "gt", ("1", "2")), {"z": "5"}, False),
        (Requirement("z", "lt", ("x",)), {"z": "5"}, False),
        (Requirement("z", "bogus", ("1",)), {"z": "1"}, False),
    ],
    ids=["in-empty", "gt", "gt-two-values", "lt-non-int", "unknown-op"],
)
def test_requirement_matches_direct(req: Requirement, labels: dict, expected: bool) -> None:
    assert req.matches(labels) is expected


def test_everything_and_nothing() -> None:
    assert EVERYTHING.empty
    assert EVERYTHING.matches({"a": "b"})
    assert str(EVERYTHING) == ""
    assert not NOTHING.empty
    assert not NOTHING.matches({})
    assert not NOTHING.matches({"a": "b"})
    assert str(NOTHING) == ""
    assert NOTHING != EVERYTHING
    assert NOTHING.add(Requirement("a", "exists")) is NOTHING
    assert NOTHING.requires_exact_match("a") is None
    assert isinstance(NOTHING, LabelSelector)


@pytest.mark.parametrize(
    ("text", "label", "expected"),
    [
        ("a=b", "a", "b"),
        ("a==b", "a", "b"),
        ("a in (b)", "a", "b"),
        ("a in (b,c)", "a", None),
        ("a!=b", "a", None),
        ("a", "a", None),
        ("x=y", "a", None),
    ],
    ids=lambda v: repr(v),
)
def test_requires_exact_match(text: str, label: str, expected: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(label) == expected


def test_add_sorts_by_key() -> None:
    sel = parse_label_selector("m=1").add(Requirement("z", "exists"), Requirement("a", "!"))
    assert str(sel) == "!a,m=1,z"


@pytest.mark.parametrize(
    ("req", "text"),
    [
        (Requirement("x", "in", ("def", "abc")), "x in (abc,def)"),
        (Requirement("y", "notin", ("jkl",)), "y notin (jkl)"),
        (Requirement("z", "exists"), "z"),
        (Requirement("z", "!"), "!z"),
        (Requirement("y", "!=", ("jkl",)), "y!=jkl"),
        (Requirement("z", "notin", ("",)), "z notin ()"),
        (Requirement("x", "=", ("abc",)), "x=abc"),
        (Requirement("y", "==", ("jkl",)), "y==jkl"),
        (Requirement("x", "gt", ("2",)), "x>2"),
        (Requirement("y", "lt", ("8",)), "y<8"),
    ],
    ids=lambda v: str(v),
)
def test_requirement_str(req: Requirement, text: str) -> None:
    assert str(req) == text


# --- new_requirement / metav1.LabelSelector --------------------------------------------------


@pytest.mark.parametrize(
    ("key", "op", "values", "ok"),
    [
        ("x", "in", None, False),
        ("x", "notin", [], False),
        ("x", "in", ["foo"], True),
        ("x", "notin", ["foo"], True),
        ("x", "exists", None, True),
        ("x", "!", None, True),
        ("1foo", "in", ["bar"], True),
        ("1234", "in", ["bar"], True),
        ("y", "gt", ["1"], True),
        ("z", "lt", ["6"], True),
        ("foo", "gt", ["bar"], False),
        ("barz", "lt", ["blah"], False),
        ("a" * 254, "exists", None, False),
        ("x", "=", ["a", "b"], False),
        ("x", "exists", ["a"], False),
        ("x", "~", ["a"], False),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_new_requirement_validation(key: str, op: str, values: list | None, ok: bool) -> None:
    if ok:
        assert new_requirement(key, op, values).key == key
    else:
        with pytest.raises(SelectorError):
            new_requirement(key, op, values)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("x", "in", None),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            ("x", "in", []),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            ("x", "=", ["a", "b"]),
            'values: Invalid value: []string{"a", "b"}: exact-match compatibility requires one single value',
        ),
        (
            ("x", "exists", ["a"]),
            'values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist',
        ),
        (
            ("x", "~", ["a"]),
            'operator: Unsupported value: "~": supported values: "in", "notin", "=", "==", '
            '"!=", "gt", "lt", "exists", "!"',
        ),
        (("-x", "exists", None), f'key: Invalid value: "-x": {KEY_NAME_MSG}'),
        (
            ("-x", "in", None),
            f'[key: Invalid value: "-x": {KEY_NAME_MSG}, values: Invalid value: '
            "[]string(nil): for 'in', 'notin' operators, values set can't be empty]",
        ),
        (
            ("x", "gt", ["1", "a"]),
            "[values: Invalid value: []string{\"1\", \"a\"}: for 'Gt', 'Lt' operators, exactly "
            "one value is required, values[1]: Invalid value: \"a\": for 'Gt', 'Lt' operators, "
            "the value must be an integer]",
        ),
    ],
    ids=["in-nil", "in-empty", "eq-two", "exists-values", "bad-op", "bad-key", "two", "gt"],
)
def test_new_requirement_messages(args: tuple, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        new_requirement(*args)
    assert str(exc.value) == message


def test_new_requirement_with_path() -> None:
    with pytest.raises(SelectorError) as exc:
        new_requirement("x", "in", ["-v"], path="spec.selector")
    assert str(exc.value) == (f'spec.selector.values[0][x]: Invalid value: "-v": {LABEL_VALUE_MSG}')


@pytest.mark.parametrize(
    ("obj", "canonical"),
    [
        ({}, ""),
        ({"matchLabels": {}, "matchExpressions": []}, ""),
        ({"matchLabels": None}, ""),
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "Exists", "values": []},
                ],
            },
            "app=web,!canary,env notin (prod),tier in (be,fe),zone",
        ),
    ],
    ids=["empty", "empty-lists", "null-labels", "labels", "mixed"],
)
def test_selector_from_label_selector(obj: dict, canonical: str) -> None:
    sel = selector_from_label_selector(obj)
    assert str(sel) == canonical
    assert sel.empty is (canonical == "")


def test_selector_from_label_selector_none_matches_nothing() -> None:
    sel = selector_from_label_selector(None)
    assert sel is NOTHING
    assert not sel.matches({})


def test_selector_from_label_selector_matching() -> None:
    sel = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}],
        }
    )
    assert sel.matches({"app": "web", "tier": "fe"})
    assert not sel.matches({"app": "web", "tier": "db"})
    assert not sel.matches({"tier": "fe"})
    # In-values keep their given order internally; the string form sorts them.
    assert sel.requirements[1].values == ("fe", "be")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Foo"}]},
            '"Foo" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a"}]},
            '"" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"-a": "b"}}, f'key: Invalid value: "-a": {KEY_NAME_MSG}'),
        (
            {"matchLabels": {"a": "b c"}},
            f'values[0][a]: Invalid value: "b c": {LABEL_VALUE_MSG}',
        ),
    ],
    ids=["bad-op", "missing-op", "in-no-values", "in-empty", "exists-values", "key", "value"],
)
def test_selector_from_label_selector_errors(obj: dict, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        selector_from_label_selector(obj)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("m", "labels", "expected"),
    [
        ({}, {"foo": "bar"}, True),
        (None, {"foo": "bar"}, True),
        ({"foo": "bar"}, {"foo": "bar", "baz": "blah"}, True),
        ({"foo": "bar", "baz": "blah"}, {"foo": "bar", "baz": "blah"}, True),
        ({"foo": "bar", "x": "y"}, {"foo": "bar"}, False),
        ({"foo": "baz"}, {"foo": "bar"}, False),
    ],
    ids=["empty", "none", "subset", "all", "missing-key", "mismatch"],
)
def test_selector_from_map(m: dict | None, labels: dict, expected: bool) -> None:
    assert selector_from_map(m).matches(labels) is expected


def test_selector_from_map_string_and_empty() -> None:
    assert str(selector_from_map({"b": "2", "a": "1"})) == "a=1,b=2"
    assert selector_from_map({}).empty
    assert selector_from_map({}) == EVERYTHING


# --- field selectors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", (), ""),
        (",", (), ""),
        ("a=b", (FieldRequirement("a", "=", "b"),), "a=b"),
        ("a==b", (FieldRequirement("a", "=", "b"),), "a=b"),
        ("a!=b", (FieldRequirement("a", "!=", "b"),), "a!=b"),
        ("a=", (FieldRequirement("a", "=", ""),), "a="),
        (
            "z=1,a!=2",
            (FieldRequirement("a", "!=", "2"), FieldRequirement("z", "=", "1")),
            "a!=2,z=1",
        ),
        ("a=b\\,c", (FieldRequirement("a", "=", "b,c"),), "a=b\\,c"),
        ("a=b\\=c", (FieldRequirement("a", "=", "b=c"),), "a=b\\=c"),
        ("a=b\\\\c", (FieldRequirement("a", "=", "b\\c"),), "a=b\\\\c"),
        ("a=!b", (FieldRequirement("a", "=", "!b"),), "a=!b"),
        (" a = b ", (FieldRequirement(" a ", "=", " b "),), " a = b "),
        ("metadata.name=x,", (FieldRequirement("metadata.name", "=", "x"),), "metadata.name=x"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_parse_field_selector(text: str, requirements: tuple, canonical: str) -> None:
    sel = parse_field_selector(text)
    assert sel.requirements == requirements
    assert str(sel) == canonical
    assert sel.empty is (not requirements)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a==b,c", "invalid selector: 'a==b,c'; can't understand 'c'"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
        ("a\\,b", "invalid selector: 'a\\,b'; can't understand 'a\\,b'"),
        ("a\\=b=c", "invalid field selector: unescaped character in value: 61"),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a,b", "a=b", "a\\b", "\\,=\\\\", "x=y,z\\"],
    ids=lambda v: repr(v),
)
def test_escape_round_trip(value: str) -> None:
    assert unescape_field_value(escape_field_value(value)) == value
    sel = parse_field_selector("f=" + escape_field_value(value))
    assert sel.requirements == (FieldRequirement("f", "=", value),)


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a=", {}, True),
        ("a!=", {}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a=b,c=d", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b", "c": "x"}, False),
    ],
    ids=lambda v: repr(v),
)
def test_field_selector_matches(text: str, fields: dict, expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_field_selector_helpers() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert sel.fields_used() == {"spec.nodeName", "status.phase"}
    assert sel.requires_exact_match("spec.nodeName") == "n1"
    assert sel.requires_exact_match("status.phase") is None
    assert FieldSelector().empty
    assert FieldSelector().matches({})


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("Pod", "spec.nodeName=a,status.phase=Running,metadata.namespace=x"),
        ("Pod", "status.podIPs=1.2.3.4"),
        ("Event", "involvedObject.uid=u,reason=r,type=Normal,source=s,reportingComponent=c"),
        ("Secret", "type=Opaque"),
        ("Node", "spec.unschedulable=false,metadata.name=n"),
        ("Namespace", "status.phase=Active"),
        ("ReplicaSet", "status.replicas=3"),
        ("ReplicationController", "status.replicas=3"),
        ("Job", "status.successful=1"),
        ("Service", "spec.clusterIP=None,spec.type=ClusterIP"),
        ("ConfigMap", "metadata.name=a,metadata.namespace=b"),
        ("Deployment", ""),
    ],
    ids=lambda v: v[:30],
)
def test_check_field_selector_ok(kind: str, text: str) -> None:
    check_field_selector(kind, parse_field_selector(text))


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("Pod", "spec.foo=a", "field label not supported: spec.foo"),
        ("Node", "metadata.namespace=a", "field label not supported: metadata.namespace"),
        ("Namespace", "metadata.namespace=a", "field label not supported: metadata.namespace"),
        ("Event", "z=1,a=1", "field label not supported: a"),
        (
            "Job",
            "status.succeeded=1",
            'field label "status.succeeded" not supported for batchv1.Job',
        ),
        (
            "ConfigMap",
            "data=x",
            '"data" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (
            "Deployment",
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
    ],
    ids=lambda v: v[:30],
)
def test_check_field_selector_rejects(kind: str, text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        check_field_selector(kind, parse_field_selector(text))
    assert str(exc.value) == message


def test_convert_field_selector_pod_spec_host_alias() -> None:
    sel = convert_field_selector("Pod", parse_field_selector("spec.host=n1"))
    assert sel.requirements == (FieldRequirement("spec.nodeName", "=", "n1"),)
    with pytest.raises(SelectorError):
        convert_field_selector("Node", parse_field_selector("spec.host=n1"))


def test_supported_fields_cover_field_sets() -> None:
    for kind, supported in SUPPORTED_FIELDS.items():
        produced = set(field_set_for(kind, {"metadata": {"name": "x"}}))
        # metadata.namespace is always produced (as "") even where not selectable.
        assert produced - {"metadata.namespace"} <= supported, kind


POD = {
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {
        "nodeName": "n1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "hostNetwork": True,
    },
    "status": {
        "phase": "Running",
        "podIP": "10.0.0.9",
        "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
        "nominatedNodeName": "n2",
    },
}


@pytest.mark.parametrize(
    ("kind", "obj", "expected"),
    [
        (
            "Pod",
            POD,
            {
                "metadata.name": "p",
                "metadata.namespace": "ns",
                "spec.nodeName": "n1",
                "spec.restartPolicy": "Always",
                "spec.schedulerName": "default-scheduler",
                "spec.serviceAccountName": "default",
                "spec.hostNetwork": "true",
                "status.phase": "Running",
                "status.podIP": "10.0.0.1",
                "status.nominatedNodeName": "n2",
            },
        ),
        (
            "Pod",
            {"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.9"}},
            {
                "metadata.name": "p",
                "metadata.namespace": "",
                "spec.nodeName": "",
                "spec.restartPolicy": "",
                "spec.schedulerName": "",
                "spec.serviceAccountName": "",
                "spec.hostNetwork": "false",
                "status.phase": "",
                "status.podIP": "10.0.0.9",
                "status.nominatedNodeName": "",
            },
        ),
        (
            "Event",
            {
                "metadata": {"name": "e", "namespace": "ns"},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": "ns",
                    "name": "p",
                    "uid": "u1",
                    "apiVersion": "v1",
                    "resourceVersion": "7",
                    "fieldPath": "spec.containers{c}",
                },
                "reason": "Scheduled",
                "reportingComponent": "kubelet",
                "type": "Normal",
            },
            {
                "metadata.name": "e",
                "metadata.namespace": "ns",
                "involvedObject.kind": "Pod",
                "involvedObject.namespace": "ns",
                "involvedObject.name": "p",
                "involvedObject.uid": "u1",
                "involvedObject.apiVersion": "v1",
                "involvedObject.resourceVersion": "7",
                "involvedObject.fieldPath": "spec.containers{c}",
                "reason": "Scheduled",
                "reportingComponent": "kubelet",
                "source": "kubelet",
                "type": "Normal",
            },
        ),
        (
            "Secret",
            {"metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque"},
            {"metadata.name": "s", "metadata.namespace": "ns", "type": "Opaque"},
        ),
        (
            "Node",
            {"metadata": {"name": "n"}, "spec": {"unschedulable": True}},
            {"metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "true"},
        ),
        (
            "Node",
            {"metadata": {"name": "n"}},
            {"metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "false"},
        ),
        (
            "Namespace",
            {"metadata": {"name": "ns"}, "status": {"phase": "Active"}},
            {"metadata.name": "ns", "metadata.namespace": "", "status.phase": "Active"},
        ),
        (
            "ReplicaSet",
            {"metadata": {"name": "r", "namespace": "ns"}, "status": {"replicas": 3}},
            {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "3"},
        ),
        (
            "ReplicationController",
            {"metadata": {"name": "r", "namespace": "ns"}},
            {"metadata.name": "r", "metadata.namespace": "ns", "status.replicas": "0"},
        ),
        (
            "Job",
            {"metadata": {"name": "j", "namespace": "ns"}, "status": {"succeeded": 2}},
            {"metadata.name": "j", "metadata.namespace": "ns", "status.successful": "2"},
        ),
        (
            "Service",
            {
                "metadata": {"name": "s", "namespace": "ns"},
                "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"},
            },
            {
                "metadata.name": "s",
                "metadata.namespace": "ns",
                "spec.clusterIP": "10.96.0.1",
                "spec.type": "ClusterIP",
            },
        ),
        (
            "ConfigMap",
            {"metadata": {"name": "c", "namespace": "ns"}, "data": {"a": "b"}},
            {"metadata.name": "c", "metadata.namespace": "ns"},
        ),
        ("ConfigMap", {}, {"metadata.name": "", "metadata.namespace": ""}),
    ],
    ids=[
        "pod",
        "pod-minimal",
        "event",
        "secret",
        "node-unschedulable",
        "node-default",
        "namespace",
        "replicaset",
        "rc-no-status",
        "job",
        "service",
        "configmap",
        "empty-object",
    ],
)
def test_field_set_for(kind: str, obj: dict, expected: dict[str, str]) -> None:
    assert field_set_for(kind, obj) == expected


def test_event_source_prefers_source_component() -> None:
    event = {"source": {"component": "scheduler"}, "reportingComponent": "other"}
    assert field_set_for("Event", event)["source"] == "scheduler"


def test_field_selector_against_pod_field_set() -> None:
    fields = field_set_for("Pod", POD)
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed").matches(fields)
    assert not parse_field_selector("spec.hostNetwork=false").matches(fields)
    assert parse_field_selector("status.podIPs=").matches(fields)
