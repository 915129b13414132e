"""Metrics against closed forms, and the training loop (determinism, progress, errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor, nn

from cflib.metrics import bits_per_dim, effective_sample_size, kl_divergence, nll
from cflib.targets import Target
from cflib.train import train
from cflib.transforms import Transform


class ElementwiseAffine(Transform):
    """y = x * exp(log_scale) + shift (a stand-in layer for these tests)."""

    def __init__(self, dim: int, shift: float = 0.0, log_scale: float = 0.0):
        super().__init__()
        self.shift = nn.Parameter(torch.full((dim,), float(shift)))
        self.log_scale = nn.Parameter(torch.full((dim,), float(log_scale)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ladj = self.log_scale.sum().expand(x.shape[0])
        return x * torch.exp(self.log_scale) + self.shift, ladj

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        ladj = -self.log_scale.sum().expand(y.shape[0])
        return (y - self.shift) * torch.exp(-self.log_scale), ladj


class GaussianFlow(nn.Module):
    """A one-layer flow N(shift, exp(log_scale)^2) with the CouplingFlow interface."""

    def __init__(self, dim: int = 2, shift: float = 0.0, log_scale: float = 0.0):
        super().__init__()
        self.dim = dim
        self.transforms = nn.ModuleList([ElementwiseAffine(dim, shift, log_scale)])

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.transforms[0](z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.transforms[0].inverse(x)

    def log_prob(self, x: Tensor) -> Tensor:
        z, ladj = self.inverse(x)
        return -0.5 * (z**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi) + ladj

    def sample(self, n: int) -> Tensor:
        p = self.transforms[0].shift
        return self.forward(torch.randn(n, self.dim, dtype=p.dtype, device=p.device))[0]


class GaussianTarget(Target):
    """N(mean, std^2 I) in 2-D, normalised."""

    name = "gaussian"

    def __init__(self, mean: float, std: float):
        self.mean, self.std = mean, std

    def _log_prob(self, x: Tensor) -> Tensor:
        return torch.as_tensor(
            stats.norm.logpdf(x.detach().double().numpy(), self.mean, self.std).sum(-1),
            dtype=x.dtype,
        )

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        return self.mean + self.std * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def gaussian_kl(m1: float, s1: float, m2: float, s2: float, dim: int = 2) -> float:
    """KL(N(m1, s1^2 I) || N(m2, s2^2 I)) by the closed form."""
    return dim * (math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)


# --- nll, bits per dim --------------------------------------------------------------------------


def test_nll_matches_scipy_and_batching_does_not_matter():
    model = GaussianFlow(shift=0.5, log_scale=math.log(2.0))
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    expected = -stats.norm.logpdf(x.double().numpy(), 0.5, 2.0).sum(-1).mean()
    assert nll(model, x) == pytest.approx(expected, rel=1e-5)
    assert nll(model, x, batch_size=7) == pytest.approx(nll(model, x), rel=1e-6)


def test_nll_follows_the_model_dtype_and_needs_no_grad():
    model = GaussianFlow().double()
    x = torch.randn(50, 2)  # float32 data, float64 model: converted
    value = nll(model, x)
    with torch.no_grad():
        expected = -float(model.log_prob(x.double()).mean())
    assert value == pytest.approx(expected, rel=1e-12)
    assert all(p.grad is None for p in model.parameters())


def test_nll_rejects_bad_input():
    with pytest.raises(TypeError, match="x"):
        nll(GaussianFlow(), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="x"):
        nll(GaussianFlow(), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="batch_size"):
        nll(GaussianFlow(), torch.zeros(3, 2), batch_size=0)
    with pytest.raises(TypeError, match="model"):
        nll(object(), torch.zeros(3, 2))


def test_bits_per_dim():
    assert bits_per_dim(3 * math.log(2.0), 3) == pytest.approx(1.0)
    # A uniform density on [0, 1)^D (nll = 0) of data scaled by 1/256 is 8 bits per dimension:
    # the entropy of a uniform byte.
    assert bits_per_dim(0.0, 64, num_levels=256) == pytest.approx(8.0)
    assert bits_per_dim(10.0, 5, num_levels=17) == pytest.approx(
        10 / (5 * math.log(2)) + math.log2(17)
    )
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="num_levels"):
        bits_per_dim(1.0, 4, num_levels=1)


# --- KL -----------------------------------------------------------------------------------------


def test_forward_kl_matches_the_closed_form():
    target = GaussianTarget(mean=1.0, std=0.5)
    model = GaussianFlow(shift=0.2, log_scale=math.log(1.5))
    est, se = kl_divergence(target, model, n=40_000, generator=torch.Generator().manual_seed(0))
    exact = gaussian_kl(1.0, 0.5, 0.2, 1.5)
    assert 0 < se < 0.05
    assert est == pytest.approx(exact, abs=4 * se)


def test_reverse_kl_matches_the_closed_form_and_is_reproducible():
    target = GaussianTarget(mean=1.0, std=0.5)
    model = GaussianFlow(shift=0.2, log_scale=math.log(0.8))
    g = lambda: torch.Generator().manual_seed(3)
    est, se = kl_divergence(target, model, n=40_000, generator=g(), reverse=True)
    assert est == pytest.approx(gaussian_kl(0.2, 0.8, 1.0, 0.5), abs=4 * se)
    assert kl_divergence(target, model, n=1000, generator=g(), reverse=True) == kl_divergence(
        target, model, n=1000, generator=g(), reverse=True
    )


def test_kl_of_identical_distributions_is_zero_with_zero_error():
    target = GaussianTarget(mean=0.0, std=1.0)
    est, se = kl_divergence(target, GaussianFlow(), n=1000)
    assert est == pytest.approx(0.0, abs=1e-5) and se == pytest.approx(0.0, abs=1e-5)


def test_kl_refuses_unnormalised_targets_and_bad_arguments():
    from cflib.targets import DoubleWell, TwoMoons

    with pytest.raises(ValueError, match="normalised"):
        kl_divergence(DoubleWell(), GaussianFlow(), n=100)
    with pytest.raises(ValueError, match="normalised"):
        kl_divergence(TwoMoons(), GaussianFlow(), n=100)
    with pytest.raises(ValueError, match="n"):
        kl_divergence(GaussianTarget(0, 1), GaussianFlow(), n=1)
    with pytest.raises(TypeError, match="generator"):
        kl_divergence(GaussianTarget(0, 1), GaussianFlow(), n=10, generator=1)


# --- ESS ----------------------------------------------------------------------------------------


def test_effective_sample_size():
    assert effective_sample_size(torch.zeros(100)) == pytest.approx(100.0)
    one_hot = torch.full((50,), -math.inf)
    one_hot[3] = 0.0
    assert effective_sample_size(one_hot) == pytest.approx(1.0)
    w = torch.tensor([1.0, 2.0, 3.0])
    assert effective_sample_size(torch.log(w)) == pytest.approx(36.0 / 14.0)
    # Shift invariant and stable for weights far outside float range.
    assert effective_sample_size(torch.log(w.double()) + 1000.0) == pytest.approx(36.0 / 14.0)
    assert effective_sample_size(torch.log(w.double()) - 1000.0) == pytest.approx(36.0 / 14.0)
    # float32: exp(-200) underflows, the logsumexp form does not (float32 rounding of -200 + log w).
    assert effective_sample_size(torch.log(w) - 200.0) == pytest.approx(36.0 / 14.0, rel=1e-4)


def test_effective_sample_size_rejects_bad_input():
    with pytest.raises(ValueError, match="log_weights"):
        effective_sample_size(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="log_weights"):
        effective_sample_size(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="log_weights"):
        effective_sample_size(torch.full((3,), -math.inf))
    with pytest.raises(TypeError, match="log_weights"):
        effective_sample_size([0.0, 1.0])


# --- training -----------------------------------------------------------------------------------


def test_training_reduces_nll_and_recovers_the_gaussian():
    torch.manual_seed(0)
    data = 1.5 + 0.5 * torch.randn(4000, 2, generator=torch.Generator().manual_seed(1))
    model = GaussianFlow()
    before = nll(model, data)
    losses = train(model, data, steps=300, batch_size=256, lr=0.05, progress=False, seed=0)
    after = nll(model, data)
    assert len(losses) == 300 and all(math.isfinite(v) for v in losses)
    assert after < before - 1.0
    # The maximum-likelihood Gaussian's NLL is the empirical one.
    best = (
        -stats.norm.logpdf(data.numpy(), data.mean(0).numpy(), data.std(0).numpy()).sum(-1).mean()
    )
    assert after == pytest.approx(best, abs=0.02)
    layer = model.transforms[0]
    torch.testing.assert_close(layer.shift.detach(), data.mean(0), atol=0.05, rtol=0)


def test_training_is_deterministic_for_a_seed():
    data = torch.randn(500, 2)
    runs = []
    for _ in range(2):
        model = GaussianFlow(shift=0.3)
        runs.append(train(model, data, steps=20, batch_size=32, lr=0.01, progress=False, seed=7))
    assert runs[0] == runs[1]
    other = train(GaussianFlow(shift=0.3), data, steps=20, batch_size=32, progress=False, seed=8)
    assert other != runs[0]


def test_training_from_a_target_sampler_and_with_a_custom_loss():
    target = GaussianTarget(mean=-1.0, std=1.0)
    model = GaussianFlow()
    losses = train(model, target, steps=150, lr=0.05, progress=False, seed=0)
    assert losses[-1] < losses[0]
    assert float(model.transforms[0].shift.detach().mean()) == pytest.approx(-1.0, abs=0.15)

    # Reverse KL without data: the loss draws its own samples from the model.
    def reverse_kl(m: nn.Module, batch: Tensor | None) -> Tensor:
        assert batch is None
        x = m.sample(256)
        return (m.log_prob(x) + 0.5 * ((x - 2.0) ** 2).sum(-1)).mean()

    model = GaussianFlow()
    train(model, None, steps=200, lr=0.05, progress=False, seed=0, loss=reverse_kl)
    assert float(model.transforms[0].shift.detach().mean()) == pytest.approx(2.0, abs=0.15)


def test_nonfinite_loss_raises_naming_the_step():
    nan_loss = lambda m, batch: -m.log_prob(batch).mean() * math.nan
    with pytest.raises(FloatingPointError, match="step 0"):
        train(GaussianFlow(), torch.randn(10, 2), steps=5, progress=False, loss=nan_loss)
    calls = []

    def blows_up_at_step_3(m: nn.Module, batch: Tensor) -> Tensor:
        calls.append(batch)
        return -m.log_prob(batch).mean() + (math.inf if len(calls) == 4 else 0.0)

    with pytest.raises(FloatingPointError, match="step 3"):
        train(GaussianFlow(), torch.randn(10, 2), steps=10, progress=False, loss=blows_up_at_step_3)


def test_progress_bar_only_when_asked(capsys):
    train(GaussianFlow(), torch.randn(10, 2), steps=3, progress=False)
    assert capsys.readouterr().err == ""
    train(GaussianFlow(), torch.randn(10, 2), steps=3, progress=True)
    assert "train" in capsys.readouterr().err


def test_callback_can_stop_and_sees_clipped_gradients():
    seen = []

    def callback(step: int, loss: float, model: nn.Module) -> bool:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        seen.append((step, loss, float(norm)))
        return step == 4

    model = GaussianFlow(shift=20.0)  # far from the data: large gradients
    losses = train(
        model, torch.randn(100, 2), steps=50, progress=False, clip_grad=0.1, callback=callback
    )
    assert len(losses) == 5 and [s for s, _, _ in seen] == [0, 1, 2, 3, 4]
    assert [v for _, v, _ in seen] == losses
    assert max(n for _, _, n in seen) <= 0.1 + 1e-6


def test_training_restores_eval_mode_and_moves_batches_to_the_model_dtype():
    model = GaussianFlow().double().eval()
    losses = train(model, torch.randn(64, 2), steps=3, progress=False)
    assert not model.training and len(losses) == 3


def test_train_rejects_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        train(object(), torch.randn(4, 2), steps=1)
    with pytest.raises(ValueError, match="steps"):
        train(GaussianFlow(), torch.randn(4, 2), steps=0)
    with pytest.raises(ValueError, match="data"):
        train(GaussianFlow(), None, steps=1)
    with pytest.raises(TypeError, match="data"):
        train(GaussianFlow(), 3, steps=1, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(GaussianFlow(), torch.randn(4, 2), steps=1, lr=0)


def test_with_the_real_coupling_flow():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cflib.flow import CouplingFlow
    from cflib.plots import plot_layers
    from cflib.targets import EightGaussians

    target = EightGaussians()
    held_out = target.sample(2000, generator=torch.Generator().manual_seed(1))
    runs, nlls = [], []
    for _ in range(2):
        torch.manual_seed(0)  # the weights' initialisation
        flow = CouplingFlow(2, num_layers=4, coupling="affine", hidden_dim=32)
        before = nll(flow, held_out)
        runs.append(train(flow, target, steps=100, batch_size=128, lr=5e-3, progress=False, seed=0))
        nlls.append((before, nll(flow, held_out)))
    assert runs[0] == runs[1] and nlls[0] == nlls[1]
    before, after = nlls[0]
    assert after < before - 0.5
    # KL(p || q) = NLL - H(p): the two estimates agree up to Monte Carlo error.
    kl, se = kl_divergence(target, flow, n=4000, generator=torch.Generator().manual_seed(2))
    entropy = -float(target.log_prob(held_out).mean())
    assert kl == pytest.approx(after - entropy, abs=5 * se + 0.05)
    fig = plot_layers(flow, torch.randn(100, 2))
    assert len(fig.axes) == len(flow.transforms) + 1
    plt.close(fig)
