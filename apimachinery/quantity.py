"""Resource quantities (`500m`, `1Gi`, `2`) parsed the way Kubernetes does."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["QUANTITY_MESSAGE", "QuantityError", "parse_quantity", "to_milli"]

_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_MESSAGE = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


class QuantityError(ValueError):
    """Not a valid quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value as a Decimal (`500m` → 0.5, `1Ki` → 1024)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    m = _RE.match(str(value).strip())
    if not m:
        raise QuantityError(QUANTITY_MESSAGE)
    number, suffix = m.groups()
    try:
        base = Decimal(number)
    except InvalidOperation as e:
        raise QuantityError(QUANTITY_MESSAGE) from e
    if suffix in _SUFFIX:
        return base * _SUFFIX[suffix]
    if suffix[:1] in "eE":
        try:
            return base * (Decimal(10) ** int(suffix[1:]))
        except ValueError as e:
            raise QuantityError(QUANTITY_MESSAGE) from e
    raise QuantityError(QUANTITY_MESSAGE)


def to_milli(value: str | int | float) -> int:
    """The quantity in thousandths, rounded up (cpu `250m` → 250)."""
    q = parse_quantity(value) * 1000
    return int(q.to_integral_value(rounding="ROUND_CEILING"))
