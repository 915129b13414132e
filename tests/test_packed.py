"""The parameter-major fast path: packed splines and the couplings' two ways of getting there."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from cflib import AffineCoupling, PiecewiseLinearCoupling, SplineCoupling
from cflib.splines import (
    piecewise_linear_spline,
    piecewise_linear_spline_packed,
    rational_quadratic_spline,
    rational_quadratic_spline_packed,
)

F64 = torch.float64


def _random(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = 4 * torch.rand(n, generator=g, dtype=F64) - 2
    return x * 2, torch.randn(n, 3 * k - 1, generator=g, dtype=F64) * 2


@pytest.mark.parametrize("inverse", [False, True])
def test_packed_splines_match_the_public_ones(inverse):
    k, bound = 6, 3.0
    x, params = _random(200, k)
    w, h, d = params[:, :k], params[:, k : 2 * k], params[:, 2 * k :]
    expected = rational_quadratic_spline(x, w, h, d, inverse=inverse, bound=bound)
    got = rational_quadratic_spline_packed(
        x, params.T.contiguous(), k, inverse=inverse, bound=bound
    )
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-14)
    expected = piecewise_linear_spline(x, w, inverse=inverse, bound=bound)
    got = piecewise_linear_spline_packed(x, w.T.contiguous(), inverse=inverse, bound=bound)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-14)


def test_packed_splines_check_their_input():
    x, params = _random(10, 4)
    packed = params.T.contiguous()
    with pytest.raises(ValueError, match=r"params: expected shape \(11, M\)"):
        rational_quadratic_spline_packed(x, packed[:10], 4)
    # Any layout is accepted (a non-contiguous one is copied).
    for a, b in zip(
        rational_quadratic_spline_packed(x, params.T, 4),
        rational_quadratic_spline_packed(x, packed, 4),
        strict=True,
    ):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="num_bins"):
        rational_quadratic_spline_packed(x, packed, 1)
    bad = packed.clone()
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="params: contains 1 non-finite"):
        rational_quadratic_spline_packed(x, bad, 4)
    with pytest.raises(TypeError, match="params: expected dtype"):
        piecewise_linear_spline_packed(x, packed[:4].float())
    with pytest.raises(ValueError, match="bound"):
        piecewise_linear_spline_packed(x, packed[:4].contiguous(), bound=-1.0)


class _Wrapped(nn.Module):
    """The same network behind a plain module: the coupling cannot see its last layer."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp(n_in: int, n_out: int, bias: bool = True, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(n_in, 16, bias=bias),
        act(),
        nn.Linear(16, 8),
        act(),
        nn.Linear(8, n_out, bias=bias),
    ).double()


