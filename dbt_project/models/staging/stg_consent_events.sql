select event_id, tenant_id, subject_id, state, changed_at, reason, _loaded_at
from {{ source('raw', 'consent_events') }}
