"""Gradescope: the autograder zip (``make gradescope``) and its ``results.json``.

``python -m cflib.grading.gradescope build DIR`` writes ``DIR/autograder.zip`` holding, at its root:

- ``setup.sh``: installs the grading dependencies with ``python3 -m pip`` (the ``python3`` on PATH),
  torch from the CPU wheel index, and bubblewrap with ``apt-get`` where it can (the sandbox);
- ``run_autograder`` (executable): grades every notebook under ``$AUTOGRADER_ROOT/submission``
  (default ``/autograder``) with ``python3 -m cflib.grade ... --gradescope``, which writes
  ``$AUTOGRADER_ROOT/results/results.json``;
- the grader: ``cflib/``, ``requirements.txt``, ``pyproject.toml``, and ``checks/`` when the course
  keeps its checks there (hidden checks included: the zip never reaches students).

``results.json`` follows Gradescope's specification: a ``tests`` list with ``name, score,
max_score, output, visibility, number, tags`` for every check of every notebook; hidden checks get
``after_due_date`` visibility (``--gradescope-hidden`` changes it); written answers score 0 with
"awaiting marking" (mark them in a manual Gradescope question); ``stdout_visibility`` is
``hidden``.
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cflib.grading.runner import NotebookResult

__all__ = ["VISIBILITIES", "build_zip", "results_json", "write_results"]

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
ROOT = Path(__file__).resolve().parents[2]
# What grading imports (the exercises' notebooks import torch, numpy, scipy, sympy, matplotlib).
GRADING_PACKAGES = {
    "torch",
    "numpy",
    "scipy",
    "sympy",
    "matplotlib",
    "tqdm",
    "ipykernel",
    "nbformat",
    "nbclient",
}

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
# CFLIB_SETUP_SKIP_INSTALLED=1: install nothing when the packages already import (a local try).
set -euo pipefail
cd "$(dirname "$0")"
if [ "${CFLIB_SETUP_SKIP_INSTALLED:-0}" = 1 ] && python3 -c "import torch, nbclient, ipykernel, sympy, scipy, matplotlib, tqdm, cflib" 2>/dev/null; then
    echo "setup.sh: the grading packages are already installed; nothing to do"
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    # bubblewrap: the sandbox each notebook runs in (without it the grader says marks are unprotected)
    { apt-get update -qq && apt-get install -y -qq bubblewrap; } || echo "setup.sh: could not install bubblewrap" >&2
fi
python3 -m pip install --upgrade pip
python3 -m pip install --index-url https://download.pytorch.org/whl/cpu "$(grep -E '^torch==' requirements.txt)"
python3 -m pip install -r requirements.txt
# the library itself, so that the notebooks' `import cflib` works in their kernels (the package
# holds the library only; the grader runs from this folder, with the checks)
python3 -m pip install --no-deps .
python3 -c "import torch, nbclient, ipykernel, cflib; print('setup.sh: torch', torch.__version__)"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission, in a fresh container.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"  # the zip's contents (Gradescope copies this script to $ROOT itself)
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
# The student, from Gradescope's metadata (the grader names the student in every report).
STUDENT="$(python3 - "$ROOT/submission_metadata.json" <<'PY'
import json, sys
try:
    users = json.load(open(sys.argv[1])).get("users") or [{}]
    print(users[0].get("email") or users[0].get("name") or "")
except (OSError, ValueError):
    print("")
PY
)"
python3 -m cflib.grade "$ROOT/submission" --quiet \
    --gradescope "$ROOT/results/results.json" \
    --gradescope-hidden "${CFLIB_GRADESCOPE_HIDDEN:-after_due_date}" \
    --jobs "${CFLIB_JOBS:-2}" \
    ${STUDENT:+--student "$STUDENT"} \
    --timeout "${CFLIB_TIMEOUT:-300}"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    # No notebook, or the grader could not start: tell the student instead of failing silently.
    python3 - "$ROOT/results/results.json" "$status" <<'PY'
import json, sys
message = ("No .ipynb notebook was found in your submission; upload your exercise notebooks."
           if sys.argv[2] == "2" else f"The grader stopped (status {sys.argv[2]}); tell your instructor.")
json.dump({"score": 0, "output": message, "stdout_visibility": "hidden", "tests": []},
          open(sys.argv[1], "w"), indent=2)
PY
fi
exit 0
"""


