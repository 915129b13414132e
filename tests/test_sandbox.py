"""The grading sandbox, tested by attack.

One grading run (``python -m cflib.grade --sandbox bwrap --jobs 2``) grades a correct exercise-03
notebook beside notebooks that each try to break one property of the sandbox: reach the network,
read another submission or the instructor's files, find a secret in the environment, write outside
their copy, exhaust memory or processes, leave a process running, or forge a grade by patching
builtins and libraries. Each attack notebook reports what it managed in the error of its last cell
(``EVIDENCE [...]``), which the report carries; the tests assert that it managed nothing, that it
gained no point, and that the correct notebook in the same run kept full marks.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from cflib.grading import sandbox

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "03_checkerboard.ipynb"
FORWARD_LADJ = "ladj = s.masked_fill(mask, 0.0).flatten(1).sum(1)"
WRONG_LADJ = "ladj = s.flatten(1).sum(1)"
SECRET = "cflib-test-secret-" + secrets.token_hex(8)

# The attacks: code run in the notebook's kernel. Each ends by raising the evidence it gathered,
# so that it reaches the report. {names} are filled in by the test.
REPORT = """
raise RuntimeError("EVIDENCE " + json.dumps(found))
"""
ATTACKS = {
    "network": """
import json, socket
found = []
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("8.8.8.8", 53)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        found.append(f"{{host}}:{{port}}")
    except OSError:
        pass
try:
    socket.getaddrinfo("pypi.org", 443)
    found.append("dns")
except OSError:
    pass
""",
    "peek": """
import json, os
found = []
for path in [{others!r}, {instructor!r}, {home_file!r}, "/etc/shadow"]:
    if os.path.exists(path):
        found.append(path)
skip = ("/proc", "/sys", "/dev", "/usr")
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip and not d.startswith(".venv")]
    if "site-packages" in top or "lib/python" in top:
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(top, name)
        # its copy, its kernel's connection file, the library's own data files
        mine = path.startswith(os.getcwd()) or name == "kernel.json" or "/cflib/" in path
        if name.endswith((".ipynb", "_hidden.py", ".json", ".csv")) and not mine:
            found.append(path)
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmd = open(f"/proc/{{pid}}/cmdline", "rb").read()
        except OSError:
            continue
        if b"cflib.grade" in cmd or b"pytest" in cmd:
            found.append("cmdline of " + pid)
""",
    "environment": """
