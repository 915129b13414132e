"""Tests of cflib.splines: properties, an independent reference, a stress matrix, gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cflib.splines import piecewise_linear_spline, rational_quadratic_spline, split_spline_params

F32, F64 = torch.float32, torch.float64
MIN = 1e-3  # the default min_bin_width, min_bin_height and min_derivative


def rq_params(n, k, scale=1.0, dtype=F64, seed=0):
    """Random unnormalised (widths, heights, derivatives) for n elements with k bins."""
    g = torch.Generator().manual_seed(seed)
    shapes = ((n, k), (n, k), (n, k - 1))
    return [(torch.randn(s, generator=g, dtype=F64) * scale).to(dtype) for s in shapes]


def uniform(n, low, high, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(n, generator=g, dtype=F64)).to(dtype)


def derivative(f, x):
    """dy/dx of an elementwise map by autograd."""
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(f(x)[0].sum(), x)
    return grad


# ---------------------------------------------------------------- independent reference (numpy)


def _sizes(raw, m, bound):
    e = np.exp(raw - raw.max())
    return 2 * bound * (m + (1 - len(raw) * m) * e / e.sum())


def reference_rq(x, w, h, d, bound):
    """Textbook NSF spline for one element, written from the paper's formulas in float64."""
    if not -bound < x < bound:
        return x, 0.0
    widths, heights = _sizes(w, MIN, bound), _sizes(h, MIN, bound)
    xs = np.concatenate([[-bound], -bound + np.cumsum(widths)])
    ys = np.concatenate([[-bound], -bound + np.cumsum(heights)])
    c = math.log(math.expm1(1 - MIN))
    slopes = np.concatenate([[1.0], MIN + np.log1p(np.exp(d + c)), [1.0]])
    k = max(j for j in range(len(w)) if xs[j] <= x)
    s = heights[k] / widths[k]
    xi = (x - xs[k]) / widths[k]
    d0, d1 = slopes[k], slopes[k + 1]
    den = s + (d1 + d0 - 2 * s) * xi * (1 - xi)
    y = ys[k] + heights[k] * (s * xi**2 + d0 * xi * (1 - xi)) / den
    dydx = s**2 * (d1 * xi**2 + 2 * s * xi * (1 - xi) + d0 * (1 - xi) ** 2) / den**2
    return y, math.log(dydx)


def reference_pl(x, h, bound):
    if not -bound < x < bound:
        return x, 0.0
    q = _sizes(h, MIN, bound) / (2 * bound)
    num_bins = len(h)
    u = (x + bound) / (2 * bound) * num_bins
    k = min(int(u), num_bins - 1)
    y = -bound + 2 * bound * (q[:k].sum() + (u - k) * q[k])
    return y, math.log(num_bins * q[k])


