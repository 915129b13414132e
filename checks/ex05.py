r"""Exercise 05: how many coupling layers turn a uniform disk into a uniform square (public checks:
no reference answers here).

Graded answers: the two couplings ``rescale_chords(x, inverse=False)`` and
``uniformise_first(x, inverse=False)``, each returning ``(y, ladj)``; the exact map
``disk_to_square(x)`` and its inverse ``square_to_disk(y)``; ``to_square(flow, x)``, the learned
disk-to-square map; ``smallest_depth(errors, threshold)``; the variables ``flows``, ``errors`` and
``depth_needed`` that the depth study leaves (graded under the name ``depth_study``); and the written
``comparison``.

The public checks verify what can be seen from the answers' outputs alone: shapes, inputs left
unchanged, the coordinate each coupling keeps, images inside the square, each inverse undoing its
map, each ``ladj`` equal to the log-absolute-determinant of a Jacobian that the grader forms itself
by central finite differences (float64) of the outputs at inputs it perturbs, ``to_square`` an
increasing function of the flow's base point, ``smallest_depth`` a depth that reaches the
threshold, and the study's flows and errors complete and consistent with ``depth_needed``. The
exact values, the uniformity of the square, the held-out measurements and the written comparison
are hidden checks (``ex05_hidden.py``, left out of the student edition). 11 points, 5 of them
hidden.

No cflib object implements what the answers ask for, so nothing is disabled while grading (the
study is meant to use ``cflib.CouplingFlow`` and ``cflib.train``).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import decode_array, describe, encode_tensor

EXERCISE = Exercise(
    "05",
    "How many coupling layers turn a disk into a square",
    "05_disk_to_square",
    hidden_checks=5,
    hidden_points=5,
    forbidden={},  # cflib has no disk-to-square map, CDF map or depth rule to delegate to
    time_limit=290,  # 4 x the solution's 71 s (4 flows trained; kernel start included), 2 busy CPUs
)

RESCALE = "rescale_chords"
UNIFORMISE = "uniformise_first"
FORWARD = "disk_to_square"
INVERSE = "square_to_disk"
TO_SQUARE = "to_square"
SMALLEST = "smallest_depth"
STUDY = "depth_study"  # its checks grade the variables flows, errors and depth_needed it leaves
COMPARISON = "comparison"

DEPTHS = (1, 2, 3, 4)  # as the notebook sets them
THRESHOLD = 0.15
TEST_SEED, TEST_SIZE = 2, 5000
STEP = 1e-5  # central finite differences, in float64


# --- inputs (grader side) -----------------------------------------------------------------------


def disk_points(rng: np.random.Generator, n: int, radius: float = 0.99) -> np.ndarray:
    """``n`` points uniform in the disk of ``radius`` (kept off the unit circle, where the maps
    have infinite slope)."""
    r = radius * np.sqrt(rng.uniform(size=n))
    theta = rng.uniform(0, 2 * np.pi, size=n)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


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


def perturbed(x: np.ndarray, step: float = STEP) -> np.ndarray:
    """Each point of ``x`` (shape ``(n, 2)``), then it moved by +step and -step along each axis:
    shape ``(5 n, 2)``."""
    rows = []
    for point in x:
        rows.append(point)
        for i in range(2):
            for sign in (1.0, -1.0):
                moved = point.copy()
                moved[i] += sign * step
                rows.append(moved)
    return np.asarray(rows)


def fd_log_dets(out: np.ndarray, step: float = STEP) -> np.ndarray:
    """log|det J| at each point, from the outputs at :func:`perturbed` points (``-inf`` where the
    Jacobian is singular)."""
    groups = out.reshape(-1, 5, 2)
    result = []
    for rows in groups:
        jacobian = np.stack([(rows[1] - rows[2]), (rows[3] - rows[4])], axis=1) / (2 * step)
        sign, logdet = np.linalg.slogdet(jacobian)  # column i: d f / d x_i
        result.append(logdet if sign != 0 else -np.inf)
    return np.asarray(result)


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
        if not (isinstance(there, tuple | list) and len(there) == 2):
            return {"type": describe(there)}
        back = second(there[0])
        if not (isinstance(back, tuple | list) and len(back) == 2):
            return {"type": describe(back)}
        out[key] = {
            "back": encode_tensor(back[0]),
            "ladj_there": encode_tensor(there[1]),
            "ladj_back": encode_tensor(back[1]),
        }
    return out


def probe_to_square(answers, x, matrix, shift, inverse_matrix, log_det):
    """to_square on a stand-in flow whose inverse is z = x A^T + b (A, b, A^-1 and log|det A| all
    given by the grader)."""
    import torch

    a = torch.tensor(matrix, dtype=torch.float64)
    b = torch.tensor(shift, dtype=torch.float64)
    a_inv = torch.tensor(inverse_matrix, dtype=torch.float64)

    class AffineStandIn:
        """A 'flow' whose inverse is z = x A^T + b, with log|det A| as its log-det."""

        def inverse(self, x):
            return x @ a.T + b, torch.full((len(x),), log_det, dtype=torch.float64)

        def forward(self, z):
            return (z - b) @ a_inv.T, torch.full((len(z),), -log_det, dtype=torch.float64)

    return encode_tensor(
        answers["to_square"](AffineStandIn(), torch.tensor(x, dtype=torch.float64))
    )


def probe_smallest(answers, cases):
    out = []
    for errors, threshold in cases:
        got = answers["smallest_depth"]({int(d): e for d, e in errors}, threshold)
        if isinstance(got, bool) or not (got is None or isinstance(got, int)):
            got = {"type": describe(got)}
        out.append(got)
    return out


def probe_study(answers, x_test, threshold):
    """What the study left: for each depth, the flow's couplings, the error, and (when x_test is
    given) the flow's log_prob on x_test; depth_needed, and smallest_depth(errors, threshold)."""
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
    x = None if x_test is None else torch.tensor(x_test, dtype=torch.get_default_dtype())
    rows = []
    for depth in sorted(set(flows) | set(errors), key=str):
        flow, error = flows.get(depth), errors.get(depth)
        row = {"depth": depth if type(depth) is int else None, "key": repr(depth)[:40]}
        try:
            row["error"] = float(error)
        except (TypeError, ValueError):
            row["error"] = None
        if flow is not None and hasattr(flow, "log_prob"):
            modules = list(flow.modules()) if hasattr(flow, "modules") else []
            row["layers"] = [
                type(m).__name__ for m in modules if type(m).__name__.endswith("Coupling")
            ]
            if x is not None:
                with torch.no_grad():
                    row["log_q"] = encode_tensor(flow.log_prob(x))
        rows.append(row)
    needed = answers["depth_needed"]
    rule = answers["smallest_depth"](errors, threshold)
    return {
        "rows": rows,
        "needed": needed if needed is None or type(needed) is int else describe(needed),
        "rule": rule if rule is None or type(rule) is int else describe(rule),
    }


