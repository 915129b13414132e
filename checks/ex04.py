r"""Exercise 04: affine versus spline couplings on 2-D density estimation, at the same budget.

Public checks (this file ships to students): they hold no reference answer and no expected value.
They check what can be seen from the answers' own outputs: types, properties that any right answer
has (a shift of log q shifts the NLL by as much; the KL of the target to itself is 0; swapping the
two couplings swaps the winner), and the consistency of the answers with each other (the hidden
size ``matched_hidden_dim`` picks is the closest by your own ``count_parameters``; ``results`` is
what your ``held_out_metrics`` says of your flows on ``x_test``). The values themselves are checked
by the hidden checks, measured by the grader.

The notebook fixes the set-up: the target ``Rings()``, flows ``CouplingFlow(2, NUM_LAYERS=4,
coupling, hidden_dim, num_bins=NUM_BINS=8, bound=4.0, scale="tanh")``, a budget of ``BUDGET =
1200`` trainable parameters, ``x_train = TARGET.sample(2000, generator=seed 1)`` and the held-out
``x_test = TARGET.sample(5000, generator=seed 2)``.

Graded answers: ``count_parameters(model)``, ``matched_hidden_dim(coupling, budget, num_layers,
num_bins)``, ``held_out_metrics(model, target, x) -> {"nll", "nll_se", "kl"}``,
``fit(coupling, hidden_dim, x_train, steps, seed)``, ``pick_winner(results)``; under the name
``compare_couplings``, the variables ``flows``, ``results`` and ``winner`` that the notebook's
experiment leaves; the written ``conclusion``. 12 points, 6.5 of them hidden.

Probes only build inputs, call the answers and encode what they return (and whether they changed
their inputs); every verdict is computed here, in the grader.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from cflib.grading.checks import Exercise, Outcome, Student, failed, passed
from cflib.grading.wire import describe

EXERCISE = Exercise(
    "04",
    "Affine versus spline couplings at the same budget",
    "04_affine_vs_spline",
    hidden_checks=9,
    hidden_points=6.5,
    # What each answer may not simply call: cflib's own version of the very thing asked. The
    # helpers the exercise builds on (cflib.CouplingFlow, cflib.train, the targets) stay allowed.
    forbidden={"held_out_metrics": ("cflib.metrics.nll", "cflib.metrics.kl_divergence")},
    # The solution notebook ran in 44 s (nbclient, 2 shared CPUs); about 4x that.
    time_limit=180,
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
WINNERS = ("affine", "spline", "tie")
METRIC_KEYS = ("nll", "nll_se", "kl")


# --- inputs (grader side) -----------------------------------------------------------------------


@cache
def test_set() -> np.ndarray:
    """The notebook's held-out ``x_test`` (float32 values, as the notebook holds them)."""
    import torch

    import cflib

    generator = torch.Generator().manual_seed(TEST_SEED)
    x = cflib.targets.Rings().sample(TEST_SIZE, generator=generator).float()
    return x.double().numpy()


def _close(got: float, want: float, rtol: float = 1e-5, atol: float = 1e-5) -> bool:
    return math.isfinite(got) and abs(got - want) <= atol + rtol * abs(want)


def _metric_case(rng: np.random.Generator, target: str, kwargs: dict, n: int, dtype: str) -> dict:
    """Samples of a target and a Gaussian model N(loc, tril tril^T) for ``held_out_metrics``."""
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
        "model": "gauss",
        "q_shift": 0.0,
        "p_shift": 0.0,
    }


def _variant(case: dict, **changes: object) -> dict:
    return {**case, **changes}


# --- probes (run in the student's kernel: builtins, wire's names, and imports inside) -----------


def probe_count_properties(answers, sizes):
    import torch
    from torch import nn

    count = answers["count_parameters"]

    def as_data(got):
        if type(got) is int:
            return got
        return {"type": describe(got), "value": str(got)[:40]}

    a, b, c = sizes
    torch.manual_seed(0)
    first, second = nn.Linear(a, b), nn.Linear(b, c)
    out = {
        "no_parameters": as_data(count(nn.ReLU())),
        "first": as_data(count(first)),
        "first_wider": as_data(count(nn.Linear(a + 1, b))),
        "second": as_data(count(second)),
    }
    model = nn.Sequential(first, nn.ReLU(), second)
    out["both"] = as_data(count(model))
    model.register_buffer("running", torch.zeros(b, c))  # a buffer: not a parameter
    out["with_buffer"] = as_data(count(model))
    first.bias.requires_grad_(False)  # frozen: not trained
    out["frozen_bias"] = as_data(count(model))
    return out


