"""Speed and sturdiness of cflib's coupling layers next to nflows, zuko, normflows and Pyro.

Usage::

    python -m benchmarks.run [--device cpu|cuda] [--threads 2] [--quick] [--compile] [--output PATH]

Every library runs in this one process on identical configurations (the same conditioner weights,
inputs and seeds; differences that cannot be avoided are listed under "Configuration notes").
Timings are interleaved: each repetition calls every case once, in an order that rotates, so that
a slow spell of a shared machine hits all libraries alike; medians and interquartile ranges are
reported, and every peer's median as a ratio to cflib's (above 1: cflib is faster).

Sections: one rational-quadratic coupling layer (forward and inverse with log-det, and the
conditioner alone, the floor no coupling can beat); each library's functional spline kernel on the
same parameters; cflib's ``log_prob`` (8 spline couplings, D = 16) eager and compiled with
``torch.compile(fullgraph=True)``; a training step (forward, NLL, backward, Adam)
of 8 spline and of 8 affine couplings with reversals between them; and the stress matrix
(conditioner outputs scaled up to 1000x, points at and next to the bound plus a sweep over every
bin, float32 and float64): the output-space round trip |f(f^-1(y)) - y| / (1 + |y|), NaNs and
exceptions.

``--compile`` times the layer and kernel sections with every library's functions compiled by
``torch.compile`` (default backend; compilation happens in the warm-up and is not timed), and writes
``latest_compiled.{json,md}``; the training section stays eager.

A full run writes ``benchmarks/results/latest.json`` and ``latest.md``; ``--quick`` (fewer points
and repetitions, a smoke test) writes nothing unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks import peers

RESULTS = Path(__file__).resolve().parent / "results"
K, BOUND, HIDDEN = 8, 3.0, 64
LAYER_DIMS = (2, 16)
TRAIN_DIM, TRAIN_LAYERS = 2, 8
STRESS_SCALES = (1, 10, 100, 1000)
STRESS_BOUNDS = (3.0, 50.0)
STRESS_DTYPES = {"float32": (torch.float32, 1e-3), "float64": (torch.float64, 1e-10)}

# The targets of the issues, each checked on the measured medians (ratios to cflib above 1: cflib
# is faster; ratios to the conditioner: what the spline adds to the network that feeds it).
TARGETS = {
    "spline kernel D=16 forward: fastest peer / cflib": (">=", 2.0),
    "spline kernel D=16 inverse: fastest peer / cflib": (">=", 2.0),
    "spline layer D=16 forward: fastest peer / cflib": (">=", 2.0),
    "spline layer D=16 inverse: fastest peer / cflib": (">=", 2.0),
    "spline layer D=16 forward / conditioner alone": ("<=", 1.5),
    "spline layer D=16 inverse / conditioner alone": ("<=", 1.5),
    "spline layer D=2 forward / conditioner alone": ("<=", 1.3),
    "spline layer D=2 inverse / conditioner alone": ("<=", 1.3),
    "spline layer D=2 inverse / forward": ("<=", 1.2),
    "spline layer D=16 inverse / forward": ("<=", 1.2),
    "8-spline training step: fastest peer / cflib": (">=", 2.0),
    "8-affine training step: fastest peer / cflib": (">=", 1.3),
    "log_prob D=16, 8 spline couplings: eager / compiled (cflib)": (">=", 1.5),
}


# ------------------------------------------------------------------ machine and timing


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device, threads: int, quick: bool, compiled: bool = False) -> dict:
    """Everything that produced the numbers: where, when, with what."""
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": threads,
        "quick": quick,
        "versions": peers.versions(),
        "mode": (
            "layers compiled (torch.compile, default backend), training eager"
            if compiled
            else "eager (no torch.compile)"
        ),
    }
    if hasattr(os, "getloadavg"):
        meta["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    return meta


def synchronizer(device: torch.device) -> Callable[[], None]:
    """Wait for queued device work: CUDA kernels run asynchronously, so a timer must synchronise
    before reading the clock (start and stop); on the CPU there is nothing to wait for."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(
    cases: dict[str, Callable[[], object]], reps: int, warmup: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Seconds per call of every case; repetition ``r`` calls the cases in an order rotated by
    ``r``, so no case always follows the same neighbour."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            sync()
            start = time.perf_counter()
            cases[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    q1, med, q3 = np.percentile(ms, [25, 50, 75])
    return {
        "median_ms": float(med),
        "q1_ms": float(q1),
        "q3_ms": float(q3),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "reps": len(ms),
    }


# ------------------------------------------------------------------ sections


def bench_layers(
    libs: list[str], device: torch.device, n: int, reps: int, warmup: int, compiled: bool = False
) -> list[dict]:
    """One spline coupling: forward and inverse with log-det, and the conditioner alone (each
    compiled with ``torch.compile`` if ``compiled``)."""
    rows = []
    for dim in LAYER_DIMS:
        rows += _bench_layer(dim, libs, device, n, reps, warmup, compiled)
        print_layer_table(dim, n, rows)
    return rows


def _bench_layer(
    dim: int,
    libs: list[str],
    device: torch.device,
    n: int,
    reps: int,
    warmup: int,
    compiled: bool = False,
) -> list[dict]:
    n_a, n_b = dim // 2, dim - dim // 2
    net = peers.mlp(n_a, n_b * (3 * K - 1), seed=dim)
    layers = {lib: peers.spline_layer(lib, dim, net, K, BOUND) for lib in libs}
    for layer in layers.values():
        layer.module.to(device)
    floor = net.to(device)
    g = torch.Generator().manual_seed(dim)
    x = (1.5 * torch.randn(n, dim, generator=g)).to(device)
    wrap = torch.compile if compiled else (lambda f: f)
    cond = wrap(floor)
    cases: dict[str, Callable[[], object]] = {"conditioner": lambda: cond(x[:, :n_a])}
    for lib, layer in layers.items():
        forward, inverse = wrap(layer.forward), wrap(layer.inverse)
        cases[f"{lib}/forward"] = lambda f=forward: f(x)
        cases[f"{lib}/inverse"] = lambda f=inverse: f(x)
    with torch.no_grad():
        times = interleaved(cases, reps, warmup, synchronizer(device))
    base = {op: stats(times[f"cflib/{op}"])["median_ms"] for op in ("forward", "inverse")}
    rows = []
    for name, t in times.items():
        lib, _, op = name.partition("/")
        row = {"dim": dim, "lib": lib if op else "conditioner", "op": op or "alone", **stats(t)}
        row["ratio_to_cflib"] = row["median_ms"] / base[op] if op else None
        rows.append(row)
    return rows


def bench_kernels(
    libs: list[str], device: torch.device, n: int, reps: int, warmup: int, compiled: bool = False
) -> list[dict]:
    """Each library's functional spline on the parameters the layer's conditioner gives the same
    ``n`` points: ``n * (D - D // 2)`` elements, forward and inverse with log-det."""
    rows = []
    for dim in LAYER_DIMS:
        n_a, n_b = dim // 2, dim - dim // 2
        net = peers.mlp(n_a, n_b * (3 * K - 1), seed=dim).to(device)
        g = torch.Generator().manual_seed(dim)
        x = (1.5 * torch.randn(n, dim, generator=g)).to(device)
        with torch.no_grad():
            raw = net(x[:, :n_a]).reshape(n, n_b, 3 * K - 1)
        xb = x[:, n_a:].contiguous()
        wrap = torch.compile if compiled else (lambda f: f)
        cases: dict[str, Callable[[], object]] = {}
        for lib in libs:
            kernel = wrap(peers.spline_kernel(lib, K, BOUND))
            for op in ("forward", "inverse"):
                cases[f"{lib}/{op}"] = functools.partial(kernel, xb, raw, op == "inverse")
        with torch.no_grad():
            times = interleaved(cases, reps, warmup, synchronizer(device))
        base = {op: stats(times[f"cflib/{op}"])["median_ms"] for op in ("forward", "inverse")}
        for name, t in times.items():
            lib, _, op = name.partition("/")
            row = {"dim": dim, "lib": lib, "op": op, **stats(t)}
            row["ratio_to_cflib"] = row["median_ms"] / base[op]
            rows.append(row)
    print_kernel_table(n, rows, libs)
    return rows


def bench_compiled_log_prob(device: torch.device, n: int, reps: int, warmup: int) -> list[dict]:
    """cflib's ``log_prob`` of a flow of 8 spline couplings in 16 dimensions, eager and compiled
    (``torch.compile(..., fullgraph=True)``: one graph, no break; compiled in the warm-up)."""
    import cflib

    torch.manual_seed(0)
    flow = cflib.CouplingFlow(16, num_layers=TRAIN_LAYERS, coupling="spline", num_bins=K,
                              bound=BOUND).to(device)  # fmt: skip
    x = flow.sample((n,)).detach()
    compiled = torch.compile(flow.log_prob, fullgraph=True)
    cases = {"eager": lambda: flow.log_prob(x), "compiled": lambda: compiled(x)}
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), flow.log_prob(x), rtol=1e-4, atol=1e-4)
        times = interleaved(cases, reps, warmup, synchronizer(device))
    rows = [{"mode": mode, **stats(t)} for mode, t in times.items()]
    for r in rows:
        print(f"  log_prob D=16, 8 spline couplings, N = {n:,}, {r['mode']:<8} "
              f"{r['median_ms']:8.1f} ms")  # fmt: skip
    return rows


