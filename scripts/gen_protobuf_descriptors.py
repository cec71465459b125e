"""Generate apiserver/protobuf_descriptors.json from upstream's generated.proto and Go struct tags.

The wire facts (message names, field numbers, scalar/message/map types, repeated) come from each
package's ``generated.proto``; what protobuf cannot say and JSON needs (the JSON name, ``omitempty``,
pointer or not, ``json:",inline"`` embedding, which structs are kinds, slice types that travel as an
``items`` wrapper) comes from the same package's Go structs and their ``json``/``protobuf`` tags.

Usage (with bare git mirrors of the upstream repositories, e.g. from ``git clone --mirror``)::

    python scripts/gen_protobuf_descriptors.py --api DIR --apimachinery DIR \\
        --kube-aggregator DIR --apiextensions DIR > apiserver/protobuf_descriptors.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Stable API packages of k8s.io/api (every group's GA versions) plus the apimachinery types they use.
API_VERSION_DIR = re.compile(r"^[a-z]+/v[0-9]+/generated\.proto$")
APIMACHINERY = (
    "pkg/apis/meta/v1",
    "pkg/runtime",
    "pkg/runtime/schema",
    "pkg/util/intstr",
    "pkg/api/resource",
)
AGGREGATOR = ("pkg/apis/apiregistration/v1",)
APIEXTENSIONS = ("pkg/apis/apiextensions/v1",)

_MESSAGE = re.compile(r"^message (\w+) \{$")
_FIELD = re.compile(
    r"^\s+(?:(optional|repeated|required) )?(map<\s*\w+,\s*([.\w]+)>|[.\w]+) (\w+) = (\d+)(?: \[[^\]]*\])?;$"
)
_STRUCT = re.compile(r"^type (\w+) struct \{$")
_SLICE_TYPE = re.compile(r"^type (\w+) \[\](\w+)$")
_GO_FIELD = re.compile(r"^\s+(?:(\w+)\s+)?([*\[\]\w.]+(?:\[[^\]]*\][*\w.]+)?)\s+`(.*)`\s*$")
_TAG = re.compile(r'(\w+):"([^"]*)"')
_GROUP = re.compile(r'^const GroupName = "([^"]*)"', re.M)
_SCALARS = {"string", "bytes", "int32", "int64", "bool", "double"}


@dataclass
class GoField:
    """What a Go struct field's tags say about its JSON form."""

    json_name: str
    omitempty: bool
    pointer: bool
    inline: bool


@dataclass
class Package:
    """One Go/proto package: its proto messages and Go struct facts."""

    proto_package: str
    group: str | None
    version: str
    messages: dict[str, list[tuple[str, str, str, int]]] = field(default_factory=dict)
    go_fields: dict[tuple[str, str], GoField] = field(default_factory=dict)
    kinds: set[str] = field(default_factory=set)
    slices: set[str] = field(default_factory=set)


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True).stdout


def _files(repo: str) -> list[str]:
    return _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()


def _parse_proto(text: str) -> tuple[str, dict[str, list[tuple[str, str, str, int]]]]:
    """(proto package, message -> [(label, type, name, number)])."""
    package = re.search(r"^package ([\w.]+);", text, re.M)
    assert package, "no package line"
    messages: dict[str, list[tuple[str, str, str, int]]] = {}
    current: list[tuple[str, str, str, int]] | None = None
    for line in text.splitlines():
        if m := _MESSAGE.match(line):
            current = messages.setdefault(m.group(1), [])
        elif line == "}":
            current = None
        elif current is not None and (m := _FIELD.match(line)):
            label, typ, map_value, name, number = m.groups()
            if map_value:
                current.append(("map", map_value, name, int(number)))
            else:
                current.append((label or "optional", typ, name, int(number)))
    return package.group(1), messages


def _parse_go(text: str, pkg: Package) -> None:
    """Collect struct field tags, kinds (structs embedding TypeMeta) and slice types from one Go file."""
    lines = text.splitlines()
    struct = None
    for line in lines:
        if m := _SLICE_TYPE.match(line):
            pkg.slices.add(m.group(1))
        if m := _STRUCT.match(line):
            struct = m.group(1)
            continue
        if struct is None:
            continue
        if line == "}":
            struct = None
            continue
        if line.strip().startswith("//"):
            continue
        m = _GO_FIELD.match(line)
        if not m:
            continue
        name, gotype, tags = m.groups()
        tag = dict(_TAG.findall(tags))
        json_tag = tag.get("json", "")
        json_parts = json_tag.split(",")
        embedded = name is None and json_parts[0] == ""  # Go inlines an embedded struct without a JSON name
        if embedded and gotype.endswith("TypeMeta"):
            pkg.kinds.add(struct)
            continue
        proto = tag.get("protobuf")
        if not proto:
            continue
        proto_name = next((p[5:] for p in proto.split(",") if p.startswith("name=")), None)
        if proto_name is None and embedded:
            # an embedded struct's tag may omit name= (EphemeralContainer's EphemeralContainerCommon): the
            # generated.proto field is the type's name in lowerCamelCase
            type_name = gotype.lstrip("*").rsplit(".", 1)[-1]
            proto_name = type_name[:1].lower() + type_name[1:]
        if proto_name is None:
            continue
        pkg.go_fields[(struct, proto_name)] = GoField(
            json_name=json_parts[0],
            omitempty="omitempty" in json_parts[1:],
            pointer=gotype.startswith("*"),
            inline=embedded or "inline" in json_parts[1:],
        )


