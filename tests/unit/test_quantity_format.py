"""Quantity: upstream's canonical printing (resource.Quantity.String) and arithmetic formats."""

from __future__ import annotations

import pytest

from apimachinery.quantity import BINARY_SI, DECIMAL_EXPONENT, DECIMAL_SI, Quantity, QuantityError

# (input, canonical) pairs from k8s.io/apimachinery/pkg/api/resource quantity_test.go
CANONICAL = [
    ("0", "0"),
    ("1", "1"),
    ("1000m", "1"),
    ("2000m", "2"),
    ("1500m", "1500m"),
    ("0.5", "500m"),
    ("1.5", "1500m"),
    ("0.001", "1m"),
    ("100u", "100u"),
    ("1n", "1n"),
    ("0.1m", "100u"),
    ("1500", "1500"),
    ("2000", "2k"),
    ("1.1M", "1100k"),
    ("12E", "12E"),
    ("1Ki", "1Ki"),
    ("1024Ki", "1Mi"),
    ("2048Ki", "2Mi"),
    ("1536Mi", "1536Mi"),
    ("1.5Gi", "1536Mi"),
    ("0.5Ki", "512"),
    ("1023", "1023"),
    ("1e3", "1e3"),
    ("1E3", "1e3"),
    ("2e-3", "2e-3"),
    ("1.000000001", "1000000001n"),
    ("0.0000000001", "1n"),  # finer than nano rounds up
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_string(text: str, canonical: str) -> None:
    assert str(Quantity.parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "fmt"), [("1", DECIMAL_SI), ("1k", DECIMAL_SI), ("1Mi", BINARY_SI), ("1e3", DECIMAL_EXPONENT)]
)
def test_format_follows_the_suffix(text: str, fmt: str) -> None:
    assert Quantity.parse(text).format == fmt


def test_sum_keeps_the_left_format_unless_zero() -> None:
    assert str(Quantity.parse("256Mi") + Quantity.parse("256Mi")) == "512Mi"
    assert str(Quantity.zero() + Quantity.parse("256Mi")) == "256Mi"  # a zero takes the other's format
    assert str(Quantity.parse("1") + Quantity.parse("500m")) == "1500m"
    assert str(Quantity.parse("1Gi") - Quantity.parse("512Mi")) == "512Mi"


def test_milli_and_whole_values_round_up() -> None:
    q = Quantity.parse("1.0001")
    assert q.milli_value() == 1001
    assert q.int_value() == 2
    assert Quantity.parse("250m").milli_value() == 250


def test_comparisons_use_the_value_not_the_text() -> None:
    assert Quantity.parse("1") == Quantity.parse("1000m")
    assert Quantity.parse("1Gi") > Quantity.parse("1G")
    assert Quantity.parse("-1").sign() == -1


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "1Qi", "--1"])
def test_invalid_quantities(bad: str) -> None:
    with pytest.raises(QuantityError):
        Quantity.parse(bad)
