"""Entries of the model grammar → spec nodes: layers, sequences, shared references, block uses
with their arguments, and graphs (runner.config.graphs). See runner.config.grammar for the
grammar. Templates (`"{out_channels * 2}"`, runner.config.expressions) are rendered in the scope
of the block being parsed; a problem inside a block names the use it came through
(`model.blocks.stage.seq[0].out_channels at model.net[3]`)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runner.config.arguments import is_int
from runner.config.block_args import bind_arguments, defined, split_definition
from runner.config.calls import is_row, rows, single
from runner.config.expressions import FAILED, UNSET, ExpressionError, has_template, render
from runner.config.graphs import parse_graph
from runner.config.layer_entry import parse_layer
from runner.config.model_spec import Node, RefSpec, SeqSpec
from runner.config.names import child_name_ok
from runner.config.shapes import MAX_MODULES
from runner.errors import Problems, did_you_mean, one_of

_KINDS = ("type", "block", "seq", "ref", "graph")
_PLACEMENT = ("name", "repeat")
_NEXT_TO = {"block": ("args",), "graph": ("input", "out"), "seq": (), "ref": ()}
_WORK = 2 * MAX_MODULES  # a name and a layer per module
MAX_REPEAT = 10_000  # copies of one entry: each is a module object (and a name) before any size


class EntryParser:
    def __init__(self, blocks: dict[str, Any], shared: dict[str, Any], problems: Problems):
        self.block_defs, self.shared_defs = blocks, shared
        self.problems = problems
        self.blocks: dict[tuple[str, str], Node | None] = {}  # (name, its arguments) → node
        self.shared: dict[str, Node] = {}
        self.parsed_blocks: set[str] = set()  # every block parsed at least once
        self.lazy_paths: list[str] = []
        self._stack: list[str] = []  # block/shared names being parsed, to catch cycles
        self._seen: set[str] = set()
        self.model_args: dict[str, Any] = {}  # model.args: the scope of net and shared
        self.scope: dict[str, Any] = {}  # what templates may name: a block's arguments, `i`
        self.at = ""  # " at model.net[3]": the use of the block being parsed
        self.work = 0  # layers parsed: a repeat of templated copies parses each copy

    def add(self, path: str, message: str) -> None:
        """A problem at `path` inside the current block use; one inside a block used several
        times is reported once."""
        if f"{path}: {message}" not in self._seen:
            self._seen.add(f"{path}: {message}")
            self.problems.add(path + self.at, message)

    def spend(self, path: str) -> bool:
        """Count one layer parsed or child named; False past the budget (a valid model takes
        at most two per module it builds), so nested templated repeats cannot make parsing
        hang: everything stops once it is spent."""
        self.work += 1
        if self.work == _WORK + 1:
            self.problems.add(
                "model",
                f"more than {MAX_MODULES:,} modules to parse (the last at {path}{self.at}); "
                "allowed: at most that many once every repeat and block is copied; lower a repeat",
            )
        return self.work <= _WORK

    def render(self, value: Any, path: str, scope: dict[str, Any] | None = None) -> Any:
        """`value` with its templates evaluated, or FAILED (and a problem at `path`)."""
        try:
            return render(value, self.scope if scope is None else scope)
        except ExpressionError as e:
            self.add(path, f"{value!r}: {e}")
            return FAILED

    @contextmanager
    def scoped(self, scope: dict[str, Any], at: str | None = None) -> Iterator[None]:
        saved = self.scope, self.at
        self.scope, self.at = scope, self.at if at is None else at
        try:
            yield
        finally:
            self.scope, self.at = saved

    def node(self, raw: Any, path: str) -> Node | None:
        """One entry, or a list of entries (a sequence)."""
        if isinstance(raw, list):
            return self.sequence(raw, path)
        if isinstance(raw, dict):
            extra = [k for k in _PLACEMENT if k in raw]
            if extra:
                self.add(
                    f"{path}.{extra[0]}", "only entries inside a list can be named or repeated"
                )
        return self.entry(raw, path)

    def sequence(self, raw: list[Any], path: str) -> SeqSpec | None:
        children: list[tuple[str, Node]] = []
        used: set[str] = set()  # the names so far (a set: a repeat adds up to MAX_REPEAT)
        ok = True
        for i, row in enumerate(raw):
            entries = self.row(row, f"{path}[{i}]")
            ok = ok and entries is not None
            for item_path, item in entries or []:
                for name, node in self.copies(item, item_path, start=len(children), dotted=False):
                    if node is None:
                        ok = False
                        continue
                    if name in used:
                        self.add(f"{item_path}.name", f"child name {name!r} is used twice")
                        ok = False
                    used.add(name)
                    children.append((name, node))
        return SeqSpec(path + self.at, tuple(children)) if ok else None

    def row(self, item: Any, path: str) -> list[tuple[str, Any]] | None:
        return rows(item, path, self.block_defs, self.add)

    def copies(
        self, item: Any, path: str, start: int, dotted: bool
    ) -> list[tuple[str, Node | None]]:
        """(child name, node) for each copy of a list item; one (…, None) when it is refused."""
        if not isinstance(item, dict):
            return [(str(start), self.entry(item, path))]
        sets = self.repeat_sets(item, path)
        names = self.names(item, path, len(sets or [{}]), start, dotted)
        if sets is None or names is None:
            return [("", None)]
        body = {k: v for k, v in item.items() if k not in _PLACEMENT}
        if not any(sets) and not has_template(body):  # every copy alike: parse it once
            node = self.entry(item, path)
            return [(name, node) for name in names]
        result = []
        for k, (name, extra) in enumerate(zip(names, sets, strict=True)):
            if self.work > _WORK:
                return [("", None)]
            with self.scoped(self.copy_scope(item, k)):
                result.append((name, self.entry(item, path, extra)))
        return result

    def copy_scope(self, item: dict[str, Any], k: int) -> dict[str, Any]:
        """The scope of copy `k`: `i` is the copy's index where the item repeats (0 otherwise,
        unless an enclosing repeat set it)."""
        if "repeat" in item or "i" not in self.scope:
            return {**self.scope, "i": k}
        return self.scope

    def repeat_sets(self, item: dict[str, Any], path: str) -> list[dict[str, Any]] | None:
        """Per copy, the block arguments it adds (`repeat: [{…}, …]`), or {} each."""
        repeat = self.render(item.get("repeat", 1), f"{path}.repeat")
        if repeat is UNSET:  # from a parameter of a block no entry uses: check one copy
            return [{}]
        if isinstance(repeat, list) and "block" in item:
            if 1 <= len(repeat) <= MAX_REPEAT and all(isinstance(s, dict) for s in repeat):
                return [dict(s) for s in repeat]
            self.add(
                f"{path}.repeat",
                f"expected a list of 1 to {MAX_REPEAT:,} argument sets (mappings), one per "
                f"copy, such as [{{num_convs: 1}}, {{num_convs: 2}}]; got {repeat!r}",
            )
            return None
        if repeat is not FAILED and not (is_int(repeat) and 1 <= repeat <= MAX_REPEAT):
            lists = ", or a list of argument sets for a block" if "block" in item else ""
            self.add(
                f"{path}.repeat",
                f"expected an integer from 1 to {MAX_REPEAT:,}{lists}; got {repeat!r}",
            )
        return [{}] * repeat if is_int(repeat) and 1 <= repeat <= MAX_REPEAT else None

    def names(
        self, item: dict[str, Any], path: str, count: int, start: int, dotted: bool
    ) -> list[str] | None:
        pattern = item.get("name")
        if pattern is None:  # positional, like nn.Sequential's own "0", "1", …
            return [str(start + k) for k in range(count)]
        pattern = str(pattern)
        if count > 1 and not has_template(pattern):
            self.add(
                f"{path}.name",
                f"{pattern!r} would name all {count} repeats alike; put {{i}} where the count "
                f"goes, e.g. '{pattern} {{i}}'",
            )
            return None
        names = []
        for k in range(count):
            if not self.spend(path):
                return None
            name = self.render(pattern, f"{path}.name", self.copy_scope(item, k))
            if name is FAILED:
                return None
            name = f"{pattern}#{k}" if name is UNSET else str(name)
            if not child_name_ok(name, dotted):
                self.add(
                    f"{path}.name",
                    f"{name!r} cannot name a submodule: names must be non-empty, contain no '.'"
                    f"{' except between parts' if dotted else ''}, and not clash with an "
                    "nn.Module attribute",
                )
                return None
            names.append(name)
        return names

    def entry(self, raw: Any, path: str, extra_args: dict[str, Any] | None = None) -> Node | None:
        if is_row(raw) and (raw := single(raw, path, self.block_defs, self.add)) is None:
            return None  # a call where one entry goes, now in its mapping form; or refused
        if isinstance(raw, str):
            return parse_layer(self, raw, {}, path)
        if not isinstance(raw, dict):
            self.add(
                path,
                f"expected an entry such as {{type: Linear, ...}} or a layer name; got {raw!r}",
            )
            return None
        kinds = [k for k in _KINDS if k in raw]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else one_of(raw)
            hints = [did_you_mean(k, _KINDS) for k in raw if not kinds and k not in _PLACEMENT]
            hint = next((h for h in hints if h), "")
            self.add(
                path,
                f"an entry needs exactly one of {', '.join(_KINDS)}; it has {found}{hint}",
            )
            return None
        kind = kinds[0]
        value = raw[kind]
        rest = {k: v for k, v in raw.items() if k not in (kind, *_PLACEMENT)}
        if kind == "type":
            if not isinstance(value, str):  # never a template: a file's types are checked
                self.add(f"{path}.type", f"expected a layer name; got {value!r}")
                return None
            return parse_layer(self, value, rest, path)
        for key in rest:
            if key not in _NEXT_TO[kind]:
                allowed = ", ".join((kind, *_NEXT_TO[kind], *_PLACEMENT))
                self.add(f"{path}.{key}", f"unexpected key next to {kind!r}; allowed: {allowed}")
        if kind == "seq":
            if not isinstance(value, list):
                self.add(f"{path}.seq", f"expected a list of entries; got {value!r}")
                return None
            return self.sequence(value, f"{path}.seq")
        if kind == "graph":
            return parse_graph(self, raw, path)
        if kind == "ref":
            return self.reference(value, path)
        return self.use_block(value, raw.get("args"), extra_args or {}, path)

    def reference(self, name: Any, path: str) -> Node | None:
        if not defined(self, self.shared_defs, "shared", name, path):
            return None
        node = self.named("shared", name, f"model.shared.{name}", self.model_args, "")
        return None if node is None else RefSpec(path + self.at, name)

    def use_block(self, name: Any, args: Any, extra: dict[str, Any], path: str) -> Node | None:
        if not defined(self, self.block_defs, "blocks", name, path):
            return None
        params, _ = split_definition(self.block_defs[name])
        if not isinstance(args if args is not None else {}, dict):
            self.add(
                f"{path}.args", f"expected a mapping of argument names to values; got {args!r}"
            )
            return None
        given = {k: self.render(v, f"{path}.args.{k}") for k, v in (args or {}).items()}
        if any(v is FAILED for v in given.values()):
            return None
        extra = self.render(extra, f"{path}.repeat")
        if extra is FAILED:
            return None
        scope = bind_arguments(self, name, params, {**given, **extra}, path)
        if scope is None:
            return None
        # A block with parameters differs by use: its problems name the use they came through.
        at = f" at {path}{self.at}" if params is not None else ""
        return self.named("blocks", name, f"model.blocks.{name}", scope, at)

    def named(
        self, table: str, name: str, path: str, scope: dict[str, Any], at: str
    ) -> Node | None:
        """A block (once per set of arguments) or a shared instance (once), however often used."""
        key = (name, repr(sorted(scope.items(), key=lambda kv: kv[0])))
        if table == "shared" and name in self.shared:
            return self.shared[name]
        if table == "blocks" and key in self.blocks:
            return self.blocks[key]
        stack_key = f"{table}.{name}"
        if stack_key in self._stack:
            cycle = " → ".join([*self._stack[self._stack.index(stack_key) :], stack_key])
            self.add(path, f"{name!r} contains itself ({cycle})")
            return None
        self._stack.append(stack_key)
        raw = self.block_defs[name] if table == "blocks" else self.shared_defs[name]
        with self.scoped(scope, at):
            node = self.node(split_definition(raw)[1] if table == "blocks" else raw, path)
        self._stack.pop()
        if table == "blocks":
            self.blocks[key] = node
            self.parsed_blocks.add(name)
        elif node is not None:
            self.shared[name] = node
        return node
