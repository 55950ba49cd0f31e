"""Reading produced files back in tests."""

from __future__ import annotations

import csv
from pathlib import Path


def read_csv(path: Path) -> list[list[str]]:
    """Every row of a CSV file, header included, exactly as a CSV reader sees it."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))
