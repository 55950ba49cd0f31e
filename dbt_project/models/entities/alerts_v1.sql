-- Alerts raised by connectors, one row each; an escalated alert carries its incident's vertical
-- and region, one nobody escalated its connector's.
with

alerts as (
    select * from {{ ref('stg_alerts') }}
),

flagged as (
    select
        alerts.*,
        incident_id is not null as escalated
    from alerts
)

select
    alert_id,
    tenant_id,
    incident_id,
    connector_id,
    rule_name,
    severity,
    attack_technique_id,
    created_at,
    escalated,
    vertical,
    region
from flagged
