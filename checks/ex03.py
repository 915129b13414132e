r"""Exercise 03: checkerboard masking for image flows.

``checkerboard(height, width, parity)`` is the ``(height, width)`` bool mask that is True (kept) on
the pixels with ``(i + j) % 2 == parity``, cflib's convention (``parity=1`` is
``cflib.checkerboard_mask(h, w)``). For images ``x`` of shape ``(B, C, H, W)``, a mask ``m`` and
networks ``s``, ``t`` mapping ``(B, C, H, W)`` to itself, the coupling is

    y = m * x + (1 - m) * (x * exp(s(x * m)) + t(x * m)),   ladj = sum of s over pixels with m = 0

and its inverse uses ``s(y * m)``, ``t(y * m)`` (equal, since ``y * m = x * m``).

Graded answers: ``checkerboard``, ``checkerboard_affine(x, mask, scale_net, shift_net) ->
(y, ladj)`` and ``checkerboard_affine_inverse(y, mask, scale_net, shift_net) -> (x, ladj)``. The
networks the grader passes are one convolution each (``tanh`` after the scale's), with weights drawn
at grading time. 10 points, 3 of them hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import decode_array, describe, encode_tensor

EXERCISE = Exercise(
    "03",
    "Checkerboard masking for image flows",
    "03_checkerboard",
    hidden_checks=3,
    hidden_points=3,
)

MASK = "checkerboard"
FORWARD = "checkerboard_affine"
INVERSE = "checkerboard_affine_inverse"


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


def _weights(rng: np.random.Generator, c: int) -> list[np.ndarray]:
    """Weights and biases of the scale and shift convolutions (c -> c channels, 3 x 3)."""
    return [
        0.4 * rng.normal(size=(c, c, 3, 3)),
        0.2 * rng.normal(size=c),
        0.4 * rng.normal(size=(c, c, 3, 3)),
        0.2 * rng.normal(size=c),
    ]


def _problem(rng: np.random.Generator, batch: int = 3, small: bool = False) -> dict[str, Any]:
    """Images, a mask of random parity and the weights of the two networks."""
    c = int(rng.integers(1, 3 if small else 4))
    h, w = (int(v) for v in rng.integers(2, 5 if small else 7, size=2))
    parity = int(rng.integers(2))
    return {
        "x": rng.normal(size=(batch, c, h, w)),
        "mask": reference_mask(h, w, parity),
        "parity": parity,
        "weights": _weights(rng, c),
    }


def _args(problem: dict[str, Any], x: np.ndarray | None = None) -> list[Any]:
    x = problem["x"] if x is None else x
    return [x.tolist(), problem["mask"].tolist(), [w.tolist() for w in problem["weights"]]]


def _call_text(name: str, problem: dict[str, Any]) -> str:
    arg = "y" if name == INVERSE else "x"
    shape = tuple(problem["x"].shape)
    parity = problem["parity"]
    return f"{name}({arg}, mask, scale_net, shift_net) for {arg} of shape {shape}, parity {parity}"


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


def probe_jacobian(answers, x, mask, weights):
    """The student's ladj and the autograd Jacobian of the student's coupling, image by image."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)

    def scale_net(h):
        return torch.tanh(F.conv2d(h, ws, bs, padding=1))

    def shift_net(h):
        return F.conv2d(h, wt, bt, padding=1)

    x, mask = torch.tensor(x, dtype=torch.float64), torch.tensor(mask)
    coupling = answers["checkerboard_affine"]
    out = coupling(x, mask, scale_net, shift_net)
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return {"type": describe(out)}
    jacobians = []
    for image in x:
        try:
            jacobian = torch.autograd.functional.jacobian(
                lambda v: coupling(v[None], mask, scale_net, shift_net)[0].reshape(-1), image
            )
        except RuntimeError as error:
            return {"autograd": str(error)[:200]}
        jacobians.append(encode_tensor(jacobian.reshape(image.numel(), image.numel())))
    return {"ladj": encode_tensor(out[1]), "jacobians": jacobians}


def probe_parities(answers, x, weights):
    """Both parities' masks, and two couplings of alternating parity applied to x."""
    import torch
    import torch.nn.functional as F

    ws, bs, wt, bt = (torch.tensor(w, dtype=torch.float64) for w in weights)

    def scale_net(h):
        return torch.tanh(F.conv2d(h, ws, bs, padding=1))

    def shift_net(h):
        return F.conv2d(h, wt, bt, padding=1)

    x = torch.tensor(x, dtype=torch.float64)
    height, width = x.shape[-2:]
    masks = [torch.as_tensor(answers["checkerboard"](height, width, p)) != 0 for p in (0, 1)]
    y = x
    for mask in masks:
        out = answers["checkerboard_affine"](y, mask, scale_net, shift_net)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            return {"type": describe(out)}
        y = out[0]
    return {"masks": [encode_tensor(m) for m in masks], "out": encode_tensor(y)}


# --- checks -------------------------------------------------------------------------------------


