"""Item 9: the signoff summary: each required item with its files and their sha256, and what is
missing or failing. The pack is complete only when every item is `ok`.

The summary cannot hash itself or the combined PDF it is part of: `SHA256SUMS`, written last,
covers every file of the folder (check it with `sha256sum -c SHA256SUMS`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from orchestration.evidence.document import Document, code, join, table

TITLE = "Signoff summary"
SUMS_FILE = "SHA256SUMS"
CHUNK = 1 << 20


@dataclass(frozen=True)
class PackFile:
    name: str  # relative to the pack folder
    sha256: str
    bytes: int


def hashed(folder: Path, name: str) -> PackFile:
    digest = hashlib.sha256()
    path = folder / name
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return PackFile(name, digest.hexdigest(), path.stat().st_size)


@dataclass(frozen=True)
class Item:
    document: Document
    files: tuple[PackFile, ...]


def complete(items: list[Item]) -> bool:
    return all(i.document.status == "ok" for i in items)


def document(items: list[Item], *, period: str, generated: str, actor: str) -> Document:
    rows = []
    for item in items:
        d = item.document
        for n, f in enumerate(item.files):
            first = n == 0
            rows.append((d.item if first else "", d.title if first else "", code(f.name), code(f.sha256), f"{f.bytes:,}",
                         d.status.upper() if first else "", "; ".join(d.problems) if first else ""))
    incomplete = [i.document for i in items if i.document.status != "ok"]
    verdict = ("**COMPLETE**: every required item is present and passing." if not incomplete else
               f"**INCOMPLETE**: {len(incomplete)} item(s) missing or failing: "
               + ", ".join(f"{d.item} {d.title} ({d.status})" for d in incomplete) + ".")
    markdown = join(
        f"# {TITLE}",
        f"Period {period}; built {generated} by {actor}.",
        verdict,
        table(["#", "required item", "file", "sha256", "bytes", "status", "missing or failing"], rows),
        f"This summary and the combined PDF are hashed in `{SUMS_FILE}`, with every other file of the pack.",
    )
    return Document(9, "signoff_summary", TITLE, markdown, "ok" if not incomplete else "failing",
                    tuple(f"item {d.item} {d.status}" for d in incomplete))
