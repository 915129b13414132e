"""Reports of a grading run: JSON, a CSV, Markdown feedback, a table and a class summary.

JSON (one object per notebook; :func:`read_json` reads it back, e.g. for ``merge``)::

    [{"notebook": "...", "exercise": "03", "student": "alice", "score": 7.0, "max_score": 10.0,
      "seed": 123, "graded_at": "2026-12-03T10:00:00Z", "sandbox": "bwrap",
      "grader_version": "sha256:...",
      "checks": [{"name": "...", "points": 2.0, "max_points": 2.0, "passed": true,
                  "hidden": false, "message": "...", "manual": false, "status": "graded",
                  "comment": null, "answer": null}],
      "error": null}]

CSV: one row per notebook, columns :data:`CSV_COLUMNS`, every cell on one line. Markdown: one
feedback page per student covering all of that student's notebooks (per notebook when the run has
no students), plus ``summary.md`` (the class summary, fit for a GitHub job summary). Feedback never
shows a hidden check's message unless ``reveal_hidden`` (after the due date): only how many hidden
checks ran and how many passed. Written answers marked by hand show their points, status and the
marker's comment.
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cflib.grading.checks import CheckResult
from cflib.grading.runner import CellError, NotebookResult

__all__ = [
    "CSV_COLUMNS",
    "ReportError",
    "feedback_markdown",
    "read_json",
    "summary_markdown",
    "summary_text",
    "table",
    "write_csv",
    "write_json",
    "write_markdown",
]

CSV_COLUMNS = [
    "student",
    "notebook",
    "exercise",
    "score",
    "max_score",
    "percent",
    "checks_passed",
    "checks_total",
    "awaiting_marking",
    "graded_at",
    "error",
]
BINS = [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100)]


def _num(x: float) -> str:
    return f"{x:g}"


def _percent(r: NotebookResult) -> float:
    return round(100 * r.fraction, 1)


def _line(text: str | None) -> str:
    """``text`` on a single line (CSV cells, tables)."""
    return " ".join((text or "").split())


def _awaiting(r: NotebookResult) -> int:
    return sum(c.status == "awaiting marking" for c in r.checks)


def write_json(results: Sequence[NotebookResult], path: str | Path) -> None:
    """The documented JSON list, one object per notebook."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


class ReportError(ValueError):
    """A JSON report that cannot be read back; the message names the file and the entry."""


def _check_from_json(data: dict[str, Any]) -> CheckResult:
    return CheckResult(
        name=str(data["name"]),
        points=float(data["points"]),
        max_points=float(data["max_points"]),
        passed=bool(data["passed"]),
        message=str(data["message"]),
        hidden=bool(data.get("hidden", False)),
        manual=bool(data.get("manual", False)),
        status=str(data.get("status", "graded")),
        comment=data.get("comment"),
        answer=data.get("answer"),
    )


def read_json(path: str | Path) -> list[NotebookResult]:
    """The results in a JSON report written by :func:`write_json`.

    Raises:
        ReportError: the file is missing, not JSON, or an entry lacks a documented field.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReportError(f"{path}: no such report") from error
    except ValueError as error:
        raise ReportError(f"{path}: not a JSON report ({error})") from error
    if not isinstance(data, list):
        raise ReportError(f"{path}: expected a JSON list of notebooks, found {type(data).__name__}")
    results = []
    for i, entry in enumerate(data):
        try:
            results.append(
                NotebookResult(
                    notebook=str(entry["notebook"]),
                    exercise=entry["exercise"],
                    score=float(entry["score"]),
                    max_score=float(entry["max_score"]),
                    checks=[_check_from_json(c) for c in entry["checks"]],
                    error=entry["error"],
                    seed=int(entry.get("seed", 0)),
                    cell_errors=[CellError(**e) for e in entry.get("cell_errors", [])],
                    student=entry.get("student"),
                    graded_at=str(entry.get("graded_at", "")),
                    grader_version=str(entry.get("grader_version", "")),
                    sandbox=str(entry.get("sandbox", "none")),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ReportError(
                f"{path}: entry {i + 1} is not a graded notebook ({error!r})"
            ) from error
    return results


def write_csv(results: Sequence[NotebookResult], path: str | Path) -> None:
    """One row per notebook, for a gradebook."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow(
                [
                    r.student or "",
                    r.notebook,
                    r.exercise or "",
                    _num(r.score),
                    _num(r.max_score),
                    _num(_percent(r)),
                    sum(c.passed for c in r.checks),
                    len(r.checks),
                    _awaiting(r),
                    r.graded_at,
                    _line(r.error),
                ]
            )


