-- Every staged incident is counted exactly once in the status metric and once as opened in
-- the flow metric: a failing row names the tenant whose totals disagree.
with staged as (
    select tenant_id, count(*) as n from {{ ref('stg_incidents') }} group by tenant_id
), by_status as (
    select tenant_id, sum(incident_count) as n from {{ ref('metric_incident_status', v=1) }} group by tenant_id
), flow as (
    select tenant_id, sum(incidents_opened) as opened, sum(incidents_resolved) as resolved
    from {{ ref('metric_incident_flow', v=1) }} group by tenant_id
)
select staged.tenant_id, staged.n, by_status.n as status_n, flow.opened, flow.resolved
from staged
full join by_status using (tenant_id)
full join flow using (tenant_id)
where staged.n is distinct from by_status.n
   or staged.n is distinct from flow.opened
   or flow.resolved > flow.opened
