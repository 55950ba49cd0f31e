-- The security-awareness programme, one row per measurement of one subject: baseline,
-- follow-ups, outcome. Consent is not filtered here: row-level security checks it live.
with

measurements as (
    select * from {{ ref('stg_awareness_measurements') }}
)

select
    measurement_id,
    tenant_id,
    subject_id,
    programme,
    measured_at,
    measurement_type,
    score,
    clicked,
    reported,
    vertical,
    region
from measurements
