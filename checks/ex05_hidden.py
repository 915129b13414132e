r"""Hidden checks of exercise 05 and the references they compare with (instructors only: the student
edition leaves this file out).

The exact construction, for the unit disk and the square ``[-1, 1]^2`` (the reference):

- ``rescale_chords(x)``: keeps ``x1``, ``x2 -> x2 / sqrt(1 - x1^2)`` (each vertical chord onto
  ``[-1, 1]``), ``ladj = -log sqrt(1 - x1^2)``; its inverse multiplies by ``sqrt(1 - y1^2)``.
- ``uniformise_first(x)``: keeps ``x2``, ``x1 -> F(x1) = (2/pi) (x1 sqrt(1 - x1^2) + arcsin x1)``,
  the map that makes the semicircle law of ``x1`` (density ``(2/pi) sqrt(1 - x1^2)``) uniform on
  ``[-1, 1]``; ``ladj = log(4/pi) + log sqrt(1 - x1^2)``; its inverse has no closed form.
- ``disk_to_square = uniformise_first o rescale_chords``, whose log-det is the constant
  ``log(4/pi)`` (uniform to uniform: the ratio of the areas), and ``square_to_disk``, its inverse.

The depth study fits ``CouplingFlow(2, depth, "spline", hidden_dim=16, num_bins=8)`` to
``x_train`` (4000 disk samples, seed 1) and measures the forward KL ``mean(log p_disk - log q)``
on the held-out ``x_test = UniformDisk().sample(5000, generator=seed 2)``; it equals the KL from
the pushed-forward disk ``erf(flow.inverse(x) / sqrt 2)`` to the uniform square. ``to_square(flow,
x)`` is that map. ``smallest_depth(errors, threshold)`` is the smallest depth whose error is at
most the threshold (``None`` when there is none); ``THRESHOLD = 0.15``. Measured over 6
training seeds with the notebook's settings: one layer 0.449-0.479 nats (the floor of one layer is
0.399), two layers 0.066-0.100, three 0.056-0.087, four 0.069-0.192; so the smallest depth
reaching 0.15 was 2 for every seed.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy import special, stats

from cflib.grading.checks import Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
from cflib.grading.wire import decode_array

from .ex05 import (
    COMPARISON,
    DEPTHS,
    EXERCISE,
    FORWARD,
    RESCALE,
    SMALLEST,
    STUDY,
    THRESHOLD,
    TO_SQUARE,
    UNIFORMISE,
    _ask_smallest,
    _pair,
    _reached_cases,
    _smallest_call,
    _stand_in,
    _to_square_args,
    disk_points,
    probe_map,
    probe_study,
    probe_to_square,
    test_set,
)

LOG_4_OVER_PI = math.log(4 / math.pi)


# --- the reference (grader side) ----------------------------------------------------------------


def reference_rescale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = np.sqrt(1 - x[:, 0] ** 2)
    return np.stack([x[:, 0], x[:, 1] / half], axis=1), -np.log(half)


def reference_uniformise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x1 = x[:, 0]
    root = np.sqrt(1 - x1**2)
    y1 = (2 / np.pi) * (x1 * root + np.arcsin(x1))
    return np.stack([y1, x[:, 1]], axis=1), LOG_4_OVER_PI + np.log(root)


def reference_to_square(z: np.ndarray) -> np.ndarray:
    return special.erf(z / math.sqrt(2))


def reference_smallest(errors: dict[int, float], threshold: float) -> int | None:
    reached = [d for d, e in errors.items() if e <= threshold]
    return min(reached) if reached else None


def reference_errors(log_q: dict[int, np.ndarray]) -> dict[int, float]:
    log_p = -math.log(math.pi)  # every x_test lies in the unit disk
    return {depth: float((log_p - values).mean()) for depth, values in log_q.items()}


# --- checks -------------------------------------------------------------------------------------


def _map_problem(student: Student, name: str, x: np.ndarray, reference, formula: str) -> str:
    n = len(x)
    what = f"{name}(x) for x of shape ({n}, 2)"
    pair = _pair(student.call(probe_map, name, x.tolist(), False), what, n)
    if isinstance(pair, str):
        return pair
    y, ladj = pair
    want_y, want_ladj = reference(x)
    bad = ~np.isclose(y, want_y, rtol=1e-9, atol=1e-9).all(axis=0)
    if bad.any():
        return (
            f"expected {formula} from {what}, found wrong values in coordinate "
            f"{(np.flatnonzero(bad) + 1).tolist()}"
        )
    if not np.allclose(ladj, want_ladj, rtol=1e-9, atol=1e-9):
        return (
            f"expected ladj = log|det dy/dx| of {name} (one value per point), found values off by "
            f"up to {np.abs(ladj - want_ladj).max():.3g}"
            + (" with the opposite sign" if np.allclose(ladj, -want_ladj, atol=1e-9) else "")
        )
    return ""


@EXERCISE.check(points=1, answers=[RESCALE, UNIFORMISE, FORWARD], hidden=True)
def maps_are_exact(student: Student, rng: np.random.Generator) -> Outcome:
    """Both couplings have the exact values and log-dets, and disk_to_square sends uniform disk
    samples to uniform samples of the square with the constant log-det log(4/pi)."""
    problem = _map_problem(
        student,
        RESCALE,
        disk_points(rng, 200),
        reference_rescale,
        "y = (x1, x2 divided by the chord's half-length)",
    ) or _map_problem(
        student,
        UNIFORMISE,
        np.stack([rng.uniform(-0.99, 0.99, 200), rng.uniform(-1, 1, 200)], axis=1),
        reference_uniformise,
        "y = (F(x1), x2) with F = 2 CDF - 1 of the semicircle law",
    )
    if problem:
        return failed(problem)
    n = 8000
    x = disk_points(rng, n, radius=1.0)
    pair = _pair(student.call(probe_map, FORWARD, x.tolist(), False), f"{FORWARD}(x)", n)
    if isinstance(pair, str):
        return failed(pair)
    y, ladj = pair
    inner = (x**2).sum(axis=1) <= 0.95**2  # away from the circle, where the slopes blow up
    if not np.allclose(ladj[inner], LOG_4_OVER_PI, atol=1e-8):
        return failed(
            f"expected the log-det of {FORWARD} to be the same at every point (a uniform density "
            f"goes to a uniform density), found values from {ladj[inner].min():.4f} to "
            f"{ladj[inner].max():.4f}"
        )
    counts, _, _ = np.histogram2d(y[:, 0], y[:, 1], bins=8, range=[[-1, 1], [-1, 1]])
    expected = n / 64
    statistic = float(((counts - expected) ** 2 / expected).sum())
    # The exact map gives a chi-square statistic with 63 degrees of freedom: failing it at
    # p < 1e-6 wrongly fails a right answer once in a million gradings.
    if stats.chi2.sf(statistic, 63) < 1e-6:
        rows, cols = counts.sum(axis=1), counts.sum(axis=0)
        spread = max(np.ptp(rows), np.ptp(cols)) / (n / 8)
        return failed(
            f"expected the images of {n} uniform disk samples to be uniform on the square: equal "
            f"counts in an 8 x 8 grid of cells, found counts far from equal (chi-square "
            f"{statistic:.0f} for 63 degrees of freedom; the counts per column or row differ by "
            f"up to {spread:.0%} of their mean)"
        )
    return passed("exact couplings; uniform disk samples land uniformly on the square")


@EXERCISE.check(points=1, answers=[TO_SQUARE], hidden=True)
def to_square_maps(student: Student, rng: np.random.Generator) -> Outcome:
    """to_square(flow, x) is erf(z / sqrt 2) of z = flow.inverse(x)[0]: normal to uniform."""
    x = disk_points(rng, 50)
    matrix, shift = _stand_in(rng)
    got, _ = decode_array(
        student.call(probe_to_square, *_to_square_args(x, matrix, shift)), f"{TO_SQUARE}(flow, x)"
    )
    want = reference_to_square(x @ matrix.T + shift)
    if got.shape != want.shape:
        return failed(f"expected {TO_SQUARE}(flow, x) of shape {want.shape}, found {got.shape}")
    if not np.allclose(got, want, rtol=1e-7, atol=1e-7):
        return failed(
            f"expected {TO_SQUARE}(flow, x) = 2 Phi(z) - 1 = erf(z / sqrt 2) elementwise, for z = "
            "flow.inverse(x)[0] (the flow's base point of x), found other values for a stand-in "
            "flow whose inverse is affine"
        )
    return passed("base point of each x, then the normal CDF onto [-1, 1]")


def _edge_cases(rng: np.random.Generator) -> list[tuple[list, float]]:
    """Error curves with a known first crossing, unordered and missing depths, ties, none."""
    cases = []
    for _ in range(2):
        depths = list(range(1, int(rng.integers(4, 8))))
        cross = int(rng.integers(1, len(depths)))  # index of the first depth at or below
        threshold = float(rng.uniform(0.05, 0.3))
        errors = [
            threshold * (rng.uniform(1.2, 4) if i < cross else rng.uniform(0.2, 0.9))
            for i in range(len(depths))
        ]
        cases.append((list(zip(depths, errors, strict=True)), threshold))
    threshold = float(rng.uniform(0.05, 0.3))
    # depths 1, 2, 4, 8 in shuffled order; the first crossing at 4; 8 above again
    curve = [(1, 3 * threshold), (2, 1.5 * threshold), (4, 0.5 * threshold), (8, 2 * threshold)]
    cases.append(([curve[i] for i in rng.permutation(4)], threshold))
    cases.append(([(d, threshold * (1 + d)) for d in (1, 2, 3)], threshold))  # never reached
    cases.append(([(1, 2 * threshold), (2, threshold), (3, threshold / 2)], threshold))  # equal
    cases.append(([(d, threshold / d) for d in (2, 3, 4)], threshold * 1.01))  # from the start
    cases.append(([(3, threshold / 2), (1, 2 * threshold), (2, threshold / 3)], threshold))
    return cases


@EXERCISE.check(points=1, answers=[SMALLEST], hidden=True)
def smallest_depth_rule(student: Student, rng: np.random.Generator) -> Outcome:
    """smallest_depth gives the smallest depth whose error is at most the threshold (None when
    there is none): unordered and missing depths, ties with the threshold, no depth at all."""
    cases = _reached_cases(rng) + _edge_cases(rng)
    for value, (curve, threshold) in zip(_ask_smallest(student, cases), cases, strict=True):
        want = reference_smallest(dict(curve), threshold)
        if value != want or type(value) is not type(want):
            found = value["type"] if isinstance(value, dict) else repr(value)
            return failed(
                f"expected {_smallest_call(curve, threshold)} to be {want!r}, the smallest depth "
                f"whose error is at most the threshold, found {found}"
            )
    return passed(f"the smallest depth at or below the threshold, for {len(cases)} error curves")


@EXERCISE.check(points=1, answers=[STUDY], hidden=True)
def study_measured_on_held_out(student: Student, rng: np.random.Generator) -> Outcome:
    """errors[d] is the KL of the trained depth-d flow measured on the held-out x_test, and
    depth_needed the smallest depth whose measured KL is at most THRESHOLD."""
    data = student.call(probe_study, test_set().tolist(), THRESHOLD)
    if "type" in data:
        return failed(f"expected flows and errors to be dicts keyed by depth, found {data['type']}")
    rows = {row["depth"]: row for row in data["rows"]}
    if (
        None in rows
        or sorted(rows) != sorted(DEPTHS)
        or any("log_q" not in r for r in rows.values())
    ):
        return failed(f"expected a trained flow and an error for each of the depths {list(DEPTHS)}")
    log_q = {
        depth: decode_array(rows[depth]["log_q"], f"flows[{depth}].log_prob(x_test)")[0]
        for depth in DEPTHS
    }
    errors = reference_errors(log_q)
    for depth in DEPTHS:
        got, want = rows[depth]["error"], errors[depth]
        if not (
            got is not None and math.isfinite(got) and abs(got - want) <= 1e-4 + 1e-5 * abs(want)
        ):
            return failed(
                f"expected errors[{depth}] to be the KL mean(log p_disk - log q) of flows[{depth}] "
                f"measured on the held-out x_test, found "
                + (f"{got:.4f}, {got - want:+.4f} away from it " if got is not None else "None ")
                + "(measured on the training samples, on other samples, or with a sign slip?)"
            )
    want = reference_smallest(errors, THRESHOLD)
    near = [d for d, e in errors.items() if abs(e - THRESHOLD) < 1e-4]  # too close to call
    accepted = {want} | ({reference_smallest(errors, THRESHOLD + 2e-4)} if near else set())
    if data["needed"] not in accepted:
        shown = ", ".join(f"{d}: {e:.3f}" for d, e in errors.items())
        return failed(
            f"expected depth_needed to be {want!r}, the smallest depth whose held-out KL is at "
            f"most {THRESHOLD} (your flows measure {{{shown}}} on x_test), found "
            f"{data['needed']!r}"
        )
    return passed("each error is the held-out KL of its flow; the smallest depth that reaches it")


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