def bench_training(
    libs: list[str], device: torch.device, n: int, reps: int, warmup: int
) -> tuple[list[dict], dict]:
    """A training step: forward, NLL, backward and an Adam update, per library."""
    sync = synchronizer(device)
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
    x = (centres[torch.arange(n) % 2] + 0.5 * torch.randn(n, TRAIN_DIM, generator=g)).to(device)
    rows, counts = [], {}
    for kind, p in (("spline", 3 * K - 1), ("affine", 2)):
        n_a, n_b = TRAIN_DIM // 2, TRAIN_DIM - TRAIN_DIM // 2
        nets = [peers.mlp(n_a, n_b * p, seed=100 * len(kind) + i) for i in range(TRAIN_LAYERS)]
        steps, counts[kind] = {}, {}
        for lib in libs:
            density = peers.flow(lib, kind, TRAIN_DIM, nets, K, BOUND, device)
            counts[kind][lib] = peers.num_parameters(density.module)
            steps[lib] = _training_step(density, x)
            loss = steps[lib]()  # one step here: it must run and give a finite loss
            if not math.isfinite(loss):
                raise RuntimeError(f"{lib} {kind}: non-finite loss {loss}")
        times = interleaved(steps, reps, warmup, sync)
        base = stats(times["cflib"])["median_ms"]
        for lib, t in times.items():
            row = {"kind": kind, "lib": lib, "parameters": counts[kind][lib], **stats(t)}
            row["ratio_to_cflib"] = row["median_ms"] / base
            rows.append(row)
    print_training_table(n, rows)
    return rows, counts


