-- Analyst work per tenant, UTC day and assignee: incidents assigned (counted on their opened
-- day) and resolved (on their resolved day) with resolve-time parts. Additive: an analyst's
-- open assigned backlog at an instant is sum(assigned) - sum(resolved) over all earlier days.
-- Unassigned incidents belong to nobody and are left out.
with events as (
    select tenant_id, (opened_at at time zone 'UTC')::date as day, assignee_id as analyst_id,
           1 as assigned, 0 as resolved, null::numeric as resolve_seconds, false as within_sla
    from {{ ref('stg_incidents') }}
    where assignee_id is not null
    union all
    select tenant_id, (resolved_at at time zone 'UTC')::date, assignee_id,
           0, 1, resolve_seconds, resolve_seconds <= sla_resolve_minutes * 60
    from {{ ref('stg_incidents') }}
    where assignee_id is not null and resolved_at is not null
)
select
    tenant_id,
    day,
    analyst_id,
    sum(assigned)::bigint as incidents_assigned,
    sum(resolved)::bigint as incidents_resolved,
    coalesce(sum(resolve_seconds), 0)::numeric(24, 3) as resolve_seconds_sum,
    count(*) filter (where within_sla)::bigint as resolved_within_sla_count
from events
group by 1, 2, 3