@pytest.mark.parametrize(
    "make",
    [
        lambda c: SplineCoupling(5, conditioner=c, num_bins=4),
        lambda c: SplineCoupling(5, mask=torch.tensor([1, 0, 0, 1, 0]), conditioner=c, num_bins=3),
        lambda c: PiecewiseLinearCoupling(4, conditioner=c, num_bins=5),
        lambda c: AffineCoupling(5, conditioner=c, scale="tanh"),
        lambda c: AffineCoupling(2, conditioner=c),
        lambda c: SplineCoupling(2, conditioner=c, num_bins=5),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_network_shortcut_equals_the_generic_path(make, bias, act):
    """A ReLU network is evaluated by the coupling itself (head rows reordered, parameter-major
    output, hand-written backward); the same network behind a plain module takes the generic path,
    as does a Tanh network. Values, log-dets and gradients agree in both directions."""
    probe = make(lambda i, o: _mlp(i, o, bias, act))
    net = probe.conditioner
    fast, generic = make(net), make(_Wrapped(net))
    x = torch.randn(7, probe.event_shape[0], dtype=F64, generator=torch.Generator().manual_seed(2))
    for direction in ("forward", "inverse"):
        outs = []
        for layer in (fast, generic):
            layer.zero_grad()
            y, ladj = getattr(layer, direction)(x)
            (y.square().sum() + ladj.sum()).backward()
            outs.append((y, ladj, [p.grad.clone() for p in net.parameters()]))
        (y0, l0, g0), (y1, l1, g1) = outs
        torch.testing.assert_close(y0, y1, rtol=0, atol=1e-13)
        torch.testing.assert_close(l0, l1, rtol=0, atol=1e-13)
        for a, b in zip(g0, g1, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SplineCoupling(5, num_bins=4),
        lambda: SplineCoupling(2, num_bins=5),
        lambda: PiecewiseLinearCoupling(4, num_bins=5),
        lambda: AffineCoupling(5),
    ],
)
def test_plain_operations_equal_the_hand_written_functions(make, monkeypatch):
    """Where the hand-written functions step aside (compiled, traced, autocast, torch.func), the
    plain code runs: the ReLU network writes the parameter-major layout with ordinary operations,
    the bin edges are summed row by row. Values, log-dets and gradients agree with the fast path
    in both directions (float64)."""
    from cflib import fast

    torch.manual_seed(4)
    layer = make().double()
    for p in layer.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x = 1.5 * torch.randn(9, layer.event_shape[0], dtype=F64)
    results = {}
    for path in ("fast", "plain"):
        if path == "plain":
            monkeypatch.setattr(fast, "active", lambda *tensors: False)
        for direction in ("forward", "inverse"):
            layer.zero_grad()
            y, ladj = getattr(layer, direction)(x)
            hand_written = {"ReluMLPBackward", "RationalQuadraticBinBackward"} & _nodes(ladj)
            assert bool(hand_written) == (path == "fast"), hand_written
            (y.square().sum() + ladj.sum()).backward()
            grads = [p.grad.clone() for p in layer.parameters()]
            results[path, direction] = (y, ladj, grads)
    for direction in ("forward", "inverse"):
        (y0, l0, g0), (y1, l1, g1) = results["fast", direction], results["plain", direction]
        assert l0.abs().max() > 0.01  # a map that is not the identity
        torch.testing.assert_close(y1, y0, rtol=0, atol=1e-13)
        torch.testing.assert_close(l1, l0, rtol=0, atol=1e-13)
        for a, b in zip(g1, g0, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def _nodes(t: torch.Tensor) -> set[str]:
    """The class names of the autograd graph's nodes behind ``t``."""
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack += [n for n, _ in node.next_functions]
    return {type(n).__name__ for n in seen}


def test_parameter_major_copies_every_block():
    """The blocked copy of element-major pieces (column slices of one table, a size that is not a
    multiple of the block) equals their transposes, contiguous; with gradients it is the plain
    transpose, and the gradient reaches the table."""
    from cflib.fast import _BLOCK, parameter_major

    m = 2 * _BLOCK + 37
    table = torch.randn(m, 11, dtype=torch.float32)
    pieces = [table[:, :4], table[:, 4:8], table[:, 8:]]
    for copies in (parameter_major(pieces), parameter_major([p.double() for p in pieces])):
        for piece, copy in zip(pieces, copies, strict=True):
            assert copy.is_contiguous() and copy.shape == (piece.shape[1], m)
            assert torch.equal(copy, piece.T.to(copy.dtype))
    leaf = table.clone().requires_grad_()
    copies = parameter_major([leaf[:, :4], leaf[:, 4:]])
    sum(c.sum() * (i + 1) for i, c in enumerate(copies)).backward()
    assert torch.equal(leaf.grad, torch.cat([torch.ones(m, 4), 2 * torch.ones(m, 7)], dim=1))


def test_which_networks_the_coupling_evaluates_itself():
    """The shortcut takes plain Linear/ReLU stacks ending in a Linear of the right width (so the
    equality test above compares two paths), and nothing else."""
    from cflib.conditioners import MLP
    from cflib.fast import relu_mlp as _relu_mlp

    assert _relu_mlp(MLP(2, 6, hidden=[8, 8]), 6) is not None
    assert _relu_mlp(_mlp(2, 6), 6) is not None
    assert _relu_mlp(nn.Sequential(nn.Linear(2, 6)), 6) is not None
    assert _relu_mlp(_mlp(2, 6, act=nn.Tanh), 6) is None
    assert _relu_mlp(_mlp(2, 6), 5) is None  # wrong width: the generic path reports it
    assert _relu_mlp(nn.Sequential(nn.Linear(2, 8), nn.ReLU()), 8) is None  # ends in a ReLU
    assert _relu_mlp(_Wrapped(_mlp(2, 6)), 6) is None


def test_network_shortcut_gradients():
    """The hand-written backward against finite differences (float64), for every input that
    needs a gradient, with and without biases, one input feature (the outer-product branch) and
    several; and only the gradients that are needed are computed (a frozen network still passes
    one to its input)."""
    from cflib.fast import ReluMLP as _ReluMLP

    g = torch.Generator().manual_seed(3)
    for n_in, bias in ((1, True), (3, True), (3, False)):
        sizes = (n_in, 5, 4, 6)
        params = []
        for a, b in itertools.pairwise(sizes):
            params.append(torch.randn(b, a, generator=g, dtype=F64, requires_grad=True))
            params.append(
                torch.randn(b, generator=g, dtype=F64, requires_grad=True) if bias else None
            )
        x = torch.randn(7, n_in, generator=g, dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(_ReluMLP.apply, (x, *params))
        frozen = [None if p is None else p.detach() for p in params]
        out = _ReluMLP.apply(x, *frozen)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        h = x
        for i in range(0, len(frozen) - 2, 2):
            h = torch.nn.functional.linear(h, frozen[i], frozen[i + 1]).relu()
        ref = torch.nn.functional.linear(h, frozen[-2], frozen[-1]).T
        torch.testing.assert_close(out, ref, rtol=1e-14, atol=1e-14)
        (expected,) = torch.autograd.grad(ref.square().sum(), x)
        torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SplineCoupling(4),
        lambda: PiecewiseLinearCoupling(4),
        lambda: AffineCoupling(4),
    ],
)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_hand_written_backwards_under_vmap(make, direction):
    """``jacobian(..., vectorize=True)`` runs the backward passes under ``vmap``, where in-place
    steps need the batched gradient on their left (and the ReLU's in-place backward has no
    batching rule at all): the couplings still give the loop's Jacobian."""
    torch.manual_seed(0)
    layer = make().double()
    for p in layer.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x = torch.randn(3, 4, dtype=F64)

    def f(z):  # both outputs: each Jacobian batches one of the two incoming gradients only
        return getattr(layer, direction)(z)

    loop = torch.autograd.functional.jacobian(f, x)
    vectorized = torch.autograd.functional.jacobian(f, x, vectorize=True)
    for a, b in zip(vectorized, loop, strict=True):
        assert b.abs().max() > 0.1
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_a_subclass_overriding_transform_keeps_its_map():
    """The packed path is inherited only together with the map it computes: a subclass that
    overrides ``transform`` alone (as the book's 'common mistakes' do) is called as written."""

    class Doubled(AffineCoupling):
        def transform(self, x, params, inverse):
            y, ladj = super().transform(x, params, inverse)
            return 2 * y, ladj

    torch.manual_seed(0)
    layer, plain = Doubled(4), AffineCoupling(4)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(layer(x)[0][:, 2:], 2 * plain(x)[0][:, 2:])


@pytest.mark.parametrize("make", [lambda: SplineCoupling(4), lambda: AffineCoupling(4)])
def test_hooks_on_the_conditioner_are_called(make):
    """With a hook on the conditioner (or one of its layers) the coupling calls the network as a
    module, so that the hook runs: once per direction."""
    for target in ("net", "layer"):
        layer = make()
        calls = []
        module = layer.conditioner if target == "net" else layer.conditioner[0]
        handle = module.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        y, _ = layer(torch.randn(5, 4))
        layer.inverse(y)
        handle.remove()
        assert len(calls) == 2
        layer(torch.randn(5, 4))
        assert len(calls) == 2