import json, os
found = [k for k, v in os.environ.items() if {secret!r} in v or "TOKEN" in k]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            if {secret!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read():
                found.append("environ of " + pid)
        except OSError:
            pass
""",
    "write": """
import json, os
found = []
for path in [{submission_dir!r}, {output_dir!r}, {root!r}, "/tmp", os.path.expanduser("~")]:
    target = os.path.join(path, "cflib-escape-{tag}")
    try:
        with open(target, "w") as handle:
            handle.write("escaped")
        found.append(target)
    except OSError:
        pass
""",
    "memory": """
import json
import xml.etree.ElementTree as ET
found = []
hog = bytearray(8 << 30)  # 8 GiB: more than the limit
found.append("allocated 8 GiB")
""",
    "processes": """
import json, subprocess
found = []
children = []
for _ in range(400):
    children.append(subprocess.Popen(["sleep", "20"]))
found.append(f"started {{len(children)}} processes")
""",
    "daemon": """
import json, subprocess, sys
found = []
code = "import time; time.sleep(60)  # {marker}"
subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""",
}
# Forge the log-det checks: patch what a probe or a check might use inside the kernel.
PATCHES = r"""
import builtins, json
import numpy as np
import torch

_compile, _dumps = builtins.compile, json.dumps
FORGE = (
    "jacobians.append(encode_tensor(torch.diag(torch.full((image.numel(),), "
    "float(out[1][len(jacobians)]) / image.numel(), dtype=torch.float64).exp())))"
)


def forged_compile(source, *args, **kwargs):
    # rewrite any probe that computes a Jacobian in this kernel so that it agrees with our ladj
    if isinstance(source, str) and "\ndef probe_" in source and "_cflib_probe_" not in source:
        lines = source.splitlines()
        for i, line in enumerate(lines):
            if "jacobians.append(" in line:
                indent = line[: len(line) - len(line.lstrip())]
                lines[i] = indent + FORGE
        source = "\n".join(lines)
    return _compile(source, *args, **kwargs)


def forged_dumps(value, *args, **kwargs):
    return _dumps(value, *args, **kwargs).replace('"passed": false', '"passed": true')


builtins.compile = forged_compile
json.dumps = forged_dumps
np.linalg.slogdet = lambda a: (1.0, 0.0)
"""


def _base() -> nbformat.NotebookNode:
    """The solution of exercise 03 without its demonstration and check cells."""
    nb = nbformat.read(SOLUTION, as_version=4)
    nb.cells = [c for c in nb.cells if not c.get("id", "").startswith(("show-", "check-"))]
    return nb


def _write(folder: Path, name: str, nb: nbformat.NotebookNode) -> Path:
    path = folder / f"03_{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _with_cell(code: str, first: bool = False) -> nbformat.NotebookNode:
    nb = _base()
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.insert(1 if first else len(nb.cells), cell)
    return nb


def _wrong_ladj() -> nbformat.NotebookNode:
    nb = _base()
    (cell,) = [c for c in nb.cells if FORWARD_LADJ in c.source]
    cell.source = cell.source.replace(FORWARD_LADJ, WRONG_LADJ)
    return nb


def _host_processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    problem = sandbox.bwrap_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"bubblewrap must work in CI: {problem}")
        pytest.skip(problem)
    folder = tmp_path_factory.mktemp("attacks")
    submissions, output = folder / "submissions", folder / "output"
    submissions.mkdir()
    output.mkdir()
    server = socket.create_server(("127.0.0.1", 0))
    connections: list[object] = []

    def accept() -> None:
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                continue

    stop = threading.Event()
    threading.Thread(target=accept, daemon=True).start()
    marker = "cflib-daemon-" + secrets.token_hex(6)
    home_file = Path.home() / f".{marker}"  # a private file of the grader's user
    home_file.write_text(SECRET)
    values = {
        "port": server.getsockname()[1],
        "others": str(submissions / "03_correct.ipynb"),
        "instructor": str(ROOT / "checks" / "ex03_hidden.py"),
        "home_file": str(home_file),
        "secret": SECRET,
        "submission_dir": str(submissions),
        "output_dir": str(output),
        "root": str(ROOT),
        "tag": marker,
        "marker": marker,
    }
    paths = {"correct": _write(submissions, "correct", _base())}
    for name, code in ATTACKS.items():
        first = name in ("memory", "processes")
        paths[name] = _write(
            submissions, name, _with_cell(code.format(**values) + REPORT, first=first)
        )
    paths["wrong"] = _write(submissions, "wrong", _wrong_ladj())
    forged = _wrong_ladj()
    forged.cells.insert(1, nbformat.v4.new_code_cell(PATCHES))
    paths["patched"] = _write(submissions, "patched", forged)

    env = {**os.environ, "CFLIB_TEST_SECRET": SECRET, "GITHUB_TOKEN": SECRET}
    report = output / "report.json"
    start = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cflib.grade",
            str(submissions),
            "--sandbox",
            "bwrap",
            "--jobs",
            "2",
            "--seed",
            "7",
            "--timeout",
            "120",
            "--json",
            str(report),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.monotonic() - start
    left_running = _host_processes_with(marker)
    home_file.unlink()
    stop.set()
    server.close()
    assert run.returncode == 0, run.stderr[-3000:]
    results = {Path(r["notebook"]).stem[3:]: r for r in json.loads(report.read_text())}
    return {
        "results": results,
        "connections": connections,
        "left_running": left_running,
        "marker": marker,
        "folder": folder,
        "values": values,
        "seconds": seconds,
        "stderr": run.stderr,
    }


def _evidence(result: dict) -> list[str]:
    error = result["error"] or ""
    assert "EVIDENCE " in error, error
    return json.loads(error.split("EVIDENCE ", 1)[1].split("]", 1)[0] + "]")


def test_every_notebook_was_graded_in_the_sandbox(attacked: dict) -> None:
    results = attacked["results"]
    assert set(results) == {"correct", "wrong", "patched", *ATTACKS}
    assert all(r["sandbox"] == "bwrap" for r in results.values())


def test_a_correct_notebook_beside_the_attacks_keeps_full_marks(attacked: dict) -> None:
    correct = attacked["results"]["correct"]
    assert correct["error"] is None
    assert correct["score"] == correct["max_score"] == 10


def test_no_network(attacked: dict) -> None:
    assert _evidence(attacked["results"]["network"]) == []
    assert attacked["connections"] == []


def test_no_other_submission_no_instructor_file_no_home_no_grader_command_line(
    attacked: dict,
) -> None:
    assert _evidence(attacked["results"]["peek"]) == []


def test_no_secret_in_the_environment(attacked: dict) -> None:
    assert _evidence(attacked["results"]["environment"]) == []


def test_no_write_outside_its_copy(attacked: dict) -> None:
    # the sandbox's root is read-only; /tmp and the notebook's folder are its own
    written = _evidence(attacked["results"]["write"])
    assert all(w.startswith("/tmp/") for w in written), written
    values = attacked["values"]
    for folder in (values["submission_dir"], values["output_dir"], values["root"], "/tmp"):
        assert not (Path(folder) / f"cflib-escape-{values['tag']}").exists()


def test_a_memory_hog_hits_the_limit_and_the_rest_is_graded(attacked: dict) -> None:
    result = attacked["results"]["memory"]
    assert "memory limit" in result["error"] and "MemoryError" in result["error"]
    assert result["score"] == result["max_score"]  # its answers, after the hog, still count


def test_too_many_processes_hit_the_limit(attacked: dict) -> None:
    result = attacked["results"]["processes"]
    assert "limit on processes" in result["error"], result["error"]
    assert result["score"] == result["max_score"]


def test_no_process_outlives_its_notebook(attacked: dict) -> None:
    assert attacked["left_running"] == []


def test_patching_builtins_and_libraries_gains_nothing(attacked: dict) -> None:
    wrong, patched = attacked["results"]["wrong"], attacked["results"]["patched"]
    assert wrong["score"] < wrong["max_score"]  # the wrong log-det is caught...
    assert patched["score"] <= wrong["score"]  # ...and no patch in the kernel hides it
    lost = {c["name"] for c in wrong["checks"] if not c["passed"]}
    assert lost <= {c["name"] for c in patched["checks"] if not c["passed"]}


CONFTEST = """
import pathlib
pathlib.Path({marker!r}).write_text("conftest ran")


def pytest_runtest_makereport(item, call):
    from _pytest.reports import TestReport
    report = TestReport.from_item_and_call(item, call)
    report.outcome = "passed"
    report.longrepr = None
    return report
"""


def test_a_submissions_conftest_plugins_and_cflib_take_no_part(tmp_path: Path) -> None:
    """The pytest/JUnit route: a conftest.py that forces every outcome to passed, a pytest.ini
    that loads it as a plugin, and a cflib/ package of the submission's own change nothing."""
    submission = tmp_path / "submission"
    submission.mkdir()
    _write(submission, "wrong", _wrong_ladj())
    marker = tmp_path / "imported"
    (submission / "conftest.py").write_text(CONFTEST.format(marker=str(marker)))
    (submission / "pytest.ini").write_text("[pytest]\naddopts = -p conftest\n")
    (submission / "cflib").mkdir()
    (submission / "cflib" / "__init__.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('cflib ran')\n"
    )
    junit = tmp_path / "grades.xml"
    run = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "cflib.grading.junit",
            str(submission),
            "--junitxml",
            str(junit),
            "--seed",
            "7",
            "--sandbox",
            "bwrap" if sandbox.bwrap_problem() is None else "none",
        ],
        cwd=submission,  # from inside the submission: -P keeps its cflib/ off sys.path
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]  # checks fail
    assert not marker.exists()
    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    assert cases["log_det_matches_finite_differences"].find("failure") is not None
    assert cases["coupling_keeps_masked_pixels"].find("failure") is None

    # by hand, without --noconftest, the plugin refuses to grade
    (submission / "pytest.ini").unlink()
    plain = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "cflib.grading.pytest_plugin",
            "-p",
            "no:xdist",
            "--submission",
            str(submission),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 4 and "needs --noconftest" in plain.stderr + plain.stdout


