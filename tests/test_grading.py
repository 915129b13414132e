"""The grading machinery and exercise 01, end to end.

Kernel start-ups dominate, so the notebooks are graded in two batches started together, through the
real command line (``python -m cflib.grade``), once per session (shared between pytest-xdist workers
through a lock file), and many tests read their reports: batch A (all
solutions and exercises, wrong answers derived from the solution, cheating, crashing and deleting
notebooks) and batch B (the two notebooks that never end, with a short timeout).
"""

from __future__ import annotations

import csv
import dis
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import numpy as np
import pytest
import sympy as sp
from filelock import FileLock

from cflib.grade import main as grade_main
from cflib.grading import check, exercise_numbers, load_exercise
from cflib.grading import probe as probe_harness
from cflib.grading.checks import probe_source
from cflib.grading.generate import content_hash, generate, main, strip_code, strip_markdown
from cflib.grading.markdown import ANSWER_PROMPT, answer_text, written_answers
from cflib.grading.report import CSV_COLUMNS
from cflib.grading.runner import exercise_of, find_notebooks
from cflib.grading.wire import DecodeError, decode_matrix, encode_matrix, make_real, parse_srepr

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "grading_fixtures"
SOLUTION_01 = ROOT / "solutions" / "01_affine_jacobian.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9]*_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9]*_*.ipynb"))
BAD = [
    "raises",
    "deletes_answers",
    "cheats",
    "forges_output",
    "warns",
    "no_exercise",
]
HANGING = ["hangs", "hangs_hard"]

# Wrong answers: each exercise lists its own in tests/wrong_answers/exNN.py as
# WRONG = {name: ({old: new, ...}, {checks that must fail})}, each a small change of the solution.
WRONG: dict[str, tuple[Path, dict[str, str], set[str]]] = {}
# Delegation: DELEGATION = {name: ({old: new}, {checks that must fail})} in the same files, answers
# that only call cflib's own implementation of the thing asked (disabled while grading).
DELEGATION: dict[str, tuple[Path, dict[str, str], set[str]]] = {}
for _module in sorted((ROOT / "tests" / "wrong_answers").glob("ex[0-9][0-9].py")):
    _spec = importlib.util.spec_from_file_location(f"wrong_{_module.stem}", _module)
    _wrong = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_wrong)
    _solution = next((ROOT / "solutions").glob(f"{_module.stem[2:]}_*.ipynb"))
    for _name, (_replace, _failing) in _wrong.WRONG.items():
        WRONG[_name] = (_solution, _replace, _failing)
    for _name, (_replace, _failing) in getattr(_wrong, "DELEGATION", {}).items():
        DELEGATION[_name] = (_solution, _replace, _failing)


