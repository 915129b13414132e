r"""Exercise 02: without permutations or alternation some dimensions never interact (public checks).

The dependency pattern of a map ``y = f(z)`` on R^d is the boolean ``(d, d)`` matrix
``D[i, j] = [y_i depends on z_j]``; for a stack ``f_L o ... o f_1`` it is the boolean product
``D_L ... D_1``. cflib's conventions: a coupling's mask is True on the kept coordinates; a
permutation computes ``y[:, i] = x[:, perm[i]]``. Coordinates are numbered from 0.

Graded answers: ``coupling_pattern(mask)``, ``permutation_pattern(perm)``,
``stack_pattern(patterns)``, ``flow_pattern(layers)``, ``never_transformed(layers)``,
``non_interacting_pairs(pattern)``, ``layers_for_full_interaction(masks)`` and the written
``interpretation``. 10 points, 3.5 of them hidden.

This file ships to students: it holds no reference answer. Its checks compare the answers with what
the grader *measures* on real cflib layers, in its own process: the sparsity of the float64
autograd Jacobian (as the notebook's ``autograd_pattern`` does), which outputs are exact copies of
which inputs, and whether a stack is dense; or they test properties of the answers' own outputs.
``ex02_hidden.py`` holds the reference formulas and the checks that use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import DecodeError, decode_array, describe, encode_tensor

COUPLING = "coupling_pattern"
PERMUTATION = "permutation_pattern"
STACK = "stack_pattern"
FLOW = "flow_pattern"
NEVER = "never_transformed"
PAIRS = "non_interacting_pairs"
LAYERS = "layers_for_full_interaction"
INTERPRETATION = "interpretation"

EXERCISE = Exercise(
    "02",
    "Without permutations or alternation some dimensions never interact",
    "02_dependency_patterns",
    hidden_checks=4,
    hidden_points=3.5,
    # no cflib object computes a dependency pattern; the layers the probes build are allowed
    forbidden={},
    time_limit=160,  # about 4x the solution's 40 s (jupyter execute, 2 shared CPUs)
)

Spec = list[list[Any]]  # [["coupling", mask] | ["permutation", perm], ...], plain lists


# --- measurements on real cflib layers (grader side) --------------------------------------------


def _tanh_mlp(n_in: int, n_out: int) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_out)
    )


def build_stack(spec: Spec, seed: int) -> Any:
    """The float64 cflib stack ``spec``: ``AffineCoupling`` layers with a one-hidden-layer tanh
    conditioner and ``Permutation`` layers, every parameter drawn at random (off the identity)."""
    import torch

    import cflib

    generator = torch.Generator().manual_seed(seed)
    layers: list[Any] = []
    for kind, value in spec:
        if kind == "coupling":
            mask = torch.tensor(value, dtype=torch.bool)
            layers.append(cflib.AffineCoupling(len(value), mask=mask, conditioner=_tanh_mlp))
        else:
            layers.append(cflib.Permutation(torch.tensor(value)))
    stack = cflib.Compose(layers).double()
    with torch.no_grad():
        for p in stack.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return stack


def autograd_pattern(spec: Spec, seed: int, points: int = 3) -> np.ndarray:
    """The sparsity of the float64 autograd Jacobian of the cflib stack ``spec`` (united over a few
    random points), as the notebook's ``autograd_pattern`` measures it."""
    import torch

    stack = build_stack(spec, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    d = len(spec[0][1])
    pattern = torch.zeros(d, d, dtype=torch.bool)
    for _ in range(points):
        z = torch.randn(d, generator=generator, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda v: stack(v[None])[0][0], z)
        pattern |= jacobian != 0
    return pattern.numpy()


def copied_inputs(spec: Spec, seed: int, points: int = 4) -> list[int]:
    """The inputs that come out of the cflib stack ``spec`` exactly as they went in (at some
    output), measured on random points: those no coupling transformed."""
    import torch

    stack = build_stack(spec, seed)
    generator = torch.Generator().manual_seed(seed + 2)
    d = len(spec[0][1])
    z = torch.randn(points, d, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        y = stack(z)[0]
    return [j for j in range(d) if any(torch.equal(y[:, p], z[:, j]) for p in range(d))]


def _couplings(masks: list[np.ndarray], count: int) -> Spec:
    return [["coupling", masks[i % len(masks)].tolist()] for i in range(count)]


def measured_layers(masks: list[np.ndarray], seed: int) -> tuple[int | None, np.ndarray]:
    """``(n, pattern)``: the fewest couplings (masks in turn) whose measured pattern is dense, or
    None once a whole round of ``len(masks)`` couplings adds no dependency; and the last pattern."""
    d, history = len(masks[0]), [np.eye(len(masks[0]), dtype=bool)]
    for count in range(1, d * d * len(masks) + 2):
        history.append(autograd_pattern(_couplings(masks, count), seed))
        if history[-1].all():
            return count, history[-1]
        if count >= len(masks) and np.array_equal(history[-1], history[-1 - len(masks)]):
            return None, history[-1]
    return None, history[-1]


def _random_mask(rng: np.random.Generator, d: int) -> np.ndarray:
    """A mask keeping some and transforming some coordinates, not necessarily a half split."""
    while True:
        mask = rng.random(d) < 0.5
        if mask.any() and not mask.all():
            return mask


def _long_cycle_perm(rng: np.random.Generator, d: int) -> np.ndarray:
    """A permutation that is not its own inverse (so its direction matters)."""
    while True:
        perm = rng.permutation(d)
        if not np.array_equal(perm[perm], np.arange(d)):
            return perm


def _words(pattern: np.ndarray) -> str:
    return "[" + ", ".join("".join("1" if v else "0" for v in row) for row in pattern) + "]"


def _mask_text(mask: np.ndarray) -> str:
    return "[" + ", ".join("T" if v else "F" for v in mask) + "]"


def _layers_text(spec: Spec) -> str:
    return ", ".join(
        f"coupling keeping {np.flatnonzero(v).tolist()}" if k == "coupling" else f"perm {v}"
        for k, v in spec
    )


def _compare(got: np.ndarray, want: np.ndarray, what: str) -> str | None:
    """None when equal, else a message naming one missing and one spurious dependency."""
    if got.shape != want.shape:
        return f"expected {what} to have shape {want.shape}, found {got.shape}"
    got = got != 0
    if np.array_equal(got, want):
        return None
    parts = []
    missing = np.argwhere(want & ~got)
    extra = np.argwhere(got & ~want)
    if len(missing):
        i, j = missing[0]
        parts.append(
            f"{len(missing)} missing dependencies (e.g. D[{i}, {j}] is False, but output {i} "
            f"depends on input {j})"
        )
    if len(extra):
        i, j = extra[0]
        parts.append(
            f"{len(extra)} spurious ones (e.g. D[{i}, {j}] is True, but output {i} does not "
            f"depend on input {j})"
        )
    return f"expected {what} to be the exact dependency pattern, found " + " and ".join(parts)


def _pattern(data: Any, what: str, d: int) -> tuple[np.ndarray | None, str | None]:
    """Decode a returned pattern; (None, message) when it is not a (d, d) bool tensor."""
    try:
        array, dtype = decode_array(data, what)
    except DecodeError as error:
        return None, str(error)
    if array.shape != (d, d):
        return None, f"expected {what} to have shape ({d}, {d}), found {array.shape}"
    if dtype != "torch.bool":
        return None, f"expected {what} to have dtype torch.bool, found {dtype}"
    return array != 0, None


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_mask_pattern(answers, name, values, dtype):
    import torch

    return encode_tensor(answers[name](torch.tensor(values, dtype=getattr(torch, dtype))))


def probe_stack(answers, patterns):
    import torch

    tensors = [torch.tensor(p, dtype=torch.bool) for p in patterns]
    return encode_tensor(answers["stack_pattern"](tensors))


def probe_layers(answers, name, spec, flow_args):
    """Build cflib layers from ``spec`` (or a CouplingFlow from ``flow_args``), call ``name``."""
    import torch

    import cflib

    def small(n_in, n_out):
        return torch.nn.Linear(n_in, n_out)

    if flow_args is not None:
        d, num_layers, permutation, seed = flow_args
        flow = cflib.CouplingFlow(
            d, num_layers=num_layers, permutation=permutation, seed=seed, conditioner=small
        )
        layers = list(flow.transforms)
    else:
        layers = []
        for kind, value in spec:
            if kind == "coupling":
                mask = torch.tensor(value, dtype=torch.bool)
                layers.append(cflib.AffineCoupling(len(value), mask=mask, conditioner=small))
            elif len(value) > 1 and value == list(range(len(value) - 1, -1, -1)):
                layers.append(cflib.ReversePermutation(len(value)))
            else:
                layers.append(cflib.Permutation(torch.tensor(value)))
    out = answers[name](layers)
    if isinstance(out, torch.Tensor) and out.dim() == 2:
        return {"tensor": encode_tensor(out)}
    try:
        return {"ints": [int(v) for v in out], "type": describe(out)}
    except (TypeError, ValueError):
        return {"type": describe(out)}


def probe_pairs(answers, pattern):
    import torch

    out = answers["non_interacting_pairs"](torch.tensor(pattern, dtype=torch.bool))
    try:
        pairs = [[int(a), int(b)] for a, b in out]
    except (TypeError, ValueError):
        return {"type": describe(out)}
    return {"pairs": pairs, "type": describe(out)}


def probe_full(answers, masks):
    import torch

    out = answers["layers_for_full_interaction"]([torch.tensor(m, dtype=torch.bool) for m in masks])
    if out is None:
        return {"none": True}
    try:
        if int(out) == out:
            return {"value": int(out)}
    except (TypeError, ValueError):
        pass
    return {"type": describe(out)}


# --- checks -------------------------------------------------------------------------------------


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


@EXERCISE.check(points=1, answers=[COUPLING])
def coupling_pattern_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """coupling_pattern(mask) is the autograd sparsity of a cflib coupling with that mask, for half
    splits and any other mask."""
    d = int(rng.integers(3, 8))
    half = np.arange(d) < d // 2
    cases = [half, ~half, _random_mask(rng, int(rng.integers(4, 10))), np.array([False, True])]
    for mask in cases:
        what = f"{COUPLING}(mask) for mask = {_mask_text(mask)}"
        data = student.call(probe_mask_pattern, COUPLING, mask.tolist(), "bool")
        got, problem = _pattern(data, what, len(mask))
        measured = autograd_pattern([["coupling", mask.tolist()]], _seed(rng))
        problem = problem or _compare(got, measured, what + " (compared with autograd)")
        if problem:
            return failed(problem)
    return passed(f"the autograd pattern of one coupling, for {len(cases)} masks")


@EXERCISE.check(points=1, answers=[PERMUTATION])
def permutation_pattern_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """permutation_pattern(perm) is the autograd sparsity of cflib.Permutation(perm)."""
    for d in rng.choice(np.arange(3, 9), size=2, replace=False):
        perm = _long_cycle_perm(rng, int(d))
        what = f"{PERMUTATION}(perm) for perm = {perm.tolist()}"
        data = student.call(probe_mask_pattern, PERMUTATION, perm.tolist(), "int64")
        got, problem = _pattern(data, what, int(d))
        measured = autograd_pattern([["permutation", perm.tolist()]], _seed(rng))
        problem = problem or _compare(got, measured, what + " (compared with autograd)")
        if problem:
            return failed(problem + " (y[:, i] = x[:, perm[i]])")
    return passed("the autograd pattern of a permutation, in the right direction")


def _order_matters(spec: Spec, seed: int) -> bool:
    """Whether the measured pattern of ``spec`` changes when its layers run last to first and when
    its permutations are read backwards (so that a check on it tests both)."""
    truth = autograd_pattern(spec, seed)
    inverted = [[k, np.argsort(v).tolist() if k == "permutation" else v] for k, v in spec]
    return not np.array_equal(truth, autograd_pattern(spec[::-1], seed)) and not np.array_equal(
        truth, autograd_pattern(inverted, seed)
    )


def _layer_spec(rng: np.random.Generator, d: int) -> list[Any]:
    if rng.random() < 0.5:
        return ["permutation", [int(v) for v in _long_cycle_perm(rng, d)]]
    return ["coupling", _random_mask(rng, d).tolist()]


@EXERCISE.check(points=1, answers=[STACK])
def stack_pattern_composes_in_order(student: Student, rng: np.random.Generator) -> Outcome:
    """stack_pattern of the autograd patterns of cflib layers is the autograd pattern of their
    stack, the first layer applied first; of one pattern, that pattern."""
    cases = []
    while len(cases) < 2:
        d = int(rng.integers(3, 7))
        spec = [_layer_spec(rng, d) for _ in range(int(rng.integers(2, 5)))]
        seed = _seed(rng)
        truth = autograd_pattern(spec, seed)
        if not np.array_equal(truth, autograd_pattern(spec[::-1], seed)):
            cases.append((spec, truth, seed))
    single = rng.random((4, 4)) < 0.5
    cases.append(([], single, 0))
    for spec, truth, seed in cases:
        patterns = [autograd_pattern([layer], seed) for layer in spec] or [single]
        d = len(truth)
        what = f"{STACK}(patterns) for {len(patterns)} patterns of size {d} x {d}"
        data = student.call(probe_stack, [p.tolist() for p in patterns])
        got, problem = _pattern(data, what, d)
        if problem:
            return failed(problem)
        if np.array_equal(got, truth):
            continue
        if np.array_equal(got, autograd_pattern(spec[::-1], seed) if spec else truth):
            return failed(
                f"expected {what} to be the pattern of applying the layers first to last, found "
                "the pattern of applying them last to first"
            )
        problem = _compare(got, truth, what + " (compared with autograd of the stack)")
        first = [_words(p) for p in patterns]
        return failed(f"{problem}; the patterns, first layer first, were {first}")
    return passed("the autograd pattern of stacks of cflib layers, in the right order")


def _stack_spec(rng: np.random.Generator, seed: int) -> Spec:
    """Couplings with random masks and permutations (one a reversal), ending with a coupling."""
    while True:
        d = int(rng.integers(4, 8))
        spec: Spec = []
        perms = [np.arange(d)[::-1], _long_cycle_perm(rng, d)]
        rng.shuffle(perms)
        for i in range(3):
            spec.append(["coupling", _random_mask(rng, d).tolist()])
            if i < 2:
                spec.append(["permutation", [int(v) for v in perms[i]]])
        if _order_matters(spec, seed):
            return spec


def _check_flow(
    student: Student, spec: Spec, flow_args: list[Any] | None, what: str, seed: int
) -> str | None:
    d = len(spec[0][1])
    data = student.call(probe_layers, FLOW, spec, flow_args)
    if "tensor" not in data:
        return f"expected {what} to be a ({d}, {d}) torch.bool tensor, found {data.get('type')}"
    got, problem = _pattern(data["tensor"], what, d)
    if problem:
        return problem
    problem = _compare(got, autograd_pattern(spec, seed), what + " (compared with autograd)")
    if problem:
        return f"{problem}; the layers, in order: {_layers_text(spec)}"
    return None


@EXERCISE.check(points=1, answers=[FLOW])
def flow_pattern_matches_autograd(student: Student, rng: np.random.Generator) -> Outcome:
    """flow_pattern(layers) of cflib couplings and permutations matches the autograd Jacobian."""
    seed = _seed(rng)
    spec = _stack_spec(rng, seed)
    what = f"{FLOW}(layers) for {len(spec)} cflib layers on R^{len(spec[0][1])}"
    problem = _check_flow(student, spec, None, what, seed)
    return failed(problem) if problem else passed("matches the sparsity of the autograd Jacobian")


def _never_spec(rng: np.random.Generator, seed: int) -> Spec:
    """Three couplings keeping most coordinates, permutations between: some coordinate comes out
    unchanged, and ignoring the permutations gives another answer."""
    while True:
        d = int(rng.integers(5, 9))
        masks = [_random_mask(rng, d) | (rng.random(d) < 0.5) for _ in range(3)]
        if any(m.all() for m in masks):
            continue
        spec: Spec = [["coupling", masks[0].tolist()]]
        for mask in masks[1:]:
            spec.append(["permutation", [int(v) for v in _long_cycle_perm(rng, d)]])
            spec.append(["coupling", mask.tolist()])
        copied = copied_inputs(spec, seed)
        naive = np.flatnonzero(np.logical_and.reduce(masks)).tolist()
        if copied and copied != naive:
            return spec


@EXERCISE.check(points=1, answers=[NEVER])
def never_transformed_follows_permutations(student: Student, rng: np.random.Generator) -> Outcome:
    """never_transformed(layers) lists the inputs that come out of the cflib stack unchanged
    (measured on random points), through permutations."""
    seed = _seed(rng)
    for spec in (_never_spec(rng, seed), [["coupling", [True, True, False, False, False]]] * 3):
        d = len(spec[0][1])
        what = f"{NEVER}(layers) for {len(spec)} cflib layers on R^{d}"
        data = student.call(probe_layers, NEVER, spec, None)
        if "ints" not in data:
            return failed(f"expected {what} to be a list of ints, found {data.get('type')}")
        got, copied = data["ints"], copied_inputs(spec, seed)
        if sorted(got) != copied:
            return failed(
                f"expected {what} to list the {len(copied)} inputs that come out of the stack "
                f"unchanged (measured), found {sorted(got)}; the layers, in order: "
                f"{_layers_text(spec)}"
            )
        if got != copied:
            return failed(f"expected {what} sorted and without repeats, found {got}")
    return passed("finds the coordinates no coupling transforms, through permutations")


def _student_pairs(student: Student, pattern: np.ndarray, what: str) -> list[list[int]] | str:
    data = student.call(probe_pairs, pattern.tolist())
    if "pairs" not in data:
        return f"expected {what} to be a list of pairs (i, j), found {data['type']}"
    return data["pairs"]


@EXERCISE.check(points=0.5, answers=[PAIRS])
def non_interacting_pairs_are_sound(student: Student, rng: np.random.Generator) -> Outcome:
    """non_interacting_pairs returns increasing pairs i < j, each with neither D[i, j] nor D[j, i],
    none for a dense pattern, the same for D and its transpose."""
    d = int(rng.integers(4, 8))
    pattern = (rng.random((d, d)) < 0.3) | np.eye(d, dtype=bool)
    cases = [(pattern, "D"), (pattern.T, "D^T"), (np.ones((3, 3), dtype=bool), "a dense D")]
    found = {}
    for matrix, name in cases:
        what = f"{PAIRS}(D) for {name}, D = {_words(matrix)}"
        got = _student_pairs(student, matrix, what)
        if isinstance(got, str):
            return failed(got)
        if any(i >= j for i, j in got):
            return failed(f"expected {what} to hold pairs (i, j) with i < j, found {got}")
        if got != sorted(got) or len(set(map(tuple, got))) != len(got):
            return failed(f"expected {what} in increasing order, without repeats, found {got}")
        wrong = [
            [i, j] for i, j in got if not 0 <= i < j < len(matrix) or matrix[i, j] | matrix[j, i]
        ]
        if wrong:
            return failed(f"expected {what} to hold only pairs that never interact, found {wrong}")
        found[name] = got
    if found["D"] != found["D^T"]:
        return failed(f"expected the same pairs for D and its transpose, found {found}")
    return passed("only pairs that never interact, in order (all of them is checked when graded)")


def _full(student: Student, masks: list[np.ndarray], seed: int) -> str | None:
    """None when the answer agrees with the measured patterns of the stacks, else a message."""
    what = f"{LAYERS}(masks) for masks = [{', '.join(_mask_text(m) for m in masks)}]"
    data = student.call(probe_full, [m.tolist() for m in masks])
    if "type" in data:
        return f"expected {what} to be an int or None, found {data['type']}"
    got = None if data.get("none") else data["value"]
    if got is not None and got >= 1:
        if not autograd_pattern(_couplings(masks, got), seed).all():
            return (
                f"expected {what} to be a number of couplings whose stack is dense, found {got}: "
                "the autograd pattern of that stack is not dense"
            )
        if got == 1 or not autograd_pattern(_couplings(masks, got - 1), seed).all():
            return None
        return (
            f"expected {what} to be the smallest number of couplings, found {got}: fewer are dense"
        )
    want, _ = measured_layers(masks, seed)
    if got == want:
        return None
    if want is None:
        return f"expected {what} to be None (no number of couplings is dense), found {got}"
    return f"expected {what} to be a number of couplings, found {got}: {want} are dense (autograd)"


@EXERCISE.check(points=1, answers=[LAYERS])
def layers_for_alternating_halves(student: Student, rng: np.random.Generator) -> Outcome:
    """layers_for_full_interaction for alternating half masks, and for one mask (never dense),
    against the autograd patterns of the stacks of couplings."""
    seed = _seed(rng)
    halves = [np.arange(d) < d // 2 for d in (2, 3, int(rng.integers(4, 9)))]
    for masks in [[half, ~half] for half in halves] + [[halves[-1]]]:
        problem = _full(student, masks, seed)
        if problem:
            return failed(problem)
    return passed("right for alternating halves (d = 2, 3 and larger) and for a single mask")
