# Every target sets up what it needs first (a virtual environment in .venv).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch from another index, e.g. the PyTorch CPU wheels on a Linux machine without a GPU (PyPI's
# default Linux wheel is a several-GB CUDA build):
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_PIN = $(shell grep -E '^torch==' requirements.txt)
# The course's kernel, as JupyterLab lists it.
KERNEL_NAME := coupling-layers
KERNEL_DISPLAY := Coupling Layers (cflib)
# Pages executed at a time by `make book` / `make pdf` (each page in its own kernel, one thread).
JOBS ?= 2

.PHONY: setup book book-instructor student test lint format exercises grade gradescope bench clean lab pdf repo-url

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install -q "$(TORCH_PIN)" --index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)"
	touch $(STAMP)

## Everything the course needs, pinned, in .venv: the library, Jupyter, the book, the tests.
setup: $(STAMP)

## Build the book into _build/html (fails if any cell raises). Incremental: only the pages whose
## code changed since the last build are executed (JOBS at a time), and every page when cflib/,
## requirements.txt or pyproject.toml changed (tools/bookcache.py). FORCE=1 executes everything.
book: $(STAMP)
	$(PY) tools/bookcache.py build --jobs $(JOBS) $(if $(FORCE),--force --all,)

## The printable book, _build/pdf/book.pdf: a one-page HTML build (same cache as `make book`)
## printed by headless Chromium once MathJax has typeset it (needs Debian's chromium package).
pdf: $(STAMP)
	$(PY) tools/bookcache.py build --jobs $(JOBS) --builder singlehtml --path-output _build/pdf
	$(PY) tools/pdf.py _build/pdf/_build/singlehtml/index.html _build/pdf/book.pdf

## A student's first hour: only what the exercises need, then JupyterLab on exercises/ with the
## course kernel. Options: make lab LAB_ARGS=--no-browser (tools/lab.py does it all, without make).
lab:
	$(PYTHON) tools/lab.py --venv $(VENV) $(if $(TORCH_INDEX),--torch-index $(TORCH_INDEX),) -- $(LAB_ARGS)

## Point the site's repository, issue and download buttons at REPO_URL (the one `url:` line of
## _config.yml; the Pages workflow sets it to the repository it runs in).
repo-url:
	@test -n "$(REPO_URL)" || { echo "usage: make repo-url REPO_URL=https://github.com/OWNER/REPO"; exit 2; }
	sed -i.bak -E 's|^  url: [^ #]*|  url: $(REPO_URL)|' _config.yml && rm -f _config.yml.bak
	grep -E '^  url: ' _config.yml

## The instructor build: the same site plus the solution notebooks, into _build/instructor.
## (The default site never contains solutions: its table of contents does not list them.)
book-instructor: $(STAMP)
	mkdir -p _build
	{ cat _toc.yml; printf '  - caption: Solutions (instructors only)\n    chapters:\n'; \
	  for f in solutions/[0-9]*_*.ipynb; do printf '      - file: %s\n' "$${f%.ipynb}"; done; } \
	  > _build/_toc_instructor.yml
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --toc _build/_toc_instructor.yml \
	  --path-output _build/instructor .

## The student edition into _build/student: the tree an instructor pushes as the class's template
## repository (no solutions, hidden checks or reference answers; every file scanned for them).
student: $(STAMP)
	$(PY) -m cflib.grading.release --out _build/student

## The full test suite: style, library, notebooks (nbval), grading, and the book build.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

## Regenerate exercises/ from solutions/ (refuses to overwrite edited notebooks; FORCE=1 to force).
exercises: $(STAMP)
	$(PY) -m cflib.grading.generate $(if $(FORCE),--force,)

## Grade notebooks: make grade NB=path/or/folder
grade: $(STAMP)
	$(PY) -m cflib.grade $(NB) --json grading-report.json --csv grading-report.csv

## The Gradescope autograder: _build/gradescope/autograder.zip (setup.sh, run_autograder, the grader
## with its hidden checks). Upload it as the assignment's autograder; never give it to students.
gradescope: $(STAMP)
	$(PY) -m cflib.grading.gradescope build _build/gradescope

## Speed and sturdiness next to nflows, zuko, normflows and Pyro (benchmarks/run.py), two threads;
## writes benchmarks/results/latest.{json,md}. Options: make bench BENCH_ARGS="--quick --device cuda"
## The peers are installed into .venv without their dependencies, so torch stays at 2.13.0.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) benchmarks/requirements.txt benchmarks/constraints.txt
	$(PY) -m pip install -q --no-deps -c benchmarks/constraints.txt -r benchmarks/requirements.txt
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m benchmarks.run --threads 2 $(BENCH_ARGS)

clean:
	rm -rf _build .pytest_cache .hypothesis