def bisect(f, y, low, high, steps=200):
    """Solve f(x) = y for increasing scalar f by bisection (an independent inverse)."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if f(mid) < y else (low, mid)
    return 0.5 * (low + high)


@pytest.mark.parametrize("bound", [3.0, 7.5])
def test_rq_matches_reference(bound):
    n, k = 40, 6
    w, h, d = rq_params(n, k, scale=2.0, seed=3)
    x = uniform(n, -1.2 * bound, 1.2 * bound, seed=4)
    y, ladj = rational_quadratic_spline(x, w, h, d, bound=bound)
    wn, hn, dn = w.numpy(), h.numpy(), d.numpy()
    ref = np.array([reference_rq(x[i].item(), wn[i], hn[i], dn[i], bound) for i in range(n)])
    np.testing.assert_allclose(y.numpy(), ref[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ladj.numpy(), ref[:, 1], rtol=0, atol=1e-10)
    # Inverse against bisection of the reference forward map.
    xi, _ = rational_quadratic_spline(y, w, h, d, inverse=True, bound=bound)
    for i in range(0, n, 5):
        f = lambda t, i=i: reference_rq(t, wn[i], hn[i], dn[i], bound)[0]
        if abs(y[i]) < bound:
            assert xi[i].item() == pytest.approx(bisect(f, y[i].item(), -bound, bound), abs=1e-10)


def test_pl_matches_reference():
    n, k, bound = 40, 5, 2.0
    (h,) = rq_params(n, k, scale=2.0, seed=5)[1:2]
    x = uniform(n, -1.2 * bound, 1.2 * bound, seed=6)
    y, ladj = piecewise_linear_spline(x, h, bound=bound)
    ref = np.array([reference_pl(x[i].item(), h[i].numpy(), bound) for i in range(n)])
    np.testing.assert_allclose(y.numpy(), ref[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ladj.numpy(), ref[:, 1], rtol=0, atol=1e-12)


def test_inverse_quadratic_algebra_with_sympy():
    """The discriminant as a sum of squares, a = s - b, and the root solving the forward map."""
    s, d0, d1, h, eta, xi = sp.symbols("s delta_0 delta_1 h eta xi", positive=True)
    delta = d0 + d1 - 2 * s
    dy = eta * h  # y - y_k
    a = h * (s - d0) + dy * delta
    b = h * d0 - dy * delta
    c = -s * dy
    assert sp.expand(a - (h * s - b)) == 0
    squares = h**2 * ((d0 * (1 - eta) - d1 * eta) ** 2 + 4 * s**2 * eta * (1 - eta))
    assert sp.expand(b**2 - 4 * a * c - squares) == 0
    # The forward map's y - y_k at xi, put into a xi^2 + b xi + c, vanishes identically.
    forward = h * (s * xi**2 + d0 * xi * (1 - xi)) / (s + delta * xi * (1 - xi))
    quad = (a * xi**2 + b * xi + c).subs(eta, forward / h)
    assert sp.simplify(quad) == 0
    # The cancellation-free form used for b < 0 is the same root: (r - b) / 2a = 2c / (-b - r).
    root = sp.sqrt(b**2 - 4 * a * c)
    assert sp.expand((root - b) * (-b - root) - 4 * a * c) == 0


# ---------------------------------------------------------------- properties (hypothesis)

spline_cases = st.fixed_dictionaries(
    {
        "num_bins": st.integers(2, 16),
        "scale": st.floats(0.0, 4.0),
        "bound": st.sampled_from([1.0, 3.0, 10.0]),
        "seed": st.integers(0, 2**31 - 1),
    }
)


def _case(case, n=64, dtype=F64):
    w, h, d = rq_params(n, case["num_bins"], case["scale"], dtype, case["seed"])
    x = uniform(n, -1.3 * case["bound"], 1.3 * case["bound"], dtype, case["seed"] + 1)
    return x, w, h, d, case["bound"]


@settings(max_examples=40, deadline=None)
@given(spline_cases)
def test_rq_properties(case):
    x, w, h, d, bound = _case(case)
    # Monotone: sort the inputs of each row's spline by evaluating one spline on many points.
    grid = torch.linspace(-1.2 * bound, 1.2 * bound, 401, dtype=F64)
    one = [p[:1].expand(grid.numel(), -1) for p in (w, h, d)]
    y_grid, _ = rational_quadratic_spline(grid, *one, bound=bound)
    assert (y_grid.diff() >= 0).all()
    # Forward ladj = log of the autograd derivative.
    y, ladj = rational_quadratic_spline(x, w, h, d, bound=bound)
    dydx = derivative(lambda t: rational_quadratic_spline(t, w, h, d, bound=bound), x)
    torch.testing.assert_close(ladj, dydx.log(), rtol=0, atol=1e-8)
    # Inverse: ladj is minus the forward one, and dx/dy by autograd agrees.
    x_back, ladj_inv = rational_quadratic_spline(y, w, h, d, inverse=True, bound=bound)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=0, atol=1e-7)
    dxdy = derivative(lambda t: rational_quadratic_spline(t, w, h, d, inverse=True, bound=bound), y)
    torch.testing.assert_close(ladj_inv, dxdy.log(), rtol=0, atol=1e-8)
    # Input-space round trip: error <= (a few ulps of y) / (dy/dx), i.e. well conditioned points
    # come back to 1e-9 and flat spots are judged by their conditioning.
    tol = 1e-13 * (1 + y.abs()) / dydx + 1e-9
    assert ((x_back - x).abs() <= tol).all()
    # Identity tails, exactly.
    out = x.abs() >= bound
    assert torch.equal(y[out], x[out]) and torch.equal(ladj[out], torch.zeros_like(ladj[out]))
    assert ((y.abs() < bound) == ~out).all()


@settings(max_examples=30, deadline=None)
@given(spline_cases)
def test_rq_properties_float32(case):
    """Monotone, identity tails and the output-space round trip in float32."""
    x, w, h, d, bound = _case(case, n=256, dtype=F32)
    grid = torch.linspace(-1.2 * bound, 1.2 * bound, 401)
    one = [p[:1].expand(grid.numel(), -1) for p in (w, h, d)]
    assert (rational_quadratic_spline(grid, *one, bound=bound)[0].diff() >= 0).all()
    x_inv, ladj_inv = rational_quadratic_spline(x, w, h, d, inverse=True, bound=bound)
    y_back, ladj = rational_quadratic_spline(x_inv, w, h, d, bound=bound)
    assert ((y_back - x).abs() <= 1e-3 * (1 + x.abs())).all()
    assert torch.isfinite(ladj).all() and torch.isfinite(ladj_inv).all()
    out = x.abs() >= bound
    assert torch.equal(x_inv[out], x[out]) and (ladj_inv[out] == 0).all()


@settings(max_examples=25, deadline=None)
@given(spline_cases, st.sampled_from([F32, F64]))
def test_zero_parameters_give_identity(case, dtype):
    x, w, h, d, bound = _case(case, dtype=dtype)
    eps = torch.finfo(dtype).eps
    for inverse in (False, True):
        y, ladj = rational_quadratic_spline(
            x, *(torch.zeros_like(p) for p in (w, h, d)), inverse=inverse, bound=bound
        )
        torch.testing.assert_close(y, x, rtol=0, atol=8 * eps * bound)
        torch.testing.assert_close(ladj, torch.zeros_like(x), rtol=0, atol=8 * eps)
        y, ladj = piecewise_linear_spline(x, torch.zeros_like(w), inverse=inverse, bound=bound)
        torch.testing.assert_close(y, x, rtol=0, atol=8 * eps * bound)
        torch.testing.assert_close(ladj, torch.zeros_like(x), rtol=0, atol=8 * eps)


@settings(max_examples=40, deadline=None)
@given(spline_cases)
def test_pl_properties(case):
    x, w, _, _, bound = _case(case)
    grid = torch.linspace(-1.2 * bound, 1.2 * bound, 401, dtype=F64)
    y_grid, _ = piecewise_linear_spline(grid, w[:1].expand(grid.numel(), -1), bound=bound)
    assert (y_grid.diff() >= 0).all()
    y, ladj = piecewise_linear_spline(x, w, bound=bound)
    dydx = derivative(lambda t: piecewise_linear_spline(t, w, bound=bound), x)
    torch.testing.assert_close(ladj, dydx.log(), rtol=0, atol=1e-8)
    x_back, ladj_inv = piecewise_linear_spline(y, w, inverse=True, bound=bound)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-9)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=0, atol=1e-9)
    out = x.abs() >= bound
    assert torch.equal(y[out], x[out]) and (ladj[out] == 0).all()


# ---------------------------------------------------------------- continuity


def _knot_positions(raw, bound):
    """Knots of one element from the numpy reference normalisation, interior and ends."""
    return -bound + np.concatenate([[0.0], np.cumsum(_sizes(raw.numpy(), MIN, bound))])


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_rq_continuous_at_knots_and_bound(scale):
    """Values agree on both sides of every knot and of +-B, and the slope on both sides is the
    knot's derivative (the RQ spline is C^1; 1 at +-B, matching the identity tails)."""
    k, bound, gap = 7, 3.0, 1e-13
    w, h, d = rq_params(1, k, scale, seed=11)
    knots = torch.from_numpy(_knot_positions(w[0], bound))
    pts = torch.cat([knots - gap, knots + gap])
    y, ladj = rational_quadratic_spline(pts, *(p.expand(pts.numel(), -1) for p in (w, h, d)))
    y_left, y_right = y.chunk(2)
    slope = ladj.exp().max()
    assert ((y_right - y_left).abs() <= 2 * gap * slope + 1e-12).all()
    c = math.log(math.expm1(1 - MIN))
    knot_slopes = torch.cat(
        [torch.ones(1), MIN + torch.nn.functional.softplus(d[0] + c), torch.ones(1)]
    )
    for side in ladj.chunk(2):
        torch.testing.assert_close(side, knot_slopes.log(), rtol=0, atol=1e-6)
    # The ends map onto themselves.
    torch.testing.assert_close(y_right[0], torch.tensor(-bound, dtype=F64), rtol=0, atol=1e-9)
    torch.testing.assert_close(y_left[-1], torch.tensor(bound, dtype=F64), rtol=0, atol=1e-9)


