select tenant_id, control_id, framework, title as control_title, owner_id, vertical, region, _loaded_at
from {{ source('raw', 'compliance_controls') }}
