"""Collection at a deadline (``python -m cflib.collect``) and the roster, offline: every repository is
a local git repository made here, with commits dated before and after the deadline."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cflib.collect import main as collect_main
from cflib.collect import parse_deadline, redact
from cflib.grading.roster import RosterError, read_roster

DEADLINE = "2026-12-01T23:59:00+01:00"
BEFORE = "2026-12-01T20:00:00+01:00"
BEFORE_LATER = "2026-12-01T23:30:00+01:00"
AFTER = "2026-12-02T09:00:00+01:00"


def _git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    done = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _commit(repo: Path, date: str, files: dict[str, str | None]) -> str:
    """Write (or, for None, delete) files and commit them at ``date``; the commit's hash."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"work at {date}", date=date)
    return _git(repo, "rev-parse", "HEAD")


def _repo(root: Path, login: str) -> Path:
    repo = root / f"{login}-course"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    return repo


@pytest.fixture
def course(tmp_path: Path) -> dict:
    """Five students: on time with a late fix, on time only, missing, empty, only late."""
    remotes = tmp_path / "remotes"
    alice = _repo(remotes, "alice")
    on_time = _commit(alice, BEFORE, {"exercises/03_checkerboard.ipynb": '{"v": "on time"}'})
    _commit(alice, AFTER, {"exercises/03_checkerboard.ipynb": '{"v": "late fix"}'})
    _commit(alice, AFTER, {"notes.txt": "more"})
    bob = _repo(remotes, "bob")
    bob_commit = _commit(bob, BEFORE, {"01_affine_jacobian.ipynb": "{}", "README.md": "hi"})
    _git(bob, "checkout", "-q", "-b", "side")  # a newer commit on a side branch: not taken
    _commit(bob, BEFORE_LATER, {"side.ipynb": "{}"})
    _git(bob, "checkout", "-q", "main")
    _repo(remotes, "dave")  # empty: never committed to
    erin = _repo(remotes, "erin")
    _commit(erin, AFTER, {"01_affine_jacobian.ipynb": "{}"})
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "login,name,email\nalice,Alice A,a@x.org\nbob,Bob B,b@x.org\ncarol,Carol C,c@x.org\n"
        "dave,Dave D,d@x.org\nerin,Erin E,e@x.org\n"
    )
    out = tmp_path / "submissions"
    args = [
        "--roster", str(roster), "--repo-url", str(remotes / "{login}-course"),
        "--deadline", DEADLINE, "--out", str(out), "--jobs", "3",
    ]  # fmt: skip
    return {"args": args, "out": out, "alice": on_time, "bob": bob_commit, "bob_repo": bob}


def _entries(out: Path) -> dict[str, dict]:
    data = json.loads((out / "collection.json").read_text())
    return {e["login"]: e for e in data["students"]}


def test_collects_the_last_commit_before_the_deadline(course: dict, capsys) -> None:
    assert collect_main(course["args"]) == 0
    out = course["out"]
    entries = _entries(out)
    assert (out / "alice/exercises/03_checkerboard.ipynb").read_text() == '{"v": "on time"}'
    assert entries["alice"]["commit"] == course["alice"]
    assert entries["alice"]["committed_at"] == "2026-12-01T19:00:00Z"
    assert entries["alice"]["late_commits"] == 2
    assert entries["alice"]["last_commit_at"] == "2026-12-02T08:00:00Z"
    # only notebooks, only from the default branch
    assert sorted(p.name for p in (out / "bob").rglob("*") if p.is_file()) == [
        "01_affine_jacobian.ipynb"
    ]
    assert entries["bob"]["commit"] == course["bob"] and entries["bob"]["late_commits"] == 0
    printed = capsys.readouterr().out
    assert "alice" in printed and course["alice"][:10] in printed
    assert "5 students: 2 collected (1 with late commits), 1 missing, 1 empty" in printed