def _variant(folder: Path, name: str, solution: Path, replace: dict[str, str]) -> Path:
    """The solution with one change, without its demonstration and check cells (faster)."""
    nb = nbformat.read(solution, as_version=4)
    for old, new in replace.items():
        cells = [c for c in nb.cells if old in c.source]
        assert len(cells) == 1, f"{old!r} is not in exactly one cell of the solution"
        cells[0].source = cells[0].source.replace(old, new)
    nb.cells = [c for c in nb.cells if not c.get("id", "").startswith(("show-", "check-"))]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _grade(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cflib.grade", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_batches(folder: Path) -> dict:
    variants = {
        name: _variant(folder, name, *spec[:2]) for name, spec in {**WRONG, **DELEGATION}.items()
    }
    variants["not_a_notebook"] = folder / "not_a_notebook.ipynb"
    variants["not_a_notebook"].write_text('{"cells": [')
    batch_a = [*SOLUTIONS, *EXERCISES, *variants.values(), *(FIXTURES / f"{n}.ipynb" for n in BAD)]
    batch_b = [FIXTURES / f"{n}.ipynb" for n in HANGING]
    before = {str(p): _sha(p) for p in [*batch_a, *batch_b]}
    a = _grade(
        *batch_a, "--jobs", 2, "--timeout", 120, "--seed", 2024, "--min-score", 0.5,
        "--json", folder / "a.json", "--csv", folder / "a.csv", "--markdown", folder / "md",
    )  # fmt: skip
    b = _grade(*batch_b, "--jobs", 2, "--timeout", 3, "--min-score", 0, "--json", folder / "b.json")
    out_a, err_a = a.communicate(timeout=1800)  # a guard against a hang, not a time limit
    _, err_b = b.communicate(timeout=1800)
    assert a.returncode in (0, 1), err_a
    assert b.returncode in (0, 1), err_b
    runs = json.loads((folder / "a.json").read_text()) + json.loads((folder / "b.json").read_text())
    paths = {**variants, **{n: FIXTURES / f"{n}.ipynb" for n in BAD + HANGING}}
    return {
        "json": runs,
        "paths": {name: str(path) for name, path in paths.items()},
        "before": before,
        "codes": [a.returncode, b.returncode],
        "stdout": out_a,
        "folder": str(folder),
        "count_a": len(batch_a),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two grading runs, once per test session even when pytest-xdist splits this module
    between workers (the first one runs them, the others wait for its results)."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if uid is None:
        data = _run_batches(tmp_path_factory.mktemp("grading"))
    else:
        folder = tmp_path_factory.getbasetemp().parent / f"grading-{uid}"
        with FileLock(f"{folder}.lock"):
            if not (folder / "done.json").exists():
                folder.mkdir(exist_ok=True)
                (folder / "done.json").write_text(json.dumps(_run_batches(folder)))
            data = json.loads((folder / "done.json").read_text())
    data["by_path"] = {Path(r["notebook"]).resolve(): r for r in data["json"]}
    data["folder"] = Path(data["folder"])
    return data


def _result(graded: dict, name_or_path: str | Path) -> dict:
    path = graded["paths"].get(name_or_path, name_or_path)
    return graded["by_path"][Path(path).resolve()]


def _failing(result: dict) -> set[str]:
    """The automatic checks that failed (written answers await marking by a person)."""
    return {c["name"] for c in result["checks"] if not c["passed"] and not c["manual"]}


def _awaiting(result: dict) -> float:
    """The points of the written answers, which count 0 until a person marks them."""
    return sum(c["max_points"] for c in result["checks"] if c["status"] == "awaiting marking")


def test_solutions_score_full_marks(graded: dict) -> None:
    assert SOLUTIONS
    for path in SOLUTIONS:
        result = _result(graded, path)
        assert result["error"] is None, path
        assert result["max_score"] > 0
        written = load_exercise(result["exercise"]).checks
        assert _awaiting(result) == sum(c.points for c in written if c.manual)
        assert result["score"] == result["max_score"] - _awaiting(result), (path, _failing(result))


def test_untouched_exercises_score_zero(graded: dict) -> None:
    assert [p.name for p in EXERCISES] == [p.name for p in SOLUTIONS]
    for path in EXERCISES:
        result = _result(graded, path)
        # error is None: running the exercise top to bottom raised nothing but NotImplementedError
        assert result["error"] is None, (path, result["error"])
        assert result["score"] == 0
        assert result["checks"] and not any(c["passed"] for c in result["checks"])
        for c in result["checks"]:
            assert "NotImplementedError" in c["message"] or "only the prompt" in c["message"], c


def test_each_wrong_answer_loses_exactly_its_points(graded: dict) -> None:
    assert len({solution for solution, _, _ in WRONG.values()}) == len(SOLUTIONS)
    for solution in SOLUTIONS:  # at least three plausible mistakes per exercise
        assert sum(spec[0] == solution for spec in WRONG.values()) >= 3, solution.name
    for name, (_, _, failing) in WRONG.items():
        result = _result(graded, name)
        assert _failing(result) == failing, name
        lost = sum(c["max_points"] for c in result["checks"] if c["name"] in failing)
        assert lost > 0 and result["score"] == result["max_score"] - lost - _awaiting(result), name
        for c in result["checks"]:
            assert c["message"] and c["points"] == (c["max_points"] if c["passed"] else 0)


def test_answers_that_only_call_cflib_earn_nothing_for_that_part(graded: dict) -> None:
    numbers = {spec[0].name[:2] for spec in DELEGATION.values()}
    asked = {n for n in exercise_numbers() if load_exercise(n).forbidden}
    assert asked >= {"01", "03", "04"}  # the exercises that ask for something cflib implements
    assert numbers == asked, "a delegation answer for every exercise with forbidden objects"
    for name, (_, _, failing) in DELEGATION.items():
        result = _result(graded, name)
        assert failing and _failing(result) >= failing, name
        messages = [c["message"] for c in result["checks"] if c["name"] in failing]
        assert any("earns nothing" in m for m in messages), (name, messages)
        assert all(c["points"] == 0 for c in result["checks"] if c["name"] in failing)


def test_wrong_answer_messages_say_what_was_expected_and_found(graded: dict) -> None:
    messages = {c["name"]: c["message"] for c in _result(graded, "wrong_block")["checks"]}
    assert "rows 1.." in messages["upper_right_block_slices"]
    assert "found" in messages["upper_right_block_slices"]
    unsimplified = _result(graded, "log_det_not_simplified")["checks"]
    assert (
        "log, exp or Abs left"
        in {c["name"]: c["message"] for c in unsimplified}["log_abs_det_is_sum_of_scales"]
    )


def test_warnings_and_printed_text_cost_nothing(graded: dict) -> None:
    result = _result(graded, "warns")
    assert result["error"] is None
    assert {c["name"] for c in result["checks"] if c["passed"]} == {"upper_right_block_slices"}


def test_cheating_gains_nothing(graded: dict) -> None:
    cheats = _result(graded, "cheats")
    assert cheats["score"] == 0 and cheats["error"] is None
    messages = {c["name"]: c["message"] for c in cheats["checks"]}
    # the hard-coded example is graded on other inputs, not reported as missing
    assert "found 3 x 3" in messages["jacobian_shape"]
    assert "differs" in messages["log_abs_det_is_sum_of_scales"]
    forged = _result(graded, "forges_output")
    assert forged["score"] == 0
    automatic = [c for c in forged["checks"] if not c["manual"]]
    assert automatic and all("expected one result" in c["message"] for c in automatic)


def test_a_crash_is_reported_and_later_answers_still_count(graded: dict) -> None:
    result = _result(graded, "raises")
    assert "In [3] raised ZeroDivisionError" in result["error"]  # numbered as Jupyter shows it
    assert {c["name"] for c in result["checks"] if c["passed"]} == {
        "upper_right_block_slices",
        "determinant_is_exp_of_sum",
    }
    assert result["score"] == 2


def test_a_notebook_that_never_ends_is_graded(graded: dict) -> None:
    hangs = _result(graded, "hangs")
    assert "timed out after 3 s in In [3]" in hangs["error"]
    assert {c["name"] for c in hangs["checks"] if c["passed"]} == {"upper_right_block_slices"}
    # an answer defined after the cell that hung is reported as not reached, not as deleted
    missing = {c["name"]: c["message"] for c in hangs["checks"]}["determinant_is_exp_of_sum"]
    assert "not reached" in missing and "`jacobian_determinant` (In [4])" in missing
    hard = _result(graded, "hangs_hard")
    assert "ignored the interrupt and was stopped" in hard["error"]
    assert hard["score"] == 0


def test_deleted_answers_are_reported_missing(graded: dict) -> None:
    result = _result(graded, "deletes_answers")
    assert result["score"] == 0 and result["error"] is None
    by_name = {c["name"]: c["message"] for c in result["checks"]}
    assert "`upper_right_block`" in by_name["upper_right_block_slices"]
    assert "no such name" in by_name["determinant_is_exp_of_sum"]


def test_unusable_notebooks_are_graded_with_a_reason(graded: dict) -> None:
    unknown = _result(graded, "no_exercise")
    assert unknown["exercise"] is None and "which exercise" in unknown["error"]
    broken = _result(graded, "not_a_notebook")
    assert broken["checks"] == [] and "not a readable notebook" in broken["error"]


def test_submitted_files_are_not_modified(graded: dict) -> None:
    assert {p: _sha(Path(p)) for p in graded["before"]} == graded["before"]


def test_json_has_exactly_the_documented_shape(graded: dict) -> None:
    assert len(graded["json"]) == graded["count_a"] + len(HANGING)
    for r in graded["json"]:
        assert list(r) == [
            "notebook", "exercise", "student", "score", "max_score", "seed", "graded_at",
            "sandbox", "grader_version", "checks", "error",
        ]  # fmt: skip
        assert isinstance(r["score"], float) and isinstance(r["max_score"], float)
        assert r["error"] is None or isinstance(r["error"], str)
        assert r["score"] == pytest.approx(sum(c["points"] for c in r["checks"]))
        for c in r["checks"]:
            assert list(c) == [
                "name", "points", "max_points", "passed", "hidden", "message", "manual", "status",
                "comment", "answer",
            ]  # fmt: skip
            assert isinstance(c["passed"], bool) and isinstance(c["message"], str)
    assert _result(graded, SOLUTION_01)["exercise"] == "01"


def test_csv_has_one_row_per_notebook(graded: dict) -> None:
    with open(graded["folder"] / "a.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == CSV_COLUMNS
    assert len(rows) == graded["count_a"]
    solution = next(r for r in rows if r["notebook"].endswith("solutions/01_affine_jacobian.ipynb"))
    # the written proof (1 point) awaits marking by a person
    assert (solution["score"], solution["max_score"], solution["percent"]) == ("9", "10", "90")
    assert solution["awaiting_marking"] == "1"


def test_markdown_feedback_and_printed_summary(graded: dict) -> None:
    files = sorted(p.name for p in (graded["folder"] / "md").iterdir())
    assert "summary.md" in files and len(files) == graded["count_a"] + 1
    feedback = next((graded["folder"] / "md").glob("*raises.md")).read_text()
    assert "2 of 10 points" in feedback and "ZeroDivisionError" in feedback
    assert "Exercise 01 (10 points)" in graded["stdout"]
    assert "80-100%" in graded["stdout"] and "(seed 2024)" in graded["stdout"]


def test_exit_codes_of_a_grading_run(graded: dict) -> None:
    assert graded["codes"] == [1, 0]  # --min-score 0.5 not reached; --min-score 0 reached


@pytest.mark.parametrize(
    "args",
    [
        ["no/such/notebook.ipynb"],
        [str(ROOT / "pyproject.toml")],
        [str(ROOT / "cflib")],  # a folder without notebooks
        [str(SOLUTION_01), "--min-score", "1.5"],
        [str(SOLUTION_01), "--jobs", "0"],
        [str(SOLUTION_01), "--timeout", "0"],
        [str(SOLUTION_01), "--jobs", "two"],
    ],
)
def test_unusable_arguments_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        grade_main(args)
    assert exit_info.value.code == 2


# --- the generator ------------------------------------------------------------------------------


def test_exercises_are_up_to_date_with_solutions() -> None:
    outcomes = generate(solutions=ROOT / "solutions", exercises=ROOT / "exercises", check=True)
    assert [o.path.name for o in outcomes] == [p.name for p in SOLUTIONS]
    assert {o.status for o in outcomes} == {"unchanged"}, "run: make exercises"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_generated_exercises_hide_solutions_and_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["mystnb"] == {"execution_mode": "off"}
    assert nb.metadata["cflib"]["exercise"] == path.name[:2]
    assert nb.metadata["cflib"]["generated_hash"] == content_hash(nb)
    text = path.read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    solution = nbformat.read(ROOT / "solutions" / path.name, as_version=4)
    stubs = sum(c.source.count("raise NotImplementedError(") for c in nb.cells)
    markers = sum(c.source.count("# BEGIN SOLUTION") for c in solution.cells)
    assert stubs == markers > 0


def test_exercise_01_keeps_no_line_of_the_solutions() -> None:
    text = (ROOT / "exercises" / SOLUTION_01.name).read_text()
    for line in ["J[:k, k:]", "sp.Matrix(y).jacobian(z)", "s.sum(dim=1)", "diag\\big(e^{s(z_a)}"]:
        assert line not in text
    assert ANSWER_PROMPT in text


def test_strip_code_and_markdown() -> None:
    source = "def f(x):\n    # BEGIN SOLUTION add one\n    y = x + 1\n    return y\n    # END SOLUTION\nf"
    assert strip_code(source) == 'def f(x):\n    raise NotImplementedError("add one")\nf'
    assert "Replace this line" in strip_code("# BEGIN SOLUTION\nx = 1\n# END SOLUTION")
    for bad in [
        "# BEGIN SOLUTION\nx = 1",
        "x = 1\n# END SOLUTION",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION",
    ]:
        with pytest.raises(ValueError, match="SOLUTION"):
            strip_code(bad, "cell 3")
    md = "Text\n<!-- BEGIN SOLUTION -->\nThe proof.\n<!-- END SOLUTION -->\nMore"
    assert strip_markdown(md) == f"Text\n{ANSWER_PROMPT}\nMore"
    with pytest.raises(ValueError, match="unbalanced"):
        strip_markdown("<!-- BEGIN SOLUTION -->\nno end")


def test_generation_refuses_to_overwrite_an_edited_notebook(tmp_path: Path) -> None:
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / SOLUTION_01.name).write_bytes(SOLUTION_01.read_bytes())
    target = exercises / SOLUTION_01.name
    assert [o.status for o in generate(solutions=solutions, exercises=exercises)] == ["written"]
    assert [o.status for o in generate(solutions=solutions, exercises=exercises)] == ["unchanged"]

    # Running the notebook (outputs, counts) is not an edit: it may be regenerated.
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="ran")]
    nb.cells[1].execution_count = 1
    nbformat.write(nb, target)
    assert [o.status for o in generate(solutions=solutions, exercises=exercises)] == ["written"]

    # An edited cell is: refused, the file untouched, unless forced.
    nb = nbformat.read(target, as_version=4)
    nb.cells[5].source += "\n# my work"
    nbformat.write(nb, target)
    edited = target.read_bytes()
    assert [o.status for o in generate(solutions=solutions, exercises=exercises)] == ["refused"]
    assert target.read_bytes() == edited
    argv = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(argv) == 1 and target.read_bytes() == edited
    assert main([*argv, "--check"]) == 1
    assert main([*argv, "--force", "01"]) == 0 and target.read_bytes() != edited
    assert main([*argv, "--check", "01_affine_jacobian"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "99"])
    assert exit_info.value.code == 2