def table(results: Sequence[NotebookResult]) -> str:
    """A plain-text table: student, notebook, exercise, score, percent, error."""
    rows = [("student", "notebook", "ex", "score", "%", "error")]
    for r in results:
        error = _line(r.error)
        rows.append(
            (
                r.student or "-",
                r.notebook,
                r.exercise or "?",
                f"{_num(r.score)}/{_num(r.max_score)}",
                f"{_percent(r):g}",
                error if len(error) <= 70 else error[:67] + "...",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        f"{s:<{widths[0]}}  {a:<{widths[1]}}  {b:<{widths[2]}}  {c:>{widths[3]}}  "
        f"{d:>{widths[4]}}  {e}".rstrip()
        for s, a, b, c, d, e in rows
    )


def _by_exercise(results: Sequence[NotebookResult]) -> dict[str, list[NotebookResult]]:
    groups: dict[str, list[NotebookResult]] = {}
    for r in results:
        groups.setdefault(r.exercise or "?", []).append(r)
    return dict(sorted(groups.items()))


def _bin_counts(group: list[NotebookResult]) -> list[int]:
    counts = [0] * len(BINS)
    for r in group:
        p = _percent(r)
        counts[min(int(p // 20), len(BINS) - 1)] += 1
    return counts


def _stats(group: list[NotebookResult]) -> str:
    scores = [r.score for r in group]
    return (
        f"{len(group)} notebook{'s' if len(group) != 1 else ''}, mean {statistics.mean(scores):.3g}, "
        f"median {statistics.median(scores):g}, min {min(scores):g}, max {max(scores):g}"
    )


def summary_text(results: Sequence[NotebookResult]) -> str:
    """The class summary: per exercise, the score statistics and a histogram of percentages."""
    lines = []
    for number, group in _by_exercise(results).items():
        lines.append(f"Exercise {number} ({_num(group[0].max_score)} points): {_stats(group)}")
        for (low, high), count in zip(BINS, _bin_counts(group), strict=True):
            label = f"{low}-{high}%" + (" " if high < 100 else "")
            lines.append(f"  {label:<8} {'#' * count:<{len(group)}} {count}")
        errors = sum(r.error is not None for r in group)
        if errors:
            lines.append(f"  {errors} with an error while running (see the table)")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _mark(c: CheckResult) -> str:
    if c.manual:
        return (
            "✅" if c.status == "marked" and c.passed else ("📝" if c.status == "marked" else "⏳")
        )
    return "✅" if c.passed else "❌"


def _notebook_section(result: NotebookResult, reveal_hidden: bool) -> list[str]:
    lines = [
        f"## Exercise {result.exercise or '?'}: `{Path(result.notebook).name}`",
        "",
        f"**{_num(result.score)} of {_num(result.max_score)} points** ({_percent(result):g}%).",
        "",
    ]
    if result.error:
        lines += [f"> **While running the notebook:** {_cell(result.error)}", ""]
    automatic = [c for c in result.checks if not c.manual and (reveal_hidden or not c.hidden)]
    if automatic:
        lines += ["| | check | points | message |", "|---|---|---|---|"]
        lines += [
            f"| {_mark(c)} | `{c.name}`{' (hidden)' if c.hidden else ''} | {_num(c.points)} / "
            f"{_num(c.max_points)} | {_cell(c.message)} |"
            for c in automatic
        ]
        lines.append("")
    hidden = [c for c in result.checks if c.hidden and not c.manual]
    if hidden and not reveal_hidden:
        good = sum(c.passed for c in hidden)
        lines += [
            f"Hidden checks: {len(hidden)} ran, {good} passed, {len(hidden) - good} failed "
            f"({_num(sum(c.points for c in hidden))} of {_num(sum(c.max_points for c in hidden))} "
            "points); their details are shown after the due date.",
            "",
        ]
    manual = [c for c in result.checks if c.manual]
    if manual:
        lines += [
            "| | written answer | points | status | marker's comment |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_mark(c)} | `{c.name}` | {_num(c.points)} / {_num(c.max_points)} | {c.status} | "
            f"{_cell(c.comment or '')} |"
            for c in manual
        ]
        lines.append("")
    return lines


def _student_line(student: str | None, names: dict[str, str]) -> str:
    if student is None:
        return "Student: not named (grade with `--roster` or `--student` to name students)."
    name = names.get(student, student)
    return f"Student: **{name}**" + (f" (`{student}`)" if name != student else "") + "."


def feedback_markdown(
    results: NotebookResult | Sequence[NotebookResult],
    reveal_hidden: bool = False,
    names: dict[str, str] | None = None,
) -> str:
    """The feedback page for one student: every notebook of theirs in ``results`` (all of them
    must belong to one student), with hidden checks' details only when ``reveal_hidden``."""
    group = [results] if isinstance(results, NotebookResult) else list(results)
    students = {r.student for r in group}
    if len(students) != 1:
        raise ValueError(f"feedback_markdown: expected one student's notebooks, got {students}")
    student = group[0].student
    names = names or {}
    title = names.get(student, student) if student else Path(group[0].notebook).name
    total = sum(r.score for r in group)
    possible = sum(r.max_score for r in group)
    lines = [f"# Feedback: {title}", "", _student_line(student, names), ""]
    if len(group) > 1:
        lines += [
            f"{len(group)} notebooks, **{_num(total)} of {_num(possible)} points** in all.",
            "",
        ]
    awaiting = sum(_awaiting(r) for r in group)
    if awaiting:
        lines += [
            f"{awaiting} written answer{'s' if awaiting != 1 else ''} await marking by the "
            "instructor; they count 0 points until marked.",
            "",
        ]
    for r in group:
        lines += _notebook_section(r, reveal_hidden)
    if group[0].graded_at or group[0].grader_version:
        lines += [
            f"<sub>Graded {group[0].graded_at} with seed {group[0].seed}, grader "
            f"{group[0].grader_version or '?'}.</sub>"
        ]
    return "\n".join(lines).rstrip() + "\n"


def summary_markdown(results: Sequence[NotebookResult]) -> str:
    """The run as Markdown: every notebook's score, the distribution, and each check's pass rate."""
    lines = [
        "# Grading summary",
        "",
        "| student | notebook | exercise | score | % | error |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(r.student or '-')} | {_cell(r.notebook)} | {r.exercise or '?'} | "
        f"{_num(r.score)} / {_num(r.max_score)} | {_percent(r):g} | {_cell(r.error or '')} |"
        for r in results
    ]
    for number, group in _by_exercise(results).items():
        lines += ["", f"## Exercise {number}", "", _stats(group) + ".", ""]
        lines += ["| score | notebooks |", "|---|---|"]
        lines += [
            f"| {low}-{high}% | {count} |"
            for (low, high), count in zip(BINS, _bin_counts(group), strict=True)
        ]
        names = list(dict.fromkeys(c.name for r in group for c in r.checks))
        if names:
            lines += ["", "| check | passed |", "|---|---|"]
            for name in names:
                hits = [c.passed for r in group for c in r.checks if c.name == name]
                lines.append(f"| `{name}` | {sum(hits)} of {len(hits)} |")
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip(".") or "student"


def _pages(results: Sequence[NotebookResult]) -> list[tuple[str, list[NotebookResult]]]:
    """(file name, results) per feedback page: one per student; one per notebook without a student
    (named by the notebook's path below the notebooks' common folder)."""
    pages: dict[str, list[NotebookResult]] = {}
    anonymous = [r for r in results if r.student is None]
    paths = [Path(r.notebook).resolve() for r in anonymous]
    root = Path(os.path.commonpath([p.parent for p in paths])) if paths else Path()
    for r in results:
        if r.student is not None:
            base = _safe(r.student)
            while (base in pages and pages[base][0].student != r.student) or base == "summary":
                base += "_"
            pages.setdefault(base, []).append(r)
            continue
        path = Path(r.notebook).resolve()
        base = "__".join(path.relative_to(root).with_suffix("").parts)
        name, n = base, 1
        while name in pages or name == "summary":
            n += 1
            name = f"{base}-{n}"
        pages[name] = [r]
    return [(f"{name}.md", group) for name, group in pages.items()]


def write_markdown(
    results: Sequence[NotebookResult],
    folder: str | Path,
    reveal_hidden: bool = False,
    names: dict[str, str] | None = None,
) -> list[Path]:
    """One feedback page per student (per notebook without students) and ``summary.md`` in
    ``folder``; returns the files. ``names``: login -> the student's name, for the pages."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, group in _pages(results):
        (folder / name).write_text(feedback_markdown(group, reveal_hidden, names), encoding="utf-8")
        written.append(folder / name)
    (folder / "summary.md").write_text(summary_markdown(results), encoding="utf-8")
    return [*written, folder / "summary.md"]
