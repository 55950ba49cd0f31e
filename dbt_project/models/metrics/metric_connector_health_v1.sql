-- Connector health per tenant, UTC day and connector, from hourly health observations.
-- Availability and latency are ratios of these counts and sums over any window; a down
-- observation is a timed-out check, so it adds to no latency sum.
select
    h.tenant_id,
    (h.observed_at at time zone 'UTC')::date as day,
    h.connector_id,
    coalesce(c.connector_name, h.connector_id) as connector_name,
    coalesce(c.kind, 'unknown') as kind,
    count(*)::bigint as observations,
    count(*) filter (where h.status = 'healthy')::bigint as healthy_count,
    count(*) filter (where h.status = 'degraded')::bigint as degraded_count,
    count(*) filter (where h.status = 'down')::bigint as down_count,
    coalesce(sum(h.latency_ms) filter (where h.status <> 'down'), 0)::bigint as latency_ms_sum,
    coalesce(sum(h.events_ingested), 0)::bigint as events_ingested
from {{ ref('stg_connector_health_events') }} as h
left join {{ ref('stg_connectors') }} as c
    on c.connector_id = h.connector_id and c.tenant_id = h.tenant_id
group by 1, 2, 3, 4, 5
