r"""Exercise 04: affine versus spline couplings on 2-D density estimation, at the same budget.

The notebook fixes the set-up (repeated here as the reference): the target ``Rings()``, flows
``CouplingFlow(2, NUM_LAYERS=4, coupling, hidden_dim, num_bins=NUM_BINS=8, bound=4.0,
scale="tanh")``, a budget of ``BUDGET = 1200`` trainable parameters, ``x_train =
TARGET.sample(2000, generator=seed 1)`` and the held-out ``x_test = TARGET.sample(5000,
generator=seed 2)``. Measured over 8 training seeds with these settings: the spline flow's
held-out NLL is lower by 0.291-0.361 nats, 10.6 to 12.9 times two standard errors of the
difference.

Graded answers: ``count_parameters(model)``, ``matched_hidden_dim(coupling, budget, num_layers,
num_bins)``, ``held_out_metrics(model, target, x) -> {"nll", "nll_se", "kl"}``,
``fit(coupling, hidden_dim, x_train, steps, seed)``, ``pick_winner(results)``; under the name
``compare_couplings``, the variables ``flows``, ``results`` and ``winner`` that the notebook's
experiment leaves (re-measured on ``x_test`` here); the written ``conclusion``. 12 points, 4 of
them hidden.

The reference for a model's metrics on samples ``x`` of the target ``p``:
``nll = -mean log q(x)``, ``nll_se = std(log q(x)) / sqrt(n)``, ``kl = mean(log p(x) - log q(x))``
(the forward KL, estimated on the same held-out samples). ``pick_winner`` calls a difference of
held-out NLLs smaller than two standard errors, ``2 sqrt(se_a^2 + se_s^2)``, a ``"tie"``.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.markdown import answer_text
from cflib.grading.wire import decode_array, describe, encode_tensor

EXERCISE = Exercise(
    "04", "Affine versus spline couplings at the same budget", "04_affine_vs_spline"
)

COUNT = "count_parameters"
MATCH = "matched_hidden_dim"
METRICS = "held_out_metrics"
FIT = "fit"
PICK = "pick_winner"
EXPERIMENT = "compare_couplings"  # its checks grade the variables flows, results, winner
CONCLUSION = "conclusion"

# The notebook's set-up (its first code cell).
NUM_LAYERS, NUM_BINS, BOUND, BUDGET = 4, 8, 4.0, 1200
TEST_SEED, TEST_SIZE = 2, 5000
BUDGET_TOLERANCE = 0.05  # each flow's parameter count within 5% of BUDGET
KINDS = ("affine", "spline")


# --- the reference (grader side) ----------------------------------------------------------------


@cache
def flow_parameters(coupling: str, hidden_dim: int, num_layers: int, num_bins: int) -> int:
    """Trainable parameters of ``CouplingFlow(2, num_layers, coupling, hidden_dim, num_bins)``."""
    import cflib

    flow = cflib.CouplingFlow(
        2, num_layers, coupling=coupling, hidden_dim=hidden_dim, num_bins=num_bins
    )
    return sum(p.numel() for p in flow.parameters() if p.requires_grad)


def closest_gap(coupling: str, budget: int, num_layers: int, num_bins: int) -> int:
    """The smallest ``|count(h) - budget|`` over hidden sizes ``h >= 1`` (counts grow with h)."""
    best, h = math.inf, 1
    while True:
        count = flow_parameters(coupling, h, num_layers, num_bins)
        best = min(best, abs(count - budget))
        if count > budget:
            return int(best)
        h += 1


def reference_metrics(log_q: np.ndarray, log_p: np.ndarray) -> dict[str, float]:
    """NLL, its standard error and the forward KL from per-sample log-densities (float64)."""
    return {
        "nll": float(-log_q.mean()),
        "nll_se": float(log_q.std(ddof=1) / math.sqrt(len(log_q))),
        "kl": float((log_p - log_q).mean()),
    }


def reference_winner(results: dict[str, dict[str, float]]) -> str:
    a, s = results["affine"], results["spline"]
    if abs(a["nll"] - s["nll"]) < 2 * math.hypot(a["nll_se"], s["nll_se"]):
        return "tie"
    return "affine" if a["nll"] < s["nll"] else "spline"


@cache
def test_set() -> np.ndarray:
    """The notebook's held-out ``x_test`` (float32 values, as the notebook holds them)."""
    import torch

    import cflib

    generator = torch.Generator().manual_seed(TEST_SEED)
    x = cflib.targets.Rings().sample(TEST_SIZE, generator=generator).float()
    return x.double().numpy()


