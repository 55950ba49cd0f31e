"""Renderers: every format streamed from a run's snapshot tables."""

from .csv_export import neutralize_formula, write_csv
from .json_export import write_json
from .pdf_export import safe_url_fetcher, write_pdf
from .sections import ChartSpec, Column, KeyFigure, ReportContext, SectionSnapshot
from .xlsx_export import write_xlsx

__all__ = [
    "ChartSpec", "Column", "KeyFigure", "ReportContext", "SectionSnapshot",
    "neutralize_formula", "safe_url_fetcher", "write_csv", "write_json", "write_pdf", "write_xlsx",
]
