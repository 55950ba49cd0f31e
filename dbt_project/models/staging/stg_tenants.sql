select tenant_id, name as tenant_name, plan, timezone, created_at, _loaded_at
from {{ source('raw', 'tenants') }}
