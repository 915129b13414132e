"""Hidden checks of exercise 05 (instructors only: the student edition leaves this file out)."""

from __future__ import annotations

from . import ex05 as _public

globals().update({k: v for k, v in vars(_public).items() if not k.startswith("__")})


@EXERCISE.check(points=1, answers=[RESCALE, UNIFORMISE, FORWARD], hidden=True)
def log_dets_match_autograd(student: Student, rng: np.random.Generator) -> Outcome:
    """The three forward maps' log-dets equal log|det J| from autograd, in float64."""
    x = disk_points(rng, 8, radius=0.95)
    data = student.call(probe_autograd, [RESCALE, UNIFORMISE, FORWARD], x.tolist())
    for name in (RESCALE, UNIFORMISE, FORWARD):
        rows = np.asarray(data[name])
        if not np.allclose(rows[:, 1], rows[:, 0], rtol=1e-8, atol=1e-8):
            return failed(
                f"expected the ladj of {name} to equal log|det J| of its Jacobian (autograd, "
                f"float64), found differences up to {np.abs(rows[:, 1] - rows[:, 0]).max():.3g}"
            )
    total = np.asarray(data[FORWARD])[:, 1]
    if not np.allclose(total, LOG_4_OVER_PI, atol=1e-8):
        return failed(
            f"expected the log-det of {FORWARD} to be the same at every point (a uniform density "
            f"goes to a uniform density), found values from {total.min():.4f} to {total.max():.4f}"
        )
    return passed("log-dets match autograd")


@EXERCISE.check(points=1, answers=[SMALLEST], hidden=True)
def smallest_depth_edge_cases(student: Student, rng: np.random.Generator) -> Outcome:
    """smallest_depth: unordered and missing depths, ties with the threshold, no depth at all."""
    return _grade_smallest(student, _smallest_cases(rng, hidden=True))


@EXERCISE.check(points=1, answers=[COMPARISON], hidden=True, manual=True)
def comparison_written(student: Student, rng: np.random.Generator) -> Outcome:
    """The written comparison with the exact construction is there and cites the numbers."""
    raw = student.written_answer(COMPARISON)
    if raw is None:
        return failed(f"expected a Markdown section headed 'Answer: {COMPARISON}', found none")
    text = answer_text(raw)
    words = len(text.split())
    if words < 40:
        return failed(
            f"expected a comparison of at least 40 words under 'Answer: {COMPARISON}', found "
            + ("only the prompt" if not text else f"{words} words")
        )
    if not re.search(r"exact", text, re.I) or not re.search(r"\d\.\d", text):
        return failed(
            "expected the comparison to set your measured errors (numbers) against the exact "
            "construction, found no mention of "
            + ("the exact construction" if not re.search(r"exact", text, re.I) else "numbers")
        )
    return passed("a comparison is there; the instructor reads and marks it")
