"""Hidden checks of exercise 03 and the references they compare with (instructors only: the student
edition leaves this file out).

The reference: ``checkerboard(height, width, parity)`` is True (kept) on the pixels with
``(i + j) % 2 == parity``, cflib's convention (``parity=1`` is ``cflib.checkerboard_mask(h, w)``).
For images ``x`` of shape ``(B, C, H, W)``, a mask ``m`` and networks ``s``, ``t`` mapping
``(B, C, H, W)`` to itself, the coupling is

    y = m * x + (1 - m) * (x * exp(s(x * m)) + t(x * m)),   ladj = sum of s over pixels with m = 0

and its inverse uses ``s(y * m)``, ``t(y * m)`` (equal, since ``y * m = x * m``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cflib.grading.checks import Outcome, Student, failed, passed
from cflib.grading.wire import decode_array

from .ex03 import (
    EXERCISE,
    FORWARD,
    INVERSE,
    MASK,
    _args,
    _call_text,
    _forward,
    _pair,
    _weights,
    probe_coupling,
    probe_mask,
)

# --- the reference (grader side) ----------------------------------------------------------------


def reference_mask(height: int, width: int, parity: int) -> np.ndarray:
    i, j = np.indices((height, width))
    return (i + j) % 2 == parity


def _nets(weights: list[Any]) -> tuple[Any, Any]:
    """The scale and shift networks of the weights (the probes build the same ones)."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)
    return (
        lambda h: torch.tanh(F.conv2d(h, ws, bs, padding=1)),
        lambda h: F.conv2d(h, wt, bt, padding=1),
    )


def reference_forward(x: np.ndarray, mask: np.ndarray, weights: list[Any]) -> tuple:
    """``(y, ladj)`` of the affine checkerboard coupling, as numpy float64 arrays."""
    import torch

    scale, shift = _nets(weights)
    xt, m = torch.tensor(x, dtype=torch.float64), torch.tensor(mask)
    s, t = scale(xt * m), shift(xt * m)
    y = torch.where(m, xt, xt * torch.exp(s) + t)
    return y.numpy(), s.masked_fill(m, 0.0).flatten(1).sum(1).numpy()


def _checkerboard_problem(rng: np.random.Generator, batch: int = 3) -> dict[str, Any]:
    """Images, a checkerboard mask of random parity and the weights of the two networks."""
    c = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(2, 7, size=2))
    parity = int(rng.integers(2))
    return {
        "x": rng.normal(size=(batch, c, h, w)),
        "mask": reference_mask(h, w, parity),
        "weights": _weights(rng, c),
    }


# --- checks -------------------------------------------------------------------------------------


@EXERCISE.check(points=1, answers=[MASK], hidden=True)
def checkerboard_values(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard(h, w, parity) keeps the pixels with (i + j) % 2 == parity (cflib's rule), for
    even and odd sizes, single rows and columns, and larger images."""
    n = int(rng.integers(2, 10))
    h, w = (int(v) for v in rng.integers(9, 34, size=2))
    sizes = [(4, 4), (5, 5), (int(rng.integers(2, 6)), int(rng.integers(6, 9)))]
    sizes += [(1, n), (n + 1, 1), (h, w)]
    for h, w in sizes:
        for parity in (0, 1):
            call = f"{MASK}({h}, {w}, {parity})"
            got, _ = decode_array(student.call(probe_mask, h, w, parity), call)
            if got.shape != (h, w):
                return failed(f"expected {call} to have shape ({h}, {w}), found {got.shape}")
            want = reference_mask(h, w, parity)
            if not np.array_equal(got != 0, want):
                i, j = np.argwhere((got != 0) != want)[0]
                state = "kept (True)" if want[i, j] else "transformed (False)"
                return failed(
                    f"expected {call} to keep exactly the pixels (i, j) with (i + j) % 2 == "
                    f"{parity}, found pixel ({i}, {j}) wrong: it should be {state}"
                )
    return passed("both parities, all sizes tried")


@EXERCISE.check(points=1, answers=[FORWARD], hidden=True)
def coupling_transforms_the_rest(student: Student, rng: np.random.Generator) -> Outcome:
    """The other pixels are x * exp(s(x * mask)) + t(x * mask)."""
    for _ in range(2):
        problem = _checkerboard_problem(rng)
        _, y, message = _forward(student, problem)
        if message:
            return failed(message)
        call = _call_text(FORWARD, problem)
        want, _ = reference_forward(problem["x"], problem["mask"], problem["weights"])
        free = ~problem["mask"]
        if not np.allclose(y[..., free], want[..., free], rtol=1e-9, atol=1e-9):
            wrong = int((~np.isclose(y[..., free], want[..., free], rtol=1e-9, atol=1e-9)).sum())
            return failed(
                f"expected the transformed pixels (mask False) from {call} to be x * exp(s) + t "
                f"with s, t computed from x * mask, found {wrong} of {y[..., free].size} values "
                "that differ"
            )
    return passed("transformed pixels scaled and shifted by the networks of x * mask")


@EXERCISE.check(points=1, answers=[INVERSE], hidden=True)
def inverse_of_the_right_coupling(student: Student, rng: np.random.Generator) -> Outcome:
    """The inverse gives x back from y = x * exp(s(x * mask)) + t(x * mask) (the right coupling's
    output, not the student's)."""
    for _ in range(2):
        problem = _checkerboard_problem(rng)
        y, _ = reference_forward(problem["x"], problem["mask"], problem["weights"])
        call = _call_text(INVERSE, problem)
        data = student.call(probe_coupling, INVERSE, *_args(problem, y))
        back, _, message = _pair(data, call, y.shape)
        if message:
            return failed(message)
        if not np.allclose(back, problem["x"], rtol=1e-9, atol=1e-9):
            error = float(np.abs(back - problem["x"]).max())
            return failed(
                f"expected {call} to give back the x of y = x * exp(s(x * mask)) + t(x * mask) "
                f"(mask False; kept pixels copied), found values off by up to {error:.3g}"
            )
    return passed("the inverse undoes the affine checkerboard coupling")
