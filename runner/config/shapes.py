"""Static checks before anything is built: the model's size in modules (a budget over every
repeat and block copy), and feature sizes along Linear-like layers.

Only what is certain is checked: a layer's declared input size against the output size of the
last layer before it, through layers that keep the feature size (activations, dropout, …).
Everything else is left to the dry forward pass in runner.model.compile, which names the failing
layer.
"""

from typing import Any

from torch import nn

from runner.config.arguments import is_int
from runner.config.model_spec import (
    GraphSpec,
    LayerSpec,
    ModelSpec,
    Node,
    OpSpec,
    RefSpec,
    SeqSpec,
    key_path,
)
from runner.errors import Problems
from runner.registry.chapter import CenteredLayer, LazyMyDense, MyDense

# class → (input-size argument or None when inferred, output-size argument)
_SIZES: dict[type[nn.Module], tuple[str | None, str]] = {
    nn.Linear: ("in_features", "out_features"),
    nn.LazyLinear: (None, "out_features"),
    MyDense: ("in_units", "units"),
    LazyMyDense: (None, "units"),
}
# Layers that keep the feature size but declare it: the declaration must match what comes in.
_DECLARES_FEATURES: dict[type[nn.Module], str] = {
    nn.BatchNorm1d: "num_features",
    nn.InstanceNorm1d: "num_features",
    nn.LayerNorm: "normalized_shape",
}
_CHANGE_FEATURES = (nn.MultiheadAttention, nn.GLU)
_KEEPS_FEATURES = (nn.Identity, CenteredLayer)

Features = tuple[int, str] | None  # (size, where it came from), or unknown
# Modules in the whole model once every repeat and block is copied: each is a Python object built
# one by one (~0.25 ms each for a Linear), and a 56 KB file could otherwise ask for 10^8.
MAX_MODULES = 20_000


def check_budget(spec: ModelSpec, problems: Problems) -> bool:
    """Add a problem when the expanded model has more than MAX_MODULES modules; counted on the
    spec, where a block used N times is one node. Returns False when it is over."""
    counts: dict[int, int] = {}  # id(node) → modules it expands to, each node counted once
    total = _count(spec.net, counts) + sum(_count(node, counts) for node in spec.shared.values())
    if total <= MAX_MODULES:
        return True
    nodes = {id(n): n for n in _nodes(spec)}
    heavy = sorted(
        ((c, nodes[i].path) for i, c in counts.items() if i in nodes and c > 1), reverse=True
    )
    largest = ", ".join(f"{path} {count:,}" for count, path in heavy[:3])
    problems.add(
        "model",
        f"{total:,} modules once every repeat and block is copied; allowed: at most "
        f"{MAX_MODULES:,}, counted before building (the largest: {largest}); lower a repeat",
    )
    return False


def _count(node: Node, counts: dict[int, int]) -> int:
    if id(node) not in counts:
        if isinstance(node, SeqSpec):  # the Sequential itself and every child copy
            counts[id(node)] = 1 + sum(_count(child, counts) for _, child in node.children)
        elif isinstance(node, GraphSpec):  # the graph and its module nodes (an op is none)
            counts[id(node)] = 1 + sum(_count(child, counts) for child in _modules(node))
        else:  # a layer; a reference is the one shared instance, counted once in spec.shared
            counts[id(node)] = 1 if isinstance(node, LayerSpec) else 0
    return counts[id(node)]


def _nodes(spec: ModelSpec) -> list[Node]:
    """Every distinct node of the spec (a block's node once, however often it is used)."""
    seen: dict[int, Node] = {}
    stack: list[Node] = [spec.net, *spec.shared.values()]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            if isinstance(node, SeqSpec):
                stack.extend(child for _, child in node.children)
            elif isinstance(node, GraphSpec):
                stack.extend(_modules(node))
    return list(seen.values())


def _modules(graph: GraphSpec) -> list[Node]:
    return [n.node for n in graph.nodes if not isinstance(n.node, OpSpec)]


def check_features(spec: ModelSpec, problems: Problems) -> bool:
    """Add a problem for each declared input size that contradicts what flows into it.

    Returns True when every layer's shapes were verified this way (a 1-D input through
    Linear-like and size-keeping layers only): a forward pass would find nothing more.
    """
    start: Features = None
    if spec.input_shape is not None and len(spec.input_shape) == 1:
        start = (spec.input_shape[-1], "model.input_shape")
    verified = [start is not None]
    end = _walk(spec.net, start, spec, problems, verified)
    if end is not None and spec.num_outputs is not None and end[0] != spec.num_outputs:
        problems.add(
            "model.num_outputs",
            f"{spec.num_outputs}, but the network ends with {end[0]} features ({end[1]})",
        )
    return verified[0] and end is not None


