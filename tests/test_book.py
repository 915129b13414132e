"""Build the book (warnings are errors, every cell executed) and check the HTML a reader gets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The site is built from the student edition (`make student`), as the Pages workflow publishes it:
# this also shows that `make book` works in the tree students get, without solutions.
STUDENT = ROOT / "_build" / "student"
HTML = STUDENT / "_build" / "html"
pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            walk(e.get("chapters", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return files


@pytest.fixture(scope="module")
def built() -> Path:
    """Build the student edition's site from scratch, as the Pages workflow does (`make book` in
    the student tree: every page executed, two at a time, then `jupyter-book build -W -n`),
    unless CFLIB_BOOK_BUILT=1 says a fresh build is already there."""
    if os.environ.get("CFLIB_BOOK_BUILT") == "1" and (HTML / "index.html").exists():
        return HTML
    from cflib.grading.release import build

    build(ROOT, STUDENT)
    bookcache = STUDENT / "tools" / "bookcache.py"
    cmd = [sys.executable, str(bookcache), "build", "--jobs", "2", "--force", "--all"]
    proc = subprocess.run(cmd, cwd=STUDENT, capture_output=True, text=True, timeout=1500)
    log = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, f"jupyter-book build failed:\n{log}"
    return HTML


def _pages(built: Path) -> dict[str, str]:
    return {f: (built / f"{f}.html").read_text(encoding="utf-8") for f in _toc_files()}


def test_every_toc_page_is_built(built):
    missing = [f for f in _toc_files() if not (built / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


def test_math_is_typeset_by_a_bundled_mathjax(built):
    pages = _pages(built)
    for name, html in pages.items():
        scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html, flags=re.I)
        for src in scripts:
            assert not src.startswith(("http:", "https:", "//")), f"{name}: MathJax from {src}"
            assert (built / Path(name).parent / src.split("?")[0]).resolve().exists(), src
        assert not re.search(r'src="(https?:)?//[^"]*(cdn|jsdelivr|unpkg)', html), name
    assert any("mathjax" in h.lower() for h in pages.values())
    n_math = sum(h.count('class="math') for h in pages.values())
    assert n_math > 50, f"only {n_math} math elements in the whole book"


def test_no_raw_dollar_math_or_broken_references(built):
    for name, html in _pages(built).items():
        text = re.sub(r"<(script|style|pre)\b.*?</\1>", "", html, flags=re.S)
        text = re.sub(r'<div class="highlight.*?</div>', "", text, flags=re.S)
        assert "$$" not in text, f"{name}: raw $$ in the page"
        assert "??" not in re.sub(r"<[^>]+>", "", text).replace("???", ""), f"{name}: broken ref ??"


def test_tables_that_cells_display_are_rendered(built):
    """Cells display Markdown tables of measured numbers; they must become HTML tables, not text
    with pipes (a CommonMark renderer has no tables; the typographer turns '---' into dashes)."""
    pages = _pages(built)
    for name, html in pages.items():
        text = re.sub(r"<(script|style|pre)\b.*?</\1>", "", html, flags=re.S)
        text = re.sub(r'<div class="highlight.*?</div>', "", text, flags=re.S)
        text = re.sub(r"<[^>]+>", "", text)
        for raw in ("|---", "|\u2014", "\u2014:|", "---:|"):
            assert raw not in text, f"{name}: a Markdown table printed as text ({raw!r})"
    assert pages["book/appendix_engineering"].count("<table") >= 3
    assert pages["book/04b_multiscale"].count("<table") >= 2


def test_no_cell_raised(built):
    for name, html in _pages(built).items():
        assert "Traceback (most recent call last)" not in html, f"{name}: a cell raised"
        assert 'class="output traceback' not in html, f"{name}: a cell raised"


def test_chapters_have_figures_that_exist(built):
    pages = _pages(built)
    total = 0
    for name, html in pages.items():
        srcs = re.findall(r'<img[^>]+src="([^"]+)"', html)
        for src in srcs:
            if src.startswith("data:"):
                continue
            assert (built / Path(name).parent / src).resolve().exists(), f"{name}: missing {src}"
        if name.startswith("book/") and name not in ("book/references", "book/exercises"):
            assert srcs, f"{name}: a chapter without a figure"
        total += len(srcs)
    assert total >= 30, f"only {total} figures in the book"


def _solution_lines() -> set[str]:
    """Distinctive lines of the solution blocks (see :func:`cflib.grading.release.solution_lines`)."""
    from cflib.grading.release import solution_lines

    return solution_lines(ROOT / "solutions")


def _visible_lines(html: str) -> set[str]:
    """The page's text as a reader sees it, line by line: tags removed, entities decoded."""
    import html as html_lib

    text = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
    return {line.strip() for line in text.splitlines()}


def test_no_solution_text_on_the_site_or_in_exercises(built):
    solution_lines = _solution_lines()
    assert len(solution_lines) > 50, f"found only {len(solution_lines)} solution lines to look for"
    pages = {p.relative_to(built): p.read_text(encoding="utf-8") for p in built.rglob("*.html")}
    links = [name for name, h in pages.items() if re.search(r'href="[^"]*solutions/', h)]
    assert not links, f"links to solutions/ on {links[:3]}"
    assert not (built / "solutions").exists(), "solution pages in the default site"
    for name, html in pages.items():
        leaked = solution_lines & _visible_lines(html)
        assert not leaked, f"solution text on the site, {name}: {sorted(leaked)[:3]}"
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        shipped = {line.strip() for cell in cells for line in "".join(cell["source"]).splitlines()}
        leaked = solution_lines & shipped
        assert not leaked, f"solution text in {path.name}: {sorted(leaked)[:3]}"
