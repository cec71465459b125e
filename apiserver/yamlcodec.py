"""YAML request bodies decoded as upstream's sigs.k8s.io/yaml does: bounded aliasing, JSON-shaped values.

PyYAML shares the node of an anchor between its aliases, so a 700-byte "billion laughs" document is
cheap to load but expands to gigabytes once serialized. go-yaml (under sigs.k8s.io/yaml) refuses such
documents while decoding: it counts every node it decodes (`decodeCount`) and every node decoded
inside an alias expansion (`aliasCount`), and fails with `yaml: document contains excessive aliasing`
once aliasCount > 100, decodeCount > 1000 and their ratio exceeds `allowedAliasRatio(decodeCount)`
(0.99 up to 400,000 decodes, falling linearly to 0.10 at 4,000,000). `load` composes the node graph
with libyaml, replays go-yaml's count over it in document order (each node's expanded size counted
once, memoised, so the check itself cannot be bombed), bounds the nesting depth of the expanded
document, and only then constructs Python values.

Values are the JSON that sigs.k8s.io/yaml's YAMLToJSON would give: timestamps stay strings, map keys
become strings, integers beyond 64 bits become floats, and NaN/Inf are refused (JSON has no such
numbers).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

__all__ = ["MAX_DEPTH", "YAMLBodyError", "load"]

MAX_DEPTH = 128  # nested mappings/sequences; see apiserver/codec.py

_ALIAS_RATIO_RANGE_LOW = 400_000
_ALIAS_RATIO_RANGE_HIGH = 4_000_000
_ALIAS_RATIO_RANGE = _ALIAS_RATIO_RANGE_HIGH - _ALIAS_RATIO_RANGE_LOW


class YAMLBodyError(ValueError):
    """A YAML body that decodes to nothing upstream would accept."""


def allowed_alias_ratio(decode_count: int) -> float:
    """go-yaml's allowedAliasRatio."""
    if decode_count <= _ALIAS_RATIO_RANGE_LOW:
        return 0.99
    if decode_count >= _ALIAS_RATIO_RANGE_HIGH:
        return 0.10
    return 0.99 - 0.89 * ((decode_count - _ALIAS_RATIO_RANGE_LOW) / _ALIAS_RATIO_RANGE)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_node_graph(root: Node, max_depth: int = MAX_DEPTH) -> None:
    """Replay go-yaml's decode/alias count over a composed document and bound its expanded depth.

    The composer hands an alias the very node of its anchor, so the first time a node is reached in
    document order is its definition and every later time is an alias. Each node's expanded size and
    height are computed once (post-order) and reused at every alias of it.
    """
    size: dict[int, int] = {}  # id(node) -> unmarshal calls to decode it with its expansions
    height: dict[int, int] = {}  # id(node) -> nesting levels of its expansion
    acc_size: dict[int, int] = {}
    acc_height: dict[int, int] = {}
    open_nodes: set[int] = set()
    decodes = aliases = 0
    # (node, parent id, depth, finishing)
    stack: list[tuple[Node, int, int, bool]] = [(root, 0, 1, False)]
    while stack:
        node, parent, depth, finishing = stack.pop()
        nid = id(node)
        if finishing:
            open_nodes.discard(nid)
            size[nid] = 1 + acc_size.pop(nid)
            height[nid] = (0 if isinstance(node, ScalarNode) else 1) + acc_height.pop(nid)
            _add(acc_size, acc_height, parent, size[nid], height[nid])
            continue
        if nid in size or nid in open_nodes:  # an alias
            if nid in open_nodes:
                raise YAMLBodyError("yaml: anchor value contains itself")
            expanded = size[nid]
            decodes += 1 + expanded
            aliases += expanded
            if aliases > 100 and decodes > 1000 and aliases / decodes > allowed_alias_ratio(decodes):
                raise YAMLBodyError("yaml: document contains excessive aliasing")
            if depth - 1 + height[nid] > max_depth:
                raise YAMLBodyError(f"yaml: exceeded max depth of {max_depth}")
            _add(acc_size, acc_height, parent, 1 + expanded, height[nid])
            continue
        decodes += 1
        if not isinstance(node, ScalarNode) and depth > max_depth:
            raise YAMLBodyError(f"yaml: exceeded max depth of {max_depth}")
        open_nodes.add(nid)
        acc_size[nid] = 0
        acc_height[nid] = 0
        stack.append((node, parent, depth, True))
        child_depth = depth + (0 if isinstance(node, ScalarNode) else 1)
        for child in reversed(_children(node)):
            stack.append((child, nid, child_depth, False))


def _add(acc_size: dict[int, int], acc_height: dict[int, int], parent: int, size: int, height: int) -> None:
    if parent in acc_size:
        acc_size[parent] += size
        acc_height[parent] = max(acc_height[parent], height)


