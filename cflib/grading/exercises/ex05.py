r"""Exercise 05: how many coupling layers turn a uniform disk into a uniform square.

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

11 points, 3 of them hidden.
"""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
from scipy import special, stats

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
from cflib.grading.wire import decode_array, describe, encode_tensor

EXERCISE = Exercise("05", "How many coupling layers turn a disk into a square", "05_disk_to_square")

RESCALE = "rescale_chords"
UNIFORMISE = "uniformise_first"
FORWARD = "disk_to_square"
INVERSE = "square_to_disk"
TO_SQUARE = "to_square"
SMALLEST = "smallest_depth"
STUDY = "depth_study"  # its checks grade the variables flows, errors and depth_needed it leaves
COMPARISON = "comparison"

DEPTHS = (1, 2, 3, 4)
THRESHOLD = 0.15
TEST_SEED, TEST_SIZE = 2, 5000
LOG_4_OVER_PI = math.log(4 / math.pi)


# --- the reference (grader side) ----------------------------------------------------------------


def disk_points(rng: np.random.Generator, n: int, radius: float = 0.99) -> np.ndarray:
    """``n`` points uniform in the disk of ``radius`` (kept off the unit circle, where the maps
    have infinite slope)."""
    r = radius * np.sqrt(rng.uniform(size=n))
    theta = rng.uniform(0, 2 * np.pi, size=n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def reference_rescale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = np.sqrt(1 - x[:, 0] ** 2)
    return np.stack([x[:, 0], x[:, 1] / half], axis=1), -np.log(half)


def reference_uniformise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x1 = x[:, 0]
    root = np.sqrt(1 - x1**2)
    y1 = (2 / np.pi) * (x1 * root + np.arcsin(x1))
    return np.stack([y1, x[:, 1]], axis=1), LOG_4_OVER_PI + np.log(root)


def reference_smallest(errors: dict[int, float], threshold: float) -> int | None:
    reached = [d for d, e in errors.items() if e <= threshold]
    return min(reached) if reached else None


@cache
def test_set() -> np.ndarray:
    """The notebook's held-out ``x_test`` (float32 values, as the notebook holds them)."""
    import torch

    import cflib

    generator = torch.Generator().manual_seed(TEST_SEED)
    x = cflib.targets.UniformDisk().sample(TEST_SIZE, generator=generator).float()
    return x.double().numpy()


def _pair(data: dict, what: str, n: int) -> tuple[np.ndarray, np.ndarray] | str:
    """Decode a probe's ``{"y", "ladj"}``; a message when they are not tensors of the right size."""
    if "type" in data:
        return f"expected {what} to return a pair (y, ladj), found {data['type']}"
    y, _ = decode_array(data["y"], f"y of {what}")
    ladj, _ = decode_array(data["ladj"], f"ladj of {what}")
    if y.shape != (n, 2) or ladj.shape != (n,):
        return (
            f"expected {what} to return y of shape ({n}, 2) and ladj of shape ({n},), found "
            f"{y.shape} and {ladj.shape}"
        )
    return y, ladj


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_map(answers, name, x, inverse):
    import torch

    x = torch.tensor(x, dtype=torch.float64)
    original = x.clone()
    function = answers[name]
    out = function(x, inverse=True) if inverse else function(x)
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"type": describe(out)}
    return {
        "y": encode_tensor(out[0]),
        "ladj": encode_tensor(out[1]),
        "input_unchanged": bool(torch.equal(x, original)),
    }


def probe_round_trip(answers, x, u):
    import torch

    forward, inverse = answers["disk_to_square"], answers["square_to_disk"]
    x, u = torch.tensor(x, dtype=torch.float64), torch.tensor(u, dtype=torch.float64)
    out = {}
    for key, first, second, start in (
        ("disk", forward, inverse, x),
        ("square", inverse, forward, u),
    ):
        there = first(start)
        back = second(there[0])
        out[key] = {
            "back": encode_tensor(back[0]),
            "ladj_there": encode_tensor(there[1]),
            "ladj_back": encode_tensor(back[1]),
        }
    return out


def probe_autograd(answers, names, x):
    import torch

    x = torch.tensor(x, dtype=torch.float64)
    out = {}
    for name in names:
        function = answers[name]
        rows = []
        for point in x:
            jac = torch.autograd.functional.jacobian(lambda v, f=function: f(v[None])[0][0], point)
            with torch.no_grad():
                ladj = function(point[None])[1]
            rows.append([float(torch.linalg.slogdet(jac).logabsdet), float(ladj.reshape(-1)[0])])
        out[name] = rows
    return out


