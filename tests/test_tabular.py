"""Tabular preprocessing: Standardize, Whiten and Log (exact log-dets), resolution and dequantisation."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import autograd_logdet
from torch.distributions import MultivariateNormal

from cflib import Compose, CouplingFlow, Flow, Inverse
from cflib.tabular import Log, Standardize, Whiten, decimal_resolution, dequantize_rounded


def _table(n: int = 200, dim: int = 4, seed: int = 0) -> torch.Tensor:
    """Correlated rows with different scales and offsets, float64."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    z = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return z @ mix.T * torch.logspace(-1, 2, dim, dtype=torch.float64) + 5.0


LAYERS = {
    "standardize": lambda x: Standardize.fit(x),
    "whiten": lambda x: Whiten.fit(x),
    "log": lambda x: Log(),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trip_and_logdet_against_autograd(name):
    x = _table()
    x = x.abs() + 0.1 if name == "log" else x
    layer = LAYERS[name](x)
    y, ladj = layer(x[:6])
    back, ladj_inv = layer.inverse(y)
    torch.testing.assert_close(back, x[:6])
    torch.testing.assert_close(ladj_inv, -ladj)
    torch.testing.assert_close(ladj, autograd_logdet(layer, x[:6]))
    assert ladj.shape == (6,)


def test_standardize_fit_gives_zero_mean_unit_std_and_constant_logdet():
    x = _table()
    layer = Standardize.fit(x)
    u, ladj = layer(x)
    torch.testing.assert_close(u.mean(0), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(u.std(0, correction=0), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(ladj, -torch.log(x.std(0, correction=0)).sum().expand(len(x)))


def test_whiten_pulls_a_standard_normal_back_to_the_gaussian_mle():
    x = _table()
    layer = Whiten.fit(x)
    u, _ = layer(x)
    torch.testing.assert_close(torch.cov(u.T, correction=0), torch.eye(4, dtype=torch.float64))
    gauss = Flow(Inverse(layer), (4,))
    mle = MultivariateNormal(x.mean(0), torch.cov(x.T, correction=0))
    torch.testing.assert_close(gauss.log_prob(x[:10]), mle.log_prob(x[:10]))


def test_density_in_original_units_is_the_standardised_one_plus_the_logdet():
    x = _table().abs() + 0.1
    pre = Compose([Log(), Standardize.fit(Log()(x)[0])])
    flow = CouplingFlow(4, num_layers=2, coupling="spline", hidden_dim=8).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    raw = Flow(Compose([flow.transform, Inverse(pre)]), (4,)).double()
    u, ladj = pre(x[:8])
    torch.testing.assert_close(raw.log_prob(x[:8]), flow.log_prob(u) + ladj)
    # samples come back through exp, into the positive orthant of the original scale
    assert bool((raw.sample(50) > 0).all())


def test_layers_follow_the_input_dtype():
    x = _table()
    for layer in (Standardize.fit(x), Whiten.fit(x)):
        y, ladj = layer(x.float())
        assert y.dtype == ladj.dtype == torch.float32
        z, ladj = layer.float().inverse(y)
        assert z.dtype == ladj.dtype == torch.float32


def test_decimal_resolution():
    x = torch.tensor([[1.0, 0.25, 12.5, 3.0], [2.0, 0.5, 13.1, 0.001], [7.0, 1.75, 0.3, 2.125]])
    torch.testing.assert_close(
        decimal_resolution(x), torch.tensor([1.0, 0.01, 0.1, 0.001], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="column 0 has more than 3 decimals"):
        decimal_resolution(torch.tensor([[math.pi], [1.0]]), max_decimals=3)


def test_dequantize_rounded_stays_in_the_rounding_cell_and_is_reproducible():
    x = torch.round(_table() * 100) / 100
    res = torch.full((4,), 0.01, dtype=torch.float64)
    a = dequantize_rounded(x, res, torch.Generator().manual_seed(3))
    b = dequantize_rounded(x, res, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert bool(((a - x).abs() <= 0.005 + 1e-12).all())
    torch.testing.assert_close(torch.round(a * 100) / 100, x)
    assert abs(float((a - x).mean())) < 1e-3  # centred on the recorded value


def test_errors_name_the_argument():
    x = _table()
    with pytest.raises(ValueError, match="columns \\[1\\] are constant"):
        Standardize.fit(torch.stack([x[:, 0], torch.ones(len(x), dtype=x.dtype)], 1))
    with pytest.raises(ValueError, match="std: expected positive"):
        Standardize(torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="x: expected shape \\(batch, 4\\)"):
        Standardize.fit(x)(x[:, :3])
    with pytest.raises(ValueError, match="cov: expected a symmetric positive-definite"):
        Whiten(torch.zeros(2), torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="more rows than columns"):
        Whiten.fit(x[:4])
    with pytest.raises(ValueError, match="x: expected positive values"):
        Log()(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="resolution: expected shape \\(4,\\)"):
        dequantize_rounded(x, torch.ones(3, dtype=x.dtype))
    with pytest.raises(TypeError, match="generator"):
        dequantize_rounded(x, torch.ones(4, dtype=x.dtype), generator=0)
