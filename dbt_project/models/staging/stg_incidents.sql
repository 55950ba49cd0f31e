select
    incident_id,
    tenant_id,
    title,
    severity,
    status,
    opened_at,
    acknowledged_at,
    resolved_at,
    assignee_id,
    attack_technique_id,
    sla_ack_minutes,
    sla_resolve_minutes,
    extract(epoch from acknowledged_at - opened_at)::numeric as ack_seconds,
    extract(epoch from resolved_at - opened_at)::numeric as resolve_seconds,
    _loaded_at
from {{ source('raw', 'incidents') }}
