"""The student edition (``make student``) and the library that practitioners install: neither
carries anything for the instructor's eyes only, and the student tree passes its own tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from cflib.grading.release import build, check_markers, hidden_lines, scan, solution_lines

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "student"
    build(ROOT, out)
    return out


def test_the_scan_reads_every_file_and_finds_nothing(edition: Path) -> None:
    files = [p for p in edition.rglob("*") if p.is_file()]
    assert len(files) > 80
    assert scan(edition, ROOT) == []
    assert len(solution_lines(ROOT / "solutions")) > 50  # what it looks for is there to find
    assert len(hidden_lines(ROOT / "checks")) > 30


def test_the_tree_holds_what_a_class_needs_and_no_instructor_file(edition: Path) -> None:
    for needed in (
        "README.md",
        "Makefile",
        "requirements.txt",
        "pyproject.toml",
        "_config.yml",
        "_toc.yml",
        "cflib/__init__.py",
        "cflib/grading/runner.py",
        "checks/ex03.py",
        "exercises/03_checkerboard.ipynb",
        "book/intro.md",
        ".github/workflows/feedback.yml",
        "tests/test_exercises.py",
        "tests/test_layers.py",
    ):
        assert (edition / needed).is_file(), needed
    assert not (edition / "solutions").exists()
    assert not list(edition.rglob("*_hidden.py"))
    assert not (edition / "tests" / "test_grading.py").exists()
    assert not (edition / "tests" / "wrong_answers").exists()
    assert not (edition / "student").exists()
    readme = (edition / "README.md").read_text()
    assert "hidden checks" in readme.lower() and "make test" in readme
    assert "GitHub Classroom" not in readme


def test_every_file_the_book_reads_is_in_the_tree(edition: Path) -> None:
    """The site is built from this tree (the Pages workflow): a file a chapter reads by a relative
    path must be in it, or that chapter fails to execute."""
    read = {
        (page.parent / name).resolve().relative_to(ROOT)
        for page in (ROOT / "book").glob("*.md")
        for name in re.findall(r"Path\(\"(\.\./[^\"]+)\"\)", page.read_text())
    }
    assert Path("benchmarks/results/latest.json") in read  # the appendix's measurements
    assert all((edition / path).is_file() for path in read), read


def test_the_scan_finds_each_kind_of_leak(edition: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(edition, tree)
    line = sorted(solution_lines(ROOT / "solutions"))[0]
    hidden = sorted(hidden_lines(ROOT / "checks"))[0]
    (tree / "book" / "leak.md").write_text(f"# Leak\n\n    {line}\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = 1\n{hidden}")])
    nb.cells[0].outputs = []
    nbformat.write(nb, tree / "exercises" / "99_leak.ipynb")
    shutil.copy(ROOT / "checks" / "ex03_hidden.py", tree / "checks" / "ex03_hidden.py")
    (tree / "checks" / "ex09.py").write_text("def reference_mask(h, w):\n    return 1\n")
    (tree / "cflib" / "extra.cpython-311.pyc").write_bytes(b"\x00\x01" + line.encode())
    found = "\n".join(scan(tree, ROOT))
    assert "book/leak.md: 1 line(s)" in found
    assert "exercises/99_leak.ipynb: 1 line(s)" in found
    assert "checks/ex03_hidden.py: an instructor's file" in found
    assert "checks/ex09.py: a reference answer" in found
    assert "cflib/extra.cpython-311.pyc: an instructor's file" in found


def test_an_open_solution_marker_is_named_before_anything_leaks(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Exercise 09"),
            nbformat.v4.new_code_cell("def f(x):\n    # BEGIN SOLUTION\n    return 2 * x\n"),
        ]
    )
    nbformat.write(nb, tmp_path / "09_open.ipynb")
    with pytest.raises(ValueError, match=r"09_open.ipynb, cell 2 .*BEGIN SOLUTION"):
        check_markers(tmp_path)


def test_the_student_tree_passes_its_own_tests_from_a_fresh_clone(
    edition: Path, tmp_path: Path
) -> None:
    git = ["git", "-c", "user.name=course", "-c", "user.email=course@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(edition)], check=True)
    subprocess.run([*git, "-C", str(edition), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(edition), "commit", "-q", "-m", "release"], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(edition), str(clone)], check=True)
    makefile = (clone / "Makefile").read_text()
    assert "\ntest: " in makefile and "pytest" in makefile
    # the README's test command is `make test`; run what it runs, with this environment's packages
    # and the clone's cflib first on the path (a fresh .venv would only repeat the installs)
    env = {**os.environ, "PYTHONPATH": str(clone)}
    for command in (["-m", "ruff", "check", "."], ["-m", "ruff", "format", "--check", "."]):
        run = subprocess.run([sys.executable, *command], cwd=clone, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-2000:]
    where = subprocess.run(
        [sys.executable, "-c", "import cflib; print(cflib.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith(str(clone)), where.stdout
    # Every test file of the edition is collected (none needs an instructor's file). The library's
    # test files are this repository's, byte for byte, and pass in this suite with the same cflib,
    # so only the edition's own tests are run again here, in the clone.
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    collected = subprocess.run(
        [*pytest, "--collect-only", "-q"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert collected.returncode == 0, collected.stdout[-4000:]
    own = []
    for path in sorted((clone / "tests").glob("test_*.py")):
        assert path.name in collected.stdout, f"{path.name}: no test collected"
        mine = ROOT / "tests" / path.name
        if mine.exists():
            assert mine.read_bytes() == path.read_bytes(), f"{path.name} differs from the main copy"
        else:
            own.append(str(path.relative_to(clone)))
    assert own == ["tests/test_exercises.py"]
    run = subprocess.run(
        [*pytest, "-q", "-n", "2", *own],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout.splitlines()[-1]


def test_the_installed_library_carries_no_course_answers(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the repository
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", "_build", ".git", "build"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert all(n.startswith(("cflib/", "coupling_layers_course-")) for n in names), names
        assert "cflib/grading/runner.py" in names  # the machinery, without any exercise
        for name in names:
            text = archive.read(name).decode("utf-8", "replace")
            assert "BEGIN SOLUTION" not in text or name.startswith("cflib/grading/"), name
            assert not re.search(r"^def reference_|^EXERCISE = |^@EXERCISE\.check", text, re.M), (
                name
            )
            assert not re.search(r"(^|/)ex\d\d(_hidden)?\.py$", name), name
