"""Grade submissions through pytest, for tools that read JUnit XML: one test per check.

``python -m cflib.grading.junit PATH... --junitxml FILE [--seed N] [--timeout S] [--sandbox K]``

It runs pytest with :mod:`cflib.grading.pytest_plugin` so that nothing of the submission takes
part: from a fresh empty folder (no ``pytest.ini``, ``conftest.py`` or ``cflib/`` of a submission
on the way), with ``--noconftest``, no plugin autoloading, no cache, and Python's safe path mode
(``-P``: the working folder is not on ``sys.path``). Each notebook is graded by the trusted grader
in its sandbox, exactly as ``python -m cflib.grade`` does. Exit status: pytest's (0 all checks
passed, 1 some failed, 2 and above: pytest could not run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cflib.grading import sandbox


def command(paths: Sequence[str], junitxml: str, extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line (run it from an empty folder)."""
    args = [sys.executable, "-P", "-m", "pytest", "-p", "cflib.grading.pytest_plugin"]
    args += ["--noconftest", "-p", "no:cacheprovider", "-o", "addopts=", "-q"]
    args += [f"--junitxml={Path(junitxml).resolve()}", *extra]
    for path in paths:
        args += ["--submission", str(Path(path).resolve())]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grading.junit",
        description="Grade notebooks through pytest (one test per check) into JUnit XML.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders of them")
    parser.add_argument("--junitxml", required=True, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--seed", type=int, help="seed of the checks' inputs (default: random)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="per notebook")
    parser.add_argument("--sandbox", choices=sandbox.KINDS, default="auto")
    args = parser.parse_args(argv)
    for path in args.paths:
        if not Path(path).exists():
            parser.error(f"{path}: no such file or folder")
    extra = ["--grading-sandbox", args.sandbox]
    if args.seed is not None:
        extra += ["--grading-seed", str(args.seed)]
    if args.timeout is not None:
        extra += ["--grading-timeout", str(args.timeout)]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONSAFEPATH": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    with tempfile.TemporaryDirectory(prefix="cflib-junit-") as folder:
        return subprocess.run(
            command(args.paths, args.junitxml, extra), cwd=folder, env=env
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
