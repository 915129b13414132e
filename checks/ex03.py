r"""Exercise 03: checkerboard masking for image flows (public checks: no reference answers here).

Graded answers: ``checkerboard(height, width, parity)``, a ``(height, width)`` bool mask;
``checkerboard_affine(x, mask, scale_net, shift_net) -> (y, ladj)`` and
``checkerboard_affine_inverse(y, mask, scale_net, shift_net) -> (x, ladj)`` for images of shape
``(B, C, H, W)``. The networks the grader passes are one convolution each (``tanh`` after the
scale's), with weights drawn at grading time.

The public checks verify what can be seen from the answers' outputs alone: shapes and dtypes,
inputs left unchanged, the two parities' masks complementary and alternating, the kept pixels
copied, the networks given the masked input only, the inverse undoing the coupling, and each
``ladj`` equal to the log-absolute-determinant of a Jacobian that the grader forms itself by
central finite differences (float64) of the outputs at inputs it perturbs. The couplings are
checked on random masks (the coupling is defined for any mask). Which pixels each parity keeps, and
the coupling's values, are checked by hidden checks (``ex03_hidden.py``, left out of the student
edition). 10 points, 3 of them hidden.

While the notebook is graded, ``cflib.checkerboard_mask`` and ``cflib.AffineCoupling`` (what the
answers implement) are disabled: an answer that only calls them earns nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import decode_array, describe, encode_tensor

MASK = "checkerboard"
FORWARD = "checkerboard_affine"
INVERSE = "checkerboard_affine_inverse"

EXERCISE = Exercise(
    "03",
    "Checkerboard masking for image flows",
    "03_checkerboard",
    hidden_checks=3,
    hidden_points=3,
    forbidden={
        MASK: ("cflib.masks.checkerboard_mask", "cflib.checkerboard_mask"),
        FORWARD: ("cflib.couplings.AffineCoupling", "cflib.AffineCoupling"),
        INVERSE: ("cflib.couplings.AffineCoupling", "cflib.AffineCoupling"),
    },
    time_limit=130,  # 4 x the solution's 33 s (kernel start included) on 2 busy CPUs
)

STEP = 1e-5  # central finite differences, in float64


# --- inputs (grader side) -----------------------------------------------------------------------


def _weights(rng: np.random.Generator, c: int) -> list[np.ndarray]:
    """Weights and biases of the scale and shift convolutions (c -> c channels, 3 x 3)."""
    return [
        0.4 * rng.normal(size=(c, c, 3, 3)),
        0.2 * rng.normal(size=c),
        0.4 * rng.normal(size=(c, c, 3, 3)),
        0.2 * rng.normal(size=c),
    ]


def random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random bool mask with at least one kept and one transformed pixel (any mask will do)."""
    while True:
        mask = rng.uniform(size=(h, w)) < 0.5
        if mask.any() and not mask.all():
            return mask


def _problem(rng: np.random.Generator, batch: int = 3, small: bool = False) -> dict[str, Any]:
    """Images, a random mask and the weights of the two networks."""
    c = int(rng.integers(1, 3 if small else 4))
    h, w = (int(v) for v in rng.integers(2, 4 if small else 7, size=2))
    return {
        "x": rng.normal(size=(batch, c, h, w)),
        "mask": random_mask(rng, h, w),
        "weights": _weights(rng, c),
    }


def _args(problem: dict[str, Any], x: np.ndarray | None = None) -> list[Any]:
    x = problem["x"] if x is None else x
    return [x.tolist(), problem["mask"].tolist(), [w.tolist() for w in problem["weights"]]]


def _call_text(name: str, problem: dict[str, Any], shape: tuple[int, ...] | None = None) -> str:
    arg = "y" if name == INVERSE else "x"
    shape = tuple(problem["x"].shape) if shape is None else shape
    kept = int(problem["mask"].sum())
    return (
        f"{name}({arg}, mask, scale_net, shift_net) for {arg} of shape {shape} and a mask keeping "
        f"{kept} of {problem['mask'].size} pixels"
    )


