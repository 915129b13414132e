"""A Jupyter kernel of the current Python, for running untrusted notebook code out of process.

:class:`Kernel` starts ``python -m ipykernel_launcher`` with this interpreter (``sys.executable``) in
a given folder, runs code with a time limit (interrupting, then killing a kernel that does not stop),
and returns what a grader needs: the error a cell raised, and for probe cells their stdout. Nothing
the kernel sends is evaluated.

Starting is made sturdy for many kernels at once (a class graded in parallel, in CI): the kernel
talks over Unix sockets in a private folder where the platform has them (no TCP port can be taken
by another process between choosing and binding it), and a kernel that does not answer within the
startup timeout is stopped and started again, up to :data:`STARTUP_ATTEMPTS` times; the error after
the last attempt ends with what the kernel wrote to stderr.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import IO, Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

__all__ = ["Execution", "Kernel"]

MAX_STDOUT = 20_000_000  # characters kept from one probe cell
STARTUP_ATTEMPTS = 3  # kernels started before giving up (a start can hang, rarely, under load)


DEFAULT_COMMAND = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


class _CommandKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel is the given command, whatever kernelspecs exist.

    Interrupts are sent as messages: the command may be a sandbox around the kernel, which a
    signal to the process group would not reach.
    """

    def __init__(self, *, command: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self._command = command

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=self._command,
            display_name="Python (grader)",
            language="python",
            interrupt_mode="message",
        )


@dataclass(frozen=True)
class Execution:
    """How running some code ended.

    ``status`` is ``"ok"``, ``"error"`` (the code raised: ``ename``, ``evalue``), ``"timeout"`` (it
    was interrupted after the time limit) or ``"dead"`` (the kernel died or stopped responding).
    """

    status: str
    stdout: str = ""
    ename: str = ""
    evalue: str = ""


class Kernel:
    """One kernel process: ``async with Kernel(cwd, env) as k: await k.execute(code, timeout)``.

    ``startup_timeout`` is per attempt: seconds for the kernel to answer its first request.
    ``command(runtime)`` gives the command line for a kernel whose connection file and sockets are in
    the folder ``runtime`` (default: this interpreter's ipykernel, see :mod:`.sandbox` for others).
    """

    def __init__(
        self,
        cwd: Path,
        env: dict[str, str],
        startup_timeout: float = 60.0,
        command: Callable[[Path], list[str]] | None = None,
    ):
        self._cwd, self._env, self._startup_timeout = cwd, env, startup_timeout
        self._command = command or (lambda runtime: list(DEFAULT_COMMAND))
        self._manager: AsyncKernelManager | None = None
        self._client: Any = None
        self._runtime: Path | None = None  # connection file, sockets and stderr log
        self._stderr: IO[bytes] | None = None
        self.dead = False

    async def __aenter__(self) -> Kernel:
        failures: list[str] = []
        log = ""
        for _ in range(STARTUP_ATTEMPTS):
            try:
                await self._start()
                return self
            except Exception as error:  # no answer in time, or the kernel exited at once
                log = self._stderr_tail()
                await self.close()
                failures.append(f"{type(error).__name__}: {error}")
            except BaseException:  # cancelled: leave no process behind
                await self.close()
                raise
        reasons = "; ".join(dict.fromkeys(failures))  # distinct reasons, in order
        text = f"the kernel did not start in {STARTUP_ATTEMPTS} attempts ({reasons})"
        raise RuntimeError(text + (f"; its stderr ended with: {log}" if log else ""))

    async def _start(self) -> None:
        self.dead = False
        self._runtime = Path(tempfile.mkdtemp(prefix="cflib-kernel-"))
        sockets = {"transport": "ipc", "ip": str(self._runtime / "ipc")}
        self._manager = _CommandKernelManager(
            command=self._command(self._runtime),
            connection_file=str(self._runtime / "kernel.json"),
            **({} if sys.platform == "win32" else sockets),  # Windows: TCP, ports jupyter's choice
        )
        self._stderr = open(self._runtime / "stderr.log", "wb")  # closed in close()
        await self._manager.start_kernel(
            cwd=str(self._cwd), env=self._env, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        self._client = self._manager.client()
        self._client.start_channels()
        await self._client.wait_for_ready(timeout=self._startup_timeout)

    def _stderr_tail(self, limit: int = 400) -> str:
        """The last ``limit`` characters the kernel wrote, on one line."""
        if self._runtime is None:
            return ""
        try:
            data = (self._runtime / "stderr.log").read_bytes()[-limit:]
        except OSError:
            return ""
        return " ".join(data.decode("utf-8", "replace").split())

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the kernel (at once: nothing of it is needed any more)."""
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._manager is not None:
            try:
                await self._manager.shutdown_kernel(now=True)
            except Exception:  # already gone
                pass
            self._manager = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None
        self.dead = True

    async def _wait_idle(self, msg_id: str, deadline: float, capture: bool) -> Execution | None:
        """Collect the messages of ``msg_id`` until the kernel is idle; None at the deadline."""
        stdout: list[str] = []
        size = 0
        error: dict[str, Any] | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await self._client.get_iopub_msg(timeout=min(left, 1.0))
            except Empty:
                if not await self._manager.is_alive():
                    self.dead = True
                    return Execution("dead")
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and capture and content.get("name") == "stdout":
                text = str(content.get("text", ""))
                if size + len(text) <= MAX_STDOUT:
                    stdout.append(text)
                    size += len(text)
            elif kind == "error" and error is None:
                error = content
            elif kind == "status" and content.get("execution_state") == "idle":
                if error is None:
                    return Execution("ok", "".join(stdout))
                return Execution(
                    "error", "".join(stdout), str(error.get("ename")), str(error.get("evalue"))
                )

    async def execute(
        self, code: str, timeout: float, *, capture: bool = False, store_history: bool = True
    ) -> Execution:
        """Run ``code``; after ``timeout`` seconds interrupt it (and kill the kernel if it stays busy).

        Args:
            capture: keep what the code writes to stdout (probe cells); student cells' output is
                dropped.
            store_history: count as a notebook cell (``In``/``Out``); probes do not.
        """
        if self.dead or self._client is None:
            return Execution("dead")
        msg_id = self._client.execute(
            code, silent=False, store_history=store_history, allow_stdin=False, stop_on_error=False
        )
        result = await self._wait_idle(msg_id, time.monotonic() + max(timeout, 0.0), capture)
        if result is not None:
            return result
        await self._manager.interrupt_kernel()
        if await self._wait_idle(msg_id, time.monotonic() + 5.0, capture=False) is None:
            await self.close()  # the code ignores interrupts: the kernel is of no more use
        return Execution("timeout")
