"""ActNorm (cflib.normalization): a learned elementwise scale and shift with an exact log-det."""

from __future__ import annotations

import pytest
import torch
from helpers import autograd_logdet, perturb_

import cflib
from cflib.normalization import ActNorm

CASES = [
    ((3,), (5, 3)),
    ((2, 3, 4), (4, 2, 3, 4)),
    ((2, 1, 1), (4, 2, 3, 4)),
    ((1, 3, 1), (2, 2, 3, 4)),
]


@pytest.mark.parametrize(("shape", "batch"), CASES)
def test_round_trip_and_logdet(shape, batch):
    layer = perturb_(ActNorm(shape), scale=0.5).double()
    x = torch.randn(batch, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y, ladj = layer(x)
    back, ladj_inv = layer.inverse(y)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(ladj_inv, -ladj)
    assert ladj.shape == (batch[0],)
    torch.testing.assert_close(ladj, autograd_logdet(layer, x))
    torch.testing.assert_close(ladj_inv, autograd_logdet(layer.inverse, y))


def test_starts_as_identity():
    x = torch.randn(3, 2, 4, 4)
    y, ladj = ActNorm((2, 1, 1))(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(ladj, torch.zeros(3))


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 1, 1)])
def test_initialize_standardises(shape):
    g = torch.Generator().manual_seed(1)
    data = 3.0 + 0.5 * torch.randn(500, 2, 3, 4, generator=g, dtype=torch.float64)
    data[:, 1] *= 4.0
    layer = ActNorm(shape).double().initialize(data)
    u, _ = layer.inverse(data)
    axes = [0] + [i + 1 for i, s in enumerate(shape) if s == 1]
    torch.testing.assert_close(u.mean(axes), torch.zeros_like(u.mean(axes)), atol=1e-12, rtol=0)
    std = u.std(axes, correction=0)
    torch.testing.assert_close(std, torch.ones_like(std))


def test_flow_with_actnorm_is_a_diagonal_gaussian():
    # initialised from data, a flow made of this layer alone is the diagonal Gaussian MLE
    g = torch.Generator().manual_seed(2)
    data = torch.randn(400, 3, generator=g, dtype=torch.float64) * torch.tensor([0.5, 2.0, 1.0])
    layer = ActNorm(3).double().initialize(data)
    flow = cflib.Flow(layer, (3,))
    normal = torch.distributions.Normal(data.mean(0), data.std(0, correction=0))
    torch.testing.assert_close(flow.log_prob(data), normal.log_prob(data).sum(1))


def test_follows_dtype_and_errors():
    layer = ActNorm((2, 1, 1))
    assert layer(torch.zeros(1, 2, 2, 2, dtype=torch.float64))[1].dtype == torch.float64
    with pytest.raises(ValueError, match="shape"):
        ActNorm((0, 2))
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, \.\.\.\)"):
        layer(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="x: contains"):
        layer(torch.full((1, 2, 2, 2), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.zeros(1, 2, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="constant"):
        ActNorm(2).initialize(torch.ones(5, 2))