def _test_name(result: NotebookResult, check: str) -> str:
    return f"Exercise {result.exercise or '?'} ({Path(result.notebook).name}): {check}"


def results_json(
    results: Sequence[NotebookResult], hidden_visibility: str = "after_due_date"
) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission's graded notebooks."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(
            f"--gradescope-hidden: expected one of {', '.join(VISIBILITIES)}, got {hidden_visibility!r}"
        )
    tests: list[dict[str, Any]] = []
    for n, result in enumerate(results, start=1):
        if result.error:
            tests.append(
                {
                    "name": _test_name(result, "the notebook runs"),
                    "score": 0,
                    "max_score": 0,
                    "output": result.error,
                    "visibility": "visible",
                    "number": f"{n}.0",
                    "tags": [f"exercise-{result.exercise or 'unknown'}", "run"],
                }
            )
        for i, c in enumerate(result.checks, start=1):
            output = c.message
            if c.manual:
                output = f"{c.status}: {c.comment or ''}".rstrip(": ") + f" ({c.message})"
            tests.append(
                {
                    "name": _test_name(result, c.name),
                    "score": c.points,
                    "max_score": c.max_points,
                    "output": output,
                    "visibility": hidden_visibility if c.hidden else "visible",
                    "number": f"{n}.{i}",
                    "tags": [
                        f"exercise-{result.exercise or 'unknown'}",
                        "hidden" if c.hidden else "public",
                        *(["manual"] if c.manual else []),
                    ],
                }
            )
    total = round(sum(r.score for r in results), 6)
    possible = sum(r.max_score for r in results)
    awaiting = sum(c.status == "awaiting marking" for r in results for c in r.checks)
    output = f"{len(results)} notebook(s) graded: {total:g} of {possible:g} points."
    if awaiting:
        output += f" {awaiting} written answer(s) await marking by the instructor."
    return {
        "score": total,
        "output": output,
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": tests,
    }


def write_results(
    results: Sequence[NotebookResult], path: str | Path, hidden_visibility: str = "after_due_date"
) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results_json(results, hidden_visibility), indent=2, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def _grading_requirements(requirements: str) -> str:
    """The pinned lines of ``requirements.txt`` that grading needs."""
    keep = []
    for line in requirements.splitlines():
        name = line.split("#")[0].split("==")[0].strip().lower()
        if name in GRADING_PACKAGES:
            keep.append(line.strip())
    missing = GRADING_PACKAGES - {line.split("==")[0].lower() for line in keep}
    if missing:
        raise ValueError(f"requirements.txt: no pinned line for {', '.join(sorted(missing))}")
    return (
        "# The grading dependencies, pinned as in the course's requirements.txt.\n"
        + "\n".join(keep)
        + "\n"
    )


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_zip(out: str | Path, root: Path = ROOT) -> Path:
    """Write ``out/autograder.zip`` from the course at ``root``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "autograder.zip"
    trees = [root / "cflib"] + ([root / "checks"] if (root / "checks").is_dir() else [])
    with zipfile.ZipFile(target, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        requirements = (root / "requirements.txt").read_text(encoding="utf-8")
        _add(archive, "requirements.txt", _grading_requirements(requirements).encode())
        _add(archive, "pyproject.toml", (root / "pyproject.toml").read_bytes())
        for tree in trees:
            for path in sorted(tree.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    _add(archive, path.relative_to(root).as_posix(), path.read_bytes())
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grading.gradescope",
        description="Build the Gradescope autograder zip.",
    )
    parser.add_argument("command", choices=["build"])
    parser.add_argument("out", metavar="DIR", help="writes DIR/autograder.zip")
    args = parser.parse_args(argv)
    print(build_zip(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
