"""Checks, their results, exercises, and the registry of exercises.

A check is an ordinary function ``check(student, rng) -> Outcome`` registered on an
:class:`Exercise`. It runs where the verdict must be computed (the grader's process, or the
notebook's own process for in-notebook feedback) and reaches the student's objects only through
``student.call(probe, *args)``, which runs a probe (see :mod:`cflib.grading.probe`) where the
student's code lives and returns plain data. ``rng`` is a NumPy generator seeded at grading time, so
the inputs a check chooses are unknown to the notebook in advance.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cflib.grading.wire import DecodeError

__all__ = [
    "AnswerError",
    "Check",
    "CheckResult",
    "Exercise",
    "MissingAnswer",
    "Outcome",
    "ProbeError",
    "Student",
    "Submission",
    "exercise_numbers",
    "failed",
    "load_exercise",
    "normalise_number",
    "partial",
    "passed",
    "probe_source",
    "run_check",
]


@dataclass(frozen=True)
class Outcome:
    """What a check concluded: ``fraction`` of its points, and a message for the student."""

    passed: bool
    message: str
    fraction: float


def passed(message: str) -> Outcome:
    """Full points."""
    return Outcome(True, message, 1.0)


def failed(message: str) -> Outcome:
    """No points; the message says what was expected and what was found."""
    return Outcome(False, message, 0.0)


def partial(fraction: float, message: str) -> Outcome:
    """``fraction`` (in [0, 1]) of the points; passed only when the fraction is 1."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    return Outcome(fraction == 1.0, message, fraction)


@dataclass(frozen=True)
class CheckResult:
    """One graded check, as it appears in the report.

    A ``manual`` check grades a written answer that a person marks: its ``message`` is what the
    automatic check found (whether an answer is there), its ``status`` is ``"awaiting marking"``
    (0 points) until :mod:`cflib.grading.manual` merges the marker's points and ``comment`` in
    (``"marked"``); ``answer`` is the student's text. Other checks have ``status`` ``"graded"``.
    """

    name: str
    points: float
    max_points: float
    passed: bool
    message: str
    hidden: bool = False
    manual: bool = False
    status: str = "graded"
    comment: str | None = None
    answer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "hidden": self.hidden,
            "message": self.message,
            "manual": self.manual,
            "status": self.status,
            "comment": self.comment,
            "answer": self.answer,
        }


class MissingAnswer(Exception):
    """A name the check grades is not defined in the notebook."""

    def __init__(self, names: list[str]):
        super().__init__(", ".join(names))
        self.names = names


class AnswerError(Exception):
    """The student's code raised when called (``call`` shows the call, e.g. ``f(3, 1)``)."""

    def __init__(self, call: str, type_name: str, message: str):
        super().__init__(f"{call} raised {type_name}: {message}")
        self.call, self.type_name, self.message = call, type_name, message


class ProbeError(Exception):
    """The probe gave no usable result (timeout, dead kernel, output that is not plain data)."""


class Submission(Protocol):
    """Where the student's code runs: the grader's kernel, or the notebook itself."""

    def run_probe(self, source: str, function: str, args: list[Any], needs: list[str]) -> Any:
        """Run a probe and return its raw result (the dict documented in :mod:`.probe`)."""

    def written_answer(self, name: str) -> str | None:
        """The Markdown text under the heading ``Answer: name``; None if there is none."""


@cache
def probe_source(probe: Callable[..., Any]) -> str:
    """What travels into the kernel: :mod:`.wire`'s source, then the probe's (no decorators).

    So a probe may use the names of :mod:`.wire` as globals (the exercise module imports them at
    its top, which makes them globals there too), and they are the grader's own code, whatever the
    kernel's copy of cflib looks like; it imports anything else inside its body.
    """
    from cflib.grading import wire

    return inspect.getsource(wire) + "\n\n" + textwrap.dedent(inspect.getsource(probe))


def unpack(result: Any) -> Any:
    """The value of a probe's raw result, or the matching exception."""
    if not isinstance(result, dict) or len(result) != 1:
        raise ProbeError("the probe's result could not be read")
    (kind, value), *_ = result.items()
    if kind == "value":
        return value
    if kind == "missing" and isinstance(value, list):
        raise MissingAnswer([str(v) for v in value])
    if kind == "raised" and isinstance(value, dict):
        raise AnswerError(*(str(value.get(k, "?")) for k in ("call", "type", "message")))
    if kind == "probe_failed":
        raise ProbeError(f"the answer could not be used: {value}")
    raise ProbeError("the probe's result could not be read")


class Student:
    """What a check sees of the submission: ``call`` probes and ``written_answer`` texts."""

    def __init__(self, submission: Submission, needs: Iterable[str]):
        self._submission = submission
        self._needs = list(needs)

    def call(self, probe: Callable[..., Any], *args: Any) -> Any:
        """Run ``probe(answers, *args)`` where the student's code lives; return its plain data.

        Raises:
            MissingAnswer: a name the check grades is not defined.
            AnswerError: the student's code raised.
            ProbeError: no usable result.
        """
        args_list = json.loads(json.dumps(list(args)))
        result = self._submission.run_probe(
            probe_source(probe), probe.__name__, args_list, self._needs
        )
        return unpack(result)

    def written_answer(self, name: str) -> str | None:
        return self._submission.written_answer(name)