def test_pl_continuous_at_knots():
    k, bound, gap = 6, 2.0, 1e-10
    (h,) = rq_params(1, k, 3.0, seed=12)[1:2]
    knots = torch.linspace(-bound, bound, k + 1, dtype=F64)
    pts = torch.cat([knots - gap, knots + gap])
    y, ladj = piecewise_linear_spline(pts, h.expand(pts.numel(), -1), bound=bound)
    y_left, y_right = y.chunk(2)
    assert ((y_right - y_left).abs() <= 2 * gap * ladj.exp().max() + 1e-12).all()
    # Knot values are the cumulative bin probabilities (checked against the reference).
    q = _sizes(h[0].numpy(), MIN, bound)
    expected = -bound + np.concatenate([[0.0], np.cumsum(q)])
    np.testing.assert_allclose(y_right[:-1].numpy(), expected[:-1], atol=1e-8)


# ---------------------------------------------------------------- stress matrix

SCALES = [1, 10, 100, 1000]


def stress_points(bound, dtype, n=1500, seed=0):
    """Uniform points on [-1.2B, 1.2B] plus +-B exactly, just inside/outside, 0 and far tails."""
    b = torch.tensor(bound, dtype=dtype)
    inf = torch.tensor(math.inf, dtype=dtype)
    special = torch.stack(
        [
            b,
            -b,
            torch.nextafter(b, -inf),
            torch.nextafter(-b, inf),
            torch.nextafter(b, inf),
            torch.nextafter(-b, -inf),
            torch.zeros((), dtype=dtype),
            b * 1e6,
            -b * 1e6,
        ]
    )
    return torch.cat([uniform(n, -1.2 * bound, 1.2 * bound, dtype, seed), special])


