-- Every run once for its tenant and once for the platform (a run of the platform partition
-- itself only for the platform), by the UTC day it was created, with the durations the KPIs use.
-- Definitions as in orchestration/kpis/compute.py; tests/kpis/test_kpi_models.py keeps them equal.
with

runs as (
    select * from {{ source('control', 'report_runs') }}
),

template_versions as (
    select * from {{ source('control', 'template_versions') }}
),

scoped as (
    select tenant_id as scope, * from runs where tenant_id <> '{{ var("platform_tenant") }}'
    union all
    select '{{ var("platform_tenant") }}' as scope, * from runs
),

measured as (
    select
        scoped.scope as tenant_id,
        (scoped.created_at at time zone 'UTC')::date as day,
        scoped.run_id,
        scoped.template_key,
        scoped.template_version,
        scoped.state,
        scoped.failure_class,
        scoped.gate_passed,
        scoped.state in ('completed', 'expired', 'failed', 'cancelled') as ended,
        scoped.state in ('completed', 'expired') as succeeded,
        extract(epoch from scoped.started_at - scoped.tick_at)::float8 as tick_to_start_seconds,
        extract(epoch from scoped.published_at - scoped.started_at)::float8 as start_to_published_seconds,
        case when scoped.state in ('completed', 'expired')
             then extract(epoch from scoped.ended_at - scoped.started_at)::float8 end as runtime_seconds,
        coalesce(scoped.created_at >= tv.deprecated_at, false) as after_deprecation,
        (scoped.state = 'completed' and scoped.published_at is not null
         and scoped.artifact_location is not null) as published,
        scoped.manifest_sha256 is not null as manifest_recorded
    from scoped
    left join template_versions as tv
        on tv.template_key = scoped.template_key and tv.version = scoped.template_version
)

select * from measured
