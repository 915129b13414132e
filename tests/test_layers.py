"""Exactness of every invertible layer and flow: round trips, log-dets against autograd, signs."""

from __future__ import annotations

import pytest
import torch
from helpers import autograd_logdet, perturb_

import cflib
from cflib import (
    AdditiveCoupling,
    AffineCoupling,
    Attention,
    AutoregressiveFlow,
    Compose,
    CouplingFlow,
    FactorOut,
    Inverse,
    InvertibleConv1x1,
    MaskedAutoregressive,
    MultiScaleFlow,
    PiecewiseLinearCoupling,
    RandomPermutation,
    ResNet,
    ReversePermutation,
    SplineCoupling,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)

DIM = 5
IMG = (2, 4, 4)
SCRAMBLED = torch.tensor([True, False, False, True, False])


def _attention(i: int, o: int) -> torch.nn.Module:
    return Attention(i, o, embed_dim=8, num_heads=2)


def _small_cnn(i: int, o: int) -> torch.nn.Module:
    return ResNet(i, o, hidden_channels=8, num_blocks=1)


LAYERS = {
    "additive": lambda: AdditiveCoupling(DIM),
    "additive-flip": lambda: AdditiveCoupling(DIM, flip=True),
    **{f"affine-{s}": (lambda s=s: AffineCoupling(DIM, scale=s)) for s in cflib.SCALES},
    "affine-scrambled-mask": lambda: AffineCoupling(DIM, mask=SCRAMBLED),
    "affine-attention": lambda: AffineCoupling(DIM, conditioner=_attention),
    "spline": lambda: SplineCoupling(DIM, num_bins=6),
    "spline-flip-scrambled": lambda: SplineCoupling(DIM, mask=SCRAMBLED, flip=True),
    "piecewise-linear": lambda: PiecewiseLinearCoupling(DIM, num_bins=5),
    "affine-image-checkerboard": lambda: AffineCoupling(
        IMG, mask=checkerboard_mask(4, 4), conditioner=_small_cnn
    ),
    "affine-image-channel": lambda: AffineCoupling(
        IMG, mask=channel_mask(2, flip=True), conditioner=_small_cnn
    ),
    "spline-image-checkerboard": lambda: SplineCoupling(
        IMG, mask=checkerboard_mask(4, 4, flip=True), conditioner=_small_cnn, num_bins=4
    ),
    "additive-image-checkerboard": lambda: AdditiveCoupling(
        IMG, mask=checkerboard_mask(4, 4), conditioner=_small_cnn
    ),
    "piecewise-image-channel": lambda: PiecewiseLinearCoupling(
        IMG, mask=channel_mask(2), conditioner=_small_cnn, num_bins=4
    ),
    "reverse": lambda: ReversePermutation(DIM),
    "random": lambda: RandomPermutation(DIM, seed=3),
    "conv1x1-vector": lambda: InvertibleConv1x1(DIM, seed=1),
    "conv1x1-image": lambda: InvertibleConv1x1(IMG[0], seed=1),
    "squeeze": lambda: Squeeze(),
    "unsqueeze": lambda: Inverse(Squeeze()),
    "factor-out": lambda: FactorOut(
        AffineCoupling((1, 4, 4), mask=checkerboard_mask(4, 4)), split=1
    ),
    "autoregressive": lambda: MaskedAutoregressive(DIM, hidden=(16, 16)),
    "maf-layer": lambda: Inverse(MaskedAutoregressive(DIM, hidden=(16, 16))),
    "compose": lambda: Compose([AffineCoupling(DIM), ReversePermutation(DIM), SplineCoupling(DIM)]),
}
FLOWS = {
    **{
        f"flow-{c}-{p}": (
            lambda c=c, p=p: CouplingFlow(3, num_layers=3, coupling=c, hidden_dim=16, permutation=p)
        )
        for c in cflib.COUPLINGS
        for p in ("reverse", "random", "lu", None)
    },
    "flow-attention": lambda: CouplingFlow(4, num_layers=2, hidden_dim=8, conditioner="attention"),
    "autoregressive-flow": lambda: AutoregressiveFlow(3, num_layers=2, hidden_dim=16),
    "multiscale-affine": lambda: MultiScaleFlow(
        (1, 4, 4), num_couplings=2, hidden_channels=8, num_blocks=1
    ),
    "multiscale-spline-conv": lambda: MultiScaleFlow(
        (1, 4, 4), num_couplings=1, coupling="spline", hidden_channels=8, num_blocks=1, conv1x1=True
    ),
}
ALL = {**LAYERS, **FLOWS}


