"""Incremental, parallel execution of the book's pages, then the Jupyter Book build.

    python tools/bookcache.py build [--jobs N] [--builder html|singlehtml] [--path-output DIR]
    python tools/bookcache.py key           # print the dependency key
    python tools/bookcache.py status        # which pages would be executed

Jupyter Book's own cache (``execute_notebooks: cache``) hashes only a page's code cells, so an edit
to ``cflib`` would serve stale outputs, and it executes pages one at a time. This script keeps
the same jupyter-cache database (``_build/.jupyter_cache``) but

* keys it on every page's code cells (jupyter-cache's hash: code, cell metadata, kernel) AND on a
  dependency key: a hash of ``cflib/``, ``requirements.txt``, ``pyproject.toml``,
  ``benchmarks/results/`` and every file next to a page that is not itself a page (data a page
  reads). When the dependency key changes, the whole cache is dropped and every page re-executed;
* executes the pages that have no cached outputs in a pool of ``--jobs`` processes, each page in
  its own kernel with its folder as working directory (as Jupyter Book does), longest first
  (durations of the last run are kept in ``_build/.jupyter_cache.times.json``);
* then runs ``jupyter-book build -W -n --keep-going`` with a generated copy of ``_config.yml``
  whose only change is ``execute_notebooks: cache``, so the book merges the cached outputs
  and executes nothing itself (checked: the build fails if it added cache records).

The pages are read from ``_toc.yml``, whatever they are called. A page whose cell raises fails
the build (with the traceback) and is never cached. ``_config.yml`` itself keeps
``execute_notebooks: force``, so a plain ``jupyter-book build .`` (and the test suite) always
builds from scratch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE_SUFFIXES = (".md", ".ipynb")
# Besides the pages themselves, what executing a page depends on.
DEPENDENCIES = ("cflib", "requirements.txt", "pyproject.toml", "benchmarks/results")
IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache"}


def toc_pages(root: Path = ROOT) -> list[Path]:
    """Every page listed in _toc.yml (root, parts, chapters, sections), as existing files."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            for key in ("sections", "chapters", "parts"):
                walk(entry.get(key))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    walk(toc.get("sections"))
    pages = []
    for name in names:
        path = root / name
        candidates = [path] if path.suffix in PAGE_SUFFIXES else []
        candidates += [path.with_name(path.name + s) for s in PAGE_SUFFIXES]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise SystemExit(f"_toc.yml lists {name!r}, but no {name}.md or .ipynb exists")
        pages.append(found)
    return pages


def _files(path: Path):
    if path.is_file():
        yield path
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and not (IGNORED_PARTS & set(p.parts)) and p.suffix != ".pyc":
                yield p


def dependency_files(root: Path = ROOT, pages: list[Path] | None = None) -> list[Path]:
    """The files whose content, besides each page's own code, decides what the pages output."""
    pages = toc_pages(root) if pages is None else pages
    files = {f for dep in DEPENDENCIES for f in _files(root / dep)}
    for folder in {p.parent for p in pages}:
        for f in folder.iterdir():
            if f.is_file() and f.suffix not in PAGE_SUFFIXES and not f.name.startswith("."):
                files.add(f)
    return sorted(files)


def dependency_key(root: Path = ROOT, pages: list[Path] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(f"python {sys.version_info[:2]}\n".encode())
    for f in dependency_files(root, pages):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def read_page(path: Path):
    """The notebook that myst-nb makes of a page (same reader, so the same cache hash)."""
    import nbformat
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return nbformat.reads(text, as_version=4)
    if not is_myst_markdown_notebook(text):
        return None  # a plain Markdown page: nothing to execute
    return read_myst_markdown_notebook(
        text, config=MdParserConfig(), add_source_map=True, path=str(path)
    )


def executable(nb) -> bool:
    """Whether Jupyter Book executes this notebook (not plain Markdown, not turned off)."""
    return nb is not None and (nb.metadata.get("mystnb") or {}).get("execution_mode") != "off"


def _execution_settings(root: Path) -> dict:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    execute = config.get("execute") or {}
    return {"timeout": execute.get("timeout", 30), "allow_errors": execute.get("allow_errors")}


def _execute(path: str, timeout: int, allow_errors: bool):
    """Worker: execute one page in its own folder.

    Returns (path, wall seconds, CPU seconds of its kernel, notebook, error or None)."""
    from jupyter_cache.executors.utils import single_nb_execution

    try:
        import resource
    except ImportError:  # Windows: no CPU time per page
        resource = None

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    nb = read_page(Path(path))
    children = (
        lambda: (  # the kernel is this worker's child
            sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]) if resource else float("nan")
        )
    )
    usage = children()
    start = time.perf_counter()
    result = single_nb_execution(
        nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=bool(allow_errors)
    )
    seconds = time.perf_counter() - start
    cpu = children() - usage
    error = result.exc_string if result.err is not None else None
    return path, seconds, cpu, result.nb, error


