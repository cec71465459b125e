"""Decoder for the Kubernetes protobuf wire format (``application/vnd.kubernetes.protobuf``).

A body is the 4-byte magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message
(1 typeMeta{1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType) whose ``raw`` bytes
are the object's own protobuf. Decoding is descriptor driven: a generic wire reader plus tables
mapping field numbers (from the generated.proto files of k8s.io/api core/v1, apps/v1, batch/v1,
networking/v1, rbac/v1, authorization/v1 and apimachinery meta/v1) to JSON names and types.

Kubernetes' Go marshaller writes every non-pointer field, zero or not, so the decoder mirrors the
Go JSON encoding: zero values of ``omitempty`` fields and empty non-pointer structs are dropped,
while pointer fields (``replicas: 0``, ``suspend: false``, ``emptyDir: {}``) and fields without
``omitempty`` keep whatever is on the wire. Fields absent from the wire are omitted and unknown
field numbers are skipped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_U64 = (1 << 64) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_SCALAR_WIRE = {"string": _LEN, "bytes": _LEN, "int32": _VARINT, "int64": _VARINT, "bool": _VARINT}


class ProtobufError(ValueError):
    """Raised when a Kubernetes protobuf body is malformed or of an unsupported kind."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message descriptor: JSON name, type and JSON presentation flags."""

    name: str
    type: str  # string | bytes | int32 | int64 | bool | message | map
    message: Message | None = None  # for type == "message"
    value: str | Message | None = None  # map value type (keys are always strings)
    repeated: bool = False
    keep_zero: bool = False  # pointer or non-omitempty field: keep zero values seen on the wire
    inline: bool = False  # embedded struct whose JSON fields are merged into the parent


@dataclass(frozen=True, slots=True)
class Message:
    """A message descriptor: field number -> Field, plus an optional JSON converter."""

    name: str
    fields: dict[int, Field]
    convert: Callable[[dict[str, Any]], Any] | None = None


def is_protobuf(content_type: str | None) -> bool:
    """Tell whether a Content-Type header names the Kubernetes protobuf encoding."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF_CONTENT_TYPE


# --------------------------------------------------------------------------- wire reader


def _read_varint(buf: memoryview, pos: int, path: str) -> tuple[int, int]:
    """Read a base-128 varint at pos; return (value, new position)."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtobufError(f"{path}: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"{path}: varint longer than 10 bytes")


def _iter_fields(buf: memoryview, path: str) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) for each field; LEN values are memoryviews."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos, path)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ProtobufError(f"{path}: invalid field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos, path)
        elif wire == _FIXED64 or wire == _FIXED32:
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise ProtobufError(f"{path}: truncated {size * 8}-bit value in field {num}")
            value = int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos, path)
            if length > end - pos:
                raise ProtobufError(f"{path}: field {num} length {length} exceeds the {end - pos} bytes left")
            value = buf[pos : pos + length]
            pos += length
        else:
            raise ProtobufError(f"{path}: unsupported wire type {wire} in field {num}")
        yield num, wire, value


# --------------------------------------------------------------------------- decoding


