"""Validation of names, label keys/values and object metadata, with Kubernetes' exact messages.

Ports apimachinery `pkg/util/validation` (syntax checks returning lists of message strings,
empty meaning valid), `pkg/util/validation/field` (how a field error renders: `Invalid value:
"x": detail`, `Required value: detail`, ...) and `pkg/api/validation/objectmeta.go` plus the
core additions in `pkg/apis/core/validation` (`validate_object_meta`). Field errors are plain
`(field path, reason, message)` tuples where `reason` is the StatusCause type (for example
`FieldValueInvalid`) and `message` is the error body without the field path, as it appears in a
Status' `details.causes[].message`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DNS1035_LABEL_MAX_LENGTH",
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "FINALIZER_DELETE_DEPENDENTS",
    "FINALIZER_KUBERNETES",
    "FINALIZER_ORPHAN_DEPENDENTS",
    "LABEL_VALUE_MAX_LENGTH",
    "QUALIFIED_NAME_MAX_LENGTH",
    "TOTAL_ANNOTATION_SIZE_LIMIT_B",
    "FieldErrorTuple",
    "empty_error",
    "error_body",
    "forbidden",
    "format_value",
    "go_quote",
    "internal_error",
    "invalid",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_domain_prefixed_path",
    "is_path_segment_name",
    "is_qualified_name",
    "is_valid_cidr",
    "is_valid_ip",
    "is_valid_label_value",
    "is_valid_port_name",
    "is_valid_port_num",
    "is_wildcard_dns1123_subdomain",
    "mask_trailing_dash",
    "max_len_error",
    "not_supported",
    "regex_error",
    "required",
    "too_long",
    "validate_annotations",
    "validate_finalizers",
    "validate_labels",
    "validate_object_meta",
    "validate_owner_references",
]

FieldErrorTuple = tuple[str, str, str]
"""A field error: (field path, reason such as "FieldValueInvalid", message body)."""

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * (1 << 10)

FINALIZER_KUBERNETES = "kubernetes"
FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"
_STANDARD_FINALIZERS = frozenset({FINALIZER_KUBERNETES, FINALIZER_ORPHAN_DEPENDENTS, FINALIZER_DELETE_DEPENDENTS})

# --- message helpers (validation.go) -------------------------------------------------------


def max_len_error(length: int) -> str:
    """Explain a "string too long" failure (upstream MaxLenError)."""
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Explain a regex failure, quirky double spaces included (upstream RegexError)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def empty_error() -> str:
    """Explain a "must not be empty" failure (upstream EmptyError)."""
    return "must be non-empty"


def _byte_len(value: str) -> int:
    # Go's len() counts UTF-8 bytes, not characters.
    return len(value.encode("utf-8", "surrogatepass"))


def _prefix_each(msgs: Iterable[str], prefix: str) -> list[str]:
    return [prefix + m for m in msgs]


# --- syntax checks -------------------------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QNAME_CHAR_FMT = "[A-Za-z0-9]"
_QNAME_EXT_CHAR_FMT = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT = "(" + _QNAME_CHAR_FMT + _QNAME_EXT_CHAR_FMT + "*)?" + _QNAME_CHAR_FMT
_QUALIFIED_NAME_ERR_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_ERR_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)


def is_dns1123_label(value: str) -> list[str]:
    """Check an RFC 1123 label (namespace names, most label-like names); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain but not a valid label: length was checked, so it must be dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_ERR_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """Check an RFC 1123 subdomain (most object names); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """Check an RFC 1035 label (Service names); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_ERR_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Check a qualified name `[prefix/]name` (label and annotation keys); [] when valid."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend(_prefix_each(is_dns1123_subdomain(prefix), "prefix part "))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_ERR_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif _byte_len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part " + regex_error(_QUALIFIED_NAME_ERR_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Check a label value (may be empty, ≤63 chars); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def mask_trailing_dash(name: str) -> str:
    """Make a generateName prefix checkable as a name, exactly like upstream maskTrailingDash."""
    # Upstream drops the last two bytes and appends "a" (so "ab-" checks as "aa").
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


# --- field.Error rendering -----------------------------------------------------------------

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(s: str) -> str:
    """Quote a string the way Go's strconv.Quote / `%q` does."""
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x20 or cp == 0x7F:
                out.append(f"\\x{cp:02x}")
            elif 0xD800 <= cp <= 0xDFFF:
                out.append("\\ufffd")  # Go sees invalid UTF-8 and substitutes the error rune
            elif cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def format_value(value: Any) -> str:
    """Render a bad value like field.Error does: strings quoted, scalars bare, nil as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
        return "[]interface {}{" + ", ".join(format_value(v) for v in value) + "}"
    return str(value)


_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
_OMIT_VALUE = object()
_VALUELESS = frozenset({"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"})


def error_body(reason: str, value: Any = _OMIT_VALUE, detail: str = "") -> str:
    """Render a field error without its path, as upstream field.Error.ErrorBody()."""
    text = _TYPE_TEXT[reason]
    if reason in _VALUELESS or value is _OMIT_VALUE:
        body = text
    else:
        body = f"{text}: {format_value(value)}"
    if detail:
        body += f": {detail}"
    return body


def invalid(path: str, value: Any, detail: str) -> FieldErrorTuple:
    """A FieldValueInvalid error (upstream field.Invalid)."""
    return (path, "FieldValueInvalid", error_body("FieldValueInvalid", value, detail))


def required(path: str, detail: str = "") -> FieldErrorTuple:
    """A FieldValueRequired error (upstream field.Required)."""
    return (path, "FieldValueRequired", error_body("FieldValueRequired", detail=detail))


def forbidden(path: str, detail: str) -> FieldErrorTuple:
    """A FieldValueForbidden error (upstream field.Forbidden)."""
    return (path, "FieldValueForbidden", error_body("FieldValueForbidden", detail=detail))


def too_long(path: str, max_length: int) -> FieldErrorTuple:
    """A FieldValueTooLong error (upstream field.TooLong)."""
    detail = f"must have at most {max_length} bytes"
    return (path, "FieldValueTooLong", error_body("FieldValueTooLong", detail=detail))


def not_supported(path: str, value: Any, valid_values: Sequence[str]) -> FieldErrorTuple:
    """A FieldValueNotSupported error listing the valid values (upstream field.NotSupported)."""
    detail = ""
    if valid_values:
        detail = "supported values: " + ", ".join(go_quote(v) for v in valid_values)
    return (path, "FieldValueNotSupported", error_body("FieldValueNotSupported", value, detail))


def internal_error(path: str, detail: str) -> FieldErrorTuple:
    """An InternalError field error (upstream field.InternalError)."""
    return (path, "InternalError", error_body("InternalError", detail=detail))


# --- ObjectMeta ----------------------------------------------------------------------------


def validate_labels(labels: Mapping[str, str] | None, path: str) -> list[FieldErrorTuple]:
    """Validate label keys and values (upstream v1validation.ValidateLabels)."""
    errs: list[FieldErrorTuple] = []
    for key, value in (labels or {}).items():
        if type(key) is str and type(value) is str:
            errs.extend(_label_errors(path, key, value))
        else:
            errs.extend(_label_errors.__wrapped__(path, key, value))
    return errs


@functools.lru_cache(maxsize=4096)
def _label_errors(path: str, key: str, value: str) -> tuple[FieldErrorTuple, ...]:
    # one label's errors; cached, since the same few labels come back on most writes of a kind
    return (
        *(invalid(path, key, msg) for msg in is_qualified_name(key)),
        *(invalid(path, value, msg) for msg in is_valid_label_value(value)),
    )


def validate_annotations(annotations: Mapping[str, str] | None, path: str) -> list[FieldErrorTuple]:
    """Validate annotation keys (case-insensitive qualified names) and their total size."""
    errs: list[FieldErrorTuple] = []
    annotations = annotations or {}
    for key in annotations:
        errs.extend(invalid(path, key, msg) for msg in is_qualified_name(key.lower()))
    # a JSON null value decodes in Go as the empty string
    total = sum(_byte_len(k) + _byte_len(v or "") for k, v in annotations.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B))
    return errs


def _owner_reference_string(ref: Mapping[str, Any]) -> str:
    # Mirrors the generated (*OwnerReference).String() that field.Error prints for a struct.
    def ptr(v: Any) -> str:
        return "nil" if v is None else "*" + ("true" if v else "false")

    return (
        f"&OwnerReference{{Kind:{ref.get('kind') or ''},Name:{ref.get('name') or ''},"
        f"UID:{ref.get('uid') or ''},APIVersion:{ref.get('apiVersion') or ''},"
        f"Controller:{ptr(ref.get('controller'))},"
        f"BlockOwnerDeletion:{ptr(ref.get('blockOwnerDeletion'))},}}"
    )


def _owner_references_gosyntax(refs: Sequence[Mapping[str, Any]]) -> str:
    def ptr(v: Any) -> str:
        return "(*bool)(nil)" if v is None else f"(*bool)({'true' if v else 'false'})"

    items = [
        "v1.OwnerReference{"
        f"APIVersion:{go_quote(r.get('apiVersion') or '')}, Kind:{go_quote(r.get('kind') or '')}, "
        f"Name:{go_quote(r.get('name') or '')}, UID:{go_quote(r.get('uid') or '')}, "
        f"Controller:{ptr(r.get('controller'))}, "
        f"BlockOwnerDeletion:{ptr(r.get('blockOwnerDeletion'))}}}"
        for r in refs
    ]
    return "[]v1.OwnerReference{" + ", ".join(items) + "}"


def _split_api_version(api_version: str) -> tuple[str, str] | None:
    # schema.ParseGroupVersion: "" -> ("", ""), "v1" -> ("", "v1"), "g/v" -> ("g", "v").
    if not api_version:
        return ("", "")
    parts = api_version.split("/")
    if len(parts) == 1:
        return ("", parts[0])
    if len(parts) == 2:
        return (parts[0], parts[1])
    return None


def validate_owner_references(refs: Sequence[Mapping[str, Any]] | None, path: str) -> list[FieldErrorTuple]:
    """Validate metadata.ownerReferences (upstream ValidateOwnerReferences)."""
    errs: list[FieldErrorTuple] = []
    refs = list(refs or [])
    first_controller = ""
    for ref in refs:
        api_version = ref.get("apiVersion") or ""
        kind = ref.get("kind") or ""
        gv = _split_api_version(api_version)
        group, version = gv if gv is not None else ("", "")
        if not version:
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(f"{path}.kind", kind, "must not be empty"))
        if not ref.get("name"):
            errs.append(invalid(f"{path}.name", ref.get("name") or "", "must not be empty"))
        if not ref.get("uid"):
            errs.append(invalid(f"{path}.uid", ref.get("uid") or "", "must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            detail = "/v1, Kind=Event is disallowed from being an owner"
            body = f"Invalid value: {_owner_reference_string(ref)}: {detail}"
            errs.append((path, "FieldValueInvalid", body))
        if ref.get("controller") is True:
            current = f"{kind}/{ref.get('name') or ''}"
            if first_controller:
                detail = (
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {first_controller} and {current}"
                )
                body = f"Invalid value: {_owner_references_gosyntax(refs)}: {detail}"
                errs.append((path, "FieldValueInvalid", body))
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Sequence[str] | None, path: str) -> list[FieldErrorTuple]:
    """Validate finalizer names, generic rules then core's standard-or-qualified rule."""
    errs: list[FieldErrorTuple] = []
    finalizers = list(finalizers or [])
    for finalizer in finalizers:
        errs.extend(invalid(path, finalizer, msg) for msg in is_qualified_name(finalizer))
    if FINALIZER_ORPHAN_DEPENDENTS in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        detail = f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
        errs.append(invalid(path, finalizers, detail))
    for i, finalizer in enumerate(finalizers):
        if "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            errs.append(
                invalid(
                    f"{path}[{i}]",
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return errs


def validate_object_meta(
    meta: Mapping[str, Any],
    *,
    namespaced: bool,
    name_validator: Callable[[str], list[str]] = is_dns1123_subdomain,
) -> list[FieldErrorTuple]:
    """Validate an object's metadata on create (core ValidateObjectMeta); [] when valid."""
    path = "metadata"
    errs: list[FieldErrorTuple] = []
    generate_name = meta.get("generateName") or ""
    name = meta.get("name") or ""
    namespace = meta.get("namespace") or ""

    if generate_name:
        for msg in name_validator(mask_trailing_dash(generate_name)):
            errs.append(invalid(f"{path}.generateName", generate_name, msg))
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(invalid(f"{path}.name", name, msg) for msg in name_validator(name))

    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs.extend(_namespace_errors(path, namespace))
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))

    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        errs.append(invalid(f"{path}.generation", generation, "must be greater than or equal to 0"))

    # absent or empty, each of these has nothing to check (and a call of each cost ~5k instructions a write)
    if labels := meta.get("labels"):
        errs.extend(validate_labels(labels, f"{path}.labels"))
    if annotations := meta.get("annotations"):
        errs.extend(validate_annotations(annotations, f"{path}.annotations"))
    if owners := meta.get("ownerReferences"):
        errs.extend(validate_owner_references(owners, f"{path}.ownerReferences"))
    if finalizers := meta.get("finalizers"):
        errs.extend(validate_finalizers(finalizers, f"{path}.finalizers"))
    return errs