def _pair(
    data: dict[str, Any], call: str, shape: tuple[int, ...]
) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Decode ``(out, ladj)`` from a probe; (None, None, message) when unusable."""
    if "type" in data:
        return None, None, f"expected {call} to return a pair (tensor, ladj), found {data['type']}"
    out, out_dtype = decode_array(data["out"], "the first returned value")
    ladj, ladj_dtype = decode_array(data["ladj"], "ladj")
    if out.shape != shape or ladj.shape != shape[:1]:
        return (
            None,
            None,
            (
                f"expected {call} to return a tensor of shape {shape} and ladj of shape "
                f"{shape[:1]}, found {out.shape} and {ladj.shape}"
            ),
        )
    if "float64" not in out_dtype or "float64" not in ladj_dtype:
        return (
            None,
            None,
            (
                f"expected float64 outputs from {call} for float64 inputs, found {out_dtype} and "
                f"{ladj_dtype}"
            ),
        )
    return out, ladj, None


def perturbed(x: np.ndarray, step: float = STEP) -> np.ndarray:
    """Each image of ``x`` followed by it moved by +step and -step along every coordinate.

    For ``x`` of shape ``(B, ...)`` with ``n`` values per image: shape ``(B * (1 + 2 n), ...)``.
    """
    images = []
    for image in x:
        flat = image.reshape(-1)
        images.append(flat)
        for i in range(flat.size):
            for sign in (1.0, -1.0):
                moved = flat.copy()
                moved[i] += sign * step
                images.append(moved)
    return np.stack(images).reshape(-1, *x.shape[1:])


def fd_log_dets(out: np.ndarray, n_images: int, step: float = STEP) -> np.ndarray:
    """log|det J| of each image's map, from the outputs at :func:`perturbed` inputs.

    Column ``i`` of the Jacobian is ``(f(x + step e_i) - f(x - step e_i)) / (2 step)``; returns
    ``-inf`` for a singular Jacobian.
    """
    flat = out.reshape(n_images, -1, int(np.prod(out.shape[1:])))
    n = flat.shape[-1]
    result = []
    for image in flat:
        plus, minus = image[1::2], image[2::2]  # rows: f(x + h e_i), f(x - h e_i), i = 0..n-1
        jacobian = ((plus - minus) / (2 * step)).T  # J[j, i] = d f_j / d x_i
        sign, logdet = np.linalg.slogdet(jacobian.reshape(n, n))
        result.append(logdet if sign != 0 else -np.inf)
    return np.asarray(result)


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_mask(answers, height, width, parity):
    return encode_tensor(answers["checkerboard"](height, width, parity))


def probe_coupling(answers, name, x, mask, weights):
    """Call the coupling (or its inverse) once; report its outputs and what the networks saw."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)
    seen = {"scale": [], "shift": []}

    def scale_net(h):
        seen["scale"].append(encode_tensor(h))
        return torch.tanh(F.conv2d(h, ws, bs, padding=1))

    def shift_net(h):
        seen["shift"].append(encode_tensor(h))
        return F.conv2d(h, wt, bt, padding=1)

    x = torch.tensor(x, dtype=torch.float64)
    original = x.clone()
    out = answers[name](x, torch.tensor(mask), scale_net, shift_net)
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"type": describe(out)}
    return {
        "out": encode_tensor(out[0]),
        "ladj": encode_tensor(out[1]),
        "input_unchanged": bool(torch.equal(x, original)),
        "seen": seen,
    }


def probe_outputs(answers, name, x, mask, weights):
    """Call the coupling (or its inverse) once on a batch; report its outputs only."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)

    def scale_net(h):
        return torch.tanh(F.conv2d(h, ws, bs, padding=1))

    def shift_net(h):
        return F.conv2d(h, wt, bt, padding=1)

    out = answers[name](
        torch.tensor(x, dtype=torch.float64), torch.tensor(mask), scale_net, shift_net
    )
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"type": describe(out)}
    return {"out": encode_tensor(out[0]), "ladj": encode_tensor(out[1])}


def probe_round_trip(answers, x, mask, weights):
    """inverse(forward(x)) and forward(inverse(x)) with the student's two functions."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)

    def scale_net(h):
        return torch.tanh(F.conv2d(h, ws, bs, padding=1))

    def shift_net(h):
        return F.conv2d(h, wt, bt, padding=1)

    x, mask = torch.tensor(x, dtype=torch.float64), torch.tensor(mask)
    forward = answers["checkerboard_affine"]
    inverse = answers["checkerboard_affine_inverse"]
    result = {}
    for label, first, second in (("x", forward, inverse), ("y", inverse, forward)):
        out = first(x, mask, scale_net, shift_net)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            return {"type": describe(out)}
        back = second(out[0], mask, scale_net, shift_net)
        if not (isinstance(back, tuple | list) and len(back) == 2):
            return {"type": describe(back)}
        result[label] = encode_tensor(back[0])
    return result


