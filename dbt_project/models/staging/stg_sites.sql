select site_id, tenant_id, name as site_name, region, country, vertical, opened_at, _loaded_at
from {{ source('raw', 'sites') }}
