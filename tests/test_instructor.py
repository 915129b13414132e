"""The instructor's loop after collection: grading a roster, hand marking, feedback, gradebooks,
Gradescope, Classroom 50, sharding and merging, reproducible regrades.

Report formats are tested on synthetic results (no kernel). Real gradings are few and small, all of
exercise 01 without its demonstration cells: one roster run (a full and a partial submission, a
missing student) and, started with it, a regrade with the first run's seed; then the Gradescope
scripts and the Classroom 50 autograder, each on one notebook.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import jsonschema
import nbformat
import pytest

from cflib.grade import main as grade_main
from cflib.grade import parse_shard, shard_of
from cflib.grading import classroom50, gradescope, manual, report
from cflib.grading.checks import CheckResult, load_exercise
from cflib.grading.gradebook import write_gradebook
from cflib.grading.markdown import ANSWER_PROMPT
from cflib.grading.roster import read_roster
from cflib.grading.runner import NotebookResult
from cflib.grading.version import grader_files, grader_version

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_01 = ROOT / "solutions" / "01_affine_jacobian.ipynb"
ROSTER = (
    "login,name,email,id,sis_user_id,sis_login_id,section\n"
    "alice,Alice Archer,alice@uni.edu,101,S101,alice@uni,A\n"
    "bob,Bob Baker,bob@uni.edu,102,S102,bob@uni,B\n"
    "carol,Carol Cole,carol@uni.edu,103,S103,carol@uni,A\n"
)


def _submission(path: Path, partial: bool = False) -> Path:
    """Solution 01 without its demonstration and check cells; ``partial``: without the torch
    answer and with the written proof left as the prompt."""
    nb = nbformat.read(SOLUTION_01, as_version=4)
    nb.cells = [c for c in nb.cells if not c.get("id", "").startswith(("show-", "check-"))]
    if partial:
        nb.cells = [c for c in nb.cells if c.get("id") != "answer-torch"]
        proof = next(c for c in nb.cells if c.get("id") == "answer-proof")
        proof.source = f"### Answer: triangular_proof\n\n{ANSWER_PROMPT}"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _grade(*args: object, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cflib.grade", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A roster run (alice full, bob partial, carol missing) with every output, and a regrade of
    alice with the seed recorded in the first run's report, started together."""
    folder = tmp_path_factory.mktemp("class")
    subs = folder / "subs"
    _submission(subs / "alice" / "exercises" / "01_affine_jacobian.ipynb")
    _submission(subs / "bob" / "01_affine_jacobian.ipynb", partial=True)
    (subs / "mallory").mkdir()  # not on the roster
    (subs / "collection.json").write_text(
        json.dumps({"students": [{"login": "bob", "status": "collected", "late_commits": 2}]})
    )
    roster = folder / "roster.csv"
    roster.write_text(ROSTER)
    marks = folder / "marks.csv"
    marks.write_text(
        "login,question,points,comment\nalice,01_triangular_proof,0.5,Say why det J is the product.\n"
    )
    first = _grade(
        subs, "--roster", roster, "--seed", 4242, "--jobs", 2, "--timeout", 240,
        "--json", folder / "report.json", "--csv", folder / "report.csv",
        "--markdown", folder / "feedback", "--gradebook", folder / "canvas.csv",
        "--manual-export", folder / "manual", "--manual-marks", marks,
        "--classroom50", folder / "result.json", "--gradescope", folder / "results.json",
    )  # fmt: skip
    alice_only = folder / "alice-only" / "01_affine_jacobian.ipynb"
    _submission(alice_only)
    again = _grade(alice_only, "--seed", 4242, "--json", folder / "again.json", "--quiet")
    out, err = first.communicate(timeout=900)
    _, again_err = again.communicate(timeout=900)
    assert first.returncode == 0, err
    assert again.returncode == 0, again_err
    return {
        "folder": folder,
        "json": json.loads((folder / "report.json").read_text()),
        "again": json.loads((folder / "again.json").read_text()),
        "stdout": out,
        "stderr": err,
        "roster": roster,
    }


def _by_student(graded: dict) -> dict[str, dict]:
    return {r["student"]: r for r in graded["json"]}


