"""The student edition: ``python -m cflib.grading.release [--out DIR]`` (``make student``).

It writes a complete tree (default ``_build/student/``) that an instructor pushes as the class's
template repository: the library, the public checks, the exercises, the book's sources and
configuration, the packaging and set-up files, the tests that apply there, and the files of
``student/`` (a README written for students, their Makefile, a feedback workflow, ...), which take
the place of the instructor's.

Nothing for the instructor's eyes only goes in: no ``solutions/``, no hidden checks
(``checks/exNN_hidden.py``), no reference answers, no tests that use them. After writing the tree
:func:`scan` reads every file in it (text and binary alike) for what must not be there, and the
release fails, naming the file and what it holds, when anything is found:

- a solution marker (``BEGIN SOLUTION``), or a distinctive line of a solution block (code or written
  answer) of any solution notebook;
- a line of a hidden check's code, a ``reference_`` name, a check registered ``hidden=True``;
- a file whose name is one of the instructor's (``*_hidden.py``, ``solutions/``, ``*.pyc``).

Before copying, every solution notebook's markers are checked (an unclosed marker would leak the
rest of the cell), and ``exercises/`` must be up to date with ``solutions/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat

from cflib.grading.generate import strip_code, strip_markdown

__all__ = ["build", "hidden_lines", "scan", "solution_lines"]

# What the student tree holds, relative to the course's root (folders are copied whole, minus
# caches); then student/ is laid over it.
INCLUDE = (
    "cflib",
    "book",
    "exercises",
    "tools",
    "_config.yml",
    "_toc.yml",
    "requirements.txt",
    "pyproject.toml",
    ".gitignore",
    "tests/conftest.py",
    "tests/helpers.py",
    # the measurements the engineering appendix reads and shows (not the benchmark code)
    "benchmarks/results/latest.json",
    "benchmarks/results/latest.md",
)
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", "_build", "*.egg-info"
)
# Tests of the instructor's tree that use what students do not get (solutions, hidden checks).
INSTRUCTOR_ONLY = re.compile(r"solutions/|BEGIN SOLUTION|_hidden|wrong_answers|grading_fixtures")
# ... and tests of the instructor's own set-up (its workflows, Makefile targets).
INSTRUCTOR_TESTS = {"test_workflows.py"}
_HEADER = re.compile(r"^(if|elif|else|for|while|with|try|except|def|return)\b.*:?$")


def _distinctive(lines: Iterable[str], given: set[str]) -> set[str]:
    """Lines worth looking for: long, not comments or bare headers, not also in shared code."""
    return {
        line
        for line in (raw.strip() for raw in lines)
        if len(line) >= 30
        and line not in given
        and not line.startswith(("#", "<!--", '"""', "from ", "import "))
        and not _HEADER.match(line)
    }


