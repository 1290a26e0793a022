"""`Model`: a config composed and built as the runner would, with one-line assertions about what
it means. A failed assertion reads like the runner's errors: the config, the parameter, what
was expected and what it is."""

import fnmatch
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

import runner
from runner.config.arguments import is_int
from runner.config.values import is_number
from runner.errors import ConfigError, missing_option
from runner.params.tensors import distinct_parameters
from runner.testing.settings import config_dir as find_config_dir

STATS = ("mean", "std", "min", "max")


class Model:
    """The net `python -m runner <overrides>` would build, on the CPU unless a `device=`
    override says otherwise. A config the runner refuses fails here with its problems."""

    def __init__(self, *overrides: str, config_dir: str | Path | None = None):
        __tracebackhide__ = True
        for override in overrides:
            if not isinstance(override, str):
                raise TypeError(
                    "Model: the overrides are strings, one an argument, as on the command line: "
                    f"Model('model=mlp', 'init=xavier'); got {override!r}"
                )
        if config_dir is not None and not isinstance(config_dir, str | Path):
            raise TypeError(f"Model: config_dir is a folder path; got {config_dir!r}")
        self.overrides = list(overrides)
        self.where = " ".join(overrides) or "the default config"
        folder = find_config_dir(config_dir)
        search = [f"hydra.searchpath=[file://{folder}]"] if folder is not None else []
        device = [] if any(o.startswith("device") for o in overrides) else ["device=cpu"]
        try:
            self.cfg = runner.compose([*search, *device, *overrides])
            self.net: nn.Module = runner.build_net(self.cfg)
        except ConfigError as e:
            self._fail("the runner refuses it:\n  - " + "\n  - ".join(e.problems))
        except Exception as e:  # Hydra's own: an unknown option or key
            if type(e).__module__.startswith(("hydra", "omegaconf")):
                self._fail(f"config error: {missing_option(e) or str(e).strip()}")
            raise

    def _fail(self, message: str) -> None:
        __tracebackhide__ = True
        raise AssertionError(f"{self.where}: {message}") from None

    def assert_parameters(
        self,
        count: int | None = None,
        names: list[str] | None = None,
        shapes: dict[str, tuple[int, ...]] | None = None,
    ) -> "Model":
        """The number of parameters (a shared or tied tensor counted once), the parameter
        names (every name, in state_dict order), and the shapes of some of them."""
        __tracebackhide__ = True
        if count is None and names is None and not shapes:
            raise TypeError("assert_parameters: nothing to check; give count=, names= or shapes=")
        if count is not None and not is_int(count):
            raise TypeError(f"assert_parameters: count is an integer; got {count!r}")
        if names is not None:
            _names("assert_parameters", "names", names)
        if shapes is not None and not (
            isinstance(shapes, dict)
            and all(
                isinstance(s, list | tuple) and all(is_int(n) for n in s) for s in shapes.values()
            )
        ):
            raise TypeError(
                "assert_parameters: shapes maps names to shapes, e.g. {'0.weight': (256, 20)}; "
                f"got {shapes!r}"
            )
        if count is not None:
            got = sum(t.numel() for _, t in distinct_parameters(self.net))
            if got != count:
                self._fail(f"{got:,} parameters, expected {count:,} (shared tensors count once)")
        every = dict(self.net.named_parameters(remove_duplicate=False))
        if names is not None and list(every) != list(names):
            missing = [n for n in names if n not in every]
            extra = [n for n in every if n not in names]
            self._fail(
                f"parameter names differ: missing {missing}, unexpected {extra}"
                if missing or extra
                else f"parameter names in another order: {list(every)}"
            )
        for name, shape in (shapes or {}).items():
            if name not in every:
                self._fail(f"no parameter {name!r}; there are: {', '.join(every)}")
            if tuple(every[name].shape) != tuple(shape):
                self._fail(f"{name}: shape {list(every[name].shape)}, expected {list(shape)}")
        return self

    def assert_ties(self, *groups: list[str]) -> "Model":
        """Each group of names is exactly one tensor shared by those names, and by no other."""
        __tracebackhide__ = True
        if not groups:
            raise TypeError("assert_ties: nothing to check; give groups of names, e.g. ['a', 'b']")
        for group in groups:
            _names("assert_ties", "each group", group)
        sharing = {n: names for names, _ in distinct_parameters(self.net) for n in names}
        for group in groups:
            for name in group:
                if name not in sharing:
                    self._fail(f"no parameter {name!r}; there are: {', '.join(sharing)}")
            actual = set(sharing[group[0]])
            if actual != set(group):
                self._fail(
                    f"{group[0]}: shares one tensor with {sorted(actual - {group[0]}) or 'none'}"
                    f", expected {sorted(set(group) - {group[0]})}"
                )
        return self

    def assert_init(
        self,
        pattern: str,
        rtol: float = 0.1,
        atol: float = 0.0,
        all_equal: bool | None = None,
        **expected: float,
    ) -> "Model":
        """Every parameter whose name matches the glob `pattern` has these statistics
        (`mean`, `std`, `min`, `max`) within `atol + rtol·|expected|`; `all_equal=True`: one
        value throughout (a constant init)."""
        __tracebackhide__ = True
        unknown = sorted(set(expected) - set(STATS))
        if unknown:
            raise TypeError(f"assert_init: unknown statistic(s) {unknown}; allowed: {STATS}")
        _check_init_arguments(pattern, rtol, atol, all_equal, expected)
        matched = [(n, t) for n, t in self.net.named_parameters() if fnmatch.fnmatch(n, pattern)]
        if not matched:
            names = ", ".join(n for n, _ in self.net.named_parameters())
            self._fail(f"no parameter matches {pattern!r}; there are: {names}")
        for name, tensor in matched:
            values = tensor.detach().double().reshape(-1)
            got = {
                "mean": values.mean().item(),
                "std": values.std(unbiased=False).item(),
                "min": values.min().item(),
                "max": values.max().item(),
            }
            for stat, want in expected.items():
                if not abs(got[stat] - want) <= atol + rtol * abs(want):
                    band = f"± {rtol:.0%}" + (f" + {atol:g}" if atol else "")
                    self._fail(f"{name}: {stat} {got[stat]:.4g}, expected {want:g} {band}")
            if all_equal is not None and (got["min"] == got["max"]) != all_equal:
                state = "one value throughout" if got["min"] == got["max"] else "varied values"
                self._fail(f"{name}: {state} (min {got['min']:.4g}, max {got['max']:.4g})")
        return self

    def assert_device(self, device: str) -> "Model":
        """Every parameter and buffer is on `device` (`cpu`, `cuda`, `cuda:1`)."""
        __tracebackhide__ = True
        try:
            want = torch.device(device)
        except (RuntimeError, TypeError):
            raise TypeError(
                f"assert_device: {device!r} is not a torch device; allowed: cpu, cuda, cuda:N, mps"
            ) from None
        tensors = [*self.net.named_parameters(), *self.net.named_buffers()]
        for name, tensor in tensors:
            here = tensor.device
            if here.type != want.type or (want.index is not None and here.index != want.index):
                self._fail(f"{name} is on {here}, expected {want}")
        return self

    def _batch(self, batch: int) -> torch.Tensor:
        shape = self.cfg.model.get("input_shape")
        if shape is None:
            self._fail("model.input_shape is not set: there is no declared input to try")
        param = next(iter(self.net.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        g = torch.Generator().manual_seed(0)
        return torch.randn(batch, *shape, generator=g).to(device)

    def assert_forward(self, batch: int = 2) -> torch.Tensor:
        """One batch of the declared input shape (model.input_shape) goes through, with
        finite outputs; returns the output."""
        __tracebackhide__ = True
        if not (is_int(batch) and batch >= 1):
            raise TypeError(f"assert_forward: batch is an integer ≥ 1; got {batch!r}")
        x = self._batch(batch)
        self.net.eval()
        with torch.no_grad():
            try:
                out = self.net(x)
            except Exception as e:
                self._fail(f"forward on {list(x.shape)} raised {type(e).__name__}: {e}")
        bad = int((~torch.isfinite(out)).sum())
        if bad:
            self._fail(f"forward on {list(x.shape)}: {bad} of {out.numel()} outputs are NaN/Inf")
        return out

    def assert_trains(self) -> float:
        """One optimizer step on a batch of the configured data, with the runner's loss and
        the configured optimizer: the loss is finite, every gradient is finite, and the
        parameters move. Returns the loss. (One manual step: a Trainer costs seconds.)"""
        __tracebackhide__ = True
        from hydra.utils import instantiate

        from runner.train.data import RandomData

        out = self.assert_forward()
        if out.dim() == 0 or out.shape[0] != 2:
            self._fail(
                f"forward on a batch of 2 returns shape {list(out.shape)}, not one output per "
                "sample: it can be inspected, not trained"
            )
        module = runner.build(self.cfg)  # the same net (same config and seed), with its loss
        data = instantiate(self.cfg.data)
        if isinstance(data, RandomData):
            data.output_shape = tuple(out.shape[1:])
        data.setup("fit")
        X, y = (t[: data.batch_size] for t in data.splits["train"])
        configured = module.configure_optimizers()
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        net = module.net.train()
        before = [p.detach().clone() for p in net.parameters()]
        loss = module._metrics((X, y))["loss"]
        if not math.isfinite(loss.item()):
            self._fail(f"one training step: the loss is {loss.item()}")
        optimizer.zero_grad()
        loss.backward()
        for name, p in net.named_parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                self._fail(f"one training step: {name} has a NaN/Inf gradient")
        optimizer.step()
        if all(torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True)):
            self._fail("one training step changed no parameter (no gradient reaches them)")
        return loss.item()


# An argument mistake in a config test is the test's own bug, not the config's: a TypeError,
# never an assertion that checks nothing and passes (all_equal=0.0, a string read as letters).
def _names(function: str, argument: str, value: object) -> None:
    if isinstance(value, str) or not (
        isinstance(value, list | tuple) and value and all(isinstance(n, str) for n in value)
    ):
        raise TypeError(
            f"{function}: {argument} is a list of parameter names, e.g. ['0.weight', '2.weight']; "
            f"got {value!r}"
        )


def _check_init_arguments(
    pattern: object, rtol: object, atol: object, all_equal: object, expected: Mapping[str, object]
) -> None:
    if not isinstance(pattern, str):
        raise TypeError(f"assert_init: pattern is a glob of parameter names; got {pattern!r}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (is_number(value) and 0 <= value < math.inf):  # type: ignore[operator]
            raise TypeError(f"assert_init: {name} is a finite number ≥ 0; got {value!r}")
    if all_equal not in (None, True, False) or is_number(all_equal):
        raise TypeError(f"assert_init: all_equal is True, False or None; got {all_equal!r}")
    for stat, value in expected.items():
        if not (is_number(value) and math.isfinite(value)):  # type: ignore[arg-type]
            raise TypeError(f"assert_init: {stat} is a finite number; got {value!r}")
    if not expected and all_equal is None:
        raise TypeError(
            "assert_init: nothing to check; give a statistic (mean=, std=, min=, max=) or "
            "all_equal=True/False"
        )
