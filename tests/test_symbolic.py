"""Symbolic couplings and the rational-quadratic bin, checked against autograd and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from cflib.symbolic import (
    coupling_jacobian,
    is_lower_block_triangular,
    log_abs_det,
    rq_spline_symbolic,
    substitute_conditioners,
    zero_block,
)


def test_affine_determinant_is_exp_of_the_sum_of_scales():
    c = coupling_jacobian("affine", dim=4, split=2)
    s1, s2 = (f(*c.z[:2]) for f in c.conditioners["s"])
    assert sp.simplify(c.jacobian.det() - sp.exp(s1 + s2)) == 0
    assert sp.simplify(log_abs_det(c.jacobian) - (s1 + s2)) == 0


def test_additive_determinant_is_one():
    c = coupling_jacobian("additive", dim=5, split=2)
    assert sp.simplify(c.jacobian.det()) == 1
    assert log_abs_det(c.jacobian) == 0


@pytest.mark.parametrize("kind", ["additive", "affine", "elementwise"])
@pytest.mark.parametrize(("dim", "split"), [(4, 2), (5, 2), (3, 1)])
def test_zero_block_is_exactly_zero(kind: str, dim: int, split: int):
    c = coupling_jacobian(kind, dim=dim, split=split)
    block = zero_block(c.jacobian, split)
    assert block.shape == (split, dim - split)
    assert block.is_zero_matrix is True
    assert is_lower_block_triangular(c.jacobian, split)
    # The identity block and the diagonal lower-right block.
    assert c.jacobian[:split, :split] == sp.eye(split)
    lower_right = c.jacobian[split:, split:]
    assert all(
        lower_right[i, j] == 0 for i in range(dim - split) for j in range(dim - split) if i != j
    )
    # The dense block dy_b/dz_a really depends on z_a (it is not zero).
    assert not c.jacobian[split:, :split].is_zero_matrix


def test_a_full_matrix_is_not_block_triangular():
    z1, z2 = sp.symbols("z1 z2")
    assert not is_lower_block_triangular(sp.Matrix([[1, z1], [z2, 1]]), 1)
    assert is_lower_block_triangular(sp.Matrix([[1, z1 - z1], [z2, 1]]), 1)


def test_elementwise_log_det_is_the_sum_of_log_derivatives():
    c = coupling_jacobian("elementwise", dim=4, split=2)
    (tau,) = c.conditioners["tau"]
    theta = [f(*c.z[:2]) for f in c.conditioners["theta"]]
    expected = sum(
        sp.log(sp.Abs(sp.Derivative(tau(c.z[2 + i], theta[i]), c.z[2 + i]))) for i in range(2)
    )
    assert sp.simplify(log_abs_det(c.jacobian) - expected) == 0


def test_substituted_affine_jacobian_matches_autograd():
    c = coupling_jacobian("affine", dim=4, split=2)
    z1, z2 = c.z[:2]
    exprs = {
        "s1": sp.tanh(z1 + 2 * z2),
        "s2": z1 * z2 / 3,
        "t1": sp.sin(z1) - z2**2,
        "t2": sp.exp(-z1) * z2,
    }
    jac = substitute_conditioners(c.jacobian, c, **exprs)
    y = substitute_conditioners(c.y, c, **exprs)
    assert not jac.atoms(sp.Derivative)

    def numeric(z: torch.Tensor) -> torch.Tensor:
        a, b, x3, x4 = z
        s1, s2 = torch.tanh(a + 2 * b), a * b / 3
        t1, t2 = torch.sin(a) - b**2, torch.exp(-a) * b
        return torch.stack([a, b, x3 * torch.exp(s1) + t1, x4 * torch.exp(s2) + t2])

    point = torch.tensor([0.3, -0.7, 1.1, 0.4], dtype=torch.float64)
    values = dict(zip(c.z, point.tolist(), strict=True))
    expected = torch.autograd.functional.jacobian(numeric, point)
    np.testing.assert_allclose(
        np.array(jac.subs(values), dtype=float), expected.numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.array(y.subs(values), dtype=float).ravel(), numeric(point).numpy(), rtol=1e-12
    )
    log_det = substitute_conditioners(log_abs_det(c.jacobian), c, **exprs)
    assert float(log_det.subs(values)) == pytest.approx(
        float(torch.linalg.slogdet(expected).logabsdet), rel=1e-12
    )


def test_substitute_rejects_unknown_names():
    c = coupling_jacobian("additive")
    with pytest.raises(ValueError, match="s1"):
        substitute_conditioners(c.jacobian, c, s1=c.z[0])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        coupling_jacobian("spline")
    with pytest.raises(ValueError, match="split"):
        coupling_jacobian("affine", dim=4, split=4)
    with pytest.raises(ValueError, match="dim"):
        coupling_jacobian("affine", dim=1, split=1)
    with pytest.raises(ValueError, match="split"):
        zero_block(sp.eye(3), 0)


def test_rq_bin_derivative_matches_differentiation_and_hits_the_knots():
    rq = rq_spline_symbolic()
    S = rq.symbols
    x, x_k, w = S["x"], S["x_k"], S["w"]
    assert sp.simplify(sp.diff(rq.value, x) - rq.derivative) == 0
    assert sp.simplify(rq.value.subs(x, x_k) - S["y_k"]) == 0
    assert sp.simplify(rq.value.subs(x, x_k + w) - (S["y_k"] + S["h"])) == 0
    assert sp.simplify(rq.derivative.subs(x, x_k) - S["d_k"]) == 0
    assert sp.simplify(rq.derivative.subs(x, x_k + w) - S["d_k1"]) == 0
    # Equal end derivatives equal to the slope h/w give the straight line.
    line = rq.value.subs({S["d_k"]: S["h"] / w, S["d_k1"]: S["h"] / w})
    assert sp.simplify(line - (S["y_k"] + S["h"] * (x - x_k) / w)) == 0


def test_rq_bin_inverse_and_numeric_derivative():
    rq = rq_spline_symbolic()
    S = rq.symbols
    params = {
        S["x_k"]: 0.3,
        S["y_k"]: -0.2,
        S["w"]: 0.7,
        S["h"]: 1.3,
        S["d_k"]: 0.4,
        S["d_k1"]: 2.5,
    }
    g = sp.lambdify(S["x"], rq.value.subs(params))
    dg = sp.lambdify(S["x"], rq.derivative.subs(params))
    g_inv = sp.lambdify(S["y"], rq.inverse.subs(params))
    xs = np.linspace(0.3, 1.0, 15)
    np.testing.assert_allclose(g_inv(g(xs)), xs, atol=1e-12)
    assert np.all(dg(xs) > 0)  # monotone for positive derivatives
    # The closed-form derivative against torch autograd of the value, in float64.
    value = sp.lambdify(S["x"], rq.value.subs(params), modules="math")
    for x0 in xs[1:-1]:
        t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        xi = (t - 0.3) / 0.7
        s = 1.3 / 0.7
        out = -0.2 + 1.3 * (s * xi**2 + 0.4 * xi * (1 - xi)) / (
            s + (2.5 + 0.4 - 2 * s) * xi * (1 - xi)
        )
        (grad,) = torch.autograd.grad(out, t)
        assert float(out.detach()) == pytest.approx(value(x0), rel=1e-13)
        assert float(grad) == pytest.approx(float(dg(x0)), rel=1e-12)