def target_log_prob(name: str, kwargs: dict[str, Any], x: np.ndarray) -> np.ndarray:
    import torch

    import cflib

    target = cflib.targets.get_target(name, **kwargs)
    return target.log_prob(torch.as_tensor(x, dtype=torch.float64)).numpy()


def _close(got: float, want: float, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    return math.isfinite(got) and abs(got - want) <= atol + rtol * abs(want)


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_count(answers, specs):
    import torch
    from torch import nn

    out = []
    for spec in specs:
        torch.manual_seed(0)
        if spec["kind"] == "flow":
            import cflib

            model = cflib.CouplingFlow(
                2, spec["layers"], coupling=spec["coupling"], hidden_dim=spec["hidden"]
            )
        else:
            a, b, c = spec["sizes"]
            model = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c), nn.LayerNorm(c))
            model[0].bias.requires_grad_(False)  # frozen: not trainable
            model.register_buffer("running", torch.zeros(b, c))  # a buffer: not a parameter
        got = answers["count_parameters"](model)
        out.append(got if isinstance(got, int) else {"type": describe(got), "value": str(got)})
    return out


def probe_match(answers, cases):
    out = []
    for coupling, budget, layers, bins in cases:
        got = answers["matched_hidden_dim"](coupling, budget, num_layers=layers, num_bins=bins)
        out.append(got if isinstance(got, int) else {"type": describe(got)})
    return out


def probe_metrics(answers, cases):
    import torch

    import cflib

    out = []
    for case in cases:
        dtype = getattr(torch, case["dtype"])
        loc = torch.tensor(case["loc"], dtype=dtype)
        tril = torch.tensor(case["tril"], dtype=dtype)
        model = torch.distributions.MultivariateNormal(loc, scale_tril=tril)
        target = cflib.targets.get_target(case["target"], **case["kwargs"])
        x = torch.tensor(case["x"], dtype=dtype)
        got = answers["held_out_metrics"](model, target, x)
        if not isinstance(got, dict):
            out.append({"type": describe(got)})
            continue
        row = {}
        for key in ("nll", "nll_se", "kl"):
            try:
                row[key] = float(got[key])
            except (KeyError, TypeError, ValueError):
                row[key] = None
        out.append(row)
    return out


def probe_fit(answers, x, x_held, seed):
    import torch

    dtype = torch.get_default_dtype()
    x, x_held = torch.tensor(x, dtype=dtype), torch.tensor(x_held, dtype=dtype)
    fit = answers["fit"]

    def summary(flow):
        modules = list(flow.modules()) if hasattr(flow, "modules") else []
        return {
            "type": describe(flow),
            "coupling": str(getattr(flow, "coupling", None)),
            "layers": [type(m).__name__ for m in modules if type(m).__name__.endswith("Coupling")],
            "params": sum(p.numel() for p in flow.parameters() if p.requires_grad)
            if hasattr(flow, "parameters")
            else -1,
        }

    trained = fit("affine", 6, x, steps=60, seed=seed)
    with torch.no_grad():
        nll = float(-trained.log_prob(x_held).double().mean())
    first = fit("spline", 4, x, steps=5, seed=seed)
    second = fit("spline", 4, x, steps=5, seed=seed)
    with torch.no_grad():
        same = float((first.log_prob(x_held[:100]) - second.log_prob(x_held[:100])).abs().max())
    return {"affine": summary(trained), "spline": summary(first), "nll": nll, "repeat": same}


