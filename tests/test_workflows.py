"""The GitHub workflows (against GitHub's schema, offline), the Makefile's set-up, lab, book and pdf
targets, and the incremental book cache (tools/bookcache.py) on a small book of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted(
    [*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("student/.github/workflows/*.yml")]
)
sys.path.insert(0, str(ROOT / "tools"))


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _runs(workflow: dict) -> list[str]:
    return [s.get("run", "") for job in workflow["jobs"].values() for s in job.get("steps", [])]


def _uses(workflow: dict) -> list[dict]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", []) if "uses" in s]


def _check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*cmd, *map(str, paths)], capture_output=True, text=True, timeout=120)


def _make(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(["make", "-n", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- the workflows ------------------------------------------------------------------------------


def test_the_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "pages.yml"} <= names, names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_is_valid_against_the_github_schema(path):
    proc = _check_jsonschema(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    """The check above can fail: a job without runs-on, and a misspelt trigger, are refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: {pushh: {}}\njobs:\n  a:\n    steps:\n      - run: true\n")
    proc = _check_jsonschema(broken)
    assert proc.returncode != 0, proc.stdout


def test_pages_workflow_builds_and_deploys_the_student_edition():
    wf = _load(ROOT / ".github/workflows/pages.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in wf["on"]
    deploy = wf["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["needs"] == "build"
    uses = {s["uses"].split("@")[0]: s for s in _uses(wf)}
    assert "actions/deploy-pages" in uses
    artifact = uses["actions/upload-pages-artifact"]
    assert artifact["with"]["path"] == "_build/student/_build/html"
    python = uses["actions/setup-python"]["with"]
    assert python["cache"] == "pip" and "requirements.txt" in python["cache-dependency-path"]
    runs = "\n".join(_runs(wf))
    setup, student = runs.index("make setup"), runs.index("make student")
    book = runs.index("make -C _build/student book")
    assert setup < student < book, "set up, write the student edition, then build its book"
    assert "download.pytorch.org/whl/cpu" in yaml.safe_dump(wf), "CPU torch"
    assert "make repo-url" in runs and "github.repository" in yaml.safe_dump(wf)


def test_ci_workflow_runs_the_readme_test_command_on_both_pythons():
    wf = _load(ROOT / ".github/workflows/ci.yml")
    assert "push" in wf["on"] and "pull_request" in wf["on"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    python = next(s for s in _uses(wf) if s["uses"].startswith("actions/setup-python"))["with"]
    assert python["python-version"] == "${{ matrix.python-version }}"
    assert python["cache"] == "pip"
    runs = "\n".join(_runs(wf))
    assert "apt-get install -y bubblewrap" in runs
    assert "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in runs
    assert "make setup" in runs and "download.pytorch.org/whl/cpu" in yaml.safe_dump(wf)
    assert ".ci/run" in runs or "make test" in runs
    assert "make test" in (ROOT / ".ci/run").read_text(), ".ci/run calls the README's command"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme


# --- the Makefile -------------------------------------------------------------------------------


def test_requirements_pin_what_the_new_targets_install():
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    from lab import LAB_PACKAGES

    for name in [*LAB_PACKAGES, "check-jsonschema", "jupyter-book"]:
        assert name in pins, f"{name} is not pinned in requirements.txt"


def test_make_setup_takes_torch_from_an_index_only_when_asked():
    plain = _make("setup", "VENV=/nonexistent/venv")
    assert "--index-url" not in plain
    assert "-r requirements.txt" in plain
    assert "ipykernel install --sys-prefix --name coupling-layers" in plain
    assert '--display-name "Coupling Layers (cflib)"' in plain
    cpu = _make("setup", "VENV=/nonexistent/venv", "TORCH_INDEX=https://example.invalid/cpu")
    torch_line = next(line for line in cpu.splitlines() if "--index-url" in line)
    assert '"torch==2.13.0"' in torch_line and "https://example.invalid/cpu" in torch_line
    assert cpu.index("--index-url") < cpu.index("-r requirements.txt"), "torch first"


def test_make_book_pdf_and_lab_run_the_tools():
    book = _make("book", f"VENV={BIN.parent}")
    assert "tools/bookcache.py build --jobs 2" in book and "--force" not in book
    assert "--force" in _make("book", f"VENV={BIN.parent}", "FORCE=1")
    pdf = _make("pdf", f"VENV={BIN.parent}")
    assert "--builder singlehtml --path-output _build/pdf" in pdf
    assert "tools/pdf.py _build/pdf/_build/singlehtml/index.html _build/pdf/book.pdf" in pdf
    lab = _make("lab", "LAB_ARGS=--no-browser")
    assert "tools/lab.py" in lab and "-- --no-browser" in lab
    assert "--torch-index https://x.invalid" in _make("lab", "TORCH_INDEX=https://x.invalid")


def test_lab_sets_up_only_the_exercises_and_opens_them(tmp_path):
    """tools/lab.py --dry-run: the commands a fresh clone runs (no book, no tests)."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/lab.py"),
            "--dry-run",
            "--venv",
            str(tmp_path / "v"),
            "--",
            "--no-browser",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TORCH_INDEX": ""},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "-m venv" in lines[0]
    install = next(line for line in lines if "-c" in line and "jupyterlab" in line)
    packages = install.split("requirements.txt")[1].split()
    assert "jupyterlab" in packages and "torch" in packages
    for name in ("jupyter-book", "pytest", "ruff", "Sphinx"):
        assert name not in packages, f"make lab installs {name}"
    assert any("ipykernel install --sys-prefix --name coupling-layers" in line for line in lines)
    assert "jupyterlab" in lines[-1] and "exercises" in lines[-1] and "--no-browser" in lines[-1]
    assert not (tmp_path / "v").exists(), "a dry run created the environment"


def test_make_repo_url_sets_the_one_repository_setting(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    before = (tmp_path / "_config.yml").read_text().splitlines()
    url = "https://github.com/someone/a-fork"
    proc = subprocess.run(
        ["make", "repo-url", f"REPO_URL={url}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    after = (tmp_path / "_config.yml").read_text().splitlines()
    assert yaml.safe_load("\n".join(after))["repository"]["url"] == url
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1, "one line changes"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert config["execute"]["execute_notebooks"] == "force", "plain builds never reuse a cache"
    assert subprocess.run(["make", "repo-url"], cwd=tmp_path, capture_output=True).returncode


# --- the incremental book cache -----------------------------------------------------------------

PAGE = """---
kernelspec:
  name: python3
  display_name: Python 3
jupytext:
  text_representation:
    format_name: myst
---
# {title}

{text}

```{{code-cell}} ipython3
from mylib import VALUE
print("{title}", VALUE * {factor})
```
"""


def _small_book(root: Path) -> None:
    (root / "chapters").mkdir(parents=True)
    (root / "mylib").mkdir()
    (root / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    for name in ("requirements.txt", "pyproject.toml"):
        (root / name).write_text("")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/start\nchapters:\n  - file: chapters/renamed_two\n"
    )
    (root / "_config.yml").write_text(
        "title: t\nonly_build_toc_files: true\nexclude_patterns: [_build, mylib]\n"
        "execute:\n  execute_notebooks: force\n  timeout: 120\n"
    )
    (root / "chapters" / "start.md").write_text(PAGE.format(title="Start", text="a", factor=1))
    (root / "chapters" / "renamed_two.md").write_text(PAGE.format(title="Two", text="b", factor=2))


@pytest.fixture
def small_book(tmp_path, monkeypatch):
    import bookcache

    _small_book(tmp_path)
    monkeypatch.setattr(bookcache, "DEPENDENCIES", ("mylib", "requirements.txt", "pyproject.toml"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the kernels import mylib from there
    return tmp_path


def test_pages_come_from_the_toc_whatever_they_are_called(small_book):
    import bookcache

    pages = bookcache.toc_pages(small_book)
    assert [p.name for p in pages] == ["start.md", "renamed_two.md"]
    (small_book / "_toc.yml").write_text("format: jb-book\nroot: chapters/missing\n")
    with pytest.raises(SystemExit, match="chapters/missing"):
        bookcache.toc_pages(small_book)


def test_the_dependency_key_follows_the_library_not_the_pages(small_book):
    import bookcache

    key = bookcache.dependency_key(small_book)
    (small_book / "chapters" / "start.md").write_text("changed")
    assert bookcache.dependency_key(small_book) == key, "pages are keyed by their own hash"
    (small_book / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    assert bookcache.dependency_key(small_book) != key, "an edit to the library changes the key"
    key = bookcache.dependency_key(small_book)
    (small_book / "chapters" / "data.csv").write_text("1,2\n")
    assert bookcache.dependency_key(small_book) != key, "data next to the pages is a dependency"


@pytest.mark.slow
def test_only_changed_pages_and_every_page_after_a_library_edit_are_executed(small_book):
    import bookcache

    cache = bookcache.BookCache(small_book)
    executed = lambda: sorted(p.name for p in cache.execute(jobs=2)[0])
    assert executed() == ["renamed_two.md", "start.md"]
    assert executed() == [], "nothing changed: nothing executed"
    page = small_book / "chapters" / "renamed_two.md"
    page.write_text(PAGE.format(title="Two", text="only the prose changed", factor=2))
    assert executed() == [], "a Markdown-only edit needs no execution"
    page.write_text(PAGE.format(title="Two", text="b", factor=3))
    assert executed() == ["renamed_two.md"]
    (small_book / "mylib" / "__init__.py").write_text("VALUE = 5\n")
    assert executed() == ["renamed_two.md", "start.md"], "a library edit re-executes every page"
    from jupyter_cache import get_cache

    outputs = [
        "".join(
            o.get("text", "")
            for c in get_cache(str(cache.path)).get_cache_bundle(r.pk).nb.cells
            for o in c.get("outputs", [])
        )
        for r in get_cache(str(cache.path)).list_cache_records()
    ]
    assert sorted(outputs) == ["Start 5\n", "Two 15\n"], "outputs of the new library"
    page.write_text(PAGE.format(title="Two", text="b", factor="undefined_name"))
    with pytest.raises(SystemExit, match="1 page"):
        cache.execute(jobs=2)
    assert [p.name for p in cache.stale_pages(get_cache(str(cache.path)), [page])] == [
        "renamed_two.md"
    ], "a failing page is never cached"