@dataclass(frozen=True)
class Check:
    """A registered check: its function, points, the names it grades, and whether it is hidden."""

    name: str
    function: Callable[[Student, np.random.Generator], Outcome]
    points: float
    answers: tuple[str, ...]
    hidden: bool
    manual: bool = False
    module: str = ""

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.function) or self.name).splitlines()[0]


def _describe_failure(error: Exception, check: Check | None = None) -> str:
    if check is not None and len(check.answers) > 1:  # say which other answer the check needs
        first = check.answers[0]
        other = [
            name
            for name in check.answers[1:]
            if (isinstance(error, MissingAnswer) and name in error.names)
            or (
                isinstance(error, AnswerError)
                and error.type_name == "NotImplementedError"
                and error.call.startswith(name + "(")
            )
        ]
        if other and not (isinstance(error, MissingAnswer) and first in error.names):
            names = ", ".join(f"`{n}`" for n in other)
            return (
                f"not graded yet: this check of `{first}` also needs {names}, which is not "
                "answered yet (it is missing or raises NotImplementedError); it runs once both are"
            )
    if isinstance(error, MissingAnswer):
        names = ", ".join(f"`{n}`" for n in error.names)
        return (
            f"expected {names} to be defined after running the notebook, found no such name "
            "(not answered, renamed or deleted?)"
        )
    if isinstance(error, AnswerError):
        if error.type_name == "DelegationError":
            return (
                f"earns nothing: {error.call} called cflib's own implementation of what this "
                f"answer must implement ({error.message.split(' is disabled')[0]}); write it "
                "yourself (helpers that are not the thing asked stay allowed)"
            )
        if error.type_name == "NotImplementedError":
            return f"not answered yet: {error.call} raised NotImplementedError"
        return f"{error.call} raised {error.type_name}: {error.message}"
    if isinstance(error, DecodeError | ProbeError):
        return str(error)
    return f"could not be checked: {type(error).__name__}: {error}"