def probe_to_square(answers, x, matrix, shift):
    import torch

    class AffineStandIn:
        """A 'flow' whose inverse is z = x A^T + b, with log|det A| as its log-det."""

        def __init__(self):
            self.a = torch.tensor(matrix, dtype=torch.float64)
            self.b = torch.tensor(shift, dtype=torch.float64)

        def inverse(self, x):
            z = x @ self.a.T + self.b
            return z, torch.linalg.slogdet(self.a).logabsdet.expand(len(x))

        def forward(self, z):
            x = torch.linalg.solve(self.a, (z - self.b).T).T
            return x, -torch.linalg.slogdet(self.a).logabsdet.expand(len(z))

    return encode_tensor(
        answers["to_square"](AffineStandIn(), torch.tensor(x, dtype=torch.float64))
    )


def probe_smallest(answers, cases):
    out = []
    for errors, threshold in cases:
        got = answers["smallest_depth"]({int(d): e for d, e in errors}, threshold)
        out.append(got if got is None or isinstance(got, int) else {"type": describe(got)})
    return out


def probe_study(answers, x_test):
    import torch

    if not all(name in answers for name in ("flows", "errors")):
        # The study left no variables: say so with the reason when depth_study is still the stub
        # (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["depth_study"]([1], torch.empty(0, 2), torch.empty(0, 2))
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows, errors = answers["flows"], answers["errors"]
    if not isinstance(flows, dict) or not isinstance(errors, dict):
        return {"type": f"flows: {describe(flows)}, errors: {describe(errors)}"}
    x = torch.tensor(x_test, dtype=torch.get_default_dtype())
    rows = []
    for depth in sorted(set(flows) | set(errors), key=str):
        flow, error = flows.get(depth), errors.get(depth)
        row = {"depth": depth if isinstance(depth, int) else str(depth)}
        try:
            row["error"] = float(error)
        except (TypeError, ValueError):
            row["error"] = None
        if flow is not None and hasattr(flow, "log_prob"):
            modules = list(flow.modules()) if hasattr(flow, "modules") else []
            row["layers"] = [
                type(m).__name__ for m in modules if type(m).__name__.endswith("Coupling")
            ]
            with torch.no_grad():
                row["log_q"] = encode_tensor(flow.log_prob(x))
        rows.append(row)
    return {"rows": rows}


def probe_depth_needed(answers, x_test, depths):
    import torch

    if not all(name in answers for name in ("flows", "depth_needed")):
        try:
            answers["depth_study"]([1], torch.empty(0, 2), torch.empty(0, 2))
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows, needed = answers["flows"], answers["depth_needed"]
    x = torch.tensor(x_test, dtype=torch.get_default_dtype())
    log_q = {}
    for depth in depths:
        with torch.no_grad():
            log_q[str(depth)] = encode_tensor(flows[depth].log_prob(x))
    return {
        "needed": needed if needed is None or isinstance(needed, int) else describe(needed),
        "log_q": log_q,
    }


# --- checks -------------------------------------------------------------------------------------


def _grade_map(student: Student, name: str, x: np.ndarray, reference, formula: str) -> Outcome:
    n = len(x)
    what = f"{name}(x) for x of shape ({n}, 2)"
    data = student.call(probe_map, name, x.tolist(), False)
    pair = _pair(data, what, n)
    if isinstance(pair, str):
        return failed(pair)
    y, ladj = pair
    if not data["input_unchanged"]:
        return failed(f"expected {what} to leave x unchanged, found it modified in place")
    want_y, want_ladj = reference(x)
    bad = ~np.isclose(y, want_y, rtol=1e-9, atol=1e-9).all(axis=0)
    if bad.any():
        return failed(
            f"expected {formula} from {what}, found wrong values in coordinate "
            f"{(np.flatnonzero(bad) + 1).tolist()}"
        )
    if not np.allclose(ladj, want_ladj, rtol=1e-9, atol=1e-9):
        return failed(
            f"expected ladj = log|det dy/dx| of {name} (one value per point), found values off by "
            f"up to {np.abs(ladj - want_ladj).max():.3g}"
            + (" with the opposite sign" if np.allclose(ladj, -want_ladj, atol=1e-9) else "")
        )
    return passed(f"{name} maps and log-dets right")


@EXERCISE.check(points=1, answers=[RESCALE])
def rescale_chords_values(student: Student, rng: np.random.Generator) -> Outcome:
    """rescale_chords keeps x1 and maps each vertical chord of the disk onto [-1, 1]."""
    x = disk_points(rng, 200)
    return _grade_map(
        student, RESCALE, x, reference_rescale, "y = (x1, x2 divided by the chord's half-length)"
    )


@EXERCISE.check(points=1, answers=[UNIFORMISE])
def uniformise_first_values(student: Student, rng: np.random.Generator) -> Outcome:
    """uniformise_first keeps x2 and maps x1 through the CDF-based map F onto [-1, 1]."""
    x = np.stack([rng.uniform(-0.99, 0.99, 200), rng.uniform(-1, 1, 200)], axis=1)
    return _grade_map(
        student, UNIFORMISE, x, reference_uniformise, "y = (F(x1), x2) with F = 2 CDF - 1"
    )


