"""Image preprocessing (cflib.preprocess): the logit transform and uniform dequantisation."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import autograd_logdet, perturb_
from scipy import integrate, stats

import cflib
from cflib.preprocess import Logit, dequantize
from cflib.transforms import Compose, Inverse


def _unit(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Points strictly inside the unit cube, float64, including values near 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    x.view(-1)[:2] = torch.tensor([1e-6, 1.0 - 1e-6], dtype=torch.float64)
    return x


@pytest.mark.parametrize("shape", [(5, 3), (4, 1, 3, 2)])
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_logit_round_trip_and_formula(shape, alpha):
    t = Logit(alpha)
    x = _unit(shape)
    y, ladj = t(x)
    p = alpha + (1 - 2 * alpha) * x
    torch.testing.assert_close(y, torch.log(p / (1 - p)))
    back, ladj_inv = t.inverse(y)
    torch.testing.assert_close(back, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ladj_inv, -ladj)
    assert ladj.shape == (shape[0],)


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 2, 2)])
def test_logit_logdet_matches_autograd(shape):
    t = Logit(0.05)
    x = _unit(shape, seed=1)
    _, ladj = t(x)
    torch.testing.assert_close(ladj, autograd_logdet(t, x))
    y = 4.0 * torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, ladj_inv = t.inverse(y)
    torch.testing.assert_close(ladj_inv, autograd_logdet(t.inverse, y))


def test_logit_endpoints_and_domain():
    t = Logit(0.05)
    x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    y, ladj = t(x)
    assert torch.isfinite(y).all() and torch.isfinite(ladj).all()
    torch.testing.assert_close(y[0, 1], -y[0, 0])
    lo, hi = t.domain
    # the inverse maps the whole line onto the domain, which strictly contains [0, 1]
    far = torch.tensor([[-30.0, 30.0]], dtype=torch.float64)
    ends, _ = t.inverse(far)
    torch.testing.assert_close(ends, torch.tensor([[lo, hi]], dtype=torch.float64))
    assert lo < 0 and hi > 1
    inside = torch.tensor([[lo / 2, (1 + hi) / 2]], dtype=torch.float64)
    torch.testing.assert_close(t.inverse(t(inside)[0])[0], inside)


def test_logit_flow_density_integrates_to_one():
    # a standard normal pushed through the inverse logit: a density on the domain (1-D quadrature)
    t = Logit(0.1)
    flow = cflib.Flow(Inverse(t), (1,))
    lo, hi = t.domain

    def density(v: float) -> float:
        return math.exp(float(flow.log_prob(torch.tensor([[v]], dtype=torch.float64))))

    total, _ = integrate.quad(density, lo, hi, limit=200)
    assert total == pytest.approx(1.0, abs=1e-7)
    on_unit, _ = integrate.quad(density, 0.0, 1.0, limit=200)
    logit_alpha = math.log(0.1 / 0.9)
    assert on_unit == pytest.approx(1.0 - 2.0 * stats.norm.cdf(logit_alpha), abs=1e-7)


def test_logit_follows_dtype():
    t = Logit()
    for dtype in (torch.float32, torch.float64):
        x = torch.full((2, 3), 0.5, dtype=dtype)
        y, ladj = t(x)
        assert y.dtype == ladj.dtype == dtype
        assert t.inverse(y)[0].dtype == dtype


def test_logit_bad_input():
    t = Logit(0.05)
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.5)
    with pytest.raises(ValueError, match="alpha"):
        Logit(0.0)
    with pytest.raises(ValueError, match=r"x: expected values in"):
        t(torch.tensor([[0.5, 1.2]]))
    with pytest.raises(ValueError, match="x: contains 1 non-finite"):
        t(torch.tensor([[0.5, float("nan")]]))
    with pytest.raises(ValueError, match="y: contains"):
        t.inverse(torch.tensor([[0.5, float("inf")]]))
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        t(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"x: expected a batch of shape \(batch, \.\.\.\)"):
        t(torch.tensor([0.5, 0.5]))


def test_multiscale_flow_with_logit_is_exact():
    # the data -> base map of the whole model (logit, then RealNVP), its log-det from autograd
    torch.manual_seed(0)
    ms = cflib.MultiScaleFlow(
        (1, 4, 4), num_scales=2, num_couplings=1, coupling="affine", hidden_channels=4, num_blocks=1
    )
    perturb_(ms, scale=0.5)
    flow = cflib.Flow(Compose([ms.transform, Inverse(Logit(0.05))]), (1, 4, 4)).double()
    x = _unit((2, 1, 4, 4), seed=3)
    z, ladj = flow.inverse(x)
    torch.testing.assert_close(ladj, autograd_logdet(flow.inverse, x))
    expected = ms.log_prob(Logit(0.05)(x)[0]) + Logit(0.05)(x)[1]
    torch.testing.assert_close(flow.log_prob(x), expected)
    torch.testing.assert_close(flow.forward(z)[0], x)
    samples = flow.sample(5)
    lo, hi = Logit(0.05).domain
    assert samples.shape == (5, 1, 4, 4) and ((samples > lo) & (samples < hi)).all()


def test_dequantize_stays_in_its_cell():
    levels = torch.arange(17).repeat(40).reshape(-1, 1, 4, 17).to(torch.float64)
    x = dequantize(levels, 17, generator=torch.Generator().manual_seed(0))
    assert x.shape == levels.shape and x.dtype == torch.float64
    assert ((x >= 0) & (x < 1)).all()
    torch.testing.assert_close(torch.floor(17 * x), levels)


def test_dequantize_noise_is_uniform_and_seeded():
    k = torch.zeros(20_000, dtype=torch.int64)
    u = 5 * dequantize(k, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    again = 5 * dequantize(k, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(u, again, atol=0, rtol=0)
    other = 5 * dequantize(k, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert not torch.equal(u, other)


def test_dequantize_dtypes():
    k = torch.tensor([[0, 3]])
    assert dequantize(k, 4).dtype == torch.get_default_dtype()
    assert dequantize(k.float(), 4).dtype == torch.float32
    assert dequantize(k, 4, dtype=torch.float64).dtype == torch.float64


def test_dequantize_digits_round_trip():
    digits = cflib.targets.load_digits("test")
    x = dequantize(digits, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(torch.floor(17 * x), digits.double())


def test_dequantize_bad_input():
    with pytest.raises(TypeError, match=r"x: expected a torch\.Tensor"):
        dequantize([0, 1], 2)
    with pytest.raises(ValueError, match="num_levels"):
        dequantize(torch.tensor([0.0]), 1)
    with pytest.raises(ValueError, match="num_levels"):
        dequantize(torch.tensor([0.0]), 2.5)
    with pytest.raises(ValueError, match="x: expected integer levels"):
        dequantize(torch.tensor([0.5]), 2)
    with pytest.raises(ValueError, match=r"x: expected levels in \[0, 16\]"):
        dequantize(torch.tensor([17.0]), 17)
    with pytest.raises(ValueError, match=r"x: expected levels in \[0, 16\]"):
        dequantize(torch.tensor([-1]), 17)
    with pytest.raises(ValueError, match="x: contains"):
        dequantize(torch.tensor([float("nan")]), 17)
    with pytest.raises(TypeError, match="x: expected integer levels"):
        dequantize(torch.tensor([True]), 2)
    with pytest.raises(TypeError, match="generator"):
        dequantize(torch.tensor([0]), 2, generator=0)
    with pytest.raises(TypeError, match="dtype"):
        dequantize(torch.tensor([0]), 2, dtype=torch.int64)