def solution_lines(solutions: Path) -> set[str]:
    """Distinctive lines of the solution blocks (code and Markdown) of the notebooks in
    ``solutions``: at least 30 characters, not a comment or a bare control-flow header, and not
    also in the code that the notebooks give to students."""
    inside: set[str] = set()
    given: set[str] = set()
    for path in sorted(solutions.glob("[0-9]*_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            parts = re.split(r"(BEGIN SOLUTION.*?END SOLUTION)", cell.source, flags=re.S)
            for part in parts:
                if part.startswith("BEGIN SOLUTION"):  # its first line is the marker's comment
                    inside.update(part.splitlines()[1:])
                else:
                    given.update(line.strip() for line in part.splitlines())
    return _distinctive(inside, given)


def hidden_lines(checks: Path) -> set[str]:
    """Distinctive lines of the hidden check modules that their public modules do not share."""
    public: set[str] = set()
    for path in checks.glob("ex*.py"):
        if not path.stem.endswith("_hidden"):
            public.update(line.strip() for line in path.read_text().splitlines())
    hidden: list[str] = []
    for path in checks.glob("ex*_hidden.py"):
        hidden.extend(path.read_text().splitlines())
    return _distinctive(hidden, public)


def check_markers(solutions: Path) -> None:
    """Every solution notebook's markers balance (else its rest would ship).

    Raises:
        ValueError: names the notebook and the cell.
    """
    for path in sorted(solutions.glob("[0-9]*_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for number, cell in enumerate(nb.cells, start=1):
            where = f"{path}, cell {number} (id {cell.get('id', '?')})"
            if cell.cell_type == "code":
                strip_code(cell.source, where)
            elif cell.cell_type == "markdown":
                strip_markdown(cell.source, where)


def scan(tree: Path, root: Path) -> list[str]:
    """What in ``tree`` is for the instructor's eyes only, one line per finding (empty: clean).

    Every file is read, as text or as bytes decoded leniently; ``root`` is the instructor's tree
    whose solutions and hidden checks are looked for.
    """
    secret = solution_lines(root / "solutions") | hidden_lines(root / "checks")
    # The library is public by design: a line it shares with a solution reveals nothing new (an
    # answer that calls it earns nothing, see cflib.grading.sandbox).
    secret -= {
        line.strip()
        for path in (root / "cflib").rglob("*.py")
        for line in path.read_text().splitlines()
    }
    findings: list[str] = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts):
        name = path.relative_to(tree)
        if path.name.endswith(("_hidden.py", ".pyc")) or "solutions" in name.parts:
            findings.append(f"{name}: an instructor's file")
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        if "BEGIN SOLUTION" in text and name.parts[:2] != ("cflib", "grading"):
            findings.append(f"{name}: a solution marker")
        if re.search(r"\breference_\w+\s*\(", text) and name.parts[0] == "checks":
            findings.append(f"{name}: a reference answer")
        if re.search(r"hidden\s*=\s*True", text) and name.parts[0] == "checks":
            findings.append(f"{name}: a hidden check")
        lines = {line.strip() for line in text.splitlines()}
        if path.suffix == ".ipynb":
            try:
                nb = nbformat.reads(text, as_version=4)
                lines |= {line.strip() for cell in nb.cells for line in cell.source.splitlines()}
            except Exception:  # not a notebook after all: its raw lines were read above
                pass
        leaked = sorted(secret & lines)
        if leaked:
            findings.append(
                f"{name}: {len(leaked)} line(s) of solutions or hidden checks, e.g. {leaked[0]!r}"
            )
    return findings


def _copy(root: Path, out: Path) -> None:
    for entry in INCLUDE:
        source = root / entry
        if source.is_dir():
            shutil.copytree(source, out / entry, ignore=IGNORE)
        elif source.is_file():
            (out / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / entry)
    (out / "checks").mkdir()
    for path in sorted((root / "checks").glob("*.py")):
        if not path.stem.endswith("_hidden"):
            shutil.copy2(path, out / "checks" / path.name)
    for path in sorted((root / "tests").glob("test_*.py")):
        if path.name not in INSTRUCTOR_TESTS and not INSTRUCTOR_ONLY.search(path.read_text()):
            shutil.copy2(path, out / "tests" / path.name)
    overlay = root / "student"
    for path in sorted(overlay.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            target = out / path.relative_to(overlay)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def build(root: Path, out: Path) -> list[Path]:
    """Write the student edition of the course at ``root`` into ``out`` (replaced) and scan it.

    Returns the files written.

    Raises:
        ValueError: an unbalanced solution marker, ``exercises/`` out of date, or a finding of
            :func:`scan` (the tree is removed then).
    """
    from cflib.grading.generate import generate

    check_markers(root / "solutions")
    outcomes = generate(solutions=root / "solutions", exercises=root / "exercises", check=True)
    stale = [str(o.path) for o in outcomes if o.status != "unchanged"]
    if stale:
        raise ValueError(
            "exercises/ is out of date with solutions/ (run `make exercises`): " + ", ".join(stale)
        )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _copy(root, out)
    findings = scan(out, root)
    if findings:
        shutil.rmtree(out)
        raise ValueError("the student edition would leak:\n  " + "\n  ".join(findings))
    return sorted(p for p in out.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grading.release",
        description="Write the student edition of the course (no solutions, no hidden checks).",
    )
    parser.add_argument("--root", default=".", help="the course's instructor tree (default: .)")
    parser.add_argument("--out", default="_build/student", help="where (default: _build/student)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if not (root / "solutions").is_dir() or not (root / "checks").is_dir():
        parser.error(f"--root {args.root}: not the instructor's tree (no solutions/ or checks/)")
    try:
        files = build(root, Path(args.out).resolve())
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote the student edition: {len(files)} files in {args.out}, scanned: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
