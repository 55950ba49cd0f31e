-- The KPIs that have a dimension, per tenant and platform and UTC day, one row per
-- (kpi, dimension): failure rate by failure class, delivery success by channel, runs per
-- template version, link denials by reason, policy violation attempts by kind and p95 runtime
-- by template. numerator / denominator for rates; value is the rate, the count or the seconds.
with

runs as (
    select * from {{ ref('kpi_runs') }}
),

events as (
    select * from {{ ref('kpi_events') }}
),

ended as (
    select tenant_id, day, count(*)::bigint as runs_ended
    from runs where ended group by tenant_id, day
),

failure_by_class as (
    select runs.tenant_id, runs.day, 'failure_rate_by_class' as kpi, runs.failure_class as dimension,
           count(*)::bigint as numerator, max(ended.runs_ended) as denominator
    from runs join ended using (tenant_id, day)
    where runs.ended and runs.failure_class is not null
    group by runs.tenant_id, runs.day, runs.failure_class
),

delivery_by_channel as (
    select tenant_id, day, 'delivery_success_rate_by_channel' as kpi, dimension,
           count(*) filter (where flagged)::bigint as numerator, count(*)::bigint as denominator
    from events where kind = 'delivery'
    group by tenant_id, day, dimension
),

rates as (
    select *, numerator::float8 / denominator as value from failure_by_class
    union all
    select *, numerator::float8 / denominator from delivery_by_channel
),

runs_by_version as (
    select tenant_id, day, 'runs_by_template_version' as kpi, template_key || ' v' || template_version as dimension,
           count(*)::bigint as numerator, null::bigint as denominator, count(*)::float8 as value
    from runs
    group by tenant_id, day, template_key, template_version
),

denials_by_reason as (
    select tenant_id, day, 'access_denials_by_reason' as kpi, dimension,
           count(*)::bigint as numerator, null::bigint as denominator, count(*)::float8 as value
    from events where kind = 'denial'
    group by tenant_id, day, dimension
),

violations_by_kind as (
    select tenant_id, day, 'policy_violations_by_kind' as kpi, dimension,
           count(*)::bigint as numerator, null::bigint as denominator, count(*)::float8 as value
    from events where kind = 'violation'
    group by tenant_id, day, dimension
    union all
    select tenant_id, day, 'policy_violations_by_kind', 'denied_sensitive_download', count(*)::bigint, null::bigint,
           count(*)::float8
    from events where kind = 'denial' and flagged
    group by tenant_id, day
),

runtime_by_template as (
    -- numerator: the completed runs the percentile is taken over
    select tenant_id, day, 'p95_runtime_by_template' as kpi, template_key as dimension,
           count(*)::bigint as numerator, null::bigint as denominator,
           percentile_disc(0.95) within group (order by runtime_seconds) as value
    from runs where ended and runtime_seconds is not null
    group by tenant_id, day, template_key
),

final as (
    select * from rates
    union all
    select * from runs_by_version
    union all
    select * from denials_by_reason
    union all
    select * from violations_by_kind
    union all
    select * from runtime_by_template
)

select tenant_id, day, kpi, dimension, numerator, denominator, value from final