def probe_pick(answers, cases):
    out = []
    for results in cases:
        got = answers["pick_winner"](results)
        out.append(got if isinstance(got, str) else {"type": describe(got)})
    return out


def probe_flows(answers):
    import torch

    if not all(name in answers for name in ("flows",)):
        # The experiment left no variables: say so with the reason when compare_couplings is
        # still the stub (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["compare_couplings"](None, torch.empty(0, 2), torch.empty(0, 2), 1200)
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows = answers["flows"]
    if not isinstance(flows, dict):
        return {"type": describe(flows)}
    out = {}
    for kind in ("affine", "spline"):
        flow = flows.get(kind)
        if flow is None or not hasattr(flow, "parameters"):
            out[kind] = None
            continue
        out[kind] = {
            "type": describe(flow),
            "coupling": str(getattr(flow, "coupling", None)),
            "layers": sum(type(m).__name__.endswith("Coupling") for m in flow.modules()),
            "params": sum(p.numel() for p in flow.parameters() if p.requires_grad),
        }
    return out


def probe_results(answers, x_test):
    import torch

    if not all(name in answers for name in ("flows", "results")):
        # The experiment left no variables: say so with the reason when compare_couplings is
        # still the stub (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["compare_couplings"](None, torch.empty(0, 2), torch.empty(0, 2), 1200)
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows, results = answers["flows"], answers["results"]
    if not isinstance(flows, dict) or not isinstance(results, dict):
        return {"type": f"flows: {describe(flows)}, results: {describe(results)}"}
    x = torch.tensor(x_test, dtype=torch.get_default_dtype())
    out = {}
    for kind in ("affine", "spline"):
        if kind not in flows or not isinstance(results.get(kind), dict):
            out[kind] = None
            continue
        with torch.no_grad():
            log_q = flows[kind].log_prob(x)
        row = {"log_q": encode_tensor(log_q)}
        for key in ("nll", "nll_se", "kl"):
            try:
                row[key] = float(results[kind][key])
            except (KeyError, TypeError, ValueError):
                row[key] = None
        out[kind] = row
    return out


def probe_winner(answers, x_test):
    import torch

    if not all(name in answers for name in ("flows", "winner")):
        # The experiment left no variables: say so with the reason when compare_couplings is
        # still the stub (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["compare_couplings"](None, torch.empty(0, 2), torch.empty(0, 2), 1200)
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows, winner = answers["flows"], answers["winner"]
    x = torch.tensor(x_test, dtype=torch.get_default_dtype())
    log_q = {}
    for kind in ("affine", "spline"):
        with torch.no_grad():
            log_q[kind] = encode_tensor(flows[kind].log_prob(x))
    return {"winner": winner if isinstance(winner, str) else describe(winner), "log_q": log_q}


# --- checks -------------------------------------------------------------------------------------


@EXERCISE.check(points=1, answers=[COUNT])
def counts_trainable_parameters(student: Student, rng: np.random.Generator) -> Outcome:
    """count_parameters(model) counts the trainable parameters, without buffers or frozen ones."""
    a, b, c = (int(v) for v in rng.integers(2, 9, size=3))
    layers, hidden = int(rng.integers(1, 5)), int(rng.integers(3, 12))
    coupling = str(rng.choice(["affine", "spline"]))
    specs = [
        {"kind": "flow", "layers": layers, "coupling": coupling, "hidden": hidden},
        {"kind": "net", "sizes": [a, b, c]},
    ]
    wants = [flow_parameters(coupling, hidden, layers, 8), a * b + b * c + c + 2 * c]
    what = [
        f"a CouplingFlow(2, {layers}, coupling={coupling!r}, hidden_dim={hidden})",
        f"Linear({a}, {b}) (bias frozen), ReLU, Linear({b}, {c}), LayerNorm({c}) and a buffer",
    ]
    got = student.call(probe_count, specs)
    for value, want, name in zip(got, wants, what, strict=True):
        if isinstance(value, dict):
            return failed(f"expected an int for {name}, found {value['type']} {value['value']}")
        if value != want:
            return failed(
                f"expected {want} trainable parameters for {name}, found {value} (count every "
                "parameter with requires_grad once; buffers and frozen parameters are not trained)"
            )
    return passed("counts trainable parameters only")


