"""Where the apiserver's CPU goes: a breakdown of py-spy collapsed stacks (`bench/apiserver.py --profile DIR`).

    .venv/bin/python bench/pyspy_breakdown.py DIR/create-tls-*.txt

Samples waiting in epoll (and in gRPC's C thread) are left out. Each sample is charged to the innermost
frame that falls in one of the layers below (a frame in `copy.py` called from the registry counts as the
registry's), so the shares add up to 100 %.
`--top N` also lists the N functions with the most samples inclusive (anywhere on the stack).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# (layer, pattern on "function (file:line)"), innermost match wins; the order only breaks ties in one frame
LAYERS: tuple[tuple[str, str], ...] = (
    ("JSON decode (decode_body)", r"^decode_body |\(apiserver/codec\.py.*check_depth"),
    ("encode (json_response, orjson.dumps)", r"^json_response |^object_response "),
    ("etcd gRPC (storage, etcdgrpc, hpack)", r"\(apiserver/(storage|etcdclient|etcdgrpc)\.py|hpack/|protobuf/|grpc"),
    ("watch cache (fan-out, apply)", r"\(apiserver/watch_cache\.py|\(apiserver/watch\.py"),
    ("admission", r"\(apiserver/admission/"),
    ("field validation (openapi.validate_fields)", r"\(apiserver/openapi\.py"),
    ("validation (apimachinery/validation, strategy)", r"\(apimachinery/validation\.py|validate"),
    ("required fields (required.py)", r"\(apiserver/required\.py"),
    ("type check (typecheck.py)", r"\(apiserver/typecheck\.py"),
    ("defaulting/strategy (kinds/, strategy.py)", r"\(apiserver/kinds/|\(apiserver/strategy\.py"),
    ("managedFields", r"\(apiserver/managedfields\.py"),
    ("pydantic models", r"pydantic|\(apimachinery/models\.py"),
    ("registry (other)", r"\(apiserver/registry\.py"),
    ("handlers (other)", r"\(apiserver/handlers\.py"),
    ("metrics (prometheus_client)", r"prometheus_client"),
    ("chain: request_info", r"\(apiserver/chain/request_info\.py|\(apiserver/request_info\.py|\(apiserver/context\.py"),
    ("chain: authentication (x509, tokens)", r"\(apiserver/chain/authentication\.py|\(apiserver/authn/"),
    ("chain: authorization (Node, RBAC)", r"\(apiserver/chain/authorization\.py|\(apiserver/authz/"),
    ("chain: audit", r"\(apiserver/chain/audit\.py|\(apiserver/audit/"),
    ("chain: max_inflight", r"\(apiserver/chain/max_inflight\.py"),
    ("chain: impersonation", r"\(apiserver/chain/impersonation\.py"),
    ("chain: panic, respond", r"\(apiserver/chain/panic\.py|\(apiserver/chain/respond\.py"),
    ("admission feedback middleware", r"\(apiserver/admission/feedback\.py"),
    ("app.py api_path", r"\(apiserver/app\.py"),
    ("FastAPI/Starlette routing", r"fastapi/|starlette/"),
    ("body limits (limits.py)", r"\(apiserver/limits\.py"),
    ("HTTP: uvicorn, httptools, TLS", r"uvicorn/|httptools|tlsserving\.py|httpserver\.py|ssl"),
    ("asyncio event loop", r"asyncio/|selectors\.py"),
)
COMPILED = [(name, re.compile(pattern)) for name, pattern in LAYERS]
# waiting, not working: the event loop in epoll, and gRPC's own thread (its C core, which py-spy cannot see into)
IDLE = re.compile(r"^EpollSelector\.select |^Thread\.run ")


def parse(path: Path) -> list[tuple[list[str], int]]:
    """The samples of one collapsed-stacks file: (frames root first, count)."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def layer_of(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to one."""
    for frame in reversed(frames):
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return name
    return "other"


def main(argv: list[str] | None = None) -> int:
    """Print the layer shares (and optionally the top inclusive functions) of the given files."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=0, help="also list the N functions with most inclusive samples")
    args = p.parse_args(argv)
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for f in args.files:
        for frames, n in parse(f):
            if IDLE.search(frames[-1]):
                continue
            total += n
            layers[layer_of(frames)] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{total} samples")
    for name, n in layers.most_common():
        print(f"{n / total:6.1%}  {name}")
    if args.top:
        print()
        for frame, n in inclusive.most_common(args.top):
            print(f"{n / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
