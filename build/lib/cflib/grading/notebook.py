"""In-notebook feedback: ``check("01", "log_abs_det")`` after an answer.

It runs the exercise's *public* checks on the caller's namespace, in the notebook's own process, on
inputs drawn afresh at each call, and shows what passed, what failed and why, and the points, plus how
many hidden checks run when the notebook is graded (never their code or expected values). It is
feedback only: grading never reads what this prints (see :mod:`cflib.grading.runner`).
"""

from __future__ import annotations

import html
import json
import os
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from cflib.grading import probe
from cflib.grading.checks import (
    CheckResult,
    ProbeError,
    load_exercise,
    normalise_number,
    run_check,
)

__all__ = ["Feedback", "LocalSubmission", "check"]


class LocalSubmission:
    """A namespace in this process, seen as a submission (for in-notebook checks)."""

    def __init__(self, namespace: dict[str, Any]):
        self._namespace = namespace

    def run_probe(self, source: str, function: str, args: list[Any], needs: list[str]) -> Any:
        return json.loads(probe.to_json(probe.run(self._namespace, source, function, args, needs)))

    def written_answer(self, name: str) -> str | None:
        raise ProbeError(f"the written answer {name!r} is read when the notebook is graded")


def _points(x: float) -> str:
    return f"{x:g}"


def _plural(n: float, word: str) -> str:
    return f"{_points(n)} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Feedback:
    """The outcome of :func:`check`: rich HTML in Jupyter, plain text elsewhere."""

    exercise: str
    answers: tuple[str, ...]
    results: tuple[CheckResult, ...]
    hidden_checks: int
    hidden_points: float
    grading: bool = False
    hidden_scope: str = (
        "answer"  # "exercise": the counts are the whole exercise's (student edition)
    )

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def all_passed(self) -> bool:
        return self.passed == len(self.results)

    def summary(self) -> str:
        """E.g. ``2 of 3 public checks passed (2 of 3 points); 1 more check (1 point) ...``."""
        if self.grading:
            return "The grader runs the checks of this answer itself."
        if self.results:
            text = (
                f"{self.passed} of {len(self.results)} public checks passed "
                f"({_points(self.score)} of {_plural(self.max_score, 'point')})"
            )
        else:
            text = "No public checks for this answer"
        if self.hidden_checks:
            more = _plural(self.hidden_checks, "more check")
            verb = "is" if self.hidden_checks == 1 else "are"
            scope = " of this exercise" if self.hidden_scope == "exercise" else ""
            text += (
                f"; {more} ({_plural(self.hidden_points, 'point')}){scope} {verb} run when your "
                "instructor grades it (hidden: their code, inputs and expected values are not shown)"
            )
        return text + "."

    def _title(self) -> str:
        return f"Exercise {self.exercise}" + (
            f": {', '.join(self.answers)}" if self.answers else ""
        )

    def __str__(self) -> str:
        lines = [self._title()]
        for r in self.results:
            mark = "✓" if r.passed else "✗"
            lines.append(
                f"  {mark} {r.name} ({_points(r.points)}/{_points(r.max_points)}): {r.message}"
            )
        lines.append(self.summary())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            f"<td style='color:{'#1a7f37' if r.passed else '#cf222e'}'>"
            f"{'✓' if r.passed else '✗'}</td>"
            f"<td><code>{html.escape(r.name)}</code></td>"
            f"<td>{_points(r.points)}/{_points(r.max_points)}</td>"
            f"<td style='text-align:left'>{html.escape(r.message)}</td></tr>"
            for r in self.results
        )
        table = (
            "<table><thead><tr><th></th><th>check</th><th>points</th>"
            f"<th style='text-align:left'>message</th></tr></thead><tbody>{rows}</tbody></table>"
            if self.results
            else ""
        )
        colour = "#1a7f37" if self.all_passed else "#cf222e"
        return (
            f"<div><b>{html.escape(self._title())}</b>{table}"
            f"<p style='color:{colour}'>{html.escape(self.summary())}</p></div>"
        )


def check(
    exercise: int | str,
    *answers: str,
    seed: int | None = None,
    namespace: dict[str, Any] | None = None,
) -> Feedback:
    """Run the public checks of ``exercise`` on the answers named ``answers`` (all when none).

    Example, in a notebook cell after the answer::

        from cflib.grading import check
        check("01", "log_abs_det")

    Args:
        exercise: the exercise number, e.g. ``"01"`` or ``1``.
        answers: names of the graded functions, variables or written answers to check.
        seed: fixes the random inputs (default: new ones at each call).
        namespace: where the answers live (default: the caller's globals, i.e. the notebook).

    While the notebook is graded (in the grader's sandbox, where the checks are not visible) it
    runs nothing and says so: the grader runs every check itself.

    Raises:
        ValueError: unknown exercise or answer name.
    """
    if os.environ.get("CFLIB_GRADING") == "1":
        return Feedback(normalise_number(exercise), tuple(answers), (), 0, 0.0, grading=True)
    spec = load_exercise(exercise)
    unknown = [a for a in answers if a not in spec.answer_names]
    if unknown and spec.has_hidden:  # (without them, a name may be graded by hidden checks only)
        raise ValueError(
            f"answers: exercise {spec.number} grades {', '.join(spec.answer_names)}; "
            f"got {', '.join(map(repr, unknown))}"
        )
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    seed = secrets.randbits(63) if seed is None else seed
    selected = spec.select(answers)
    public = [c for c in selected if not c.hidden]
    hidden = [c for c in selected if c.hidden]
    submission = LocalSubmission(namespace)
    return Feedback(
        exercise=spec.number,
        answers=tuple(answers),
        results=tuple(run_check(c, submission, seed) for c in public),
        hidden_checks=len(hidden) if spec.has_hidden else spec.hidden_checks,
        hidden_points=sum(c.points for c in hidden) if spec.has_hidden else spec.hidden_points,
        hidden_scope="answer" if spec.has_hidden else "exercise",
    )
