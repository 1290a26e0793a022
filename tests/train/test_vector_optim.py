"""The vectorized optimizer step against torch.optim, member by member: N members with their own
hyperparameters, stacked, end where N separate torch optimizers end (float32 round-off)."""

import pytest
import torch

from runner.train.vector_optim import StackedOptimizer

SHAPES = [(3, 4), (4,), (2, 3, 2)]

CASES = [
    (torch.optim.SGD, [{"lr": 0.1}, {"lr": 0.01}, {"lr": 0.3, "weight_decay": 0.1}]),
    (
        torch.optim.SGD,
        [
            {"lr": 0.1, "momentum": 0.9},
            {"lr": 0.05, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.01},
            {"lr": 0.2, "momentum": 0.99},
        ],
    ),
    (
        torch.optim.SGD,
        [
            {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True},
            {"lr": 0.01, "momentum": 0.8, "nesterov": True, "maximize": True},
        ],
    ),
    (
        torch.optim.Adam,
        [
            {"lr": 1e-3},
            {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6},
            {"lr": 3e-3, "weight_decay": 0.1},
        ],
    ),
    (torch.optim.Adam, [{"lr": 1e-2, "amsgrad": True}, {"lr": 1e-3, "amsgrad": True}]),
    (torch.optim.AdamW, [{"lr": 1e-2, "weight_decay": 0.01}, {"lr": 1e-3, "weight_decay": 0.5}]),
]


def _members(kind, settings, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [[torch.nn.Parameter(torch.randn(s, generator=g)) for s in SHAPES] for _ in settings]
    optimizers = [kind(p, **o) for p, o in zip(params, settings, strict=True)]
    return params, optimizers


def _flat(params):
    return torch.stack([torch.cat([p.detach().reshape(-1) for p in ps]) for ps in params])


@pytest.mark.parametrize(("kind", "settings"), CASES)
def test_a_stacked_step_is_each_members_own_torch_step(kind, settings):
    alone, alone_opts = _members(kind, settings)
    mine, mine_opts = _members(kind, settings)
    flat = _flat(mine).requires_grad_(True)
    stacked = StackedOptimizer(flat, mine_opts)
    g = torch.Generator().manual_seed(1)
    for step in range(6):
        if step == 3:  # a scheduler's change of one member's rate reaches its next step
            for opt in (alone_opts[0], mine_opts[0]):
                opt.param_groups[0]["lr"] *= 0.5
        grads = [[torch.randn(s, generator=g) for s in SHAPES] for _ in settings]
        for ps, gs, opt in zip(alone, grads, alone_opts, strict=True):
            for p, gr in zip(ps, gs, strict=True):
                p.grad = gr.clone()
            opt.step()
        flat.grad = _flat(grads)
        stacked.step(torch.ones(len(settings), 1, dtype=torch.bool))
    torch.testing.assert_close(flat.detach(), _flat(alone), rtol=1e-5, atol=1e-6)


def test_an_inactive_member_keeps_its_parameters_and_state():
    settings = [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9}]
    params, optimizers = _members(torch.optim.SGD, settings)
    flat = _flat(params).requires_grad_(True)
    stacked = StackedOptimizer(flat, optimizers)
    flat.grad = torch.ones_like(flat)
    stacked.step(torch.ones(2, 1, dtype=torch.bool))
    before, momentum = flat.detach().clone(), stacked.state["momentum_buffer"].clone()
    flat.grad = torch.full_like(flat, float("nan"))
    stacked.step(torch.tensor([[True], [False]]))
    assert torch.equal(flat.detach()[1], before[1])
    assert torch.equal(stacked.state["momentum_buffer"][1], momentum[1])
    assert flat.detach()[0].isnan().all()


def test_the_state_is_written_into_each_members_torch_optimizer_in_its_layout():
    settings = [{"lr": 1e-2}, {"lr": 1e-3}]
    alone, alone_opts = _members(torch.optim.Adam, settings)
    mine, mine_opts = _members(torch.optim.Adam, settings)
    flat = _flat(mine).requires_grad_(True)
    stacked = StackedOptimizer(flat, mine_opts)
    for _ in range(3):
        grads = [[torch.ones(s) for s in SHAPES] for _ in settings]
        for ps, gs, opt in zip(alone, grads, alone_opts, strict=True):
            for p, gr in zip(ps, gs, strict=True):
                p.grad = gr
            opt.step()
        flat.grad = torch.ones_like(flat)
        stacked.step(torch.ones(2, 1, dtype=torch.bool))
    sizes = [torch.Size(s).numel() for s in SHAPES]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    slices = [slice(o, o + n) for o, n in zip(offsets, sizes, strict=True)]
    for i in range(2):
        stacked.member_state(i, mine[i], slices, steps=3)
        want, got = alone_opts[i].state_dict(), mine_opts[i].state_dict()
        assert want["param_groups"] == got["param_groups"]
        assert want["state"].keys() == got["state"].keys()
        for k, state in want["state"].items():
            assert state.keys() == got["state"][k].keys()
            for name, value in state.items():
                torch.testing.assert_close(got["state"][k][name], value)