def _mask_problem(student: Student, sizes: list[tuple[int, int]], check_dtype: bool) -> str | None:
    for h, w in sizes:
        for parity in (0, 1):
            call = f"{MASK}({h}, {w}, {parity})"
            got, dtype = decode_array(student.call(probe_mask, h, w, parity), call)
            if got.shape != (h, w):
                return f"expected {call} to have shape ({h}, {w}), found {got.shape}"
            if check_dtype:
                if dtype != "torch.bool":
                    return f"expected {call} to have dtype torch.bool, found {dtype}"
                continue
            want = reference_mask(h, w, parity)
            if not np.array_equal(got != 0, want):
                i, j = np.argwhere((got != 0) != want)[0]
                state = "kept (True)" if want[i, j] else "transformed (False)"
                return (
                    f"expected {call} to keep exactly the pixels (i, j) with (i + j) % 2 == "
                    f"{parity}, found pixel ({i}, {j}) wrong: it should be {state}"
                )
    return None


@EXERCISE.check(points=1, answers=[MASK])
def checkerboard_values(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard(h, w, parity) keeps the pixels with (i + j) % 2 == parity (cflib's rule)."""
    sizes = [(4, 4), (5, 5), (int(rng.integers(2, 6)), int(rng.integers(6, 9)))]
    problem = _mask_problem(student, sizes, check_dtype=False)
    return failed(problem) if problem else passed("both parities, even and odd sizes")


@EXERCISE.check(points=1, answers=[MASK])
def checkerboard_is_boolean(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard returns a torch.bool tensor (what torch.where and cflib's couplings expect)."""
    problem = _mask_problem(student, [(int(rng.integers(2, 7)), int(rng.integers(2, 7)))], True)
    return failed(problem) if problem else passed("a torch.bool tensor")


def _forward(student: Student, problem: dict[str, Any]) -> tuple[dict, np.ndarray | None, str]:
    """The probe's data, y, and a message ('' when the outputs are usable)."""
    call = _call_text(FORWARD, problem)
    data = student.call(probe_coupling, FORWARD, *_args(problem))
    y, _, message = _pair(data, call, problem["x"].shape)
    return data, y, message or ""


@EXERCISE.check(points=1, answers=[FORWARD])
def coupling_keeps_masked_pixels(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard_affine returns (y, ladj) of the right shapes, kept pixels exactly unchanged."""
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


@EXERCISE.check(points=1, answers=[FORWARD])
def coupling_transforms_the_rest(student: Student, rng: np.random.Generator) -> Outcome:
    """The other pixels are x * exp(s(x * mask)) + t(x * mask)."""
    for _ in range(2):
        problem = _problem(rng)
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
def log_det_matches_autograd(student: Student, rng: np.random.Generator) -> Outcome:
    """ladj equals log|det| of the autograd Jacobian of the coupling (small float64 images)."""
    for _ in range(2):
        problem = _problem(rng, batch=2, small=True)
        call = _call_text(FORWARD, problem)
        data = student.call(probe_jacobian, *_args(problem))
        if "type" in data:
            return failed(f"expected {call} to return a pair (y, ladj), found {data['type']}")
        if "autograd" in data:
            return failed(
                f"expected {call} to be differentiable with autograd, found an error: "
                f"{data['autograd']}"
            )
        ladj, _ = decode_array(data["ladj"], "ladj")
        if ladj.shape != (2,):
            return failed(f"expected ladj of shape (2,) from {call}, found {ladj.shape}")
        for b, encoded in enumerate(data["jacobians"]):
            jacobian, _ = decode_array(encoded, "the Jacobian")
            sign, logdet = np.linalg.slogdet(jacobian)
            if sign == 0 or not np.isclose(ladj[b], logdet, rtol=1e-8, atol=1e-8):
                return failed(
                    f"expected ladj[{b}] from {call} to equal log|det| of the Jacobian dy/dx "
                    f"computed by autograd ({logdet:.6g}), found {ladj[b]:.6g}"
                )
    return passed("ladj = log|det J| from autograd, image by image")


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
                    f"expected {text} to give back its input (shape {x.shape}, parity "
                    f"{problem['parity']}), found values off by up to {error:.3g}"
                )
    return passed("the inverse undoes the coupling, both ways round")


@EXERCISE.check(points=1, answers=[INVERSE])
def inverse_log_det(student: Student, rng: np.random.Generator) -> Outcome:
    """The inverse's ladj is log|det dx/dy| = -(the coupling's ladj at x)."""
    for _ in range(2):
        problem = _problem(rng)
        y, forward_ladj = reference_forward(problem["x"], problem["mask"], problem["weights"])
        call = _call_text(INVERSE, problem)
        data = student.call(probe_coupling, INVERSE, *_args(problem, y))
        _, ladj, message = _pair(data, call, y.shape)
        if message:
            return failed(message)
        if not np.allclose(ladj, -forward_ladj, rtol=1e-9, atol=1e-9):
            flipped = np.allclose(ladj, forward_ladj, rtol=1e-9, atol=1e-9)
            return failed(
                f"expected the ladj of {call} to be log|det dx/dy|, minus the coupling's at x, "
                + ("found the coupling's own (wrong sign)" if flipped else "found other values")
            )
    return passed("inverse ladj = -forward ladj")
