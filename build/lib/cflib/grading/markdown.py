"""Written answers: Markdown text found by the name in its heading, never by cell position.

A written answer named ``triangular_proof`` is everything under a heading ``Answer: triangular_proof``
(any level, the name may be in backticks), in that cell and the Markdown cells that follow, up to the
next code cell or the next heading of the same or a higher level. A student may split the answer into
several cells or move it; it is still found. Solutions keep the model answer between
``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``; the exercise shows :data:`ANSWER_PROMPT`
in its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["ANSWER_PROMPT", "answer_text", "written_answers"]

ANSWER_PROMPT = "*Write your answer here, in place of this line.*"

_ANSWER = re.compile(r"^(#{1,6})\s*Answer:\s*`?([A-Za-z_]\w*)`?\s*$")
_HEADING = re.compile(r"^(#{1,6})\s")


def _source(cell: Any) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def written_answers(cells: Iterable[Any]) -> dict[str, str]:
    """Map each answer name to its text (stripped; several sections with one name are joined)."""
    found: dict[str, list[str]] = {}
    current, level = None, 0
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            current = None
            continue
        for line in _source(cell).splitlines():
            answer = _ANSWER.match(line.strip())
            if answer:
                current, level = answer.group(2), len(answer.group(1))
                found.setdefault(current, [])
                continue
            heading = _HEADING.match(line.strip())
            if heading and len(heading.group(1)) <= level:
                current = None
            if current is not None:
                found[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in found.items()}


def answer_text(text: str | None) -> str:
    """The student's own words: ``text`` without the prompt and HTML comments."""
    if not text:
        return ""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return text.replace(ANSWER_PROMPT, "").strip()
