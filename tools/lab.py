"""A student's first hour: set up only what the exercises need, then open JupyterLab on them.

    python tools/lab.py                      # Linux, macOS (python3) and Windows (py tools\\lab.py)
    python tools/lab.py --setup-only         # set up, do not start JupyterLab
    python tools/lab.py -- --no-browser      # arguments after -- go to `jupyter lab`
    python tools/lab.py --torch-index https://download.pytorch.org/whl/cpu   # small CPU torch

`make lab` runs this. It needs nothing but Python 3.10+ (no make, no shell): it creates the
virtual environment .venv (if missing), installs the packages the exercises use (pinned by
requirements.txt) and cflib (editable), registers the course kernel "Coupling Layers (cflib)"
inside .venv, and starts JupyterLab on exercises/ with that environment. A second run skips the
set-up unless requirements.txt or pyproject.toml changed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the exercise notebooks, their check cells and JupyterLab need (versions: requirements.txt).
LAB_PACKAGES = [
    "torch",
    "numpy",
    "scipy",
    "sympy",
    "matplotlib",
    "tqdm",
    "ipykernel",
    "nbformat",
    "nbclient",
    "jupyterlab",
]
KERNEL_NAME = "coupling-layers"
KERNEL_DISPLAY = "Coupling Layers (cflib)"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def pin(requirements: Path, name: str) -> str:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.strip()
    raise SystemExit(f"{requirements.name} pins no {name}")


def setup_commands(venv: Path, torch_index: str | None = None) -> list[list[str]]:
    """The commands that set the lab up, in order (each one an argument list)."""
    py = str(venv_python(venv))
    req = str(ROOT / "requirements.txt")
    commands = []
    if not venv_python(venv).exists():
        commands.append([sys.executable, "-m", "venv", str(venv)])
    if torch_index:
        torch = pin(ROOT / "requirements.txt", "torch")
        commands.append([py, "-m", "pip", "install", "-q", torch, "--index-url", torch_index])
    # --no-compile: Python compiles what the exercises import when they import it; compiling all
    # of torch up front would double the install time.
    commands.append([py, "-m", "pip", "install", "-q", "--no-compile", "-c", req, *LAB_PACKAGES])
    commands.append([py, "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)])
    commands.append(
        [
            py,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
            "--display-name",
            KERNEL_DISPLAY,
        ]
    )
    return commands


def lab_command(venv: Path, args: list[str]) -> list[str]:
    py = str(venv_python(venv))
    command = [py, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'exercises'}", *args]
    if getattr(os, "geteuid", lambda: 1)() == 0 and "--allow-root" not in args:
        command.append("--allow-root")  # a container's root user (JupyterLab refuses otherwise)
    return command


def up_to_date(venv: Path) -> bool:
    newest = max((ROOT / f).stat().st_mtime for f in ("requirements.txt", "pyproject.toml"))
    stamps = [venv / ".lab-installed", venv / ".installed"]  # `make setup` installs a superset
    return venv_python(venv).exists() and any(
        s.exists() and s.stat().st_mtime >= newest for s in stamps
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lab_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, lab_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=os.environ.get("VENV", ".venv"))
    parser.add_argument("--torch-index", default=os.environ.get("TORCH_INDEX") or None)
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    args = parser.parse_args(argv)
    venv = Path(args.venv)
    venv = venv if venv.is_absolute() else ROOT / venv
    commands = [] if up_to_date(venv) else setup_commands(venv, args.torch_index)
    for command in commands:
        print("lab:", subprocess.list2cmdline(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True, cwd=ROOT)
    if commands and not args.dry_run:
        (venv / ".lab-installed").touch()
    if args.setup_only:
        return 0
    command = lab_command(venv, lab_args)
    print("lab:", subprocess.list2cmdline(command), flush=True)
    if args.dry_run:
        return 0
    try:
        return subprocess.call(command, cwd=ROOT)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
