"""Written answers marked by a person.

The checks declared with ``manual=True`` (see :meth:`cflib.grading.checks.Exercise.check`) grade a
written answer. Grading runs their automatic part, which only says whether an answer is there (its
``message``), and gives them 0 points with the status ``"awaiting marking"``. Then:

1. ``--manual-export DIR`` writes ``DIR/manual.csv`` (``login, notebook, question, max_points,
   answer``; one line per answer), one Markdown page per question (``DIR/<question>.md``) with every
   student's answer, and, unless it exists, a marks sheet ``DIR/marks.csv`` to fill in.
2. The marker fills in ``login, question, points, comment`` (``marks.csv``).
3. ``--manual-marks FILE`` merges the marks in: each marked answer gets its points, the status
   ``"marked"`` and the comment, which the student's feedback shows.

A question is named ``<exercise>_<answer>``, e.g. ``01_triangular_proof``. A login is the student's
roster login; in a run without a roster it is the notebook's path.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from cflib.grading.checks import CheckResult, load_exercise
from cflib.grading.markdown import answer_text, written_answers
from cflib.grading.runner import NotebookResult

__all__ = [
    "AWAITING",
    "EXPORT_COLUMNS",
    "MARKED",
    "MARKS_COLUMNS",
    "ManualError",
    "Mark",
    "apply_marks",
    "attach_answers",
    "login_of",
    "question_of",
    "read_marks",
    "write_export",
]

AWAITING = "awaiting marking"
MARKED = "marked"
EXPORT_COLUMNS = ("login", "notebook", "question", "max_points", "answer")
MARKS_COLUMNS = ("login", "question", "points", "comment")


class ManualError(ValueError):
    """A marks file that cannot be used; the message names the file, row and column."""


@dataclass(frozen=True)
class Mark:
    """One row of a marks file."""

    row: int
    points: float
    comment: str


def login_of(result: NotebookResult) -> str:
    """Whose notebook: the roster login, else the notebook's path."""
    return result.student or result.notebook


def _answer_name(exercise: str | None, check: str) -> str:
    spec = load_exercise(exercise or "")
    return next(c.answers[0] for c in spec.checks if c.name == check)


def question_of(result: NotebookResult, check: CheckResult) -> str:
    """``<exercise>_<answer name>``, e.g. ``01_triangular_proof``."""
    return f"{result.exercise}_{_answer_name(result.exercise, check.name)}"


def attach_answers(results: Sequence[NotebookResult]) -> list[NotebookResult]:
    """Copy each written answer's text (without the prompt) into its manual check's ``answer``,
    read from the notebook file (left as it is when that file cannot be read)."""
    done = []
    for result in results:
        if not any(c.manual and c.answer is None for c in result.checks):
            done.append(result)
            continue
        try:
            texts = written_answers(nbformat.read(result.notebook, as_version=4).cells)
        except Exception:
            done.append(result)
            continue
        checks = [
            dataclasses.replace(
                c, answer=answer_text(texts.get(_answer_name(result.exercise, c.name)))
            )
            if c.manual and c.answer is None
            else c
            for c in result.checks
        ]
        done.append(dataclasses.replace(result, checks=checks))
    return done


