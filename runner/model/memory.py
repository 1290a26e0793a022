"""Will the model fit? The meta build knows every tensor's size before anything is allocated,
so a model too large for the target device fails with the bytes it would need, not with the
allocator's error halfway through the build."""

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from runner.config.data import host_memory_available
from runner.errors import ConfigError


def check_fits(net: nn.Module, device: torch.device, origins: dict[int, str]) -> None:
    """Raise ConfigError when `net`'s parameters and buffers (each shared tensor once) exceed
    the free memory of `device`. Training needs more (gradients, optimizer state): this only
    catches what cannot even be built."""
    if device.type == "meta":
        return
    tensors = {id(t): (name, t) for name, t in _named_tensors(net) if not is_lazy(t)}
    need = sum(t.numel() * t.element_size() for _, t in tensors.values())
    free = available(device)
    if free is None or need <= free:
        return
    largest = sorted(tensors.values(), key=lambda nt: -nt[1].numel() * nt[1].element_size())[:3]
    shown = ", ".join(
        f"{_where(net, name, origins)} {list(t.shape)} ({_size(t.numel() * t.element_size())})"
        for name, t in largest
    )
    raise ConfigError(
        [
            f"model: its parameters and buffers need {_size(need)} ({need:,} bytes) on {device}, "
            f"but {_size(free)} are free there; the largest: {shown}"
        ]
    )


def available(device: torch.device) -> int | None:
    """Free bytes on `device` now, or None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return host_memory_available() if device.type == "cpu" else None


def _named_tensors(net: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [
        *net.named_parameters(remove_duplicate=False),
        *net.named_buffers(remove_duplicate=False),
    ]


def _where(net: nn.Module, name: str, origins: dict[int, str]) -> str:
    owner = name.rpartition(".")[0]
    module = net.get_submodule(owner) if owner else net
    return f"{origins.get(id(module), owner or 'the model')}.{name.rpartition('.')[2]}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")
