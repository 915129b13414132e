"""Grade exercise notebooks: ``python -m cflib.grade PATH... [options]``, and merge reports:
``python -m cflib.grade merge REPORT.json... [options]``.

Each notebook (or every ``.ipynb`` below a folder) runs on a copy, in its own kernel of the current
Python, within ``--timeout`` seconds; its checks run here, on inputs drawn from a seed chosen now
(``--seed`` to repeat a run: the same seed and grader version give the same automatic results).
With ``--roster R`` each PATH is a folder of submissions, one ``<login>/`` folder per student (as
``python -m cflib.collect`` writes them); students without one are reported missing.

Prints a table and the class summary; writes ``--json``, ``--csv``, ``--markdown`` (one feedback
page per student), ``--gradebook`` (Canvas or Moodle CSV), ``--manual-export`` (written answers to
mark), ``--gradescope`` and ``--classroom50`` results (see :mod:`cflib.grading.report`,
:mod:`.gradebook`, :mod:`.manual`, :mod:`.gradescope`, :mod:`.classroom50`). ``--shard i/n``
grades the i-th of n stable parts of the class (by login, else by notebook path), for CI matrices;
``merge`` joins the parts' JSON reports and writes any of the same outputs.

Exit status: 0 when grading ran (whatever the scores), 1 when ``--min-score`` is given and some
notebook's score, as a fraction of its maximum, is below it, 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from cflib.grading import classroom50, gradebook, gradescope, manual, report, sandbox
from cflib.grading.checks import exercise_numbers, load_exercise
from cflib.grading.roster import Roster, RosterError, read_roster
from cflib.grading.runner import GradingOptions, NotebookResult, find_notebooks, grade_notebooks
from cflib.grading.version import grader_version


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    """The options shared by grading and ``merge``: what to write."""
    parser.add_argument("--roster", metavar="CSV", help="class roster (column login, ...)")
    parser.add_argument("--json", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--csv", metavar="FILE", help="write one row per notebook here")
    parser.add_argument("--markdown", metavar="DIR", help="write one feedback page per student")
    parser.add_argument(
        "--reveal-hidden",
        action="store_true",
        help="feedback shows hidden checks' details (after the due date)",
    )
    parser.add_argument("--gradebook", metavar="FILE", help="write an LMS gradebook CSV (--roster)")
    parser.add_argument(
        "--gradebook-format", choices=gradebook.FORMATS, default="canvas", help="(canvas)"
    )
    parser.add_argument(
        "--manual-export", metavar="DIR", help="write the written answers for marking here"
    )
    parser.add_argument(
        "--manual-marks",
        metavar="FILE",
        help="merge a marks CSV (login, question, points, comment)",
    )
    parser.add_argument("--classroom50", metavar="FILE", help="write Classroom 50's result.json")
    parser.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json")
    parser.add_argument(
        "--gradescope-hidden",
        choices=gradescope.VISIBILITIES,
        default="after_due_date",
        help="visibility of hidden checks in --gradescope (after_due_date)",
    )
    parser.add_argument(
        "--min-score", type=float, metavar="FRACTION", help="exit 1 if a notebook scores below"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grade",
        description="Grade exercise notebooks, each on a copy in its own kernel. "
        "'python -m cflib.grade merge REPORT.json...' joins reports.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders of them")
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
    parser.add_argument(
        "--shard", metavar="I/N", help="grade only part I of N (1 <= I <= N), by login or path"
    )
    parser.add_argument("--student", metavar="LOGIN", help="whose notebooks (without --roster)")
    _add_outputs(parser)
    return parser


def _merge_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grade merge",
        description="Join JSON reports (e.g. the shards of a class) and write any of the outputs.",
    )
    parser.add_argument("reports", nargs="+", metavar="REPORT.json", help="--json reports")
    _add_outputs(parser)
    return parser


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``.

    Raises:
        ValueError: not ``I/N`` with ``1 <= I <= N``.
    """
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise ValueError(f"--shard: expected I/N with 1 <= I <= N, such as 1/4, got {text!r}")
    return i, n


