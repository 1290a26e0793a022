"""The stacked network (runner.train.vector_net): N members' layers as one module, checked
against each member's own network, forward, backward and BatchNorm's running statistics, and
which networks it covers (the rest stay on torch.func.vmap's path)."""

import copy
import logging

import pytest
import torch
from torch import nn

import runner
from runner.config.spec import parse_run
from runner.train.vector_fit import GroupFit
from runner.train.vector_members import make_member
from runner.train.vector_net import stack

N = 3


def _members(net: nn.Module) -> list[nn.Module]:
    """N copies of `net`, each with its own random parameters and running statistics."""
    out = []
    for i in range(N):
        member = copy.deepcopy(net)
        torch.manual_seed(i)
        with torch.no_grad():
            for p in member.parameters():
                p.copy_(torch.randn_like(p) * 0.5)
            for name, b in member.named_buffers():
                if b.is_floating_point():
                    b.copy_(torch.rand_like(b) + (0.5 if "var" in name else 0.0))
        out.append(member)
    return out


def _stacked(members: list[nn.Module]) -> tuple[nn.Module | str, dict, dict]:
    names = [n for n, _ in members[0].named_parameters(remove_duplicate=False)]
    leaves = {}
    for name in dict.fromkeys(n for n, _ in members[0].named_parameters()):
        leaf = torch.stack([m.get_parameter(name).detach() for m in members]).requires_grad_()
        leaf.grad = torch.zeros_like(leaf)
        leaves[name] = leaf
    for name in names:  # a tied parameter answers to each of its names
        param = members[0].get_parameter(name)
        first = next(n for n, p in members[0].named_parameters() if p is param)
        leaves[name] = leaves[first]
    buffers = {
        name: torch.stack([m.get_buffer(name).detach().clone() for m in members])
        for name, _ in members[0].named_buffers()
    }
    return stack(members[0], leaves, buffers, N), leaves, buffers


NETS = {
    "linear chain on sequences": lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)),
    "linear chain": lambda: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2, bias=False)),
    "nested chain": lambda: nn.Sequential(
        nn.Sequential(nn.Linear(4, 8), nn.GELU()), nn.Linear(8, 3)
    ),
    "flatten, layer norm": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(8, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 2)
    ),
    "conv1d, batchnorm1d": lambda: nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)
    ),
    "conv2d groups, batchnorm2d, pooling": lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, groups=2),
        nn.BatchNorm2d(4, momentum=None),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    ),
    "batchnorm without affine or running statistics": lambda: nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6, affine=False, track_running_stats=False), nn.Linear(6, 2)
    ),
}
SHAPES = {
    "linear chain on sequences": (3, 4),  # a Linear acts on the last dim of each sample
    "linear chain": (4,),
    "nested chain": (4,),
    "flatten, layer norm": (2, 4),
    "conv1d, batchnorm1d": (2, 4),
    "conv2d groups, batchnorm2d, pooling": (2, 4, 4),
    "batchnorm without affine or running statistics": (4,),
}


@pytest.mark.parametrize("name", list(NETS))
def test_stacked_layers_equal_each_members_own_network(name):
    members = _members(NETS[name]())
    net, leaves, buffers = _stacked(members)
    assert isinstance(net, nn.Module), net
    x = torch.randn(N, 5, *SHAPES[name], generator=torch.Generator().manual_seed(7))
    for training in (True, False, True):  # BatchNorm's batch, then running statistics
        net.train(training)
        out = net(x)
        out.square().sum().backward()
        for i, member in enumerate(members):
            member.train(training)
            own = member(x[i])
            own.square().sum().backward()
            torch.testing.assert_close(out[i], own, rtol=1e-5, atol=1e-6)
            for buffer_name, b in member.named_buffers():
                torch.testing.assert_close(buffers[buffer_name][i], b)
    for i, member in enumerate(members):
        # Round-off grows with the largest gradient: one that is zero in exact arithmetic (the
        # bias of a Linear before BatchNorm on batch statistics) is noise of that scale (it
        # failed at 4e-5 beside gradients of 50 with one thread, as `make test` runs).
        scale = max(float(p.grad.abs().max()) for p in member.parameters())
        for param_name, p in member.named_parameters():
            torch.testing.assert_close(
                leaves[param_name].grad[i], p.grad, rtol=1e-4, atol=1e-5 * max(1.0, scale)
            )


def test_a_module_used_twice_stays_shared():
    shared = nn.Linear(4, 4)
    members = _members(nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 1)))
    net, leaves, _ = _stacked(members)
    x = torch.randn(N, 5, 4)
    net(x).sum().backward()
    for i, member in enumerate(members):
        member(x[i]).sum().backward()
        torch.testing.assert_close(net(x)[i], member(x[i]))
        torch.testing.assert_close(leaves["0.weight"].grad[i], member[0].weight.grad)