def _input_shape(name: str, layer) -> tuple[int, ...]:
    if "unsqueeze" in name:
        return (8, 2, 2)
    if "image" in name or name in ("squeeze", "factor-out"):
        return IMG if name != "factor-out" else (2, 4, 4)
    if isinstance(layer, cflib.Flow):
        return tuple(layer.event_shape)
    return (DIM,)


def _make(name: str, dtype=torch.float64):
    torch.manual_seed(0)
    layer = ALL[name]().to(dtype)
    perturb_(layer, scale=0.3)
    x = torch.randn(
        4, *_input_shape(name, layer), dtype=dtype, generator=torch.Generator().manual_seed(1)
    )
    return layer, x


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip_and_logdet_float64(name):
    layer, x = _make(name)
    y, ladj = layer(x)
    x2, ladj_inv = layer.inverse(y)
    assert y.shape[0] == x.shape[0] and ladj.shape == (x.shape[0],)
    assert y.dtype == torch.float64 and ladj.dtype == torch.float64
    torch.testing.assert_close(x2, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(ladj + ladj_inv, torch.zeros_like(ladj), atol=1e-10, rtol=0)
    torch.testing.assert_close(ladj, autograd_logdet(layer, x), atol=1e-8, rtol=0)
    torch.testing.assert_close(ladj_inv, autograd_logdet(layer.inverse, y), atol=1e-8, rtol=0)


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip_float32(name):
    layer, x = _make(name, torch.float32)
    y, ladj = layer(x)
    x2, ladj_inv = layer.inverse(y)
    assert y.dtype == torch.float32
    torch.testing.assert_close(x2, x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ladj + ladj_inv, torch.zeros_like(ladj), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in sorted(LAYERS)
        if "coupling" not in n
        and any(k in n for k in ("affine", "spline", "additive", "piecewise"))
    ],
)
def test_couplings_start_at_identity(name):
    torch.manual_seed(0)
    layer = LAYERS[name]().double()
    x = torch.randn(6, *_input_shape(name, layer), dtype=torch.float64)
    y, ladj = layer(x)
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ladj, torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("coupling", sorted(cflib.COUPLINGS))
def test_coupling_leaves_masked_part_unchanged(coupling):
    layer = perturb_(cflib.COUPLINGS[coupling](DIM, mask=SCRAMBLED).double())
    x = torch.randn(7, DIM, dtype=torch.float64)
    y, _ = layer(x)
    torch.testing.assert_close(y[:, SCRAMBLED], x[:, SCRAMBLED], atol=0, rtol=0)
    assert (y[:, ~SCRAMBLED] - x[:, ~SCRAMBLED]).abs().max() > 1e-3


def test_checkerboard_coupling_leaves_masked_pixels_unchanged():
    mask = checkerboard_mask(4, 4)
    layer = perturb_(AffineCoupling(IMG, mask=mask, conditioner=_small_cnn).double())
    x = torch.randn(3, *IMG, dtype=torch.float64)
    y, _ = layer(x)
    torch.testing.assert_close(y[:, :, mask], x[:, :, mask], atol=0, rtol=0)
    assert (y[:, :, ~mask] - x[:, :, ~mask]).abs().max() > 1e-3


def test_flip_is_used():
    torch.manual_seed(0)
    a = perturb_(AffineCoupling(4).double(), seed=2)
    torch.manual_seed(0)
    b = perturb_(AffineCoupling(4, flip=True).double(), seed=2)
    x = torch.randn(5, 4, dtype=torch.float64)
    ya, yb = a(x)[0], b(x)[0]
    torch.testing.assert_close(ya[:, :2], x[:, :2], atol=0, rtol=0)
    torch.testing.assert_close(yb[:, 2:], x[:, 2:], atol=0, rtol=0)
    assert not torch.allclose(ya, yb)


def test_permutation_directions_agree():
    for layer in (ReversePermutation(6), RandomPermutation(6, seed=5)):
        x = torch.randn(3, 6)
        y, _ = layer(x)
        torch.testing.assert_close(y, x[:, layer.perm])
        torch.testing.assert_close(layer.inverse(y)[0], x)
    assert not torch.equal(RandomPermutation(8, seed=0).perm, RandomPermutation(8, seed=1).perm)


def test_conv1x1_logdet_matches_slogdet():
    layer = perturb_(InvertibleConv1x1(5, seed=2).double())
    w = layer.weight()
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    y, ladj = layer(x)
    torch.testing.assert_close(ladj, torch.linalg.slogdet(w)[1].expand(2) * 12)
    torch.testing.assert_close(y, torch.einsum("ij,bjhw->bihw", w, x))


