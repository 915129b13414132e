"""Collect submissions at a deadline: ``python -m cflib.collect --roster R --repo-url TEMPLATE
--deadline ISO8601 --out DIR``.

For each login on the roster, the repository ``TEMPLATE`` with ``{login}`` filled in (any git URL,
or a local path) is cloned, or fetched when ``DIR/.repos/<login>`` already holds it (a rerun
updates). On its default branch the last commit made at or before the deadline (by committer date)
is taken, and that commit's notebooks (``*.ipynb``, relative paths kept) are written to
``DIR/<login>/``, replacing what an earlier run wrote there. ``DIR/collection.json`` records, per
student, the status (``collected``, ``missing``, ``empty``, ``nothing before the deadline``,
``error``), the commit and its time, and the commits made after the deadline (late).

Repositories are cloned in parallel (``--jobs`` threads); one that fails never stops the others.
Git runs without hooks, terminal prompts or credential helpers' prompts; authentication, where a
repository needs it, comes from git's own configuration or environment (see the README's
instructor workflow, which passes a token through ``GIT_CONFIG_*`` variables that only this
step sees). Userinfo in URLs (``https://user:token@host``) is never written to ``collection.json``.

Committer dates come from the student's machine: a student can forge them. Where that matters,
collect from a trusted snapshot taken at the deadline (e.g. run this job at the deadline).

Exit status: 0 when collection ran (whatever each repository's outcome), 2 on unusable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from cflib.grading.roster import Roster, RosterError, read_roster

__all__ = ["Collected", "collect", "main", "parse_deadline"]

COLLECTION_FILE = "collection.json"
REPOS = ".repos"
GIT_TIMEOUT = 600.0

STATUSES = ("collected", "missing", "empty", "nothing before the deadline", "error")


@dataclass
class Collected:
    """What collection found for one student."""

    login: str
    status: str
    commit: str | None = None
    committed_at: str | None = None
    late_commits: int = 0
    last_commit_at: str | None = None
    notebooks: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def late(self) -> bool:
        return self.late_commits > 0


def parse_deadline(text: str) -> datetime:
    """An ISO 8601 time with its time zone (``2026-12-01T23:59:00+01:00`` or ``...Z``).

    Raises:
        ValueError: not ISO 8601, or no time zone (ambiguous across machines and CI runners).
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as error:
        raise ValueError(
            f"--deadline: {text!r} is not an ISO 8601 time such as 2026-12-01T23:59:00+01:00"
        ) from error
    if moment.tzinfo is None:
        raise ValueError(
            f"--deadline: {text!r} has no time zone; add one, e.g. {text}Z (UTC) or {text}+01:00"
        )
    return moment


