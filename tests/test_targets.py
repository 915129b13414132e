"""Targets: exact normalisation, samples that follow the density, supports, dtypes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cflib.targets import (
    TARGETS,
    Checkerboard,
    DoubleWell,
    EightGaussians,
    MuellerBrown,
    Rings,
    Target,
    TwoMoons,
    UniformDisk,
    UniformSquare,
    get_target,
    load_digits,
)

EXACT = [Checkerboard(), EightGaussians(), Rings(), UniformDisk(), UniformSquare()]


def midpoint_integral(log_prob, lo: float, hi: float, n: int, chunk: int = 1 << 20) -> float:
    """Midpoint rule for the integral of exp(log_prob) over [lo, hi]^2 with n x n cells (float64)."""
    h = (hi - lo) / n
    c = lo + (torch.arange(n, dtype=torch.float64) + 0.5) * h
    gx, gy = torch.meshgrid(c, c, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    total = sum(float(torch.exp(log_prob(p)).sum()) for p in pts.split(chunk))
    return total * h * h


def polar_integral(log_prob, r_pieces: list[tuple[float, float]], nodes: int = 200) -> float:
    """Integral of exp(log_prob) in polar coordinates: Gauss-Legendre in r on each piece,
    the trapezoid rule in the angle (exact for trigonometric polynomials of degree < 2*nodes)."""
    gl_x, gl_w = np.polynomial.legendre.leggauss(nodes)
    theta = torch.arange(2 * nodes, dtype=torch.float64) * (2 * math.pi / (2 * nodes))
    total = 0.0
    for a, b in r_pieces:
        r = torch.as_tensor(0.5 * (b - a) * gl_x + 0.5 * (a + b))
        w = torch.as_tensor(0.5 * (b - a) * gl_w)
        rr, tt = torch.meshgrid(r, theta, indexing="ij")
        pts = torch.stack([rr * torch.cos(tt), rr * torch.sin(tt)], dim=-1).reshape(-1, 2)
        p = torch.exp(log_prob(pts)).reshape(rr.shape)
        total += float(((p * rr).mean(dim=1) * 2 * math.pi * w).sum())
    return total


# --- normalisation -------------------------------------------------------------------------


def test_checkerboard_and_square_integrate_to_one_exactly():
    # Grid lines fall on every cell edge and on the square's sides, so the midpoint sum of the
    # piecewise-constant density is exact up to rounding.
    board = Checkerboard()  # edges at -2, -1, 0, 1, 2
    assert midpoint_integral(board.log_prob, -2.5, 2.5, 1000) == pytest.approx(1.0, abs=1e-9)
    square = UniformSquare(half_width=1.0)  # sides at +-1
    assert midpoint_integral(square.log_prob, -1.5, 1.5, 600) == pytest.approx(1.0, abs=1e-9)
    assert midpoint_integral(Checkerboard(6, 3.0).log_prob, -3, 3, 600) == pytest.approx(1.0)


def test_disk_integrates_to_one():
    # Gauss-Legendre on [0, R] and [R, 2R] never straddles the jump at r = R: exact.
    disk = UniformDisk(radius=1.5)
    assert polar_integral(disk.log_prob, [(0, 1.5), (1.5, 3.0)]) == pytest.approx(1.0, abs=1e-9)


def test_eight_gaussians_integrates_to_one():
    # Smooth and rapidly decaying: the midpoint rule converges faster than any power of h, and the
    # mass outside [-6, 6]^2 (>= 13 std from every centre) is below 1e-30.
    target = EightGaussians()
    assert midpoint_integral(target.log_prob, -6, 6, 1200) == pytest.approx(1.0, abs=1e-8)


def test_rings_integrate_to_one():
    target = Rings()
    # Polar Gauss-Legendre: smooth in r; the radial mass beyond r = 5 is 13 std past the last ring.
    pieces = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0)]
    assert polar_integral(target.log_prob, pieces) == pytest.approx(1.0, abs=1e-9)
    # Cartesian midpoint sum (the density's 1/r peak at 0 carries mass below e^-22).
    assert midpoint_integral(target.log_prob, -4.5, 4.5, 1500) == pytest.approx(1.0, abs=1e-4)


def test_rings_radial_density_is_the_truncated_normal():
    from scipy import stats

    target = Rings(radii=(0.3,), std=0.4)  # truncation matters: Phi(0.75) = 0.77
    r = torch.linspace(0.01, 3.0, 50, dtype=torch.float64)
    expected = stats.truncnorm.logpdf(r.numpy(), a=-0.3 / 0.4, b=np.inf, loc=0.3, scale=0.4)
    np.testing.assert_allclose(target.radial_log_prob(r).numpy(), expected, rtol=1e-10)
    x = torch.stack([r, torch.zeros_like(r)], dim=-1)
    np.testing.assert_allclose(
        target.log_prob(x).numpy(), expected - np.log(2 * np.pi * r.numpy()), rtol=1e-10
    )
    assert polar_integral(target.log_prob, [(0, 1), (1, 4)]) == pytest.approx(1.0, abs=1e-7)


def test_double_well_normaliser_and_grid_agree():
    target = DoubleWell()
    log_z = target.log_normalizer()
    normalised = lambda x: target.log_prob(x) - log_z
    # Smooth integrand, negligible mass outside [-6, 6]^2: midpoint error far below 1e-6.
    assert midpoint_integral(normalised, -6, 6, 1200) == pytest.approx(1.0, abs=1e-6)


def test_mueller_brown_energy_matches_literature_minima():
    # Müller & Brown (1979): minima A, B, C and their energies.
    target = MuellerBrown()
    x = torch.tensor([[-0.558, 1.442], [0.623, 0.028], [-0.050, 0.467]], dtype=torch.float64)
    np.testing.assert_allclose(target.energy(x).numpy(), [-146.70, -108.17, -80.77], atol=0.01)
    (grad,) = torch.autograd.grad(target.energy(x.requires_grad_()).sum(), x)
    assert grad.abs().max() < 0.5  # stationary to the printed precision
    assert torch.allclose(target.log_prob(x), -target.energy(x) / target.temperature)
    assert not target.normalized


def test_mueller_brown_normaliser_converges():
    target = MuellerBrown()
    coarse, fine = target.log_normalizer(512), target.log_normalizer(2048)
    assert fine == pytest.approx(coarse, abs=1e-3)
    assert midpoint_integral(
        lambda x: target.log_prob(x) - fine, *target.bounds, 700
    ) == pytest.approx(1.0, abs=1e-3)


# --- samples follow the density -----------------------------------------------------------


def bin_probabilities(log_prob, lo: float, hi: float, bins: int, sub: int) -> np.ndarray:
    """Mass of each of bins x bins squares, by a midpoint sum with sub x sub points per bin."""
    n = bins * sub
    h = (hi - lo) / n
    c = lo + (torch.arange(n, dtype=torch.float64) + 0.5) * h
    gx, gy = torch.meshgrid(c, c, indexing="ij")
    p = torch.exp(log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], -1))).reshape(n, n)
    return (p.reshape(bins, sub, bins, sub).sum(dim=(1, 3)) * h * h).numpy()


@pytest.mark.parametrize(
    "target",
    [*EXACT, DoubleWell(), MuellerBrown()],
    ids=lambda t: t.name,
)
def test_histogram_of_samples_matches_density(target: Target):
    n, bins = 200_000, 16
    x = target.sample(n, generator=torch.Generator().manual_seed(1)).double()
    lo, hi = target.bounds
    log_z = 0.0 if target.normalized else target.log_normalizer()
    expected = n * bin_probabilities(lambda p: target.log_prob(p) - log_z, lo, hi, bins, 24)
    counts, _, _ = np.histogram2d(
        x[:, 0].numpy(), x[:, 1].numpy(), bins=bins, range=[[lo, hi], [lo, hi]]
    )
    keep = expected > 20
    z = (counts[keep] - expected[keep]) / np.sqrt(expected[keep])
    # Chi-square with k cells: mean k, sd sqrt(2k); allow 6 sd (bin masses are accurate to <1%).
    k = int(keep.sum())
    assert (z**2).sum() < k + 6 * math.sqrt(2 * k), (z**2).sum()
    # Almost all samples fall in the plotting box.
    assert counts.sum() > 0.998 * n


def test_mean_log_prob_of_samples_is_minus_the_entropy():
    # Rings: E_p[log p] by polar quadrature, independent of the sampler, against the sample mean.
    target = Rings()
    pieces = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0)]
    expected = _polar_expectation_of_log_prob(target, pieces)
    x = target.sample(100_000, generator=torch.Generator().manual_seed(2)).double()
    values = target.log_prob(x)
    se = float(values.std()) / math.sqrt(len(values))
    assert float(values.mean()) == pytest.approx(expected, abs=4 * se)


def _polar_expectation_of_log_prob(target: Target, pieces, nodes: int = 200) -> float:
    gl_x, gl_w = np.polynomial.legendre.leggauss(nodes)
    theta = torch.arange(2 * nodes, dtype=torch.float64) * (2 * math.pi / (2 * nodes))
    total = 0.0
    for a, b in pieces:
        r = torch.as_tensor(0.5 * (b - a) * gl_x + 0.5 * (a + b))
        w = torch.as_tensor(0.5 * (b - a) * gl_w)
        rr, tt = torch.meshgrid(r, theta, indexing="ij")
        pts = torch.stack([rr * torch.cos(tt), rr * torch.sin(tt)], dim=-1).reshape(-1, 2)
        lp = target.log_prob(pts).reshape(rr.shape)
        total += float(((torch.exp(lp) * lp * rr).mean(dim=1) * 2 * math.pi * w).sum())
    return total


def test_double_well_marginals_are_exact():
    target = DoubleWell(temperature=2.0, d=4.0)
    x = target.sample(50_000, generator=torch.Generator().manual_seed(3)).double()
    # x2 ~ N(0, T/d) exactly.
    assert float(x[:, 1].std()) == pytest.approx(math.sqrt(2.0 / 4.0), rel=0.02)
    # x1: mean against a 1-D quadrature of its density.
    from scipy import integrate

    u = lambda t: (t**4 / 4 - 3 * t**2 + t) / 2.0
    z = integrate.quad(lambda t: math.exp(-u(t)), -8, 8)[0]
    mean = integrate.quad(lambda t: t * math.exp(-u(t)), -8, 8)[0] / z
    assert float(x[:, 0].mean()) == pytest.approx(
        mean, abs=5 * float(x[:, 0].std()) / math.sqrt(len(x))
    )


def test_samples_are_reproducible_with_a_generator():
    for name in TARGETS:
        target = get_target(name)
        a = target.sample(64, generator=torch.Generator().manual_seed(7))
        b = target.sample(64, generator=torch.Generator().manual_seed(7))
        c = target.sample(64, generator=torch.Generator().manual_seed(8))
        assert a.shape == (64, 2) and a.dtype == torch.get_default_dtype()
        assert torch.equal(a, b) and not torch.equal(a, c), name
    assert Checkerboard().sample(0).shape == (0, 2)


def test_two_moons_samples_lie_on_the_arcs_and_log_prob_is_documented_missing():
    target = TwoMoons(noise=0.0)
    x = target.sample(1000, generator=torch.Generator().manual_seed(0)).double()
    x = x + torch.tensor([0.5, 0.25], dtype=torch.float64)
    upper = (torch.linalg.vector_norm(x, dim=-1) - 1).abs() < 1e-5
    lower = (
        torch.linalg.vector_norm(x - torch.tensor([1.0, 0.5], dtype=torch.float64), dim=-1) - 1
    ).abs() < 1e-5
    assert bool((upper | lower).all())
    assert 400 < int(upper.sum()) < 600
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        TwoMoons().log_prob(torch.zeros(3, 2))


# --- supports, dtype, input checks ----------------------------------------------------------


def test_minus_infinity_outside_support():
    board = Checkerboard()
    inside = torch.tensor([[-1.5, -1.5], [0.5, 0.5], [-0.5, 1.5]])
    white = torch.tensor([[-1.5, -0.5], [0.5, -0.5]])
    outside = torch.tensor([[2.5, 0.0], [-2.0, -2.5], [2.0, 1.5]])
    assert torch.allclose(board.log_prob(inside), torch.full((3,), -math.log(8.0)))
    assert torch.isneginf(board.log_prob(white)).all()
    assert torch.isneginf(board.log_prob(outside)).all()
    disk = UniformDisk(2.0)
    lp = disk.log_prob(torch.tensor([[0.0, 0.0], [1.99, 0.0], [1.5, 1.5], [0.0, -2.01]]))
    assert torch.allclose(lp[:2], torch.full((2,), -math.log(4 * math.pi)))
    assert torch.isneginf(lp[2:]).all()
    square = UniformSquare(0.5)
    lp = square.log_prob(torch.tensor([[0.5, -0.5], [0.0, 0.2], [0.51, 0.0], [0.0, -0.6]]))
    assert torch.allclose(lp[:2], torch.zeros(2)) and torch.isneginf(lp[2:]).all()


def test_rings_origin_is_plus_infinity():
    assert torch.isposinf(Rings().log_prob(torch.zeros(1, 2))).all()


@pytest.mark.parametrize("name", [n for n in TARGETS if n != "two_moons"])
def test_dtype_follows_input(name: str):
    target = get_target(name)
    x64 = target.sample(32, generator=torch.Generator().manual_seed(0)).double()
    lp64 = target.log_prob(x64)
    lp32 = target.log_prob(x64.float())
    assert lp64.dtype == torch.float64 and lp32.dtype == torch.float32
    assert lp64.shape == (32,)
    torch.testing.assert_close(lp32.double(), lp64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "target", [EightGaussians(), Rings(), DoubleWell(), MuellerBrown()], ids=lambda t: t.name
)
def test_log_prob_gradients_are_correct(target: Target):
    x = target.sample(5, generator=torch.Generator().manual_seed(0)).double().requires_grad_()
    assert torch.autograd.gradcheck(target.log_prob, (x,))


def test_double_well_energy_gradient_is_analytic():
    target = DoubleWell(a=1.0, b=6.0, c=1.0, d=2.0)
    x = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(target.energy(x).sum(), x)
    x1, x2 = x.detach().unbind(-1)
    torch.testing.assert_close(grad, torch.stack([x1**3 - 6 * x1 + 1, 2 * x2], dim=-1))


@pytest.mark.parametrize("name", [n for n in TARGETS if n != "two_moons"])
def test_bad_input_is_rejected_naming_the_argument(name: str):
    target = get_target(name)
    with pytest.raises(TypeError, match="x"):
        target.log_prob(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="x"):
        target.log_prob(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="x"):
        target.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="x"):
        target.log_prob(torch.zeros(2))
    with pytest.raises(ValueError, match="n"):
        target.sample(-1)
    with pytest.raises(TypeError, match="generator"):
        target.sample(3, generator=0)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="std"):
        EightGaussians(std=0.0)
    with pytest.raises(ValueError, match="weights"):
        Rings(radii=(1.0, 2.0), weights=(1.0,))
    with pytest.raises(ValueError, match="num_cells"):
        Checkerboard(num_cells=0)
    with pytest.raises(ValueError, match="temperature"):
        MuellerBrown(temperature=-1.0)
    with pytest.raises(ValueError, match="name"):
        get_target("banana")
    with pytest.raises(TypeError, match="name"):
        get_target(3)


def test_registry_builds_every_target_with_kwargs():
    assert set(TARGETS) >= {
        "checkerboard",
        "eight_gaussians",
        "rings",
        "uniform_disk",
        "uniform_square",
        "two_moons",
        "double_well",
        "mueller_brown",
    }
    for name in TARGETS:
        target = get_target(name)
        assert isinstance(target, Target) and target.name == name
        lo, hi = target.bounds
        assert lo < hi
    assert get_target("Eight-Gaussians", std=0.5).std == 0.5
    assert get_target("uniform_disk", radius=3.0).radius == 3.0


# --- digits -----------------------------------------------------------------------------------


def test_load_digits_split_is_deterministic_and_disjoint():
    train, y_train = load_digits("train", return_labels=True)
    test, y_test = load_digits("test", return_labels=True)
    full = load_digits("all")
    assert train.shape[1:] == (1, 8, 8) and train.dtype == torch.float32
    assert len(train) + len(test) == len(full) == 1797
    assert len(test) == round(0.2 * 1797)
    assert float(full.min()) == 0.0 and float(full.max()) == 16.0
    assert torch.equal(full, full.round())
    assert torch.equal(train, load_digits("train"))
    rows = lambda t: sorted(map(tuple, t.reshape(len(t), -1).tolist()))
    assert rows(torch.cat([train, test])) == rows(full)
    assert set(y_train.tolist()) == set(range(10)) and y_test.dtype == torch.int64
    assert load_digits("test", dtype=torch.float64).dtype == torch.float64
    assert not torch.equal(load_digits("test", seed=1), test)
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