# --- nbval and pytest -----------------------------------------------------------------------


def test_solution_notebooks_pass_nbval() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-q", "-p",
         "no:cacheprovider", "-o", "addopts=", *map(str, SOLUTIONS)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]


def test_pytest_plugin_reports_each_check(tmp_path: Path) -> None:
    junit = tmp_path / "grades.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "cflib.grading.pytest_plugin", "-p",
         "no:cacheprovider", "--noconftest", "-o", "addopts=", f"--junitxml={junit}",
         "--grading-seed", "5",
         "--submission", str(FIXTURES / "raises.ipynb")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:]  # some checks fail
    assert "raises.ipynb (exercise 01): 2 of 10 points" in run.stdout
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    names = [c.name for c in load_exercise("01").checks]
    assert set(cases) == {"runs_without_errors", *names}
    passed = {
        n for n, c in cases.items() if c.find("failure") is None and c.find("skipped") is None
    }
    assert passed == {"upper_right_block_slices", "determinant_is_exp_of_sum"}
    written = [c.name for c in load_exercise("01").checks if c.manual]
    skipped = {n for n, c in cases.items() if c.find("skipped") is not None}
    assert written and skipped == set(written)  # a person marks it: neither passed nor failed
    assert "awaiting marking" in cases[written[0]].find("skipped").get("message")
    failure = cases["jacobian_shape"].find("failure")
    assert "no such name" in failure.get("message")
    props = {p.get("name"): p.get("value") for p in cases["jacobian_shape"].iter("property")}
    assert props["max_points"] == "1.0" and props["points"] == "0.0"


