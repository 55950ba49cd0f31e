-- Response-time parts per tenant, UTC opened day and severity. Means and SLA attainment are
-- ratios of these sums and counts (see each metric's formula), so any window aggregates
-- correctly; an incident not yet acknowledged/resolved adds to no duration sum or count.
select
    tenant_id,
    (opened_at at time zone 'UTC')::date as day,
    severity,
    count(*)::bigint as incidents_opened,
    count(ack_seconds)::bigint as acknowledged_count,
    coalesce(sum(ack_seconds), 0)::numeric(24, 3) as ack_seconds_sum,
    count(resolve_seconds)::bigint as resolved_count,
    coalesce(sum(resolve_seconds), 0)::numeric(24, 3) as resolve_seconds_sum,
    count(*) filter (where ack_seconds <= sla_ack_minutes * 60)::bigint as ack_within_sla_count,
    count(*) filter (where resolve_seconds <= sla_resolve_minutes * 60)::bigint as resolve_within_sla_count
from {{ ref('stg_incidents') }}
group by 1, 2, 3