def _to_int32(value: int) -> int:
    """Interpret a varint as a signed 32-bit integer."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _to_int64(value: int) -> int:
    """Interpret a varint as a signed 64-bit integer."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, wire: int, value: Any, path: str) -> Any:
    """Convert one wire value of a scalar field to its JSON form."""
    expected = _SCALAR_WIRE[kind]
    if wire != expected:
        raise ProtobufError(f"{path}: wire type {wire} where {kind} (wire type {expected}) expected")
    if kind == "string":
        try:
            return str(value, "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtobufError(f"{path}: string is not valid UTF-8 ({exc.reason})") from exc
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "int32":
        return _to_int32(value)
    if kind == "int64":
        return _to_int64(value)
    return value != 0


def _packed(kind: str, value: memoryview, path: str) -> list[Any]:
    """Decode a packed repeated varint field."""
    out: list[Any] = []
    pos = 0
    while pos < len(value):
        item, pos = _read_varint(value, pos, path)
        out.append(_scalar(kind, _VARINT, item, path))
    return out


def _is_zero(value: Any) -> bool:
    """Tell whether value is the Go zero value that omitempty leaves out."""
    return (
        value is None
        or value == ""
        or value == {}
        or value == []
        or value is False
        or (type(value) is int and value == 0)
    )


def _message_value(data: memoryview, message: Message, path: str) -> Any:
    """Decode an embedded message and apply its JSON converter, if any."""
    decoded = _decode_message(data, message, path)
    return message.convert(decoded) if message.convert is not None else decoded


def _map_entry(data: memoryview, value_type: str | Message, path: str) -> tuple[str, Any]:
    """Decode one map<string, V> entry message into (key, JSON value)."""
    key = ""
    raw: Any = None
    wire_seen = -1
    for num, wire, value in _iter_fields(data, path):
        if num == 1:
            key = _scalar("string", wire, value, f"{path}.key")
        elif num == 2:
            raw, wire_seen = value, wire
    vpath = f"{path}[{key!r}]"
    if isinstance(value_type, Message):
        if raw is None:
            raw, wire_seen = memoryview(b""), _LEN
        if wire_seen != _LEN:
            raise ProtobufError(f"{vpath}: wire type {wire_seen} where a message was expected")
        return key, _message_value(raw, value_type, vpath)
    if raw is None:
        return key, "" if value_type in ("string", "bytes") else 0
    return key, _scalar(value_type, wire_seen, raw, vpath)


def _decode_message(buf: memoryview, message: Message, path: str) -> dict[str, Any]:
    """Decode buf as message into a JSON-form dict (omitempty semantics applied)."""
    out: dict[str, Any] = {}
    pending: dict[int, list[memoryview]] = {}
    for num, wire, value in _iter_fields(buf, path):
        field = message.fields.get(num)
        if field is None:
            continue
        fpath = f"{path}.{field.name}"
        if field.type == "map":
            if wire != _LEN:
                raise ProtobufError(f"{fpath}: wire type {wire} where a map entry was expected")
            assert field.value is not None
            key, item = _map_entry(value, field.value, fpath)
            out.setdefault(field.name, {})[key] = item
        elif field.type == "message":
            if wire != _LEN:
                raise ProtobufError(f"{fpath}: wire type {wire} where a message was expected")
            assert field.message is not None
            if field.repeated:
                items = out.setdefault(field.name, [])
                items.append(_message_value(value, field.message, f"{fpath}[{len(items)}]"))
            else:
                # Repeated occurrences of a singular message merge: concatenate, decode once.
                pending.setdefault(num, []).append(value)
                if not field.inline:
                    out.setdefault(field.name, None)
        elif field.repeated:
            items = out.setdefault(field.name, [])
            if wire == _LEN and field.type not in ("string", "bytes"):
                items.extend(_packed(field.type, value, fpath))
            else:
                items.append(_scalar(field.type, wire, value, f"{fpath}[{len(items)}]"))
        else:
            out[field.name] = _scalar(field.type, wire, value, fpath)
    for num, chunks in pending.items():
        field = message.fields[num]
        assert field.message is not None
        data = chunks[0] if len(chunks) == 1 else memoryview(b"".join(chunks))
        item = _message_value(data, field.message, f"{path}.{field.name}")
        if field.inline:
            if isinstance(item, dict):
                out.update(item)
        else:
            out[field.name] = item
    for field in message.fields.values():
        if field.name in out and not field.inline:
            item = out[field.name]
            if item is None or (not field.keep_zero and _is_zero(item)):
                del out[field.name]
    return out


# --------------------------------------------------------------------------- special types


def _time_json(value: dict[str, Any]) -> str | None:
    """Convert meta/v1 Time {seconds, nanos} to RFC 3339 (second precision); empty is null."""
    if not value:
        return None  # Go marshals the zero Time as an empty message; JSON has null.
    seconds = value.get("seconds", 0)
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ProtobufError(f"Time: seconds {seconds} out of range") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string_json(value: dict[str, Any]) -> int | str:
    """Convert intstr.IntOrString {type, intVal, strVal} to an int or a string."""
    if value.get("type", 0) == 1:
        return value.get("strVal", "")
    return value.get("intVal", 0)


def _quantity_json(value: dict[str, Any]) -> str:
    """Convert resource.Quantity {string} to its canonical string form."""
    return value.get("string") or "0"


def _fields_v1_json(value: dict[str, Any]) -> Any:
    """Convert meta/v1 FieldsV1 {Raw} (JSON bytes) to the embedded JSON value."""
    raw = value.get("Raw")
    if not raw:
        return None
    try:
        return json.loads(base64.b64decode(raw))
    except ValueError as exc:
        raise ProtobufError(f"FieldsV1: Raw is not valid JSON ({exc})") from exc


# --------------------------------------------------------------------------- descriptors


def _msg(name: str, fields: dict[int, Field], convert: Callable[[dict[str, Any]], Any] | None = None) -> Message:
    """Build a message descriptor."""
    return Message(name, fields, convert)


def _s(name: str, keep: bool = False) -> Field:
    """A string field."""
    return Field(name, "string", keep_zero=keep)


def _i32(name: str, keep: bool = False) -> Field:
    """An int32 field."""
    return Field(name, "int32", keep_zero=keep)


def _i64(name: str, keep: bool = False) -> Field:
    """An int64 field."""
    return Field(name, "int64", keep_zero=keep)


def _b(name: str, keep: bool = False) -> Field:
    """A bool field."""
    return Field(name, "bool", keep_zero=keep)


def _bytes(name: str) -> Field:
    """A bytes field (base64 in JSON)."""
    return Field(name, "bytes")


def _m(name: str, message: Message, keep: bool = False) -> Field:
    """A singular embedded message field (keep=True for pointer fields)."""
    return Field(name, "message", message=message, keep_zero=keep)


def _inline(name: str, message: Message) -> Field:
    """An embedded struct inlined into the parent's JSON."""
    return Field(name, "message", message=message, inline=True)


def _rs(name: str) -> Field:
    """A repeated string field."""
    return Field(name, "string", repeated=True)


def _ri64(name: str) -> Field:
    """A repeated int64 field."""
    return Field(name, "int64", repeated=True)


def _rm(name: str, message: Message) -> Field:
    """A repeated message field."""
    return Field(name, "message", message=message, repeated=True)


def _map(name: str, value: str | Message = "string") -> Field:
    """A map<string, value> field."""
    return Field(name, "map", value=value)


# meta/v1 and other apimachinery types
TIME = _msg("Time", {1: _i64("seconds", True), 2: _i32("nanos", True)}, _time_json)
INT_OR_STRING = _msg(
    "IntOrString",
    {1: _i64("type", True), 2: _i32("intVal", True), 3: _s("strVal", True)},
    _int_or_string_json,
)
QUANTITY = _msg("Quantity", {1: _s("string")}, _quantity_json)
FIELDS_V1 = _msg("FieldsV1", {1: _bytes("Raw")}, _fields_v1_json)

OWNER_REFERENCE = _msg(
    "OwnerReference",
    {
        5: _s("apiVersion", True),
        1: _s("kind", True),
        3: _s("name", True),
        4: _s("uid", True),
        6: _b("controller", True),
        7: _b("blockOwnerDeletion", True),
    },
)
MANAGED_FIELDS_ENTRY = _msg(
    "ManagedFieldsEntry",
    {
        1: _s("manager"),
        2: _s("operation"),
        3: _s("apiVersion"),
        4: _m("time", TIME, True),
        6: _s("fieldsType"),
        7: _m("fieldsV1", FIELDS_V1, True),
        8: _s("subresource"),
    },
)
OBJECT_META = _msg(
    "ObjectMeta",
    {
        1: _s("name"),
        2: _s("generateName"),
        3: _s("namespace"),
        4: _s("selfLink"),
        5: _s("uid"),
        6: _s("resourceVersion"),
        7: _i64("generation"),
        8: _m("creationTimestamp", TIME),
        9: _m("deletionTimestamp", TIME, True),
        10: _i64("deletionGracePeriodSeconds", True),
        11: _map("labels"),
        12: _map("annotations"),
        13: _rm("ownerReferences", OWNER_REFERENCE),
        14: _rs("finalizers"),
        17: _rm("managedFields", MANAGED_FIELDS_ENTRY),
    },
)
LABEL_SELECTOR_REQUIREMENT = _msg(
    "LabelSelectorRequirement",
    {1: _s("key", True), 2: _s("operator", True), 3: _rs("values")},
)
LABEL_SELECTOR = _msg(
    "LabelSelector",
    {1: _map("matchLabels"), 2: _rm("matchExpressions", LABEL_SELECTOR_REQUIREMENT)},
)

# core/v1: references and selectors
LOCAL_OBJECT_REFERENCE = _msg("LocalObjectReference", {1: _s("name")})
OBJECT_REFERENCE = _msg(
    "ObjectReference",
    {
        1: _s("kind"),
        2: _s("namespace"),
        3: _s("name"),
        4: _s("uid"),
        5: _s("apiVersion"),
        6: _s("resourceVersion"),
        7: _s("fieldPath"),
    },
)
KEY_TO_PATH = _msg("KeyToPath", {1: _s("key", True), 2: _s("path", True), 3: _i32("mode", True)})
OBJECT_FIELD_SELECTOR = _msg("ObjectFieldSelector", {1: _s("apiVersion"), 2: _s("fieldPath", True)})
RESOURCE_FIELD_SELECTOR = _msg(
    "ResourceFieldSelector",
    {1: _s("containerName"), 2: _s("resource", True), 3: _m("divisor", QUANTITY)},
)
CONFIG_MAP_KEY_SELECTOR = _msg(
    "ConfigMapKeySelector",
    {
        1: _inline("localObjectReference", LOCAL_OBJECT_REFERENCE),
        2: _s("key", True),
        3: _b("optional", True),
    },
)
SECRET_KEY_SELECTOR = _msg("SecretKeySelector", CONFIG_MAP_KEY_SELECTOR.fields)

# core/v1: containers
ENV_VAR_SOURCE = _msg(
    "EnvVarSource",
    {
        1: _m("fieldRef", OBJECT_FIELD_SELECTOR, True),
        2: _m("resourceFieldRef", RESOURCE_FIELD_SELECTOR, True),
        3: _m("configMapKeyRef", CONFIG_MAP_KEY_SELECTOR, True),
        4: _m("secretKeyRef", SECRET_KEY_SELECTOR, True),
    },
)
ENV_VAR = _msg("EnvVar", {1: _s("name", True), 2: _s("value"), 3: _m("valueFrom", ENV_VAR_SOURCE, True)})
CONFIG_MAP_ENV_SOURCE = _msg(
    "ConfigMapEnvSource",
    {1: _inline("localObjectReference", LOCAL_OBJECT_REFERENCE), 2: _b("optional", True)},
)
SECRET_ENV_SOURCE = _msg("SecretEnvSource", CONFIG_MAP_ENV_SOURCE.fields)
ENV_FROM_SOURCE = _msg(
    "EnvFromSource",
    {
        1: _s("prefix"),
        2: _m("configMapRef", CONFIG_MAP_ENV_SOURCE, True),
        3: _m("secretRef", SECRET_ENV_SOURCE, True),
    },
)
CONTAINER_PORT = _msg(
    "ContainerPort",
    {
        1: _s("name"),
        2: _i32("hostPort"),
        3: _i32("containerPort", True),
        4: _s("protocol"),
        5: _s("hostIP"),
    },
)
RESOURCE_CLAIM = _msg("ResourceClaim", {1: _s("name", True), 2: _s("request")})
RESOURCE_REQUIREMENTS = _msg(
    "ResourceRequirements",
    {
        1: _map("limits", QUANTITY),
        2: _map("requests", QUANTITY),
        3: _rm("claims", RESOURCE_CLAIM),
    },
)
VOLUME_MOUNT = _msg(
    "VolumeMount",
    {
        1: _s("name", True),
        2: _b("readOnly"),
        7: _s("recursiveReadOnly", True),
        3: _s("mountPath", True),
        4: _s("subPath"),
        5: _s("mountPropagation", True),
        6: _s("subPathExpr"),
    },
)
VOLUME_DEVICE = _msg("VolumeDevice", {1: _s("name", True), 2: _s("devicePath", True)})
EXEC_ACTION = _msg("ExecAction", {1: _rs("command")})
HTTP_HEADER = _msg("HTTPHeader", {1: _s("name", True), 2: _s("value", True)})
HTTP_GET_ACTION = _msg(
    "HTTPGetAction",
    {
        1: _s("path"),
        2: _m("port", INT_OR_STRING, True),
        3: _s("host"),
        4: _s("scheme"),
        5: _rm("httpHeaders", HTTP_HEADER),
    },
)
TCP_SOCKET_ACTION = _msg("TCPSocketAction", {1: _m("port", INT_OR_STRING, True), 2: _s("host")})
GRPC_ACTION = _msg("GRPCAction", {1: _i32("port", True), 2: _s("service", True)})
PROBE_HANDLER = _msg(
    "ProbeHandler",
    {
        1: _m("exec", EXEC_ACTION, True),
        2: _m("httpGet", HTTP_GET_ACTION, True),
        3: _m("tcpSocket", TCP_SOCKET_ACTION, True),
        4: _m("grpc", GRPC_ACTION, True),
    },
)
PROBE = _msg(
    "Probe",
    {
        1: _inline("handler", PROBE_HANDLER),
        2: _i32("initialDelaySeconds"),
        3: _i32("timeoutSeconds"),
        4: _i32("periodSeconds"),
        5: _i32("successThreshold"),
        6: _i32("failureThreshold"),
        7: _i64("terminationGracePeriodSeconds", True),
    },
)
CAPABILITIES = _msg("Capabilities", {1: _rs("add"), 2: _rs("drop")})
SE_LINUX_OPTIONS = _msg("SELinuxOptions", {1: _s("user"), 2: _s("role"), 3: _s("type"), 4: _s("level")})
SECCOMP_PROFILE = _msg("SeccompProfile", {1: _s("type", True), 2: _s("localhostProfile", True)})
APP_ARMOR_PROFILE = _msg("AppArmorProfile", {1: _s("type", True), 2: _s("localhostProfile", True)})
WINDOWS_SECURITY_CONTEXT_OPTIONS = _msg(
    "WindowsSecurityContextOptions",
    {
        1: _s("gmsaCredentialSpecName", True),
        2: _s("gmsaCredentialSpec", True),
        3: _s("runAsUserName", True),
        4: _b("hostProcess", True),
    },
)
SECURITY_CONTEXT = _msg(
    "SecurityContext",
    {
        1: _m("capabilities", CAPABILITIES, True),
        2: _b("privileged", True),
        3: _m("seLinuxOptions", SE_LINUX_OPTIONS, True),
        10: _m("windowsOptions", WINDOWS_SECURITY_CONTEXT_OPTIONS, True),
        4: _i64("runAsUser", True),
        8: _i64("runAsGroup", True),
        5: _b("runAsNonRoot", True),
        6: _b("readOnlyRootFilesystem", True),
        7: _b("allowPrivilegeEscalation", True),
        9: _s("procMount", True),
        11: _m("seccompProfile", SECCOMP_PROFILE, True),
        12: _m("appArmorProfile", APP_ARMOR_PROFILE, True),
    },
)
CONTAINER = _msg(
    "Container",
    {
        1: _s("name", True),
        2: _s("image"),
        3: _rs("command"),
        4: _rs("args"),
        5: _s("workingDir"),
        6: _rm("ports", CONTAINER_PORT),
        19: _rm("envFrom", ENV_FROM_SOURCE),
        7: _rm("env", ENV_VAR),
        8: _m("resources", RESOURCE_REQUIREMENTS),
        24: _s("restartPolicy", True),
        9: _rm("volumeMounts", VOLUME_MOUNT),
        21: _rm("volumeDevices", VOLUME_DEVICE),
        10: _m("livenessProbe", PROBE, True),
        11: _m("readinessProbe", PROBE, True),
        22: _m("startupProbe", PROBE, True),
        13: _s("terminationMessagePath"),
        20: _s("terminationMessagePolicy"),
        14: _s("imagePullPolicy"),
        15: _m("securityContext", SECURITY_CONTEXT, True),
        16: _b("stdin"),
        17: _b("stdinOnce"),
        18: _b("tty"),
    },
)

# core/v1: volumes
HOST_PATH_VOLUME_SOURCE = _msg("HostPathVolumeSource", {1: _s("path", True), 2: _s("type", True)})
EMPTY_DIR_VOLUME_SOURCE = _msg("EmptyDirVolumeSource", {1: _s("medium"), 2: _m("sizeLimit", QUANTITY, True)})
SECRET_VOLUME_SOURCE = _msg(
    "SecretVolumeSource",
    {
        1: _s("secretName"),
        2: _rm("items", KEY_TO_PATH),
        3: _i32("defaultMode", True),
        4: _b("optional", True),
    },
)
NFS_VOLUME_SOURCE = _msg("NFSVolumeSource", {1: _s("server", True), 2: _s("path", True), 3: _b("readOnly")})
PVC_VOLUME_SOURCE = _msg("PersistentVolumeClaimVolumeSource", {1: _s("claimName", True), 2: _b("readOnly")})
DOWNWARD_API_VOLUME_FILE = _msg(
    "DownwardAPIVolumeFile",
    {
        1: _s("path", True),
        2: _m("fieldRef", OBJECT_FIELD_SELECTOR, True),
        3: _m("resourceFieldRef", RESOURCE_FIELD_SELECTOR, True),
        4: _i32("mode", True),
    },
)
DOWNWARD_API_VOLUME_SOURCE = _msg(
    "DownwardAPIVolumeSource",
    {1: _rm("items", DOWNWARD_API_VOLUME_FILE), 2: _i32("defaultMode", True)},
)
CONFIG_MAP_VOLUME_SOURCE = _msg(
    "ConfigMapVolumeSource",
    {
        1: _inline("localObjectReference", LOCAL_OBJECT_REFERENCE),
        2: _rm("items", KEY_TO_PATH),
        3: _i32("defaultMode", True),
        4: _b("optional", True),
    },
)
SECRET_PROJECTION = _msg(
    "SecretProjection",
    {
        1: _inline("localObjectReference", LOCAL_OBJECT_REFERENCE),
        2: _rm("items", KEY_TO_PATH),
        4: _b("optional", True),
    },
)
CONFIG_MAP_PROJECTION = _msg("ConfigMapProjection", SECRET_PROJECTION.fields)
DOWNWARD_API_PROJECTION = _msg("DownwardAPIProjection", {1: _rm("items", DOWNWARD_API_VOLUME_FILE)})
SERVICE_ACCOUNT_TOKEN_PROJECTION = _msg(
    "ServiceAccountTokenProjection",
    {1: _s("audience"), 2: _i64("expirationSeconds", True), 3: _s("path", True)},
)
VOLUME_PROJECTION = _msg(
    "VolumeProjection",
    {
        1: _m("secret", SECRET_PROJECTION, True),
        2: _m("downwardAPI", DOWNWARD_API_PROJECTION, True),
        3: _m("configMap", CONFIG_MAP_PROJECTION, True),
        4: _m("serviceAccountToken", SERVICE_ACCOUNT_TOKEN_PROJECTION, True),
    },
)
PROJECTED_VOLUME_SOURCE = _msg(
    "ProjectedVolumeSource",
    {1: _rm("sources", VOLUME_PROJECTION), 2: _i32("defaultMode", True)},
)
CSI_VOLUME_SOURCE = _msg(
    "CSIVolumeSource",
    {
        1: _s("driver", True),
        2: _b("readOnly", True),
        3: _s("fsType", True),
        4: _map("volumeAttributes"),
        5: _m("nodePublishSecretRef", LOCAL_OBJECT_REFERENCE, True),
    },
)
VOLUME_SOURCE = _msg(
    "VolumeSource",
    {
        1: _m("hostPath", HOST_PATH_VOLUME_SOURCE, True),
        2: _m("emptyDir", EMPTY_DIR_VOLUME_SOURCE, True),
        6: _m("secret", SECRET_VOLUME_SOURCE, True),
        7: _m("nfs", NFS_VOLUME_SOURCE, True),
        10: _m("persistentVolumeClaim", PVC_VOLUME_SOURCE, True),
        16: _m("downwardAPI", DOWNWARD_API_VOLUME_SOURCE, True),
        19: _m("configMap", CONFIG_MAP_VOLUME_SOURCE, True),
        26: _m("projected", PROJECTED_VOLUME_SOURCE, True),
        28: _m("csi", CSI_VOLUME_SOURCE, True),
    },
)
VOLUME = _msg("Volume", {1: _s("name", True), 2: _inline("volumeSource", VOLUME_SOURCE)})

# core/v1: pods
SYSCTL = _msg("Sysctl", {1: _s("name", True), 2: _s("value", True)})
POD_SECURITY_CONTEXT = _msg(
    "PodSecurityContext",
    {
        1: _m("seLinuxOptions", SE_LINUX_OPTIONS, True),
        8: _m("windowsOptions", WINDOWS_SECURITY_CONTEXT_OPTIONS, True),
        2: _i64("runAsUser", True),
        6: _i64("runAsGroup", True),
        3: _b("runAsNonRoot", True),
        4: _ri64("supplementalGroups"),
        12: _s("supplementalGroupsPolicy", True),
        5: _i64("fsGroup", True),
        7: _rm("sysctls", SYSCTL),
        9: _s("fsGroupChangePolicy", True),
        10: _m("seccompProfile", SECCOMP_PROFILE, True),
        11: _m("appArmorProfile", APP_ARMOR_PROFILE, True),
        13: _s("seLinuxChangePolicy", True),
    },
)
TOLERATION = _msg(
    "Toleration",
    {
        1: _s("key"),
        2: _s("operator"),
        3: _s("value"),
        4: _s("effect"),
        5: _i64("tolerationSeconds", True),
    },
)
POD_SPEC = _msg(
    "PodSpec",
    {
        1: _rm("volumes", VOLUME),
        20: _rm("initContainers", CONTAINER),
        2: _rm("containers", CONTAINER),
        3: _s("restartPolicy"),
        4: _i64("terminationGracePeriodSeconds", True),
        5: _i64("activeDeadlineSeconds", True),
        6: _s("dnsPolicy"),
        7: _map("nodeSelector"),
        8: _s("serviceAccountName"),
        9: _s("serviceAccount"),
        21: _b("automountServiceAccountToken", True),
        10: _s("nodeName"),
        11: _b("hostNetwork"),
        12: _b("hostPID"),
        13: _b("hostIPC"),
        27: _b("shareProcessNamespace", True),
        14: _m("securityContext", POD_SECURITY_CONTEXT, True),
        15: _rm("imagePullSecrets", LOCAL_OBJECT_REFERENCE),
        16: _s("hostname"),
        17: _s("subdomain"),
        19: _s("schedulerName"),
        22: _rm("tolerations", TOLERATION),
        24: _s("priorityClassName"),
        25: _i32("priority", True),
        29: _s("runtimeClassName", True),
        30: _b("enableServiceLinks", True),
        31: _s("preemptionPolicy", True),
        35: _b("setHostnameAsFQDN", True),
        37: _b("hostUsers", True),
    },
)
POD_TEMPLATE_SPEC = _msg("PodTemplateSpec", {1: _m("metadata", OBJECT_META), 2: _m("spec", POD_SPEC)})

# core/v1: top-level kinds
NAMESPACE = _msg(
    "Namespace",
    {
        1: _m("metadata", OBJECT_META),
        2: _m("spec", _msg("NamespaceSpec", {1: _rs("finalizers")})),
        3: _m("status", _msg("NamespaceStatus", {1: _s("phase")})),
    },
)
CONFIG_MAP = _msg(
    "ConfigMap",
    {
        1: _m("metadata", OBJECT_META),
        4: _b("immutable", True),
        2: _map("data"),
        3: _map("binaryData", "bytes"),
    },
)
SECRET = _msg(
    "Secret",
    {
        1: _m("metadata", OBJECT_META),
        5: _b("immutable", True),
        2: _map("data", "bytes"),
        4: _map("stringData"),
        3: _s("type"),
    },
)
SERVICE_ACCOUNT = _msg(
    "ServiceAccount",
    {
        1: _m("metadata", OBJECT_META),
        2: _rm("secrets", OBJECT_REFERENCE),
        3: _rm("imagePullSecrets", LOCAL_OBJECT_REFERENCE),
        4: _b("automountServiceAccountToken", True),
    },
)
RESOURCE_QUOTA = _msg(
    "ResourceQuota",
    {
        1: _m("metadata", OBJECT_META),
        2: _m(
            "spec",
            _msg(
                "ResourceQuotaSpec",
                {
                    1: _map("hard", QUANTITY),
                    2: _rs("scopes"),
                    3: _m(
                        "scopeSelector",
                        _msg(
                            "ScopeSelector",
                            {
                                1: _rm(
                                    "matchExpressions",
                                    _msg(
                                        "ScopedResourceSelectorRequirement",
                                        {1: _s("scopeName", True), 2: _s("operator", True), 3: _rs("values")},
                                    ),
                                )
                            },
                        ),
                        True,
                    ),
                },
            ),
        ),
        3: _m("status", _msg("ResourceQuotaStatus", {1: _map("hard", QUANTITY), 2: _map("used", QUANTITY)})),
    },
)
SERVICE_PORT = _msg(
    "ServicePort",
    {
        1: _s("name"),
        2: _s("protocol"),
        6: _s("appProtocol", True),
        3: _i32("port", True),
        4: _m("targetPort", INT_OR_STRING),
        5: _i32("nodePort"),
    },
)
SESSION_AFFINITY_CONFIG = _msg(
    "SessionAffinityConfig",
    {1: _m("clientIP", _msg("ClientIPConfig", {1: _i32("timeoutSeconds", True)}), True)},
)
SERVICE_SPEC = _msg(
    "ServiceSpec",
    {
        1: _rm("ports", SERVICE_PORT),
        2: _map("selector"),
        3: _s("clusterIP"),
        18: _rs("clusterIPs"),
        4: _s("type"),
        5: _rs("externalIPs"),
        7: _s("sessionAffinity"),
        8: _s("loadBalancerIP"),
        9: _rs("loadBalancerSourceRanges"),
        10: _s("externalName"),
        11: _s("externalTrafficPolicy"),
        12: _i32("healthCheckNodePort"),
        13: _b("publishNotReadyAddresses"),
        14: _m("sessionAffinityConfig", SESSION_AFFINITY_CONFIG, True),
        19: _rs("ipFamilies"),
        17: _s("ipFamilyPolicy", True),
        20: _b("allocateLoadBalancerNodePorts", True),
        21: _s("loadBalancerClass", True),
        22: _s("internalTrafficPolicy", True),
        23: _s("trafficDistribution", True),
    },
)
LOAD_BALANCER_INGRESS = _msg("LoadBalancerIngress", {1: _s("ip"), 2: _s("hostname")})
SERVICE_STATUS = _msg(
    "ServiceStatus",
    {1: _m("loadBalancer", _msg("LoadBalancerStatus", {1: _rm("ingress", LOAD_BALANCER_INGRESS)}))},
)
SERVICE = _msg(
    "Service",
    {1: _m("metadata", OBJECT_META), 2: _m("spec", SERVICE_SPEC), 3: _m("status", SERVICE_STATUS)},
)

# apps/v1
ROLLING_UPDATE_DEPLOYMENT = _msg(
    "RollingUpdateDeployment",
    {1: _m("maxUnavailable", INT_OR_STRING, True), 2: _m("maxSurge", INT_OR_STRING, True)},
)
DEPLOYMENT_STRATEGY = _msg(
    "DeploymentStrategy",
    {1: _s("type"), 2: _m("rollingUpdate", ROLLING_UPDATE_DEPLOYMENT, True)},
)
DEPLOYMENT_SPEC = _msg(
    "DeploymentSpec",
    {
        1: _i32("replicas", True),
        2: _m("selector", LABEL_SELECTOR, True),
        3: _m("template", POD_TEMPLATE_SPEC),
        4: _m("strategy", DEPLOYMENT_STRATEGY),
        5: _i32("minReadySeconds"),
        6: _i32("revisionHistoryLimit", True),
        7: _b("paused"),
        9: _i32("progressDeadlineSeconds", True),
    },
)
DEPLOYMENT_STATUS = _msg(
    "DeploymentStatus",
    {
        1: _i64("observedGeneration"),
        2: _i32("replicas"),
        3: _i32("updatedReplicas"),
        7: _i32("readyReplicas"),
        4: _i32("availableReplicas"),
        5: _i32("unavailableReplicas"),
        9: _i32("terminatingReplicas", True),
        8: _i32("collisionCount", True),
    },
)
DEPLOYMENT = _msg(
    "Deployment",
    {
        1: _m("metadata", OBJECT_META),
        2: _m("spec", DEPLOYMENT_SPEC),
        3: _m("status", DEPLOYMENT_STATUS),
    },
)

# batch/v1
JOB_SPEC = _msg(
    "JobSpec",
    {
        1: _i32("parallelism", True),
        2: _i32("completions", True),
        3: _i64("activeDeadlineSeconds", True),
        7: _i32("backoffLimit", True),
        12: _i32("backoffLimitPerIndex", True),
        13: _i32("maxFailedIndexes", True),
        4: _m("selector", LABEL_SELECTOR, True),
        5: _b("manualSelector", True),
        6: _m("template", POD_TEMPLATE_SPEC),
        8: _i32("ttlSecondsAfterFinished", True),
        9: _s("completionMode", True),
        10: _b("suspend", True),
        14: _s("podReplacementPolicy", True),
        16: _s("managedBy", True),
    },
)
JOB_STATUS = _msg(
    "JobStatus",
    {
        2: _m("startTime", TIME, True),
        3: _m("completionTime", TIME, True),
        4: _i32("active"),
        5: _i32("succeeded"),
        6: _i32("failed"),
        11: _i32("terminating", True),
        7: _s("completedIndexes"),
        10: _s("failedIndexes", True),
        9: _i32("ready", True),
    },
)
JOB = _msg(
    "Job",
    {1: _m("metadata", OBJECT_META), 2: _m("spec", JOB_SPEC), 3: _m("status", JOB_STATUS)},
)
JOB_TEMPLATE_SPEC = _msg("JobTemplateSpec", {1: _m("metadata", OBJECT_META), 2: _m("spec", JOB_SPEC)})
CRON_JOB_SPEC = _msg(
    "CronJobSpec",
    {
        1: _s("schedule", True),
        8: _s("timeZone", True),
        2: _i64("startingDeadlineSeconds", True),
        3: _s("concurrencyPolicy"),
        4: _b("suspend", True),
        5: _m("jobTemplate", JOB_TEMPLATE_SPEC),
        6: _i32("successfulJobsHistoryLimit", True),
        7: _i32("failedJobsHistoryLimit", True),
    },
)
CRON_JOB_STATUS = _msg(
    "CronJobStatus",
    {
        1: _rm("active", OBJECT_REFERENCE),
        4: _m("lastScheduleTime", TIME, True),
        5: _m("lastSuccessfulTime", TIME, True),
    },
)
CRON_JOB = _msg(
    "CronJob",
    {
        1: _m("metadata", OBJECT_META),
        2: _m("spec", CRON_JOB_SPEC),
        3: _m("status", CRON_JOB_STATUS),
    },
)

# networking/v1
TYPED_LOCAL_OBJECT_REFERENCE = _msg(
    "TypedLocalObjectReference",
    {1: _s("apiGroup", True), 2: _s("kind", True), 3: _s("name", True)},
)
SERVICE_BACKEND_PORT = _msg("ServiceBackendPort", {1: _s("name"), 2: _i32("number")})
INGRESS_SERVICE_BACKEND = _msg(
    "IngressServiceBackend",
    {1: _s("name", True), 2: _m("port", SERVICE_BACKEND_PORT)},
)
INGRESS_BACKEND = _msg(
    "IngressBackend",
    {4: _m("service", INGRESS_SERVICE_BACKEND, True), 3: _m("resource", TYPED_LOCAL_OBJECT_REFERENCE, True)},
)
HTTP_INGRESS_PATH = _msg(
    "HTTPIngressPath",
    {1: _s("path"), 3: _s("pathType", True), 2: _m("backend", INGRESS_BACKEND, True)},
)
INGRESS_RULE_VALUE = _msg(
    "IngressRuleValue",
    {1: _m("http", _msg("HTTPIngressRuleValue", {1: _rm("paths", HTTP_INGRESS_PATH)}), True)},
)
INGRESS_RULE = _msg("IngressRule", {1: _s("host"), 2: _inline("ingressRuleValue", INGRESS_RULE_VALUE)})
INGRESS_TLS = _msg("IngressTLS", {1: _rs("hosts"), 2: _s("secretName")})
INGRESS_SPEC = _msg(
    "IngressSpec",
    {
        4: _s("ingressClassName", True),
        1: _m("defaultBackend", INGRESS_BACKEND, True),
        2: _rm("tls", INGRESS_TLS),
        3: _rm("rules", INGRESS_RULE),
    },
)
INGRESS_PORT_STATUS = _msg("IngressPortStatus", {1: _i32("port", True), 2: _s("protocol", True), 3: _s("error", True)})
INGRESS_LOAD_BALANCER_INGRESS = _msg(
    "IngressLoadBalancerIngress",
    {1: _s("ip"), 2: _s("hostname"), 4: _rm("ports", INGRESS_PORT_STATUS)},
)
INGRESS_STATUS = _msg(
    "IngressStatus",
    {1: _m("loadBalancer", _msg("IngressLoadBalancerStatus", {1: _rm("ingress", INGRESS_LOAD_BALANCER_INGRESS)}))},
)
INGRESS = _msg(
    "Ingress",
    {1: _m("metadata", OBJECT_META), 2: _m("spec", INGRESS_SPEC), 3: _m("status", INGRESS_STATUS)},
)

# rbac.authorization.k8s.io/v1
POLICY_RULE = _msg(
    "PolicyRule",
    {1: _rs("verbs"), 2: _rs("apiGroups"), 3: _rs("resources"), 4: _rs("resourceNames"), 5: _rs("nonResourceURLs")},
)
ROLE_REF = _msg("RoleRef", {1: _s("apiGroup", True), 2: _s("kind", True), 3: _s("name", True)})
SUBJECT = _msg("Subject", {1: _s("kind", True), 2: _s("apiGroup"), 3: _s("name", True), 4: _s("namespace")})
ROLE = _msg("Role", {1: _m("metadata", OBJECT_META), 2: _rm("rules", POLICY_RULE)})
CLUSTER_ROLE = _msg(
    "ClusterRole",
    {
        1: _m("metadata", OBJECT_META),
        2: _rm("rules", POLICY_RULE),
        3: _m("aggregationRule", _msg("AggregationRule", {1: _rm("clusterRoleSelectors", LABEL_SELECTOR)}), True),
    },
)
ROLE_BINDING = _msg(
    "RoleBinding",
    {1: _m("metadata", OBJECT_META), 2: _rm("subjects", SUBJECT), 3: _m("roleRef", ROLE_REF, True)},
)

# authorization.k8s.io/v1
FIELD_SELECTOR_REQUIREMENT = _msg(
    "FieldSelectorRequirement", {1: _s("key", True), 2: _s("operator", True), 3: _rs("values")}
)
RESOURCE_ATTRIBUTES = _msg(
    "ResourceAttributes",
    {
        1: _s("namespace"),
        2: _s("verb"),
        3: _s("group"),
        4: _s("version"),
        5: _s("resource"),
        6: _s("subresource"),
        7: _s("name"),
        8: _m(
            "fieldSelector",
            _msg(
                "FieldSelectorAttributes",
                {1: _s("rawSelector"), 2: _rm("requirements", FIELD_SELECTOR_REQUIREMENT)},
            ),
            True,
        ),
        9: _m(
            "labelSelector",
            _msg(
                "LabelSelectorAttributes",
                {1: _s("rawSelector"), 2: _rm("requirements", LABEL_SELECTOR_REQUIREMENT)},
            ),
            True,
        ),
    },
)
NON_RESOURCE_ATTRIBUTES = _msg("NonResourceAttributes", {1: _s("path"), 2: _s("verb")})
EXTRA_VALUE = _msg("ExtraValue", {1: _rs("items")}, lambda v: v.get("items", []))
SUBJECT_ACCESS_REVIEW_SPEC = _msg(
    "SubjectAccessReviewSpec",
    {
        1: _m("resourceAttributes", RESOURCE_ATTRIBUTES, True),
        2: _m("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES, True),
        3: _s("user"),
        4: _rs("groups"),
        5: _map("extra", EXTRA_VALUE),
        6: _s("uid"),
    },
)
SUBJECT_ACCESS_REVIEW = _msg(
    "SubjectAccessReview", {1: _m("metadata", OBJECT_META), 2: _m("spec", SUBJECT_ACCESS_REVIEW_SPEC, True)}
)
SELF_SUBJECT_ACCESS_REVIEW = _msg(
    "SelfSubjectAccessReview",
    {
        1: _m("metadata", OBJECT_META),
        2: _m(
            "spec",
            _msg(
                "SelfSubjectAccessReviewSpec",
                {
                    1: _m("resourceAttributes", RESOURCE_ATTRIBUTES, True),
                    2: _m("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES, True),
                },
            ),
            True,
        ),
    },
)
SELF_SUBJECT_RULES_REVIEW = _msg(
    "SelfSubjectRulesReview",
    {1: _m("metadata", OBJECT_META), 2: _m("spec", _msg("SelfSubjectRulesReviewSpec", {1: _s("namespace")}), True)},
)

BOUND_OBJECT_REFERENCE = _msg("BoundObjectReference", {1: _s("kind"), 2: _s("apiVersion"), 3: _s("name"), 4: _s("uid")})
TOKEN_REQUEST = _msg(
    "TokenRequest",
    {
        1: _m("metadata", OBJECT_META),
        2: _m(
            "spec",
            _msg(
                "TokenRequestSpec",
                {
                    1: _rs("audiences"),
                    4: _i64("expirationSeconds", True),
                    3: _m("boundObjectRef", BOUND_OBJECT_REFERENCE),
                },
            ),
        ),
        3: _m("status", _msg("TokenRequestStatus", {1: _s("token"), 2: _m("expirationTimestamp", TIME)})),
    },
)
USER_INFO = _msg("UserInfo", {1: _s("username"), 2: _s("uid"), 3: _rs("groups")})  # extra: never sent by clients
SELF_SUBJECT_REVIEW = _msg(
    "SelfSubjectReview",
    {1: _m("metadata", OBJECT_META), 2: _m("status", _msg("SelfSubjectReviewStatus", {1: _m("userInfo", USER_INFO)}))},
)
TOKEN_REVIEW = _msg(
    "TokenReview",
    {
        1: _m("metadata", OBJECT_META),
        2: _m("spec", _msg("TokenReviewSpec", {1: _s("token"), 2: _rs("audiences")})),
        3: _m(
            "status",
            _msg(
                "TokenReviewStatus",
                {1: _b("authenticated"), 2: _m("user", USER_INFO), 4: _rs("audiences"), 3: _s("error")},
            ),
        ),
    },
)

# autoscaling/v1 and autoscaling/v2 (kubectl autoscale sends a v1 HorizontalPodAutoscaler)
CROSS_VERSION_OBJECT_REFERENCE = _msg(
    "CrossVersionObjectReference", {1: _s("kind", True), 2: _s("name", True), 3: _s("apiVersion")}
)
HPA_V1_SPEC = _msg(
    "HorizontalPodAutoscalerSpec",
    {
        1: _m("scaleTargetRef", CROSS_VERSION_OBJECT_REFERENCE, True),
        2: _i32("minReplicas", True),
        3: _i32("maxReplicas", True),
        4: _i32("targetCPUUtilizationPercentage", True),
    },
)
HPA_V1_STATUS = _msg(
    "HorizontalPodAutoscalerStatus",
    {
        1: _i64("observedGeneration", True),
        2: _m("lastScaleTime", TIME, True),
        3: _i32("currentReplicas", True),
        4: _i32("desiredReplicas", True),
        5: _i32("currentCPUUtilizationPercentage", True),
    },
)
HPA_V1 = _msg(
    "HorizontalPodAutoscaler",
    {1: _m("metadata", OBJECT_META), 2: _m("spec", HPA_V1_SPEC), 3: _m("status", HPA_V1_STATUS)},
)
METRIC_IDENTIFIER = _msg("MetricIdentifier", {1: _s("name", True), 2: _m("selector", LABEL_SELECTOR, True)})
METRIC_TARGET = _msg(
    "MetricTarget",
    {
        1: _s("type", True),
        2: _m("value", QUANTITY, True),
        3: _m("averageValue", QUANTITY, True),
        4: _i32("averageUtilization", True),
    },
)
METRIC_SPEC = _msg(
    "MetricSpec",
    {
        1: _s("type", True),
        2: _m(
            "object",
            _msg(
                "ObjectMetricSource",
                {
                    1: _m("describedObject", CROSS_VERSION_OBJECT_REFERENCE, True),
                    2: _m("target", METRIC_TARGET, True),
                    3: _m("metric", METRIC_IDENTIFIER, True),
                },
            ),
            True,
        ),
        3: _m(
            "pods",
            _msg("PodsMetricSource", {1: _m("metric", METRIC_IDENTIFIER, True), 2: _m("target", METRIC_TARGET, True)}),
            True,
        ),
        4: _m(
            "resource",
            _msg("ResourceMetricSource", {1: _s("name", True), 2: _m("target", METRIC_TARGET, True)}),
            True,
        ),
        5: _m(
            "external",
            _msg(
                "ExternalMetricSource", {1: _m("metric", METRIC_IDENTIFIER, True), 2: _m("target", METRIC_TARGET, True)}
            ),
            True,
        ),
        7: _m(
            "containerResource",
            _msg(
                "ContainerResourceMetricSource",
                {1: _s("name", True), 2: _m("target", METRIC_TARGET, True), 3: _s("container", True)},
            ),
            True,
        ),
    },
)
HPA_SCALING_RULES = _msg(
    "HPAScalingRules",
    {
        1: _s("selectPolicy", True),
        2: _rm(
            "policies",
            _msg("HPAScalingPolicy", {1: _s("type", True), 2: _i32("value", True), 3: _i32("periodSeconds", True)}),
        ),
        3: _i32("stabilizationWindowSeconds", True),
        4: _m("tolerance", QUANTITY, True),
    },
)
HPA_V2_SPEC = _msg(
    "HorizontalPodAutoscalerSpec",
    {
        1: _m("scaleTargetRef", CROSS_VERSION_OBJECT_REFERENCE, True),
        2: _i32("minReplicas", True),
        3: _i32("maxReplicas", True),
        4: _rm("metrics", METRIC_SPEC),
        5: _m(
            "behavior",
            _msg(
                "HorizontalPodAutoscalerBehavior",
                {1: _m("scaleUp", HPA_SCALING_RULES, True), 2: _m("scaleDown", HPA_SCALING_RULES, True)},
            ),
            True,
        ),
    },
)
HPA_V2 = _msg("HorizontalPodAutoscaler", {1: _m("metadata", OBJECT_META), 2: _m("spec", HPA_V2_SPEC)})

KINDS: dict[tuple[str, str], Message] = {
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("v1", "ResourceQuota"): RESOURCE_QUOTA,
    ("v1", "Service"): SERVICE,
    ("apps/v1", "Deployment"): DEPLOYMENT,
    ("batch/v1", "Job"): JOB,
    ("batch/v1", "CronJob"): CRON_JOB,
    ("networking.k8s.io/v1", "Ingress"): INGRESS,
    ("autoscaling/v1", "HorizontalPodAutoscaler"): HPA_V1,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HPA_V2,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ROLE_BINDING,
    ("authorization.k8s.io/v1", "SubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SELF_SUBJECT_RULES_REVIEW,
    ("authentication.k8s.io/v1", "TokenRequest"): TOKEN_REQUEST,
    ("authentication.k8s.io/v1", "TokenReview"): TOKEN_REVIEW,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
}
SUPPORTED_KINDS: tuple[tuple[str, str], ...] = tuple(sorted(KINDS))


# --------------------------------------------------------------------------- public API


def decode_message(data: bytes | memoryview, message: Message) -> dict[str, Any]:
    """Decode a bare protobuf message (no magic, no envelope) with the given descriptor."""
    return _decode_message(memoryview(data), message, message.name)


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00`` + runtime.Unknown body into the object's JSON-form dict."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ProtobufError(f"protobuf body must be bytes, not {type(body).__name__}")
    view = memoryview(body)
    if bytes(view[:4]) != MAGIC:
        raise ProtobufError("not a Kubernetes protobuf body: missing the 'k8s\\x00' prefix")
    api_version = kind = content_encoding = content_type = ""
    raw = memoryview(b"")
    for num, wire, value in _iter_fields(view[4:], "Unknown"):
        if num == 1:
            if wire != _LEN:
                raise ProtobufError("Unknown.typeMeta: expected a message")
            for tnum, twire, tvalue in _iter_fields(value, "Unknown.typeMeta"):
                if tnum == 1:
                    api_version = _scalar("string", twire, tvalue, "Unknown.typeMeta.apiVersion")
                elif tnum == 2:
                    kind = _scalar("string", twire, tvalue, "Unknown.typeMeta.kind")
        elif num == 2:
            if wire != _LEN:
                raise ProtobufError("Unknown.raw: expected bytes")
            raw = value
        elif num == 3:
            content_encoding = _scalar("string", wire, value, "Unknown.contentEncoding")
        elif num == 4:
            content_type = _scalar("string", wire, value, "Unknown.contentType")
    if not api_version or not kind:
        raise ProtobufError("runtime.Unknown envelope has no typeMeta apiVersion/kind")
    if content_encoding:
        raise ProtobufError(f"unsupported contentEncoding {content_encoding!r}")
    if content_type and not is_protobuf(content_type):
        raise ProtobufError(f"unsupported contentType {content_type!r} inside runtime.Unknown")
    message = KINDS.get((api_version, kind))
    if message is None:
        supported = ", ".join(f"{v}/{k}" for v, k in SUPPORTED_KINDS)
        raise ProtobufError(f"no protobuf decoder for {api_version}/{kind}; supported: {supported}")
    return {"apiVersion": api_version, "kind": kind, **_decode_message(raw, message, kind)}
