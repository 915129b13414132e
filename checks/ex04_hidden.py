"""Hidden checks of exercise 04 (instructors only: the student edition leaves this file out)."""

from __future__ import annotations

from . import ex04 as _public

globals().update({k: v for k, v in vars(_public).items() if not k.startswith("__")})


@EXERCISE.check(points=1, answers=[MATCH], hidden=True)
def matched_budget_other_flows(student: Student, rng: np.random.Generator) -> Outcome:
    """matched_hidden_dim is right for other depths, bin counts and coupling types."""
    couplings = ["spline", "affine", "piecewise_linear", "additive"]
    cases = [
        (c, int(rng.integers(400, 9000)), int(rng.integers(2, 7)), int(rng.integers(3, 12)))
        for c in couplings
    ]
    return _match_cases(student, cases)


@EXERCISE.check(points=1, answers=[METRICS], hidden=True)
def held_out_metrics_other_targets(student: Student, rng: np.random.Generator) -> Outcome:
    """held_out_metrics is right for other targets and for float32 data."""
    cases = [
        _metric_case(rng, "checkerboard", {}, 200, "float32"),
        _metric_case(rng, "uniform_disk", {"radius": float(rng.uniform(1, 2))}, 200, "float64"),
    ]
    return _grade_metrics(student, cases, ("nll", "nll_se", "kl"))


@EXERCISE.check(points=1, answers=[FIT], hidden=True)
def fit_trains_the_flow(student: Student, rng: np.random.Generator) -> Outcome:
    """fit builds the asked-for flow, trains it on the given data, and is reproducible."""
    import torch

    import cflib

    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    target = cflib.targets.Rings()
    x, x_held = (target.sample(n, generator=generator).double().numpy() for n in (1000, 1000))
    data = student.call(probe_fit, x.tolist(), x_held.tolist(), int(rng.integers(1000)))
    for kind, hidden in (("affine", 6), ("spline", 4)):
        info = data[kind]
        call = f"{FIT}({kind!r}, {hidden}, x_train, ...)"
        want = flow_parameters(kind, hidden, NUM_LAYERS, NUM_BINS)
        if info["coupling"] != kind or len(info["layers"]) != NUM_LAYERS:
            return failed(
                f"expected {call} to return a CouplingFlow of {NUM_LAYERS} {kind} couplings, "
                f"found {info['type']} with coupling={info['coupling']} and "
                f"{len(info['layers'])} coupling layers"
            )
        if info["params"] != want:
            return failed(
                f"expected {call} to build the flow with hidden_dim={hidden} and the notebook's "
                f"NUM_LAYERS and NUM_BINS ({want} parameters), found {info['params']}"
            )
    standard_normal = float((0.5 * (x_held**2).sum(1) + math.log(2 * math.pi)).mean())
    gain = standard_normal - data["nll"]
    # Measured: 60 steps of fit('affine', 6, ...) on 1000 Rings() samples lower the NLL of 1000
    # held-out samples by 0.459-0.539 nats below the untrained flow's (the standard normal) over 10
    # seeds; a flow that is not trained, or trained on other data, gains nothing. Threshold 0.2.
    if not gain > 0.2:
        return failed(
            f"expected 60 steps of {FIT}('affine', 6, x_train, steps=60, seed=...) to lower the "
            f"NLL of held-out samples by more than 0.2 nats below the untrained flow's, found a "
            f"change of {gain:.3f} (is the flow trained on x_train for `steps` steps?)"
        )
    if not data["repeat"] <= 1e-5:
        return failed(
            f"expected two calls of {FIT} with the same seed to give the same flow, found "
            f"log-densities that differ by up to {data['repeat']:.3g} (seed torch and "
            "cflib.train with `seed`)"
        )
    return passed("builds, trains and reproduces the flow")


@EXERCISE.check(points=1, answers=[CONCLUSION], hidden=True, manual=True)
def conclusion_written(student: Student, rng: np.random.Generator) -> Outcome:
    """The written conclusion is there and discusses both couplings with the numbers."""
    raw = student.written_answer(CONCLUSION)
    if raw is None:
        return failed(f"expected a Markdown section headed 'Answer: {CONCLUSION}', found none")
    text = answer_text(raw)
    words = len(text.split())
    if words < 40:
        return failed(
            f"expected a conclusion of at least 40 words under 'Answer: {CONCLUSION}', found "
            + ("only the prompt" if not text else f"{words} words")
        )
    missing = [w for w in ("affine", "spline") if not re.search(w, text, re.I)]
    if missing or not re.search(r"\d\.\d", text) or not re.search(r"NLL|likelihood|KL", text, re.I):
        return failed(
            "expected the conclusion to compare the affine and the spline flow with your measured "
            "held-out NLL or KL (numbers), found "
            + (f"no mention of {', '.join(missing)}" if missing else "no measured numbers")
        )
    return passed("a conclusion is there; the instructor reads and marks it")