class BookCache:
    def __init__(self, root: Path = ROOT, cache: Path | None = None):
        self.root = root
        self.path = cache or root / "_build" / ".jupyter_cache"
        self.key_file = self.path.with_name(self.path.name + ".key")
        self.times_file = self.path.with_name(self.path.name + ".times.json")

    def open(self, key: str):
        """The jupyter-cache, dropped first when it was filled under another dependency key."""
        from jupyter_cache import get_cache

        old = self.key_file.read_text().strip() if self.key_file.exists() else None
        if old != key:
            if self.path.exists():
                print(f"bookcache: cflib or a dependency changed: dropping {self.path.name}")
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cache = get_cache(str(self.path))
        self.key_file.write_text(key + "\n")
        return cache

    def stale_pages(self, cache, pages: list[Path]) -> list[Path]:
        stale = []
        for page in pages:
            nb = read_page(page)
            if not executable(nb):
                continue
            try:
                cache.match_cache_notebook(nb)
            except KeyError:
                stale.append(page)
        return stale

    def times(self) -> dict[str, float]:
        try:
            return json.loads(self.times_file.read_text())
        except (OSError, ValueError):
            return {}

    def execute(self, jobs: int, force: bool = False) -> tuple[list[Path], dict[str, float]]:
        """Execute the stale pages in parallel and cache them; returns (executed, seconds)."""
        from jupyter_cache.base import CacheBundleIn

        pages = toc_pages(self.root)
        key = dependency_key(self.root, pages)
        if force:
            self.key_file.unlink(missing_ok=True)
        cache = self.open(key)
        stale = self.stale_pages(cache, pages)
        times = self.times()
        rel = lambda p: p.relative_to(self.root).as_posix()
        stale.sort(key=lambda p: -times.get(rel(p), 1e9))  # longest (or unknown) first
        print(f"bookcache: {len(pages)} pages, {len(stale)} to execute, {jobs} at a time")
        settings = _execution_settings(self.root)
        failures: list[tuple[str, str]] = []
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        if stale:
            with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(stale)))) as pool:
                futures = [
                    pool.submit(_execute, str(p), settings["timeout"], settings["allow_errors"])
                    for p in stale
                ]
                for future in as_completed(futures):
                    path, secs, cpu, nb, error = future.result()
                    name = rel(Path(path))
                    seconds[name] = secs
                    if error:
                        failures.append((name, error))
                        print(f"bookcache: FAILED   {name} after {secs:6.1f} s", flush=True)
                        continue
                    cache.cache_notebook_bundle(
                        CacheBundleIn(nb, path, data={"execution_seconds": secs}),
                        check_validity=False,
                        overwrite=True,
                    )
                    times[name] = secs
                    print(
                        f"bookcache: executed {name} in {secs:6.1f} s (kernel CPU {cpu:6.1f} s)",
                        flush=True,
                    )
            self.times_file.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
            print(f"bookcache: executed {len(stale)} pages in {time.perf_counter() - start:.1f} s")
        for name, error in failures:
            print(f"\nbookcache: a cell of {name} raised:\n{error[-4000:]}", file=sys.stderr)
        if failures:
            raise SystemExit(f"bookcache: {len(failures)} page(s) failed; nothing was built")
        return stale, seconds

    def cached_config(self, builder: str = "html") -> Path:
        """A copy of _config.yml that reads the outputs from this cache (and nothing else)."""
        config = yaml.safe_load((self.root / "_config.yml").read_text(encoding="utf-8"))
        config.setdefault("execute", {})
        config["execute"]["execute_notebooks"] = "cache"
        config["execute"]["cache"] = str(self.path)
        if builder == "singlehtml":  # tools/singlehtml_handlers.py (on the path: see build)
            sphinx = config.setdefault("sphinx", {})
            sphinx.setdefault("extra_extensions", []).append("singlehtml_handlers")
        out = self.root / "_build" / f"_config_cached_{builder}.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# Generated by tools/bookcache.py from _config.yml: do not edit.\n"
            + yaml.safe_dump(config, sort_keys=False),
            encoding="utf-8",
        )
        return out


