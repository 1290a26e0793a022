"""The chapter's networks written by hand, as the book writes them: the references the
compiled zoo models must equal (same state_dict keys and shapes, same outputs).

Where the book keeps a constant as a plain attribute (FixedHiddenMLP.rand_weight), it is
registered as a buffer here too, so it travels with the state_dict.
"""

import torch
from torch import nn
from torch.nn import functional as F


class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("rand_weight", torch.rand((20, 20)))
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


class CenteredLayer(nn.Module):
    def forward(self, X):
        return X - X.mean()


class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units))

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight) + self.bias)


def block1():
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(4), nn.ReLU())


def block2():
    net = nn.Sequential()
    for i in range(4):
        net.add_module(f"block {i}", block1())
    return net


def shared_net():
    shared = nn.LazyLinear(8)
    return nn.Sequential(
        nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1)
    )


# zoo model name → (hand-written network, input of the shape the book feeds it)
REFERENCES = {
    "mlp": (lambda: nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10)), (2, 20)),
    "lazy_mlp": (lambda: nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10)), (2, 20)),
    "rgnet": (lambda: nn.Sequential(block2(), nn.LazyLinear(1)), (2, 4)),
    "nested": (NestMLP, (2, 20)),
    "chimera": (lambda: nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP()), (2, 20)),
    "fixed_hidden": (FixedHiddenMLP, (2, 20)),
    "shared": (shared_net, (2, 4)),
    "centered": (lambda: nn.Sequential(nn.LazyLinear(128), CenteredLayer()), (4, 8)),
    "mydense": (lambda: nn.Sequential(MyLinear(64, 8), MyLinear(8, 1)), (2, 64)),
    "linear": (lambda: nn.Sequential(nn.LazyLinear(1)), (10, 2)),
}


def reference(name: str) -> tuple[nn.Module, torch.Tensor]:
    """The hand-written network, sized by one forward pass as the book does, and its input."""
    make, shape = REFERENCES[name]
    net = make()
    X = torch.rand(*shape)
    net(X)  # materializes the lazy layers
    return net, X
