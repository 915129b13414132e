"""Reports of a grading run: JSON, a CSV gradebook, Markdown feedback, a table and a class summary.

JSON (one object per notebook, exactly)::

    [{"notebook": "...", "exercise": "03", "score": 7.0, "max_score": 10.0,
      "checks": [{"name": "...", "points": 2.0, "max_points": 2.0, "passed": true,
                  "message": "..."}],
      "error": null}]

CSV: one row per notebook, columns :data:`CSV_COLUMNS`. Markdown: one feedback file per notebook
plus ``summary.md`` (the class summary, fit for a GitHub job summary).
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from cflib.grading.runner import NotebookResult

__all__ = [
    "CSV_COLUMNS",
    "feedback_markdown",
    "summary_markdown",
    "summary_text",
    "table",
    "write_csv",
    "write_json",
    "write_markdown",
]

CSV_COLUMNS = [
    "notebook",
    "exercise",
    "score",
    "max_score",
    "percent",
    "checks_passed",
    "checks_total",
    "error",
]
BINS = [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100)]


def _num(x: float) -> str:
    return f"{x:g}"


def _percent(r: NotebookResult) -> float:
    return round(100 * r.fraction, 1)


def write_json(results: Sequence[NotebookResult], path: str | Path) -> None:
    """The documented JSON list, one object per notebook."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_csv(results: Sequence[NotebookResult], path: str | Path) -> None:
    """One row per notebook, for a gradebook."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            writer.writerow(
                [
                    r.notebook,
                    r.exercise or "",
                    _num(r.score),
                    _num(r.max_score),
                    _num(_percent(r)),
                    sum(c.passed for c in r.checks),
                    len(r.checks),
                    r.error or "",
                ]
            )


def table(results: Sequence[NotebookResult]) -> str:
    """A plain-text table: notebook, exercise, score, percent, error."""
    rows = [("notebook", "ex", "score", "%", "error")]
    for r in results:
        error = (r.error or "").replace("\n", " ")
        rows.append(
            (
                r.notebook,
                r.exercise or "?",
                f"{_num(r.score)}/{_num(r.max_score)}",
                f"{_percent(r):g}",
                error if len(error) <= 70 else error[:67] + "...",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}  {e}".rstrip()
        for a, b, c, d, e in rows
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


def feedback_markdown(result: NotebookResult) -> str:
    """A short feedback report for the student who submitted ``result.notebook``."""
    lines = [
        f"# Feedback: {Path(result.notebook).name}",
        "",
        f"Exercise {result.exercise or '?'}: **{_num(result.score)} of {_num(result.max_score)} "
        f"points** ({_percent(result):g}%).",
        "",
    ]
    if result.error:
        lines += [f"> **While running the notebook:** {_cell(result.error)}", ""]
    if result.checks:
        lines += ["| | check | points | message |", "|---|---|---|---|"]
        lines += [
            f"| {'✅' if c.passed else '❌'} | `{c.name}` | {_num(c.points)} / "
            f"{_num(c.max_points)} | {_cell(c.message)} |"
            for c in result.checks
        ]
    return "\n".join(lines) + "\n"


def summary_markdown(results: Sequence[NotebookResult]) -> str:
    """The run as Markdown: every notebook's score, the distribution, and each check's pass rate."""
    lines = [
        "# Grading summary",
        "",
        "| notebook | exercise | score | % | error |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(r.notebook)} | {r.exercise or '?'} | {_num(r.score)} / {_num(r.max_score)} | "
        f"{_percent(r):g} | {_cell(r.error or '')} |"
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


def _file_names(results: Sequence[NotebookResult]) -> list[str]:
    """Unique feedback file names: the notebooks' paths below their common folder."""
    paths = [Path(r.notebook).resolve() for r in results]
    root = Path(os.path.commonpath([p.parent for p in paths])) if paths else Path()
    names: list[str] = []
    for path in paths:
        base = "__".join(path.relative_to(root).with_suffix("").parts)
        name, n = base, 1
        while name in names or name == "summary":
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return [f"{name}.md" for name in names]


def write_markdown(results: Sequence[NotebookResult], folder: str | Path) -> list[Path]:
    """One feedback file per notebook and ``summary.md`` in ``folder``; returns the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for result, name in zip(results, _file_names(results), strict=True):
        (folder / name).write_text(feedback_markdown(result), encoding="utf-8")
        written.append(folder / name)
    (folder / "summary.md").write_text(summary_markdown(results), encoding="utf-8")
    return [*written, folder / "summary.md"]