def test_pytest_plugin_finds_submissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from cflib.grading.pytest_plugin import _submissions

    def config(*given: Path) -> SimpleNamespace:
        return SimpleNamespace(getoption=lambda name: [str(p) for p in given])

    monkeypatch.setenv("CFLIB_SUBMISSION", os.pathsep.join([str(SOLUTION_01), str(FIXTURES)]))
    from_env = _submissions(config())
    assert from_env[0] == SOLUTION_01 and FIXTURES / "raises.ipynb" in from_env
    assert _submissions(config(SOLUTION_01)) == [SOLUTION_01]  # the option wins
    with pytest.raises(pytest.UsageError, match="no such file"):
        _submissions(config(tmp_path / "missing.ipynb"))


# --- in-notebook feedback -------------------------------------------------------------------


@pytest.fixture(scope="module")
def solution_namespace() -> dict:
    """The solution's definitions, run in this process as a notebook would."""
    namespace: dict = {}
    for cell in nbformat.read(SOLUTION_01, as_version=4).cells:
        if cell.cell_type == "code" and "check(" not in cell.source and "show" not in cell.id:
            exec(compile(cell.source, cell.id, "exec"), namespace)
    return namespace


def test_check_in_the_notebook_passes_the_solution(solution_namespace: dict) -> None:
    feedback = check("01", namespace=solution_namespace)
    exercise = load_exercise("01")
    public = [c.name for c in exercise.checks if not c.hidden]
    hidden = [c for c in exercise.checks if c.hidden]
    assert [r.name for r in feedback.results] == public and feedback.all_passed
    text, html = str(feedback), feedback._repr_html_()
    assert f"{len(public)} of {len(public)} public checks passed" in text
    points = exercise.hidden_points
    assert (
        f"{len(hidden)} more checks ({points:g} points) are run when your instructor grades" in text
    )
    for c in hidden:  # hidden checks: counted, never shown
        assert c.name not in text and c.name not in html
    assert "<table>" in html and "✓" in text


