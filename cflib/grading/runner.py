"""Grade notebooks: each on a copy, in its own kernel, with time limits; verdicts computed here.

For each notebook the runner

1. copies it into a fresh temporary folder (the submitted file is only read, never written);
2. starts a kernel of the current Python there and runs the code cells in order, all of them
   together within ``timeout`` seconds; a cell that raises does not stop the next ones (its error is
   reported), a timeout or a dead kernel stops the run;
3. runs every check of the exercise (public and hidden) *in this process*. A check reaches the
   student's objects only through probes: code sent as text into the kernel, which calls the answers
   on inputs the check drew from a seed chosen now, and prints plain data between two copies of a
   fresh random token. Only the output of that probe cell is read, only if it holds exactly one such
   payload, and only as JSON data (sympy objects are rebuilt without ``eval``), so nothing the
   notebook printed, redefined or hard-coded can pass for a result.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

from cflib.grading import probe, sandbox
from cflib.grading.checks import (
    CheckResult,
    Exercise,
    ProbeError,
    exercise_numbers,
    load_exercise,
    normalise_number,
    run_check,
)
from cflib.grading.kernel import Kernel
from cflib.grading.markdown import written_answers
from cflib.grading.sandbox import Limits

__all__ = [
    "CellError",
    "GradingOptions",
    "NotebookResult",
    "exercise_of",
    "find_notebooks",
    "grade_notebook",
    "grade_notebooks",
]


@dataclass(frozen=True)
class GradingOptions:
    """Limits and seed of a grading run.

    Attributes:
        timeout: seconds for all of a notebook's own cells together; None: the exercise's own
            ``time_limit`` (a few times its solution's measured time).
        probe_timeout: seconds for each probe (one call of the student's code by a check).
        seed: the seed every check's inputs derive from; None draws one now.
        startup_timeout: seconds for a kernel to start, per attempt (a kernel that does not answer
            in time is started again, up to ``kernel.STARTUP_ATTEMPTS`` times).
        threads: CPU threads each kernel may use (``OMP_NUM_THREADS``); None leaves it unset.
        sandbox: ``"auto"``, ``"bwrap"`` or ``"none"`` (see :mod:`.sandbox`).
        limits: memory, processes and file size of each notebook (see :class:`.sandbox.Limits`).
    """

    timeout: float | None = None
    probe_timeout: float = 30.0
    seed: int | None = None
    startup_timeout: float = 60.0
    threads: int | None = None
    sandbox: str = "auto"
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class CellError:
    """A code cell that raised: its number as Jupyter shows it (``In [n]``, code cells only) and the
    exception."""

    cell: int
    ename: str
    evalue: str


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2026-12-03T10:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class NotebookResult:
    """The grade of one notebook; :meth:`to_json` gives the report's documented shape."""

    notebook: str
    exercise: str | None
    score: float
    max_score: float
    checks: list[CheckResult]
    error: str | None
    seed: int = 0
    seconds: float = 0.0
    cell_errors: list[CellError] = field(default_factory=list)
    sandbox: str = "none"
    student: str | None = None  # the roster login, set by the caller (cflib.grade)
    graded_at: str = field(default_factory=utc_now)  # when the result was made
    grader_version: str = ""  # set by the caller (cflib.grading.version)

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "exercise": self.exercise,
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "seed": self.seed,
            "graded_at": self.graded_at,
            "sandbox": self.sandbox,
            "grader_version": self.grader_version,
            "checks": [c.to_json() for c in self.checks],
            "error": self.error,
        }


def find_notebooks(paths: Iterable[str | Path]) -> list[Path]:
    """Notebooks named in ``paths``: files as given, folders searched recursively (hidden folders,
    ``_build`` and checkpoints skipped), in a stable order without duplicates.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not a ``.ipynb`` notebook.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*.ipynb"))
                if not any(
                    part.startswith(".") or part == "_build" for part in p.relative_to(path).parts
                )
            )
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise ValueError(f"{path}: expected a .ipynb notebook or a folder")
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def exercise_of(nb: Any, path: Path) -> str | None:
    """The exercise number: notebook metadata ``cflib.exercise``, else the file name ``NN_*``."""
    meta = nb.get("metadata", {}).get("cflib", {})
    if isinstance(meta, dict) and meta.get("exercise") is not None:
        try:
            return normalise_number(meta["exercise"])
        except ValueError:
            return None
    match = re.match(r"(\d+)_", path.name)
    return f"{int(match.group(1)):02d}" if match else None


def probe_cell(token: str, source: str, function: str, args: list[Any], needs: list[str]) -> str:
    """The code of a probe cell: define the harness in a fresh scope, run the probe, print."""
    harness = inspect.getsource(probe)
    return (
        "def _cflib_probe_():\n"
        "    import builtins\n"
        "    scope = {'__name__': 'cflib_probe_harness'}\n"
        f"    builtins.exec({harness!r}, scope)\n"
        f"    scope['emit'](globals(), {token!r}, {source!r}, {function!r}, "
        f"{json.dumps(args)!r}, {list(needs)!r})\n"
        "_cflib_probe_()\n"
        "del _cflib_probe_\n"
    )


class KernelSubmission:
    """A notebook that has run in a kernel, seen by checks (which run in worker threads)."""

    def __init__(
        self,
        kernel: Kernel,
        loop: asyncio.AbstractEventLoop,
        answers: dict[str, str],
        probe_timeout: float,
        problem: str | None,
        unreached: dict[str, int] | None = None,
    ):
        self._kernel, self._loop, self._answers = kernel, loop, answers
        self._probe_timeout, self._problem = probe_timeout, problem
        self._unreached = unreached or {}

    def run_probe(self, source: str, function: str, args: list[Any], needs: list[str]) -> Any:
        if self._kernel.dead:
            raise ProbeError(f"could not be checked: {self._problem or 'the kernel stopped'}")
        token = f"cflib{secrets.token_hex(16)}"
        code = probe_cell(token, source, function, args, needs)
        run = self._kernel.execute(code, self._probe_timeout, capture=True, store_history=False)
        execution = asyncio.run_coroutine_threadsafe(run, self._loop).result(
            self._probe_timeout + 60
        )
        if execution.status == "timeout":
            if self._kernel.dead:
                self._problem = (
                    f"an answer ran past {self._probe_timeout:g} s and ignored the interrupt, "
                    "so the kernel was stopped"
                )
            raise ProbeError(
                f"the answer did not return within {self._probe_timeout:g} s on the grader's inputs"
            )
        if execution.status == "dead":
            raise ProbeError("the kernel died while the answer was being checked")
        payloads = re.findall(
            re.escape(token) + r"(.*?)" + re.escape(token), execution.stdout, re.S
        )
        if len(payloads) != 1:
            raise ProbeError(
                f"expected one result from the notebook's kernel, found {len(payloads)} "
                "(does the notebook print from hooks or redirect its output?)"
            )
        try:
            result = json.loads(payloads[0])
        except ValueError as error:
            raise ProbeError("the result from the notebook's kernel could not be read") from error
        missing = result.get("missing") if isinstance(result, dict) else None
        if isinstance(missing, list) and missing and all(m in self._unreached for m in missing):
            where = ", ".join(f"`{m}` (In [{self._unreached[m]}])" for m in missing)
            raise ProbeError(f"not reached: {self._problem} before {where} was defined")
        return result

    def written_answer(self, name: str) -> str | None:
        return self._answers.get(name)


@dataclass
class _Run:
    """How running a notebook's cells went: cells that raised, why it stopped (None: it did
    not), and the In [n] number of each code cell not run to the end."""

    errors: list[CellError]
    problem: str | None
    not_run: dict[int, str]


def _limit_reason(ename: str, evalue: str, limits: Limits) -> str | None:
    """The resource limit a cell's error shows, named for the report; None if none."""
    text = f"{ename}: {evalue}"
    if ename == "MemoryError" or re.search(r"can't allocate memory|Cannot allocate memory", text):
        return f"hit the memory limit ({limits.memory_text})"
    if "Errno 27" in text or "File too large" in text:
        return f"hit the file-size limit ({limits.file_size_text})"
    if "Errno 11" in text and re.search(r"fork|thread|spawn|Resource temporarily", text):
        return f"hit the limit on processes and threads ({limits.processes})"
    return None