@pytest.mark.parametrize(
    "layer, reason",
    [
        (nn.Flatten(start_dim=0), "works on dim 0"),
        (nn.Softmax(dim=0), "works on dim 0"),
        (nn.Softmax(dim=-2), "works on dim -2"),  # of a (B, F) activation: across the batch
        (nn.LogSoftmax(dim=-2), "works on dim -2"),
        (nn.PReLU(), "not one of the stacked layers"),
        (nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), "padding_mode=reflect"),
    ],
)
def test_what_is_not_stacked_says_why(layer, reason):
    net, _, _ = _stacked(_members(nn.Sequential(nn.Identity(), layer)))
    assert isinstance(net, str) and reason in net and "layer '1'" in net


def _group(model: str, *extra: str) -> GroupFit:
    specs = [
        parse_run(runner.compose([f"model={model}", f"seed={s}", "device=cpu", *extra]))
        for s in range(2)
    ]
    return GroupFit([make_member(s, k) for k, s in enumerate(specs)])


_LINEAR = "{type:Linear,out_features:1}"


@pytest.mark.parametrize(
    "model, extra, kind",
    [
        ("rgnet", [], "Chain"),
        ("shared", [], "_Folded"),  # a module used twice
        ("bn_lenet", ["data=digits_images"], "_Folded"),
        ("centered", [], "CenteredLayer"),  # X - X.mean(): mixes a batch's samples
        ("rgnet", ["model.input_shape=[3,4]"], "Chain"),  # targets (B, 3, 1)
        # Targets (B, 1, 1): flattened to (N·B, 1) against (N·B, 1, 1), mse broadcast across
        # every member's rows.
        (
            "rgnet",
            [f"model.net=[{_LINEAR},{{type:Unflatten,dim:1,unflattened_size:[1,1]}}]"],
            "_Folded",
        ),
    ],
)
def test_the_groups_path_and_its_losses_equal_vmaps(model, extra, kind):
    group = _group(model, *extra)
    assert kind in (
        group.stacked if isinstance(group.stacked, str) else type(group.stacked).__name__
    )
    parts = [m.data.tensors("train", torch.device("cpu")) for m in group.members]
    x = torch.stack([features[:16] for features, _ in parts])
    y = torch.stack([targets[:16] for _, targets in parts])
    for training in (True, False):
        group.train_mode(training)
        with torch.no_grad():
            fast, sure = group.losses(x, y), group.vmapped_losses(x, y)
        torch.testing.assert_close(fast[0], sure[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fast[1], sure[1])


def test_a_stacked_network_that_disagrees_with_vmap_is_dropped(caplog):
    group = _group("rgnet")
    group.stacked = nn.Sequential(group.stacked, nn.Softmax(dim=0))  # mixes the members
    x, y = torch.randn(2, 8, 4), torch.randn(2, 8, 1)
    with caplog.at_level(logging.WARNING, logger="runner"):
        group.check_stacked(x, y)
    assert isinstance(group.stacked, str)
    assert "differ from vmap's" in caplog.text


def test_a_stacked_network_that_fails_leaves_the_group_on_vmap(caplog):
    group = _group("rgnet")

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a shape it did not expect")

    group.stacked = nn.Sequential()  # a module, as stack() returns
    group.stacked.forward = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="runner"):
        group.check_stacked(torch.randn(2, 8, 4), torch.randn(2, 8, 1))
    assert isinstance(group.stacked, str) and "a shape it did not expect" in group.stacked
    torch.testing.assert_close(
        group.losses(torch.zeros(2, 8, 4), torch.zeros(2, 8, 1))[0],
        group.vmapped_losses(torch.zeros(2, 8, 4), torch.zeros(2, 8, 1))[0],
    )


def test_a_cumulative_batchnorm_follows_the_members_still_training():
    """momentum=None: the running mean over all steps taken. A stopped member's count lags (the
    loop restores its statistics after each step); the others' factor must be their own."""
    members = _members(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, momentum=None)))
    for i, member in enumerate(members):
        member[1].num_batches_tracked.fill_(3 if i == 0 else 7)
    net, _, buffers = _stacked(members)
    x = torch.randn(N, 5, 4)
    with torch.no_grad():
        net(x)
        for i in range(1, N):
            members[i](x[i])
            for name, b in members[i].named_buffers():
                torch.testing.assert_close(buffers[name][i], b)


def test_a_large_networks_gradient_norms_are_summed_by_segments(monkeypatch):
    """The 0/1 matrix of the small networks' product would take T·P floats for a large one."""
    from runner.train import vector_fit

    small = _group("rgnet")
    monkeypatch.setattr(vector_fit, "_DENSE_SEGMENT_MAX", 0)
    large = _group("rgnet")
    assert small.segment is not None and large.segment is None
    for group in (small, large):
        group.grad.copy_(torch.arange(group.grad.numel()).reshape(group.grad.shape) % 7 - 3.0)
    torch.testing.assert_close(large.grad_norms(), small.grad_norms())
    first = small.slices[0]
    torch.testing.assert_close(small.grad_norms()[:, 0], small.grad[:, first].norm(dim=1))