def build(args) -> int:
    root = args.root
    bc = BookCache(root)
    t0 = time.perf_counter()
    bc.execute(args.jobs, force=args.force)
    t_exec = time.perf_counter() - t0
    config = bc.cached_config(args.builder)
    out = root / args.path_output if args.path_output else root
    built_key = out / "_build" / f".bookcache-{args.builder}.key"
    key = bc.key_file.read_text().strip()
    # Sphinx re-reads a page whose source changed; when only the dependencies changed, every
    # page's outputs did, so it must re-read all of them.
    rebuild_all = args.all or not built_key.exists() or built_key.read_text().strip() != key
    from jupyter_cache import get_cache

    n_records = len(get_cache(str(bc.path)).list_cache_records())
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", "-W", "-n", "--keep-going", "--builder", args.builder]
    cmd += ["--config", str(config)]
    if args.path_output:
        cmd += ["--path-output", str(out)]
    if rebuild_all:
        cmd.append("--all")
    cmd.append(str(root))
    print("bookcache: " + " ".join(cmd), flush=True)
    t1 = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    rc = subprocess.call(cmd, cwd=root, env=env)
    t_build = time.perf_counter() - t1
    n_after = len(get_cache(str(bc.path)).list_cache_records())
    if rc == 0 and n_after != n_records:
        print(
            f"bookcache: jupyter-book executed {n_after - n_records} page(s) itself: "
            "tools/bookcache.py reads pages differently from myst-nb",
            file=sys.stderr,
        )
        rc = 1
    if rc == 0:
        built_key.parent.mkdir(parents=True, exist_ok=True)
        built_key.write_text(key + "\n")
    else:
        built_key.unlink(missing_ok=True)
    print(
        f"bookcache: executing {t_exec:.1f} s, jupyter-book {t_build:.1f} s, "
        f"total {time.perf_counter() - t0:.1f} s"
    )
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute what changed, then build the book")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    b.add_argument("--builder", default="html")
    b.add_argument("--path-output", default=None, help="as jupyter-book's (default: .)")
    b.add_argument("--force", action="store_true", help="drop the cache: execute every page")
    b.add_argument("--all", action="store_true", help="let Sphinx re-read every page")
    e = sub.add_parser("execute", help="only execute what changed, into the cache")
    e.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    e.add_argument("--force", action="store_true")
    sub.add_parser("key", help="print the dependency key")
    sub.add_parser("status", help="list the pages that would be executed")
    args = parser.parse_args(argv)
    args.root = args.root.resolve()
    if args.command == "build":
        return build(args)
    root = args.root.resolve()
    if args.command == "execute":
        BookCache(root).execute(args.jobs, force=args.force)
        return 0
    if args.command == "key":
        print(dependency_key(root))
        return 0
    bc = BookCache(root)
    key = dependency_key(root)
    old = bc.key_file.read_text().strip() if bc.key_file.exists() else None
    pages = toc_pages(root)
    if old != key:
        stale = [p for p in pages if executable(read_page(p))]
    else:
        from jupyter_cache import get_cache

        stale = bc.stale_pages(get_cache(str(bc.path)), pages)
    for p in stale:
        print(p.relative_to(root).as_posix())
    return 0


if __name__ == "__main__":
    sys.exit(main())
