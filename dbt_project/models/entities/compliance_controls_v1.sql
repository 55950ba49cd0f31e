-- Compliance controls, one row each, with the programme (vertical, region) that owns them and
-- their latest evidence.
with

controls as (
    select * from {{ ref('stg_compliance_controls') }}
),

evidence as (
    select * from {{ ref('stg_compliance_evidence') }}
),

latest_evidence as (
    select distinct on (tenant_id, control_id)
        tenant_id,
        control_id,
        collected_at as latest_evidence_at,
        status as latest_evidence_status
    from evidence
    order by tenant_id, control_id, collected_at desc, evidence_id desc
),

joined as (
    select
        controls.*,
        latest_evidence.latest_evidence_at,
        latest_evidence.latest_evidence_status
    from controls
    left join latest_evidence
        on latest_evidence.tenant_id = controls.tenant_id
        and latest_evidence.control_id = controls.control_id
)

select
    tenant_id,
    control_id,
    framework,
    control_title,
    owner_id,
    latest_evidence_at,
    latest_evidence_status,
    vertical,
    region
from joined
