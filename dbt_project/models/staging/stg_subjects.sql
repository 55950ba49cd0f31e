select subject_id, tenant_id, pseudonym, site_id, vertical, region, enrolled_at, _loaded_at
from {{ source('raw', 'subjects') }}