async def _run_cells(kernel: Kernel, nb: Any, timeout: float, limits: Limits) -> _Run:
    """Run the code cells in order within ``timeout`` seconds in all."""
    errors: list[CellError] = []
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    deadline = time.monotonic() + timeout

    def stop(number: int, problem: str) -> _Run:
        rest = {n: c.source for n, c in enumerate(code, start=1) if n >= number}
        return _Run(errors, problem, rest)

    for number, cell in enumerate(code, start=1):
        left = deadline - time.monotonic()
        if left <= 0:
            return stop(
                number, f"timed out after {timeout:g} s; In [{number}] and later were not run"
            )
        execution = await kernel.execute(cell.source, left)
        if execution.status == "error":
            reason = _limit_reason(execution.ename, execution.evalue, limits)
            evalue = f"{reason}: {execution.evalue}" if reason else execution.evalue
            errors.append(CellError(number, execution.ename, evalue))
        elif execution.status == "timeout":
            text = f"timed out after {timeout:g} s in In [{number}]"
            if kernel.dead:
                return stop(number, text + ", ignored the interrupt and was stopped")
            return stop(number, text + "; later cells were not run")
        elif execution.status == "dead":
            return stop(
                number,
                f"the kernel died while running In [{number}] (the limits are {limits.describe()}; "
                "a process killed for memory dies this way)",
            )
    return _Run(errors, None, {})


