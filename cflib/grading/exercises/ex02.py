r"""Exercise 02: without permutations or alternation some dimensions never interact.

The dependency pattern of a map ``y = f(z)`` on R^d is the boolean ``(d, d)`` matrix
``D[i, j] = [y_i depends on z_j]``; for a stack ``f_L o ... o f_1`` it is the boolean product
``D_L ... D_1``. cflib's conventions: a coupling's mask is True on the kept coordinates; a
permutation computes ``y[:, i] = x[:, perm[i]]``. Coordinates are numbered from 0.

Graded answers: ``coupling_pattern(mask)``, ``permutation_pattern(perm)``,
``stack_pattern(patterns)``, ``flow_pattern(layers)`` (checked against the sparsity of the autograd
Jacobian of real cflib stacks, computed here), ``never_transformed(layers)``,
``non_interacting_pairs(pattern)``, ``layers_for_full_interaction(masks)`` and the written
``interpretation``. 10 points, 3 of them hidden.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
from cflib.grading.wire import DecodeError, decode_array, describe, encode_tensor

EXERCISE = Exercise(
    "02",
    "Without permutations or alternation some dimensions never interact",
    "02_dependency_patterns",
)

COUPLING = "coupling_pattern"
PERMUTATION = "permutation_pattern"
STACK = "stack_pattern"
FLOW = "flow_pattern"
NEVER = "never_transformed"
PAIRS = "non_interacting_pairs"
LAYERS = "layers_for_full_interaction"
INTERPRETATION = "interpretation"

Spec = list[list[Any]]  # [["coupling", mask] | ["permutation", perm], ...], plain lists


# --- the reference (grader side) ----------------------------------------------------------------


def reference_coupling(mask: np.ndarray) -> np.ndarray:
    """Kept rows: the identity; transformed rows: every kept column and their own."""
    mask = np.asarray(mask, dtype=bool)
    return np.eye(len(mask), dtype=bool) | (~mask[:, None] & mask[None, :])


def reference_permutation(perm: np.ndarray) -> np.ndarray:
    """``y[:, i] = x[:, perm[i]]``: row i has its one entry in column perm[i]."""
    pattern = np.zeros((len(perm), len(perm)), dtype=bool)
    pattern[np.arange(len(perm)), perm] = True
    return pattern


def reference_stack(patterns: list[np.ndarray]) -> np.ndarray:
    """Boolean product ``D_L ... D_1`` of patterns given first layer first."""
    result = patterns[0]
    for pattern in patterns[1:]:
        result = (pattern.astype(np.int64) @ result.astype(np.int64)) > 0
    return result


def reference_spec(spec: Spec) -> np.ndarray:
    return reference_stack(
        [
            reference_coupling(np.array(v)) if kind == "coupling" else reference_permutation(v)
            for kind, v in spec
        ]
    )


def reference_never(spec: Spec) -> list[int]:
    d = len(spec[0][1])
    origin = np.arange(d)
    transformed: set[int] = set()
    for kind, value in spec:
        if kind == "permutation":
            origin = origin[np.array(value)]
        else:
            transformed.update(origin[~np.array(value, dtype=bool)].tolist())
    return sorted(set(range(d)) - transformed)


def reference_layers(masks: list[np.ndarray], backwards: bool = False) -> int | None:
    """Smallest number of couplings (masks used in turn) with a dense pattern; None if never.

    Each round of ``len(masks)`` couplings adds a dependency or changes nothing from then on, so
    ``d * d`` rounds bound the search. ``backwards`` multiplies in the wrong order (to choose
    inputs for which the order matters).
    """
    d = len(masks[0])
    pattern = np.eye(d, dtype=bool)
    for layers in range(1, d * d * len(masks) + 1):
        step = [pattern, reference_coupling(masks[(layers - 1) % len(masks)])]
        pattern = reference_stack(step[::-1] if backwards else step)
        if pattern.all():
            return layers
    return None


def autograd_pattern(spec: Spec, seed: int, points: int = 3) -> np.ndarray:
    """The sparsity of the float64 autograd Jacobian of the cflib stack ``spec``.

    Each coupling is a cflib ``AffineCoupling`` with the spec's mask and a one-hidden-layer tanh
    conditioner, its parameters drawn at random (off the identity), so no dependency is hidden.
    """
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
    d = len(spec[0][1])
    pattern = torch.zeros(d, d, dtype=torch.bool)
    for _ in range(points):
        z = torch.randn(d, generator=generator, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda v: stack(v[None])[0][0], z)
        pattern |= jacobian != 0
    return pattern.numpy()


def _tanh_mlp(n_in: int, n_out: int) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, n_out)
    )


def coupling_flow_spec(d: int, num_layers: int, permutation: str, seed: int) -> Spec:
    """The masks and permutations of ``cflib.CouplingFlow(d, num_layers, permutation, seed)``."""
    import cflib

    flow = cflib.CouplingFlow(
        d, num_layers=num_layers, permutation=permutation, seed=seed, conditioner=_tanh_mlp
    )
    return [
        ["coupling", layer.mask.tolist()]
        if isinstance(layer, cflib.Coupling)
        else ["permutation", layer.perm.tolist()]
        for layer in flow.transforms
    ]


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


@EXERCISE.check(points=1, answers=[COUPLING])
def coupling_pattern_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """coupling_pattern(mask) is the pattern of one coupling, for half splits and any other mask."""
    d = int(rng.integers(3, 8))
    half = np.arange(d) < d // 2
    cases = [half, ~half, _random_mask(rng, int(rng.integers(4, 10))), np.array([False, True])]
    for mask in cases:
        what = f"{COUPLING}(mask) for mask = {_mask_text(mask)}"
        data = student.call(probe_mask_pattern, COUPLING, mask.tolist(), "bool")
        got, problem = _pattern(data, what, len(mask))
        problem = problem or _compare(got, reference_coupling(mask), what)
        if problem:
            return failed(problem)
    return passed(f"the pattern of one coupling, for {len(cases)} masks")


@EXERCISE.check(points=1, answers=[PERMUTATION])
def permutation_pattern_matches(student: Student, rng: np.random.Generator) -> Outcome:
    """permutation_pattern(perm) is the pattern of y[:, i] = x[:, perm[i]]."""
    for d in rng.choice(np.arange(3, 9), size=2, replace=False):
        perm = _long_cycle_perm(rng, int(d))
        what = f"{PERMUTATION}(perm) for perm = {perm.tolist()}"
        data = student.call(probe_mask_pattern, PERMUTATION, perm.tolist(), "int64")
        got, problem = _pattern(data, what, int(d))
        problem = problem or _compare(got, reference_permutation(perm), what)
        if problem:
            return failed(problem + " (y[:, i] = x[:, perm[i]])")
    return passed("the pattern of a permutation, in the right direction")


def _random_stack(rng: np.random.Generator) -> list[np.ndarray]:
    """2-4 patterns (couplings, permutations, arbitrary) whose product depends on the order."""
    while True:
        d = int(rng.integers(3, 7))
        patterns = []
        for _ in range(int(rng.integers(2, 5))):
            kind = rng.integers(3)
            if kind == 0:
                patterns.append(reference_coupling(_random_mask(rng, d)))
            elif kind == 1:
                patterns.append(reference_permutation(_long_cycle_perm(rng, d)))
            else:
                patterns.append(rng.random((d, d)) < 0.3)
        if not np.array_equal(reference_stack(patterns), reference_stack(patterns[::-1])):
            return patterns


@EXERCISE.check(points=1, answers=[STACK])
def stack_pattern_composes_in_order(student: Student, rng: np.random.Generator) -> Outcome:
    """stack_pattern(patterns) is the boolean product, the first layer's pattern on the right."""
    stacks = [_random_stack(rng) for _ in range(3)] + [[rng.random((4, 4)) < 0.5]]
    for patterns in stacks:
        d = len(patterns[0])
        what = f"{STACK}(patterns) for {len(patterns)} patterns of size {d} x {d}"
        data = student.call(probe_stack, [p.tolist() for p in patterns])
        got, problem = _pattern(data, what, d)
        if problem:
            return failed(problem)
        if np.array_equal(got, reference_stack(patterns)):
            continue
        if len(patterns) > 1 and np.array_equal(got, reference_stack(patterns[::-1])):
            return failed(
                f"expected {what} to be the pattern of applying the layers first to last, found "
                "the pattern of applying them last to first"
            )
        first = [_words(p) for p in patterns]
        problem = _compare(got, reference_stack(patterns), what)
        return failed(f"{problem}; the patterns, first layer first, were {first}")
    return passed(f"the boolean product in the right order, for {len(stacks)} stacks")


