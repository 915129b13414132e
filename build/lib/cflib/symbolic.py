r"""Symbolic couplings (sympy): the map, its Jacobian, the zero block, the log-determinant.

A coupling splits ``z = [z_a, z_b]`` with ``z_a = z[:split]``, keeps ``y_a = z_a`` and sets
``y_b = tau(z_b; theta(z_a))``. The conditioner outputs are undefined sympy functions of ``z_a``
(``s_i(z_a)``, ``t_i(z_a)``, ``theta_i(z_a)``), so every result holds for *any* network:

- additive (NICE):   ``y_{b,i} = z_{b,i} + t_i(z_a)``
- affine (RealNVP):  ``y_{b,i} = z_{b,i} exp(s_i(z_a)) + t_i(z_a)``
- elementwise:       ``y_{b,i} = tau(z_{b,i}, theta_i(z_a))``

``J = dy/dz`` is block lower-triangular: the block ``dy_a/dz_b`` is zero, so
``log|det J| = sum_i log|d y_{b,i} / d z_{b,i}|``.
"""

from __future__ import annotations

from typing import NamedTuple

import sympy as sp

__all__ = [
    "RQSpline",
    "SymbolicCoupling",
    "coupling_jacobian",
    "is_lower_block_triangular",
    "log_abs_det",
    "rq_spline_symbolic",
    "substitute_conditioners",
    "zero_block",
]

KINDS = ("additive", "affine", "elementwise")


class SymbolicCoupling(NamedTuple):
    """The result of :func:`coupling_jacobian`; unpacks as ``z, y, jacobian, conditioners, split``.

    ``z`` and ``y`` are ``(dim, 1)`` column matrices, ``jacobian[i, j] = dy_i / dz_j``, and
    ``conditioners`` maps a name (``"s"``, ``"t"``, ``"theta"``, ``"tau"``) to its sympy
    function classes, e.g. ``conditioners["s"] == (s1, s2)``.
    """

    z: sp.Matrix
    y: sp.Matrix
    jacobian: sp.Matrix
    conditioners: dict[str, tuple[sp.FunctionClass, ...]]
    split: int