# --- checks -------------------------------------------------------------------------------------


def _log_det_problem(
    student: Student, name: str, points: np.ndarray, inverse: bool, what: str
) -> str:
    """'' when the ladj of ``name`` at ``points`` is log|det| of its Jacobian by central finite
    differences of its outputs (grader side), else a message."""
    batch = perturbed(points)
    data = student.call(probe_map, name, batch.tolist(), inverse)
    pair = _pair(data, f"{what} on {len(batch)} points", len(batch))
    if isinstance(pair, str):
        return pair
    out, ladj = pair
    base, want = ladj[::5], fd_log_dets(out)
    bad = ~(np.isfinite(base) & (np.abs(base - want) <= 1e-6 * (1 + np.abs(want))))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return (
            f"expected the ladj of {what} to be log|det| of its Jacobian at each point "
            f"({want[i]:.6g} at {np.round(points[i], 4).tolist()}, measured by central finite "
            f"differences of the outputs at points {STEP:g} away along each axis), found "
            f"{base[i]:.6g}"
            + (" (the opposite sign)" if np.isclose(base[i], -want[i], rtol=1e-6) else "")
        )
    return ""


def _coupling_problem(
    student: Student,
    name: str,
    x: np.ndarray,
    u: np.ndarray,
    keep: int,
    tolerance: float,
) -> str:
    """'' when the coupling ``name`` is consistent, else a message: shapes, x unchanged, coordinate
    ``keep`` kept, images inside the square, the inverse undoing the map within ``tolerance``, and
    both directions' ladj against finite differences (at x[:12] and at points u of the square)."""
    n = len(x)
    what = f"{name}(x) for x of shape ({n}, 2)"
    data = student.call(probe_map, name, x.tolist(), False)
    pair = _pair(data, what, n)
    if isinstance(pair, str):
        return pair
    y, _ = pair
    if not data["input_unchanged"]:
        return f"expected {what} to leave x unchanged, found it modified in place"
    if not np.allclose(y[:, keep], x[:, keep], rtol=0, atol=1e-12):
        return (
            f"expected {what} to keep coordinate {keep + 1} unchanged (a coupling), found it "
            f"changed by up to {np.abs(y[:, keep] - x[:, keep]).max():.3g}"
        )
    outside = int((~np.isfinite(y) | (np.abs(y) > 1 + 1e-9)).any(axis=1).sum())
    if outside:
        return (
            f"expected every image from {what} to lie in the square [-1, 1]^2, found {outside} "
            "outside it (or not finite)"
        )
    back_what = f"{name}({name}(x)[0], inverse=True)"
    data = student.call(probe_map, name, y.tolist(), True)
    pair = _pair(data, back_what, n)
    if isinstance(pair, str):
        return pair
    back, _ = pair
    if not data["input_unchanged"]:
        return f"expected {name}(y, inverse=True) to leave y unchanged, found it modified in place"
    if not np.allclose(back, x, rtol=0, atol=tolerance):
        return (
            f"expected {back_what} to give x back (within {tolerance:g}) for {n} points x, found "
            f"errors up to {np.abs(back - x).max():.3g}"
        )
    return _log_det_problem(student, name, x[:12], False, f"{name}(x)") or _log_det_problem(
        student, name, u, True, f"{name}(x, inverse=True)"
    )


