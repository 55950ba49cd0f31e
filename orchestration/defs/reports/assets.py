"""Report templates as asset pairs: <template>/snapshot -> Gate B -> <template>/published.

Built from the catalog, not written per template: each template's assets depend on exactly
the dbt models its sections read, and are partitioned by tenant x period. The snapshot asset
submits the run through the one submission path (services.runs), whatever launched it: the UI,
a cadence schedule, a runtime schedule's tick or a backfill.
"""

import datetime as dt

import dagster as dg

from orchestration.catalog.templates import Template
from orchestration.defs.dbt.assets import dbt_asset_key
from orchestration.defs.partitions import partitions_for
from orchestration.defs.reports import metadata as report_metadata
from orchestration.defs.resources import ArtifactStoreResource, WarehouseResource
from orchestration.errors import ServiceError
from orchestration.exports import formats
from orchestration.metrics import dbt_manifest
from orchestration.runs import engine, records, run_tags, stage_log, supervisor
from orchestration.runs.failures import RunFailed
from orchestration.runs.publish import render_and_publish
from orchestration.runs.run_record import RunOrigin, RunRecord
from orchestration.schedules import store as schedule_store
from orchestration.services import delivery as delivery_service
from orchestration.services import runs as run_service


def snapshot_key(template: Template) -> dg.AssetKey:
    return dg.AssetKey([template.key, "snapshot"])


def published_key(template: Template) -> dg.AssetKey:
    return dg.AssetKey([template.key, "published"])


def submission_from_context(template: Template, context: dg.AssetExecutionContext) -> run_service.RunSubmission:
    keys = context.partition_key.keys_by_dimension
    tags = context.run.tags
    return run_service.RunSubmission(
        template_key=template.key, version=template.version, template=template, tenant_id=keys["tenant"],
        period=keys["period"], requester=tags.get(run_tags.REQUESTER, run_tags.DEFAULT_REQUESTER),
        trigger=tags.get(run_tags.TRIGGER, "manual"),
        formats=tuple(f for f in tags.get(run_tags.FORMATS, "").split(",") if f),
    )


def origin_from_context(conn, context) -> RunOrigin:
    """What a runtime schedule's tick tagged on the run: the schedule (whose tenant the request
    must match), and the tick time, for the schedule lag."""
    tags = context.run.tags
    schedule_id = tags.get(run_tags.SCHEDULE)
    # An unknown schedule id vouches for no tenant: matching against '' refuses the run.
    expected = (schedule_store.tenant_of(conn, schedule_id) or "") if schedule_id else None
    tick = tags.get(run_tags.TICK_AT)
    return RunOrigin(dagster_run_id=context.run.run_id, schedule_id=schedule_id, expected_tenant=expected,
                     tick_at=dt.datetime.fromisoformat(tick) if tick else None)


def run_record(conn, template: Template, context) -> RunRecord:
    record = records.run_for_dagster_run(conn, context.run.run_id, template.key)
    if record is None:
        raise dg.Failure(
            description=f"no {template.key} snapshot was taken in this Dagster run: "
            f"materialize {template.key}/snapshot and {template.key}/published together"
        )
    return record


def run_failure(exc: RunFailed) -> dg.Failure:
    return dg.Failure(
        description=exc.diagnosis,
        metadata={"report_run_id": exc.run_id, "failure_class": exc.failure_class},
        allow_retries=False,
    )


def _metadata(template: Template) -> dict:
    return {
        "template_version": template.version,
        "owner": template.owner,
        "sensitivity": template.sensitivity,
        "formats": ", ".join(template.formats),
        "content_hash": template.content_hash,
        "metrics": ", ".join(f"{m.id} ({m.model} v{m.version})" for m in template.metrics),
    }


def _snapshot_asset(template: Template, partitions, dbt_deps):
    @dg.asset(
        key=snapshot_key(template),
        deps=dbt_deps,
        partitions_def=partitions,
        group_name=template.key,
        kinds={"postgres"},
        owners=report_metadata.owners(template.owner),
        description=f"{template.title} v{template.version}: every section queried under RLS "
        "for the partition's tenant and period, frozen in immutable snapshot tables.",
        metadata=_metadata(template),
    )
    def snapshot_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connection() as conn, stage_log.listening(context.log.info):
            try:
                # Approval, requester and tenant are checked here, for every launch path
                # (UI, schedule, sensor, CLI): a refusal is recorded and fails the run.
                _, request, run_id = run_service.start(conn, submission_from_context(template, context),
                                                       origin_from_context(conn, context))
                context.log.info(f"report run {run_id}, input hash {request.input_hash}")
                with supervisor.guarded(conn, run_id), supervisor.interruptible(conn, run_id):
                    engine.check_freshness(conn, run_id, template, request)
                    sections = engine.take_snapshot(conn, run_id, template, request)
            except RunFailed as exc:
                raise run_failure(exc) from exc
            except ServiceError as exc:
                raise dg.Failure(description=f"refused: {exc}", allow_retries=False) from None
        return dg.MaterializeResult(
            metadata={
                "report_run_id": run_id,
                "input_hash": request.input_hash,
                "template_version": template.version,
                **{f"rows/{name}": s.row_count for name, s in sections.items()},
            }
        )

    return snapshot_asset


def _published_asset(template: Template, partitions):
    @dg.asset(
        key=published_key(template),
        deps=[snapshot_key(template)],
        partitions_def=partitions,
        group_name=template.key,
        kinds=formats.dagster_kinds(template.formats) or None,
        owners=report_metadata.owners(template.owner),
        description=f"{template.title} v{template.version}: formats rendered from the snapshot and "
        "published atomically with a manifest, only after Gate B passed.",
        metadata=_metadata(template),
    )
    def published_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        artifact_store: ArtifactStoreResource) -> dg.MaterializeResult:
        with warehouse.connection() as conn, stage_log.listening(context.log.info):
            record = run_record(conn, template, context)
            request = record.request_object()
            try:
                with supervisor.guarded(conn, record.run_id), supervisor.interruptible(conn, record.run_id):
                    published = render_and_publish(conn, record.run_id, template, request,
                                                   engine.sections_of(template, record), store=artifact_store.store())
            except RunFailed as exc:
                raise run_failure(exc) from exc
            if record.schedule_id:
                # Step 6: a scheduled run goes to its schedule's recipients through the outbox
                # (Gate C and the allow-list are checked there; failures retry on their own).
                delivered = delivery_service.deliver_scheduled_run(conn, published.run_id)
                context.log.info(f"delivery: {delivered}")
        return dg.MaterializeResult(
            metadata=report_metadata.published(published.run_id, published.manifest, published.location))

    return published_asset


def build_report_assets(template: Template) -> list[dg.AssetsDefinition]:
    partitions = partitions_for(template)
    dbt_deps = [
        dbt_asset_key(info.schema, info.alias)
        for info in (dbt_manifest.model(name, version) for name, version in template.models_read())
    ]
    return [_snapshot_asset(template, partitions, dbt_deps), _published_asset(template, partitions)]