def check_seed(seed: int, name: str) -> np.random.Generator:
    """The generator a check gets: independent per check, fixed by the grading seed."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def run_check(check: Check, submission: Submission, seed: int) -> CheckResult:
    """Run one check; whatever happens (the student's code raising included) becomes a result."""
    try:
        outcome = check.function(Student(submission, check.answers), check_seed(seed, check.name))
        if not isinstance(outcome, Outcome):
            raise TypeError(f"check {check.name} returned {type(outcome).__name__}, not an Outcome")
    except Exception as error:
        outcome = failed(_describe_failure(error, check))
    return CheckResult(
        name=check.name,
        points=round(check.points * outcome.fraction, 6),
        max_points=check.points,
        passed=outcome.passed,
        message=outcome.message,
        hidden=check.hidden,
        manual=check.manual,
    )


@dataclass
class Exercise:
    """An exercise: its number, title, notebook, checks in order, and what its answers may not use.

    One source, two files: ``checks/exNN.py`` defines the exercise and its *public* checks (no
    reference answers, no expected values: they ship to students), and ``checks/exNN_hidden.py``
    registers the *hidden* checks and the references they compare with (instructors only; the
    student edition leaves the file out). The public file declares how many hidden checks there are
    and what they are worth (``hidden_checks``, ``hidden_points``), so that a student's feedback can
    say so; loading both files verifies the declaration.

    Attributes:
        forbidden: for an answer name, the cflib objects (``"cflib.masks.checkerboard_mask"``) that
            implement the very thing asked. While a notebook is graded they are replaced by stubs
            that raise (see :mod:`cflib.grading.sandbox`), so an answer that only calls them earns
            nothing for that part.
        time_limit: seconds for all of the notebook's cells together when graded (the default of
            ``--timeout``), a few times its solution's measured time.
    """

    number: str
    title: str
    notebook: str
    hidden_checks: int = 0
    hidden_points: float = 0.0
    forbidden: dict[str, tuple[str, ...]] = field(default_factory=dict)
    time_limit: float = 120.0
    checks: list[Check] = field(default_factory=list)

    def check(
        self, *, points: float, answers: Iterable[str], hidden: bool = False, manual: bool = False
    ) -> Callable[[Callable[[Student, np.random.Generator], Outcome]], Check]:
        """Decorator registering ``function(student, rng) -> Outcome`` as a check.

        Args:
            points: what the check is worth.
            answers: the names it grades (functions, variables, or written answers); they must be
                defined in the notebook for the check to run.
            hidden: run only when graded; the notebook shows how many such checks there are.
            manual: a person marks it (a written answer, exactly one in ``answers``); the check
                function only says whether an answer is there, and its points wait for the marks
                (see :mod:`cflib.grading.manual`).
        """
        answers = tuple(answers)

        def register(function: Callable[[Student, np.random.Generator], Outcome]) -> Check:
            if any(c.name == function.__name__ for c in self.checks):
                raise ValueError(f"exercise {self.number}: two checks named {function.__name__}")
            if points <= 0:
                raise ValueError(f"points: expected a positive number, got {points}")
            if hidden != function.__module__.endswith("_hidden"):
                where = "checks/exNN_hidden.py" if hidden else "checks/exNN.py"
                raise ValueError(
                    f"exercise {self.number}: check {function.__name__} is "
                    f"{'hidden' if hidden else 'public'}, so it belongs in {where}"
                )
            if manual and len(answers) != 1:
                raise ValueError(
                    f"exercise {self.number}, check {function.__name__}: a manual check marks "
                    f"exactly one written answer, got answers={list(answers)}"
                )
            made = Check(
                function.__name__,
                function,
                float(points),
                answers,
                hidden,
                manual=manual,
                module=function.__module__,
            )
            self.checks.append(made)
            return made

        return register

    @property
    def has_hidden(self) -> bool:
        """Whether the hidden checks are loaded (the instructor's tree), not only declared."""
        return any(c.hidden for c in self.checks)

    @property
    def max_score(self) -> float:
        public = sum(c.points for c in self.checks if not c.hidden)
        return public + self.hidden_points

    @property
    def forbidden_objects(self) -> list[str]:
        """Every cflib object that some answer of this exercise may not call, once each."""
        return list(dict.fromkeys(name for names in self.forbidden.values() for name in names))

    @property
    def answer_names(self) -> list[str]:
        return list(dict.fromkeys(name for c in self.checks for name in c.answers))

    def select(self, names: Iterable[str] = ()) -> list[Check]:
        """The checks grading any of ``names`` (all checks when ``names`` is empty)."""
        wanted = set(names)
        return [c for c in self.checks if not wanted or wanted & set(c.answers)]


def normalise_number(number: int | str) -> str:
    """``1``, ``"1"`` or ``"01"`` -> ``"01"``."""
    text = str(number).strip()
    if not text.isdigit():
        raise ValueError(f"exercise: expected an exercise number such as '01', got {number!r}")
    return f"{int(text):02d}"


CHECKS_ENV = "CFLIB_CHECKS"
_PACKAGE = "cflib_checks"


def checks_dir() -> Path:
    """The folder of the exercises' checks.

    ``$CFLIB_CHECKS`` when set, else the ``checks/`` folder beside the ``cflib`` package (a course
    checkout, the instructor's or a student's). The library that practitioners install has none.

    Raises:
        ValueError: no such folder.
    """
    import cflib

    given = os.environ.get(CHECKS_ENV)
    folder = Path(given) if given else Path(cflib.__file__).resolve().parents[1] / "checks"
    if not (folder / "__init__.py").is_file():
        where = f"${CHECKS_ENV}={given}" if given else str(folder)
        raise ValueError(
            f"exercise: no exercise checks at {where} (the checks ship with the course, not with "
            f"the library; set {CHECKS_ENV} to the course's checks/ folder)"
        )
    return folder


def _package() -> Any:
    """The checks folder, imported as the package ``cflib_checks`` (once)."""
    folder = checks_dir()
    module = sys.modules.get(_PACKAGE)
    if module is not None and Path(module.__file__).parent == folder:
        return module
    for name in [n for n in sys.modules if n == _PACKAGE or n.startswith(_PACKAGE + ".")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        _PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def exercise_numbers() -> list[str]:
    """The numbers of all exercises that have checks (``checks/exNN.py``)."""
    folder = checks_dir()
    found = (p.stem for p in folder.glob("ex*.py"))
    return sorted(name[2:] for name in found if name[2:].isdigit())


def load_exercise(number: int | str) -> Exercise:
    """The :class:`Exercise` of ``checks/exNN.py``, with the hidden checks of
    ``checks/exNN_hidden.py`` when that file is there.

    Raises:
        ValueError: no such exercise, or hidden checks that differ from what the exercise declares.
    """
    key = normalise_number(number)
    if key not in exercise_numbers():
        known = ", ".join(exercise_numbers()) or "none"
        raise ValueError(f"exercise: no checks for exercise {key} (known: {known})")
    package = _package()
    module = importlib.import_module(f"{package.__name__}.ex{key}")
    exercise = getattr(module, "EXERCISE", None)
    if not isinstance(exercise, Exercise):
        raise ValueError(f"exercise: {module.__file__} defines no EXERCISE")
    if (checks_dir() / f"ex{key}_hidden.py").is_file():
        importlib.import_module(f"{package.__name__}.ex{key}_hidden")
        hidden = [c for c in exercise.checks if c.hidden]
        points = sum(c.points for c in hidden)
        if len(hidden) != exercise.hidden_checks or points != exercise.hidden_points:
            raise ValueError(
                f"exercise {key}: ex{key}.py declares {exercise.hidden_checks} hidden checks worth "
                f"{exercise.hidden_points:g} points, ex{key}_hidden.py defines {len(hidden)} worth "
                f"{points:g}"
            )
    return exercise