def probe_match(answers, cases):
    out = []
    for coupling, budget, layers, bins in cases:
        got = answers["matched_hidden_dim"](coupling, budget, num_layers=layers, num_bins=bins)
        out.append(got if type(got) is int else {"type": describe(got)})
    return out


def probe_flow_counts(answers, cases):
    import torch

    import cflib

    out = []
    for coupling, layers, bins, hidden in cases:
        torch.manual_seed(0)
        flow = cflib.CouplingFlow(2, layers, coupling=coupling, hidden_dim=hidden, num_bins=bins)
        got = answers["count_parameters"](flow)
        out.append(got if type(got) is int else {"type": describe(got)})
    return out


def probe_metrics(answers, cases):
    import torch

    import cflib

    class Shifted:
        """A density whose log_prob is another's plus a constant."""

        def __init__(self, base, shift):
            self.base, self.shift = base, shift

        def log_prob(self, x):
            return self.base.log_prob(x) + self.shift

    out = []
    for case in cases:
        dtype = getattr(torch, case["dtype"])
        target = cflib.targets.get_target(case["target"], **case["kwargs"])
        if case["model"] == "target":
            model = target
        else:
            loc = torch.tensor(case["loc"], dtype=dtype)
            tril = torch.tensor(case["tril"], dtype=dtype)
            model = torch.distributions.MultivariateNormal(loc, scale_tril=tril)
        x = torch.tensor(case["x"], dtype=dtype)
        before = x.clone()
        got = answers["held_out_metrics"](
            Shifted(model, case["q_shift"]), Shifted(target, case["p_shift"]), x
        )
        mutated = not torch.equal(x, before)
        if not isinstance(got, dict):
            out.append({"type": describe(got), "mutated": mutated})
            continue
        row = {"mutated": mutated}
        for key in ("nll", "nll_se", "kl"):
            try:
                row[key] = float(got[key])
            except (KeyError, TypeError, ValueError):
                row[key] = None
        out.append(row)
    return out


def probe_pick(answers, cases):
    out = []
    for results in cases:
        got = answers["pick_winner"](results)
        out.append(got if isinstance(got, str) else {"type": describe(got)})
    return out


def probe_budgets(answers):
    import torch

    if "flows" not in answers:
        # The experiment left no variables: say so with the reason when compare_couplings is
        # still the stub (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["compare_couplings"](None, torch.empty(0, 2), torch.empty(0, 2), 1200)
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    flows = answers["flows"]
    results = answers["results"] if "results" in answers else None
    if not isinstance(flows, dict):
        return {"type": describe(flows)}
    out = {}
    for kind in ("affine", "spline"):
        flow = flows.get(kind)
        if flow is None or not hasattr(flow, "modules"):
            out[kind] = None
            continue
        row = results.get(kind) if isinstance(results, dict) else None
        params = row.get("params") if isinstance(row, dict) else None
        count = answers["count_parameters"](flow)
        out[kind] = {
            "type": describe(flow),
            "coupling": str(getattr(flow, "coupling", None)),
            "layers": sum(type(m).__name__.endswith("Coupling") for m in flow.modules()),
            "count": count if type(count) is int else describe(count),
            "params": params if type(params) is int else describe(params),
        }
    return out


def probe_remeasure(answers, x_test):
    import torch

    import cflib

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

    def numbers(got):
        if not isinstance(got, dict):
            return None
        row = {}
        for key in ("nll", "nll_se", "kl"):
            try:
                row[key] = float(got[key])
            except (KeyError, TypeError, ValueError):
                row[key] = None
        return row

    x = torch.tensor(x_test, dtype=torch.get_default_dtype())
    out = {}
    for kind in ("affine", "spline"):
        if kind not in flows or not isinstance(results.get(kind), dict):
            out[kind] = None
            continue
        again = answers["held_out_metrics"](flows[kind], cflib.targets.Rings(), x)
        out[kind] = {"results": numbers(results[kind]), "again": numbers(again)}
    return out


def probe_winner(answers):
    import torch

    if not all(name in answers for name in ("results", "winner")):
        # The experiment left no variables: say so with the reason when compare_couplings is
        # still the stub (it raises NotImplementedError at once; an answer fails fast on no data)
        try:
            answers["compare_couplings"](None, torch.empty(0, 2), torch.empty(0, 2), 1200)
        except Exception as error:
            if type(getattr(error, "error", None)).__name__ == "NotImplementedError":
                raise
    winner = answers["winner"]
    picked = answers["pick_winner"](answers["results"])
    return {
        "winner": winner if isinstance(winner, str) else describe(winner),
        "picked": picked if isinstance(picked, str) else describe(picked),
    }


