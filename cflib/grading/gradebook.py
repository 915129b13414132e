"""Gradebook CSVs that an LMS imports: one row per student on the roster, one column per exercise.

- Canvas (``--gradebook FILE``): columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then
  one per exercise (``Exercise 03: <title>``); the second row is ``Points Possible`` with each
  exercise's maximum. Canvas matches students by ``SIS User ID``, ``SIS Login ID`` or ``ID``; an
  unknown column name makes a new assignment.
- Moodle (``--gradebook-format moodle``): ``email`` (or ``username`` when the roster lacks emails),
  then one column per exercise; map the columns to grade items in Moodle's CSV import.

A student with no graded notebook for an exercise gets 0 there and is listed as missing; a student
with several notebooks for one exercise gets the best.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from cflib.grading.checks import load_exercise
from cflib.grading.roster import Roster
from cflib.grading.runner import NotebookResult

__all__ = ["CANVAS_COLUMNS", "FORMATS", "missing", "scores", "write_gradebook"]

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
FORMATS = ("canvas", "moodle")


def _exercises(results: Sequence[NotebookResult]) -> list[tuple[str, str, float]]:
    """(number, column header, points possible) of each exercise graded, in order."""
    found: dict[str, float] = {}
    for r in results:
        if r.exercise is not None and r.max_score > 0:
            found[r.exercise] = max(found.get(r.exercise, 0.0), r.max_score)
    columns = []
    for number in sorted(found):
        try:
            title = load_exercise(number).title
        except ValueError:
            title = ""
        columns.append(
            (
                number,
                f"Exercise {number}: {title}" if title else f"Exercise {number}",
                found[number],
            )
        )
    return columns


def scores(roster: Roster, results: Sequence[NotebookResult]) -> dict[str, dict[str, float]]:
    """login -> exercise -> best score, for the students on the roster who have one."""
    table: dict[str, dict[str, float]] = {}
    for r in results:
        if r.student in roster and r.exercise is not None:
            row = table.setdefault(r.student, {})
            row[r.exercise] = max(row.get(r.exercise, 0.0), r.score)
    return table


def missing(roster: Roster, results: Sequence[NotebookResult]) -> dict[str, list[str]]:
    """login -> the exercises of this run the student has no graded notebook for, for every
    student with a gap (an empty list: the student has no graded notebook at all)."""
    graded = scores(roster, results)
    numbers = [number for number, _, _ in _exercises(results)]
    gaps = {
        login: [n for n in numbers if n not in graded.get(login, {})] for login in roster.logins
    }
    return {login: gap for login, gap in gaps.items() if gap or login not in graded}


def _cell(value: float) -> str:
    return f"{value:g}"


def write_gradebook(
    roster: Roster, results: Sequence[NotebookResult], path: str | Path, fmt: str = "canvas"
) -> None:
    """Write the gradebook CSV in ``fmt`` (``canvas`` or ``moodle``)."""
    if fmt not in FORMATS:
        raise ValueError(f"--gradebook-format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    columns = _exercises(results)
    graded = scores(roster, results)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if fmt == "canvas":
            writer.writerow(CANVAS_COLUMNS + [header for _, header, _ in columns])
            writer.writerow(["Points Possible", "", "", "", ""] + [_cell(p) for _, _, p in columns])
            for s in roster.students:
                row = graded.get(s.login, {})
                writer.writerow(
                    [s.display_name, s.id, s.sis_user_id, s.sis_login_id or s.login, s.section]
                    + [_cell(row.get(number, 0.0)) for number, _, _ in columns]
                )
        else:
            by_email = all(s.email for s in roster.students)
            writer.writerow(["email" if by_email else "username"] + [h for _, h, _ in columns])
            for s in roster.students:
                row = graded.get(s.login, {})
                writer.writerow(
                    [s.email if by_email else (s.sis_login_id or s.login)]
                    + [_cell(row.get(number, 0.0)) for number, _, _ in columns]
                )
