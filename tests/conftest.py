import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py

# Under pytest-xdist each of the 2 workers gets one core: two threads each would oversubscribe.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


# The longest test files first. `make test` runs pytest-xdist with `--dist loadfile
# --no-loadscope-reorder`, which hands whole files to the two workers in this order: the book
# build (about 7 minutes) and the grading runs start at once, and the short files fill in around
# them. (xdist's default order, files with the most tests first, started the book last.)
LONGEST_FIRST = (
    "test_book.py",
    "test_grading.py",
    "test_sandbox.py",
    "test_release.py",
    "test_instructor.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file
