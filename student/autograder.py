#!/usr/bin/env python3
"""Classroom 50 autograder for this course: feedback from the public checks.

Classroom 50's runner runs only an ``autograder.py`` it fetches from the classroom's published
configuration, never one in the student's repository: put this file in the ``classroom50``
configuration repository as ``CLASSROOM/autograders/ASSIGNMENT/autograder.py`` (one assignment) or
install it as the classroom default (``gh teacher autograder set-default ORG CLASSROOM --from
autograder.py``). The runner starts it with the student's checkout as working directory; it grades
every notebook in ``exercises/`` there with the course's grader, ``python -m cflib.grade exercises
--classroom50 result.json``, which writes Classroom 50's ``result.json`` into that directory, where
the runner reads it.

Classroom 50 grades where the student controls the code and can read the tests, so it cannot keep
checks hidden: the student edition carries only the public checks, and this score is provisional
feedback. The marks come from the instructor's own run (``python -m cflib.collect``, then
``python -m cflib.grade`` with the hidden checks, in the instructor's repository).

Environment: the runner sets ``CLASSROOM``, ``ASSIGNMENT``, ``SUBMISSION_TAG``, ``COMMIT_URL``,
``RELEASE_URL`` and ``REVIEW_URL``, which go into ``result.json``; it also sets
``USERNAME``/``OWNER``, ``ASSIGNMENT_TYPE`` and ``CLASSROOM50_BUNDLE_DIR``, unused here, because
the runner stamps ``owner``, ``assignment_type``, ``datetime`` and ``submitted_by`` into
``result.json`` itself. Exit status 0 whenever grading ran (a low score is not a runner failure);
a non-zero exit, or no ``result.json``, makes the runner publish an error result (0/0).
(Classroom 50's side: ``cli/gh-teacher/skeleton/dotgithub/scripts/runner.py`` and
``wiki/Advanced-Autograding.md`` in ``foundation50/classroom50``.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    root = Path.cwd()  # the student's checkout: the runner reads ./result.json from here
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
