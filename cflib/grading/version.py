"""The grader's version: a content hash of the code that decides the marks.

It covers every Python file of the grading package (the folder of :mod:`cflib.grading`), the
command line (:mod:`cflib.grade`) and the files of the exercise modules actually loaded (found with
``inspect.getfile`` on their checks, so it follows the checks wherever they are kept). Two reports
with the same ``grader_version`` and ``seed`` were graded by the same code on the same inputs.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import cache
from pathlib import Path

__all__ = ["grader_files", "grader_version"]


def grader_files() -> list[Path]:
    """The files the version hashes, resolved, without duplicates, in a stable order."""
    import cflib.grade
    import cflib.grading
    from cflib.grading.checks import exercise_numbers, load_exercise

    package = Path(inspect.getfile(cflib.grading)).resolve().parent
    files = {p.resolve() for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    files.add(Path(inspect.getfile(cflib.grade)).resolve())
    for number in exercise_numbers():
        for check in load_exercise(number).checks:
            files.add(Path(inspect.getfile(check.function)).resolve())
    return sorted(files)


@cache
def grader_version() -> str:
    """``sha256:`` and 16 hex digits of the hash of :func:`grader_files` (names and contents;
    a name is the file's path below its package's parent, so the hash does not depend on where the
    course is checked out)."""
    digest = hashlib.sha256()
    for path in grader_files():
        parts = path.parts
        name = "/".join(parts[-3:]) if len(parts) >= 3 else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()[:16]}"