@EXERCISE.check(points=1, answers=[RESCALE])
def rescale_chords_consistent(student: Student, rng: np.random.Generator) -> Outcome:
    """rescale_chords keeps x1, maps the disk into the square, is undone by inverse=True, and both
    directions' ladj equal log|det| of their Jacobians (finite differences, float64)."""
    x = disk_points(rng, 200)
    x[:12] = disk_points(rng, 12, radius=0.95)
    u = rng.uniform(-0.95, 0.95, size=(12, 2))
    problem = _coupling_problem(student, RESCALE, x, u, keep=0, tolerance=1e-9)
    return failed(problem) if problem else passed("coupling, inverse and log-dets consistent")


@EXERCISE.check(points=1, answers=[UNIFORMISE])
def uniformise_first_consistent(student: Student, rng: np.random.Generator) -> Outcome:
    """uniformise_first keeps x2, maps x1 increasingly into [-1, 1], is undone by inverse=True
    (to about 1e-12), and both directions' ladj equal log|det| of their Jacobians."""
    x = np.stack([rng.uniform(-0.99, 0.99, 200), rng.uniform(-1, 1, 200)], axis=1)
    x[:12, 0] = rng.uniform(-0.95, 0.95, 12)
    u = rng.uniform(-0.9, 0.9, size=(12, 2))
    problem = _coupling_problem(student, UNIFORMISE, x, u, keep=1, tolerance=1e-10)
    if problem:
        return failed(problem)
    data = student.call(probe_map, UNIFORMISE, x.tolist(), False)
    y, _ = _pair(data, f"{UNIFORMISE}(x)", len(x))
    order = np.argsort(x[:, 0])
    if not (np.diff(y[order, 0]) > 0).all():
        return failed(
            f"expected the first coordinate of {UNIFORMISE}(x) to increase with x1 (F is "
            "increasing), found it decreasing or constant between some points"
        )
    return passed("coupling, inverse (accurate) and log-dets consistent")


@EXERCISE.check(points=1, answers=[FORWARD, INVERSE])
def square_to_disk_inverts(student: Student, rng: np.random.Generator) -> Outcome:
    """square_to_disk inverts disk_to_square both ways with the opposite log-det, disk points land
    in the square, and both log-dets equal log|det| of their Jacobians (finite differences)."""
    x = disk_points(rng, 100, radius=0.98)
    u = rng.uniform(-0.98, 0.98, size=(100, 2))
    data = student.call(probe_round_trip, x.tolist(), u.tolist())
    if "type" in data:
        return failed(f"expected {FORWARD} and {INVERSE} to return pairs, found {data['type']}")
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
    n = 2000
    data = student.call(probe_map, FORWARD, disk_points(rng, n, radius=1.0).tolist(), False)
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
    problem = _log_det_problem(
        student, FORWARD, disk_points(rng, 10, radius=0.95), False, f"{FORWARD}(x)"
    ) or _log_det_problem(
        student, INVERSE, rng.uniform(-0.9, 0.9, size=(10, 2)), False, f"{INVERSE}(x)"
    )
    if problem:
        return failed(problem)
    return passed("each map undoes the other, log-dets included; disk samples land in the square")