def probe_parities(answers, height, width):
    """Both parities' masks of one size."""
    return [encode_tensor(answers["checkerboard"](height, width, p)) for p in (0, 1)]


# --- checks -------------------------------------------------------------------------------------


def _mask_shape_and_dtype(student: Student, h: int, w: int) -> str | None:
    for parity in (0, 1):
        call = f"{MASK}({h}, {w}, {parity})"
        got, dtype = decode_array(student.call(probe_mask, h, w, parity), call)
        if got.shape != (h, w):
            return f"expected {call} to have shape ({h}, {w}), found {got.shape}"
        if dtype != "torch.bool":
            return f"expected {call} to have dtype torch.bool, found {dtype}"
    return None


@EXERCISE.check(points=1, answers=[MASK])
def checkerboard_is_boolean(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard returns a torch.bool tensor of shape (height, width) (what torch.where and
    cflib's couplings expect)."""
    for h, w in [(int(rng.integers(2, 7)), int(rng.integers(2, 7))), (1, int(rng.integers(2, 6)))]:
        problem = _mask_shape_and_dtype(student, h, w)
        if problem:
            return failed(problem)
    return passed("torch.bool tensors of the asked shape")


@EXERCISE.check(points=1, answers=[MASK])
def parities_cover_every_pixel(student: Student, rng: np.random.Generator) -> Outcome:
    """Parities 0 and 1 are complementary, and neighbouring pixels alternate (a checkerboard)."""
    sizes = [(4, 4), (5, 3), tuple(int(v) for v in rng.integers(2, 9, size=2))]
    for h, w in sizes:
        data = student.call(probe_parities, h, w)
        first, second = (decode_array(m, f"{MASK}({h}, {w}, {p})")[0] for p, m in enumerate(data))
        if first.shape != (h, w) or second.shape != (h, w):
            return failed(
                f"expected masks of shape ({h}, {w}), found {first.shape} and {second.shape}"
            )
        first, second = first != 0, second != 0
        if not np.array_equal(first, ~second):
            both = int((first & second).sum())
            return failed(
                f"expected {MASK}({h}, {w}, 0) and {MASK}({h}, {w}, 1) to be complementary (each "
                f"pixel kept by exactly one of them), found {both} pixels kept by both and "
                f"{int((~first & ~second).sum())} by neither"
            )
        same = int((first[1:, :] == first[:-1, :]).sum() + (first[:, 1:] == first[:, :-1]).sum())
        if same:
            return failed(
                f"expected {MASK}({h}, {w}, 0) to alternate like a checkerboard (each pixel kept "
                f"or not unlike its neighbours above, below, left and right), found {same} pairs "
                "of neighbours alike"
            )
    return passed("the two parities are complementary checkerboards, even and odd sizes")


def _forward(
    student: Student, problem: dict[str, Any]
) -> tuple[dict[str, Any], np.ndarray | None, str]:
    """The probe's data, y, and a message ('' when the outputs are usable)."""
    call = _call_text(FORWARD, problem)
    data = student.call(probe_coupling, FORWARD, *_args(problem))
    y, _, message = _pair(data, call, problem["x"].shape)
    return data, y, message or ""


@EXERCISE.check(points=1, answers=[FORWARD])
def coupling_keeps_masked_pixels(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard_affine returns float64 (y, ladj) of the right shapes, leaves x unchanged and
    copies the kept pixels exactly."""
    for _ in range(2):
        problem = _problem(rng)
        data, y, message = _forward(student, problem)
        if message:
            return failed(message)
        call = _call_text(FORWARD, problem)
        if not data.get("input_unchanged", False):
            return failed(f"expected {call} to leave x unchanged, found it modified in place")
        keep = problem["mask"]
        changed = int((y[..., keep] != problem["x"][..., keep]).sum())
        if changed:
            return failed(
                f"expected {call} to copy the kept pixels (mask True) exactly, found {changed} of "
                f"{y[..., keep].size} values changed"
            )
    return passed("shapes right; kept pixels copied exactly")


def _masked_inputs(seen: list[Any], x: np.ndarray, mask: np.ndarray, net: str, what: str) -> str:
    """'' when every input the network saw is x * mask, else a message."""
    if not seen:
        return f"expected {what} to call {net} (on x * mask), found it never called"
    want = x * mask
    for data in seen:
        got, _ = decode_array(data, f"the input of {net}")
        if got.shape != want.shape:
            return f"expected {net} to be given x * mask of shape {want.shape}, found {got.shape}"
        leaked = int((got[..., ~mask] != 0).sum())
        if leaked:
            return (
                f"expected {net} to see only the kept pixels (x * mask), found {leaked} nonzero "
                f"values at pixels the mask transforms, in {what}"
            )
        if not np.allclose(got, want, rtol=1e-12, atol=1e-12):
            return f"expected {net} to be given x * mask, found other values at kept pixels"
    return ""


@EXERCISE.check(points=1, answers=[FORWARD])
def conditioner_sees_only_kept_pixels(student: Student, rng: np.random.Generator) -> Outcome:
    """The coupling gives both networks the masked input x * mask only."""
    problem = _problem(rng)
    data, _, message = _forward(student, problem)
    if message:
        return failed(message)
    call = _call_text(FORWARD, problem)
    for net in ("scale", "shift"):
        message = _masked_inputs(
            data["seen"][net], problem["x"], problem["mask"], f"{net}_net", call
        )
        if message:
            return failed(message)
    return passed("the networks see x * mask only")


def _log_det_problem(student: Student, name: str, problem: dict[str, Any]) -> str:
    """'' when the ladj of ``name`` at each image of problem["x"] is log|det| of the Jacobian by
    central finite differences of its outputs (grader side), else a message."""
    x = problem["x"]
    batch = perturbed(x)
    call = _call_text(name, problem, shape=batch.shape)
    data = student.call(probe_outputs, name, *_args(problem, batch))
    out, ladj, message = _pair(data, call, batch.shape)
    if message:
        return message
    stride = batch.shape[0] // len(x)
    base = ladj[::stride]
    want = fd_log_dets(out, len(x))
    arg = "y" if name == INVERSE else "x"
    for b in range(len(x)):
        if not (np.isfinite(base[b]) and abs(base[b] - want[b]) <= 1e-6 * (1 + abs(want[b]))):
            return (
                f"expected ladj[{b * stride}] from {call} to be log|det| of that image's Jacobian "
                f"d{'x/dy' if name == INVERSE else 'y/dx'} ({want[b]:.6g}, measured by central "
                f"finite differences of the outputs at {arg} +- {STEP:g} along each coordinate), "
                f"found {base[b]:.6g}"
            )
    return ""


@EXERCISE.check(points=1, answers=[FORWARD])
def log_det_matches_finite_differences(student: Student, rng: np.random.Generator) -> Outcome:
    """ladj equals log|det| of the coupling's Jacobian, measured by finite differences (float64)."""
    for _ in range(2):
        message = _log_det_problem(student, FORWARD, _problem(rng, batch=2, small=True))
        if message:
            return failed(message)
    return passed("ladj = log|det dy/dx|, image by image")


@EXERCISE.check(points=1, answers=[INVERSE])  # calls the coupling too, once it is written
def inverse_round_trip(student: Student, rng: np.random.Generator) -> Outcome:
    """The inverse undoes the coupling: inverse(forward(x)) = x and forward(inverse(y)) = y."""
    for _ in range(2):
        problem = _problem(rng)
        data = student.call(probe_round_trip, *_args(problem))
        if "type" in data:
            return failed(
                f"expected the coupling and its inverse to return pairs, found {data['type']}"
            )
        x = problem["x"]
        for label, text in (("x", f"{INVERSE}({FORWARD}(x))"), ("y", f"{FORWARD}({INVERSE}(y))")):
            back, _ = decode_array(data[label], text)
            if back.shape != x.shape:
                return failed(f"expected {text} to have shape {x.shape}, found {back.shape}")
            if not np.allclose(back, x, rtol=1e-9, atol=1e-9):
                error = float(np.abs(back - x).max())
                return failed(
                    f"expected {text} to give back its input (shape {x.shape}, a mask keeping "
                    f"{int(problem['mask'].sum())} of {problem['mask'].size} pixels), found values "
                    f"off by up to {error:.3g}"
                )
    return passed("the inverse undoes the coupling, both ways round")


@EXERCISE.check(points=1, answers=[INVERSE])
def inverse_log_det(student: Student, rng: np.random.Generator) -> Outcome:
    """The inverse's ladj is log|det dx/dy|, measured by finite differences (float64)."""
    for _ in range(2):
        message = _log_det_problem(student, INVERSE, _problem(rng, batch=2, small=True))
        if message:
            return failed(message)
    return passed("inverse ladj = log|det dx/dy|, image by image")
