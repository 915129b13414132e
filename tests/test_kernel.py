"""The grader's kernel: it runs code in its folder, leaves nothing behind, and survives a start that
hangs (the kernel is started again) or fails (the error says why, with the kernel's stderr).

A kernel that misbehaves at start is made with a ``sitecustomize`` module on the kernel's
``PYTHONPATH``, which Python imports before ``ipykernel`` starts.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from cflib.grading.kernel import STARTUP_ATTEMPTS, Kernel

HANG_ONCE = """\
import os, pathlib, time
marker = pathlib.Path(os.environ["MARKER"])
if not marker.exists():
    marker.touch()
    time.sleep(600)
"""

FAIL = """\
import os, sys
sys.stderr.write("sitecustomize: this kernel refuses to start\\n")
sys.stderr.flush()
os._exit(3)
"""


def _env(folder: Path, sitecustomize: str | None = None) -> dict[str, str]:
    env = dict(os.environ, MARKER=str(folder / "started-once"))
    if sitecustomize is not None:
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(sitecustomize)
        env["PYTHONPATH"] = os.pathsep.join([str(folder / "site"), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder where kernels keep their sockets, connection file and log (a private temp)."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_kernel_runs_code_in_its_folder_and_leaves_nothing_behind(
    tmp_path: Path, runtime: Path
) -> None:
    cwd_folder = tmp_path / "cwd"
    cwd_folder.mkdir()

    async def run() -> tuple[str, str, bool]:
        async with Kernel(cwd_folder, _env(tmp_path)) as kernel:
            assert [p.name[:13] for p in runtime.iterdir()] == ["cflib-kernel-"]
            cwd = await kernel.execute("import os; print(os.getcwd())", 30, capture=True)
            error = await kernel.execute("1 / 0", 30)
        return cwd.stdout.strip(), error.ename, kernel.dead

    cwd, ename, dead = asyncio.run(run())
    assert Path(cwd).resolve() == cwd_folder.resolve()
    assert ename == "ZeroDivisionError"
    assert dead
    assert list(cwd_folder.iterdir()) == []  # sockets, connection file and log live elsewhere
    assert list(runtime.iterdir()) == []  # ... and are removed when the kernel stops


def test_a_kernel_that_hangs_at_start_is_started_again(tmp_path: Path, runtime: Path) -> None:
    async def run() -> str:
        async with Kernel(tmp_path, _env(tmp_path, HANG_ONCE), startup_timeout=3) as kernel:
            return (await kernel.execute("print(6 * 7)", 30, capture=True)).stdout

    assert asyncio.run(run()).strip() == "42"
    assert (tmp_path / "started-once").exists()  # the first attempt did hang
    assert list(runtime.iterdir()) == []


def test_a_kernel_that_cannot_start_says_why(tmp_path: Path, runtime: Path) -> None:
    async def run() -> None:
        async with Kernel(tmp_path, _env(tmp_path, FAIL), startup_timeout=30):
            pass

    with pytest.raises(RuntimeError) as error:
        asyncio.run(run())
    message = str(error.value)
    assert f"did not start in {STARTUP_ATTEMPTS} attempts" in message
    assert "Kernel died before replying to kernel_info" in message
    assert message.endswith("its stderr ended with: sitecustomize: this kernel refuses to start")
    assert list(runtime.iterdir()) == []