def defined_names(source: str) -> set[str]:
    """Names a cell defines at its top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _unreached(run: _Run, answers: Iterable[str]) -> dict[str, int]:
    """Graded names defined only in cells that were not run to the end: name -> In [n]."""
    found: dict[str, int] = {}
    wanted = set(answers)
    for number, source in sorted(run.not_run.items()):
        for name in defined_names(source) & wanted:
            found.setdefault(name, number)
    return found


def _error_text(problem: str | None, errors: list[CellError]) -> str | None:
    """The report's ``error``: a stop (timeout, dead kernel) and cells that raised.

    ``NotImplementedError`` is what an unanswered stub raises: the checks report it, not ``error``.
    """
    raised = [e for e in errors if e.ename != "NotImplementedError"]
    parts = [problem] if problem else []
    if raised:
        first = raised[0]
        text = f"In [{first.cell}] raised {first.ename}: {first.evalue}"[:300]
        if len(raised) > 1:
            text += f" (and {len(raised) - 1} more cells raised errors)"
        parts.append(text)
    return "; ".join(parts) or None


def _ungraded(
    name: str, spec: Exercise | None, number: str | None, error: str, seed: int, sandbox: str
) -> NotebookResult:
    checks = [
        CheckResult(c.name, 0.0, c.points, False, f"not graded: {error}", c.hidden)
        for c in (spec.checks if spec else [])
    ]
    max_score = spec.max_score if spec else 0.0
    return NotebookResult(name, number, 0.0, max_score, checks, error, seed, sandbox=sandbox)


async def grade_notebook(
    path: str | Path, options: GradingOptions = GradingOptions(), seed: int | None = None
) -> NotebookResult:
    """Grade one notebook (see the module's docstring); never raises for a bad notebook.

    ``seed`` (else ``options.seed``, else one drawn now) fixes the inputs the checks choose.
    ``options.sandbox`` should be resolved already (:func:`.sandbox.resolve`); ``"auto"`` is
    resolved here.
    """
    path = Path(path)
    if seed is None:
        seed = options.seed if options.seed is not None else secrets.randbits(32)
    kind = sandbox.resolve(options.sandbox)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cflib-grade-") as folder:
        root = Path(folder)
        work, home = root / "work", root / "home"
        work.mkdir()
        home.mkdir()
        copy = work / path.name
        try:
            shutil.copyfile(path, copy)
            nb = nbformat.read(copy, as_version=4)
        except Exception as error:
            text = f"not a readable notebook: {type(error).__name__}: {error}"[:300]
            return _ungraded(str(path), None, exercise_of({}, path), text, seed, kind)
        number = exercise_of(nb, path)
        if number is None:
            text = "cannot tell which exercise this is (no cflib metadata, no NN_ file name)"
            return _ungraded(str(path), None, None, text, seed, kind)
        try:
            spec = load_exercise(number)
        except ValueError as error:
            return _ungraded(str(path), None, number, str(error), seed, kind)
        library = sandbox.disabled_cflib(number, spec.forbidden_objects, root / "lib")
        env = sandbox.kernel_env(options.threads, str(home))

        def command(runtime: Path) -> list[str]:
            argv, _ = sandbox.kernel_command(
                kind, options.limits, env, workdir=root, runtime=runtime, cflib_copy=library
            )
            return [*cap, *argv]

        _, process_env = sandbox.kernel_command(
            kind, options.limits, env, workdir=root, runtime=root, cflib_copy=library
        )
        timeout = options.timeout if options.timeout is not None else spec.time_limit
        try:
            with sandbox.process_cap(options.limits.processes) as cap:
                async with Kernel(work, process_env, options.startup_timeout, command) as kernel:
                    run = await _run_cells(kernel, nb, timeout, options.limits)
                    submission = KernelSubmission(
                        kernel,
                        asyncio.get_running_loop(),
                        written_answers(nb.cells),
                        options.probe_timeout,
                        run.problem,
                        _unreached(run, spec.answer_names),
                    )
                    checks = [
                        await asyncio.to_thread(run_check, c, submission, seed) for c in spec.checks
                    ]
        except Exception as error:
            text = f"the kernel could not be run: {type(error).__name__}: {error}"[:700]
            return _ungraded(str(path), spec, number, text, seed, kind)
    return NotebookResult(
        notebook=str(path),
        exercise=number,
        score=round(sum(c.points for c in checks), 6),
        max_score=spec.max_score,
        checks=checks,
        error=_error_text(run.problem, run.errors),
        seed=seed,
        seconds=time.monotonic() - start,
        cell_errors=run.errors,
        sandbox=kind,
    )


def grade_notebooks(
    paths: Sequence[str | Path],
    options: GradingOptions = GradingOptions(),
    jobs: int = 1,
    progress: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Grade notebooks, ``jobs`` at once, all with one seed; results in the order of ``paths``."""
    if jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, got {jobs}")
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    options = replace(options, sandbox=sandbox.resolve(options.sandbox))
    for number in exercise_numbers():  # load every check before any student code runs
        load_exercise(number)

    async def main() -> list[NotebookResult]:
        gate = asyncio.Semaphore(jobs)

        async def one(path: str | Path) -> NotebookResult:
            async with gate:
                result = await grade_notebook(path, options, seed)
            if progress is not None:
                progress(result)
            return result

        return list(await asyncio.gather(*(one(p) for p in paths)))

    return asyncio.run(main())