def test_missing_empty_and_late_only_repositories_are_reported(course: dict) -> None:
    collect_main(course["args"])
    entries = _entries(course["out"])
    assert (
        entries["carol"]["status"] == "missing" and "does not exist" in entries["carol"]["message"]
    )
    assert entries["dave"]["status"] == "empty"
    assert entries["erin"]["status"] == "nothing before the deadline"
    assert entries["erin"]["late_commits"] == 1
    for login in ("carol", "dave", "erin"):
        assert not (course["out"] / login).exists(), login
    assert json.loads((course["out"] / "collection.json").read_text())["deadline"].startswith(
        "2026-12-01T23:59"
    )


def test_a_rerun_fetches_and_updates(course: dict) -> None:
    collect_main(course["args"])
    bob = course["bob_repo"]
    newer = _commit(
        bob, BEFORE_LATER, {"01_affine_jacobian.ipynb": None, "02_dependency_patterns.ipynb": "{}"}
    )
    collect_main(course["args"])
    assert _entries(course["out"])["bob"]["commit"] == newer
    assert [p.name for p in (course["out"] / "bob").iterdir()] == ["02_dependency_patterns.ipynb"]


def test_one_unreachable_repository_does_not_stop_the_others(tmp_path: Path, course: dict) -> None:
    roster = tmp_path / "two.csv"
    roster.write_text("login\nalice\nbob\n")
    args = list(course["args"])
    args[1] = str(roster)
    args[3] = "https://127.0.0.1:9/{login}.git"  # nothing listens there: fails fast, no prompt
    collect_main(args)
    entries = _entries(course["out"])
    assert {e["status"] for e in entries.values()} == {"error"}
    assert all(e["message"] for e in entries.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--deadline": "2026-12-01T23:59:00"}, "no time zone"),
        ({"--deadline": "Friday"}, "not an ISO 8601 time"),
        ({"--repo-url": "/srv/repos/course"}, "has no '{login}'"),
        ({"--jobs": "0"}, "--jobs: expected a positive integer"),
        ({"--roster": "/no/such/roster.csv"}, "no such file"),
    ],
)
def test_unusable_arguments_exit_2(course: dict, change: dict, message: str, capsys) -> None:
    args = list(course["args"])
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    with pytest.raises(SystemExit) as exit_info:
        collect_main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_deadline_and_redaction() -> None:
    assert parse_deadline("2026-12-01T22:59:00Z") == parse_deadline(DEADLINE)
    assert redact("https://x-access-token:ghp_secret@github.com/o/r.git") == (
        "https://***@github.com/o/r.git"
    )
    assert redact("/srv/repos/{login}") == "/srv/repos/{login}"


# --- the roster ---------------------------------------------------------------------------------


def test_roster_reads_the_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "\ufefflogin,name,email,id,sis_user_id,sis_login_id,section\n"
        'alice,"Doe, Alice",a@x.org,17,S1,alice@uni,A\n\nbob,,,,,,\n'
    )
    roster = read_roster(path)
    assert roster.logins == ["alice", "bob"]
    assert roster.get("alice").name == "Doe, Alice" and roster.get("alice").section == "A"
    assert roster.get("bob").display_name == "bob" and "carol" not in roster


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("login,nmae\nalice,A\n", "row 1, column 2: unknown column 'nmae'"),
        ("name,email\nA,a@x.org\n", "row 1: no 'login' column"),
        ("login,name\nalice,A\nbob,B\nalice,C\n", "row 4, column 'login': 'alice' repeats row 2"),
        ("login,name\nalice,A\n,B\n", "row 3, column 'login': empty"),
        ("login,email\nalice,not-an-address\n", "row 2, column 'email'"),
        ("login\n../etc\n", "row 2, column 'login': '../etc' is not a usable login"),
        ("login,name\nalice,Doe, Alice\n", "row 2: 3 cells but the header has 2 columns"),
        ("", "empty"),
    ],
)
def test_a_bad_roster_names_the_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RosterError, match=None) as error:
        read_roster(path)
    assert message in str(error.value) and str(path) in str(error.value)
