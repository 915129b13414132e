"""Classroom 50's ``result.json`` (schema ``classroom50/result/v1``).

Classroom 50 grades in the student's own repository, with a test bundle the student can read, so it
cannot keep checks hidden: its scores are provisional feedback, and the marks come from the
instructor's run (collect, then grade). This file therefore holds only the public, automatic
checks, even when the grader that writes it knows hidden ones.

Fields, as Classroom 50's runner validates them (its ``validate_result``): ``schema``,
``classroom``, ``assignment``, ``submission`` (a ``submit/...`` tag), ``commit``, ``release``,
``review``, ``datetime`` (non-empty strings), ``score`` and ``max-score`` (integers, score <=
max-score) and ``tests`` (``test-name``, ``passed``, ``score``, ``max-score``, integers). The
runner stamps the owner itself; ``owner`` and ``usernames`` are written too when the environment
names the student. The values come from the environment variables the runner sets: ``CLASSROOM``,
``ASSIGNMENT``, ``OWNER`` (or ``USERNAME``), ``SUBMISSION_TAG``, ``COMMIT_URL`` (else one built
from ``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY`` and ``GITHUB_SHA``), ``RELEASE_URL``,
``REVIEW_URL``; outside Classroom 50 they default to ``local`` values so the file stays valid.

Points are whole numbers in the contract: a check counts its points when it passes and the whole
points of a partial result otherwise (partial credit is rounded down in this provisional view).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cflib.grading.runner import NotebookResult

__all__ = ["SCHEMA", "SCHEMA_FILE", "result_json", "write_result"]

SCHEMA = "classroom50/result/v1"
SCHEMA_FILE = Path(__file__).with_name("classroom50_result_v1.schema.json")


def _commit(env: Mapping[str, str]) -> str:
    if env.get("COMMIT_URL"):
        return env["COMMIT_URL"]
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_SHA"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/commit/{env['GITHUB_SHA']}"
    return "local"


def result_json(
    results: Sequence[NotebookResult], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``result.json`` object for one student's graded notebooks (public checks only)."""
    env = os.environ if env is None else env
    tests = []
    for r in results:
        for c in r.checks:
            if c.hidden or c.manual:
                continue
            whole = int(c.max_points)
            tests.append(
                {
                    "test-name": f"{r.exercise or '?'} {Path(r.notebook).stem}: {c.name}",
                    "passed": c.passed,
                    "score": whole if c.passed else min(whole, math.floor(c.points)),
                    "max-score": whole,
                }
            )
    commit = _commit(env)
    owner = env.get("OWNER") or env.get("USERNAME") or ""
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "classroom": env.get("CLASSROOM") or "local",
        "assignment": env.get("ASSIGNMENT") or "local",
        "submission": env.get("SUBMISSION_TAG") or "submit/local",
        "commit": commit,
        "release": env.get("RELEASE_URL") or commit,
        "review": env.get("REVIEW_URL") or commit,
        "datetime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "score": sum(t["score"] for t in tests),
        "max-score": sum(t["max-score"] for t in tests),
        "tests": tests,
    }
    if owner:
        result["owner"] = owner
        result["usernames"] = [owner]
    return result


def write_result(
    results: Sequence[NotebookResult], path: str | Path, env: Mapping[str, str] | None = None
) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result_json(results, env), indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")
