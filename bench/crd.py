"""Benchmark of custom resources against ConfigMaps of the same size, measured in the same run.

Run from the repo root:

    .venv/bin/python bench/crd.py           # full: 5,000 objects of each kind, 5,000 gets, lists of 5,000
    .venv/bin/python bench/crd.py --quick   # small: 1,000 objects of each kind (< 60 s)

It starts its own etcd and apiserver as bench/apiserver.py does (same flags: TLS port, Node,RBAC, no
compaction) and registers two CRDs with the same structural schema (typed fields, a pattern, an
enum, a default), one of them with an `x-kubernetes-validations` CEL rule. Against ConfigMaps whose
JSON request body has the same size, on C concurrent workers, it measures creates/s, gets/s, the p50
of a full list of N objects and the apiserver's CPU per create, and prints each CR figure beside the
ConfigMap figure with the ratio and whether the bar of issue 11 item 7 holds (the CRD path within
20 % of the built-in path). Series run in rounds of alternating order so drift weighs on every kind.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit import load_apiserver_bench

from tinykube.procs import Process

ab = load_apiserver_bench()
BenchError = ab.BenchError
CpuTally = ab.CpuTally
PoolResult = ab.PoolResult
combine, http_client, percentile, run_pool = ab.combine, ab.http_client, ab.percentile, ab.run_pool

NAMESPACE = "bench"
GROUP = "bench.tinykube.io"
MiB = 1024 * 1024
BAR = 0.20  # issue 11 item 7: the CRD path within 20 % of the built-in path
ROUNDS = 2  # each series runs in rounds, the order of the kinds reversed every round


def widget_schema(cel: bool) -> dict[str, Any]:
    """A realistic structural schema: typed fields, a pattern, an enum with a default, a bounded list;
    with `cel`, one x-kubernetes-validations rule on spec."""
    spec: dict[str, Any] = {
        "type": "object",
        "required": ["image", "replicas"],
        "properties": {
            "image": {"type": "string", "pattern": "^[a-z0-9./:-]+$", "maxLength": 256},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
            "maxReplicas": {"type": "integer", "minimum": 0, "maximum": 1000},
            "mode": {"type": "string", "enum": ["Active", "Standby"], "default": "Active"},
            "ports": {"type": "array", "maxItems": 16, "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "notes": {"type": "string", "maxLength": 65536},
        },
    }
    if cel:
        spec["x-kubernetes-validations"] = [
            {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"}
        ]
    return {
        "type": "object",
        "properties": {
            "spec": spec,
            "status": {"type": "object", "properties": {"ready": {"type": "integer"}}},
        },
    }


@dataclass(frozen=True)
class Kind:
    """One kind under test: where its objects live and how one is built."""

    label: str  # in the table
    path: str  # collection URL in the namespace
    body: Callable[[int, str], dict[str, Any]]  # (i, padding) -> object

    def name(self, i: int) -> str:
        """The name of object number i."""
        return f"obj-{i:05d}"


def configmap(i: int, pad: str) -> dict[str, Any]:
    """A ConfigMap; `pad` makes its JSON as long as the custom resource's."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"obj-{i:05d}", "labels": {"app": "bench", "shard": str(i % 10)}},
        "data": {"image": "registry.k8s.io/pause:3.9", "replicas": "3", "notes": pad},
    }


def custom(plural_kind: str) -> Callable[[int, str], dict[str, Any]]:
    """A custom resource of `plural_kind`; mode is left out so the schema's default fills it."""

    def body(i: int, pad: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": plural_kind,
            "metadata": {"name": f"obj-{i:05d}", "labels": {"app": "bench", "shard": str(i % 10)}},
            "spec": {
                "image": "registry.k8s.io/pause:3.9",
                "replicas": 3,
                "maxReplicas": 5,
                "ports": [80, 443, 8080],
                "env": {"LOG_LEVEL": "info", "REGION": "eu-west-1"},
                "notes": pad,
            },
        }

    return body