# --- public checks ------------------------------------------------------------------------------


def _as_int(value: object, what: str) -> int:
    """``value`` when it is an int; else raise a failure message naming what it was."""
    if isinstance(value, dict) or type(value) is not int:
        found = value["type"] if isinstance(value, dict) else describe(value)
        raise _Failure(f"expected {what} to be an int, found {found}")
    return value


class _Failure(Exception):
    """A check's verdict found deep in a helper: failed(message)."""


@EXERCISE.check(points=0.5, answers=[COUNT])
def count_parameters_properties(student: Student, rng: np.random.Generator) -> Outcome:
    """count_parameters adds up over submodules, grows with width, skips buffers and frozen ones."""
    a, b, c = (int(v) for v in rng.integers(2, 9, size=3))
    got = student.call(probe_count_properties, [a, b, c])
    net = f"Sequential(Linear({a}, {b}), ReLU(), Linear({b}, {c}))"
    try:
        n = {key: _as_int(value, f"{COUNT}(...) ({key})") for key, value in got.items()}
    except _Failure as failure:
        return failed(str(failure))
    if n["no_parameters"] != 0:
        return failed(f"expected {COUNT}(ReLU()) to be 0, found {n['no_parameters']}")
    if not n["first_wider"] > n["first"] > 0:
        return failed(
            f"expected the count of Linear({a + 1}, {b}) to be larger than that of "
            f"Linear({a}, {b}), and both positive, found {n['first_wider']} and {n['first']} "
            "(count the entries of the parameters, not the tensors)"
        )
    if n["both"] != n["first"] + n["second"]:
        return failed(
            f"expected the count of {net} to be the sum of its layers' counts, "
            f"{n['first']} + {n['second']}, found {n['both']}"
        )
    if n["with_buffer"] != n["both"]:
        return failed(
            f"expected a buffer registered on {net} not to change its count ({n['both']}), "
            f"found {n['with_buffer']} (buffers are not trained)"
        )
    if not n["second"] <= n["frozen_bias"] < n["both"]:
        return failed(
            f"expected freezing the first layer's bias (requires_grad=False) to lower the count "
            f"of {net} below {n['both']}, found {n['frozen_bias']} (frozen parameters are not "
            "trained)"
        )
    return passed("adds up over layers, grows with width, skips buffers and frozen parameters")


@EXERCISE.check(points=1, answers=[MATCH])  # also calls count_parameters
def matched_budget(student: Student, rng: np.random.Generator) -> Outcome:
    """matched_hidden_dim's size is the closest to the budget, by your count_parameters."""
    budgets = rng.integers(600, 6000, size=2)
    cases = [
        ("affine", int(budgets[0]), NUM_LAYERS, NUM_BINS),
        ("spline", int(budgets[1]), NUM_LAYERS, NUM_BINS),
    ]
    got = student.call(probe_match, [list(c) for c in cases])
    sizes = []
    for value, (coupling, budget, layers, bins) in zip(got, cases, strict=True):
        call = f"{MATCH}({coupling!r}, {budget}, num_layers={layers}, num_bins={bins})"
        if isinstance(value, dict):
            return failed(f"expected {call} to return an int hidden size, found {value['type']}")
        if value < 1:
            return failed(f"expected {call} to be a positive hidden size, found {value}")
        sizes.append(value)
    around = [
        [coupling, layers, bins, h + d]
        for (coupling, _, layers, bins), h in zip(cases, sizes, strict=True)
        for d in (-1, 0, 1)
        if h + d >= 1
    ]
    counts = student.call(probe_flow_counts, around)
    measured: dict[tuple[str, int], int] = {}
    for (coupling, _, _, h), value in zip(around, counts, strict=True):
        what = f"{COUNT}(CouplingFlow(2, {NUM_LAYERS}, {coupling!r}, hidden_dim={h}))"
        if isinstance(value, dict):
            return failed(f"expected {what} to be an int, found {value['type']}")
        measured[coupling, h] = value
    for (coupling, budget, layers, bins), h in zip(cases, sizes, strict=True):
        call = f"{MATCH}({coupling!r}, {budget}, num_layers={layers}, num_bins={bins})"
        near = {g: measured[coupling, g] for g in (h - 1, h, h + 1) if (coupling, g) in measured}
        if any(near[g] >= near[g + 1] for g in near if g + 1 in near):
            shown = ", ".join(f"hidden_dim {g}: {n}" for g, n in near.items())
            return failed(
                f"expected {COUNT} of a CouplingFlow to grow with hidden_dim, found {shown} "
                f"(fix {COUNT} first)"
            )
        for g in (h - 1, h + 1):
            if g in near and abs(near[g] - budget) < abs(near[h] - budget):
                return failed(
                    f"expected {call} to give the hidden size whose flow's parameter count is "
                    f"closest to {budget}, found {h} ({near[h]} parameters by your {COUNT}), "
                    f"while hidden_dim={g} gives {near[g]}, closer"
                )
    return passed(f"the closest hidden size by your {COUNT}, for {len(cases)} budgets")


