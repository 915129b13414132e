r"""Exercise 01: the Jacobian of an affine coupling is triangular.

The notebook fixes the convention (its ``coupling_symbols``, repeated here as the reference): for
dimension ``d`` and split ``k`` (``1 <= k < d``), real symbols ``z_1 .. z_d``, and real undefined
functions ``s_i``, ``t_i`` (``i = k+1 .. d``) of ``z_1 .. z_k``. The coupling is

    y_i = z_i                              (i <= k)
    y_i = z_i * exp(s_i) + t_i             (i > k)

so ``J = dy/dz`` (rows ``y``, columns ``z``) has the identity top-left, a zero top-right block,
``det J = exp(sum_i s_i)`` and ``log|det J| = sum_i s_i``.

Graded answers: ``triangular_proof`` (written), ``affine_coupling_jacobian(d, k)``,
``upper_right_block(J, k)``, ``jacobian_determinant(J)``, ``log_abs_det(J)`` (sympy) and
``affine_coupling(z, k, scale, shift) -> (y, ladj)`` (torch). 10 points, 4 of them hidden.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import sympy as sp

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
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

EXERCISE = Exercise("01", "The Jacobian of an affine coupling is triangular", "01_affine_jacobian")

JACOBIAN = "affine_coupling_jacobian"
BLOCK = "upper_right_block"
DET = "jacobian_determinant"
LOGDET = "log_abs_det"
TORCH = "affine_coupling"
PROOF = "triangular_proof"

SPLITS = [(d, k) for d in range(2, 6) for k in range(1, d)]


# --- the reference (grader side) ----------------------------------------------------------------


def coupling_symbols(d: int, k: int) -> tuple[tuple[Any, ...], list[Any], list[Any]]:
    """``z = (z_1..z_d)``, ``s = [s_{k+1}..s_d]``, ``t = [t_{k+1}..t_d]``, the functions of z_1..z_k."""
    z = sp.symbols(f"z_1:{d + 1}", real=True)
    s = [sp.Function(f"s_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    t = [sp.Function(f"t_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    return z, s, t


def reference_jacobian(d: int, k: int) -> sp.Matrix:
    """The Jacobian dy/dz of the affine coupling of dimension d that keeps z_1..z_k."""
    z, s, t = coupling_symbols(d, k)
    y = list(z[:k]) + [z[i] * sp.exp(s[i - k]) + t[i - k] for i in range(k, d)]
    return sp.Matrix(y).jacobian(z)


def _splits(rng: np.random.Generator, n: int, pool: list[tuple[int, int]] = SPLITS) -> list:
    """``n`` distinct splits (d, k) from ``pool``, so no single hard-coded case can pass."""
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def _equal(a: Any, b: Any) -> bool:
    difference = sp.expand(make_real(a) - make_real(b))
    return difference == 0 or sp.simplify(difference) == 0


def _sum_text(name: str, k: int, d: int) -> str:
    """``s_3 + ... + s_5`` for the terms k+1..d, written out when there are one or two."""
    terms = [f"{name}_{i}" for i in range(k + 1, d + 1)]
    return " + ".join(terms) if len(terms) <= 2 else f"{terms[0]} + ... + {terms[-1]}"


def _shape(matrix: sp.Matrix) -> str:
    return f"{matrix.shape[0]} x {matrix.shape[1]}"


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


def probe_affine(answers, z, k, weights):
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


@EXERCISE.check(points=1, answers=[PROOF], hidden=True, manual=True)
def triangular_proof_answered(student: Student, rng: np.random.Generator) -> Outcome:
    """The written proof is there and speaks of the zero block (the instructor reads and marks it)."""
    raw = student.written_answer(PROOF)
    if raw is None:
        return failed(f"expected a Markdown section headed 'Answer: {PROOF}', found none")
    text = answer_text(raw)
    if len(text.split()) < 10:
        return failed(
            f"expected a written proof under 'Answer: {PROOF}', found "
            + ("only the prompt" if not text else f"{len(text.split())} words")
        )
    zero = re.search(r"zero|\b0\b|\\mathbf\{0\}|\\boldsymbol\{0\}|\\mathbf 0", text, re.I)
    block = re.search(r"block|y_a|y_\{a\}|y_\{1:k\}|partial|∂|depend", text, re.I)
    if not (zero and block):
        return failed(
            "expected the proof to name the zero block (y_a does not depend on z_b), found no "
            "mention of it"
        )
    return passed("a written proof is there; the instructor reads and marks it")


@EXERCISE.check(points=1, answers=[JACOBIAN])
def jacobian_shape(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian(d, k) returns a d x d sympy Matrix."""
    cases = _splits(rng, 3)
    for d, k in cases:
        got = decode_matrix(student.call(probe_jacobian, d, k), f"{JACOBIAN}({d}, {k})")
        if got.shape != (d, d):
            return failed(f"expected {JACOBIAN}({d}, {k}) to be {d} x {d}, found {_shape(got)}")
    return passed(f"a d x d sympy Matrix for {len(cases)} splits (d, k)")


