"""`{graph: [...]}` entries → GraphSpec: nodes that read named values instead of only the one
before them (a residual `Y + X`, parallel branches, DenseNet's `cat(X, Y)`).

    {graph: [node | group, ...], input: x, out: NAME}
    node  := an entry (type/block/seq/ref/graph) or {op: add|cat|mul|mean|relu}, with
             name:   its value's name; a module's child name (dotted: `net.0`); default: position
             in:     the value(s) it reads: the input or earlier nodes (default: the one before)
             when:   false leaves the node out; its name then stands for what it reads
             repeat: copies, each reading the one before; `{i}` in its name
    group := {repeat: N, nodes: [...]}: the nodes N times over, `i` counting
The graph's value is its `out` node (default: the last). Each node reads only earlier values,
so a graph has no cycles.
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.config.arguments import is_int
from runner.config.expressions import FAILED, UNSET
from runner.config.model_spec import GraphNode, GraphSpec, OpSpec
from runner.config.names import child_name_ok
from runner.errors import did_you_mean, one_of


class EntryParser(Protocol):  # runner.config.entries.EntryParser, which calls parse_graph
    at: str

    def add(self, path: str, message: str) -> None: ...

    def spend(self, path: str) -> bool: ...

    def render(self, value: Any, path: str, scope: dict[str, Any] | None = None) -> Any: ...

    def scoped(self, scope: dict[str, Any]) -> AbstractContextManager[None]: ...

    def copy_scope(self, item: dict[str, Any], k: int) -> dict[str, Any]: ...

    def repeat_sets(self, item: dict[str, Any], path: str) -> list[dict[str, Any]] | None: ...

    def entry(self, raw: Any, path: str, extra_args: dict[str, Any] | None = None) -> Any: ...

    def row(self, item: Any, path: str) -> list[tuple[str, Any]] | None: ...


# op → (the fewest values it reads, its keyword arguments); relu reads exactly one
OPS: dict[str, tuple[int, tuple[str, ...]]] = {
    "add": (2, ()),
    "mul": (2, ()),
    "mean": (2, ()),
    "cat": (1, ("dim",)),
    "relu": (1, ()),
}
_NODE_KEYS = ("name", "in", "when", "repeat")


@dataclass
class _State:
    known: dict[str, str]  # value name → the value it stands for (a left-out node: what it reads)
    previous: str
    nodes: list[GraphNode] = field(default_factory=list)
    modules: list[tuple[str, str]] = field(default_factory=list)  # (path, child name)
    missing: list[tuple[str, str, list[str]]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)  # node name → its path
    guessed: bool = False  # an `in` or `out` unset (a block no entry uses): wiring unknown
    position: int = 0
    ok: bool = True


def parse_graph(parser: EntryParser, raw: dict[str, Any], path: str) -> GraphSpec | None:
    items = raw["graph"]
    input_name = raw.get("input", "x")
    if not (isinstance(input_name, str) and input_name.isidentifier()):
        parser.add(f"{path}.input", f"expected an identifier such as x; got {input_name!r}")
        return None
    if not isinstance(items, list) or not items:
        parser.add(f"{path}.graph", f"expected a list of nodes; got {items!r}")
        return None
    state = _State(known={input_name: input_name}, previous=input_name)
    _items(parser, items, f"{path}.graph", state)
    out = state.previous
    if "out" in raw:
        wanted = parser.render(raw["out"], f"{path}.out")
        out = state.known.get(wanted, "") if isinstance(wanted, str) else ""
        if wanted is UNSET or wanted is FAILED:  # a block no entry uses; or reported already
            out, state.guessed = state.previous, True
        if not out:
            parser.add(
                f"{path}.out",
                f"no value named {wanted!r} in this graph; allowed: {one_of(state.known)}"
                + did_you_mean(str(wanted), list(state.known)),
            )
            state.ok = False
    _report_missing(parser, state)
    _check_module_paths(parser, state)
    if state.ok and not state.guessed:
        _check_every_node_is_read(parser, state, out, path)
    if not state.ok:
        return None
    return GraphSpec(path + parser.at, input_name, tuple(state.nodes), out)


def _items(parser: EntryParser, items: list[Any], path: str, state: _State) -> None:
    for j, row in enumerate(items):
        entries = parser.row(row, f"{path}[{j}]")  # a compact row: one node per call
        state.ok = state.ok and entries is not None
        for item_path, item in entries or []:
            _item(parser, item, item_path, state)


def _item(parser: EntryParser, item: Any, item_path: str, state: _State) -> None:
    if isinstance(item, dict) and "nodes" in item:
        _group(parser, item, item_path, state)
        return
    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        parser.add(item_path, f"expected a node such as {{type: ReLU}}; got {item!r}")
        state.ok = False
        return
    sets = parser.repeat_sets(item, item_path)
    if sets is None:
        state.ok = False
        return
    for k, extra in enumerate(sets):
        if not parser.spend(item_path):
            state.ok = False
            return
        with parser.scoped(parser.copy_scope(item, k)):
            _node(parser, item, item_path, state, extra)


def _group(parser: EntryParser, item: dict[str, Any], path: str, state: _State) -> None:
    for key in item:
        if key not in ("nodes", "repeat"):
            parser.add(f"{path}.{key}", "unexpected key in a group; allowed: nodes, repeat")
    nodes = item["nodes"]
    sets = parser.repeat_sets({"repeat": item.get("repeat", 1)}, path)
    if sets is None or not isinstance(nodes, list):
        if not isinstance(nodes, list):
            parser.add(f"{path}.nodes", f"expected a list of nodes; got {nodes!r}")
        state.ok = False
        return
    for k in range(len(sets)):
        with parser.scoped(parser.copy_scope(item, k)):
            _items(parser, nodes, f"{path}.nodes", state)


def _node(
    parser: EntryParser, item: dict[str, Any], path: str, state: _State, extra: dict[str, Any]
) -> None:
    reads = _reads(parser, item, path, state)
    raw_name = item.get("name")
    name = parser.render(raw_name, f"{path}.name") if raw_name is not None else state.position
    when = parser.render(item.get("when", True), f"{path}.when")
    state.position += 1
    if name is FAILED or when is FAILED:
        state.ok = False
        return
    name = f"{raw_name}#{state.position}" if name is UNSET else str(name)
    if when is not UNSET and not when:  # left out: its name stands for what it reads
        if reads is not None and len(reads) != 1:
            parser.add(f"{path}.when", f"a node left out must read one value; it reads {reads}")
        elif reads:
            state.known[name], state.previous = reads[0], reads[0]
        return
    body = {k: v for k, v in item.items() if k not in _NODE_KEYS}
    is_op = "op" in body
    node = _op(parser, body, path, reads) if is_op else parser.entry(body, path, extra)
    if name in state.known:
        what = "the graph's input" if state.known[name] == name == _input(state) else "a node"
        parser.add(f"{path}.name", f"{name!r} already names {what} in this graph")
        state.ok = False
    elif not is_op and not child_name_ok(name, dotted=True):
        parser.add(
            f"{path}.name",
            f"{name!r} cannot name a submodule: dotted parts must be non-empty and not clash "
            "with a module's attribute",
        )
        state.ok = False
    state.known[name], state.previous = name, name
    if node is None or reads is None:
        state.ok = False
        return
    if not is_op:
        state.modules.append((path, name))
    state.paths[name] = path
    state.nodes.append(GraphNode(name, tuple(reads), node))


def _input(state: _State) -> str:
    return next(iter(state.known))


def _reads(parser: EntryParser, item: dict[str, Any], path: str, state: _State) -> list[str] | None:
    if "in" not in item:
        return [state.previous]
    value = parser.render(item["in"], f"{path}.in")
    if value is FAILED:
        return None
    names = [value] if isinstance(value, str) or value is UNSET else value
    if isinstance(names, list):  # unset: a block no entry uses, checked with the node before
        state.guessed = state.guessed or any(n is UNSET for n in names)
        names = [state.previous if n is UNSET else n for n in names]
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        parser.add(f"{path}.in", f"expected a value's name or a list of names; got {value!r}")
        return None
    for n in names:
        if n not in state.known:
            state.missing.append((f"{path}.in", n, list(state.known)))
    return [state.known[n] for n in names] if all(n in state.known for n in names) else None


def _op(
    parser: EntryParser, body: dict[str, Any], path: str, reads: list[str] | None
) -> OpSpec | None:
    op = body["op"]
    if op not in OPS:
        parser.add(
            f"{path}.op",
            f"unknown operation {op!r}; allowed: {', '.join(OPS)}" + did_you_mean(str(op), OPS),
        )
        return None
    least, keys = OPS[op]
    ok = True
    for key in body:
        if key != "op" and key not in keys:
            allowed = ", ".join(("op", *keys, *_NODE_KEYS))
            parser.add(f"{path}.{key}", f"unexpected key for op {op}; allowed: {allowed}")
            ok = False
    kwargs = {k: parser.render(body[k], f"{path}.{k}") for k in keys if k in body}
    if op == "cat":
        kwargs.setdefault("dim", 1)  # channels, as the book's torch.cat((X, Y), dim=1)
        if not is_int(kwargs["dim"]):
            parser.add(f"{path}.dim", f"expected an integer axis; got {kwargs['dim']!r}")
            ok = False
    if reads is not None and (len(reads) < least or (op == "relu" and len(reads) != 1)):
        wanted = "one value" if op == "relu" else f"at least {least} values"
        parser.add(f"{path}.in", f"{op} reads {wanted}; it reads {len(reads)}: {reads}")
        ok = False
    return OpSpec(path + parser.at, op, kwargs) if ok else None


def _report_missing(parser: EntryParser, state: _State) -> None:
    for path, name, known in state.missing:
        if name in state.known:
            parser.add(
                path,
                f"{name!r} is defined later in the graph; a node reads only the graph's input "
                "and the nodes before it (so a graph has no cycles)",
            )
        else:
            parser.add(
                path,
                f"no value named {name!r} in this graph; allowed: {one_of(known)}"
                + did_you_mean(name, known),
            )
        state.ok = False


def _check_module_paths(parser: EntryParser, state: _State) -> None:
    """A module named `net` and another `net.0` would put one inside the other."""
    names = {name for _, name in state.modules}
    for path, name in state.modules:
        parents = [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]
        clash = next((p for p in parents if p in names), None)
        if clash is not None:
            parser.add(f"{path}.name", f"{name!r} would sit inside the module node {clash!r}")
            state.ok = False


def _check_every_node_is_read(parser: EntryParser, state: _State, out: str, path: str) -> None:
    """A node no other node reads, and not the graph's value, is a wiring mistake: its value is
    computed for nothing and its parameters never get a gradient (weight decay alone moves them,
    and DistributedDataParallel stops on them). An error, like any other wiring mistake: the
    node can be left out with `when: false` where it is meant to be unused."""
    read = {name for node in state.nodes for name in node.reads} | {out}
    for node in state.nodes:
        if node.name not in read:
            cost = (
                "its value is computed for nothing"
                if isinstance(node.node, OpSpec)
                else ("its parameters would never train")
            )
            parser.add(
                state.paths[node.name],
                f"no node reads {node.name!r}, and it is not the graph's out ({path}.out: "
                f"{out!r}): {cost}; read it from a later node, make it the out, or leave it "
                "out with when: false",
            )
            state.ok = False
