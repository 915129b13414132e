"""Grade exercise notebooks: ``python -m cflib.grade PATH... [options]``.

Each notebook (or every ``.ipynb`` below a folder) runs on a copy, in its own kernel of the current
Python, within ``--timeout`` seconds; its checks run here, on inputs drawn from a seed chosen now
(``--seed`` to repeat a run). Prints a table and the class summary; writes ``--json``, ``--csv`` and
``--markdown`` reports (see :mod:`cflib.grading.report`).

Exit status: 0 when grading ran (whatever the scores), 1 when ``--min-score`` is given and some
notebook's score, as a fraction of its maximum, is below it, 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace

from cflib.grading import report, sandbox
from cflib.grading.checks import load_exercise
from cflib.grading.runner import GradingOptions, NotebookResult, find_notebooks, grade_notebooks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grade",
        description="Grade exercise notebooks, each on a copy in its own kernel.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders of them")
    parser.add_argument("--json", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--csv", metavar="FILE", help="write one row per notebook here")
    parser.add_argument("--markdown", metavar="DIR", help="write per-notebook feedback here")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="for all of a notebook's cells (default: the exercise's own limit, a few times its "
        "solution's measured time)",
    )
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per call of a student's function by a check (30)",
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks at once (1)")
    parser.add_argument(
        "--min-score", type=float, metavar="FRACTION", help="exit 1 if a notebook scores below"
    )
    parser.add_argument("--seed", type=int, help="seed of the checks' inputs (default: random)")
    parser.add_argument(
        "--sandbox",
        choices=sandbox.KINDS,
        default="auto",
        help="where kernels run: bwrap (bubblewrap: no network, only the notebook's own copy "
        "visible, limits), none (no protection: feedback only), auto (bwrap when it works here)",
    )
    parser.add_argument(
        "--memory",
        type=_size,
        default=sandbox.Limits().memory,
        metavar="SIZE",
        help="memory limit of each notebook, e.g. 4G or 512M (4G)",
    )
    parser.add_argument("--quiet", action="store_true", help="print no progress lines")
    return parser


def _size(text: str) -> int:
    """``4G``, ``512M``, ``1.5GiB`` or a number of bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (raw[:-1], raw[-1]) if raw[-1:] in units and raw[-1:] else (raw, "")
    try:
        value = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"expected a size such as 4G or 512M, got {text!r}"
        ) from None
    if value < 256 << 20:
        raise argparse.ArgumentTypeError(f"expected at least 256M, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.timeout is not None and args.timeout <= 0) or args.probe_timeout <= 0:
        parser.error("--timeout and --probe-timeout: expected positive numbers of seconds")
    if args.jobs < 1:
        parser.error(f"--jobs: expected a positive integer, got {args.jobs}")
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min-score: expected a fraction in [0, 1], got {args.min_score}")
    try:
        notebooks = find_notebooks(args.paths)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    if not notebooks:
        parser.error("no .ipynb notebooks found in " + ", ".join(args.paths))

    try:
        with warnings.catch_warnings():  # said below, once, on stderr
            warnings.simplefilter("ignore")
            kind = sandbox.resolve(args.sandbox)
    except sandbox.SandboxError as error:
        parser.error(str(error))
    if kind == "none":
        reason = "--sandbox none" if args.sandbox == "none" else sandbox.bwrap_problem()
        print(f"\n*** {sandbox.unprotected(reason or 'no sandbox')} ***\n", file=sys.stderr)
    options = GradingOptions(
        timeout=args.timeout,
        probe_timeout=args.probe_timeout,
        seed=args.seed,
        threads=max(1, (os.cpu_count() or 1) // args.jobs),
        sandbox=kind,
        limits=replace(sandbox.Limits(), memory=args.memory),
    )

    def progress(result: NotebookResult) -> None:
        if not args.quiet:
            print(
                f"graded {result.notebook}: {result.score:g}/{result.max_score:g} "
                f"({result.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    results = grade_notebooks(notebooks, options, jobs=args.jobs, progress=progress)
    print(report.table(results))
    print()
    print(report.summary_text(results))
    for number in sorted({r.exercise for r in results if r.exercise}):
        spec = load_exercise(number)
        if not spec.has_hidden and spec.hidden_checks:
            print(
                f"\nExercise {number}: {spec.hidden_checks} hidden checks "
                f"({spec.hidden_points:g} points) are not in this copy of the course: they run "
                "when your instructor grades (the scores above count the public checks only)."
            )
    if results:
        print(f"\n(seed {results[0].seed})")
    if args.json:
        report.write_json(results, args.json)
    if args.csv:
        report.write_csv(results, args.csv)
    if args.markdown:
        report.write_markdown(results, args.markdown)
    if args.min_score is not None and any(r.fraction < args.min_score for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