def _compare_jacobians(student: Student, cases: list[tuple[int, int]]) -> Outcome:
    for d, k in cases:
        got = decode_matrix(student.call(probe_jacobian, d, k), f"{JACOBIAN}({d}, {k})")
        want = reference_jacobian(d, k)
        if got.shape != want.shape:
            return failed(f"expected {JACOBIAN}({d}, {k}) to be {d} x {d}, found {_shape(got)}")
        wrong = [(i, j) for i in range(d) for j in range(d) if not _equal(got[i, j], want[i, j])]
        if wrong:
            i, j = wrong[0]
            return failed(
                f"expected entry ({i + 1}, {j + 1}) of {JACOBIAN}({d}, {k}) to be dy_{i + 1}/dz_"
                f"{j + 1} of y_i = z_i (i <= k), y_i = z_i exp(s_i) + t_i (i > k), with the "
                f"notebook's coupling_symbols; found {len(wrong)} of {d * d} entries differ"
            )
    return passed(f"dy/dz is right for {len(cases)} splits (d, k)")


@EXERCISE.check(points=1, answers=[JACOBIAN])
def jacobian_entries(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian(d, k) holds dy_i/dz_j in row i, column j."""
    return _compare_jacobians(student, _splits(rng, 2))


@EXERCISE.check(points=1, answers=[JACOBIAN], hidden=True)
def jacobian_more_splits(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian is right for the extreme splits and larger dimensions."""
    d = int(rng.integers(5, 7))
    return _compare_jacobians(student, [(d, 1), (d, d - 1), (6, int(rng.integers(2, 5)))])


@EXERCISE.check(points=1, answers=[BLOCK])
def upper_right_block_slices(student: Student, rng: np.random.Generator) -> Outcome:
    """upper_right_block(J, k) returns dy_a/dz_b: rows 1..k, columns k+1..d of J."""
    for d, k in _splits(rng, 2):
        values = rng.choice(np.arange(1, 1000), size=d * d, replace=False)
        matrix = sp.Matrix(d, d, [int(v) for v in values])
        got = decode_matrix(student.call(probe_block, encode_matrix(matrix), k), f"{BLOCK}(J, {k})")
        want = matrix[:k, k:]
        if got.shape != want.shape:
            return failed(
                f"expected {BLOCK}(J, {k}) of a {d} x {d} matrix J to be {_shape(want)} "
                f"(rows 1..k, columns k+1..d), found {_shape(got)}"
            )
        if got != want:
            returned = {int(e) for e in got if e.is_Integer}
            where = [divmod(i, d) for i, v in enumerate(values) if int(v) in returned]
            rows = sorted({r + 1 for r, _ in where})
            cols = sorted({c + 1 for _, c in where})
            return failed(
                f"expected rows 1..{k} and columns {k + 1}..{d} of a {d} x {d} matrix J (k = {k}), "
                f"found entries from rows {rows} and columns {cols}"
            )
    return passed("takes rows 1..k and columns k+1..d")


@EXERCISE.check(points=1, answers=[JACOBIAN, BLOCK], hidden=True)
def zero_block_is_exact(student: Student, rng: np.random.Generator) -> Outcome:
    """upper_right_block of the notebook's own Jacobian is exactly zero."""
    for d, k in _splits(rng, 3):
        got = decode_matrix(
            student.call(probe_own_zero_block, d, k), f"{BLOCK}({JACOBIAN}({d}, {k}), {k})"
        )
        if got.shape != (k, d - k):
            return failed(
                f"expected {BLOCK}({JACOBIAN}({d}, {k}), {k}) to be {k} x {d - k}, "
                f"found {_shape(got)}"
            )
        nonzero = sum(1 for e in got if e != 0)
        if nonzero:
            return failed(
                f"expected every entry of {BLOCK}({JACOBIAN}({d}, {k}), {k}) to be exactly 0, "
                f"found {nonzero} that are not"
            )
    return passed("the block dy_a/dz_b of the notebook's Jacobian is exactly zero")


def _scalar(student: Student, name: str, matrix: sp.Matrix, d: int, k: int) -> Any:
    data = student.call(probe_scalar, name, encode_matrix(matrix))
    return make_real(decode_expr(data, f"{name}(J) for d = {d}, k = {k}"))


@EXERCISE.check(points=1, answers=[DET])
def determinant_is_exp_of_sum(student: Student, rng: np.random.Generator) -> Outcome:
    """jacobian_determinant(J) is det J = exp(s_{k+1} + ... + s_d), free of the dense block."""
    for d, k in _splits(rng, 2):
        _, s, t = coupling_symbols(d, k)
        got = _scalar(student, DET, reference_jacobian(d, k), d, k)
        if got.has(sp.Derivative) or any(got.has(ti) for ti in t):
            return failed(
                f"expected det J (d = {d}, k = {k}) not to depend on the dense block dy_b/dz_a, "
                "found derivatives or shift functions t_i in it: simplify it"
            )
        if not _equal(got, sp.exp(sum(s))):
            return failed(
                f"expected det J (d = {d}, k = {k}) to equal exp({_sum_text('s', k, d)}), found "
                "an expression that differs from it"
            )
    return passed("det J = exp(sum of the s_i)")


@EXERCISE.check(points=1, answers=[LOGDET])
def log_abs_det_is_sum_of_scales(student: Student, rng: np.random.Generator) -> Outcome:
    """log_abs_det(J) of a coupling's Jacobian simplifies to s_{k+1} + ... + s_d."""
    for d, k in _splits(rng, 2):
        _, s, _ = coupling_symbols(d, k)
        got = _scalar(student, LOGDET, reference_jacobian(d, k), d, k)
        if not _equal(got, sum(s)):
            return failed(
                f"expected log|det J| (d = {d}, k = {k}) to equal {_sum_text('s', k, d)}, found "
                "an expression that differs from it"
            )
        if got.has(sp.log, sp.exp, sp.Abs):
            return failed(
                f"expected log|det J| (d = {d}, k = {k}) simplified to a sum of the s_i, found the "
                "right value but with log, exp or Abs left in it"
            )
    return passed("log|det J| = sum of the s_i")


@EXERCISE.check(points=1, answers=[LOGDET], hidden=True)
def log_abs_det_of_triangular(student: Student, rng: np.random.Generator) -> Outcome:
    """log_abs_det(J) is right for other triangular matrices, with negative diagonal entries too."""
    d, k = _splits(rng, 1)[0]
    z = sp.symbols(f"z_1:{d + 1}", real=True)
    a = [sp.Function(f"a_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    scales = [int(c) * int(rng.choice([-1, 1])) for c in rng.integers(1, 5, size=d - k)]
    matrix = sp.eye(d)
    for row in range(k, d):
        matrix[row, row] = scales[row - k] * sp.exp(a[row - k])
        for col in range(row):
            matrix[row, col] = sp.Symbol(f"b_{row + 1}_{col + 1}", real=True)
    want = sum(a) + sum(sp.log(abs(c)) for c in scales)
    if not _equal(_scalar(student, LOGDET, matrix, d, k), want):
        return failed(
            f"expected log|det J| of a {d} x {d} lower-triangular matrix, some of whose diagonal "
            "entries are negative, to equal log|product of its diagonal|, found an expression "
            "that differs"
        )
    return passed("right for a triangular matrix with negative diagonal entries")


def _reference_affine(z: np.ndarray, k: int, weights: list[np.ndarray]) -> tuple:
    ws, bs, wt, bt = weights
    za, zb = z[:, :k], z[:, k:]
    s = np.tanh(za @ ws + bs)
    return np.concatenate([za, zb * np.exp(s) + za @ wt + bt], axis=1), s.sum(axis=1)


@EXERCISE.check(points=1, answers=[TORCH])
def affine_coupling_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling(z, k, scale, shift) returns y and log|det J| = sum of the scales."""
    for d, k in _splits(rng, 2):
        batch = int(rng.integers(3, 9))
        z = rng.normal(size=(batch, d))
        weights = [
            rng.normal(size=(k, d - k)),
            rng.normal(size=d - k),
            rng.normal(size=(k, d - k)),
            rng.normal(size=d - k),
        ]
        call = f"{TORCH}(z, {k}, scale, shift) for z of shape ({batch}, {d})"
        data = student.call(probe_affine, z.tolist(), k, [w.tolist() for w in weights])
        if "type" in data:
            return failed(f"expected {call} to return a pair (y, ladj), found {data['type']}")
        y, y_dtype = decode_array(data["y"], "y")
        ladj, ladj_dtype = decode_array(data["ladj"], "ladj")
        want_y, want_ladj = _reference_affine(z, k, weights)
        if y.shape != want_y.shape or ladj.shape != want_ladj.shape:
            return failed(
                f"expected {call} to return y of shape {want_y.shape} and ladj of shape "
                f"{want_ladj.shape}, found {y.shape} and {ladj.shape}"
            )
        if "float64" not in y_dtype or "float64" not in ladj_dtype:
            return failed(f"expected float64 outputs for float64 z, found {y_dtype}, {ladj_dtype}")
        if not data.get("input_unchanged", False):
            return failed(f"expected {call} to leave z unchanged, found it modified in place")
        if not np.allclose(y, want_y, rtol=1e-9, atol=1e-9):
            bad = np.flatnonzero(~np.isclose(y, want_y, rtol=1e-9, atol=1e-9).all(axis=0)) + 1
            return failed(
                f"expected y = (z_a, z_b * exp(scale(z_a)) + shift(z_a)) from {call}, found "
                f"wrong values in columns {bad.tolist()}"
            )
        if not np.allclose(ladj, want_ladj, rtol=1e-9, atol=1e-9):
            return failed(
                f"expected ladj = log|det dy/dz| (one value per sample) from {call}, found "
                f"values off by up to {np.abs(ladj - want_ladj).max():.3g}"
            )
    return passed("y and ladj match the affine coupling")