def test_a_roster_run_names_every_student_and_reports_the_missing(graded: dict) -> None:
    by = _by_student(graded)
    assert set(by) == {"alice", "bob"}
    assert by["alice"]["notebook"].endswith("alice/exercises/01_affine_jacobian.ipynb")
    out = graded["stdout"]
    assert "graded:   2 notebooks of 2 students" in out
    assert "missing:  1: carol" in out
    assert "late:     1: bob" in out
    assert "errors:   0" in out
    assert "not on the roster, not graded: mallory" in graded["stderr"]


def test_partial_work_gets_the_points_it_earns(graded: dict) -> None:
    bob = _by_student(graded)["bob"]
    checks = {c["name"]: c for c in bob["checks"]}
    assert not checks["affine_coupling_matches"]["passed"]
    assert "`affine_coupling`" in checks["affine_coupling_matches"]["message"]
    assert checks["jacobian_entries"]["passed"]
    automatic = [c for c in bob["checks"] if not c["manual"]]
    lost = [c for c in automatic if not c["passed"]]  # only the checks of the missing answer
    assert lost and all("`affine_coupling`" in c["message"] for c in lost), lost
    assert bob["score"] == sum(c["max_points"] for c in automatic) - sum(
        c["max_points"] for c in lost
    )


def test_each_entry_records_seed_time_and_grader_version(graded: dict) -> None:
    for entry in graded["json"]:
        assert entry["seed"] == 4242
        assert entry["graded_at"].endswith("Z") and entry["graded_at"][10] == "T"
        assert len(entry["graded_at"]) == 20
        assert entry["grader_version"] == grader_version()
        for c in entry["checks"]:
            assert isinstance(c["hidden"], bool) and c["status"] in (
                "graded",
                manual.AWAITING,
                manual.MARKED,
            )


def test_a_regrade_with_the_reports_seed_reproduces_every_automatic_check(graded: dict) -> None:
    first = _by_student(graded)["alice"]
    (again,) = graded["again"]
    assert again["seed"] == first["seed"] and again["student"] is None
    automatic = [
        {k: c[k] for k in ("name", "points", "passed", "message")}
        for c in first["checks"]
        if not c["manual"]
    ]
    assert automatic == [
        {k: c[k] for k in ("name", "points", "passed", "message")}
        for c in again["checks"]
        if not c["manual"]
    ]
    assert len(automatic) == 10


def test_written_answers_await_marking_until_marked(graded: dict) -> None:
    alice = {c["name"]: c for c in _by_student(graded)["alice"]["checks"]}
    bob = {c["name"]: c for c in _by_student(graded)["bob"]["checks"]}
    proof = "triangular_proof_answered"
    assert alice[proof]["manual"] and alice[proof]["status"] == manual.MARKED
    assert alice[proof]["points"] == 0.5 and alice[proof]["comment"].startswith("Say why")
    assert "block" in alice[proof]["answer"]  # the student's text travels with the report
    assert bob[proof]["status"] == manual.AWAITING and bob[proof]["points"] == 0
    assert "only the prompt" in bob[proof]["message"]  # the automatic part: no answer there
    assert _by_student(graded)["alice"]["score"] == 9.5