def _match_cases(student: Student, cases: list[tuple[str, int, int, int]]) -> Outcome:
    got = student.call(probe_match, [list(c) for c in cases])
    for value, (coupling, budget, layers, bins) in zip(got, cases, strict=True):
        call = f"{MATCH}({coupling!r}, {budget}, num_layers={layers}, num_bins={bins})"
        if isinstance(value, dict) or isinstance(value, bool):
            found = value["type"] if isinstance(value, dict) else "bool"
            return failed(f"expected {call} to return an int hidden size, found {found}")
        if value < 1:
            return failed(f"expected {call} to be a positive hidden size, found {value}")
        count = flow_parameters(coupling, value, layers, bins)
        if abs(count - budget) > closest_gap(coupling, budget, layers, bins):
            return failed(
                f"expected {call} to give the flow whose parameter count is closest to {budget}, "
                f"found hidden_dim={value}, whose flow has {count} parameters (another hidden "
                "size comes closer)"
            )
    return passed(f"the closest parameter count for {len(cases)} budgets")


@EXERCISE.check(points=1, answers=[MATCH])
def matched_budget(student: Student, rng: np.random.Generator) -> Outcome:
    """matched_hidden_dim gives the hidden size whose flow's size is closest to the budget."""
    budgets = rng.integers(600, 6000, size=2)
    cases = [
        ("affine", int(budgets[0]), NUM_LAYERS, NUM_BINS),
        ("spline", int(budgets[1]), NUM_LAYERS, NUM_BINS),
    ]
    return _match_cases(student, cases)


@EXERCISE.check(points=1, answers=[MATCH], hidden=True)
def matched_budget_other_flows(student: Student, rng: np.random.Generator) -> Outcome:
    """matched_hidden_dim is right for other depths, bin counts and coupling types."""
    couplings = ["spline", "affine", "piecewise_linear", "additive"]
    cases = [
        (c, int(rng.integers(400, 9000)), int(rng.integers(2, 7)), int(rng.integers(3, 12)))
        for c in couplings
    ]
    return _match_cases(student, cases)


def _metric_case(rng: np.random.Generator, target: str, kwargs: dict, n: int, dtype: str) -> dict:
    import torch

    import cflib

    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    x = cflib.targets.get_target(target, **kwargs).sample(n, generator=generator).double()
    if dtype == "float32":
        x = x.float().double()
    loc = rng.normal(scale=0.5, size=2)
    tril = np.array([[rng.uniform(0.8, 2.5), 0.0], [rng.normal(scale=0.5), rng.uniform(0.8, 2.5)]])
    return {
        "target": target,
        "kwargs": kwargs,
        "x": x.numpy().tolist(),
        "loc": loc.tolist(),
        "tril": tril.tolist(),
        "dtype": dtype,
    }


def _reference_for(case: dict) -> dict[str, float]:
    from scipy import stats

    x = np.asarray(case["x"])
    tril = np.asarray(case["tril"])
    log_q = stats.multivariate_normal(case["loc"], tril @ tril.T).logpdf(x)
    return reference_metrics(log_q, target_log_prob(case["target"], case["kwargs"], x))


