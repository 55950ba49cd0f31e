-- Tenant names for report headers; under RLS a tenant sees only its own row.
select tenant_id, tenant_name as name, timezone
from {{ ref('stg_tenants') }}