def test_manual_export_lists_every_written_answer(graded: dict) -> None:
    folder = graded["folder"] / "manual"
    with open(folder / "manual.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(manual.EXPORT_COLUMNS)
    assert [(r["login"], r["question"], r["max_points"]) for r in rows] == [
        ("alice", "01_triangular_proof", "1"),
        ("bob", "01_triangular_proof", "1"),
    ]
    assert "\n" not in rows[0]["answer"] and "block" in rows[0]["answer"]
    page = (folder / "01_triangular_proof.md").read_text()
    assert "## alice" in page and "## bob" in page and "*(no answer)*" in page
    with open(folder / "marks.csv", newline="") as handle:
        sheet = list(csv.DictReader(handle))
    assert [(r["login"], r["points"]) for r in sheet] == [("alice", "0.5"), ("bob", "")]


def test_feedback_is_one_page_per_student_without_hidden_details(graded: dict) -> None:
    folder = graded["folder"] / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == ["alice.md", "bob.md", "summary.md"]
    alice = (folder / "alice.md").read_text()
    assert alice.startswith("# Feedback: Alice Archer") and "(`alice`)" in alice
    assert "Say why det J is the product." in alice  # the marker's comment
    hidden = [c for c in load_exercise("01").checks if c.hidden and not c.manual]
    assert f"Hidden checks: {len(hidden)} ran" in alice
    for c in hidden:
        assert c.name not in alice
    bob = (folder / "bob.md").read_text()
    assert "await marking" in bob and "Bob Baker" in bob


def test_canvas_gradebook_has_a_row_per_roster_student(graded: dict) -> None:
    with open(graded["folder"] / "canvas.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[0][5].startswith("Exercise 01: ") and len(rows[0]) == 6
    assert rows[1] == ["Points Possible", "", "", "", "", "10"]
    assert rows[2] == ["Alice Archer", "101", "S101", "alice@uni", "A", "9.5"]
    assert rows[3][0] == "Bob Baker" and float(rows[3][5]) == 7
    assert rows[4] == ["Carol Cole", "103", "S103", "carol@uni", "A", "0"]


def test_csv_names_students_on_single_lines(graded: dict) -> None:
    with open(graded["folder"] / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == report.CSV_COLUMNS
    assert {r["student"] for r in rows} == {"alice", "bob"}
    assert {r["student"]: r["awaiting_marking"] for r in rows} == {"alice": "0", "bob": "1"}


def test_classroom50_file_matches_the_schema(graded: dict) -> None:
    result = json.loads((graded["folder"] / "result.json").read_text())
    schema = json.loads(classroom50.SCHEMA_FILE.read_text())
    jsonschema.validate(result, schema)
    assert "usernames" not in result and "owner" not in result  # the runner stamps the owner
    assert result["score"] <= result["max-score"]
    assert sum(t["score"] for t in result["tests"]) == result["score"]
    public = [c.name for c in load_exercise("01").checks if not c.hidden]
    assert len(result["tests"]) == 2 * len(public)  # two students' notebooks, public checks only
    assert not any("triangular_proof" in t["test-name"] for t in result["tests"])
    names = [t["test-name"] for t in result["tests"]]  # two students: their logins keep names apart
    assert len(set(names)) == len(names) and {n.split()[0] for n in names} == {"alice", "bob"}


def test_gradescope_results_follow_the_spec(graded: dict) -> None:
    results = json.loads((graded["folder"] / "results.json").read_text())
    assert results["stdout_visibility"] == "hidden"
    keys = {"name", "score", "max_score", "output", "visibility", "number", "tags"}
    assert all(set(t) == keys for t in results["tests"])
    hidden = {c.name for c in load_exercise("01").checks if c.hidden}
    for t in results["tests"]:
        check = t["name"].rsplit(": ", 1)[1]
        assert t["visibility"] == ("after_due_date" if check in hidden else "visible"), t
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


# --- synthetic results: no kernel ---------------------------------------------------------------


def _result(
    student: str | None, exercise: str, points: list[float], **extra: object
) -> NotebookResult:
    spec = load_exercise(exercise)
    checks = [
        CheckResult(
            c.name, p, c.points, p == c.points, f"message of {c.name}\nline two", c.hidden, c.manual
        )
        for c, p in zip(spec.checks, points, strict=True)
    ]
    return NotebookResult(
        notebook=f"subs/{student}/{spec.notebook}.ipynb",
        exercise=exercise,
        score=sum(points),
        max_score=spec.max_score,
        checks=checks,
        error=extra.get("error"),  # type: ignore[arg-type]
        seed=7,
        student=student,
        graded_at="2026-12-03T10:00:00Z",
        grader_version="sha256:test",
        sandbox="bwrap",
    )


@pytest.fixture
def synthetic() -> list[NotebookResult]:
    three = load_exercise("03").checks
    return [
        _result("alice", "01", [c.points for c in load_exercise("01").checks]),
        _result(
            "bob",
            "01",
            [0.0 for _ in load_exercise("01").checks],
            error="cell 3 raised\nValueError",
        ),
        _result("alice", "03", [c.points for c in three]),
    ]


def test_reveal_hidden_shows_hidden_messages_only_when_asked(synthetic: list) -> None:
    hidden = next(c for c in synthetic[0].checks if c.hidden and not c.manual)
    closed = report.feedback_markdown([synthetic[0], synthetic[2]])
    opened = report.feedback_markdown([synthetic[0], synthetic[2]], reveal_hidden=True)
    assert hidden.message.split("\n")[0] not in closed and hidden.name not in closed
    assert hidden.name in opened and "message of " + hidden.name in opened
    assert closed.count("## Exercise") == 2 and "2 notebooks" in closed


def test_manual_marks_are_validated_and_merged_idempotently(
    tmp_path: Path, synthetic: list
) -> None:
    marks = tmp_path / "marks.csv"
    marks.write_text("login,question,points,comment\nbob,01_triangular_proof,1,fine\n,,,\n")
    merged, unused = manual.apply_marks(synthetic, manual.read_marks(marks))
    again, _ = manual.apply_marks(merged, manual.read_marks(marks))
    assert unused == [] and [r.score for r in merged] == [r.score for r in again]
    bob_proof = next(c for c in merged[1].checks if c.manual)
    assert (bob_proof.points, bob_proof.status, bob_proof.comment) == (1.0, manual.MARKED, "fine")
    assert next(c for c in merged[0].checks if c.manual).status == manual.AWAITING
    assert merged[0].score == synthetic[0].score - 1
    bad = tmp_path / "bad.csv"
    bad.write_text("login,question,points\nbob,01_triangular_proof,lots\n")
    with pytest.raises(manual.ManualError, match="row 2, column 'points'"):
        manual.read_marks(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("login,question,points\nbob,q,1\nbob,q,0\n")
    with pytest.raises(manual.ManualError, match="row 3: bob / q is already marked in row 2"):
        manual.read_marks(twice)


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ("login,question,points\nalice,01_no_such,1\n", "no written answer '01_no_such'"),
        ("login,question,points\nalice,01_triangular_proof,3\n", "3 is more than"),
        ("login,points\nalice,1\n", "no 'question' column"),
    ],
)
def test_unusable_marks_exit_2_before_grading(
    tmp_path: Path, marks: str, message: str, capsys
) -> None:
    path = tmp_path / "marks.csv"
    path.write_text(marks)
    with pytest.raises(SystemExit) as exit_info:
        grade_main([str(SOLUTION_01), "--manual-marks", str(path)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--shard", "0/4"],
        ["--shard", "5/4"],
        ["--shard", "two"],
        ["--gradebook", "g.csv"],  # without --roster
        ["--roster", "/no/such/roster.csv"],
        ["--student", "x", "--roster", "r.csv"],
        ["--gradebook-format", "blackboard"],
    ],
)
def test_unusable_instructor_arguments_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        grade_main([str(SOLUTION_01), *args])
    assert exit_info.value.code == 2


def test_moodle_gradebook(tmp_path: Path, synthetic: list) -> None:
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(ROSTER)
    write_gradebook(read_roster(roster_path), synthetic, tmp_path / "m.csv", "moodle")
    rows = list(csv.reader((tmp_path / "m.csv").read_text().splitlines()))
    assert rows[0][0] == "email" and [r[0] for r in rows[1:]] == [
        "alice@uni.edu",
        "bob@uni.edu",
        "carol@uni.edu",
    ]
    assert rows[1][1:] == ["10", "10"] and rows[2][1:] == ["0", "0"] and rows[3][1:] == ["0", "0"]


def test_shards_partition_the_class_stably() -> None:
    logins = [f"student{i:03d}" for i in range(200)]
    shards = [shard_of(login, 8) for login in logins]
    assert shards == [shard_of(login, 8) for login in logins]  # stable
    assert set(shards) == set(range(1, 9)) and max(shards.count(s) for s in range(1, 9)) < 45
    assert parse_shard("3/8") == (3, 8)


def test_merge_joins_shards_and_writes_the_outputs(tmp_path: Path, synthetic: list, capsys) -> None:
    report.write_json(synthetic[:1], tmp_path / "shard1.json")
    report.write_json(synthetic[1:], tmp_path / "shard2.json")
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    marks = tmp_path / "marks.csv"
    marks.write_text("login,question,points,comment\nalice,01_triangular_proof,1,good\n")
    code = grade_main(
        ["merge", str(tmp_path / "shard1.json"), str(tmp_path / "shard2.json"),
         "--roster", str(roster), "--json", str(tmp_path / "all.json"),
         "--gradebook", str(tmp_path / "canvas.csv"), "--manual-marks", str(marks),
         "--markdown", str(tmp_path / "md"), "--min-score", "0.5"]
    )  # fmt: skip
    assert code == 1  # bob is below half
    merged = report.read_json(tmp_path / "all.json")
    assert [(r.student, r.exercise) for r in merged] == [
        ("alice", "01"),
        ("bob", "01"),
        ("alice", "03"),
    ]
    assert merged[0].score == 10 and merged[0].graded_at == "2026-12-03T10:00:00Z"
    assert "missing:  1: carol" in capsys.readouterr().out
    rows = list(csv.reader((tmp_path / "canvas.csv").read_text().splitlines()))
    assert [r[0] for r in rows] == [
        "Student",
        "Points Possible",
        "Alice Archer",
        "Bob Baker",
        "Carol Cole",
    ]
    assert "good" in (tmp_path / "md" / "alice.md").read_text()


def test_a_report_reads_back_unchanged(tmp_path: Path, synthetic: list) -> None:
    """``merge`` rewrites reports: every field, the sandbox included, survives the round trip."""
    report.write_json(synthetic, tmp_path / "r.json")
    back = report.read_json(tmp_path / "r.json")
    assert [r.to_json() for r in back] == [r.to_json() for r in synthetic]
    assert {r.sandbox for r in back} == {"bwrap"}


def test_merge_rejects_a_file_that_is_not_a_report(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.json").write_text('{"not": "a list"}')
    with pytest.raises(SystemExit) as exit_info:
        grade_main(["merge", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2 and "expected a JSON list" in capsys.readouterr().err


def test_grader_version_covers_the_loaded_exercise_modules() -> None:
    files = grader_files()
    for number in ("01", "05"):
        module = load_exercise(number).checks[0].function.__code__.co_filename
        assert Path(module).resolve() in files
    assert grader_version().startswith("sha256:") and len(grader_version()) == 23


# --- Classroom 50's result.json, on synthetic results ------------------------------------------
#
# The rules below are read from foundation50/classroom50: runner.py (run_entrypoint, which sets the
# environment; finalize_result, which stamps owner, assignment_type, datetime, graded_at and
# submitted_by, then runs validate_result) and collect_scores.py (validate_result), both under
# cli/gh-teacher/skeleton/dotgithub/scripts/, and wiki/Autograders.md, wiki/Advanced-Autograding.md.

# what the runner's run_entrypoint puts in the autograder's environment (besides os.environ)
RUNNER_ENV = {
    "PAGES_BASE_URL": "https://flows-org.github.io/classroom50",
    "CLASSROOM": "flows-2026",
    "ASSIGNMENT": "ex01",
    "SUBMISSION_TAG": "submit/20261203T100000Z-abc1234",
    "GITHUB_REPOSITORY": "flows-org/flows-2026-ex01-bob",
    "GITHUB_SHA": "abc1234",
    "GITHUB_ACTOR": "bob",
    "USERNAME": "bob",
    "OWNER": "bob",
    "ASSIGNMENT_TYPE": "individual",
    "COMMIT_URL": "https://github.com/flows-org/flows-2026-ex01-bob/commit/abc1234",
    "RELEASE_URL": "https://github.com/flows-org/flows-2026-ex01-bob/releases/tag/submit%2F2026",
    "REVIEW_URL": "https://github.com/flows-org/flows-2026-ex01-bob/compare/000...abc1234",
    "CLASSROOM50_BUNDLE_DIR": "/tmp/classroom50-runtime/ex01",
}
# what collect_scores.py's validate_result requires once the runner has stamped its fields
COLLECTOR_REQUIRED = {
    "schema", "classroom", "assignment", "owner", "assignment_type", "submission", "commit",
    "release", "review", "datetime", "score", "max-score", "tests",
}  # fmt: skip
TEST_KEYS = {"test-name", "passed", "score", "max-score"}


def _one_student() -> list[NotebookResult]:
    """Bob's exercises 01 (a public check with 1.5 points of 2, one wrong) and 03 (all right)."""
    first = _result("bob", "01", [c.points for c in load_exercise("01").checks])
    first.checks[0] = replace(first.checks[0], points=1.5, max_points=2.0, passed=False)
    first.checks[1] = replace(first.checks[1], points=0.0, passed=False)
    return [first, _result("bob", "03", [c.points for c in load_exercise("03").checks])]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def test_classroom50_result_leaves_identity_to_the_runner() -> None:
    """No ``usernames`` (gone from the contract), and no ``owner``, ``assignment_type``,
    ``submitted_by`` or ``graded_at``: the runner stamps those itself. The rest comes from the
    runner's environment, with CLASSROOM, ASSIGNMENT and SUBMISSION_TAG stripped as it strips
    them before comparing."""
    env = {**RUNNER_ENV, "CLASSROOM": " flows-2026\n", "ASSIGNMENT": "ex01 "}
    result = classroom50.result_json(_one_student(), env)
    assert set(result) == {
        "schema", "classroom", "assignment", "submission", "commit", "release", "review",
        "datetime", "score", "max-score", "tests",
    }  # fmt: skip
    assert not set(result) & {"usernames", *classroom50.RUNNER_STAMPED} - {"datetime"}
    assert result["schema"] == "classroom50/result/v1"
    assert (result["classroom"], result["assignment"], result["submission"]) == (
        "flows-2026",
        "ex01",
        RUNNER_ENV["SUBMISSION_TAG"],
    )
    assert result["commit"] == RUNNER_ENV["COMMIT_URL"]
    assert result["release"] == RUNNER_ENV["RELEASE_URL"]
    assert result["review"] == RUNNER_ENV["REVIEW_URL"]


def test_classroom50_result_meets_the_runner_and_collector_rules() -> None:
    """Each rule of the runner's and the collector's ``validate_result``, checked on our output
    for one student with partial credit (and whole points for it)."""
    results = _one_student()
    result = classroom50.result_json(results, RUNNER_ENV)
    # with the runner's stamped fields, every field the collector requires is there
    assert COLLECTOR_REQUIRED <= set(result) | set(classroom50.RUNNER_STAMPED)
    assert result["schema"] == "classroom50/result/v1"
    assert result["submission"].startswith("submit/")
    for field in ("classroom", "assignment", "commit", "release", "review", "datetime"):
        assert isinstance(result[field], str) and result[field], field
    assert _is_int(result["score"]) and _is_int(result["max-score"])
    assert 0 <= result["score"] <= result["max-score"]
    assert isinstance(result["tests"], list) and result["tests"]
    for t in result["tests"]:
        assert set(t) == TEST_KEYS, t
        assert isinstance(t["test-name"], str) and t["test-name"], t
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in t["test-name"]), t
        assert isinstance(t["passed"], bool), t
        assert _is_int(t["score"]) and _is_int(t["max-score"]), t
        assert 0 <= t["score"] <= t["max-score"], t
    # the wiki: score and max-score are the sums over the tests; names identify rows
    assert result["score"] == sum(t["score"] for t in result["tests"])
    assert result["max-score"] == sum(t["max-score"] for t in result["tests"])
    names = [t["test-name"] for t in result["tests"]]
    assert len(names) == len(set(names))
    # public checks only, partial credit rounded down, a half-right check is not passed
    public = [c for r in results for c in r.checks if not c.hidden and not c.manual]
    assert len(result["tests"]) == len(public)
    assert result["max-score"] == sum(math.floor(c.max_points) for c in public)
    half, wrong = result["tests"][:2]
    assert (half["passed"], half["score"], half["max-score"]) == (False, 1, 2)
    assert (wrong["passed"], wrong["score"]) == (False, 0)
    jsonschema.validate(result, json.loads(classroom50.SCHEMA_FILE.read_text()))


def test_classroom50_result_outside_the_runner_and_for_odd_checks() -> None:
    """Without Classroom 50's environment the file is still well formed; nothing to grade is a
    valid 0/0; a check name with control characters, negative or fractional points still gives a
    valid row."""
    schema = json.loads(classroom50.SCHEMA_FILE.read_text())
    empty = classroom50.result_json([], {})
    jsonschema.validate(empty, schema)
    assert (empty["score"], empty["max-score"], empty["tests"]) == (0, 0, [])
    assert empty["submission"].startswith("submit/")
    odd = _result("bob", "01", [c.points for c in load_exercise("01").checks])
    odd.checks[0] = replace(odd.checks[0], name="two\nlines|\x7f", points=-1.0, passed=False)
    odd.checks[1] = replace(odd.checks[1], points=2.5, max_points=2.5, passed=True)
    result = classroom50.result_json([odd], {})
    jsonschema.validate(result, schema)
    first, second = result["tests"][:2]
    assert "\n" not in first["test-name"] and "\x7f" not in first["test-name"]
    assert first["test-name"].endswith("two lines|") and first["score"] == 0
    assert (second["score"], second["max-score"], second["passed"]) == (2, 2, True)


def test_classroom50_schema_file_takes_the_contract_and_rejects_what_classroom50_rejects() -> None:
    """The wiki's example, as the runner stamps it, is valid against our schema file; each change
    that Classroom 50's validate_result rejects (or that the contract no longer has, such as
    ``usernames``) makes it invalid."""
    schema = json.loads(classroom50.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    example = {
        "schema": "classroom50/result/v1",
        "classroom": "cs-principles",
        "assignment": "hello",
        "assignment_type": "individual",
        "owner": "alice",
        "submission": "submit/2026-06-01T14-32-05Z-a1b2c3d",
        "commit": "https://github.com/o/r/commit/a1b2c3d",
        "release": "https://github.com/o/r/releases/tag/submit%2F2026",
        "review": "https://github.com/o/r/compare/000...a1b2c3d",
        "datetime": "2026-06-01T14:32:01Z",
        "graded_at": "2026-06-01T14:33:11Z",
        "score": 4,
        "max-score": 5,
        "tests": [
            {"test-name": "compiles", "passed": True, "score": 4, "max-score": 4},
            {"test-name": "outputs_correct", "passed": False, "score": 0, "max-score": 1},
        ],
        "submitted_by": {"username": "alice", "id": None},
    }
    jsonschema.validate(example, schema)
    rejected = {
        "usernames": lambda d: d.update(usernames=["alice"]),
        "schema v2": lambda d: d.update(schema="classroom50/result/v2"),
        "empty classroom": lambda d: d.update(classroom=""),
        "no tests": lambda d: d.pop("tests"),
        "no submission": lambda d: d.pop("submission"),
        "not a submit tag": lambda d: d.update(submission="phase1"),
        "empty review": lambda d: d.update(review=""),
        "float score": lambda d: d.update(score=4.5),
        "bool score": lambda d: d.update(score=True),
        "negative max-score": lambda d: d.update({"max-score": -1}),
        "team type": lambda d: d.update(assignment_type="team"),
        "test without passed": lambda d: d["tests"][0].pop("passed"),
        "string passed": lambda d: d["tests"][0].update(passed="yes"),
        "float test score": lambda d: d["tests"][0].update(score=1.5),
        "empty test-name": lambda d: d["tests"][0].update({"test-name": ""}),
        "test-name newline": lambda d: d["tests"][0].update({"test-name": "a\n"}),
        "string submitter id": lambda d: d["submitted_by"].update(id="7"),
        "submitter without login": lambda d: d["submitted_by"].pop("username"),
    }
    for what, change in rejected.items():
        document = json.loads(json.dumps(example))
        change(document)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, schema)
            pytest.fail(f"{what}: accepted")


# --- Gradescope and Classroom 50, run as the platforms run them ---------------------------------


@pytest.mark.slow
def test_gradescope_zip_and_scripts_run_locally(tmp_path: Path) -> None:
    """``make gradescope``'s zip, unpacked as Gradescope does; ``setup.sh`` in the mode that skips
    installs when the packages are there, and dry (stand-ins for python3 and apt-get record the
    install commands; nothing is installed, so whether they succeed on Gradescope is not tested);
    then ``run_autograder`` for real on a one-notebook submission."""
    zip_path = gradescope.build_zip(tmp_path / "build")
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        archive.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt", "pyproject.toml"} <= set(names)
    assert "cflib/grade.py" in names and any(n.endswith("ex01.py") for n in names)
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    setup = (root / "source" / "setup.sh").read_text()
    assert "python3 -m pip install --index-url https://download.pytorch.org/whl/cpu" in setup
    assert "apt-get install -y -qq bubblewrap" in setup
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)
        assert subprocess.run(["bash", "-n", root / "source" / script], check=False).returncode == 0
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # python3 = ours
        "AUTOGRADER_ROOT": str(root),
        "CFLIB_SETUP_SKIP_INSTALLED": "1",
        "CFLIB_TIMEOUT": "240",
    }
    done = subprocess.run(
        ["bash", root / "source" / "setup.sh"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "already installed" in done.stdout, done.stderr
    # the install path, dry: python3 and apt-get are stand-ins that record what they are asked
    shims, log = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    for tool in ("python3", "apt-get"):
        (shims / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        (shims / tool).chmod(0o755)
    dry = {**env, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}
    dry.pop("CFLIB_SETUP_SKIP_INSTALLED")
    subprocess.run(["bash", root / "source" / "setup.sh"], env=dry, check=True)
    calls = log.read_text().splitlines()
    assert calls[:2] == ["apt-get update -qq", "apt-get install -y -qq bubblewrap"]
    assert calls[3:6] == [
        "python3 -m pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0",
        "python3 -m pip install -r requirements.txt",
        "python3 -m pip install --no-deps .",
    ]
    _submission(root / "submission" / "01_affine_jacobian.ipynb", partial=True)
    (root / "submission_metadata.json").write_text(
        json.dumps({"users": [{"email": "bob@uni.edu", "name": "Bob Baker"}]})
    )
    done = subprocess.run(
        [root / "source" / "run_autograder"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["stdout_visibility"] == "hidden"
    tests = {t["name"].rsplit(": ", 1)[1]: t for t in results["tests"]}
    assert (
        tests["jacobian_entries"]["score"] == 1 and tests["affine_coupling_matches"]["score"] == 0
    )
    assert tests["zero_block_is_exact"]["visibility"] == "after_due_date"
    assert "awaiting marking" in tests["triangular_proof_answered"]["output"]
    assert results["score"] == 7
    # an empty submission still gets a results.json that says what is wrong
    (root / "submission" / "01_affine_jacobian.ipynb").unlink()
    subprocess.run([root / "source" / "run_autograder"], env=env, capture_output=True, check=True)
    empty = json.loads((root / "results" / "results.json").read_text())
    assert empty["score"] == 0 and "No .ipynb notebook" in empty["output"]


@pytest.mark.slow
def test_classroom50_autograder_writes_a_valid_result(tmp_path: Path) -> None:
    """``student/autograder.py`` in a student tree, started as Classroom 50's runner starts it
    (the checkout as working directory, the runner's environment): grades ``exercises/`` and
    writes ./result.json, where the runner reads it, even when GITHUB_WORKSPACE is elsewhere."""
    tree = tmp_path / "student-repo"
    _submission(tree / "exercises" / "01_affine_jacobian.ipynb", partial=True)
    elsewhere = tmp_path / "workspace"
    elsewhere.mkdir()
    env = {**os.environ, **RUNNER_ENV, "GITHUB_WORKSPACE": str(elsewhere)}
    done = subprocess.run(
        [sys.executable, ROOT / "student" / "autograder.py"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tree / "result.json").read_text())
    assert not (elsewhere / "result.json").exists()
    jsonschema.validate(result, json.loads(classroom50.SCHEMA_FILE.read_text()))
    assert (result["classroom"], result["assignment"], result["submission"]) == (
        "flows-2026",
        "ex01",
        RUNNER_ENV["SUBMISSION_TAG"],
    )
    assert not {"usernames", "owner", "assignment_type"} & set(result)  # the runner stamps these
    assert result["commit"].endswith("abc1234") and result["review"] == RUNNER_ENV["REVIEW_URL"]
    public = [c for c in load_exercise("01").checks if not c.hidden]
    assert result["max-score"] == sum(int(c.points) for c in public)
    assert result["score"] == result["max-score"] - 1  # the missing torch answer


def test_readme_says_classroom50_cannot_hide_checks_and_retires_github_classroom() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "GitHub Classroom" not in readme  # shut down on 28 August 2026
    assert "Classroom 50 cannot hide checks" in readme
    assert "notebooks per minute" in readme
