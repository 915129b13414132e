"""Hidden checks of exercise 01 and the references they compare with (instructors only: the student
edition leaves this file out)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import sympy as sp

from cflib.grading.checks import Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
from cflib.grading.wire import decode_matrix, encode_matrix, make_real

from .ex01 import (
    BLOCK,
    DET,
    EXERCISE,
    JACOBIAN,
    LOGDET,
    PROOF,
    TORCH,
    _affine_call,
    _scalar,
    _shape,
    _splits,
    affine_weights,
    coupling_symbols,
    probe_block,
    probe_jacobian,
    probe_own_zero_block,
)

# --- the reference ------------------------------------------------------------------------------


def reference_jacobian(d: int, k: int) -> sp.Matrix:
    """The Jacobian dy/dz of the affine coupling of dimension d that keeps z_1..z_k."""
    z, s, t = coupling_symbols(d, k)
    y = list(z[:k]) + [z[i] * sp.exp(s[i - k]) + t[i - k] for i in range(k, d)]
    return sp.Matrix(y).jacobian(z)


def reference_affine(z: np.ndarray, k: int, weights: list[np.ndarray]) -> tuple:
    ws, bs, wt, bt = weights
    za, zb = z[:, :k], z[:, k:]
    s = np.tanh(za @ ws + bs)
    return np.concatenate([za, zb * np.exp(s) + za @ wt + bt], axis=1), s.sum(axis=1)


def _equal(a: Any, b: Any) -> bool:
    difference = sp.expand(make_real(a) - make_real(b))
    return difference == 0 or sp.simplify(difference) == 0


def _sum_text(name: str, k: int, d: int) -> str:
    """``s_3 + ... + s_5`` for the terms k+1..d, written out when there are one or two."""
    terms = [f"{name}_{i}" for i in range(k + 1, d + 1)]
    return " + ".join(terms) if len(terms) <= 2 else f"{terms[0]} + ... + {terms[-1]}"


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


@EXERCISE.check(points=1, answers=[JACOBIAN], hidden=True)
def jacobian_entries(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian(d, k) holds dy_i/dz_j in row i, column j, for random splits, the
    extreme splits and larger dimensions."""
    d = int(rng.integers(5, 7))
    cases = [*_splits(rng, 2), (d, 1), (d, d - 1), (6, int(rng.integers(2, 5)))]
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


@EXERCISE.check(points=1, answers=[JACOBIAN, BLOCK], hidden=True)
def zero_block_is_exact(student: Student, rng: np.random.Generator) -> Outcome:
    """upper_right_block takes rows 1..k and columns k+1..d (square blocks too), and that block of
    the notebook's own Jacobian is exactly zero."""
    for d, k in [(4, 2), *_splits(rng, 1, [(2, 1), (3, 1), (3, 2), (5, 2), (5, 3)])]:
        values = rng.choice(np.arange(1, 1000), size=d * d, replace=False)
        matrix = sp.Matrix(d, d, [int(v) for v in values])
        got = decode_matrix(student.call(probe_block, encode_matrix(matrix), k), f"{BLOCK}(J, {k})")
        if got.shape != (k, d - k) or got != matrix[:k, k:]:
            return failed(
                f"expected {BLOCK}(J, {k}) of a {d} x {d} matrix J to be its rows 1..{k} and "
                f"columns {k + 1}..{d}, found other entries"
            )
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
    return passed("the right block, and it is exactly zero for the notebook's Jacobian")


@EXERCISE.check(points=1, answers=[DET], hidden=True)
def determinant_is_exp_of_sum(student: Student, rng: np.random.Generator) -> Outcome:
    """jacobian_determinant(J) is det J = exp(s_{k+1} + ... + s_d), free of the dense block."""
    for d, k in _splits(rng, 2):
        _, s, t = coupling_symbols(d, k)
        got = _scalar(student, DET, reference_jacobian(d, k), f"coupling with d = {d}, k = {k}")
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


@EXERCISE.check(points=1, answers=[LOGDET], hidden=True)
def log_abs_det_is_sum_of_scales(student: Student, rng: np.random.Generator) -> Outcome:
    """log_abs_det(J) of a coupling's Jacobian simplifies to s_{k+1} + ... + s_d, and is right for
    other triangular matrices, with negative diagonal entries too."""
    for d, k in _splits(rng, 2):
        _, s, _ = coupling_symbols(d, k)
        got = _scalar(student, LOGDET, reference_jacobian(d, k), f"coupling with d = {d}, k = {k}")
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
    d, k = _splits(rng, 1)[0]
    z = sp.symbols(f"z_1:{d + 1}", real=True)
    a = [sp.Function(f"a_{i}", real=True)(*z[:k]) for i in range(k + 1, d + 1)]
    scales = [int(c) * int(rng.choice([-1, 1])) for c in rng.integers(1, 5, size=d - k)]
    scales[0] = -abs(scales[0])
    matrix = sp.eye(d)
    for row in range(k, d):
        matrix[row, row] = scales[row - k] * sp.exp(a[row - k])
        for col in range(row):
            matrix[row, col] = sp.Symbol(f"b_{row + 1}_{col + 1}", real=True)
    want = sum(a) + sum(sp.log(abs(c)) for c in scales)
    if not _equal(_scalar(student, LOGDET, matrix, f"{d} x {d} matrix"), want):
        return failed(
            f"expected log|det J| of a {d} x {d} lower-triangular matrix, some of whose diagonal "
            "entries are negative, to equal log|product of its diagonal|, found an expression "
            "that differs"
        )
    return passed("log|det J| = sum of the s_i; right for other triangular matrices too")


@EXERCISE.check(points=1, answers=[TORCH], hidden=True)
def affine_coupling_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling(z, k, scale, shift) returns y = (z_a, z_b exp(scale) + shift) and ladj."""
    for d, k in _splits(rng, 2):
        n = int(rng.integers(3, 9))
        z = rng.normal(size=(n, d))
        weights = affine_weights(rng, d, k)
        call = f"{TORCH}(z, {k}, scale, shift) for z of shape ({n}, {d})"
        got = _affine_call(student, z, k, weights, call)
        if isinstance(got, str):
            return failed(got)
        (y, ladj), (want_y, want_ladj) = got, reference_affine(z, k, weights)
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
