select event_id, tenant_id, connector_id, observed_at, status, latency_ms, events_ingested, _loaded_at
from {{ source('raw', 'connector_health_events') }}