def _sensitive(spec: Spec) -> bool:
    """Whether the stack's pattern changes when its layers are applied last to first, and when
    its permutations are read backwards (so that a check on it tests both)."""
    truth = reference_spec(spec)
    inverted = [[k, np.argsort(v).tolist() if k == "permutation" else v] for k, v in spec]
    return not np.array_equal(truth, reference_spec(spec[::-1])) and not np.array_equal(
        truth, reference_spec(inverted)
    )


def _stack_spec(rng: np.random.Generator) -> Spec:
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
        if _sensitive(spec):
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
    truth = autograd_pattern(spec, seed)
    problem = _compare(got, truth, what + " (compared with the autograd Jacobian)")
    if problem:
        layers = ", ".join(
            f"coupling keeping {np.flatnonzero(v).tolist()}" if k == "coupling" else f"perm {v}"
            for k, v in spec
        )
        return f"{problem}; the layers, in order: {layers}"
    return None


@EXERCISE.check(points=1, answers=[FLOW])
def flow_pattern_matches_autograd(student: Student, rng: np.random.Generator) -> Outcome:
    """flow_pattern(layers) of cflib couplings and permutations matches the autograd Jacobian."""
    spec = _stack_spec(rng)
    what = f"{FLOW}(layers) for {len(spec)} cflib layers on R^{len(spec[0][1])}"
    problem = _check_flow(student, spec, None, what, int(rng.integers(2**31)))
    return failed(problem) if problem else passed("matches the sparsity of the autograd Jacobian")


