"""Resource quantities (`500m`, `1Gi`, `2`) parsed the way Kubernetes does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "BINARY_SI",
    "DECIMAL_EXPONENT",
    "DECIMAL_SI",
    "QUANTITY_MESSAGE",
    "Quantity",
    "QuantityError",
    "parse_quantity",
    "to_milli",
]

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


# --- Quantity: value plus format, printed the way resource.Quantity.String() does ------------------

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"
_NANO = Decimal("1e-9")
_DEC_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIXES = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}


def _format_of(text: str) -> str:
    m = _RE.match(text.strip())
    suffix = m.group(2) if m else ""
    if suffix.endswith("i"):
        return BINARY_SI
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return DECIMAL_EXPONENT
    return DECIMAL_SI


def _round_up_nano(value: Decimal) -> Decimal:
    """Quantities keep nano precision and round anything finer up, as upstream's parser does."""
    return (value / _NANO).to_integral_value(rounding="ROUND_CEILING") * _NANO


def _decimal_parts(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) with the exponent a multiple of 3 and no trailing zeros beyond it."""
    sign, digits, exp = value.normalize().as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    exponent = int(exp)
    extra = exponent % 3
    if extra:
        exponent -= extra
        mantissa *= 10**extra
    return (-mantissa if sign else mantissa), exponent


@dataclass(frozen=True, order=False)
class Quantity:
    """A resource quantity: its exact value (nano precision) and the format it prints in.

    Sums keep the format of the left operand unless it is zero (resource.Quantity.Add); `str()` is
    upstream's canonical form (`2000m` → `2`, `1024Mi` → `1Gi`, `0.5` → `500m`).
    """

    value: Decimal
    format: str = DECIMAL_SI

    @classmethod
    def parse(cls, text: str | int | float) -> Quantity:
        """Parse `500m`, `1Gi`, `2`; raises QuantityError."""
        fmt = DECIMAL_SI if isinstance(text, int | float) else _format_of(str(text))
        return cls(_round_up_nano(parse_quantity(text)), fmt)

    @classmethod
    def zero(cls) -> Quantity:
        """0, DecimalSI."""
        return cls(Decimal(0), DECIMAL_SI)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, other.format if self.value == 0 else self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.value - other.value, other.format if self.value == 0 else self.format)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value

    def __ge__(self, other: Quantity) -> bool:
        return self.value >= other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def milli_value(self) -> int:
        """Thousandths, rounded up (MilliValue)."""
        return int((self.value * 1000).to_integral_value(rounding="ROUND_CEILING"))

    def int_value(self) -> int:
        """Whole units, rounded up (Value)."""
        return int(self.value.to_integral_value(rounding="ROUND_CEILING"))

    def sign(self) -> int:
        """-1, 0 or 1."""
        return (self.value > 0) - (self.value < 0)

    def __str__(self) -> str:
        value = self.value
        if value == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI and (-1024 < value < 1024 or value != value.to_integral_value()):
            fmt = DECIMAL_SI
        if fmt == BINARY_SI:
            number, power = int(value), 0
            while number % 1024 == 0 and power < max(_BIN_SUFFIXES):
                number //= 1024
                power += 1
            return f"{number}{_BIN_SUFFIXES[power]}"
        mantissa, exponent = _decimal_parts(value)
        if fmt == DECIMAL_EXPONENT:
            return f"{mantissa}e{exponent}" if exponent else str(mantissa)
        while exponent > max(_DEC_SUFFIXES):
            mantissa, exponent = mantissa * 1000, exponent - 3
        return f"{mantissa}{_DEC_SUFFIXES[exponent]}"