class _JSONConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor giving what sigs.k8s.io/yaml would turn into JSON."""

    def construct_yaml_timestamp(self, node: ScalarNode) -> str:  # type: ignore[override]
        """Timestamps stay the strings they are (go-yaml decodes them so into interface{})."""
        return str(node.value)

    def construct_yaml_binary(self, node: ScalarNode) -> str:  # type: ignore[override]
        """`!!binary`: the decoded bytes as a string, as go-yaml gives."""
        try:
            data = base64.b64decode(str(node.value).encode(), validate=False)
            return data.decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            why = f"!!binary value is not valid: {e}"
            raise yaml.constructor.ConstructorError(None, None, why, node.start_mark) from e

    def construct_yaml_float(self, node: ScalarNode) -> float:  # type: ignore[override]
        """Floats; JSON has no NaN or infinity, so neither has a Kubernetes object."""
        value = super().construct_yaml_float(node)
        if math.isnan(value) or math.isinf(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"json: unsupported value: {node.value}", node.start_mark
            )
        return value

    def construct_yaml_int(self, node: ScalarNode) -> int | float:  # type: ignore[override]
        """Integers; one past 64 bits becomes a float, as in JSON."""
        value = super().construct_yaml_int(node)
        if not -(1 << 63) <= value < (1 << 64):
            return float(value)
        return value

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[str, Any]:  # type: ignore[override]
        """Mappings with string keys, as YAMLToJSON writes them (1 and true stay distinct keys)."""
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(self.construct_object(key_node, deep=deep), key_node)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_set(self, node: MappingNode) -> Any:  # type: ignore[override]
        """`!!set`: a mapping of its members to null, as go-yaml decodes it."""
        data: dict[str, Any] = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_yaml_omap(self, node: SequenceNode) -> Any:  # type: ignore[override]
        """`!!omap` and `!!pairs`: the sequence of one-entry mappings they are written as."""
        items: list[Any] = []
        yield items
        items.extend(self.construct_object(child, deep=True) for child in node.value)


def _key(key: Any, node: Node) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return str(key)
    raise yaml.constructor.ConstructorError(None, None, "invalid map key", node.start_mark)


_JSONConstructor.add_constructor("tag:yaml.org,2002:timestamp", _JSONConstructor.construct_yaml_timestamp)
_JSONConstructor.add_constructor("tag:yaml.org,2002:binary", _JSONConstructor.construct_yaml_binary)
_JSONConstructor.add_constructor("tag:yaml.org,2002:float", _JSONConstructor.construct_yaml_float)
_JSONConstructor.add_constructor("tag:yaml.org,2002:int", _JSONConstructor.construct_yaml_int)
_JSONConstructor.add_constructor("tag:yaml.org,2002:map", _JSONConstructor.construct_yaml_map)
_JSONConstructor.add_constructor("tag:yaml.org,2002:set", _JSONConstructor.construct_yaml_set)
_JSONConstructor.add_constructor("tag:yaml.org,2002:omap", _JSONConstructor.construct_yaml_omap)
_JSONConstructor.add_constructor("tag:yaml.org,2002:pairs", _JSONConstructor.construct_yaml_omap)


try:
    from yaml import CParser as _Parser  # libyaml's parser and composer
except ImportError:  # pragma: no cover - PyYAML's wheels ship libyaml
    _Parser = None

if _Parser is not None:

    class _Loader(_Parser, _JSONConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser and composer, the JSON-shaped constructor, the standard resolver."""

        def __init__(self, stream: bytes | str) -> None:
            _Parser.__init__(self, stream)
            _JSONConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover

    class _Loader(Reader, Scanner, Parser, Composer, _JSONConstructor, Resolver):  # type: ignore[no-redef]
        """The pure-Python parser and composer, the JSON-shaped constructor, the standard resolver."""

        def __init__(self, stream: bytes | str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _JSONConstructor.__init__(self)
            Resolver.__init__(self)


def load(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """One YAML document as JSON-shaped Python values; YAMLBodyError or yaml.YAMLError when refused."""
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_node_graph(node, max_depth)
        return loader.construct_document(node)
    finally:
        loader.dispose()


class _GoStyleDumper(yaml.SafeDumper):
    """Quotes as go-yaml does (sigs.k8s.io/yaml, kube-apiserver's YAML): double quotes, never single."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def dump(value: Any) -> bytes:
    """A JSON-like value as YAML the way kube-apiserver writes it (keys sorted, block style)."""
    text = yaml.dump(value, Dumper=_GoStyleDumper, default_flow_style=False, allow_unicode=True, sort_keys=True)
    return text.encode()