def _metric_rows(student: Student, cases: list[dict]) -> list[dict]:
    """The answer's dict for each case, its three values checked to be numbers."""
    rows = student.call(probe_metrics, cases)
    for row, case in zip(rows, cases, strict=True):
        where = f"for {len(case['x'])} samples of {case['target']}"
        if "type" in row:
            raise _Failure(f"expected {METRICS} to return a dict, found {row['type']}")
        if row["mutated"]:
            raise _Failure(
                f"expected {METRICS} to leave its input x unchanged {where}, found it changed"
            )
        for key in METRIC_KEYS:
            if row.get(key) is None or not math.isfinite(row[key]):
                raise _Failure(
                    f"expected a finite number under the key {key!r} {where}, found "
                    + ("none" if row.get(key) is None else str(row[key]))
                )
    return rows


def _same(a: float, b: float, tol: float = 1e-7) -> bool:
    return abs(a - b) <= tol * (1 + abs(a) + abs(b))


@EXERCISE.check(points=1, answers=[METRICS])
def held_out_nll(student: Student, rng: np.random.Generator) -> Outcome:
    """held_out_metrics' NLL and its error behave as they must when log q, p or the samples move."""
    base = _metric_case(
        rng, "eight_gaussians", {"radius": float(rng.uniform(1, 3))}, 300, "float64"
    )
    shift = float(rng.uniform(0.5, 3))
    order = rng.permutation(len(base["x"])).tolist()
    cases = [
        base,
        _variant(base, q_shift=shift),
        _variant(base, p_shift=shift),
        _variant(base, x=[base["x"][i] for i in order]),
        _variant(base, x=base["x"] + base["x"]),
    ]
    try:
        rows = _metric_rows(student, cases)
    except _Failure as failure:
        return failed(str(failure))
    r, shifted, target_shifted, permuted, doubled = rows
    if not _same(shifted["nll"], r["nll"] - shift):
        return failed(
            f"expected the NLL to go down by {shift:.4f} when log q(x) goes up by {shift:.4f} "
            f"(the model's log_prob plus a constant), found {r['nll']:.6f} -> "
            f"{shifted['nll']:.6f} (the NLL is minus the mean log-likelihood)"
        )
    if not _same(target_shifted["nll"], r["nll"]):
        return failed(
            f"expected the NLL not to depend on the target's log-density, found {r['nll']:.6f} "
            f"and {target_shifted['nll']:.6f} when log p(x) goes up by {shift:.4f}"
        )
    if not (_same(permuted["nll"], r["nll"]) and _same(permuted["nll_se"], r["nll_se"])):
        return failed("expected the NLL and its error not to depend on the order of the samples")
    if not _same(doubled["nll"], r["nll"]):
        return failed(
            f"expected the NLL of the samples taken twice to be that of the samples, found "
            f"{doubled['nll']:.6f} instead of {r['nll']:.6f} (a mean, not a sum)"
        )
    if not (r["nll_se"] > 0 and _same(shifted["nll_se"], r["nll_se"])):
        return failed(
            f"expected a positive standard error that does not change when log q(x) goes up by "
            f"a constant, found {r['nll_se']:.6g} and {shifted['nll_se']:.6g}"
        )
    ratio = r["nll_se"] / doubled["nll_se"] if doubled["nll_se"] > 0 else math.inf
    if not abs(ratio / math.sqrt(2) - 1) < 0.01:
        return failed(
            f"expected the standard error to shrink by about sqrt(2) = 1.414 when each sample is "
            f"taken twice (it falls as 1 / sqrt(n)), found a ratio of {ratio:.4g}"
        )
    return passed("the NLL and its error behave as they must")