def test_check_in_the_notebook_reports_failures(solution_namespace: dict) -> None:
    namespace = {**solution_namespace, "upper_right_block": lambda J, k: J[k:, :k]}
    del namespace["log_abs_det"]
    feedback = check(1, "upper_right_block", "log_abs_det", namespace=namespace, seed=3)
    assert feedback.passed == 0 and len(feedback.results) == 2
    messages = " ".join(r.message for r in feedback.results)
    assert "rows 1.." in messages and "`log_abs_det`" in messages
    assert "0 of 2 public checks passed" in str(feedback)
    assert check("01", "upper_right_block", namespace={}).results[0].passed is False


def test_check_uses_the_callers_namespace() -> None:
    def upper_right_block(J, k):
        return J[:k, k:]

    globals()["upper_right_block"] = upper_right_block
    try:
        assert check("01", "upper_right_block").all_passed
    finally:
        del globals()["upper_right_block"]


def test_check_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="grades"):
        check("01", "no_such_answer", namespace={})
    with pytest.raises(ValueError, match="no checks for exercise 42"):
        check("42", namespace={})
    with pytest.raises(ValueError, match="exercise number"):
        check("one", namespace={})


# --- the parts ------------------------------------------------------------------------------


def test_every_exercise_has_consistent_checks_and_notebooks() -> None:
    assert "01" in exercise_numbers()
    for number in exercise_numbers():
        exercise = load_exercise(number)
        names = [c.name for c in exercise.checks]
        assert len(set(names)) == len(names) and all(c.points > 0 for c in exercise.checks)
        assert (ROOT / "solutions" / f"{exercise.notebook}.ipynb").exists()
        assert (ROOT / "exercises" / f"{exercise.notebook}.ipynb").exists()
    assert load_exercise("01").max_score == 10


