select analyst_id, tenant_id, name as analyst_name, email, team, hired_at, _loaded_at
from {{ source('raw', 'analysts') }}
