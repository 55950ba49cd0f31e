-- The ten operational KPIs (Appendix B) of each tenant and of the platform, per UTC day: the
-- headline value of each, with the counts it divides. Per-class, per-channel, per-reason and
-- per-template values are in kpi_daily_breakdown. Percentiles are nearest-rank
-- (percentile_disc), as kpis.compute.percentile; they do not add up across days, so a window
-- longer than a day is `nexus-reports kpis --since` (the same definitions in Python).
with

runs as (
    select * from {{ ref('kpi_runs') }}
),

events as (
    select * from {{ ref('kpi_events') }}
),

run_kpis as (
    select
        tenant_id,
        day,
        count(*)::bigint as runs_created,
        count(*) filter (where ended)::bigint as runs_ended,
        count(*) filter (where succeeded)::bigint as runs_succeeded,
        count(*) filter (where ended and failure_class is not null)::bigint as runs_failed_with_class,
        count(*) filter (where gate_passed is not null)::bigint as gate_b_runs,
        count(*) filter (where not gate_passed)::bigint as gate_b_failed,
        count(*) filter (where after_deprecation)::bigint as deprecated_version_runs,
        percentile_disc(0.5) within group (order by tick_to_start_seconds) as tick_to_start_p50_seconds,
        percentile_disc(0.95) within group (order by tick_to_start_seconds) as tick_to_start_p95_seconds,
        max(tick_to_start_seconds) as tick_to_start_max_seconds,
        percentile_disc(0.5) within group (order by start_to_published_seconds) as start_to_published_p50_seconds,
        percentile_disc(0.95) within group (order by start_to_published_seconds) as start_to_published_p95_seconds,
        max(start_to_published_seconds) as start_to_published_max_seconds,
        percentile_disc(0.95) within group (order by runtime_seconds) filter (where ended) as runtime_p95_seconds,
        count(*) filter (where published)::bigint as published_runs,
        count(*) filter (where published and manifest_recorded)::bigint as published_runs_with_manifest
    from runs
    group by tenant_id, day
),

event_kpis as (
    select
        tenant_id,
        day,
        count(*) filter (where kind = 'delivery')::bigint as deliveries_decided,
        count(*) filter (where kind = 'delivery' and flagged)::bigint as deliveries_sent,
        count(*) filter (where kind = 'denial')::bigint as access_denials,
        count(*) filter (where kind = 'violation' and dimension = 'refused_distribution')::bigint as refused_distributions,
        count(*) filter (where kind = 'violation' and dimension = 'tenant_mismatch')::bigint as tenant_mismatches,
        count(*) filter (where kind = 'denial' and flagged)::bigint as denied_sensitive_downloads
    from events
    group by tenant_id, day
),

days as (
    select tenant_id, day from run_kpis
    union
    select tenant_id, day from event_kpis
),

final as (
    select
        days.tenant_id,
        days.day,
        coalesce(r.runs_created, 0) as runs_created,
        coalesce(r.runs_ended, 0) as runs_ended,
        coalesce(r.runs_succeeded, 0) as runs_succeeded,
        r.runs_succeeded::float8 / nullif(r.runs_ended, 0) as run_success_rate,
        coalesce(r.runs_failed_with_class, 0) as runs_failed_with_class,
        r.runs_failed_with_class::float8 / nullif(r.runs_ended, 0) as failure_rate,
        r.tick_to_start_p50_seconds,
        r.tick_to_start_p95_seconds,
        r.tick_to_start_max_seconds,
        r.start_to_published_p50_seconds,
        r.start_to_published_p95_seconds,
        r.start_to_published_max_seconds,
        coalesce(e.deliveries_decided, 0) as deliveries_decided,
        coalesce(e.deliveries_sent, 0) as deliveries_sent,
        e.deliveries_sent::float8 / nullif(e.deliveries_decided, 0) as delivery_success_rate,
        coalesce(r.gate_b_runs, 0) as gate_b_runs,
        coalesce(r.gate_b_failed, 0) as gate_b_failed,
        r.gate_b_failed::float8 / nullif(r.gate_b_runs, 0) as gate_b_failure_rate,
        coalesce(r.deprecated_version_runs, 0) as deprecated_version_runs,
        coalesce(e.access_denials, 0) as access_denials,
        coalesce(e.refused_distributions, 0) as refused_distributions,
        coalesce(e.tenant_mismatches, 0) as tenant_mismatches,
        coalesce(e.denied_sensitive_downloads, 0) as denied_sensitive_downloads,
        coalesce(e.refused_distributions + e.tenant_mismatches + e.denied_sensitive_downloads, 0)
            as policy_violation_attempts,
        r.runtime_p95_seconds,
        coalesce(r.published_runs, 0) as published_runs,
        coalesce(r.published_runs_with_manifest, 0) as published_runs_with_manifest
    from days
    left join run_kpis as r using (tenant_id, day)
    left join event_kpis as e using (tenant_id, day)
)

select * from final
