"""The chain's hand-written backward (runner.train.vector_chain): its losses, accuracies and
gradients against autograd through each member's own network, for every activation it
covers, ties, rows and both losses; and the first-batch guard that drops it when it is wrong."""

import copy
import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runner.train import vector_chain
from runner.train.vector_chain import Chain
from tests.train.test_vector_net import _LINEAR, N, _group, _members, _stacked

ACTIVATIONS = [
    nn.ReLU(),
    nn.ReLU(inplace=True),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.SiLU(),
    nn.SiLU(inplace=True),
    nn.GELU(),
    nn.GELU(approximate="tanh"),
    nn.LeakyReLU(0.1),
    nn.LeakyReLU(0.1, inplace=True),
    nn.Identity(),
]


def _own(members: list[nn.Module], x: torch.Tensor, y: torch.Tensor, classification: bool):
    """Each member's loss, accuracy and gradients through autograd, as its single run."""
    losses, accs, grads = [], [], []
    for i, member in enumerate(members):
        member.zero_grad()
        out = member(x[i].clone())
        if classification:
            loss = F.cross_entropy(out, y[i])
            accs.append((out.argmax(-1) == y[i]).float().mean())
        else:
            loss = F.mse_loss(out, y[i])
            accs.append(torch.zeros(()))
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in member.named_parameters()})
    return torch.stack(losses), torch.stack(accs), grads


def _check(net: nn.Module, x: torch.Tensor, y: torch.Tensor, classification: bool) -> None:
    members = _members(net)
    chain, leaves, _ = _stacked(members)
    assert isinstance(chain, Chain) and chain.manual
    done = chain.train_losses(x, y, classification)
    assert done is not None
    losses, accs, grads = _own(members, x, y, classification)
    torch.testing.assert_close(done[0], losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(done[1], accs)
    for name, _ in members[0].named_parameters():
        want = torch.stack([g[name] for g in grads])
        torch.testing.assert_close(leaves[name].grad, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_each_activations_gradients_equal_autograds(activation):
    """After a Linear (in place where its backward reads its output alone), first on the data,
    and twice in a row."""
    a = [copy.deepcopy(activation) for _ in range(3)]  # one module thrice would be shared
    twice = [] if getattr(activation, "inplace", False) else [a[2]]  # autograd refuses that
    net = nn.Sequential(a[0], nn.Linear(4, 6), a[1], *twice, nn.Linear(6, 2, bias=False))
    _check(net, torch.randn(N, 7, 4), torch.randn(N, 7, 2), classification=False)


def test_a_classifier_on_rows_of_several_dims_and_a_tie():
    torch.manual_seed(0)
    _check(
        nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)),
        torch.randn(N, 9, 5),
        torch.randint(0, 3, (N, 9)),
        classification=True,
    )
    _check(  # samples of 3 rows: a Linear acts on the last dim alone
        nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1)),
        torch.randn(N, 5, 3, 4),
        torch.randn(N, 5, 3, 1),
        classification=False,
    )
    net = nn.Sequential(
        nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.Linear(6, 1)
    )
    net[4].weight = net[2].weight  # one weight in two layers (one module twice: shared)
    _check(net, torch.randn(N, 7, 4), torch.randn(N, 7, 1), classification=False)


@pytest.mark.parametrize(
    "net, x, y, classification",
    [
        # a regression target that broadcasts against the output (its single run's loss does)
        (nn.Sequential(nn.Linear(4, 1)), torch.randn(N, 5, 4), torch.randn(N, 5), False),
        # classes along dim 1 of (B, C, T): cross_entropy's layout, not the chain's
        (nn.Sequential(nn.Linear(4, 3)), torch.randn(N, 5, 2, 4), torch.zeros(N, 5, 2), True),
        # an activation without a hand-written backward: autograd's
        (nn.Sequential(nn.Linear(4, 2), nn.Softplus()), torch.randn(N, 5, 4), None, False),
    ],
)
def test_what_has_no_hand_written_backward_goes_through_autograd(net, x, y, classification):
    chain, _, _ = _stacked(_members(net))
    assert isinstance(chain, Chain)
    y = torch.randn(N, 5, 2) if y is None else y
    assert chain.train_losses(x, y.long() if classification else y, classification) is None


def test_the_first_batch_drops_a_wrong_hand_written_backward(monkeypatch, caplog):
    group = _group("rgnet")
    assert isinstance(group.stacked, Chain) and group.stacked.manual
    monkeypatch.setitem(vector_chain._BACKWARD, nn.ReLU, lambda m, g, x, y: g)  # forgets relu'
    x, y = torch.randn(2, 16, 4), torch.randn(2, 16, 1)
    with caplog.at_level(logging.WARNING, logger="runner"):
        group.check_stacked(x, y)
    assert isinstance(group.stacked, Chain) and not group.stacked.manual
    assert "hand-written backward differs" in caplog.text
    group.train_losses(x, y)
    fast = group.grad.clone()
    group.grad.zero_()
    group.vmapped_losses(x, y)[0].sum().backward()
    torch.testing.assert_close(fast, group.grad, rtol=1e-5, atol=1e-6)


def test_a_right_one_is_kept_and_leaves_no_gradient_behind():
    group = _group("rgnet")
    group.check_stacked(torch.randn(2, 16, 4), torch.randn(2, 16, 1))
    assert isinstance(group.stacked, Chain) and group.stacked.manual
    assert not group.grad.any()


def test_a_backward_the_first_batch_could_not_check_is_autograds():
    """vmap's step failed on the first batch (LeakyReLU in place with a negative slope, whose
    backward autograd refuses): nothing checked the hand-written backward, which trained the
    members where each one's single run fails. Autograd's fails as the single run's does."""
    leaky = "{type:LeakyReLU,negative_slope:-0.5,inplace:true}"
    net = f"model.net=[{{type:Linear,in_features:4,out_features:8}},{leaky},{_LINEAR}]"
    group = _group("rgnet", net)
    assert isinstance(group.stacked, Chain) and group.stacked.manual
    x, y = torch.randn(2, 16, 4), torch.randn(2, 16, 1)
    group.check_stacked(x, y)
    assert isinstance(group.stacked, Chain) and not group.stacked.manual
    with pytest.raises(RuntimeError, match="In-place leakyReLu backward"):
        group.train_losses(x, y)
