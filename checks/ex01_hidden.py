"""Hidden checks of exercise 01 (instructors only: the student edition leaves this file out)."""

from __future__ import annotations

from . import ex01 as _public

globals().update({k: v for k, v in vars(_public).items() if not k.startswith("__")})


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
def jacobian_more_splits(student: Student, rng: np.random.Generator) -> Outcome:
    """affine_coupling_jacobian is right for the extreme splits and larger dimensions."""
    d = int(rng.integers(5, 7))
    return _compare_jacobians(student, [(d, 1), (d, d - 1), (6, int(rng.integers(2, 5)))])


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
