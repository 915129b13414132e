"""A class roster: a CSV with one row per student.

The column ``login`` is required: the name in the repository URL and the submission folder
(``DIR/<login>/``). Optional columns: ``name, email, id, sis_user_id, sis_login_id, section`` (what
an LMS gradebook import needs). Other columns are an error, so a typo in a header is not silently
ignored. A bad roster raises :class:`RosterError` naming the file, the row (as a spreadsheet numbers
it: the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["COLUMNS", "Roster", "RosterError", "Student", "read_roster"]

COLUMNS = ("login", "name", "email", "id", "sis_user_id", "sis_login_id", "section")

# What a folder name and a URL path segment can hold safely: letters, digits, ``. _ -``, and not
# starting with a dot (GitHub logins are a subset).
_LOGIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class RosterError(ValueError):
    """The roster cannot be used; the message names the file, row and column."""


@dataclass(frozen=True)
class Student:
    """One row of the roster (empty strings for the optional columns it leaves out)."""

    login: str
    name: str = ""
    email: str = ""
    id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def display_name(self) -> str:
        """The name when the roster gives one, else the login."""
        return self.name or self.login


@dataclass(frozen=True)
class Roster:
    """The students in roster order, found by login."""

    path: Path
    students: tuple[Student, ...]

    def __contains__(self, login: object) -> bool:
        return any(s.login == login for s in self.students)

    def get(self, login: str) -> Student | None:
        return next((s for s in self.students if s.login == login), None)

    @property
    def logins(self) -> list[str]:
        return [s.login for s in self.students]


def read_roster(path: str | Path) -> Roster:
    """Read and check a roster CSV (UTF-8, a spreadsheet's byte-order mark allowed).

    Raises:
        RosterError: the file is missing or empty, a column is unknown or repeated, ``login`` is
            missing, or a row has an empty, malformed or repeated login, an extra cell, or a
            malformed email.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise RosterError(f"roster {path}: no such file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError(f"roster {path}: cannot be read as UTF-8 text ({error})") from error
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise RosterError(f"roster {path}: empty; expected a header row with a 'login' column")
    header = [cell.strip().lower() for cell in rows[0]]
    for number, column in enumerate(header, start=1):
        if column not in COLUMNS:
            raise RosterError(
                f"roster {path}, row 1, column {number}: unknown column {rows[0][number - 1]!r} "
                f"(expected some of: {', '.join(COLUMNS)})"
            )
        if header.index(column) != number - 1:
            raise RosterError(f"roster {path}, row 1, column {number}: {column!r} appears twice")
    if "login" not in header:
        raise RosterError(f"roster {path}, row 1: no 'login' column (found: {', '.join(header)})")

    students: list[Student] = []
    seen: dict[str, int] = {}
    for row_number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) > len(header):
            raise RosterError(
                f"roster {path}, row {row_number}: {len(row)} cells but the header has "
                f"{len(header)} columns (a comma inside a name needs quotes)"
            )
        cells = {
            column: (row[i].strip() if i < len(row) else "") for i, column in enumerate(header)
        }
        login = cells["login"]
        where = f"roster {path}, row {row_number}, column 'login'"
        if not login:
            raise RosterError(f"{where}: empty; every student needs a login")
        if not _LOGIN.fullmatch(login):
            raise RosterError(
                f"{where}: {login!r} is not a usable login (letters, digits, '.', '_' and '-', "
                "not starting with '.' or '-')"
            )
        if login in seen:
            raise RosterError(f"{where}: {login!r} repeats row {seen[login]}")
        seen[login] = row_number
        email = cells.get("email", "")
        if email and not _EMAIL.fullmatch(email):
            raise RosterError(
                f"roster {path}, row {row_number}, column 'email': {email!r} is not an email address"
            )
        students.append(Student(**cells))
    if not students:
        raise RosterError(f"roster {path}: no students (only a header)")
    return Roster(path, tuple(students))