@EXERCISE.check(points=1, answers=[METRICS])
def held_out_kl(student: Student, rng: np.random.Generator) -> Outcome:
    """held_out_metrics' KL(p || q) is 0 for q = p and moves with log p - log q as it must."""
    base = _metric_case(rng, "rings", {"std": float(rng.uniform(0.1, 0.3))}, 300, "float64")
    shift = float(rng.uniform(0.5, 3))
    order = rng.permutation(len(base["x"])).tolist()
    cases = [
        base,
        _variant(base, q_shift=shift),
        _variant(base, p_shift=shift),
        _variant(base, x=[base["x"][i] for i in order]),
        _variant(base, model="target"),
    ]
    try:
        rows = _metric_rows(student, cases)
    except _Failure as failure:
        return failed(str(failure))
    r, q_shifted, p_shifted, permuted, itself = rows
    if not abs(itself["kl"]) <= 1e-9:
        return failed(
            f"expected the KL divergence of the target to itself (model = target) to be 0, "
            f"found {itself['kl']:.6g} (KL(p || q) compares log p with log q)"
        )
    if not _same(q_shifted["kl"], r["kl"] - shift):
        return failed(
            f"expected KL(p || q) to go down by {shift:.4f} when log q(x) goes up by "
            f"{shift:.4f}, found {r['kl']:.6f} -> {q_shifted['kl']:.6f} (check its sign)"
        )
    if not _same(p_shifted["kl"], r["kl"] + shift):
        return failed(
            f"expected KL(p || q) to go up by {shift:.4f} when log p(x) goes up by {shift:.4f}, "
            f"found {r['kl']:.6f} -> {p_shifted['kl']:.6f} (does it use the target's log_prob?)"
        )
    if not _same(permuted["kl"], r["kl"]):
        return failed("expected the KL estimate not to depend on the order of the samples")
    return passed("the KL is 0 for the target itself and moves with log p - log q")


def _grid(rng: np.random.Generator, low: int, high: int) -> float:
    """A number on a grid of 1/1024, so that shifts and scalings by 4 are exact."""
    return int(rng.integers(low, high)) / 1024


def _results(nll_a: float, se_a: float, nll_s: float, se_s: float, extra: bool) -> dict:
    rows = {"affine": {"nll": nll_a, "nll_se": se_a}, "spline": {"nll": nll_s, "nll_se": se_s}}
    if extra:
        rows["affine"].update(kl=nll_a - 3, params=1208)
        rows["spline"].update(kl=nll_s - 3, params=1180)
    return rows


@EXERCISE.check(points=0.5, answers=[PICK])
def winner_rule_properties(student: Student, rng: np.random.Generator) -> Outcome:
    """pick_winner is symmetric, ignores common shifts and units, and calls equal NLLs a tie."""
    swap = {"affine": "spline", "spline": "affine", "tie": "tie"}
    groups = []
    for _ in range(4):
        a, se_a, se_s = _grid(rng, -1024, 4096), _grid(rng, 5, 40), _grid(rng, 5, 40)
        s = a + _grid(rng, -200, 200)
        c = _grid(rng, -2048, 2048)
        groups.append(
            {
                "as given": _results(a, se_a, s, se_s, False),
                "with kl and params": _results(a, se_a, s, se_s, True),
                "shifted by a constant": _results(a + c, se_a, s + c, se_s, False),
                "in other units (all x 4)": _results(4 * a, 4 * se_a, 4 * s, 4 * se_s, False),
                "swapped": _results(s, se_s, a, se_a, False),
            }
        )
    a, se_a, se_s = _grid(rng, -1024, 4096), _grid(rng, 5, 40), _grid(rng, 5, 40)
    far = 100 * (se_a + se_s)
    fixed = {
        "equal NLLs": (_results(a, se_a, a, se_s, True), "tie"),
        "affine far lower": (_results(a, se_a, a + far, se_s, True), "affine"),
        "spline far lower": (_results(a + far, se_a, a, se_s, True), "spline"),
    }
    cases = [case for group in groups for case in group.values()]
    cases += [case for case, _ in fixed.values()]
    got = student.call(probe_pick, cases)

    def shown(results: dict) -> str:
        a, s = results["affine"], results["spline"]
        return (
            f"affine {a['nll']:.4f} (se {a['nll_se']:.4f}), spline {s['nll']:.4f} "
            f"(se {s['nll_se']:.4f})"
        )

    for value, case in zip(got, cases, strict=True):
        if value not in WINNERS:
            found = value["type"] if isinstance(value, dict) else repr(value)
            return failed(
                f"expected {PICK} to return 'affine', 'spline' or 'tie', found {found} for "
                f"held-out NLLs {shown(case)}"
            )
    answers = iter(got)
    for group in groups:
        picked = {name: next(answers) for name in group}
        first = picked["as given"]
        for name in ("with kl and params", "shifted by a constant", "in other units (all x 4)"):
            if picked[name] != first:
                return failed(
                    f"expected the same winner for {shown(group['as given'])} and the same "
                    f"numbers {name}, found {first!r} and {picked[name]!r}"
                )
        if picked["swapped"] != swap[first]:
            return failed(
                f"expected swapping the affine and the spline numbers to swap the winner, found "
                f"{first!r} for {shown(group['as given'])} and {picked['swapped']!r} when swapped"
            )
    for name, (case, want) in fixed.items():
        value = next(answers)
        if value != want:
            return failed(f"expected {want!r} for {name}, {shown(case)}, found {value!r}")
    return passed("symmetric, unit-free, a tie for equal NLLs and the lower NLL far apart")