def read_marks(path: str | Path) -> dict[tuple[str, str], Mark]:
    """Read a marks CSV (``login, question, points, comment``; rows with empty points are unmarked).

    Raises:
        ManualError: missing file or column, a points cell that is not a number >= 0, or a
            (login, question) marked twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise ManualError(f"--manual-marks {path}: no such file") from error
    rows = list(csv.reader(text.splitlines()))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    for column in ("login", "question", "points"):
        if column not in header:
            raise ManualError(
                f"--manual-marks {path}, row 1: no {column!r} column "
                f"(expected: {', '.join(MARKS_COLUMNS)})"
            )
    marks: dict[tuple[str, str], Mark] = {}
    for number, row in enumerate(rows[1:], start=2):
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        if not any(cells.values()) or not cells["points"]:
            continue
        for column in ("login", "question"):
            if not cells[column]:
                raise ManualError(f"--manual-marks {path}, row {number}, column {column!r}: empty")
        try:
            points = float(cells["points"])
        except ValueError:
            points = math.nan
        if not math.isfinite(points) or points < 0:
            raise ManualError(
                f"--manual-marks {path}, row {number}, column 'points': expected a number >= 0, "
                f"got {cells['points']!r}"
            )
        key = (cells["login"], cells["question"])
        if key in marks:
            raise ManualError(
                f"--manual-marks {path}, row {number}: {key[0]} / {key[1]} is already marked in "
                f"row {marks[key].row}"
            )
        marks[key] = Mark(number, points, cells.get("comment", ""))
    return marks


def apply_marks(
    results: Sequence[NotebookResult], marks: dict[tuple[str, str], Mark], source: str = "marks"
) -> tuple[list[NotebookResult], list[tuple[str, str]]]:
    """Set every manual check from ``marks`` (marked) or to 0 points (awaiting marking).

    Idempotent: the automatic ``message`` is kept, so marks can be merged again (e.g. in
    ``merge``). Returns the results and the marks that matched no written answer (e.g. another
    shard's students).

    Raises:
        ManualError: a mark above the question's points.
    """
    used: set[tuple[str, str]] = set()
    done = []
    for result in results:
        if not any(c.manual for c in result.checks):
            done.append(result)
            continue
        checks = []
        for c in result.checks:
            if not c.manual:
                checks.append(c)
                continue
            key = (login_of(result), question_of(result, c))
            mark = marks.get(key)
            if mark is None:
                checks.append(
                    dataclasses.replace(c, points=0.0, passed=False, status=AWAITING, comment=None)
                )
                continue
            if mark.points > c.max_points:
                raise ManualError(
                    f"--manual-marks {source}, row {mark.row}, column 'points': {mark.points:g} "
                    f"is more than {key[1]}'s {c.max_points:g} points"
                )
            used.add(key)
            checks.append(
                dataclasses.replace(
                    c,
                    points=mark.points,
                    passed=mark.points == c.max_points,
                    status=MARKED,
                    comment=mark.comment or None,
                )
            )
        score = round(sum(c.points for c in checks), 6)
        done.append(dataclasses.replace(result, checks=checks, score=score))
    return done, sorted(set(marks) - used)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def write_export(results: Sequence[NotebookResult], folder: str | Path) -> list[Path]:
    """``manual.csv``, one page per question, and ``marks.csv`` (if absent); returns the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, CheckResult]] = [
        (login_of(r), r.notebook, question_of(r, c), c)
        for r in results
        for c in r.checks
        if c.manual
    ]
    written = [folder / "manual.csv"]
    with open(written[0], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for login, notebook, question, c in rows:
            writer.writerow(
                [login, notebook, question, f"{c.max_points:g}", _one_line(c.answer or "")]
            )
    for question in dict.fromkeys(q for _, _, q, _ in rows):
        entries = [(login, nb, c) for login, nb, q, c in rows if q == question]
        lines = [
            f"# Written answers: {question}",
            "",
            f"{len(entries)} answers, {entries[0][2].max_points:g} points each. Mark them in "
            f"`marks.csv` (columns {', '.join(MARKS_COLUMNS)}), then grade with `--manual-marks`.",
        ]
        for login, notebook, c in entries:
            lines += [
                "",
                f"## {login}",
                "",
                f"`{notebook}`; now {c.points:g} points, {c.status}.",
                "",
            ]
            lines += [c.answer or "*(no answer)*"]
            if c.comment:
                lines += ["", f"> Marker: {c.comment}"]
        page = folder / f"{question}.md"
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(page)
    sheet = folder / "marks.csv"
    if not sheet.exists():
        with open(sheet, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(MARKS_COLUMNS)
            for login, _, question, c in rows:
                marked = c.status == MARKED
                writer.writerow(
                    [login, question, f"{c.points:g}" if marked else "", c.comment or ""]
                )
        written.append(sheet)
    return written