def test_forbidden_objects_raise_in_the_graded_copy_of_cflib(tmp_path: Path) -> None:
    folder = sandbox.disabled_cflib(
        "03", ["cflib.masks.checkerboard_mask", "cflib.couplings.AffineCoupling"], tmp_path
    )
    code = f"""
import cflib
assert cflib.__file__.startswith({str(folder)!r}), cflib.__file__
assert cflib.channel_mask(4).tolist() == [True, True, False, False]  # allowed helpers work
for call in (lambda: cflib.checkerboard_mask(2, 2), lambda: cflib.masks.checkerboard_mask(2, 2),
             lambda: cflib.AffineCoupling(2)):
    try:
        call()
    except Exception as error:
        assert type(error).__name__ == "DelegationError", error
        assert "exercise 03" in str(error)
    else:
        raise AssertionError("not disabled")
print("ok")
"""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(folder)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.stdout.strip() == "ok", run.stderr[-2000:]
    with pytest.raises(ValueError, match="no module"):
        sandbox.disabled_cflib("03", ["cflib.nowhere.thing"], tmp_path)
    with pytest.raises(ValueError, match="expected 'cflib"):
        sandbox.disabled_cflib("03", ["numpy.sum"], tmp_path)


def test_unusable_sandboxes_are_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="sandbox: expected one of auto, bwrap, none"):
        sandbox.resolve("docker")
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap is not installed: install")
    with pytest.raises(sandbox.SandboxError, match="--sandbox bwrap: bubblewrap is not installed"):
        sandbox.resolve("bwrap")
    with pytest.warns(UserWarning, match="MARKS ARE NOT PROTECTED"):
        assert sandbox.resolve("auto") == "none"
    assert sandbox.resolve("none") == "none"


def test_the_command_line_names_a_bad_memory_size(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cflib.grade", str(tmp_path), "--memory", "lots"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "--memory: expected a size such as 4G" in run.stderr