def test_squeeze_layout():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    # channel 2i + j holds the pixel at offset (i, j) of each 2x2 block
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))
    torch.testing.assert_close(y[0, 3], torch.tensor([[5.0, 7.0], [13.0, 15.0]]))


def test_autoregressive_inverse_is_sequential():
    layer = perturb_(MaskedAutoregressive(4, hidden=(8,)).double())
    calls = []
    layer.made.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(3, 4, dtype=torch.float64)
    y, _ = layer(x)
    assert len(calls) == 1
    layer.inverse(y)
    assert len(calls) == 1 + 4


def test_autoregressive_jacobian_is_triangular():
    layer = perturb_(MaskedAutoregressive(4, hidden=(8, 8)).double())
    jac = torch.autograd.functional.jacobian(
        lambda v: layer(v[None])[0][0], torch.randn(4, dtype=torch.float64)
    )
    assert torch.all(torch.triu(jac, 1) == 0)


@pytest.mark.parametrize("coupling", sorted(cflib.COUPLINGS))
def test_flow_density_integrates_to_one(coupling):
    flow = perturb_(
        CouplingFlow(2, num_layers=4, coupling=coupling, hidden_dim=16).double(), scale=0.2
    )
    n, lim = 700, 9.0
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    with torch.no_grad():
        p = flow.log_prob(torch.stack([xx, yy], -1).reshape(-1, 2)).exp()
    total = p.sum() * (g[1] - g[0]) ** 2
    assert abs(total.item() - 1.0) < 1e-2


def test_log_prob_is_a_single_inverse_pass():
    flow = CouplingFlow(4, num_layers=3)
    calls = {"forward": 0}
    for layer in flow.transforms:
        layer.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    flow.log_prob(torch.randn(5, 4))
    assert calls["forward"] == 0  # the inverse path never calls a layer's forward


def test_flow_is_a_distribution_and_samples_have_the_right_shape():
    flow = perturb_(CouplingFlow(3, num_layers=2, coupling="spline"))
    assert isinstance(flow, torch.distributions.Distribution)
    x = flow.sample(10)
    assert x.shape == (10, 3) and not x.requires_grad
    assert flow.sample((2, 5)).shape == (2, 5, 3)
    assert flow.log_prob(torch.randn(2, 5, 3)).shape == (2, 5)
    xs, lq = flow.sample_and_log_prob(6)
    torch.testing.assert_close(lq, flow.log_prob(xs), atol=1e-4, rtol=1e-4)
    assert flow.rsample(4).requires_grad


def test_flow_forward_matches_inverse_and_log_prob():
    flow = perturb_(CouplingFlow(3, num_layers=4, coupling="affine").double())
    z = torch.randn(8, 3, dtype=torch.float64)
    x, ladj = flow(z)
    z2, ladj_inv = flow.inverse(x)
    torch.testing.assert_close(z2, z)
    torch.testing.assert_close(ladj_inv, -ladj)
    torch.testing.assert_close(flow.log_prob(x), flow.base_log_prob(z) - ladj)
    base = torch.distributions.Normal(0.0, 1.0)
    torch.testing.assert_close(flow.base_log_prob(z), base.log_prob(z).sum(-1))


@pytest.mark.parametrize("permutation", ["reverse", "random", "lu", None])
def test_every_dimension_is_transformed_and_all_pairs_interact(permutation):
    dim = 5
    flow = perturb_(
        CouplingFlow(dim, num_layers=6, coupling="affine", permutation=permutation).double()
    )
    jac = torch.autograd.functional.jacobian(
        lambda v: flow(v[None])[0][0], torch.randn(dim, dtype=torch.float64)
    )
    assert (jac.abs() > 1e-12).all(), f"dependency pattern has zeros:\n{jac}"


def test_conditional_flow_uses_context():
    flow = perturb_(CouplingFlow(2, num_layers=2, context_dim=3).double())
    x = torch.randn(4, 2, dtype=torch.float64)
    c1, c2 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    assert not torch.allclose(flow.log_prob(x, c1), flow.log_prob(x, c2))
    z, _ = flow.inverse(x, c1)
    torch.testing.assert_close(flow(z, c1)[0], x)
    assert flow.sample(7, context=c1[0]).shape == (7, 2)
    with pytest.raises(ValueError, match="context"):
        flow.log_prob(x)
