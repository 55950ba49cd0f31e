"""Gate B as a blocking asset check on each template's snapshot."""

import dagster as dg

from orchestration.catalog.templates import Template
from orchestration.defs.reports import metadata as report_metadata
from orchestration.defs.reports.assets import run_failure, run_record, snapshot_key
from orchestration.defs.resources import WarehouseResource
from orchestration.runs import engine, records, stage_log, supervisor
from orchestration.runs.failures import RunFailed


def build_gate_b_check(template: Template) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=snapshot_key(template),
        name="gate_b",
        blocking=True,
        description=f"Gate B: the {template.expectation_suite} and shared Great Expectations suites "
        "on the snapshot; a failed critical expectation fails the run and blocks publishing.",
    )
    def gate_b_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connection() as conn, stage_log.listening(context.log.info):
            record = run_record(conn, template, context)
            request = record.request_object()
            sections = engine.sections_of(template, record)
            try:
                with supervisor.guarded(conn, record.run_id, "validation_failed"):
                    result = engine.gate_b(conn, record.run_id, template, request, sections)
            except RunFailed as exc:
                if exc.failure_class != "validation_failed":
                    raise run_failure(exc) from exc
                with warehouse.connection() as fresh:
                    summary = records.get_run(fresh, record.run_id).gate_summary
                return dg.AssetCheckResult(
                    passed=False,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=exc.diagnosis,
                    metadata={"report_run_id": record.run_id, **report_metadata.gate_b(summary)},
                )
        return dg.AssetCheckResult(
            passed=True,
            metadata={"report_run_id": record.run_id, **report_metadata.gate_b(result.summary())},
        )

    return gate_b_check