def test_probes_are_self_contained() -> None:
    """Only wire's and a probe's source travel into the kernel: builtins and wire's names only."""
    import builtins

    from cflib.grading import wire

    allowed = set(dir(builtins)) | set(dir(wire))

    for number in exercise_numbers():
        load_exercise(number)
        module = sys.modules[f"cflib_checks.ex{number}"]
        probes = [v for k, v in vars(module).items() if k.startswith("probe_")]
        assert probes
        for probe in probes:
            compile(probe_source(probe), probe.__name__, "exec")
            used = {i.argval for i in dis.get_instructions(probe) if i.opname == "LOAD_GLOBAL"}
            assert used <= allowed, (probe.__name__, used - allowed)


def test_probe_harness_reports_what_the_answers_did() -> None:
    source = "def probe_f(answers, x):\n    return answers['f'](x)\n"

    def boom(x):
        raise KeyError("inside")

    run = probe_harness.run
    assert run({"f": lambda x: x + 1}, source, "probe_f", [1], ["f"]) == {"value": 2}
    assert run({}, source, "probe_f", [1], ["f"]) == {"missing": ["f"]}
    raised = run({"f": boom}, source, "probe_f", [1], ["f"])["raised"]
    assert raised == {"call": "f(1)", "type": "KeyError", "message": "'inside'"}
    bad = probe_harness.to_json(run({"f": lambda x: object()}, source, "probe_f", [1], ["f"]))
    assert "not plain data" in json.loads(bad)["probe_failed"]