def round_trip_errors(x, w, h, d, bound):
    """Output-space round trip f(f^-1(y)) - y, with the ulp-induced part of it."""
    x_inv, ladj_inv = rational_quadratic_spline(x, w, h, d, inverse=True, bound=bound)
    y_back, ladj = rational_quadratic_spline(x_inv, w, h, d, bound=bound)
    for t in (x_inv, ladj_inv, y_back, ladj):
        assert torch.isfinite(t).all()
    ulp = torch.nextafter(x_inv.abs(), torch.tensor(math.inf, dtype=x.dtype)) - x_inv.abs()
    return (y_back - x).abs(), ladj.exp() * ulp


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("bound", [3.0, 50.0])
@pytest.mark.parametrize("scale", SCALES)
def test_stress_matrix(dtype, bound, scale):
    tol = 1e-3 if dtype == F32 else 1e-10
    for k, seed in ((2, 1), (8, 2), (32, 3)):
        x = stress_points(bound, dtype, seed=seed)
        w, h, d = rq_params(x.numel(), k, scale, dtype, seed)
        y, ladj = rational_quadratic_spline(x, w, h, d, bound=bound)
        assert torch.isfinite(y).all() and torch.isfinite(ladj).all()
        assert y.dtype == dtype and ladj.dtype == dtype
        assert (y[x.abs() < bound].abs() <= bound).all()
        err, ulp_err = round_trip_errors(x, w, h, d, bound)
        # Rounding x_inv to the dtype costs up to half an ulp times the slope, which with slopes
        # ~2000 exceeds 1e-3 for |x| ~ 50 in float32; the bound allows for that unavoidable part.
        assert (err <= tol * (1 + x.abs()) + 2 * ulp_err).all()
        if bound == 3.0 or dtype == F64:
            assert (err <= tol * (1 + x.abs())).all()


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("scale", [1e6, 1e30])
def test_absurd_parameters_stay_finite(dtype, scale):
    x = stress_points(3.0, dtype, n=500)
    w, h, d = rq_params(x.numel(), 8, scale, dtype)
    for inverse in (False, True):
        for y, ladj in (
            rational_quadratic_spline(x, w, h, d, inverse=inverse),
            piecewise_linear_spline(x, h, inverse=inverse),
        ):
            assert torch.isfinite(y).all() and torch.isfinite(ladj).all()


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("bound", [3.0, 50.0])
def test_whole_batch_in_tails(dtype, bound):
    x = torch.cat([uniform(50, bound, 10 * bound, dtype), -uniform(50, bound, 1e4, dtype)])
    w, h, d = rq_params(x.numel(), 8, 100.0, dtype)
    for inverse in (False, True):
        for y, ladj in (
            rational_quadratic_spline(x, w, h, d, inverse=inverse, bound=bound),
            piecewise_linear_spline(x, h, inverse=inverse, bound=bound),
        ):
            assert torch.equal(y, x) and torch.equal(ladj, torch.zeros_like(x))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("bound", [3.0, 50.0])