@EXERCISE.check(points=1, answers=[FLOW], hidden=True)
def flow_pattern_of_coupling_flow(student: Student, rng: np.random.Generator) -> Outcome:
    """flow_pattern of the layers of cflib.CouplingFlow (random shuffles, reversal, odd d)."""
    d, num_layers = int(rng.integers(5, 9)), int(rng.integers(2, 4))
    seed = int(rng.integers(1000))
    while not _sensitive(coupling_flow_spec(d, num_layers, "random", seed)):
        seed += 1
    cases = [(d, num_layers, "random", seed), (int(rng.choice([5, 7])), 2, "reverse", 0)]
    for d, num_layers, permutation, seed in cases:
        spec = coupling_flow_spec(d, num_layers, permutation, seed)
        what = (
            f"{FLOW}(list(flow.transforms)) for cflib.CouplingFlow({d}, num_layers={num_layers}, "
            f"permutation={permutation!r}, seed={seed})"
        )
        problem = _check_flow(student, spec, [d, num_layers, permutation, seed], what, seed + 1)
        if problem:
            return failed(problem)
    return passed("matches the autograd Jacobian of CouplingFlows")


def _never_spec(rng: np.random.Generator) -> Spec:
    """Three couplings keeping most coordinates, permutations between: some coordinate is never
    transformed, and ignoring the permutations gives another answer."""
    while True:
        d = int(rng.integers(5, 9))
        masks = [_random_mask(rng, d) | (rng.random(d) < 0.5) for _ in range(3)]
        if any(m.all() for m in masks):
            continue
        spec: Spec = [["coupling", masks[0].tolist()]]
        for mask in masks[1:]:
            spec.append(["permutation", [int(v) for v in _long_cycle_perm(rng, d)]])
            spec.append(["coupling", mask.tolist()])
        want = reference_never(spec)
        naive = np.flatnonzero(np.logical_and.reduce(masks)).tolist()
        if want and want != naive:
            return spec


@EXERCISE.check(points=1, answers=[NEVER])
def never_transformed_follows_permutations(student: Student, rng: np.random.Generator) -> Outcome:
    """never_transformed(layers) follows coordinates through permutations."""
    for spec in (_never_spec(rng), [["coupling", [True, True, False, False, False]]] * 3):
        d = len(spec[0][1])
        what = f"{NEVER}(layers) for {len(spec)} cflib layers on R^{d}"
        data = student.call(probe_layers, NEVER, spec, None)
        if "ints" not in data:
            return failed(f"expected {what} to be a list of ints, found {data.get('type')}")
        got, want = data["ints"], reference_never(spec)
        if sorted(got) != want:
            layers = ", ".join(
                f"coupling keeping {np.flatnonzero(v).tolist()}" if k == "coupling" else f"perm {v}"
                for k, v in spec
            )
            return failed(
                f"expected {what} to list {len(want)} coordinates, found {sorted(got)}; the "
                f"layers, in order: {layers}"
            )
        if got != want:
            return failed(f"expected {what} sorted and without repeats, found {got}")
    return passed("finds the coordinates no coupling transforms, through permutations")


def _pairs(pattern: np.ndarray) -> list[list[int]]:
    d = len(pattern)
    return [[i, j] for i in range(d) for j in range(i + 1, d) if not pattern[i, j] | pattern[j, i]]


