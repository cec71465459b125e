"""The channel WebSocket protocol's pieces (kubelet/portforward_channels.py): ports and frames."""

from __future__ import annotations

import pytest

from kubelet.portforward_channels import decode_frame, encode_frame, parse_ports


def test_ports_repeat_and_split_on_commas() -> None:
    assert parse_ports(["80", "8080,9090"]) == [80, 8080, 9090]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], 'query parameter "port" is required'),
        ([""], 'query parameter "port" cannot be empty'),
        (["http"], 'unable to parse "http" as a port'),
        (["80,70000"], 'unable to parse "80,70000" as a port'),
        (["0"], 'port "0" must be > 0'),
    ],
)
def test_bad_ports_in_the_kubelets_words(values: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ports(values)


def test_frames_binary_and_base64() -> None:
    assert encode_frame(3, b"hi", False) == b"\x03hi"
    assert encode_frame(3, b"hi", True) == "3aGk="
    assert decode_frame(b"\x02data") == (2, b"data")
    assert decode_frame("0aGk=") == (0, b"hi")
    assert decode_frame(b"") is None
    assert decode_frame("x") is None
    assert decode_frame("0not base64!") is None
