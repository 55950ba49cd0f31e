"""Great Expectations for Gate B: one context per process and database, and the two ways a
section snapshot is validated.

A section is validated twice at most:
- the quick pass: only whether each expectation holds (result format BOOLEAN_ONLY, so GX does
  not compute the unexpected-value lists nobody reads when everything holds). A snapshot of up
  to IN_MEMORY_ROWS rows is read into a pandas frame (only the columns its suite names) and
  handed to one dataframe asset as a batch parameter: no asset is added per section, and GX's
  metrics are computed in memory instead of as one SQL query each. A bigger snapshot is
  validated in the database, where it lives.
- the full pass, only for a section whose quick pass found anything unmet (or raised): the
  snapshot table in the database with result format SUMMARY, exactly as Gate B validated every
  section before the quick pass existed, so what a failure records (which expectations, what
  was observed) comes from the same validation as it always did.

Measured on the demo's snapshots (warm process, 19 runs of 63 sections, 3 rounds): 65-69 ms CPU
per section and 217-228 ms per run when every section was validated the full way, 23-26 ms and
76-85 ms with the quick pass; Postgres' CPU per run went from 12-14 ms to under 2 ms. What is
left is GX's own per-expectation work (it rebuilds each expectation's configuration dozens of
times while planning metrics), about 3 ms per expectation.
"""

from __future__ import annotations

import logging
import os
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from orchestration.exports import SectionSnapshot

if TYPE_CHECKING:  # GX and pandas are imported when a gate runs, not whenever the run engine is imported
    import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Beyond this many rows a snapshot's quick pass runs in the database: pandas works on the
# frame's Python objects (Decimal, date, str) row by row, Postgres does not. CPU of one section
# of 12 expectations (this process + Postgres), in memory against in the database: 1,000 rows
# 0.06 against 0.09 s, 2,000 about even, 10,000 0.29 against 0.21 s (200,000: 2.3 s in memory,
# 1.5 s wall in the database).
IN_MEMORY_ROWS = 2_000
# The expectation types the in-memory quick pass may decide; each one has a test that a snapshot
# it rejects in the database is rejected in memory too (tests/runs/test_gate_b_quick.py). A
# section whose suite has any other type is validated in the database only, where Gate B always
# validated it (pandas and Postgres can differ: row order, regex dialects, what raises).
IN_MEMORY_TYPES = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
    "expect_column_values_to_match_regex", "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
})
# Table-level expectations that read no column: the frame for a suite of only these and of
# column expectations needs only the columns they name.
_COLUMNLESS = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


class GxSession:
    """An ephemeral GX context with a SQL datasource on the warehouse and one pandas dataframe
    asset. Building them is per-process work, not per-run work. Not thread-safe (GX contexts are
    not): callers take turns (gate_b holds a lock)."""

    def __init__(self, connection_string: str):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message=".*generic SQLDatasource.*")
        # pandas on GX's regex metric (str.contains with a pattern that has groups): noise, the match is what counts
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # The generic SQL datasource: the Postgres one insists on a TCP host, the embedded server has a socket.
        self.sql = context.data_sources.add_sql("snapshot", connection_string=connection_string)
        frames = context.data_sources.add_pandas("frames")
        self.frames = frames
        self.frame_batches = frames.add_dataframe_asset("snapshot").add_batch_definition_whole_dataframe("whole")

    def validate_quick(self, snap: SectionSnapshot, suite, parameters: dict[str, Any], *,
                       columns: frozenset[str] | None = None, in_memory: bool = True) -> list:
        """Whether each expectation holds, without details (see the module's docstring); in the
        database when the snapshot is big or `in_memory` is false (see IN_MEMORY_TYPES)."""
        if not in_memory or snap.row_count > IN_MEMORY_ROWS:
            return self.validate_table(snap, suite, parameters, result_format="BOOLEAN_ONLY")
        from great_expectations.validator.v1_validator import Validator

        # What Batch.validate builds, without getting the batch a second time first.
        validator = Validator(self.frame_batches, result_format="BOOLEAN_ONLY",
                              batch_parameters={"dataframe": self.read_frame(snap, columns)})
        return validator.validate_expectation_suite(suite, expectation_parameters=parameters).results

    def validate_table(self, snap: SectionSnapshot, suite, parameters: dict[str, Any], *,
                       result_format: str = "SUMMARY") -> list:
        """The snapshot table validated in the database."""
        from great_expectations.validator.v1_validator import Validator

        schema, table = (part.strip('"') for part in snap.table.split(".", 1))
        # The asset is this section's only: added, validated, removed, so the datasource holds no
        # asset between runs and two runs never share one.
        asset_name = f"{snap.name}-{uuid.uuid4().hex}"
        asset = self.sql.add_table_asset(asset_name, table_name=table, schema_name=schema)
        try:
            validator = Validator(asset.add_batch_definition_whole_table("whole"), result_format=result_format)
            return validator.validate_expectation_suite(suite, expectation_parameters=parameters).results
        finally:
            self.sql.delete_asset(asset_name)

    def read_frame(self, snap: SectionSnapshot, wanted: frozenset[str] | None) -> pd.DataFrame:
        import pandas as pd

        columns = frame_columns(snap, wanted)
        select = ", ".join(_quoted(c) for c in columns) or "1"
        with self.sql.get_engine().connect() as conn:
            rows = conn.exec_driver_sql(f"select {select} from {snap.table}").fetchall()
        if not columns:  # a suite of row counts only: the rows, no columns
            return pd.DataFrame(index=range(len(rows)))
        return pd.DataFrame.from_records(rows, columns=columns)


def named_columns(configs: list[dict[str, Any]]) -> frozenset[str] | None:
    """The columns a suite's expectations (as written in its JSON) read, or None when one of them
    may read columns it does not name (then the frame has every column)."""
    named: set[str] = set()
    for config in configs:
        kwargs = config.get("kwargs") or {}
        found = [kwargs[k] for k in _COLUMN_KWARGS if k in kwargs]
        found += [c for k in _COLUMN_LIST_KWARGS for c in kwargs.get(k) or ()]
        if not found and config.get("type") not in _COLUMNLESS:
            return None
        if not all(isinstance(c, str) for c in found):
            return None
        named.update(found)
    return frozenset(named)


def frame_columns(snap: SectionSnapshot, wanted: frozenset[str] | None) -> list[str]:
    """The snapshot's columns the suite reads. A named column the snapshot lacks is left out, so
    GX reports it missing (and the full pass records that as it always did)."""
    present = [c.name for c in snap.columns]
    return present if wanted is None else [c for c in present if c in wanted]


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
