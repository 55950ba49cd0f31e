-- SLA breaches per tenant, UTC opened day, severity and the assignee's team. Breach counts and
-- overrun sums are additive parts: breach rates and mean overruns are ratios of their sums over
-- any window. An incident not yet acknowledged/resolved is not measured (it may still meet the SLA).
select
    i.tenant_id,
    (i.opened_at at time zone 'UTC')::date as day,
    i.severity,
    coalesce(a.team, 'unassigned') as team,
    count(*)::bigint as incidents_opened,
    count(i.ack_seconds)::bigint as ack_measured_count,
    count(*) filter (where i.ack_seconds > i.sla_ack_minutes * 60)::bigint as ack_breached_count,
    coalesce(sum(i.ack_seconds - i.sla_ack_minutes * 60)
             filter (where i.ack_seconds > i.sla_ack_minutes * 60), 0)::numeric(24, 3) as ack_overrun_seconds_sum,
    count(i.resolve_seconds)::bigint as resolve_measured_count,
    count(*) filter (where i.resolve_seconds > i.sla_resolve_minutes * 60)::bigint as resolve_breached_count,
    coalesce(sum(i.resolve_seconds - i.sla_resolve_minutes * 60)
             filter (where i.resolve_seconds > i.sla_resolve_minutes * 60), 0)::numeric(24, 3) as resolve_overrun_seconds_sum
from {{ ref('stg_incidents') }} as i
left join {{ ref('stg_analysts') }} as a
    on a.analyst_id = i.assignee_id and a.tenant_id = i.tenant_id
group by 1, 2, 3, 4