def test_wire_decodes_sympy_without_running_code() -> None:
    z = sp.Symbol("z_1", real=True)
    s = sp.Function("s_2", real=True)(z)
    matrix = sp.Matrix([[1, 0], [sp.diff(s, z) * sp.exp(s), sp.Rational(1, 2) * sp.pi]])
    assert make_real(decode_matrix(encode_matrix(matrix))) == matrix
    for text in [
        "__import__('os').system('true')",
        "Symbol('x').__class__",
        "Add('1 + 1')",
        "Function('f')(Integer(1)).__init__",
        "Pow(Pow(Integer(999999), Integer(99)), Integer(99))",
        "Add(" * 3000 + "Integer(1)" + ")" * 3000,
        1,
    ]:
        with pytest.raises(DecodeError):
            parse_srepr(text)
    with pytest.raises(DecodeError, match="got list"):
        decode_matrix({"type": "list"}, "J")


def test_written_answers_are_found_by_name() -> None:
    cells = [
        {"cell_type": "markdown", "source": "# Title\n### Answer: `proof`\nFirst part,"},
        {"cell_type": "markdown", "source": "second part.\n## Next section\nnot the proof"},
        {"cell_type": "code", "source": "x = 1"},
        {"cell_type": "markdown", "source": f"### Answer: other\n{ANSWER_PROMPT}"},
    ]
    answers = written_answers(cells)
    assert answers["proof"] == "First part,\nsecond part."
    assert answer_text(answers["other"]) == ""


def test_notebooks_are_found_and_numbered(tmp_path: Path) -> None:
    (tmp_path / "a" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "a" / "03_masks.ipynb").write_text("{}")
    (tmp_path / "a" / ".ipynb_checkpoints" / "03_masks-checkpoint.ipynb").write_text("{}")
    assert find_notebooks([tmp_path, tmp_path / "a" / "03_masks.ipynb"]) == [
        tmp_path / "a" / "03_masks.ipynb"
    ]
    assert exercise_of({"metadata": {"cflib": {"exercise": 4}}}, Path("x.ipynb")) == "04"
    assert exercise_of({}, Path("5_spline.ipynb")) == "05"
    assert exercise_of({}, Path("notes.ipynb")) is None
    with pytest.raises(FileNotFoundError):
        find_notebooks([tmp_path / "missing"])


def test_checks_draw_their_inputs_from_the_grading_seed(solution_namespace: dict) -> None:
    """Two seeds give two different sets of inputs; one seed always the same."""
    from cflib.grading.checks import check_seed

    assert check_seed(1, "jacobian_shape").integers(1 << 30) == check_seed(
        1, "jacobian_shape"
    ).integers(1 << 30)
    draws = {int(check_seed(seed, "jacobian_shape").integers(1 << 30)) for seed in range(5)}
    assert len(draws) == 5
    assert np.isfinite(check("01", "affine_coupling", namespace=solution_namespace, seed=9).score)
