r"""Exercise 01: the Jacobian of an affine coupling is triangular (public checks).

The notebook fixes the convention (its ``coupling_symbols``, repeated here): for dimension ``d`` and
split ``k`` (``1 <= k < d``), real symbols ``z_1 .. z_d``, and real undefined functions ``s_i``,
``t_i`` (``i = k+1 .. d``) of ``z_1 .. z_k``.

Graded answers: ``triangular_proof`` (written), ``affine_coupling_jacobian(d, k)``,
``upper_right_block(J, k)``, ``jacobian_determinant(J)``, ``log_abs_det(J)`` (sympy) and
``affine_coupling(z, k, scale, shift) -> (y, ladj)`` (torch). 10 points, 6 of them hidden.

This file ships to students: it holds no reference answer. Its checks test properties that the
answers' own outputs must have (shapes, the block structure, what a determinant does to products and
rows, ``ladj`` against the log-determinant of a Jacobian measured here by central differences of the
outputs); ``ex01_hidden.py`` compares with the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import (
    decode_array,
    decode_expr,
    decode_matrix,
    describe,
    encode_expr,
    encode_matrix,
    encode_tensor,
    make_real,
)

JACOBIAN = "affine_coupling_jacobian"
BLOCK = "upper_right_block"
DET = "jacobian_determinant"
LOGDET = "log_abs_det"
TORCH = "affine_coupling"
PROOF = "triangular_proof"

EXERCISE = Exercise(
    "01",
    "The Jacobian of an affine coupling is triangular",
    "01_affine_jacobian",
    hidden_checks=6,
    hidden_points=6,
    forbidden={
        JACOBIAN: ("cflib.symbolic.coupling_jacobian",),
        BLOCK: ("cflib.symbolic.zero_block",),
        LOGDET: ("cflib.symbolic.log_abs_det",),
        TORCH: ("cflib.couplings.AffineCoupling", "cflib.AffineCoupling"),
    },
    time_limit=120,  # about 4x the solution's 31 s (jupyter execute, 2 shared CPUs)
)

SPLITS = [(d, k) for d in range(2, 6) for k in range(1, d)]
# splits whose zero block is not square and d != 3: a transposed or misplaced block, or a matrix
# hard-coded for the notebook's d = 3 example, has the wrong shape there
UNEVEN = [(d, k) for d, k in SPLITS if 2 * k != d and d != 3]
STEP = 1e-5  # central differences in float64: error about STEP**2, far below the tolerance
LOGDET_TOL = 1e-6


def coupling_symbols(d: int, k: int) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    """The notebook's ``coupling_symbols``: ``z = (z_1..z_d)`` and the functions ``s``, ``t``."""
    z = sp.symbols(f"z_1:{d + 1}", real=True)
    s = [sp.Function(f"s_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    t = [sp.Function(f"t_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    return z, s, t


def _splits(rng: np.random.Generator, n: int, pool: list[tuple[int, int]] = SPLITS) -> list:
    """``n`` distinct splits (d, k) from ``pool``, so no single hard-coded case can pass."""
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def _uneven_first(rng: np.random.Generator, n: int) -> list:
    """``n`` distinct splits, the first from :data:`UNEVEN`."""
    first = _splits(rng, 1, UNEVEN)[0]
    return [first, *_splits(rng, n - 1, [s for s in SPLITS if s != first])]


def _is_zero(expr: Any) -> bool:
    return expr == 0 or sp.simplify(expr) == 0


def _shape(matrix: sp.Matrix) -> str:
    return f"{matrix.shape[0]} x {matrix.shape[1]}"


def _function_names(expr: Any) -> set[str]:
    from sympy.core.function import AppliedUndef

    return {f.func.__name__ for f in sp.sympify(expr).atoms(AppliedUndef)}


def _dense_block_left(expr: Any, k: int, d: int) -> str | None:
    """What of the dense block dy_b/dz_a is left in ``expr`` (derivatives, t_i), or None."""
    shifts = {f"t_{i}" for i in range(k + 1, d + 1)}
    if expr.has(sp.Derivative):
        return "derivatives"
    if _function_names(expr) & shifts:
        return "shift functions t_i"
    return None


def _lower_triangular(rng: np.random.Generator, d: int) -> sp.Matrix:
    """A d x d integer lower-triangular matrix with a nonzero diagonal, signs of both kinds."""
    matrix = sp.zeros(d, d)
    for i in range(d):
        matrix[i, i] = int(rng.integers(1, 5)) * int(rng.choice([-1, 1]))
        for j in range(i):
            matrix[i, j] = int(rng.integers(-5, 6))
    return matrix


def _other_below(rng: np.random.Generator, matrix: sp.Matrix) -> sp.Matrix:
    """``matrix`` with other entries below the diagonal (a different dense block)."""
    other = matrix.copy()
    for i in range(matrix.shape[0]):
        for j in range(i):
            other[i, j] = matrix[i, j] + int(rng.integers(1, 9))
    return other


def _row_scaled(matrix: sp.Matrix, row: int, factor: int) -> sp.Matrix:
    scaled = matrix.copy()
    scaled[row, :] = factor * matrix[row, :]
    return scaled


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_jacobian(answers, d, k):
    return encode_matrix(answers["affine_coupling_jacobian"](d, k))


def probe_block(answers, matrix, k):
    return encode_matrix(answers["upper_right_block"](make_real(decode_matrix(matrix)), k))


def probe_own_zero_block(answers, d, k):
    jacobian = answers["affine_coupling_jacobian"](d, k)
    return encode_matrix(answers["upper_right_block"](jacobian, k))


def probe_scalar(answers, name, matrix):
    return encode_expr(answers[name](make_real(decode_matrix(matrix))))


def probe_own_scalar(answers, name, d, k):
    return encode_expr(answers[name](answers["affine_coupling_jacobian"](d, k)))


def probe_affine(answers, z, k, weights):
    """Call affine_coupling on z with the scale tanh(z_a ws + bs) and the shift z_a wt + bt."""
    import torch

    z = torch.tensor(z, dtype=torch.float64)
    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)
    original = z.clone()
    out = answers["affine_coupling"](
        z, k, lambda za: torch.tanh(za @ ws + bs), lambda za: za @ wt + bt
    )
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"type": describe(out)}
    return {
        "y": encode_tensor(out[0]),
        "ladj": encode_tensor(out[1]),
        "input_unchanged": bool(torch.equal(z, original)),
    }


