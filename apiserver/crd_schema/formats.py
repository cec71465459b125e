"""String formats a CRD schema may name, checked as kube-openapi's strfmt registry checks them.

A format CRDs do not support is ignored (upstream strips it before building the validator); names are
compared without dashes (`date-time` is `datetime`), as go-openapi normalizes them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from email.utils import parseaddr
from urllib.parse import urlsplit

__all__ = ["checker_for", "effective"]

_HOSTNAME_RE = re.compile(
    r"^([a-zA-Z0-9\w]((-?[a-zA-Z0-9\w]{0,62})?)|([a-zA-Z0-9\w](([a-zA-Z0-9\-\w]{0,61}[a-zA-Z0-9\w])?)(\.)){1,}([a-zA-Z]){2,63})$"
)
_UUID_RE = {
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
    "uuid5": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"),
}
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_TIME_RE = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
_GO_DURATION_RE = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$")
_LOOSE_DURATION_RE = re.compile(r"((\d+)\s*([A-Za-zµ]+))")
_DURATION_UNITS = (
    ("ns", "nano"),
    ("us", "µs", "micro"),
    ("ms", "milli"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)
_MAC_RE = re.compile(
    r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{2}[:-]){7}([0-9A-Fa-f]{2})$"
    r"|^([0-9A-Fa-f]{2}[:-]){19}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}([0-9A-Fa-f]{4})$"
    r"|^([0-9A-Fa-f]{4}\.){3}([0-9A-Fa-f]{4})$|^([0-9A-Fa-f]{4}\.){9}([0-9A-Fa-f]{4})$"
)
_SSN_RE = re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_HEXCOLOR_RE = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR_RE = re.compile(
    r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,"
    r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
)
_BSON_RE = re.compile(r"^[0-9a-fA-F]{24}$")
_SHORT_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LONG_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _is_date(value: str) -> bool:
    m = _DATE_RE.match(value)
    if not m:
        return False
    import datetime

    try:
        datetime.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    if len(value) < 4:
        return False
    parts = value.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    m = _TIME_RE.match(parts[1])
    return bool(m) and m[1] <= "23" and m[2] <= "59" and m[3] <= "59"


def _is_duration(value: str) -> bool:
    if _GO_DURATION_RE.match(value):
        return True
    for match in _LOOSE_DURATION_RE.finditer(value):
        unit = match[3].strip().lower()
        for variants in _DURATION_UNITS:
            last = len(variants) - 1
            if any((i == last and unit.startswith(v)) or unit == v.lower() for i, v in enumerate(variants)):
                return True
    return False


def _is_hostname(value: str) -> bool:
    if not _HOSTNAME_RE.match(value) or len(value) > 255:
        return False
    return all(len(part) <= 63 for part in value.split("."))


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return ":" in value


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _is_uri(value: str) -> bool:
    # govalidator.IsRequestURI: url.ParseRequestURI accepts absolute URIs and absolute paths
    if not value:
        return False
    if value.startswith("/"):
        return " " not in value
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and " " not in value


def _is_email(value: str) -> bool:
    _, addr = parseaddr(value)
    return bool(addr) and "@" in addr


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _is_creditcard(value: str) -> bool:
    digits = re.sub(r"[^0-9]", "", value)
    return bool(
        re.match(
            r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11})$",
            digits,
        )
    ) and _luhn(digits)


def _is_isbn10(value: str) -> bool:
    s = re.sub(r"[\s-]", "", value)
    if not re.match(r"^(?:[0-9]{9}X|[0-9]{10})$", s):
        return False
    total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(s))
    return total % 11 == 0


def _is_isbn13(value: str) -> bool:
    s = re.sub(r"[\s-]", "", value)
    if not re.match(r"^(?:[0-9]{13})$", s):
        return False
    total = sum(int(ch) * (1 if i % 2 == 0 else 3) for i, ch in enumerate(s[:12]))
    return (10 - total % 10) % 10 == int(s[12])


_CHECKERS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda v: bool(_BSON_RE.match(v)),
    "uri": _is_uri,
    "email": _is_email,
    "hostname": _is_hostname,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "cidr": _is_cidr,
    "mac": lambda v: bool(_MAC_RE.match(v)),
    "uuid": lambda v: bool(_UUID_RE["uuid"].match(v)),
    "uuid3": lambda v: bool(_UUID_RE["uuid3"].match(v)),
    "uuid4": lambda v: bool(_UUID_RE["uuid4"].match(v)),
    "uuid5": lambda v: bool(_UUID_RE["uuid5"].match(v)),
    "isbn": lambda v: _is_isbn10(v) or _is_isbn13(v),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_creditcard,
    "ssn": lambda v: bool(_SSN_RE.match(v)),
    "hexcolor": lambda v: bool(_HEXCOLOR_RE.match(v)),
    "rgbcolor": lambda v: bool(_RGBCOLOR_RE.match(v)),
    "byte": _is_base64,
    "password": lambda v: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_datetime,
    "k8sshortname": lambda v: len(v) <= 63 and bool(_SHORT_NAME_RE.match(v)),
    "k8slongname": lambda v: len(v) <= 253 and bool(_LONG_NAME_RE.match(v)),
}


def effective(type_: str, fmt: str) -> str:
    """The format upstream keeps for a schema of `type_` (StripUnsupportedFormatsPostProcess); "" if dropped."""
    if not fmt:
        return ""
    if type_ in ("", "string"):
        return fmt if fmt.replace("-", "") in _CHECKERS else ""
    if type_ == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if type_ == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


def checker_for(type_: str, fmt: str) -> Callable[[str], bool] | None:
    """The check for a string format a CRD supports, or None when upstream ignores the format."""
    if not fmt or type_ not in ("", "string"):
        return None
    return _CHECKERS.get(fmt.replace("-", ""))