def _grade_metrics(student: Student, cases: list[dict], keys: tuple[str, ...]) -> Outcome:
    got = student.call(probe_metrics, cases)
    explain = {
        "nll": "NLL = -mean log q(x) over the given samples x (positive for these data)",
        "nll_se": "its standard error, std(log q(x)) / sqrt(n)",
        "kl": "the forward KL(p || q), the mean of log p(x) - log q(x) over the given samples x",
    }
    for row, case in zip(got, cases, strict=True):
        where = f"for {len(case['x'])} samples of {case['target']} ({case['dtype']}), model N(m, S)"
        if "type" in row:
            return failed(f"expected {METRICS} to return a dict, found {row['type']}")
        want = _reference_for(case)
        for key in keys:
            if row.get(key) is None:
                return failed(f"expected a number under the key {key!r} {where}, found none")
            rtol = 2e-3 if key == "nll_se" else 1e-5  # ddof 0 or 1 both accepted for the error
            tol = 1e-4 if case["dtype"] == "float32" else 1e-6
            if not _close(row[key], want[key], rtol=rtol, atol=tol):
                return failed(
                    f"expected {key} = {explain[key]} {where}, found {row[key]:.4g} instead of "
                    f"a value near {want[key]:.4g}"
                )
    return passed(f"{', '.join(keys)} right on the grader's samples")


@EXERCISE.check(points=1, answers=[METRICS])
def held_out_nll(student: Student, rng: np.random.Generator) -> Outcome:
    """held_out_metrics gives the mean negative log-likelihood of the samples and its error."""
    case = _metric_case(
        rng, "eight_gaussians", {"radius": float(rng.uniform(1, 3))}, 300, "float64"
    )
    return _grade_metrics(student, [case], ("nll", "nll_se"))


@EXERCISE.check(points=1, answers=[METRICS])
def held_out_kl(student: Student, rng: np.random.Generator) -> Outcome:
    """held_out_metrics gives the forward KL(p || q) estimated on the given target samples."""
    case = _metric_case(rng, "rings", {"std": float(rng.uniform(0.1, 0.3))}, 300, "float64")
    return _grade_metrics(student, [case], ("kl",))


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


@EXERCISE.check(points=1, answers=[PICK])
def winner_rule(student: Student, rng: np.random.Generator) -> Outcome:
    """pick_winner names the lower held-out NLL, or 'tie' within two standard errors."""
    cases = []
    for kind in ("affine", "spline", "tie", "spline", "affine"):
        se_a, se_s = rng.uniform(0.005, 0.03, size=2)
        both = 2 * math.hypot(se_a, se_s)
        gap = both * (rng.uniform(0.1, 0.9) if kind == "tie" else rng.uniform(1.3, 8))
        base = rng.uniform(-1, 4)
        a, s = (base, base + gap) if kind == "affine" else (base + gap, base)
        if kind == "tie" and rng.random() < 0.5:
            a, s = s, a
        cases.append(
            {
                "affine": {"nll": a, "nll_se": se_a, "kl": a - base + 0.1, "params": 1200},
                "spline": {"nll": s, "nll_se": se_s, "kl": s - base + 0.1, "params": 1180},
            }
        )
    got = student.call(probe_pick, cases)
    for value, case in zip(got, cases, strict=True):
        want = reference_winner(case)
        if value != want:
            a, s = case["affine"], case["spline"]
            return failed(
                f"expected {PICK} to return {want!r} for held-out NLLs affine {a['nll']:.4f} "
                f"(se {a['nll_se']:.4f}) and spline {s['nll']:.4f} (se {s['nll_se']:.4f}), "
                f"found {value!r}"
            )
    return passed("names the lower held-out NLL, and a tie within two standard errors")


