"""Grading through pytest: every check of a submission is a test of its own.

Usage (the safe launcher, which also keeps the submission's own files out of pytest)::

    python -m cflib.grading.junit NOTEBOOK_OR_FOLDER... --junitxml grades.xml [--seed N]
           [--timeout SECONDS] [--sandbox auto|bwrap|none]

or by hand, from a folder outside the submission::

    python -P -m pytest -p cflib.grading.pytest_plugin --noconftest -p no:cacheprovider \
           --submission NOTEBOOK [--submission NOTEBOOK ...] [--grading-timeout SECONDS] \
           [--grading-seed N] [--grading-sandbox KIND] [--junitxml grades.xml]

A submission's ``conftest.py`` could rewrite every outcome, so the plugin refuses to grade without
``--noconftest``, and refuses a ``cflib`` imported from inside a submission.

or ``CFLIB_SUBMISSION=NOTEBOOK pytest -p cflib.grading.pytest_plugin`` (several paths separated by
``os.pathsep``; folders are searched for notebooks). When a submission is given only the submissions
are collected, not the project's tests. Each notebook is graded exactly as ``python -m cflib.grade``
does (its own kernel, checks computed in this process); then each check is a test named after it
(``01_affine_jacobian.ipynb::jacobian_shape``), failing with the check's message, with
``points``/``max_points``/``hidden``/``status`` recorded as JUnit properties, plus a test
``runs_without_errors`` that fails with the notebook's ``error``. A written answer, which a person
marks, is skipped ("awaiting marking", 0 points until then). The terminal summary prints each
notebook's score.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cflib
from cflib.grading import manual, sandbox
from cflib.grading.checks import CheckResult
from cflib.grading.runner import GradingOptions, NotebookResult, find_notebooks, grade_notebook

_RESULTS = pytest.StashKey[list[NotebookResult]]()
_PATHS = pytest.StashKey[set[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cflib-grading", "grading of exercise notebooks (cflib)")
    group.addoption(
        "--submission",
        action="append",
        default=[],
        metavar="NOTEBOOK",
        help="grade this notebook (or folder), one test per check; or set $CFLIB_SUBMISSION",
    )
    group.addoption("--grading-timeout", type=float, default=None, metavar="SECONDS")
    group.addoption("--grading-seed", type=int, default=None, metavar="N")
    group.addoption("--grading-sandbox", default="auto", choices=sandbox.KINDS)


def _submissions(config: pytest.Config) -> list[Path]:
    given = list(config.getoption("submission") or [])
    if not given:
        given = [p for p in os.environ.get("CFLIB_SUBMISSION", "").split(os.pathsep) if p]
    if not given:
        return []
    try:
        return find_notebooks(given)
    except (FileNotFoundError, ValueError) as error:
        raise pytest.UsageError(f"--submission: {error}") from error


def pytest_configure(config: pytest.Config) -> None:
    paths = _submissions(config)
    if paths and not config.getoption("noconftest"):
        raise pytest.UsageError(
            "grading through pytest needs --noconftest: a submission's conftest.py could change "
            "the outcomes (or use `python -m cflib.grading.junit`)"
        )
    library = Path(cflib.__file__).resolve()
    for path in paths:
        folder = path.resolve() if path.is_dir() else path.resolve().parent
        if folder in library.parents:
            raise pytest.UsageError(
                f"cflib was imported from {library.parent}, inside the submission {path}: run "
                "from another folder with `python -P` (or use `python -m cflib.grading.junit`)"
            )
    config.stash[_PATHS] = {p.resolve() for p in paths}
    config.stash[_RESULTS] = []
    if paths:
        config.args = [str(p) for p in paths]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.resolve() in parent.config.stash.get(_PATHS, set()):
        return Submission.from_parent(parent, path=file_path)
    return None


class CheckFailed(Exception):
    """A check that did not pass (its message is the failure report)."""


class Submission(pytest.File):
    """A submitted notebook: graded once, then one item per check."""

    def collect(self) -> Iterator[pytest.Item]:
        seed = self.config.getoption("grading_seed")
        seed = secrets.randbits(32) if seed is None else seed  # drawn now, as the grader does
        options = GradingOptions(
            timeout=self.config.getoption("grading_timeout"),
            seed=seed,
            sandbox=self.config.getoption("grading_sandbox"),
        )
        result = asyncio.run(grade_notebook(self.path, options, seed))
        # written answers: 0 points and "awaiting marking" until a person marks them, as in
        # `python -m cflib.grade` without --manual-marks
        result = manual.apply_marks([result], {})[0][0]
        self.config.stash[_RESULTS].append(result)
        yield CheckItem.from_parent(self, name="runs_without_errors", result=None, error=result)
        for check in result.checks:
            yield CheckItem.from_parent(self, name=check.name, result=check, error=None)


class CheckItem(pytest.Item):
    """One check of a submission (or, with ``error``, whether the notebook ran cleanly)."""

    def __init__(
        self, *, result: CheckResult | None, error: NotebookResult | None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.result, self.notebook = result, error
        if result is not None:
            self.user_properties += [
                ("points", result.points),
                ("max_points", result.max_points),
                ("hidden", result.hidden),
                ("status", result.status),
            ]

    def runtest(self) -> None:
        if self.result is not None and self.result.status == "awaiting marking":
            # a written answer: a person marks it; until then it is neither passed nor failed
            pytest.skip(
                f"awaiting marking by a person (0 points until then): {self.result.message}"
            )
        if self.result is not None and not self.result.passed:
            raise CheckFailed(self.result.message)
        if self.notebook is not None and self.notebook.error:
            raise CheckFailed(self.notebook.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}::{self.name}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    terminalreporter.section("grades")
    for r in results:
        terminalreporter.line(
            f"{r.notebook} (exercise {r.exercise or '?'}): {r.score:g} of {r.max_score:g} points"
        )
