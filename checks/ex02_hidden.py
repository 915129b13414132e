"""Hidden checks of exercise 02 (instructors only: the student edition leaves this file out)."""

from __future__ import annotations

from . import ex02 as _public

globals().update({k: v for k, v in vars(_public).items() if not k.startswith("__")})


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