@EXERCISE.check(points=1, answers=[EXPERIMENT])
def equal_budgets(student: Student, rng: np.random.Generator) -> Outcome:
    """The trained flows have the same budget: each within 5% of BUDGET parameters."""
    data = student.call(probe_flows)
    if "type" in data:
        return failed(
            f"expected flows to be a dict {{'affine': flow, 'spline': flow}}, found {data['type']}"
        )
    for kind in KINDS:
        info = data.get(kind)
        if info is None:
            return failed(f"expected flows[{kind!r}] to be a trained flow, found none")
        if info["coupling"] != kind or info["layers"] != NUM_LAYERS:
            return failed(
                f"expected flows[{kind!r}] to be a CouplingFlow of {NUM_LAYERS} {kind} couplings, "
                f"found {info['type']} with coupling={info['coupling']}, {info['layers']} layers"
            )
    counts = {kind: data[kind]["params"] for kind in KINDS}
    for count in counts.values():
        if abs(count - BUDGET) > BUDGET_TOLERANCE * BUDGET:
            return failed(
                f"expected each flow to have {BUDGET} trainable parameters within "
                f"{BUDGET_TOLERANCE:.0%}, found affine {counts['affine']} and spline "
                f"{counts['spline']}: the comparison is not at the same budget"
            )
    return passed(f"both flows within {BUDGET_TOLERANCE:.0%} of {BUDGET} parameters")


def _reference_results(log_q: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    x = test_set()
    log_p = target_log_prob("rings", {}, x)
    return {kind: reference_metrics(log_q[kind], log_p) for kind in KINDS}


@EXERCISE.check(points=1, answers=[EXPERIMENT])
def results_are_held_out(student: Student, rng: np.random.Generator) -> Outcome:
    """results holds each flow's NLL and KL measured on the held-out x_test."""
    data = student.call(probe_results, test_set().tolist())
    if "type" in data:
        return failed(
            f"expected flows and results to be dicts keyed by coupling, found {data['type']}"
        )
    log_q = {}
    for kind in KINDS:
        if data.get(kind) is None:
            return failed(f"expected results[{kind!r}] (a dict) and flows[{kind!r}], found none")
        log_q[kind], _ = decode_array(data[kind]["log_q"], f"flows[{kind!r}].log_prob(x_test)")
    want = _reference_results(log_q)
    for kind in KINDS:
        for key, meaning in (
            ("nll", "-mean log q(x_test)"),
            ("kl", "mean log p - log q on x_test"),
        ):
            got = data[kind][key]
            if got is None:
                return failed(f"expected a number under results[{kind!r}][{key!r}], found none")
            if not _close(got, want[kind][key], rtol=1e-5, atol=1e-4):
                return failed(
                    f"expected results[{kind!r}][{key!r}] to be {meaning}, measured on the "
                    f"held-out x_test, found {got:.4f}, {got - want[kind][key]:+.4f} away from "
                    "it (measured on other samples, the training set, or with a sign slip?)"
                )
    return passed("NLL and KL of both flows measured on the held-out x_test")


@EXERCISE.check(points=1, answers=[EXPERIMENT])
def winner_matches_numbers(student: Student, rng: np.random.Generator) -> Outcome:
    """winner is what the held-out NLLs of the trained flows support."""
    data = student.call(probe_winner, test_set().tolist())
    log_q = {
        kind: decode_array(data["log_q"][kind], f"flows[{kind!r}].log_prob(x_test)")[0]
        for kind in KINDS
    }
    results = _reference_results(log_q)
    want = reference_winner(results)
    a, s = results["affine"], results["spline"]
    ratio = abs(a["nll"] - s["nll"]) / (2 * math.hypot(a["nll_se"], s["nll_se"]))
    accepted = {want} | (
        {"tie", "affine" if a["nll"] < s["nll"] else "spline"} if 0.99 < ratio < 1.01 else set()
    )
    if data["winner"] not in accepted:
        return failed(
            f"expected winner to be what the held-out NLLs of your flows support, {want!r} "
            f"(affine {a['nll']:.4f}, spline {s['nll']:.4f}, difference "
            f"{ratio:.1f} x twice its standard error), found {data['winner']!r}"
        )
    return passed("the winner is the one the held-out numbers support")


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