def shard_of(key: str, n: int) -> int:
    """The shard (1..n) of a login or path: a hash, so it depends on nothing else."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n + 1


def _known_questions() -> dict[str, float]:
    """Every written answer that a person marks: question -> points."""
    found = {}
    for number in exercise_numbers():
        for c in load_exercise(number).checks:
            if c.manual:
                found[f"{number}_{c.answers[0]}"] = c.points
    return found


def _validate_marks(marks: dict[tuple[str, str], manual.Mark], source: str) -> None:
    questions = _known_questions()
    for (_, question), mark in marks.items():
        where = f"--manual-marks {source}, row {mark.row}"
        if question not in questions:
            known = ", ".join(questions) or "none"
            raise manual.ManualError(
                f"{where}, column 'question': no written answer {question!r} (known: {known})"
            )
        if mark.points > questions[question]:
            raise manual.ManualError(
                f"{where}, column 'points': {mark.points:g} is more than {question}'s "
                f"{questions[question]:g} points"
            )


def _read_inputs(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[Roster | None, dict[tuple[str, str], manual.Mark]]:
    """The roster and the marks, checked before any grading (exit 2 when unusable)."""
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        parser.error(f"--min-score: expected a fraction in [0, 1], got {args.min_score}")
    if args.gradebook and not args.roster:
        parser.error("--gradebook: needs --roster (one row per student on the roster)")
    try:
        roster = read_roster(args.roster) if args.roster else None
        marks = manual.read_marks(args.manual_marks) if args.manual_marks else {}
        _validate_marks(marks, args.manual_marks)
    except (RosterError, manual.ManualError) as error:
        parser.error(str(error))
    return roster, marks


def _roster_notebooks(
    paths: Sequence[str], roster: Roster, shard: tuple[int, int] | None
) -> tuple[list[tuple[Path, str]], list[str], list[str]]:
    """(notebook, login) pairs for the roster's students (in the shard), the logins without any
    notebook, and the folders found that are not on the roster."""
    found: list[tuple[Path, str]] = []
    missing, strangers = [], []
    for raw in paths:
        folder = Path(raw)
        if not folder.is_dir():
            raise ValueError(f"{raw}: with --roster, expected a folder of <login>/ folders")
        strangers += [
            p.name
            for p in sorted(folder.iterdir())
            if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in roster
        ]
    for login in roster.logins:
        if shard is not None and shard_of(login, shard[1]) != shard[0]:
            continue
        mine = [
            nb
            for raw in paths
            if (Path(raw) / login).is_dir()
            for nb in find_notebooks([Path(raw) / login])
        ]
        if mine:
            found += [(nb, login) for nb in mine]
        else:
            missing.append(login)
    return found, missing, strangers


def _collection_notes(paths: Sequence[str]) -> dict[str, dict]:
    """login -> its entry in ``collection.json`` of the folders graded (from cflib.collect)."""
    notes: dict[str, dict] = {}
    for raw in paths:
        path = Path(raw) / "collection.json"
        if path.is_file():
            try:
                for entry in json.loads(path.read_text(encoding="utf-8"))["students"]:
                    notes[entry["login"]] = entry
            except (ValueError, KeyError, TypeError):
                print(
                    f"warning: {path} could not be read; late commits not reported", file=sys.stderr
                )
    return notes


def run_summary(
    results: Sequence[NotebookResult],
    missing: Sequence[str],
    notes: dict[str, dict],
) -> str:
    """The end of a run: graded, missing, late, errors, answers awaiting marking."""
    students = {r.student for r in results if r.student is not None}
    late = sorted(login for login in students if notes.get(login, {}).get("late_commits"))
    errors = [r for r in results if r.error is not None]
    awaiting = sum(c.status == manual.AWAITING for r in results for c in r.checks)

    def reason(login: str) -> str:
        status = notes.get(login, {}).get("status")
        return f"{login} ({status})" if status and status != "collected" else login

    lines = [
        f"graded:   {len(results)} notebook{'s' if len(results) != 1 else ''}"
        + (f" of {len(students)} students" if students else ""),
        f"missing:  {len(missing)}" + (": " + ", ".join(map(reason, missing)) if missing else ""),
        f"late:     {len(late)}" + (": " + ", ".join(late) if late else ""),
        f"errors:   {len(errors)}"
        + (": " + ", ".join(r.student or r.notebook for r in errors[:10]) if errors else "")
        + (" ..." if len(errors) > 10 else ""),
        f"awaiting marking: {awaiting} written answer{'s' if awaiting != 1 else ''}",
    ]
    return "\n".join(lines)


def _write_outputs(
    args: argparse.Namespace,
    results: list[NotebookResult],
    roster: Roster | None,
    marks: dict[tuple[str, str], manual.Mark],
    missing: Sequence[str],
    notes: dict[str, dict],
) -> int:
    """Merge the marks, write every output asked for, print the summaries; the exit status."""
    results, unmatched = manual.apply_marks(results, marks, args.manual_marks or "")
    if unmatched and not getattr(args, "shard", None):
        print(
            f"note: {len(unmatched)} marks match no graded written answer, e.g. "
            f"{unmatched[0][0]} / {unmatched[0][1]}",
            file=sys.stderr,
        )
    names = {s.login: s.display_name for s in roster.students} if roster else {}
    if args.json:
        report.write_json(results, args.json)
    if args.csv:
        report.write_csv(results, args.csv)
    if args.markdown:
        report.write_markdown(results, args.markdown, args.reveal_hidden, names)
    if args.gradebook and roster is not None:
        gradebook.write_gradebook(roster, results, args.gradebook, args.gradebook_format)
    if args.manual_export:
        manual.write_export(results, args.manual_export)
    if args.classroom50:
        classroom50.write_result(results, args.classroom50)
    if args.gradescope:
        gradescope.write_results(results, args.gradescope, args.gradescope_hidden)
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
    print()
    print(run_summary(results, missing, notes))
    if roster is not None:
        gaps = {k: v for k, v in gradebook.missing(roster, results).items() if v}
        if gaps:
            print(
                "missing exercises: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in gaps.items())
            )
    seeds = sorted({r.seed for r in results})
    if seeds:
        print(f"\n(seed {', '.join(map(str, seeds))})")
        print(f"grader version: {results[0].grader_version}")
    if args.min_score is not None and any(r.fraction < args.min_score for r in results):
        return 1
    return 0


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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return merge(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.timeout is not None and args.timeout <= 0) or args.probe_timeout <= 0:
        parser.error("--timeout and --probe-timeout: expected positive numbers of seconds")
    if args.jobs < 1:
        parser.error(f"--jobs: expected a positive integer, got {args.jobs}")
    if args.student and args.roster:
        parser.error("--student: not with --roster (the roster names the students)")
    roster, marks = _read_inputs(args, parser)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        if roster is not None:
            pairs, missing, strangers = _roster_notebooks(args.paths, roster, shard)
            if strangers:
                print(
                    f"warning: not on the roster, not graded: {', '.join(strangers)}",
                    file=sys.stderr,
                )
        else:
            found = find_notebooks(args.paths)
            if not found and shard is None:
                raise ValueError("no .ipynb notebooks found in " + ", ".join(args.paths))
            pairs = [
                (nb, args.student)
                for nb in found
                if shard is None or shard_of(nb.as_posix(), shard[1]) == shard[0]
            ]
            missing = []
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))

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
    bar = tqdm(
        total=len(pairs),
        desc="grade",
        unit="notebook",
        file=sys.stderr,
        disable=args.quiet or not sys.stderr.isatty(),
    )

    def progress(result: NotebookResult) -> None:
        bar.update()
        if bar.disable and not args.quiet:
            print(
                f"graded {result.notebook}: {result.score:g}/{result.max_score:g} "
                f"({result.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    with bar:
        results = grade_notebooks(
            [nb for nb, _ in pairs], options, jobs=args.jobs, progress=progress
        )
    version = grader_version()
    for result, (_, login) in zip(results, pairs, strict=True):
        result.student = login
        result.grader_version = version
    results = manual.attach_answers(results)
    return _write_outputs(args, results, roster, marks, missing, _collection_notes(args.paths))


def merge(argv: Sequence[str]) -> int:
    """``python -m cflib.grade merge REPORT.json... [options]``."""
    parser = _merge_parser()
    args = parser.parse_args(argv)
    roster, marks = _read_inputs(args, parser)
    joined: dict[tuple[str | None, str], NotebookResult] = {}
    try:
        for path in args.reports:
            for result in report.read_json(path):
                key = (result.student, result.notebook)
                if key in joined:
                    print(
                        f"note: {path} grades {result.notebook} again; its result is kept",
                        file=sys.stderr,
                    )
                joined[key] = result
    except report.ReportError as error:
        parser.error(str(error))
    results = list(joined.values())
    graded = {r.student for r in results}
    missing = [login for login in roster.logins if login not in graded] if roster else []
    return _write_outputs(args, results, roster, marks, missing, {})


if __name__ == "__main__":
    sys.exit(main())
