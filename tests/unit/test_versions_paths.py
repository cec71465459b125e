"""A converted version's request is rewritten onto the storage version's path: the path read without building
Starlette's URL must be the URL's path for every path a client can send."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from apiserver.versions import _url_path


@pytest.mark.parametrize(
    "path",
    [
        "/apis/events.k8s.io/v1/namespaces/a/events",
        "//apis/x",
        "/a b/c",
        "/é/ü",
        "/a;b=c/d",
        "/a%20b",
        "/a?b",
        "/a#b",
        "/a\\b",
        "/a/../b",
        "/a:b@c",
        "/",
    ],
)
@pytest.mark.parametrize("headers", [[(b"host", b"x:1")], [], [(b"host", b"[::1]:8")]])
def test_the_path_is_the_urls_path(path: str, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "path": path, "headers": headers, "query_string": b"q=1", "server": ("h", 1)}
    assert _url_path(Request(scope)) == Request(scope).url.path
