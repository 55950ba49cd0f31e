select alert_id, tenant_id, incident_id, connector_id, rule_name, severity, attack_technique_id, created_at,
       vertical, region, _loaded_at
from {{ source('raw', 'alerts') }}