def _no_flows(kind: str) -> Outcome:
    return failed(f"expected flows[{kind!r}] (a trained flow) and results[{kind!r}] (a dict)")


@EXERCISE.check(points=0.5, answers=[EXPERIMENT])
def budgets_by_your_count(student: Student, rng: np.random.Generator) -> Outcome:
    """The trained flows have the same budget by your count_parameters, reported in results."""
    data = student.call(probe_budgets)
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
        if type(info["count"]) is not int:
            return failed(f"expected {COUNT}(flows[{kind!r}]) to be an int, found {info['count']}")
        if info["params"] != info["count"]:
            return failed(
                f"expected results[{kind!r}]['params'] to be {COUNT}(flows[{kind!r}]) = "
                f"{info['count']}, found {info['params']}"
            )
    counts = {kind: data[kind]["count"] for kind in KINDS}
    if any(abs(n - BUDGET) > BUDGET_TOLERANCE * BUDGET for n in counts.values()):
        return failed(
            f"expected each flow to have {BUDGET} trainable parameters within "
            f"{BUDGET_TOLERANCE:.0%} by your {COUNT}, found affine {counts['affine']} and "
            f"spline {counts['spline']}: the comparison is not at the same budget"
        )
    return passed(f"both flows within {BUDGET_TOLERANCE:.0%} of {BUDGET} parameters by your count")


@EXERCISE.check(points=0.5, answers=[EXPERIMENT])
def results_match_your_metrics(student: Student, rng: np.random.Generator) -> Outcome:
    """results is what your held_out_metrics says of your flows on the held-out x_test."""
    data = student.call(probe_remeasure, test_set().tolist())
    if "type" in data:
        return failed(
            f"expected flows and results to be dicts keyed by coupling, found {data['type']}"
        )
    for kind in KINDS:
        row = data.get(kind)
        if row is None:
            return _no_flows(kind)
        if row["again"] is None:
            return failed(f"expected {METRICS}(flows[{kind!r}], TARGET, x_test) to return a dict")
        for key in METRIC_KEYS:
            got, again = row["results"][key], row["again"][key]
            if got is None:
                return failed(f"expected a number under results[{kind!r}][{key!r}], found none")
            if again is None:
                return failed(
                    f"expected a number under {key!r} in {METRICS}(flows[{kind!r}], TARGET, "
                    "x_test), found none"
                )
            if not _close(got, again, rtol=1e-5, atol=1e-5):
                return failed(
                    f"expected results[{kind!r}][{key!r}] to be what {METRICS}(flows[{kind!r}], "
                    f"TARGET, x_test) gives, {again:.6g}, found {got:.6g} (measured on other "
                    "samples, such as the training set?)"
                )
    return passed(f"results is what your {METRICS} measures on x_test")


@EXERCISE.check(points=0.5, answers=[EXPERIMENT])
def winner_follows_your_rule(student: Student, rng: np.random.Generator) -> Outcome:
    """winner is what your pick_winner says of your results."""
    data = student.call(probe_winner)
    if data["winner"] not in WINNERS:
        return failed(f"expected winner to be 'affine', 'spline' or 'tie', found {data['winner']}")
    if data["winner"] != data["picked"]:
        return failed(
            f"expected winner to be {PICK}(results) = {data['picked']!r}, found "
            f"{data['winner']!r} (a conclusion decided before the numbers?)"
        )
    return passed(f"winner is {PICK}(results)")
