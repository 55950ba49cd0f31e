-- Incidents per tenant, UTC opened day, severity and current status.
select
    tenant_id,
    (opened_at at time zone 'UTC')::date as day,
    severity,
    status,
    count(*)::bigint as incident_count
from {{ ref('stg_incidents') }}
group by 1, 2, 3, 4