@EXERCISE.check(points=1, answers=[PAIRS])
def non_interacting_pairs_found(student: Student, rng: np.random.Generator) -> Outcome:
    """non_interacting_pairs(pattern) lists each pair i < j with neither D[i, j] nor D[j, i]."""
    cases = []
    while len(cases) < 2:
        d = int(rng.integers(4, 8))
        pattern = (rng.random((d, d)) < 0.3) | np.eye(d, dtype=bool)
        if _pairs(pattern) and not np.array_equal(pattern, pattern.T):
            cases.append(pattern)
    cases.append(np.ones((3, 3), dtype=bool))
    for pattern in cases:
        what = f"{PAIRS}(D) for D = {_words(pattern)}"
        data = student.call(probe_pairs, pattern.tolist())
        if "pairs" not in data:
            return failed(f"expected {what} to be a list of pairs (i, j), found {data['type']}")
        got, want = data["pairs"], _pairs(pattern)
        if any(i >= j for i, j in got):
            return failed(f"expected {what} to hold pairs (i, j) with i < j, found {got}")
        if sorted(got) != want:
            return failed(f"expected {what} to hold {len(want)} pairs, found {sorted(got)}")
        if len(set(map(tuple, got))) != len(got):
            return failed(f"expected {what} without repeats, found {got}")
    return passed("lists exactly the pairs that never interact")


def _full(student: Student, masks: list[np.ndarray]) -> str | None:
    """None when right, else a message."""
    what = f"{LAYERS}(masks) for masks = [{', '.join(_mask_text(m) for m in masks)}]"
    data = student.call(probe_full, [m.tolist() for m in masks])
    want = reference_layers(masks)
    if "type" in data:
        return f"expected {what} to be an int or None, found {data['type']}"
    got = None if data.get("none") else data["value"]
    if got == want:
        return None
    if want is None:
        return f"expected {what} to be None (no number of couplings is dense), found {got}"
    if got is None:
        return f"expected {what} to be a number of couplings, found None"
    if got < want:
        return f"expected {what} to be a number of couplings, found {got}: too few to be dense"
    return f"expected {what} to be the smallest number of couplings, found {got}: fewer are dense"


@EXERCISE.check(points=1, answers=[LAYERS])
def layers_for_alternating_halves(student: Student, rng: np.random.Generator) -> Outcome:
    """layers_for_full_interaction for alternating half masks, and for one mask (never dense)."""
    halves = [np.arange(d) < d // 2 for d in (2, 3, int(rng.integers(4, 9)))]
    for masks in [[half, ~half] for half in halves] + [[halves[-1]]]:
        problem = _full(student, masks)
        if problem:
            return failed(problem)
    return passed("right for alternating halves (d = 2, 3 and larger) and for a single mask")


def _cycle(rng: np.random.Generator, dense: bool) -> list[np.ndarray]:
    """2-3 random masks whose cycle becomes dense (``dense``) or never does (one coordinate is
    kept by all of them)."""
    while True:
        d = int(rng.integers(4, 9))
        masks = [_random_mask(rng, d) for _ in range(int(rng.integers(2, 4)))]
        if not dense:
            kept = int(rng.integers(d))
            for mask in masks:
                mask[kept] = True
            if any(m.all() for m in masks):
                continue
        if (reference_layers(masks) is not None) == dense:
            return masks


@EXERCISE.check(points=1, answers=[LAYERS], hidden=True)
def layers_for_any_masks(student: Student, rng: np.random.Generator) -> Outcome:
    """layers_for_full_interaction for other cycles of masks, repeated masks among them."""
    ordered = _cycle(rng, dense=True)
    while reference_layers(ordered) == reference_layers(ordered, backwards=True):
        ordered = _cycle(rng, dense=True)  # one where multiplying in the wrong order shows
    repeated = _cycle(rng, dense=True)
    repeated = [repeated[0], *repeated]  # a coupling that adds nothing, then more that do
    for masks in (ordered, repeated, _cycle(rng, dense=False)):
        problem = _full(student, masks)
        if problem:
            return failed(problem)
    return passed("right for random cycles of masks, including repeated masks and None")


@EXERCISE.check(points=1, answers=[INTERPRETATION], hidden=True, manual=True)
def interpretation_written(student: Student, rng: np.random.Generator) -> Outcome:
    """The written interpretation is there and speaks of the patterns (the instructor marks it)."""
    raw = student.written_answer(INTERPRETATION)
    if raw is None:
        return failed(f"expected a Markdown section headed 'Answer: {INTERPRETATION}', found none")
    text = answer_text(raw)
    words = len(text.split())
    if words < 40:
        return failed(
            f"expected a written interpretation of at least 40 words under 'Answer: "
            f"{INTERPRETATION}', found " + ("only the prompt" if not text else f"{words} words")
        )
    if not (
        re.search(r"never|independen|interact|copied|unchanged|depend", text, re.I)
        and re.search(r"alternat|permut|flip|three|\b3\b|second|third", text, re.I)
    ):
        return failed(
            "expected the interpretation to discuss which coordinates never interact and what "
            "alternating the masks changes, found neither"
        )
    return passed("an interpretation is there; the instructor reads and marks it")
