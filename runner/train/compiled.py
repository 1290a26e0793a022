"""trainer.compile: the training steps run the net's forward (and so its backward) through
torch.compile; everything else runs it eagerly.

Compiled for training only. Validation, test, task=eval and the reload check run a few batches
without gradients, often with a smaller last one: each would be another graph to compile,
costing more than it saves. And their numbers then come from the same eager forward that
`runner.load` gives, so val/loss compares with an eager run's and the reload check can stay
bitwise (compiled kernels may round differently).

The net itself is left as it is: the compiled forward is a function kept on the module
(`RunnerModule.compiled`), not a wrapping module, so the state_dict keys, the parameters and
gradients the statistics and the NaN guard read, and the checkpoints do not change. It is made
in each process that trains (after DDP's workers have started: a compiled function does not
pickle) and dropped when training ends.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytorch_lightning as pl
import torch

from runner.errors import first_line
from runner.train.failures import CompileFailed, hand_over
from runner.train.module import RunnerModule

log = logging.getLogger("runner")


def compiled_forward(net: torch.nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """`net`'s call (hooks included) through torch.compile, compiled at its first call.

    Static shapes: training sees at most two batch sizes (full batches and a smaller last
    one), and a graph per size lets inductor and CUDA graphs specialize for each.
    """

    def forward(x: torch.Tensor) -> torch.Tensor:
        return net(x)  # (B, ...) → (B, ...): the net's own output, hooks included

    return torch.compile(forward, mode=mode, dynamic=False)


class CompileNet(pl.Callback):
    """Gives the module its compiled forward for the training steps, logs how long the first
    step took (compiling included), and takes the forward back when training ends."""

    def __init__(self, mode: str, run_dir: Path):
        self.mode, self.run_dir = mode, run_dir
        self.started: float | None = None  # when the first training step started
        self.reported = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Each fit starts with no compiled code in the process: torch.compile keeps at most 8
        # graphs for one function (here: per batch size, with the dead-unit hooks armed or not)
        # and past that runs it eagerly without a word, which the runs of an in-process sweep
        # or a benchmark would reach. Compiling again takes well under a second when torch's
        # on-disk cache has the graph.
        torch.compiler.reset()
        module = cast(RunnerModule, pl_module)
        compiled = compiled_forward(module.net, self.mode)

        def forward(x: torch.Tensor) -> torch.Tensor:
            try:
                return compiled(x)
            except Exception as e:  # compiling happens at the first calls: one line for it
                failed = compile_failure(e, trainer.global_step, trainer.world_size > 1)
                if failed is None:
                    raise
                raise hand_over(self.run_dir, failed, trainer.world_size) from e

        module.compiled = forward

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.reported or self.started is None:
            return
        self.reported = True
        if trainer.is_global_zero:
            log.info(
                "compile: torch.compile (mode %s): the first training step took %.1f s, "
                "compiling included",
                self.mode,
                time.perf_counter() - self.started,
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        cast(RunnerModule, pl_module).compiled = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        cast(RunnerModule, pl_module).compiled = None


# Where torch.compile's own errors live (torch._dynamo.exc.TorchDynamoException and its
# subclasses, InductorError among them): told apart by their type's module.
_COMPILE_MODULES = ("torch._dynamo", "torch._inductor")


def compile_failure(
    error: BaseException, step: int, in_worker: bool = False
) -> CompileFailed | None:
    """A one-line CompileFailed for an error torch.compile raised (no C++ compiler, a layer it
    cannot compile), naming `trainer.compile` and the cause; None for any other error."""
    if not type(error).__module__.startswith(_COMPILE_MODULES):
        return None
    when = "at the first training step" if step == 0 else f"at optimizer step {step}"
    return CompileFailed(
        f"trainer.compile: torch.compile failed {'in a DDP worker' if in_worker else when}: "
        f"{first_line(error)[:300]}; train without it: trainer.compile=false"
    )
