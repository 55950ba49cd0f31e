-- Incident events per tenant, UTC day and severity: opened, acknowledged and resolved that day.
-- Additive: the backlog at any instant is the sum of (opened - resolved) over all earlier days.
with events as (
    select tenant_id, (opened_at at time zone 'UTC')::date as day, severity,
           1 as opened, 0 as acknowledged, 0 as resolved
    from {{ ref('stg_incidents') }}
    union all
    select tenant_id, (acknowledged_at at time zone 'UTC')::date, severity, 0, 1, 0
    from {{ ref('stg_incidents') }}
    where acknowledged_at is not null
    union all
    select tenant_id, (resolved_at at time zone 'UTC')::date, severity, 0, 0, 1
    from {{ ref('stg_incidents') }}
    where resolved_at is not null
)
select
    tenant_id,
    day,
    severity,
    sum(opened)::bigint as incidents_opened,
    sum(acknowledged)::bigint as incidents_acknowledged,
    sum(resolved)::bigint as incidents_resolved
from events
group by tenant_id, day, severity
