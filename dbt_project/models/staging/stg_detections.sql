select detection_id, tenant_id, technique_id, name as detection_name, enabled, created_at, _loaded_at
from {{ source('raw', 'detections') }}