@functools.lru_cache(maxsize=1024)
def _namespace_errors(path: str, namespace: str) -> tuple[FieldErrorTuple, ...]:
    # a namespace's errors; cached, since the same few namespaces come back on most writes
    return tuple(invalid(f"{path}.namespace", namespace, msg) for msg in is_dns1123_label(namespace))


# --- networking syntax checks (validation.go, ip.go, content/path.go) ----------------------

_WILDCARD_DNS1123_SUBDOMAIN_FMT = "\\*\\." + _DNS1123_SUBDOMAIN_FMT
_WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
    "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character"
)
_WILDCARD_DNS1123_SUBDOMAIN_RE = re.compile(_WILDCARD_DNS1123_SUBDOMAIN_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_PORT_NAME_ONE_LETTER_RE = re.compile("[a-z]")
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT)


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    """Check `*.` followed by an RFC 1123 subdomain (Ingress rule hosts); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _WILDCARD_DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG, _WILDCARD_DNS1123_SUBDOMAIN_FMT, "*.example.com"))
    return errs


def is_valid_port_name(value: str) -> list[str]:
    """Check an IANA_SVC_NAME port name (at most 15 characters, a-z0-9 and hyphens); [] when valid."""
    errs: list[str] = []
    if _byte_len(value) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_ONE_LETTER_RE.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_port_num(port: int) -> list[str]:
    """Check a port number in 1..65535; [] when valid."""
    return [] if 1 <= port <= 65535 else ["must be between 1 and 65535, inclusive"]


def is_valid_ip(value: str) -> list[str]:
    """Check an IPv4 or IPv6 address; [] when valid."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def is_valid_cidr(value: str) -> list[str]:
    """Check a CIDR value such as 10.9.8.0/24; [] when valid."""
    if "/" not in value:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    if str(net) != value:
        return [f"must be in canonical form ({go_quote(str(net))})"]
    return []


