"""One document of the evidence pack, and the Markdown helpers every document module shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "missing", "failing"]


@dataclass(frozen=True)
class Document:
    """A document as Markdown, and what makes it incomplete: `missing` when its source does not
    exist (no JUnit file, no manifest), `failing` when the source says something is wrong (a
    failed test, a KPI below target). `problems` says what, one line each."""

    item: int  # its number in Appendix A
    slug: str  # file name without extension
    title: str
    markdown: str
    status: Status = "ok"
    problems: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.item:02d}_{self.slug}.md"


def cell(value: object) -> str:
    """A value as a Markdown table cell (None: a dash): no pipe or line break may end the cell early."""
    if value is None:
        return "-"
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def code(value: object) -> str:
    return f"`{value}`" if value not in (None, "") else "-"


def join(*blocks: str) -> str:
    """Blocks separated by one blank line, ending in a newline."""
    return "\n\n".join(b.strip("\n") for b in blocks if b) + "\n"


def generated_from(*sources: str) -> str:
    return "_Generated from " + ", ".join(f"`{s}`" for s in sources) + "; do not edit._"