def _walk(
    node: Node, incoming: Features, spec: ModelSpec, problems: Problems, verified: list[bool]
) -> Features:
    if isinstance(node, SeqSpec):
        for _, child in node.children:
            incoming = _walk(child, incoming, spec, problems, verified)
        return incoming
    if isinstance(node, RefSpec):
        return _walk(spec.shared[node.name], incoming, spec, problems, verified)
    if isinstance(node, GraphSpec):
        verified[0] = False  # the forward pass checks it too, naming the node that fails
        values = {node.input: incoming}
        for n in node.nodes:
            ins = [values[r] for r in n.reads]
            if isinstance(n.node, OpSpec):
                values[n.name] = _merge(n.node, ins, problems)
            else:
                one = ins[0] if len(ins) == 1 else None
                values[n.name] = _walk(n.node, one, spec, problems, verified)
        return values[node.out]
    out = _layer(node, incoming, problems)
    if incoming is None or out is None:
        verified[0] = False  # lost track somewhere: only a forward pass can tell
    return out


def _merge(op: OpSpec, ins: list[Features], problems: Problems) -> Features:
    """Features after a merge, where they are certain; a problem for an elementwise merge of
    values whose (known) feature sizes differ."""
    if op.op == "relu":
        return ins[0]
    if any(f is None for f in ins):
        return None
    known = [f for f in ins if f is not None]
    if op.op == "cat":
        return (sum(f[0] for f in known), op.path) if op.kwargs.get("dim") in (1, -1) else None
    if len({f[0] for f in known}) > 1:
        sizes = ", ".join(f"{f[0]} (from {f[1]})" for f in known)
        problems.add(op.path, f"{op.op} of values of different sizes: {sizes}; they must match")
        return None
    return known[0]


def _layer(layer: LayerSpec, incoming: Features, problems: Problems) -> Features:
    if layer.cls in _SIZES:
        in_key, out_key = _SIZES[layer.cls]
        declared = layer.kwargs.get(in_key) if in_key else None
        out = layer.kwargs[out_key]
        if not (_is_size(declared) and _is_size(out)):
            return None  # a bad value: the constructor's own error will name it
        if incoming is not None and declared is not None and declared != incoming[0]:
            problems.add(
                key_path(layer.path, str(in_key)),
                f"{declared} does not match the {incoming[0]} features coming in from "
                f"{incoming[1]}; set it to {incoming[0]} or leave it out to infer it",
            )
        return (out, key_path(layer.path, out_key))
    if layer.cls in _DECLARES_FEATURES:
        key = _DECLARES_FEATURES[layer.cls]
        declared = layer.kwargs.get(key)
        size = (
            declared[-1] if isinstance(declared, list | tuple) and len(declared) == 1 else declared
        )
        if not _is_size(size) or size is None:
            return None  # several dimensions, or a bad value the size check names
        if incoming is not None and size != incoming[0]:
            problems.add(
                key_path(layer.path, key),
                f"{declared} does not match the {incoming[0]} features coming in from "
                f"{incoming[1]}; set it to {incoming[0]}",
            )
        return incoming
    if _keeps_features(layer.cls):
        return incoming
    return None


# Arguments that count features, channels or units, or give a kernel's or a hidden state's
# size: every such int must be ≥ 1 (torch builds some of these with a 0 and fails later, or
# never). The rule is by name, so it covers your own layers too: a name ending in `features`,
# `channels` or `units` (in_features, num_features, in1_features, out_channels, num_channels,
# units, in_units), or one of torch.nn's other sizes below. Not every `*_size` or `*_dim` is a
# size: LSTM's proj_size 0 means no projection, Unflatten's unflattened_size may hold -1, and
# Flatten's start_dim/end_dim and Softmax's dim are axes, negative from the end.
_SIZE_SUFFIXES = ("features", "channels", "units")
_SIZE_NAMES = {
    "normalized_shape",
    "kernel_size",
    "input_size",
    "hidden_size",
    "num_embeddings",
    "embedding_dim",
    "embed_dim",
    "d_model",
    "nhead",
    "num_heads",
    "dim_feedforward",
}


def check_sizes(path: str, label: str, kwargs: dict[str, Any], problems: Problems) -> bool:
    """Add a problem for each size argument that is an int < 1 (alone or in a list, such as
    kernel_size: [3, 0]). Returns False when there was one."""
    ok = True
    for name, value in kwargs.items():
        if not (name.endswith(_SIZE_SUFFIXES) or name in _SIZE_NAMES):
            continue
        items = value if isinstance(value, list | tuple) else [value]
        if any(is_int(v) and v < 1 for v in items):
            problems.add(
                f"{path}.{name}",
                f"not a size for {label}; got {value!r}; allowed: an integer ≥ 1"
                + (", one per dimension" if isinstance(value, list | tuple) else ""),
            )
            ok = False
    return ok


def _is_size(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def _keeps_features(cls: type[nn.Module]) -> bool:
    if issubclass(cls, _CHANGE_FEATURES):
        return False
    elementwise = cls.__module__ in ("torch.nn.modules.activation", "torch.nn.modules.dropout")
    return elementwise or issubclass(cls, _KEEPS_FEATURES)
