"""The format registry: everything the product knows about an export format, in one record.

Publishing, the output checks, the download links, the Dagster asset kinds, the template schema
and the CLI all read formats from here, so adding a format is one record (plus its writer and
its check) and no other module lists format names, extensions or content types.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from orchestration.exports.csv_export import write_csv
from orchestration.exports.sections import ReportContext, SectionSnapshot

FormatName = Literal["csv", "json", "xlsx", "pdf"]
# (connection, report context, the sections the file holds, target path) -> rows written
Writer = Callable[[Any, ReportContext, Sequence[SectionSnapshot], Path], int]
# (written file, the sections it holds, report context) -> problems found (empty: the file is good)
Check = Callable[[Path, Sequence[SectionSnapshot], ReportContext], list[str]]


@dataclass(frozen=True)
class ExportFormat:
    name: FormatName
    extension: str  # without the dot
    content_type: str  # what a download of the file is served as
    dagster_kind: str  # the kind badge of a published asset that renders this format
    whole_report: bool  # False: the file holds the primary section only (a CSV is one table)
    write: Writer
    check: Check

    def file_name(self, stem: str, *, marking: str, section: str = "") -> str:
        """`<stem>[_<section>]_<MARKING>.<ext>`: the stem names tenant, template, period and variant
        (runs/publish.py), a one-table format of a report with several sections adds the section
        it holds, and the marking comes last so a file copied anywhere still says how it must be
        handled."""
        part = f"_{section}" if section else ""
        return f"{stem}{part}_{marking}.{self.extension}"

    def shown_sections(self, ordered: Sequence[SectionSnapshot], primary: SectionSnapshot) -> list[SectionSnapshot]:
        return list(ordered) if self.whole_report else [primary]


def _write_csv(conn, context: ReportContext, sections: Sequence[SectionSnapshot], path: Path) -> int:
    # A degraded run says so in every format; a CSV has no header block, so it gets a column.
    note = f"DEGRADED: {context.degraded_reason}" if context.degraded else None
    (section,) = sections
    return write_csv(conn, section, path, status_note=note)


def _on_first_call(module: str, name: str) -> Callable[..., Any]:
    """`module.name`, imported when first called. The writers and checks pull in WeasyPrint,
    openpyxl, PDFium and jsonschema (about two seconds of imports), which every process that
    only needs the format names (the CLI loading templates, say) would otherwise pay."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    call.__name__ = call.__qualname__ = name
    return call


_CHECKS = "orchestration.exports.checks"
_RECORDS = (
    ExportFormat("csv", "csv", "text/csv; charset=utf-8", "csv", False, _write_csv,
                 _on_first_call(_CHECKS, "check_csv")),
    ExportFormat("json", "json", "application/json", "json", True,
                 _on_first_call("orchestration.exports.json_export", "write_json"), _on_first_call(_CHECKS, "check_json")),
    ExportFormat("xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", True,
                 _on_first_call("orchestration.exports.xlsx_export", "write_xlsx"), _on_first_call(_CHECKS, "check_xlsx")),
    ExportFormat("pdf", "pdf", "application/pdf", "pdf", True,
                 _on_first_call("orchestration.exports.pdf_export", "write_pdf"), _on_first_call(_CHECKS, "check_pdf")),
)
FORMATS: dict[str, ExportFormat] = {f.name: f for f in _RECORDS}
NAMES: tuple[str, ...] = tuple(FORMATS)
assert get_args(FormatName) == NAMES, "FormatName lists exactly the registered formats, in order"
UNKNOWN_CONTENT_TYPE = "application/octet-stream"


def get(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}: expected one of {', '.join(NAMES)}") from None


def content_type(name: str) -> str:
    """What a file of this format is served as (octet-stream for a name no record knows)."""
    found = FORMATS.get(name)
    return found.content_type if found else UNKNOWN_CONTENT_TYPE


def dagster_kinds(names: Sequence[str]) -> set[str]:
    return {FORMATS[n].dagster_kind for n in names if n in FORMATS}


def check_files(staging: Path, files: list[dict[str, Any]], context: ReportContext) -> list[str]:
    """Read back every rendered file with its format's check; the problems, each naming its file."""
    problems = []
    for entry in files:
        path, sections = staging / entry["name"], entry["_sections"]
        try:
            problems += [f"{entry['name']}: {p}" for p in get(entry["format"]).check(path, sections, context)]
        except Exception as exc:  # a file that cannot even be read back is the finding
            problems.append(f"{entry['name']}: cannot be read back: {type(exc).__name__}: {exc}")
    return problems