def _load(repo: str, directory: str, group: str | None = None) -> Package:
    files = [f for f in _files(repo) if str(PurePosixPath(f).parent) == directory]
    proto_package, messages = _parse_proto(_git(repo, "show", f"HEAD:{directory}/generated.proto"))
    if group is None and f"{directory}/register.go" in files:
        m = _GROUP.search(_git(repo, "show", f"HEAD:{directory}/register.go"))
        group = m.group(1) if m else None
    pkg = Package(proto_package, group, PurePosixPath(directory).name, messages)
    for f in files:
        if f.endswith(".go") and not f.endswith("_test.go") and not f.endswith(".pb.go"):
            _parse_go(_git(repo, "show", f"HEAD:{f}"), pkg)
    return pkg


def _qualify(pkg: Package, typ: str) -> str:
    if typ in _SCALARS:
        return typ
    return typ[1:] if typ.startswith(".") else f"{pkg.proto_package}.{typ}"


def generate(api: str, apimachinery: str, aggregator: str, apiextensions: str) -> dict:
    """The descriptor table as a JSON-ready dict."""
    packages = [_load(api, str(PurePosixPath(f).parent)) for f in _files(api) if API_VERSION_DIR.match(f)]
    packages += [_load(apimachinery, d) for d in APIMACHINERY]
    packages += [_load(aggregator, d) for d in AGGREGATOR]
    packages += [_load(apiextensions, d) for d in APIEXTENSIONS]
    # GA messages may name types of a pre-release package (batch/v1 -> scheduling/v1alpha3): load those too.
    loaded = {p.proto_package for p in packages}
    while missing := {
        ref.rsplit(".", 1)[0]
        for p in packages
        for fields in p.messages.values()
        for _label, typ, _name, _number in fields
        if (ref := _qualify(p, typ)).startswith("k8s.io.api.") and ref.rsplit(".", 1)[0] not in loaded
    }:
        for proto_package in sorted(missing):
            packages.append(_load(api, "/".join(proto_package.split(".")[3:])))
            loaded.add(proto_package)
    messages: dict[str, list[list]] = {}
    lists: list[str] = []
    kinds: dict[str, dict[str, str]] = {}
    for pkg in packages:
        for name, fields in sorted(pkg.messages.items()):
            full = f"{pkg.proto_package}.{name}"
            out = []
            for label, typ, proto_name, number in fields:
                go = pkg.go_fields.get((name, proto_name))
                json_name = go.json_name if go and go.json_name else proto_name
                flags = ""
                if label == "repeated":
                    flags += "r"
                if go is None or go.pointer or not go.omitempty:
                    flags += "k"  # Go keeps zero values of pointers and of fields without omitempty
                if go is not None and go.inline:
                    flags += "i"
                if go is not None and go.json_name == "-":
                    flags += "x"  # not part of the JSON form (a converter handles the message)
                if label == "map":
                    out.append([number, json_name, "map", _qualify(pkg, typ), flags])
                elif typ in _SCALARS:
                    out.append([number, json_name, typ, "", flags])
                else:
                    out.append([number, json_name, "message", _qualify(pkg, typ), flags])
            messages[full] = out
            if name in pkg.slices and [f[2] for f in fields] == ["items"]:
                lists.append(full)
            if name in pkg.kinds and pkg.group is not None:
                gv = f"{pkg.group}/{pkg.version}" if pkg.group else pkg.version
                kinds.setdefault(gv, {})[name] = full
    sources = {
        "k8s.io/api": _git(api, "rev-parse", "HEAD").strip(),
        "k8s.io/apimachinery": _git(apimachinery, "rev-parse", "HEAD").strip(),
        "k8s.io/kube-aggregator": _git(aggregator, "rev-parse", "HEAD").strip(),
        "k8s.io/apiextensions-apiserver": _git(apiextensions, "rev-parse", "HEAD").strip(),
    }
    return {"sources": sources, "kinds": kinds, "lists": sorted(lists), "messages": messages}


def main(argv: list[str] | None = None) -> int:
    """Print the descriptor table as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", required=True)
    parser.add_argument("--apimachinery", required=True)
    parser.add_argument("--kube-aggregator", required=True)
    parser.add_argument("--apiextensions", required=True)
    args = parser.parse_args(argv)
    table = generate(args.api, args.apimachinery, args.kube_aggregator, args.apiextensions)
    # One message per line: reviewable diffs, small file.
    out = sys.stdout
    out.write('{"sources": ' + json.dumps(table["sources"], sort_keys=True) + ",\n")
    out.write(' "lists": ' + json.dumps(table["lists"]) + ",\n")
    out.write(' "kinds": {\n')
    kinds = sorted(table["kinds"].items())
    out.write(",\n".join(f"  {json.dumps(gv)}: {json.dumps(k, sort_keys=True)}" for gv, k in kinds))
    out.write("\n },\n")
    out.write(' "messages": {\n')
    out.write(",\n".join(f"  {json.dumps(n)}: {json.dumps(f)}" for n, f in sorted(table["messages"].items())))
    out.write("\n }\n}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