# --- checks -------------------------------------------------------------------------------------


@EXERCISE.check(points=1, answers=[JACOBIAN])
def jacobian_shape(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian(d, k) is a d x d sympy Matrix in the notebook's symbols, with an
    exactly zero block dy_a/dz_b and a diagonal block dy_b/dz_b."""
    cases = _uneven_first(rng, 3)
    for d, k in cases:
        call = f"{JACOBIAN}({d}, {k})"
        got = make_real(decode_matrix(student.call(probe_jacobian, d, k), call))
        if got.shape != (d, d):
            return failed(f"expected {call} to be {d} x {d}, found {_shape(got)}")
        variables, scales, shifts = coupling_symbols(d, k)
        symbols = {str(v) for v in variables}
        functions = {str(f.func) for f in scales + shifts}
        foreign = sorted(
            {str(v) for e in got for v in e.free_symbols} - symbols
            | set().union(*(_function_names(e) for e in got)) - functions
        )
        if foreign:
            return failed(
                f"expected {call} to use the symbols and functions of coupling_symbols({d}, {k}) "
                f"only, found {', '.join(foreign[:4])}"
            )
        upper = [(i, j) for i in range(k) for j in range(k, d) if not _is_zero(got[i, j])]
        if upper:
            i, j = upper[0]
            return failed(
                f"expected the block dy_a/dz_b (rows 1..{k}, columns {k + 1}..{d}) of {call} to "
                f"be zero, found {len(upper)} nonzero entries, e.g. ({i + 1}, {j + 1}); rows are "
                "outputs y_i, columns inputs z_j"
            )
        lower = [
            (i, j) for i in range(k, d) for j in range(k, d) if i != j and not _is_zero(got[i, j])
        ]
        if lower:
            i, j = lower[0]
            return failed(
                f"expected the block dy_b/dz_b of {call} to be diagonal, found {len(lower)} "
                f"nonzero entries off its diagonal, e.g. ({i + 1}, {j + 1})"
            )
        if any(_is_zero(got[i, i]) for i in range(d)):
            return failed(f"expected no zero on the diagonal of {call} (a coupling is invertible)")
    return passed(f"d x d and block lower-triangular, for {len(cases)} splits (d, k)")


@EXERCISE.check(points=1, answers=[BLOCK])
def upper_right_block_slices(student: Student, rng: np.random.Generator) -> Outcome:
    """upper_right_block(J, k) returns a k x (d - k) block of J's entries, in J's order."""
    for d, k in _uneven_first(rng, 2):
        values = rng.choice(np.arange(1, 1000), size=d * d, replace=False)
        matrix = sp.Matrix(d, d, [int(v) for v in values])
        call = f"{BLOCK}(J, {k}) of a {d} x {d} matrix J"
        got = decode_matrix(student.call(probe_block, encode_matrix(matrix), k), call)
        if got.shape != (k, d - k):
            return failed(
                f"expected {call} to be {k} x {d - k} (rows 1..{k}, columns {k + 1}..{d}), "
                f"found {_shape(got)}"
            )
        where = {int(v): divmod(i, d) for i, v in enumerate(values)}
        first = got[0, 0]
        start = where.get(int(first)) if first.is_Integer else None
        if start is None or got != matrix[start[0] : start[0] + k, start[1] : start[1] + d - k]:
            return failed(
                f"expected {call} to be a block of J's entries, rows and columns in J's order "
                f"(rows 1..{k}, columns {k + 1}..{d}), found entries that are not"
            )
    return passed("a k x (d - k) block of J, for two matrices (the place is checked when graded)")


@EXERCISE.check(points=0.5, answers=[DET])  # also calls your Jacobian (a probe looks it up)
def determinant_properties(student: Student, rng: np.random.Generator) -> Outcome:
    """jacobian_determinant is multiplicative and linear in each row on triangular matrices,
    blind to the entries below the diagonal, and free of the dense block for your Jacobian."""
    d = int(rng.integers(3, 5))
    a, b = _lower_triangular(rng, d), _lower_triangular(rng, d)
    row = int(rng.integers(d))
    matrices = {
        "A": a,
        "B": b,
        "AB": a * b,
        "A'": _other_below(rng, a),
        "A2": _row_scaled(a, row, 2),
    }
    got = {key: _scalar(student, DET, m, f"{d} x {d} matrix") for key, m in matrices.items()}
    shown = f"for {d} x {d} lower-triangular integer matrices A and B"
    if not _same(got["AB"], got["A"] * got["B"]):
        return failed(f"expected det(AB) = det(A) det(B) {shown}, found it does not hold")
    if not _same(got["A2"], 2 * got["A"]):
        return failed(
            f"expected det J to double when row {row + 1} of J is doubled {shown}, found otherwise"
        )
    if not _same(got["A'"], got["A"]):
        return failed(
            f"expected det J not to change when only entries below the diagonal change {shown}, "
            "found it changes"
        )
    for d, k in _splits(rng, 2):
        data = student.call(probe_own_scalar, DET, d, k)
        det = make_real(decode_expr(data, f"{DET}({JACOBIAN}({d}, {k}))"))
        left = _dense_block_left(det, k, d)
        if left:
            return failed(
                f"expected det J of your {JACOBIAN}({d}, {k}) simplified, with no trace of the "
                f"dense block dy_b/dz_a, found {left} in it"
            )
    return passed("behaves as a determinant, and ignores the dense block of your Jacobian")


def _scalar(student: Student, name: str, matrix: sp.Matrix, what: str) -> Any:
    data = student.call(probe_scalar, name, encode_matrix(matrix))
    return make_real(decode_expr(data, f"{name}(J) for a {what}"))


def _same(a: Any, b: Any) -> bool:
    """Whether two numeric sympy values agree to 12 digits."""
    try:
        x, y = complex(sp.N(a, 30)), complex(sp.N(b, 30))
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(x) and np.isfinite(y) and abs(x - y) <= 1e-12 * (1 + abs(y)))


@EXERCISE.check(points=0.5, answers=[LOGDET])  # also calls your Jacobian
def log_abs_det_properties(student: Student, rng: np.random.Generator) -> Outcome:
    """log_abs_det adds over products of triangular matrices, ignores signs and the entries below
    the diagonal, and is simplified (no log, exp or Abs) for your Jacobian."""
    d = int(rng.integers(3, 5))
    a, b = _lower_triangular(rng, d), _lower_triangular(rng, d)
    row = int(rng.integers(d))
    matrices = {
        "A": a,
        "B": b,
        "AB": a * b,
        "A'": _other_below(rng, a),
        "-A": _row_scaled(a, row, -1),
        "A2": _row_scaled(a, row, 2),
    }
    got = {key: _scalar(student, LOGDET, m, f"{d} x {d} matrix") for key, m in matrices.items()}
    shown = f"for {d} x {d} lower-triangular integer matrices A and B"
    if not _same(got["AB"], got["A"] + got["B"]):
        return failed(
            f"expected log|det(AB)| = log|det A| + log|det B| {shown}, found it does not hold"
        )
    if not _same(got["-A"], got["A"]):
        return failed(
            f"expected log|det J| not to change when row {row + 1} of J changes sign {shown}, "
            "found it changes"
        )
    if not _same(got["A2"], got["A"] + sp.log(2)):
        return failed(
            f"expected log|det J| to grow by log 2 when row {row + 1} of J is doubled {shown}, "
            "found otherwise"
        )
    if not _same(got["A'"], got["A"]):
        return failed(
            f"expected log|det J| not to change when only entries below the diagonal change "
            f"{shown}, found it changes"
        )
    for d, k in _splits(rng, 2):
        data = student.call(probe_own_scalar, LOGDET, d, k)
        value = make_real(decode_expr(data, f"{LOGDET}({JACOBIAN}({d}, {k}))"))
        left = _dense_block_left(value, k, d)
        if left or value.has(sp.log, sp.exp, sp.Abs):
            return failed(
                f"expected log|det J| of your {JACOBIAN}({d}, {k}) simplified to a sum, found "
                + (f"{left} in it" if left else "log, exp or Abs left in it")
            )
    return passed("behaves as log|det|, and is simplified for your Jacobian")


def _fd_inputs(z: np.ndarray) -> np.ndarray:
    """Rows z + h e_i, then z - h e_i, for each base point and coordinate: (2 * n * d, d)."""
    n, d = z.shape
    steps = STEP * np.eye(d)
    plus = (z[:, None, :] + steps[None]).reshape(n * d, d)
    minus = (z[:, None, :] - steps[None]).reshape(n * d, d)
    return np.concatenate([plus, minus])


def _fd_jacobians(outputs: np.ndarray, n: int, d: int) -> np.ndarray:
    """(n, d, d) central-difference Jacobians dy/dz (rows y, columns z) from _fd_inputs' outputs."""
    plus, minus = outputs[: n * d].reshape(n, d, d), outputs[n * d :].reshape(n, d, d)
    return np.swapaxes((plus - minus) / (2 * STEP), 1, 2)


def _affine_call(
    student: Student, z: np.ndarray, k: int, weights: list[np.ndarray], call: str
) -> tuple[np.ndarray, np.ndarray] | str:
    """(y, ladj) of the student's affine_coupling on z, or a message saying what was wrong."""
    data = student.call(probe_affine, z.tolist(), k, [w.tolist() for w in weights])
    if "type" in data:
        return f"expected {call} to return a pair (y, ladj), found {data['type']}"
    y, y_dtype = decode_array(data["y"], "y")
    ladj, ladj_dtype = decode_array(data["ladj"], "ladj")
    n, d = z.shape
    if y.shape != (n, d) or ladj.shape != (n,):
        return (
            f"expected {call} to return y of shape {(n, d)} and ladj of shape {(n,)}, found "
            f"{y.shape} and {ladj.shape}"
        )
    if "float64" not in y_dtype or "float64" not in ladj_dtype:
        return f"expected float64 outputs for float64 z, found {y_dtype}, {ladj_dtype}"
    if not data.get("input_unchanged", False):
        return f"expected {call} to leave z unchanged, found it modified in place"
    if not (np.isfinite(y).all() and np.isfinite(ladj).all()):
        return f"expected finite y and ladj from {call}, found inf or nan"
    return y, ladj


def affine_weights(rng: np.random.Generator, d: int, k: int) -> list[np.ndarray]:
    """ws, bs, wt, bt: the scale tanh(z_a ws + bs) and the shift z_a wt + bt that the probe uses."""
    return [
        rng.normal(size=(k, d - k)),
        rng.normal(size=d - k),
        rng.normal(size=(k, d - k)),
        rng.normal(size=d - k),
    ]


@EXERCISE.check(points=1, answers=[TORCH])
def affine_coupling_ladj_is_log_det(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling returns y (batch, d) and ladj (batch,) in float64 without changing z, and
    ladj is log|det| of the Jacobian of its own y (central differences, computed by the grader)."""
    wide = _splits(rng, 1, [s for s in SPLITS if s[0] - s[1] >= 2])  # two scales to combine
    for d, k in [*wide, *_splits(rng, 1, [s for s in SPLITS if s[0] >= 3 and s not in wide])]:
        n = int(rng.integers(2, 5))
        z = rng.normal(size=(n, d))
        weights = affine_weights(rng, d, k)
        call = f"{TORCH}(z, {k}, scale, shift) for z of shape ({n}, {d})"
        base = _affine_call(student, z, k, weights, call)
        if isinstance(base, str):
            return failed(base)
        shifted = _fd_inputs(z)
        moved = _affine_call(student, shifted, k, weights, f"{TORCH} on {len(shifted)} rows")
        if isinstance(moved, str):
            return failed(moved)
        jacobians = _fd_jacobians(moved[0], n, d)
        sign, measured = np.linalg.slogdet(jacobians)
        if not (sign != 0).all():
            return failed(f"expected an invertible map from {call}, found a singular Jacobian")
        ladj = base[1]
        if not np.allclose(ladj, measured, rtol=LOGDET_TOL, atol=LOGDET_TOL):
            return failed(
                f"expected ladj = log|det dy/dz| (one value per sample) from {call}, found values "
                f"off by up to {np.abs(ladj - measured).max():.3g} from the log-determinant of the "
                "Jacobian of your y (central differences)"
            )
    return passed("ladj is the log-determinant of the Jacobian of y")
