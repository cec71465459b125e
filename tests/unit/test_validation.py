"""Unit tests for apimachinery.validation: name/label syntax checks and ObjectMeta validation."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.validation import (
    TOTAL_ANNOTATION_SIZE_LIMIT_B,
    error_body,
    forbidden,
    format_value,
    go_quote,
    invalid,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    mask_trailing_dash,
    max_len_error,
    not_supported,
    regex_error,
    required,
    too_long,
    validate_annotations,
    validate_finalizers,
    validate_labels,
    validate_object_meta,
    validate_owner_references,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_REGEX_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
NAME_PART_MSG = "name part " + QNAME_REGEX_MSG
TOO_MANY_SLASHES_MSG = (
    "a qualified name " + QNAME_REGEX_MSG + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --- message helpers -----------------------------------------------------------------------


def test_message_helpers() -> None:
    assert max_len_error(253) == "must be no more than 253 characters"
    assert regex_error("bad", "[a-z]+") == "bad (regex used for validation is '[a-z]+')"
    assert regex_error("bad", "x", "a", "b") == ("bad (e.g. 'a',  or 'b', regex used for validation is 'x')")


# --- syntax checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "ab",
        "abc",
        "a1",
        "a-1",
        "a--1--2--b",
        "0",
        "01",
        "0-1",
        "a.b",
        "a.b.c",
        "1.2.3.4",
        "example.com",
        "a" * 253,
        ("a" * 63 + ".") * 3 + "a",
    ],
    ids=lambda v: v[:20],
)
def test_dns1123_subdomain_valid(value: str) -> None:
    assert is_dns1123_subdomain(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", [SUBDOMAIN_MSG]),
        ("A", [SUBDOMAIN_MSG]),
        ("Bad_Name", [SUBDOMAIN_MSG]),
        ("-a", [SUBDOMAIN_MSG]),
        ("a-", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        (".a", [SUBDOMAIN_MSG]),
        ("a.", [SUBDOMAIN_MSG]),
        ("a b", [SUBDOMAIN_MSG]),
        ("a\n", [SUBDOMAIN_MSG]),
        ("ü", [SUBDOMAIN_MSG]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN_MSG]),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_dns1123_subdomain_invalid(value: str, errors: list[str]) -> None:
    assert is_dns1123_subdomain(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("a", []),
        ("a-1", []),
        ("0", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("a.b", ["must not contain dots"]),
        ("A", [LABEL_MSG]),
        ("-a", [LABEL_MSG]),
        ("a_b", [LABEL_MSG]),
        ("", [LABEL_MSG]),
        (
            "a" * 30 + "." + "b" * 40,
            ["must be no more than 63 characters", "must not contain dots"],
        ),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_dns1123_label(value: str, errors: list[str]) -> None:
    assert is_dns1123_label(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("a", []),
        ("my-svc", []),
        ("a1", []),
        ("a" * 63, []),
        ("1a", [DNS1035_MSG]),
        ("a.b", [DNS1035_MSG]),
        ("a-", [DNS1035_MSG]),
        ("", [DNS1035_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_dns1035_label(value: str, errors: list[str]) -> None:
    assert is_dns1035_label(value) == errors


@pytest.mark.parametrize(
    "value",
    [
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "1234",
        "simple/simple",
        "now-with-dashes/simple",
        "now-with-dashes/now-with-dashes",
        "now.with.dots/simple",
        "now-with.dashes-and.dots/simple",
        "1-num.2-num/3-num",
        "1234/5678",
        "1.2.3.4/5678",
        "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123",
        "requests.storage-foo",
        "a" * 63,
        "a" * 253 + "/" + "b" * 63,
    ],
    ids=lambda v: v[:20],
)
def test_qualified_name_valid(value: str) -> None:
    assert is_qualified_name(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", ["name part must be non-empty", NAME_PART_MSG]),
        ("nospecialchars%^=@", [NAME_PART_MSG]),
        ("cantendwithadash-", [NAME_PART_MSG]),
        ("-cantstartwithadash-", [NAME_PART_MSG]),
        ("only/one/slash", [TOO_MANY_SLASHES_MSG]),
        ("Example.com/abc", ["prefix part " + SUBDOMAIN_MSG]),
        ("example_com/abc", ["prefix part " + SUBDOMAIN_MSG]),
        ("example.com/", ["name part must be non-empty", NAME_PART_MSG]),
        ("/simple", ["prefix part must be non-empty"]),
        ("/", ["prefix part must be non-empty", "name part must be non-empty", NAME_PART_MSG]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("a" * 254 + "/abc", ["prefix part must be no more than 253 characters"]),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_qualified_name_invalid(value: str, errors: list[str]) -> None:
    assert is_qualified_name(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", []),
        ("simple", []),
        ("now-with-dashes", []),
        ("1-starts-with-num", []),
        ("end-with-num-1", []),
        ("1234", []),
        ("Upper_And.dots-1", []),
        ("a" * 63, []),
        ("nospecialchars%^=@", [LABEL_VALUE_MSG]),
        ("Tama-nui-te-rā.is.Māori.sun", [LABEL_VALUE_MSG]),
        ("\\backslashes\\are\\bad", [LABEL_VALUE_MSG]),
        ("-starts-with-dash", [LABEL_VALUE_MSG]),
        ("ends-with-dash-", [LABEL_VALUE_MSG]),
        (".starts.with.dot", [LABEL_VALUE_MSG]),
        ("a/b", [LABEL_VALUE_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("ä" * 32, ["must be no more than 63 characters", LABEL_VALUE_MSG]),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_label_value(value: str, errors: list[str]) -> None:
    assert is_valid_label_value(value) == errors


@pytest.mark.parametrize(
    ("prefix", "masked"),
    [("web-", "wea"), ("a-", "a"), ("-", "-"), ("web", "web"), ("", "")],
    ids=lambda v: repr(v),
)
def test_mask_trailing_dash(prefix: str, masked: str) -> None:
    assert mask_trailing_dash(prefix) == masked


# --- field error rendering -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb\t", '"a\\nb\\t"'),
        ("\x00\x7f", '"\\x00\\x7f"'),
        ("ü日本", '"ü日本"'),
        ("\u00a0", '"\\u00a0"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
    ids=lambda v: repr(v),
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("x", '"x"'),
        (-1, "-1"),
        (True, "true"),
        (None, "null"),
        (["a", "b"], '[]string{"a", "b"}'),
        ([], "[]string{}"),
    ],
    ids=lambda v: repr(v),
)
def test_format_value(value: Any, rendered: str) -> None:
    assert format_value(value) == rendered


def test_error_constructors() -> None:
    assert invalid("metadata.name", "Bad_Name", "oops") == (
        "metadata.name",
        "FieldValueInvalid",
        'Invalid value: "Bad_Name": oops',
    )
    assert required("metadata.namespace") == (
        "metadata.namespace",
        "FieldValueRequired",
        "Required value",
    )
    assert required("metadata.name", "x") == (
        "metadata.name",
        "FieldValueRequired",
        "Required value: x",
    )
    assert forbidden("metadata.namespace", "not allowed on this type") == (
        "metadata.namespace",
        "FieldValueForbidden",
        "Forbidden: not allowed on this type",
    )
    assert too_long("metadata.annotations", 10) == (
        "metadata.annotations",
        "FieldValueTooLong",
        "Too long: must have at most 10 bytes",
    )
    assert not_supported("spec.type", "X", ["A", "B"]) == (
        "spec.type",
        "FieldValueNotSupported",
        'Unsupported value: "X": supported values: "A", "B"',
    )
    assert error_body("FieldValueInvalid", 5) == "Invalid value: 5"


# --- ObjectMeta ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "namespaced"),
    [
        ({"name": "web", "namespace": "default"}, True),
        ({"name": "web.example.com", "namespace": "kube-system"}, True),
        ({"name": "node-1"}, False),
        ({"name": "node-1", "namespace": ""}, False),
        ({"name": "web-x7k2p", "generateName": "web-", "namespace": "ns"}, True),
        (
            {
                "name": "a",
                "namespace": "ns",
                "labels": {"app": "web", "example.com/tier": "", "k": "V_1.x"},
                "annotations": {"Example.COM/Key": "anything at all", "kubectl.io/x": "{}"},
                "finalizers": ["kubernetes", "example.com/cleanup", "orphan"],
                "generation": 3,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "rs",
                        "uid": "u1",
                        "controller": True,
                    },
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": "p",
                        "uid": "u2",
                        "controller": False,
                    },
                ],
            },
            True,
        ),
    ],
    ids=["simple", "dotted", "cluster", "cluster-empty-ns", "generate-name", "full"],
)
def test_validate_object_meta_valid(meta: dict, namespaced: bool) -> None:
    assert validate_object_meta(meta, namespaced=namespaced) == []


@pytest.mark.parametrize(
    ("meta", "namespaced", "kwargs", "errors"),
    [
        (
            {"namespace": "ns"},
            True,
            {},
            [
                (
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ],
        ),
        (
            {"name": "Bad_Name", "namespace": "ns"},
            True,
            {},
            [("metadata.name", "FieldValueInvalid", f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}')],
        ),
        (
            {"name": "a" * 254, "namespace": "ns"},
            True,
            {},
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{"a" * 254}": must be no more than 253 characters',
                )
            ],
        ),
        (
            {"name": "my.svc", "namespace": "ns"},
            True,
            {"name_validator": is_dns1035_label},
            [("metadata.name", "FieldValueInvalid", f'Invalid value: "my.svc": {DNS1035_MSG}')],
        ),
        (
            {"name": "web"},
            True,
            {},
            [("metadata.namespace", "FieldValueRequired", "Required value")],
        ),
        (
            {"name": "web", "namespace": "Bad_NS"},
            True,
            {},
            [("metadata.namespace", "FieldValueInvalid", f'Invalid value: "Bad_NS": {LABEL_MSG}')],
        ),
        (
            {"name": "web", "namespace": "a.b"},
            True,
            {},
            [
                (
                    "metadata.namespace",
                    "FieldValueInvalid",
                    'Invalid value: "a.b": must not contain dots',
                )
            ],
        ),
        (
            {"name": "node", "namespace": "default"},
            False,
            {},
            [("metadata.namespace", "FieldValueForbidden", "Forbidden: not allowed on this type")],
        ),
        (
            {"name": "X", "generateName": "Web-", "namespace": "ns"},
            True,
            {},
            [
                (
                    "metadata.generateName",
                    "FieldValueInvalid",
                    f'Invalid value: "Web-": {SUBDOMAIN_MSG}',
                ),
                ("metadata.name", "FieldValueInvalid", f'Invalid value: "X": {SUBDOMAIN_MSG}'),
            ],
        ),
        (
            {"generateName": "web-", "namespace": "ns"},
            True,
            {},
            [
                (
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "generation": -1},
            True,
            {},
            [
                (
                    "metadata.generation",
                    "FieldValueInvalid",
                    "Invalid value: -1: must be greater than or equal to 0",
                )
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "labels": {"-bad": "ok", "good": "not ok"}},
            True,
            {},
            [
                ("metadata.labels", "FieldValueInvalid", f'Invalid value: "-bad": {NAME_PART_MSG}'),
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "not ok": {LABEL_VALUE_MSG}',
                ),
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "annotations": {"a/b/c": "x", "/x": ""}},
            True,
            {},
            [
                (
                    "metadata.annotations",
                    "FieldValueInvalid",
                    f'Invalid value: "a/b/c": {TOO_MANY_SLASHES_MSG}',
                ),
                (
                    "metadata.annotations",
                    "FieldValueInvalid",
                    'Invalid value: "/x": prefix part must be non-empty',
                ),
            ],
        ),
        (
            {
                "name": "a",
                "namespace": "ns",
                "annotations": {"big": "x" * (TOTAL_ANNOTATION_SIZE_LIMIT_B - 2)},
            },
            True,
            {},
            [
                (
                    "metadata.annotations",
                    "FieldValueTooLong",
                    "Too long: must have at most 262144 bytes",
                )
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "finalizers": ["custom"]},
            True,
            {},
            [
                (
                    "metadata.finalizers[0]",
                    "FieldValueInvalid",
                    'Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
                )
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "finalizers": ["ok/x", "Bad_/x"]},
            True,
            {},
            [
                (
                    "metadata.finalizers",
                    "FieldValueInvalid",
                    f'Invalid value: "Bad_/x": prefix part {SUBDOMAIN_MSG}',
                )
            ],
        ),
        (
            {"name": "a", "namespace": "ns", "finalizers": ["orphan", "foregroundDeletion"]},
            True,
            {},
            [
                (
                    "metadata.finalizers",
                    "FieldValueInvalid",
                    'Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer orphan and '
                    "foregroundDeletion cannot be both set",
                )
            ],
        ),
    ],
    ids=[
        "name-required",
        "name-syntax",
        "name-too-long",
        "custom-validator",
        "namespace-required",
        "namespace-syntax",
        "namespace-dots",
        "namespace-forbidden",
        "generate-name-and-name",
        "generate-name-only",
        "negative-generation",
        "labels",
        "annotation-keys",
        "annotation-size",
        "finalizer-not-qualified",
        "finalizer-syntax",
        "finalizer-conflict",
    ],
)
def test_validate_object_meta_errors(
    meta: dict, namespaced: bool, kwargs: dict, errors: list[tuple[str, str, str]]
) -> None:
    assert validate_object_meta(meta, namespaced=namespaced, **kwargs) == errors


def test_validate_object_meta_reports_everything_in_upstream_order() -> None:
    meta = {
        "name": "Bad",
        "namespace": "x",
        "labels": {"ok": "-v"},
        "annotations": {"-k": ""},
        "finalizers": ["f"],
    }
    fields = [path for path, _, _ in validate_object_meta(meta, namespaced=False)]
    assert fields == [
        "metadata.name",
        "metadata.namespace",
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers[0]",
    ]


def test_annotation_size_counts_keys_and_values_in_bytes() -> None:
    limit = TOTAL_ANNOTATION_SIZE_LIMIT_B
    assert validate_annotations({"k": "x" * (limit - 1)}, "a") == []
    assert validate_annotations({"k": "x" * limit}, "a") == [
        ("a", "FieldValueTooLong", f"Too long: must have at most {limit} bytes")
    ]
    assert validate_annotations({"k": "é" * (limit // 2)}, "a") != []


def test_validate_labels_and_finalizers_accept_none() -> None:
    assert validate_labels(None, "metadata.labels") == []
    assert validate_annotations(None, "metadata.annotations") == []
    assert validate_finalizers(None, "metadata.finalizers") == []
    assert validate_owner_references(None, "metadata.ownerReferences") == []


@pytest.mark.parametrize(
    ("refs", "errors"),
    [
        (
            [{"apiVersion": "", "kind": "", "name": "", "uid": ""}],
            [
                (
                    "p.apiVersion",
                    "FieldValueInvalid",
                    'Invalid value: "": version must not be empty',
                ),
                ("p.kind", "FieldValueInvalid", 'Invalid value: "": must not be empty'),
                ("p.name", "FieldValueInvalid", 'Invalid value: "": must not be empty'),
                ("p.uid", "FieldValueInvalid", 'Invalid value: "": must not be empty'),
            ],
        ),
        (
            [{"apiVersion": "a/b/c", "kind": "K", "name": "n", "uid": "u"}],
            [
                (
                    "p.apiVersion",
                    "FieldValueInvalid",
                    'Invalid value: "a/b/c": version must not be empty',
                )
            ],
        ),
        (
            [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}],
            [
                (
                    "p",
                    "FieldValueInvalid",
                    "Invalid value: &OwnerReference{Kind:Event,Name:e,UID:u,APIVersion:v1,"
                    "Controller:nil,BlockOwnerDeletion:nil,}: /v1, Kind=Event is disallowed from "
                    "being an owner",
                )
            ],
        ),
        (
            [
                {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
                {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
            ],
            [
                (
                    "p",
                    "FieldValueInvalid",
                    "Invalid value: []v1.OwnerReference{"
                    'v1.OwnerReference{APIVersion:"v1", Kind:"A", Name:"a", UID:"1", '
                    "Controller:(*bool)(true), BlockOwnerDeletion:(*bool)(nil)}, "
                    'v1.OwnerReference{APIVersion:"v1", Kind:"B", Name:"b", UID:"2", '
                    "Controller:(*bool)(true), BlockOwnerDeletion:(*bool)(nil)}}: "
                    "Only one reference can have Controller set to true. "
                    'Found "true" in references for A/a and B/b',
                )
            ],
        ),
    ],
    ids=["all-empty", "bad-api-version", "event-owner", "two-controllers"],
)
def test_validate_owner_references(refs: list[dict], errors: list) -> None:
    assert validate_owner_references(refs, "p") == errors


def test_label_errors_are_the_same_each_time_and_name_each_path() -> None:
    # one label's errors are computed once and kept: a repeat must give the same errors, a caller changing the
    # list it got must not change the next caller's, and the same label under another path names that path
    labels = {"bad key!": "ok", "app": "-bad-value"}
    first = validate_labels(labels, "metadata.labels")
    assert [(p, r) for p, r, _ in first] == [("metadata.labels", "FieldValueInvalid")] * 2
    first.clear()
    assert validate_labels(labels, "metadata.labels") == validate_labels(dict(labels), "metadata.labels")
    assert len(validate_labels(labels, "metadata.labels")) == 2
    other = validate_labels(labels, "spec.template.metadata.labels")
    assert {p for p, _, _ in other} == {"spec.template.metadata.labels"}
    assert [m for _, _, m in other] == [m for _, _, m in validate_labels(labels, "metadata.labels")]