def coupling_jacobian(kind: str = "affine", dim: int = 4, split: int = 2) -> SymbolicCoupling:
    """Build a symbolic coupling of ``kind`` on ``dim`` real variables ``z1..z{dim}``.

    The first ``split`` variables are the unchanged part ``z_a``; the rest are transformed.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2:
        raise ValueError(f"dim: expected an int >= 2, got {dim!r}")
    if not isinstance(split, int) or isinstance(split, bool) or not 1 <= split < dim:
        raise ValueError(f"split: expected an int in [1, {dim - 1}], got {split!r}")
    z = sp.symbols(f"z1:{dim + 1}", real=True)
    za, zb = z[:split], z[split:]
    names = {"additive": ("t",), "affine": ("s", "t"), "elementwise": ("theta",)}[kind]
    conditioners = {
        name: tuple(sp.Function(f"{name}{i + 1}", real=True) for i in range(len(zb)))
        for name in names
    }
    applied = {name: [f(*za) for f in fs] for name, fs in conditioners.items()}
    if kind == "additive":
        yb = [zb[i] + applied["t"][i] for i in range(len(zb))]
    elif kind == "affine":
        yb = [zb[i] * sp.exp(applied["s"][i]) + applied["t"][i] for i in range(len(zb))]
    else:
        tau = sp.Function("tau", real=True)
        conditioners["tau"] = (tau,)
        yb = [tau(zb[i], applied["theta"][i]) for i in range(len(zb))]
    zv = sp.Matrix(z)
    y = sp.Matrix([*za, *yb])
    return SymbolicCoupling(zv, y, y.jacobian(zv), conditioners, split)


def substitute_conditioners(
    expr: sp.Basic, coupling: SymbolicCoupling, **replacements: sp.Expr
) -> sp.Basic:
    """Replace conditioner functions by expressions of ``z_a`` and evaluate the derivatives.

    Example: ``substitute_conditioners(J, c, s1=sp.tanh(z1 + z2), t1=z1 * z2, ...)``; the keys
    are function names (``s1``, ``t2``, ``theta1``, ...), the values expressions in ``z_a``.
    """
    za = tuple(coupling.z[: coupling.split])
    functions = {f.__name__: f for fs in coupling.conditioners.values() for f in fs}
    out = expr
    for name, value in replacements.items():
        if name not in functions or name == "tau":
            raise ValueError(
                f"{name}: not a conditioner of this coupling; expected one of "
                f"{sorted(n for n in functions if n != 'tau')}"
            )
        out = out.replace(functions[name], sp.Lambda(za, sp.sympify(value)))
    return out.doit()


def zero_block(jacobian: sp.Matrix, split: int) -> sp.Matrix:
    """The block ``dy_a / dz_b = jacobian[:split, split:]`` (zero for a coupling)."""
    if not 1 <= split < min(jacobian.shape):
        raise ValueError(f"split: expected an int in [1, {min(jacobian.shape) - 1}], got {split}")
    return jacobian[:split, split:]


def is_lower_block_triangular(jacobian: sp.Matrix, split: int) -> bool:
    """``True`` when every entry of :func:`zero_block` simplifies to exactly zero."""
    return all(sp.simplify(entry) == 0 for entry in zero_block(jacobian, split))


def log_abs_det(jacobian: sp.Matrix) -> sp.Expr:
    """``log|det J|``, simplified, one term per factor of ``det J``.

    E.g. ``s1 + s2`` for the affine coupling, ``0`` for the additive one and
    ``log|d tau/d z3| + log|d tau/d z4|`` for the elementwise one.
    """
    factors = sp.Mul.make_args(sp.simplify(jacobian.det()))
    terms = (sp.expand_log(sp.log(sp.Abs(f)), force=True) for f in factors)
    return sp.simplify(sp.Add(*terms))


class RQSpline(NamedTuple):
    """One bin of a rational-quadratic spline (Durkan et al., 2019, eqs. 4-6 and appendix A).

    The bin maps ``[x_k, x_k + w]`` onto ``[y_k, y_k + h]`` (``w, h > 0``) with end derivatives
    ``d_k, d_k1 > 0``; ``symbols`` holds ``x, y, x_k, y_k, w, h, d_k, d_k1``. ``value`` is ``g(x)``,
    ``derivative`` the paper's closed form of ``g'(x)`` (what a spline layer's log-det uses,
    ``log g'(x)``), and ``inverse`` is ``g^{-1}(y)`` from the stable quadratic root
    ``xi = 2c / (-b - sqrt(b^2 - 4ac))``.
    """

    symbols: dict[str, sp.Symbol]
    xi: sp.Expr
    value: sp.Expr
    derivative: sp.Expr
    inverse: sp.Expr


def rq_spline_symbolic() -> RQSpline:
    r"""The rational-quadratic bin of width ``w`` and height ``h``: with ``s = h / w`` and
    ``xi = (x - x_k) / w``,

    ``g = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_k1 + d_k - 2 s) xi (1 - xi))``,
    ``g' = s^2 (d_k1 xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2) / (s + (d_k1 + d_k - 2 s) xi (1 - xi))^2``.
    """
    x, y, x_k, y_k = sp.symbols("x y x_k y_k", real=True)
    w, h, d_k, d_k1 = sp.symbols("w h d_k d_k1", positive=True)
    s = h / w
    xi = (x - x_k) / w
    denom = s + (d_k1 + d_k - 2 * s) * xi * (1 - xi)
    value = y_k + h * (s * xi**2 + d_k * xi * (1 - xi)) / denom
    derivative = s**2 * (d_k1 * xi**2 + 2 * s * xi * (1 - xi) + d_k * (1 - xi) ** 2) / denom**2
    dy = y - y_k
    a = h * (s - d_k) + dy * (d_k1 + d_k - 2 * s)
    b = h * d_k - dy * (d_k1 + d_k - 2 * s)
    c = -s * dy
    xi_inv = 2 * c / (-b - sp.sqrt(b**2 - 4 * a * c))
    symbols = {"x": x, "y": y, "x_k": x_k, "y_k": y_k, "w": w, "h": h, "d_k": d_k, "d_k1": d_k1}
    return RQSpline(symbols, xi, value, derivative, x_k + w * xi_inv)
