"""codec.json_response builds the same answer as Starlette's Response for every status and header set."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.responses import Response

from apiserver.codec import JSON, json_response


async def _messages(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    await response({"type": "http"}, receive, send)
    return sent


@pytest.mark.parametrize("status", [200, 201, 404, 500, 204, 101])
@pytest.mark.parametrize("headers", [None, {}, {"Retry-After": "1"}, {"Content-Type": "application/apply-patch+yaml"}])
async def test_the_answer_is_starlettes(status: int, headers: dict[str, str] | None) -> None:
    obj = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}}
    ours = json_response(obj, status, headers)
    theirs = Response(orjson.dumps(obj), status_code=status, media_type=JSON, headers=headers)
    assert type(ours) is Response and ours.media_type == theirs.media_type == JSON
    assert await _messages(ours) == await _messages(theirs)
    ours.headers.append("Warning", '299 - "deprecated"')  # as the API route adds deprecation warnings
    theirs.headers.append("Warning", '299 - "deprecated"')
    assert ours.raw_headers == theirs.raw_headers
