"""Hidden checks of exercise 02 and the reference formulas they use (instructors only: the student
edition leaves this file out)."""

from __future__ import annotations

import re

import numpy as np

from cflib.grading.checks import Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text

from .ex02 import (
    EXERCISE,
    FLOW,
    INTERPRETATION,
    LAYERS,
    PAIRS,
    Spec,
    _check_flow,
    _mask_text,
    _order_matters,
    _random_mask,
    _student_pairs,
    _tanh_mlp,
    _words,
    probe_full,
)

# --- the reference ------------------------------------------------------------------------------


def reference_coupling(mask: np.ndarray) -> np.ndarray:
    """Kept rows: the identity; transformed rows: every kept column and their own."""
    mask = np.asarray(mask, dtype=bool)
    return np.eye(len(mask), dtype=bool) | (~mask[:, None] & mask[None, :])


def reference_stack(patterns: list[np.ndarray]) -> np.ndarray:
    """Boolean product ``D_L ... D_1`` of patterns given first layer first."""
    result = patterns[0]
    for pattern in patterns[1:]:
        result = (pattern.astype(np.int64) @ result.astype(np.int64)) > 0
    return result


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


def reference_pairs(pattern: np.ndarray) -> list[list[int]]:
    d = len(pattern)
    return [[i, j] for i in range(d) for j in range(i + 1, d) if not pattern[i, j] | pattern[j, i]]


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


# --- checks -------------------------------------------------------------------------------------


@EXERCISE.check(points=1, answers=[FLOW], hidden=True)
def flow_pattern_of_coupling_flow(student: Student, rng: np.random.Generator) -> Outcome:
    """flow_pattern of the layers of cflib.CouplingFlow (random shuffles, reversal, odd d)."""
    d, num_layers = int(rng.integers(5, 9)), int(rng.integers(2, 4))
    seed = int(rng.integers(1000))
    while not _order_matters(coupling_flow_spec(d, num_layers, "random", seed), seed + 1):
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


@EXERCISE.check(points=0.5, answers=[PAIRS], hidden=True)
def non_interacting_pairs_found(student: Student, rng: np.random.Generator) -> Outcome:
    """non_interacting_pairs(pattern) lists every pair i < j with neither D[i, j] nor D[j, i]."""
    cases = []
    while len(cases) < 2:
        d = int(rng.integers(4, 8))
        pattern = (rng.random((d, d)) < 0.3) | np.eye(d, dtype=bool)
        if reference_pairs(pattern) and not np.array_equal(pattern, pattern.T):
            cases.append(pattern)
    for pattern in cases:
        what = f"{PAIRS}(D) for D = {_words(pattern)}"
        got = _student_pairs(student, pattern, what)
        if isinstance(got, str):
            return failed(got)
        want = reference_pairs(pattern)
        if sorted(got) != want:
            return failed(f"expected {what} to hold {len(want)} pairs, found {sorted(got)}")
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