@pytest.mark.parametrize("scale", SCALES)
def test_pl_stress(dtype, bound, scale):
    tol = 1e-3 if dtype == F32 else 1e-10
    x = stress_points(bound, dtype)
    (h,) = rq_params(x.numel(), 8, scale, dtype)[1:2]
    x_inv, ladj_inv = piecewise_linear_spline(x, h, inverse=True, bound=bound)
    y_back, ladj = piecewise_linear_spline(x_inv, h, bound=bound)
    for t in (x_inv, ladj_inv, y_back, ladj):
        assert torch.isfinite(t).all()
    # The steepest slope is K (1 - (K - 1) m) ~ 8: the ulp term stays below tol here.
    assert ((y_back - x).abs() <= tol * (1 + x.abs())).all()


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("inverse", [False, True])
def test_gradcheck(inverse):
    torch.manual_seed(0)
    x = uniform(9, -4.0, 4.0, seed=7).requires_grad_()
    params = [p.requires_grad_() for p in rq_params(9, 5, 1.0, seed=8)]
    f = lambda *a: rational_quadratic_spline(*a, inverse=inverse)
    assert torch.autograd.gradcheck(f, (x, *params))
    g = lambda x, h: piecewise_linear_spline(x, h, inverse=inverse)
    assert torch.autograd.gradcheck(g, (x, params[1]))


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("scale", [1, 1000, 1e30])
def test_gradients_finite_with_tails_and_huge_parameters(dtype, scale):
    x = stress_points(3.0, dtype, n=300).requires_grad_()
    params = [p.requires_grad_() for p in rq_params(x.numel(), 8, scale, dtype)]
    for inverse in (False, True):
        y, ladj = rational_quadratic_spline(x, *params, inverse=inverse)
        grads = torch.autograd.grad(y.sum() + ladj.sum(), [x, *params])
        assert all(torch.isfinite(g).all() for g in grads)
        y, ladj = piecewise_linear_spline(x, params[1], inverse=inverse)
        grads = torch.autograd.grad(y.sum() + ladj.sum(), [x, params[1]])
        assert all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------- shapes and layout


def test_shapes_views_and_split():
    k = 4
    params = torch.randn(3, 5, 2, 3 * k - 1, dtype=F64)
    x = torch.randn(3, 5, 2, dtype=F64) * 2
    w, h, d = split_spline_params(params, k)
    assert w.shape == h.shape == (3, 5, 2, k) and d.shape == (3, 5, 2, k - 1)
    assert w.data_ptr() == params.data_ptr()  # views, no copy
    y, ladj = rational_quadratic_spline(x, w, h, d)
    assert y.shape == ladj.shape == x.shape
    y2, ladj2 = rational_quadratic_spline(x, w.contiguous(), h.contiguous(), d.contiguous())
    assert torch.equal(y, y2) and torch.equal(ladj, ladj2)
    # A scalar x and an empty batch.
    y0, l0 = rational_quadratic_spline(x[0, 0, 0], w[0, 0, 0], h[0, 0, 0], d[0, 0, 0])
    assert y0.shape == l0.shape == () and y0 == y[0, 0, 0]
    ye, le = rational_quadratic_spline(x[:0], w[:0], h[:0], d[:0])
    assert ye.shape == le.shape == (0, 5, 2)
    yp, lp = piecewise_linear_spline(x, h)
    assert yp.shape == lp.shape == x.shape


# ---------------------------------------------------------------- bad input