def _training_step(density: peers.Density, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """One step of maximum likelihood with Adam on the batch ``x``; returns the loss."""
    opt = torch.optim.Adam(density.parameters(), lr=1e-3)

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        # A new tensor object each step, as a fresh batch would be (pyro caches by identity).
        loss = -density.log_prob(x.view_as(x)).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def stress_points(bound: float, dtype: torch.dtype, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformed-coordinate values and which of them are the matrix's own points.

    The matrix's points lie at and near the bound: +-B exactly, one ulp inside and outside,
    B (1 - 1e-6), B (1 - 1e-3) and B (1 - 1e-2). A sweep adds ``n`` points uniform on
    [-1.2B, 1.2B] and 0: every bin and both tails. Returns ``(y, edge)``, ``edge`` True for the
    matrix's points.
    """
    g = torch.Generator().manual_seed(7)
    uniform = (torch.rand(n, generator=g, dtype=torch.float64) * 2.4 - 1.2) * bound
    b = torch.tensor(bound, dtype=dtype)
    inf = torch.tensor(math.inf, dtype=dtype)
    near = [b, torch.nextafter(b, -inf), torch.nextafter(b, inf)]
    near += [b * (1 - 1e-6), b * (1 - 1e-3), b * (1 - 1e-2)]
    near = torch.stack(near).to(dtype)
    edge = torch.cat([near, -near])
    sweep = torch.cat([uniform.to(dtype), torch.zeros(1, dtype=dtype)])
    is_edge = torch.cat(
        [torch.ones(len(edge), dtype=torch.bool), torch.zeros(len(sweep), dtype=torch.bool)]
    )
    return torch.cat([edge, sweep]), is_edge


def bench_stress(libs: list[str], device: torch.device, n: int) -> list[dict]:
    """Inverse then forward on every cell of the matrix; errors, NaNs and exceptions per cell."""
    rows = []
    for dtype_name, (dtype, tol) in STRESS_DTYPES.items():
        for bound in STRESS_BOUNDS:
            yb, edge = stress_points(bound, dtype, n)
            g = torch.Generator().manual_seed(8)
            cond = 2.0 * torch.randn(len(yb), 1, generator=g, dtype=torch.float64)
            y = torch.cat([cond.to(dtype), yb[:, None]], dim=1).to(device)
            for scale in STRESS_SCALES:
                net = peers.mlp(1, 3 * K - 1, seed=scale, scale=scale)
                for lib in libs:
                    layer = peers.spline_layer(lib, 2, net, K, bound)
                    layer.module.to(device=device, dtype=dtype)
                    row = {"lib": lib, "dtype": dtype_name, "bound": bound, "scale": scale}
                    rows.append({**row, **_round_trip(layer, y, edge.to(device), tol)})
    print_stress_table(rows)
    return rows


def _round_trip(layer: peers.Layer, y: torch.Tensor, edge: torch.Tensor, tol: float) -> dict:
    """f(f^-1(y)) against y for the points ``y`` (batch, 2), coordinate 1 transformed; ``edge``
    (batch,) marks the matrix's points at and near the bound, the rest are the sweep.

    A cell is ``ok`` without exceptions or NaNs (at any point) and with every error of the
    matrix's points within ``tol``. For the sweep, besides the error, the part of it that no
    implementation in this dtype can avoid: the inverse must round x to a representable number,
    and the forward map multiplies that rounding by its slope, so for a point whose neighbouring
    floats map ``slope * ulp(x)`` apart, some outputs lie half that far from every f(x).
    ``ulp_term`` is ``slope * ulp(x) / (1 + |y|)``, from the library's own log-det; the sweep is
    ``ok_within_ulp`` when every error is below ``tol + ulp_term``.
    """
    try:
        with torch.no_grad():
            x, ladj_inv = layer.inverse(y)
            y_back, ladj = layer.forward(x)
    except Exception as e:  # a peer failing is a result, not a crash of the benchmark
        message = f"{type(e).__name__}: {str(e)[:120]}"
        return {
            "exception": message,
            "nan": None,
            "max_rel_err": None,
            "max_rel_err_edge": None,
            "max_rel_err_sweep": None,
            "ok": False,
            "ok_sweep": False,
            "max_ulp_term": None,
            "ok_within_ulp": False,
        }
    finite = torch.stack(
        [x.isfinite().all(1), y_back.isfinite().all(1), ladj.isfinite(), ladj_inv.isfinite()]
    ).all(0)
    scale = 1 + y.abs()
    err = ((y_back - y).abs() / scale).amax(1)
    xb = x[:, 1].abs()
    ulp = torch.nextafter(xb, torch.full_like(xb, math.inf)) - xb
    ulp_term = ladj.exp() * ulp / scale[:, 1]
    nan = int((~finite).sum())

    def worst(values: torch.Tensor, where: torch.Tensor) -> float:
        v = values[where & finite]
        return float(v.max()) if v.numel() else math.nan  # nan: no finite point to measure

    sweep = ~edge
    return {
        "exception": None,
        "nan": nan,
        "max_rel_err": worst(err, torch.ones_like(edge)),
        "max_rel_err_edge": worst(err, edge),
        "max_rel_err_sweep": worst(err, sweep),
        "ok": nan == 0 and worst(err, edge) <= tol,
        "ok_sweep": nan == 0 and worst(err, sweep) <= tol,
        "max_ulp_term": worst(ulp_term, sweep),
        "ok_within_ulp": nan == 0 and bool((err <= tol + ulp_term)[sweep & finite].all()),
    }


# ------------------------------------------------------------------ targets, printing, saving


def check_targets(
    layer_rows: list[dict],
    train_rows: list[dict],
    kernel_rows: list[dict] | None = None,
    compiled_rows: list[dict] | None = None,
) -> list[dict]:
    def med(rows, **where):
        return next(r["median_ms"] for r in rows if all(r[k] == v for k, v in where.items()))

    def fastest_peer(rows, **where):
        found = [
            r for r in rows if r["lib"] != "cflib" and all(r[k] == v for k, v in where.items())
        ]
        return min(found, key=lambda r: r["median_ms"]) if found else None

    values = {}
    for what, rows in (("kernel", kernel_rows or []), ("layer", layer_rows)):
        for op in ("forward", "inverse"):
            peer = fastest_peer(rows, dim=16, op=op)
            if peer:
                ratio = peer["median_ms"] / med(rows, dim=16, op=op, lib="cflib")
                values[f"spline {what} D=16 {op}: fastest peer / cflib"] = (ratio, peer["lib"])
    for dim in LAYER_DIMS:
        for op in ("forward", "inverse"):
            values[f"spline layer D={dim} {op} / conditioner alone"] = (
                med(layer_rows, dim=dim, op=op, lib="cflib") / med(layer_rows, dim=dim, op="alone"),
                None,
            )
    if compiled_rows:
        eager = med(compiled_rows, mode="eager") / med(compiled_rows, mode="compiled")
        values["log_prob D=16, 8 spline couplings: eager / compiled (cflib)"] = (eager, None)
    for dim in LAYER_DIMS:
        values[f"spline layer D={dim} inverse / forward"] = (
            med(layer_rows, dim=dim, op="inverse", lib="cflib")
            / med(layer_rows, dim=dim, op="forward", lib="cflib"),
            None,
        )
    for kind in ("spline", "affine"):
        peer = fastest_peer(train_rows, kind=kind)
        if peer:
            ratio = peer["median_ms"] / med(train_rows, kind=kind, lib="cflib")
            values[f"8-{kind} training step: fastest peer / cflib"] = (ratio, peer["lib"])
    out = []
    for name, (sign, target) in TARGETS.items():
        if name not in values:
            continue
        value, peer = values[name]
        met = value >= target if sign == ">=" else value <= target
        out.append(
            {
                "target": name,
                "value": value,
                "goal": f"{sign} {target}",
                "met": met,
                "fastest_peer": peer,
            }
        )
    return out


def stress_targets(summary: list[dict]) -> list[dict]:
    """cflib's sturdiness: no NaN and no exception anywhere, the round-trip tolerance at and near
    the bound, and in the sweep the tolerance plus the float floor (see :func:`_round_trip`)."""
    mine = next(s for s in summary if s["lib"] == "cflib")
    rows = [
        ("stress matrix, cflib: NaNs + exceptions (all points)", mine["nan"] + mine["exceptions"]),
        ("stress matrix, cflib: cells over the round-trip tolerance", mine["cells_failed"]),
        (
            "stress sweep, cflib: cells over tolerance + slope x ulp(x)",
            mine["sweep_failed_beyond_ulp"],
        ),
    ]
    return [
        {"target": name, "value": v, "goal": "== 0", "met": v == 0, "fastest_peer": None}
        for name, v in rows
    ]


def stress_summary(rows: list[dict]) -> list[dict]:
    out = []
    for lib in dict.fromkeys(r["lib"] for r in rows):
        mine = [r for r in rows if r["lib"] == lib]
        worst = {}
        for dtype in STRESS_DTYPES:
            errs = [r["max_rel_err"] for r in mine if r["dtype"] == dtype and r["max_rel_err"]]
            worst[dtype] = max(errs) if errs else None
        out.append(
            {
                "lib": lib,
                "cells": len(mine),
                "cells_failed": sum(not r["ok"] for r in mine),
                "sweep_failed": sum(not r["ok_sweep"] for r in mine),
                "sweep_failed_beyond_ulp": sum(not r["ok_within_ulp"] for r in mine),
                "nan": sum(r["nan"] or 0 for r in mine),
                "exceptions": sum(r["exception"] is not None for r in mine),
                "worst_rel_err_float32": worst["float32"],
                "worst_rel_err_float64": worst["float64"],
            }
        )
    return out


def _fmt_value(v: float | int) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _fmt_time(r: dict) -> str:
    return f"{r['median_ms']:9.2f} [{r['q1_ms']:.1f}-{r['q3_ms']:.1f}]"


def print_layer_table(dim: int, n: int, rows: list[dict]) -> None:
    print(f"\nSpline coupling layer, D={dim}, N={n:,}, K={K}, bound {BOUND:g}: ms, median [IQR]")
    for r in rows:
        if r["dim"] != dim:
            continue
        ratio = f"x{r['ratio_to_cflib']:.2f} of cflib" if r["ratio_to_cflib"] else ""
        print(f"  {r['lib']:<12} {r['op']:<8} {_fmt_time(r)}  {ratio}")


def print_kernel_table(n: int, rows: list[dict], libs: list[str]) -> None:
    for dim in LAYER_DIMS:
        elements = n * (dim - dim // 2)
        print(f"\nspline kernel, D = {dim} ({elements:,} elements): median ms (x peer / cflib)")
        for op in ("forward", "inverse"):
            cells = []
            for lib in libs:
                r = next(r for r in rows if r["dim"] == dim and r["op"] == op and r["lib"] == lib)
                cells.append(f"{lib} {r['median_ms']:.1f}" + (
                    "" if lib == "cflib" else f" (x{r['ratio_to_cflib']:.1f})"))  # fmt: skip
            print(f"  {op:<8} " + "  ".join(cells))


def print_training_table(n: int, rows: list[dict]) -> None:
    print(f"\nTraining step, {TRAIN_LAYERS} couplings, N={n:,}, D={TRAIN_DIM}: ms, median [IQR]")
    for r in rows:
        print(
            f"  {r['kind']:<7} {r['lib']:<10} {r['parameters']:>7} params {_fmt_time(r)}  "
            f"x{r['ratio_to_cflib']:.2f} of cflib"
        )


def print_stress_table(rows: list[dict]) -> None:
    print("\nStress matrix: inverse then forward, max |f(f^-1(y)) - y| / (1 + |y|)")
    print(f"  {'lib':<10} {'dtype':<8} {'bound':>5} {'scale':>5}  result")
    for r in rows:
        if r["exception"]:
            result = f"EXCEPTION {r['exception']}"
        else:
            result = (
                f"near the bound {r['max_rel_err_edge']:.1e}  sweep {r['max_rel_err_sweep']:.1e}"
                f"  NaN {r['nan']}  slope*ulp(x) {r['max_ulp_term']:.1e}"
            )
            if not r["ok"]:
                result += "  FAIL"
            elif not r["ok_sweep"]:
                result += "  sweep over" + ("" if r["ok_within_ulp"] else " (beyond the ulp term)")
        print(f"  {r['lib']:<10} {r['dtype']:<8} {r['bound']:>5g} {r['scale']:>5}  {result}")


def markdown(report: dict) -> str:
    """The report as Markdown tables (for the README and the book)."""
    meta, libs = report["meta"], report["libraries"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['device']}, torch {meta['torch']}, "
        f"{meta['threads']} threads, {meta['mode']}).",
        "",
        f"| spline coupling, N = {meta['layer_points']:,} | " + " | ".join(libs) + " |",
        "|---|" + "---:|" * len(libs),
    ]
    layer = report["layer"]
    for dim in LAYER_DIMS:
        floor = next(r for r in layer if r["dim"] == dim and r["op"] == "alone")
        lines.append(
            f"| D={dim} conditioner alone | {floor['median_ms']:.1f} ms |" + " |" * (len(libs) - 1)
        )
        for op in ("forward", "inverse"):
            cells = []
            for lib in libs:
                r = next(r for r in layer if r["dim"] == dim and r["op"] == op and r["lib"] == lib)
                ratio = "" if lib == "cflib" else f" (x{r['ratio_to_cflib']:.1f})"
                cells.append(f"{r['median_ms']:.1f} ms{ratio}")
            lines.append(f"| D={dim} {op} | " + " | ".join(cells) + " |")
    kernel = report.get("kernel", [])
    if kernel:
        lines += [
            "",
            f"| functional spline kernel, N = {meta['layer_points']:,} points "
            "(N (D - D/2) elements) | " + " | ".join(libs) + " |",
            "|---|" + "---:|" * len(libs),
        ]
        for dim in LAYER_DIMS:
            for op in ("forward", "inverse"):
                cells = []
                for lib in libs:
                    r = next(
                        r for r in kernel if r["dim"] == dim and r["op"] == op and r["lib"] == lib
                    )
                    ratio = "" if lib == "cflib" else f" (x{r['ratio_to_cflib']:.1f})"
                    cells.append(f"{r['median_ms']:.1f} ms{ratio}")
                lines.append(f"| D={dim} {op} | " + " | ".join(cells) + " |")
    compiled = report.get("compiled_log_prob", [])
    if compiled:
        lines += ["", "| cflib log_prob, D = 16, 8 spline couplings | median |", "|---|---:|"]
        lines += [f"| {r['mode']} | {r['median_ms']:.1f} ms |" for r in compiled]
    lines += [
        "",
        "| training step, N = 4,096, D = 2 | " + " | ".join(libs) + " |",
        "|---|" + "---:|" * len(libs),
    ]
    for kind in ("spline", "affine"):
        cells = []
        for lib in libs:
            r = next(r for r in report["training"] if r["kind"] == kind and r["lib"] == lib)
            ratio = "" if lib == "cflib" else f" (x{r['ratio_to_cflib']:.1f})"
            cells.append(f"{r['median_ms']:.1f} ms{ratio}, {r['parameters']:,} p.")
        lines.append(f"| 8 {kind} couplings | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"| stress matrix ({len(report['stress']) // len(libs)} cells) | cells failed | "
        "sweep: cells over tolerance | sweep: over tolerance + slope x ulp(x) | NaN | "
        "exceptions | worst error float32 | worst error float64 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["stress_summary"]:
        e32, e64 = s["worst_rel_err_float32"], s["worst_rel_err_float64"]
        lines.append(
            f"| {s['lib']} | {s['cells_failed']} | {s['sweep_failed']} | "
            f"{s['sweep_failed_beyond_ulp']} | {s['nan']} | {s['exceptions']} | "
            f"{'-' if e32 is None else f'{e32:.1e}'} | {'-' if e64 is None else f'{e64:.1e}'} |"
        )
    lines += ["", "| target | measured | goal | met |", "|---|---:|---:|:---:|"]
    for t in report["targets"]:
        peer = f" ({t['fastest_peer']})" if t["fastest_peer"] else ""
        lines.append(
            f"| {t['target']} | {_fmt_value(t['value'])}{peer} | {t['goal']} | "
            f"{'yes' if t['met'] else 'NO'} |"
        )
    lines += [
        "",
        "Timings: medians of interleaved repetitions; (xR) = peer time / cflib time.",
        "Stress: a cell fails on an exception or a NaN at any point, or a round-trip error "
        "above 1e-3 (float32) or 1e-10 (float64), relative to 1 + |y|, at the matrix's points "
        "(at, one ulp around, and near the bound). The sweep adds points uniform on "
        "[-1.2B, 1.2B]; 'over tolerance + slope x ulp(x)' counts the cells whose sweep error also "
        "exceeds the tolerance plus the slope times one ulp of x, the part no implementation can "
        "avoid once f^-1(y) is rounded to the dtype (in float32 with bound 50, where a slope of "
        "2,000 maps neighbouring floats near |x| = 50 7.6e-3 apart).",
        "",
        "Configuration notes:",
        "",
    ] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="smaller and fewer: a smoke test")
    parser.add_argument("--output", type=Path, help="JSON file (Markdown next to it)")
    parser.add_argument("--libs", nargs="+", default=list(peers.LIBRARIES))
    parser.add_argument(
        "--compile", action="store_true", help="time the layers compiled with torch.compile"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    versions = peers.versions()
    libs = [lib for lib in args.libs if versions.get(lib)]
    missing = sorted(set(args.libs) - set(libs))
    if "cflib" not in libs:
        print("cflib must be importable", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    meta = describe(device, args.threads, args.quick, args.compile)
    print(
        f"{meta['date']} | {meta['machine']} | device {meta['device_name']} | "
        f"torch {meta['torch']} | {args.threads} threads | {meta['mode']}"
    )
    print(
        "libraries: "
        + ", ".join(f"{lib} {versions[lib]}" for lib in libs)
        + (f" (not installed: {', '.join(missing)})" if missing else "")
    )
    n_layer, reps, n_stress = (16_384, 5, 256) if args.quick else (65_536, 15, 4_096)
    train_reps = 5 if args.quick else 100
    start = time.perf_counter()
    layer_rows = bench_layers(
        libs, device, n_layer, reps, warmup=1 if args.quick else 2, compiled=args.compile
    )
    kernel_rows = bench_kernels(
        libs, device, n_layer, reps, warmup=1 if args.quick else 2, compiled=args.compile
    )
    compiled_rows = bench_compiled_log_prob(device, 4_096, reps, warmup=2)
    train_rows, counts = bench_training(libs, device, 4_096, train_reps, warmup=2)
    stress_rows = bench_stress(libs, device, n_stress)
    report = {
        "meta": {**meta, "seconds": round(time.perf_counter() - start, 1), "layer_points": n_layer},
        "libraries": libs,
        "notes": peers.NOTES,
        "layer": layer_rows,
        "kernel": kernel_rows,
        "compiled_log_prob": compiled_rows,
        "training": train_rows,
        "parameter_counts": counts,
        "stress": stress_rows,
        "stress_summary": stress_summary(stress_rows),
    }
    report["targets"] = check_targets(
        layer_rows, train_rows, kernel_rows, compiled_rows
    ) + stress_targets(report["stress_summary"])
    if hasattr(os, "getloadavg"):
        report["meta"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = markdown(report)
    print("\n" + text)
    default = RESULTS / ("latest_compiled.json" if args.compile else "latest.json")
    output = args.output or (None if args.quick else default)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1) + "\n")
        output.with_suffix(".md").write_text(text)
        print(f"wrote {output} and {output.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
