"""Where a notebook's kernel runs while it is graded: a bubblewrap sandbox with resource limits.

A submission is untrusted code. On Linux the grader starts each notebook's kernel under
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian package ``bubblewrap``)
in fresh namespaces, so that inside it

- there is no network (only a loopback interface that is down);
- only the notebook's own copy (its folder) and a private ``/tmp`` are writable;
- the Python environment is visible read-only, and of the rest of the machine only the system
  folders (``/usr``, the libraries, a few files of ``/etc``): not the other submissions, not the
  instructor's repository (solutions, hidden checks, reference answers), not the home folder;
- only the processes of this notebook are visible (its own process namespace, so not the grader's
  command line), and none outlives it: when the kernel stops, the namespace and all that runs in it
  end;
- environment variables pass only from :data:`ALLOWED_ENV`, so no token or secret passes;
- the kernel has limits on memory (address space), processes and threads, and file size.

A grading answer must be the student's own: while exercise NN is graded the ``cflib`` that the
kernel imports is a copy in which each object in ``Exercise.forbidden`` (the library's own
implementation of something the exercise asks for) is replaced by a stub that raises
:class:`DelegationError`. The real implementation is not visible inside the sandbox at all.

Without bwrap (macOS, Windows, a container that forbids user namespaces) ``--sandbox none`` runs the
kernel as a plain process with the same environment allow-list, resource limits (where the platform
has them) and disabled objects (first on ``PYTHONPATH``), and the grader says loudly that marks are
not protected: the notebook can read and write what the grader's user can.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ALLOWED_ENV",
    "KINDS",
    "DelegationError",
    "Limits",
    "SandboxError",
    "bwrap_problem",
    "disabled_cflib",
    "kernel_command",
    "kernel_env",
    "resolve",
]

KINDS = ("auto", "bwrap", "none")
GiB = 1 << 30
MiB = 1 << 20

# Environment variables a kernel may inherit (their values are the grader's): nothing that could
# hold a secret. Everything else is dropped.
ALLOWED_ENV = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "CFLIB_DEVICE",
)
# Files of /etc that programs need (dynamic loader, fonts, time zone, users): no secrets.
_ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "fonts",
    "localtime",
    "passwd",
    "group",
    "nsswitch.conf",
    "mime.types",
)


_GROUPS = itertools.count()


class SandboxError(RuntimeError):
    """The sandbox asked for cannot be used here (the message says why and what to do)."""


class DelegationError(RuntimeError):
    """Raised by a cflib object that is disabled while an exercise that asks for it is graded."""


@dataclass(frozen=True)
class Limits:
    """Per-notebook resource limits (bytes, a count, bytes)."""

    memory: int = 4 * GiB
    processes: int = 256  # processes and threads of the notebook, together
    file_size: int = 512 * MiB

    def describe(self) -> str:
        return (
            f"memory {_size(self.memory)}, {self.processes} processes and threads, files of at "
            f"most {_size(self.file_size)}"
        )

    @property
    def memory_text(self) -> str:
        return _size(self.memory)

    @property
    def file_size_text(self) -> str:
        return _size(self.file_size)


def _size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


@functools.cache
def bwrap_problem() -> str | None:
    """None when bubblewrap works here, else why not and what to do (one paragraph)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap runs on Linux only (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if exe is None:
        return (
            "bubblewrap is not installed: install it (Debian/Ubuntu: `sudo apt-get install "
            "bubblewrap`; Fedora: `sudo dnf install bubblewrap`)"
        )
    try:
        probe = subprocess.run(
            [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap ({exe}) could not be run: {error}"
    if probe.returncode != 0:
        said = " ".join(probe.stderr.split())[:300]
        return (
            f"bubblewrap ({exe}) is installed but cannot create a sandbox here ({said}). "
            "It needs unprivileged user namespaces: on Ubuntu 24.04 AppArmor restricts them "
            "(`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`); elsewhere check "
            "`kernel.unprivileged_userns_clone=1` and `user.max_user_namespaces`; a container "
            "must allow it (e.g. Docker with `--security-opt seccomp=unconfined`)"
        )
    return None


def resolve(kind: str) -> str:
    """The sandbox that grading will use: ``"bwrap"`` or ``"none"``.

    ``auto`` is bwrap when it works here, else none with a warning that marks are not protected.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
        SandboxError: ``bwrap`` was asked for and does not work here (the message says why).
    """
    if kind not in KINDS:
        raise ValueError(f"sandbox: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "none":
        return "none"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if kind == "bwrap":
        raise SandboxError(f"--sandbox bwrap: {problem}")
    warnings.warn(unprotected(problem), stacklevel=2)
    return "none"


def unprotected(reason: str) -> str:
    """The loud warning for grading without a sandbox."""
    return (
        "MARKS ARE NOT PROTECTED: notebooks run without a sandbox, so a submission can read and "
        f"change what this user can (other submissions, the grader's files, its output). Reason: "
        f"{reason}. Use --sandbox bwrap on Linux for marks; --sandbox none only for feedback."
    )


def kernel_env(
    threads: int | None, home: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The kernel's whole environment: the allow-list's values here, and the sandbox's own."""
    env = {k: os.environ[k] for k in ALLOWED_ENV if k in os.environ}
    env.update(
        PATH=os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        HOME=home,
        TMPDIR=str(Path(home).parent),
        MPLBACKEND="Agg",
        MPLCONFIGDIR=str(Path(home) / ".matplotlib"),
        PYTHONDONTWRITEBYTECODE="1",
        CFLIB_GRADING="1",  # in-notebook check() says that the grader runs the checks
    )
    if threads:
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[key] = str(threads)
    env.update(extra or {})
    return env


# The kernel's first code, before ipykernel and any student code: the limits, then the kernel.
_BOOT = """\
import resource, runpy, sys
for name, value in {limits!r}:
    limit = getattr(resource, name, None)
    if limit is not None:
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
sys.argv = ["ipykernel_launcher", "-f", sys.argv[1]]
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""


def _boot(limits: Limits, kind: str) -> str:
    values = [
        ("RLIMIT_AS", limits.memory),
        ("RLIMIT_FSIZE", limits.file_size),
        ("RLIMIT_CORE", 0),
    ]
    if kind == "bwrap":  # counted per user namespace: this notebook's processes only
        values.append(("RLIMIT_NPROC", limits.processes))
    return _BOOT.format(limits=values)


def _system_binds() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    for name in _ETC:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def _python_binds() -> list[str]:
    """The interpreter and its environment (a virtual environment and its base), read-only."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    roots |= {
        Path(p).resolve() for p in sys.path if p and "site-packages" in p and Path(p).is_dir()
    }
    kept = sorted(r for r in roots if not any(o != r and o in r.parents for o in roots))
    args: list[str] = []
    for root in kept:
        if root == Path("/usr") or Path("/usr") in root.parents:
            continue
        args += ["--ro-bind", str(root), str(root)]
    return args


@contextlib.contextmanager
def process_cap(limit: int) -> Iterator[list[str]]:
    """A command prefix that puts the kernel into a process-count limit of ``limit``.

    For any other user, ``RLIMIT_NPROC`` (set in the kernel, counted per user namespace) does it
    and the prefix is empty. Root is exempt from ``RLIMIT_NPROC``, so for root the kernel goes
    into a new ``pids`` cgroup (v1 ``/sys/fs/cgroup/pids``, or v2) with ``pids.max = limit``,
    removed afterwards; without a writable one there is no process limit, and a warning says so.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield []
        return
    group = None
    for parent in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (parent / "cgroup.procs").is_file():
            continue
        candidate = parent / f"cflib-{os.getpid()}-{next(_GROUPS)}"
        try:
            candidate.mkdir()
            (candidate / "pids.max").write_text(str(limit))
        except OSError:
            with contextlib.suppress(OSError):
                candidate.rmdir()
            continue
        group = candidate
        break
    if group is None:
        warnings.warn(
            "no limit on a notebook's processes: the grader runs as root and no pids cgroup is "
            "writable here",
            stacklevel=2,
        )
        yield []
        return
    try:
        yield ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs")]
    finally:
        for _ in range(50):  # empty once the kernel's processes are gone
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def kernel_command(
    kind: str,
    limits: Limits,
    env: dict[str, str],
    *,
    workdir: Path,
    runtime: Path,
    cflib_copy: Path | None,
) -> tuple[list[str], dict[str, str]]:
    """The command that starts a kernel (``{connection_file}`` is filled in by jupyter_client), and
    the environment to start it with.

    Args:
        kind: ``"bwrap"`` or ``"none"`` (see :func:`resolve`).
        env: the kernel's whole environment (see :func:`kernel_env`).
        workdir: the notebook's own folder (writable; the kernel starts in it).
        runtime: the folder of the kernel's connection file and sockets (writable).
        cflib_copy: a folder holding the ``cflib`` package the kernel must import instead of the
            grader's (see :func:`disabled_cflib`), or None.
    """
    python = [sys.executable, "-s", "-c", _boot(limits, kind), "{connection_file}"]
    if kind == "none":
        if cflib_copy is not None:
            env = {**env, "PYTHONPATH": str(cflib_copy)}
        return python, env
    import cflib

    real_cflib = Path(cflib.__file__).resolve().parent
    args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    args += ["--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev"]
    # /tmp first: a private tmpfs, under which the binds below may lie (a grader in /tmp)
    args += ["--size", str(max(limits.file_size, GiB)), "--tmpfs", "/tmp"]
    args += _system_binds() + _python_binds()
    args += ["--ro-bind", str(cflib_copy / "cflib" if cflib_copy else real_cflib), str(real_cflib)]
    args += ["--bind", str(workdir), str(workdir), "--bind", str(runtime), str(runtime)]
    args += ["--remount-ro", "/", "--chdir", str(workdir), "--clearenv"]
    # the grader's cflib (the copy bound above) first, however the grader itself found it
    env = {**env, "PYTHONPATH": str(real_cflib.parent)}
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--", *python], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


_STUB = '''

# --- added by the grader: exercise {exercise} asks for {qualname} itself ---------------------------
class DelegationError(RuntimeError):
    """Raised by a cflib object that is disabled while an exercise that asks for it is graded."""


def _disabled(*args, **kwargs):
    raise DelegationError({message!r})


{name} = {replacement}
'''


def disabled_cflib(exercise: str, forbidden: list[str], folder: Path) -> Path:
    """Write into ``folder`` a copy of the ``cflib`` package whose ``forbidden`` objects raise.

    Each entry is a qualified name, ``"cflib.masks.checkerboard_mask"``: the object is replaced
    at the end of its defining module, so the library's own re-exports (``cflib.checkerboard_mask``)
    resolve to the stub too. Returns ``folder`` (which then holds ``cflib/``).

    Raises:
        ValueError: a name that is not ``cflib.<module>.<name>`` or whose module does not exist.
    """
    import cflib

    source = Path(cflib.__file__).resolve().parent
    target = folder / "cflib"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for qualname in forbidden:
        parts = qualname.split(".")
        if len(parts) < 3 or parts[0] != "cflib":
            if len(parts) == 2 and parts[0] == "cflib":
                continue  # a re-export: the defining module's stub covers it
            raise ValueError(f"forbidden: expected 'cflib.<module>.<name>', got {qualname!r}")
        module = target.joinpath(*parts[1:-1]).with_suffix(".py")
        if not module.is_file():
            raise ValueError(f"forbidden: {qualname!r}: no module {module.relative_to(folder)}")
        name = parts[-1]
        message = (
            f"{qualname} is disabled while exercise {exercise} is graded: the exercise asks you "
            "to implement it, so an answer that calls it earns nothing for that part"
        )
        is_class = name[:1].isupper()
        replacement = f"type({name!r}, (), {{'__init__': _disabled}})" if is_class else "_disabled"
        with module.open("a") as handle:
            handle.write(
                _STUB.format(
                    exercise=exercise,
                    qualname=qualname,
                    message=message,
                    name=name,
                    replacement=replacement,
                )
            )
    return folder
