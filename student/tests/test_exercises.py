"""The exercises of this edition: they run, their public checks work, and the grader says that
the hidden checks are run by the instructor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cflib.grading import check, exercise_numbers, load_exercise

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("[0-9]*_*.ipynb"))


def test_each_exercise_has_public_checks_and_declares_its_hidden_ones() -> None:
    assert [f"{int(p.name[:2]):02d}" for p in EXERCISES] == exercise_numbers()
    for number in exercise_numbers():
        exercise = load_exercise(number)
        assert exercise.checks and not exercise.has_hidden
        assert not any(c.hidden for c in exercise.checks)
        assert exercise.hidden_checks > 0 and exercise.hidden_points > 0
        public = sum(c.points for c in exercise.checks)
        assert exercise.max_score == public + exercise.hidden_points


def test_feedback_in_the_notebook_counts_the_hidden_checks() -> None:
    feedback = check("03", namespace={})
    assert feedback.results and not any(r.passed for r in feedback.results)
    assert "run when your instructor grades" in feedback.summary()


def test_the_grader_runs_the_public_checks_of_unanswered_exercises(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "cflib.grade",
            str(ROOT / "exercises"),
            "--jobs",
            "2",
            "--json",
            str(report),
            "--seed",
            "3",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "run when your instructor grades" in run.stdout
    results = json.loads(report.read_text())
    assert len(results) == len(EXERCISES)
    for result in results:
        assert result["error"] is None, result["error"]  # only NotImplementedError was raised
        assert result["score"] == 0 and result["checks"]
        assert all(not c["hidden"] for c in result["checks"])
        for c in result["checks"]:
            assert "not answered yet" in c["message"] or "NotImplementedError" in c["message"]