def _stand_in(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A well-conditioned matrix A and a shift b for the stand-in flow z = x A^T + b."""
    return 0.4 * rng.normal(size=(2, 2)) + np.eye(2), rng.normal(scale=0.3, size=2)


def _to_square_args(x: np.ndarray, matrix: np.ndarray, shift: np.ndarray) -> list:
    log_det = float(np.linalg.slogdet(matrix)[1])
    return [x.tolist(), matrix.tolist(), shift.tolist(), np.linalg.inv(matrix).tolist(), log_det]


@EXERCISE.check(points=1, answers=[TO_SQUARE])
def to_square_is_increasing(student: Student, rng: np.random.Generator) -> Outcome:
    """to_square(flow, x) has x's shape, lies in [-1, 1], and is one increasing function of the
    flow's base point z = flow.inverse(x)[0], applied to each coordinate."""
    x = disk_points(rng, 60)
    matrix, shift = _stand_in(rng)
    call = f"{TO_SQUARE}(flow, x)"
    got, _ = decode_array(student.call(probe_to_square, *_to_square_args(x, matrix, shift)), call)
    if got.shape != x.shape:
        return failed(f"expected {call} of shape {x.shape}, found {got.shape}")
    if not (np.isfinite(got).all() and (np.abs(got) <= 1).all()):
        return failed(f"expected every value of {call} to lie in [-1, 1], found some outside")
    z = (x @ matrix.T + shift).ravel()  # the stand-in flow's base points
    order = np.argsort(z)
    rising = np.diff(got.ravel()[order])
    if not (rising[np.diff(z[order]) > 1e-6] > 0).all():
        return failed(
            f"expected {call} to be one increasing function of z = flow.inverse(x)[0], applied "
            "to each coordinate (so that it sends the base distribution to the square), found "
            "values that do not increase with z for a stand-in flow whose inverse is affine"
        )
    return passed("an increasing map of the base point onto [-1, 1], coordinate by coordinate")


def _reached_cases(rng: np.random.Generator) -> list[tuple[list, float]]:
    """Error curves (depth, error) in which at least one depth reaches the threshold."""
    cases = []
    for _ in range(3):
        depths = list(range(1, int(rng.integers(4, 8))))
        threshold = float(rng.uniform(0.05, 0.3))
        errors = [threshold * float(rng.uniform(0.3, 3)) for _ in depths]
        errors[int(rng.integers(len(depths)))] = threshold * float(rng.uniform(0.2, 0.9))
        cases.append((list(zip(depths, errors, strict=True)), threshold))
    return cases


def _smallest_call(curve: list, threshold: float) -> str:
    shown = ", ".join(f"{d}: {e:.3f}" for d, e in curve)
    return f"{SMALLEST}({{{shown}}}, {threshold:.3f})"


def _ask_smallest(student: Student, cases: list[tuple[list, float]]) -> list:
    return student.call(probe_smallest, [[[[int(d), float(e)] for d, e in c], t] for c, t in cases])


@EXERCISE.check(points=1, answers=[SMALLEST])
def smallest_depth_is_reached(student: Student, rng: np.random.Generator) -> Outcome:
    """smallest_depth returns a depth of the dict (an int) whose error is at most the threshold."""
    cases = _reached_cases(rng)
    for value, (curve, threshold) in zip(_ask_smallest(student, cases), cases, strict=True):
        errors = dict(curve)
        if not (type(value) is int and value in errors and errors[value] <= threshold):
            found = value["type"] if isinstance(value, dict) else repr(value)
            return failed(
                f"expected {_smallest_call(curve, threshold)} to be a depth (an int key of the "
                f"dict) whose error is at most the threshold, found {found}"
            )
    return passed("a depth that reaches the threshold, for 3 error curves")


@EXERCISE.check(points=1, answers=[STUDY])
def study_is_complete(student: Student, rng: np.random.Generator) -> Outcome:
    """flows[d] is a flow of d spline couplings and errors[d] a number for each depth, and
    depth_needed is smallest_depth(errors, THRESHOLD)."""
    data = student.call(probe_study, None, THRESHOLD)
    if "type" in data:
        return failed(f"expected flows and errors to be dicts keyed by depth, found {data['type']}")
    rows = {row["depth"]: row for row in data["rows"]}
    if None in rows or sorted(rows) != sorted(DEPTHS):
        shown = ", ".join(sorted(r["key"] for r in data["rows"]))
        return failed(
            f"expected flows and errors for the depths {list(DEPTHS)} (int keys), found keys "
            f"{shown or 'none'}"
        )
    for depth in DEPTHS:
        row = rows[depth]
        if "layers" not in row or row.get("error") is None or not math.isfinite(row["error"]):
            return failed(
                f"expected a trained flow in flows[{depth}] and a finite number in errors[{depth}]"
            )
        spline = [n for n in row["layers"] if n == "SplineCoupling"]
        if len(row["layers"]) != depth or len(spline) != depth:
            return failed(
                f"expected flows[{depth}] to be a flow of {depth} spline couplings, found "
                f"{len(row['layers'])} couplings "
                f"({', '.join(sorted(set(row['layers']))) or 'none'})"
            )
    if data["needed"] != data["rule"]:
        return failed(
            f"expected depth_needed to be {SMALLEST}(errors, THRESHOLD) = {data['rule']!r} with "
            f"your errors, found {data['needed']!r}"
        )
    return passed("a flow of each depth, its error, and the depth needed")
