select connector_id, tenant_id, name as connector_name, kind, created_at, vertical, region, _loaded_at
from {{ source('raw', 'connectors') }}
