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
    region,
    _loaded_at
from {{ source('raw', 'awareness_measurements') }}