@EXERCISE.check(points=1, answers=[FORWARD])
def square_is_uniform(student: Student, rng: np.random.Generator) -> Outcome:
    """disk_to_square sends uniform disk samples to uniform samples of the square [-1, 1]^2."""
    n = 8000
    x = disk_points(rng, n, radius=1.0)
    data = student.call(probe_map, FORWARD, x.tolist(), False)
    pair = _pair(data, f"{FORWARD}(x)", n)
    if isinstance(pair, str):
        return failed(pair)
    y, _ = pair
    outside = int((np.abs(y) > 1 + 1e-9).any(axis=1).sum() + (~np.isfinite(y)).any(axis=1).sum())
    if outside:
        return failed(
            f"expected every image of {n} uniform disk samples to lie in the square [-1, 1]^2, "
            f"found {outside} outside it (or not finite)"
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
    return passed(f"{n} uniform disk samples land uniformly on the square")


@EXERCISE.check(points=1, answers=[FORWARD, INVERSE])
def square_to_disk_inverts(student: Student, rng: np.random.Generator) -> Outcome:
    """square_to_disk inverts disk_to_square both ways, with the opposite log-det."""
    x = disk_points(rng, 100, radius=0.98)
    u = rng.uniform(-0.98, 0.98, size=(100, 2))
    data = student.call(probe_round_trip, x.tolist(), u.tolist())
    for key, start, first, second in (
        ("disk", x, FORWARD, INVERSE),
        ("square", u, INVERSE, FORWARD),
    ):
        back, _ = decode_array(data[key]["back"], f"{second}({first}(x))")
        there, _ = decode_array(data[key]["ladj_there"], f"the log-det of {first}")
        again, _ = decode_array(data[key]["ladj_back"], f"the log-det of {second}")
        if back.shape != start.shape:
            return failed(
                f"expected {second}({first}(x)) to have the shape of x, found {back.shape}"
            )
        if not np.allclose(back, start, rtol=1e-8, atol=1e-8):
            return failed(
                f"expected {second}({first}(x)) = x for 100 points x of the {key}, found errors "
                f"up to {np.abs(back - start).max():.3g}"
            )
        if there.shape != again.shape or not np.allclose(there + again, 0, atol=1e-8):
            return failed(
                f"expected the log-det of {second} to be minus that of {first} at the matching "
                f"point, found their sum off zero by up to {np.abs(there + again).max():.3g}"
            )
    return passed("each map undoes the other, log-dets included")


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


@EXERCISE.check(points=1, answers=[TO_SQUARE])
def to_square_maps(student: Student, rng: np.random.Generator) -> Outcome:
    """to_square(flow, x) is erf(z / sqrt 2) of z = flow.inverse(x)[0]: normal to uniform."""
    x = disk_points(rng, 50)
    matrix = rng.normal(size=(2, 2)) + 2 * np.eye(2)
    shift = rng.normal(scale=0.5, size=2)
    got, _ = decode_array(
        student.call(probe_to_square, x.tolist(), matrix.tolist(), shift.tolist()),
        f"{TO_SQUARE}(flow, x)",
    )
    want = special.erf((x @ matrix.T + shift) / math.sqrt(2))
    if got.shape != want.shape:
        return failed(f"expected {TO_SQUARE}(flow, x) of shape {want.shape}, found {got.shape}")
    if not np.allclose(got, want, rtol=1e-7, atol=1e-7):
        return failed(
            f"expected {TO_SQUARE}(flow, x) = 2 Phi(z) - 1 = erf(z / sqrt 2) elementwise, for z = "
            "flow.inverse(x)[0] (the flow's base point of x), found other values for a stand-in "
            "flow whose inverse is affine"
        )
    return passed("base point of each x, then the normal CDF onto [-1, 1]")


def _smallest_cases(rng: np.random.Generator, hidden: bool) -> list[tuple[list, float]]:
    """Error curves (depth, error) with a known first crossing of the threshold."""
    cases = []
    for _ in range(3):
        depths = list(range(1, int(rng.integers(4, 8))))
        cross = int(rng.integers(1, len(depths)))  # index of the first depth at or below
        threshold = float(rng.uniform(0.05, 0.3))
        errors = [
            threshold * (rng.uniform(1.2, 4) if i < cross else rng.uniform(0.2, 0.9))
            for i in range(len(depths))
        ]
        cases.append((list(zip(depths, errors, strict=True)), threshold))
    if hidden:
        threshold = float(rng.uniform(0.05, 0.3))
        # depths 1, 2, 4, 8 in shuffled order; the first crossing at 4; 8 above again
        curve = [(1, 3 * threshold), (2, 1.5 * threshold), (4, 0.5 * threshold), (8, 2 * threshold)]
        cases.append(([curve[i] for i in rng.permutation(4)], threshold))
        cases.append(([(d, threshold * (1 + d)) for d in (1, 2, 3)], threshold))  # never reached
        cases.append(([(1, 2 * threshold), (2, threshold), (3, threshold / 2)], threshold))  # equal
        cases.append(([(d, threshold / d) for d in (2, 3, 4)], threshold * 1.01))  # from the start
    return cases


def _grade_smallest(student: Student, cases: list[tuple[list, float]]) -> Outcome:
    got = student.call(probe_smallest, [[[[int(d), float(e)] for d, e in c], t] for c, t in cases])
    for value, (curve, threshold) in zip(got, cases, strict=True):
        want = reference_smallest(dict(curve), threshold)
        if value != want:
            shown = ", ".join(f"{d}: {e:.3f}" for d, e in curve)
            found = value["type"] if isinstance(value, dict) else repr(value)
            return failed(
                f"expected {SMALLEST}({{{shown}}}, {threshold:.3f}) to be {want!r}, the smallest "
                f"depth whose error is at most the threshold, found {found}"
            )
    return passed(f"the smallest depth at or below the threshold, for {len(cases)} error curves")


@EXERCISE.check(points=1, answers=[SMALLEST])
def smallest_depth_rule(student: Student, rng: np.random.Generator) -> Outcome:
    """smallest_depth gives the smallest depth whose error is at most the threshold."""
    return _grade_smallest(student, _smallest_cases(rng, hidden=False))


@EXERCISE.check(points=1, answers=[SMALLEST], hidden=True)
def smallest_depth_edge_cases(student: Student, rng: np.random.Generator) -> Outcome:
    """smallest_depth: unordered and missing depths, ties with the threshold, no depth at all."""
    return _grade_smallest(student, _smallest_cases(rng, hidden=True))


def _reference_errors(log_q: dict[int, np.ndarray]) -> dict[int, float]:
    log_p = -math.log(math.pi)  # every x_test lies in the unit disk
    return {depth: float((log_p - values).mean()) for depth, values in log_q.items()}


@EXERCISE.check(points=1, answers=[STUDY])
def errors_are_held_out(student: Student, rng: np.random.Generator) -> Outcome:
    """errors[d] is the KL of the trained depth-d flow measured on the held-out x_test."""
    data = student.call(probe_study, test_set().tolist())
    if "type" in data:
        return failed(f"expected flows and errors to be dicts keyed by depth, found {data['type']}")
    rows = {row["depth"]: row for row in data["rows"]}
    if sorted(rows, key=str) != sorted(DEPTHS, key=str):
        return failed(
            f"expected flows and errors for the depths {list(DEPTHS)} (int keys), found "
            f"{sorted(rows, key=str)}"
        )
    for depth in DEPTHS:
        row = rows[depth]
        if "layers" not in row or row.get("error") is None:
            return failed(
                f"expected a trained flow in flows[{depth}] and a number in errors[{depth}]"
            )
        spline = [n for n in row["layers"] if n == "SplineCoupling"]
        if len(row["layers"]) != depth or len(spline) != depth:
            return failed(
                f"expected flows[{depth}] to be a flow of {depth} spline couplings, found "
                f"{len(row['layers'])} couplings "
                f"({', '.join(sorted(set(row['layers']))) or 'none'})"
            )
        log_q, _ = decode_array(row["log_q"], f"flows[{depth}].log_prob(x_test)")
        want = _reference_errors({depth: log_q})[depth]
        if not (
            math.isfinite(row["error"]) and abs(row["error"] - want) <= 1e-4 + 1e-5 * abs(want)
        ):
            return failed(
                f"expected errors[{depth}] to be the KL mean(log p_disk - log q) of flows[{depth}] "
                f"measured on the held-out x_test, found {row['error']:.4f}, "
                f"{row['error'] - want:+.4f} away from it (measured on the training samples, on "
                "other samples, or with a sign slip?)"
            )
    return passed("each error is the held-out KL of the flow of that depth")


@EXERCISE.check(points=1, answers=[STUDY])
def depth_needed_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """depth_needed is the smallest depth whose measured held-out KL is at most THRESHOLD."""
    data = student.call(probe_depth_needed, test_set().tolist(), list(DEPTHS))
    log_q = {
        depth: decode_array(data["log_q"][str(depth)], f"flows[{depth}].log_prob(x_test)")[0]
        for depth in DEPTHS
    }
    errors = _reference_errors(log_q)
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
    return passed("the smallest depth that reaches the stated error")


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
