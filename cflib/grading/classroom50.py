"""Classroom 50's ``result.json`` (schema ``classroom50/result/v1``).

Classroom 50 grades in the student's own repository, with a test bundle the student can read, so it
cannot keep checks hidden: its scores are provisional feedback, and the marks come from the
instructor's run (collect, then grade). This file therefore holds only the public, automatic
checks, even when the grader that writes it knows hidden ones.

The contract, as Classroom 50's own source defines it (repository ``foundation50/classroom50``:
``cli/gh-teacher/skeleton/dotgithub/scripts/runner.py``, its ``run_entrypoint``,
``finalize_result``, ``make_result`` and ``validate_result``;
``cli/gh-teacher/skeleton/dotgithub/scripts/collect_scores.py``, its ``validate_result``;
``wiki/Autograders.md`` and ``wiki/Advanced-Autograding.md``, "The result.json contract"):

- The runner runs ``autograder.py`` with the student's checkout as working directory and reads
  ``./result.json`` from there once it exits 0; a non-zero exit, a missing file or a file that
  fails validation is published as an error result (0/0).
- The autograder writes ``schema`` (exactly ``classroom50/result/v1``), ``classroom`` and
  ``assignment`` (equal to the runner's ``CLASSROOM`` and ``ASSIGNMENT``, stripped, or the
  result is rejected), ``submission`` (a string starting ``submit/``), ``commit``, ``release``, ``review``,
  ``datetime`` (non-empty strings), ``score`` and ``max-score`` (non-negative integers, not
  booleans, score <= max-score) and ``tests``: a list (``[]`` is valid) of objects with
  ``test-name`` (a non-empty string; no length limit is checked in ``result.json``), ``passed`` (a
  boolean), ``score`` and ``max-score`` (non-negative integers, score <= max-score).
- The runner stamps ``owner`` (the repository owner), ``assignment_type`` (``individual`` or
  ``group``), ``datetime`` (the graded commit's committer date), ``graded_at`` and
  ``submitted_by`` (who pushed) before it validates, overwriting whatever the autograder wrote, so
  a result cannot claim another owner. There is no ``usernames`` field any more (the collector
  resolves a group's members itself). Unknown fields are not rejected, but they are not part of
  the contract, so none are written here.

The values come from the environment the runner gives the autograder: ``CLASSROOM``,
``ASSIGNMENT``, ``SUBMISSION_TAG``, ``COMMIT_URL`` (else one built from ``GITHUB_SERVER_URL``,
``GITHUB_REPOSITORY`` and ``GITHUB_SHA``), ``RELEASE_URL`` and ``REVIEW_URL``; it also sets
``USERNAME``/``OWNER``, ``ASSIGNMENT_TYPE`` and ``CLASSROOM50_BUNDLE_DIR``, which are not needed
here. Outside Classroom 50 the values default to ``local`` ones so the file stays well formed.

Points are whole numbers in the contract: a check counts its points when it passes and the whole
points of a partial result otherwise (partial credit is rounded down in this provisional view).
Test names are ``<exercise> <notebook>: <check>`` (with the student's login in front when the
results are several students'), unique in the file and without control characters, which would
break the release body's table.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cflib.grading.runner import NotebookResult

__all__ = ["RUNNER_STAMPED", "SCHEMA", "SCHEMA_FILE", "result_json", "write_result"]

SCHEMA = "classroom50/result/v1"
SCHEMA_FILE = Path(__file__).with_name("classroom50_result_v1.schema.json")
# fields Classroom 50's runner sets itself, overwriting the autograder's values
RUNNER_STAMPED = ("owner", "assignment_type", "datetime", "graded_at", "submitted_by")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _commit(env: Mapping[str, str]) -> str:
    if env.get("COMMIT_URL"):
        return env["COMMIT_URL"]
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_SHA"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/commit/{env['GITHUB_SHA']}"
    return "local"


def _points(value: float) -> int:
    return max(0, math.floor(value))


def result_json(
    results: Sequence[NotebookResult], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``result.json`` object for one student's graded notebooks (public checks only)."""
    env = os.environ if env is None else env
    several = len({r.student for r in results}) > 1
    tests = []
    for r in results:
        who = f"{r.student or '?'} " if several else ""
        for c in r.checks:
            if c.hidden or c.manual:
                continue
            whole = _points(c.max_points)
            name = f"{who}{r.exercise or '?'} {Path(r.notebook).stem}: {c.name}"
            tests.append(
                {
                    "test-name": _CONTROL.sub(" ", name).strip() or "check",
                    "passed": bool(c.passed),
                    "score": whole if c.passed else min(whole, _points(c.points)),
                    "max-score": whole,
                }
            )
    commit = _commit(env)
    # the runner strips these three before comparing them with the file's values
    return {
        "schema": SCHEMA,
        "classroom": env.get("CLASSROOM", "").strip() or "local",
        "assignment": env.get("ASSIGNMENT", "").strip() or "local",
        "submission": env.get("SUBMISSION_TAG", "").strip() or "submit/local",
        "commit": commit,
        "release": env.get("RELEASE_URL") or commit,
        "review": env.get("REVIEW_URL") or commit,
        "datetime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "score": sum(t["score"] for t in tests),
        "max-score": sum(t["max-score"] for t in tests),
        "tests": tests,
    }


def write_result(
    results: Sequence[NotebookResult], path: str | Path, env: Mapping[str, str] | None = None
) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result_json(results, env), indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")
