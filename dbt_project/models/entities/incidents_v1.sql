-- The SOC's cases, one row each, with where they happened (site, vertical, region), whether
-- they are suspended and whom they concern. Consent is not filtered here: row-level security
-- (governed_rls) checks it live on every query.
with

incidents as (
    select * from {{ ref('stg_incidents') }}
),

analysts as (
    select * from {{ ref('stg_analysts') }}
),

assigned as (
    select
        incidents.*,
        analysts.team
    from incidents
    left join analysts
        on analysts.analyst_id = incidents.assignee_id
        and analysts.tenant_id = incidents.tenant_id
)

select
    incident_id,
    tenant_id,
    title,
    severity,
    status,
    opened_at,
    acknowledged_at,
    resolved_at,
    team,
    assignee_id,
    attack_technique_id,
    ack_seconds,
    resolve_seconds,
    vertical,
    region,
    site_id,
    suspension_status,
    suspension_reason,
    subject_id
from assigned
