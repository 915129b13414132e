# Every target sets up what it needs first (a virtual environment in .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup book book-instructor test lint format exercises grade gradescope bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

## Build and execute the whole book into _build/html (fails if any cell raises).
book: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .

## The instructor build: the same site plus the solution notebooks, into _build/instructor.
## (The default site never contains solutions: its table of contents does not list them.)
book-instructor: $(STAMP)
	mkdir -p _build
	{ cat _toc.yml; printf '  - caption: Solutions (instructors only)\n    chapters:\n'; \
	  for f in solutions/[0-9]*_*.ipynb; do printf '      - file: %s\n' "$${f%.ipynb}"; done; } \
	  > _build/_toc_instructor.yml
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --toc _build/_toc_instructor.yml \
	  --path-output _build/instructor .

## The full test suite: style, library, notebooks (nbval), grading, and the book build.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile

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