def _good(n=4, k=3):
    x = torch.zeros(n)
    return x, *rq_params(n, k, dtype=F32)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: {**a, "widths": a["widths"][:2]}, "widths: expected shape"),
        (lambda a: {**a, "heights": a["heights"][:, :2]}, "heights: expected last dimension 3"),
        (lambda a: {**a, "derivatives": a["derivatives"][:, :1]}, "derivatives: expected last"),
        (lambda a: {**a, "derivatives": a["derivatives"][:3]}, "derivatives: expected shape"),
        (lambda a: {**a, "x": a["x"][:, None]}, "widths: expected shape"),
        (
            lambda a: {**a, "widths": a["widths"][:, :1], "heights": a["heights"][:, :1]},
            "widths: expected at least 2 bins",
        ),
        (lambda a: {**a, "bound": 0.0}, "bound: expected a finite number > 0"),
        (lambda a: {**a, "bound": -1.0}, "bound"),
        (lambda a: {**a, "bound": math.inf}, "bound"),
        (lambda a: {**a, "bound": math.nan}, "bound"),
        (lambda a: {**a, "min_bin_width": 0.34}, "min_bin_width: expected a number in"),
        (lambda a: {**a, "min_bin_width": 0.0}, "min_bin_width"),
        (lambda a: {**a, "min_bin_height": 1.0 / 3}, "min_bin_height"),
        (lambda a: {**a, "min_bin_height": -1e-3}, "min_bin_height"),
        (lambda a: {**a, "min_derivative": 0.0}, "min_derivative: expected a number in"),
        (lambda a: {**a, "min_derivative": 1.0}, "min_derivative"),
        (
            lambda a: {**a, "widths": a["widths"].index_fill(1, torch.tensor([0]), math.nan)},
            "widths: contains",
        ),
        (
            lambda a: {**a, "heights": a["heights"].index_fill(1, torch.tensor([1]), math.inf)},
            "heights: contains",
        ),
        (
            lambda a: {
                **a,
                "derivatives": a["derivatives"].index_fill(1, torch.tensor([0]), -math.inf),
            },
            "derivatives: contains",
        ),
        (lambda a: {**a, "x": a["x"].index_fill(0, torch.tensor([2]), math.nan)}, "x: contains"),
        (lambda a: {**a, "x": a["x"].index_fill(0, torch.tensor([2]), -math.inf)}, "x: contains"),
    ],
)
def test_rq_bad_input_raises_value_error(change, match):
    x, w, h, d = _good()
    args = change({"x": x, "widths": w, "heights": h, "derivatives": d})
    for inverse in (False, True):
        with pytest.raises(ValueError, match=match):
            rational_quadratic_spline(**args, inverse=inverse)


def test_rq_bad_types():
    x, w, h, d = _good()
    with pytest.raises(TypeError, match="heights: expected dtype"):
        rational_quadratic_spline(x, w, h.double(), d)
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        rational_quadratic_spline(x.long(), w, h, d)
    with pytest.raises(TypeError, match=r"widths: expected a torch\.Tensor"):
        rational_quadratic_spline(x, w.tolist(), h, d)


def test_finite_check_does_not_misfire_when_a_sum_overflows():
    x, w, _, d = _good(n=4, k=3)
    huge = torch.full_like(w, 3e38)  # finite, but the sum of its elements overflows float32
    y, ladj = rational_quadratic_spline(x, huge, huge, d)
    assert torch.isfinite(y).all() and torch.isfinite(ladj).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heights": torch.zeros(4, 1)}, "heights: expected at least 2 bins"),
        ({"heights": torch.zeros(3, 3)}, "heights: expected shape"),
        ({"bound": 0}, "bound"),
        ({"min_bin_height": 0.5}, "min_bin_height"),
        ({"heights": torch.full((4, 3), math.nan)}, "heights: contains"),
        ({"x": torch.full((4,), math.inf)}, "x: contains"),
    ],
)
def test_pl_bad_input_raises_value_error(kwargs, match):
    args = {"x": torch.zeros(4), "heights": torch.zeros(4, 3), **kwargs}
    with pytest.raises(ValueError, match=match):
        piecewise_linear_spline(**args)


def test_split_bad_input():
    with pytest.raises(ValueError, match="params: expected a last dimension of size"):
        split_spline_params(torch.zeros(2, 10), 4)
    with pytest.raises(ValueError, match="num_bins: expected an integer >= 2"):
        split_spline_params(torch.zeros(2, 2), 1)
