#!/usr/bin/env python3
"""Classroom 50 autograder for this course: feedback from the public checks.

Classroom 50 runs this script in the student's repository (upload it as the assignment's
``autograder.py``, or keep it at the root of the template repository). It grades every notebook in
``exercises/`` with the course's grader, ``python -m cflib.grade exercises --classroom50
result.json``, and so writes Classroom 50's ``result.json``.

Classroom 50 grades where the student controls the code and can read the tests, so it cannot keep
checks hidden: the student edition carries only the public checks, and this score is provisional
feedback. The marks come from the instructor's own run (``python -m cflib.collect``, then
``python -m cflib.grade`` with the hidden checks, in the instructor's repository).

Environment: Classroom 50's runner sets ``CLASSROOM``, ``ASSIGNMENT``, ``OWNER``/``USERNAME``,
``SUBMISSION_TAG``, ``COMMIT_URL``, ``RELEASE_URL``, which go into ``result.json``. Exit status 0
whenever grading ran (a low score is not a runner failure).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    root = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    probe = subprocess.run([sys.executable, "-c", "import cflib.grade"], cwd=root, check=False)
    if probe.returncode != 0:  # a fresh runner: install the course (CPU torch is in requirements)
        pip = [sys.executable, "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", "requirements.txt"], cwd=root, check=True)
        subprocess.run([*pip, "--no-deps", "-e", "."], cwd=root, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "cflib.grade", "exercises", "--classroom50", "result.json"],
        cwd=root,
        check=False,
    )
    if not (root / "result.json").is_file():
        print("autograder.py: the grader wrote no result.json", file=sys.stderr)
        return done.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
