"""Print the one-page HTML build of the book to a PDF with headless Chromium, offline.

    python tools/pdf.py _build/pdf/_build/singlehtml/index.html _build/pdf/book.pdf

`make pdf` runs it after `jupyter-book build --builder singlehtml`. A print copy of the page is
written next to it (print.html, so every figure and the bundled MathJax resolve) with a print
style (no sidebars, header or buttons; each page of the book on a new page; code that the
site folds away stays out) and a table of contents built from the pages' titles, linked to them.
Chromium (Debian's `chromium` package) prints it once MathJax has typeset every formula; the PDF
gets an outline (bookmarks) too. Then the PDF is checked with poppler-utils (`pdfinfo`, `pdftotext`): it
must contain every chapter title and no TeX that MathJax left untypeset.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PRINT_CSS = """
<style id="print-book">
@page { size: A4; margin: 16mm 14mm 16mm 14mm; }
@media print {
  .bd-header, .bd-header-article, .header-article, .bd-sidebar-primary, .bd-sidebar-secondary,
  .bd-footer, .bd-footer-article, .bd-footer-content, .prev-next-area, .skip-link,
  .article-header-buttons, .headerlink, .copybtn, #pst-back-to-top, .search-button-field,
  .bd-search, .theme-switch-button, .primary-toggle, .secondary-toggle { display: none !important; }
  .bd-main, .bd-content, .bd-article-container, .bd-article, .bd-page-width, .bd-container,
  .bd-container__inner { max-width: 100% !important; width: 100% !important;
    margin: 0 !important; padding: 0 !important; display: block !important; }
  body { font-size: 10.5pt; }
  span[id^="document-"] + section { break-before: page; }
  #print-toc h1, #print-toc { break-before: avoid; }
  #print-toc { break-after: page; }
  img, figure, .cell_output, table { break-inside: avoid; max-width: 100% !important; }
  pre { white-space: pre-wrap !important; word-break: break-word; font-size: 8.5pt; }
  details.hide { display: none !important; }  /* code the site folds away, as on the site */
  a { color: inherit; text-decoration: none; }
}
#print-toc ol { list-style: none; padding-left: 0; }
#print-toc li { margin: 0.2em 0; }
#print-toc li.part { font-weight: bold; margin-top: 0.8em; }
</style>
"""

TOC_SCRIPT = """
<script id="print-book-toc">
document.addEventListener("DOMContentLoaded", function () {
  // open folded prose (dropdowns, toggled admonitions): a printed page cannot be clicked
  document.querySelectorAll("details:not(.hide)").forEach(function (d) { d.open = true; });
  var article = document.querySelector("article") || document.body;
  // every page of the book starts with <span id="document-NAME"></span><section><hN>
  var heads = [article.querySelector("section[id] > h1")];
  article.querySelectorAll('span[id^="document-"] + section[id]').forEach(function (s) {
    var h = s.querySelector("h1, h2, h3, h4");
    if (h) heads.push(h);
  });
  var nav = document.createElement("nav");
  nav.id = "print-toc";
  var title = document.createElement("h1");
  title.textContent = "Contents";
  nav.appendChild(title);
  var list = document.createElement("ol");
  heads.forEach(function (h, i) {
    if (i === 0 || !h) return;  // the title page itself
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = "#" + h.parentElement.id;
    a.textContent = h.textContent.replace(/[#\\u00b6]$/, "").trim();
    li.appendChild(a);
    list.appendChild(li);
  });
  nav.appendChild(list);
  var first = heads[0] ? heads[0].parentElement : null;
  if (first) { first.insertBefore(nav, heads[0].nextSibling); } else { article.prepend(nav); }
});
</script>
"""

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# TeX that MathJax would have typeset: left in the text, it means the math was not rendered.
# (Only the delimiters: code cells of the book print TeX such as \frac on purpose.)
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]")


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(
        "make pdf needs Chromium (Debian/Ubuntu: sudo apt-get install chromium poppler-utils)"
    )


def the_page(index: Path) -> Path:
    """The one page itself: index.html is a redirect to it when the root page is in a folder."""
    refresh = re.search(
        r'http-equiv="refresh"[^>]*url=([^"]+)"', index.read_text(encoding="utf-8"), flags=re.I
    )
    return index.parent / refresh.group(1).strip() if refresh else index


def print_copy(index: Path) -> Path:
    """Write print.html next to index.html: the one page, with the print style and a toc.

    The one-page build links its figures, styles and MathJax relative to the build's top folder
    (even when the root page lies in a folder), so the copy is written there."""
    text = the_page(index).read_text(encoding="utf-8")
    text = text.replace("</head>", PRINT_CSS + "</head>", 1)
    text = text.replace("</body>", TOC_SCRIPT + "</body>", 1)
    out = index.with_name("print.html")
    out.write_text(text, encoding="utf-8")
    return out


def chapter_titles(index: Path) -> list[str]:
    """The title of every page of the book, as the one-page build shows them."""
    text = the_page(index).read_text(encoding="utf-8")
    pattern = r'<span id="document-[^"]+"></span>\s*<section[^>]*>\s*<h(\d)[^>]*>(.*?)</h\1>'
    titles = [t for _, t in re.findall(pattern, text, flags=re.S)]
    clean = [html.unescape(re.sub(r"<[^>]+>", "", t)).replace("#", "").strip() for t in titles]
    return [re.sub(r"\s+", " ", t) for t in clean if t]


def print_pdf(page: Path, pdf: Path, budget_ms: int = 120_000) -> None:
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)
    cmd = [
        find_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--run-all-compositor-stages-before-draw",
        f"--virtual-time-budget={budget_ms}",  # MathJax typesets within it
        "--no-pdf-header-footer",
        "--generate-pdf-document-outline",
        f"--print-to-pdf={pdf.resolve()}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not pdf.exists():
        raise SystemExit(f"chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def check_pdf(pdf: Path, titles: list[str]) -> tuple[int, str]:
    """(pages, text) of the PDF; fails when a chapter is missing or TeX was left untypeset."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, flags=re.M).group(1))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = re.sub(r"\s+", " ", text)
    missing = [t for t in titles if re.sub(r"\s+", " ", t) not in flat]
    if missing:
        raise SystemExit(f"{pdf}: chapters missing from the PDF: {missing}")
    raw = sorted(set(RAW_TEX.findall(text)))
    if raw:
        raise SystemExit(f"{pdf}: TeX left untypeset by MathJax: {raw}")
    return pages, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path, help="the singlehtml build's index.html")
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--budget-ms", type=int, default=120_000)
    args = parser.parse_args(argv)
    if not args.index.exists():
        raise SystemExit(f"{args.index} does not exist: build the one-page book first")
    if not shutil.which("pdfinfo"):
        raise SystemExit(
            "make pdf checks the PDF with poppler-utils (apt-get install poppler-utils)"
        )
    titles = chapter_titles(args.index)
    start = time.perf_counter()
    print_pdf(print_copy(args.index), args.pdf, args.budget_ms)
    pages, _ = check_pdf(args.pdf, titles)
    print(
        f"pdf: {args.pdf} ({pages} pages, {len(titles)} chapters, "
        f"{args.pdf.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