def is_path_segment_name(value: str) -> list[str]:
    """Check a name that can be a URL path segment (not `.` or `..`, no `/` or `%`); [] when valid."""
    errs = [f"may not be '{bad}'" for bad in (".", "..") if value == bad]
    errs += [f"may not contain '{bad}'" for bad in ("/", "%") if bad in value]
    return errs


def is_domain_prefixed_path(path: str, value: str) -> list[FieldErrorTuple]:
    """Check a domain-prefixed path such as `acme.io/foo` (IngressClass controllers)."""
    if not value:
        return [required(path)]
    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = [invalid(path, host, msg) for msg in is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.fullmatch(rest):
        errs.append(invalid(path, rest, regex_error("Invalid path", _HTTP_PATH_FMT)))
    return errs


MAX_SECRET_SIZE = 1024 * 1024  # upstream's core.MaxSecretSize: the data a Secret or ConfigMap may hold


def _decoded_len(value: Any) -> int:
    """Bytes a base64 string decodes to (its own length when it is not base64: validation says so elsewhere)."""
    if not isinstance(value, str):
        return 0
    text = value.replace("\r", "").replace("\n", "")
    return len(text) * 3 // 4 - text[-2:].count("=")


def secret_size_errors(data: Any) -> list[FieldErrorTuple]:
    """ValidateSecret's size rule: the decoded values of `data` total at most MaxSecretSize."""
    if not isinstance(data, dict):
        return []
    total = sum(_decoded_len(v) for v in data.values())
    return [too_long("data", MAX_SECRET_SIZE)] if total > MAX_SECRET_SIZE else []


def configmap_size_errors(data: Any, binary_data: Any) -> list[FieldErrorTuple]:
    """ValidateConfigMap's size rule: `data` (UTF-8 bytes) plus decoded `binaryData` total at most MaxSecretSize.

    Upstream reports it on the empty path (`field.TooLong(field.NewPath(""), cfg, …)`).
    """
    total = 0
    if isinstance(data, dict):
        total += sum(len(v.encode()) for v in data.values() if isinstance(v, str))
    if isinstance(binary_data, dict):
        total += sum(_decoded_len(v) for v in binary_data.values())
    return [too_long("", MAX_SECRET_SIZE)] if total > MAX_SECRET_SIZE else []
