select evidence_id, tenant_id, control_id, collected_at, status, reviewer_id, _loaded_at
from {{ source('raw', 'compliance_evidence') }}