def crd(plural: str, kind: str, cel: bool) -> dict[str, Any]:
    """A namespaced CRD of one served and stored version v1 with the status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": widget_schema(cel)},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


KINDS = (
    Kind("ConfigMap", f"/api/v1/namespaces/{NAMESPACE}/configmaps", configmap),
    Kind("CR with CEL", f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/widgets", custom("Widget")),
    Kind("CR without CEL", f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/gadgets", custom("Gadget")),
)
CRDS = (crd("widgets", "Widget", cel=True), crd("gadgets", "Gadget", cel=False))


@dataclass(frozen=True)
class Settings:
    """Sizes, concurrency and time bounds of one run."""

    quick: bool
    concurrency: int
    objects: int  # created of each kind
    gets: int  # of each kind
    list_reps: int
    body_bytes: int  # target JSON size of every create body
    op_budget: float  # seconds per series of one kind
    list_budget: float
    profile_dir: Path | None

    @classmethod
    def make(cls, quick: bool, concurrency: int, body_bytes: int, profile_dir: Path | None) -> Settings:
        """The quick or the full profile."""
        if quick:
            return cls(True, concurrency, 1000, 2000, 20, body_bytes, 15.0, 8.0, profile_dir)
        return cls(False, concurrency, 5000, 5000, 30, body_bytes, 60.0, 40.0, profile_dir)


def padded(kind: Kind, i: int, size: int) -> bytes:
    """The JSON body of object i of `kind`, padded (spec.notes / data.notes) to exactly `size` bytes."""
    bare = len(orjson.dumps(kind.body(i, "")))
    if bare > size:
        raise BenchError(f"--body-bytes {size} is below the bare {kind.label} body ({bare} B)")
    body = orjson.dumps(kind.body(i, "x" * (size - bare)))
    assert len(body) == size, (kind.label, len(body), size)
    return body


class CrdBench:
    """One run: three kinds on one apiserver and one etcd."""

    def __init__(self, settings: Settings, etcd: Process, apiserver: Process, api_url: str) -> None:
        self.s = settings
        self.etcd, self.apiserver, self.api_url = etcd, apiserver, api_url
        self.clients: list[httpx.AsyncClient] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.created = dict.fromkeys((k.label for k in KINDS), 0)
        self.creates: dict[str, list[PoolResult]] = {k.label: [] for k in KINDS}
        self.gets: dict[str, list[PoolResult]] = {k.label: [] for k in KINDS}
        self.cpu = {(op, k.label): CpuTally(apiserver, etcd) for op in ("create", "get", "list") for k in KINDS}
        self.lists: dict[str, list[float]] = {k.label: [] for k in KINDS}  # until decoded
        self.received: dict[str, list[float]] = {k.label: [] for k in KINDS}  # until the last byte arrived
        self.stored: dict[str, int] = {}
        self.list_bytes: dict[str, int] = {}

    def _require_alive(self) -> None:
        for p in (self.etcd, self.apiserver):
            if not p.alive():
                raise BenchError(f"{p.name} exited ({p.proc.returncode}):\n{p.tail()}")

    async def run(self) -> CrdBench:
        """Set up, then creates, gets and lists of every kind in alternating rounds."""
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(self.s.concurrency):
                self.clients.append(await stack.enter_async_context(http_client(self.api_url, 30.0)))
            await self._setup()
            await self._rounds("create", self.s.objects, self._create_op)
            await self._rounds("get", self.s.gets, self._get_op)
            await self._lists()
            await self._sizes()
        return self

    async def _setup(self) -> None:
        api = self.clients[0]
        r = await api.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        if r.status_code not in (201, 409):
            raise BenchError(f"creating namespace {NAMESPACE}: {r.status_code} {r.text[:300]}")
        for body in CRDS:
            r = await api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=body)
            if r.status_code != 201:
                raise BenchError(f"creating CRD {body['metadata']['name']}: {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + 30
        for kind in KINDS:
            while (r := await api.get(kind.path)).status_code != 200:
                if time.monotonic() > deadline:
                    raise BenchError(f"{kind.path} not served 30 s after its CRD: {r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.1)  # polling the condition "served", with the deadline above
        await self._check_schema(api)

    async def _check_schema(self, api: httpx.AsyncClient) -> None:
        """The schema really runs: a default is applied, a bad pattern and the CEL rule are refused."""
        cel, plain = KINDS[1], KINDS[2]
        probe = cel.body(99_999, "")
        probe["metadata"]["name"] = "probe-default"
        r = await api.post(cel.path, json=probe, params={"dryRun": "All"})
        if r.status_code != 201 or r.json()["spec"].get("mode") != "Active":
            raise BenchError(f"default not applied: {r.status_code} {r.text[:300]}")
        probe["spec"]["image"] = "Not An Image!"
        r = await api.post(cel.path, json=probe, params={"dryRun": "All"})
        if r.status_code != 422 or "spec.image" not in r.text:
            raise BenchError(f"pattern not enforced: {r.status_code} {r.text[:300]}")
        probe["spec"].update(image="pause", replicas=9, maxReplicas=1)
        r = await api.post(cel.path, json=probe, params={"dryRun": "All"})
        if r.status_code != 422 or "replicas must not exceed maxReplicas" not in r.text:
            raise BenchError(f"CEL rule not enforced: {r.status_code} {r.text[:300]}")
        probe["apiVersion"], probe["kind"] = f"{GROUP}/v1", "Gadget"
        r = await api.post(plain.path, json=probe, params={"dryRun": "All"})
        if r.status_code != 201:
            raise BenchError(f"the CRD without CEL refused the CEL-only error: {r.status_code} {r.text[:300]}")
        self.notes.append(
            "schema checked before timing: default applied (spec.mode=Active), pattern refused (422), "
            "CEL rule refused (422) on widgets and not on gadgets"
        )

    def _create_op(self, kind: Kind, start: int) -> Callable[[int, int], Awaitable[None]]:
        size = self.s.body_bytes

        async def create(k: int, i: int) -> None:
            r = await self.clients[k].post(
                kind.path, content=padded(kind, start + i, size), headers={"Content-Type": "application/json"}
            )
            if r.status_code != 201:
                raise BenchError(f"create {kind.label} {kind.name(start + i)}: {r.status_code} {r.text[:200]}")

        return create

    def _get_op(self, kind: Kind, start: int) -> Callable[[int, int], Awaitable[None]]:
        n = self.created[kind.label]

        async def get(k: int, i: int) -> None:
            name = kind.name((start + i) % n)
            r = await self.clients[k].get(f"{kind.path}/{name}")
            if r.status_code != 200:
                raise BenchError(f"get {kind.label} {name}: {r.status_code} {r.text[:200]}")
            orjson.loads(r.content)

        return get

    async def _rounds(
        self, op: str, total: int, make: Callable[[Kind, int], Callable[[int, int], Awaitable[None]]]
    ) -> None:
        per_round = max(1, total // ROUNDS)
        budget = self.s.op_budget / ROUNDS
        results = self.creates if op == "create" else self.gets
        for round_ in range(ROUNDS):
            for kind in KINDS if round_ % 2 == 0 else KINDS[::-1]:
                start = self.created[kind.label] if op == "create" else round_ * per_round
                fn = make(kind, start)
                out = self._profile_path(op, kind, round_)
                with ab.py_spy(self.apiserver.pid, out), self.cpu[op, kind.label].span():
                    res = await run_pool(fn, per_round, self.s.concurrency, budget)
                self._require_alive()
                if res.errors:
                    raise BenchError(
                        f"{res.errors} of {res.attempted} {kind.label} {op}s failed; first: {res.first_error}"
                    )
                if res.attempted < per_round:
                    self.warnings.append(f"time bound stopped {kind.label} {op}s at {res.attempted} of {per_round}")
                if op == "create":
                    self.created[kind.label] += res.attempted
                results[kind.label].append(res)

    def _profile_path(self, op: str, kind: Kind, round_: int) -> Path | None:
        if self.s.profile_dir is None or op != "create":
            return None
        slug = kind.label.lower().replace(" ", "-")
        return self.s.profile_dir / f"create-{slug}-{round_}.txt"

    async def _lists(self) -> None:
        """Full lists of every kind, interleaved rep by rep; timed until the client has decoded them."""
        api = self.clients[0]
        counts = set(self.created.values())
        if len(counts) != 1:
            self.warnings.append(f"the kinds hold different counts {self.created}: the list figures differ in N")

        def lister(kind: Kind) -> Callable[[], Awaitable[float]]:
            async def one() -> float:
                t0 = time.perf_counter()
                r = await api.get(kind.path)
                received = time.perf_counter() - t0
                if r.status_code != 200:
                    raise BenchError(f"list {kind.label}: {r.status_code} {r.text[:200]}")
                got = len(orjson.loads(r.content)["items"])
                if got != self.created[kind.label]:
                    raise BenchError(f"list {kind.label}: {got} items, {self.created[kind.label]} created")
                self.list_bytes[kind.label] = len(r.content)
                return received

            return one

        listers = {kind.label: lister(kind) for kind in KINDS}
        for one in listers.values():
            await one()  # warm-up, untimed
        deadline = time.perf_counter() + self.s.list_budget
        for rep in range(self.s.list_reps):
            if time.perf_counter() > deadline:
                self.warnings.append(f"time bound stopped the lists at {rep} of {self.s.list_reps} reps")
                break
            for kind in KINDS if rep % 2 == 0 else KINDS[::-1]:
                t0 = time.perf_counter()
                with self.cpu["list", kind.label].span():
                    received = await listers[kind.label]()
                self.lists[kind.label].append(time.perf_counter() - t0)
                self.received[kind.label].append(received)
            self._require_alive()

    async def _sizes(self) -> None:
        api = self.clients[0]
        for kind in KINDS:
            r = await api.get(f"{kind.path}/{kind.name(0)}")
            self.stored[kind.label] = len(r.content)

    # -- output

    def render(self, elapsed: float) -> str:
        """The table (ConfigMap beside each CR kind), the bar's verdict, notes and a summary line."""
        cm, kinds = KINDS[0].label, [k.label for k in KINDS]
        creates = {k: combine(self.creates[k]) for k in kinds}
        gets = {k: combine(self.gets[k]) for k in kinds}
        cpu_create = {k: self.cpu["create", k].api_cpu / max(1, creates[k].ok) * 1e3 for k in kinds}
        p50 = {k: percentile(self.lists[k], 50) * 1e3 for k in kinds}
        p50_received = {k: percentile(self.received[k], 50) * 1e3 for k in kinds}
        cpu_list = {k: self.cpu["list", k].api_cpu / max(1, len(self.lists[k])) * 1e3 for k in kinds}
        n = self.created[cm]
        # (figure, unit, values, higher is better)
        rows: list[tuple[str, str, dict[str, float], bool]] = [
            (f"creates/s, C={self.s.concurrency}", "/s", {k: creates[k].rate for k in kinds}, True),
            (f"gets/s, C={self.s.concurrency}", "/s", {k: gets[k].rate for k in kinds}, True),
            (f"list p50, {n} objects", "ms", p50, False),
            (
                "list p50 per MiB returned",
                "ms",
                {k: p50[k] / max(1e-9, self.list_bytes.get(k, 0) / MiB) for k in kinds},
                False,
            ),
            (f"list p50 received, {n} objects", "ms", p50_received, False),
            ("apiserver CPU per create", "ms", cpu_create, False),
            ("apiserver CPU per list", "ms", cpu_list, False),
            (
                "apiserver CPU per list per MiB",
                "ms",
                {k: cpu_list[k] / max(1e-9, self.list_bytes.get(k, 0) / MiB) for k in kinds},
                False,
            ),
        ]
        headers = ("figure", cm, kinds[1], "ratio", "bar", kinds[2], "ratio", "bar")
        table: list[tuple[str, ...]] = []
        verdicts: dict[str, list[str]] = {k: [] for k in kinds[1:]}
        for figure, unit, values, higher in rows:
            cells = [figure, _fmt(values[cm], unit)]
            for k in kinds[1:]:
                ratio = values[k] / values[cm] if values[cm] else float("nan")
                holds = ratio >= 1 - BAR if higher else ratio <= 1 + BAR
                cells += [_fmt(values[k], unit), f"{ratio:.2f}x", "holds" if holds else "MISSED"]
                if figure.startswith(("creates", "gets", "list p50,", "list p50 received", "apiserver CPU per")):
                    verdicts[k].append(f"{figure.split(',')[0]} {ratio:.2f}x{'' if holds else ' (missed)'}")
            table.append(tuple(cells))
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]

        def line(cells: tuple[str, ...]) -> str:
            return " | ".join(
                f"{c:{'<' if i == 0 else '>'}{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        out = [line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in table), ""]
        out.append(
            f"ratio = CR / ConfigMap; bar = the CRD path within {BAR:.0%} of the built-in path "
            f"(/s: ratio >= {1 - BAR:.2f}; ms: ratio <= {1 + BAR:.2f}); list p50 is timed until the client "
            "decoded the list, `received` until its last byte arrived (the server's part); the per-MiB rows "
            "divide by the response size (a CR is stored larger than a ConfigMap of the same request body: see "
            "object 0 below)"
        )
        out.append(
            f"note: every create body is {self.s.body_bytes} B of JSON; object 0 as read back: "
            + ", ".join(f"{k} {self.stored.get(k, 0)} B" for k in kinds)
            + "; one full list: "
            + ", ".join(f"{k} {self.list_bytes.get(k, 0) / 1024:,.0f} KiB" for k in kinds)
        )
        out.append(f"note: {ROUNDS} rounds per series, the order of the kinds reversed each round; lists interleaved")
        out.append(f"note: {len(self.lists[cm])} list samples per kind")
        for op in ("create", "get", "list"):
            for k in kinds:
                out.append(f"note: {op}s of {k}: {self.cpu[op, k]}")
        out += [f"note: {n_}" for n_ in self.notes]
        out += [f"WARNING: {w}" for w in self.warnings]
        cel_cost = cpu_create[kinds[1]] - cpu_create[kinds[2]]
        out.append(
            f"note: CEL's share of a create (CPU with CEL minus without): {cel_cost * 1e3:,.0f} us; "
            f"the CR path without CEL costs {(cpu_create[kinds[2]] - cpu_create[cm]) * 1e3:,.0f} us "
            "more than a ConfigMap"
        )
        out.append("")
        mode = "quick" if self.s.quick else "full"
        status = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        parts = [f"ConfigMap creates {creates[cm].rate:,.0f}/s, gets {gets[cm].rate:,.0f}/s, list p50 {p50[cm]:.0f} ms"]
        parts += [f"{k}: " + ", ".join(v) for k, v in verdicts.items()]
        out.append(f"summary ({mode}, {elapsed:.0f} s{status}): " + "; ".join(parts))
        return "\n".join(out)


def schema_cpu(body_bytes: int, objects: int = 2000, reps: int = 5) -> str:
    """In this process, no server: the CPU of pruning, defaulting and validating one create body
    against each CRD's compiled schema (the median of `reps` passes over `objects` fresh copies)."""
    from apiserver.crd_schema import CompiledSchema

    lines = []
    for kind, schema in zip(KINDS[1:], (widget_schema(True), widget_schema(False)), strict=True):
        compiled = CompiledSchema.compile(schema)
        raw = padded(kind, 0, body_bytes)
        passes = []
        for _ in range(reps):
            batch = [orjson.loads(raw) for _ in range(objects)]
            t0 = time.process_time()
            for obj in batch:
                compiled.prune(obj)
                compiled.default(obj)
                if compiled.validate(obj):
                    raise BenchError(f"{kind.label}: the body does not validate")
            passes.append((time.process_time() - t0) / objects)
        lines.append(f"{kind.label}: prune + default + validate {percentile(passes, 50) * 1e6:,.1f} us CPU per object")
    return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.2f} ms" if value < 10 else f"{value:,.1f} ms"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 objects of each kind, 2,000 gets (< 60 s)")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="concurrent requests (default 32)")
    p.add_argument("--body-bytes", type=int, default=1024, help="JSON size of every create body (default 1024)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (etcd data, logs)")
    p.add_argument(
        "--schema-cpu",
        action="store_true",
        help="no servers: the CPU per object of the CRDs' prune, default and validate, in this process",
    )
    p.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the apiserver during the creates into DIR"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start etcd and the apiserver, run the series, print the table; 0 on success."""
    args = parse_args(argv)
    if args.schema_cpu:
        print(schema_cpu(args.body_bytes))
        return 0
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    settings = Settings.make(args.quick, max(1, args.concurrency), args.body_bytes, args.profile)
    started = time.perf_counter()

    def bench(s: Any) -> str:
        result = asyncio.run(CrdBench(settings, s.etcd, s.apiserver, s.api_url).run())
        return result.render(time.perf_counter() - started)

    title = f"tinykube CRD benchmark ({'quick' if settings.quick else 'full'})"
    return ab.run_on_apiserver(title, "tinykube-crdbench-", args.keep, bench)


if __name__ == "__main__":
    sys.exit(main())
