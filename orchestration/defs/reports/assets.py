"""Report templates as asset pairs: <template>/snapshot -> Gate B -> <template>/published.

Built from the catalog, not written per template: each template's assets depend on exactly
the dbt models its sections read, and are partitioned by tenant x period.
"""

import datetime as dt

import dagster as dg

from orchestration.catalog.templates import Template
from orchestration.db import warehouse
from orchestration.defs.dbt.assets import dbt_asset_key
from orchestration.defs.tenants.sensors import tenant_partitions
from orchestration.delivery import outbox
from orchestration.metrics import dbt_manifest
from orchestration.runs import engine, records
from orchestration.runs.records import ReportRequest, RequestError
from orchestration.schedules.runtime import FORMATS_TAG, SCHEDULE_TAG, TICK_TAG

PARTITIONS_START = "2025-01-01"
REQUESTER_TAG = "nexus/requester"
TRIGGER_TAG = "nexus/trigger"
DEFAULT_REQUESTER = "dagster-ui"


def partitions_for(template: Template) -> dg.MultiPartitionsDefinition:
    period = {
        "monthly": dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START),
        # ISO weeks: Monday to Sunday, keyed by the Monday.
        "weekly": dg.WeeklyPartitionsDefinition(start_date=PARTITIONS_START, day_offset=1),
        "daily": dg.DailyPartitionsDefinition(start_date=PARTITIONS_START),
    }[template.cadence]
    return dg.MultiPartitionsDefinition({"tenant": tenant_partitions, "period": period})


def snapshot_key(template: Template) -> dg.AssetKey:
    return dg.AssetKey([template.key, "snapshot"])


def published_key(template: Template) -> dg.AssetKey:
    return dg.AssetKey([template.key, "published"])


def request_from_context(template: Template, context: dg.AssetExecutionContext) -> ReportRequest:
    keys = context.partition_key.keys_by_dimension
    tags = context.run.tags
    formats = tuple(f for f in tags.get(FORMATS_TAG, "").split(",") if f) or template.formats
    return ReportRequest.for_period(
        template,
        keys["tenant"],
        keys["period"],
        requester=tags.get(REQUESTER_TAG, DEFAULT_REQUESTER),
        trigger=tags.get(TRIGGER_TAG, "manual"),
        formats=formats,
    )


def schedule_fields(conn, context) -> dict:
    """What a runtime schedule's tick tagged on the run: the schedule (whose tenant the request
    must match), and the tick time, for the schedule lag."""
    tags = context.run.tags
    fields = {}
    if tags.get(SCHEDULE_TAG):
        fields["schedule_id"] = tags[SCHEDULE_TAG]
        with conn, conn.cursor() as cur:
            cur.execute("select tenant_id from control.schedules where schedule_id::text = %s", (tags[SCHEDULE_TAG],))
            row = cur.fetchone()
        # An unknown schedule id vouches for no tenant: matching against '' refuses the run.
        fields["expected_tenant"] = row[0] if row else ""
    if tags.get(TICK_TAG):
        fields["tick_at"] = dt.datetime.fromisoformat(tags[TICK_TAG])
    return fields


def run_record(template: Template, context) -> dict:
    with warehouse.connection() as conn:
        record = records.run_for_dagster_run(conn, context.run.run_id, template.key)
    if record is None:
        raise dg.Failure(
            description=f"no {template.key} snapshot was taken in this Dagster run: "
            f"materialize {template.key}/snapshot and {template.key}/published together"
        )
    return record


def _failure(exc: engine.RunFailed) -> dg.Failure:
    return dg.Failure(
        description=exc.diagnosis,
        metadata={"report_run_id": exc.run_id, "failure_class": exc.failure_class},
        allow_retries=False,
    )


def build_report_assets(template: Template) -> list[dg.AssetsDefinition]:
    partitions = partitions_for(template)
    dbt_deps = [
        dbt_asset_key(info.schema, info.alias)
        for info in (dbt_manifest.model(name, version) for name, version in template.models_read())
    ]
    metadata = {
        "template_version": template.version,
        "owner": template.owner,
        "sensitivity": template.sensitivity,
        "formats": ", ".join(template.formats),
        "content_hash": template.content_hash,
        "metrics": ", ".join(f"{m.id} ({m.model} v{m.version})" for m in template.metrics),
    }

    @dg.asset(
        key=snapshot_key(template),
        deps=dbt_deps,
        partitions_def=partitions,
        group_name=template.key,
        kinds={"postgres"},
        owners=[template.owner] if "@" in template.owner else [f"team:{template.owner}"],
        description=f"{template.title} v{template.version}: every section queried under RLS "
        "for the partition's tenant and period, frozen in immutable snapshot tables.",
        metadata=metadata,
    )
    def snapshot_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        request = request_from_context(template, context)
        with warehouse.connection() as conn:
            try:
                # Approval, requester and tenant are checked here, for every launch path
                # (UI, schedule, sensor, CLI): a refusal is recorded and fails the run.
                run_id = engine.start(conn, template, request, dagster_run_id=context.run.run_id,
                                        **schedule_fields(conn, context))
                context.log.info(f"report run {run_id}, input hash {request.input_hash}")
                with engine.guarded(conn, run_id), engine.interruptible(conn, run_id):
                    engine.check_freshness(conn, run_id, template, request)
                    sections = engine.take_snapshot(conn, run_id, template, request)
            except engine.RunFailed as exc:
                raise _failure(exc) from exc
            except engine.AlreadyActive as exc:
                raise dg.Failure(description=f"{exc}: not started twice", allow_retries=False) from exc
            except RequestError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
        return dg.MaterializeResult(
            metadata={
                "report_run_id": run_id,
                "input_hash": request.input_hash,
                "template_version": template.version,
                **{f"rows/{name}": s.row_count for name, s in sections.items()},
            }
        )

    @dg.asset(
        key=published_key(template),
        deps=[snapshot_key(template)],
        partitions_def=partitions,
        group_name=template.key,
        kinds={"csv", "json", "xlsx", "pdf"} & set(template.formats) or None,
        description=f"{template.title} v{template.version}: formats rendered from the snapshot and "
        "published atomically with a manifest, only after Gate B passed.",
        metadata=metadata,
    )
    def published_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        record = run_record(template, context)
        request = engine.request_of(record)
        with warehouse.connection() as conn:
            try:
                with engine.guarded(conn, record["run_id"]), engine.interruptible(conn, record["run_id"]):
                    published = engine.render_and_publish(
                        conn, record["run_id"], template, request, engine.sections_of(template, record)
                    )
            except engine.RunFailed as exc:
                raise _failure(exc) from exc
            if record["schedule_id"]:
                # Step 6: a scheduled run goes to its schedule's recipients through the outbox
                # (Gate C and the allow-list are checked there; failures retry on their own).
                delivered = outbox.deliver_scheduled_run(conn, published.run_id)
                context.log.info(f"delivery: {delivered}")
        return dg.MaterializeResult(
            metadata={
                "report_run_id": published.run_id,
                "location": dg.MetadataValue.path(str(published.location)),
                "input_hash": record["input_hash"],
                "files": dg.MetadataValue.json(published.manifest["files"]),
            }
        )

    return [snapshot_asset, published_asset]
