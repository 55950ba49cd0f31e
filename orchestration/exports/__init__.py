"""Exports: the format registry (formats.py), one writer per format, the output checks and redaction.

The package itself exports only the plain records a report is made of, so importing it (the
catalog and the run engine do) loads no renderer; writers come from exports/formats.py.
"""

from orchestration.exports.sections import ChartSpec, Column, KeyFigure, ReportContext, SectionSnapshot

__all__ = ["ChartSpec", "Column", "KeyFigure", "ReportContext", "SectionSnapshot"]
