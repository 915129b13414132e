"""Hidden checks of exercise 03 (instructors only: the student edition leaves this file out)."""

from __future__ import annotations

from . import ex03 as _public

globals().update({k: v for k, v in vars(_public).items() if not k.startswith("__")})


@EXERCISE.check(points=1, answers=[MASK], hidden=True)
def checkerboard_any_size(student: Student, rng: np.random.Generator) -> Outcome:
    """checkerboard is right for single rows and columns and larger odd and even sizes."""
    n = int(rng.integers(2, 10))
    h, w = (int(v) for v in rng.integers(9, 34, size=2))
    sizes = [(1, n), (n + 1, 1), (h, w)]
    problem = _mask_problem(student, sizes, check_dtype=False)
    return failed(problem) if problem else passed("right for all sizes tried")


@EXERCISE.check(points=1, answers=[FORWARD, INVERSE], hidden=True)
def conditioner_sees_only_kept_pixels(student: Student, rng: np.random.Generator) -> Outcome:
    """Both directions give the networks the masked input only (x * mask, y * mask)."""
    problem = _problem(rng)
    data, _, message = _forward(student, problem)
    if message:
        return failed(message)
    call = _call_text(FORWARD, problem)
    y, _ = reference_forward(problem["x"], problem["mask"], problem["weights"])
    for net in ("scale", "shift"):
        message = _masked_inputs(
            data["seen"][net], problem["x"], problem["mask"], f"{net}_net", call
        )
        if message:
            return failed(message)
    inverse = student.call(probe_coupling, INVERSE, *_args(problem, y))
    if "type" in inverse:
        return failed(f"expected {INVERSE} to return a pair (x, ladj), found {inverse['type']}")
    call = _call_text(INVERSE, problem)
    for net in ("scale", "shift"):
        message = _masked_inputs(inverse["seen"][net], y, problem["mask"], f"{net}_net", call)
        if message:
            return failed(message.replace("x * mask", "y * mask"))
    return passed("the networks see x * mask (forward) and y * mask (inverse) only")


@EXERCISE.check(points=1, answers=[MASK, FORWARD], hidden=True)
def parities_cover_every_pixel(student: Student, rng: np.random.Generator) -> Outcome:
    """Parities 0 and 1 are complementary; two couplings alternating them change every pixel."""
    h, w = (int(v) for v in rng.integers(3, 8, size=2))
    c = int(rng.integers(1, 4))
    x = rng.normal(size=(2, c, h, w))
    data = student.call(probe_parities, x.tolist(), [v.tolist() for v in _weights(rng, c)])
    if "type" in data:
        return failed(f"expected {FORWARD} to return a pair (y, ladj), found {data['type']}")
    first, second = (decode_array(m, f"{MASK}({h}, {w}, p)")[0] != 0 for m in data["masks"])
    if first.shape != (h, w) or second.shape != (h, w):
        return failed(f"expected masks of shape ({h}, {w}), found {first.shape}, {second.shape}")
    if not np.array_equal(first, ~second):
        both = int((first & second).sum())
        return failed(
            f"expected {MASK}({h}, {w}, 0) and {MASK}({h}, {w}, 1) to be complementary, found "
            f"{both} pixels kept by both and {int((~first & ~second).sum())} by neither"
        )
    out, _ = decode_array(data["out"], "the output of the two couplings")
    unchanged = int((out == x).all(axis=(0, 1)).sum()) if out.shape == x.shape else h * w
    if unchanged:
        return failed(
            f"expected two couplings of parities 0 then 1 to change every pixel of a {h} x {w} "
            f"image, found {unchanged} pixels unchanged"
        )
    return passed("the two parities are complementary and together transform every pixel")