def redact(url: str) -> str:
    """``url`` without userinfo (``https://token@host/x`` -> ``https://***@host/x``)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]+@", r"\1***@", url, flags=re.I)


def _is_local(url: str) -> bool:
    return url.startswith("file://") or ("://" not in url and not re.match(r"[^/]+@[^:/]+:", url))


def _git(args: Sequence[str], cwd: Path | None, local: bool) -> subprocess.CompletedProcess[str]:
    """Run git safely: no hooks, no prompts, no pager; ``file://``/paths only for local remotes."""
    config = ["-c", "core.hooksPath=/dev/null", "-c", "credential.interactive=false"]
    if local:
        config += ["-c", "protocol.file.allow=always"]
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }
    return subprocess.run(
        ["git", *config, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _last_line(process: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in process.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"git exited with status {process.returncode}"


def _update_mirror(url: str, mirror: Path) -> str | None:
    """Clone ``url`` into the bare repository ``mirror`` or fetch it; None, else git's error."""
    local = _is_local(url)
    if (mirror / "HEAD").exists():
        _git(["remote", "set-url", "origin", url], mirror, local)
        done = _git(
            ["fetch", "--prune", "--quiet", "origin", "+refs/heads/*:refs/heads/*"], mirror, local
        )
        if done.returncode != 0:
            return _last_line(done)
        head = _git(["ls-remote", "--symref", "origin", "HEAD"], mirror, local)
        found = re.search(r"^ref:\s*(refs/heads/\S+)\s+HEAD", head.stdout, re.M)
        if found:
            _git(["symbolic-ref", "HEAD", found.group(1)], mirror, local)
        return None
    if mirror.exists():
        shutil.rmtree(mirror)
    mirror.parent.mkdir(parents=True, exist_ok=True)
    done = _git(["clone", "--bare", "--quiet", url, str(mirror)], None, local)
    if done.returncode != 0:
        shutil.rmtree(mirror, ignore_errors=True)
        return _last_line(done)
    return None


def _write_notebooks(mirror: Path, commit: str, folder: Path) -> list[str]:
    """Write the commit's ``.ipynb`` files to ``folder`` (emptied first); their relative paths."""
    listed = _git(["ls-tree", "-r", "-z", "--name-only", commit], mirror, True)
    names = [n for n in listed.stdout.split("\0") if n.endswith(".ipynb")]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    written = []
    for name in names:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            continue
        blob = subprocess.run(
            ["git", "cat-file", "blob", f"{commit}:{name}"],
            cwd=mirror,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=True,
        ).stdout
        target = folder.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        written.append(name)
    return written


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_one(login: str, url: str, deadline: datetime, out: Path) -> Collected:
    """Collect one student's repository; never raises (failures become the status)."""
    try:
        mirror = out / REPOS / login
        problem = _update_mirror(url, mirror)
        if problem is not None:
            status = (
                "missing"
                if re.search(
                    r"not found|does not exist|not appear to be a git repository|repository .* not",
                    problem,
                    re.I,
                )
                else "error"
            )
            return Collected(login, status, message=problem)
        log = _git(["log", "--format=%H %ct", "HEAD"], mirror, True)
        if log.returncode != 0:  # no commits: HEAD names an unborn branch
            shutil.rmtree(out / login, ignore_errors=True)
            return Collected(login, "empty", message="the repository has no commits")
        commits = [(h, int(t)) for h, t in (line.split() for line in log.stdout.splitlines())]
        limit = deadline.timestamp()
        before = [c for c in commits if c[1] <= limit]
        late = sum(t > limit for _, t in commits)
        last = _iso(max(t for _, t in commits))
        if not before:
            shutil.rmtree(out / login, ignore_errors=True)
            return Collected(
                login,
                "nothing before the deadline",
                late_commits=late,
                last_commit_at=last,
                message=f"all {len(commits)} commits are after the deadline",
            )
        commit, seconds = max(before, key=lambda c: c[1])
        notebooks = _write_notebooks(mirror, commit, out / login)
        return Collected(
            login,
            "collected",
            commit=commit,
            committed_at=_iso(seconds),
            late_commits=late,
            last_commit_at=last,
            notebooks=notebooks,
            message="" if notebooks else "the commit holds no notebooks",
        )
    except Exception as error:  # one repository never stops the others
        return Collected(login, "error", message=f"{type(error).__name__}: {error}"[:300])


def collect(
    roster: Roster,
    template: str,
    deadline: datetime,
    out: str | Path,
    jobs: int = 8,
    progress: Callable[[Collected], None] | None = None,
) -> list[Collected]:
    """Collect every student on ``roster`` (see the module's docstring); results in roster order,
    also written to ``out/collection.json``."""
    if "{login}" not in template:
        raise ValueError(f"--repo-url: {template!r} has no '{{login}}' to fill in")
    if jobs < 1:
        raise ValueError(f"--jobs: expected a positive integer, got {jobs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, Collected] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(
                collect_one, s.login, template.replace("{login}", s.login), deadline, out
            ): s
            for s in roster.students
        }
        for future in as_completed(futures):
            result = future.result()
            found[result.login] = result
            if progress is not None:
                progress(result)
    results = [found[login] for login in roster.logins]
    record = {
        "deadline": deadline.isoformat(),
        "repo_url": redact(template),
        "collected_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "students": [asdict(r) for r in results],
    }
    (out / COLLECTION_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return results


def table(results: Sequence[Collected]) -> str:
    """A plain-text table: login, status, commit, time, late commits, notebooks, message."""
    rows = [("login", "status", "commit", "committed (UTC)", "late", "notebooks", "note")]
    for r in results:
        rows.append(
            (
                r.login,
                r.status,
                (r.commit or "")[:10],
                r.committed_at or "",
                str(r.late_commits) if r.late_commits else "",
                str(len(r.notebooks)) if r.status == "collected" else "",
                r.message[:80],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join(
        "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:6])) + "  " + row[6]
        for row in rows
    ).replace(" \n", "\n")


def summary(results: Sequence[Collected]) -> str:
    """One line: how many were collected, late, missing, empty, with nothing in time, errors."""
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    late = sum(r.late for r in results if r.status == "collected")
    return (
        f"{len(results)} students: {counts['collected']} collected ({late} with late commits), "
        f"{counts['missing']} missing, {counts['empty']} empty, "
        f"{counts['nothing before the deadline']} with nothing before the deadline, "
        f"{counts['error']} errors"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cflib.collect",
        description="Collect each student's notebooks as they were at the deadline.",
    )
    parser.add_argument("--roster", required=True, metavar="CSV", help="the class roster")
    parser.add_argument(
        "--repo-url",
        required=True,
        metavar="TEMPLATE",
        help="repository URL or path with {login}, e.g. https://github.com/org/ex3-{login}.git",
    )
    parser.add_argument(
        "--deadline", required=True, metavar="ISO8601", help="e.g. 2026-12-01T23:59:00+01:00"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="writes DIR/<login>/")
    parser.add_argument("--jobs", type=int, default=8, metavar="N", help="clones at once (8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        deadline = parse_deadline(args.deadline)
        roster = read_roster(args.roster)
        if "{login}" not in args.repo_url:
            raise ValueError(f"--repo-url: {args.repo_url!r} has no '{{login}}' to fill in")
        if args.jobs < 1:
            raise ValueError(f"--jobs: expected a positive integer, got {args.jobs}")
    except (RosterError, ValueError) as error:
        parser.error(str(error))
    bar = tqdm(
        total=len(roster.students),
        desc="collect",
        unit="repo",
        file=sys.stderr,
        disable=args.quiet or not sys.stderr.isatty(),
    )

    def progress(result: Collected) -> None:
        bar.update()
        bar.set_postfix_str(f"{result.login}: {result.status}")

    with bar:
        results = collect(roster, args.repo_url, deadline, args.out, args.jobs, progress)
    print(table(results))
    print()
    print(summary(results))
    print(f"(written to {Path(args.out) / COLLECTION_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
