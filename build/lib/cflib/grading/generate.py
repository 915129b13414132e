"""Generate ``exercises/`` from ``solutions/``, the single source of every exercise.

``python -m cflib.grading.generate [--force] [--check] [NAMES...]`` (``make exercises``), run from
the repository root. NAMES pick notebooks (``01``, ``01_affine_jacobian`` or a path); default all.

In code cells, the lines from ``# BEGIN SOLUTION [hint]`` to ``# END SOLUTION`` become
``raise NotImplementedError("hint")`` at the marker's indentation. In Markdown cells,
``<!-- BEGIN SOLUTION -->...<!-- END SOLUTION -->`` becomes :data:`~.markdown.ANSWER_PROMPT`.
Outputs and execution counts are dropped; the metadata gets ``"mystnb": {"execution_mode": "off"}``
(the book shows exercises without running them) and ``"cflib": {"exercise", "generated_from",
"generated_hash"}``. ``generated_hash`` hashes the cells' types and sources: a notebook whose cells no
longer match it was edited by someone, and is not overwritten without ``--force``. Running a notebook
(outputs, counts) is not an edit. ``--check`` writes nothing and fails when ``exercises/`` is out of
date.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from cflib.grading.markdown import ANSWER_PROMPT

__all__ = ["content_hash", "generate", "make_exercise", "render", "strip_code", "strip_markdown"]

DEFAULT_HINT = "Replace this line with your answer."
_CODE_BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\b[ :]*(.*?)\s*$")
_CODE_END = re.compile(r"^\s*# END SOLUTION\s*$")
_MD_BLOCK = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.S)


def strip_code(source: str, where: str = "cell") -> str:
    """Replace each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block by ``raise NotImplementedError``.

    Raises:
        ValueError: unbalanced or nested markers (``where`` names the cell).
    """
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        begin = _CODE_BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(f"{where}: nested '# BEGIN SOLUTION'")
            inside = True
            hint = json.dumps(begin.group(2) or DEFAULT_HINT, ensure_ascii=False)
            out.append(f"{begin.group(1)}raise NotImplementedError({hint})")
        elif _CODE_END.match(line):
            if not inside:
                raise ValueError(f"{where}: '# END SOLUTION' without '# BEGIN SOLUTION'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '# BEGIN SOLUTION' without '# END SOLUTION'")
    return "\n".join(out)


def strip_markdown(source: str, where: str = "cell") -> str:
    """Replace each ``<!-- BEGIN SOLUTION -->...<!-- END SOLUTION -->`` by the answer prompt."""
    stripped = _MD_BLOCK.sub(ANSWER_PROMPT, source)
    if "BEGIN SOLUTION" in stripped or "END SOLUTION" in stripped:
        raise ValueError(f"{where}: unbalanced '<!-- BEGIN/END SOLUTION -->' markers")
    return stripped


def content_hash(nb: Any) -> str:
    """SHA-256 of the cells' types and sources (what an edit changes; running does not)."""
    cells = [[c["cell_type"], "".join(c["source"])] for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def make_exercise(solution: Any, number: str, source_name: str) -> Any:
    """The exercise notebook generated from a solution notebook (a new object)."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells, start=1):
        where = f"{source_name}, cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = strip_markdown(cell.source, where)
    nb.metadata["mystnb"] = {"execution_mode": "off"}
    nb.metadata["cflib"] = {
        "exercise": number,
        "generated_from": source_name,
        "generated_hash": content_hash(nb),
    }
    return nb


def render(nb: Any) -> str:
    """The notebook's file text (what ``exercises/`` holds, byte for byte)."""
    return nbformat.writes(nb, version=4) + "\n"


@dataclass(frozen=True)
class Outcome:
    """What happened to one exercise notebook: ``status`` and the path."""

    path: Path
    status: str  # "written", "unchanged", "stale", "refused"


def _number(path: Path) -> str:
    match = re.match(r"(\d+)_", path.name)
    if not match:
        raise ValueError(f"{path}: expected a solution named NN_name.ipynb")
    return f"{int(match.group(1)):02d}"


def _select(solutions: Path, names: Sequence[str]) -> list[Path]:
    available = sorted(solutions.glob("[0-9]*_*.ipynb"))
    if not names:
        return available
    chosen = []
    for name in names:
        stem = Path(name).stem
        if stem.isdigit():
            hits = [p for p in available if _number(p) == f"{int(stem):02d}"]
        else:
            hits = [p for p in available if p.stem == stem]
        if not hits:
            raise ValueError(f"{name}: no such solution notebook in {solutions}")
        chosen.extend(hits)
    return list(dict.fromkeys(chosen))


def generate(
    names: Sequence[str] = (),
    *,
    solutions: Path = Path("solutions"),
    exercises: Path = Path("exercises"),
    force: bool = False,
    check: bool = False,
) -> list[Outcome]:
    """Write (or with ``check``, compare) the exercise of each chosen solution.

    Raises:
        ValueError: an unknown name or a malformed solution.
    """
    outcomes = []
    for path in _select(solutions, names):
        solution = nbformat.read(path, as_version=4)
        source_name = f"{solutions.name}/{path.name}"
        text = render(make_exercise(solution, _number(path), source_name))
        target = exercises / path.name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            outcomes.append(Outcome(target, "unchanged"))
        elif check:
            outcomes.append(Outcome(target, "stale"))
        elif current is not None and not force and _edited(current):
            outcomes.append(Outcome(target, "refused"))
        else:
            exercises.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            outcomes.append(Outcome(target, "written"))
    return outcomes


def _edited(text: str) -> bool:
    """Whether a notebook's cells differ from those it was generated with (or it is not ours)."""
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception:
        return True
    stored = nb.metadata.get("cflib", {}).get("generated_hash")
    return stored != content_hash(nb)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.grading.generate",
        description="Generate exercises/ from solutions/ (never overwriting edited notebooks).",
    )
    parser.add_argument("names", nargs="*", help="notebooks to generate: 01, 01_name or a path")
    parser.add_argument("--force", action="store_true", help="overwrite edited notebooks too")
    parser.add_argument("--check", action="store_true", help="write nothing; fail if out of date")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--exercises", type=Path, default=Path("exercises"))
    args = parser.parse_args(argv)
    if not args.solutions.is_dir():
        parser.error(f"--solutions: {args.solutions} is not a folder")
    try:
        outcomes = generate(
            args.names,
            solutions=args.solutions,
            exercises=args.exercises,
            force=args.force,
            check=args.check,
        )
    except ValueError as error:
        parser.error(str(error))
    notes = {
        "written": "written",
        "unchanged": "up to date",
        "stale": "OUT OF DATE (run: python -m cflib.grading.generate)",
        "refused": "NOT overwritten: it was edited (use --force to overwrite)",
    }
    for outcome in outcomes:
        print(f"{outcome.path}: {notes[outcome.status]}")
    return 1 if any(o.status in ("stale", "refused") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
