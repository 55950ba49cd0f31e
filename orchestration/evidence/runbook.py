"""Item 5: the scheduler and delivery runbook, hand-written in docs/runbook.md and included
verbatim. `commands` lists every `nexus-reports` command line it names, so a test can parse each
with the CLI's own parser and the page cannot drift from the commands that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from orchestration.evidence.document import Document, join
from orchestration.settings import REPO_ROOT

RUNBOOK_PATH = REPO_ROOT / "docs" / "runbook.md"
TITLE = "Scheduler and delivery runbook"
PROGRAM = "nexus-reports"
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`(" + PROGRAM + r" [^`]+)`")


def commands(text: str) -> list[list[str]]:
    """The argument lists (after the program name) of every command line in the Markdown: the
    lines of fenced blocks that start with the program, and inline code spans that do (a span
    may wrap across lines)."""
    found = []
    for block in _FENCE.findall(text):
        found += [line.strip() for line in block.splitlines() if line.strip().startswith(PROGRAM + " ")]
    found += [" ".join(span.split()) for span in _INLINE.findall(_FENCE.sub("", text))]
    return [shlex.split(line)[1:] for line in found]


def document(path: Path = RUNBOOK_PATH) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Document(5, "scheduler_and_delivery_runbook", TITLE, join(f"# {TITLE}", f"Not available: {exc}"),
                        "missing", (f"the runbook {path} cannot be read: {exc.strerror or exc}",))
    return Document(5, "scheduler_and_delivery_runbook", TITLE, text)
